/**
 * Reading back the marker Tether puts in an instance's name / label on providers without tags
 * ({@link markedName}: `tether-<first 8 of the ledger id>-<name>`).
 */
import { TETHER_NAME_PREFIX, type CloudInstance } from './provider';

const MARKER = new RegExp(`^${TETHER_NAME_PREFIX}([0-9A-Za-z]{8})-`);

/** The 8-character ledger-id prefix carried by a marked name, or undefined. */
export function parseMarker(name: string | null | undefined): string | undefined {
  return typeof name === 'string' ? MARKER.exec(name)?.[1] : undefined;
}

/** True when the instance carries the marker of this ledger record. */
export function matchesLedgerId(instance: Pick<CloudInstance, 'tetherId'>, ledgerId: string): boolean {
  return !!instance.tetherId && instance.tetherId.length >= 8 && ledgerId.startsWith(instance.tetherId);
}

/** Instances launched for this ledger record, still alive. */
export function findByMarker(instances: CloudInstance[], ledgerId: string): CloudInstance[] {
  return instances.filter((i) => matchesLedgerId(i, ledgerId) && i.status !== 'terminated');
}

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
  log?: (line: string) => void;
}

/**
 * Launch for providers without idempotency tokens: look for the marker first (a retry of a
 * launch that did happen), create, and after an ambiguous failure look again before the next try.
 */
export async function launchIdempotently(o: IdempotentLaunchOptions): Promise<CloudInstance> {
  const already = findByMarker(await o.list(), o.ledgerId)[0];
  if (already) {
    o.log?.(`instance ${already.id} already carries the marker of ${o.ledgerId.slice(0, 8)}: not launching again`);
    return already;
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await o.create();
    } catch (err) {
      if (!o.mayHaveCreated(err)) throw err;
      o.log?.(`launch attempt ${attempt} ended ambiguously (${(err as Error).message}); checking by marker`);
      // The provider may need a moment before the new instance shows in its list.
      for (let look = 0; look < 3; look++) {
        await new Promise((r) => setTimeout(r, o.backoffMs * (look + 1)));
        const found = findByMarker(await o.list(), o.ledgerId)[0];
        if (found) return found;
      }
      if (attempt >= o.attempts) throw err;
    }
  }
}
