/**
 * Reading Linux's /proc: process identity (PID + start time), parentage, CPU, memory.
 *
 * A PID alone names nobody: PIDs are reused. Tether identifies a process by its PID *and* its
 * start time (field 22 of /proc/PID/stat, clock ticks since boot), and re-reads both before
 * every signal it sends.
 */
import * as fs from 'node:fs';

/** Linux reports stat times in USER_HZ, which is 100 on every mainstream architecture. */
export const CLOCK_TICKS_PER_SECOND = 100;
const PAGE_SIZE = 4096;

/** Where /proc lives; overridable for tests of the parser only. */
let procRoot = '/proc';
export function setProcRootForTests(root: string): void {
  procRoot = root;
}

/** Who a process is: its PID and when it started. Equal identities are the same process. */
export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/PID/stat). */
  startTime: number;
}

export interface ProcStat extends ProcessIdentity {
  comm: string;
  /** R, S, D, Z, T, X... Z (zombie) and X (dead) count as gone. */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  numThreads: number;
  rssBytes: number;
}

/** Parses the text of /proc/PID/stat. The command name may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3].
  if (f.length < 22 || !Number.isInteger(pid)) return undefined;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0]!,
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    numThreads: Number(f[17]),
    startTime: Number(f[19]),
    rssBytes: Number(f[21]) * PAGE_SIZE,
  };
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(fs.readFileSync(`${procRoot}/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** True for a process that no longer runs code: zombie or dead. */
export function isGoneState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** The identity of a live (non-zombie) process, or undefined. */
export function identify(pid: number): ProcessIdentity | undefined {
  const st = readStat(pid);
  if (!st || isGoneState(st.state)) return undefined;
  return { pid: st.pid, startTime: st.startTime };
}

/** True when the process with this exact identity still runs (a zombie does not). */
export function isSameProcessAlive(id: ProcessIdentity): boolean {
  const st = readStat(id.pid);
  return !!st && st.startTime === id.startTime && !isGoneState(st.state);
}

/** Direct children, from /proc/PID/task/TID/children of every thread (any thread may fork). */
export function childrenOf(pid: number, numThreads?: number): number[] {
  const read = (tid: string): number[] => {
    try {
      const txt = fs.readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'latin1').trim();
      return txt ? txt.split(' ').map(Number) : [];
    } catch {
      return [];
    }
  };
  if (numThreads === 1) return read(String(pid));
  let tids: string[];
  try {
    tids = fs.readdirSync(`${procRoot}/${pid}/task`);
  } catch {
    return [];
  }
  return tids.flatMap(read);
}

/** Every live descendant of the given roots (not the roots themselves), breadth-first. */
export function descendantsOf(roots: readonly number[]): number[] {
  const seen = new Set<number>(roots);
  const out: number[] = [];
  const queue = [...roots];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const child of childrenOf(pid)) {
      if (seen.has(child)) continue;
      seen.add(child);
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export function readCmdline(pid: number): string[] {
  try {
    const raw = fs.readFileSync(`${procRoot}/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
  } catch {
    return [];
  }
}

/** The value of one environment variable of a process, or undefined (also when unreadable). */
export function readEnvVar(pid: number, name: string): string | undefined {
  let env: string;
  try {
    env = fs.readFileSync(`${procRoot}/${pid}/environ`, 'latin1');
  } catch {
    return undefined;
  }
  return envValue(env, name);
}

/**
 * Asynchronous {@link readEnvVar}, for sweeps over many processes: reading another process's
 * environment takes its memory lock and can stall for milliseconds, so it must not run on the
 * event loop thread.
 */
export async function readEnvVarAsync(pid: number, name: string): Promise<string | undefined> {
  try {
    return envValue(await fs.promises.readFile(`${procRoot}/${pid}/environ`, 'latin1'), name);
  } catch {
    return undefined;
  }
}

function envValue(env: string, name: string): string | undefined {
  const prefix = name + '=';
  const at = env.startsWith(prefix) ? 0 : env.indexOf('\0' + prefix) + 1;
  if (at === 0 && !env.startsWith(prefix)) return undefined;
  const end = env.indexOf('\0', at);
  return env.slice(at + prefix.length, end < 0 ? undefined : end);
}

/**
 * PIDs of every process on the machine. Asynchronous: listing /proc with ~1,000 entries takes
 * 0.7–3.6 ms, too long to hold the event loop.
 */
export async function listPids(): Promise<number[]> {
  const names = await fs.promises.readdir(procRoot);
  const out: number[] = [];
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(n));
  }
  return out;
}

/** The last PID the kernel handed out in this PID namespace (cheap change detector). */
export function lastPid(): number | undefined {
  try {
    return Number(fs.readFileSync(`${procRoot}/sys/kernel/ns_last_pid`, 'latin1'));
  } catch {
    return undefined;
  }
}

let bootTimeMsCache: number | undefined;
/** Boot time in ms since the epoch (btime of /proc/stat). */
export function bootTimeMs(): number {
  if (bootTimeMsCache === undefined) {
    const m = /^btime (\d+)$/m.exec(fs.readFileSync(`${procRoot}/stat`, 'latin1'));
    bootTimeMsCache = m ? Number(m[1]) * 1000 : 0;
  }
  return bootTimeMsCache;
}

/**
 * True when a wall-clock time (ISO) is before this boot. Identities are ticks since boot, so a
 * process recorded before the machine restarted is gone whatever process now holds its PID with
 * the same tick count (boot sequences are deterministic enough for that to happen).
 */
export function beforeThisBoot(iso: string | undefined): boolean {
  const t = iso ? Date.parse(iso) : Number.NaN;
  const boot = bootTimeMs();
  return Number.isFinite(t) && boot > 0 && t < boot;
}

/** Wall-clock start of a process from its start time in ticks. */
export function startTimeToDate(startTicks: number): Date {
  return new Date(bootTimeMs() + (startTicks * 1000) / CLOCK_TICKS_PER_SECOND);
}

/**
 * This process and every ancestor of it up to PID 1 (included), by PID and start time, read now
 * (a parent that exits re-parents us). Tether may run inside a plugin's tree (a terminal a plugin
 * opened, VS Code launched from one) and then carries its marker: none of these may ever be
 * signalled or counted as a plugin's process.
 */
export function selfAndAncestors(): ProcessIdentity[] {
  const out: ProcessIdentity[] = [];
  const seen = new Set<number>();
  for (let pid = process.pid; pid >= 1 && !seen.has(pid); ) {
    seen.add(pid);
    const st = readStat(pid);
    if (!st) break;
    out.push({ pid: st.pid, startTime: st.startTime });
    if (pid === 1) break;
    pid = st.ppid;
  }
  return out;
}

/** True when `id` is this process or one of its ancestors (PID and start time). */
export function isSelfOrAncestor(id: ProcessIdentity, lineage: readonly ProcessIdentity[] = selfAndAncestors()): boolean {
  return lineage.some((p) => p.pid === id.pid && p.startTime === id.startTime);
}

/**
 * Sends `signal` only if `id.pid` is still the process that started at `id.startTime`.
 * Returns 'sent', 'gone' (exited, zombie, or the PID now belongs to someone else), 'denied', or
 * 'self' for this process or one of its ancestors: those are never signalled, whatever asks.
 * The window between the check and the kill is a few microseconds; a PID cannot be reused
 * within it unless the whole PID space wraps around meanwhile.
 */
export function signalIfSame(id: ProcessIdentity, signal: NodeJS.Signals): 'sent' | 'gone' | 'denied' | 'self' {
  if (!isSameProcessAlive(id)) return 'gone';
  if (isSelfOrAncestor(id)) return 'self';
  try {
    process.kill(id.pid, signal);
    return 'sent';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EPERM' ? 'denied' : 'gone';
  }
}
