/**
 * Lambda Cloud against its published spec (Lambda Cloud API 1.8.3, verbatim excerpt in
 * test/fixtures/lambda/, from alexandervaneck/lambda-ai-cloud-api-client @
 * b6023bc07c0933df459426b281c113844f2571f5, openapi-1.8.3.json):
 * - the fake rejects what the spec rejects, with the spec's error shape and codes;
 * - the spec's own example answers go through the client's parsing;
 * - the client: exactly one SSH key (refused before any call without one), `preempted` ends
 *   billing, remedies by documented error code, launches paced one per 12 s, SSH keys added by
 *   upload or generation.
 * The real API cannot be called from tests: everything talks to 127.0.0.1.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { accrue } from '../../src/core/cost';
import { Ledger } from '../../src/core/ledger';
import { CloudInstancePlugin } from '../../src/backends/cloud/cloudPlugin';
import {
  LAMBDA_BILLING,
  LambdaCloudProvider,
  checkLambdaSshKey,
  lambdaState,
  publicKeyProblem,
  savePrivateKey,
  type LambdaGeneratedSshKey,
  type LambdaProviderOptions,
} from '../../src/backends/cloud/lambda/lambda';
import { CloudApiError, markedName } from '../../src/backends/cloud/provider';
import { reconcileCloud } from '../../src/backends/cloud/reconcile';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { LAMBDA_SPEC, check, component, exampleOf, responseSchema } from '../fakes/lambdaSpec';
import { runCli } from '../helpers/cli';
import { LocalHttpServer, readBody } from '../helpers/net';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const LAUNCH = '/api/v1/instance-operations/launch';

/** A raw request to a server (no client logic in between). */
async function raw(url: string, method: string, p: string, o: { body?: unknown; text?: string; auth?: string | null } = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url.replace(/\/api\/v1$/, '') + p, {
    method,
    headers: { Accept: 'application/json', ...(o.auth === null ? {} : { Authorization: o.auth ?? 'Bearer test-key-0123456789' }), ...(o.body !== undefined || o.text !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : o.text !== undefined ? { body: o.text } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** The answer matches the spec's documented schema for this operation and status. */
function assertSpecAnswer(method: string, specPath: string, r: { status: number; body: unknown }): void {
  const v = responseSchema(method, specPath, r.status);
  assert.ok(v, `the spec documents ${r.status} for ${method} ${specPath}`);
  assert.deepEqual(check(v, r.body), [], `${method} ${specPath} ${r.status} answer follows the spec: ${JSON.stringify(r.body)}`);
}

const goodLaunch = { region_name: 'us-east-1', instance_type_name: 'gpu_1x_a10', ssh_key_names: ['laptop'], name: 'ok' };

describe('Lambda Cloud fake: at least as strict as the published spec (1.8.3)', function () {
  this.timeout(30_000);
  let fake: FakeLambdaServer;
  beforeEach(async () => {
    fake = new FakeLambdaServer();
    await fake.start();
  });
  afterEach(async () => {
    await fake.stop();
    assert.deepEqual(fake.specViolations, [], 'every answer of the fake follows the spec');
  });

  const malformed: Array<[string, unknown, number, string]> = [
    ['ssh_key_names: [] (the client used to send it)', { ...goodLaunch, ssh_key_names: [] }, 400, 'global/invalid-parameters'],
    ['two SSH keys', { ...goodLaunch, ssh_key_names: ['laptop', 'laptop'] }, 400, 'global/invalid-parameters'],
    ['no ssh_key_names at all', { region_name: 'us-east-1', instance_type_name: 'gpu_1x_a10' }, 400, 'global/invalid-parameters'],
    ['an SSH key name that is not a string', { ...goodLaunch, ssh_key_names: [7] }, 400, 'global/invalid-parameters'],
    ['a region outside PublicRegionCode', { ...goodLaunch, region_name: 'mars-north-1' }, 400, 'global/invalid-parameters'],
    ['no region', { instance_type_name: 'gpu_1x_a10', ssh_key_names: ['laptop'] }, 400, 'global/invalid-parameters'],
    ['an instance type that is a number', { ...goodLaunch, instance_type_name: 10 }, 400, 'global/invalid-parameters'],
    ['a name of 65 characters (max 64)', { ...goodLaunch, name: 'x'.repeat(65) }, 400, 'global/invalid-parameters'],
    ['a hostname against its pattern', { ...goodLaunch, hostname: 'Bad_Host' }, 400, 'global/invalid-parameters'],
    ['a tag key against its pattern', { ...goodLaunch, tags: [{ key: 'Upper', value: 'v' }] }, 400, 'global/invalid-parameters'],
    ['quantity 2', { ...goodLaunch, quantity: 2 }, 400, 'global/invalid-parameters'],
    ['quantity 0', { ...goodLaunch, quantity: 0 }, 400, 'global/invalid-parameters'],
    ['an SSH key the account does not have', { ...goodLaunch, ssh_key_names: ['nope'] }, 404, 'global/object-does-not-exist'],
    ['an instance type that does not exist', { ...goodLaunch, instance_type_name: 'gpu_9x_nothing' }, 404, 'global/object-does-not-exist'],
    ['a region without capacity', { ...goodLaunch, instance_type_name: 'gpu_8x_h100_sxm5' }, 400, 'instance-operations/launch/insufficient-capacity'],
  ];
  for (const [what, body, status, code] of malformed) {
    it(`launch with ${what}: ${status} ${code}, in the spec's error shape, nothing launched`, async () => {
      const r = await raw(fake.url, 'POST', LAUNCH, { body });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.equal(typeof r.body.error.message, 'string');
      assertSpecAnswer('POST', LAUNCH, r);
      assert.equal(fake.instanceCount(), 0);
    });
  }

  it('a well-formed launch (one key; quantity 1 as in the spec example) is accepted', async () => {
    for (const body of [goodLaunch, { ...goodLaunch, quantity: 1, name: 'two' }]) {
      const r = await raw(fake.url, 'POST', LAUNCH, { body });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assertSpecAnswer('POST', LAUNCH, r);
    }
    assert.equal(fake.instanceCount(), 2);
    const list = await raw(fake.url, 'GET', '/api/v1/instances');
    assertSpecAnswer('GET', '/api/v1/instances', list);
  });

  it('launch without a body, terminate and add-key with bad bodies: 400 global/invalid-parameters', async () => {
    for (const [p, body] of [
      [LAUNCH, undefined],
      ['/api/v1/instance-operations/terminate', { instance_ids: 'abc' }],
      ['/api/v1/instance-operations/terminate', {}],
      ['/api/v1/ssh-keys', {}],
      ['/api/v1/ssh-keys', { name: '' }],
      ['/api/v1/ssh-keys', { name: 'k'.repeat(65) }],
      ['/api/v1/ssh-keys', { name: 'k', public_key: '' }],
      ['/api/v1/ssh-keys', { name: 'k', public_key: 'not a key' }],
      ['/api/v1/ssh-keys', { name: 'laptop', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T dup' }],
    ] as Array<[string, unknown]>) {
      const r = await raw(fake.url, 'POST', p, body === undefined ? {} : { body });
      assert.equal(r.status, 400, `${p} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'global/invalid-parameters');
      if (p !== '/api/v1/instance-operations/terminate') assertSpecAnswer('POST', p, r); // terminate documents no 400 (the shape is still the spec's)
    }
  });

  it('auth: Bearer, Basic base64 "key:", Basic key (securitySchemes); anything else 401 global/invalid-api-key', async () => {
    const b64 = Buffer.from(`${fake.apiKey}:`).toString('base64');
    for (const auth of [`Bearer ${fake.apiKey}`, `Basic ${b64}`, `Basic ${fake.apiKey}`]) assert.equal((await raw(fake.url, 'GET', '/api/v1/ssh-keys', { auth })).status, 200, auth);
    for (const auth of [null, 'Bearer nope', `Basic ${Buffer.from('nope:').toString('base64')}`]) {
      const r = await raw(fake.url, 'GET', '/api/v1/instances', { auth });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'global/invalid-api-key');
      assertSpecAnswer('GET', '/api/v1/instances', r);
    }
  });

  it('an inactive account: 403 global/account-inactive everywhere; a bad billing address: 403 global/invalid-address on launch', async () => {
    fake.account = 'inactive';
    for (const [m, p] of [['GET', '/api/v1/instances'], ['GET', '/api/v1/instance-types'], ['GET', '/api/v1/ssh-keys'], ['POST', LAUNCH]] as const) {
      const r = await raw(fake.url, m, p, m === 'POST' ? { body: goodLaunch } : {});
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'global/account-inactive');
      assertSpecAnswer(m, p, r);
    }
    fake.account = 'invalid-address';
    const r = await raw(fake.url, 'POST', LAUNCH, { body: goodLaunch });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'global/invalid-address');
    assertSpecAnswer('POST', LAUNCH, r);
  });

  it('a 429 carries no Retry-After (the spec documents none), even when a test asks for one; the fake is served under /api/v1 only', async () => {
    fake.inject({ path: /\/instances$/, kind: 'rate-limit', retryAfterSec: 3 });
    const r = await raw(fake.url, 'GET', '/api/v1/instances');
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), null);
    assert.equal(typeof r.body.error.code, 'string');
    assert.equal((await raw(fake.url, 'GET', '/instances')).status, 404);
  });

  it('status enum includes preempted; an unknown instance is 404 global/object-does-not-exist', async () => {
    const l = await raw(fake.url, 'POST', LAUNCH, { body: goodLaunch });
    const id = l.body.data.instance_ids[0] as string;
    fake.preempt(id);
    const d = await raw(fake.url, 'GET', `/api/v1/instances/${id}`);
    assert.equal(d.body.data.status, 'preempted');
    assertSpecAnswer('GET', '/api/v1/instances/{id}', d);
    const gone = await raw(fake.url, 'GET', '/api/v1/instances/0123456789abcdef0123456789abcdef');
    assert.equal(gone.status, 404);
    assertSpecAnswer('GET', '/api/v1/instances/{id}', gone);
  });
});

describe('Lambda Cloud client against the spec', function () {
  this.timeout(60_000);
  let fake: FakeLambdaServer;
  let state: string;
  const made = (o: Partial<LambdaProviderOptions> = {}) => new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url, timeoutMs: 5000, retries: 2, backoffMs: 20, launchGapMs: 50, ...o });
  const req = (o: Record<string, unknown> = {}) => ({ ledgerId: randomUUID(), name: 'job', instanceType: 'gpu_1x_a10', region: 'us-east-1', sshKeyName: 'laptop', ...o });
  beforeEach(async () => {
    fake = new FakeLambdaServer({ bootMs: 100, terminateMs: 100 });
    await fake.start();
    state = tmpDir('tether-lambda-spec-');
  });
  afterEach(async () => {
    await fake.stop();
    fs.rmSync(state, { recursive: true, force: true });
    assert.deepEqual(fake.specViolations, []);
  });

  it('a launch without an SSH key is refused before any call, saying why and what to do', async () => {
    const p = made();
    for (const sshKeyName of [undefined, '', '  ']) {
      const e = await p.launch(req({ sshKeyName })).then(() => assert.fail('launched'), (x: unknown) => x);
      assert.ok(e instanceof CloudApiError, String(e));
      assert.equal(e.code, 'tether/ssh-key-required');
      assert.match(e.message, /exactly one SSH key/);
      assert.match(e.remedy, /--ssh-key NAME/);
      assert.match(e.remedy, /add one/);
    }
    assert.deepEqual(fake.requests, [], 'no API call at all');
  });

  it('CloudInstancePlugin without an SSH key: refused before the ledger intent and before any call', async () => {
    const ledger = new Ledger(state);
    const plugin = new CloudInstancePlugin({ provider: made(), ledger, name: 'gpu-box' });
    await assert.rejects(plugin.provisionRemoteResource({ instanceType: 'gpu_1x_a10', region: 'us-east-1', pricePerHour: 0.75, name: 'box' }), (e: unknown) => e instanceof CloudApiError && e.code === 'tether/ssh-key-required');
    const b = ledger.read();
    assert.deepEqual([b.resources.length, b.ended.length], [0, 0], 'no intent, nothing shown as billing');
    assert.deepEqual(fake.requests, []);
  });

  it('a launch sends exactly one SSH key, in a body valid under the spec\'s InstanceLaunchRequest', async () => {
    const inst = await made().launch(req());
    const launches = fake.requests.filter((r) => r.path === LAUNCH);
    assert.equal(launches.length, 1);
    assert.deepEqual(check(component('InstanceLaunchRequest'), launches[0]!.body), []);
    assert.deepEqual((launches[0]!.body as { ssh_key_names: string[] }).ssh_key_names, ['laptop']);
    assert.deepEqual((await made().describe(inst.id))?.metadata.sshKeyNames, ['laptop']);
  });

  it('preempted is an end: shown as preempted, not billed, the record ended', async () => {
    const p = made();
    const ledger = new Ledger(state);
    const plugin = new CloudInstancePlugin({ provider: p, ledger, name: 'gpu-box' });
    const info = await plugin.provisionRemoteResource({ instanceType: 'gpu_1x_a10', region: 'us-east-1', sshKeyName: 'laptop', name: 'box' });
    await waitFor(async () => (await plugin.checkRemoteResourceStatus()) === 'running', 10_000, 'running');
    fake.preempt(info.instanceId!);
    const d = await p.describe(info.instanceId!);
    assert.equal(d?.rawStatus, 'preempted', 'shown as preempted');
    assert.equal(d?.status, 'terminated');
    assert.ok(!LAMBDA_BILLING.computeStates.includes(d!.status), 'a preempted instance does not bill');
    assert.equal((await p.listInstances()).find((i) => i.id === info.instanceId)?.rawStatus, 'preempted');
    // Reconcile ends its record, saying it was preempted.
    const r = await reconcileCloud(p, ledger);
    assert.deepEqual(r.gone, [plugin.ledgerId]);
    const ended = ledger.read().ended.find((x) => x.id === plugin.ledgerId);
    assert.ok(ended, 'ended');
    assert.match(ended.history.map((h) => h.note ?? '').join(' | '), /preempted/);
  });

  it('billing stops at preemption: an hour after it, only the minutes before it are charged', () => {
    const t0 = Date.parse('2026-12-01T08:00:00Z');
    const events = [
      { at: t0, state: lambdaState('booting') },
      { at: t0 + 60_000, state: lambdaState('active') },
      { at: t0 + 180_000, state: lambdaState('preempted') },
    ];
    const a = accrue(events, [{ at: t0, computePerHour: 0.75 }], LAMBDA_BILLING, t0 + 3_780_000);
    assert.equal(a.billedSeconds, 180);
    assert.equal(Number(a.total.toFixed(4)), Number(((0.75 * 180) / 3600).toFixed(4)));
  });

  it('remedies follow the documented error codes (401 key, 403 account/billing, 404 launch resource, 400 parameters/capacity/quota, 429, 5xx)', async () => {
    const rejects = async (f: () => Promise<unknown>, status: number, code: string, remedy: RegExp, notRemedy?: RegExp) => {
      const e = await f().then(() => assert.fail('should fail'), (x: unknown) => x);
      assert.ok(e instanceof CloudApiError, String(e));
      assert.equal(e.status, status, e.oneLine());
      assert.equal(e.code, code);
      assert.match(e.remedy, remedy);
      if (notRemedy) assert.doesNotMatch(e.remedy, notRemedy);
      return e;
    };
    await rejects(() => made({ apiKey: 'wrong-key-4242' }).listInstances(), 401, 'global/invalid-api-key', /API key is invalid, expired or deleted/);
    fake.account = 'inactive';
    await rejects(() => made().listInstances(), 403, 'global/account-inactive', /account is inactive.*payment method/, /check the API key/);
    await rejects(() => made().launch(req()), 403, 'global/account-inactive', /account is inactive/, /check the API key/);
    fake.account = 'invalid-address';
    await rejects(() => made().launch(req()), 403, 'global/invalid-address', /billing address/, /check the API key/);
    fake.account = 'active';
    await rejects(() => made().launch(req({ sshKeyName: 'not-mine' })), 404, 'global/object-does-not-exist', /SSH key name/);
    await rejects(() => made().launch(req({ region: 'mars-north-1' })), 400, 'global/invalid-parameters', /refused the request's parameters/);
    await rejects(() => made().launch(req({ instanceType: 'gpu_8x_h100_sxm5' })), 400, 'instance-operations/launch/insufficient-capacity', /no capacity.*another region/);
    fake.quota = 0;
    await rejects(() => made().launch(req()), 400, 'global/quota-exceeded', /quota/);
    fake.quota = Infinity;
    fake.inject({ method: 'GET', path: /\/instance-types$/, kind: 'rate-limit', times: 3 });
    await rejects(() => made().listInstanceTypes(), 429, 'global/too-many-requests', /rate limited.*1 launch per 12 seconds/);
    fake.inject({ method: 'GET', path: /\/instance-types$/, kind: 'error-500', times: 3 });
    await rejects(() => made().listInstanceTypes(), 500, 'global/internal-error', /Lambda Cloud failed on its side/);
    assert.equal(fake.instanceCount(), 0, 'nothing launched');
  });

  it('a refused launch (429) is retried no sooner than the launch gap, not after the generic backoff', async () => {
    fake.inject({ path: /instance-operations\/launch$/, kind: 'rate-limit' });
    const t0 = Date.now();
    const inst = await made({ launchGapMs: 1500 }).launch(req());
    const took = Date.now() - t0;
    assert.ok(inst.id);
    assert.equal(fake.requests.filter((r) => r.path === LAUNCH).length, 2, 'refused once, then launched');
    assert.ok(took >= 1450, `the launch took ${took} ms: the retry waited the launch gap (1500 ms), not the 20 ms backoff`);
    assert.equal(fake.instanceCount(), 1);
  });

  it('launches of one account are at least 12 s apart by default (spec: one launch per 12 s), even from two clients at once', async function () {
    this.timeout(90_000);
    const a = made({ launchGapMs: undefined });
    const b = made({ launchGapMs: undefined });
    const [x, y] = await Promise.all([a.launch(req({ name: 'one' })), b.launch(req({ name: 'two' }))]);
    assert.notEqual(x.id, y.id);
    assert.equal(fake.launchTimes.length, 2);
    const gap = fake.launchTimes[1]! - fake.launchTimes[0]!;
    assert.ok(gap >= 11_900, `launches ${gap} ms apart`);
    // Other calls are not held back by the launch gap.
    const t0 = Date.now();
    await a.listInstances();
    assert.ok(Date.now() - t0 < 5000);
  });

  it('SSH keys: upload a public key, or let Lambda generate a pair (private key saved 0600, never over a file)', async () => {
    const p = made();
    const dir = tmpDir('tether-lambda-keys-');
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', path.join(dir, 'id_ed25519')]);
      const pub = fs.readFileSync(path.join(dir, 'id_ed25519.pub'), 'utf8');
      assert.equal(publicKeyProblem(pub), undefined);
      assert.match(publicKeyProblem(fs.readFileSync(path.join(dir, 'id_ed25519'), 'utf8')) ?? '', /private key/);
      const up = await p.addSshKey('work', pub);
      assert.deepEqual([up.name, up.public_key], ['work', pub.trim()]);
      assert.ok(!('private_key' in up));
      assert.deepEqual(check(component('AddSSHKeyRequest'), fake.requests.at(-1)!.body), []);

      const gen = (await p.addSshKey('generated')) as LambdaGeneratedSshKey;
      assert.match(gen.private_key, /BEGIN RSA PRIVATE KEY/);
      const file = savePrivateKey(path.join(dir, 'ssh'), gen.name, gen);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      // The saved private key is the pair of the public key Lambda keeps (checked by OpenSSH itself).
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
      assert.equal(derived, gen.public_key.split(' ').slice(0, 2).join(' '));
      const again = savePrivateKey(path.join(dir, 'ssh'), gen.name, gen);
      assert.notEqual(again, file, 'never over an existing file');

      assert.deepEqual((await p.listSshKeys()).map((k) => k.name), ['laptop', 'work', 'generated']);
      const dup = await p.addSshKey('work', pub).then(() => assert.fail('duplicate accepted'), (x: unknown) => x);
      assert.ok(dup instanceof CloudApiError && dup.status === 400, String(dup));
      await assert.rejects(p.addSshKey('x'.repeat(65)), /at most 64/);
      // A launch with the new key works.
      await p.launch(req({ sshKeyName: 'generated' }));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checkLambdaSshKey (CLI, wizard): none given lists the keys; an account without keys is told how to add one; an unknown name is refused', async () => {
    const p = made();
    await assert.rejects(checkLambdaSshKey(p, undefined), (e: Error & { remedy: string }) => /none was given/.test(e.message) && /--ssh-key NAME; your keys: laptop/.test(e.remedy));
    await assert.rejects(checkLambdaSshKey(p, 'other'), (e: Error & { remedy: string }) => /no SSH key named "other"/.test(e.message) && /laptop/.test(e.remedy));
    assert.equal((await checkLambdaSshKey(p, 'laptop')).name, 'laptop');
    fake.sshKeys.length = 0;
    await assert.rejects(checkLambdaSshKey(p, undefined), (e: Error & { remedy: string }) => /has no SSH key/.test(e.message) && /add one .*POST \/api\/v1\/ssh-keys/.test(e.remedy));
    assert.ok(fake.requests.every((r) => r.method === 'GET'), 'only reads');
  });
});

describe('Lambda Cloud: the spec\'s own example answers through the client', function () {
  this.timeout(30_000);
  const schemas = LAMBDA_SPEC.components.schemas as Record<string, any>;
  const terminateExample = (LAMBDA_SPEC.paths['/api/v1/instance-operations/terminate'].post.responses['200'].content['application/json'].schema.properties.data as any).examples[0];
  const terminated = terminateExample.terminated_instances[0];
  const instance = exampleOf('Instance') as Record<string, unknown> & { id: string };
  let answers: Record<string, unknown>;
  let server: LocalHttpServer;
  let seen: Array<{ method: string; path: string; body: unknown }>;

  before(async () => {
    server = new LocalHttpServer((q, s) =>
      void (async () => {
        const text = (await readBody(q)).toString('utf8');
        const key = `${q.method} ${q.url}`;
        seen.push({ method: q.method!, path: q.url!, body: text ? JSON.parse(text) : undefined });
        const a = answers[key];
        s.writeHead(a === undefined ? 404 : 200, { 'Content-Type': 'application/json' });
        s.end(JSON.stringify(a ?? { error: { code: 'global/object-does-not-exist', message: key } }));
      })(),
    );
    await server.start();
  });
  after(() => server.stop());
  beforeEach(() => {
    seen = [];
    answers = {
      'GET /api/v1/instance-types': { data: schemas.InstanceTypes.example },
      'GET /api/v1/instances': { data: [terminated, instance] },
      [`GET /api/v1/instances/${instance.id}`]: { data: instance },
      'GET /api/v1/ssh-keys': { data: [exampleOf('SSHKey')] },
      'POST /api/v1/ssh-keys': { data: exampleOf('GeneratedSSHKey') },
      'POST /api/v1/instance-operations/launch': { data: exampleOf('InstanceLaunchResponse') },
      'POST /api/v1/instance-operations/terminate': { data: terminateExample },
    };
  });
  const p = () => new LambdaCloudProvider({ apiKey: 'k', baseUrl: `${server.url}/api/v1`, retries: 0, backoffMs: 10, launchGapMs: 10 });

  it('the examples are valid answers under the spec (so the test feeds real shapes)', () => {
    const specPath = (k: string) => k.split(' ')[1]!.replace(`/${instance.id}`, '/{id}');
    for (const [k, body] of Object.entries(answers)) assert.deepEqual(check(responseSchema(k.split(' ')[0]!, specPath(k), 200)!, body), [], k);
  });

  it('instance types: the InstanceTypes example', async () => {
    assert.deepEqual(await p().listInstanceTypes(), [
      { name: 'gpu_1x_gh200', description: '1x GH200 (96 GB)', gpuType: 'GH200 (96 GB)', gpuCount: 1, vcpus: 64, memoryGiB: 432, pricePerHour: 1.49, regionsWithCapacity: ['us-west-1'] },
    ]);
  });

  it('instances: the terminate example\'s instance and one built from the Instance property examples', async () => {
    const [a, b] = await p().listInstances();
    assert.deepEqual(
      { ...a, metadata: undefined },
      {
        id: '0920582c7ff041399e34823a0be62549',
        provider: 'lambda_labs',
        name: 'My Instance',
        region: 'us-west-1',
        instanceType: 'gpu_8x_a100',
        gpuType: 'A100 (40 GB SXM4)',
        gpuCount: 8,
        status: 'terminating',
        rawStatus: 'terminating',
        pricePerHour: 10.32,
        sshHost: '198.51.100.2',
        sshPort: 22,
        sshUser: 'ubuntu',
        metadata: undefined,
      },
    );
    assert.deepEqual(a!.metadata, { hostname: '198.51.100.2', sshKeyNames: ['My SSH key'] });
    assert.equal(a!.tetherId, undefined, 'not launched by Tether');
    assert.equal(b!.id, instance.id);
    assert.equal(b!.instanceType, 'gpu_8x_h100_sxm5gdr');
    assert.equal(b!.pricePerHour, 35.92);
    assert.equal(b!.gpuCount, 8);
    assert.equal(b!.status, 'provisioning'); // the first InstanceStatus, booting
  });

  it('every InstanceStatus of the spec maps to a Tether state; preempted and terminated do not bill', async () => {
    const expected: Record<string, string> = { booting: 'provisioning', active: 'running', unhealthy: 'running', terminated: 'terminated', terminating: 'terminating', preempted: 'terminated' };
    assert.deepEqual([...schemas.InstanceStatus.enum].sort(), Object.keys(expected).sort(), 'the table covers the spec enum');
    for (const status of schemas.InstanceStatus.enum as string[]) {
      answers[`GET /api/v1/instances/${instance.id}`] = { data: { ...instance, status } };
      const d = await p().describe(instance.id);
      assert.equal(d?.status, expected[status], status);
      assert.equal(d?.rawStatus, status);
      assert.equal(LAMBDA_BILLING.computeStates.includes(d!.status), !['terminated', 'preempted'].includes(status), `${status} bills?`);
    }
  });

  it('launch: a request valid under the spec, the InstanceLaunchResponse example\'s id; terminate and ssh keys parse', async () => {
    const inst = await p().launch({ ledgerId: randomUUID(), name: 'job', instanceType: 'gpu_8x_a100', region: 'us-west-1', sshKeyName: 'my-public-key' });
    assert.equal(inst.id, '0920582c7ff041399e34823a0be62549');
    const launch = seen.find((r) => r.path === LAUNCH)!;
    assert.deepEqual(check(component('InstanceLaunchRequest'), launch.body), []);
    assert.equal((launch.body as { name: string }).name.length <= 64, true);
    await p().terminate(inst.id);
    assert.deepEqual(check(component('InstanceTerminateRequest'), seen.at(-1)!.body), []);
    assert.deepEqual(await p().listSshKeys(), [{ id: 'ddf9a910ceb744a0bb95242cbba6cb50', name: 'my-public-key', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T noname' }]);
    const gen = (await p().addSshKey('my-public-key')) as LambdaGeneratedSshKey;
    assert.match(gen.private_key, /^-----BEGIN RSA PRIVATE KEY-----/);
    assert.deepEqual(check(component('AddSSHKeyRequest'), seen.at(-1)!.body), []);
  });

  it('the spec\'s error components (code const, default message and suggestion) get their remedies', async () => {
    const cases: Array<[string, number, RegExp]> = [
      ['ApiErrorUnauthorized', 401, /API key is invalid/],
      ['ApiErrorAccountInactive', 403, /account is inactive/],
      ['ApiErrorInvalidBillingAddress', 403, /billing address/],
      ['ApiErrorLaunchResourceNotFound', 404, /SSH key name/],
      ['ApiErrorInvalidParameters', 400, /parameters/],
      ['ApiErrorInsufficientCapacity', 400, /no capacity/],
      ['ApiErrorQuotaExceeded', 400, /quota/],
      ['ApiErrorFileSystemInWrongRegion', 400, /file system/],
    ];
    for (const [name, status, remedy] of cases) {
      const s = schemas[name];
      const error = { code: s.properties.code.const, message: s.properties.message.default ?? name, ...(s.properties.suggestion.default || s.required.includes('suggestion') ? { suggestion: s.properties.suggestion.default ?? 'Check it and try again.' } : {}) };
      // Serve it as the launch answer, with the status the spec documents for it.
      const srv = new LocalHttpServer((_q, r) => {
        r.writeHead(_q.method === 'GET' ? 200 : status, { 'Content-Type': 'application/json' });
        r.end(JSON.stringify(_q.method === 'GET' ? { data: [] } : { error }));
      });
      await srv.start();
      try {
        assert.deepEqual(check(responseSchema('POST', LAUNCH, status)!, { error }), [], `${name} is a documented launch answer`);
        const e = await new LambdaCloudProvider({ apiKey: 'k', baseUrl: `${srv.url}/api/v1`, retries: 0, launchGapMs: 10 })
          .launch({ ledgerId: randomUUID(), name: 'x', instanceType: 't', region: 'us-west-1', sshKeyName: 'k' })
          .then(() => assert.fail('launched'), (x: unknown) => x);
        assert.ok(e instanceof CloudApiError, String(e));
        assert.equal(e.code, error.code, name);
        assert.match(e.remedy, remedy, name);
      } finally {
        await srv.stop();
      }
    }
  });

  it('the marked name Tether launches with fits the spec (at most 64 characters)', () => {
    assert.ok(markedName(randomUUID(), 'x'.repeat(200)).length <= 64);
    assert.deepEqual(check(component('InstanceLaunchRequest'), { region_name: 'us-west-1', instance_type_name: 't', ssh_key_names: ['k'], name: markedName(randomUUID(), 'y'.repeat(200)) }), []);
  });
});

describe('tether CLI on Lambda Cloud: the SSH key is checked before any ledger intent', function () {
  this.timeout(90_000);
  let fake: FakeLambdaServer;
  let env: Record<string, string>;
  let ws: string;
  beforeEach(async () => {
    fake = new FakeLambdaServer({ bootMs: 100, terminateMs: 100 });
    await fake.start();
    env = { TETHER_STATE_DIR: tmpDir('tether-lambda-cli-'), LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
    ws = workspaceWith({ plugins: [] });
  });
  afterEach(async () => {
    await fake.stop();
    fs.rmSync(env.TETHER_STATE_DIR!, { recursive: true, force: true });
    fs.rmSync(ws, { recursive: true, force: true });
  });
  const provision = (...extra: string[]) => runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--name', 'job', '--yes', '--workspace', ws, ...extra], env);
  const nothingWritten = () => {
    assert.equal(fake.requests.filter((r) => r.method !== 'GET').length, 0, 'no launch');
    const file = path.join(env.TETHER_STATE_DIR!, 'ledger.json');
    if (fs.existsSync(file)) {
      const b = new Ledger(env.TETHER_STATE_DIR!).read();
      assert.deepEqual([b.resources.length, b.ended.length], [0, 0], 'no intent in the ledger');
    }
  };

  it('without --ssh-key: exit 2, naming the account\'s keys; with an unknown one: exit 2; nothing launched or recorded', async () => {
    const none = await provision();
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /Lambda Cloud: a launch needs exactly one SSH key, and none was given — pass --ssh-key NAME; your keys: laptop/);
    const wrong = await provision('--ssh-key', 'desktop');
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /no SSH key named "desktop" — pass one of your keys \(laptop\)/);
    nothingWritten();
    const ok = await provision('--ssh-key', 'laptop');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fake.instanceCount(), 1);
  });

  it('an account without SSH keys: exit 2, saying how to add one', async () => {
    fake.sshKeys.length = 0;
    const r = await runCli(['cloud', 'launch', 'lambda', 'gpu_1x_a10', '--region', 'us-east-1', '--workspace', ws], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /your account has no SSH key, and a launch needs exactly one — add one to your Lambda Cloud account \(dashboard: SSH keys; API: POST \/api\/v1\/ssh-keys/);
    nothingWritten();
  });
});
