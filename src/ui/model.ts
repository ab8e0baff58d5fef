/**
 * What the UI renders: the engines of the open workspace folders plus the plugins other
 * extensions registered, polled into one immutable snapshot. The ledger and /proc are the
 * source of truth; a snapshot is only the latest reading of them, replaced on every poll.
 */
import * as vscode from 'vscode';
import type { RegisterOptions, TetherApi, TetherDisposable } from '../api';
import { ExitCode, TetherError, describeError } from '../core/errors';
import { otherMachineOf, type LedgerResource } from '../core/ledger';
import type { Logger } from '../core/logger';
import { isSameProcessAlive, type ProcessIdentity } from '../core/procfs';
import { localManagedIdentities, pidsAreLocal } from '../core/localPids';
import { stopProcessTree } from '../core/treeKiller';
import { resolveGraceMs } from '../core/grace';
import { ProcessTracker, type ProcessInfo } from '../core/processTracker';
import {
  hasActiveCloudResources,
  isCloudAware,
  isLifecycleAware,
  type CloudAwarePlugin,
  type LifecycleAwarePlugin,
  type RemoteResourceInfo,
} from '../core/protocols';
import type { StopReport } from '../core/treeKiller';
import { Engine, createSshMonitor, defaultShutdownAction, type CloudProvider, type PluginStatus, type SshConnectionOptions, type StatusReport } from '../workspace/engine';
import type { CloudStatus } from '../fleet/cloud';
import type { Budget, BudgetVerdict } from '../core/budget';
import type { PeriodSpend, SpendPeriod } from '../fleet/costReport';
import { DEFAULT_IDLE_POLICY, type IdlePolicy } from '../core/autostop';
import { policyTick, type PolicyTickResult } from '../fleet/policyTick';
import { PolicyLease } from '../fleet/leader';
import { CloudPoll, sshTick, type TickRequest } from '../fleet/snapshot';
import type { AutostopEvent } from '../fleet/cloud';
import type { DeadmanEvent } from '../fleet/deadmanKeeper';
import { apiRatePerHour, billingRuleOf, recordApiRemote } from '../fleet/apiCost';
import { accruedCost } from '../fleet/cloud';

export interface FolderView {
  folder: string;
  name: string;
  report?: StatusReport;
  error?: string;
}

export interface ApiPluginView {
  name: string;
  title: string;
  description?: string;
  lifecycle: boolean;
  cloud: boolean;
  executionMode?: string;
  processes: ProcessInfo[];
  remote?: RemoteResourceInfo;
  /** USD/h while its resource is active. */
  costPerHour: number;
  costSoFar: number;
  /** The ledger record of its remote resource (src/fleet/apiCost.ts): its cost is in the ledger's spend. */
  costLedgerId?: string;
  error?: string;
}

export interface Snapshot {
  seq: number;
  at: number;
  folders: FolderView[];
  apiPlugins: ApiPluginView[];
  /** Orphans from every folder, once each. */
  orphans: PluginStatus[];
  /** Running resources (plugins with live processes, active cloud resources). */
  running: number;
  costPerHour: number;
  costSoFar: number;
  /** Budgets as of this poll (what each has spent, the threshold reached). */
  budgets: BudgetVerdict[];
  /** Cloud instances (every folder sees the same accounts: taken from the first report). */
  cloud: CloudStatus | undefined;
  /** Spend in the current day or month and the burn rate, from the ledger (the status bar ticks from it). */
  spend?: PeriodSpend;
  /** Idle-autostop and time-limit warnings and actions of this poll (each given once). */
  autostop?: AutostopEvent[];
  /** Dead man's switch events of this poll (armed, fired, re-armed, error). */
  deadman?: DeadmanEvent[];
  /** Where this poll's cloud instances came from: this window listed the providers, or it rendered the leader's snapshot (src/fleet/snapshot.ts). */
  cloudSource?: 'listed' | 'snapshot';
}

export type RefreshReason = 'interval' | 'event' | 'config' | 'manual' | 'action' | 'startup';

interface ApiEntry {
  plugin: LifecycleAwarePlugin | CloudAwarePlugin;
  options: RegisterOptions;
  ledgerId?: string;
  known: ProcessIdentity[];
  activeSince?: number;
  accrued: number;
  lastRate: number;
  /** The ledger record of its remote resource, once it reported one. */
  costId?: string;
}

const key = (p: ProcessIdentity) => `${p.pid}:${p.startTime}`;

export class TetherModel implements vscode.Disposable {
  private readonly engines = new Map<string, Engine>();
  private readonly api = new Map<string, ApiEntry>();
  private readonly tracker = new ProcessTracker();
  private readonly emitter = new vscode.EventEmitter<Snapshot>();
  readonly onDidChange = this.emitter.event;
  private current: Snapshot = { seq: 0, at: 0, folders: [], apiPlugins: [], orphans: [], running: 0, costPerHour: 0, costSoFar: 0, budgets: [], cloud: undefined };
  private inflight: Promise<Snapshot> | undefined;
  private again = false;

  /** One SSH connection per host for every folder's engine. */
  private readonly sshMonitor: ReturnType<typeof createSshMonitor>;

  constructor(
    private readonly log: Logger,
    private readonly stateDir: () => string | undefined,
    sshOptions: SshConnectionOptions = {},
    private readonly extraHosts: () => string[] = () => [],
    private readonly cloudProviders: () => CloudProvider[] = () => [],
    private readonly budgets: () => { budgets: Budget[]; pollMs: number; spendPeriod?: SpendPeriod; idle?: IdlePolicy } = () => ({ budgets: [], pollMs: 2000 }),
  ) {
    this.sshMonitor = createSshMonitor(sshOptions, log);
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /** Re-creates engines for the current workspace folders (and state folder setting). */
  setFolders(folders: readonly string[]): void {
    try {
      this.setFoldersOrThrow(folders);
      this.lastFolderError = '';
    } catch (err) {
      // An unsafe state folder (another user can write to it) is refused: said once, no engine made.
      const line = describeError(err);
      this.log.error(line);
      if (line !== this.lastFolderError) void vscode.window.showErrorMessage(`Tether: ${line}`);
      this.lastFolderError = line;
    }
  }
  private lastFolderError = '';

  private setFoldersOrThrow(folders: readonly string[]): void {
    const sd = this.stateDir();
    for (const [f, e] of this.engines) {
      if (!folders.includes(f) || (sd !== undefined && e.ledger.stateDir !== sd)) this.engines.delete(f);
    }
    for (const f of folders) {
      if (!this.engines.has(f)) {
        this.engines.set(
          f,
          new Engine({
            workspace: f,
            ownerKind: 'vscode',
            log: this.log,
            tracker: this.tracker,
            sshMonitor: this.sshMonitor,
            extraHosts: this.extraHosts,
            cloudProviders: this.cloudProviders,
            deadmanAction: () => vscode.workspace.getConfiguration('tether').get<string>('cloud.deadmanAction', '').trim() || defaultShutdownAction(),
            trusted: () => vscode.workspace.isTrusted,
            // Every folder of this window shares one cloud reading per poll, itself shared by every window (one poller per user).
            cloudStatus: () => this.cloudForEngine(),
            ...(sd ? { stateDir: sd } : {}),
          }),
        );
      }
    }
  }

  private interactions = 0;
  /** True while a user action runs: only then may SSH ask about passphrases and host keys. */
  get isInteractive(): boolean {
    return this.interactions > 0;
  }
  /** Runs a user-initiated action (prompts allowed); background polls never prompt. */
  async interactive<T>(fn: () => PromiseLike<T>): Promise<T> {
    this.interactions++;
    try {
      return await fn();
    } finally {
      this.interactions--;
    }
  }

  /** Drops a cached key passphrase (changed or deleted in SecretStorage, maybe by another window). */
  forgetSshPassphrase(keyFile: string): void {
    this.sshMonitor.pool.forgetPassphrase(keyFile);
  }

  /** The engine of the first folder: API plugins, orphans and cloud are per user, not per folder. */
  private get primaryEngine(): Engine | undefined {
    return this.engines.values().next().value;
  }

  engine(folder: string): Engine {
    const e = this.engines.get(folder);
    if (!e) throw new TetherError(`${folder} is not an open workspace folder`, { remedy: 'Open the folder in VS Code first.' });
    return e;
  }

  get folders(): string[] {
    return [...this.engines.keys()];
  }

  /** True while anything is tracked: polling is only needed then. */
  get hasTracked(): boolean {
    return this.current.running > 0 || this.current.orphans.length > 0 || this.api.size > 0;
  }

  /** Something costs money now, or a dead man's switch needs pushing: worth polling even unfocused. */
  get isBilling(): boolean {
    const s = this.current;
    return s.costPerHour > 0 || !!s.cloud?.instances.some((i) => i.managed && (i.status === 'running' || i.status === 'provisioning' || !!i.deadman));
  }

  /** Polls everything; concurrent callers share one poll (plus at most one queued). */
  refresh(reason: RefreshReason): Promise<Snapshot> {
    // After a user's action (or a manual refresh) this window lists the providers itself at once.
    if (reason === 'action' || reason === 'manual') this.wantFresh = true;
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      try {
        let snap: Snapshot;
        do {
          this.again = false;
          snap = await this.poll();
        } while (this.again);
        this.current = snap;
        this.emitter.fire(snap);
        this.log.trace(`refresh (${reason}): ${snap.running} running`);
        return snap;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  private async poll(): Promise<Snapshot> {
    const b = this.budgets();
    const firstEngine = this.primaryEngine;
    // The leader (one per state folder among windows and `tether watch`) lists the providers and
    // publishes; this window renders its snapshot otherwise (src/fleet/snapshot.ts).
    let leader = false;
    let cloudSource: Snapshot['cloudSource'];
    let ssh: ReturnType<typeof sshTick> | undefined;
    if (firstEngine) {
      const lead = await this.leadPolicy(firstEngine.ledger.stateDir, b.pollMs);
      leader = lead.leader;
      const fresh = this.wantFresh;
      this.wantFresh = false;
      // Each SSH host is polled once a tick: by the leader for every window (and once for all this window's folders).
      ssh = sshTick(this.sshMonitor, { stateDir: firstEngine.ledger.stateDir, kind: 'vscode', leader, intervalMs: b.pollMs, fresh, log: this.log });
      this.tickCloud = this.cloudTick(firstEngine, { leader, intervalMs: b.pollMs, fresh, ...(lead.holderIntervalMs !== undefined ? { leaderIntervalMs: lead.holderIntervalMs } : {}) }).then((t) => {
        cloudSource = t.source;
        return t.cloud;
      });
      this.tickCloud.catch(() => undefined); // each engine reports it
    }
    let folders: FolderView[];
    try {
      folders = await Promise.all(
        [...this.engines.entries()].map(async ([folder, engine]) => {
          const name = folder.split(/[\\/]/).pop() ?? folder;
          try {
            return { folder, name, report: await engine.status() };
          } catch (err) {
            return { folder, name, error: describeError(err) };
          }
        }),
      );
    } finally {
      this.tickCloud = undefined;
    }
    await ssh?.end();
    const apiPlugins = await Promise.all([...this.api.values()].map((e) => this.pollApi(e)));
    const seen = new Set<string>();
    const orphans: PluginStatus[] = [];
    for (const f of folders) {
      for (const o of f.report?.orphans ?? []) {
        const k = o.ledgerId ?? o.name;
        if (seen.has(k)) continue;
        seen.add(k);
        orphans.push(o);
      }
    }
    const localRunning = folders.reduce((n, f) => n + (f.report?.plugins.filter((p) => p.processes.length > 0).length ?? 0), 0);
    const foreignOrphans = orphans.filter((o) => !folders.some((f) => f.report?.plugins.some((p) => p.ledgerId === o.ledgerId)));
    // Every folder sees the same cloud accounts: count them once.
    const cloud = folders.find((f) => f.report)?.report?.cloud;
    // The policy tick (src/fleet/policyTick.ts): only the leader among windows and `tether watch` acts.
    let tick: PolicyTickResult = { budgets: [], autostop: [], deadman: [], errors: [] };
    if (firstEngine) {
      tick = await policyTick(
        { cloud: firstEngine.cloud, deadman: firstEngine.deadman, ledger: firstEngine.ledger, log: this.log },
        { cloud, reports: folders.flatMap((f) => (f.report ? [f.report] : [])), policy: { budgets: b.budgets, idleAutostop: b.idle ?? DEFAULT_IDLE_POLICY }, pollMs: b.pollMs, spendPeriod: b.spendPeriod ?? 'day', leader },
      );
    }
    const { budgets, autostop, deadman, spend } = tick;
    if (firstEngine) await this.enforceApiBudgets(firstEngine, leader ? budgets : this.ownApiTerminations(firstEngine, budgets));
    const cloudRunning = cloud?.instances.filter((i) => i.managed && (i.status === 'running' || i.status === 'provisioning')).length ?? 0;
    const apiRunning = apiPlugins.filter((a) => a.processes.length > 0 || a.costPerHour > 0 || a.remote?.status === 'running').length;
    return {
      seq: this.current.seq + 1,
      at: Date.now(),
      folders,
      apiPlugins,
      orphans,
      running: localRunning + foreignOrphans.length + apiRunning + cloudRunning,
      // One burn rate: the ledger's (it also counts storage billed while stopped), else the poll's.
      // An API plugin's resource in the ledger is in the ledger's burn rate already.
      costPerHour: apiPlugins.reduce((s, a) => s + (spend && a.costLedgerId ? 0 : a.costPerHour), 0) + (spend ? spend.perHour : (cloud?.costPerHour ?? 0)),
      costSoFar: apiPlugins.reduce((s, a) => s + a.costSoFar, 0) + (cloud?.costSoFar ?? 0),
      budgets,
      cloud,
      ...(spend ? { spend } : {}),
      ...(autostop.length ? { autostop } : {}),
      ...(deadman.length ? { deadman } : {}),
      ...(cloudSource ? { cloudSource } : {}),
    };
  }

  /** This poll's cloud reading (shared by every folder's engine), while a poll runs. */
  private tickCloud: Promise<CloudStatus> | undefined;
  /** A user's action asked for a listing of this window's own (not the snapshot). */
  private wantFresh = false;
  private cloudPoll: { engine: Engine; poll: CloudPoll } | undefined;

  private cloudTick(engine: Engine, t: TickRequest) {
    if (this.cloudPoll?.engine !== engine) {
      this.cloudPoll = {
        engine,
        poll: new CloudPoll({
          stateDir: engine.ledger.stateDir,
          kind: 'vscode',
          list: () => engine.cloud.status(),
          providerTypes: () => this.cloudProviders().map((p) => p.type),
          log: this.log,
        }),
      };
    }
    return this.cloudPoll.poll.tick(t);
  }

  /** What an engine's status() reads for the cloud: this poll's shared reading (a copy: engines annotate it). */
  private async cloudForEngine(): Promise<CloudStatus> {
    let shared = this.tickCloud;
    if (!shared) {
      // A status() outside a poll: the snapshot as a follower would read it.
      const engine = this.primaryEngine;
      if (!engine) return { instances: [], errors: [], costPerHour: 0, costSoFar: 0 };
      shared = this.cloudTick(engine, { leader: false, intervalMs: this.budgets().pollMs }).then((t) => t.cloud);
    }
    return structuredClone(await shared);
  }

  // ---- plugins registered by other extensions -------------------------------------------

  readonly apiSurface: TetherApi = {
    apiVersion: 1,
    registerPlugin: (plugin, options) => this.register(plugin, options),
    registeredPlugins: () => [...this.api.keys()],
    refresh: async () => {
      await this.refresh('manual');
    },
  };

  private register(plugin: LifecycleAwarePlugin | CloudAwarePlugin, options: RegisterOptions): TetherDisposable {
    if (!options || typeof options.name !== 'string' || !options.name) throw new TypeError('registerPlugin: options.name is required');
    if (!isLifecycleAware(plugin) && !isCloudAware(plugin)) {
      throw new TypeError(`registerPlugin("${options.name}"): the object implements neither LifecycleAwarePlugin nor CloudAwarePlugin`);
    }
    if (this.api.has(options.name)) throw new TypeError(`registerPlugin: a plugin named "${options.name}" is already registered`);
    const entry: ApiEntry = { plugin, options, known: [], accrued: 0, lastRate: 0 };
    this.api.set(options.name, entry);
    this.log.info(`API: registered plugin "${options.name}"`);
    void this.refresh('event');
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        this.api.delete(options.name);
        this.log.info(`API: unregistered plugin "${options.name}"`);
        const id = entry.ledgerId;
        const engine = this.primaryEngine;
        if (id && engine) void engine.ledger.end(id, 'stopped', 'unregistered by its extension').catch(() => undefined);
        void this.refresh('event');
      },
    };
  }

  private async pollApi(e: ApiEntry): Promise<ApiPluginView> {
    const p = e.plugin;
    const view: ApiPluginView = {
      name: e.options.name,
      title: e.options.title ?? e.options.name,
      ...(e.options.description ? { description: e.options.description } : {}),
      lifecycle: isLifecycleAware(p),
      cloud: isCloudAware(p),
      processes: [],
      costPerHour: 0,
      costSoFar: e.accrued,
    };
    try {
      if (isLifecycleAware(p)) {
        view.executionMode = p.getExecutionMode();
        // Only a plugin running on this machine has local PIDs (see src/core/localPids.ts).
        if (pidsAreLocal(p)) {
          await this.recordApiProcesses(e, localManagedIdentities(p));
          const id = e.ledgerId ?? `api:${e.options.name}`;
          view.processes = (await this.tracker.snapshot([{ id, known: e.known }])).get(id) ?? [];
        } else {
          e.known = [];
        }
      }
      if (isCloudAware(p)) {
        const info = p.getRemoteResourceInfo();
        if (info) view.remote = info;
        const now = Date.now();
        if (e.activeSince !== undefined) e.accrued += (e.lastRate * (now - e.activeSince)) / 3_600_000;
        if (hasActiveCloudResources(p)) {
          const rate = p.estimateCost(1);
          view.costPerHour = Number.isFinite(rate) && rate > 0 ? rate : 0;
          e.activeSince = now;
          e.lastRate = view.costPerHour;
        } else {
          e.activeSince = undefined;
        }
        view.costSoFar = e.accrued;
        await this.recordApiRemote(e, info, view);
      }
    } catch (err) {
      view.error = describeError(err);
    }
    return view;
  }

  /** Records the plugin's remote resource in the ledger (price, states); its cost then comes from there. */
  private async recordApiRemote(e: ApiEntry, info: RemoteResourceInfo | undefined, view: ApiPluginView): Promise<void> {
    const engine = this.primaryEngine;
    if (!engine || !isCloudAware(e.plugin)) return;
    const p = e.plugin;
    const id = await recordApiRemote(
      engine.ledger,
      {
        name: e.options.name,
        owner: { ...engine.owner, kind: 'api' },
        executionMode: (isLifecycleAware(p) ? p.getExecutionMode() : 'cloud_vm') as LedgerResource['executionMode'],
        info,
        estimatePerHour: () => p.estimateCost(1),
      },
      e.costId,
    );
    if (id === undefined) {
      delete e.costId;
      return;
    }
    e.costId = id;
    const rec = engine.ledger.read().resources.find((r) => r.id === id);
    const rule = rec && billingRuleOf(rec);
    if (!rec || !rule) return;
    view.costLedgerId = id;
    view.costPerHour = apiRatePerHour(rec);
    view.costSoFar = accruedCost(rec, rule, false);
  }

  /**
   * Not the leader (another window or `tether watch` leads, and cannot reach this window's
   * plugins): the verdicts say what is spent and projected; an auto-terminate budget projected over
   * its limit asks this window's own plugins whose resources bill in its scope.
   */
  private ownApiTerminations(engine: Engine, verdicts: readonly BudgetVerdict[]): BudgetVerdict[] {
    const records = engine.ledger.read().resources;
    return verdicts.map((v) => {
      if (!v.budget.autoTerminate || v.projected <= v.budget.limitUsd) return { ...v, terminate: [] };
      const terminate = [...this.api.values()].flatMap((e) => {
        const r = e.costId ? records.find((x) => x.id === e.costId) : undefined;
        if (!r?.remote || apiRatePerHour(r) <= 0) return [];
        if ((v.budget.provider && r.remote.provider !== v.budget.provider) || (v.budget.ledgerId && r.id !== v.budget.ledgerId)) return [];
        return [r.id];
      });
      return { ...v, terminate };
    });
  }

  private readonly apiBudgetWarned = new Set<string>();
  private readonly apiTerminateAsked = new Map<string, number>();
  /**
   * Auto-terminate budgets over an API plugin's resource: only its plugin can terminate it (Tether
   * has no credentials for it), so its terminateRemoteResource() is called; unregistered, a warning.
   */
  private async enforceApiBudgets(engine: Engine, verdicts: readonly BudgetVerdict[]): Promise<void> {
    for (const v of verdicts) {
      for (const id of v.terminate) {
        const rec = engine.ledger.read().resources.find((r) => r.id === id);
        if (!rec || rec.kind !== 'api' || !rec.remote) continue;
        const why = `budget "${v.budget.name}" ($${v.budget.limitUsd.toFixed(2)} per ${v.budget.period}): $${v.spent.toFixed(2)} spent, $${v.projected.toFixed(2)} by the next poll`;
        const entry = [...this.api.values()].find((e) => e.costId === id);
        if (!entry || !isCloudAware(entry.plugin)) {
          if (this.apiBudgetWarned.has(id)) continue;
          this.apiBudgetWarned.add(id);
          const line = `${rec.plugin}: ${why}, but its plugin is not registered and Tether has no credentials to terminate it: terminate it where it was made`;
          this.log.warn(line);
          void vscode.window.showWarningMessage(`Tether: ${line}`);
          continue;
        }
        // Once a minute at most: the plugin's report of `terminated` ends the record.
        const last = this.apiTerminateAsked.get(id);
        if (last !== undefined && Date.now() - last < 60_000) continue;
        this.apiTerminateAsked.set(id, Date.now());
        this.log.warn(`asking ${rec.plugin} to terminate its resource: ${why}`);
        try {
          await engine.ledger.patch(id, {}, `terminate asked of its plugin by ${why}`);
          await entry.plugin.terminateRemoteResource();
        } catch (err) {
          const line = describeError(err);
          this.log.error(`${rec.plugin} could not terminate its resource for ${why}: ${line}`);
          await engine.ledger.patch(id, {}, `termination failed: ${line}`).catch(() => undefined);
        }
      }
    }
  }

  /** Keeps a ledger record of an API plugin's processes, so a crash leaves a findable orphan. */
  private async recordApiProcesses(e: ApiEntry, ids: ProcessIdentity[]): Promise<void> {
    const engine = this.primaryEngine;
    const before = new Set(e.known.map(key));
    const changed = ids.some((i) => !before.has(key(i)));
    for (const i of ids) if (!before.has(key(i))) e.known.push(i);
    if (!engine || !changed) return;
    const ledger = engine.ledger;
    if (!e.ledgerId) {
      // After a reload: the record a previous window made for the same processes is taken over, not doubled.
      const mine = new Set(ids.map(key));
      const prev = ledger.read().resources.find((r) => r.kind === 'api' && !r.remote && r.plugin === e.options.name && !otherMachineOf(r) && r.processes.some((p) => mine.has(key(p))));
      if (prev) {
        e.ledgerId = prev.id;
        for (const p of prev.processes) if (!e.known.some((k) => key(k) === key(p))) e.known.push({ pid: p.pid, startTime: p.startTime });
        await ledger.patch(prev.id, { owner: engine.owner }, 're-attached: its plugin registered again');
      }
    }
    if (!e.ledgerId || !ledger.read().resources.some((r) => r.id === e.ledgerId)) {
      const rec = await ledger.addIntent({
        kind: 'api',
        plugin: e.options.name,
        executionMode: (isLifecycleAware(e.plugin) ? e.plugin.getExecutionMode() : 'external') as LedgerResource['executionMode'],
        owner: engine.owner,
      });
      e.ledgerId = rec.id;
    }
    await ledger.patch(e.ledgerId, { state: 'running', processes: e.known.map((i) => ({ ...i })) });
  }

  // ---- actions ------------------------------------------------------------------------------

  /**
   * Stops every plugin this window started plus API plugins (per `scope`). Each plugin gets its
   * own grace period (see src/core/grace.ts): its stopGraceSeconds, else `settingMs` (the
   * tether.stopGraceSeconds setting), else the default; `capMs` bounds it (exit's budget).
   */
  async cleanup(scope: 'local' | 'all', grace: { settingMs: number; capMs?: number }): Promise<{ stopped: string[]; errors: string[] }> {
    const stopped: string[] = [];
    const errors: string[] = [];
    const jobs: Promise<void>[] = [];
    for (const f of this.current.folders) {
      const engine = this.engines.get(f.folder);
      if (!engine) continue;
      for (const p of f.report?.plugins ?? []) {
        if (!p.ledgerId || !p.processes.length) continue;
        if (scope === 'local' && !p.ownedByMe) continue;
        jobs.push(
          engine.stop(p.name, resolveGraceMs({ pluginMs: p.stopGraceMs, settingMs: grace.settingMs, capMs: grace.capMs })).then(
            () => void stopped.push(p.name),
            (err) => void errors.push(describeError(err)),
          ),
        );
      }
    }
    if (scope === 'all') {
      for (const e of this.api.values()) jobs.push(this.cleanupApi(e, grace).then(() => void stopped.push(e.options.name), (err) => void errors.push(describeError(err))));
    }
    await Promise.all(jobs);
    return { stopped, errors };
  }

  /** Marks what this window started as deliberately left running (`cleanupOnExit: none`). */
  async detachOwned(): Promise<string[]> {
    const names: string[] = [];
    for (const f of this.current.folders) {
      const engine = this.engines.get(f.folder);
      for (const p of f.report?.plugins ?? []) {
        if (!engine || !p.ownedByMe || !p.ledgerId || !p.owner) continue;
        await engine.ledger.patch(p.ledgerId, { owner: { ...p.owner, kind: 'detached' } }, 'left running when its window closed');
        names.push(p.name);
      }
    }
    return names;
  }

  /** Runs an API plugin's forceCleanup(), then stops what it left (the setting's grace: an API plugin declares none). */
  async cleanupApi(e: ApiEntry | string, grace: { settingMs?: number; capMs?: number } = {}): Promise<void> {
    const entry = typeof e === 'string' ? this.api.get(e) : e;
    if (!entry) throw new TetherError(`no registered plugin "${String(e)}"`, { remedy: 'Refresh the Tether view.', exitCode: ExitCode.USAGE });
    if (isLifecycleAware(entry.plugin) && !pidsAreLocal(entry.plugin)) {
      await entry.plugin.forceCleanup(); // its PIDs are another machine's: nothing to signal here
    } else if (isLifecycleAware(entry.plugin)) {
      // Remember the whole tree first: a plugin's own cleanup often kills only its direct child.
      const id = entry.ledgerId ?? `api:${entry.options.name}`;
      const tree = (await this.tracker.snapshot([{ id, known: entry.known }])).get(id) ?? [];
      await entry.plugin.forceCleanup();
      const report = await stopProcessTree(async () => tree.filter(isSameProcessAlive), { graceMs: resolveGraceMs(grace) });
      if (report.terminated + report.killed > 0) {
        this.log.warn(`${entry.options.name}: its forceCleanup() left ${report.terminated + report.killed} process(es) running; Tether stopped them`);
      }
      entry.known = [];
    }
    if (isCloudAware(entry.plugin) && entry.plugin.getRemoteResourceInfo()) await entry.plugin.terminateRemoteResource();
  }

  async killOrphans(graceMs: number): Promise<{ killed: string[]; errors: string[] }> {
    const engine = this.primaryEngine;
    if (!engine) return { killed: [], errors: [] };
    const r = await engine.killOrphans(graceMs);
    return { killed: r.killed, errors: r.errors.map((e) => e.oneLine()) };
  }

  /** Stops one process tree by ledger id (e.g. an orphan from another folder). */
  async stopRecord(folder: string, p: PluginStatus, graceMs: number): Promise<StopReport | undefined> {
    const engine = this.engine(folder);
    if (p.declared && p.workspace === engine.workspace) return engine.stop(p.name, graceMs);
    return p.ledgerId ? engine.stopById(p.ledgerId, graceMs, 'stopped from the Tether view') : undefined;
  }

  private lease: PolicyLease | undefined;
  /** Whether this window leads the policy tick for the next `intervalMs` (see src/fleet/leader.ts), and the leader's interval otherwise. */
  private async leadPolicy(stateDir: string, intervalMs: number): Promise<{ leader: boolean; holderIntervalMs?: number }> {
    if (this.lease?.stateDir !== stateDir) {
      this.lease?.releaseSync();
      this.lease = new PolicyLease(stateDir, 'vscode');
    }
    try {
      const r = await this.lease.tryLead(intervalMs);
      return { leader: r.leader, ...(!r.leader && r.holder ? { holderIntervalMs: r.holder.intervalMs } : {}) };
    } catch (err) {
      this.log.warn(`policy leader election: ${describeError(err)}`);
      return { leader: false };
    }
  }

  dispose(): void {
    this.lease?.releaseSync();
    this.emitter.dispose();
    void this.sshMonitor.pool.closeAll();
  }
}
