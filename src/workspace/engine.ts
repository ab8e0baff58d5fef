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
import { LEDGER_ENV, PLUGIN_ENV, SubprocessPlugin, WORKSPACE_ENV, currentOwner, stopResourceTree, type SubprocessDeps } from '../backends/local/subprocess';
import { CondaPlugin } from '../backends/conda/conda';
import {
  DockerPlugin,
  dockerClient,
  dockerSpecFromPlugin,
  findOrphanContainers,
  removeTetherContainer,
  type ContainerStopReport,
} from '../backends/docker/docker';
import type Docker from 'dockerode';
import { closeReport, readCloseRecord, type CloseReport } from '../fleet/closeGuard';
import { CloudManager, cloudSshHost, sshCommandOf, type CloudStatus } from '../fleet/cloud';
import { DeadmanKeeper } from '../fleet/deadmanKeeper';
export { cloudSshHost } from '../fleet/cloud';
import type { CloudProvider } from '../backends/cloud/provider';
import { SshConnectionPool, SshError, type HostState, type SshConnectionOptions } from '../backends/ssh/connection';
import { resolveHost } from '../backends/ssh/hosts';
import type { GpuInfo } from '../backends/ssh/remote';
import { RemoteSshPlugin, RemoteStartError, SshHostMonitor, stopRemoteResource, type RemotePluginSpec, type RemoteProcessInfo } from '../backends/ssh/remotePlugin';

/** A plugin declared in tether.json: a local subprocess (maybe in a conda env), a container, or a command on an SSH host. */
export type DeclaredPlugin = SubprocessPlugin | DockerPlugin | RemoteSshPlugin;

export type PluginState = 'running' | 'starting' | 'stopping' | 'stopped' | 'failed' | 'orphan';

/** One plugin (declared, or found in the ledger) as `tether status --json` prints it. */
export interface PluginStatus {
  name: string;
  /**
   * local: a process tree on this machine; docker: a container (its host process tree below it);
   * ssh: a process tree on an SSH host (its PIDs are the host's, see `host`).
   */
  kind: 'local' | 'docker' | 'ssh';
  /** For `kind: 'ssh'`: the host spec (alias or user@host:port) as declared and recorded. */
  host?: string;
  executionMode: string;
  state: PluginState;
  /** Declared in this workspace's `.vscode/tether.json`. */
  declared: boolean;
  /** Why it is an orphan, when it is one. */
  orphanReason?: string;
  ledgerId: string | null;
  workspace: string | null;
  owner: ResourceOwner | null;
  /** True when this process (this window, this CLI run) started it. */
  ownedByMe: boolean;
  command: string;
  logPath: string | null;
  healthUrl: string | null;
  /** The plugin's own grace period (ms) between SIGTERM and SIGKILL, when it declares one. */
  stopGraceMs: number | null;
  startedAt: string | null;
  lastExit: { code?: number | null; signal?: string | null; at: string; message?: string } | null;
  processes: ProcessInfo[];
  /** For containers: what Docker says. */
  container?: {
    id: string;
    name: string;
    image: string;
    state: string;
    ports: string[];
    /** From the engine's stats API (null until two samples exist). */
    cpuPercent?: number | null;
    memoryBytes?: number;
  };
  /** A problem reading this plugin's state (e.g. the Docker engine is not running, the SSH host is unreachable). */
  problem?: string;
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

/** One SSH host as `tether status --json` prints it. */
export interface HostStatus {
  /** The host spec as declared / recorded (alias or user@host:port). */
  host: string;
  /** user@host:port the spec resolved to (absent when it cannot be resolved). */
  target?: string;
  state: HostState;
  /** Why it is unreachable (one line with the remedy). */
  error?: string;
  /** When the next connection attempt may run (ISO), while unreachable. */
  retryAt?: string;
  /** From nvidia-smi on the host; absent when unknown or when the host has no nvidia-smi. */
  gpus?: GpuInfo[];
  /** Plugins on this host: declared in this workspace, or with an active ledger record. */
  plugins: string[];
  /** Set when the host is the SSH endpoint of a running cloud instance Tether launched. */
  cloud?: { ledgerId: string; name: string; provider: string };
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
  private dockerApi: Docker | undefined;
  private sshMon: SshHostMonitor | undefined;

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

  /** The Docker engine client (created on first use; honours DOCKER_HOST). */
  get docker(): Docker {
    return (this.dockerApi ??= dockerClient());
  }

  /** The SSH connections and remote polls (created on first use: one connection per host). */
  get ssh(): SshHostMonitor {
    return (this.sshMon ??= this.opts.sshMonitor ?? new SshHostMonitor(new SshConnectionPool({ log: this.log, ...this.opts.ssh }), { log: this.log }));
  }

  /** Closes the engine's SSH connections (not a shared monitor's). Later calls reconnect. */
  dispose(): void {
    if (this.sshMon && this.sshMon !== this.opts.sshMonitor) this.sshMon.closeAll();
  }

  /** The plugin object for a declared name (kept, so protocol calls see the same instance). */
  plugin(spec: PluginSpec): DeclaredPlugin {
    let p = this.plugins.get(spec.name);
    if (!p || JSON.stringify(p === undefined ? undefined : this.specOf(p)) !== JSON.stringify(spec)) {
      const prev = p?.ledgerRecord;
      const deps: SubprocessDeps = {
        workspace: this.workspace,
        ledger: this.ledger,
        tracker: this.tracker,
        owner: this.owner,
        log: this.log,
        ...(this.opts.startupCheckMs === undefined ? {} : { startupCheckMs: this.opts.startupCheckMs }),
      };
      if (spec.host) {
        p = new RemoteSshPlugin(spec as RemotePluginSpec, {
          ledger: this.ledger,
          monitor: this.ssh,
          owner: this.owner,
          log: this.log,
          workspace: this.workspace,
          ...(this.opts.startupCheckMs === undefined ? {} : { startupCheckMs: this.opts.startupCheckMs }),
        });
      } else if (spec.docker) {
        p = new DockerPlugin(dockerSpecFromPlugin(spec), { ...deps, docker: this.docker });
      } else if (spec.conda) {
        p = new CondaPlugin(spec, deps);
      } else {
        p = new SubprocessPlugin(spec, deps);
      }
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
        if (existing?.kind === 'ssh') {
          await this.pollRemote([existing]); // closes the record when the host says nothing is left
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
    if (err instanceof RemoteStartError) return; // the remote plugin closes its own record, or keeps it when the outcome is unknown (found later by its marker)
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
    if (record.kind === 'ssh') {
      if (spec?.host && spec.host === record.host) {
        const p = this.plugin(spec) as RemoteSshPlugin;
        p.attach(record);
        return p.stop(grace);
      }
      return this.stopById(record.id, grace);
    }
    if (record.kind === 'docker') {
      if (spec?.docker) {
        const p = this.plugin(spec) as DockerPlugin;
        p.attach(record);
        return containerStopAsReport(await p.stop(grace / 1000), record);
      }
      return this.stopById(record.id, grace);
    }
    if (spec && !spec.docker && !spec.host) {
      const p = this.plugin(spec) as SubprocessPlugin;
      p.attach(record);
      return p.stop(grace);
    }
    return stopResourceTree(record, this.ledger, this.tracker, this.log, { graceMs: grace });
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
    if (record.kind === 'ssh') {
      const list = (await this.pollRemote([record])).get(record.id);
      if (list === undefined) throw this.unreachableError(record.host!);
      return list.map((p) => p.pid);
    }
    const snap = await this.tracker.snapshot([{ id: record.id, known: beforeThisBoot(record.createdAt) ? [] : record.processes }]);
    return (snap.get(record.id) ?? []).map((p) => p.pid);
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

  /**
   * Polls remote (`kind: 'ssh'`) records, one round trip per host. A record whose host answered
   * that nothing is left is closed; a record of a host that could not be asked is absent from
   * the result (unknown, not gone) and is kept as it is.
   */
  private async pollRemote(records: readonly LedgerResource[]): Promise<Map<string, RemoteProcessInfo[]>> {
    const remote = records.filter((r) => r.kind === 'ssh' && r.host);
    if (!remote.length) return new Map();
    const polled = await this.ssh.poll(remote);
    const empty = (r: LedgerResource) => polled.get(r.id)?.length === 0;
    const gone = remote.filter((r) => empty(r) && r.state !== 'starting');
    // A `starting` record older than a minute with nothing on the host is a start that crashed.
    const staleIntents = remote.filter((r) => empty(r) && r.state === 'starting' && Date.now() - Date.parse(r.createdAt) > 60_000);
    if (!gone.length && !staleIntents.length) return polled;
    await this.ledger.update((b) => {
      for (const r of gone) {
        if (!b.resources.some((x) => x.id === r.id)) continue;
        // The host recorded how the command ended when it ended on its own.
        const code = this.ssh.exitCode(r.id);
        if (code === undefined) endIn(b, r.id, 'stopped', `no process left on ${r.host} (reconciled)`);
        else endIn(b, r.id, code === 0 ? 'stopped' : 'failed', `exited with code ${code} on ${r.host}`, { code, signal: null, at: new Date().toISOString() });
      }
      for (const r of staleIntents) if (b.resources.some((x) => x.id === r.id)) endIn(b, r.id, 'failed', `start on ${r.host} never completed (crash during start?)`);
    }, 'reconciling');
    for (const r of [...gone, ...staleIntents]) {
      this.ssh.forget(r.id);
      this.log.info(`${r.plugin}@${r.host}: no process left; ledger record ${r.id} closed`);
    }
    return polled;
  }

  /** The error to show for a host that could not be asked (its records are kept). */
  private unreachableError(host: string): TetherError {
    let err: unknown;
    try {
      err = this.ssh.connection(host).error;
    } catch (e) {
      err = e; // the spec itself cannot be resolved
    }
    if (err instanceof TetherError) return err;
    return new SshError('unreachable', `${host} is unreachable${err instanceof Error ? `: ${err.message}` : ''}`, {
      remedy: 'Its ledger records are kept; Tether retries by itself.',
    });
  }

  /** A host's status for {@link StatusReport.hosts}; `pollError` is a failure of this status call's poll. */
  private hostStatus(host: string, plugins: string[], pollError?: string): HostStatus {
    try {
      const s = this.ssh.status(host);
      const error = s.error ?? pollError;
      return {
        host,
        target: s.target,
        state: pollError && s.state === 'connected' ? 'unreachable' : s.state,
        ...(error ? { error } : {}),
        ...(s.retryAt ? { retryAt: s.retryAt } : {}),
        ...(s.gpus ? { gpus: s.gpus } : {}),
        plugins,
      };
    } catch (err) {
      return { host, state: 'unreachable', error: asTetherError(err).oneLine(), plugins };
    }
  }

  /** A remote plugin's status (declared or not); `list` undefined = its host could not be asked. */
  private remoteToStatus(
    name: string,
    record: LedgerResource | undefined,
    list: RemoteProcessInfo[] | undefined,
    reason: string | undefined,
    declared: boolean,
    host: string,
    hosts: ReadonlyMap<string, HostStatus>,
  ): PluginStatus {
    const unknown = !!record && list === undefined;
    const processes = list ?? (record ? (this.ssh.lastKnown(record.id) ?? []) : []);
    const st = this.toStatus(name, record, processes, reason, declared);
    st.kind = 'ssh';
    st.host = record?.host ?? host;
    if (!record) st.executionMode = 'remote_ssh';
    if (unknown) {
      // Unknown is not gone: the record stays, with the state it has on record.
      st.state = reason ? 'orphan' : record.state;
      const h = hosts.get(st.host);
      st.problem = `host ${st.host} is unreachable${h?.error ? ` (${h.error})` : ''}; the ledger record is kept and Tether retries ${h?.retryAt ? `from ${h.retryAt}` : 'on the next poll'}`;
    }
    return st;
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
    const snap = await this.reconcile();
    const cloudPromise: Promise<CloudStatus> = (this.opts.cloudStatus ? this.opts.cloudStatus() : this.cloud.status()).catch((err: unknown) => ({
      instances: [],
      errors: [{ provider: 'cloud', message: asTetherError(err).oneLine() }],
      costPerHour: 0,
      costSoFar: 0,
    }));
    // Remote: one round trip per host (hosts in parallel), for its records or, without any, its GPUs.
    const before = this.ledger.read().resources;
    const remoteActive = before.filter((r) => r.kind === 'ssh' && r.host);
    // A running cloud instance Tether launched is an SSH host too (GPUs, remote plugins, idle checks).
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
    const [remote] = await Promise.all([
      this.pollRemote(remoteActive),
      ...hostNames
        .filter((h) => !remoteActive.some((r) => r.host === h) && !pollErrors.has(h))
        .map((h) => this.ssh.pollGpus(h).catch((err: unknown) => void pollErrors.set(h, asTetherError(err).oneLine()))),
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
          ...body.resources.filter((r) => r.kind === 'ssh' && r.host === h).map((r) => r.plugin),
        ]),
      ];
      const unanswered = remoteActive.some((r) => r.host === h && !remote.has(r.id));
      const st = this.hostStatus(h, names, pollErrors.get(h) ?? (unanswered ? 'the poll of this host failed' : undefined));
      const c = cloudHosts.get(h);
      if (c) st.cloud = { ledgerId: c.id, name: c.plugin, provider: c.remote!.provider };
      hosts.set(h, st);
    }
    const declared = cfg ? new Set(cfg.plugins.map((p) => p.name)) : undefined;
    const plugins: PluginStatus[] = [];
    const orphans: PluginStatus[] = [];
    const active = body.resources.filter(isProcessRecord);
    for (const spec of cfg?.plugins ?? []) {
      if (spec.host) {
        const record = body.resources.find((r) => r.kind === 'ssh' && r.workspace === this.workspace && r.plugin === spec.name);
        const reason = record ? this.orphanReason(record, declared) : undefined;
        const list = record ? remote.get(record.id) : undefined;
        const st = this.remoteToStatus(spec.name, record, list, reason, true, spec.host, hosts);
        if (!record || record.host === spec.host) (this.plugin(spec) as RemoteSshPlugin).attach(record, list ?? st.processes as RemoteProcessInfo[]);
        st.command = [spec.command, ...spec.args].join(' ');
        st.healthUrl = spec.healthUrl ?? null;
        st.stopGraceMs = spec.stopGraceSeconds === undefined ? null : spec.stopGraceSeconds * 1000;
        const lastEnded = body.ended.find((r) => r.workspace === this.workspace && r.plugin === spec.name);
        if (!record && lastEnded) {
          st.state = lastEnded.state === 'failed' ? 'failed' : 'stopped';
          st.lastExit = lastEnded.exit ?? null;
          st.logPath = lastEnded.logPath ?? null;
        }
        plugins.push(st);
        if (reason) orphans.push(st);
        continue;
      }
      if (spec.docker) {
        const st = await this.dockerStatus(spec, body.resources, body.ended, declared);
        plugins.push(st);
        if (st.orphanReason) orphans.push(st);
        continue;
      }
      const record = active.find((r) => r.workspace === this.workspace && r.plugin === spec.name);
      const lastEnded = body.ended.find((r) => r.workspace === this.workspace && r.plugin === spec.name);
      const processes = record ? (snap.get(record.id) ?? []) : [];
      const reason = record ? this.orphanReason(record, declared) : undefined;
      const plugin = this.plugin(spec) as SubprocessPlugin;
      plugin.attach(record, processes);
      const st = this.toStatus(spec.name, record, processes, reason, true);
      st.command = [spec.command, ...spec.args].join(' ');
      st.healthUrl = spec.healthUrl ?? null;
      st.stopGraceMs = spec.stopGraceSeconds === undefined ? null : spec.stopGraceSeconds * 1000;
      st.logPath = plugin.logPath;
      if (!record && lastEnded) {
        st.state = lastEnded.state === 'failed' ? 'failed' : 'stopped';
        st.lastExit = lastEnded.exit ?? null;
      }
      plugins.push(st);
      if (reason) orphans.push(st);
    }
    for (const r of active) {
      if (r.workspace === this.workspace && declared?.has(r.plugin)) continue;
      const reason = this.orphanReason(r, declared);
      const st = this.toStatus(r.plugin, r, snap.get(r.id) ?? [], reason, false);
      if (r.workspace === this.workspace) plugins.push(st);
      if (reason) orphans.push(st);
    }
    for (const r of body.resources) {
      if (r.kind !== 'ssh' || !r.host) continue;
      if (r.workspace === this.workspace && cfg?.plugins.some((p) => p.name === r.plugin && p.host)) continue;
      const reason = this.orphanReason(r, declared);
      const st = this.remoteToStatus(r.plugin, r, remote.get(r.id), reason, false, r.host, hosts);
      if (r.workspace === this.workspace) plugins.push(st);
      if (reason) orphans.push(st);
    }
    if (body.resources.some((r) => r.kind === 'docker')) {
      try {
        for (const o of await findOrphanContainers(this.docker, this.ledger)) {
          if (orphans.some((x) => x.ledgerId === o.container.ledgerId)) continue;
          const st = this.toStatus(o.container.plugin ?? o.container.name, o.record, [], o.reason, false);
          st.kind = 'docker';
          st.state = 'orphan';
          st.ledgerId = o.record?.id ?? o.container.ledgerId ?? null;
          st.container = { id: o.container.id, name: o.container.name, image: o.container.image, state: o.container.state, ports: [] };
          orphans.push(st);
          if (o.record?.workspace === this.workspace) plugins.push(st);
        }
      } catch (err) {
        this.log.warn(`cannot look for orphaned containers: ${asTetherError(err).oneLine()}`);
      }
    }
    const running = plugins.filter((p) => p.processes.length > 0 || p.container?.state === 'running');
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

  /** A declared container plugin: its record, what Docker says, and its host process tree. */
  private async dockerStatus(
    spec: PluginSpec,
    active: LedgerResource[],
    ended: LedgerResource[],
    declared: ReadonlySet<string> | undefined,
  ): Promise<PluginStatus> {
    const record = active.find((r) => r.kind === 'docker' && r.workspace === this.workspace && r.plugin === spec.name);
    const plugin = this.plugin(spec) as DockerPlugin;
    plugin.attach(record);
    let problem: string | undefined;
    let cs: Awaited<ReturnType<DockerPlugin['refresh']>>;
    if (record) {
      try {
        cs = await plugin.refresh();
      } catch (err) {
        problem = asTetherError(err).oneLine();
      }
      if (cs && !cs.running) {
        // The container exited or vanished: the run is over.
        const failed = cs.exitCode !== null && cs.exitCode !== 0 && record.state !== 'stopping';
        await this.ledger.end(record.id, failed ? 'failed' : 'stopped', `container ${cs.state}`, { code: cs.exitCode, signal: null, at: new Date().toISOString() });
      }
    }
    const live = record && cs?.running ? record : undefined;
    const reason = live ? this.orphanReason(live, declared) : undefined;
    const st = this.toStatus(spec.name, live, cs?.running ? cs.processes : [], reason, true);
    st.kind = 'docker';
    st.command = `${spec.docker!.image}${spec.args.length || spec.command ? ` ${[spec.command, ...spec.args].filter(Boolean).join(' ')}` : ''}`;
    st.healthUrl = spec.healthUrl ?? null;
    if (cs && live) {
      st.container = { id: cs.containerId, name: cs.name, image: cs.image, state: cs.state, ports: cs.ports };
      try {
        const stats = await plugin.stats();
        if (stats) Object.assign(st.container, { cpuPercent: stats.cpuPercent, memoryBytes: stats.memoryBytes });
      } catch (err) {
        this.log.debug(`${spec.name}: no container stats: ${asTetherError(err).oneLine()}`);
      }
    }
    if (problem) {
      st.problem = problem;
      if (record) st.state = record.state === 'failed' ? 'failed' : 'running';
    }
    if (!live && !problem) {
      const last = ended.find((r) => r.workspace === this.workspace && r.plugin === spec.name);
      if (last) {
        st.state = last.state === 'failed' ? 'failed' : 'stopped';
        st.lastExit = last.exit ?? null;
      }
    }
    return st;
  }

  private toStatus(
    name: string,
    record: LedgerResource | undefined,
    processes: ProcessInfo[],
    orphanReason: string | undefined,
    declared: boolean,
  ): PluginStatus {
    let state: PluginState = 'stopped';
    if (record) {
      state = orphanReason ? 'orphan' : record.state === 'failed' ? 'failed' : processes.length ? (record.state === 'stopping' ? 'stopping' : 'running') : record.state;
    }
    return {
      name,
      kind: 'local',
      executionMode: record?.executionMode ?? 'subprocess',
      state,
      declared,
      ...(orphanReason ? { orphanReason } : {}),
      ledgerId: record?.id ?? null,
      workspace: record?.workspace ?? (declared ? this.workspace : null),
      owner: record?.owner ?? null,
      ownedByMe: !!record?.owner && record.owner.pid === this.owner.pid && record.owner.startTime === this.owner.startTime,
      command: record?.command ? [record.command.command, ...record.command.args].join(' ') : (processes[0]?.command ?? ''),
      logPath: record?.logPath ?? null,
      healthUrl: null,
      stopGraceMs: null,
      startedAt: record?.createdAt ?? null,
      lastExit: record?.exit ?? null,
      processes,
    };
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
        if (o.kind === 'docker' && o.container && !this.ledger.read().resources.some((r) => r.id === o.ledgerId)) {
          return removeTetherContainer(this.docker, o.container.id, { ledger: this.ledger, graceSeconds: graceMs / 1000, log: this.log, reason: `orphan: ${o.orphanReason}` });
        }
        return o.ledgerId ? this.stopById(o.ledgerId, graceMs, `orphan: ${o.orphanReason}`) : undefined;
      }),
    );
    return {
      killed: orphans.filter((_, i) => results[i]!.status === 'fulfilled').map((o) => o.name),
      errors: results.flatMap((r) => (r.status === 'rejected' ? [asTetherError(r.reason)] : [])),
    };
  }

  /** Stops the process tree of one ledger record, whoever started it. */
  async stopById(ledgerId: string, graceMs = 2000, reason?: string): Promise<StopReport | undefined> {
    const record = this.ledger.read().resources.find((r) => r.id === ledgerId);
    if (record?.kind === 'docker' && record.container) {
      const r = await removeTetherContainer(this.docker, record.container.id, { ledger: this.ledger, graceSeconds: graceMs / 1000, log: this.log, ...(reason ? { reason } : {}) });
      return containerStopAsReport(r, record);
    }
    if (!record) return undefined;
    if (record.kind === 'ssh') {
      return stopRemoteResource(record, this.ledger, this.ssh, this.log, { graceMs, ...(reason ? { reason } : {}) });
    }
    return stopResourceTree(record, this.ledger, this.tracker, this.log, { graceMs, ...(reason ? { reason } : {}) });
  }

  /** Takes ownership of a record (e.g. an orphan the user chose to keep). */
  async adopt(ledgerId: string): Promise<void> {
    await this.ledger.patch(ledgerId, { owner: this.owner }, `adopted by ${this.owner.kind} pid ${this.owner.pid}`);
  }
}

/** A container's stop, in the shape of a process-tree stop (its host process). */
function containerStopAsReport(r: ContainerStopReport | undefined, record: LedgerResource): StopReport | undefined {
  if (!r) return undefined;
  const host = record.processes[0];
  return {
    processes: host ? [host] : [],
    terminated: r.stoppedBy === 'signal' ? 1 : 0,
    killed: r.stoppedBy === 'SIGKILL' ? 1 : 0,
    survivors: [],
    denied: [],
  };
}

/** Records of a workspace's declared plugins: local trees, containers and remote trees. */
function isPluginRecord(r: LedgerResource): boolean {
  return r.kind === 'local' || r.kind === 'docker' || r.kind === 'ssh';
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
