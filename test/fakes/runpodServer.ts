/**
 * Fake RunPod API server (the real API cannot be called from tests), speaking REST v2 as
 * published: runpod/docs @ a900806e253c4f8c16da27d1a4370e72456da4cb, api-reference-v2/openapi.json
 * (excerpt with every schema used here: test/fixtures/runpod/v2-openapi-excerpt.json).
 *
 * - Request bodies are validated with Ajv (JSON Schema 2020-12, as OpenAPI 3.1 is) against the
 *   spec's own `CreatePodRequest` / `PodActionRequest` schemas: required fields, types, enums,
 *   lengths, minimums, `unevaluatedProperties: false` → 422 with the failures in `errors`. Rules the
 *   spec puts "at the handler" → 400 (exactly one of gpu/cpu; persistent and network mounts
 *   exclusive; allowedCudaVersions with minCudaVersion; placement failures: unknown GPU, count over
 *   `maxCount`, GPU not on that cloud or in those data centers); unknown `templateId` → 404.
 * - Query parameters of listGpuTypes checked as the spec says (`product` required with
 *   `include=AVAILABILITY` and valid only with it, 400 either way; enum/pattern failures 422).
 * - Every error is an RFC 9457 problem `{title, status, detail[, errors]}` sent as
 *   `application/problem+json`; 401 for a missing/invalid bearer token; 405 with `Allow`; a body
 *   that is not `application/json` → 415, not JSON → 400; 429 carries `Retry-After` (the spec sends
 *   it) when the fault sets `retryAfterSec`.
 * - Pods: `PROVISIONING` → `STARTING` → `RUNNING` (then `ssh.direct` and `runtime.ports`, only when
 *   `22/tcp` was published); `stop` → `EXITED` (cost 0.0, no address); `start` boots again;
 *   actions follow the status (`RUNNING`: stop/restart/terminate; `EXITED`/`ERROR`: start/terminate;
 *   `PROVISIONING`/`STARTING`: stop/terminate; anything else → 409). `DELETE` → 204 and the pod
 *   leaves the list at once; `GET` shows it `TERMINATED` for a while, then 404.
 * - Paging: the spec pages neither listPods nor listGpuTypes, so neither does the fake.
 * - REST v1 (`/v1/...`, retired 2026-11-15 per api-reference/overview.mdx) answers **410 Gone**
 *   with v1's error shape `{"message": ...}`: the overview does not say what a retired path
 *   returns; 410 is the plausible answer and makes any leftover v1 call fail loudly.
 * - No GraphQL: any `/graphql` request is a 404 (the client must not call it; it is logged).
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import { LocalHttpServer, readBody } from '../helpers/net';
import { takeFault, type Fault, type FakeOptions, type LoggedRequest, type ProviderFake } from './fakeBase';

export const RUNPOD_SPEC_PATH = path.join(__dirname, '..', 'fixtures', 'runpod', 'v2-openapi-excerpt.json');

/** The v2 spec excerpt (test/fixtures/runpod). */
export function runpodSpec(): { components: Record<string, Record<string, unknown>>; paths: Record<string, Record<string, unknown>> } {
  return JSON.parse(fs.readFileSync(RUNPOD_SPEC_PATH, 'utf8'));
}

let ajvCache: Ajv2020 | undefined;
/** Ajv over the spec's components: `schema('Pod')` validates a pod. */
export function runpodSchema(name: string): ValidateFunction {
  if (!ajvCache) {
    ajvCache = new Ajv2020({
      allErrors: true,
      strict: false,
      formats: { float: true, 'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/ },
    });
    ajvCache.addSchema({ $id: 'runpod-v2', components: runpodSpec().components });
  }
  const v = ajvCache.getSchema(`runpod-v2#/components/schemas/${name}`);
  if (!v) throw new Error(`no schema ${name} in the RunPod spec excerpt`);
  return v;
}

/** Ajv failures in the spec's own wording style ("$: additional properties 'bogus' not allowed"). */
export function specErrors(errs: ErrorObject[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errs ?? []) {
    if (e.keyword === 'if' || e.keyword === 'allOf') continue;
    const at = `$${e.instancePath.replace(/\//g, '.')}`;
    if (e.keyword === 'unevaluatedProperties' || e.keyword === 'additionalProperties') {
      const p = (e.params as { unevaluatedProperty?: string; additionalProperty?: string }).unevaluatedProperty ?? (e.params as { additionalProperty?: string }).additionalProperty;
      out.push(`${at}: additional properties '${p}' not allowed`);
    } else out.push(`${at}: ${e.message ?? e.keyword}`);
  }
  return [...new Set(out)];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

interface Answer {
  status: number;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

const problem = (status: number, detail: string, errors?: string[]): Answer => ({
  status,
  contentType: 'application/problem+json',
  body: { title: TITLES[status] ?? 'Error', status, detail, ...(errors?.length ? { errors } : {}) },
});

/** The rate-limit headers the spec sends on every authenticated answer. */
const RATE_HEADERS = { RateLimit: '"minute";r=59;t=60, "hour";r=2999;t=3600, "day";r=49999;t=86400', 'RateLimit-Policy': '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400' };

interface GpuSpec {
  name: string;
  pool: string | null;
  memory: number;
  secure: boolean;
  community: boolean;
  price: { secure: number; community: number };
  maxCount: { secure: number; community: number };
  /** Data centers with stock (availability). */
  dataCenters: Record<string, 'NONE' | 'LOW' | 'MEDIUM' | 'HIGH'>;
}

export const FAKE_RUNPOD_GPUS: Record<string, GpuSpec> = {
  'NVIDIA RTX A6000': { name: 'RTX A6000', pool: 'AMPERE_48', memory: 48, secure: true, community: true, price: { secure: 0.49, community: 0.33 }, maxCount: { secure: 8, community: 4 }, dataCenters: { 'EU-RO-1': 'HIGH', 'US-KS-2': 'LOW' } },
  'NVIDIA H100 80GB HBM3': { name: 'H100 SXM', pool: 'HOPPER_141', memory: 80, secure: true, community: false, price: { secure: 2.99, community: 0 }, maxCount: { secure: 8, community: 0 }, dataCenters: { 'US-KS-2': 'MEDIUM', 'EU-RO-1': 'NONE' } },
  'NVIDIA GeForce RTX 3090': { name: 'RTX 3090', pool: null, memory: 24, secure: false, community: true, price: { secure: 0, community: 0.22 }, maxCount: { secure: 0, community: 2 }, dataCenters: { 'US-KS-2': 'HIGH' } },
};
const DATA_CENTER_NAMES: Record<string, string> = { 'EU-RO-1': 'Europe Romania 1', 'US-KS-2': 'US Kansas 2' };

export interface FakePod {
  id: string;
  name: string;
  image: string;
  gpuId: string;
  gpuCount: number;
  cloud: 'SECURE' | 'COMMUNITY';
  dataCenterId: string;
  disk: number;
  ports: string[];
  env: Record<string, string>;
  startSsh: boolean;
  createdAt: number;
  /** When the container last started booting (create, start, restart). */
  bootFrom: number;
  stoppedAt?: number;
  terminatedAt?: number;
}

export interface DetailedRequest extends LoggedRequest {
  query: string;
  contentType?: string;
  host?: string;
}

export class FakeRunPodServer implements ProviderFake {
  readonly apiKey: string;
  readonly bootMs: number;
  readonly terminateMs: number;
  readonly goneMs: number;
  /** Reads (list, describe) see a new pod only this long after its create, ms (eventual consistency). */
  readonly readLagMs: number;
  readonly requests: DetailedRequest[] = [];
  readonly pods = new Map<string, FakePod>();
  onCreate: (() => void) | undefined;
  readonly hookErrors: unknown[] = [];
  url = '';
  private faults: Fault[] = [];
  private seq = 0;
  private readonly server = new LocalHttpServer((req, res) => void this.handle(req, res));

  constructor(o: FakeOptions = {}) {
    this.apiKey = o.apiKey ?? 'test-key-0123456789';
    this.bootMs = o.bootMs ?? 150;
    this.terminateMs = o.terminateMs ?? 150;
    this.goneMs = o.goneMs ?? 400;
    this.readLagMs = o.readLagMs ?? 0;
  }

  /** Whether reads can see the pod yet (see `readLagMs`). */
  private visible(p: FakePod): boolean {
    return Date.now() - p.createdAt >= this.readLagMs;
  }

  async start(): Promise<string> {
    this.url = await this.server.start();
    return this.url;
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  instanceCount(): number {
    return this.pods.size;
  }

  addForeign(name: string): string {
    const id = this.newId();
    const t = Date.now() - 60_000;
    this.pods.set(id, { id, name, image: 'runpod/pytorch', gpuId: 'NVIDIA RTX A6000', gpuCount: 1, cloud: 'SECURE', dataCenterId: 'EU-RO-1', disk: 20, ports: ['22/tcp'], env: {}, startSsh: true, createdAt: t, bootFrom: t });
    return id;
  }

  private newId(): string {
    // RunPod pod ids: short lowercase alphanumerics ("7h9k2m4n6p").
    return `${Math.random().toString(36).slice(2, 10)}${(++this.seq).toString(36)}`;
  }

  /** PROVISIONING / STARTING / RUNNING / EXITED / TERMINATED, or gone. */
  status(p: FakePod, now = Date.now()): 'PROVISIONING' | 'STARTING' | 'RUNNING' | 'EXITED' | 'TERMINATED' | 'gone' {
    if (p.terminatedAt !== undefined) return now - p.terminatedAt < this.terminateMs + this.goneMs ? 'TERMINATED' : 'gone';
    if (p.stoppedAt !== undefined) return 'EXITED';
    const t = now - p.bootFrom;
    if (t < this.bootMs / 2) return 'PROVISIONING';
    if (t < this.bootMs) return 'STARTING';
    return 'RUNNING';
  }

  /** The pod as the spec's `Pod` schema shapes it. */
  view(p: FakePod): Record<string, unknown> | undefined {
    const status = this.status(p);
    if (status === 'gone') return undefined;
    const running = status === 'RUNNING';
    const billed = status !== 'EXITED' && status !== 'TERMINATED';
    const g = FAKE_RUNPOD_GPUS[p.gpuId]!;
    const rate = (p.cloud === 'SECURE' ? g.price.secure : g.price.community) * p.gpuCount;
    const direct = running && p.ports.includes('22/tcp');
    const assigned = status !== 'PROVISIONING';
    const actions =
      status === 'RUNNING' ? ['stop', 'restart', 'terminate'] : status === 'EXITED' ? ['start', 'terminate'] : status === 'TERMINATED' ? [] : ['stop', 'terminate'];
    return {
      id: p.id,
      name: p.name,
      image: p.image,
      args: '',
      disk: p.disk,
      ports: p.ports,
      env: p.env,
      registry: null,
      status,
      actions,
      mounts: {},
      gpu: { id: p.gpuId, count: p.gpuCount },
      cloud: p.cloud,
      dataCenterId: p.dataCenterId,
      cudaVersion: '12.8',
      ssh: {
        proxy: assigned ? { host: 'ssh.runpod.io', port: 22, username: `${p.id}-64411eb2`, command: `ssh ${p.id}-64411eb2@ssh.runpod.io` } : null,
        direct: direct ? { host: '127.0.0.1', port: 22022, username: 'root', command: 'ssh root@127.0.0.1 -p 22022' } : null,
      },
      template: null,
      cost: billed ? Math.round(rate * 1000) / 1000 : 0,
      locked: false,
      globalNetworking: { enabled: false },
      runtime: running ? { uptime: Math.floor((Date.now() - p.bootFrom) / 1000), ports: direct ? [{ private: 22, public: 22022, type: 'tcp', ip: '127.0.0.1' }] : [] } : null,
      createdAt: new Date(p.createdAt).toISOString().replace(/\.\d+Z$/, 'Z'),
      startedAt: running ? new Date(p.bootFrom + this.bootMs).toISOString().replace(/\.\d+Z$/, 'Z') : null,
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const p = url.pathname;
    const contentType = req.headers['content-type'];
    let body: unknown;
    let badJson = false;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    this.requests.push({
      method,
      path: p,
      query: url.search,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(contentType ? { contentType } : {}),
      ...(req.headers.host ? { host: req.headers.host } : {}),
      body,
    });

    if (p === '/v1' || p.startsWith('/v1/')) {
      return this.send(res, { status: 410, body: { message: 'REST API v1 was retired on 2026-11-15; use https://api.runpod.io/v2' } });
    }
    if (!p.startsWith('/v2/')) return this.send(res, problem(404, 'resource not found'));

    const auth = req.headers.authorization;
    if (!auth || !/^Bearer\s+\S/.test(auth)) return this.send(res, problem(401, 'missing bearer token'));
    if (auth !== `Bearer ${this.apiKey}`) return this.send(res, problem(401, 'invalid bearer token'));

    const fault = takeFault(this.faults, method, p);
    if (fault?.kind === 'hang') return; // never answer
    if (fault?.kind === 'rate-limit') {
      const a = problem(429, 'rate limit exceeded for the minute window');
      return this.send(res, { ...a, headers: fault.retryAfterSec !== undefined ? { 'Retry-After': String(fault.retryAfterSec) } : {} });
    }
    if (fault?.kind === 'error-500') return this.send(res, problem(500, 'internal server error'));

    let answer: Answer;
    if (raw && !/^application\/json\b/i.test(contentType ?? '')) answer = problem(415, `unsupported content type ${JSON.stringify(contentType ?? '')}; send application/json`);
    else if (badJson) answer = problem(400, 'request body is not valid JSON');
    else {
      const isCreate = method === 'POST' && p === '/v2/pods';
      if (isCreate && this.onCreate) {
        try {
          this.onCreate();
        } catch (err) {
          this.hookErrors.push(err);
        }
      }
      try {
        answer = this.route(method, p, url, body, raw !== '');
      } catch (err) {
        answer = problem(500, String(err));
      }
    }
    if (fault?.kind === 'create-then-hang') return;
    if (fault?.kind === 'create-then-fail') return this.send(res, problem(500, 'internal server error'));
    this.send(res, { ...answer, headers: { ...RATE_HEADERS, ...(answer.headers ?? {}) } });
  }

  private send(res: http.ServerResponse, a: Answer): void {
    const text = a.body === undefined ? '' : JSON.stringify(a.body);
    res.writeHead(a.status, { ...(a.body === undefined ? {} : { 'Content-Type': a.contentType ?? 'application/json' }), ...(a.headers ?? {}) });
    res.end(text);
  }

  private methodNotAllowed(allow: string): Answer {
    return { ...problem(405, 'The requested method is not allowed for this path.'), headers: { Allow: allow } };
  }

  private route(method: string, p: string, url: URL, body: unknown, hasBody: boolean): Answer {
    if (p === '/v2/catalog/gpus') return method === 'GET' ? this.listGpus(url) : this.methodNotAllowed('GET');
    if (p === '/v2/pods') {
      if (method === 'GET') return this.listPods(url);
      if (method === 'POST') return this.createPod(body, hasBody);
      return this.methodNotAllowed('GET, POST');
    }
    const one = /^\/v2\/pods\/([^/]+)(\/action)?$/.exec(p);
    if (one) {
      const id = decodeURIComponent(one[1]!);
      if (one[2]) return method === 'POST' ? this.action(id, body, hasBody) : this.methodNotAllowed('POST');
      const pod = this.pods.get(id);
      const v = pod && this.view(pod);
      if (method === 'GET') return v && this.visible(pod) ? { status: 200, body: v } : problem(404, 'pod not found');
      if (method === 'DELETE') {
        if (!pod || !v || v.status === 'TERMINATED') return problem(404, 'pod not found');
        pod.terminatedAt = Date.now();
        return { status: 204 };
      }
      return this.methodNotAllowed('GET, PATCH, DELETE');
    }
    return problem(404, 'resource not found');
  }

  private listPods(url: URL): Answer {
    const icp = url.searchParams.get('includeClusterPods');
    if (icp !== null && icp !== 'true' && icp !== 'false') return problem(422, 'Request validation failed.', [`query.includeClusterPods: value must be a boolean`]);
    const pods = [...this.pods.values()].filter((x) => this.visible(x)).map((x) => this.view(x)).filter((v): v is Record<string, unknown> => !!v && v.status !== 'TERMINATED');
    return { status: 200, body: { pods } };
  }

  private listGpus(url: URL): Answer {
    const q = url.searchParams;
    const list = (k: string) => (q.get(k) ?? '').split(',').filter(Boolean);
    const include = q.has('include') ? list('include') : undefined;
    const bad: string[] = [];
    if (include && include.length > 1) bad.push('query.include: must NOT have more than 1 items');
    for (const i of include ?? []) if (i !== 'AVAILABILITY') bad.push(`query.include: value '${i}' must be one of [AVAILABILITY]`);
    for (const x of list('product')) if (!['POD', 'CLUSTER', 'SERVERLESS'].includes(x)) bad.push(`query.product: value '${x}' must be one of [POD CLUSTER SERVERLESS]`);
    const cloud = q.get('cloud');
    if (cloud !== null && cloud !== 'SECURE' && cloud !== 'COMMUNITY') bad.push(`query.cloud: value '${cloud}' must be one of [SECURE COMMUNITY]`);
    const count = q.get('count');
    if (count !== null && !(/^\d+$/.test(count) && Number(count) >= 1)) bad.push('query.count: must be an integer >= 1');
    for (const c of list('countryCodes')) if (!/^[A-Z]{2}$/.test(c)) bad.push(`query.countryCodes: '${c}' does not match ^[A-Z]{2}$`);
    for (const c of list('cudaVersions')) if (!/^\d+\.\d+$/.test(c)) bad.push(`query.cudaVersions: '${c}' does not match ^\\d+\\.\\d+$`);
    const minCuda = q.get('minCudaVersion');
    if (minCuda !== null && !/^\d+(\.\d+)?$/.test(minCuda)) bad.push(`query.minCudaVersion: '${minCuda}' does not match ^\\d+(\\.\\d+)?$`);
    if (bad.length) return problem(422, 'Request validation failed.', bad);
    const avail = !!include?.length;
    if (avail && !q.get('product')) return problem(400, 'product is required with include=AVAILABILITY');
    for (const k of ['product', 'count', 'cloud', 'countryCodes', 'cudaVersions', 'minCudaVersion']) {
      if (!avail && q.has(k)) return problem(400, `${k} is valid only with include=AVAILABILITY`);
    }
    if (q.has('cudaVersions') && q.has('minCudaVersion')) return problem(400, 'cudaVersions and minCudaVersion are mutually exclusive');
    const onCloud = (cloud ?? 'SECURE') as 'SECURE' | 'COMMUNITY';
    const want = Number(count ?? 1);
    const gpus = Object.entries(FAKE_RUNPOD_GPUS).map(([id, g]) => {
      const base = { id, name: g.name, pool: g.pool, manufacturer: 'NVIDIA', memory: g.memory, secure: g.secure, community: g.community, price: { secure: g.price.secure, community: g.price.community }, maxCount: g.maxCount };
      if (!avail) return base;
      const offered = (onCloud === 'SECURE' ? g.secure : g.community) && want <= (onCloud === 'SECURE' ? g.maxCount.secure : g.maxCount.community);
      const dcs = offered ? Object.entries(g.dataCenters).map(([dc, a]) => ({ id: dc, name: DATA_CENTER_NAMES[dc] ?? dc, availability: a })) : [];
      const rank = ['NONE', 'LOW', 'MEDIUM', 'HIGH'];
      const overall = dcs.reduce((m, d) => (rank.indexOf(d.availability) > rank.indexOf(m) ? d.availability : m), 'NONE');
      return { ...base, availability: overall, ...(dcs.length ? { dataCenters: dcs } : {}), cudaVersions: [{ version: '12.8', available: overall !== 'NONE' }] };
    });
    return { status: 200, body: { gpus } };
  }

  private createPod(body: unknown, hasBody: boolean): Answer {
    if (!hasBody) return problem(422, 'Request validation failed.', ['$: request body is required']);
    const v = runpodSchema('CreatePodRequest');
    if (!v(body)) return problem(422, 'Request validation failed.', specErrors(v.errors));
    const b = body as {
      name: string;
      image?: string;
      templateId?: string;
      gpu?: { id: string; count?: number; allowedCudaVersions?: string[]; minCudaVersion?: string };
      cpu?: { id: string; vcpuCount: number };
      cloud?: 'SECURE' | 'COMMUNITY';
      dataCenterIds?: string[];
      mounts?: { persistent?: unknown; network?: unknown[] };
      disk?: number;
      ports?: string[];
      env?: Record<string, string>;
      startSsh?: boolean;
    };
    if (!!b.gpu === !!b.cpu) return problem(400, 'exactly one of gpu or cpu must be set');
    if (b.mounts?.persistent && b.mounts.network) return problem(400, 'mounts.persistent and mounts.network are mutually exclusive');
    if (b.cpu && b.mounts?.persistent) return problem(400, 'mounts.persistent is not allowed on a CPU pod');
    if (b.gpu?.allowedCudaVersions?.length && b.gpu.minCudaVersion) return problem(400, 'gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive');
    if (b.templateId) return problem(404, `template ${b.templateId} not found`);
    if (b.cpu) return problem(400, `There are no instances currently available for CPU flavor ${b.cpu.id}`);
    const gpu = b.gpu!;
    const g = FAKE_RUNPOD_GPUS[gpu.id];
    const cloud = b.cloud ?? 'SECURE';
    const count = gpu.count ?? 1;
    const noCapacity = problem(400, `There are no instances currently available for GPU ${gpu.id} x${count} on ${cloud}`);
    if (!g || !(cloud === 'SECURE' ? g.secure : g.community)) return noCapacity;
    if (count > (cloud === 'SECURE' ? g.maxCount.secure : g.maxCount.community)) return noCapacity;
    const dcs = Object.entries(g.dataCenters).filter(([, a]) => a !== 'NONE').map(([dc]) => dc);
    const choice = b.dataCenterIds?.length ? dcs.find((dc) => b.dataCenterIds!.includes(dc)) : dcs[0];
    if (!choice) return noCapacity;
    const id = this.newId();
    const now = Date.now();
    const pod: FakePod = {
      id,
      name: b.name,
      image: b.image!,
      gpuId: gpu.id,
      gpuCount: count,
      cloud,
      dataCenterId: choice,
      disk: b.disk ?? 20,
      ports: b.ports ?? [],
      env: b.env ?? {},
      startSsh: b.startSsh ?? false,
      createdAt: now,
      bootFrom: now,
    };
    this.pods.set(id, pod);
    return { status: 201, body: this.view(pod) };
  }

  private action(id: string, body: unknown, hasBody: boolean): Answer {
    if (!hasBody) return problem(422, 'Request validation failed.', ['$: request body is required']);
    const v = runpodSchema('PodActionRequest');
    if (!v(body)) return problem(422, 'Request validation failed.', specErrors(v.errors));
    const action = (body as { action: string }).action;
    const pod = this.pods.get(id);
    const view = pod && this.view(pod);
    if (!pod || !view) return problem(404, 'pod not found');
    if (!(view.actions as string[]).includes(action)) return problem(409, `action ${action} is not valid for a pod in status ${view.status as string}`);
    const now = Date.now();
    if (action === 'terminate') {
      pod.terminatedAt = now;
      return { status: 204 };
    }
    if (action === 'stop') pod.stoppedAt = now;
    if (action === 'start' || action === 'restart') {
      delete pod.stoppedAt;
      pod.bootFrom = now;
    }
    return { status: 200, body: this.view(pod) };
  }
}
