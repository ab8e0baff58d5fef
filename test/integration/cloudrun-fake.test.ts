// The strict run/v2 fake refuses what the published API refuses (spec tests of the fake), and the
// Cloud Run client keeps to the API's semantics against it: Operations (an error inside a done
// Operation is an error), cancel, paging, etags, tasks, an execution ending on its own.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { CloudRunProvider, jobIdFor } from '../../src/backends/cloud/cloudrun/cloudrun';
import { CloudInstancePlugin } from '../../src/backends/cloud/cloudPlugin';
import { CloudApiError } from '../../src/backends/cloud/provider';
import { Ledger } from '../../src/core/ledger';
import { FakeCloudRunServer } from '../fakes/cloudRunFake';
import { check } from '../fakes/cloudRunSpec';
import { tmpDir, waitFor } from '../helpers/tmp';

const IMAGE = 'us-docker.pkg.dev/tether-test/jobs/train:1';
const WAIT = 60_000;

describe('Cloud Run run/v2 fake and client', function () {
  this.timeout(180_000);
  let fake: FakeCloudRunServer;
  let p: CloudRunProvider;
  const base = () => `${fake.url}/v2/projects/tether-test/locations/us-central1`;
  const raw = async (method: string, path: string, body?: unknown, auth = `Bearer ${fake.apiKey}`) => {
    const r = await fetch(path.startsWith('http') ? path : `${base()}${path}`, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  const job = (limits: Record<string, string> = { cpu: '2', memory: '8Gi' }, extra: Record<string, unknown> = {}) => ({ labels: { 'tether-id': 'abcdef12' }, template: { taskCount: 1, template: { containers: [{ image: IMAGE, resources: { limits } }], ...extra } } });
  const provider = (o: Partial<ConstructorParameters<typeof CloudRunProvider>[0]> = {}) =>
    new CloudRunProvider({ project: 'tether-test', region: 'us-central1', token: async () => fake.apiKey, baseUrl: fake.url, defaultImage: IMAGE, retries: 2, backoffMs: 20, operationPollMs: 20, ...o });

  beforeEach(async () => {
    fake = new FakeCloudRunServer({ bootMs: 150, terminateMs: 300, maxPageSize: 2 });
    await fake.start();
    p = provider();
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('refuses what run/v2 refuses: unknown fields, missing required fields, bad job ids, labels, limits and GPU settings; auth and project', async () => {
    const expect400 = async (jobId: string, body: unknown, re: RegExp) => {
      const r = await raw('POST', `/jobs?jobId=${jobId}`, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, re);
    };
    await expect400('ok-job', { ...job(), color: 'blue' }, /Unknown name "color" at 'job': Cannot find field/);
    await expect400('ok-job', { template: { template: { containers: [{ resources: {} }] } } }, /containers\[0\]\.image: field is required/);
    await expect400('ok-job', { template: { taskCount: '1', template: { containers: [{ image: IMAGE }] } } }, /task_?[cC]ount|taskCount/);
    await expect400('Bad_Job', job(), /Job name must use only lowercase/);
    await expect400(`a${'b'.repeat(63)}`, job(), /cannot be longer than 63/);
    await expect400('ends-with-dash-', job(), /cannot begin or end with a dash/);
    await expect400('ok-job', { ...job(), labels: { Owner: 'me' } }, /label key "Owner"/);
    await expect400('ok-job', { ...job(), labels: { owner: 'Me' } }, /label value "Me"/);
    await expect400('ok-job', { ...job(), labels: { owner: 'x'.repeat(64) } }, /label value/);
    await expect400('ok-job', { ...job(), labels: { 'run.googleapis.com/foo': 'x' } }, /system labels/);
    await expect400('ok-job', job({ cpu: '3', memory: '4Gi' }), /the only supported values are '1', '2', '4' and '8'/);
    await expect400('ok-job', job({ cpu: '1', memory: '16Gi' }), /outside/);
    await expect400('ok-job', job({ cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' }), /needs node_selector.accelerator 'nvidia-l4'/);
    await expect400('ok-job', job({ cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '1' }, { nodeSelector: { accelerator: 'nvidia-l4' } }), /at least 4 CPU and 16Gi/);
    await expect400('ok-job', job({ cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '2' }, { nodeSelector: { accelerator: 'nvidia-l4' } }), /only supported value is '1'/);
    await expect400('ok-job', job({ cpu: '4', memory: '16Gi', 'ephemeral-storage': '1Gi' }), /unsupported resource "ephemeral-storage"/);
    await expect400('ok-job', job({ cpu: '4', memory: '16Gi' }, { nodeSelector: {} }), /node_selector\.accelerator: field is required|nodeSelector\.accelerator: field is required/);
    const eu = await raw('POST', `${fake.url}/v2/projects/tether-test/locations/us-east1/jobs?jobId=ok-job`, job({ cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' }, { nodeSelector: { accelerator: 'nvidia-l4' } }));
    assert.equal(eu.status, 400);
    assert.match(eu.body.error.message, /not available to jobs in us-east1/);
    assert.equal((await raw('POST', '/jobs', job())).status, 400, 'jobId is required');
    const noAuth = await raw('GET', '/jobs', undefined, `Basic ${Buffer.from('x:y').toString('base64')}`);
    assert.deepEqual([noAuth.status, noAuth.body.error.status], [401, 'UNAUTHENTICATED']);
    const other = await raw('GET', `${fake.url}/v2/projects/other-project/locations/us-central1/jobs`);
    assert.deepEqual([other.status, other.body.error.status], [403, 'PERMISSION_DENIED']);
    // And what it accepts is what the client sends: a GPU job exactly as the provider builds it.
    const ok = await raw('POST', '/jobs?jobId=ok-job', job({ cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' }, { nodeSelector: { accelerator: 'nvidia-l4' }, gpuZonalRedundancyDisabled: true, maxRetries: 0, timeout: '86400s' }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.metadata['@type'], 'type.googleapis.com/google.cloud.run.v2.Job');
    const again = await raw('POST', '/jobs?jobId=ok-job', job());
    assert.deepEqual([again.status, again.body.error.status], [409, 'ALREADY_EXISTS']);
    assert.deepEqual(fake.specViolations, []);
    assert.equal(fake.jobs.size, 1);
  });

  it('the spec excerpt itself: int64 as strings, durations, unknown fields in nested objects', () => {
    assert.deepEqual(check('GoogleCloudRunV2Execution', 'response', { name: 'x', generation: '3', createTime: '2026-12-01T00:00:00Z' }), []);
    assert.notDeepEqual(check('GoogleCloudRunV2Execution', 'response', { generation: 3 }), []);
    assert.notDeepEqual(check('GoogleCloudRunV2TaskTemplate', 'request', { containers: [{ image: 'x' }], timeout: '10m' }), []);
    assert.deepEqual(check('GoogleCloudRunV2TaskTemplate', 'request', { containers: [{ image: 'x' }], timeout: '600s', nodeSelector: { accelerator: 'nvidia-l4' } }), []);
    assert.match(check('GoogleCloudRunV2Job', 'request', { template: { template: { containers: [{ image: 'x', resources: { limitz: {} } }] } } })[0]!, /Unknown name "limitz"/);
  });

  it('launch: the job is created (its Operation waited for), run, and the execution read back with its tasks; an error inside the done create Operation is an error, and the intent ends failed', async () => {
    const id = randomUUID();
    const inst = await p.launch({ ledgerId: id, name: 'Train Run #1', instanceType: '2vcpu-8gib' });
    assert.match(inst.id, /^us-central1\/tether-[0-9a-f]{8}-train-run-1\/tether-[0-9a-f]{8}-train-run-1-[a-z0-9]{5}$/);
    assert.equal(inst.status, 'provisioning');
    assert.equal(inst.metadata.image, IMAGE);
    const opGets = fake.requests.filter((r) => r.method === 'GET' && /\/operations\//.test(r.path));
    assert.ok(opGets.length >= 1, 'the create Operation was polled until done');
    const up = await waitFor(async () => {
      const d = await p.describe(inst.id);
      return d?.status === 'running' ? d : undefined;
    }, WAIT, 'running');
    assert.deepEqual((up.metadata.tasks as Array<{ index: number; state: string }>).map((t) => [t.index, t.state]), [[0, 'Running']]);

    // The image does not exist: the create Operation is done with an error. Nothing runs.
    fake.missingImages.add('us-docker.pkg.dev/tether-test/jobs/gone:1');
    const state = tmpDir('tether-cloudrun-');
    try {
      const ledger = new Ledger(state);
      const plugin = new CloudInstancePlugin({ provider: p, ledger, name: 'gone' });
      const before = fake.instanceCount();
      const err = await plugin.provisionRemoteResource({ instanceType: '2vcpu-8gib', image: 'us-docker.pkg.dev/tether-test/jobs/gone:1', name: 'gone' }).then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError, String(err));
      assert.match(err.message, /creating job tether-[0-9a-f]{8}[0-9a-z]{8}-gone: Image 'us-docker.pkg.dev\/tether-test\/jobs\/gone:1' not found\./);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(fake.instanceCount(), before, 'nothing was run');
      const b = ledger.read();
      assert.equal(b.resources.length, 0);
      assert.equal(b.ended[0]?.state, 'failed');
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
    assert.deepEqual(fake.specViolations, []);
  });

  it('a job create that fails after creating (or hangs) is retried safely: the second create answers 409, the job is checked for the marker and run once; a same-named job without the marker is refused', async () => {
    fake.inject({ method: 'POST', path: /\/jobs$/, kind: 'create-then-fail' });
    const id = randomUUID();
    const inst = await p.launch({ ledgerId: id, name: 'retry', instanceType: '1vcpu-2gib' });
    const creates = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'));
    assert.equal(creates.length, 2, 'the create was sent again');
    assert.equal(fake.jobs.size, 1);
    assert.equal(fake.instanceCount(), 1, 'run once');
    assert.equal(inst.id.split('/')[1], jobIdFor({ ledgerId: id, name: 'retry' }));
    // Someone else's job under the very id a launch would use: never run as Tether's.
    const other = randomUUID();
    const taken = jobIdFor({ ledgerId: other, name: 'taken' });
    assert.equal((await raw('POST', `/jobs?jobId=${taken}`, { template: { template: { containers: [{ image: IMAGE }] } } })).status, 200);
    await assert.rejects(p.launch({ ledgerId: other, name: 'taken', instanceType: '1vcpu-2gib' }), (e: unknown) => e instanceof CloudApiError && /exists without this launch's marker/.test(e.message));
    assert.equal(fake.instanceCount(), 1);
    assert.deepEqual(fake.specViolations, []);
  });

  it(':run answers an Operation that stays open while the execution runs and is done when it ends (exit 3: Failed, with the exit code of its task)', async () => {
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'fails', instanceType: '1vcpu-2gib' });
    const runCall = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith(':run'))!;
    assert.ok(runCall);
    const opName = [...fake.operations.values()].find((o) => o.kind === 'run')!.name;
    const op = async () => (await raw('GET', `${fake.url}/v2/${opName}`)).body;
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', WAIT, 'running');
    assert.equal((await op()).done, false, 'not done while the execution runs');
    fake.finish(inst.id, 3);
    const d = await p.describe(inst.id);
    assert.equal(d?.status, 'terminated');
    assert.equal(d?.rawStatus, 'Failed');
    assert.deepEqual((d?.metadata.tasks as Array<{ state: string; exitCode?: number }>).map((t) => [t.state, t.exitCode]), [['Failed', 3]]);
    const done = await op();
    assert.equal(done.done, true);
    assert.equal(done.response['@type'], 'type.googleapis.com/google.cloud.run.v2.Execution');
    // Terminating an execution that has ended is fine (the cancel is refused: FAILED_PRECONDITION), and deletes Tether's job.
    await p.terminate(inst.id);
    assert.equal(fake.jobs.size, 0);
    assert.equal(await p.describe(inst.id), undefined);
    assert.deepEqual(fake.specViolations, []);
  });

  it('cancel: CANCELLING (terminating) → CANCELLED with completionTime (terminated); a second cancel is FAILED_PRECONDITION; a job with a running execution is deleted only with force', async () => {
    const inst = await p.launch({ ledgerId: randomUUID(), name: 'c', instanceType: '1vcpu-2gib' });
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', WAIT, 'running');
    const [, jobId, execId] = inst.id.split('/');
    const del = await raw('DELETE', `/jobs/${jobId}`);
    assert.deepEqual([del.status, del.body.error.status], [400, 'FAILED_PRECONDITION']);
    const cancel = await raw('POST', `/jobs/${jobId}/executions/${execId}:cancel`, {});
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.done, false);
    const mid = await p.describe(inst.id);
    assert.deepEqual([mid?.status, mid?.rawStatus], ['terminating', 'Cancelling']);
    const end = await waitFor(async () => {
      const d = await p.describe(inst.id);
      return d?.status === 'terminated' ? d : undefined;
    }, WAIT, 'cancelled');
    assert.equal(end.rawStatus, 'Cancelled');
    assert.ok(end.metadata.completionTime);
    const again = await raw('POST', `/jobs/${jobId}/executions/${execId}:cancel`, {});
    assert.deepEqual([again.status, again.body.error.status], [400, 'FAILED_PRECONDITION']);
    const unknownField = await raw('POST', `/jobs/${jobId}/executions/${execId}:cancel`, { force: true });
    assert.equal(unknownField.status, 400);
    // A running one goes with force.
    const other = await p.launch({ ledgerId: randomUUID(), name: 'f', instanceType: '1vcpu-2gib' });
    const forced = await raw('DELETE', `/jobs/${other.id.split('/')[1]}?force=true`);
    assert.equal(forced.status, 200);
    assert.equal(await p.describe(other.id), undefined, 'its executions went with it');
    assert.deepEqual(fake.specViolations, []);
  });

  it('terminate returns once the cancel is under way when its Operation outlasts the wait (terminating, then terminated); the job is kept', async () => {
    const slow = new FakeCloudRunServer({ bootMs: 50, terminateMs: 3000 });
    await slow.start();
    try {
      const q = new CloudRunProvider({ project: 'tether-test', region: 'us-central1', token: async () => slow.apiKey, baseUrl: slow.url, defaultImage: IMAGE, operationPollMs: 20, operationTimeoutMs: 300 });
      const inst = await q.launch({ ledgerId: randomUUID(), name: 'slow', instanceType: '1vcpu-2gib' });
      await waitFor(async () => (await q.describe(inst.id))?.status === 'running', WAIT, 'running');
      await q.terminate(inst.id);
      assert.equal((await q.describe(inst.id))?.status, 'terminating');
      assert.equal(slow.jobs.size, 1, 'kept while it is being cancelled');
      await waitFor(async () => (await q.describe(inst.id))?.status === 'terminated', WAIT, 'terminated');
      assert.deepEqual(slow.specViolations, []);
    } finally {
      await slow.stop();
    }
  });

  it('lists every watched region; a launch goes only to a watched one', async () => {
    const q = provider({ regions: ['europe-west1'] });
    const here = await q.launch({ ledgerId: randomUUID(), name: 'here', instanceType: '1vcpu-2gib' });
    const there = await q.launch({ ledgerId: randomUUID(), name: 'there', instanceType: 'l4-4vcpu-16gib', region: 'europe-west1' });
    assert.equal(there.region, 'europe-west1');
    assert.deepEqual((await q.listInstances()).map((i) => i.id).sort(), [here.id, there.id].sort());
    await assert.rejects(p.launch({ ledgerId: randomUUID(), name: 'x', instanceType: '1vcpu-2gib', region: 'europe-west1' }), (e: unknown) => e instanceof CloudApiError && e.code === 'tether/region-not-listed');
    assert.equal(fake.instanceCount(), 2);
  });

  it('etag: a stale etag is 409 ABORTED (delete, run); the current one works', async () => {
    await raw('POST', '/jobs?jobId=e-job', job());
    const j1 = (await raw('GET', '/jobs/e-job')).body;
    await raw('POST', '/jobs/e-job:run', {});
    const j2 = (await raw('GET', '/jobs/e-job')).body;
    assert.notEqual(j1.etag, j2.etag, 'the etag changes with the job');
    const staleRun = await raw('POST', '/jobs/e-job:run', { etag: j1.etag });
    assert.deepEqual([staleRun.status, staleRun.body.error.status], [409, 'ABORTED']);
    const staleDel = await raw('DELETE', `/jobs/e-job?force=true&etag=${encodeURIComponent(j1.etag)}`);
    assert.deepEqual([staleDel.status, staleDel.body.error.status], [409, 'ABORTED']);
    assert.equal((await raw('DELETE', `/jobs/e-job?force=true&etag=${encodeURIComponent(j2.etag)}`)).status, 200);
  });

  it('paging: every execution across jobs is listed through pageToken / nextPageToken (pages of 2); a token from another list is refused', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await p.launch({ ledgerId: randomUUID(), name: `p${i}`, instanceType: '1vcpu-2gib' })).id);
    ids.push(fake.addForeign('foreign-a'), fake.addForeign('foreign-b'));
    const n = fake.requests.length;
    const listed = (await p.listInstances()).map((i) => i.id).sort();
    assert.deepEqual(listed, ids.sort());
    const pages = fake.requests.slice(n).filter((r) => r.method === 'GET' && r.path.endsWith('/jobs/-/executions'));
    assert.ok(pages.length === 3 && pages.slice(1).every((r) => /pageToken=/.test(r.search ?? '')), `paged: ${pages.map((r) => r.search).join(' ')}`);
    const first = await raw('GET', '/jobs/-/executions?pageSize=2');
    assert.equal(first.body.executions.length, 2);
    const wrong = await raw('GET', `/jobs/${ids[0]!.split('/')[1]}/executions?pageToken=${first.body.nextPageToken}`);
    assert.deepEqual([wrong.status, wrong.body.error.message], [400, 'Invalid page token.']);
    assert.deepEqual(fake.specViolations, []);
  });

  it('the token is asked for on every call: a refreshed token is used at once, and never shown', async () => {
    let token = fake.apiKey;
    const q = provider({ token: async () => token });
    await q.listInstances();
    token = 'ya29.expired-secret-token-1';
    const err = await q.listInstances().then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CloudApiError && err.status === 401);
    assert.doesNotMatch(`${err.message} ${err.remedy}`, /expired-secret-token-1/);
    token = fake.apiKey;
    await q.listInstances();
    const failing = provider({ token: async () => Promise.reject(new Error('no ADC')) });
    await assert.rejects(failing.listInstances(), (e: unknown) => e instanceof CloudApiError && e.status === 401 && /TETHER_GCP_ACCESS_TOKEN/.test(e.remedy));
  });

  it('job ids: deterministic from the marker, valid for Cloud Run whatever the name', () => {
    const id = '0123abcd-0000-4000-8000-000000000000';
    assert.equal(jobIdFor({ ledgerId: id, name: 'job' }), 'tether-0123abcd-job');
    assert.equal(jobIdFor({ ledgerId: id, name: 'My Training_Run!!', owner: 'ab12cd34' }), 'tether-0123abcdab12cd34-my-training-run');
    assert.equal(jobIdFor({ ledgerId: id, name: 'x'.repeat(100), owner: 'ab12cd34' }).length, 63);
    assert.equal(jobIdFor({ ledgerId: id, name: '---', owner: 'ab12cd34' }), 'tether-0123abcdab12cd34-job');
    for (const n of ['a', 'Ünïcode ✓', '-lead', 'trail-', 'UPPER']) assert.match(jobIdFor({ ledgerId: id, name: n, owner: 'ab12cd34' }), /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/);
  });
});
