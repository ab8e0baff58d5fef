/**
 * The AWS ECS protocol fake: moto (test/helpers/moto.ts, speaking the real ECS JSON 1.1 API)
 * behind a strict, fault-injecting proxy on 127.0.0.1:0 that also plays **the task lifecycle moto
 * does not have** — this proxy is the "ECS state fake" of issue #16. What comes from where:
 *
 * moto (unchanged): clusters, task definitions and their revisions, RunTask placement (Fargate on
 * the default VPC's subnets, EC2 on registered container instances), tags, ListTasks filters,
 * StopTask's desiredStatus, ENI attachments.
 *
 * This proxy (what moto lacks or gets wrong, each from the published API reference — the excerpt
 * is in test/fixtures/ecs/README.md):
 * - **Lifecycle and timestamps**: moto starts tasks RUNNING, moves them one state further on every
 *   DescribeTasks whether stopped or not, and gives no timestamps. The proxy keeps each task's
 *   life and answers `lastStatus` by time: PROVISIONING (Fargate/awsvpc only) → PENDING →
 *   RUNNING, and after StopTask STOPPING → DEPROVISIONING (awsvpc only) → STOPPED, with
 *   `createdAt`, `pullStartedAt`, `pullStoppedAt`, `startedAt`, `connectivityAt`, `stoppingAt`,
 *   `executionStoppedAt`, `stoppedAt`, `stopCode: UserInitiated`, the containers' status and
 *   exit code once stopped (137: SIGKILL after the stop timeout), and the task-level `cpu` /
 *   `memory` strings real tasks carry.
 * - **RunTask idempotency** by `clientToken` (≤ 64 characters 33–126; per cluster; a repeat
 *   with other parameters → 400 ConflictException) — moto ignores the token.
 * - **Validation** real ECS does and moto does not: Fargate CPU/memory pairs
 *   (ClientException "No Fargate configuration exists for given values"), `awsvpc` for Fargate,
 *   family names, `startedBy` (≤ 128, letters/digits/`-`/`/`/`_`), tags (≤ 50, key ≤ 128, value
 *   ≤ 256, no `aws:` prefix), `count` 1–10, ListTasks' `startedBy` as the only filter,
 *   `maxResults` 1–100, DescribeTasks 1–100 tasks.
 * - **Answers moto gets wrong**: StopTask of an unknown task (moto: HTML 500) → 400
 *   InvalidParameterException "The referenced task was not found."; DescribeTasks of unknown ARNs
 *   → `failures: [{arn, reason: MISSING}]`; tags only with `include: ["TAGS"]`; ListTasks'
 *   default `desiredStatus` RUNNING; paging by `nextToken` (a page is at most `pageSize` here, as
 *   ECS may return fewer than `maxResults`).
 * - **Auth**: the SigV4 `Credential=AKID/...` must be `apiKey`, else 403 InvalidClientTokenId
 *   (CommonErrors); faults: `rate-limit` → 400 ThrottlingException (no Retry-After), `error-500`
 *   → 500 ServerException, `hang`, `create-then-hang` / `create-then-fail`.
 *
 * Requests are logged as `{ method, path: '/' + operation, body }` (the X-Amz-Target operation).
 * One moto process serves every ECS test; call {@link EcsMotoFake.stopMoto} in an `after()`.
 */
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { LocalHttpServer, readBody } from '../helpers/net';
import { findMotoServer, startMoto, type MotoServer } from '../helpers/moto';
import { takeFault, type Fault, type LoggedRequest, type ProviderFake } from './fakeBase';

const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113.';
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

let shared: Promise<MotoServer> | undefined;

function missingMessage(searched: string[]): string {
  return `moto_server (moto 5.x, the AWS emulator in the machine image's pyenv Python) was not found; looked at:\n  ${searched.join('\n  ')}`;
}

function sharedMoto(): Promise<MotoServer> {
  if (!shared) {
    const found = findMotoServer();
    if (!found.bin) return Promise.reject(new Error(missingMessage(found.searched)));
    const starting = startMoto(found.bin);
    shared = starting;
    starting.catch(() => {
      if (shared === starting) shared = undefined;
    });
  }
  return shared;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** An AWS JSON 1.1 error (`__type` is what the SDK reads as the error's name). */
export function ecsError(status: number, type: string, message: string): Reply {
  return { status, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() }, body: JSON.stringify({ __type: type, message }) };
}

function ok(body: unknown): Reply {
  return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() }, body: JSON.stringify(body) };
}

/** Fargate's task CPU → allowed memory (MiB), from the developer guide (test/fixtures/ecs/README.md). */
const FARGATE_PAIRS: Record<string, number[]> = {
  '256': [512, 1024, 2048],
  '512': range(1024, 4096, 1024),
  '1024': range(2048, 8192, 1024),
  '2048': range(4096, 16384, 1024),
  '4096': range(8192, 30720, 1024),
  '8192': range(16384, 61440, 4096),
  '16384': range(32768, 122880, 8192),
};
function range(a: number, b: number, s: number): number[] {
  const out: number[] = [];
  for (let v = a; v <= b; v += s) out.push(v);
  return out;
}

/** What the proxy knows of a task's life. */
interface Life {
  createdAt: number;
  awsvpc: boolean;
  cpu?: string;
  memory?: string;
  stopAt?: number;
  stopReason?: string;
  /** Ends by itself this long after it starts running (a job that finishes), ms. */
  exitAfterMs?: number;
  exitCode?: number;
}

export interface EcsFakeOptions {
  apiKey?: string;
  /** PROVISIONING lasts this long (awsvpc tasks), ms. */
  provisionMs?: number;
  /** PENDING (the image pull) lasts this long, ms. */
  pendingMs?: number;
  /** Each stop stage (STOPPING, DEPROVISIONING) lasts this long, ms. */
  stopStageMs?: number;
  /** At most this many results per ListTasks / ListClusters page (ECS may return fewer than maxResults). */
  pageSize?: number;
}

export class EcsMotoFake implements ProviderFake {
  readonly apiKey: string;
  readonly requests: LoggedRequest[] = [];
  readonly hookErrors: unknown[] = [];
  onCreate: (() => void) | undefined;
  url = '';
  readonly provisionMs: number;
  readonly pendingMs: number;
  readonly stopStageMs: number;
  readonly pageSize: number;
  private faults: Fault[] = [];
  private readonly http = new LocalHttpServer((req, res) => void this.handle(req, res));
  private moto: MotoServer | undefined;
  private readonly lives = new Map<string, Life>();
  /** Task definition ARN → task-level cpu / memory and network mode (from the answers that pass through). */
  private readonly taskDefs = new Map<string, { cpu?: string; memory?: string; awsvpc: boolean }>();
  private readonly tokens = new Map<string, { fingerprint: string; reply: Reply }>();
  private readonly created = new Set<string>();

  constructor(o: EcsFakeOptions = {}) {
    this.apiKey = o.apiKey ?? 'AKIATETHERECSTEST001';
    this.provisionMs = o.provisionMs ?? 150;
    this.pendingMs = o.pendingMs ?? 150;
    this.stopStageMs = o.stopStageMs ?? 100;
    this.pageSize = o.pageSize ?? 100;
  }

  static unavailable(): string | undefined {
    const found = findMotoServer();
    return found.bin ? undefined : missingMessage(found.searched);
  }

  static async stopMoto(): Promise<void> {
    const m = shared;
    shared = undefined;
    if (!m) return;
    await (await m.catch(() => undefined))?.stop();
  }

  get motoEndpoint(): string {
    if (!this.moto) throw new Error('EcsMotoFake: start() first');
    return this.moto.endpoint;
  }

  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  instanceCount(): number {
    return this.created.size;
  }

  /** The life the proxy keeps for a task (tests read its times). */
  lifeOf(taskArn: string): Readonly<Life> | undefined {
    return this.lives.get(taskArn);
  }

  /** Makes a running task end by itself (its container exits with `exitCode`) after `afterMs` more. */
  finish(taskArn: string, exitCode: number, afterMs = 0): void {
    const l = this.lives.get(taskArn);
    if (!l) throw new Error(`no task ${taskArn}`);
    l.exitAfterMs = Math.max(0, Date.now() + afterMs - (l.createdAt + (l.awsvpc ? this.provisionMs : 0) + this.pendingMs));
    l.exitCode = exitCode;
  }

  /** One call straight to moto (not through the proxy, not logged). */
  async moto_(op: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(this.motoEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': TARGET_PREFIX + op, authorization: `AWS4-HMAC-SHA256 Credential=${this.apiKey}/20261201/${REGION}/ecs/aws4_request, SignedHeaders=host, Signature=0` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`moto ${op} answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /** An EC2 call straight to moto (Query API, form-encoded), answering its XML. */
  async motoEc2(params: Record<string, string>): Promise<string> {
    const res = await fetch(this.motoEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `AWS4-HMAC-SHA256 Credential=${this.apiKey}/20261201/${REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
      body: new URLSearchParams({ Version: '2016-11-15', ...params }).toString(),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`moto EC2 ${params.Action} answered ${res.status}: ${text.slice(0, 500)}`);
    return text;
  }

  /** The default VPC's first default subnet and its default security group (for tasks run straight into moto). */
  async defaultNetwork(): Promise<{ subnet: string; securityGroup: string }> {
    const vpc = /<vpcId>([^<]+)<\/vpcId>/.exec(await this.motoEc2({ Action: 'DescribeVpcs', 'Filter.1.Name': 'is-default', 'Filter.1.Value.1': 'true' }))?.[1];
    const subnet = /<subnetId>([^<]+)<\/subnetId>/.exec(await this.motoEc2({ Action: 'DescribeSubnets', 'Filter.1.Name': 'vpc-id', 'Filter.1.Value.1': vpc ?? '' }))?.[1];
    const sg = /<groupId>([^<]+)<\/groupId>/.exec(await this.motoEc2({ Action: 'DescribeSecurityGroups', 'Filter.1.Name': 'group-name', 'Filter.1.Value.1': 'default', 'Filter.2.Name': 'vpc-id', 'Filter.2.Value.1': vpc ?? '' }))?.[1];
    if (!subnet || !sg) throw new Error('moto: no default VPC subnet / security group');
    return { subnet, securityGroup: sg };
  }

  /**
   * Runs a Fargate task straight in moto, as someone else would (console, CLI): `startedBy` is
   * `name` (cut to 36 characters), no Tether tags. It has been running for ten minutes.
   */
  async addForeign(name: string, opts: { cluster?: string; tags?: Array<{ key: string; value: string }> } = {}): Promise<string> {
    const td = (await this.moto_('RegisterTaskDefinition', {
      family: 'users-own-job',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: '512',
      memory: '1024',
      containerDefinitions: [{ name: 'app', image: 'public.ecr.aws/docker/library/busybox:latest', memory: 1024 }],
    })) as { taskDefinition: { taskDefinitionArn: string } };
    this.taskDefs.set(td.taskDefinition.taskDefinitionArn, { cpu: '512', memory: '1024', awsvpc: true });
    const net = await this.defaultNetwork();
    const res = (await this.moto_('RunTask', {
      cluster: opts.cluster ?? 'default',
      taskDefinition: td.taskDefinition.taskDefinitionArn,
      launchType: 'FARGATE',
      startedBy: name.replace(/[^A-Za-z0-9_/-]/g, '_').slice(0, 36),
      ...(opts.tags ? { tags: opts.tags } : {}),
      networkConfiguration: { awsvpcConfiguration: { subnets: [net.subnet], securityGroups: [net.securityGroup], assignPublicIp: 'ENABLED' } },
    })) as { tasks: Array<{ taskArn: string }> };
    const arn = res.tasks[0]!.taskArn;
    this.lives.set(arn, { createdAt: Date.now() - 600_000, awsvpc: true, cpu: '512', memory: '1024' });
    this.created.add(arn);
    return arn;
  }

  /**
   * Registers an EC2 container instance in a cluster (an EC2 instance launched in moto, its
   * identity document handed to RegisterContainerInstance), so EC2-launch-type tasks can be placed.
   * moto gives every container instance 4096 CPU units and 7482 MiB, whatever it is told.
   */
  async addContainerInstance(cluster = 'default'): Promise<{ containerInstanceArn: string; ec2InstanceId: string }> {
    const xml = await this.motoEc2({ Action: 'RunInstances', ImageId: 'ami-1e749f67', InstanceType: 'g4dn.2xlarge', MinCount: '1', MaxCount: '1' });
    const ec2InstanceId = /<instanceId>([^<]+)<\/instanceId>/.exec(xml)?.[1];
    if (!ec2InstanceId) throw new Error(`moto RunInstances: ${xml.slice(0, 300)}`);
    const doc = JSON.stringify({ instanceId: ec2InstanceId, region: REGION, accountId: ACCOUNT, instanceType: 'g4dn.2xlarge', availabilityZone: `${REGION}a` });
    const res = (await this.moto_('RegisterContainerInstance', {
      cluster,
      instanceIdentityDocument: doc,
    })) as { containerInstance: { containerInstanceArn: string } };
    return { containerInstanceArn: res.containerInstance.containerInstanceArn, ec2InstanceId };
  }

  async start(): Promise<string> {
    this.moto = await sharedMoto();
    await this.moto.reset();
    // An account that has used ECS has its "default" cluster.
    await this.moto_('CreateCluster', { clusterName: 'default' });
    this.url = await this.http.start();
    return this.url;
  }

  async stop(): Promise<void> {
    await this.http.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const method = req.method ?? 'POST';
    const authorization = req.headers.authorization;
    // EC2 calls (the default VPC's subnets) go to moto as they are, after the same auth check.
    const isEcs = target.startsWith(TARGET_PREFIX);
    const op = isEcs ? target.slice(TARGET_PREFIX.length) : (new URLSearchParams(raw).get('Action') ?? '');
    let body: Record<string, unknown> = {};
    if (isEcs) {
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        return this.send(res, ecsError(400, 'SerializationException', 'Malformed JSON'));
      }
    } else body = Object.fromEntries(new URLSearchParams(raw));
    const path = `/${op}`;
    this.requests.push({ method, path, ...(authorization ? { authorization } : {}), body });

    const keyId = /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
    if (keyId !== this.apiKey) return this.send(res, ecsError(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.'));
    const fault = takeFault(this.faults, method, path);
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'rate-limit') return this.send(res, ecsError(400, 'ThrottlingException', 'Rate exceeded'));
    if (fault?.kind === 'error-500') return this.send(res, ecsError(500, 'ServerException', 'Service Unavailable. Please try again later.'));

    let reply: Reply;
    try {
      if (!isEcs) reply = await this.forwardRaw(req, raw);
      else reply = await this.route(op, body);
    } catch (err) {
      reply = ecsError(500, 'ServerException', `proxy: ${String(err)}`);
    }
    if (fault?.kind === 'create-then-hang') return;
    if (fault?.kind === 'create-then-fail') return this.send(res, ecsError(500, 'ServerException', 'Service Unavailable. Please try again later.'));
    this.send(res, reply);
  }

  private async route(op: string, body: Record<string, unknown>): Promise<Reply> {
    switch (op) {
      case 'RunTask':
        return this.runTask(body);
      case 'DescribeTasks':
        return this.describeTasks(body);
      case 'ListTasks':
        return this.listTasks(body);
      case 'ListClusters':
        return this.listClusters(body);
      case 'StopTask':
        return this.stopTask(body);
      case 'RegisterTaskDefinition':
        return this.registerTaskDefinition(body);
      default:
        return this.forward(op, body);
    }
  }

  private async forward(op: string, body: unknown): Promise<Reply> {
    const res = await fetch(this.motoEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': TARGET_PREFIX + op, authorization: `AWS4-HMAC-SHA256 Credential=${this.apiKey}/20261201/${REGION}/ecs/aws4_request, SignedHeaders=host, Signature=0` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 500 && !text.trim().startsWith('{')) return ecsError(500, 'ServerException', `moto failed on ${op}`);
    return { status: res.status, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() }, body: text };
  }

  private forwardRaw(req: http.IncomingMessage, raw: string): Promise<Reply> {
    const target = new URL(req.url ?? '/', this.motoEndpoint);
    return new Promise<Reply>((resolve) => {
      const out = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (mres) => {
        const chunks: Buffer[] = [];
        mres.on('data', (c: Buffer) => chunks.push(c));
        mres.on('end', () => resolve({ status: mres.statusCode ?? 502, headers: { 'content-type': String(mres.headers['content-type'] ?? 'text/xml') }, body: Buffer.concat(chunks).toString('utf8') }));
      });
      out.on('error', (e) => resolve(ecsError(500, 'ServerException', `proxy: moto unreachable: ${e.message}`)));
      out.end(raw);
    });
  }

  private send(res: http.ServerResponse, r: Reply): void {
    if (res.destroyed) return;
    res.writeHead(r.status, { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) });
    res.end(r.body);
  }

  // --- validation (the published limits; see test/fixtures/ecs/README.md) ---

  private validateTags(tags: unknown): Reply | undefined {
    if (tags === undefined) return undefined;
    if (!Array.isArray(tags) || tags.length > 50) return ecsError(400, 'InvalidParameterException', 'Tags: at most 50 tags per resource.');
    const keys = new Set<string>();
    for (const t of tags as Array<{ key?: unknown; value?: unknown }>) {
      if (typeof t.key !== 'string' || t.key.length < 1 || t.key.length > 128) return ecsError(400, 'InvalidParameterException', 'Tag keys must be 1-128 characters.');
      if (t.value !== undefined && (typeof t.value !== 'string' || t.value.length > 256)) return ecsError(400, 'InvalidParameterException', 'Tag values must be at most 256 characters.');
      if (/^aws:/i.test(t.key)) return ecsError(400, 'InvalidParameterException', 'Tag keys cannot start with "aws:", which is reserved for AWS use.');
      if (keys.has(t.key)) return ecsError(400, 'InvalidParameterException', `Duplicate tag key: ${t.key}`);
      keys.add(t.key);
    }
    return undefined;
  }

  private async runTask(body: Record<string, unknown>): Promise<Reply> {
    const token = body.clientToken;
    if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(token))) {
      return ecsError(400, 'InvalidParameterException', 'clientToken must be 1-64 ASCII characters in the range 33-126.');
    }
    const startedBy = body.startedBy;
    if (startedBy !== undefined && (typeof startedBy !== 'string' || !/^[A-Za-z0-9_/-]{1,128}$/.test(startedBy))) {
      return ecsError(400, 'InvalidParameterException', 'startedBy: up to 128 letters, numbers, hyphens, forward slashes and underscores are allowed.');
    }
    const count = body.count ?? 1;
    if (typeof count !== 'number' || count < 1 || count > 10) return ecsError(400, 'InvalidParameterException', 'count must be between 1 and 10.');
    const bad = this.validateTags(body.tags);
    if (bad) return bad;
    if (typeof body.taskDefinition !== 'string' || !body.taskDefinition) return ecsError(400, 'InvalidParameterException', 'taskDefinition is required.');
    if (this.onCreate) {
      try {
        this.onCreate();
      } catch (err) {
        this.hookErrors.push(err);
      }
    }
    const cluster = String(body.cluster ?? 'default').split('/').pop()!;
    const key = typeof token === 'string' ? `${cluster}\u0000${token}` : undefined;
    const { clientToken: _, ...rest } = body;
    const fingerprint = JSON.stringify(rest, Object.keys(rest).sort());
    const seen = key ? this.tokens.get(key) : undefined;
    if (seen) {
      if (seen.fingerprint !== fingerprint) return ecsError(400, 'ConflictException', 'The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.');
      return seen.reply;
    }
    const td = await this.taskDefinitionOf(body.taskDefinition);
    if (body.launchType === 'FARGATE' && td && !td.awsvpc) return ecsError(400, 'InvalidParameterException', 'Task definition does not support launch_type FARGATE.');
    if (td?.awsvpc && !body.networkConfiguration) return ecsError(400, 'InvalidParameterException', "Network Configuration must be provided when networkMode 'awsvpc' is specified.");
    let moto: Reply;
    try {
      moto = await this.forward('RunTask', rest);
    } catch (err) {
      return ecsError(500, 'ServerException', String(err));
    }
    if (moto.status !== 200) {
      // moto raises a bare Exception for a cluster without container instances: ECS answers with a placement failure.
      if (moto.status >= 500 && body.launchType === 'EC2') return ok({ tasks: [], failures: [{ arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`, reason: 'No Container Instances were found in your cluster.' }] });
      return moto;
    }
    const answer = JSON.parse(moto.body) as { tasks?: Array<Record<string, unknown>>; failures?: unknown[] };
    const now = Date.now();
    for (const t of answer.tasks ?? []) {
      const arn = String(t.taskArn);
      this.lives.set(arn, { createdAt: now, awsvpc: td?.awsvpc ?? false, ...(td?.cpu ? { cpu: td.cpu } : {}), ...(td?.memory ? { memory: td.memory } : {}) });
      this.created.add(arn);
    }
    if (!answer.tasks?.length && body.launchType === 'EC2') answer.failures = [{ arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`, reason: 'RESOURCE:MEMORY' }];
    const reply = ok({ tasks: (answer.tasks ?? []).map((t) => this.overlay(t, true)), failures: answer.failures ?? [] });
    if (key && answer.tasks?.length) this.tokens.set(key, { fingerprint, reply });
    return reply;
  }

  private async taskDefinitionOf(ref: unknown): Promise<{ cpu?: string; memory?: string; awsvpc: boolean } | undefined> {
    if (typeof ref !== 'string') return undefined;
    const known = this.taskDefs.get(ref);
    if (known) return known;
    try {
      const d = (await this.moto_('DescribeTaskDefinition', { taskDefinition: ref })) as { taskDefinition?: { taskDefinitionArn: string; cpu?: string; memory?: string; networkMode?: string } };
      if (!d.taskDefinition) return undefined;
      const facts = { ...(d.taskDefinition.cpu ? { cpu: d.taskDefinition.cpu } : {}), ...(d.taskDefinition.memory ? { memory: d.taskDefinition.memory } : {}), awsvpc: d.taskDefinition.networkMode === 'awsvpc' };
      this.taskDefs.set(d.taskDefinition.taskDefinitionArn, facts);
      return facts;
    } catch {
      return undefined;
    }
  }

  /** A task as ECS would show it now: status, timestamps, containers, cpu/memory — from its life, not moto's. */
  private overlay(t: Record<string, unknown>, withTags: boolean, now = Date.now()): Record<string, unknown> {
    const arn = String(t.taskArn);
    let life = this.lives.get(arn);
    if (!life) {
      // Seen for the first time (run outside the proxy): already running.
      life = { createdAt: now - 600_000, awsvpc: Array.isArray(t.attachments) && t.attachments.length > 0 };
      this.lives.set(arn, life);
    }
    const sec = (ms: number) => ms / 1000;
    const pullStart = life.createdAt + (life.awsvpc ? this.provisionMs : 0);
    const runAt = pullStart + this.pendingMs;
    const exitAt = life.exitAfterMs !== undefined ? runAt + life.exitAfterMs : undefined;
    const stopAt = [life.stopAt, exitAt].filter((x): x is number => x !== undefined).sort((a, b) => a - b)[0];
    const stoppedBy = stopAt !== undefined && stopAt === life.stopAt ? 'user' : 'exit';
    let last: string;
    const out: Record<string, unknown> = { ...t };
    delete out.tags;
    if (withTags) out.tags = t.tags ?? [];
    out.createdAt = sec(life.createdAt);
    if (life.cpu) out.cpu = life.cpu;
    if (life.memory) out.memory = life.memory;
    const stopping = stopAt !== undefined && now >= stopAt;
    if (!stopping) {
      if (now < pullStart) last = 'PROVISIONING';
      else if (now < runAt) last = 'PENDING';
      else last = 'RUNNING';
    } else {
      const t0 = stopAt;
      const stages = life.awsvpc ? ['STOPPING', 'DEPROVISIONING'] : ['STOPPING'];
      const i = Math.floor((now - t0) / this.stopStageMs);
      last = i < stages.length ? stages[i]! : 'STOPPED';
      out.stoppingAt = sec(t0);
      if (i >= 1) out.executionStoppedAt = sec(t0 + this.stopStageMs);
      if (last === 'STOPPED') out.stoppedAt = sec(t0 + stages.length * this.stopStageMs);
      out.stopCode = stoppedBy === 'user' ? 'UserInitiated' : 'EssentialContainerExited';
      out.stoppedReason = stoppedBy === 'user' ? (life.stopReason ?? 'Task stopped by user') : 'Essential container in task exited';
    }
    const ran = (stopAt ?? Infinity) > runAt && now >= runAt;
    if (now >= pullStart && (stopAt ?? Infinity) > pullStart) out.pullStartedAt = sec(pullStart);
    if (ran) {
      out.pullStoppedAt = sec(runAt);
      out.startedAt = sec(runAt);
      out.connectivity = 'CONNECTED';
      out.connectivityAt = sec(pullStart);
    }
    out.lastStatus = last;
    out.desiredStatus = stopping || life.stopAt !== undefined ? 'STOPPED' : 'RUNNING';
    const containerStatus = last === 'RUNNING' ? 'RUNNING' : last === 'STOPPED' || last === 'DEPROVISIONING' || (last === 'STOPPING' && stoppedBy === 'exit') ? 'STOPPED' : ran ? 'RUNNING' : 'PENDING';
    out.containers = ((t.containers as Array<Record<string, unknown>> | undefined) ?? []).map((c) => {
      const { exitCode: _e, ...rest } = c;
      return {
        ...rest,
        lastStatus: containerStatus,
        ...(containerStatus === 'STOPPED' && ran ? { exitCode: stoppedBy === 'exit' ? (life!.exitCode ?? 0) : 137 } : {}),
        ...(containerStatus === 'STOPPED' && !ran ? { reason: 'Task stopped before the container started' } : {}),
      };
    });
    return out;
  }

  private async describeTasks(body: Record<string, unknown>): Promise<Reply> {
    const tasks = body.tasks;
    if (!Array.isArray(tasks) || tasks.length < 1 || tasks.length > 100) return ecsError(400, 'InvalidParameterException', 'Tasks cannot be empty and can have at most 100 items.');
    const include = (body.include as unknown[] | undefined) ?? [];
    if (include.some((x) => x !== 'TAGS')) return ecsError(400, 'InvalidParameterException', 'include accepts only TAGS.');
    const moto = await this.forward('DescribeTasks', { cluster: body.cluster, tasks, include: ['TAGS'] });
    if (moto.status !== 200) return moto;
    const answer = JSON.parse(moto.body) as { tasks?: Array<Record<string, unknown>> };
    const clusterName = String(body.cluster ?? 'default').split('/').pop();
    // moto matches task ids as substrings across clusters; ECS: the exact task, in this cluster.
    const found = (answer.tasks ?? []).filter((t) => String(t.clusterArn).endsWith(`/${clusterName}`) && tasks.some((q) => q === t.taskArn || String(t.taskArn).endsWith(`/${String(q)}`)));
    const missing = tasks.filter((q) => !found.some((t) => q === t.taskArn || String(t.taskArn).endsWith(`/${String(q)}`)));
    return ok({ tasks: found.map((t) => this.overlay(t, include.includes('TAGS'))), failures: missing.map((arn) => ({ arn, reason: 'MISSING' })) });
  }

  private page<T>(items: T[], body: Record<string, unknown>, key: string): Reply {
    const max = body.maxResults;
    if (max !== undefined && (typeof max !== 'number' || max < 1 || max > 100)) return ecsError(400, 'InvalidParameterException', 'maxResults must be between 1 and 100.');
    let offset = 0;
    if (body.nextToken !== undefined) {
      const t = /^tok-(\d+)$/.exec(Buffer.from(String(body.nextToken), 'base64').toString('utf8'));
      if (!t) return ecsError(400, 'InvalidParameterException', 'Invalid nextToken.');
      offset = Number(t[1]);
    }
    const size = Math.min(typeof max === 'number' ? max : 100, this.pageSize);
    const slice = items.slice(offset, offset + size);
    const next = offset + size < items.length ? Buffer.from(`tok-${offset + size}`).toString('base64') : undefined;
    return ok({ [key]: slice, ...(next ? { nextToken: next } : {}) });
  }

  private async listTasks(body: Record<string, unknown>): Promise<Reply> {
    const filters = ['containerInstance', 'family', 'serviceName', 'desiredStatus', 'launchType', 'daemonName'].filter((k) => body[k] !== undefined);
    if (body.startedBy !== undefined && filters.length) return ecsError(400, 'InvalidParameterException', 'When you specify startedBy as the filter, it must be the only filter that you use.');
    if (body.desiredStatus !== undefined && !['RUNNING', 'PENDING', 'STOPPED'].includes(String(body.desiredStatus))) return ecsError(400, 'InvalidParameterException', 'desiredStatus must be RUNNING, PENDING or STOPPED.');
    const { maxResults: _m, nextToken: _n, ...filter } = body;
    // ECS lists desiredStatus RUNNING unless asked otherwise.
    const moto = await this.forward('ListTasks', { ...filter, desiredStatus: body.desiredStatus === 'PENDING' ? 'RUNNING' : (body.desiredStatus ?? 'RUNNING'), ...(body.startedBy !== undefined ? { startedBy: body.startedBy } : {}) });
    if (moto.status !== 200) return moto;
    const arns = ((JSON.parse(moto.body) as { taskArns?: string[] }).taskArns ?? []).sort();
    return this.page(arns, body, 'taskArns');
  }

  private async listClusters(body: Record<string, unknown>): Promise<Reply> {
    const moto = await this.forward('ListClusters', {});
    if (moto.status !== 200) return moto;
    return this.page(((JSON.parse(moto.body) as { clusterArns?: string[] }).clusterArns ?? []).sort(), body, 'clusterArns');
  }

  private async stopTask(body: Record<string, unknown>): Promise<Reply> {
    const task = String(body.task ?? '');
    const cluster = String(body.cluster ?? 'default');
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 255)) return ecsError(400, 'InvalidParameterException', 'reason must be at most 255 characters.');
    const d = await this.forward('DescribeTasks', { cluster, tasks: [task] });
    if (d.status !== 200) return d; // ClusterNotFoundException
    const t = ((JSON.parse(d.body) as { tasks?: Array<Record<string, unknown>> }).tasks ?? []).find((x) => x.taskArn === task || String(x.taskArn).endsWith(`/${task}`));
    if (!t) return ecsError(400, 'InvalidParameterException', 'The referenced task was not found.');
    const arn = String(t.taskArn);
    const life = this.lives.get(arn) ?? { createdAt: Date.now() - 600_000, awsvpc: Array.isArray(t.attachments) && t.attachments.length > 0 };
    this.lives.set(arn, life);
    if (life.stopAt === undefined) {
      life.stopAt = Date.now();
      life.stopReason = typeof body.reason === 'string' ? body.reason : undefined;
    }
    const moto = await this.forward('StopTask', { cluster, task: arn, ...(body.reason !== undefined ? { reason: body.reason } : {}) });
    if (moto.status !== 200) return moto;
    const answer = JSON.parse(moto.body) as { task: Record<string, unknown> };
    return ok({ task: this.overlay(answer.task, false) });
  }

  private async registerTaskDefinition(body: Record<string, unknown>): Promise<Reply> {
    const family = body.family;
    if (typeof family !== 'string' || !/^[A-Za-z0-9_-]{1,255}$/.test(family)) return ecsError(400, 'ClientException', 'Family: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.');
    const compat = (body.requiresCompatibilities as string[] | undefined) ?? [];
    const containers = (body.containerDefinitions as Array<Record<string, unknown>> | undefined) ?? [];
    if (!containers.length) return ecsError(400, 'ClientException', 'Container definitions cannot be empty.');
    for (const c of containers) {
      if (typeof c.name !== 'string' || typeof c.image !== 'string' || !c.image) return ecsError(400, 'ClientException', 'Container.name and Container.image should not be null or empty.');
      for (const r of (c.resourceRequirements as Array<{ type?: string; value?: string }> | undefined) ?? []) {
        if (r.type === 'GPU' && compat.includes('FARGATE')) return ecsError(400, 'ClientException', 'Tasks using the Fargate launch type do not support GPU resource requirements.');
        if (r.type === 'GPU' && !/^[1-9]\d*$/.test(String(r.value))) return ecsError(400, 'ClientException', 'GPU resource requirement value must be a positive integer.');
      }
    }
    if (compat.includes('FARGATE')) {
      if (body.networkMode !== 'awsvpc') return ecsError(400, 'ClientException', 'Fargate only supports network mode ‘awsvpc’.');
      const cpu = String(body.cpu ?? '');
      const memory = Number(body.memory);
      if (!FARGATE_PAIRS[cpu]?.includes(memory)) {
        return ecsError(400, 'ClientException', `No Fargate configuration exists for given values: ${cpu || 'null'} CPU, ${Number.isFinite(memory) ? memory : 'null'} memory. See the Amazon ECS documentation for the valid values.`);
      }
      const arch = (body.runtimePlatform as { cpuArchitecture?: string } | undefined)?.cpuArchitecture;
      if (arch !== undefined && arch !== 'X86_64' && arch !== 'ARM64') return ecsError(400, 'ClientException', 'cpuArchitecture must be X86_64 or ARM64.');
    }
    const bad = this.validateTags(body.tags);
    if (bad) return bad;
    const moto = await this.forward('RegisterTaskDefinition', body);
    if (moto.status === 200) {
      const td = (JSON.parse(moto.body) as { taskDefinition?: { taskDefinitionArn: string; cpu?: string; memory?: string; networkMode?: string } }).taskDefinition;
      if (td) this.taskDefs.set(td.taskDefinitionArn, { ...(td.cpu ? { cpu: td.cpu } : {}), ...(td.memory ? { memory: td.memory } : {}), awsvpc: td.networkMode === 'awsvpc' });
    }
    return moto;
  }
}
