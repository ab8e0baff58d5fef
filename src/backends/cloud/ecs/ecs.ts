/**
 * AWS ECS tasks (Fargate and EC2 launch types) as a Tether cloud provider, through the official
 * `@aws-sdk/client-ecs` (v3, AWS JSON 1.1, SigV4 — the SDK signs). A *task* is the "instance":
 * launch runs one task, list / describe read tasks, terminate is StopTask; there is no stop (a
 * stopped task cannot be started again).
 *
 * API reference (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/):
 * - RunTask (`clientToken`: up to 64 ASCII characters 33–126, idempotent per cluster for 24 h; a
 *   repeat with other parameters fails with ConflictException — ECS_Idempotency.html; `startedBy`:
 *   letters, digits, `-`, `/`, `_` — up to 36 for StartTask, 128 for RunTask in the SDK's
 *   3.1164.0 model; Tether keeps to 36; `tags`: ≤ 50, key ≤ 128, value ≤ 256, no `aws:` prefix):
 *   API_RunTask.html
 * - ListTasks (`startedBy` "must be the only filter"; `desiredStatus` RUNNING by default, STOPPED
 *   lists stopped tasks, which ECS keeps visible for at least an hour): API_ListTasks.html
 * - DescribeTasks (≤ 100 tasks, `include: ['TAGS']`, unknown tasks come back in `failures` with
 *   reason MISSING): API_DescribeTasks.html
 * - StopTask: API_StopTask.html; RegisterTaskDefinition / DescribeTaskDefinition:
 *   API_RegisterTaskDefinition.html, API_DescribeTaskDefinition.html
 * - Task lifecycle (PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING → STOPPING →
 *   DEPROVISIONING → STOPPED): https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
 * - Common errors (InvalidClientTokenId 403, ThrottlingException 400, …): CommonErrors.html
 *
 * Tether's marker on a task: tags `tether:ledger-id`, `tether:origin-ledger`, `tether:managed`
 * and `Name` (the marked name, marker.ts), and `startedBy` = the marked name cut to 36
 * characters with other characters replaced by `_` — `tether-<record 8><ledger 8>-<name…>`: the
 * marker itself takes 24, so a task is found by its marker even where tags are lost (ListTasks
 * filters on `startedBy`, never on tags).
 *
 * Task definitions: one family per content (`tether-<hash of image, size, launch type, logs>`),
 * reused while its latest ACTIVE revision still says the same, registered otherwise — a retried
 * launch and every launch of the same image and size share one definition.
 *
 * Credentials and endpoint as for EC2: the standard AWS chain unless explicit keys are given;
 * `endpoint` (TETHER_AWS_API_URL) redirects both the ECS calls and the EC2 calls that find the
 * default VPC's subnets for Fargate. Keys never reach logs or error messages.
 */
import { createHash } from 'node:crypto';
import type {
  ContainerDefinition,
  ECSClient,
  Tag,
  NetworkConfiguration,
  Task,
  TaskDefinition,
} from '@aws-sdk/client-ecs';
import { ExitCode } from '../../../core/errors';
import type { Logger } from '../../../core/logger';
import { CloudProviderType } from '../../../core/protocols';
import { matchesLedgerId, parseMarker, tetherIdOf } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';
import { AWS_NETWORK_CODES, awsSdkError } from '../awsErrors';
import { ECS_BILLING, FARGATE_SHIPPED_CATALOGUE, describeEcsSize, ecsPricePerHour, fargateCatalogue, type FargatePriceCatalogue } from './pricing';
import { ecsSizeName, parseEcsSize, type EcsArch, type EcsSize } from './sizes';

export { ECS_BILLING };

/** Tag keys Tether puts on every task it runs (the same keys as on EC2 instances). */
export const ECS_TAG_LEDGER_ID = 'tether:ledger-id';
export const ECS_TAG_MANAGED = 'tether:managed';
export const ECS_TAG_ORIGIN = 'tether:origin-ledger';
/** The longest `startedBy` Tether writes (StartTask's limit; RunTask's is larger now). */
export const ECS_STARTED_BY_MAX = 36;
/** The container every Tether task definition runs. */
export const ECS_CONTAINER_NAME = 'main';
/** Error codes meaning the credentials are wrong, expired or not allowed. */
export const ECS_CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'AccessDeniedException',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'NotAuthorized',
  'OptInRequired',
  'CredentialsProviderError',
  'AuthFailure',
  'UnauthorizedOperation',
]);
const THROTTLE_CODES = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded']);
const NETWORK_CODES = AWS_NETWORK_CODES;

export interface EcsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface EcsOptions {
  /** Region of the cluster ("us-east-1"); also the price catalogue's region. */
  region: string;
  /** Another endpoint (a proxy, moto in tests): ECS and the EC2 calls for the default VPC. */
  endpoint?: string;
  credentials?: EcsCredentials;
  /** The cluster launches go to (default "default"). Listing covers every cluster of the region. */
  cluster?: string;
  /** Fargate (awsvpc) subnets; default: the default VPC's default subnets, with a public IP. */
  subnets?: string[];
  /** Security groups for those subnets; default: the VPC's "default" group. */
  securityGroups?: string[];
  /** Give Fargate tasks a public IP (needed to pull public images without a NAT). Default: true with the default VPC, else false. */
  assignPublicIp?: boolean;
  /** CloudWatch log group: Tether's task definitions then log with the awslogs driver there (needs `executionRoleArn` on Fargate). */
  logGroup?: string;
  /** The task execution role (image pulls from ECR, awslogs). */
  executionRoleArn?: string;
  catalogue?: FargatePriceCatalogue;
  log?: Logger;
  /** Attempts per call by the SDK's standard retry strategy (default 3). */
  maxAttempts?: number;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** The clientToken for a ledger id: the id when it fits RunTask's rule (≤ 64 characters 33–126), else a stable hash. */
export function ecsClientToken(ledgerId: string): string {
  if (ledgerId.length > 0 && ledgerId.length <= 64 && /^[\x21-\x7e]+$/.test(ledgerId)) return ledgerId;
  return `tether-${createHash('sha256').update(ledgerId).digest('hex').slice(0, 56)}`;
}

/** `startedBy` for a launch: the marked name in ECS's alphabet, cut to {@link ECS_STARTED_BY_MAX}. */
export function ecsStartedBy(req: Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>): string {
  return markedName(req).replace(/[^A-Za-z0-9_/-]/g, '_').slice(0, ECS_STARTED_BY_MAX);
}

/** ECS's lastStatus (and desiredStatus) → Tether's words. */
export function mapEcsState(lastStatus: string | undefined, desiredStatus?: string): InstanceState {
  switch (lastStatus) {
    case 'PROVISIONING':
    case 'PENDING':
    case 'ACTIVATING':
      return desiredStatus === 'STOPPED' ? 'terminating' : 'provisioning';
    case 'RUNNING':
      return desiredStatus === 'STOPPED' ? 'terminating' : 'running';
    case 'DEACTIVATING':
    case 'STOPPING':
    case 'DEPROVISIONING':
      return 'terminating';
    case 'STOPPED':
    case 'DELETED':
      return 'terminated';
    default:
      return 'unknown';
  }
}

/** The parts of a task ARN (`arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`; the old short form has no cluster). */
export function parseTaskArn(arn: string): { region?: string; cluster?: string; taskId: string } {
  const m = /^arn:[^:]+:ecs:([^:]*):[^:]*:task\/(?:([^/]+)\/)?([^/]+)$/.exec(arn);
  if (!m) return { taskId: arn };
  return { ...(m[1] ? { region: m[1] } : {}), ...(m[2] ? { cluster: m[2] } : {}), taskId: m[3]! };
}

function remedyFor(code: string, attempts: number | undefined, endpoint: string): string {
  if (ECS_CREDENTIAL_CODES.has(code)) {
    return 'Check the AWS credentials (the keys stored in Tether, or the standard chain: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws / SSO): that they belong to the account, are not expired, and that their IAM policy allows ecs:RunTask, ecs:StopTask, ecs:ListTasks, ecs:DescribeTasks, ecs:ListClusters, ecs:DescribeClusters, ecs:DescribeContainerInstances, ecs:RegisterTaskDefinition, ecs:DescribeTaskDefinition, ecs:TagResource, iam:PassRole (with an execution role) and ec2:DescribeVpcs / DescribeSubnets / DescribeSecurityGroups.';
  }
  if (code === 'ClusterNotFoundException') return 'Create the cluster (ECS console, or `aws ecs create-cluster --cluster-name NAME`) or name an existing one (--cluster, setting tether.ecs.cluster, TETHER_ECS_CLUSTER).';
  if (THROTTLE_CODES.has(code)) return `AWS throttled the API; the SDK's standard retry strategy already retried with backoff${attempts ? ` (${attempts} attempts in all)` : ''}. Wait a minute and try again, or poll less often.`;
  if (code === 'ConflictException') return 'This ledger id was already used for a launch with other parameters: start a new launch (a new ledger record) instead of retrying with changed settings.';
  if (code === 'PlatformUnknownException' || code === 'PlatformTaskDefinitionIncompatibilityException') return 'Pick a Fargate platform version and task size Fargate supports (`tether cloud types ecs`).';
  if (code === 'BlockedException') return 'Your AWS account is blocked from ECS (usually a billing problem): see the AWS Billing console.';
  if (code === 'AccessDeniedException') return 'Allow the ECS actions in the IAM policy of these credentials.';
  if (NETWORK_CODES.has(code) || code === 'TimeoutError' || code === 'RequestTimeout') {
    return `Check the network, proxy and endpoint (${endpoint}): no answer${attempts ? ` after ${attempts} attempts by the SDK's retry strategy` : ''}.`;
  }
  if (code === 'InvalidParameterException' || code === 'ClientException') return 'Check the launch settings (image, task size, cluster, subnets, security groups, execution role).';
  if (code === 'ServerException') return 'ECS had an internal error: retry; if it persists, check the AWS Health Dashboard.';
  return 'Retry; if it persists, check the AWS Health Dashboard and the request in CloudTrail.';
}

/** Any error from the SDK (or thrown on its way) → CloudApiError with AWS's code and message and a remedy. */
export function toEcsCloudApiError(err: unknown, what: string, endpoint: string): CloudApiError {
  return awsSdkError(err, 'AWS ECS', what, (code, attempts) => remedyFor(code, attempts, endpoint));
}

/** "The referenced task was not found" / an unknown cluster: the task is gone (or never was) there. */
function isTaskGone(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'ClusterNotFoundException') return true;
  return e?.name === 'InvalidParameterException' && /task was not found|not found/i.test(e.message ?? '');
}

function tagOf(t: Task, key: string): string | undefined {
  return t.tags?.find((x) => x.key === key)?.value;
}

/** What a task definition tells about a task: size, GPUs, architecture, logs. */
export interface TaskDefinitionFacts {
  arn: string;
  family?: string;
  cpu?: number;
  memoryMiB?: number;
  gpus: number;
  arch: EcsArch;
  /** Where each container's output goes (awslogs: group and stream prefix). */
  logs: Array<{ container: string; driver?: string; group?: string; region?: string; streamPrefix?: string }>;
  image?: string;
}

export function taskDefinitionFacts(td: TaskDefinition): TaskDefinitionFacts {
  const gpus = (td.containerDefinitions ?? []).reduce((n, c) => n + (c.resourceRequirements ?? []).filter((r) => r.type === 'GPU').reduce((s, r) => s + (Number(r.value) || 0), 0), 0);
  return {
    arn: td.taskDefinitionArn ?? '',
    ...(td.family ? { family: td.family } : {}),
    ...(td.cpu ? { cpu: Number(td.cpu) } : {}),
    ...(td.memory ? { memoryMiB: Number(td.memory) } : {}),
    gpus,
    arch: td.runtimePlatform?.cpuArchitecture === 'ARM64' ? 'ARM64' : 'X86_64',
    logs: (td.containerDefinitions ?? []).map((c) => ({
      container: c.name ?? '',
      ...(c.logConfiguration?.logDriver ? { driver: c.logConfiguration.logDriver } : {}),
      ...(c.logConfiguration?.options?.['awslogs-group'] ? { group: c.logConfiguration.options['awslogs-group'] } : {}),
      ...(c.logConfiguration?.options?.['awslogs-region'] ? { region: c.logConfiguration.options['awslogs-region'] } : {}),
      ...(c.logConfiguration?.options?.['awslogs-stream-prefix'] ? { streamPrefix: c.logConfiguration.options['awslogs-stream-prefix'] } : {}),
    })),
    ...(td.containerDefinitions?.[0]?.image ? { image: td.containerDefinitions[0].image } : {}),
  };
}

/**
 * Where a task's logs are: for each container with the awslogs driver, its CloudWatch log group
 * and stream (`PREFIX/CONTAINER/TASK-ID`, the awslogs driver's naming; without a prefix the
 * stream name is not predictable). Tether does not read CloudWatch Logs: it says where they are.
 */
export function taskLogs(facts: TaskDefinitionFacts | undefined, taskId: string, region: string): Array<{ container: string; group: string; stream?: string; region: string; command: string }> {
  return (facts?.logs ?? [])
    .filter((l) => l.driver === 'awslogs' && l.group)
    .map((l) => {
      const stream = l.streamPrefix ? `${l.streamPrefix}/${l.container}/${taskId}` : undefined;
      const r = l.region ?? region;
      return {
        container: l.container,
        group: l.group!,
        ...(stream ? { stream } : {}),
        region: r,
        command: `aws logs tail ${l.group} --region ${r}${stream ? ` --log-stream-names ${stream}` : ''} --follow`,
      };
    });
}

type EcsSdk = typeof import('@aws-sdk/client-ecs');

/** Bad launch input (a size that is not one, no image): refused before any call or ledger intent; the CLI exits 2. */
export class EcsInputError extends CloudApiError {
  override readonly exitCode = ExitCode.USAGE;
}

export class EcsProvider implements CloudProvider {
  readonly type = CloudProviderType.ECS;
  readonly title = 'AWS ECS';
  readonly billing = ECS_BILLING;
  readonly catalogue: FargatePriceCatalogue;
  private sdk: EcsSdk | undefined;
  private readonly clients = new Map<string, ECSClient>();
  private readonly tdFacts = new Map<string, TaskDefinitionFacts>();
  /** Container instance ARN → the EC2 instance it is (immutable). */
  private readonly ec2Of = new Map<string, string>();
  private network: Promise<NetworkConfiguration> | undefined;

  constructor(private readonly opts: EcsOptions) {
    this.catalogue = opts.catalogue ?? FARGATE_SHIPPED_CATALOGUE;
  }

  get region(): string {
    return this.opts.region;
  }

  get cluster(): string {
    return this.opts.cluster || 'default';
  }

  private get endpointLabel(): string {
    return this.opts.endpoint ?? `the ECS endpoint of ${this.opts.region}`;
  }

  private async load(): Promise<EcsSdk> {
    this.sdk ??= await import('@aws-sdk/client-ecs');
    return this.sdk;
  }

  private clientConfig(region: string) {
    return {
      region,
      ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
      ...(this.opts.credentials ? { credentials: { ...this.opts.credentials } } : {}),
      maxAttempts: this.opts.maxAttempts ?? 3,
      retryMode: 'standard',
      // throwOnRequestTimeout: without it a hung endpoint would only log a warning and wait forever.
      requestHandler: { connectionTimeout: this.opts.connectTimeoutMs ?? 5000, requestTimeout: this.opts.requestTimeoutMs ?? 30000, throwOnRequestTimeout: true },
    };
  }

  /** The SDK client of a region (created on first use). */
  async client(region = this.opts.region): Promise<ECSClient> {
    const sdk = await this.load();
    let c = this.clients.get(region);
    if (!c) {
      c = new sdk.ECSClient(this.clientConfig(region));
      this.clients.set(region, c);
    }
    return c;
  }

  dispose(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }

  private async call<T>(what: string, f: (sdk: EcsSdk, c: ECSClient) => Promise<T>, region = this.opts.region): Promise<T> {
    try {
      return await f(await this.load(), await this.client(region));
    } catch (err) {
      const mapped = toEcsCloudApiError(err, what, this.endpointLabel);
      this.opts.log?.warn(`ecs: ${mapped.message}`);
      throw mapped;
    }
  }

  /** Refuses, before any ledger intent, what ECS would refuse anyway: a size that is not one (Fargate's CPU/memory pairs), no image. */
  checkLaunch(req: { instanceType: string; image?: string }): void {
    this.sizeOf(req.instanceType);
    if (!req.image) {
      throw new EcsInputError('AWS ECS', `running a ${req.instanceType} task needs a container image and none was given`, {
        remedy: 'Pass --image (e.g. public.ecr.aws/docker/library/python:3.12 or an ECR image of your account).',
        code: 'MissingImage',
      });
    }
  }

  private sizeOf(instanceType: string): EcsSize {
    try {
      return parseEcsSize(instanceType);
    } catch (err) {
      throw new EcsInputError('AWS ECS', (err as Error).message, { remedy: (err as { remedy?: string }).remedy ?? 'See `tether cloud types ecs`.', code: 'InvalidTaskSize' });
    }
  }

  /** The catalogue entry of any valid size (EC2 and GPU sizes too, which the catalogue does not list), or a CloudApiError saying why not. */
  instanceType(name: string): InstanceType {
    return { ...describeEcsSize(this.sizeOf(name), this.opts.region, this.catalogue), regionsWithCapacity: undefined };
  }

  /**
   * Every Fargate size (x86_64 and ARM64) with its price. It asks ECS for the launch cluster
   * first, so that a wrong key or a missing cluster shows here rather than at launch.
   */
  async listInstanceTypes(): Promise<InstanceType[]> {
    const res = await this.call('DescribeClusters', (sdk, c) => c.send(new sdk.DescribeClustersCommand({ clusters: [this.cluster] })));
    if (!res.clusters?.some((c) => c.clusterName === this.cluster && c.status !== 'INACTIVE')) {
      throw new CloudApiError('AWS ECS', `the cluster "${this.cluster}" does not exist in ${this.opts.region}${res.failures?.[0]?.reason ? ` (${res.failures[0].reason})` : ''}`, {
        remedy: remedyFor('ClusterNotFoundException', undefined, this.endpointLabel),
        status: 400,
        code: 'ClusterNotFoundException',
      });
    }
    return fargateCatalogue(this.opts.region, this.catalogue).map((t) => ({ ...t, regionsWithCapacity: undefined }));
  }

  /** Facts of task definitions (cached; they are immutable per ARN). */
  private async factsOf(arns: string[], region: string): Promise<void> {
    for (const arn of [...new Set(arns)].filter((a) => a && !this.tdFacts.has(a))) {
      try {
        const sdk = await this.load();
        const res = await (await this.client(region)).send(new sdk.DescribeTaskDefinitionCommand({ taskDefinition: arn }));
        if (res.taskDefinition) this.tdFacts.set(arn, taskDefinitionFacts(res.taskDefinition));
      } catch (err) {
        // Size, GPUs and logs are decoration; the task list must not fail for them.
        this.opts.log?.debug(`ecs: DescribeTaskDefinition(${arn}) failed: ${(err as Error).message}`);
      }
    }
  }

  /** The EC2 instances behind EC2-launched tasks (DescribeContainerInstances, cached): what bills for them. */
  private async containerInstancesOf(cluster: string, arns: string[], region: string): Promise<void> {
    const missing = [...new Set(arns)].filter((a) => a && !this.ec2Of.has(a));
    if (!missing.length) return;
    try {
      const sdk = await this.load();
      for (let i = 0; i < missing.length; i += 100) {
        const res = await (await this.client(region)).send(new sdk.DescribeContainerInstancesCommand({ cluster, containerInstances: missing.slice(i, i + 100) }));
        for (const ci of res.containerInstances ?? []) if (ci.containerInstanceArn && ci.ec2InstanceId) this.ec2Of.set(ci.containerInstanceArn, ci.ec2InstanceId);
      }
    } catch (err) {
      this.opts.log?.debug(`ecs: DescribeContainerInstances failed: ${(err as Error).message}`);
    }
  }

  toInstance(t: Task, region: string): CloudInstance {
    const arn = t.taskArn ?? '';
    const { taskId, cluster } = parseTaskArn(arn);
    const facts = t.taskDefinitionArn ? this.tdFacts.get(t.taskDefinitionArn) : undefined;
    const launchType = t.launchType === 'EC2' ? 'EC2' : t.launchType === 'FARGATE' ? 'FARGATE' : undefined;
    const cpu = Number(t.cpu ?? facts?.cpu ?? NaN);
    const memoryMiB = Number(t.memory ?? facts?.memoryMiB ?? NaN);
    const gpuOverrides = (t.overrides?.containerOverrides ?? []).reduce((n, o) => n + (o.resourceRequirements ?? []).filter((r) => r.type === 'GPU').reduce((s, r) => s + (Number(r.value) || 0), 0), 0);
    const gpus = gpuOverrides || facts?.gpus || 0;
    const size: EcsSize | undefined = launchType && Number.isFinite(cpu) && Number.isFinite(memoryMiB) ? { launchType, cpu, memoryMiB, gpus, arch: facts?.arch ?? (t.platformFamily?.includes('ARM') ? 'ARM64' : 'X86_64') } : undefined;
    const price = size ? ecsPricePerHour(size, region, this.catalogue) : NaN;
    const raw = t.lastStatus ?? 'UNKNOWN';
    const ledgerTag = tagOf(t, ECS_TAG_LEDGER_ID);
    const name = tagOf(t, 'Name') ?? t.startedBy ?? t.group ?? taskId;
    const iso = (d: Date | undefined) => (d ? new Date(d).toISOString() : undefined);
    return {
      id: arn,
      provider: CloudProviderType.ECS,
      name,
      region,
      ...(size ? { instanceType: ecsSizeName(size) } : {}),
      ...(gpus ? { gpuType: 'GPU (ECS resourceRequirements)' } : {}),
      gpuCount: gpus,
      status: mapEcsState(t.lastStatus, t.desiredStatus),
      rawStatus: raw,
      ...(Number.isNaN(price) ? {} : { pricePerHour: price }),
      ...(t.createdAt ? { launchedAt: iso(t.createdAt) } : {}),
      // The ledger-id tag; else the marker in startedBy or the Name tag (tags lost, or started by hand with a marked name).
      tetherId: ledgerTag !== undefined ? tetherIdOf(ledgerTag, tagOf(t, ECS_TAG_ORIGIN)) : (parseMarker(t.startedBy) ?? parseMarker(tagOf(t, 'Name'))),
      metadata: {
        cluster: cluster ?? t.clusterArn?.split('/').pop(),
        clusterArn: t.clusterArn,
        taskId,
        launchType: t.launchType,
        taskDefinitionArn: t.taskDefinitionArn,
        image: facts?.image,
        startedBy: t.startedBy,
        group: t.group,
        lastStatus: t.lastStatus,
        desiredStatus: t.desiredStatus,
        stoppedReason: t.stoppedReason,
        stopCode: t.stopCode,
        createdAt: iso(t.createdAt),
        pullStartedAt: iso(t.pullStartedAt),
        startedAt: iso(t.startedAt),
        stoppingAt: iso(t.stoppingAt),
        stoppedAt: iso(t.stoppedAt),
        containerInstanceArn: t.containerInstanceArn,
        ...(t.containerInstanceArn && this.ec2Of.get(t.containerInstanceArn) ? { ec2InstanceId: this.ec2Of.get(t.containerInstanceArn) } : {}),
        containers: (t.containers ?? []).map((c) => ({
          name: c.name,
          lastStatus: c.lastStatus,
          ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
          ...(c.reason ? { reason: c.reason } : {}),
          ...(c.gpuIds?.length ? { gpuIds: c.gpuIds } : {}),
        })),
        gpuRequests: gpus,
        logs: taskLogs(facts, taskId, region),
        logsNote: !facts
          ? 'the task definition could not be read (ecs:DescribeTaskDefinition), so where its logs go is unknown'
          : taskLogs(facts, taskId, region).length
            ? 'CloudWatch Logs (awslogs): Tether says where they are but does not read them'
            : 'no awslogs log configuration: the task definition sends its output nowhere Tether can name',
        managed: tagOf(t, ECS_TAG_MANAGED) === 'true',
        ...(t.capacityProviderName ? { capacityProvider: t.capacityProviderName } : {}),
        ...(t.capacityProviderName === 'FARGATE_SPOT'
          ? { priceNote: 'Fargate Spot: shown at the on-demand rate (Spot costs up to 70% less and has no rates in the catalogue); Tether itself launches on-demand only' }
          : {}),
        ...(launchType === 'EC2'
          ? { priceNote: `EC2 launch type: billed by the EC2 container instance it runs on${t.containerInstanceArn && this.ec2Of.get(t.containerInstanceArn) ? ` (${this.ec2Of.get(t.containerInstanceArn)})` : ''}, not per task ($0 here)` }
          : Number.isNaN(price)
            ? { priceNote: `no Fargate rates for ${region} in Tether's catalogue (as of ${this.catalogue.asOf})` }
            : { priceSource: `fargate-prices.json as of ${this.catalogue.asOf}` }),
      },
    };
  }

  /** Describes tasks of a cluster (≤ 100 a call), tags included; task definitions looked up for size, GPUs and logs. */
  private async describeTasks(cluster: string, arns: string[], region = this.opts.region): Promise<CloudInstance[]> {
    const tasks: Task[] = [];
    const sdk = await this.load();
    const c = await this.client(region);
    for (let i = 0; i < arns.length; i += 100) {
      const res = await c.send(new sdk.DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + 100), include: ['TAGS'] }));
      tasks.push(...(res.tasks ?? []));
    }
    await this.factsOf(tasks.map((t) => t.taskDefinitionArn ?? ''), region);
    await this.containerInstancesOf(cluster, tasks.map((t) => t.containerInstanceArn ?? ''), region);
    return tasks.map((t) => this.toInstance(t, region));
  }

  private async listTaskArns(cluster: string, filter: { desiredStatus?: 'RUNNING' | 'STOPPED'; startedBy?: string }, region = this.opts.region): Promise<string[]> {
    const sdk = await this.load();
    const out: string[] = [];
    for await (const page of sdk.paginateListTasks({ client: await this.client(region), pageSize: 100 }, { cluster, ...filter })) out.push(...(page.taskArns ?? []));
    return out;
  }

  private async clusters(region = this.opts.region): Promise<string[]> {
    const sdk = await this.load();
    const out: string[] = [];
    for await (const page of sdk.paginateListClusters({ client: await this.client(region), pageSize: 100 }, {})) out.push(...(page.clusterArns ?? []));
    return out;
  }

  /**
   * Every task of every cluster in the region, Tether's (with `tetherId`) and the user's own
   * (unmanaged), running and recently stopped (ECS keeps stopped tasks visible for about an hour).
   */
  async listInstances(): Promise<CloudInstance[]> {
    return this.call('ListTasks', async () => {
      const out: CloudInstance[] = [];
      for (const clusterArn of await this.clusters()) {
        const arns = [...(await this.listTaskArns(clusterArn, { desiredStatus: 'RUNNING' })), ...(await this.listTaskArns(clusterArn, { desiredStatus: 'STOPPED' }))];
        if (arns.length) out.push(...(await this.describeTasks(clusterArn, [...new Set(arns)])));
      }
      return out;
    });
  }

  /** Live tasks started with this `startedBy` in a cluster (ListTasks: startedBy must be its only filter). */
  async listByStartedBy(startedBy: string, cluster = this.cluster): Promise<CloudInstance[]> {
    return this.call('ListTasks', async () => {
      const arns = await this.listTaskArns(cluster, { startedBy });
      return arns.length ? this.describeTasks(cluster, arns) : [];
    });
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    const { cluster, region } = parseTaskArn(id);
    const r = region ?? this.opts.region;
    try {
      const candidates = cluster ? [cluster] : await this.clusters(r);
      for (const c of candidates) {
        const found = (await this.describeTasks(c, [id], r)).find((t) => t.id === id || parseTaskArn(t.id).taskId === parseTaskArn(id).taskId);
        if (found) return found;
      }
      return undefined;
    } catch (err) {
      if ((err as { name?: string }).name === 'ClusterNotFoundException') return undefined;
      throw toEcsCloudApiError(err, `DescribeTasks(${id})`, this.endpointLabel);
    }
  }

  /** The family of a task definition: a hash of what it says, so equal launches share it. */
  static familyOf(spec: unknown): string {
    return `tether-${createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16)}`;
  }

  private containerDefinition(image: string, size: EcsSize): ContainerDefinition {
    return {
      name: ECS_CONTAINER_NAME,
      image,
      essential: true,
      // The container's hard limit: the whole task's memory (ECS requires one of task or container memory on EC2; moto, the container's).
      memory: size.memoryMiB,
      ...(size.gpus ? { resourceRequirements: [{ type: 'GPU', value: String(size.gpus) }] } : {}),
      ...(this.opts.logGroup
        ? { logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': this.opts.logGroup, 'awslogs-region': this.opts.region, 'awslogs-stream-prefix': 'tether', 'awslogs-create-group': 'true' } } }
        : {}),
    };
  }

  /** The ARN of a task definition for this image and size: the family's latest ACTIVE revision when it says the same, else a new one. */
  private async taskDefinitionFor(image: string, size: EcsSize): Promise<string> {
    const container = this.containerDefinition(image, size);
    const spec = { container, launchType: size.launchType, cpu: size.cpu, memory: size.memoryMiB, arch: size.arch, role: this.opts.executionRoleArn ?? null };
    const family = EcsProvider.familyOf(spec);
    const sdk = await this.load();
    const c = await this.client();
    try {
      const res = await c.send(new sdk.DescribeTaskDefinitionCommand({ taskDefinition: family }));
      const td = res.taskDefinition;
      const f = td ? taskDefinitionFacts(td) : undefined;
      if (td?.status === 'ACTIVE' && f && f.image === image && f.cpu === size.cpu && f.memoryMiB === size.memoryMiB && f.gpus === size.gpus && f.arch === size.arch && td.requiresCompatibilities?.includes(size.launchType)) {
        this.tdFacts.set(td.taskDefinitionArn!, f);
        return td.taskDefinitionArn!;
      }
    } catch (err) {
      // ClientException "Unable to describe task definition": not registered yet.
      const name = (err as { name?: string }).name;
      if (name !== 'ClientException' && name !== 'InvalidParameterException') throw err;
    }
    this.opts.log?.info(`ecs: RegisterTaskDefinition ${family} (${ecsSizeName(size)}, ${image})`);
    const res = await c.send(
      new sdk.RegisterTaskDefinitionCommand({
        family,
        requiresCompatibilities: [size.launchType],
        // Fargate needs awsvpc; EC2 tasks use the default (bridge) network of their instance.
        ...(size.launchType === 'FARGATE' ? { networkMode: 'awsvpc' } : {}),
        cpu: String(size.cpu),
        memory: String(size.memoryMiB),
        ...(size.launchType === 'FARGATE' || size.arch === 'ARM64' ? { runtimePlatform: { cpuArchitecture: size.arch, operatingSystemFamily: 'LINUX' } } : {}),
        ...(this.opts.executionRoleArn ? { executionRoleArn: this.opts.executionRoleArn } : {}),
        containerDefinitions: [container],
        tags: [{ key: ECS_TAG_MANAGED, value: 'true' }],
      }),
    );
    const td = res.taskDefinition;
    if (!td?.taskDefinitionArn) throw new CloudApiError('AWS ECS', `RegisterTaskDefinition(${family}) answered without a task definition`, { remedy: 'Retry; if it persists, check the ECS console.' });
    this.tdFacts.set(td.taskDefinitionArn, taskDefinitionFacts(td));
    return td.taskDefinitionArn;
  }

  /** Fargate's awsvpc network: the configured subnets, else the default VPC's default subnets (with its "default" security group and a public IP). */
  private fargateNetwork(): Promise<NetworkConfiguration> {
    if (this.opts.subnets?.length) {
      return Promise.resolve({
        awsvpcConfiguration: {
          subnets: this.opts.subnets,
          ...(this.opts.securityGroups?.length ? { securityGroups: this.opts.securityGroups } : {}),
          assignPublicIp: this.opts.assignPublicIp ? 'ENABLED' : 'DISABLED',
        },
      });
    }
    this.network ??= (async () => {
      const ec2 = await import('@aws-sdk/client-ec2');
      const c = new ec2.EC2Client(this.clientConfig(this.opts.region));
      try {
        const vpc = (await c.send(new ec2.DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }))).Vpcs?.[0]?.VpcId;
        if (!vpc) {
          throw new CloudApiError('AWS ECS', `no default VPC in ${this.opts.region} for a Fargate task`, {
            remedy: 'Name the subnets (and security groups) Fargate tasks use: setting tether.ecs.subnets / TETHER_ECS_SUBNETS (comma-separated).',
            code: 'NoDefaultVpc',
          });
        }
        const subnets = ((await c.send(new ec2.DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }, { Name: 'default-for-az', Values: ['true'] }] }))).Subnets ?? []).map((s) => s.SubnetId!).filter(Boolean).sort();
        if (!subnets.length) throw new CloudApiError('AWS ECS', `the default VPC ${vpc} has no default subnets`, { remedy: 'Set tether.ecs.subnets / TETHER_ECS_SUBNETS.', code: 'NoDefaultSubnet' });
        const sgs = this.opts.securityGroups?.length
          ? this.opts.securityGroups
          : ((await c.send(new ec2.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }, { Name: 'group-name', Values: ['default'] }] }))).SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean);
        return { awsvpcConfiguration: { subnets, ...(sgs.length ? { securityGroups: sgs } : {}), assignPublicIp: this.opts.assignPublicIp === false ? 'DISABLED' : 'ENABLED' } } as NetworkConfiguration;
      } finally {
        c.destroy();
      }
    })().catch((err: unknown) => {
      this.network = undefined;
      throw err;
    });
    return this.network;
  }

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    const size = this.sizeOf(req.instanceType);
    if (req.region && req.region !== this.opts.region) {
      throw new CloudApiError('AWS ECS', `the ECS account is set up for ${this.opts.region}, not ${req.region}`, { remedy: 'Set the region (TETHER_AWS_REGION / tether.aws.region) to the cluster\'s region.', code: 'WrongRegion' });
    }
    const image = req.image;
    if (!image) this.checkLaunch({ instanceType: req.instanceType });
    const startedBy = ecsStartedBy(req);
    const token = ecsClientToken(req.ledgerId);
    const cluster = this.cluster;
    // Belt and braces next to the clientToken: a live task carrying this record's marker is the launch we are retrying.
    const existing = (await this.listByStartedBy(startedBy, cluster)).filter((t) => t.status !== 'terminated' && matchesLedgerId(t, req.ledgerId, req.owner));
    if (existing.length) {
      this.opts.log?.info(`ecs: launch ${req.ledgerId} already made ${existing[0]!.id}; not launching again`);
      return existing[0]!;
    }
    const taskDefinition = await this.call(`RegisterTaskDefinition(${req.instanceType})`, () => this.taskDefinitionFor(image!, size));
    const network = size.launchType === 'FARGATE' ? await this.fargateNetwork() : undefined;
    const tagList: Tag[] = [
      { key: ECS_TAG_LEDGER_ID, value: req.ledgerId },
      { key: ECS_TAG_MANAGED, value: 'true' },
      ...(req.owner ? [{ key: ECS_TAG_ORIGIN, value: req.owner }] : []),
      { key: 'Name', value: markedName(req) },
    ];
    this.opts.log?.info(`ecs: RunTask ${ecsSizeName(size)} on ${cluster} (${size.launchType}, clientToken ${token}, startedBy ${startedBy})`);
    const res = await this.call(`RunTask(${req.instanceType})`, (sdk, c) =>
      c.send(
        new sdk.RunTaskCommand({
          cluster,
          taskDefinition,
          launchType: size.launchType,
          count: 1,
          startedBy,
          clientToken: token,
          tags: tagList,
          ...(network ? { networkConfiguration: network } : {}),
        }),
      ),
    );
    const task = res.tasks?.[0];
    if (!task?.taskArn) {
      const why = (res.failures ?? []).map((f) => `${f.reason ?? 'failure'}${f.detail ? ` (${f.detail})` : ''}${f.arn ? ` on ${f.arn}` : ''}`).join('; ');
      // Nothing was placed: a refusal (no task exists), not an ambiguous outcome.
      throw new CloudApiError('AWS ECS', `RunTask(${req.instanceType}) placed no task on ${cluster}${why ? `: ${why}` : ''}`, {
        remedy:
          size.launchType === 'EC2'
            ? `The cluster's container instances lack room (RESOURCE:CPU / RESOURCE:MEMORY / RESOURCE:GPU) or there are none: add EC2 capacity to ${cluster}, or run on Fargate.`
            : 'Check the ECS console for the cluster and retry; Fargate capacity errors pass with time or another region.',
        status: 400,
        code: 'NoTaskPlaced',
      });
    }
    return this.toInstance(task, this.opts.region);
  }

  /** StopTask. A task that is gone (unknown, or its cluster deleted) counts as terminated; stopping a stopped task is fine. */
  async terminate(id: string): Promise<void> {
    const { cluster, region } = parseTaskArn(id);
    const r = region ?? this.opts.region;
    let clusterOf = cluster;
    if (!clusterOf) clusterOf = (await this.describe(id))?.metadata.cluster as string | undefined;
    if (!clusterOf) {
      this.opts.log?.info(`ecs: ${id} not found in any cluster; counting it as terminated`);
      return;
    }
    try {
      const sdk = await this.load();
      await (await this.client(r)).send(new sdk.StopTaskCommand({ cluster: clusterOf, task: id, reason: 'Stopped by Tether' }));
      this.opts.log?.info(`ecs: StopTask ${id}`);
    } catch (err) {
      if (isTaskGone(err)) {
        this.opts.log?.info(`ecs: ${id} not found; counting it as terminated`);
        return;
      }
      throw toEcsCloudApiError(err, `StopTask(${id})`, this.endpointLabel);
    }
  }

  consoleUrl(instance: CloudInstance): string {
    const region = instance.region ?? this.opts.region;
    const { cluster, taskId } = parseTaskArn(instance.id);
    const c = (instance.metadata.cluster as string | undefined) ?? cluster ?? this.cluster;
    return `https://${region}.console.aws.amazon.com/ecs/v2/clusters/${encodeURIComponent(c)}/tasks/${encodeURIComponent(taskId)}/configuration?region=${region}`;
  }
}
