/**
 * Tether's marker on an instance, and reading it back. On providers without tags it is the
 * instance's name / label ({@link markedName}); on EC2 it is also in tags (aws.ts).
 *
 * A marker names the ledger *record* it was launched for and the *ledger* that launched it (a
 * persistent random id kept in the state folder, {@link ledgerIdentity}): an instance launched
 * from another machine, by a teammate on the same key or from another state folder is then
 * "Tether-launched elsewhere" — shown, never adopted, terminated, budgeted or autostopped here.
 *
 * Formats (`tetherId` is what providers put in {@link CloudInstance.tetherId}):
 * - new: `tether-<first 8 of the record id><ledger id (8)>-<name>` → tetherId `rrrrrrrr@llllllll`
 * - old: `tether-<first 8 of the record id>-<name>` → tetherId `rrrrrrrr` (no ledger: it belongs
 *   to this ledger only when this ledger has such a record, see reconcile.ts `originOf`)
 * The two cannot be confused: the old format has a '-' where the new one has the ledger id.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TetherError } from '../../core/errors';
import { TETHER_NAME_PREFIX, type CloudInstance } from './provider';

const MARKER = new RegExp(`^${TETHER_NAME_PREFIX}([0-9A-Za-z]{8})([0-9a-z]{8})?-`);

/** File in the state folder holding this ledger's id. */
export const LEDGER_ID_FILE = 'ledger-id';
const LEDGER_ID = /^[0-9a-z]{8}$/;

/** The marker part of a `tetherId` (record id or its first 8, and the launching ledger when known). */
export interface Marker {
  record: string;
  ledger?: string;
}

/** The `tetherId` for a record id and (new markers) the launching ledger. */
export function tetherIdOf(record: string, ledger?: string): string {
  return ledger ? `${record}@${ledger}` : record;
}

/** Splits a `tetherId` into record and ledger; undefined when there is none. */
export function markerOf(tetherId: string | undefined): Marker | undefined {
  if (!tetherId) return undefined;
  const at = tetherId.lastIndexOf('@');
  if (at < 0) return { record: tetherId };
  const ledger = tetherId.slice(at + 1);
  return { record: tetherId.slice(0, at), ...(ledger ? { ledger } : {}) };
}

/** The `tetherId` carried by a marked name (`rrrrrrrr@llllllll`, or `rrrrrrrr` for an old marker), or undefined. */
export function parseMarker(name: string | null | undefined): string | undefined {
  const m = typeof name === 'string' ? MARKER.exec(name) : null;
  return m ? tetherIdOf(m[1]!, m[2]) : undefined;
}

/**
 * True when the instance carries the marker of this ledger record (and, when both are known,
 * of this ledger).
 */
export function matchesLedgerId(instance: Pick<CloudInstance, 'tetherId'>, ledgerId: string, ledger?: string): boolean {
  const m = markerOf(instance.tetherId);
  if (!m || m.record.length < 8 || !ledgerId.startsWith(m.record)) return false;
  return !(ledger && m.ledger && m.ledger !== ledger);
}

/** Instances launched for this ledger record, still alive. */
export function findByMarker(instances: CloudInstance[], ledgerId: string, ledger?: string): CloudInstance[] {
  return instances.filter((i) => matchesLedgerId(i, ledgerId, ledger) && i.status !== 'terminated');
}

/** This state folder's ledger id, or undefined when it has none yet (reading never writes). */
export function readLedgerIdentity(stateDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(stateDir, LEDGER_ID_FILE), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!LEDGER_ID.test(text)) {
    throw new TetherError(`${path.join(stateDir, LEDGER_ID_FILE)} does not hold a ledger id (8 characters 0-9a-z)`, {
      remedy: 'Restore it from a backup. Deleting it makes Tether pick a new id: instances launched from this state folder before then show as "Tether-launched elsewhere" (terminate them with --unmanaged).',
    });
  }
  return text;
}

/**
 * This state folder's ledger id, created once (8 random characters 0-9a-z): written to a
 * temporary file, synced, then linked into place, so concurrent first launches agree on one id
 * and a crash never leaves a partial one.
 */
export function ledgerIdentity(stateDir: string): string {
  const existing = readLedgerIdentity(stateDir);
  if (existing) return existing;
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  const id = [...randomBytes(8)].map((b) => alphabet[b % 36]).join('');
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LEDGER_ID_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, `${id}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file); // fails with EEXIST when another process made it first
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return readLedgerIdentity(stateDir)!;
}

/**
 * How long a launch keeps re-listing after an ambiguous create before it tries again, in units
 * of the client's first backoff: 120 × 500 ms = 60 s with the default HTTP client.
 */
export const SETTLE_BACKOFFS = 120;

export interface IdempotentLaunchOptions {
  ledgerId: string;
  /** The provider's list of instances (with tetherId filled in). */
  list: () => Promise<CloudInstance[]>;
  /** One create call. */
  create: () => Promise<CloudInstance>;
  /** Failures after which the instance may exist anyway (default: none). */
  mayHaveCreated: (err: unknown) => boolean;
  /** Create attempts in all. */
  attempts: number;
  backoffMs: number;
  /** How long to keep re-listing after an ambiguous create before trying again, ms. Default SETTLE_BACKOFFS × backoffMs. */
  settleMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Launch for providers without idempotency tokens: look for the marker first (a retry of a
 * launch that did happen), create, and after an ambiguous failure re-list with backoff (doubling
 * from `backoffMs`, at most 10 × `backoffMs` apart) for the whole settle window — a provider's
 * list can lag its creates — and create again only when a list answered at the end of the
 * window without the marker. When no list answered, it does not try again (it cannot know).
 */
export async function launchIdempotently(o: IdempotentLaunchOptions): Promise<CloudInstance> {
  const already = findByMarker(await o.list(), o.ledgerId)[0];
  if (already) {
    o.log?.(`instance ${already.id} already carries the marker of ${o.ledgerId.slice(0, 8)}: not launching again`);
    return already;
  }
  const base = Math.max(1, o.backoffMs);
  const settleMs = o.settleMs ?? SETTLE_BACKOFFS * base;
  for (let attempt = 1; ; attempt++) {
    try {
      return await o.create();
    } catch (err) {
      if (!o.mayHaveCreated(err)) throw err;
      o.log?.(`launch attempt ${attempt} ended ambiguously (${(err as Error).message}); re-listing for up to ${Math.round(settleMs / 1000)} s before any retry`);
      const deadline = Date.now() + settleMs;
      let delay = base;
      let lastListOk = false;
      let listError: unknown;
      for (;;) {
        await sleep(Math.max(0, Math.min(delay, deadline - Date.now())));
        try {
          const found = findByMarker(await o.list(), o.ledgerId)[0];
          if (found) return found;
          lastListOk = true;
        } catch (e) {
          lastListOk = false;
          listError = e;
        }
        if (Date.now() >= deadline) break;
        delay = Math.min(delay * 2, 10 * base);
      }
      if (!lastListOk) {
        o.log?.(`the instance list did not answer at the end of the settle window (${(listError as Error)?.message}); not launching again`);
        throw err;
      }
      if (attempt >= o.attempts) throw err;
      o.log?.(`no instance carries the marker of ${o.ledgerId.slice(0, 8)} after ${Math.round(settleMs / 1000)} s: launching again`);
    }
  }
}
