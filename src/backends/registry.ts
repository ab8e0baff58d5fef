/**
 * Every backend a declared plugin can run on, asked in order: the first that owns a spec runs
 * it; the local backend runs the rest. Adding a backend is its folder
 * (`src/backends/<name>/index.ts` exporting a {@link BackendFactory}) plus ONE line here.
 * Cloud providers have their own registry: src/backends/cloud/registry.ts.
 */
import type { PluginSpec } from '../core/config';
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

/** The backend that owns a ledger record of this kind, or undefined (cloud, API plugin records). */
export function backendOfRecordKind(kind: string): BackendFactory | undefined {
  return [...BACKENDS, DEFAULT_BACKEND].find((b) => b.recordKinds.includes(kind));
}
