/**
 * AWS EC2 as a Tether cloud provider, through the official `@aws-sdk/client-ec2` (v3).
 *
 * API reference (EC2 Query API, SigV4 — the SDK signs):
 * - RunInstances: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
 *   (`ClientToken` — at most 64 ASCII characters, case-sensitive — makes the call idempotent:
 *   https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html; `TagSpecifications`
 *   tags the instance at creation, so it is never untagged, not even briefly)
 * - DescribeInstances (filters `tag:KEY`, `instance-state-name`):
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html
 * - TerminateInstances (idempotent): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html
 * - StopInstances (stop: EBS root kept and billed; stopping a stopped instance is fine; the state
 *   goes stopping → stopped): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html
 * - DescribeInstanceTypes (`GpuInfo.Gpus[].Name/Count/Manufacturer`):
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html
 * - Error codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 *
 * EC2 reports no price: prices come from the shipped, dated catalogue `aws-prices.json`
 * (on-demand Linux). A type missing there gets `pricePerHour: NaN` and says so in its
 * description — Tether does not guess a price.
 *
 * Credentials: the standard AWS chain (environment, shared config/credentials files and SSO,
 * container and instance roles) unless explicit keys are passed (the UI keeps them in
 * SecretStorage). Keys never reach logs or error messages.
 */
import { AWS_BILLING } from '../rules';
import { createHash } from 'node:crypto';
import {
  DescribeInstanceTypesCommand,
  type DescribeInstanceTypesCommandInput,
  EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  paginateDescribeInstanceTypes,
  type Filter,
  type Instance,
  type InstanceTypeInfo,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import { CloudProviderType } from '../../../core/protocols';
import type { Logger } from '../../../core/logger';
import { parseMarker, tetherIdOf } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';
import { AWS_NETWORK_CODES, awsSdkError } from '../awsErrors';
import shippedCatalogue from './aws-prices.json';

/** Tag keys Tether puts on every instance it launches. */
export const AWS_TAG_LEDGER_ID = 'tether:ledger-id';
export const AWS_TAG_MANAGED = 'tether:managed';
/** The id of the ledger (state folder) that launched it (marker.ts `ledgerIdentity`). */
export const AWS_TAG_ORIGIN = 'tether:origin-ledger';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The shipped on-demand price snapshot (see aws-prices.json). */
export interface AwsPriceCatalogue {
  /** ISO date the prices were taken. */
  asOf: string;
  source: string;
  currency: string;
  terms?: string;
  note?: string;
  /** region → instance type → USD per hour. */
  regions: Record<string, Record<string, number>>;
}

export interface AwsEc2Options {
  /** Region for launches and the catalogue ("us-east-1"). */
  region: string;
  /** Regions to list and describe in (default: just `region`). */
  regions?: string[];
  /** Another endpoint (a proxy, a compatible API, moto in tests). */
  endpoint?: string;
  /** Explicit keys; default: the standard AWS credential chain. */
  credentials?: AwsCredentials;
  log?: Logger;
  /** AMI used when a launch request names none. */
  defaultImageId?: string;
  /** Price catalogue (default: the shipped aws-prices.json). */
  catalogue?: AwsPriceCatalogue;
  /** List every instance type, not only GPU and catalogued ones (most are then unpriced). */
  includeAllTypes?: boolean;
  /** Attempts per call by the SDK's standard retry strategy (default 3). */
  maxAttempts?: number;
  /** Connect timeout, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Whole-request timeout, ms (default 30000). */
  requestTimeoutMs?: number;
}

export const AWS_SHIPPED_CATALOGUE: AwsPriceCatalogue = shippedCatalogue as AwsPriceCatalogue;

const DEFAULT_MAX_ATTEMPTS = 3;

/** The ClientToken for a ledger id: the id itself when it fits EC2's rule (≤ 64 printable ASCII), else a stable hash of it. */
export function awsClientToken(ledgerId: string): string {
  if (ledgerId.length > 0 && ledgerId.length <= 64 && /^[\x21-\x7e]+$/.test(ledgerId)) return ledgerId;
  return `tether-${createHash('sha256').update(ledgerId).digest('hex').slice(0, 56)}`;
}

/** EC2's instance-state name → Tether's vocabulary. */
export function mapAwsState(name: string | undefined): InstanceState {
  switch (name) {
    case 'pending':
      return 'provisioning';
    case 'running':
      return 'running';
    case 'stopping':
      return 'stopping';
    case 'stopped':
      return 'stopped';
    case 'shutting-down':
      return 'terminating';
    case 'terminated':
      return 'terminated';
    default:
      return 'unknown';
  }
}

/** EC2 error codes that mean the credentials are wrong, expired or not allowed. */
export const CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'RequestExpired',
  'OptInRequired',
  'CredentialsProviderError',
]);
const THROTTLE_CODES = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException']);
const NETWORK_CODES = AWS_NETWORK_CODES;

function remedyFor(code: string, attempts: number | undefined, endpoint: string): string {
  if (CREDENTIAL_CODES.has(code)) {
    return 'Check the AWS credentials (the keys stored in Tether, or the standard chain: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws / SSO): that they belong to the account, are not expired, and that their IAM policy allows ec2:RunInstances, ec2:DescribeInstances, ec2:DescribeInstanceTypes, ec2:TerminateInstances, ec2:StopInstances and ec2:CreateTags.';
  }
  if (code.startsWith('InvalidAMIID')) return 'Pick an AMI that exists in this region and that your account may use (AMI ids differ per region).';
  if (code === 'InsufficientInstanceCapacity') return 'AWS has no capacity for this type right now: try another availability zone, region or instance type, or retry later.';
  if (code === 'InstanceLimitExceeded' || code === 'VcpuLimitExceeded' || code === 'MaxSpotInstanceCountExceeded') {
    return 'Your account quota for this instance family is exhausted: request an increase in Service Quotas (EC2 "Running On-Demand ... instances" vCPU limit) or terminate other instances.';
  }
  if (THROTTLE_CODES.has(code)) {
    return `AWS throttled the API; the SDK's standard retry strategy already retried with backoff${attempts ? ` (${attempts} attempts in all)` : ''}. Wait a minute and try again, or poll less often.`;
  }
  if (code === 'IdempotentParameterMismatch') return 'This ledger id was already used for a launch with other parameters: start a new launch (a new ledger record) instead of retrying with changed settings.';
  if (code === 'IncorrectInstanceState') return 'The instance is in a state that does not allow this (a terminated or shutting-down instance cannot be stopped): refresh the list.';
  if (code === 'UnsupportedOperation') return 'EC2 does not support this for the instance (e.g. an instance-store root volume cannot be stopped): terminate it instead.';
  if (code === 'InvalidKeyPair.NotFound') return 'Import or create that SSH key pair in this region (EC2 → Key pairs), or pick another.';
  if (code.startsWith('InvalidInstanceType') || code === 'Unsupported') return 'Pick an instance type offered in this region (the catalogue lists them).';
  if (NETWORK_CODES.has(code) || code === 'TimeoutError' || code === 'RequestTimeout') {
    return `Check the network, proxy and endpoint (${endpoint}): no answer${attempts ? ` after ${attempts} attempts by the SDK's retry strategy` : ''}.`;
  }
  if (code.startsWith('InvalidParameter') || code === 'MissingParameter') return 'Check the launch settings (type, image, key, region).';
  return 'Retry; if it persists, check the AWS Health Dashboard and the request in CloudTrail.';
}

/** Any error from the SDK (or thrown on its way) → CloudApiError with AWS's code and message and a remedy. */
export function toAwsCloudApiError(err: unknown, what: string, endpoint: string): CloudApiError {
  return awsSdkError(err, 'AWS EC2', what, (code, attempts) => remedyFor(code, attempts, endpoint));
}

function tagOf(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}

interface GpuFacts {
  gpuType?: string;
  gpuCount: number;
  vcpus?: number;
  memoryGiB?: number;
}

function gpuFacts(t: InstanceTypeInfo): GpuFacts {
  const gpus = t.GpuInfo?.Gpus ?? [];
  const gpuCount = gpus.reduce((n, g) => n + (g.Count ?? 0), 0);
  const names = [...new Set(gpus.map((g) => [g.Manufacturer, g.Name].filter(Boolean).join(' ')).filter(Boolean))];
  return {
    gpuType: names.length ? names.join(' + ') : undefined,
    gpuCount,
    vcpus: t.VCpuInfo?.DefaultVCpus,
    memoryGiB: t.MemoryInfo?.SizeInMiB === undefined ? undefined : t.MemoryInfo.SizeInMiB / 1024,
  };
}

export { AWS_BILLING };

/**
 * The instance-type families with GPUs (`GpuInfo`): G (graphics and inference: g4dn, g5, g6,
 * gr6…), P (training: p3, p4d, p5…) and DL (dl1, Habana Gaudi). DescribeInstanceTypes has no
 * filter on GPU info, but `instance-type` takes wildcards
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html);
 * non-GPU matches are dropped by the listing like before.
 */
export const AWS_GPU_FAMILY_PATTERNS = ['g*', 'p*', 'dl*'];

/** Filter values per request (EC2 caps the values of one filter; 100 stays well inside). */
const MAX_FILTER_VALUES = 100;

/**
 * The DescribeInstanceTypes requests of the catalogue: one `instance-type` filter naming the GPU
 * families and the priced types (a filter value that names no type matches nothing, where an
 * unknown name in `InstanceTypes` would fail the whole call), split into requests of at most
 * {@link MAX_FILTER_VALUES} values.
 */
export function awsCatalogueQueries(pricedTypes: string[]): DescribeInstanceTypesCommandInput[] {
  const gpuFamily = (t: string) => AWS_GPU_FAMILY_PATTERNS.some((p) => t.startsWith(p.slice(0, -1)));
  const values = [...AWS_GPU_FAMILY_PATTERNS, ...[...new Set(pricedTypes)].filter((t) => !gpuFamily(t)).sort()];
  const out: DescribeInstanceTypesCommandInput[] = [];
  for (let i = 0; i < values.length; i += MAX_FILTER_VALUES) out.push({ Filters: [{ Name: 'instance-type', Values: values.slice(i, i + MAX_FILTER_VALUES) }] });
  return out;
}

export class AwsEc2Provider implements CloudProvider {
  readonly billing = AWS_BILLING;
  readonly type = CloudProviderType.AWS;
  readonly title = 'AWS EC2';
  readonly catalogue: AwsPriceCatalogue;
  private readonly clients = new Map<string, EC2Client>();
  private readonly typeFacts = new Map<string, GpuFacts>();

  constructor(private readonly opts: AwsEc2Options) {
    this.catalogue = opts.catalogue ?? AWS_SHIPPED_CATALOGUE;
  }

  get region(): string {
    return this.opts.region;
  }

  private get endpointLabel(): string {
    return this.opts.endpoint ?? `the EC2 endpoint of ${this.opts.region}`;
  }

  private get regions(): string[] {
    return [...new Set([this.opts.region, ...(this.opts.regions ?? [])])];
  }

  /** The SDK client of a region (one per region, created on first use). Public for tests and diagnostics. */
  client(region = this.opts.region): EC2Client {
    let c = this.clients.get(region);
    if (!c) {
      c = new EC2Client({
        region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        ...(this.opts.credentials ? { credentials: { ...this.opts.credentials } } : {}),
        maxAttempts: this.opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        retryMode: 'standard',
        // throwOnRequestTimeout: without it @smithy/node-http-handler only logs a warning when
        // requestTimeout passes and keeps waiting, so a hung endpoint would hang the call forever.
        requestHandler: { connectionTimeout: this.opts.connectTimeoutMs ?? 5000, requestTimeout: this.opts.requestTimeoutMs ?? 30000, throwOnRequestTimeout: true },
      });
      this.clients.set(region, c);
    }
    return c;
  }

  /** Releases the SDK's sockets. */
  dispose(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }

  /** USD/h from the catalogue, or NaN when the catalogue has no price for it. */
  priceOf(instanceType: string, region = this.opts.region): number {
    const p = this.catalogue.regions[region]?.[instanceType];
    return typeof p === 'number' && Number.isFinite(p) ? p : NaN;
  }

  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      const mapped = toAwsCloudApiError(err, what, this.endpointLabel);
      this.opts.log?.warn(`aws: ${mapped.message}`);
      throw mapped;
    }
  }

  async listInstanceTypes(): Promise<InstanceType[]> {
    const region = this.opts.region;
    const priced = this.catalogue.regions[region] ?? {};
    const out: InstanceType[] = [];
    // Ask only for what the wizard shows: the GPU families and the priced types (an
    // unfiltered DescribeInstanceTypes returns every type of the region, over a thousand).
    const inputs: DescribeInstanceTypesCommandInput[] = this.opts.includeAllTypes ? [{}] : awsCatalogueQueries(Object.keys(priced));
    const seen = new Set<string>();
    await this.call('DescribeInstanceTypes', async () => {
      for (const input of inputs) for await (const page of paginateDescribeInstanceTypes({ client: this.client(region), pageSize: 100 }, input)) {
        for (const t of page.InstanceTypes ?? []) {
          if (!t.InstanceType || seen.has(t.InstanceType)) continue;
          seen.add(t.InstanceType);
          const facts = gpuFacts(t);
          this.typeFacts.set(t.InstanceType, facts);
          const price = this.priceOf(t.InstanceType, region);
          if (!this.opts.includeAllTypes && facts.gpuCount === 0 && !(t.InstanceType in priced)) continue;
          const hw = [facts.gpuCount ? `${facts.gpuCount}× ${facts.gpuType ?? 'GPU'}` : undefined, facts.vcpus ? `${facts.vcpus} vCPU` : undefined, facts.memoryGiB ? `${facts.memoryGiB} GiB` : undefined]
            .filter(Boolean)
            .join(', ');
          const priceNote = Number.isNaN(price)
            ? `no price: not in Tether's AWS price catalogue for ${region} (as of ${this.catalogue.asOf}); see ${this.catalogue.source}`
            : `on-demand Linux price as of ${this.catalogue.asOf}`;
          out.push({
            name: t.InstanceType,
            description: `${hw}${hw ? '; ' : ''}${priceNote}`,
            gpuType: facts.gpuType,
            gpuCount: facts.gpuCount,
            vcpus: facts.vcpus,
            memoryGiB: facts.memoryGiB,
            pricePerHour: price,
            // EC2 does not publish live capacity; an insufficient-capacity error comes at launch.
            regionsWithCapacity: undefined,
          });
        }
      }
    });
    return out.sort((a, b) => b.gpuCount - a.gpuCount || a.name.localeCompare(b.name));
  }

  /** GPU facts of the given types, cached (DescribeInstanceTypes for the unknown ones). */
  private async factsOf(types: string[], region: string): Promise<void> {
    const missing = [...new Set(types)].filter((t) => t && !this.typeFacts.has(t));
    if (!missing.length) return;
    try {
      const res = await this.client(region).send(new DescribeInstanceTypesCommand({ InstanceTypes: missing as _InstanceType[] }));
      for (const t of res.InstanceTypes ?? []) if (t.InstanceType) this.typeFacts.set(t.InstanceType, gpuFacts(t));
    } catch (err) {
      // GPU details are decoration here; the instance list must not fail for them.
      this.opts.log?.debug(`aws: DescribeInstanceTypes(${missing.join(',')}) failed: ${(err as Error).message}`);
    }
  }

  private toInstance(i: Instance, region: string): CloudInstance {
    const type = i.InstanceType ?? undefined;
    const facts = type ? this.typeFacts.get(type) : undefined;
    const price = type ? this.priceOf(type, region) : NaN;
    const raw = i.State?.Name ?? 'unknown';
    return {
      id: i.InstanceId ?? '',
      provider: CloudProviderType.AWS,
      name: tagOf(i, 'Name'),
      region,
      instanceType: type,
      gpuType: facts?.gpuType,
      gpuCount: facts?.gpuCount ?? 0,
      status: mapAwsState(i.State?.Name),
      rawStatus: raw,
      pricePerHour: Number.isNaN(price) ? undefined : price,
      sshHost: i.PublicDnsName || i.PublicIpAddress || undefined,
      sshPort: 22,
      launchedAt: i.LaunchTime ? new Date(i.LaunchTime).toISOString() : undefined,
      // The ledger-id tag; else the marker in the Name (tags lost, or launched by hand with a marked name).
      tetherId: tagOf(i, AWS_TAG_LEDGER_ID) !== undefined ? tetherIdOf(tagOf(i, AWS_TAG_LEDGER_ID)!, tagOf(i, AWS_TAG_ORIGIN)) : parseMarker(tagOf(i, 'Name')),
      metadata: {
        availabilityZone: i.Placement?.AvailabilityZone,
        imageId: i.ImageId,
        keyName: i.KeyName,
        publicIp: i.PublicIpAddress,
        publicDns: i.PublicDnsName || undefined,
        privateIp: i.PrivateIpAddress,
        stateReason: i.StateReason?.Message,
        managed: tagOf(i, AWS_TAG_MANAGED) === 'true',
        priceSource: Number.isNaN(price) ? undefined : `aws-prices.json as of ${this.catalogue.asOf}`,
      },
    };
  }

  private async describeWhere(region: string, input: { InstanceIds?: string[]; Filters?: Filter[] }): Promise<CloudInstance[]> {
    const found: Instance[] = [];
    for await (const page of paginateDescribeInstances({ client: this.client(region) }, input)) {
      for (const r of page.Reservations ?? []) found.push(...(r.Instances ?? []));
    }
    await this.factsOf(found.map((i) => i.InstanceType ?? ''), region);
    return found.map((i) => this.toInstance(i, region));
  }

  /** Every instance in the configured regions, Tether's (with `tetherId`) and the user's own. Includes recently terminated ones. */
  async listInstances(): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    for (const region of this.regions) out.push(...(await this.call('DescribeInstances', () => this.describeWhere(region, {}))));
    return out;
  }

  /** Only instances carrying Tether's ledger-id tag (optionally one ledger id). */
  async listTetherInstances(ledgerId?: string): Promise<CloudInstance[]> {
    const filter: Filter = ledgerId ? { Name: `tag:${AWS_TAG_LEDGER_ID}`, Values: [ledgerId] } : { Name: 'tag-key', Values: [AWS_TAG_LEDGER_ID] };
    const out: CloudInstance[] = [];
    for (const region of this.regions) out.push(...(await this.call('DescribeInstances', () => this.describeWhere(region, { Filters: [filter] }))));
    return out;
  }

  /**
   * Runs `call` region by region until one knows the instance (a result other than undefined).
   * "No such instance" moves on to the next region; other errors are mapped and thrown. Without a
   * region that knows it: the last not-found error.
   */
  private async inRegionOf<T>(id: string, action: string, call: (region: string) => Promise<T | undefined>): Promise<{ value: T; region: string } | { notFound: unknown }> {
    let notFound: unknown;
    for (const region of this.regions) {
      try {
        const value = await call(region);
        if (value !== undefined) return { value, region };
      } catch (err) {
        const code = (err as { name?: string }).name ?? '';
        if (code === 'InvalidInstanceID.NotFound' || code === 'InvalidInstanceID.Malformed') {
          notFound = err;
          continue;
        }
        throw toAwsCloudApiError(err, `${action}(${id})`, this.endpointLabel);
      }
    }
    return { notFound };
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    const r = await this.inRegionOf(id, 'DescribeInstances', async (region) => (await this.describeWhere(region, { InstanceIds: [id] }))[0]);
    return 'value' in r ? r.value : undefined;
  }

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    const region = req.region ?? this.opts.region;
    const imageId = req.image ?? this.opts.defaultImageId;
    if (!imageId) {
      throw new CloudApiError('AWS EC2', `Launching ${req.instanceType} needs an AMI and none was given`, {
        remedy: 'Pick an AMI for this region (for GPUs, an AWS Deep Learning AMI) in the wizard or in the provider settings.',
        code: 'MissingParameter',
      });
    }
    const token = awsClientToken(req.ledgerId);
    // Belt and braces next to the ClientToken: an instance already tagged with this ledger id
    // (alive) is the launch we are retrying. EC2 itself answers a repeated token with the
    // original instance; emulators and compatible APIs may not.
    const existing = await this.call('DescribeInstances', () =>
      this.describeWhere(region, {
        Filters: [
          { Name: `tag:${AWS_TAG_LEDGER_ID}`, Values: [req.ledgerId] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
      }),
    );
    if (existing.length) {
      this.opts.log?.info(`aws: launch ${req.ledgerId} already made ${existing[0]!.id}; not launching again`);
      return existing[0]!;
    }
    const name = markedName(req);
    this.opts.log?.info(`aws: RunInstances ${req.instanceType} in ${region} (ClientToken ${token}, name ${name})`);
    const res = await this.call(`RunInstances(${req.instanceType})`, () =>
      this.client(region).send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: req.instanceType as _InstanceType,
          MinCount: 1,
          MaxCount: 1,
          ClientToken: token,
          ...(req.sshKeyName ? { KeyName: req.sshKeyName } : {}),
          // 'terminate': an OS shutdown (e.g. the dead man's switch) ends the instance and its bill.
          ...(req.shutdownBehavior ? { InstanceInitiatedShutdownBehavior: req.shutdownBehavior } : {}),
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: AWS_TAG_LEDGER_ID, Value: req.ledgerId },
                { Key: AWS_TAG_MANAGED, Value: 'true' },
                ...(req.owner ? [{ Key: AWS_TAG_ORIGIN, Value: req.owner }] : []),
                { Key: 'Name', Value: name },
              ],
            },
          ],
        }),
      ),
    );
    const inst = res.Instances?.[0];
    if (!inst?.InstanceId) {
      throw new CloudApiError('AWS EC2', `RunInstances(${req.instanceType}) answered without an instance`, {
        remedy: `Check the EC2 console for an instance tagged ${AWS_TAG_LEDGER_ID}=${req.ledgerId}; Tether will adopt it on the next poll.`,
      });
    }
    await this.factsOf([inst.InstanceType ?? req.instanceType], region);
    return this.toInstance(inst, region);
  }

  async terminate(id: string): Promise<void> {
    const r = await this.inRegionOf(id, 'TerminateInstances', async (region) => {
      await this.client(region).send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      return region;
    });
    if ('value' in r) {
      this.opts.log?.info(`aws: TerminateInstances ${id} (${r.region})`);
      return;
    }
    // Unknown in every region: already gone (terminated instances vanish from EC2 after about an hour).
    this.opts.log?.info(`aws: ${id} not found; counting it as terminated`);
  }

  /**
   * Stops an instance (StopInstances, region by region like terminate): its EBS volumes stay and
   * keep billing; it reads back as stopping → stopped. Stopping a stopped instance is fine. An id
   * unknown in every region is an error (InvalidInstanceID.NotFound): a stop must not pretend.
   */
  async stop(id: string): Promise<void> {
    const r = await this.inRegionOf(id, 'StopInstances', async (region) => {
      await this.client(region).send(new StopInstancesCommand({ InstanceIds: [id] }));
      return region;
    });
    if ('value' in r) {
      this.opts.log?.info(`aws: StopInstances ${id} (${r.region})`);
      return;
    }
    const notFound = r.notFound;
    const status = (notFound as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
    throw new CloudApiError('AWS EC2', `StopInstances(${id}) failed: InvalidInstanceID.NotFound: the instance no longer exists in ${this.regions.join(', ')}`, {
      remedy: 'It was terminated (EC2 forgets terminated instances after about an hour) or never existed in these regions, so there is nothing to stop; refresh the list, and check the region (setting tether.aws.region).',
      ...(status !== undefined ? { status } : {}),
      code: 'InvalidInstanceID.NotFound',
      ...(notFound !== undefined ? { cause: notFound } : {}),
    });
  }

  consoleUrl(instance: CloudInstance): string {
    const region = instance.region ?? this.opts.region;
    return `https://${region}.console.aws.amazon.com/ec2/home?region=${region}#InstanceDetails:instanceId=${encodeURIComponent(instance.id)}`;
  }
}
