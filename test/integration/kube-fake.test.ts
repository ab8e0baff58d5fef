/**
 * The Kubernetes API fake (test/fakes/kubeApiServer.ts) against its referees: the machine's real
 * `kubectl` (get/apply/delete/logs with a kubeconfig pointing at the fake, token auth, KUBECONFIG,
 * a private HOME so the user's ~/.kube is never read or written), and the protocol rules the
 * backend relies on, checked with raw HTTPS requests.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { FakeKubeApiServer } from '../fakes/kubeApiServer';
import { tmpDir, waitFor } from '../helpers/tmp';
import { skipBecause } from '../helpers/skip';

interface Answer {
  status: number;
  body: any;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

function call(f: FakeKubeApiServer, method: string, p: string, body?: unknown, o: { token?: string | null; contentType?: string } = {}): Promise<Answer> {
  const u = new URL(p, f.url);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      {
        method,
        ca: f.caPem,
        headers: {
          ...(o.token === null ? {} : { authorization: `Bearer ${o.token ?? f.token}` }),
          ...(data ? { 'content-type': o.contentType ?? 'application/json', 'content-length': data.length } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** Reads a watch stream until `until` says so (or `ms` passes); returns the events. */
function watch(f: FakeKubeApiServer, p: string, until: (evs: any[]) => boolean, ms = 30_000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const evs: any[] = [];
    let buf = '';
    const req = https.request(new URL(p, f.url), { ca: f.caPem, headers: { authorization: `Bearer ${f.token}` } }, (res) => {
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          evs.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
        if (until(evs)) {
          req.destroy();
          resolve(evs);
        }
      });
      res.on('end', () => resolve(evs));
    });
    req.on('error', (e) => (evs.length ? resolve(evs) : reject(e)));
    setTimeout(() => {
      req.destroy();
      resolve(evs);
    }, ms);
    req.end();
  });
}

const job = (name: string, extra: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name, labels: { team: 'ml' } },
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'echo hi; sleep 60'] }], ...podSpec } }, ...extra },
});

describe('Kubernetes API fake: protocol', function () {
  this.timeout(120_000);
  let f: FakeKubeApiServer;
  beforeEach(async () => {
    f = new FakeKubeApiServer({ namespaces: ['ml'] });
    await f.start();
  });
  afterEach(async () => f.stop());

  it('answers 401 with a kind: Status without a valid bearer token, and 403 on writes for a read-only token', async () => {
    const none = await call(f, 'GET', '/api/v1/namespaces/ml/pods', undefined, { token: null });
    assert.equal(none.status, 401);
    assert.deepEqual(none.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    assert.equal((await call(f, 'GET', '/api', undefined, { token: 'wrong' })).status, 401);
    assert.equal((await call(f, 'GET', '/api/v1/namespaces/ml/pods', undefined, { token: f.readOnlyToken })).status, 200);
    const w = await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', job('x'), { token: f.readOnlyToken });
    assert.equal(w.status, 403);
    assert.equal(w.body.reason, 'Forbidden');
    assert.match(w.body.message, /cannot create resource "jobs" in API group "batch" in the namespace "ml"/);
  });

  it('creates with generateName, refuses a second object of the same name (409 AlreadyExists) and answers 404 NotFound', async () => {
    const body = job('');
    (body.metadata as any) = { generateName: 'train-' };
    const a = await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', body);
    assert.equal(a.status, 201);
    assert.match(a.body.metadata.name, /^train-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.ok(a.body.metadata.uid && a.body.metadata.resourceVersion && a.body.metadata.creationTimestamp);
    assert.equal(a.body.spec.backoffLimit, 6, 'defaults applied');
    assert.equal(a.body.spec.template.metadata.labels['job-name'], a.body.metadata.name);
    const again = await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', job(a.body.metadata.name));
    assert.equal(again.status, 409);
    assert.equal(again.body.reason, 'AlreadyExists');
    const missing = await call(f, 'GET', '/apis/batch/v1/namespaces/ml/jobs/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.reason, 'NotFound');
    assert.equal(missing.body.message, 'jobs.batch "nope" not found');
    const noNs = await call(f, 'POST', '/apis/batch/v1/namespaces/ghost/jobs', job('x'));
    assert.equal(noNs.status, 404);
    assert.equal(noNs.body.message, 'namespaces "ghost" not found');
  });

  it('validates Job specs like the API server: 422 Invalid with causes; 400 for wrong types and (Strict) unknown fields', async () => {
    const bad = async (body: unknown, q = '') => call(f, 'POST', `/apis/batch/v1/namespaces/ml/jobs${q}`, body);
    const always = await bad(job('a', {}, { restartPolicy: 'Always' }));
    assert.equal(always.status, 422);
    assert.equal(always.body.reason, 'Invalid');
    assert.deepEqual(always.body.details.causes.map((c: any) => c.field), ['spec.template.spec.restartPolicy']);
    const name = await bad(job('Bad_Name'));
    assert.equal(name.status, 422);
    assert.equal(name.body.details.causes[0].field, 'metadata.name');
    const long = await bad(job('a'.repeat(64)));
    assert.equal(long.status, 422, 'a Job name is a label value: at most 63');
    const label = await bad({ ...job('l'), metadata: { name: 'l', labels: { 'bad key!': 'x' } } });
    assert.equal(label.status, 422);
    const noImage = await bad(job('i', {}, { containers: [{ name: 'main' }] }));
    assert.equal(noImage.status, 422);
    assert.equal(noImage.body.details.causes[0].field, 'spec.template.spec.containers[0].image');
    const noTemplate = await bad({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 't' }, spec: {} });
    assert.equal(noTemplate.status, 422);
    const gpu = await bad(job('g', {}, { containers: [{ name: 'main', image: 'x', resources: { requests: { 'nvidia.com/gpu': '1' } } }] }));
    assert.equal(gpu.status, 422, 'an extended resource needs a limit equal to its request');
    const quantity = await bad(job('q', {}, { containers: [{ name: 'main', image: 'x', resources: { limits: { cpu: 'four' } } }] }));
    assert.equal(quantity.status, 422);
    const type = await bad({ ...job('t'), spec: { ...job('t').spec, backoffLimit: 'six' } });
    assert.equal(type.status, 400);
    assert.match(type.body.message, /cannot unmarshal string/);
    const unknown = await bad({ ...job('u'), spec: { ...job('u').spec, bogus: 1 } }, '?fieldValidation=Strict');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /strict decoding error: unknown field "spec.bogus"/);
    const warned = await bad({ ...job('w'), spec: { ...job('w').spec, bogus: 1 } });
    assert.equal(warned.status, 201, 'the default (Warn) accepts and warns');
    assert.match(String(warned.headers.warning), /unknown field \\"spec.bogus\\"/);
    assert.equal(warned.body.spec.bogus, undefined, 'and drops the field');
  });

  it('runs a Job: Pods with ownerReferences and job labels go Pending → Running → Succeeded, the Job gets Complete, logs are served', async () => {
    const b = job('ok', {}, { containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'echo one; echo two; sleep 0.3; exit 0'] }] });
    const created = (await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', b)).body;
    const pod = await waitFor(() => f.list('pods', 'ml')[0], 30_000, 'a pod');
    assert.equal(pod.metadata.ownerReferences[0].uid, created.metadata.uid);
    assert.equal(pod.metadata.ownerReferences[0].controller, true);
    assert.equal(pod.metadata.labels['controller-uid'], created.metadata.uid);
    assert.equal(pod.metadata.labels['job-name'], 'ok');
    assert.deepEqual(pod.metadata.finalizers, ['batch.kubernetes.io/job-tracking']);
    const done = await waitFor(() => f.get('jobs', 'ml', 'ok')?.status?.conditions?.find((c: any) => c.type === 'Complete'), 30_000, 'Complete');
    assert.equal(done.status, 'True');
    const p = f.list('pods', 'ml')[0]!;
    assert.equal(p.status.phase, 'Succeeded');
    assert.ok(p.spec.nodeName && p.status.startTime);
    const log = await call(f, 'GET', `/api/v1/namespaces/ml/pods/${p.metadata.name}/log`);
    assert.equal(log.text, 'one\ntwo\n');
    const failing = job('bad', { backoffLimit: 1 }, { containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'exit 3'] }] });
    await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', failing);
    const failed = await waitFor(() => f.get('jobs', 'ml', 'bad')?.status?.conditions?.find((c: any) => c.type === 'Failed'), 30_000, 'Failed');
    assert.equal(failed.reason, 'BackoffLimitExceeded');
    assert.equal(f.get('jobs', 'ml', 'bad')!.status.failed, 2, 'backoffLimit 1: two pods failed');
    const retried = job('retry', { backoffLimit: 2 }, { restartPolicy: 'OnFailure', containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'exit 1'] }] });
    await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', retried);
    await waitFor(() => f.list('pods', 'ml').find((x) => x.metadata.labels['job-name'] === 'retry' && x.status.containerStatuses?.[0]?.restartCount >= 1), 30_000, 'a restart');
  });

  it('lists with label and field selectors and pages with limit/continue; an expired continue token is 410 Expired', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) {
      await call(f, 'POST', '/api/v1/namespaces/ml/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: n, labels: { tier: n < 'c' ? 'x' : 'y' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    }
    const sel = await call(f, 'GET', '/api/v1/namespaces/ml/pods?labelSelector=tier%3Dx');
    assert.deepEqual(sel.body.items.map((p: any) => p.metadata.name), ['a', 'b']);
    const setSel = await call(f, 'GET', '/api/v1/namespaces/ml/pods?labelSelector=tier%20in%20(y),tier!%3Dz');
    assert.deepEqual(setSel.body.items.map((p: any) => p.metadata.name), ['c', 'd', 'e']);
    const field = await call(f, 'GET', '/api/v1/namespaces/ml/pods?fieldSelector=metadata.name%3Dd');
    assert.deepEqual(field.body.items.map((p: any) => p.metadata.name), ['d']);
    assert.equal((await call(f, 'GET', '/api/v1/namespaces/ml/pods?fieldSelector=spec.bogus%3Dx')).status, 400);
    const p1 = await call(f, 'GET', '/api/v1/namespaces/ml/pods?limit=2');
    assert.deepEqual(p1.body.items.map((p: any) => p.metadata.name), ['a', 'b']);
    assert.equal(p1.body.metadata.remainingItemCount, 3);
    const p2 = await call(f, 'GET', `/api/v1/namespaces/ml/pods?limit=2&continue=${encodeURIComponent(p1.body.metadata.continue)}`);
    assert.deepEqual(p2.body.items.map((p: any) => p.metadata.name), ['c', 'd']);
    const rv = Number(p1.body.metadata.resourceVersion);
    assert.ok(rv > 1000);
    await call(f, 'POST', '/api/v1/namespaces/ml/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'f' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    f.compact(); // etcd compacted past the list's revision
    const expired = await call(f, 'GET', `/api/v1/namespaces/ml/pods?limit=2&continue=${encodeURIComponent(p2.body.metadata.continue)}`);
    assert.equal(expired.status, 410);
    assert.equal(expired.body.reason, 'Expired');
  });

  it('streams watch events from a resourceVersion, and an expired one gets an ERROR event with a 410 Expired Status', async () => {
    const list = await call(f, 'GET', '/api/v1/namespaces/ml/pods');
    const rv = list.body.metadata.resourceVersion;
    const got = watch(f, `/api/v1/namespaces/ml/pods?watch=1&resourceVersion=${rv}&labelSelector=app%3Dw`, (evs) => evs.some((e) => e.type === 'DELETED'));
    await call(f, 'POST', '/api/v1/namespaces/ml/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'w1', labels: { app: 'w' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    await call(f, 'POST', '/api/v1/namespaces/ml/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'other' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    await waitFor(() => f.get('pods', 'ml', 'w1')?.status?.phase === 'Running', 30_000, 'w1 running');
    await call(f, 'DELETE', '/api/v1/namespaces/ml/pods/w1');
    const evs = await got;
    assert.equal(evs[0].type, 'ADDED');
    assert.equal(evs[0].object.kind, 'Pod');
    assert.ok(evs.every((e) => e.object.metadata.name === 'w1'), 'the selector filters the stream');
    const rvs = evs.map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b), 'resourceVersion increases');
    assert.ok(evs.some((e) => e.type === 'MODIFIED' && e.object.metadata.deletionTimestamp), 'a graceful delete shows deletionTimestamp first');
    f.compact();
    const old = await watch(f, `/api/v1/namespaces/ml/pods?watch=1&resourceVersion=${rv}`, (e) => e.length > 0, 10_000);
    assert.equal(old[0].type, 'ERROR');
    assert.equal(old[0].object.code, 410);
    assert.equal(old[0].object.reason, 'Expired');
  });

  it('keeps an object with finalizers (deletionTimestamp set) until they are removed; refuses an update from a stale resourceVersion (409 Conflict)', async () => {
    await call(f, 'POST', '/api/v1/namespaces/ml/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'held', finalizers: ['example.com/hold'] }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    const del = await call(f, 'DELETE', '/api/v1/namespaces/ml/pods/held');
    assert.equal(del.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    const held = f.get('pods', 'ml', 'held')!;
    assert.ok(held.metadata.deletionTimestamp, 'still there, being deleted');
    const stale = await call(f, 'PUT', '/api/v1/namespaces/ml/pods/held', { ...held, metadata: { ...held.metadata, resourceVersion: '1', finalizers: [] } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    const patched = await call(f, 'PATCH', '/api/v1/namespaces/ml/pods/held', { metadata: { finalizers: null } }, { contentType: 'application/merge-patch+json' });
    assert.equal(patched.status, 200);
    assert.equal(f.get('pods', 'ml', 'held'), undefined, 'gone once the last finalizer is removed');
  });

  it('a Job deleted without propagationPolicy orphans its Pods (batch/v1 default); Background deletes them; Foreground waits for them; a wrong UID precondition is 409', async () => {
    const start = async (name: string) => {
      const j = (await call(f, 'POST', '/apis/batch/v1/namespaces/ml/jobs', job(name))).body;
      await waitFor(() => f.list('pods', 'ml').find((p) => p.metadata.labels['job-name'] === name && p.status.phase === 'Running'), 30_000, `${name} running`);
      return j;
    };
    const podsOf = (name: string) => f.list('pods', 'ml').filter((p) => p.metadata.labels['job-name'] === name);
    const plain = await start('plain');
    const pre = await call(f, 'DELETE', '/apis/batch/v1/namespaces/ml/jobs/plain', { preconditions: { uid: 'not-its-uid' } });
    assert.equal(pre.status, 409);
    assert.ok(f.get('jobs', 'ml', 'plain'));
    assert.equal((await call(f, 'DELETE', '/apis/batch/v1/namespaces/ml/jobs/plain')).status, 200);
    await waitFor(() => !f.get('jobs', 'ml', 'plain'), 30_000, 'the job gone');
    await new Promise((r) => setTimeout(r, 500));
    const left = podsOf('plain');
    assert.equal(left.length, 1, 'its pod is still there');
    assert.equal(left[0]!.status.phase, 'Running', 'and still running (holding its GPU)');
    assert.equal(left[0]!.metadata.ownerReferences, undefined, 'orphaned: no owner');
    void plain;
    await start('bg');
    await call(f, 'DELETE', '/apis/batch/v1/namespaces/ml/jobs/bg', { propagationPolicy: 'Background' });
    assert.equal(f.get('jobs', 'ml', 'bg'), undefined, 'Background: the job goes at once');
    await waitFor(() => podsOf('bg').length === 0, 30_000, 'its pods gone');
    await start('fg');
    const fg = await call(f, 'DELETE', '/apis/batch/v1/namespaces/ml/jobs/fg?propagationPolicy=Foreground');
    assert.deepEqual(fg.body.metadata.finalizers, ['foregroundDeletion']);
    assert.ok(fg.body.metadata.deletionTimestamp);
    await waitFor(() => !f.get('jobs', 'ml', 'fg'), 30_000, 'the job gone after its pods');
    assert.equal(podsOf('fg').length, 0);
  });
});

describe('Kubernetes API fake: kubectl is its referee', function () {
  this.timeout(180_000);
  let f: FakeKubeApiServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const kubectl = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile('kubectl', args, { env, timeout: 60_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: String(out), err: String(err) }));
    });

  before(async function () {
    const which = await new Promise<boolean>((r) => execFile('kubectl', ['version', '--client'], (e) => r(!e)));
    if (!which) skipBecause(this, 'kubectl is not installed on this machine');
    f = new FakeKubeApiServer({ namespaces: ['ml'] });
    await f.start();
    dir = tmpDir('tether-kubectl-');
    fs.writeFileSync(path.join(dir, 'kubeconfig'), f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    // Never the user's ~/.kube: KUBECONFIG names the fake, HOME (kubectl's discovery cache) is private.
    env = { PATH: process.env.PATH, HOME: path.join(dir, 'home'), KUBECONFIG: path.join(dir, 'kubeconfig'), KUBECACHEDIR: path.join(dir, 'cache') };
  });
  after(async () => {
    await f?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kubectl apply creates a Job, get shows it and its Pod, logs reads it, delete removes it with its Pods', async () => {
    fs.writeFileSync(
      path.join(dir, 'job.yaml'),
      ['apiVersion: batch/v1', 'kind: Job', 'metadata:', '  name: hello', 'spec:', '  template:', '    spec:', '      restartPolicy: Never', '      containers:', '      - name: main', '        image: busybox:1.36', '        command: ["sh", "-c", "echo hello from the fake; sleep 120"]', '        resources:', '          limits: {nvidia.com/gpu: "1"}', ''].join('\n'),
    );
    const apply = await kubectl('apply', '-f', path.join(dir, 'job.yaml'));
    assert.equal(apply.code, 0, apply.err);
    assert.match(apply.out, /job.batch\/hello created/);
    assert.ok(f.requests.some((r) => r.method === 'POST' && r.search.includes('fieldValidation=Strict')), 'kubectl left validation to the server');
    await waitFor(() => f.list('pods', 'ml').find((p) => p.status.phase === 'Running'), 30_000, 'the pod running');
    const jobs = await kubectl('get', 'jobs');
    assert.equal(jobs.code, 0, jobs.err);
    assert.match(jobs.out, /^NAME\s+STATUS\s+COMPLETIONS/m);
    assert.match(jobs.out, /^hello\s+Running\s+0\/1/m);
    const pods = await kubectl('get', 'pods', '-l', 'job-name=hello', '-o', 'json');
    assert.equal(pods.code, 0, pods.err);
    const items = JSON.parse(pods.out).items;
    assert.equal(items.length, 1);
    assert.equal(items[0].spec.containers[0].resources.requests['nvidia.com/gpu'], '1', 'the request defaulted from the limit');
    const logs = await kubectl('logs', 'job/hello');
    assert.equal(logs.code, 0, logs.err);
    assert.equal(logs.out, 'hello from the fake\n');
    const wide = await kubectl('get', 'pods', '-o', 'wide');
    assert.match(wide.out, /gpu-node-\d/);
    const del = await kubectl('delete', 'job', 'hello');
    assert.equal(del.code, 0, del.err);
    assert.match(del.out, /job.batch "hello" deleted/);
    assert.deepEqual(f.requests.filter((r) => r.method === 'DELETE').map((r) => r.body), [{ propagationPolicy: 'Background' }], "kubectl's default cascade is Background");
    await waitFor(() => f.list('pods', 'ml').length === 0, 30_000, 'the pods gone with it');
    const none = await kubectl('get', 'jobs,pods');
    assert.match(none.out + none.err, /No resources found/);
  });

  it('kubectl reports the API errors the fake answers (401 with a bad token, 422 for a bad spec, 404)', async () => {
    const bad = path.join(dir, 'bad-kubeconfig');
    fs.writeFileSync(bad, f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml', token: 'stolen' }));
    const unauth = await new Promise<{ code: number; err: string }>((resolve) => execFile('kubectl', ['get', 'pods'], { env: { ...env, KUBECONFIG: bad }, timeout: 60_000 }, (e, _o, err) => resolve({ code: e ? 1 : 0, err: String(err) })));
    assert.notEqual(unauth.code, 0);
    assert.match(unauth.err, /provide credentials|Unauthorized/);
    fs.writeFileSync(path.join(dir, 'always.yaml'), ['apiVersion: batch/v1', 'kind: Job', 'metadata:', '  name: always', 'spec:', '  template:', '    spec:', '      restartPolicy: Always', '      containers:', '      - name: main', '        image: busybox', ''].join('\n'));
    const invalid = await kubectl('apply', '-f', path.join(dir, 'always.yaml'));
    assert.notEqual(invalid.code, 0);
    assert.match(invalid.err, /is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always"/);
    const missing = await kubectl('get', 'job', 'nope');
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /jobs.batch "nope" not found/);
  });
});
