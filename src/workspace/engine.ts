/**
 * The engine: one workspace's declared plugins, the ledger and live polls, put together.
 * The CLI and the VS Code extension both drive this class; neither keeps state of its own.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { configPath, loadConfig, type PluginSpec, type TetherConfig } from '../core/config';
import { ConfigError, ExitCode, TetherError, UsageError, type ConfigProblem } from '../core/errors';
import { Ledger, defaultStateDir, endIn, otherMachineOf, type LedgerResource, type ResourceOwner } from '../core/ledger';
import { FileLock } from '../core/fileLock';
import { silentLogger, type Logger } from '../core/logger';
import { beforeThisBoot, isSameProcessAlive, readEnvVar } from '../core/procfs';
import { pluginGraceMs, resolveGraceMs } from '../core/grace';
import { ProcessTracker, type ProcessInfo } from '../core/processTracker';
import type { StopReport } from '../core/treeKiller';
import { LEDGER_ENV, PLUGIN_ENV, WORKSPACE_ENV, currentOwner } from '../backends/local/subprocess';
import { closeReport, readCloseRecord, type CloseReport } from '../fleet/closeGuard';
import { CloudManager, cloudSshHost, sshCommandOf, type CloudStatus } from '../fleet/cloud';
import { DeadmanKeeper } from '../fleet/deadmanKeeper';
import { readPolicy } from '../fleet/policy';
import { hardCapRefusalFromLedger } from '../fleet/spend';
export { cloudSshHost } from '../fleet/cloud';
import type { CloudProvider } from '../backends/cloud/provider';
import { SshConnectionPool, type SshConnectionOptions } from '../backends/ssh/connection';
import { loadSshConfigParser, resolveHost } from '../backends/ssh/hosts';
import { sshArgsForHost } from '../backends/ssh/sshArgs';
import { SshHostMonitor } from '../backends/ssh/remotePlugin';
import { SshBackend, type HostStatus } from '../backends/ssh';
import { isLive, keepsIntent, type Backend, type BackendContext, type BackendFactory, type DeclaredPlugin, type PluginStatus, type ShellCommand, type UnrecordedResource } from '../backends/backend';
import { BACKENDS, DEFAULT_BACKEND, backendFor, backendOfRecord, ownsRecord } from '../backends/registry';

export type { DeclaredPlugin, PluginState, PluginStatus } from '../backends/backend';
export type { HostStatus } from '../backends/ssh';
export { FALLBACK_RESOLVER_NOTE, sshBinaryFor } from '../backends/ssh/hosts';
export type { SshConnectionOptions } from '../backends/ssh/connection';
export type { CloudProvider } from '../backends/cloud/provider';
export { defaultShutdownAction } from '../backends/ssh/deadman';

/** One SSH host monitor (one connection per host) for every workspace of a window. */
export function createSshMonitor(options: SshConnectionOptions, log: Logger): SshHostMonitor {
  return new SshHostMonitor(new SshConnectionPool({ ...options, log }), { log });
}

export interface StatusReport {
  /** Version of this JSON shape; bumped on any incompatible change. */
  schemaVersion: 1;
  workspace: string;
  configFile: string;
  /** False when the workspace has no `.vscode/tether.json`. */
  configured: boolean;
  /** The config's problem, when it has one (plugins from the ledger are still listed). */
  configError: string | null;
  /** Each problem of the config with its JSON path and line ([] when it is valid). */
  configProblems: ConfigProblem[];
  stateDir: string;
  generatedAt: string;
  plugins: PluginStatus[];
  /** Running resources nobody owns any more (from any workspace). */
  orphans: PluginStatus[];
  /** Every SSH host with a plugin declared in this workspace or an active remote resource (any workspace). */
  hosts: HostStatus[];
  /** Cloud instances of every configured provider account (managed and unmanaged). */
  cloud: CloudStatus;
  /** costPerHour and costSoFar: USD over everything that bills (cloud instances). */
  totals: { running: number; processes: number; costPerHour: number; costSoFar: number };
  /** The last VS Code window closed while these kept billing (until dismissed); null otherwise. */
  closedWhileBilling: CloseReport | null;
}

export interface EngineOptions {
  workspace: string;
  stateDir?: string;
  ownerKind: ResourceOwner['kind'];
  log?: Logger;
  tracker?: ProcessTracker;
  startupCheckMs?: number;
  /** Overrides every plugin's stop grace period (ms). */
  graceMs?: number;
  /**
   * Options of the engine's SSH connection pool (created on first use): the VS Code UI passes
   * prompts for key passphrases and unknown host keys; the CLI passes none (an unknown host key
   * is then refused with a clear error). Default ssh config / known_hosts: the user's ~/.ssh.
   */
  ssh?: SshConnectionOptions;
  /** Cloud provider clients of the configured accounts (UI: SecretStorage keys; CLI: environment). */
  cloudProviders?: () => CloudProvider[];
  /** What a dead man's switch runs when it fires (default: a shutdown; tests pass a stand-in). */
  deadmanAction?: () => string;
  /** More SSH hosts to watch (e.g. the `tether.sshHosts` setting), besides tether.json's. */
  extraHosts?: () => string[];
  /** An SSH monitor shared with other engines (one connection per host for all of them); `ssh` is then ignored and {@link Engine.dispose} leaves it open. */
  sshMonitor?: SshHostMonitor;
  /**
   * Whether the workspace is trusted (VS Code: `workspace.isTrusted`). An untrusted workspace's
   * declared commands are never started; viewing, stopping and cleaning up still work. Default: trusted (the CLI).
   */
  trusted?: () => boolean;
  /** This tick's cloud status, shared by every folder and window (src/fleet/snapshot.ts); default: this engine lists the providers. */
  cloudStatus?: () => Promise<CloudStatus>;
}

export class Engine {
  readonly workspace: string;
  readonly ledger: Ledger;
  readonly tracker: ProcessTracker;
  readonly owner: ResourceOwner;
  private readonly log: Logger;
  private readonly plugins = new Map<string, DeclaredPlugin>();
  private sshMon: SshHostMonitor | undefined;
  /** The backends this workspace has used, by kind (made on first use). */
  private readonly backends = new Map<string, Backend>();
  /** The live processes of local records as the last reconcile read them. */
  private lastSnap = new Map<string, ProcessInfo[]>();
  /** Resources found by their marker with no active record (their own stop), by ledger id or container id. */
  private readonly unrecordedFound = new Map<string, UnrecordedResource>();

  constructor(private readonly opts: EngineOptions) {
    this.workspace = path.resolve(opts.workspace);
    this.ledger = new Ledger(opts.stateDir ?? defaultStateDir());
    this.tracker = opts.tracker ?? new ProcessTracker();
    this.owner = currentOwner(opts.ownerKind);
    this.log = opts.log ?? silentLogger;
  }

  get configFile(): string {
    return configPath(this.workspace);
  }

  /** The workspace config; throws {@link ConfigError}. Undefined when there is no file. */
  config(): TetherConfig | undefined {
    return loadConfig(this.workspace);
  }

  private requireSpec(name: string): PluginSpec {
    const cfg = this.config();
    if (!cfg) {
      throw new UsageError(`${this.configFile} does not exist`, 'Create it (see the README, "Configuration") or pass --workspace DIR.');
    }
    const spec = cfg.plugins.find((p) => p.name === name);
    if (!spec) {
      const names = cfg.plugins.map((p) => p.name);
      throw new UsageError(
        `unknown plugin "${name}"`,
        names.length ? `Declared in ${this.configFile}: ${names.join(', ')}.` : `${this.configFile} declares no plugins.`,
      );
    }
    return spec;
  }

  private cloudManager: CloudManager | undefined;
  /** Cloud instances: provision, list (reconciled with the ledger), terminate. */
  get cloud(): CloudManager {
    return (this.cloudManager ??= new CloudManager(this.ledger, this.owner, this.opts.cloudProviders ?? (() => []), this.log));
  }

  private keeper: DeadmanKeeper | undefined;
  /** Dead man's switches of cloud instances (armed and pushed over SSH). */
  get deadman(): DeadmanKeeper {
    return (this.keeper ??= new DeadmanKeeper(this.ledger, () => this.ssh, this.log, Date.now, this.opts.deadmanAction, (r) => this.cloudHost(r)));
  }

  /**
   * The SSH host spec of a running cloud instance: the provider's default login user (e.g.
   * "ubuntu") unless ~/.ssh/config names a User for that address, which then wins — as it would
   * for a custom image.
   */
  cloudHost(r: LedgerResource): string | undefined {
    const withUser = cloudSshHost(r);
    const bare = cloudSshHost(r, { withUser: false });
    if (!withUser || !bare || bare === withUser) return withUser;
    try {
      if (resolveHost(bare, this.opts.ssh?.resolve).userFromConfig) return bare;
    } catch {
      /* an unreadable ssh config: the provider's user */
    }
    return withUser;
  }

  /** The SSH connections and remote polls (created on first use: one connection per host). */
  get ssh(): SshHostMonitor {
    return (this.sshMon ??= this.opts.sshMonitor ?? new SshHostMonitor(new SshConnectionPool({ log: this.log, ...this.opts.ssh }), { log: this.log }));
  }

  /** Closes the engine's SSH connections (not a shared monitor's). Later calls reconnect. */
  dispose(): void {
    if (this.sshMon && this.sshMon !== this.opts.sshMonitor) this.sshMon.closeAll();
  }

  /** What this workspace lends its backends. */
  private readonly ctx: BackendContext = {
    workspace: '',
    ledger: undefined as unknown as Ledger,
    tracker: undefined as unknown as ProcessTracker,
    owner: undefined as unknown as ResourceOwner,
    log: silentLogger,
    service: <T>(name: string): T => {
      if (name === 'ssh') return this.ssh as T;
      // A launch that would cross a hard cap (budget with auto-terminate) is refused before its intent (Kubernetes Jobs).
      if (name === 'launch-refusal') return ((provider: string, what: string, perHour: number | undefined) => hardCapRefusalFromLedger(this.ledger, readPolicy(this.ledger.stateDir).budgets, provider, what, perHour)) as T;
      throw new Error(`no service "${name}"`);
    },
    liveProcesses: (id: string) => this.lastSnap.get(id),
  };

  /** The backend of a kind, bound to this workspace (made on first use). */
  private backend(f: BackendFactory): Backend {
    let b = this.backends.get(f.kind);
    if (!b) {
      Object.assign(this.ctx, {
        workspace: this.workspace,
        ledger: this.ledger,
        tracker: this.tracker,
        owner: this.owner,
        log: this.log,
        ...(this.opts.startupCheckMs === undefined ? {} : { startupCheckMs: this.opts.startupCheckMs }),
      });
      b = f.create(this.ctx);
      this.backends.set(f.kind, b);
    }
    return b;
  }

  /** The SSH backend, which also reports the hosts (state, GPUs) the tree shows. */
  private get sshBackend(): SshBackend {
    return this.backend(BACKENDS.find((f) => f.kind === 'ssh')!) as SshBackend;
  }

  /** The plugin object for a declared name (kept, so protocol calls see the same instance). */
  plugin(spec: PluginSpec): DeclaredPlugin {
    let p = this.plugins.get(spec.name);
    if (!p || JSON.stringify(p === undefined ? undefined : this.specOf(p)) !== JSON.stringify(spec)) {
      const prev = p?.ledgerRecord;
      p = this.backend(backendFor(spec)).plugin(spec);
      this.specs.set(p, spec);
      p.attach(prev);
      this.plugins.set(spec.name, p);
    }
    return p;
  }

  private readonly specs = new WeakMap<DeclaredPlugin, PluginSpec>();
  private specOf(p: DeclaredPlugin): PluginSpec | undefined {
    return this.specs.get(p);
  }

  /** The active ledger record of a plugin of this workspace. */
  private activeRecord(name: string): LedgerResource | undefined {
    return this.ledger.read().resources.find((r) => isPluginRecord(r) && r.workspace === this.workspace && r.plugin === name);
  }

  /** The declared plugin's object when its declaration runs on the backend of this record (else a stop goes by the record alone). */
  private declaredFor(record: LedgerResource): { f: BackendFactory; plugin?: DeclaredPlugin } | undefined {
    const spec = record.workspace === this.workspace ? this.config()?.plugins.find((p) => p.name === record.plugin) : undefined;
    const sf = spec ? backendFor(spec) : undefined;
    if (spec && sf && ownsRecord(sf, record)) return { f: sf, plugin: this.plugin(spec) };
    const f = backendOfRecord(record);
    return f ? { f } : undefined;
  }

  /**
   * Starts a declared plugin. The check ("is it already running?") and the start (its intent in
   * the ledger) happen under one lock per plugin in the state folder, held by every CLI run and
   * window alike, so concurrent starts start one copy and the others say "already running". A
   * start that fails after its intent was written closes that record as failed (unless the
   * outcome is unknown: a remote start whose connection dropped stays to be found by its marker).
   */
  async start(name: string): Promise<LedgerResource> {
    const spec = this.requireSpec(name);
    this.requireTrust(name);
    return this.startLock(name).withLock(
      async () => {
        await this.reconcile();
        let existing = this.activeRecord(name);
        const f = existing && backendOfRecord(existing);
        if (existing && f) {
          await this.backend(f).observe([existing]); // closes the record when its backend finds nothing left (SSH: the host says so)
          existing = this.activeRecord(name);
        }
        if (existing) {
          const pid = existing.processes[0]?.pid;
          throw new TetherError(`${name} is already running${pid ? ` (pid ${pid})` : ''}`, {
            remedy: `Stop it first (tether stop ${name}) or restart it.`,
          });
        }
        try {
          return await this.plugin(spec).start();
        } catch (err) {
          await this.closeFailedIntent(name, err);
          throw err;
        }
      },
      // A start may take a while (an SSH connection, the startup check); the others wait their turn.
      { what: `starting ${name}`, timeoutMs: 120_000 },
    );
  }

  /** Refuses to start a workspace's command while the workspace is not trusted (Restricted Mode). */
  private requireTrust(name: string): void {
    if (this.opts.trusted && !this.opts.trusted()) {
      throw new TetherError(`${name} was not started: this workspace is not trusted, and Tether never starts a workspace's commands in Restricted Mode`, {
        remedy: 'Trust the folder (Workspaces: Manage Workspace Trust) if you trust its .vscode/tether.json; viewing, stopping and cleaning up work without it.',
        exitCode: ExitCode.USAGE,
      });
    }
  }

  /** The lock that serialises the starts of one plugin of this workspace (see {@link start}). */
  private startLock(name: string): FileLock {
    const key = createHash('sha256').update(`${this.workspace}\0${name}`).digest('hex').slice(0, 16);
    return new FileLock(path.join(this.ledger.stateDir, `start-${key}.lock`));
  }

  /** After a failed start: its record, if still a `starting` intent with no process, is closed as failed. */
  private async closeFailedIntent(name: string, err: unknown): Promise<void> {
    if (keepsIntent(err)) return; // the plugin closes its own record, or keeps it when the outcome is unknown (found later by its marker)
    const line = err instanceof TetherError ? err.oneLine() : err instanceof Error ? err.message : String(err);
    await this.ledger
      .update((b) => {
        for (const r of b.resources.filter((x) => isPluginRecord(x) && x.workspace === this.workspace && x.plugin === name)) {
          if (r.state === 'starting' && r.processes.length === 0 && !r.container?.id) endIn(b, r.id, 'failed', `start failed: ${line}`);
        }
      }, `closing the failed start of ${name}`)
      .catch((e) => this.log.error(`${name}: could not close its failed start: ${String(e)}`));
    this.plugin(this.requireSpec(name)).attach(undefined);
  }

  /** Stops a plugin of this workspace. Resolves to undefined when it was not running. */
  async stop(name: string, graceMs?: number): Promise<StopReport | undefined> {
    const record = this.activeRecord(name);
    const spec = this.config()?.plugins.find((p) => p.name === name);
    if (!record) {
      if (!spec) this.requireSpec(name); // unknown name: say so
      return undefined;
    }
    const grace = resolveGraceMs({ overrideMs: graceMs ?? this.opts.graceMs, pluginMs: pluginGraceMs(spec?.stopGraceSeconds) });
    const d = this.declaredFor(record);
    if (!d) return undefined;
    return this.backend(d.f).stop(record, { graceMs: grace, ...(d.plugin ? { plugin: d.plugin } : {}) });
  }

  /** Prepares a start that may ask the user things (SSH: connects first, so passphrase and host-key prompts can show). */
  async prepare(name: string): Promise<void> {
    const spec = this.requireSpec(name);
    await this.backend(backendFor(spec)).prepare?.(spec);
  }

  /** The last lines of a plugin's output (its active record, else its last run); undefined when its backend keeps none. */
  async logs(ref: { name: string; ledgerId: string | null }, tail = 1000): Promise<string | undefined> {
    const body = this.ledger.read();
    const record = body.resources.find((r) => r.id === ref.ledgerId) ?? body.ended.find((r) => r.workspace === this.workspace && r.plugin === ref.name && !!backendOfRecord(r));
    const f = record && backendOfRecord(record);
    const b = f && this.backend(f);
    return b?.logs ? b.logs(record!, { tail }) : undefined;
  }

  /** A terminal on an SSH host ("user@host:port" is Tether's spelling; ssh gets "-p port -- user@host"). */
  hostShell(host: string): ShellCommand {
    return { name: `ssh ${host}`, command: 'ssh', args: sshArgsForHost(host) };
  }

  /** A terminal inside a running plugin, where its backend has one (a container's shell). */
  async shell(ledgerId: string): Promise<ShellCommand | undefined> {
    const record = this.ledger.read().resources.find((r) => r.id === ledgerId);
    const f = record && backendOfRecord(record);
    return f ? this.backend(f).shell?.(record!) : undefined;
  }

  async restart(name: string): Promise<LedgerResource> {
    this.requireSpec(name);
    this.requireTrust(name); // before stopping: a restart that cannot start leaves it running
    await this.stop(name);
    return this.start(name);
  }

  /** Stops every running plugin of this workspace. */
  async down(graceMs?: number): Promise<{ stopped: string[]; errors: TetherError[] }> {
    const names = [
      ...new Set(
        this.ledger
          .read()
          .resources.filter((r) => isPluginRecord(r) && r.workspace === this.workspace)
          .map((r) => r.plugin),
      ),
    ];
    const results = await Promise.allSettled(names.map((n) => this.stop(n, graceMs)));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [asTetherError(r.reason)] : []));
    return { stopped: names.filter((_, i) => results[i]!.status === 'fulfilled'), errors };
  }

  /** Every live PID of a plugin, descendants and escapees included. */
  async pids(name: string): Promise<number[]> {
    this.requireSpec(name);
    const record = this.activeRecord(name);
    if (!record) return [];
    const f = backendOfRecord(record);
    return (await (f && this.backend(f).pids?.(record))) ?? [];
  }

  /**
   * Brings the ledger in line with reality: records whose processes are provably gone are
   * ended; processes that carry a Tether marker but are missing from the ledger are added back
   * (as orphans); newly seen descendants are recorded so they are found again after a crash.
   * Returns the live processes of every active local record.
   */
  async reconcile(): Promise<Map<string, ProcessInfo[]>> {
    const body = this.ledger.read();
    // Another machine's records (a shared state folder) name processes this one cannot see.
    const local = body.resources.filter((r) => isProcessRecord(r) && !otherMachineOf(r));
    const markers = await this.tracker.sweepMarkers();
    // A record made before this boot has no process left, whatever now holds its PIDs (procfs.ts beforeThisBoot).
    const snap = await this.tracker.snapshot(local.map((r) => ({ id: r.id, known: beforeThisBoot(r.createdAt) ? [] : r.processes })));
    const knownIds = new Set(body.resources.map((r) => r.id));
    const unknownMarkers = [...markers.keys()].filter((id) => !knownIds.has(id));
    const gone = local.filter((r) => (snap.get(r.id) ?? []).length === 0 && r.state !== 'starting');
    // A `starting` record older than a minute with nothing alive is a start that crashed.
    const staleIntents = local.filter(
      (r) => r.state === 'starting' && (snap.get(r.id) ?? []).length === 0 && Date.now() - Date.parse(r.createdAt) > 60_000,
    );
    const grown = local.filter((r) => {
      const known = new Set(r.processes.map((p) => `${p.pid}:${p.startTime}`));
      return (snap.get(r.id) ?? []).some((p) => !known.has(`${p.pid}:${p.startTime}`));
    });
    if (!gone.length && !staleIntents.length && !unknownMarkers.length && !grown.length) return snap;

    // Only this ledger's markers are adopted; another ledger's process changes nothing here.
    const adopted: LedgerResource[] = [];
    for (const id of unknownMarkers) {
      const pids = markers.get(id)!;
      const pid = pids[0]!;
      const [plugin, workspace, tag] = [readEnvVar(pid, PLUGIN_ENV), readEnvVar(pid, WORKSPACE_ENV), readEnvVar(pid, LEDGER_ENV)];
      if (tag !== this.ledger.tag) continue; // another state folder's process: not ours to adopt
      const now = new Date().toISOString();
      const live = (await this.tracker.snapshot([{ id, known: [] }])).get(id) ?? [];
      if (!live.length) continue;
      snap.set(id, live);
      adopted.push({
        id,
        kind: 'local',
        plugin: plugin ?? `unknown-${id.slice(0, 8)}`,
        ...(workspace ? { workspace } : {}),
        executionMode: 'subprocess' as LedgerResource['executionMode'],
        state: 'running',
        createdAt: now,
        updatedAt: now,
        machine: os.hostname(),
        processes: live.map((p) => ({ pid: p.pid, startTime: p.startTime, ppid: p.ppid, command: p.command })),
        history: [{ at: now, state: 'running', note: 'found by its marker; it was missing from the ledger' }],
      });
    }
    // A read-only command must not write when nothing changed (status on a read-only state folder).
    if (!gone.length && !staleIntents.length && !grown.length && !adopted.length) return snap;
    await this.ledger.update((b) => {
      for (const r of gone) {
        const cur = b.resources.find((x) => x.id === r.id);
        if (!cur) continue;
        const failed = cur.exit?.code !== undefined && cur.exit.code !== 0 && cur.exit.code !== null && cur.state !== 'stopping';
        endIn(b, cur.id, failed ? 'failed' : 'stopped', 'no process left (reconciled)');
      }
      for (const r of staleIntents) endIn(b, r.id, 'failed', 'start never completed (crash during start?)');
      for (const r of grown) {
        const cur = b.resources.find((x) => x.id === r.id);
        if (!cur) continue;
        const known = new Set(cur.processes.map((p) => `${p.pid}:${p.startTime}`));
        for (const p of snap.get(r.id) ?? []) {
          if (!known.has(`${p.pid}:${p.startTime}`)) {
            cur.processes.push({ pid: p.pid, startTime: p.startTime, ppid: p.ppid, command: p.command });
          }
        }
        // Forget dead descendants (but always keep the root, whose identity names the run).
        cur.processes = cur.processes.filter((p, i) => i === 0 || isSameProcessAlive(p));
      }
      for (const a of adopted) if (!b.resources.some((x) => x.id === a.id)) b.resources.push(a);
    }, 'reconciling');
    for (const r of [...gone, ...staleIntents]) this.log.info(`${r.plugin}: no process left; ledger record ${r.id} closed`);
    for (const a of adopted) this.log.warn(`${a.plugin}: found ${a.processes.length} running process(es) missing from the ledger; flagged as orphan`);
    return snap;
  }

  /** Why a record is an orphan, or undefined when someone owns it. */
  orphanReason(r: LedgerResource, declared: ReadonlySet<string> | undefined): string | undefined {
    if (otherMachineOf(r)) return undefined; // another machine's to judge (and to stop)
    if (!r.owner) return 'found running with no owner on record';
    if (r.owner.kind === 'vscode' && r.owner.host === os.hostname() && !isSameProcessAlive(r.owner)) {
      return `the VS Code window that started it (pid ${r.owner.pid}) is gone`;
    }
    if (declared && r.workspace === this.workspace && !declared.has(r.plugin)) {
      return `"${r.plugin}" is no longer declared in ${this.configFile}`;
    }
    return undefined;
  }

  /** Everything the tree view and `tether status` show. */
  async status(): Promise<StatusReport> {
    let cfg: TetherConfig | undefined;
    let configError: string | null = null;
    let configProblems: ConfigProblem[] = [];
    try {
      cfg = this.config();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      configError = err.oneLine();
      configProblems = err.problems;
    }
    // ~/.ssh/config's parser (a chunk in the bundles) settles what `ssh -G` cannot say (whether a
    // User line names the local account itself: the SSH user Tether shows for an instance).
    await loadSshConfigParser();
    this.lastSnap = await this.reconcile();
    const cloudPromise: Promise<CloudStatus> = (this.opts.cloudStatus ? this.opts.cloudStatus() : this.cloud.status()).catch((err: unknown) => ({
      instances: [],
      errors: [{ provider: 'cloud', message: asTetherError(err).oneLine() }],
      costPerHour: 0,
      costSoFar: 0,
    }));
    const before = this.ledger.read().resources;
    // Hosts: every SSH host with a remote record, declared or watched, and every running cloud
    // instance Tether launched (an SSH host too: GPUs, remote plugins, idle checks).
    const remoteActive = before.filter((r) => r.host && backendOfRecord(r));
    const cloudHosts = new Map<string, LedgerResource>();
    for (const r of before) {
      const h = this.cloudHost(r);
      if (h) cloudHosts.set(h, r);
    }
    const hostNames = [
      ...new Set([
        ...(cfg?.plugins ?? []).flatMap((p) => (p.host ? [p.host] : [])),
        ...remoteActive.map((r) => r.host!),
        ...(cfg?.hosts ?? []),
        ...(this.opts.extraHosts?.() ?? []),
        ...cloudHosts.keys(),
      ]),
    ];
    const pollErrors = new Map<string, string>();
    // Restricted Mode: a host only the repository's tether.json names is never connected to (that
    // would log in there with the user's keys and agent, and may record its host key). Hosts of
    // Tether's own records and of the user's settings are still polled.
    if (this.opts.trusted && !this.opts.trusted()) {
      const own = new Set([...remoteActive.map((r) => r.host!), ...(this.opts.extraHosts?.() ?? []), ...cloudHosts.keys()]);
      for (const h of hostNames) if (!own.has(h)) pollErrors.set(h, 'not connected: this workspace is not trusted (Restricted Mode), and Tether never connects to the hosts its tether.json names');
    }
    // Each backend reads its records once (SSH: one round trip per host, hosts in parallel),
    // while hosts with no record have their GPUs read.
    const byBackend = new Map<BackendFactory, LedgerResource[]>();
    for (const r of before) {
      const f = backendOfRecord(r);
      if (f) byBackend.set(f, [...(byBackend.get(f) ?? []), r]);
    }
    const ssh = this.sshBackend;
    await Promise.all([
      ...[...byBackend].map(([f, recs]) => this.backend(f).observe(recs)),
      ...hostNames
        .filter((h) => !remoteActive.some((r) => r.host === h) && !pollErrors.has(h))
        .map((h) => ssh.pollGpus(h).catch((err: unknown) => void pollErrors.set(h, asTetherError(err).oneLine()))),
    ]);
    const cloud = await cloudPromise;
    // The SSH command shown for an instance names the user Tether itself connects as (the
    // provider's default login user unless ~/.ssh/config names one).
    for (const v of cloud.instances) {
      const r = v.ledgerId ? [...cloudHosts.values()].find((x) => x.id === v.ledgerId) : undefined;
      if (r && this.cloudHost(r) !== cloudSshHost(r)) v.sshCommand = sshCommandOf(r, { withUser: false });
    }
    const body = this.ledger.read();
    const hosts = new Map<string, HostStatus>();
    for (const h of hostNames) {
      const names = [
        ...new Set([
          ...(cfg?.plugins ?? []).filter((p) => p.host === h).map((p) => p.name),
          ...body.resources.filter((r) => r.host === h && backendOfRecord(r)).map((r) => r.plugin),
        ]),
      ];
      const unanswered = remoteActive.some((r) => r.host === h && ssh.unanswered(r.id));
      const st = ssh.hostStatus(h, names, pollErrors.get(h) ?? (unanswered ? 'the poll of this host failed' : undefined));
      const c = cloudHosts.get(h);
      if (c) st.cloud = { ledgerId: c.id, name: c.plugin, provider: c.remote!.provider };
      hosts.set(h, st);
    }
    const declared = cfg ? new Set(cfg.plugins.map((p) => p.name)) : undefined;
    const plugins: PluginStatus[] = [];
    const orphans: PluginStatus[] = [];
    for (const spec of cfg?.plugins ?? []) {
      const f = backendFor(spec);
      const record = body.resources.find((r) => r.workspace === this.workspace && r.plugin === spec.name && ownsRecord(f, r));
      const lastEnded = body.ended.find((r) => r.workspace === this.workspace && r.plugin === spec.name);
      const orphanReason = record ? this.orphanReason(record, declared) : undefined;
      const st = await this.backend(f).status({
        name: spec.name,
        spec,
        plugin: this.plugin(spec),
        ...(record ? { record } : {}),
        ...(lastEnded ? { lastEnded } : {}),
        ...(orphanReason ? { orphanReason } : {}),
      });
      plugins.push(st);
      if (st.orphanReason) orphans.push(st);
    }
    // Records no declaration of this workspace runs: another workspace's, or no longer declared.
    for (const r of body.resources) {
      const f = backendOfRecord(r);
      if (!f) continue;
      const spec = r.workspace === this.workspace ? cfg?.plugins.find((p) => p.name === r.plugin) : undefined;
      if (spec && ownsRecord(backendFor(spec), r)) continue;
      const orphanReason = this.orphanReason(r, declared);
      const st = await this.backend(f).status({ name: r.plugin, record: r, ...(orphanReason ? { orphanReason } : {}) });
      if (r.workspace === this.workspace) plugins.push(st);
      if (orphanReason) orphans.push(st);
    }
    // Resources found by their marker with no active record (a container left by a crash).
    this.unrecordedFound.clear();
    for (const f of [DEFAULT_BACKEND, ...BACKENDS]) {
      const b = this.backend(f);
      if (!b.unrecorded) continue;
      try {
        for (const u of await b.unrecorded()) {
          const listed = orphans.find((x) => x.ledgerId !== null && x.ledgerId === u.status.ledgerId);
          if (listed) {
            // Its record listed it already (with no look at Docker): what the backend found completes the row.
            if (!listed.container && u.status.container) {
              listed.container = u.status.container;
              listed.actions = b.actions(listed);
            }
            continue;
          }
          orphans.push(u.status);
          this.unrecordedFound.set(u.status.ledgerId ?? u.status.container?.id ?? u.status.name, u);
          if (u.record?.workspace === this.workspace) plugins.push(u.status);
        }
      } catch (err) {
        this.log.warn(`cannot look for orphaned ${f.kind} resources: ${asTetherError(err).oneLine()}`);
      }
    }
    const running = plugins.filter(isLive);
    return {
      schemaVersion: 1,
      workspace: this.workspace,
      configFile: this.configFile,
      configured: cfg !== undefined || configError !== null,
      configError,
      configProblems,
      stateDir: this.ledger.stateDir,
      generatedAt: new Date().toISOString(),
      plugins,
      orphans,
      hosts: [...hosts.values()],
      cloud,
      totals: {
        running: running.length + cloud.instances.filter((i) => i.managed && (i.status === 'running' || i.status === 'provisioning')).length,
        processes: running.reduce((n, p) => n + p.processes.length, 0),
        costPerHour: cloud.costPerHour,
        costSoFar: cloud.costSoFar,
      },
      closedWhileBilling: this.closeReport(),
    };
  }

  /** What kept billing while no VS Code window was open (see closeGuard.ts), until dismissed. */
  closeReport(): CloseReport | null {
    const rec = readCloseRecord(this.ledger.stateDir);
    return rec ? closeReport(rec, this.ledger) : null;
  }

  /** Running resources nobody owns any more. */
  async orphans(): Promise<PluginStatus[]> {
    return (await this.status()).orphans;
  }

  /** Stops every orphan (identity-safe). */
  async killOrphans(graceMs = 2000): Promise<{ killed: string[]; errors: TetherError[] }> {
    const orphans = await this.orphans();
    const results = await Promise.allSettled(
      orphans.map(async (o) => {
        const reason = `orphan: ${o.orphanReason}`;
        const active = o.ledgerId !== null && this.ledger.read().resources.some((r) => r.id === o.ledgerId);
        const found = this.unrecordedFound.get(o.ledgerId ?? o.container?.id ?? o.name);
        if (found && !active) return found.stop({ graceMs, reason });
        return o.ledgerId ? this.stopById(o.ledgerId, graceMs, reason) : undefined;
      }),
    );
    return {
      killed: orphans.filter((_, i) => results[i]!.status === 'fulfilled').map((o) => o.name),
      errors: results.flatMap((r) => (r.status === 'rejected' ? [asTetherError(r.reason)] : [])),
    };
  }

  /** Stops the resource of one ledger record identity-safely, whoever started it. */
  async stopById(ledgerId: string, graceMs = 2000, reason?: string): Promise<StopReport | undefined> {
    const record = this.ledger.read().resources.find((r) => r.id === ledgerId);
    const f = record && backendOfRecord(record);
    if (!record || !f) {
      // A resource the last status found by its marker with no active record (a container whose record was closed): its own identity-safe stop.
      const found = record ? undefined : this.unrecordedFound.get(ledgerId);
      if (found) await found.stop({ graceMs, reason: reason ?? 'stop requested' });
      return undefined;
    }
    return this.backend(f).stop(record, { graceMs, ...(reason ? { reason } : {}) });
  }

  /** Takes ownership of a record (e.g. an orphan the user chose to keep). */
  async adopt(ledgerId: string): Promise<void> {
    await this.ledger.patch(ledgerId, { owner: this.owner }, `adopted by ${this.owner.kind} pid ${this.owner.pid}`);
  }
}

/** Records of a workspace's declared plugins (local trees, containers, remote trees, …): those a backend owns. */
function isPluginRecord(r: LedgerResource): boolean {
  return !!backendOfRecord(r) && r.kind !== 'api';
}

/** Records whose resources are local process trees (declared plugins and API plugins). */
function isProcessRecord(r: LedgerResource): boolean {
  // An API plugin's remote resource (kind 'api' with `remote`, src/fleet/apiCost.ts) has no local process.
  return r.kind === 'local' || (r.kind === 'api' && !r.remote);
}

export function asTetherError(err: unknown): TetherError {
  if (err instanceof TetherError) return err;
  return new TetherError(err instanceof Error ? err.message : String(err), {
    remedy: 'See the Tether log for details.',
    exitCode: ExitCode.FAILED,
    cause: err,
  });
}
