// The Compute Engine fake (test/fakes/gcpComputeFake.ts), refereed by the real `gcloud` CLI
// (Cloud SDK on this machine), and held to the compute/v1 rules: a request the real API refuses
// is refused. gcloud talks only to the fake (CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE) with a token
// file, in its own config dir (never the user's).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeGcpComputeServer, parseFilter } from '../fakes/gcpComputeFake';
import { checkInstanceBody } from '../fakes/gcpComputeSpec';
import { onPath } from '../../src/backends/cloud/googleAuth';
import { tmpDir } from '../helpers/tmp';

/** gcloud is a Python program: generous, derived from nothing but the machine being loaded. */
const GCLOUD_TIMEOUT_MS = 180_000;

function gcloud(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('gcloud', [...args, '--quiet'], { env: env as NodeJS.ProcessEnv, timeout: GCLOUD_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe('the Compute Engine fake, refereed by the real gcloud', function () {
  this.timeout(4 * GCLOUD_TIMEOUT_MS);
  let fake: FakeGcpComputeServer;
  let dir: string;
  let env: Record<string, string>;

  before(function () {
    if (!onPath('gcloud')) throw new Error('gcloud is not on PATH: the Cloud SDK ships with this machine image; install google-cloud-cli to run this test');
  });
  beforeEach(async () => {
    fake = new FakeGcpComputeServer({ bootMs: 600, terminateMs: 300 });
    await fake.start();
    dir = tmpDir('tether-gcloud-');
    fs.mkdirSync(path.join(dir, 'config'));
    fs.writeFileSync(path.join(dir, 'token'), fake.apiKey);
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      CLOUDSDK_CONFIG: path.join(dir, 'config'),
      // gcloud wants the service root with a trailing slash.
      CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: `${fake.url}/`,
      CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: path.join(dir, 'token'),
      CLOUDSDK_CORE_PROJECT: fake.project,
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1',
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
      // No proxy: gcloud reaches 127.0.0.1 only.
      NO_PROXY: '127.0.0.1',
    };
  });
  afterEach(async () => {
    await fake?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gcloud compute instances create, list, stop and delete work against the fake (and it saw only Bearer requests for its project)', async () => {
    const created = await gcloud(['compute', 'instances', 'create', 'ref-box-1', '--zone', 'us-central1-a', '--machine-type', 'g2-standard-4', '--maintenance-policy', 'TERMINATE', '--labels', 'team=ml,tether-managed=true'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr + created.stdout, /Created \[.*\/projects\/tether-test\/zones\/us-central1-a\/instances\/ref-box-1\]/);
    const insert = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/zones/us-central1-a/instances'));
    assert.ok(insert, 'gcloud posted an insert');
    assert.deepEqual(checkInstanceBody(insert.body), [], 'gcloud\'s own insert body passes the fake\'s schema');
    assert.deepEqual((insert.body as { labels: unknown }).labels, { team: 'ml', 'tether-managed': 'true' });

    const listed = await gcloud(['compute', 'instances', 'list', '--format', 'json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { name: string; status: string; zone: string; machineType: string; labels: Record<string, string> }[];
    assert.deepEqual(rows.map((r) => r.name), ['ref-box-1']);
    assert.match(rows[0]!.zone, /zones\/us-central1-a$/);
    assert.match(rows[0]!.machineType, /machineTypes\/g2-standard-4$/);
    assert.ok(['PROVISIONING', 'STAGING', 'RUNNING'].includes(rows[0]!.status), rows[0]!.status);
    assert.ok(fake.requests.some((r) => r.path.endsWith('/aggregated/instances')), 'list used aggregatedList');

    const filtered = await gcloud(['compute', 'instances', 'list', '--filter', 'labels.team=ml', '--format', 'value(name)'], env);
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.equal(filtered.stdout.trim(), 'ref-box-1');

    const stopped = await gcloud(['compute', 'instances', 'stop', 'ref-box-1', '--zone', 'us-central1-a'], env);
    assert.equal(stopped.code, 0, stopped.stderr);
    const after = await gcloud(['compute', 'instances', 'describe', 'ref-box-1', '--zone', 'us-central1-a', '--format', 'value(status)'], env);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), 'TERMINATED', 'gcloud stop waits for its operation: the instance is TERMINATED (stopped)');

    const deleted = await gcloud(['compute', 'instances', 'delete', 'ref-box-1', '--zone', 'us-central1-a'], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    const empty = await gcloud(['compute', 'instances', 'list', '--format', 'value(name)'], env);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout.trim(), '');
    const gone = await gcloud(['compute', 'instances', 'describe', 'ref-box-1', '--zone', 'us-central1-a'], env);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /was not found/);

    assert.ok(fake.requests.every((r) => r.authorization === `Bearer ${fake.apiKey}`), 'every request carried the token');
    assert.deepEqual(fake.refusals, []);
  });

  it('what the real API refuses, gcloud hears refused in Google\'s words: a bad name, a GPU type without TERMINATE, a wrong token, an unknown zone', async () => {
    const badName = await gcloud(['compute', 'instances', 'create', 'Bad_Name', '--zone', 'us-central1-a'], env);
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /name|regex|pattern/i);
    const gpu = await gcloud(['compute', 'instances', 'create', 'gpu-1', '--zone', 'us-central1-a', '--machine-type', 'a2-highgpu-1g'], env);
    assert.notEqual(gpu.code, 0);
    assert.match(gpu.stderr, /do not support live migration/);
    assert.equal(fake.instanceCount(), 0);
    const zone = await gcloud(['compute', 'instances', 'list', '--zones', 'mars-north1-a', '--format', 'value(name)'], env);
    assert.match(zone.stderr + zone.stdout, /mars-north1-a.*was not found|not found/i);
    fs.writeFileSync(path.join(dir, 'token'), 'ya29.wrong');
    const denied = await gcloud(['compute', 'instances', 'list'], env);
    assert.match(denied.stderr, /invalid authentication credentials/i);
  });
});

describe('the Compute Engine fake follows compute/v1', function () {
  this.timeout(60_000);
  let fake: FakeGcpComputeServer;
  beforeEach(async () => {
    fake = new FakeGcpComputeServer();
    await fake.start();
  });
  afterEach(async () => {
    await fake?.stop();
  });
  const call = async (method: string, p: string, body?: unknown, token = fake.apiKey) => {
    const res = await fetch(`${fake.url}/projects/${fake.project}${p}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const instance = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    machineType: 'zones/us-central1-a/machineTypes/g2-standard-4',
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/debian-cloud/global/images/family/debian-12' } }],
    networkInterfaces: [{ network: 'global/networks/default' }],
    scheduling: { onHostMaintenance: 'TERMINATE' },
    ...extra,
  });

  it('401 in Google\'s error shape without the right Bearer token', async () => {
    const r = await call('GET', '/aggregated/instances', undefined, 'nope');
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 401);
    assert.equal(r.body.error.status, 'UNAUTHENTICATED');
    assert.equal(r.body.error.errors[0].reason, 'authError');
    assert.equal(typeof r.body.error.errors[0].domain, 'string');
  });

  it('refuses unknown fields, bad enum values, bad names and labels the real API refuses', async () => {
    for (const [body, want] of [
      [instance('a-1', { color: 'blue' }), /unknown field "color"/],
      [instance('a-2', { scheduling: { onHostMaintenance: 'TERMINATE', provisioningModel: 'CHEAP' } }), /provisioningModel: must be one of/],
      [instance('A-3'), /must match pattern/],
      [instance('a-4', { labels: { Team: 'x' } }), /Label key 'Team' violates/],
      [instance('a-5', { labels: { team: 'X Y' } }), /Label value 'X Y' violates/],
      [instance('a-6', { labels: { team: 'x'.repeat(64) } }), /Label value/],
      [instance('a-7', { labels: { '1team': 'x' } }), /Label key '1team'/],
      [instance('a-8', { machineType: 'zones/us-central1-a/machineTypes/no-such-type' }), /does not exist in zone/],
      [instance('a-9', { scheduling: {} }), /do not support live migration/],
      [instance('a-10', { scheduling: { onHostMaintenance: 'TERMINATE', provisioningModel: 'SPOT', automaticRestart: true } }), /cannot be automatically restarted/],
    ] as [unknown, RegExp][]) {
      const r = await call('POST', '/zones/us-central1-a/instances', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.errors[0].reason, 'invalid');
      assert.match(r.body.error.message, want);
    }
    assert.equal(fake.instanceCount(), 0);
    const ok = await call('POST', '/zones/us-central1-a/instances', instance('a-11', { labels: { 'tether-record': '0f9e6a4c-8d2b-4f7e-9c3a-1b2d3e4f5a6b', team_x: '' } }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.kind, 'compute#operation');
  });

  it('operations: zonal, with selfLink, PENDING → RUNNING → DONE over time; errors inside a DONE operation', async () => {
    const r = await call('POST', '/zones/us-central1-a/instances?requestId=0f9e6a4c-8d2b-4f7e-9c3a-1b2d3e4f5a6b', instance('op-1'));
    assert.equal(r.status, 200);
    assert.match(r.body.selfLink, new RegExp(`/compute/v1/projects/${fake.project}/zones/us-central1-a/operations/${r.body.name}$`));
    assert.equal(r.body.status, 'PENDING');
    const seen = new Set<string>();
    for (let i = 0; i < 200 && !seen.has('DONE'); i++) {
      seen.add((await call('GET', `/zones/us-central1-a/operations/${r.body.name}`)).body.status);
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.ok(seen.has('DONE'));
    fake.failNextInsert = { code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: "The zone 'projects/tether-test/zones/us-central1-a' does not have enough resources available to fulfill the request." };
    const f = await call('POST', '/zones/us-central1-a/instances', instance('op-2'));
    assert.equal(f.status, 200, 'the insert itself is accepted');
    await new Promise((res) => setTimeout(res, fake.opMs + 50));
    const done = (await call('GET', `/zones/us-central1-a/operations/${f.body.name}`)).body;
    assert.equal(done.status, 'DONE');
    assert.equal(done.error.errors[0].code, 'ZONE_RESOURCE_POOL_EXHAUSTED');
    assert.equal((await call('GET', '/zones/us-central1-a/instances/op-2')).status, 404);
  });

  it('requestId: the same id answers the first operation and creates nothing more; a malformed or zero id is refused', async () => {
    const rid = '3b1f0c2e-4d5a-4e6f-8a7b-9c0d1e2f3a4b';
    const a = await call('POST', `/zones/us-central1-a/instances?requestId=${rid}`, instance('idem-1'));
    const b = await call('POST', `/zones/us-central1-a/instances?requestId=${rid}`, instance('idem-1'));
    assert.equal(a.body.name, b.body.name);
    assert.equal(fake.instanceCount(), 1);
    const dup = await call('POST', '/zones/us-central1-a/instances', instance('idem-1'));
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.errors[0].reason, 'alreadyExists');
    for (const bad of ['not-a-uuid', '00000000-0000-0000-0000-000000000000']) {
      const r = await call('POST', `/zones/us-central1-a/instances?requestId=${bad}`, instance('idem-2'));
      assert.equal(r.status, 400);
    }
  });

  it('pages with maxResults / nextPageToken, aggregatedList scopes every zone, filter on labels; 404 and unknown parameters in Google\'s shape', async () => {
    for (let i = 0; i < 5; i++) await call('POST', '/zones/us-central1-a/instances', instance(`pg-${i}`, { labels: { k: i % 2 ? 'odd' : 'even' } }));
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await call('GET', `/zones/us-central1-a/instances?maxResults=2${token ? `&pageToken=${token}` : ''}`);
      assert.equal(r.status, 200);
      names.push(...r.body.items.map((x: { name: string }) => x.name));
      token = r.body.nextPageToken;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(names.sort(), ['pg-0', 'pg-1', 'pg-2', 'pg-3', 'pg-4']);
    const agg = await call('GET', `/aggregated/instances?filter=${encodeURIComponent('labels.k = "odd"')}`);
    assert.deepEqual(agg.body.items['zones/us-central1-a'].instances.map((x: { name: string }) => x.name).sort(), ['pg-1', 'pg-3']);
    assert.equal(agg.body.items['zones/europe-west4-a'].warning.code, 'NO_RESULTS_ON_PAGE');
    assert.equal((await call('GET', '/zones/us-central1-a/instances?maxResults=501')).status, 400);
    assert.equal((await call('GET', '/zones/us-central1-a/instances?pageToken=garbage')).status, 400);
    const nf = await call('GET', '/zones/us-central1-a/instances/nope');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.errors[0].reason, 'notFound');
    assert.equal((await call('GET', '/zones/mars-north1-a/instances')).status, 404);
    const unk = await call('GET', '/zones/us-central1-a/instances?bogus=1');
    assert.equal(unk.status, 400);
    assert.deepEqual(parseFilter('(labels.a = "x") AND (name != y)'), [
      { field: 'labels.a', op: '=', value: 'x' },
      { field: 'name', op: '!=', value: 'y' },
    ]);
    assert.equal(parseFilter('labels.a ~ x'), undefined);
  });

  it('429 rateLimitExceeded in Google\'s shape', async () => {
    fake.inject({ kind: 'rate-limit', retryAfterSec: 1 });
    const r = await call('GET', '/aggregated/instances');
    assert.equal(r.status, 429);
    assert.equal(r.body.error.errors[0].reason, 'rateLimitExceeded');
    assert.equal(r.body.error.errors[0].domain, 'usageLimits');
  });
});
