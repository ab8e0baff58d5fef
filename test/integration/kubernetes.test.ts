/**
 * Contract suite of the Kubernetes backend (like the cloud one, test/integration/cloud-rest.test.ts),
 * against the strict API fake (test/fakes/kubeApiServer.ts; kubectl is its referee in
 * kube-fake.test.ts) through the real `@kubernetes/client-node` and a kubeconfig that KUBECONFIG
 * names: launch (intent first), list (managed / elsewhere / unmanaged, Pods with phase, node,
 * restarts, GPUs), logs, stop (Background propagation: the Pods go — a plain delete would have
 * left them), crash at each step of a launch leaving nothing unknown to the ledger, unmanaged
 * Jobs untouched, cost.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { Ledger } from '../../src/core/ledger';
import { ledgerIdentity } from '../../src/core/ledgerIdentity';
import { costReport } from '../../src/fleet/costReport';
import { KubernetesJobs, metaOf } from '../../src/backends/kubernetes/jobs';
import { setPrices } from '../../src/backends/kubernetes/prices';
import type { KubernetesSpec } from '../../src/backends/kubernetes/spec';
import { FakeKubeApiServer, type LoggedRequest } from '../fakes/kubeApiServer';
import { tmpDir, waitFor } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');
const OWNER = { kind: 'cli' as const, pid: process.pid, startTime: 0, host: os.hostname() };
const SPEC: KubernetesSpec = { context: 'gpu-cluster', namespace: 'ml', image: 'pytorch/pytorch:2.4', command: ['sh', '-c', 'echo epoch 1; echo epoch 2; sleep 600'], gpus: 1, resources: { requests: { cpu: '4', memory: '16Gi' } } };
const writes = (reqs: LoggedRequest[], name: string) => reqs.filter((r) => r.method !== 'GET' && r.path.includes(`/${name}`));

describe('Kubernetes backend: contract', function () {
  this.timeout(180_000);
  let f: FakeKubeApiServer;
  let dir: string;
  let kubeconfig: string;
  let ledger: Ledger;
  let k: KubernetesJobs;

  beforeEach(async () => {
    f = new FakeKubeApiServer({ namespaces: ['ml', 'team-b'] });
    await f.start();
    dir = tmpDir('tether-k8s-');
    kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    ledger = new Ledger(path.join(dir, 'state'));
    k = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: kubeconfig } });
  });
  afterEach(async () => {
    await f.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A Job nobody launched through Tether (kubectl apply by a teammate), with its Pod running. */
  const unmanaged = async (name = 'notebook-job', ns = 'ml') => {
    f.seed('jobs', ns, { apiVersion: 'batch/v1', kind: 'Job', metadata: { name }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'nb', image: 'jupyter', resources: { limits: { 'nvidia.com/gpu': '1' } } }] } } } });
    await waitFor(() => f.list('pods', ns).find((p) => p.metadata.labels['job-name'] === name && p.status.phase === 'Running'), 30_000, `${name} running`);
  };

  it('launches a plugin as a Job: the intent is in the ledger before the create, the Job carries the marker, the record its price', async () => {
    await setPrices(ledger.stateDir, 'gpu-cluster', { gpuHour: 2, cpuHour: 0.05, gibHour: 0.01 });
    const seenAtCreate: unknown[] = [];
    f.onRequest = (r) => {
      if (r.method === 'POST' && r.path.endsWith('/jobs')) seenAtCreate.push(structuredClone(ledger.read().resources));
    };
    const rec = await k.start('train', SPEC);
    assert.equal(seenAtCreate.length, 1, 'one create');
    const atCreate = seenAtCreate[0] as Array<{ id: string; state: string; kind: string }>;
    assert.deepEqual(atCreate.map((r) => [r.id, r.kind, r.state]), [[rec.id, 'kubernetes', 'starting']], 'the intent was written before the create');
    const m = metaOf(rec)!;
    const job = f.get('jobs', 'ml', m.jobName)!;
    assert.ok(job, 'the Job exists under the name derived from the record');
    assert.equal(job.metadata.uid, m.uid);
    assert.equal(job.metadata.labels['tether.dev/record'], rec.id);
    assert.equal(job.metadata.labels['tether.dev/ledger'], ledgerIdentity(ledger.stateDir));
    assert.equal(job.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], '1');
    assert.equal(rec.remote!.provider, 'kubernetes');
    assert.equal(rec.remote!.resourceType, '1 GPU, 4 CPU, 16 GiB');
    assert.equal(Math.round(rec.remote!.estimatedCostPerHour! * 1e6) / 1e6, Math.round((2 + 4 * 0.05 + 16 * 0.01) * 1e6) / 1e6);
    assert.ok(!JSON.stringify(ledger.read()).includes(f.token), 'no credential in the ledger');
    const post = f.requests.find((r) => r.method === 'POST')!;
    assert.match(post.search, /fieldValidation=Strict/, 'the server refuses fields it does not know instead of dropping them');
  });

  it('without a price for the cluster the Job is costed at $0 and Tether says so at launch', async () => {
    const lines: string[] = [];
    const kw = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: kubeconfig }, log: (l) => lines.push(l) });
    const rec = await kw.start('train', SPEC);
    assert.equal(rec.remote!.estimatedCostPerHour, undefined);
    assert.equal(metaOf(rec)!.prices, null);
    assert.ok(lines.some((l) => /no price table for context "gpu-cluster": train is costed at \$0 \(set one: tether k8s prices set gpu-cluster/.test(l)), lines.join('\n'));
    assert.equal(costReport(ledger).lines.find((l) => l.ledgerId === rec.id)?.cost ?? 0, 0);
  });

  it('lists what runs in the namespaces: its Jobs with their Pods (phase, node, restarts, GPUs), another ledger’s and unmanaged ones apart', async () => {
    await setPrices(ledger.stateDir, 'gpu-cluster', { gpuHour: 2, cpuHour: 0, gibHour: 0 });
    const rec = await k.start('train', SPEC);
    await unmanaged('teammate-job', 'team-b');
    f.seed('jobs', 'ml', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'other-ledger', labels: { 'tether.dev/record': '00000000-0000-0000-0000-000000000000', 'tether.dev/ledger': 'zzzzzzzz' } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'x' }] } } } });
    await waitFor(async () => (await k.observe()).get(rec.id)?.state === 'running', 30_000, 'running');
    const views = await k.list();
    const mine = views.find((v) => v.recordId === rec.id)!;
    assert.equal(mine.origin, 'this');
    assert.equal(mine.plugin, 'train');
    assert.equal(mine.pods.length, 1);
    const pod = mine.pods[0]!;
    assert.equal(pod.phase, 'Running');
    assert.match(pod.node!, /^gpu-node-/);
    assert.equal(pod.restarts, 0);
    assert.equal(pod.gpus, 1);
    assert.equal(mine.gpus, 1);
    assert.equal(mine.pricePerHour, 2);
    assert.equal(views.find((v) => v.name === 'other-ledger')!.origin, 'elsewhere');
    const team = views.find((v) => v.name === 'teammate-job')!;
    assert.equal(team.origin, undefined, 'unmanaged');
    assert.equal(team.namespace, 'team-b');
    assert.equal(team.pods[0]!.gpus, 1);
    const r = ledger.read().resources.find((x) => x.id === rec.id)!;
    assert.equal(r.state, 'running');
    assert.ok(r.history.some((h) => h.note?.startsWith('cloud:running')));
  });

  it('lists only the namespaces it may read when the user cannot list cluster-wide (namespaced RBAC)', async () => {
    await k.start('train', SPEC);
    await unmanaged('elsewhere-ns', 'team-b');
    const views = await k.list({ namespaces: ['ml'] });
    assert.ok(views.every((v) => v.namespace === 'ml'));
    assert.ok(f.requests.every((r) => r.method !== 'GET' || !/^\/apis\/batch\/v1\/jobs$/.test(r.path)), 'no cluster-wide list was made');
  });

  it('follows the logs of its Pod and reads their tail', async () => {
    const rec = await k.start('train', { ...SPEC, command: ['sh', '-c', 'echo epoch 1; sleep 0.5; echo epoch 2; sleep 0.5; echo done'] });
    await waitFor(() => f.list('pods', 'ml').find((p) => p.status.phase === 'Running' || p.status.phase === 'Succeeded'), 30_000, 'started');
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => (text += d));
    await k.followLogs(rec.id, out);
    await waitFor(() => text.includes('done'), 30_000, 'the whole log, followed');
    assert.equal(text, 'epoch 1\nepoch 2\ndone\n');
    assert.equal(await k.logs(rec.id, { tail: 1 }), 'done\n');
    assert.ok(f.requests.some((r) => r.path.endsWith('/log') && r.search.includes('follow=true')));
  });

  it('stops with propagationPolicy Background and a UID precondition: the Pods are gone; a plain delete would have left them running', async () => {
    const a = await k.start('train', SPEC);
    const b = await k.start('train-2', SPEC);
    await waitFor(() => f.list('pods', 'ml').filter((p) => p.status.phase === 'Running').length === 2, 30_000, 'both running');
    const ma = metaOf(a)!;
    const mb = metaOf(ledger.read().resources.find((r) => r.id === b.id)!)!;
    // What a plain delete does (kubectl delete --cascade=orphan, or any client that sends no propagationPolicy):
    const plain = await fetchDelete(f, `/apis/batch/v1/namespaces/ml/jobs/${mb.jobName}`);
    assert.equal(plain, 200);
    await waitFor(() => !f.get('jobs', 'ml', mb.jobName), 30_000, 'job b gone');
    await new Promise((r) => setTimeout(r, 500));
    const left = f.list('pods', 'ml').filter((p) => p.metadata.labels['tether.dev/record'] === b.id);
    assert.equal(left.length, 1, 'a plain delete left the Pod');
    assert.equal(left[0]!.status.phase, 'Running', 'still running on its GPU');
    // Tether notices it and still bills it…
    await k.observe();
    const rb = ledger.read().resources.find((r) => r.id === b.id)!;
    assert.equal(rb.remote!.status, 'orphaned-pods');
    assert.deepEqual(metaOf(rb)!.orphanedPods, [left[0]!.metadata.name]);
    // …and Tether's stop: Background, precondition on the uid, Pods gone.
    const sa = await k.stop(a.id, { waitMs: 60_000 });
    assert.equal(sa.deletedJob, true);
    assert.deepEqual(sa.remaining, []);
    const del = f.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(`/jobs/${ma.jobName}`));
    assert.deepEqual(del.map((r) => r.body), [{ propagationPolicy: 'Background', preconditions: { uid: ma.uid } }]);
    assert.equal(f.list('pods', 'ml').filter((p) => p.metadata.labels['tether.dev/record'] === a.id).length, 0, 'its Pods are gone');
    const sb = await k.stop(b.id, { waitMs: 60_000 });
    assert.deepEqual(sb.deletedPods, [left[0]!.metadata.name], 'the orphaned Pod is deleted by its marker');
    assert.equal(f.list('pods', 'ml').length, 0);
    const ended = ledger.read().ended;
    assert.deepEqual(ended.map((r) => r.id).sort(), [a.id, b.id].sort());
    assert.ok(ended.every((r) => r.state === 'stopped'));
  });

  it('never deletes a Job of the same name that does not carry the record’s marker', async () => {
    const rec = await k.start('train', SPEC);
    const m = metaOf(rec)!;
    await fetchDelete(f, `/apis/batch/v1/namespaces/ml/jobs/${m.jobName}`, { propagationPolicy: 'Background' });
    await waitFor(() => !f.get('jobs', 'ml', m.jobName) && f.list('pods', 'ml').length === 0, 30_000, 'gone');
    // Someone re-creates a Job under that name, without Tether's marker.
    f.seed('jobs', 'ml', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: m.jobName }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'x' }] } } } });
    const before = f.requests.length;
    await k.stop(rec.id, { waitMs: 500 });
    assert.deepEqual(writes(f.requests.slice(before), m.jobName), [], 'not touched');
    assert.ok(f.get('jobs', 'ml', m.jobName));
  });

  it('an ambiguous create (the Job is made, the answer is a 500) is followed by a read: one Job, no second create', async () => {
    f.injectFault({ method: 'POST', path: /\/jobs$/, kind: 'create-then-fail' });
    const rec = await k.start('train', SPEC);
    assert.equal(f.list('jobs', 'ml').length, 1);
    assert.equal(f.requests.filter((r) => r.method === 'POST').length, 1);
    assert.equal(metaOf(rec)!.uid, f.list('jobs', 'ml')[0]!.metadata.uid);
  });

  it('refuses with a clear error and nothing open in the ledger: credentials the cluster refuses (before the intent), a namespace that does not exist', async () => {
    fs.writeFileSync(kubeconfig, f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml', token: 'expired' }));
    const bad = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: kubeconfig } });
    await assert.rejects(bad.start('train', SPEC), (e: Error & { remedy?: string }) => /401/.test(e.message) && /refused the credentials of context "gpu-cluster"/.test(e.remedy ?? ''));
    assert.equal(ledger.read().resources.length + ledger.read().ended.length, 0, 'no intent for a refused login');
    fs.writeFileSync(kubeconfig, f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    const good = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: kubeconfig } });
    await assert.rejects(good.start('train', { ...SPEC, namespace: 'nope' }), /namespaces "nope" not found/);
    assert.equal(ledger.read().resources.length, 0, 'the intent was closed');
    assert.equal(ledger.read().ended[0]!.state, 'failed');
    assert.equal(f.list('jobs').length, 0);
  });

  it('reads the kubeconfig as kubectl does: KUBECONFIG with merged files (first wins), the context’s namespace, an exec credential plugin', async () => {
    const cfg = JSON.parse(f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    const plugin = path.join(dir, 'cred-plugin.sh');
    fs.writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${f.token}"}}'\n`, { mode: 0o755 });
    const first = path.join(dir, 'first.yaml');
    const second = path.join(dir, 'second.yaml');
    fs.writeFileSync(first, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [{ name: 'laptop', context: { cluster: 'gpu-cluster-cluster', user: 'exec-user', namespace: 'team-b' } }], 'current-context': 'laptop' }));
    fs.writeFileSync(second, JSON.stringify({ ...cfg, users: [{ name: 'exec-user', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } } }], contexts: [...cfg.contexts, { name: 'laptop', context: { cluster: 'x', user: 'y' } }] }));
    const kx = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: [first, second].join(path.delimiter) } });
    const rec = await kx.start('train', { image: 'x', command: ['sh', '-c', 'sleep 600'] });
    const m = metaOf(rec)!;
    assert.equal(m.context, 'laptop', 'the current context of the first file');
    assert.equal(m.namespace, 'team-b', "the first file's definition of the context wins");
    assert.ok(f.get('jobs', 'team-b', m.jobName), 'created with the token the exec plugin printed');
  });

  for (const point of ['k8s-after-intent', 'k8s-after-create', 'k8s-after-record'] as const) {
    it(`a crash ${point.replace('k8s-', '').replace('-', ' ')} leaves nothing unknown to the ledger after reconcile, unmanaged Jobs untouched`, async () => {
      await unmanaged();
      const got = await launchInChild({ TETHER_STATE_DIR: ledger.stateDir, KUBECONFIG: kubeconfig, TETHER_TEST_CRASH_AT: point, K8S_LAUNCH: JSON.stringify({ plugin: 'train', spec: SPEC }) });
      assert.equal(got.signal, 'SIGKILL', `the launch was killed at ${point}: ${got.stderr}`);
      const open = ledger.read().resources;
      assert.equal(open.length, 1, 'the intent is in the ledger');
      const before = f.requests.length;
      const res = await k.reconcile({ graceMs: 0 });
      const ours = f.list('jobs').filter((j) => j.metadata.labels?.['tether.dev/record']);
      if (point === 'k8s-after-intent') {
        assert.deepEqual(res.failedIntents, [open[0]!.id], 'an intent with no Job is closed as failed');
        assert.equal(ours.length, 0);
        assert.equal(ledger.read().resources.length, 0);
      } else {
        assert.equal(ours.length, 1, 'one Job, never a second');
        const rec = ledger.read().resources.find((r) => r.id === open[0]!.id)!;
        assert.equal(metaOf(rec)!.uid, ours[0]!.metadata.uid, 'the record names its Job');
        if (point === 'k8s-after-create') assert.deepEqual(res.completed, [rec.id]);
        else assert.deepEqual(res.completed, []);
      }
      // Nothing unknown: every Job with this ledger's marker has an open record, and every open record a Job.
      const recs = ledger.read().resources;
      for (const j of ours) assert.ok(recs.some((r) => r.id === j.metadata.labels['tether.dev/record']), `${j.metadata.name} is known`);
      for (const r of recs) assert.ok(ours.some((j) => j.metadata.uid === metaOf(r)!.uid), `${r.id} has its Job`);
      assert.deepEqual(res.unmanaged, ['ml/notebook-job']);
      assert.deepEqual(writes(f.requests.slice(before), 'notebook-job'), [], 'the unmanaged Job was not touched');
      assert.equal(f.list('pods', 'ml').find((p) => p.metadata.labels['job-name'] === 'notebook-job')!.status.phase, 'Running');
    });
  }

  it('the periodic observe settles intents too: a Job found by its name completes the record, an intent past the grace is closed', async () => {
    const spec = JSON.stringify({ plugin: 'train', spec: SPEC });
    assert.equal((await launchInChild({ TETHER_STATE_DIR: ledger.stateDir, KUBECONFIG: kubeconfig, TETHER_TEST_CRASH_AT: 'k8s-after-create', K8S_LAUNCH: spec })).signal, 'SIGKILL');
    assert.equal((await launchInChild({ TETHER_STATE_DIR: ledger.stateDir, KUBECONFIG: kubeconfig, TETHER_TEST_CRASH_AT: 'k8s-after-intent', K8S_LAUNCH: spec })).signal, 'SIGKILL');
    const [created, lost] = ledger.read().resources;
    k.intentSettleMs = 0;
    await k.observe();
    assert.ok(metaOf(ledger.read().resources.find((r) => r.id === created!.id)!)!.uid, 'completed from its Job');
    assert.ok(ledger.read().resources.some((r) => r.id === lost!.id), 'kept within the grace period');
    k.intentGraceMs = 0;
    await k.observe();
    assert.equal(ledger.read().ended.find((r) => r.id === lost!.id)?.state, 'failed');
    assert.deepEqual(ledger.read().resources.map((r) => r.id), [created!.id]);
  });

  it('an intent younger than the grace period is left alone (its launch may be in flight)', async () => {
    const got = await launchInChild({ TETHER_STATE_DIR: ledger.stateDir, KUBECONFIG: kubeconfig, TETHER_TEST_CRASH_AT: 'k8s-after-intent', K8S_LAUNCH: JSON.stringify({ plugin: 'train', spec: SPEC }) });
    assert.equal(got.signal, 'SIGKILL');
    const res = await k.reconcile({ graceMs: 10 * 60_000 });
    assert.deepEqual(res.failedIntents, []);
    assert.equal(ledger.read().resources.length, 1);
  });

  it('adopts (flagged) a Job with this ledger’s marker and no record, and leaves another ledger’s alone', async () => {
    const rec = await k.start('train', SPEC);
    // The ledger lost the record (restored from an old backup, say).
    await ledger.update((b) => void b.resources.splice(0, b.resources.length));
    f.seed('jobs', 'ml', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'their-job', labels: { 'tether.dev/record': '11111111-1111-1111-1111-111111111111', 'tether.dev/ledger': 'other123' } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'x' }] } } } });
    const before = f.requests.length;
    const res = await k.reconcile({ graceMs: 0 });
    assert.deepEqual(res.adopted, [rec.id], 'adopted under the record id its marker names');
    assert.deepEqual(res.elsewhere, ['ml/their-job']);
    const adopted = ledger.read().resources.find((r) => r.id === rec.id)!;
    assert.equal(metaOf(adopted)!.adopted, true);
    assert.ok(adopted.history.some((h) => /adopted job .* carries this ledger's marker but had no open record/.test(h.note ?? '')));
    assert.deepEqual(writes(f.requests.slice(before), 'their-job'), []);
    await k.stop(rec.id, { waitMs: 60_000 });
    assert.equal(f.list('pods', 'ml').filter((p) => p.metadata.labels['tether.dev/record'] === rec.id).length, 0);
  });

  it('re-opens a record ended here whose Job still runs (its history kept), so it is seen and billed again', async () => {
    const rec = await k.start('train', SPEC);
    await ledger.end(rec.id, 'stopped', 'closed by hand');
    const res = await k.reconcile({ graceMs: 0 });
    assert.deepEqual(res.adopted, [rec.id]);
    const r = ledger.read().resources.find((x) => x.id === rec.id)!;
    assert.ok(['starting', 'running'].includes(r.state), r.state);
    assert.equal(r.history[0]!.note, 'intent recorded', 'the same record, history kept');
    assert.ok(r.history.some((h) => /re-opened: job .* still runs/.test(h.note ?? '')));
    assert.equal(ledger.read().ended.filter((x) => x.id === rec.id).length, 0, 'no duplicate');
  });

  it('ends the record when the Job completes or fails, at the cluster’s time; the cost report and its price follow the Pod’s run', async () => {
    await setPrices(ledger.stateDir, 'gpu-cluster', { gpuHour: 3600, cpuHour: 0, gibHour: 0 }); // $1 a GPU-second: the arithmetic shows
    const ok = await k.start('short', { ...SPEC, command: ['sh', '-c', 'echo hi; sleep 2'] });
    const bad = await k.start('broken', { ...SPEC, command: ['sh', '-c', 'exit 3'] });
    await waitFor(async () => {
      await k.observe();
      return ledger.read().resources.length === 0;
    }, 60_000, 'both records ended');
    const ended = ledger.read().ended;
    const eok = ended.find((r) => r.id === ok.id)!;
    const ebad = ended.find((r) => r.id === bad.id)!;
    assert.equal(eok.state, 'stopped');
    assert.equal(eok.exit!.code, 0);
    assert.equal(ebad.state, 'failed');
    assert.match(ebad.exit!.message!, /BackoffLimitExceeded/);
    const rep = costReport(ledger);
    const line = rep.lines.find((l) => l.ledgerId === ok.id)!;
    assert.equal(line.provider, 'kubernetes');
    // About 2 s of running at $1/s (seconds precision of the cluster's timestamps: 1..4 s).
    assert.ok(line.cost >= 1 && line.cost <= 6, `cost ${line.cost}`);
  });
});

function fetchDelete(f: FakeKubeApiServer, p: string, body?: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const https = require('node:https') as typeof import('node:https');
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(new URL(p, f.url), { method: 'DELETE', ca: f.caPem, headers: { authorization: `Bearer ${f.token}`, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function launchInChild(env: Record<string, string>): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/k8sLaunch.ts')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('Kubernetes backend: tether k8s (CLI)', function () {
  this.timeout(240_000);
  let f: FakeKubeApiServer;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    f = new FakeKubeApiServer({ namespaces: ['ml'] });
    await f.start();
    dir = tmpDir('tether-k8s-cli-');
    fs.writeFileSync(path.join(dir, 'kubeconfig'), f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    env = { KUBECONFIG: path.join(dir, 'kubeconfig'), TETHER_STATE_DIR: path.join(dir, 'state'), HOME: path.join(dir, 'home') };
  });
  after(async () => {
    await f.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sets a cluster price, lists Tether’s and unmanaged Jobs, shows logs, stops one (Background) and never the unmanaged one unless named', async () => {
    const { runCli } = await import('../helpers/cli');
    const bad = await runCli(['k8s', 'prices', 'set', 'gpu-cluster', '--gpu-hour', 'x', '--cpu-hour', '0', '--gib-hour', '0'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--gpu-hour must be a number of USD >= 0, got "x"/);
    const set = await runCli(['k8s', 'prices', 'set', 'gpu-cluster', '--gpu-hour', '2.5', '--cpu-hour', '0.04', '--gib-hour', '0.005'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.match((await runCli(['k8s', 'prices'], env)).stdout, /gpu-cluster: \$2\.50\/GPU-h, \$0\.0400\/CPU-h, \$0\.0050\/GiB-h/);
    const ledger = new Ledger(env.TETHER_STATE_DIR!);
    const k = new KubernetesJobs({ ledger, owner: OWNER, env: { KUBECONFIG: env.KUBECONFIG! } });
    const rec = await k.start('train', { ...SPEC, command: ['sh', '-c', 'echo step 1; sleep 600'] });
    f.seed('jobs', 'ml', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'notebook' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'nb', image: 'jupyter' }] } } } });
    await waitFor(() => f.list('pods', 'ml').filter((p) => p.status.phase === 'Running').length === 2, 30_000, 'both running');
    const ls = await runCli(['k8s', 'ls'], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /Tether's \(this ledger\): 1\n {2}ml\/tether-\S+-train {2}running {2}record [0-9a-f]{8} {2}\(train\) {2}\$2\.\d+\/h\n {6}pod \S+ {2}Running {2}node gpu-node-\d {2}restarts 0 {2}1 GPU/);
    assert.match(ls.stdout, /Unmanaged \(no Tether label; touched only with stop --unmanaged\): 1\n {2}ml\/notebook/);
    const logs = await runCli(['k8s', 'logs', rec.id.slice(0, 8)], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, 'step 1\n');
    const short = await k.start('short', { ...SPEC, command: ['sh', '-c', 'echo a; sleep 1; echo b'] }); // followed from before its Pod starts
    const followed = await runCli(['k8s', 'logs', short.id.slice(0, 8), '--follow'], env);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(followed.stdout, 'a\nb\n', 'followed to the end of the container');
    await k.stop(short.id);
    const refuse = await runCli(['k8s', 'stop', '--unmanaged', `ml/${metaOf(rec)!.jobName}`], env);
    assert.equal(refuse.code, 2, 'a Tether Job is stopped by its record, not as unmanaged');
    const stop = await runCli(['k8s', 'stop', rec.id.slice(0, 8)], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /^stopped ml\/tether-/);
    assert.equal(f.list('pods', 'ml').filter((p) => p.metadata.labels['tether.dev/record'] === rec.id).length, 0, 'its pods are gone');
    assert.ok(f.get('jobs', 'ml', 'notebook'), 'the unmanaged job is untouched');
    const picked = await runCli(['k8s', 'stop', '--unmanaged', 'ml/notebook'], env);
    assert.equal(picked.code, 0, picked.stderr);
    await waitFor(() => f.list('pods', 'ml').length === 0, 30_000, 'the picked job and its pod gone');
    const dels = f.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/jobs/'));
    assert.ok(dels.every((r) => (r.body as { propagationPolicy?: string }).propagationPolicy === 'Background'), 'every Job delete is Background');
    // Budgets cover clusters: a budget scoped to Kubernetes counts the Job's run.
    const budget = await runCli(['budget', 'set', 'clusters', '--limit', '10', '--period', 'day', '--provider', 'kubernetes'], env);
    assert.equal(budget.code, 0, budget.stderr);
    const blist = JSON.parse((await runCli(['budget', 'list', '--json'], env)).stdout);
    assert.equal(blist[0].provider, 'kubernetes');
    assert.ok(blist[0].spent > 0, `the Job's run is counted (${blist[0].spent})`);
    const rc = await runCli(['k8s', 'reconcile', '--json'], env);
    assert.equal(rc.code, 0, rc.stderr);
    assert.deepEqual(JSON.parse(rc.stdout), { adopted: [], completed: [], failedIntents: [], elsewhere: [], unmanaged: [] });
  });
});

describe('Kubernetes backend: tether start/status/stop of a declared plugin (the engine)', function () {
  this.timeout(240_000);
  let f: FakeKubeApiServer;
  let dir: string;

  before(async () => {
    f = new FakeKubeApiServer({ namespaces: ['ml'] });
    await f.start();
    dir = tmpDir('tether-k8s-engine-');
  });
  after(async () => {
    await f.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts the Job, shows it with its Pods and price in tether status, stops it with its Pods', async () => {
    const { runCli } = await import('../helpers/cli');
    const ws = path.join(dir, 'ws');
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [{ name: 'train', kubernetes: { context: 'gpu-cluster', image: 'pytorch', command: ['sh', '-c', 'echo hi; sleep 600'], gpus: 1 } }] }));
    fs.writeFileSync(path.join(dir, 'kubeconfig'), f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    const env = { KUBECONFIG: path.join(dir, 'kubeconfig'), TETHER_STATE_DIR: path.join(dir, 'state'), HOME: path.join(dir, 'home') };
    const prices = await runCli(['k8s', 'prices', 'set', 'gpu-cluster', '--gpu-hour', '2', '--cpu-hour', '0', '--gib-hour', '0'], env);
    assert.equal(prices.code, 0, prices.stderr);
    const start = await runCli(['start', 'train', '--workspace', ws], env);
    assert.equal(start.code, 0, start.stderr + start.stdout);
    await waitFor(() => f.list('pods', 'ml').find((p) => p.status.phase === 'Running'), 30_000, 'the pod running');
    const st = await waitFor(async () => {
      const r = await runCli(['status', '--json', '--workspace', ws], env);
      const p = (JSON.parse(r.stdout).plugins as Array<{ name: string; kind: string; state: string; parts?: Array<{ description?: string }>; costPerHour?: number }>).find((x) => x.name === 'train');
      return p?.state === 'running' && p.parts?.[0]?.description?.startsWith('Running') ? p : undefined;
    }, 60_000, 'tether status shows it running with its pod');
    assert.equal(st.kind, 'kubernetes');
    assert.match(st.parts![0]!.description!, /gpu-node-\d · 1 GPU/);
    assert.equal(st.costPerHour, 2);
    const stop = await runCli(['stop', 'train', '--workspace', ws], env);
    assert.equal(stop.code, 0, stop.stderr + stop.stdout);
    assert.equal(f.list('pods', 'ml').length, 0, 'its pods are gone');
    assert.equal(f.list('jobs', 'ml').length, 0);
    assert.ok(f.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/jobs/')).every((r) => (r.body as { propagationPolicy?: string }).propagationPolicy === 'Background'));
    // A hard cap (a budget with auto-terminate) refuses the next launch before anything is recorded.
    const cap = await runCli(['budget', 'set', 'gpu-cap', '--limit', '1', '--period', 'day', '--provider', 'kubernetes', '--auto-terminate'], env);
    assert.equal(cap.code, 0, cap.stderr);
    const before = new Ledger(env.TETHER_STATE_DIR).read();
    const refused = await runCli(['start', 'train', '--workspace', ws], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /launching train \(1 GPU on gpu-cluster\) would exceed the hard cap "gpu-cap"/);
    const after = new Ledger(env.TETHER_STATE_DIR).read();
    assert.equal(after.resources.length + after.ended.length, before.resources.length + before.ended.length, 'no intent was written');
    assert.equal(f.list('jobs', 'ml').length, 0);
  });
});

describe('Kubernetes backend: the Backend interface (through the registry)', function () {
  this.timeout(180_000);
  let f: FakeKubeApiServer;
  let dir: string;
  let saved: string | undefined;

  beforeEach(async () => {
    f = new FakeKubeApiServer({ namespaces: ['ml'] });
    await f.start();
    dir = tmpDir('tether-k8s-be-');
    fs.writeFileSync(path.join(dir, 'kubeconfig'), f.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
    saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = path.join(dir, 'kubeconfig'); // the backend reads the kubeconfig as kubectl does
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await f.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a declared "kubernetes" plugin runs on it: start, status with its Pods (phase, node, restarts, GPUs) and price, logs, stop, orphans by marker', async () => {
    const { backendFor } = await import('../../src/backends/registry');
    const { silentLogger } = await import('../../src/core/logger');
    const { parseConfig } = await import('../../src/core/config');
    const spec = parseConfig(JSON.stringify({ plugins: [{ name: 'train', kubernetes: { image: 'pytorch', command: ['sh', '-c', 'echo ready; sleep 600'], gpus: 1, resources: { requests: { cpu: '2', memory: '8Gi' } } } }] }), 'tether.json').plugins[0]!;
    const factory = backendFor(spec);
    assert.equal(factory.kind, 'kubernetes');
    const ledger = new Ledger(path.join(dir, 'state'));
    await setPrices(ledger.stateDir, 'gpu-cluster', { gpuHour: 1.5, cpuHour: 0.1, gibHour: 0.01 });
    const be = factory.create({ workspace: dir, ledger, tracker: {} as never, owner: OWNER, log: silentLogger, service: () => { throw new Error('no shared service needed'); }, liveProcesses: () => undefined });
    const plugin = be.plugin(spec);
    const rec = await plugin.start();
    assert.equal(rec.kind, 'kubernetes');
    assert.equal(plugin.ledgerRecord?.id, rec.id);
    let st = await waitFor(async () => {
      const r = ledger.read().resources.find((x) => x.id === rec.id);
      await be.observe(ledger.read().resources);
      const s = await be.status({ name: 'train', spec, ...(r ? { record: r } : {}), plugin });
      return s.state === 'running' && s.parts?.[0]?.description?.startsWith('Running') ? s : undefined;
    }, 30_000, 'running with its pod');
    assert.equal(st.kind, 'kubernetes');
    assert.equal(st.where, 'gpu-cluster/ml');
    assert.match(st.parts![0]!.description!, /^Running · gpu-node-\d · 1 GPU, 2 CPU, 8 GiB$/);
    assert.equal(Math.round(st.costPerHour! * 1e6) / 1e6, Math.round((1.5 + 0.2 + 0.08) * 1e6) / 1e6);
    assert.deepEqual(st.actions, ['stop', 'kill', 'restart', 'config', 'logs']);
    assert.equal(await be.logs!(ledger.read().resources[0]!, { tail: 10 }), 'ready\n');
    // A Job with this ledger's marker and no active record is shown as an orphan with its own stop.
    const other = await new KubernetesJobs({ ledger, owner: OWNER }).start('lost', { image: 'x', command: ['sh', '-c', 'sleep 600'] });
    await ledger.update((b) => void b.resources.splice(b.resources.findIndex((r) => r.id === other.id), 1));
    const orphans = await be.unrecorded!();
    assert.deepEqual(orphans.map((o) => [o.status.name, o.status.state, o.status.ledgerId]), [['lost', 'orphan', other.id]]);
    const calls = f.requests.length;
    assert.equal((await be.unrecorded!()).length, 1);
    assert.equal(f.requests.length, calls, 'the next poll reuses the look (no cluster call per poll)');
    await orphans[0]!.stop({ graceMs: 1000, reason: 'test' });
    await waitFor(() => !f.list('pods', 'ml').some((p) => p.metadata.labels['tether.dev/record'] === other.id), 30_000, 'the orphan gone');
    const report = await be.stop(ledger.read().resources.find((r) => r.id === rec.id)!, { graceMs: 1000 });
    assert.equal(report!.terminated, 1);
    assert.equal(f.list('pods', 'ml').length, 0, 'its pods are gone');
    st = await be.status({ name: 'train', spec, lastEnded: ledger.read().ended.find((r) => r.id === rec.id)! });
    assert.equal(st.state, 'stopped');
    assert.deepEqual(st.actions, ['start', 'config']);
  });
});
