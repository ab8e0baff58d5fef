/**
 * The Kubernetes backend's pure parts: the OpenAPI fixture the fake validates with, the config
 * rules (clear errors before any ledger intent), the Job's name and body, the price table and the
 * cost rule, and that a Kubernetes record is kept like any record that bears money.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { parseConfig } from '../../src/core/config';
import { Ledger, salvageLedger, type LedgerResource } from '../../src/core/ledger';
import { PluginExecutionMode } from '../../src/core/protocols';
import { billingRuleOf } from '../../src/fleet/apiCost';
import { costReport } from '../../src/fleet/costReport';
import { budgetSpend } from '../../src/fleet/spend';
import { KubernetesJobs, KUBERNETES_PROVIDER, remoteOf, type KubeRecordMeta } from '../../src/backends/kubernetes/jobs';
import { KUBERNETES_BILLING, podPricePerHour, readPrices, setPrices } from '../../src/backends/kubernetes/prices';
import { jobBody, jobNameFor, requestsOf } from '../../src/backends/kubernetes/spec';
import { tmpDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');

describe('kubernetes: the OpenAPI fixture', () => {
  it('the property catalogue agrees with the verbatim excerpt of kubernetes/kubernetes on every schema the excerpt holds (plus what v1.34 added)', () => {
    const cat = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/kubernetes/models-v1.34.json'), 'utf8')).schemas;
    const ex = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/kubernetes/batch-v1-openapi-excerpt.json'), 'utf8'));
    assert.equal(ex.source.repo, 'kubernetes/kubernetes');
    assert.match(ex.source.commit, /^[0-9a-f]{40}$/);
    const names: Record<string, string> = {
      'io.k8s.api.batch.v1.Job': 'V1Job',
      'io.k8s.api.batch.v1.JobSpec': 'V1JobSpec',
      'io.k8s.api.batch.v1.JobStatus': 'V1JobStatus',
      'io.k8s.api.batch.v1.JobCondition': 'V1JobCondition',
      'io.k8s.api.core.v1.Container': 'V1Container',
      'io.k8s.api.core.v1.ContainerPort': 'V1ContainerPort',
      'io.k8s.api.core.v1.EnvVar': 'V1EnvVar',
    };
    for (const [k8sName, s] of Object.entries(ex.components.schemas) as Array<[string, { properties: Record<string, unknown>; required?: string[] }]>) {
      const mine = cat[names[k8sName]!];
      assert.ok(mine, `${k8sName} is in the catalogue`);
      // The excerpt's commit predates v1.34, which added Container.restartPolicyRules (KEP-5307).
      const added = k8sName === 'io.k8s.api.core.v1.Container' ? ['restartPolicyRules'] : [];
      assert.deepEqual(Object.keys(mine.properties).sort(), [...Object.keys(s.properties), ...added].sort(), `${k8sName}: same properties`);
      assert.deepEqual([...mine.required].sort(), [...(s.required ?? [])].sort(), `${k8sName}: same required`);
    }
  });
});

describe('kubernetes: configuration', () => {
  const cfg = (k: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ plugins: [{ name: 'train', ...extra, kubernetes: k }] }, null, 1);
  const problems = (text: string) => {
    try {
      parseConfig(text, 'tether.json');
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };

  it('accepts a declaration like the issue’s and keeps it on the plugin', () => {
    const c = parseConfig(cfg({ context: 'gpu-cluster', namespace: 'ml', image: 'pytorch/pytorch:2.4', command: ['python', 'train.py'], gpus: 1, resources: { requests: { cpu: '4', memory: '16Gi' } } }), 'x');
    assert.equal(c.plugins[0]!.kubernetes!.gpus, 1);
    assert.equal(c.plugins[0]!.command, '');
  });

  it('refuses bad input with a clear error naming the field', () => {
    assert.deepEqual(problems(cfg({ namespace: 'ml' })), ['/plugins/0/kubernetes: missing required property "image"']);
    assert.match(problems(cfg({ image: 'x', namespace: 'ML' })).join(), /kubernetes\/namespace: "ML" is not a namespace name/);
    assert.match(problems(cfg({ image: 'x', gpus: 0.5 })).join(), /kubernetes\/gpus: must be a whole number of GPUs >= 0/);
    assert.match(problems(cfg({ image: 'x', resources: { requests: { memory: '16 GB' } } })).join(), /resources\/requests\/memory: "16 GB" is not a Kubernetes quantity/);
    assert.match(problems(cfg({ image: 'x', resources: { requests: { cpu: '8' }, limits: { cpu: '4' } } })).join(), /the request 8 is above the limit 4/);
    assert.match(problems(cfg({ image: 'x', labels: { 'tether.dev/record': 'x' } })).join(), /Tether's own marker label/);
    assert.match(problems(cfg({ image: 'x', labels: { team: 'not ok' } })).join(), /label value/);
    assert.match(problems(cfg({ image: 'x', gpus: 1, resources: { limits: { 'nvidia.com/gpu': '1' } } })).join(), /give the GPUs once/);
    assert.match(problems(cfg({ image: 'x' }, { command: 'python' })).join(), /"command" cannot be combined with "kubernetes"/);
    assert.match(problems(cfg({ image: 'x' }, { docker: { image: 'y' } })).join(), /"docker" cannot be combined with "kubernetes"/);
    assert.match(problems(cfg({ image: 'x', bogus: 1 })).join(), /unknown property "bogus"/);
    assert.match(problems(cfg({ image: 'x', command: 'python train.py', env: { A: 1 } })).join(), /kubernetes\/command: must be an array of strings.*kubernetes\/env: must be an object of strings/);
    assert.match(problems(cfg({ image: 'x', resources: { requests: { cpu: 4 } } })).join(), /kubernetes\/resources: must be .* with quantities as strings/);
  });

  it('a bad declaration or an unknown context is refused before any ledger intent is written', async () => {
    const dir = tmpDir();
    const ledger = new Ledger(path.join(dir, 'state'));
    fs.writeFileSync(path.join(dir, 'kubeconfig'), JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'real', context: { cluster: 'c', user: 'u' } }], 'current-context': 'real' }));
    const k = new KubernetesJobs({ ledger, owner: { kind: 'cli', pid: process.pid, startTime: 0, host: 'h' }, env: { KUBECONFIG: path.join(dir, 'kubeconfig') } });
    await assert.rejects(k.start('train', { image: 'x', gpus: -1 }), /kubernetes\/gpus: must be a whole number of GPUs/);
    await assert.rejects(k.start('train', { image: 'x', context: 'gpu-cluster' }), /the kubeconfig has no context "gpu-cluster" \(it has: real\)/);
    await assert.rejects(new KubernetesJobs({ ledger, owner: { kind: 'cli', pid: 1, startTime: 0, host: 'h' }, env: { KUBECONFIG: path.join(dir, 'none') } }).start('train', { image: 'x' }), /no kubeconfig found/);
    const refusing = new KubernetesJobs({ ledger, owner: { kind: 'cli', pid: 1, startTime: 0, host: 'h' }, env: { KUBECONFIG: path.join(dir, 'kubeconfig') }, refuse: ({ what }) => new Error(`over budget: ${what}`) });
    await assert.rejects(refusing.start('train', { image: 'x', gpus: 2 }), /over budget: train \(2 GPU on real\)/);
    const body = ledger.read();
    assert.equal(body.resources.length + body.ended.length, 0, 'nothing was recorded');
  });
});

describe('kubernetes: the Job Tether creates', () => {
  it('is named from its record and ledger (deterministic, a DNS-1123 label that leaves room for Pod suffixes)', () => {
    const id = '6F8EBDA3-7416-475b-9bd6-c128d47ed959';
    const a = jobNameFor(id, 'b1071d3f', 'Train_Model.v2');
    assert.equal(a, 'tether-6f8ebda3b1071d3f-train-model-v2');
    assert.equal(jobNameFor(id, 'b1071d3f', 'Train_Model.v2'), a, 'the same record gives the same name (a retry finds its Job)');
    const long = jobNameFor(id, 'b1071d3f', 'x'.repeat(64));
    assert.ok(long.length <= 52 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(long), long);
  });

  it('carries the marker labels on the Job and its Pods, asks for GPUs as limit = request, never restarts a failed run silently', () => {
    const b = jobBody({ name: 'n', namespace: 'ml', plugin: 'train', recordId: 'rec', ledger: 'led', spec: { image: 'img', gpus: 2, resources: { requests: { cpu: '4' } } } }) as any;
    for (const labels of [b.metadata.labels, b.spec.template.metadata.labels]) {
      assert.deepEqual(labels, { 'app.kubernetes.io/managed-by': 'tether', 'tether.dev/record': 'rec', 'tether.dev/ledger': 'led' });
    }
    const c = b.spec.template.spec.containers[0];
    assert.deepEqual(c.resources, { requests: { cpu: '4', 'nvidia.com/gpu': '2' }, limits: { 'nvidia.com/gpu': '2' } });
    assert.equal(b.spec.backoffLimit, 0);
    assert.equal(b.spec.template.spec.restartPolicy, 'Never');
  });
});

describe('kubernetes: prices and cost', () => {
  it('keeps a per-context price table in the state folder and prices a Pod from its requests', async () => {
    const dir = tmpDir();
    assert.deepEqual(readPrices(dir), {});
    await setPrices(dir, 'gpu-cluster', { gpuHour: 2.5, cpuHour: 0.04, gibHour: 0.005 });
    const t = readPrices(dir)['gpu-cluster']!;
    assert.equal(t.gpuHour, 2.5);
    assert.equal(fs.statSync(path.join(dir, 'kubernetes-prices.json')).mode & 0o777, 0o600);
    const r = requestsOf({ image: 'x', gpus: 1, resources: { requests: { cpu: '4', memory: '16Gi' } } });
    assert.deepEqual(r, { gpus: 1, cpus: 4, memoryGiB: 16 });
    assert.equal(Math.round(podPricePerHour(r, t) * 1e6) / 1e6, 2.5 + 4 * 0.04 + 16 * 0.005);
    assert.deepEqual(requestsOf({ image: 'x', resources: { limits: { cpu: '500m', memory: '512Mi' } } }), { gpus: 0, cpus: 0.5, memoryGiB: 0.5 }, 'a limit stands for a missing request');
    await assert.rejects(setPrices(dir, 'gpu-cluster', { gpuHour: -1, cpuHour: 0, gibHour: 0 }), /gpuHour .* must be a number of USD/);
    await setPrices(dir, 'gpu-cluster', undefined);
    assert.deepEqual(readPrices(dir), {});
  });

  const record = (over: Partial<LedgerResource> = {}): LedgerResource => {
    const meta: KubeRecordMeta = { context: 'gpu-cluster', namespace: 'ml', jobName: 'tether-x', server: 'https://k', ledger: 'abcdefgh', uid: 'u1', gpuResource: 'nvidia.com/gpu', requests: { gpus: 1, cpus: 4, memoryGiB: 16 }, prices: { gpuHour: 2, cpuHour: 0, gibHour: 0 }, parallelism: 1 };
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    return {
      id: 'k8s-rec-1',
      kind: 'kubernetes',
      plugin: 'train',
      executionMode: PluginExecutionMode.KUBERNETES,
      state: 'stopped',
      createdAt: new Date(t0).toISOString(),
      updatedAt: new Date(t0 + 3_600_000).toISOString(),
      processes: [],
      remote: remoteOf(meta, 'terminated', 2),
      history: [
        { at: new Date(t0).toISOString(), state: 'starting', note: 'intent recorded' },
        { at: new Date(t0 + 600_000).toISOString(), state: 'running', note: 'cloud:running 1 pod(s)' },
        { at: new Date(t0 + 2_400_000).toISOString(), state: 'stopped', note: 'cloud:terminated job succeeded' },
      ],
      ...over,
    };
  };

  it('counts a Kubernetes record in the cost report and budgets: per second while its Pods run, at the recorded price', async () => {
    const dir = tmpDir();
    const ledger = new Ledger(dir);
    await ledger.update((b) => void b.ended.push(record()));
    const r = ledger.read().ended[0]!;
    assert.equal(billingRuleOf(r), KUBERNETES_BILLING);
    const rep = costReport(ledger, undefined, Date.parse('2026-12-01T12:00:00Z'));
    assert.equal(rep.lines.length, 1);
    assert.equal(rep.lines[0]!.provider, KUBERNETES_PROVIDER);
    assert.equal(rep.lines[0]!.instanceType, '1 GPU, 4 CPU, 16 GiB');
    assert.equal(Math.round(rep.lines[0]!.cost * 1e6) / 1e6, 1, '30 min running at $2/h; pending time is free');
    const [spent] = budgetSpend(ledger, [{ name: 'k8s', limitUsd: 10, period: 'day', provider: 'kubernetes', autoTerminate: false } as never], Date.parse('2026-12-01T12:00:00Z'));
    assert.equal(Math.round(spent! * 1e6) / 1e6, 1);
  });

  it('ledger repair carries Kubernetes records over like other records that bill (open, with or without remote; ended)', () => {
    const open = record({ id: 'open-k8s', state: 'running' });
    const bare = record({ id: 'bare-k8s', state: 'starting' });
    delete bare.remote;
    const body = { seq: 1, updatedAt: 'x', resources: [open, bare], ended: [record({ id: 'ended-k8s' })] };
    const got = salvageLedger(JSON.stringify({ format: 'tether-ledger/1', sha256: 'mangled', body }), undefined, '/x/ledger.json')!;
    assert.deepEqual(got.resources.map((r) => r.id).sort(), ['bare-k8s', 'open-k8s']);
    assert.deepEqual(got.ended.map((r) => r.id), ['ended-k8s']);
  });
});

describe('kubernetes: loaded on first use', function () {
  this.timeout(120_000);
  it('registering the backend, making it for a workspace and asking its actions loads neither its implementation nor @kubernetes/client-node', () => {
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const dir = tmpDir('tether-k8s-lazy-');
    const probe = path.join(dir, 'probe.ts');
    fs.writeFileSync(
      probe,
      `(async () => {
        const { backendFor } = require('${root}/src/backends/registry');
        const { Ledger } = require('${root}/src/core/ledger');
        const spec = { name: 'train', command: '', args: [], cwd: '.', env: {}, kubernetes: { image: 'x' } };
        const f = backendFor(spec);
        const be = f.create({ workspace: '${dir}', ledger: new Ledger('${dir}/state'), tracker: {}, owner: { kind: 'cli', pid: 1, startTime: 0, host: 'h' }, log: { info() {}, warn() {}, debug() {}, trace() {}, error() {} }, service() {}, liveProcesses() {} });
        be.plugin(spec);
        be.actions({ declared: true, state: 'stopped', processes: [], ledgerId: null });
        await be.observe([]);
        const orphans = await be.unrecorded();
        const loaded = Object.keys(require.cache).filter((p) => /backends\\/kubernetes\\/(kubernetesBackend|jobs|client)\\.ts$|@kubernetes\\/client-node/.test(p));
        process.stdout.write(JSON.stringify({ kind: f.kind, orphans: orphans.length, loaded }));
      })().catch((e) => { console.error(e); process.exit(1); });`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', probe], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { kind: 'kubernetes', orphans: 0, loaded: [] });
  });
});
