/**
 * The remote resources of plugins registered through Tether's public API (src/api.ts), in the
 * ledger like Tether's own cloud records: one record of kind 'api' carrying `remote` per resource
 * the plugin reports, with its price and its state changes (history notes `cloud:<state>`, read
 * by billingEvents in cloud.ts). They count in budgets, period spend and the cost report, and
 * survive a reload; the plugin re-attaches to its record when it registers again.
 *
 * Tether holds no credentials for such a resource: its cloud code never lists, reconciles or
 * terminates these records (they are not kind 'cloud'); only the plugin's own
 * terminateRemoteResource() ends the resource, and its report of `terminated` ends the record.
 */
import { randomUUID } from 'node:crypto';
import type { BillingRule, BillingState } from '../core/cost';
import { TetherError, ExitCode } from '../core/errors';
import { applyPatch, endIn, type Ledger, type LedgerResource, type ResourceOwner } from '../core/ledger';
import type { PluginExecutionMode, RemoteResourceInfo } from '../core/protocols';
import { BILLING_RULES } from '../backends/cloud/registry';
import { KUBERNETES_BILLING } from '../backends/kubernetes/rules';

/** A provider Tether has no billing rule for: the plugin's own estimate, per second while running. */
export const API_ESTIMATE_RULE: BillingRule = {
  provider: 'api-estimate',
  computeStates: ['running'],
  storageStates: [],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: "the registering plugin's estimateCost()",
  summary: "the plugin's own estimate (estimateCost), per second while it reports running",
};

/** The billing rule of a money record: a cloud record's provider rule; an API plugin's resource's provider rule, else its own estimate. */
export function billingRuleOf(r: LedgerResource): BillingRule | undefined {
  if (!r.remote) return undefined;
  if (r.kind === 'cloud') return BILLING_RULES[r.remote.provider];
  if (r.kind === 'kubernetes') return KUBERNETES_BILLING; // priced from the Pods' requests and the user's table
  if (r.kind === 'api') return BILLING_RULES[r.remote.provider] ?? API_ESTIMATE_RULE;
  return undefined;
}

/** True for the record of an API plugin's remote resource (not its local process record). */
export function isApiRemoteRecord(r: LedgerResource): boolean {
  return r.kind === 'api' && r.remote !== undefined;
}

/** A plugin's status word as a billing state (the protocol's words are free text). */
export function billingStateOf(status: string): BillingState {
  const s = status.trim().toLowerCase();
  if (s === 'running' || s === 'active' || s === 'ready') return 'running';
  if (s === 'provisioning' || s === 'pending' || s === 'starting' || s === 'booting' || s === 'creating') return 'provisioning';
  if (s === 'stopping') return 'stopping';
  if (s === 'stopped' || s === 'exited' || s === 'paused') return 'stopped';
  if (s === 'terminating' || s === 'shutting-down' || s === 'deleting') return 'terminating';
  if (s === 'terminated' || s === 'deleted' || s === 'destroyed' || s === 'not_provisioned') return 'terminated';
  return 'unknown';
}

function ledgerStateOf(s: BillingState): LedgerResource['state'] {
  if (s === 'provisioning') return 'starting';
  if (s === 'stopped') return 'stopped';
  if (s === 'stopping' || s === 'terminating') return 'stopping';
  return 'running';
}

/** The billing state last recorded for a record (its latest `cloud:` note). */
export function lastBillingState(r: LedgerResource): BillingState | undefined {
  for (let i = r.history.length - 1; i >= 0; i--) {
    const n = r.history[i]!.note;
    if (n?.startsWith('cloud:')) return n.slice(6).split(' ')[0] as BillingState;
  }
  return undefined;
}

/** USD/h an open API plugin's record bills now by its rule (compute only: a plugin reports no storage rate). */
export function apiRatePerHour(r: LedgerResource): number {
  const rule = billingRuleOf(r);
  const st = lastBillingState(r);
  return rule && st && rule.computeStates.includes(st) ? (r.remote?.estimatedCostPerHour ?? 0) : 0;
}

const identityOf = (i: Pick<RemoteResourceInfo, 'instanceId' | 'jobId' | 'endpointUrl'>) => i.instanceId ?? i.jobId ?? i.endpointUrl ?? '';

function finitePrice(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : undefined;
}

/** Checks what a plugin reported before anything is written; a clear error otherwise. */
export function validateRemoteInfo(name: string, info: unknown): RemoteResourceInfo {
  const bad = (what: string) =>
    new TetherError(`plugin "${name}": getRemoteResourceInfo() returned ${what}`, { remedy: 'Fix the plugin (see RemoteResourceInfo in Tether\'s API); nothing was recorded.', exitCode: ExitCode.USAGE });
  const i = info as Partial<RemoteResourceInfo> | null;
  if (!i || typeof i !== 'object') throw bad(`${String(info)}, not an object`);
  if (typeof i.provider !== 'string' || !i.provider.trim()) throw bad(`no provider (${JSON.stringify(i.provider)})`);
  if (typeof i.status !== 'string') throw bad(`a status that is not a string (${JSON.stringify(i.status)})`);
  for (const k of ['instanceId', 'jobId', 'endpointUrl', 'region', 'resourceType', 'gpuType', 'sshHost'] as const) {
    if (i[k] !== undefined && typeof i[k] !== 'string') throw bad(`a ${k} that is not a string (${JSON.stringify(i[k])})`);
  }
  const p = i.estimatedCostPerHour;
  if (p !== undefined && (typeof p !== 'number' || !Number.isFinite(p) || p < 0)) throw bad(`a price that is not a number >= 0 (${JSON.stringify(p)})`);
  return i as RemoteResourceInfo;
}

/** An endpoint without credentials: user info, query and fragment dropped. */
function safeUrl(u: string | undefined): string | undefined {
  if (u === undefined) return undefined;
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return undefined;
  }
}

/** The fields Tether keeps (never the plugin's free-form metadata: it may hold secrets). */
function remoteOf(name: string, info: RemoteResourceInfo, price: number | undefined): RemoteResourceInfo {
  const url = safeUrl(info.endpointUrl);
  return {
    provider: info.provider,
    ...(info.region ? { region: info.region } : {}),
    ...(info.instanceId ? { instanceId: info.instanceId } : {}),
    ...(info.jobId ? { jobId: info.jobId } : {}),
    ...(url ? { endpointUrl: url } : {}),
    ...(info.sshHost ? { sshHost: info.sshHost } : {}),
    sshPort: Number.isSafeInteger(info.sshPort) ? info.sshPort : 22,
    status: info.status,
    ...(info.resourceType ? { resourceType: info.resourceType } : {}),
    gpuCount: Number.isSafeInteger(info.gpuCount) ? info.gpuCount : 0,
    ...(info.gpuType ? { gpuType: info.gpuType } : {}),
    ...(price !== undefined ? { estimatedCostPerHour: price } : {}),
    metadata: { apiPlugin: name, providerStatus: info.status },
  };
}

export interface ApiRemoteSource {
  /** The registered name (RegisterOptions.name). */
  name: string;
  owner: ResourceOwner;
  executionMode: PluginExecutionMode;
  /** What the plugin reports now (undefined: nothing provisioned). */
  info: RemoteResourceInfo | undefined;
  /** The plugin's estimateCost(1), read only when a price is needed. */
  estimatePerHour: () => number;
}

/**
 * Brings the ledger in line with what an API plugin reports: creates (or, after a reload,
 * re-attaches to) the record of its resource, records state changes and its price, and ends
 * the record when the plugin reports it terminated or gone. `knownId` is the record this
 * session already follows. Returns the id of the open record (undefined when none).
 */
export async function recordApiRemote(ledger: Ledger, src: ApiRemoteSource, knownId?: string): Promise<string | undefined> {
  const info = src.info === undefined ? undefined : validateRemoteInfo(src.name, src.info);
  const state = info ? billingStateOf(info.status) : 'terminated';
  const body = ledger.read();
  const open = body.resources.filter((r) => isApiRemoteRecord(r) && r.plugin === src.name);
  const same = (r: LedgerResource) => !!info && r.remote!.provider === info.provider && identityOf(r.remote!) === identityOf(info);
  const known = knownId ? open.find((r) => r.id === knownId) : undefined;
  // After a reload: the open record of the same resource (nothing is re-attached without a report).
  const current = known && (!info || same(known)) ? known : open.find(same);
  const replaced = known && known !== current ? known : undefined;
  let price: number | undefined;
  if (info && state !== 'terminated' && finitePrice(current?.remote?.estimatedCostPerHour) === undefined) {
    // A provider Tether bills by its rule takes the reported $/h; otherwise the plugin's own estimate first.
    let estimate: number | undefined;
    try {
      estimate = finitePrice(src.estimatePerHour());
    } catch {
      estimate = undefined;
    }
    const reported = finitePrice(info.estimatedCostPerHour);
    price = BILLING_RULES[info.provider] ? (reported ?? estimate) : (estimate ?? reported);
  }
  const changed = !current
    ? !!info && state !== 'terminated'
    : state === 'terminated' || current.remote!.metadata.providerStatus !== info!.status || price !== undefined;
  if (!changed && !replaced) return current?.id;
  return ledger.update((b) => {
    const now = new Date().toISOString();
    if (replaced && b.resources.some((x) => x.id === replaced.id)) endIn(b, replaced.id, 'stopped', `cloud:terminated the plugin now reports another resource`);
    if (!info || state === 'terminated') {
      if (current) endIn(b, current.id, 'stopped', `cloud:terminated reported by the plugin`);
      return undefined;
    }
    let r = current ? b.resources.find((x) => x.id === current.id) : undefined;
    if (!r) {
      r = {
        id: randomUUID(),
        kind: 'api',
        plugin: src.name,
        executionMode: src.executionMode,
        state: ledgerStateOf(state),
        owner: src.owner,
        createdAt: now,
        updatedAt: now,
        processes: [],
        remote: remoteOf(src.name, info, price),
        history: [{ at: now, state: ledgerStateOf(state), note: `cloud:${state} reported by the API plugin` }],
      };
      b.resources.push(r);
      return r.id;
    }
    const keepPrice = finitePrice(r.remote!.estimatedCostPerHour) ?? price;
    const statusChanged = r.remote!.metadata.providerStatus !== info.status;
    r.remote = remoteOf(src.name, info, keepPrice);
    if (statusChanged) applyPatch(r, { state: ledgerStateOf(state) }, `cloud:${state}`);
    else r.updatedAt = now;
    return r.id;
  }, `recording ${src.name}'s remote resource`);
}
