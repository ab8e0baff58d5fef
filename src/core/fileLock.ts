/**
 * A cross-process lock file whose holder is named by PID + start time, so a lock left by a
 * crashed writer is recognised as stale at once (its holder provably no longer runs) instead
 * of after a timeout, and a live holder is never robbed.
 *
 * The lock file is created complete (written to a temporary name, then hard-linked into place:
 * link(2) is atomic and fails if the name exists), so a reader never sees a half-written owner.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { randomUUID } from 'node:crypto';
import { identify, isSameProcessAlive } from './procfs';
import { LockTimeoutError } from './errors';

interface LockOwner {
  pid: number;
  startTime: number;
  host: string;
  nonce: string;
  since: string;
  what: string;
}

/**
 * A lock file that is empty or unreadable (its holder crashed, or lost power, before the holder
 * line reached the disk) and has not changed for this long is stale.
 */
export const UNREADABLE_LOCK_STALE_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LockOptions {
  /** Give up after this long. Default 10 s. */
  timeoutMs?: number;
  /** Who is asking, for the message another process sees. */
  what?: string;
}

export class FileLock {
  constructor(private readonly file: string) {}

  /** Runs `fn` while holding the lock. */
  async withLock<T>(fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
    const release = await this.acquire(opts);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async acquire(opts: LockOptions = {}): Promise<() => void> {
    const me = identify(process.pid);
    const owner: LockOwner = {
      pid: process.pid,
      startTime: me?.startTime ?? 0,
      host: os.hostname(),
      nonce: randomUUID(),
      since: new Date().toISOString(),
      what: opts.what ?? `pid ${process.pid}`,
    };
    const tmp = `${this.file}.${owner.nonce}.tmp`;
    // The owner line reaches the disk before the lock is linked into place: after a power loss the
    // lock is either absent or complete (an empty one is still handled below, as a crash's leftover).
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeFileSync(fd, JSON.stringify(owner));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    let wait = 5;
    /** An unreadable lock file as first seen (same inode, size and mtime), and when. */
    let unreadable: { ino: number; size: number; mtimeMs: number; seenAt: number } | undefined;
    try {
      for (;;) {
        try {
          fs.linkSync(tmp, this.file);
          return () => this.release(owner.nonce);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = this.readOwner();
        if (holder && this.isStale(holder)) {
          this.breakStale(holder);
          continue;
        }
        if (!holder) {
          // Empty, torn or holder-less: stale once it has not changed for a few seconds (by its
          // mtime, or by our own watch when the mtime is in the future).
          const st = this.statLock();
          if (st) {
            if (!unreadable || unreadable.ino !== st.ino || unreadable.size !== st.size || unreadable.mtimeMs !== st.mtimeMs) {
              unreadable = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, seenAt: Date.now() };
            }
            const age = Math.max(Date.now() - st.mtimeMs, Date.now() - unreadable.seenAt);
            if (age >= UNREADABLE_LOCK_STALE_MS) {
              this.breakUnreadable(st.ino);
              unreadable = undefined;
              continue;
            }
          }
        } else {
          unreadable = undefined;
        }
        if (Date.now() >= deadline) {
          throw new LockTimeoutError(
            this.file,
            holder ? `${holder.what} (pid ${holder.pid} on ${holder.host}, since ${holder.since})` : 'another process',
          );
        }
        await sleep(wait);
        wait = Math.min(wait * 2, 100);
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  private readOwner(file = this.file): LockOwner | undefined {
    try {
      const o = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
      // A holder must at least name its process and its nonce; anything else is unreadable.
      return o && typeof o === 'object' && typeof o.pid === 'number' && typeof o.nonce === 'string' && typeof o.host === 'string' ? o : undefined;
    } catch {
      return undefined; // vanished meanwhile, or unreadable: retry
    }
  }

  private statLock(): fs.Stats | undefined {
    try {
      return fs.statSync(this.file);
    } catch {
      return undefined;
    }
  }

  /** Removes an unreadable lock, but only if it is still that file (same inode) and still unreadable. */
  private breakUnreadable(ino: number): void {
    this.breakIf((aside) => fs.statSync(aside).ino === ino && !this.readOwner(aside));
  }

  private isStale(o: LockOwner): boolean {
    // Only a holder on this machine can be proven dead.
    return o.host === os.hostname() && !isSameProcessAlive({ pid: o.pid, startTime: o.startTime });
  }

  /** Removes a stale lock, but only if it is still the same stale lock (compare by nonce). */
  private breakStale(stale: LockOwner): void {
    this.breakIf((aside) => this.readOwner(aside)?.nonce === stale.nonce);
  }

  /**
   * Moves the lock aside, then checks that what was moved is still the lock it meant to break;
   * if a holder took the lock between the check and the rename, it is given back.
   */
  private breakIf(stillBroken: (aside: string) => boolean): void {
    const aside = `${this.file}.${randomUUID()}.stale`;
    try {
      fs.renameSync(this.file, aside);
    } catch {
      return;
    }
    try {
      if (!stillBroken(aside)) {
        try {
          fs.linkSync(aside, this.file);
        } catch {
          /* someone else holds it now; the live holder will find its lock gone on release */
        }
      }
    } finally {
      fs.rmSync(aside, { force: true });
    }
  }

  private release(nonce: string): void {
    const o = this.readOwner();
    if (o?.nonce === nonce) fs.rmSync(this.file, { force: true });
  }
}
