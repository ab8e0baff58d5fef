/**
 * Google Compute Engine as a Tether cloud provider, over the `compute/v1` REST API (the official
 * `@google-cloud/compute` is 144 MB of gRPC and its newest versions need Node 22).
 *
 * API: https://cloud.google.com/compute/docs/reference/rest/v1 (discovery document
 * compute/v1; the fields used are checked by the fake against the schema in
 * test/fixtures/gcp/). Base `https://compute.googleapis.com/compute/v1` (override:
 * `TETHER_GCP_API_URL`), `Authorization: Bearer <OAuth token>` (googleAuth.ts).
 *
 * - Instances are zonal: `projects/P/zones/Z/instances[/NAME]`. Tether's instance id is the
 *   instance NAME (what gcloud and the console use; unique per zone); the zone is remembered from
 *   the last list, else the configured zones are tried in turn.
 * - Mutations answer an `Operation`; an operation that is DONE may still carry `error.errors[]`
 *   (quota, no capacity...): that is a failure. A launch waits for its insert operation to be
 *   DONE; stop and delete return once Compute Engine accepted them (an operation DONE with an
 *   error is thrown) — their state is then read back by polling like on every provider.
 * - `requestId` (a UUID derived from the ledger id, so a retry sends the same one) makes insert,
 *   stop and delete idempotent: Compute Engine answers a repeated request id with the first
 *   request's operation. A launch also looks for the ledger id's label first, and an insert that
 *   answers 409 alreadyExists for the marked name adopts the instance when its label matches.
 * - Status PROVISIONING, STAGING, RUNNING, STOPPING, STOPPED, SUSPENDING, SUSPENDED, REPAIRING,
 *   TERMINATED (a *stopped* instance is TERMINATED here: its disk stays and bills) → InstanceState,
 *   the raw status kept in `rawStatus`.
 * - Marker: labels (keys and values: lowercase letters, digits, `_` and `-`, at most 63
 *   characters, keys start with a letter): `tether-record` = the ledger record id (Tether's
 *   record ids are lowercase UUIDs, 36 characters, which fit a label value as they are; an id that
 *   does not fit is lowercased, other characters become `_`, cut to 63), `tether-ledger` = the
 *   launching ledger's 8-character id, `tether-managed` = `true`. The instance name carries the
 *   marker too (`markedName`, lowercased and cut to 63 characters to fit Compute Engine's name
 *   rule `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`), so an instance whose labels were removed is still
 *   recognised. Lists by marker use `filter=labels.tether-record="<id>"`.
 * - Lists: `aggregated/instances` (every zone; a list with `unreachables` is an error, never taken
 *   for complete) and the zonal list, paged with `maxResults` / `nextPageToken`.
 * - GPUs: the accelerator-optimized families (a2, a3, g2) carry their GPUs in the machine type
 *   (`machineTypes.accelerators`); an N1 type takes `guestAccelerators`, written
 *   `n1-standard-8+nvidia-tesla-t4` or `n1-standard-8+2xnvidia-tesla-t4`. Every GPU instance gets
 *   `scheduling.onHostMaintenance=TERMINATE` (GPU VMs cannot live-migrate).
 * - Spot: a type name ending in `:spot` launches with `scheduling.provisioningModel=SPOT`
 *   (`instanceTerminationAction=STOP`, so a preempted VM keeps its disk and shows up as
 *   TERMINATED); a TERMINATED spot instance is checked against the zone's
 *   `compute.instances.preempted` operations and shown as preempted, with the time.
 * - Prices: Compute Engine reports none. They come from the shipped, dated catalogue
 *   gcp-prices.json (its `source` says where the numbers come from); an unpriced type gets
 *   `pricePerHour: NaN` and says so. `tether cloud prices gcp` refreshes them from the Cloud
 *   Billing Catalog API (gcpPricing.ts) into the state folder.
 * - Billing rule: billing.ts (1-minute minimum, then per second until TERMINATED; disks and
 *   static IPs bill while stopped).
 */
import { createHash, randomUUID } from 'node:crypto';
import { CloudProviderType } from '../../../core/protocols';
import { GCP_BILLING, GCP_TITLE } from './billing';
import { TetherError } from '../../../core/errors';
import type { Logger } from '../../../core/logger';
import { gcloudConfigValue, googleAccessToken, googleProject } from '../googleAuth';
import { GCP_FALLBACK_ZONE, type GcpAccount } from './descriptor';
import { JsonHttpClient, REAL_CLOCK, type Clock, type ParsedError } from '../http';
import { parseMarker, tetherIdOf } from '../marker';
import { CloudApiError, isAmbiguous, markAmbiguous, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';
import shippedCatalogue from './gcp-prices.json';

export { GCP_BILLING };

export const GCP_DEFAULT_URL = 'https://compute.googleapis.com/compute/v1';
export const GCP_API_URL_ENV = 'TETHER_GCP_API_URL';

export const GCP_LABEL_RECORD = 'tether-record';
export const GCP_LABEL_LEDGER = 'tether-ledger';
export const GCP_LABEL_MANAGED = 'tether-managed';

/** Compute Engine's resource-name rule (instances, zones...). */
export const GCE_NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** Label keys: start with a lowercase letter; lowercase letters, digits, `_`, `-`; at most 63. */
export const LABEL_KEY_RE = /^[a-z][a-z0-9_-]{0,62}$/;
/** Label values: lowercase letters, digits, `_`, `-`; at most 63 (may be empty). */
export const LABEL_VALUE_RE = /^[a-z0-9_-]{0,63}$/;

/** The `:spot` suffix of an instance type name. */
export const SPOT_SUFFIX = ':spot';

export interface GcpPrice {
  onDemand: number;
  spot?: number;
}

export interface GcpPriceCatalogue {
  asOf: string;
  source: string;
  currency: string;
  terms?: string;
  note?: string;
  /** region → machine type → USD per hour. */
  regions: Record<string, Record<string, GcpPrice>>;
}

export const GCP_SHIPPED_CATALOGUE: GcpPriceCatalogue = shippedCatalogue as GcpPriceCatalogue;

export interface GcpComputeOptions {
  project: string;
  /** Launch zone ("us-central1-a"). */
  zone: string;
  /** Zones to look in for describe/stop/terminate when the last list did not say (default: just `zone`). */
  zones?: string[];
  /** API base including `/compute/v1` (tests point it at the fake). */
  baseUrl?: string;
  /** A bearer token (tests inject one); default googleAuth.ts `googleAccessToken`. */
  token?: () => Promise<string>;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  log?: (line: string) => void;
  clock?: Clock;
  catalogue?: GcpPriceCatalogue;
  /** Boot image (`sourceImage`); default the Debian 12 family. */
  image?: string;
  /** Boot disk size, GB (default 50). */
  bootDiskGb?: number;
  /** VPC network (default `global/networks/default`). */
  network?: string;
  /** How often an operation is polled, ms (default 1000). */
  operationPollMs?: number;
  /** How long a launch waits for its insert operation, ms (default 10 min). */
  operationTimeoutMs?: number;
}

export const GCP_DEFAULT_IMAGE = 'projects/debian-cloud/global/images/family/debian-12';

/** What Compute Engine says in an error body: `{error: {code, message, errors: [{reason, domain, message}], status}}`. */
interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string; errors?: { reason?: string; domain?: string; message?: string }[] };
}

interface OperationError {
  errors?: { code?: string; message?: string; location?: string }[];
}

export interface GceOperation {
  kind?: string;
  id?: string;
  name: string;
  zone?: string;
  operationType?: string;
  targetLink?: string;
  targetId?: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress?: number;
  insertTime?: string;
  startTime?: string;
  endTime?: string;
  selfLink?: string;
  error?: OperationError;
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
}

export interface GceInstance {
  id?: string;
  name: string;
  zone?: string;
  machineType?: string;
  status?: string;
  statusMessage?: string;
  labels?: Record<string, string>;
  creationTimestamp?: string;
  lastStartTimestamp?: string;
  lastStopTimestamp?: string;
  networkInterfaces?: { networkIP?: string; accessConfigs?: { natIP?: string }[] }[];
  guestAccelerators?: { acceleratorType?: string; acceleratorCount?: number }[];
  scheduling?: { provisioningModel?: string; preemptible?: boolean; instanceTerminationAction?: string; onHostMaintenance?: string };
  selfLink?: string;
}

interface GceMachineType {
  name: string;
  guestCpus?: number;
  memoryMb?: number;
  description?: string;
  accelerators?: { guestAcceleratorType?: string; guestAcceleratorCount?: number }[];
}

/** The last path segment of a Compute Engine URL (`.../zones/us-central1-a` → `us-central1-a`). */
export function lastSegment(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const parts = url.split('/').filter(Boolean);
  return parts[parts.length - 1];
}

/** `us-central1-a` → `us-central1`. */
export function regionOfZone(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}

/**
 * The `requestId` of a ledger id: a UUID (RFC 4122 layout, version 5 / SHA-based, never the zero
 * UUID) derived from the ledger id and the action, so every retry of one action sends the same id.
 */
export function gcpRequestId(ledgerId: string, action = 'insert'): string {
  const h = createHash('sha256').update(`tether:${action}:${ledgerId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A label value for any string: as is when it fits the rule, else lowercased, other characters `_`, cut to 63. */
export function labelValue(s: string): string {
  if (LABEL_VALUE_RE.test(s)) return s;
  return s.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 63);
}

/** A Compute Engine instance name carrying Tether's marker: `markedName`, lowercased, other characters `-`, at most 63, ending in a letter or digit. */
export function gceInstanceName(req: Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>): string {
  let n = markedName(req)
    .toLowerCase()
    .replace(/[^-a-z0-9]/g, '-')
    .replace(/-{2,}/g, '-')
    .slice(0, 63)
    .replace(/-+$/, '');
  if (!GCE_NAME_RE.test(n)) n = `tether-${createHash('sha256').update(req.ledgerId).digest('hex').slice(0, 16)}`;
  return n;
}

/** Compute Engine's status → Tether's state. */
export function mapGceStatus(status: string | undefined): InstanceState {
  switch (status) {
    case 'PROVISIONING':
    case 'STAGING':
    case 'PENDING':
      return 'provisioning';
    case 'RUNNING':
      return 'running';
    case 'STOPPING':
    case 'SUSPENDING':
    case 'PENDING_STOP':
      return 'stopping';
    case 'STOPPED':
    case 'SUSPENDED':
    case 'TERMINATED':
      return 'stopped';
    case 'DEPROVISIONING':
      return 'terminating';
    default:
      // REPAIRING: "the instance is unusable" until repaired; shown as it is, raw status kept.
      return 'unknown';
  }
}

/** A launch type: machine type, optional N1 accelerators (`+[Nx]accel`), optional `:spot`. */
export interface ParsedType {
  machineType: string;
  accelerator?: { type: string; count: number };
  spot: boolean;
}

export function parseInstanceType(name: string): ParsedType | undefined {
  const m = /^([a-z][-a-z0-9]*[a-z0-9])(?:\+(?:([1-9][0-9]?)x)?([a-z][-a-z0-9]*[a-z0-9]))?(:spot)?$/.exec(name);
  if (!m) return undefined;
  return { machineType: m[1]!, ...(m[3] ? { accelerator: { type: m[3], count: Number(m[2] ?? 1) } } : {}), spot: !!m[4] };
}

const ACCEL_NAMES: Record<string, string> = {
  'nvidia-tesla-a100': 'NVIDIA A100 40GB',
  'nvidia-a100-80gb': 'NVIDIA A100 80GB',
  'nvidia-h100-80gb': 'NVIDIA H100 80GB',
  'nvidia-h100-mega-80gb': 'NVIDIA H100 Mega 80GB',
  'nvidia-l4': 'NVIDIA L4',
  'nvidia-tesla-t4': 'NVIDIA T4',
  'nvidia-tesla-v100': 'NVIDIA V100',
  'nvidia-tesla-p100': 'NVIDIA P100',
  'nvidia-tesla-p4': 'NVIDIA P4',
};
const gpuName = (t: string) => ACCEL_NAMES[t] ?? t;

/** Reads Google's error body for http.ts. */
export function parseGoogleError(body: unknown, text: string): ParsedError {
  const e = (body as GoogleErrorBody | undefined)?.error;
  if (e && typeof e === 'object') {
    const reason = e.errors?.[0]?.reason;
    return { ...(e.message ? { message: e.message } : {}), ...(reason ?? e.status ? { code: reason ?? e.status } : {}) };
  }
  return text ? { message: text.slice(0, 300) } : {};
}

/** Remedies for what Compute Engine says (error reason / operation error code). */
function remedyForGoogle(status: number | undefined, code: string | undefined, project: string): string | undefined {
  if (status === 401) return 'Google Cloud refused the credentials: run `gcloud auth application-default login` again, or check GOOGLE_APPLICATION_CREDENTIALS / TETHER_GCP_ACCESS_TOKEN (an access token lasts about an hour).';
  if (status === 403 && code === 'accessNotConfigured') return `Enable the Compute Engine API for project ${project} (gcloud services enable compute.googleapis.com --project ${project}).`;
  if (status === 403) return `The credentials may not do this in project ${project}: grant roles/compute.instanceAdmin.v1 (and roles/iam.serviceAccountUser for the VM's service account), and check the project id.`;
  if (code === 'QUOTA_EXCEEDED' || code === 'quotaExceeded') return 'A Compute Engine quota (GPUs per region, CPUs, IPs) is exhausted: request more in IAM & Admin → Quotas, or pick another region or type.';
  if (code === 'ZONE_RESOURCE_POOL_EXHAUSTED' || code === 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS' || code === 'resourcePoolExhausted') return 'The zone has no capacity for this machine type right now: try another zone (--zone) or type, or retry later.';
  if (code === 'rateLimitExceeded' || status === 429) return 'Compute Engine rate-limited the API: wait a minute and try again, or poll less often.';
  return undefined;
}

export class GcpComputeProvider implements CloudProvider {
  readonly billing = GCP_BILLING;
  readonly type = CloudProviderType.GCP;
  readonly title = GCP_TITLE;
  readonly catalogue: GcpPriceCatalogue;
  readonly project: string;
  readonly zone: string;
  private readonly baseUrl: string;
  private readonly token: () => Promise<string>;
  private readonly clock: Clock;
  private clientFor: { token: string; client: JsonHttpClient } | undefined;
  /** Zone of each instance name seen in the last list / describe / launch. */
  private readonly zoneOfName = new Map<string, string>();
  /** Machine type facts per zone/type. */
  private readonly machineFacts = new Map<string, GceMachineType>();

  constructor(private readonly opts: GcpComputeOptions) {
    if (!GCE_NAME_RE.test(opts.zone)) throw new CloudApiError(GCP_TITLE, `"${opts.zone}" is not a zone name`, { remedy: 'Pass a zone like us-central1-a (--zone, or `gcloud config set compute/zone`).', code: 'invalid' });
    this.project = opts.project;
    this.zone = opts.zone;
    this.baseUrl = (opts.baseUrl ?? GCP_DEFAULT_URL).replace(/\/+$/, '');
    this.token = opts.token ?? (() => googleAccessToken());
    this.clock = opts.clock ?? REAL_CLOCK;
    this.catalogue = opts.catalogue ?? GCP_SHIPPED_CATALOGUE;
  }

  private get zones(): string[] {
    return [...new Set([this.zone, ...(this.opts.zones ?? [])])];
  }

  private log(line: string): void {
    this.opts.log?.(`gcp: ${line}`);
  }

  /** The HTTP client for the current token (rebuilt when the token changes: tokens expire in about an hour). */
  private async http(): Promise<JsonHttpClient> {
    const token = await this.token();
    if (this.clientFor?.token === token) return this.clientFor.client;
    const client = new JsonHttpClient({
      provider: GCP_TITLE,
      baseUrl: `${this.baseUrl}/projects/${encodeURIComponent(this.project)}`,
      headers: { Authorization: `Bearer ${token}` },
      ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
      ...(this.opts.retries !== undefined ? { retries: this.opts.retries } : {}),
      ...(this.opts.backoffMs !== undefined ? { backoffMs: this.opts.backoffMs } : {}),
      ...(this.opts.log ? { log: this.opts.log } : {}),
      parseError: parseGoogleError,
      secrets: [token],
      ...(this.opts.clock ? { clock: this.opts.clock } : {}),
    });
    this.clientFor = { token, client };
    return client;
  }

  /** One request; Compute Engine's errors get Compute Engine's remedies. */
  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, o: { query?: Record<string, string | number | boolean | undefined>; body?: unknown; retrySafe?: boolean } = {}): Promise<T> {
    const client = await this.http();
    try {
      return (await client.request<T>(method, path, o)).body;
    } catch (err) {
      if (err instanceof CloudApiError) {
        const remedy = remedyForGoogle(err.status, err.code, this.project);
        if (remedy) {
          const e = new CloudApiError(GCP_TITLE, err.message.replace(/^[^:]+: /, ''), {
            remedy,
            ...(err.status !== undefined ? { status: err.status } : {}),
            ...(err.code ? { code: err.code } : {}),
            ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
            cause: err,
          });
          throw isAmbiguous(err) ? markAmbiguous(e) : e;
        }
      }
      throw err;
    }
  }

  // ---------------------------------------------------------------- prices and types

  /** USD/h for a launch type in a region (`:spot` → the spot price), or NaN. */
  priceOf(instanceType: string, region = regionOfZone(this.zone)): number {
    const t = parseInstanceType(instanceType);
    if (!t || t.accelerator) return NaN;
    const p = this.catalogue.regions[region]?.[t.machineType];
    const v = t.spot ? p?.spot : p?.onDemand;
    return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
  }

  /** The machine types of a zone (paged), with their vCPUs, memory and GPUs. */
  async machineTypes(zone = this.zone): Promise<GceMachineType[]> {
    const out: GceMachineType[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.call<{ items?: GceMachineType[]; nextPageToken?: string }>('GET', `/zones/${zone}/machineTypes`, { query: { maxResults: 500, pageToken } });
      out.push(...(page.items ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    for (const m of out) this.machineFacts.set(`${zone}/${m.name}`, m);
    return out;
  }

  private async factsOf(zone: string, machineType: string): Promise<GceMachineType | undefined> {
    const key = `${zone}/${machineType}`;
    if (!this.machineFacts.has(key)) {
      try {
        const m = await this.call<GceMachineType>('GET', `/zones/${zone}/machineTypes/${encodeURIComponent(machineType)}`);
        this.machineFacts.set(key, m);
      } catch (err) {
        this.log(`machine type ${machineType} in ${zone}: ${(err as Error).message}`);
        return undefined;
      }
    }
    return this.machineFacts.get(key);
  }

  /**
   * The GPU machine types of the launch zone (those whose machine type carries accelerators, and
   * every type the catalogue prices), on-demand and `:spot`, priced from the catalogue.
   */
  async listInstanceTypes(): Promise<InstanceType[]> {
    const region = regionOfZone(this.zone);
    const priced = this.catalogue.regions[region] ?? {};
    const out: InstanceType[] = [];
    for (const m of await this.machineTypes(this.zone)) {
      const gpus = (m.accelerators ?? []).filter((a) => (a.guestAcceleratorCount ?? 0) > 0);
      if (!gpus.length && !(m.name in priced)) continue;
      const gpuCount = gpus.reduce((n, a) => n + (a.guestAcceleratorCount ?? 0), 0);
      const gpuType = gpus.length ? [...new Set(gpus.map((a) => gpuName(a.guestAcceleratorType ?? 'GPU')))].join(' + ') : undefined;
      const vcpus = m.guestCpus;
      const memoryGiB = m.memoryMb === undefined ? undefined : Math.round((m.memoryMb / 1024) * 10) / 10;
      const hw = [gpuCount ? `${gpuCount}× ${gpuType}` : undefined, vcpus ? `${vcpus} vCPU` : undefined, memoryGiB ? `${memoryGiB} GiB` : undefined].filter(Boolean).join(', ');
      for (const spot of [false, true]) {
        const name = spot ? `${m.name}${SPOT_SUFFIX}` : m.name;
        const price = this.priceOf(name, region);
        if (spot && Number.isNaN(price)) continue;
        const note = Number.isNaN(price)
          ? `no price: not in Tether's Compute Engine catalogue for ${region} (as of ${this.catalogue.asOf}); see the Compute Engine pricing page`
          : `${spot ? 'Spot (preemptible: Compute Engine may stop it at any time)' : 'on-demand'} price as of ${this.catalogue.asOf}`;
        out.push({ name, description: `${hw}${hw ? '; ' : ''}${note}`, ...(gpuType ? { gpuType } : {}), gpuCount, ...(vcpus !== undefined ? { vcpus } : {}), ...(memoryGiB !== undefined ? { memoryGiB } : {}), pricePerHour: price, regionsWithCapacity: undefined });
      }
    }
    return out.sort((a, b) => b.gpuCount - a.gpuCount || a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- instances

  private async toInstance(i: GceInstance, preempted?: { at?: string }): Promise<CloudInstance> {
    const zone = lastSegment(i.zone) ?? this.zone;
    this.zoneOfName.set(i.name, zone);
    const machineType = lastSegment(i.machineType);
    const spot = i.scheduling?.provisioningModel === 'SPOT';
    const launchType = machineType ? `${machineType}${spot ? SPOT_SUFFIX : ''}` : undefined;
    const facts = machineType ? this.machineFacts.get(`${zone}/${machineType}`) : undefined;
    const accels = [...(i.guestAccelerators ?? []).map((a) => ({ t: lastSegment(a.acceleratorType) ?? 'GPU', n: a.acceleratorCount ?? 0 })), ...(i.guestAccelerators?.length ? [] : (facts?.accelerators ?? []).map((a) => ({ t: a.guestAcceleratorType ?? 'GPU', n: a.guestAcceleratorCount ?? 0 })))];
    const gpuCount = accels.reduce((n, a) => n + a.n, 0);
    const price = launchType ? this.priceOf(launchType, regionOfZone(zone)) : NaN;
    const labels = i.labels ?? {};
    const record = labels[GCP_LABEL_RECORD];
    const natIP = i.networkInterfaces?.[0]?.accessConfigs?.find((a) => a.natIP)?.natIP;
    const status = mapGceStatus(i.status);
    return {
      id: i.name,
      provider: CloudProviderType.GCP,
      name: i.name,
      region: zone,
      ...(launchType ? { instanceType: launchType } : {}),
      ...(accels.length ? { gpuType: [...new Set(accels.map((a) => gpuName(a.t)))].join(' + ') } : {}),
      gpuCount,
      status,
      rawStatus: i.status ?? 'UNKNOWN',
      ...(Number.isNaN(price) ? {} : { pricePerHour: price }),
      ...(natIP ? { sshHost: natIP, sshPort: 22 } : {}),
      ...(i.creationTimestamp ? { launchedAt: new Date(i.creationTimestamp).toISOString() } : {}),
      tetherId: record ? tetherIdOf(record, labels[GCP_LABEL_LEDGER]) : parseMarker(i.name),
      metadata: {
        project: this.project,
        zone,
        numericId: i.id,
        machineType,
        spot,
        ...(preempted ? { preempted: true, stateReason: `preempted by Compute Engine${preempted.at ? ` at ${preempted.at}` : ''}: a Spot VM can be stopped at any time` } : i.statusMessage ? { stateReason: i.statusMessage } : {}),
        internalIp: i.networkInterfaces?.[0]?.networkIP,
        managed: labels[GCP_LABEL_MANAGED] === 'true',
        lastStartTimestamp: i.lastStartTimestamp,
        lastStopTimestamp: i.lastStopTimestamp,
        priceSource: Number.isNaN(price) ? undefined : `gcp-prices.json as of ${this.catalogue.asOf}`,
      },
    };
  }

  /** When a TERMINATED Spot VM was preempted (the zone's `compute.instances.preempted` operation), or undefined. */
  private async preemption(i: GceInstance): Promise<{ at?: string } | undefined> {
    if (i.scheduling?.provisioningModel !== 'SPOT' || i.status !== 'TERMINATED' || !i.id) return undefined;
    const zone = lastSegment(i.zone) ?? this.zone;
    try {
      const ops = await this.call<{ items?: GceOperation[] }>('GET', `/zones/${zone}/operations`, {
        query: { filter: `(operationType = "compute.instances.preempted") AND (targetId = "${i.id}")`, maxResults: 10 },
      });
      const last = (ops.items ?? []).sort((a, b) => String(b.insertTime).localeCompare(String(a.insertTime)))[0];
      if (!last) return undefined;
      // A preemption older than the last start belongs to an earlier run.
      if (i.lastStartTimestamp && last.insertTime && Date.parse(last.insertTime) < Date.parse(i.lastStartTimestamp)) return undefined;
      return { ...(last.insertTime ? { at: last.insertTime } : {}) };
    } catch (err) {
      this.log(`preemption check of ${i.name}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async withPreemption(list: GceInstance[]): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    for (const i of list) out.push(await this.toInstance(i, await this.preemption(i)));
    return out;
  }

  /** Every instance of the project in every zone (`aggregated/instances`, paged), optionally filtered. */
  async aggregatedList(filter?: string): Promise<GceInstance[]> {
    const out: GceInstance[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.call<{ items?: Record<string, { instances?: GceInstance[] }>; nextPageToken?: string; unreachables?: string[] }>('GET', '/aggregated/instances', {
        query: { maxResults: 500, pageToken, filter },
      });
      // An incomplete list must not pass for a complete one: reconciling would take the missing
      // zones' instances for deleted (and stop counting what they cost).
      if (page.unreachables?.length) {
        throw new CloudApiError(GCP_TITLE, `the instance list is incomplete: unreachable ${page.unreachables.join(', ')}`, {
          remedy: 'Compute Engine could not answer for some zones; Tether changes nothing and asks again at the next poll.',
          code: 'unreachable',
        });
      }
      for (const scoped of Object.values(page.items ?? {})) out.push(...(scoped.instances ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** The instances of one zone (zonal list, paged), optionally filtered. */
  async zoneList(zone: string, filter?: string): Promise<GceInstance[]> {
    const out: GceInstance[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.call<{ items?: GceInstance[]; nextPageToken?: string }>('GET', `/zones/${zone}/instances`, { query: { maxResults: 500, pageToken, filter } });
      out.push(...(page.items ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  async listInstances(): Promise<CloudInstance[]> {
    const all = await this.aggregatedList();
    await this.loadFacts(all);
    return this.withPreemption(all);
  }

  /** Instances carrying Tether's label (optionally for one ledger record), in every zone. */
  async listTetherInstances(ledgerId?: string): Promise<CloudInstance[]> {
    const filter = ledgerId ? `labels.${GCP_LABEL_RECORD} = "${labelValue(ledgerId)}"` : `labels.${GCP_LABEL_MANAGED} = "true"`;
    const found = await this.aggregatedList(filter);
    await this.loadFacts(found);
    return this.withPreemption(found);
  }

  private async loadFacts(list: GceInstance[]): Promise<void> {
    const seen = new Set<string>();
    for (const i of list) {
      const zone = lastSegment(i.zone);
      const mt = lastSegment(i.machineType);
      if (!zone || !mt || i.guestAccelerators?.length) continue;
      const k = `${zone}/${mt}`;
      if (seen.has(k) || this.machineFacts.has(k)) continue;
      seen.add(k);
      await this.factsOf(zone, mt);
    }
  }

  /** The zones to try for an instance name: where it was last seen, then the configured ones. */
  private zonesFor(name: string): string[] {
    const z = this.zoneOfName.get(name);
    return [...new Set([...(z ? [z] : []), ...this.zones])];
  }

  private async getRaw(name: string): Promise<GceInstance | undefined> {
    if (!GCE_NAME_RE.test(name)) return undefined;
    for (const zone of this.zonesFor(name)) {
      try {
        return await this.call<GceInstance>('GET', `/zones/${zone}/instances/${name}`);
      } catch (err) {
        if (err instanceof CloudApiError && err.status === 404) continue;
        throw err;
      }
    }
    // Not in the zones known for it: look in every zone before calling it gone (an instance of
    // another zone, after a restart, must not be taken for deleted while it bills).
    const found = (await this.aggregatedList(`name = "${name}"`)).filter((i) => i.name === name);
    if (found.length > 1) this.log(`${found.length} instances are named ${name} (zones ${found.map((i) => lastSegment(i.zone)).join(', ')}); using the first`);
    if (found[0]) this.zoneOfName.set(name, lastSegment(found[0].zone) ?? this.zone);
    return found[0];
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    const i = await this.getRaw(id);
    if (!i) return undefined;
    await this.loadFacts([i]);
    return this.toInstance(i, await this.preemption(i));
  }

  // ---------------------------------------------------------------- operations

  /** Throws when a DONE operation carries errors. */
  private checkOperation(op: GceOperation, what: string): void {
    if (op.status !== 'DONE' || !op.error?.errors?.length) return;
    const first = op.error.errors[0]!;
    const msg = op.error.errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim()).join('; ');
    throw new CloudApiError(GCP_TITLE, `${what} failed (operation ${op.name}): ${msg}`, {
      remedy: remedyForGoogle(op.httpErrorStatusCode, first.code, this.project) ?? 'Read the error above; fix the request (type, zone, image, quota) and try again.',
      ...(op.httpErrorStatusCode !== undefined ? { status: op.httpErrorStatusCode } : {}),
      ...(first.code ? { code: first.code } : {}),
    });
  }

  /** Polls a zonal operation until DONE (or the timeout), then checks its errors. */
  async waitOperation(zone: string, op: GceOperation, what: string, timeoutMs = this.opts.operationTimeoutMs ?? 600_000): Promise<GceOperation> {
    const pollMs = this.opts.operationPollMs ?? 1000;
    const deadline = this.clock.now() + timeoutMs;
    let cur = op;
    while (cur.status !== 'DONE') {
      if (this.clock.now() >= deadline) {
        throw new CloudApiError(GCP_TITLE, `${what}: operation ${cur.name} still ${cur.status} after ${Math.round(timeoutMs / 1000)} s`, {
          remedy: 'Compute Engine is still working on it; check the instance in the console or with `tether cloud list`, and try again later.',
          code: 'timeout',
        });
      }
      await this.clock.sleep(pollMs);
      cur = await this.call<GceOperation>('GET', `/zones/${zone}/operations/${encodeURIComponent(cur.name)}`);
    }
    this.checkOperation(cur, what);
    return cur;
  }

  // ---------------------------------------------------------------- launch / stop / start / terminate

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    // A request may name a zone ("us-central1-b"); a region or nothing means the configured zone.
    const zone = req.region && /-[a-z]$/.test(req.region) && GCE_NAME_RE.test(req.region) ? req.region : this.zone;
    const parsed = parseInstanceType(req.instanceType);
    if (!parsed) {
      throw new CloudApiError(GCP_TITLE, `"${req.instanceType}" is not a Compute Engine machine type`, {
        remedy: 'Use a machine type name like g2-standard-4 or a2-highgpu-1g (add :spot for Spot; N1 with GPUs: n1-standard-8+nvidia-tesla-t4).',
        code: 'invalid',
        status: 400,
      });
    }
    // Belt and braces next to requestId: an instance already labelled with this ledger id is the launch we are retrying.
    const existing = await this.zoneList(zone, `labels.${GCP_LABEL_RECORD} = "${labelValue(req.ledgerId)}"`);
    if (existing.length) {
      this.log(`launch ${req.ledgerId} already made ${existing[0]!.name}; not launching again`);
      await this.loadFacts(existing);
      return this.toInstance(existing[0]!);
    }
    const name = gceInstanceName(req);
    const gpuMachine = parsed.accelerator !== undefined || /^(a2|a3|a4|g2|g4)-/.test(parsed.machineType) || ((await this.factsOf(zone, parsed.machineType))?.accelerators?.length ?? 0) > 0;
    const body: Record<string, unknown> = {
      name,
      machineType: `zones/${zone}/machineTypes/${parsed.machineType}`,
      labels: {
        [GCP_LABEL_RECORD]: labelValue(req.ledgerId),
        [GCP_LABEL_MANAGED]: 'true',
        ...(req.owner ? { [GCP_LABEL_LEDGER]: labelValue(req.owner) } : {}),
      },
      disks: [
        {
          boot: true,
          autoDelete: true,
          type: 'PERSISTENT',
          initializeParams: { sourceImage: req.image ?? this.opts.image ?? GCP_DEFAULT_IMAGE, diskSizeGb: String(this.opts.bootDiskGb ?? 50) },
        },
      ],
      networkInterfaces: [{ network: this.opts.network ?? 'global/networks/default', accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }] }],
      ...(parsed.accelerator ? { guestAccelerators: [{ acceleratorType: `zones/${zone}/acceleratorTypes/${parsed.accelerator.type}`, acceleratorCount: parsed.accelerator.count }] } : {}),
      scheduling: {
        ...(gpuMachine ? { onHostMaintenance: 'TERMINATE' } : {}),
        ...(parsed.spot ? { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false } : gpuMachine ? { automaticRestart: true } : {}),
      },
      ...(req.sshKeyName && /\bssh-|ecdsa-/.test(req.sshKeyName) ? { metadata: { items: [{ key: 'ssh-keys', value: req.sshKeyName }] } } : {}),
    };
    if (req.sshKeyName && !/\bssh-|ecdsa-/.test(req.sshKeyName)) this.log(`SSH key "${req.sshKeyName}" is not a "user:ssh-... key" line; the project's SSH keys / OS Login apply`);
    const requestId = gcpRequestId(req.ledgerId);
    this.log(`insert ${name} (${req.instanceType}) in ${zone}, requestId ${requestId}`);
    let op: GceOperation;
    try {
      // Safe to repeat: the same requestId gets the first request's operation.
      op = await this.call<GceOperation>('POST', `/zones/${zone}/instances`, { query: { requestId }, body, retrySafe: true });
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 409) {
        // The name exists: ours (a retry whose request id expired), or someone else's.
        const i = await this.getRaw(name);
        if (i && i.labels?.[GCP_LABEL_RECORD] === labelValue(req.ledgerId)) {
          await this.loadFacts([i]);
          return this.toInstance(i);
        }
      }
      throw err;
    }
    this.zoneOfName.set(name, zone);
    await this.waitOperation(zone, op, `insert ${name}`);
    const inst = await this.getRaw(name);
    if (!inst) {
      throw new CloudApiError(GCP_TITLE, `insert ${name} finished but the instance is not there`, {
        remedy: `Check the console for an instance labelled ${GCP_LABEL_RECORD}=${labelValue(req.ledgerId)}; Tether adopts it on the next poll.`,
      });
    }
    await this.loadFacts([inst]);
    return this.toInstance(inst);
  }

  /** Runs an instance action (stop/start/delete) in the zone that knows the name; undefined when none does. */
  private async act(id: string, action: 'stop' | 'start' | 'delete'): Promise<{ zone: string; op: GceOperation } | undefined> {
    if (!GCE_NAME_RE.test(id)) return undefined;
    // Where is it? (its zone from the last list, else the configured zones, else every zone)
    if (!this.zoneOfName.has(id)) await this.getRaw(id);
    for (const zone of this.zonesFor(id)) {
      try {
        // One id per call: http.ts retries of this call repeat it (idempotent); a later call is a new request.
        const requestId = randomUUID();
        const op =
          action === 'delete'
            ? await this.call<GceOperation>('DELETE', `/zones/${zone}/instances/${id}`, { query: { requestId } })
            : await this.call<GceOperation>('POST', `/zones/${zone}/instances/${id}/${action}`, { query: { requestId }, retrySafe: true });
        this.checkOperation(op, `${action} ${id}`);
        return { zone, op };
      } catch (err) {
        if (err instanceof CloudApiError && err.status === 404) continue;
        throw err;
      }
    }
    return undefined;
  }

  /** Deletes the instance (its auto-delete boot disk goes with it); one that is already gone counts as terminated. */
  async terminate(id: string): Promise<void> {
    const r = await this.act(id, 'delete');
    if (r) this.log(`delete ${id} (${r.zone}), operation ${r.op.name}`);
    else this.log(`${id} not found; counting it as terminated`);
  }

  /** Stops the instance (RUNNING → STOPPING → TERMINATED; its disk stays and bills). Stopping a stopped instance is fine. */
  async stop(id: string): Promise<void> {
    const r = await this.act(id, 'stop');
    if (r) {
      this.log(`stop ${id} (${r.zone}), operation ${r.op.name}`);
      return;
    }
    throw new CloudApiError(GCP_TITLE, `stop ${id}: the instance no longer exists in ${this.zonesFor(id).join(', ')} (project ${this.project})`, {
      remedy: 'It was deleted or never existed in these zones, so there is nothing to stop; refresh the list, and check the project and zone.',
      status: 404,
      code: 'notFound',
    });
  }

  /** Starts a stopped instance again. */
  async start(id: string): Promise<void> {
    const r = await this.act(id, 'start');
    if (!r) throw new CloudApiError(GCP_TITLE, `start ${id}: the instance no longer exists`, { remedy: 'Refresh the list; check the project and zone.', status: 404, code: 'notFound' });
  }

  consoleUrl(instance: CloudInstance): string {
    const zone = instance.region ?? this.zoneOfName.get(instance.id) ?? this.zone;
    return `https://console.cloud.google.com/compute/instancesDetail/zones/${zone}/instances/${encodeURIComponent(instance.id)}?project=${encodeURIComponent(this.project)}`;
  }
}

const ZONE_RE = /^[a-z]+-[a-z]+\d+-[a-z]$/;

/**
 * The client for an account (descriptor.ts `load`): project from the account else
 * GOOGLE_CLOUD_PROJECT / gcloud config (googleAuth.ts), zone from the account else
 * `gcloud config get-value compute/zone` else {@link GCP_FALLBACK_ZONE}; prices from the shipped
 * catalogue and the one `tether cloud prices gcp` saved in the state folder.
 */
export async function createGcpProvider(a: GcpAccount, { log, stateDir }: { log: Logger; stateDir?: string }): Promise<GcpComputeProvider> {
  const { newestCatalogue, readUserCatalogue } = await import('./gcpPricing');
  const project = await googleProject({ ...(a.project ? { project: a.project } : {}), env: a.env });
  let zone = a.zone ?? (await gcloudConfigValue('compute/zone', { env: a.env }));
  if (zone && !ZONE_RE.test(zone)) throw new TetherError(`"${zone}" is not a Compute Engine zone`, { remedy: 'Pass --zone like us-central1-a (or set tether.gcp.zone / TETHER_GCP_ZONE).' });
  if (!zone) {
    zone = GCP_FALLBACK_ZONE;
    log.info(`gcp: no zone configured (--zone, TETHER_GCP_ZONE, tether.gcp.zone, gcloud config compute/zone): launches go to ${zone}`);
  }
  const token = a.accessToken;
  return new GcpComputeProvider({
    project,
    zone,
    ...(a.endpoint ? { baseUrl: a.endpoint } : {}),
    token: token ? async () => token : () => googleAccessToken({ env: a.env }),
    ...(a.image ? { image: a.image } : {}),
    catalogue: newestCatalogue(GCP_SHIPPED_CATALOGUE, stateDir ? readUserCatalogue(stateDir) : undefined),
    log: (line) => log.info(line),
  });
}
