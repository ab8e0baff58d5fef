/**
 * Remote plugins (execution mode `remote_ssh`) and the per-host monitor the engine polls.
 *
 * A remote plugin is declared like a local one plus `host`. Starting it records a ledger intent
 * (kind 'ssh', with the host) before anything runs remotely, then launches the command detached
 * on the host (it survives the SSH connection) and records the root's remote PID + start time.
 * Polls and stops are one round trip per host (see remote.ts). A host that cannot be reached
 * keeps its ledger entries: its resources are reported as unknown, never as gone, and the
 * connection recovers by itself on a later poll.
 */
import type { PluginSpec } from '../../core/config';
import { TetherError } from '../../core/errors';
import type { Ledger, LedgerResource, ResourceOwner } from '../../core/ledger';
import { silentLogger, type Logger } from '../../core/logger';
import type { ProcessIdentity } from '../../core/procfs';
import { CLOCK_TICKS_PER_SECOND } from '../../core/procfs';
import type { ProcessInfo } from '../../core/processTracker';
import { CloudProviderType, PluginExecutionMode, PluginMetadata, remoteResourceInfo, type LifecycleAwarePlugin } from '../../core/protocols';
import { SshConnectionPool, SshDroppedError, SshError, SshTimeoutError, type HostState, type SshConnection } from './connection';
import {
  buildPollScript,
  buildStartScript,
  buildStopScript,
  isExitWrapper,
  parsePollOutput,
  parseStartOutput,
  parseStopOutput,
  remoteStartDate,
  shQuote,
  type GpuInfo,
  type MarkerSweepState,
  type RemoteStopReport,
  type RemoteTracked,
} from './remote';

/** A remote plugin declaration: a local one plus the host (alias or user@host:port). */
export type RemotePluginSpec = PluginSpec & { host: string };

/** One process of a remote tree; the same shape as a local {@link ProcessInfo}, plus its host. */
export interface RemoteProcessInfo extends ProcessInfo {
  /** The host spec of the resource (as in the ledger). */
  host: string;
}

export interface SshHostStatus {
  /** The spec as used in the ledger / config. */
  host: string;
  /** user@host:port the spec resolved to. */
  target: string;
  state: HostState;
  /** Why it is unreachable (one line with the remedy). */
  error?: string;
  /** When the next reconnect may be tried (ISO), while unreachable. */
  retryAt?: string;
  /** Undefined: unknown yet, or no nvidia-smi on the host. */
  gpus?: GpuInfo[];
  /** True once a poll showed the host has no nvidia-smi. */
  noGpuTool?: boolean;
  gpuError?: string;
  lastPollAt?: string;
}

export interface SshHostMonitorOptions {
  log?: Logger;
  /** Per-poll timeout; default 15 s. A timed-out poll drops the connection (it may be stalled). */
  pollTimeoutMs?: number;
}

const keyOf = (p: ProcessIdentity) => `${p.pid}:${p.startTime}`;

interface HostMemo {
  gpus?: GpuInfo[];
  noGpuTool?: boolean;
  gpuError?: string;
  lastPollAt?: string;
  bootTimeMs?: number;
  lastError?: Error;
  sweepState?: MarkerSweepState;
}

/**
 * What one process's SSH polls found in one tick, as the poll leader publishes it for the other
 * windows of the user (src/fleet/snapshot.ts): per host its status, per remote ledger record its
 * live processes on the host, or null when its host could not be asked. No secret: what the tree shows.
 */
export interface SshReading {
  /** ms since the epoch when the polls began (what it shows is at least this recent). */
  at: number;
  hosts: Record<string, SshHostStatus>;
  records: Record<string, RemoteProcessInfo[] | null>;
}

/** One host poll's outcome, kept for the rest of a tick (other folders' engines reuse it). */
interface HostPoll {
  key: string;
  startedAt: number;
  gen: number;
  settled?: boolean;
  done: Promise<{ ok: Map<string, RemoteProcessInfo[]> } | { err: Error }>;
}

/** One record per tracked remote resource of {@link SshHostMonitor.poll}: absent = unknown. */
export class SshHostMonitor {
  private readonly log: Logger;
  private readonly specs = new Map<string, SshConnection>();
  private readonly memo = new Map<string, HostMemo>();
  private readonly cpuPrev = new Map<string, { ticks: number; atMs: number }>();
  private readonly cmdCache = new Map<string, string>();
  /** How the last poll swept for markers (for tests and the benchmark). */
  lastSweep: 'full' | 'incremental' | undefined;
  /** Last processes seen per ledger id (kept while a host is unreachable). */
  private readonly lastSeen = new Map<string, RemoteProcessInfo[]>();
  /** Exit codes the hosts reported for commands that ended on their own, per ledger id. */
  private readonly exits = new Map<string, number>();
  /** Host polls of the current tick, in flight or done, by host (see {@link beginTick}). */
  private readonly hostPolls = new Map<string, HostPoll[]>();
  /** Bumped by every action on a host (start, stop): a poll begun before it is not reused. */
  private readonly hostGen = new Map<string, number>();
  private tick: { startedAt: number; reuseMs: number } | undefined;
  /** When the last tick began (kept after it ended). */
  private tickAt = 0;
  /** What this process itself learnt, per host and record, with when the poll began. */
  private readonly hostSeenAt = new Map<string, number>();
  private readonly recordSeen = new Map<string, { at: number; list: RemoteProcessInfo[] | null }>();
  private follow: { stateDir: string; reading: SshReading; freshUntil: number } | undefined;
  /** Round trips that polled a host (for tests and the benchmark). */
  hostPollCount = 0;

  /**
   * A new tick of the window's poll: until the next one, polls of the same host and records by
   * several folders' engines are shared — one in flight is joined, one done within `reuseMs` is
   * reused. `follow`: the poll leader's fresh reading of this tick (src/fleet/snapshot.ts), which
   * {@link SshBackend} shows instead of polling; undefined when this process polls itself.
   * Without a tick (the CLI) only polls in flight are joined.
   */
  beginTick(t: { intervalMs: number; follow?: { stateDir: string; reading: SshReading; freshUntil: number } }): void {
    this.tick = { startedAt: Date.now(), reuseMs: t.intervalMs };
    this.tickAt = this.tick.startedAt;
    this.hostPolls.clear();
    this.follow = t.follow;
  }

  /** The tick is over: a finished poll is no longer reused (a status() between ticks polls again). */
  endTick(): void {
    this.tick = undefined;
    for (const [h, l] of this.hostPolls) {
      const open = l.filter((p) => !p.settled);
      if (open.length) this.hostPolls.set(h, open);
      else this.hostPolls.delete(h);
    }
  }

  /** The leader's reading to show instead of polling, when this window follows it for this state folder (and it is still fresh). */
  following(stateDir: string): SshReading | undefined {
    const f = this.follow;
    return f && f.stateDir === stateDir && Date.now() <= f.freshUntil ? f.reading : undefined;
  }

  /** True when this process itself polled the host (or tried to) since the current tick began. */
  polledThisTick(host: string): boolean {
    return (this.hostSeenAt.get(host) ?? -1) >= this.tickAt;
  }

  /** What this process's own polls begun at or after `sinceMs` found (to publish for the other windows). */
  reading(sinceMs: number): SshReading {
    const hosts: Record<string, SshHostStatus> = {};
    for (const [h, at] of this.hostSeenAt) {
      if (at < sinceMs) continue;
      const s = this.status(h);
      hosts[h] = s;
    }
    const records: Record<string, RemoteProcessInfo[] | null> = {};
    for (const [id, r] of this.recordSeen) if (r.at >= sinceMs) records[id] = r.list;
    return { at: sinceMs, hosts, records };
  }

  /** An action changed what runs on a host: later polls ask it again. */
  invalidate(host: string): void {
    this.hostGen.set(host, (this.hostGen.get(host) ?? 0) + 1);
    this.hostPolls.delete(host);
  }

  /** One poll of a host for these records, shared with the other engines of this tick. */
  private sharedPollHost(host: string, recs: readonly LedgerResource[]): Promise<Map<string, RemoteProcessInfo[]>> {
    const key = recs
      .map((r) => `${r.id}=${r.processes.map(keyOf).join(',')}`)
      .sort()
      .join(' ');
    const gen = this.hostGen.get(host) ?? 0;
    const now = Date.now();
    const list = (this.hostPolls.get(host) ?? []).filter((p) => p.gen === gen);
    // A GPU poll (no record) is answered by any poll of the host in this tick.
    const found = list.find((p) => (p.key === key || !recs.length) && (!p.settled || (!!this.tick && now - p.startedAt <= this.tick.reuseMs)));
    if (found) {
      return found.done.then((r) => {
        if ('err' in r) throw r.err;
        return new Map([...r.ok].filter(([id]) => recs.some((x) => x.id === id)));
      });
    }
    const entry: HostPoll = {
      key,
      startedAt: now,
      gen,
      done: this.pollHost(host, recs).then(
        (ok) => ({ ok }),
        (err: unknown) => ({ err: err as Error }),
      ),
    };
    void entry.done.then(() => {
      entry.settled = true;
      // Without a tick (the CLI), a finished poll is not reused.
      if (!this.tick) this.hostPolls.set(host, (this.hostPolls.get(host) ?? []).filter((p) => p !== entry));
    });
    this.hostPolls.set(host, [...list, entry]);
    return entry.done.then((r) => {
      if ('err' in r) throw r.err;
      return r.ok;
    });
  }

  /** The exit code of a remote command that ended on its own, as its host recorded it (undefined: unknown, or stopped by Tether). */
  exitCode(id: string): number | undefined {
    return this.exits.get(id);
  }

  constructor(
    readonly pool: SshConnectionPool,
    private readonly opts: SshHostMonitorOptions = {},
  ) {
    this.log = opts.log ?? pool.opts.log ?? silentLogger;
  }

  /** The shared connection of a host spec (resolved once per spec). */
  connection(host: string): SshConnection {
    let c = this.specs.get(host);
    if (!c) {
      c = this.pool.get(host);
      this.specs.set(host, c);
    }
    return c;
  }

  hostState(host: string): HostState {
    return this.specs.get(host)?.state ?? 'idle';
  }

  /** GPUs of the host from the last successful poll; undefined when unknown or absent. */
  gpus(host: string): GpuInfo[] | undefined {
    return this.memo.get(host)?.gpus;
  }

  /** Status of every host seen so far. */
  hosts(): SshHostStatus[] {
    return [...this.specs.entries()].map(([host, c]) => this.status(host, c));
  }

  status(host: string, c = this.connection(host)): SshHostStatus {
    const m = this.memo.get(host) ?? {};
    const err = c.state === 'connected' ? undefined : (c.error ?? m.lastError);
    return {
      host,
      target: c.key,
      state: c.state,
      ...(err && c.state !== 'idle' ? { error: err instanceof TetherError ? err.oneLine() : err.message } : {}),
      ...(c.state === 'unreachable' && c.retryAt ? { retryAt: new Date(c.retryAt).toISOString() } : {}),
      ...(m.gpus ? { gpus: m.gpus } : {}),
      ...(m.noGpuTool ? { noGpuTool: true } : {}),
      ...(m.gpuError ? { gpuError: m.gpuError } : {}),
      ...(m.lastPollAt ? { lastPollAt: m.lastPollAt } : {}),
    };
  }

  /** The processes last seen for a resource (also while its host is unreachable). */
  lastKnown(id: string): RemoteProcessInfo[] | undefined {
    return this.lastSeen.get(id);
  }

  /** Connects (or reconnects) a host now, ignoring the back-off window. */
  async connect(host: string): Promise<void> {
    await this.connection(host).connect(true);
  }

  disconnect(host: string): void {
    this.specs.get(host)?.close();
  }

  private tracked(r: LedgerResource): RemoteTracked {
    const known = new Map<string, ProcessIdentity>();
    for (const p of r.processes) known.set(keyOf(p), { pid: p.pid, startTime: p.startTime });
    for (const p of this.lastSeen.get(r.id) ?? []) known.set(keyOf(p), { pid: p.pid, startTime: p.startTime });
    const createdAtMs = Date.parse(r.createdAt);
    return { id: r.id, known: [...known.values()], ...(Number.isFinite(createdAtMs) ? { createdAtMs } : {}) };
  }

  /**
   * One round trip per host (hosts in parallel) for every `kind: 'ssh'` record given. The map
   * holds every resource whose host answered ([] = provably nothing left); resources of an
   * unreachable host are absent (unknown) — see {@link hostState} and {@link lastKnown}.
   */
  async poll(records: readonly LedgerResource[]): Promise<Map<string, RemoteProcessInfo[]>> {
    const byHost = new Map<string, LedgerResource[]>();
    for (const r of records) {
      if (r.kind !== 'ssh' || !r.host) continue;
      const l = byHost.get(r.host);
      if (l) l.push(r);
      else byHost.set(r.host, [r]);
    }
    const result = new Map<string, RemoteProcessInfo[]>();
    await Promise.all(
      [...byHost.entries()].map(async ([host, recs]) => {
        try {
          const m = await this.sharedPollHost(host, recs);
          for (const [id, list] of m) result.set(id, list);
        } catch (err) {
          const memo = this.memo.get(host) ?? {};
          memo.lastError = err as Error;
          this.memo.set(host, memo);
          this.log.debug(`ssh poll ${host}: ${(err as Error).message}`);
        }
      }),
    );
    return result;
  }

  /** Polls only the GPUs (and reachability) of a host with nothing tracked on it. */
  async pollGpus(host: string): Promise<GpuInfo[] | undefined> {
    await this.sharedPollHost(host, []);
    return this.gpus(host);
  }

  /** One round trip to a host (see {@link sharedPollHost}); remembers what it found for {@link reading}. */
  private async pollHost(host: string, recs: readonly LedgerResource[]): Promise<Map<string, RemoteProcessInfo[]>> {
    const at = Date.now();
    this.hostSeenAt.set(host, at);
    try {
      const m = await this.pollHostOnce(host, recs);
      for (const r of recs) this.recordSeen.set(r.id, { at, list: m.get(r.id) ?? [] });
      return m;
    } catch (err) {
      for (const r of recs) this.recordSeen.set(r.id, { at, list: null });
      throw err;
    }
  }

  private async pollHostOnce(host: string, recs: readonly LedgerResource[]): Promise<Map<string, RemoteProcessInfo[]>> {
    const conn = this.connection(host);
    const tracked = recs.map((r) => this.tracked(r));
    const prefix = `${host}|`;
    const knownCmd: ProcessIdentity[] = [];
    for (const k of this.cmdCache.keys()) {
      if (!k.startsWith(prefix)) continue;
      const [pid, st] = k.slice(prefix.length).split(':');
      knownCmd.push({ pid: Number(pid), startTime: Number(st) });
    }
    const prevMemo = this.memo.get(host);
    const script = buildPollScript(tracked, knownCmd, prevMemo?.sweepState);
    const run = () => {
      this.hostPollCount++;
      return conn.exec('/bin/sh -s', { stdin: script, timeoutMs: this.opts.pollTimeoutMs ?? 15_000 });
    };
    let res;
    try {
      res = await run();
    } catch (err) {
      // A poll only reads: after a drop, try once more on a fresh connection.
      if (err instanceof SshDroppedError) res = await run();
      else {
        if (err instanceof SshTimeoutError) conn.reset();
        throw err;
      }
    }
    const out = parsePollOutput(res.stdout);
    if (!out.complete) {
      throw new SshError('protocol', `Incomplete poll output from ${conn.key} (exit ${res.code}): ${res.stderr.trim().slice(0, 200)}`, {
        remedy: 'The host needs /bin/sh, grep and tr; check the host.',
      });
    }
    const nowMs = Date.now();
    const memo: HostMemo = {
      ...(out.gpus ? { gpus: out.gpus } : {}),
      ...(out.gpus === undefined && out.gpuError === undefined ? { noGpuTool: true } : {}),
      ...(out.gpuError !== undefined ? { gpuError: out.gpuError } : {}),
      lastPollAt: new Date(nowMs).toISOString(),
      bootTimeMs: out.bootTimeMs,
      ...(out.sweepState ? { sweepState: out.sweepState } : {}),
    };
    this.lastSweep = out.sweep;
    this.memo.set(host, memo);
    for (const [id, code] of out.exits) this.exits.set(id, code);
    const result = new Map<string, RemoteProcessInfo[]>();
    const seenKeys = new Set<string>();
    for (const [i, t] of tracked.entries()) {
      const roots = recs[i]!.processes;
      const stats = out.byId.get(t.id) ?? [];
      const pids = new Set(stats.map((s) => s.pid));
      const infos: RemoteProcessInfo[] = stats.map((st) => {
        const k = `${prefix}${st.pid}:${st.startTime}`;
        seenKeys.add(k);
        const prev = this.cpuPrev.get(k);
        const cpuPercent =
          prev && nowMs > prev.atMs ? Math.max(0, ((st.cpuTicks - prev.ticks) / CLOCK_TICKS_PER_SECOND / ((nowMs - prev.atMs) / 1000)) * 100) : null;
        this.cpuPrev.set(k, { ticks: st.cpuTicks, atMs: nowMs });
        if (st.command !== undefined) this.cmdCache.set(k, st.command);
        return {
          host,
          pid: st.pid,
          ppid: st.ppid,
          startTime: st.startTime,
          startedAt: remoteStartDate(out.bootTimeMs, st.startTime).toISOString(),
          command: st.command ?? this.cmdCache.get(k) ?? `[${st.comm}]`,
          state: st.state,
          cpuPercent,
          rssBytes: st.rssBytes,
          // Before the start is recorded (no roots yet) a parentless process is the root, not an escapee.
          escaped: roots.length > 0 && !pids.has(st.ppid) && !roots.some((r) => r.pid === st.pid && r.startTime === st.startTime),
        };
      });
      infos.sort((a, b) => a.startTime - b.startTime || a.pid - b.pid);
      // The exit-code wrapper is Tether's, not the plugin's: shown only while it is all that is left
      // (the moment between the command's end and its exit code being recorded).
      const shown = infos.some((p) => !isExitWrapper(p.command)) ? infos.filter((p) => !isExitWrapper(p.command)) : infos;
      result.set(t.id, shown);
      this.lastSeen.set(t.id, shown);
    }
    // Forget caches of processes of this host that were not seen (only when all its resources were polled).
    for (const m of [this.cpuPrev, this.cmdCache]) {
      for (const k of m.keys()) if (k.startsWith(prefix) && !seenKeys.has(k)) m.delete(k);
    }
    return result;
  }

  /**
   * Stops every process of a remote resource in one round trip (identity-safe TERM, grace,
   * KILL, verify). Does not touch the ledger; see {@link stopRemoteResource}.
   */
  async stopTree(record: LedgerResource, graceMs: number): Promise<RemoteStopReport> {
    if (!record.host) throw new Error(`resource ${record.id} has no host`);
    const conn = this.connection(record.host);
    this.invalidate(record.host);
    const script = buildStopScript(this.tracked(record), graceMs);
    const res = await conn.exec('/bin/sh -s', { stdin: script, timeoutMs: graceMs + 20_000 }).finally(() => this.invalidate(record.host!));
    const report = parseStopOutput(res.stdout);
    if (!report.complete) {
      throw new SshError('protocol', `Incomplete stop output from ${conn.key} (exit ${res.code}): ${res.stderr.trim().slice(0, 200)}`, {
        remedy: 'Run the stop again; the resource stays in the ledger.',
      });
    }
    if (report.survivors.length === 0) this.lastSeen.set(record.id, []);
    return report;
  }

  /** The last `lines` lines of a remote resource's log. */
  async readLog(record: LedgerResource, lines = 200): Promise<string> {
    if (!record.host || !record.logPath) return '';
    const res = await this.connection(record.host).exec(`tail -n ${Math.max(1, lines | 0)} -- ${shQuote(record.logPath)}`, { timeoutMs: 15_000 });
    return res.stdout;
  }

  /** Forgets a resource's cached processes (after it ended). */
  forget(id: string): void {
    this.lastSeen.delete(id);
    this.exits.delete(id);
    this.recordSeen.delete(id);
  }

  closeAll(): void {
    this.pool.closeAll();
  }
}

export class RemoteStartError extends TetherError {
  /** The remote plugin closes its own record, or keeps it when the outcome is unknown (found later by its marker). */
  readonly keepsIntent = true;
}

/** Shape of a remote declaration, for {@link PluginMetadata.configSchema} (the full schema is media/tether.schema.json). */
const REMOTE_PLUGIN_SCHEMA: Record<string, unknown> = {
  type: 'object',
  required: ['name', 'command', 'host'],
  properties: {
    name: { type: 'string' },
    command: { type: 'string' },
    args: { type: 'array', items: { type: 'string' } },
    host: { type: 'string', description: 'alias from ~/.ssh/config or user@host:port' },
  },
};

export interface RemotePluginDeps {
  ledger: Ledger;
  monitor: SshHostMonitor;
  owner: ResourceOwner;
  log?: Logger;
  /** Absolute workspace folder the plugin was declared in (for the ledger). */
  workspace?: string;
  /** How long the remote root must survive to count as started. Default 400 ms. */
  startupCheckMs?: number;
}

/**
 * Stops a remote resource's tree and ends its ledger record (for declared plugins and orphans).
 * Throws if processes survived SIGKILL (the record stays, state 'failed') or if the host cannot be
 * reached (the record stays as it was, state 'stopping').
 */
export async function stopRemoteResource(
  record: LedgerResource,
  ledger: Ledger,
  monitor: SshHostMonitor,
  log: Logger,
  opts: { graceMs: number; reason?: string },
): Promise<RemoteStopReport> {
  await ledger.patch(record.id, { state: 'stopping' }, opts.reason ?? 'stop requested');
  const report = await monitor.stopTree(record, opts.graceMs);
  if (report.survivors.length) {
    const pids = report.survivors.map((p) => p.pid).join(', ');
    await ledger.patch(record.id, { state: 'failed' }, `survivors after SIGKILL on ${record.host}: ${pids}`);
    throw new TetherError(`${record.plugin}: ${report.survivors.length} process(es) on ${record.host} survived SIGKILL (pids ${pids})`, {
      remedy:
        report.denied.length > 0
          ? 'They belong to another user on the host: stop them with sufficient rights.'
          : 'They may be stuck in uninterruptible I/O (state D); they stay in the ledger and Tether retries on the next stop.',
    });
  }
  await ledger.end(
    record.id,
    'stopped',
    `stopped on ${record.host}: ${report.processes.length} process(es), ${report.terminated} on SIGTERM, ${report.killed} on SIGKILL`,
  );
  monitor.forget(record.id);
  log.info(`${record.plugin}@${record.host}: stopped ${report.processes.length} process(es) (${report.terminated} SIGTERM, ${report.killed} SIGKILL, 0 left)`);
  return report;
}

export class RemoteSshPlugin implements LifecycleAwarePlugin {
  readonly metadata: PluginMetadata;
  private record: LedgerResource | undefined;
  private lastProcesses: RemoteProcessInfo[] = [];
  private readonly log: Logger;

  constructor(
    readonly spec: RemotePluginSpec,
    private readonly deps: RemotePluginDeps,
  ) {
    this.log = deps.log ?? silentLogger;
    this.metadata = new PluginMetadata({
      name: spec.name,
      category: 'remote_ssh',
      title: spec.title ?? spec.name,
      configSchema: REMOTE_PLUGIN_SCHEMA,
      executionMode: PluginExecutionMode.REMOTE_SSH,
      isConfigured: true,
      managesChildProcesses: true,
      managesExternalResources: true,
      ...(spec.description ? { description: spec.description } : {}),
    });
  }

  get ledgerRecord(): LedgerResource | undefined {
    return this.record;
  }

  /** Binds to an existing ledger record (after a reload or from the CLI). */
  attach(record: LedgerResource | undefined, processes: RemoteProcessInfo[] = []): void {
    this.record = record;
    this.lastProcesses = processes;
    this.sync();
  }

  getExecutionMode(): PluginExecutionMode {
    return PluginExecutionMode.REMOTE_SSH;
  }

  /** Remote PIDs (on {@link RemotePluginSpec.host}): the root and escapees seen by the last poll. */
  getChildPids(): number[] {
    if (!this.record) return [];
    const root = this.record.processes[0];
    const isRoot = (p: RemoteProcessInfo) => !!root && p.pid === root.pid && p.startTime === root.startTime;
    // The command right under Tether's exit-code wrapper (the recorded root, hidden from the list) is the plugin's top process.
    const isTop = (p: RemoteProcessInfo) => !!root && p.ppid === root.pid;
    return [...new Set(this.lastProcesses.filter((p) => isRoot(p) || isTop(p) || p.escaped).map((p) => p.pid))];
  }

  getManagedResources(): Record<string, unknown> {
    const pid = this.getChildPids()[0];
    return {
      host: this.spec.host,
      host_state: this.deps.monitor.hostState(this.spec.host),
      server_url: this.spec.healthUrl ?? null,
      is_running: pid !== undefined,
      pid: pid ?? null,
      log_path: this.record?.logPath ?? null,
      ledger_id: this.record?.id ?? null,
    };
  }

  async forceCleanup(): Promise<void> {
    await this.stop();
  }

  private sync(): void {
    this.metadata.spawnedPids = this.getChildPids();
    let target: { host: string; port: number } | undefined;
    try {
      const t = this.deps.monitor.connection(this.spec.host).target;
      target = { host: t.host, port: t.port };
    } catch {
      target = undefined;
    }
    this.metadata.remoteResource = remoteResourceInfo({
      provider: CloudProviderType.CUSTOM,
      ...(target ? { sshHost: target.host, sshPort: target.port } : {}),
      status: this.record && this.lastProcesses.length ? 'running' : this.record ? 'unknown' : 'stopped',
      metadata: { host: this.spec.host },
    });
  }

  /** Starts the command on the host, detached. Resolves once it survived the startup check. */
  async start(): Promise<LedgerResource> {
    const { ledger, monitor } = this.deps;
    const spec = this.spec;
    const conn = monitor.connection(spec.host); // resolves the spec: a bad one fails before the ledger is touched
    const cwd = spec.cwd && spec.cwd !== '.' ? spec.cwd : '~';
    let record = await ledger.addIntent({
      kind: 'ssh',
      host: spec.host,
      plugin: spec.name,
      ...(this.deps.workspace ? { workspace: this.deps.workspace } : {}),
      executionMode: PluginExecutionMode.REMOTE_SSH,
      owner: this.deps.owner,
      command: { command: spec.command, args: spec.args, cwd },
    });
    this.record = record;
    const checkMs = this.deps.startupCheckMs ?? 400;
    const script = buildStartScript({
      id: record.id,
      plugin: spec.name,
      command: spec.command,
      args: spec.args,
      ...(spec.cwd && spec.cwd !== '.' ? { cwd: spec.cwd } : {}),
      env: spec.env,
      markers: { TETHER_PLUGIN: spec.name },
      startupCheckSeconds: checkMs / 1000,
    });
    monitor.invalidate(spec.host);
    let out;
    try {
      const connectedBefore = conn.state === 'connected';
      try {
        out = await conn.exec('/bin/sh -s', { stdin: script, timeoutMs: checkMs + 20_000 }).finally(() => monitor.invalidate(spec.host));
      } catch (err) {
        const mayHaveRun = err instanceof SshDroppedError || err instanceof SshTimeoutError || (connectedBefore && !(err instanceof SshError));
        if (!mayHaveRun) throw err;
        // The script may have run: look for its marker before deciding.
        const found = await monitor.poll([record]).catch(() => undefined);
        const list = found?.get(record.id);
        if (list === undefined) {
          await ledger.patch(record.id, {}, `start outcome unknown: ${(err as Error).message}`);
          throw new RemoteStartError(`${spec.name}: the connection to ${spec.host} failed while starting; it may or may not run`, {
            remedy: 'Tether keeps looking for it (by its marker) on the next polls; stop it from the tree if it shows up.',
            cause: err,
          });
        }
        if (list.length === 0) throw err;
        record = (await ledger.patch(record.id, { state: 'running', processes: [{ pid: list[0]!.pid, startTime: list[0]!.startTime, command: list[0]!.command }] }, `started on ${spec.host} (found by marker)`)) ?? record;
        this.record = record;
        this.attach(record, list);
        return record;
      }
    } catch (err) {
      if (this.record?.state === 'starting' && !(err instanceof RemoteStartError)) {
        await ledger.end(record.id, 'failed', `start failed: ${(err as Error).message}`);
        this.record = undefined;
      }
      throw err;
    }
    let started;
    try {
      started = parseStartOutput(spec.name, out.stdout);
    } catch (err) {
      await ledger.end(record.id, 'failed', (err as Error).message);
      this.record = undefined;
      throw err;
    }
    record =
      (await ledger.patch(
        record.id,
        {
          state: 'running',
          processes: [{ pid: started.pid, startTime: started.startTime, command: [spec.command, ...spec.args].join(' ') }],
          logPath: started.logPath,
        },
        `started pid ${started.pid} on ${spec.host}`,
      )) ?? record;
    this.record = record;
    this.log.info(`${spec.name}: started pid ${started.pid} on ${spec.host} (ledger ${record.id}), log ${started.logPath}`);
    if (!started.alive) {
      const left = await this.refresh().catch(() => undefined);
      if (left !== undefined && left.length === 0) {
        const how = `exited at once with code ${started.exitCode ?? '?'}`;
        await ledger.end(record.id, 'failed', how, { code: started.exitCode ?? null, signal: null, at: new Date().toISOString() });
        this.record = undefined;
        this.sync();
        const tail = started.tail.filter((l) => !/ tether: starting /.test(l)).slice(-3).join(' | ');
        throw new RemoteStartError(`${spec.name} on ${spec.host}: ${how}${tail ? `; last output: ${tail}` : ''}`, {
          remedy: `Check the command and its arguments (it is looked up on the remote PATH); full output in ${started.logPath} on ${spec.host}.`,
        });
      }
    } else {
      this.lastProcesses = [];
      await this.refresh().catch(() => undefined);
    }
    return record;
  }

  /** Re-reads the remote tree (one round trip). Throws when the host is unreachable. */
  async refresh(): Promise<RemoteProcessInfo[]> {
    if (!this.record) return (this.lastProcesses = []);
    const m = await this.deps.monitor.poll([this.record]);
    const list = m.get(this.record.id);
    if (list === undefined) {
      throw (
        this.deps.monitor.connection(this.spec.host).error ??
        new SshError('unreachable', `${this.spec.host} is unreachable`, { remedy: 'Tether retries by itself.' })
      );
    }
    this.lastProcesses = list;
    this.sync();
    return list;
  }

  /** The last lines of the remote log. */
  async readLog(lines = 200): Promise<string> {
    return this.record ? this.deps.monitor.readLog(this.record, lines) : '';
  }

  /** Stops the remote tree (one round trip) and ends the ledger record. */
  async stop(graceMs?: number): Promise<RemoteStopReport | undefined> {
    const record = this.record;
    if (!record) return undefined;
    const report = await stopRemoteResource(record, this.deps.ledger, this.deps.monitor, this.log, {
      graceMs: graceMs ?? (this.spec.stopGraceSeconds ?? 5) * 1000,
    });
    this.record = undefined;
    this.lastProcesses = [];
    this.sync();
    return report;
  }
}
