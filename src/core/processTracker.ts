/**
 * Finds every process of a tracked tree, cheaply enough to poll every second.
 *
 * Two mechanisms, combined:
 * 1. A walk down /proc/PID/task/TID/children from each known root: children, grandchildren...
 * 2. An environment marker (`TETHER_RESOURCE_ID=<ledger id>`) that every descendant inherits.
 *    A process that double-forks and calls setsid leaves the tree (it is re-parented to PID 1)
 *    but keeps the marker. Markers are read only from processes that are new since the last
 *    sweep. The cache is keyed by PID *and* start time: a PID counts as already seen only while
 *    the process holding it started when the cached one did. The counter can wrap all the way
 *    round between two sweeps (pid_max is often 32768; polls pause while VS Code is unfocused),
 *    so "not allocated since the last sweep" (/proc/sys/kernel/ns_last_pid) alone cannot prove
 *    that a PID still names the same process.
 * Reads of /proc are synchronous (about 30 µs each, against about 250 µs through libuv's
 * thread pool) but time-sliced: after each millisecond of work the poll yields to the event
 * loop, so it never blocks VS Code's extension host for long, however many processes there are.
 */
import {
  CLOCK_TICKS_PER_SECOND,
  childrenOf,
  isGoneState,
  lastPid,
  listPids,
  readCmdline,
  readEnvVarAsync,
  readStat,
  selfAndAncestors,
  startTimeToDate,
  type ProcStat,
  type ProcessIdentity,
} from './procfs';

/** Environment variable that marks every process of a Tether resource. */
export const MARKER_ENV = 'TETHER_RESOURCE_ID';

/** One process of a tracked tree, as the tree view and `tether status --json` show it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (the identity half that PIDs lack). */
  startTime: number;
  /** ISO time the process started. */
  startedAt: string;
  command: string;
  state: string;
  /** Share of one CPU over the last poll interval, 0–100 × cores. Null on the first poll. */
  cpuPercent: number | null;
  rssBytes: number;
  /** True when it left the tree (re-parented away from it) and was found by its marker. */
  escaped: boolean;
}

export interface TrackedResource {
  id: string;
  /** Processes known to belong to the resource (the root at least). Dead ones are skipped. */
  known: readonly ProcessIdentity[];
}

const key = (p: ProcessIdentity) => `${p.pid}:${p.startTime}`;

/** Reads a process's stat line (undefined when it is gone). */
type StatReader = (pid: number) => ProcStat | undefined;

/** Cooperative time slicing: `tick()` yields to the event loop once a slice is used up. */
export class TimeSlicer {
  /** When true, every slice's start and duration (ms) are appended to {@link slices} (benchmark). */
  static recording = false;
  static slices: Array<{ startMs: number; wallMs: number }> = [];
  private start = performance.now();
  private open = true;
  constructor(private readonly sliceMs = 0.5) {}

  /** Yields to the event loop once the current slice has used its time. */
  async tick(): Promise<void> {
    if (performance.now() - this.start < this.sliceMs) return;
    this.end();
    await new Promise<void>((r) => setImmediate(r));
    this.resumed();
  }

  /** Starts a new slice after an `await` that gave the event loop back. */
  resumed(): void {
    this.start = performance.now();
    this.open = true;
  }

  /** Closes the current slice (before an `await`, and when the work is done). */
  end(): void {
    if (!this.open) return;
    this.open = false;
    if (TimeSlicer.recording) TimeSlicer.slices.push({ startMs: this.start, wallMs: performance.now() - this.start });
  }
}

/** What the tracker knows of one process: who it is and the marker it carries (or null). */
interface MarkerEntry {
  startTime: number;
  marker: string | null;
}

export class ProcessTracker {
  /** PID → the process (start time) seen there and its marker value (or null). */
  private markerByPid = new Map<number, MarkerEntry>();
  private lastSeenPid: number | undefined;
  private cpuPrev = new Map<string, { ticks: number; atMs: number }>();
  private lineageCache: { ppid: number | undefined; keys: Set<string> } | undefined;
  private cmdCache = new Map<string, string>();

  /** PIDs per marker value, for every process that carries {@link MARKER_ENV}. */
  async sweepMarkers(slicer = new TimeSlicer()): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const [v, ids] of await this.sweep(slicer)) out.set(v, ids.map((p) => p.pid));
    return out;
  }

  /** Processes (PID + start time) per marker value. */
  private async sweep(slicer: TimeSlicer, statOf: StatReader = readStat): Promise<Map<string, ProcessIdentity[]>> {
    const before = this.lastSeenPid;
    const now = lastPid();
    // No PID allocated since the last sweep: no process can have appeared (short of a counter
    // that went exactly all the way round), so the markers known are complete. Those reported
    // are still checked against their start times.
    if (now !== undefined && now === before) return this.markersByValue(statOf);
    slicer.end();
    const pids = await listPids();
    slicer.resumed();
    const live = new Set(pids);
    for (const pid of this.markerByPid.keys()) if (!live.has(pid)) this.markerByPid.delete(pid);
    const allocatedSince = (pid: number): boolean => {
      if (before === undefined || now === undefined) return false;
      if (now === before) return false;
      if (now > before) return pid > before && pid <= now;
      return pid > before || pid <= now; // wrapped around pid_max
    };
    const fresh: Array<{ pid: number; startTime: number }> = [];
    for (const pid of pids) {
      const cached = this.markerByPid.get(pid);
      // A cached PID counts as seen only while the same process holds it (same start time).
      const st = readStat(pid);
      if (!st) {
        this.markerByPid.delete(pid);
      } else if (!cached || cached.startTime !== st.startTime || allocatedSince(pid)) {
        this.markerByPid.delete(pid);
        fresh.push({ pid, startTime: st.startTime });
      }
      await slicer.tick();
    }
    // Off the event loop, 64 at a time (the thread pool has 4 threads; more only queue up).
    for (let i = 0; i < fresh.length; i += 64) {
      const batch = fresh.slice(i, i + 64);
      slicer.end();
      const values = await Promise.all(batch.map((p) => readEnvVarAsync(p.pid, MARKER_ENV)));
      slicer.resumed();
      batch.forEach((p, j) => {
        // The environment belongs to the process read before it only if that one still holds the PID.
        if (readStat(p.pid)?.startTime === p.startTime) this.markerByPid.set(p.pid, { startTime: p.startTime, marker: values[j] ?? null });
      });
      await slicer.tick();
    }
    this.lastSeenPid = now;
    return this.markersByValue(statOf);
  }

  /** The cached markers, each re-checked: a PID now held by another process is dropped (and re-read next sweep). */
  private markersByValue(statOf: StatReader): Map<string, ProcessIdentity[]> {
    const out = new Map<string, ProcessIdentity[]>();
    for (const [pid, e] of this.markerByPid) {
      if (!e.marker) continue;
      if (statOf(pid)?.startTime !== e.startTime) {
        this.markerByPid.delete(pid);
        continue;
      }
      const id = { pid, startTime: e.startTime };
      const list = out.get(e.marker);
      if (list) list.push(id);
      else out.set(e.marker, [id]);
    }
    return out;
  }

  /**
   * Tether and its ancestors (PID + start time), for leaving them out of the trees shown. Read
   * again only when this process's parent changed; a stale entry can only leave a process out of
   * a tree as shown, never put one in — and every signal checks the lineage afresh.
   */
  private lineage(statOf: StatReader): Set<string> {
    const ppid = statOf(process.pid)?.ppid;
    if (!this.lineageCache || this.lineageCache.ppid !== ppid) {
      this.lineageCache = { ppid, keys: new Set(selfAndAncestors().map(key)) };
    }
    return this.lineageCache.keys;
  }

  /**
   * Every live process of each resource: the known roots, their descendants, and any process
   * carrying the resource's marker (with its own descendants).
   */
  async snapshot(resources: readonly TrackedResource[]): Promise<Map<string, ProcessInfo[]>> {
    const slicer = new TimeSlicer();
    // One read of each process's stat per snapshot: the marker check, the known roots and the
    // walk all see the same reading (signals re-read it: src/core/procfs.ts signalIfSame).
    const memo = new Map<number, ProcStat | null>();
    const statOf: StatReader = (pid) => {
      let st = memo.get(pid);
      if (st === undefined) memo.set(pid, (st = readStat(pid) ?? null));
      return st ?? undefined;
    };
    const markers = await this.sweep(slicer, statOf);
    const result = new Map<string, ProcessInfo[]>();
    const nowMs = Date.now();
    const seenKeys = new Set<string>();
    // Tether and its ancestors may carry a plugin's marker (launched from inside its tree): they
    // are never one of its processes (their other children may be), and Tether's own children
    // are not walked into.
    const lineage = this.lineage(statOf);
    for (const res of resources) {
      const stats = new Map<number, ProcStat>();
      const queue: ProcStat[] = [];
      const add = (st: ProcStat | undefined) => {
        if (!st || isGoneState(st.state) || stats.has(st.pid)) return;
        stats.set(st.pid, st);
        queue.push(st);
      };
      // Known processes count only while they are still the same process.
      for (const k of res.known) {
        const st = statOf(k.pid);
        if (st && st.startTime === k.startTime) add(st);
      }
      for (const m of markers.get(res.id) ?? []) {
        const st = statOf(m.pid);
        if (st && st.startTime === m.startTime) add(st);
      }
      // Breadth-first walk down the children files.
      for (let i = 0; i < queue.length; i++) {
        const st = queue[i]!;
        if (st.pid === process.pid) continue;
        for (const child of childrenOf(st.pid, st.numThreads)) if (!stats.has(child)) add(statOf(child));
        await slicer.tick();
      }
      const infos: ProcessInfo[] = [];
      for (const st of stats.values()) {
        const k = key(st);
        if (lineage.has(k)) continue;
        seenKeys.add(k);
        const prev = this.cpuPrev.get(k);
        const cpuPercent =
          prev && nowMs > prev.atMs
            ? Math.max(0, ((st.cpuTicks - prev.ticks) / CLOCK_TICKS_PER_SECOND / ((nowMs - prev.atMs) / 1000)) * 100)
            : null;
        this.cpuPrev.set(k, { ticks: st.cpuTicks, atMs: nowMs });
        let command = this.cmdCache.get(k);
        if (command === undefined) {
          const argv = readCmdline(st.pid);
          command = argv.length ? argv.join(' ') : `[${st.comm}]`;
          this.cmdCache.set(k, command);
        }
        infos.push({
          pid: st.pid,
          ppid: st.ppid,
          startTime: st.startTime,
          startedAt: startTimeToDate(st.startTime).toISOString(),
          command,
          state: st.state,
          cpuPercent,
          rssBytes: st.rssBytes,
          escaped: res.known.length > 0 && !stats.has(st.ppid) && !res.known.some((r) => r.pid === st.pid && r.startTime === st.startTime),
        });
      }
      // Roots first, then by start time: a stable order for the tree view.
      infos.sort((a, b) => a.startTime - b.startTime || a.pid - b.pid);
      result.set(res.id, infos);
      await slicer.tick();
    }
    for (const k of this.cpuPrev.keys()) if (!seenKeys.has(k)) this.cpuPrev.delete(k);
    for (const k of this.cmdCache.keys()) if (!seenKeys.has(k)) this.cmdCache.delete(k);
    slicer.end();
    return result;
  }
}
