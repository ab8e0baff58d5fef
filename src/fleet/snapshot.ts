/**
 * One poller per user (issue #14 item 3): the per-user part of a poll — every provider's cloud
 * instances, per-provider errors, cost per hour and so far — is listed once per tick by the
 * policy leader (leader.ts: a VS Code window or `tether watch`) and published to
 * `<state>/fleet-snapshot.json`; every other window renders that file instead of listing the
 * providers itself, for as long as it is fresh (younger than the lease's stale time, see
 * {@link staleAfterMs}). When it goes stale the lease is stale too, and the existing election
 * makes one of the followers the leader, which lists and publishes again.
 *
 * A user's action (launch, terminate, stop, a manual refresh) acts directly and then lists at
 * once in the window that acted, publishing the result when it is newer than the file's (under
 * the snapshot's own lock: a slower, older listing never overwrites a newer one), so every window
 * shows the action's effect without waiting for the leader's next tick.
 *
 * The file is written atomically (mode 0600) and holds only what the tree shows: no API key, no
 * token, no credentials of any kind (`CloudStatus` carries none: names, states, prices, the SSH
 * command line, problems as one-line texts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileLock } from '../core/fileLock';
import { writeFileAtomic } from '../core/atomicFile';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { identify } from '../core/procfs';
import type { CloudStatus } from './cloud';
import type { SshHostMonitor, SshReading } from '../backends/ssh/remotePlugin';
import { staleAfterMs, type LeaderKind } from './leader';

export const SNAPSHOT_FILE = 'fleet-snapshot.json';
export const SNAPSHOT_VERSION = 1;

export interface SnapshotPublisher {
  kind: LeaderKind;
  pid: number;
  startTime: number;
  host: string;
  /** It held the policy lease when it published (false: a window that listed after a user's action). */
  leader: boolean;
}

export interface FleetSnapshot {
  version: typeof SNAPSHOT_VERSION;
  /** ms since the epoch when the listing began (what it shows is at least this recent). */
  at: number;
  /** ms since the epoch when it was written. */
  publishedAt: number;
  /** One more at every publication (a count of listings, for tests and the log). */
  seq: number;
  by: SnapshotPublisher;
  /** The publisher's poll interval (ms): freshness is judged against it, like the lease's. */
  intervalMs: number;
  /** The provider types that were listed (a window with other accounts lists for itself). */
  providers: string[];
  cloud: CloudStatus;
  /** What the poll leader's SSH polls found (each host polled once for every window); absent: none published. */
  ssh?: SshSnapshot;
}

/** The SSH part of the snapshot: per host its state, target, error, retry time and GPUs; per remote record its live processes on the host, or null (unanswered). */
export interface SshSnapshot extends SshReading {
  by: SnapshotPublisher;
  /** The publisher's poll interval (ms): freshness is judged against it. */
  intervalMs: number;
}

export function snapshotPath(stateDir: string): string {
  return path.join(stateDir, SNAPSHOT_FILE);
}

/** The published snapshot, or undefined when there is none (or it is damaged, or of another version). */
export function readSnapshot(stateDir: string): FleetSnapshot | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(snapshotPath(stateDir), 'utf8')) as FleetSnapshot;
    const ok =
      s &&
      s.version === SNAPSHOT_VERSION &&
      typeof s.at === 'number' &&
      typeof s.seq === 'number' &&
      typeof s.intervalMs === 'number' &&
      Array.isArray(s.providers) &&
      s.cloud &&
      Array.isArray(s.cloud.instances) &&
      Array.isArray(s.cloud.errors);
    if (!ok) return undefined;
    // A damaged SSH part is dropped (the windows then poll their hosts themselves).
    const h = s.ssh;
    if (h !== undefined && !(h && typeof h.at === 'number' && typeof h.intervalMs === 'number' && h.hosts && typeof h.hosts === 'object' && h.records && typeof h.records === 'object')) delete s.ssh;
    return s;
  } catch {
    return undefined;
  }
}

/** ms since the snapshot's listing began. */
export function snapshotAgeMs(s: Pick<FleetSnapshot, 'at'>, nowMs = Date.now()): number {
  return Math.max(0, nowMs - s.at);
}

/** Young enough to render instead of listing: within the lease's stale time of its publisher's interval. */
export function isFresh(s: Pick<FleetSnapshot, 'at' | 'intervalMs'>, nowMs = Date.now()): boolean {
  return nowMs - s.at <= staleAfterMs(s.intervalMs);
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

/** This process as a snapshot's publisher. */
export function publisher(kind: LeaderKind, leader: boolean): SnapshotPublisher {
  const me = identify(process.pid) ?? { pid: process.pid, startTime: 0 };
  return { kind, pid: me.pid, startTime: me.startTime, host: os.hostname(), leader };
}

/**
 * Writes a listing to the snapshot file unless the file already holds a newer one (a listing that
 * began later). Returns the published snapshot, or undefined when a newer one was there.
 */
export async function publishSnapshot(
  stateDir: string,
  s: Pick<FleetSnapshot, 'at' | 'by' | 'intervalMs' | 'providers' | 'cloud'>,
  now: () => number = Date.now,
): Promise<FleetSnapshot | undefined> {
  return snapshotLock(stateDir).withLock(() => writeIfNewer(stateDir, s, now), { what: `publishing the fleet snapshot (pid ${process.pid})`, timeoutMs: 5000 });
}

function snapshotLock(stateDir: string): FileLock {
  return new FileLock(`${snapshotPath(stateDir)}.lock`);
}

/** {@link publishSnapshot}'s write; the caller holds the snapshot's lock. */
function writeIfNewer(stateDir: string, s: Pick<FleetSnapshot, 'at' | 'by' | 'intervalMs' | 'providers' | 'cloud'>, now: () => number): FleetSnapshot | undefined {
  const cur = readSnapshot(stateDir);
  if (cur && cur.at > s.at && sameSet(cur.providers, s.providers)) return undefined;
  const out: FleetSnapshot = {
    version: SNAPSHOT_VERSION,
    at: s.at,
    publishedAt: now(),
    seq: (cur?.seq ?? 0) + 1,
    by: s.by,
    intervalMs: s.intervalMs,
    providers: [...s.providers],
    cloud: s.cloud,
    ...(cur?.ssh ? { ssh: cur.ssh } : {}),
  };
  writeFileAtomic(snapshotPath(stateDir), JSON.stringify(out));
  return out;
}

/**
 * Writes the SSH part of the snapshot (keeping its cloud part) unless the file holds a reading
 * that began later. Returns whether it was written. Without a cloud listing yet, the cloud part
 * is an empty one of no provider listed at time 0 (never fresh: a window with accounts lists).
 */
export async function publishSshReading(stateDir: string, ssh: SshSnapshot, now: () => number = Date.now): Promise<boolean> {
  return snapshotLock(stateDir).withLock(
    () => {
      const cur = readSnapshot(stateDir);
      if (cur?.ssh && cur.ssh.at > ssh.at) return false;
      const out: FleetSnapshot = cur
        ? { ...cur, ssh }
        : { version: SNAPSHOT_VERSION, at: 0, publishedAt: now(), seq: 0, by: ssh.by, intervalMs: ssh.intervalMs, providers: [], cloud: { instances: [], errors: [], costPerHour: 0, costSoFar: 0 }, ssh };
      writeFileAtomic(snapshotPath(stateDir), JSON.stringify(out));
      return true;
    },
    { what: `publishing the SSH hosts' reading (pid ${process.pid})`, timeoutMs: 5000 },
  );
}

/** The published SSH reading, while fresh (younger than the lease's stale time of its publisher's interval). */
export function readSshReading(stateDir: string, nowMs = Date.now()): SshSnapshot | undefined {
  const s = readSnapshot(stateDir)?.ssh;
  return s && isFresh(s, nowMs) ? s : undefined;
}

/**
 * One process's side of the shared SSH polls for one tick (`end()` when its engines are done):
 * the leader polls every host once (its folders' engines share each host's poll, see
 * {@link SshHostMonitor.beginTick}) and publishes what it found; a follower shows the published
 * reading while it is fresh (its SshBackend polls only what the reading lacks, and closes no record
 * from it); `fresh` (a user's action, Refresh) polls and publishes whatever the role.
 */
export function sshTick(
  monitor: SshHostMonitor,
  o: { stateDir: string; kind: LeaderKind; leader: boolean; intervalMs: number; fresh?: boolean; log: Logger },
): { follows: boolean; end: () => Promise<void> } {
  const polls = o.leader || !!o.fresh;
  const reading = polls ? undefined : readSshReading(o.stateDir);
  monitor.beginTick({ intervalMs: o.intervalMs, ...(reading ? { follow: { stateDir: o.stateDir, reading, freshUntil: reading.at + staleAfterMs(reading.intervalMs) } } : {}) });
  const startedAt = Date.now();
  return {
    follows: !!reading,
    end: async () => {
      monitor.endTick();
      if (!polls) return;
      const r = monitor.reading(startedAt);
      if (!Object.keys(r.hosts).length) return;
      try {
        await publishSshReading(o.stateDir, { ...r, by: publisher(o.kind, o.leader), intervalMs: o.intervalMs });
      } catch (err) {
        o.log.warn(`fleet snapshot: SSH reading not published: ${describeError(err)}`);
      }
    },
  };
}

export interface CloudPollOptions {
  stateDir: string;
  kind: LeaderKind;
  /** Lists every configured provider (CloudManager.status). */
  list: () => Promise<CloudStatus>;
  /** The provider types this process has accounts for (no request made). */
  providerTypes: () => string[];
  log: Logger;
  now?: () => number;
}

export interface CloudTick {
  cloud: CloudStatus;
  /** 'listed': this process asked the providers; 'snapshot': it rendered the published snapshot. */
  source: 'listed' | 'snapshot';
  /** The snapshot it published or rendered (undefined: listed, not published). */
  snapshot?: FleetSnapshot;
}

export interface TickRequest {
  /** This process holds the policy lease. */
  leader: boolean;
  /** This process's poll interval (ms). */
  intervalMs: number;
  /** The lease holder's interval (ms), when another process leads. */
  leaderIntervalMs?: number;
  /** A user's action: list now (and publish), whatever the snapshot's age. */
  fresh?: boolean;
}

/**
 * One process's side of the shared cloud poll: at each tick, the leader lists (at most once per
 * half interval, so events between ticks reuse its listing) and publishes; a follower renders the
 * published snapshot while it is fresh and lists for itself only when it is not (nobody published
 * yet, or the publisher had other accounts); `fresh` (a user's action) always lists and publishes.
 * Without any provider account there is nothing to share: each lists (no request) and nobody writes.
 *
 * One more case: a follower that polls at least twice as often as the leader (a focused window
 * while the leading window polls at its slower background interval, or `tether watch` every 30 s)
 * refreshes the snapshot for everyone once it is 1.5 of its own intervals old — under the
 * snapshot's lock, re-checked there, so that of several such windows one lists and the others
 * render its listing. The focused window keeps its cadence; the provider still sees one listing
 * per (fast) interval however many windows are open, and the leader reuses that listing at its
 * own tick.
 */
export class CloudPoll {
  private readonly now: () => number;

  constructor(private readonly o: CloudPollOptions) {
    this.now = o.now ?? Date.now;
  }

  get stateDir(): string {
    return this.o.stateDir;
  }

  async tick(t: TickRequest): Promise<CloudTick> {
    const mine = this.o.providerTypes();
    // No account: listing asks nobody (only the ledger), so there is nothing to share and no file to write.
    if (!mine.length) return { cloud: await this.o.list(), source: 'listed' };
    const now = this.now();
    const cur = readSnapshot(this.o.stateDir);
    const usable = cur && sameSet(cur.providers, mine) && isFresh(cur, now) ? cur : undefined;
    if (usable && !t.fresh) {
      const age = snapshotAgeMs(usable, now);
      // The leader reuses its own (or a faster window's) listing within half its interval.
      if (t.leader && age < t.intervalMs / 2) return rendered(usable);
      // A follower renders what was published, unless it wants it faster than the leader lists.
      if (!t.leader) return wantsFaster(t, age) ? this.refreshForAll(mine, t, usable) : rendered(usable);
    }
    const at = now;
    const cloud = await this.o.list();
    let published: FleetSnapshot | undefined;
    try {
      published = await publishSnapshot(this.o.stateDir, { at, by: publisher(this.o.kind, t.leader), intervalMs: t.intervalMs, providers: mine, cloud }, this.now);
    } catch (err) {
      this.o.log.warn(`fleet snapshot: not published: ${describeError(err)}`);
    }
    return { cloud, source: 'listed', ...(published ? { snapshot: published } : {}) };
  }

  /** Lists and publishes under the snapshot's lock unless another window did so meanwhile. */
  private async refreshForAll(mine: string[], t: TickRequest, seen: FleetSnapshot): Promise<CloudTick> {
    try {
      return await snapshotLock(this.o.stateDir).withLock(
        async (): Promise<CloudTick> => {
          const cur = readSnapshot(this.o.stateDir);
          const now = this.now();
          if (cur && sameSet(cur.providers, mine) && isFresh(cur, now) && !wantsFaster(t, snapshotAgeMs(cur, now))) return rendered(cur);
          const cloud = await this.o.list();
          // Published with the leader's interval: the leader's next tick refreshes it at the latest.
          const out = writeIfNewer(this.o.stateDir, { at: now, by: publisher(this.o.kind, false), intervalMs: Math.max(t.intervalMs, t.leaderIntervalMs ?? 0), providers: mine, cloud }, this.now);
          return { cloud, source: 'listed', ...(out ? { snapshot: out } : {}) };
        },
        { what: `refreshing the fleet snapshot (pid ${process.pid})`, timeoutMs: 5000 },
      );
    } catch (err) {
      // Another window holds the lock while it lists (or the listing failed): show what there is.
      this.o.log.warn(`fleet snapshot: not refreshed: ${describeError(err)}`);
      return rendered(seen);
    }
  }
}

function rendered(s: FleetSnapshot): CloudTick {
  return { cloud: structuredClone(s.cloud), source: 'snapshot', snapshot: s };
}

/** A follower polling at least twice as often as the leader, with the snapshot 1.5 of its intervals old. */
function wantsFaster(t: TickRequest, ageMs: number): boolean {
  return !t.leader && t.leaderIntervalMs !== undefined && t.leaderIntervalMs >= 2 * t.intervalMs && ageMs > 1.5 * t.intervalMs;
}
