/**
 * Every backend a declared plugin can run on, asked in order: the first that owns a spec runs
 * it; the local backend runs the rest. Adding a backend is its folder
 * (`src/backends/<name>/index.ts` exporting a {@link BackendFactory}) plus ONE line here.
 * Cloud providers have their own registry: src/backends/cloud/registry.ts.
 */
import type { PluginSpec } from '../core/config';
import type { LedgerResource } from '../core/ledger';
import type { BackendFactory } from './backend';
import { condaBackend } from './conda';
import { dockerBackend } from './docker';
import { kubernetesBackend } from './kubernetes';
import { localBackend } from './local';
import { sshBackend } from './ssh';

export const BACKENDS: readonly BackendFactory[] = [
  kubernetesBackend,
  sshBackend,
  dockerBackend,
  condaBackend,
];

/** Runs every declared command no other backend owns. */
export const DEFAULT_BACKEND: BackendFactory = localBackend;

/** The backend that runs a declared spec. */
export function backendFor(spec: PluginSpec): BackendFactory {
  return BACKENDS.find((b) => b.owns(spec)) ?? DEFAULT_BACKEND;
}

/** True when a backend owns a ledger record (its own {@link BackendFactory.ownsRecord}, else its record kinds). */
export function ownsRecord(f: BackendFactory, r: LedgerResource): boolean {
  return f.ownsRecord ? f.ownsRecord(r) : f.recordKinds.includes(r.kind);
}

/** The backend that owns a ledger record, or undefined (a cloud instance, an API plugin's remote resource). */
export function backendOfRecord(r: LedgerResource): BackendFactory | undefined {
  return [DEFAULT_BACKEND, ...BACKENDS].find((b) => ownsRecord(b, r));
}
