/**
 * RunPod against its published REST v2 spec (runpod/docs @ a900806e253c4f8c16da27d1a4370e72456da4cb,
 * api-reference-v2/openapi.json; excerpt in test/fixtures/runpod/v2-openapi-excerpt.json):
 * - the spec's own example answers, replayed over HTTP, parse through the client (region, type,
 *   status, price, SSH; the `cost` traps);
 * - every request the client makes validates against the spec's request schemas, and every answer
 *   of the fake validates against the spec's response schemas;
 * - the fake refuses malformed requests as the spec says (status, RFC 9457 body, content type);
 * - nothing leaves the configured base URL (the price list follows TETHER_RUNPOD_API_URL);
 * - stop / start through `POST /pods/{id}/action`, including the 409s of the state machine.
 */
import * as assert from 'node:assert/strict';
import type * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { accountsFromEnv, createProviders, type LazyProvider } from '../../src/fleet/cloudAccounts';
import { silentLogger } from '../../src/core/logger';
import { CloudApiError } from '../../src/backends/cloud/provider';
import { RunPodProvider, type RunPodPod } from '../../src/backends/cloud/runpod/runpod';
import { FakeRunPodServer, runpodSchema, runpodSpec } from '../fakes/runpodServer';
import { LocalHttpServer, readBody } from '../helpers/net';
import { waitFor } from '../helpers/tmp';

const spec = runpodSpec();
type Json = Record<string, unknown>;
const op = (p: string, m: string) => (spec.paths[p] as Record<string, Json>)[m]!;
/** The example value of an operation's answer (application/json), from the spec. */
function example(p: string, m: string, status: string): Json {
  const content = ((op(p, m).responses as Json)[status] as Json).content as Record<string, { examples: Record<string, { value: Json }> }>;
  const ex = Object.values(content['application/json']!.examples)[0]!;
  return ex.value;
}
/** The example problem body of a shared error response (components.responses.X). */
function problemExample(name: string): Json {
  const r = (spec.components.responses as Record<string, Json>)[name]!;
  const content = r.content as Record<string, { examples: Record<string, { value: Json }> }>;
  return Object.values(content['application/problem+json']!.examples)[0]!.value;
}

const client = (baseUrl: string, apiKey: string, extra: Partial<ConstructorParameters<typeof RunPodProvider>[0]> = {}) =>
  new RunPodProvider({ apiKey, baseUrl, timeoutMs: 5000, retries: 2, backoffMs: 20, ...extra });

async function call(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; type: string; body: Json | undefined; headers: Headers }> {
  const { json, ...rest } = init;
  const res = await fetch(url, {
    ...rest,
    ...(json !== undefined ? { body: JSON.stringify(json), headers: { 'Content-Type': 'application/json', ...(rest.headers as Record<string, string>) } } : {}),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: text ? (JSON.parse(text) as Json) : undefined, headers: res.headers };
}

function assertPodSchema(body: unknown, what: string): void {
  const v = runpodSchema('Pod');
  assert.ok(v(body), `${what} is a spec Pod: ${JSON.stringify(v.errors)}`);
}
function assertProblem(r: { status: number; type: string; body: Json | undefined }, status: number, what: string): void {
  assert.equal(r.status, status, `${what}: status (${JSON.stringify(r.body)})`);
  assert.match(r.type, /^application\/problem\+json/, `${what}: content type`);
  const v = runpodSchema('ErrorResponse');
  assert.ok(v(r.body), `${what}: RFC 9457 ErrorResponse: ${JSON.stringify(v.errors)}`);
  assert.equal(r.body!.status, status);
}

describe('RunPod REST v2: the spec examples through the client', function () {
  this.timeout(30_000);
  let replay: LocalHttpServer;
  let base = '';
  const key = 'replay-key-77';
  /** What the replay server answers: method + path → [status, body, content type, headers]. */
  const answers = new Map<string, [number, unknown, string?, Record<string, string>?]>();
  const seen: string[] = [];

  before(async () => {
    replay = new LocalHttpServer((req: http.IncomingMessage, res: http.ServerResponse) => {
      void readBody(req).then(() => {
        const u = new URL(req.url ?? '/', 'http://x');
        seen.push(`${req.method} ${u.pathname}${u.search}`);
        const a = answers.get(`${req.method} ${u.pathname}`) ?? [404, problemExample('NotFoundError'), 'application/problem+json'];
        res.writeHead(a[0], { 'Content-Type': a[2] ?? 'application/json', ...(a[3] ?? {}) });
        res.end(a[1] === undefined ? '' : JSON.stringify(a[1]));
      });
    });
    base = `${await replay.start()}/v2`;
  });
  after(() => replay.stop());
  beforeEach(() => {
    answers.clear();
    seen.length = 0;
  });

  it('the examples in the fixture are the spec (they validate against its own schemas)', () => {
    assert.ok(runpodSchema('ListPodsResponse')(example('/v2/pods', 'get', '200')));
    assertPodSchema(example('/v2/pods', 'post', '201'), 'create example');
    assertPodSchema(example('/v2/pods/{id}', 'get', '200'), 'get example');
    assertPodSchema(example('/v2/pods/{id}/action', 'post', '200'), 'action example');
    assert.ok(runpodSchema('ListGpuTypesResponse')(example('/v2/catalog/gpus', 'get', '200')));
    assert.ok(runpodSchema('CreatePodRequest')(((op('/v2/pods', 'post').requestBody as Json).content as Json as Record<string, { examples: Record<string, { value: Json }> }>)['application/json']!.examples.gpuPod!.value));
  });

  it('listPods example: region, type, status, price (a number), SSH endpoint, launch time', async () => {
    answers.set('GET /v2/pods', [200, example('/v2/pods', 'get', '200')]);
    const [i] = await client(base, key).listInstances();
    assert.ok(i);
    assert.equal(i.id, '7h9k2m4n6p');
    assert.equal(i.region, 'US-KS-2');
    assert.equal(i.instanceType, 'NVIDIA GeForce RTX 4090');
    assert.equal(i.gpuType, 'NVIDIA GeForce RTX 4090');
    assert.equal(i.gpuCount, 1);
    assert.equal(i.status, 'running');
    assert.equal(i.rawStatus, 'RUNNING');
    assert.equal(typeof i.pricePerHour, 'number');
    assert.equal(i.pricePerHour, 0.44);
    assert.deepEqual([i.sshHost, i.sshPort, i.sshUser], ['195.26.233.3', 34446, 'root']);
    assert.equal(i.launchedAt, '2026-06-01T12:00:00Z');
    assert.equal(i.tetherId, undefined, 'not a Tether pod');
    assert.deepEqual(seen, ['GET /v2/pods']);
  });

  it('getPod / createPod / podAction examples: running with SSH, provisioning without, price kept', async () => {
    answers.set('GET /v2/pods/7h9k2m4n6p', [200, example('/v2/pods/{id}', 'get', '200')]);
    const got = await client(base, key).describe('7h9k2m4n6p');
    assert.equal(got?.status, 'running');
    assert.equal(got?.region, 'US-KS-2');
    assert.equal(got?.sshPort, 34446);

    answers.set('POST /v2/pods', [201, example('/v2/pods', 'post', '201')]);
    answers.set('GET /v2/pods', [200, { pods: [] }]);
    const made = await client(base, key).launch({ ledgerId: randomUUID(), name: 'x', instanceType: 'NVIDIA GeForce RTX 4090' });
    assert.equal(made.status, 'provisioning');
    assert.equal(made.rawStatus, 'PROVISIONING');
    assert.equal(made.pricePerHour, 0.44);
    assert.equal(made.sshHost, undefined, 'ssh.direct is null while provisioning');
    assert.equal(made.region, 'US-KS-2');

    answers.set('POST /v2/pods/7h9k2m4n6p/action', [200, example('/v2/pods/{id}/action', 'post', '200')]);
    await client(base, key).stop('7h9k2m4n6p'); // 200 with the pod: fine
  });

  it('listGpuTypes example: id, display name, memory, secure vs community price, data centers with stock', async () => {
    answers.set('GET /v2/catalog/gpus', [200, example('/v2/catalog/gpus', 'get', '200')]);
    const [t] = await client(base, key).listInstanceTypes();
    assert.deepEqual(t, { name: 'NVIDIA GeForce RTX 4090', description: 'RTX 4090', gpuType: 'RTX 4090', gpuCount: 1, memoryGiB: 24, pricePerHour: 0.44, regionsWithCapacity: ['US-KS-2'] });
    assert.deepEqual(seen, ['GET /v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=SECURE']);
    const [c] = await client(base, key, { cloudType: 'COMMUNITY' }).listInstanceTypes();
    assert.equal(c?.pricePerHour, 0.31);
  });

  it('cost traps: a numeric string is read as a number; 0.0 on EXITED is not a price; a v1 pod (costPerHr, desiredStatus, machine) is not read as v2', () => {
    const p = client(base, key);
    const ex = example('/v2/pods/{id}', 'get', '200') as unknown as RunPodPod;
    assert.equal(p.toInstance({ ...ex, cost: '0.44' }).pricePerHour, 0.44);
    const exited = p.toInstance({ ...ex, status: 'EXITED', cost: 0, ssh: { proxy: null, direct: null }, runtime: null });
    assert.equal(exited.status, 'stopped');
    assert.equal(exited.pricePerHour, undefined, 'cost 0.0 of a stopped pod is not its price');
    assert.equal(p.toInstance({ ...ex, status: 'TERMINATED', cost: 0 }).status, 'terminated');
    assert.equal(p.toInstance({ ...ex, status: 'STARTING' }).status, 'provisioning');
    assert.equal(p.toInstance({ ...ex, status: 'ERROR', cost: 0 }).status, 'stopped');
    const v1 = { id: 'abc', name: 'old', desiredStatus: 'RUNNING', costPerHr: '0.74', adjustedCostPerHr: 0.69, machine: { dataCenterId: 'EU-RO-1', gpuTypeId: 'NVIDIA A40' } } as unknown as RunPodPod;
    const r = p.toInstance(v1);
    assert.deepEqual([r.status, r.pricePerHour, r.region], ['unknown', undefined, undefined], 'v1 fields are not guessed at');
  });

  it('a v1-shaped list (bare array) is an error naming the cause, not an empty list', async () => {
    answers.set('GET /v2/pods', [200, [{ id: 'a' }]]);
    await assert.rejects(client(base, key).listInstances(), (e: unknown) => e instanceof CloudApiError && /REST v1 shape/.test(e.message) && /v2 base/.test(e.remedy));
  });

  it('the spec error examples map to CloudApiError with status, title and a remedy (401, 403, 404, 422 with errors, 429 with Retry-After)', async () => {
    answers.set('GET /v2/pods', [401, problemExample('UnauthorizedError'), 'application/problem+json']);
    await assert.rejects(client(base, key).listInstances(), (e: unknown) => e instanceof CloudApiError && e.status === 401 && e.code === 'Unauthorized' && /missing bearer token/.test(e.message) && /API key/.test(e.remedy));
    answers.set('GET /v2/pods', [403, problemExample('ForbiddenError'), 'application/problem+json']);
    await assert.rejects(client(base, key).listInstances(), (e: unknown) => e instanceof CloudApiError && e.status === 403 && /lacks access/.test(e.remedy));
    answers.set('POST /v2/pods', [422, { ...problemExample('UnprocessableEntityError'), errors: ["$: additional properties 'bogus' not allowed"] }, 'application/problem+json']);
    answers.set('GET /v2/pods', [200, { pods: [] }]);
    await assert.rejects(client(base, key).launch({ ledgerId: randomUUID(), name: 'x', instanceType: 'NVIDIA GeForce RTX 4090' }), (e: unknown) => e instanceof CloudApiError && e.status === 422 && /Request validation failed\. \(\$: additional properties 'bogus' not allowed\)/.test(e.message));
    assert.equal(seen.filter((s) => s.startsWith('POST')).length, 1, 'a 422 is never retried');
    answers.set('POST /v2/pods', [402, { title: 'Payment Required', status: 402, detail: 'insufficient balance' }, 'application/problem+json']);
    await assert.rejects(client(base, key).launch({ ledgerId: randomUUID(), name: 'x', instanceType: 'NVIDIA GeForce RTX 4090' }), (e: unknown) => e instanceof CloudApiError && e.status === 402 && /add credit/.test(e.remedy));
    answers.set('GET /v2/pods/nope', [404, problemExample('NotFoundError'), 'application/problem+json']);
    assert.equal(await client(base, key).describe('nope'), undefined);
    let n = 0;
    answers.set('GET /v2/catalog/gpus', [429, problemExample('TooManyRequestsError'), 'application/problem+json', { 'Retry-After': '1' }]);
    setTimeout(() => answers.set('GET /v2/catalog/gpus', [200, example('/v2/catalog/gpus', 'get', '200')]), 300);
    const t0 = Date.now();
    n = (await client(base, key).listInstanceTypes()).length;
    assert.equal(n, 1);
    assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After (1 s)');
  });
});

describe('RunPod REST v2: client and fake against the spec', function () {
  this.timeout(30_000);
  let fake: FakeRunPodServer;
  let v2 = '';
  const auth = () => ({ Authorization: `Bearer ${fake.apiKey}` });

  beforeEach(async () => {
    fake = new FakeRunPodServer({ bootMs: 100, terminateMs: 100, goneMs: 300 });
    v2 = `${await fake.start()}/v2`;
  });
  afterEach(() => fake.stop());

  it('with TETHER_RUNPOD_API_URL set, every request (price list included) goes to it and nowhere else — no GraphQL, no public host', async () => {
    const urls: string[] = [];
    const real = globalThis.fetch;
    globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
      const u = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      urls.push(u);
      if (new URL(u).hostname !== '127.0.0.1') return Promise.reject(new Error(`test refused a request to ${u}`));
      return real(input, init);
    }) as typeof fetch;
    try {
      const accounts = accountsFromEnv({ RUNPOD_API_KEY: fake.apiKey, TETHER_RUNPOD_API_URL: v2 });
      const [lazy] = createProviders(accounts, silentLogger);
      const p = await (lazy as LazyProvider).load();
      assert.ok(p instanceof RunPodProvider);
      const types = await p.listInstanceTypes();
      assert.ok(types.some((t) => t.name === 'NVIDIA RTX A6000' && t.pricePerHour === 0.49));
      const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: 'NVIDIA RTX A6000', region: 'US-KS-2' });
      await waitFor(async () => (await p.describe(inst.id))?.status === 'running', 5000, 'running');
      await p.stop!(inst.id);
      await p.start(inst.id);
      await p.terminate(inst.id);
    } finally {
      globalThis.fetch = real;
    }
    assert.ok(urls.length >= 6);
    assert.deepEqual(urls.filter((u) => !u.startsWith(`${v2}/`)), [], 'every request under the configured base');
    assert.ok(!urls.some((u) => /graphql|runpod\.io/.test(u)));
  });

  it('list and describe carry region and GPU type (v2 has them on the pod; v1 needed includeMachine=true)', async () => {
    const p = client(v2, fake.apiKey);
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: '2x NVIDIA RTX A6000', region: 'US-KS-2' });
    const listed = (await p.listInstances()).find((x) => x.id === inst.id);
    assert.equal(listed?.region, 'US-KS-2');
    assert.equal(listed?.instanceType, 'NVIDIA RTX A6000');
    assert.equal(listed?.gpuCount, 2);
    assert.equal(listed?.pricePerHour, 0.98);
    assert.deepEqual(fake.requests.filter((r) => r.path === '/v2/pods' && r.method === 'GET').map((r) => r.query), ['', ''], 'listPods takes no v1 parameters');
  });

  it("every request the client makes validates against the spec's request schemas; every answer of the fake against its response schemas", async () => {
    const p = client(v2, fake.apiKey);
    await p.listInstanceTypes();
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: 'NVIDIA RTX A6000' });
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', 5000, 'running');
    await p.stop!(inst.id);
    await p.stop!(inst.id); // 409 → already stopped
    await p.start(inst.id);
    await p.start(inst.id); // 409 → already starting
    await p.terminate(inst.id);
    const creates = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v2/pods');
    assert.equal(creates.length, 1);
    const v = runpodSchema('CreatePodRequest');
    assert.ok(v(creates[0]!.body), JSON.stringify(v.errors));
    const body = creates[0]!.body as Json;
    assert.deepEqual(body.gpu, { id: 'NVIDIA RTX A6000', count: 1 });
    assert.equal(body.startSsh, true, 'startSsh, or the pod gets no SSH keys');
    assert.ok((body.ports as string[]).includes('22/tcp'), '22/tcp, or ssh.direct stays null');
    const actions = fake.requests.filter((r) => r.path.endsWith('/action'));
    assert.deepEqual(actions.map((r) => (r.body as Json).action), ['stop', 'stop', 'start', 'start']);
    for (const a of actions) assert.ok(runpodSchema('PodActionRequest')(a.body));
    for (const r of fake.requests) {
      assert.ok(r.path.startsWith('/v2/'), `${r.method} ${r.path}`);
      if (r.body !== undefined) assert.match(r.contentType ?? '', /^application\/json/);
    }

    // The fake's answers, checked against the spec's response schemas.
    const h = auth();
    const other = await p.launch({ ledgerId: randomUUID(), name: 'two', instanceType: 'NVIDIA RTX A6000' });
    const list = await call(`${v2}/pods`, { headers: h });
    assert.equal(list.status, 200);
    assert.match(list.type, /^application\/json/);
    assert.ok(runpodSchema('ListPodsResponse')(list.body), JSON.stringify(runpodSchema('ListPodsResponse').errors));
    assert.ok(list.headers.get('ratelimit'), 'RateLimit header on authenticated answers');
    const seenStatuses = new Set<string>();
    await waitFor(async () => {
      const g = await call(`${v2}/pods/${other.id}`, { headers: h });
      assertPodSchema(g.body, `GET in ${String(g.body?.status)}`);
      seenStatuses.add(String(g.body!.status));
      return g.body!.status === 'RUNNING';
    }, 5000, 'running');
    const stopped = await call(`${v2}/pods/${other.id}/action`, { method: 'POST', headers: h, json: { action: 'stop' } });
    assert.equal(stopped.status, 200);
    assertPodSchema(stopped.body, 'stop answer');
    assert.equal(stopped.body!.status, 'EXITED');
    assert.equal(stopped.body!.cost, 0);
    const term = await call(`${v2}/pods/${other.id}/action`, { method: 'POST', headers: h, json: { action: 'terminate' } });
    assert.deepEqual([term.status, term.body], [204, undefined]);
    const gone = await call(`${v2}/pods/${other.id}`, { headers: h });
    assertPodSchema(gone.body, 'terminated pod');
    assert.equal(gone.body!.status, 'TERMINATED');
    assert.ok(!((await call(`${v2}/pods`, { headers: h })).body!.pods as Json[]).some((x) => x.id === other.id), 'a terminated pod leaves listPods at once');
    const cat = await call(`${v2}/catalog/gpus?include=AVAILABILITY&product=POD&cloud=SECURE`, { headers: h });
    assert.ok(runpodSchema('ListGpuTypesResponse')(cat.body), JSON.stringify(runpodSchema('ListGpuTypesResponse').errors));
    const plain = await call(`${v2}/catalog/gpus`, { headers: h });
    assert.ok(runpodSchema('ListGpuTypesResponse')(plain.body));
    assert.ok(!(plain.body!.gpus as Json[]).some((g) => 'availability' in g), 'availability only when asked for');
  });

  it('the fake refuses what the real API refuses, with its status and RFC 9457 body', async () => {
    const h = auth();
    const ok = { name: 'x', image: 'runpod/pytorch', gpu: { id: 'NVIDIA RTX A6000', count: 1 } };
    const create = (json: unknown) => call(`${v2}/pods`, { method: 'POST', headers: h, json });
    const cases: [string, unknown, number, RegExp?][] = [
      ['missing name', { image: 'i', gpu: { id: 'NVIDIA RTX A6000' } }, 422, /required property 'name'/],
      ['empty name', { ...ok, name: '' }, 422, /\$\.name: must NOT have fewer than 1 characters/],
      ['no image and no template', { name: 'x', gpu: { id: 'NVIDIA RTX A6000' } }, 422, /required property 'image'/],
      [
        'the old v1 body',
        { name: 'x', imageName: 'i', gpuTypeIds: ['NVIDIA RTX A6000'], gpuCount: 1, containerDiskInGb: 50, supportPublicIp: true },
        422,
        /additional properties 'imageName' not allowed/,
      ],
      ['unknown field in gpu', { ...ok, gpu: { id: 'NVIDIA RTX A6000', type: 'x' } }, 422, /\$\.gpu: additional properties 'type' not allowed/],
      ['gpu.count 0', { ...ok, gpu: { id: 'NVIDIA RTX A6000', count: 0 } }, 422, /\$\.gpu\.count: must be >= 1/],
      ['gpu.count a string', { ...ok, gpu: { id: 'NVIDIA RTX A6000', count: '1' } }, 422, /\$\.gpu\.count: must be integer/],
      ['cloud not in the enum', { ...ok, cloud: 'PRIVATE' }, 422, /\$\.cloud: must be equal to one of the allowed values/],
      ['disk 0', { ...ok, disk: 0 }, 422, /\$\.disk: must be >= 1/],
      ['ports not strings', { ...ok, ports: [22] }, 422, /\$\.ports\.0: must be string/],
      ['persistent mount under 10 GB', { ...ok, mounts: { persistent: { size: 5, path: '/workspace' } } }, 422, /\$\.mounts\.persistent\.size: must be >= 10/],
      ['two network mounts', { ...ok, mounts: { network: [{ volumeId: 'a', path: '/a' }, { volumeId: 'b', path: '/b' }] } }, 422, /\$\.mounts\.network: must NOT have more than 1 items/],
      ['bad CUDA version', { ...ok, gpu: { id: 'NVIDIA RTX A6000', minCudaVersion: '12' } }, 422, /minCudaVersion: must match pattern/],
      ['neither gpu nor cpu', { name: 'x', image: 'i' }, 400, /exactly one of gpu or cpu/],
      ['both gpu and cpu', { ...ok, cpu: { id: 'cpu5c', vcpuCount: 4 } }, 400, /exactly one of gpu or cpu/],
      ['persistent and network mounts', { ...ok, mounts: { persistent: { size: 20, path: '/w' }, network: [{ volumeId: 'v', path: '/n' }] } }, 400, /mutually exclusive/],
      ['unknown GPU', { ...ok, gpu: { id: 'no-such-type' } }, 400, /no instances currently available/],
      ['more GPUs than maxCount', { ...ok, gpu: { id: 'NVIDIA RTX A6000', count: 9 } }, 400, /no instances currently available/],
      ['secure-only GPU on community', { ...ok, gpu: { id: 'NVIDIA H100 80GB HBM3' }, cloud: 'COMMUNITY' }, 400, /no instances currently available/],
      ['unknown template', { name: 'x', templateId: 'nope', gpu: { id: 'NVIDIA RTX A6000' } }, 404, /template/],
    ];
    for (const [what, json, status, detail] of cases) {
      const r = await create(json);
      assertProblem(r, status, what);
      const text = `${String(r.body!.detail)} ${((r.body!.errors as string[] | undefined) ?? []).join(' | ')}`;
      if (detail) assert.match(text, detail, what);
      if (status === 422) assert.ok((r.body!.errors as string[]).length > 0, `${what}: 422 lists the failures`);
    }
    assert.equal(fake.instanceCount(), 0, 'nothing created by a refused request');

    assertProblem(await call(`${v2}/pods`, { method: 'POST', headers: { ...h, 'Content-Type': 'text/plain' }, body: JSON.stringify(ok) }), 415, 'text/plain body');
    assertProblem(await call(`${v2}/pods`, { method: 'POST', headers: { ...h, 'Content-Type': 'application/json' }, body: '{"name":' }), 400, 'invalid JSON');
    assertProblem(await call(`${v2}/pods`, { method: 'POST', headers: h }), 422, 'no body');
    assertProblem(await call(`${v2}/pods`), 401, 'no Authorization');
    assertProblem(await call(`${v2}/pods`, { headers: { Authorization: 'Bearer wrong' } }), 401, 'wrong key');
    const put = await call(`${v2}/pods`, { method: 'PUT', headers: h });
    assertProblem(put, 405, 'PUT /pods');
    assert.equal(put.headers.get('allow'), 'GET, POST');

    // Actions: body schema, then the state machine.
    const made = await create(ok);
    assert.equal(made.status, 201);
    const id = String(made.body!.id);
    const act = (json: unknown, pod = id) => call(`${v2}/pods/${pod}/action`, { method: 'POST', headers: h, json });
    assertProblem(await act({ action: 'reset' }), 422, 'v1 reset is not a v2 action');
    assertProblem(await act({ action: 'stop', force: true }), 422, 'extra field in the action body');
    assertProblem(await act({}), 422, 'no action');
    assertProblem(await act({ action: 'stop' }, 'nosuchpod'), 404, 'unknown pod');
    assertProblem(await act({ action: 'start' }), 409, 'start while provisioning');
    assert.equal((await act({ action: 'stop' })).status, 200);
    assertProblem(await act({ action: 'stop' }), 409, 'stop while EXITED');
    assertProblem(await act({ action: 'restart' }), 409, 'restart while EXITED');
    assertProblem(await call(`${v2}/pods/nosuchpod`, { method: 'DELETE', headers: h }), 404, 'DELETE unknown');

    // listGpuTypes query rules.
    assertProblem(await call(`${v2}/catalog/gpus?product=POD`, { headers: h }), 400, 'product without include');
    assertProblem(await call(`${v2}/catalog/gpus?include=AVAILABILITY`, { headers: h }), 400, 'include without product');
    assertProblem(await call(`${v2}/catalog/gpus?include=AVAILABILITY&product=BOGUS`, { headers: h }), 422, 'product not in the enum');
    assertProblem(await call(`${v2}/catalog/gpus?include=AVAILABILITY&product=POD&countryCodes=fr`, { headers: h }), 422, 'lowercase country code');

    // 429 carries Retry-After (the spec sends it) and the problem body.
    fake.inject({ path: /^\/v2\/pods$/, kind: 'rate-limit', retryAfterSec: 3 });
    const limited = await call(`${v2}/pods`, { headers: h });
    assertProblem(limited, 429, 'rate limited');
    assert.equal(limited.headers.get('retry-after'), '3');
  });

  it('REST v1 is retired: its paths answer 410, and a v1 base URL is refused before any request with the fix in the remedy', async () => {
    const r = await call(`${fake.url}/v1/pods`, { headers: auth() });
    assert.equal(r.status, 410);
    assert.match(String(r.body!.message), /retired/);
    const n = fake.requests.length;
    const old = client(`${fake.url}/v1`, fake.apiKey);
    for (const f of [() => old.listInstances(), () => old.listInstanceTypes(), () => old.describe('x'), () => old.launch({ ledgerId: randomUUID(), name: 'x', instanceType: 'NVIDIA RTX A6000' }), () => old.stop('x'), () => old.terminate('x')]) {
      await assert.rejects(f(), (e: unknown) => e instanceof CloudApiError && /REST v1 base/.test(e.message) && /retired on 2026-11-15/.test(e.remedy) && /\/v2/.test(e.remedy));
    }
    assert.equal(fake.requests.length, n, 'no request was made');
    await assert.rejects(client('not a url', 'k').listInstances(), (e: unknown) => e instanceof CloudApiError && /not a URL/.test(e.message));
  });

  it('stop / start through POST /pods/{id}/action: stopped, started again, stop of a terminated pod says it no longer exists', async () => {
    const p = client(v2, fake.apiKey);
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: 'NVIDIA RTX A6000' });
    await p.stop!(inst.id); // a provisioning pod may be stopped
    const s = await p.describe(inst.id);
    assert.deepEqual([s?.status, s?.rawStatus, s?.pricePerHour, s?.sshHost], ['stopped', 'EXITED', undefined, undefined]);
    await p.start(inst.id);
    const up = await waitFor(async () => {
      const d = await p.describe(inst.id);
      return d?.status === 'running' ? d : undefined;
    }, 5000, 'running again');
    assert.deepEqual([up.sshHost, up.sshPort, up.pricePerHour], ['127.0.0.1', 22022, 0.49]);
    await p.terminate(inst.id);
    assert.equal((await p.describe(inst.id))?.status, 'terminated');
    await assert.rejects(p.stop!(inst.id), (e: unknown) => e instanceof CloudApiError && e.status === 404 && /no longer exists/.test(e.message));
    await assert.rejects(p.start(inst.id), (e: unknown) => e instanceof CloudApiError && /no longer exists/.test(e.message));
    await p.terminate(inst.id); // already gone: fine
    await assert.rejects(p.launch({ ledgerId: randomUUID(), name: 'x', instanceType: '0x NVIDIA RTX A6000' }), (e: unknown) => e instanceof CloudApiError && /not a GPU type/.test(e.message));
  });

  it('COMMUNITY cloud: community prices, community-only types offered, secure-only ones not; the create asks for COMMUNITY', async () => {
    const p = client(v2, fake.apiKey, { cloudType: 'COMMUNITY' });
    const types = await p.listInstanceTypes();
    assert.deepEqual(types.map((t) => [t.name, t.pricePerHour]).sort(), [
      ['NVIDIA GeForce RTX 3090', 0.22],
      ['NVIDIA RTX A6000', 0.33],
    ]);
    const sec = await client(v2, fake.apiKey).listInstanceTypes();
    assert.deepEqual(sec.find((t) => t.name === 'NVIDIA H100 80GB HBM3')?.regionsWithCapacity, ['US-KS-2'], 'a data center with NONE is not a region with capacity');
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'c', instanceType: 'NVIDIA GeForce RTX 3090' });
    assert.equal(inst.pricePerHour, 0.22);
    assert.equal((fake.requests.find((r) => r.method === 'POST' && r.path === '/v2/pods')!.body as Json).cloud, 'COMMUNITY');
  });
});
