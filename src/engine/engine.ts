/**
 * The engine: one workspace's declared plugins, the ledger and live polls, put together.
 * The CLI and the VS Code extension both drive this class; neither keeps state of its own.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { configPath, loadConfig, type PluginSpec, type TetherConfig } from '../core/config';
import { ConfigError, ExitCode, TetherError, UsageError, type ConfigProblem } from '../core/errors';
import { Ledger, defaultStateDir, endIn, type LedgerResource, type ResourceOwner } from '../core/ledger';
import { silentLogger, type Logger } from '../core/logger';
import { isSameProcessAlive, readEnvVar } from '../core/procfs';
import { ProcessTracker, type ProcessInfo } from '../core/processTracker';
import type { StopReport } from '../core/treeKiller';
import { LEDGER_ENV, PLUGIN_ENV, SubprocessPlugin, WORKSPACE_ENV, currentOwner, stopResourceTree, type SubprocessDeps } from '../plugins/subprocess';
import { CondaPlugin } from '../plugins/conda';
import {
  DockerPlugin,
  dockerClient,
  dockerSpecFromPlugin,
  findOrphanContainers,
  removeTetherContainer,
  type ContainerStopReport,
} from '../plugins/docker';
import type Docker from 'dockerode';

/** A plugin declared in tether.json: a local subprocess (maybe in a conda env) or a container. */
export type DeclaredPlugin = SubprocessPlugin | DockerPlugin;

export type PluginState = 'running' | 'starting' | 'stopping' | 'stopped' | 'failed' | 'orphan';

/** One plugin (declared, or found in the ledger) as `tether status --json` prints it. */
export interface PluginStatus {
  name: string;
  /** local: a process tree on this machine; docker: a container (its host process tree below it). */
  kind: 'local' | 'docker';
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
  container?: { id: string; name: string; image: string; state: string; ports: string[] };
  /** A problem reading this plugin's state (e.g. the Docker engine is not running). */
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
  totals: { running: number; processes: number; costPerHour: number };
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
}

export class Engine {
  readonly workspace: string;
  readonly ledger: Ledger;
  readonly tracker: ProcessTracker;
  readonly owner: ResourceOwner;
  private readonly log: Logger;
  private readonly plugins = new Map<string, DeclaredPlugin>();
  private dockerApi: Docker | undefined;

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

  /** The Docker engine client (created on first use; honours DOCKER_HOST). */
  get docker(): Docker {
    return (this.dockerApi ??= dockerClient());
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
      if (spec.docker) {
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
    return this.ledger.read().resources.find((r) => (r.kind === 'local' || r.kind === 'docker') && r.workspace === this.workspace && r.plugin === name);
  }

  async start(name: string): Promise<LedgerResource> {
    const spec = this.requireSpec(name);
    await this.reconcile();
    const existing = this.activeRecord(name);
    if (existing) {
      const pid = existing.processes[0]?.pid;
      throw new TetherError(`${name} is already running${pid ? ` (pid ${pid})` : ''}`, {
        remedy: `Stop it first (tether stop ${name}) or restart it.`,
      });
    }
    return this.plugin(spec).start();
  }

  /** Stops a plugin of this workspace. Resolves to undefined when it was not running. */
  async stop(name: string, graceMs?: number): Promise<StopReport | undefined> {
    const record = this.activeRecord(name);
    const spec = this.config()?.plugins.find((p) => p.name === name);
    if (!record) {
      if (!spec) this.requireSpec(name); // unknown name: say so
      return undefined;
    }
    const grace = graceMs ?? this.opts.graceMs ?? (spec?.stopGraceSeconds ?? 5) * 1000;
    if (record.kind === 'docker') {
      if (spec?.docker) {
        const p = this.plugin(spec) as DockerPlugin;
        p.attach(record);
        return containerStopAsReport(await p.stop(grace / 1000), record);
      }
      return this.stopById(record.id, grace);
    }
    if (spec && !spec.docker) {
      const p = this.plugin(spec) as SubprocessPlugin;
      p.attach(record);
      return p.stop(grace);
    }
    return stopResourceTree(record, this.ledger, this.tracker, this.log, { graceMs: grace });
  }

  async restart(name: string): Promise<LedgerResource> {
    await this.stop(name);
    return this.start(name);
  }

  /** Stops every running plugin of this workspace. */
  async down(graceMs?: number): Promise<{ stopped: string[]; errors: TetherError[] }> {
    const names = [
      ...new Set(
        this.ledger
          .read()
          .resources.filter((r) => (r.kind === 'local' || r.kind === 'docker') && r.workspace === this.workspace)
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
    const snap = await this.tracker.snapshot([{ id: record.id, known: record.processes }]);
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
    const local = body.resources.filter(isProcessRecord);
    const markers = await this.tracker.sweepMarkers();
    const snap = await this.tracker.snapshot(local.map((r) => ({ id: r.id, known: r.processes })));
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
        processes: live.map((p) => ({ pid: p.pid, startTime: p.startTime, ppid: p.ppid, command: p.command })),
        history: [{ at: now, state: 'running', note: 'found by its marker; it was missing from the ledger' }],
      });
    }
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
    const body = this.ledger.read();
    const declared = cfg ? new Set(cfg.plugins.map((p) => p.name)) : undefined;
    const plugins: PluginStatus[] = [];
    const orphans: PluginStatus[] = [];
    const active = body.resources.filter(isProcessRecord);
    for (const spec of cfg?.plugins ?? []) {
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
      totals: {
        running: running.length,
        processes: running.reduce((n, p) => n + p.processes.length, 0),
        costPerHour: 0,
      },
    };
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
    if (cs && live) st.container = { id: cs.containerId, name: cs.name, image: cs.image, state: cs.state, ports: cs.ports };
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

/** Records whose resources are local process trees (declared plugins and API plugins). */
function isProcessRecord(r: LedgerResource): boolean {
  return r.kind === 'local' || r.kind === 'api';
}

export function asTetherError(err: unknown): TetherError {
  if (err instanceof TetherError) return err;
  return new TetherError(err instanceof Error ? err.message : String(err), {
    remedy: 'See the Tether log for details.',
    exitCode: ExitCode.FAILED,
    cause: err,
  });
}
