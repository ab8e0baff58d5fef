/**
 * Cloud instances, for the CLI and the UI: what each configured provider runs, matched with the
 * ledger. Nothing that bills is ever forgotten: an intent is recorded before every launch, the
 * instance is tagged with the ledger id, and every poll reconciles the provider's list with the
 * ledger — an instance Tether launched but lost track of is re-adopted; one started elsewhere is
 * shown as unmanaged and never terminated unless the user picks it.
 */
import { TetherError, UsageError } from '../core/errors';
import type { Ledger, LedgerResource, ResourceOwner } from '../core/ledger';
import type { Logger } from '../core/logger';
import type { CloudProviderType } from '../core/protocols';
import { accrue, type BillingRule, type BillingState, type StateEvent } from '../core/cost';
import { evaluateBudgets, periodStart, type Budget, type BudgetVerdict, type SpendItem } from '../core/budget';
import { CloudInstancePlugin, ledgerStateOf, remoteOf } from '../backends/cloud/cloudPlugin';
import type { CloudInstance, CloudProvider, InstanceType, LaunchRequest } from '../backends/cloud/provider';
import { readLedgerIdentity } from '../backends/cloud/marker';
import { originOf, reconcileCloud } from '../backends/cloud/reconcile';
import { BILLING_RULES, providerDescriptor, providerTitle } from '../backends/cloud/registry';
import { apiRatePerHour, billingRuleOf, isApiRemoteRecord } from './apiCost';
import { selfShutdownEffect, type SelfShutdownEffect, type ShutdownProvider } from '../backends/ssh/deadman';
import { evaluateAutostop, snooze, type AutostopAction, type AutostopState, type IdleObservation, type IdlePolicy } from '../core/autostop';

export type AutostopEvent = AutostopAction & { ledgerId: string; name: string };

/** The autostop state kept in a cloud record. */
export function autostopOf(r: LedgerResource): AutostopState {
  const a = r.remote?.metadata.autostop;
  return a && typeof a === 'object' ? { ...(a as AutostopState) } : {};
}

/** One instance as the tree, the status bar and `tether status --json` show it. */
export interface CloudView {
  /** The ledger record; null for an unmanaged instance. */
  ledgerId: string | null;
  /** Launched by this ledger (tagged with its record id and this ledger's id). */
  managed: boolean;
  /** Launched by Tether from another ledger (another machine, a teammate on the same key, another state folder): unmanaged here. */
  elsewhere?: boolean;
  provider: CloudProviderType;
  providerTitle: string;
  id: string | null;
  name: string;
  /** Provider status mapped onto Tether's words (provisioning, running, stopped, terminated...). */
  status: string;
  rawStatus: string;
  region?: string;
  instanceType?: string;
  gpuType?: string;
  gpuCount: number;
  /** USD/h recorded at launch (or quoted by the provider for unmanaged instances). */
  pricePerHour: number;
  /** USD accrued so far from the recorded state history (provider billing rules: see README). */
  costSoFar: number;
  /** Seconds since launch. */
  uptimeSeconds: number;
  sshCommand?: string;
  consoleUrl?: string;
  problem?: string;
  /** The provider can stop it (power off, keep the disk), not only terminate it. */
  canStop?: boolean;
  /** ISO time its time limit ends it (Set Time Limit…, --time-limit). */
  timeLimitAt?: string;
  /** The instance's dead man's switch, when one was asked for. */
  deadman?: { minutes: number; state: 'waiting for SSH' | 'armed' | 'fired' | 'error'; detail?: string; endsBilling: boolean; effect: string };
}

export interface CloudStatus {
  instances: CloudView[];
  /** Providers that could not be asked (bad key, unreachable...), one line each. */
  errors: Array<{ provider: string; message: string }>;
  /** Sum of $/h over billing instances. */
  costPerHour: number;
  costSoFar: number;
}

/** The state history of a cloud record as billing events (see src/core/cost.ts). */
export function billingEvents(r: LedgerResource, ended: boolean): StateEvent[] {
  const out: StateEvent[] = [];
  r.history.forEach((h, i) => {
    const last = i === r.history.length - 1;
    let state: BillingState;
    if (h.note?.startsWith('cloud:')) state = h.note.slice(6).split(' ')[0] as BillingState;
    else if (h.state === 'starting') state = 'provisioning';
    else if (h.state === 'running' || h.state === 'stopping') state = h.state;
    else state = ended && last ? 'terminated' : h.state === 'failed' ? 'terminated' : 'stopped';
    if (ended && last) state = 'terminated';
    out.push({ at: Date.parse(h.at), state });
  });
  return out;
}

/** USD a cloud record has cost so far, by its provider's billing rule. */
export function accruedCost(r: LedgerResource, rule: BillingRule, ended = false, nowMs = Date.now()): number {
  // An intent that failed without an instance (refused launch, name taken) never billed.
  if (ended && r.state === 'failed' && !r.remote?.instanceId) return 0;
  const price = r.remote?.estimatedCostPerHour ?? 0;
  const storage = Number(r.remote?.metadata.storagePerHour ?? 0) || 0;
  if (!price && !storage) return 0;
  return accrue(billingEvents(r, ended), [{ at: Date.parse(r.createdAt), computePerHour: price, storagePerHour: storage }], rule, nowMs).total;
}

/** USD a cloud record accrued from `sinceMs` (0: all time) to `nowMs`, by its provider's billing rule. */
export function accruedSince(r: LedgerResource, rule: BillingRule, ended: boolean, sinceMs: number, nowMs: number): number {
  const before = sinceMs > Date.parse(r.createdAt) ? accruedCost(r, rule, ended, Math.min(sinceMs, nowMs)) : 0;
  return Math.max(0, accruedCost(r, rule, ended, nowMs) - before);
}

/**
 * The SSH host spec of a running cloud record (`user@host`, with `:port` only when it is not 22,
 * so that ~/.ssh/config can still set the port, key, jump host... for that address), or undefined.
 */
export function cloudSshHost(r: LedgerResource, o: { withUser?: boolean } = {}): string | undefined {
  const host = r.remote?.sshHost;
  if (r.kind !== 'cloud' || r.state !== 'running' || !host || !/^[A-Za-z0-9.:_-]+$/.test(host)) return undefined;
  const user = r.remote?.metadata.sshUser;
  const u = o.withUser !== false && typeof user === 'string' && /^[A-Za-z0-9._-]+$/.test(user) ? `${user}@` : '';
  const port = r.remote?.sshPort ?? 22;
  if (port === 22) return `${u}${host}`;
  return `${u}${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** What a record keeps about its switch. */
export interface DeadmanState {
  timeoutSec: number;
  requestedAt: string;
  /** Set once armed on the instance. */
  armedAt?: string;
  pid?: number;
  startTime?: number;
  firedAt?: string;
  /** The last problem arming or pushing (one line), cleared by the next success. */
  error?: string;
}

const SHUTDOWN_PROVIDER: Record<string, ShutdownProvider> = { lambda_labs: 'lambda', runpod: 'runpod', vast_ai: 'vast', aws: 'aws' };

export function deadmanOf(r: LedgerResource): DeadmanState | undefined {
  const d = r.remote?.metadata.deadman;
  return d && typeof d === 'object' && typeof (d as DeadmanState).timeoutSec === 'number' ? (d as DeadmanState) : undefined;
}

/** What a self-shutdown does to this record's bill (see selfShutdownEffect). */
export function shutdownEffectOf(provider: string, shutdownBehavior?: unknown): SelfShutdownEffect | undefined {
  const p = SHUTDOWN_PROVIDER[provider];
  if (!p) {
    // A provider whose facts live in its descriptor (src/backends/cloud/<provider>/descriptor.ts).
    const facts = providerDescriptor(provider)?.selfShutdown;
    return facts ? { provider: provider as ShutdownProvider, ...facts, docs: [...facts.docs] } : undefined;
  }
  return selfShutdownEffect(p, shutdownBehavior === 'terminate' || shutdownBehavior === 'stop' ? { awsShutdownBehavior: shutdownBehavior } : {});
}

/** Records that an instance wants a dead man's switch (armed over SSH once it is reachable). */
export async function requestDeadman(ledger: Ledger, ledgerId: string, minutes: number, nowMs = Date.now()): Promise<void> {
  if (!(minutes * 60 >= 1)) throw new TetherError(`a dead man's switch needs at least 1 second, got ${minutes} min`, { remedy: 'Pick a time in minutes.' });
  await ledger.update((b) => {
    const r = b.resources.find((x) => x.id === ledgerId);
    if (!r?.remote || r.kind !== 'cloud') throw new TetherError(`no cloud record ${ledgerId}`, { remedy: 'Pick an instance Tether launched.' });
    const state: DeadmanState = { timeoutSec: Math.round(minutes * 60), requestedAt: new Date(nowMs).toISOString() };
    r.remote.metadata = { ...r.remote.metadata, deadman: state };
  }, `dead man's switch for ${ledgerId}`);
}

function deadmanView(r: LedgerResource): Pick<CloudView, 'deadman'> {
  const d = deadmanOf(r);
  if (!d) return {};
  const eff = shutdownEffectOf(r.remote!.provider, r.remote!.metadata.shutdownBehavior);
  const state = d.firedAt ? 'fired' : d.error ? 'error' : d.armedAt ? 'armed' : 'waiting for SSH';
  const detail = d.firedAt ? `fired at ${d.firedAt}` : d.error;
  return { deadman: { minutes: Math.round(d.timeoutSec / 60), state, ...(detail ? { detail } : {}), endsBilling: eff?.endsBilling ?? false, effect: eff?.text ?? '' } };
}

/** `ssh [-p PORT] -- [user@]host` (`--`: a host spelled like an option stays a host). */
function sshCommand(host: string, port: number | undefined, user: unknown): string {
  return `ssh ${port && port !== 22 ? `-p ${port} ` : ''}-- ${typeof user === 'string' && user ? `${user}@` : ''}${host}`;
}

/** `ssh [-p PORT] -- [user@]host` for a cloud record's address. */
export function sshCommandOf(r: LedgerResource, o: { withUser?: boolean } = {}): string | undefined {
  const remote = r.remote;
  if (!remote?.sshHost) return undefined;
  return sshCommand(remote.sshHost, remote.sshPort, o.withUser !== false ? remote.metadata.sshUser : undefined);
}

const BILLING = new Set(['provisioning', 'running', 'stopping']);

/** A launch's name is taken by an active instance of this ledger. */
class NameTakenError extends UsageError {}

/** Why Tether will not act on an unmanaged instance unless the user picks it. */
export function notOursMessage(view: Pick<CloudView, 'name' | 'id' | 'elsewhere'>): string {
  return view.elsewhere
    ? `${view.name} was launched by Tether elsewhere (another machine, a teammate on the same account, or another state folder), not by this ledger`
    : `${view.name} was not launched by Tether`;
}

/**
 * The one instance NAME|ID names: an instance id or ledger id, else a name. A name several
 * instances carry is refused, with their ids (never one of them picked silently).
 */
export function pickCloudView(instances: CloudView[], which: string): CloudView {
  const exact = instances.filter((i) => i.ledgerId === which || i.id === which);
  const found = exact.length ? exact : instances.filter((i) => i.name === which);
  if (!found.length) throw new UsageError(`no cloud instance named "${which}"`, 'See `tether status` for the names and ids.');
  if (found.length > 1) {
    const list = found.map((i) => `${i.id ?? '(no instance id yet)'} (${i.providerTitle}, ${i.managed ? `ledger id ${i.ledgerId}` : i.elsewhere ? 'Tether-launched elsewhere' : 'unmanaged'}, ${i.status})`);
    throw new UsageError(`"${which}" is ambiguous: ${found.length} cloud instances match: ${list.join('; ')}`, 'Pass the instance id (or ledger id) instead of the name.');
  }
  return found[0]!;
}

/** The one cloud record NAME|ID names (ledger id, instance id, else name); an ambiguous name is refused with the ids. */
export function pickCloudRecord(records: LedgerResource[], which: string): LedgerResource {
  const cloud = records.filter((r) => r.kind === 'cloud');
  const exact = cloud.filter((r) => r.id === which || r.remote?.instanceId === which);
  const found = exact.length ? exact : cloud.filter((r) => r.plugin === which);
  if (!found.length) throw new UsageError(`no cloud instance of Tether's named "${which}"`, 'See `tether status` for the names and ids.');
  if (found.length > 1) {
    const list = found.map((r) => `ledger id ${r.id} (${providerTitle(r.remote?.provider ?? '')} ${r.remote?.instanceId ?? '(no instance id yet)'}, ${r.state})`);
    throw new UsageError(`"${which}" is ambiguous: ${found.length} cloud instances match: ${list.join('; ')}`, 'Pass the instance id (or ledger id) instead of the name.');
  }
  return found[0]!;
}

export class CloudManager {
  constructor(
    private readonly ledger: Ledger,
    private readonly owner: ResourceOwner,
    private readonly providers: () => CloudProvider[],
    private readonly log: Logger,
    /** The clock (tests simulate it). */
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Applies budgets to the instances of a status: warns through the verdicts, and terminates
   * (autoTerminate) what would cross a cap before the next poll, recording why in the ledger.
   */
  async enforceBudgets(status: CloudStatus, budgets: readonly Budget[], pollMs: number): Promise<BudgetVerdict[]> {
    const now = this.now();
    const body = this.ledger.read();
    const items: SpendItem[] = [];
    // A provider without an account here still counts (its spend is real), though Tether cannot terminate it.
    const ruleOf = (provider: string) => this.providers().find((x) => x.type === provider)?.billing ?? BILLING_RULES[provider];
    const counted = new Set<string>();
    for (const v of status.instances) {
      const rec = v.managed && v.ledgerId ? body.resources.find((r) => r.id === v.ledgerId) : undefined;
      const rule = ruleOf(v.provider);
      if (!rec || !rule) continue;
      counted.add(rec.id);
      items.push({
        ledgerId: rec.id,
        provider: v.provider,
        name: v.name,
        ratePerHour: BILLING.has(v.status) ? v.pricePerHour : 0,
        spentInPeriod: (period) => accruedSince(rec, rule, false, periodStart(period, now), now),
      });
    }
    // Everything else billed in the period counts too: records that ended (terminated earlier
    // today, by hand, by a budget or a time limit) and open records the provider did not list
    // this poll. They burn nothing Tether can stop from here, so their rate is 0.
    const others = [...body.resources.filter((r) => !counted.has(r.id)).map((r) => ({ r, ended: false })), ...body.ended.map((r) => ({ r, ended: true }))];
    for (const { r, ended } of others) {
      // An API plugin's resource bills at its recorded rate (its plugin, not Tether, may terminate it).
      const rule = r.kind === 'cloud' && r.remote ? ruleOf(r.remote.provider) : billingRuleOf(r);
      if (!rule) continue;
      items.push({
        ledgerId: r.id,
        provider: r.remote!.provider,
        name: r.plugin,
        ratePerHour: !ended && isApiRemoteRecord(r) ? apiRatePerHour(r) : 0,
        spentInPeriod: (period) => accruedSince(r, rule, ended, periodStart(period, now), now),
      });
    }
    const verdicts = evaluateBudgets(budgets, items, pollMs);
    for (const verdict of verdicts) {
      for (const id of verdict.terminate) {
        const v = status.instances.find((x) => x.ledgerId === id);
        if (!v || !this.ledger.read().resources.some((r) => r.id === id)) continue;
        const why = `budget "${verdict.budget.name}" ($${verdict.budget.limitUsd.toFixed(2)} per ${verdict.budget.period}): $${verdict.spent.toFixed(2)} spent, $${verdict.projected.toFixed(2)} by the next poll`;
        this.log.warn(`terminating ${v.name}: ${why}`);
        await this.ledger.patch(id, {}, `terminated by ${why}`);
        try {
          await this.terminate(v);
        } catch (err) {
          // One failure must not spare the others; the next poll tries again.
          const line = err instanceof TetherError ? err.oneLine() : String(err);
          this.log.error(`could not terminate ${v.name} for ${why}: ${line}`);
          await this.ledger.patch(id, {}, `termination failed: ${line}`).catch(() => undefined);
        }
      }
    }
    return verdicts;
  }

  /**
   * Idle autostop and time limits, once per poll: keeps each record's idle clock in the ledger,
   * returns the warnings due, and terminates what is due (recording why), like budgets do.
   */
  async enforceAutostop(status: CloudStatus, observe: (ledgerId: string) => IdleObservation | undefined, policy: IdlePolicy): Promise<AutostopEvent[]> {
    const now = this.now();
    const events: AutostopEvent[] = [];
    const records = this.ledger.read().resources;
    for (const v of status.instances) {
      if (!v.managed || !v.ledgerId || v.status !== 'running') continue;
      const rec = records.find((r) => r.id === v.ledgerId);
      if (!rec?.remote) continue;
      const before = autostopOf(rec);
      const { state, action } = evaluateAutostop(before, observe(rec.id), policy, now);
      if (JSON.stringify(state) !== JSON.stringify(before)) await this.setAutostop(rec.id, state);
      if (!action) continue;
      events.push({ ...action, ledgerId: rec.id, name: v.name });
      if (action.phase === 'act') {
        // Idle instances are stopped when the policy says so and the provider can; otherwise (and at a time limit) terminated.
        if (action.kind === 'idle' && policy.action === 'stop' && this.canStop(v)) {
          this.log.warn(`stopping ${v.name}: ${action.reason}`);
          await this.stop(v, { why: `stopped by autostop: ${action.reason}` });
        } else {
          this.log.warn(`terminating ${v.name}: ${action.reason}`);
          await this.ledger.patch(rec.id, {}, `terminated by autostop: ${action.reason}`);
          await this.terminate(v);
        }
      }
    }
    return events;
  }

  private async setAutostop(ledgerId: string, state: AutostopState): Promise<void> {
    await this.ledger.update((b) => {
      const r = b.resources.find((x) => x.id === ledgerId);
      if (r?.remote) r.remote.metadata = { ...r.remote.metadata, autostop: { ...state } };
    }, `autostop state of ${ledgerId}`);
  }

  /** Sets (or with undefined, clears) a resource's time limit. */
  async setTimeLimit(ledgerId: string, atMs: number | undefined): Promise<void> {
    const rec = this.ledger.read().resources.find((r) => r.id === ledgerId);
    if (!rec?.remote) throw new TetherError(`no cloud record ${ledgerId}`, { remedy: 'Pick an instance Tether launched.' });
    const { timeLimitAt: _, warnedFor: __, ...rest } = autostopOf(rec);
    await this.setAutostop(ledgerId, atMs === undefined ? rest : { ...rest, timeLimitAt: atMs });
  }

  /** The user's "keep it running" after an idle warning. */
  async snoozeIdle(ledgerId: string): Promise<void> {
    const rec = this.ledger.read().resources.find((r) => r.id === ledgerId);
    if (rec?.remote) await this.setAutostop(ledgerId, snooze(autostopOf(rec), this.now()));
  }

  provider(type: string): CloudProvider {
    const p = this.providers().find((x) => x.type === type);
    if (!p) {
      throw new TetherError(`no ${type} account is configured`, {
        remedy: 'Run "Tether: Set Cloud API Key…" (or set the provider\'s API key environment variable for the CLI).',
      });
    }
    return p;
  }

  async catalogue(type: string): Promise<InstanceType[]> {
    return this.provider(type).listInstanceTypes();
  }

  /** Polls every configured provider once and reconciles its list with the ledger. */
  async status(): Promise<CloudStatus> {
    const instances: CloudView[] = [];
    const errors: CloudStatus['errors'] = [];
    const self = this.selfId();
    await Promise.all(
      this.providers().map(async (p) => {
        let list: CloudInstance[];
        try {
          list = await p.listInstances();
        } catch (err) {
          errors.push({ provider: p.title, message: err instanceof TetherError ? err.oneLine() : String(err) });
          // Keep showing what the ledger knows, with the problem.
          for (const r of this.records(p.type)) instances.push({ ...this.view(p, r, undefined), problem: `${p.title} did not answer: ${err instanceof Error ? err.message : String(err)}` });
          return;
        }
        await this.reconcile(p, list, self);
        const records = this.records(p.type);
        for (const r of records) instances.push(this.view(p, r, list.find((i) => i.id === r.remote?.instanceId)));
        const recorded = new Set(records.map((r) => r.remote?.instanceId));
        const body = this.ledger.read();
        for (const i of list) {
          if (i.status === 'terminated' || recorded.has(i.id)) continue;
          const origin = originOf(i, self, body);
          // This ledger's, without a record: terminated by Tether a moment ago and still shutting down.
          if (origin === 'this') continue;
          instances.push(this.unmanagedView(p, i, origin === 'elsewhere'));
        }
      }),
    );
    // Records of a provider with no account configured now (key removed, other machine): still
    // shown, with what the ledger knows and why Tether cannot check them — never forgotten.
    const configured = new Set(this.providers().map((p) => p.type));
    for (const r of this.ledger.read().resources) {
      const type = r.kind === 'cloud' ? r.remote?.provider : undefined;
      if (!type || configured.has(type) || !BILLING_RULES[type]) continue;
      const title = providerTitle(type);
      const stub = { type, title, billing: BILLING_RULES[type]!, consoleUrl: () => '' } as unknown as CloudProvider;
      instances.push({
        ...this.view(stub, r, undefined),
        problem: `no ${title} account is configured here, so Tether cannot check or terminate it: run "Tether: Set Cloud API Key…" (CLI: the provider's API key variable)`,
      });
    }
    const billing = instances.filter((i) => i.managed && BILLING.has(i.status));
    return {
      instances,
      errors,
      costPerHour: billing.reduce((s, i) => s + i.pricePerHour, 0),
      costSoFar: instances.reduce((s, i) => s + i.costSoFar, 0),
    };
  }

  /** This ledger's id (marker.ts), or undefined when it has none yet (or it cannot be read: said in the log). */
  private selfId(): string | undefined {
    try {
      return readLedgerIdentity(this.ledger.stateDir);
    } catch (err) {
      this.log.warn(err instanceof TetherError ? err.oneLine() : String(err));
      return undefined;
    }
  }

  private records(type: string): LedgerResource[] {
    return this.ledger.read().resources.filter((r) => r.kind === 'cloud' && r.remote?.provider === type);
  }

  /** Matches the provider's list with the ledger (adopt by marker, end the gone), then records state changes. */
  private async reconcile(p: CloudProvider, list: CloudInstance[], self: string | undefined): Promise<void> {
    const result = await reconcileCloud(p, this.ledger, { list, ...(self ? { self } : {}) });
    for (const a of result.adopted) this.log.warn(`${p.title}: instance ${a.id} carries Tether's marker but was missing from the ledger; re-adopted`);
    for (const id of result.gone) this.log.info(`${p.title}: ledger record ${id} closed: its instance is gone`);
    // State history (what accrual reads): one event per observed change.
    const changed = this.records(p.type).flatMap((r) => {
      const inst = list.find((i) => i.id === r.remote?.instanceId);
      return inst && inst.rawStatus !== r.remote?.metadata.providerStatus ? [{ r, inst }] : [];
    });
    if (!changed.length) return;
    await this.ledger.update((b) => {
      for (const { r, inst } of changed) {
        const cur = b.resources.find((x) => x.id === r.id);
        if (!cur?.remote) continue;
        cur.remote = remoteOf(inst, cur.remote);
        const st = ledgerStateOf(inst.status);
        const now = new Date().toISOString();
        cur.state = st;
        cur.updatedAt = now;
        cur.history.push({ at: now, state: st, note: `cloud:${inst.status}` });
      }
    }, 'recording cloud states');
  }

  private view(p: CloudProvider, r: LedgerResource, i: CloudInstance | undefined): CloudView {
    const remote = r.remote!;
    const status = i?.status ?? (r.state === 'starting' ? 'provisioning' : r.state);
    const host = i?.sshHost ?? remote.sshHost;
    const user = i?.sshUser ?? (remote.metadata.sshUser as string | undefined);
    return {
      ledgerId: r.id,
      managed: true,
      provider: p.type,
      providerTitle: p.title,
      id: i?.id ?? remote.instanceId ?? null,
      name: r.plugin,
      status,
      rawStatus: i?.rawStatus ?? String(remote.metadata.providerStatus ?? remote.status),
      ...(remote.region ? { region: remote.region } : {}),
      ...(remote.resourceType ? { instanceType: remote.resourceType } : {}),
      ...(remote.gpuType ? { gpuType: remote.gpuType } : {}),
      gpuCount: remote.gpuCount,
      pricePerHour: remote.estimatedCostPerHour ?? 0,
      costSoFar: accruedCost(r, p.billing, false, this.now()),
      uptimeSeconds: Math.max(0, (this.now() - Date.parse(r.createdAt)) / 1000),
      ...(host ? { sshCommand: sshCommand(host, remote.sshPort, user) } : {}),
      ...(i ? { consoleUrl: p.consoleUrl(i) } : {}),
      ...deadmanView(r),
      ...(typeof p.stop === 'function' ? { canStop: true } : {}),
      // A provider's warning about what still bills (Azure: powered off but still allocated).
      ...(typeof i?.metadata.billingWarning === 'string' ? { problem: i.metadata.billingWarning } : {}),
      ...(autostopOf(r).timeLimitAt ? { timeLimitAt: new Date(autostopOf(r).timeLimitAt!).toISOString() } : {}),
    };
  }

  private unmanagedView(p: CloudProvider, i: CloudInstance, elsewhere: boolean): CloudView {
    return {
      ledgerId: null,
      managed: false,
      ...(elsewhere ? { elsewhere: true } : {}),
      provider: p.type,
      providerTitle: p.title,
      id: i.id,
      name: i.name ?? i.id,
      status: i.status,
      rawStatus: i.rawStatus,
      ...(i.region ? { region: i.region } : {}),
      ...(i.instanceType ? { instanceType: i.instanceType } : {}),
      ...(i.gpuType ? { gpuType: i.gpuType } : {}),
      gpuCount: i.gpuCount,
      pricePerHour: i.pricePerHour ?? 0,
      costSoFar: 0,
      uptimeSeconds: i.launchedAt ? Math.max(0, (Date.now() - Date.parse(i.launchedAt)) / 1000) : 0,
      ...(i.sshHost ? { sshCommand: sshCommand(i.sshHost, i.sshPort, i.sshUser) } : {}),
      consoleUrl: p.consoleUrl(i),
      problem: elsewhere
        ? 'Tether-launched elsewhere (another machine, a teammate on the same account, or another state folder): shown, never terminated, budgeted or autostopped here unless you pick it'
        : 'not launched by Tether: shown, never terminated unless you pick it',
    };
  }

  /**
   * Launches one instance through {@link CloudInstancePlugin}: the intent (with the price) is in
   * the ledger before the provider is called, the instance carries the ledger id, and an
   * ambiguous failure keeps the record until a poll proves what happened.
   *
   * Names are unique among this ledger's active cloud instances (so NAME picks one): a `name`
   * in use is refused before anything is written; without a name the instance type is used,
   * with `-2`, `-3`… added when taken. Two launches racing for one name: the earlier intent wins,
   * the other is ended before its launch call.
   */
  async provision(
    type: string,
    req: Omit<LaunchRequest, 'ledgerId' | 'name' | 'owner'> & { name?: string; pricePerHour?: number; gpuCount?: number; gpuType?: string; timeLimitHours?: number; deadmanMinutes?: number },
  ): Promise<CloudView> {
    const p = this.provider(type);
    const { timeLimitHours, deadmanMinutes, name: asked, ...launch } = req;
    if (asked !== undefined && !asked.trim()) throw new UsageError('an instance name cannot be empty', 'Pass a name, or leave it out to use the instance type.');
    if (asked !== undefined && /[\u0000-\u001f\u007f-\u009f]/.test(asked)) {
      throw new UsageError(`the instance name ${JSON.stringify(asked)} holds a control character (newline, tab, escape…)`, 'Use letters, digits, ".", "_" and "-".');
    }
    // With a dead man's switch, an EC2 instance is launched so that its self-shutdown terminates it (and its bill).
    const behaviour = providerDescriptor(p.type)?.deadmanShutdownBehavior;
    if (deadmanMinutes && behaviour && !launch.shutdownBehavior) launch.shutdownBehavior = behaviour;
    if (asked !== undefined) this.refuseTakenName(asked);
    let plugin: CloudInstancePlugin | undefined;
    for (let round = 0; !plugin; round++) {
      const name = asked ?? this.freeName(req.instanceType);
      const attempt = new CloudInstancePlugin({
        provider: p,
        ledger: this.ledger,
        name,
        log: (l) => this.log.info(l),
        // Under the race: an earlier intent of the same name wins; this one is ended unlaunched.
        beforeLaunch: (rec) => this.refuseTakenName(name, rec),
      });
      try {
        await attempt.provisionRemoteResource({ ...launch, name });
        plugin = attempt;
      } catch (err) {
        if (!(err instanceof NameTakenError) || asked !== undefined || round >= 20) throw err;
      }
    }
    const rec = this.ledger.read().resources.find((r) => r.id === plugin!.ledgerId);
    if (!rec) throw new TetherError(`${p.title}: the launch of ${plugin.name} was not recorded`, { remedy: 'See the Tether log.' });
    if (!rec.owner) await this.ledger.patch(rec.id, { owner: this.owner });
    if (timeLimitHours && timeLimitHours > 0) await this.setTimeLimit(rec.id, Date.parse(rec.createdAt) + timeLimitHours * 3_600_000);
    if (deadmanMinutes && deadmanMinutes > 0) await requestDeadman(this.ledger, rec.id, deadmanMinutes, this.now());
    return this.view(p, rec, await p.describe(rec.remote?.instanceId ?? '').catch(() => undefined));
  }

  /** Active cloud records of this ledger (all providers) named `name`; with `mine`, only those before it (the race's winners). */
  private namedRecords(name: string, mine?: LedgerResource): LedgerResource[] {
    const all = this.ledger.read().resources;
    // "Earlier" is the order intents were written in (appended under the ledger lock), never a
    // clock reading: two launches in the same millisecond still agree on which one came first.
    const myIndex = mine ? all.findIndex((r) => r.id === mine.id) : -1;
    const before = (i: number) => !mine || myIndex < 0 || i < myIndex;
    return all.filter((r, i) => r.kind === 'cloud' && r.plugin === name && r.id !== mine?.id && before(i));
  }

  private refuseTakenName(name: string, mine?: LedgerResource): void {
    const taken = this.namedRecords(name, mine);
    if (!taken.length) return;
    const what = taken.map((r) => `${providerTitle(r.remote?.provider ?? '')} ${r.remote?.instanceId ?? '(launching)'}, ledger id ${r.id}`).join('; ');
    throw new NameTakenError(`a cloud instance named "${name}" is already in this ledger (${what})`, 'Pick another --name, or terminate that instance first.');
  }

  /** The instance type, or the first of `type-2`, `type-3`… no active record uses. */
  private freeName(base: string): string {
    for (let n = 1; ; n++) {
      const name = n === 1 ? base : `${base}-${n}`;
      if (!this.namedRecords(name).length) return name;
    }
  }

  /** Terminates an instance. Unmanaged ones only with `picked` (the user chose it by hand). */
  async terminate(view: CloudView, opts: { picked?: boolean } = {}): Promise<void> {
    if (!view.managed && !opts.picked) {
      throw new TetherError(notOursMessage(view), { remedy: 'Pick it by hand in the Cloud view to terminate it.' });
    }
    const p = this.provider(view.provider);
    const rec = view.ledgerId ? this.ledger.read().resources.find((r) => r.id === view.ledgerId) : undefined;
    if (rec?.remote?.instanceId) {
      await CloudInstancePlugin.fromRecord({ provider: p, ledger: this.ledger, log: (l) => this.log.info(l) }, rec).terminateRemoteResource();
      return;
    }
    if (view.id) await p.terminate(view.id);
    if (view.ledgerId) await this.ledger.end(view.ledgerId, 'stopped', 'terminated by the user');
  }

  /** True when the instance's provider can stop (power off, keep the disk) rather than only terminate. */
  canStop(view: Pick<CloudView, 'provider'>): boolean {
    return typeof this.providers().find((x) => x.type === view.provider)?.stop === 'function';
  }

  /**
   * Stops an instance where the provider can (its disk keeps billing; the record stays in the
   * ledger). Unmanaged ones only with `picked`.
   */
  async stop(view: CloudView, opts: { picked?: boolean; why?: string } = {}): Promise<void> {
    if (!view.managed && !opts.picked) {
      throw new TetherError(notOursMessage(view), { remedy: 'Pick it by hand in the Cloud view to stop it.' });
    }
    const p = this.provider(view.provider);
    if (!p.stop) throw new TetherError(`${p.title} cannot stop an instance, only terminate it`, { remedy: 'Terminate it to end its billing.' });
    if (!view.id) throw new TetherError(`${view.name} has no instance id yet`, { remedy: 'Wait until the launch is confirmed, then stop it.' });
    await p.stop(view.id);
    if (view.ledgerId) await this.ledger.patch(view.ledgerId, {}, opts.why ?? 'stop requested by the user');
  }
}
