/**
 * Finds every process of a tracked tree, cheaply enough to poll every second.
 *
 * Two mechanisms, combined:
 * 1. A walk down /proc/PID/task/TID/children from each known root: children, grandchildren...
 * 2. An environment marker (`TETHER_RESOURCE_ID=<ledger id>`) that every descendant inherits.
 *    A process that double-forks and calls setsid leaves the tree (it is re-parented to PID 1)
 *    but keeps the marker. Markers are read only from PIDs that are new since the last sweep:
 *    a PID is new if it was not listed before or if the kernel's last-allocated PID
 *    (/proc/sys/kernel/ns_last_pid) moved past it since, which also catches PID reuse.
 * Every read is asynchronous, so a poll never blocks the event loop on a slow /proc.
 */
import {
  CLOCK_TICKS_PER_SECOND,
  isGoneState,
  lastPid,
  listPids,
  readEnvVar,
  readStatAsync,
  startTimeToDate,
  type ProcStat,
  type ProcessIdentity,
} from './procfs';
import * as fsp from 'node:fs/promises';

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

export class ProcessTracker {
  /** PID → marker value (or null) for every PID already looked at. */
  private markerByPid = new Map<number, string | null>();
  private lastSeenPid: number | undefined;
  private cpuPrev = new Map<string, { ticks: number; atMs: number }>();
  private cmdCache = new Map<string, string>();

  /** PIDs per marker value, for every process that carries {@link MARKER_ENV}. */
  async sweepMarkers(): Promise<Map<string, number[]>> {
    const before = this.lastSeenPid;
    const now = lastPid();
    const pids = await listPids();
    const live = new Set(pids);
    for (const pid of this.markerByPid.keys()) if (!live.has(pid)) this.markerByPid.delete(pid);
    const allocatedSince = (pid: number): boolean => {
      if (before === undefined || now === undefined) return false;
      if (now === before) return false;
      if (now > before) return pid > before && pid <= now;
      return pid > before || pid <= now; // wrapped around pid_max
    };
    const fresh = pids.filter((pid) => !this.markerByPid.has(pid) || allocatedSince(pid));
    const values = await Promise.all(fresh.map((pid) => readEnvVar(pid, MARKER_ENV)));
    fresh.forEach((pid, i) => this.markerByPid.set(pid, values[i] ?? null));
    this.lastSeenPid = now;
    const out = new Map<string, number[]>();
    for (const [pid, v] of this.markerByPid) {
      if (!v) continue;
      const list = out.get(v);
      if (list) list.push(pid);
      else out.set(v, [pid]);
    }
    return out;
  }

  /**
   * Every live process of each resource: the known roots, their descendants, and any process
   * carrying the resource's marker (with its own descendants).
   */
  async snapshot(resources: readonly TrackedResource[]): Promise<Map<string, ProcessInfo[]>> {
    const markers = await this.sweepMarkers();
    const result = new Map<string, ProcessInfo[]>();
    const nowMs = Date.now();
    const seenKeys = new Set<string>();
    await Promise.all(
      resources.map(async (res) => {
        const stats = new Map<number, ProcStat>();
        // Known processes count only while they are still the same process.
        const knownStats = await Promise.all(res.known.map((k) => readStatAsync(k.pid)));
        res.known.forEach((k, i) => {
          const st = knownStats[i];
          if (st && st.startTime === k.startTime && !isGoneState(st.state)) {
            stats.set(st.pid, st);
          }
        });
        for (const pid of markers.get(res.id) ?? []) {
          if (stats.has(pid)) continue;
          const st = await readStatAsync(pid);
          if (st && !isGoneState(st.state)) {
            stats.set(pid, st);
          }
        }
        // Breadth-first walk down the children files.
        let frontier = [...stats.values()];
        while (frontier.length) {
          const childLists = await Promise.all(frontier.map((st) => childrenOfAsync(st.pid, st.numThreads)));
          const newPids = childLists.flat().filter((pid) => !stats.has(pid));
          const newStats = await Promise.all([...new Set(newPids)].map((pid) => readStatAsync(pid)));
          frontier = [];
          for (const st of newStats) {
            if (!st || isGoneState(st.state) || stats.has(st.pid)) continue;
            stats.set(st.pid, st);
            frontier.push(st);
          }
        }
        const infos = await Promise.all(
          [...stats.values()].map(async (st) => {
            const k = key(st);
            seenKeys.add(k);
            const prev = this.cpuPrev.get(k);
            const cpuPercent =
              prev && nowMs > prev.atMs
                ? Math.max(0, ((st.cpuTicks - prev.ticks) / CLOCK_TICKS_PER_SECOND / ((nowMs - prev.atMs) / 1000)) * 100)
                : null;
            this.cpuPrev.set(k, { ticks: st.cpuTicks, atMs: nowMs });
            let command = this.cmdCache.get(k);
            if (command === undefined) {
              command = await readCmdlineAsync(st.pid, st.comm);
              this.cmdCache.set(k, command);
            }
            const info: ProcessInfo = {
              pid: st.pid,
              ppid: st.ppid,
              startTime: st.startTime,
              startedAt: startTimeToDate(st.startTime).toISOString(),
              command,
              state: st.state,
              cpuPercent,
              rssBytes: st.rssBytes,
              escaped: !stats.has(st.ppid) && !res.known.some((r) => r.pid === st.pid),
            };
            return info;
          }),
        );
        // Roots first, then by start time: a stable order for the tree view.
        infos.sort((a, b) => a.startTime - b.startTime || a.pid - b.pid);
        result.set(res.id, infos);
      }),
    );
    for (const k of this.cpuPrev.keys()) if (!seenKeys.has(k)) this.cpuPrev.delete(k);
    for (const k of this.cmdCache.keys()) if (!seenKeys.has(k)) this.cmdCache.delete(k);
    return result;
  }
}

async function childrenOfAsync(pid: number, numThreads: number): Promise<number[]> {
  const read = async (tid: string | number): Promise<number[]> => {
    try {
      const txt = (await fsp.readFile(`/proc/${pid}/task/${tid}/children`, 'latin1')).trim();
      return txt ? txt.split(' ').map(Number) : [];
    } catch {
      return [];
    }
  };
  if (numThreads <= 1) return read(pid);
  let tids: string[];
  try {
    tids = await fsp.readdir(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return (await Promise.all(tids.map(read))).flat();
}

async function readCmdlineAsync(pid: number, fallback: string): Promise<string> {
  try {
    const raw = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0').filter(Boolean);
    return parts.length ? parts.join(' ') : `[${fallback}]`;
  } catch {
    return `[${fallback}]`;
  }
}
