/**
 * One interface for every cloud provider Tether can rent from (one file per provider next to
 * this one). Providers speak their real published API; this file only fixes the shape Tether
 * needs: a price catalogue, list / describe / launch / terminate, and idempotent launches.
 */
import type { BillingRule } from '../../core/cost';
import { TetherError } from '../../core/errors';
import type { CloudProviderType } from '../../core/protocols';

/** What can be rented, with its price. */
export interface InstanceType {
  /** The provider's name for it ("gpu_1x_a100", "p3.2xlarge", an offer id...). */
  name: string;
  description?: string;
  gpuType?: string;
  gpuCount: number;
  vcpus?: number;
  memoryGiB?: number;
  /** USD per hour, as the provider quotes it. */
  pricePerHour: number;
  /** Regions with capacity right now ([] when none; undefined when the provider does not say). */
  regionsWithCapacity?: string[];
}

/** Provider states mapped onto one vocabulary; the provider's own word is kept in `rawStatus`. */
export type InstanceState = 'provisioning' | 'running' | 'stopping' | 'stopped' | 'terminating' | 'terminated' | 'unknown';

export interface CloudInstance {
  id: string;
  provider: CloudProviderType;
  name?: string;
  region?: string;
  instanceType?: string;
  gpuType?: string;
  gpuCount: number;
  status: InstanceState;
  rawStatus: string;
  /** USD per hour of this instance (as launched). */
  pricePerHour?: number;
  sshHost?: string;
  sshPort?: number;
  sshUser?: string;
  /** ISO time the provider says it was launched. */
  launchedAt?: string;
  /**
   * The Tether ledger id this instance was launched for, read back from its tag / label / name.
   * Undefined: not launched by Tether (shown as *unmanaged*, never terminated unless picked).
   */
  tetherId?: string;
  metadata: Record<string, unknown>;
}

export interface LaunchRequest {
  /** The ledger id written as an intent before this call; tags the instance and makes retries idempotent. */
  ledgerId: string;
  /**
   * The id of the ledger (state folder) launching it (marker.ts `ledgerIdentity`), carried in the
   * marker so that other ledgers sharing the account leave the instance alone. Absent: an old-format marker.
   */
  owner?: string;
  /** Human name (Tether adds its marker to it where the provider has no tags). */
  name: string;
  instanceType: string;
  region?: string;
  sshKeyName?: string;
  /** Image / template / AMI, where the provider needs one. */
  image?: string;
  /** What an OS-level shutdown does, where the provider lets the launch choose (EC2). */
  shutdownBehavior?: 'stop' | 'terminate';
}

export interface CloudProvider {
  readonly type: CloudProviderType;
  /** Display name ("Lambda Cloud"). */
  readonly title: string;
  /** How the provider bills (increment, minimum, which states bill), with its citation. */
  readonly billing: BillingRule;
  listInstanceTypes(): Promise<InstanceType[]>;
  listInstances(): Promise<CloudInstance[]>;
  /** Undefined when the provider does not know the id (404). */
  describe(id: string): Promise<CloudInstance | undefined>;
  /**
   * Launches one instance. Idempotent per `ledgerId`: a retry after a timeout or an ambiguous
   * error never launches a second instance (idempotency token where the API has one, a
   * list-by-marker before retrying where it does not).
   */
  launch(req: LaunchRequest): Promise<CloudInstance>;
  /** Terminates; an instance that is already gone counts as terminated. */
  terminate(id: string): Promise<void>;
  /**
   * Stops (powers off, keeps the disk) where the provider can; absent where it cannot (Lambda
   * Cloud has no stop). Storage keeps billing while stopped (see `billing.storageStates`).
   */
  stop?(id: string): Promise<void>;
  /** The provider console page of an instance. */
  consoleUrl(instance: CloudInstance): string;
}

/** A provider answered with an error (or not at all): what it said, and what to do. */
export class CloudApiError extends TetherError {
  constructor(
    readonly provider: string,
    message: string,
    opts: {
      remedy: string;
      /** HTTP status, when there was an answer. */
      status?: number;
      /** The provider's error code ("global/invalid-api-key", "InvalidInstanceID.NotFound"...). */
      code?: string;
      /** How long the provider asked us to wait (429 Retry-After), ms. */
      retryAfterMs?: number;
      cause?: unknown;
    },
  ) {
    super(`${provider}: ${message}`, { remedy: opts.remedy, ...(opts.cause === undefined ? {} : { cause: opts.cause }) });
    this.status = opts.status;
    this.code = opts.code;
    this.retryAfterMs = opts.retryAfterMs;
  }
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;
}

// Here rather than in http.ts, so that the engine can ask without loading the REST client (a chunk loaded on first use).
const AMBIGUOUS = Symbol('ambiguous');

/** True when a request may or may not have been carried out (timeout, network error, 5xx on a non-idempotent call). */
export function isAmbiguous(err: unknown): boolean {
  return err instanceof CloudApiError && (err as unknown as Record<symbol, unknown>)[AMBIGUOUS] === true;
}

/** Marks an error as {@link isAmbiguous}. */
export function markAmbiguous(err: CloudApiError): CloudApiError {
  (err as unknown as Record<symbol, unknown>)[AMBIGUOUS] = true;
  return err;
}

/** Prefix of the name / label Tether gives instances on providers without tags. */
export const TETHER_NAME_PREFIX = 'tether-';

/**
 * The longest name Tether gives an instance: the strictest provider's limit. Lambda Cloud's
 * launch `name` has maxLength 64 (openapi 1.8.3); RunPod's pod `name` 191 (REST v1); Vast.ai's
 * `label` 1024; an EC2 tag value 256.
 */
export const MARKED_NAME_MAX = 64;

/**
 * `tether-<first 8 of the record id><ledger id>-<name>` (marker.ts explains the format), cut to
 * {@link MARKED_NAME_MAX}: findable by marker after a crash, and telling which ledger launched
 * it. Without `owner` (or called as `markedName(recordId, name)`): the old format
 * `tether-<first 8 of the record id>-<name>`.
 */
export function markedName(req: Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>): string;
export function markedName(ledgerId: string, name: string): string;
export function markedName(a: string | Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>, b?: string): string {
  const { ledgerId, name, owner } = typeof a === 'string' ? { ledgerId: a, name: b ?? '', owner: undefined } : a;
  if (owner !== undefined && !/^[0-9a-z]{8}$/.test(owner)) throw new TetherError(`not a ledger id: "${owner}"`, { remedy: 'A ledger id is 8 characters 0-9a-z (marker.ts ledgerIdentity).' });
  return `${TETHER_NAME_PREFIX}${ledgerId.slice(0, 8)}${owner ?? ''}-${name}`.slice(0, MARKED_NAME_MAX);
}
