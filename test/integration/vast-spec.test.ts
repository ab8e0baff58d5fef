/**
 * Vast.ai against its published spec (excerpts in test/fixtures/vast/, each naming its repository,
 * commit and path): the spec's own example answers parse through the client; the fake rejects
 * what the real API rejects, with the real error shapes; the client lists with v1 paging, searches
 * offers with POST /bundles/, and keeps Vast's documented minimum gaps (time injected: the tests
 * assert the computed waits instead of sleeping).
 */
import * as assert from 'node:assert/strict';
import type * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { CloudApiError } from '../../src/backends/cloud/provider';
import type { Clock, HttpMethod } from '../../src/backends/cloud/http';
import { VAST_MIN_GAPS_MS, VastAiProvider, type VastOptions } from '../../src/backends/cloud/vastai/vastai';
import generated from '../fixtures/vast/generated-openapi.json';
import published from '../fixtures/vast/published-openapi.json';
import { DOCUMENTED_GAPS_MS, FakeVastServer } from '../fakes/vastaiServer';
import { LocalHttpServer, readBody } from '../helpers/net';
import { waitFor } from '../helpers/tmp';

// The spec excerpts are untyped JSON: read them loosely.
type Json = Record<string, any>;
const P = published.paths as unknown as Json;
const S = published.components.schemas as unknown as Json;
const G = generated.files as unknown as Json;

/** An object made of each property's `example` in a schema (how the spec shows a whole answer). */
function fromPropertyExamples(schema: Json): Json {
  return Object.fromEntries(Object.entries(schema.properties as Json).filter(([, v]) => 'example' in v).map(([k, v]) => [k, v.example]));
}
const json200 = (op: Json) => op.responses['200'].content['application/json'];

/** A clock whose sleeps only advance virtual time, and are recorded. */
function virtualClock(): Clock & { sleeps: number[]; wakes: number[]; t: number; t0: number } {
  const c = {
    t0: 1_000_000,
    t: 1_000_000,
    sleeps: [] as number[],
    /** When each sleep ends, relative to the start. */
    wakes: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.wakes.push(c.t + ms - c.t0);
      c.t += ms;
    },
  };
  return c;
}

/** A 127.0.0.1 server answering from a route table (the spec's examples); it logs what it got. */
class ExampleServer {
  readonly got: { method: string; path: string; search: string; body: unknown }[] = [];
  private readonly srv: LocalHttpServer;
  constructor(private readonly routes: (method: string, path: string, url: URL, body: unknown) => { status: number; body?: unknown; text?: string; headers?: Record<string, string> } | undefined) {
    this.srv = new LocalHttpServer((req, res) => void this.handle(req, res));
  }
  start(): Promise<string> {
    return this.srv.start();
  }
  stop(): Promise<void> {
    return this.srv.stop();
  }
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = raw ? JSON.parse(raw) : undefined;
    this.got.push({ method: req.method ?? 'GET', path: url.pathname, search: url.search, body });
    const a = this.routes(req.method ?? 'GET', url.pathname, url, body) ?? { status: 404, body: { success: false, error: 'not_found', msg: 'no route' } };
    res.writeHead(a.status, { 'Content-Type': a.text !== undefined ? 'text/plain' : 'application/json', ...(a.headers ?? {}) });
    res.end(a.text ?? JSON.stringify(a.body));
  }
}

const noPacing = { GET: 0, POST: 0, PUT: 0, DELETE: 0 };

describe('Vast.ai: the spec’s own example answers parse through the client', function () {
  this.timeout(30_000);
  let srv: ExampleServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });
  const client = async (routes: ConstructorParameters<typeof ExampleServer>[0], o: Partial<VastOptions> = {}) => {
    srv = new ExampleServer(routes);
    const url = await srv.start();
    // The server root (not a legacy /api/v0 URL): both are accepted.
    return new VastAiProvider({ apiKey: 'k-example', baseUrl: url, retries: 1, backoffMs: 5, timeoutMs: 5000, minGapMs: noPacing, ...o });
  };

  it('GET /api/v1/instances/ (published schema examples, two pages by next_token) → CloudInstance fields', async () => {
    const op = P['/api/v1/instances'].get;
    const page = fromPropertyExamples(json200(op).schema);
    const row = fromPropertyExamples(json200(op).schema.properties.instances.items);
    const p = await client((method, path, url) => {
      if (method !== 'GET' || path !== '/api/v1/instances/') return undefined;
      return url.searchParams.get('after_token') === page.next_token ? { status: 200, body: { ...page, instances_found: 0, instances: [], next_token: null } } : { status: 200, body: { ...page, instances: [row] } };
    });
    const list = await p.listInstances();
    assert.equal(list.length, 1);
    const i = list[0]!;
    assert.deepEqual(
      { id: i.id, name: i.name, status: i.status, rawStatus: i.rawStatus, price: i.pricePerHour, host: i.sshHost, port: i.sshPort, user: i.sshUser, gpu: i.gpuType, n: i.gpuCount, type: i.instanceType, region: i.region, at: i.launchedAt, tether: i.tetherId },
      { id: '312', name: 'ML Training Job 2025', status: 'running', rawStatus: 'running', price: 0.8021, host: 'ssh123.vast.ai', port: 10600, user: 'root', gpu: 'RTX 4090', n: 1, type: '1x RTX 4090', region: 'California, United States', at: new Date(1668804745.1223178 * 1000).toISOString(), tether: undefined },
    );
    assert.equal(i.metadata.machineId, 12);
    const gets = srv!.got.filter((g) => g.path === '/api/v1/instances/');
    assert.equal(gets.length, 2, 'followed next_token to the second page');
    assert.equal(new URL(`http://x/${gets[0]!.search}`).searchParams.get('limit'), '25');
    assert.equal(new URL(`http://x/${gets[1]!.search}`).searchParams.get('after_token'), page.next_token);
  });

  it('GET /api/v0/instances/{id}/ (the Instance schema examples) → CloudInstance; {instances: null} → undefined', async () => {
    const inst = fromPropertyExamples(S.Instance);
    const p = await client((method, path) => (method === 'GET' && path === '/api/v0/instances/883/' ? { status: 200, body: { instances: inst } } : method === 'GET' && path === '/api/v0/instances/5/' ? { status: 200, body: { instances: null } } : undefined));
    const d = await p.describe('883');
    assert.ok(d);
    assert.deepEqual(
      { id: d.id, status: d.status, price: d.pricePerHour, host: d.sshHost, port: d.sshPort, gpu: d.gpuType, n: d.gpuCount, region: d.region, name: d.name, at: d.launchedAt },
      { id: '883', status: 'running', price: inst.dph_total, host: 'ssh2281.vast.ai', port: 10882, gpu: 'RTX A5000', n: 1, region: 'Washington, US', name: undefined, at: new Date(1761008618.225083 * 1000).toISOString() },
    );
    assert.equal(await p.describe('5'), undefined);
  });

  it('POST /api/v0/bundles/ (the published response example, whose `offers` is one object) → InstanceType', async () => {
    const ex = json200(P['/api/v0/bundles'].post).example;
    const p = await client((method, path) => (method === 'POST' && path === '/api/v0/bundles/' ? { status: 200, body: ex } : undefined));
    const types = await p.listInstanceTypes();
    assert.deepEqual(types, [
      { name: '12345678', description: '4x Imaginary RTX 9999 (Atlantis, AT)', gpuType: 'Imaginary RTX 9999', gpuCount: 4, vcpus: 32, memoryGiB: 64, pricePerHour: 0.234567, regionsWithCapacity: ['Atlantis, AT'] },
    ]);
    const sent = srv!.got.find((g) => g.path === '/api/v0/bundles/')!.body as Json;
    assert.deepEqual(sent.verified, { eq: true });
    assert.deepEqual(sent.order, [['dph_total', 'asc']]);
  });

  it('PUT /api/v0/asks/{id}/: the generated example {success, new_contract, instance_api_key} → the new instance; success:false with a contract is an instance (started stopped), not a failure', async () => {
    const ex = json200(G['auto_put_api_v0_asks_id_6ec785.yaml'].paths['/api/v0/asks/{id}/'].put).example;
    let answer: Json = ex;
    const p = await client((method, path) => {
      if (method === 'GET' && path === '/api/v1/instances/') return { status: 200, body: { success: true, instances_found: 0, instances: [], next_token: null } };
      if (method === 'PUT' && path === '/api/v0/asks/4101/') return { status: 200, body: answer };
      if (method === 'GET' && path.startsWith('/api/v0/instances/')) return { status: 200, body: { instances: null } };
      return undefined;
    });
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: '4101' });
    assert.equal(inst.id, String(ex.new_contract));
    assert.equal(inst.status, 'provisioning');
    const puts = srv!.got.filter((g) => g.method === 'PUT');
    assert.equal(puts.length, 1);
    assert.deepEqual(Object.keys(puts[0]!.body as Json).sort(), ['disk', 'image', 'label', 'runtype']);

    answer = { success: false, new_contract: 777 };
    const stopped = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: '4101' });
    assert.equal(stopped.id, '777');
    assert.equal(stopped.status, 'stopped');
    assert.equal(srv!.got.filter((g) => g.method === 'PUT').length, 2, 'no second create for the same launch');
  });

  it('the spec’s error answers: create 400 invalid_args, 404/410 no_such_ask, destroy 200 and 404, a 410 list, a 429 {detail}', async () => {
    const ask = P['/api/v0/asks/{id}'].put.responses;
    const ex = (r: Json) => fromPropertyExamples(r.content['application/json'].schema);
    const answers: Record<string, { status: number; body: Json }> = {
      '/api/v0/asks/1/': { status: 400, body: { ...ex(ask['400']), error: 'invalid_args' } },
      '/api/v0/asks/2/': { status: 404, body: ex(ask['404']) },
      '/api/v0/asks/3/': { status: 410, body: ex(ask['410']) },
    };
    const del = P['/api/v0/instances/{id}'].delete.responses;
    let listStatus = 200;
    const p = await client((method, path) => {
      if (method === 'GET' && path === '/api/v1/instances/') return listStatus === 200 ? { status: 200, body: { success: true, instances: [], next_token: null } } : { status: 410, body: { error: 'deprecated', msg: 'Endpoint deprecated' } };
      if (method === 'PUT' && answers[path]) return answers[path];
      if (method === 'DELETE' && path === '/api/v0/instances/4242/') return { status: 200, body: ex(del['200']) };
      if (method === 'DELETE' && path === '/api/v0/instances/4243/') return { status: 404, body: ex(del['404']) };
      if (method === 'GET' && path === '/api/v0/instances/9/') return { status: 429, body: ex(P['/api/v0/instances/{id}'].get.responses['429']) };
      return undefined;
    });
    const launch = (offer: string) => p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: offer }).then(() => assert.fail('should be refused'), (e: unknown) => e as CloudApiError);
    const bad = await launch('1');
    assert.ok(bad instanceof CloudApiError);
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid_args');
    assert.match(bad.message, /error 400\/3467/);
    for (const offer of ['2', '3']) {
      const gone = await launch(offer);
      assert.ok(gone instanceof CloudApiError);
      assert.match(gone.remedy, /no longer available.*pick another/);
    }
    assert.equal(srv!.got.filter((g) => g.method === 'PUT').length, 3, 'a refused create is not retried');
    await p.terminate('4242');
    await p.terminate('4243'); // 404: already gone
    const limited = await p.describe('9').then(() => assert.fail('429'), (e: unknown) => e as CloudApiError);
    assert.equal(limited.status, 429);
    assert.match(limited.message, /API requests too frequent endpoint threshold=2\.0/);
    listStatus = 410;
    const retired = await p.listInstances().then(() => assert.fail('410'), (e: unknown) => e as CloudApiError);
    assert.equal(retired.status, 410);
    assert.match(retired.remedy, /retired this endpoint.*update Tether/);
  });
});

describe('Vast.ai fake: as strict as the published spec (a request the real API rejects is rejected, with the real error shape)', function () {
  this.timeout(30_000);
  let fake: FakeVastServer;
  beforeEach(async () => {
    fake = new FakeVastServer({ gapScale: 0 });
    await fake.start();
  });
  afterEach(() => fake.stop());

  const call = async (method: string, path: string, body?: unknown, o: { key?: string; raw?: string } = {}) => {
    const res = await fetch(fake.url + path, {
      method,
      headers: { Authorization: `Bearer ${o.key ?? fake.apiKey}`, ...(body !== undefined || o.raw !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(o.raw !== undefined ? { body: o.raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: Json | undefined;
    try {
      json = JSON.parse(text) as Json;
    } catch {
      json = undefined;
    }
    return { status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), text, json };
  };
  const invalidArgs = (r: Awaited<ReturnType<typeof call>>, re: RegExp) => {
    assert.equal(r.status, 400, r.text);
    assert.equal(r.type, 'application/json');
    assert.equal(r.json?.success, false);
    assert.equal(r.json?.error, 'invalid_args');
    assert.match(String(r.json?.msg), re);
  };

  it('GET /api/v0/instances/ answers 410 (new account) with the Error shape; a legacy account still gets a list', async () => {
    const r = await call('GET', '/api/v0/instances/');
    assert.equal(r.status, 410);
    assert.equal(r.type, 'application/json');
    assert.match(r.json?.msg, /deprecated\. Use \/api\/v1\/instances\//);
    assert.equal(typeof r.json?.error, 'string');
    const legacy = new FakeVastServer({ gapScale: 0, legacyAccount: true });
    await legacy.start();
    try {
      const res = await fetch(`${legacy.url}/api/v0/instances/`, { headers: { Authorization: `Bearer ${legacy.apiKey}` } });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { instances_found: 0, instances: [] });
    } finally {
      await legacy.stop();
    }
  });

  it('GET /api/v1/instances/: 25 a page with next_token, then null; limit > 25, a bad after_token and a computed filter column are 400', async () => {
    for (let n = 0; n < 60; n++) fake.addForeign(`box-${n}`);
    const sizes: number[] = [];
    let after: string | null = null;
    const ids = new Set<number>();
    do {
      const r = await call('GET', `/api/v1/instances/${after ? `?after_token=${encodeURIComponent(after)}` : ''}`);
      assert.equal(r.status, 200);
      assert.equal(r.json?.success, true);
      assert.equal(r.json?.total_instances, 60);
      sizes.push(r.json?.instances.length);
      for (const i of r.json?.instances) ids.add(i.id);
      after = r.json?.next_token;
    } while (after);
    assert.deepEqual(sizes, [25, 25, 10]);
    assert.equal(ids.size, 60);
    const big = await call('GET', '/api/v1/instances/?limit=26');
    assert.equal(big.status, 400);
    assert.equal(big.json?.error, 'invalid_request');
    const tok = await call('GET', '/api/v1/instances/?after_token=bm9wZQ==');
    assert.equal(tok.status, 400);
    assert.equal(tok.json?.error, 'invalid_token');
    const computed = await call('GET', `/api/v1/instances/?select_filters=${encodeURIComponent('{"dph_total":{"lt":1}}')}`);
    assert.equal(computed.status, 400);
    assert.match(computed.json?.msg, /dph_total is not a valid search key/);
    const byLabel = await call('GET', `/api/v1/instances/?select_filters=${encodeURIComponent('{"label":{"eq":"box-7"}}')}&select_cols=${encodeURIComponent('["id","label","nope"]')}`);
    assert.equal(byLabel.json?.instances.length, 1);
    assert.deepEqual(Object.keys(byLabel.json?.instances[0]), ['id', 'label', 'nope']);
    assert.equal(byLabel.json?.instances[0].nope, null);
  });

  it('POST /api/v0/bundles/ rejects malformed searches with 400 {error: "invalid_request", msg}; GET /bundles/?q= is not the documented search', async () => {
    const bad: [string, unknown][] = [
      ['type outside the enum', { type: 'cheap' }],
      ['verified.eq not a boolean', { verified: { eq: 'yes' } }],
      ['an unknown filter operator', { gpu_name: { like: 'RTX' } }],
      ['an order entry that is not a [field, direction] pair', { order: [['dph_total']] }],
      ['an order direction other than asc/desc', { order: [['dph_total', 'up']] }],
      ['limit not an integer', { limit: 'ten' }],
      ['gpu_name.in not a list of strings', { gpu_name: { in: [4090] } }],
    ];
    for (const [why, body] of bad) {
      const r = await call('POST', '/api/v0/bundles/', body);
      assert.equal(r.status, 400, `${why}: ${r.text}`);
      assert.equal(r.type, 'application/json');
      assert.equal(r.json?.error, 'invalid_request', why);
      assert.equal(typeof r.json?.msg, 'string');
    }
    const notJson = await call('POST', '/api/v0/bundles/', undefined, { raw: '{nope' });
    assert.deepEqual([notJson.status, notJson.json], [400, { error: 'invalid_request', msg: 'Invalid json body' }]);
    const ok = await call('POST', '/api/v0/bundles', { verified: { eq: true }, order: [['dph_total', 'asc']], type: 'ondemand' });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json?.offers.map((o: Json) => o.id), [4101, 4102], 'unverified offer 4103 filtered out, cheapest first');
    const old = await call('GET', `/api/v0/bundles/?q=${encodeURIComponent('{"rentable":{"eq":true}}')}`);
    assert.equal(old.status, 404);
  });

  it('PUT /api/v0/asks/{id}/ rejects missing/mistyped/out-of-enum fields with 400 invalid_args (msg "error 400/3467…", ask_id); an unknown offer is 404 no_such_ask; nothing is created', async () => {
    const cases: [string, unknown][] = [
      ['image missing', { label: 'x', disk: 10 }],
      ['disk a string', { image: 'img', disk: '32' }],
      ['runtype outside the enum', { image: 'img', runtype: 'ssh-only' }],
      ['target_state outside the enum', { image: 'img', target_state: 'paused' }],
      ['price above the maximum', { image: 'img', price: 500 }],
      ['args not a list of strings', { image: 'img', args: 'bash' }],
      ['label not a string', { image: 'img', label: 42 }],
    ];
    for (const [why, body] of cases) {
      const r = await call('PUT', '/api/v0/asks/4101/', body);
      invalidArgs(r, /^error 400\/3467: Invalid args: /);
      assert.equal(r.json?.ask_id, 4101, why);
    }
    invalidArgs(await call('PUT', '/api/v0/asks/abc/', { image: 'img' }), /'id' is required and must be a valid offer ID/);
    invalidArgs(await call('PUT', '/api/v0/asks/4101/'), /JSON object body is required/);
    const unknown = await call('PUT', '/api/v0/asks/999/', { image: 'img' });
    assert.equal(unknown.status, 404);
    assert.deepEqual([unknown.json?.success, unknown.json?.error, unknown.json?.ask_id], [false, 'no_such_ask', 999]);
    assert.equal(fake.instanceCount(), 0, 'no refused request created anything');
    const created = await call('PUT', '/api/v0/asks/4101', { image: 'img', label: 'ok', disk: 16, runtype: 'ssh' });
    assert.equal(created.status, 200);
    assert.equal(created.json?.success, true);
    assert.equal(typeof created.json?.new_contract, 'number');
    assert.equal(typeof created.json?.instance_api_key, 'string');
  });

  it('PUT/GET/DELETE /api/v0/instances/{id}/: bad state, long label, non-integer ids, unknown ids answer the documented shapes', async () => {
    const id = fake.addForeign('box');
    const state = await call('PUT', `/api/v0/instances/${id}/`, { state: 'paused' });
    assert.deepEqual([state.status, state.json], [400, { success: false, msg: 'Invalid target state' }]);
    const label = await call('PUT', `/api/v0/instances/${id}/`, { label: 'x'.repeat(1025) });
    assert.deepEqual([label.status, label.json], [400, { error: 'invalid_args', msg: 'label_too_long' }]);
    invalidArgs(await call('PUT', `/api/v0/instances/${id}/`, {}), /state or label is required/);
    const del = await call('DELETE', '/api/v0/instances/abc/');
    assert.deepEqual([del.status, del.json], [400, { error: 'invalid_args', msg: 'invalid instance_id' }]);
    invalidArgs(await call('GET', '/api/v0/instances/abc/'), /invalid instance id/);
    const none = await call('GET', '/api/v0/instances/123/');
    assert.deepEqual([none.status, none.json], [200, { instances: null }]);
    const gone = await call('DELETE', '/api/v0/instances/123/');
    assert.deepEqual([gone.status, gone.json?.success, gone.json?.error], [404, false, 'no_such_instance']);
    assert.equal((await call('PUT', `/api/v0/instances/${id}/`, { state: 'stopped' })).status, 200);
  });

  it('a wrong key: 401 {success: false, error, msg: "Invalid user key"}; on the offer search 404 (published spec)', async () => {
    const r = await call('GET', '/api/v1/instances/', undefined, { key: 'wrong' });
    assert.deepEqual([r.status, r.type, r.json], [401, 'application/json', { success: false, error: 'auth_error', msg: 'Invalid user key' }]);
    const s = await call('POST', '/api/v0/bundles/', {}, { key: 'wrong' });
    assert.deepEqual([s.status, s.json?.msg], [404, 'Invalid user key']);
  });

  it('rate limits: the documented gaps come from the generated spec’s x-rateLimit; too soon is a plain-text 429 without Retry-After', async () => {
    assert.deepEqual(DOCUMENTED_GAPS_MS, { GET: 2000, POST: 2000, PUT: 4500, DELETE: 3000 });
    assert.deepEqual({ ...VAST_MIN_GAPS_MS }, DOCUMENTED_GAPS_MS, 'the client keeps the gaps the fake enforces');
    const strict = new FakeVastServer(); // documented gaps
    await strict.start();
    try {
      const get = () => fetch(`${strict.url}/api/v1/instances/`, { headers: { Authorization: `Bearer ${strict.apiKey}` } });
      assert.equal((await get()).status, 200);
      const r = await get();
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('content-type'), 'text/plain');
      assert.equal(r.headers.get('retry-after'), null);
      assert.match(await r.text(), /^API requests too frequent: endpoint threshold=2\.0$/);
      // Another method has its own gap.
      const del = await fetch(`${strict.url}/api/v0/instances/123/`, { method: 'DELETE', headers: { Authorization: `Bearer ${strict.apiKey}` } });
      assert.equal(del.status, 404);
    } finally {
      await strict.stop();
    }
  });
});

describe('Vast.ai client: pacing at the documented minimum gaps (virtual clock: waits asserted, not slept)', function () {
  this.timeout(30_000);
  let fake: FakeVastServer;
  beforeEach(async () => {
    fake = new FakeVastServer({ gapScale: 0, bootMs: 0 });
    await fake.start();
  });
  afterEach(() => fake.stop());
  const provider = (clock: Clock, o: Partial<VastOptions> = {}) => new VastAiProvider({ apiKey: fake.apiKey, baseUrl: fake.url, retries: 3, backoffMs: 20, timeoutMs: 5000, clock, ...o });

  it('keeps GET 2 s, PUT 4.5 s, DELETE 3 s between requests of a method (the first of each waits nothing)', async () => {
    const clock = virtualClock();
    const p = provider(clock);
    await p.listInstances(); // GET at 0
    await p.listInstances(); // GET at 2000
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: '4101' }); // GET list at 4000, PUT create at 4000, GET describe at 6000
    await p.stop!(inst.id); // PUT at 8500 (4.5 s after the create)
    await p.terminate(inst.id); // DELETE at 8500
    await p.terminate(inst.id); // DELETE at 11500 (already gone: fine)
    assert.deepEqual(clock.wakes, [2000, 4000, 6000, 8500, 11500]);
    assert.equal(fake.rateLimited429, 0);
  });

  it('two clients of the same account share the pacing; another key does not', async () => {
    const clock = virtualClock();
    await provider(clock).listInstances();
    await provider(clock).listInstances();
    assert.deepEqual(clock.sleeps, [2000]);
    const other = virtualClock();
    other.t = clock.t;
    await provider(other, { apiKey: 'another-key' }).listInstances().catch(() => undefined); // 401, but not paced by the first key
    assert.deepEqual(other.sleeps, []);
  });

  it('concurrent requests queue up at the gap', async () => {
    const clock = virtualClock();
    const p = provider(clock);
    await Promise.all([p.describe('1'), p.describe('2'), p.describe('3')]);
    assert.deepEqual(clock.wakes, [2000, 4000], 'sent at 0, 2 s and 4 s');
  });

  for (const [method, call, gap] of [
    ['GET', (p: VastAiProvider) => p.listInstances(), 2000],
    ['PUT', (p: VastAiProvider) => p.stop!('123').catch(() => undefined), 4500],
    ['DELETE', (p: VastAiProvider) => p.terminate('123'), 3000],
  ] as [HttpMethod, (p: VastAiProvider) => Promise<unknown>, number][]) {
    it(`a 429 without Retry-After on ${method} is retried no sooner than ${gap} ms`, async () => {
      const clock = virtualClock();
      const p = provider(clock);
      fake.inject({ method, kind: 'rate-limit', times: 2 });
      await call(p);
      assert.equal(clock.sleeps.length, 2, `two retries (${clock.sleeps.join(', ')})`);
      for (const s of clock.sleeps) assert.ok(s >= gap, `waited ${s} ms >= ${gap} ms`);
    });
  }

  it('Retry-After is honoured where a server sends it (and the gap still holds when it is shorter)', async () => {
    let retryAfter = '7';
    let n = 0;
    const srv = new ExampleServer((method, path) => {
      if (method === 'GET' && path === '/api/v1/instances/') return ++n % 2 === 1 ? { status: 429, text: 'slow down', headers: { 'Retry-After': retryAfter } } : { status: 200, body: { success: true, instances: [], next_token: null } };
      return undefined;
    });
    const url = await srv.start();
    try {
      const long = virtualClock();
      await new VastAiProvider({ apiKey: 'k1', baseUrl: url, retries: 2, backoffMs: 20, clock: long }).listInstances();
      assert.deepEqual(long.sleeps, [7000], 'waited what Retry-After said');
      retryAfter = '1';
      const short = virtualClock();
      await new VastAiProvider({ apiKey: 'k2', baseUrl: url, retries: 2, backoffMs: 20, clock: short }).listInstances();
      assert.deepEqual(short.sleeps, [1000, 1000], 'Retry-After 1 s, then the rest of the 2 s GET gap');
    } finally {
      await srv.stop();
    }
  });
});

describe('Vast.ai client against the rate-limiting fake in real time (gaps scaled down)', function () {
  this.timeout(60_000);
  const scaled = (k: number) => Object.fromEntries(Object.entries(VAST_MIN_GAPS_MS).map(([m, g]) => [m, g * k]));
  const flow = async (fake: FakeVastServer, minGapMs: Record<string, number>) => {
    const p = new VastAiProvider({ apiKey: fake.apiKey, baseUrl: fake.url, retries: 6, backoffMs: 5, timeoutMs: 5000, minGapMs });
    await p.listInstanceTypes();
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'job', instanceType: '4101' });
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', 10_000, 'running');
    await p.listInstances();
    await p.stop!(inst.id);
    await p.stop!(inst.id);
    await p.terminate(inst.id);
    await p.terminate(inst.id);
  };

  it('a paced client never meets the fake’s 429 (fake at half the client’s gaps); an unpaced one does', async () => {
    const fake = new FakeVastServer({ gapScale: 0.02, bootMs: 100 });
    await fake.start();
    try {
      await flow(fake, scaled(0.04));
      assert.equal(fake.rateLimited429, 0, 'no 429 for the paced client');
    } finally {
      await fake.stop();
    }
    const fake2 = new FakeVastServer({ gapScale: 0.02, bootMs: 100 });
    await fake2.start();
    try {
      await flow(fake2, noPacing);
      assert.ok(fake2.rateLimited429 > 0, 'the fake does refuse a client that goes too fast');
    } finally {
      await fake2.stop();
    }
  });
});
