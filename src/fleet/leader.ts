/**
 * Who runs the policy tick (budgets, time limits, idle autostop, dead man's switch pushes) for a
 * state folder: one leader among every VS Code window and `tether watch`, elected through a lease
 * file in the state folder (`policy-leader.json`).
 *
 * The lease names its holder by PID + start time (like the window registry and the lock files) and
 * carries a heartbeat (renewed at every tick) and the holder's tick interval. Anyone may take the
 * lease when it is free, when its holder provably no longer runs (same machine, PID + start time
 * gone), or when its heartbeat is older than {@link staleAfterMs} (a holder that stopped ticking,
 * e.g. a window that went to the background). Taking and renewing happen under a lock file, so
 * two contenders never both believe they lead.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FileLock } from '../core/fileLock';
import { ensureStateDir } from '../core/ledger';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../core/procfs';
import { writeFileAtomic as writeAtomic } from '../core/atomicFile';

export const LEASE_FILE = 'policy-leader.json';

export type LeaderKind = 'vscode' | 'watch';

export interface Lease {
  kind: LeaderKind;
  pid: number;
  startTime: number;
  host: string;
  /** Distinguishes two holders in one process (tests), and a holder from its successor. */
  nonce: string;
  /** ISO: when this holder took the lease. */
  since: string;
  /** ms since the epoch of the holder's last tick. */
  heartbeatAt: number;
  /** The holder's tick interval (ms): how soon the next heartbeat is due. */
  intervalMs: number;
}

/** A lease is stale this long after its last heartbeat: three missed ticks, at least 15 s. */
export function staleAfterMs(intervalMs: number): number {
  return Math.max(15_000, 3 * intervalMs);
}

export interface LeaderInfo extends Lease {
  /** The holder still runs (known only on this machine; elsewhere: true). */
  alive: boolean;
  /** Its heartbeat is recent enough (and it runs): it leads. */
  leading: boolean;
  /** ms since its last heartbeat. */
  ageMs: number;
}

function readLease(file: string): Lease | undefined {
  try {
    const l = JSON.parse(fs.readFileSync(file, 'utf8')) as Lease;
    return typeof l.pid === 'number' && typeof l.heartbeatAt === 'number' && typeof l.nonce === 'string' ? l : undefined;
  } catch {
    return undefined;
  }
}

function holderAlive(l: Lease): boolean {
  return l.host !== os.hostname() || isSameProcessAlive({ pid: l.pid, startTime: l.startTime });
}

/** The current lease holder of a state folder, or undefined when nobody ever led (or the file is gone). */
export function readLeader(stateDir: string, nowMs = Date.now()): LeaderInfo | undefined {
  const l = readLease(path.join(stateDir, LEASE_FILE));
  if (!l) return undefined;
  const alive = holderAlive(l);
  const ageMs = Math.max(0, nowMs - l.heartbeatAt);
  return { ...l, alive, ageMs, leading: alive && ageMs <= staleAfterMs(l.intervalMs) };
}

/** One line for `tether status` and the log. */
export function describeLeader(info: LeaderInfo | undefined): string {
  if (!info || !info.leading) {
    const last = info ? ` (last: ${info.kind === 'watch' ? 'tether watch' : 'a VS Code window'}, pid ${info.pid}, ${Math.round(info.ageMs / 1000)} s ago${info.alive ? '' : ', gone'})` : '';
    return `policy tick: nobody leads${last}; budgets, time limits and idle autostop act only while a VS Code window or \`tether watch\` runs`;
  }
  const who = info.kind === 'watch' ? `tether watch (pid ${info.pid}${info.host !== os.hostname() ? ` on ${info.host}` : ''})` : `a VS Code window (extension host pid ${info.pid})`;
  return `policy tick: led by ${who} since ${info.since}, last tick ${Math.round(info.ageMs / 1000)} s ago, every ${Math.round(info.intervalMs / 1000)} s`;
}


export interface LeaseOptions {
  /** Who this contender is (default: this process). */
  identity?: ProcessIdentity;
  now?: () => number;
}

/** One contender for the lease of a state folder (a window, a watcher). */
export class PolicyLease {
  private readonly file: string;
  private readonly lock: FileLock;
  private readonly nonce = randomUUID();
  private readonly me: ProcessIdentity;
  private readonly now: () => number;
  private since: string | undefined;

  constructor(
    readonly stateDir: string,
    readonly kind: LeaderKind,
    opts: LeaseOptions = {},
  ) {
    this.file = path.join(stateDir, LEASE_FILE);
    this.lock = new FileLock(`${this.file}.lock`);
    this.me = opts.identity ?? identify(process.pid) ?? { pid: process.pid, startTime: 0 };
    this.now = opts.now ?? Date.now;
  }

  /**
   * Takes or renews the lease when it is free, ours, or stale; returns whether this contender
   * leads for the next `intervalMs`, and who does otherwise.
   */
  async tryLead(intervalMs: number): Promise<{ leader: boolean; holder: LeaderInfo | undefined }> {
    ensureStateDir(this.stateDir);
    return this.lock.withLock(
      () => {
        const now = this.now();
        const cur = readLease(this.file);
        const mine = cur?.nonce === this.nonce;
        const free = !cur || !holderAlive(cur) || now - cur.heartbeatAt > staleAfterMs(cur.intervalMs);
        if (!mine && !free) {
          this.since = undefined;
          return { leader: false, holder: readLeader(this.stateDir, now) };
        }
        if (!mine) this.since = new Date(now).toISOString();
        const lease: Lease = {
          kind: this.kind,
          pid: this.me.pid,
          startTime: this.me.startTime,
          host: os.hostname(),
          nonce: this.nonce,
          since: (mine ? cur.since : this.since) ?? new Date(now).toISOString(),
          heartbeatAt: now,
          intervalMs,
        };
        writeAtomic(this.file, JSON.stringify(lease));
        return { leader: true, holder: { ...lease, alive: true, leading: true, ageMs: 0 } };
      },
      { what: `policy leader election (${this.kind}, pid ${this.me.pid})` },
    );
  }

  /** True when the lease file names this contender now. */
  holds(): boolean {
    return readLease(this.file)?.nonce === this.nonce;
  }

  /** Gives the lease up (only if it is still ours), so another contender takes over at once. */
  async release(): Promise<void> {
    try {
      await this.lock.withLock(() => {
        if (readLease(this.file)?.nonce === this.nonce) fs.rmSync(this.file, { force: true });
      }, { what: 'releasing the policy lease', timeoutMs: 2000 });
    } catch {
      /* best effort: a lease of a gone holder is taken over anyway */
    }
  }

  /** Synchronous release for exit handlers. */
  releaseSync(): void {
    try {
      if (readLease(this.file)?.nonce === this.nonce) fs.rmSync(this.file, { force: true });
    } catch {
      /* best effort */
    }
  }
}
