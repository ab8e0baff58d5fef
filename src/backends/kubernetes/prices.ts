/**
 * What a Kubernetes Pod costs. Kubernetes reports no price, so the user sets one per cluster
 * (kubeconfig context): USD per GPU-hour, per CPU-hour and per GiB-hour of memory, and Tether
 * prices a Pod from its requests: gpus × gpuHour + cpus × cpuHour + GiB × gibHour.
 *
 * The table lives in the per-user state folder (`kubernetes-prices.json`, next to the ledger and
 * the policy file), never in a repository. `tether k8s prices set CONTEXT --gpu-hour X --cpu-hour
 * Y --gib-hour Z` writes it. The price at launch is recorded in the ledger record (like a cloud
 * instance's), so a later change of the table does not rewrite what was spent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../core/atomicFile';
import { ExitCode, TetherError } from '../../core/errors';
import { FileLock } from '../../core/fileLock';
import type { PodRequests } from './spec';

export const PRICES_FILE = 'kubernetes-prices.json';
const FORMAT = 'tether-k8s-prices/1';

export interface ClusterPrices {
  /** USD per GPU per hour. */
  gpuHour: number;
  /** USD per CPU (core) per hour. */
  cpuHour: number;
  /** USD per GiB of memory per hour. */
  gibHour: number;
  updatedAt?: string;
}

export { KUBERNETES_BILLING } from './rules';

/** USD per hour of one Pod with these requests. */
export function podPricePerHour(r: PodRequests, p: ClusterPrices): number {
  return r.gpus * p.gpuHour + r.cpus * p.cpuHour + r.memoryGiB * p.gibHour;
}

function check(context: string, p: Partial<ClusterPrices>): ClusterPrices {
  for (const k of ['gpuHour', 'cpuHour', 'gibHour'] as const) {
    const v = p[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 10_000) {
      throw new TetherError(`the price ${k} of context "${context}" must be a number of USD between 0 and 10000 (got ${JSON.stringify(v)})`, { remedy: 'Give each of --gpu-hour, --cpu-hour and --gib-hour as a number (0 when that resource is free).', exitCode: ExitCode.USAGE });
    }
  }
  return { gpuHour: p.gpuHour!, cpuHour: p.cpuHour!, gibHour: p.gibHour!, ...(p.updatedAt ? { updatedAt: p.updatedAt } : {}) };
}

/** Every context's prices (an empty table when none was set). A damaged file is an error, never silently empty. */
export function readPrices(stateDir: string): Record<string, ClusterPrices> {
  const file = path.join(stateDir, PRICES_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  let doc: { format?: unknown; contexts?: Record<string, Partial<ClusterPrices>> };
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TetherError(`${file} is not valid JSON: ${(err as Error).message}`, { remedy: `Set the prices again (tether k8s prices set CONTEXT …) after moving it aside.` });
  }
  if (doc.format !== FORMAT || !doc.contexts || typeof doc.contexts !== 'object') throw new TetherError(`${file} is not a Tether price table (format ${JSON.stringify(doc.format)})`, { remedy: 'Move it aside and set the prices again (tether k8s prices set CONTEXT …).' });
  const out: Record<string, ClusterPrices> = {};
  for (const [ctx, p] of Object.entries(doc.contexts)) out[ctx] = check(ctx, p);
  return out;
}

/** Sets (or with `undefined`, removes) one context's prices, under a lock; returns the table. */
export async function setPrices(stateDir: string, context: string, prices: Omit<ClusterPrices, 'updatedAt'> | undefined): Promise<Record<string, ClusterPrices>> {
  if (!context.trim()) throw new TetherError('a kubeconfig context name is required', { remedy: 'Name the context as `kubectl config get-contexts` lists it.', exitCode: ExitCode.USAGE });
  const p = prices ? check(context, prices) : undefined;
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lock = new FileLock(path.join(stateDir, `${PRICES_FILE}.lock`));
  return lock.withLock(() => {
    const all = readPrices(stateDir);
    if (p) all[context] = { ...p, updatedAt: new Date().toISOString() };
    else delete all[context];
    writeFileAtomic(path.join(stateDir, PRICES_FILE), `${JSON.stringify({ format: FORMAT, contexts: all }, null, 1)}\n`);
    return all;
  });
}
