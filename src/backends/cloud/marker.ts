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
import { TETHER_NAME_PREFIX, type CloudInstance } from './provider';

const MARKER = new RegExp(`^${TETHER_NAME_PREFIX}([0-9A-Za-z]{8})([0-9a-z]{8})?-`);

export { LEDGER_ID_FILE, ledgerIdentity, readLedgerIdentity } from '../../core/ledgerIdentity';

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
