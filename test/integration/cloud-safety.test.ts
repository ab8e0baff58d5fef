/**
 * Issue 13, items 3, 7, 13 and 16, against the providers' fakes (test/fakes: the real APIs cannot
 * be called from tests; AWS is moto behind its fault proxy):
 * - 3: two state folders (two ledgers) share one provider account: ledger B never adopts,
 *   terminates, budgets or autostops ledger A's instance; it shows it as "Tether-launched
 *   elsewhere". Old-format markers still match a record of this ledger, else count as elsewhere.
 * - 7: an ambiguous name is refused (with the candidates' ids); a duplicate name is refused at
 *   launch; the default name gets a unique suffix.
 * - 13: after terminate the plugin reports `terminated`; EC2 records the right kind.
 * - 16: a create that fails ambiguously while the list lags it by longer than the old ~3 s
 *   window launches exactly one instance.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Ledger } from '../../src/core/ledger';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { CloudManager } from '../../src/fleet/cloud';
import { AwsEc2Provider } from '../../src/backends/cloud/aws/aws';
import { CloudInstancePlugin } from '../../src/backends/cloud/cloudPlugin';
import { LambdaCloudProvider } from '../../src/backends/cloud/lambda/lambda';
import * as marker from '../../src/backends/cloud/marker';
import { markedName, type CloudProvider } from '../../src/backends/cloud/provider';
import { reconcileCloud } from '../../src/backends/cloud/reconcile';
import { RunPodProvider } from '../../src/backends/cloud/runpod/runpod';
import { VAST_MIN_GAPS_MS, VastAiProvider } from '../../src/backends/cloud/vastai/vastai';
import type { StatusReport } from '../../src/workspace/engine';
import { AwsEc2MotoFake, MOTO_AMI } from '../fakes/awsEc2Fake';
import type { FakeOptions, ProviderFake } from '../fakes/fakeBase';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { FakeRunPodServer } from '../fakes/runpodServer';
import { FakeVastServer } from '../fakes/vastaiServer';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const silent = { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const owner = { kind: 'cli' as const, pid: process.pid, startTime: 0, host: 'test' };
const release = (p: CloudProvider) => (p as { dispose?: () => void }).dispose?.();

interface Target {
  label: string;
  fake: (o?: FakeOptions) => ProviderFake;
  /** A client with the product's default retry/backoff unless told otherwise. */
  provider: (f: ProviderFake, o?: { retries?: number; backoffMs?: number }) => CloudProvider;
  instanceType: string;
  region?: string;
  sshKeyName?: string;
  createPath: RegExp;
  createMethod: string;
  /** Whether the fake can lag its reads (the node:http fakes; moto cannot). */
  lags: boolean;
}

const TARGETS: Target[] = [
  {
    label: 'Lambda Cloud',
    fake: (o) => new FakeLambdaServer(o),
    provider: (f, o = {}) => new LambdaCloudProvider({ apiKey: f.apiKey, baseUrl: f.url, timeoutMs: 5000, ...o }),
    instanceType: 'gpu_1x_a10',
    region: 'us-east-1',
    sshKeyName: 'laptop',
    createPath: /^\/api\/v1\/instance-operations\/launch$/,
    createMethod: 'POST',
    lags: true,
  },
  {
    label: 'RunPod',
    fake: (o) => new FakeRunPodServer(o),
    provider: (f, o = {}) => new RunPodProvider({ apiKey: f.apiKey, baseUrl: `${f.url}/v2`, timeoutMs: 5000, ...o }),
    instanceType: 'NVIDIA RTX A6000',
    createPath: /^\/v2\/pods$/,
    createMethod: 'POST',
    lags: true,
  },
  {
    label: 'Vast.ai',
    fake: (o) => new FakeVastServer({ gapScale: 0.01, ...o }),
    provider: (f, o = {}) =>
      new VastAiProvider({ apiKey: f.apiKey, baseUrl: `${f.url}/api/v0`, timeoutMs: 5000, minGapMs: Object.fromEntries(Object.entries(VAST_MIN_GAPS_MS).map(([m, g]) => [m, g * 0.02])), ...o }),
    instanceType: '4101',
    createPath: /^\/api\/v0\/asks\/\d+\/$/,
    createMethod: 'PUT',
    lags: true,
  },
  {
    label: 'AWS EC2',
    fake: () => new AwsEc2MotoFake(),
    provider: (f) =>
      new AwsEc2Provider({ region: 'us-east-1', endpoint: f.url, credentials: { accessKeyId: f.apiKey, secretAccessKey: 'testing' }, defaultImageId: MOTO_AMI, requestTimeoutMs: 5000, maxAttempts: 3 }),
    instanceType: 'g4dn.xlarge',
    region: 'us-east-1',
    createPath: /^\/RunInstances$/,
    createMethod: 'POST',
    lags: false,
  },
];

for (const t of TARGETS) {
  describe(`cloud safety: ${t.label}`, function () {
    this.timeout(90_000);
    let fake: ProviderFake;
    let made: CloudProvider[] = [];
    let dirs: string[] = [];
    const provider = (o?: { retries?: number; backoffMs?: number }) => {
      const p = t.provider(fake, o);
      made.push(p);
      return p;
    };
    const ledger = () => {
      const d = tmpDir('tether-safety-');
      dirs.push(d);
      return new Ledger(d);
    };
    const launchReq = (ledgerId: string, name = 'job') => ({ ledgerId, name, instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}) });
    after(async () => {
      if (t.label === 'AWS EC2') await AwsEc2MotoFake.stopMoto();
    });
    afterEach(async () => {
      made.forEach(release);
      made = [];
      await fake?.stop();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
      dirs = [];
    });

    it('item 3: ledger B never adopts, terminates, budgets or autostops ledger A\'s instance (shown as Tether-launched elsewhere); old-format markers match only this ledger\'s records', async () => {
      fake = t.fake();
      await fake.start();
      const p = provider({ retries: 2, backoffMs: 50 });
      const a = ledger();
      const b = ledger();
      const pa = new CloudInstancePlugin({ provider: p, ledger: a, name: 'a-job' });
      const info = await pa.provisionRemoteResource({ instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}), name: 'a-job' });
      const aId = info.instanceId!;
      // B: one intent of its own whose launch left only an old-format marker, and a stray old-format marker.
      const bIntent = await b.addIntent({ kind: 'cloud', plugin: 'b-lost', executionMode: PluginExecutionMode.CLOUD_GPU, remote: remoteResourceInfo({ provider: p.type }) });
      const bLost = await fake.addForeign(markedName(bIntent.id, 'b-lost'));
      const stray = await fake.addForeign(markedName(randomUUID(), 'stray'));

      const r = await reconcileCloud(p, b);
      assert.deepEqual(r.adopted.map((i) => i.id), [bLost], 'only B\'s own (old-format) marker is adopted');
      const elsewhere = (r as { elsewhere?: Array<{ id: string }> }).elsewhere?.map((i) => i.id).sort();
      assert.deepEqual(elsewhere, [aId, stray].sort());
      const body = b.read();
      assert.equal(body.resources.find((x) => x.id === bIntent.id)?.remote?.instanceId, bLost);
      assert.ok(!body.resources.some((x) => x.remote?.instanceId === aId || x.remote?.instanceId === stray), 'B recorded neither A\'s instance nor the stray one');

      // B's manager: shown, unmanaged, never terminated by a budget, autostop or a plain terminate.
      const mb = new CloudManager(b, owner, () => [p], silent);
      const st = await mb.status();
      const v = st.instances.find((i) => i.id === aId)!;
      assert.equal(v.managed, false);
      assert.equal(v.ledgerId, null);
      assert.match(v.problem ?? '', /Tether-launched elsewhere/);
      assert.ok(!st.instances.some((i) => i.managed && i.id === aId), 'not one of B\'s managed rows');
      const verdicts = await mb.enforceBudgets(st, [{ name: 'tiny', limitUsd: 0.000001, period: 'day', autoTerminate: true }], 60_000);
      assert.ok(verdicts.every((x) => !x.terminate.includes(aId)));
      const policy = { enabled: true, idleMinutes: 0, gpuUtilBelowPercent: 10, warnMinutes: 0, action: 'terminate' as const };
      for (let i = 0; i < 2; i++) await mb.enforceAutostop(await mb.status(), () => ({ reachable: true, pluginsRunning: 0 }), policy);
      await assert.rejects(mb.terminate(v), /not launched by Tether|elsewhere/);
      const alive = await p.describe(aId);
      assert.ok(alive && alive.status !== 'terminated' && alive.status !== 'terminating', `A's instance is untouched (${alive?.status})`);
      // A still owns it: A's own reconcile neither adopts it twice nor loses it, and A can terminate it.
      const ra = await reconcileCloud(p, a);
      assert.deepEqual(ra.adopted, []);
      assert.equal(await pa.terminateRemoteResource(), true);
    });

    it('item 13: after terminate the plugin reports "terminated" (the protocol\'s word), not "not_provisioned"', async () => {
      fake = t.fake();
      await fake.start();
      const p = provider({ retries: 2, backoffMs: 50 });
      const plugin = new CloudInstancePlugin({ provider: p, ledger: ledger(), name: 'box' });
      assert.equal(await plugin.checkRemoteResourceStatus(), 'not_provisioned');
      await plugin.provisionRemoteResource({ instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}), name: 'box' });
      assert.equal(await plugin.terminateRemoteResource(), true);
      assert.equal(await plugin.checkRemoteResourceStatus(), 'terminated');
    });

    if (t.lags) {
      it('item 16: a create that fails ambiguously while the list lags it by 8 s (old window ~3 s) launches exactly one instance', async () => {
        fake = t.fake({ readLagMs: 8000 });
        await fake.start();
        const p = provider(); // the product's own retry count and backoff
        fake.inject({ method: t.createMethod, path: t.createPath, kind: 'create-then-fail' });
        const id = randomUUID();
        if (t.label === 'Vast.ai') {
          // Vast's trap answers a refusal (410 no_such_ask) although the instance exists. A
          // refusal is never retried, so it cannot launch twice; the marked instance is adopted by
          // the next reconcile once the list shows it (cloud-rest: "reconcile adopts…").
          await p.launch(launchReq(id)).then((inst) => assert.ok(marker.matchesLedgerId(inst, id)), (err: Error) => assert.match(err.message, /no_such_ask/));
        } else {
          const inst = await p.launch(launchReq(id));
          assert.ok(marker.matchesLedgerId(inst, id));
        }
        assert.equal(fake.instanceCount(), 1, 'exactly one instance');
        assert.equal(fake.requests.filter((r) => r.method === t.createMethod && t.createPath.test(r.path)).length, 1, 'one create call');
      });
    }

    if (t.label === 'AWS EC2') {
      it('item 13: EC2 records the kind of machine: cloud_vm without a GPU, cloud_gpu with one (launched, priced by the caller, and adopted)', async () => {
        fake = t.fake();
        await fake.start();
        const p = provider();
        const l = ledger();
        const m = new CloudManager(l, owner, () => [p], silent);
        const cpu = await m.provision('aws', { name: 'cpu-box', instanceType: 't3.micro', pricePerHour: 0.0104, region: 'us-east-1' });
        const gpu = await m.provision('aws', { name: 'gpu-box', instanceType: 'g4dn.xlarge', pricePerHour: 0.526, region: 'us-east-1' });
        const recOf = (id: string | null) => l.read().resources.find((r) => r.id === id);
        assert.equal(recOf(cpu.ledgerId)?.executionMode, PluginExecutionMode.CLOUD_VM);
        assert.equal(recOf(gpu.ledgerId)?.executionMode, PluginExecutionMode.CLOUD_GPU);
        // Launched by this ledger, record lost: adopted with the right kind.
        const self = (marker as unknown as { ledgerIdentity?: (dir: string) => string }).ledgerIdentity?.(l.stateDir);
        const lost = await p.launch({ ...launchReq(randomUUID(), 'lost-cpu'), instanceType: 't3.micro', ...(self ? { owner: self } : {}) } as never);
        await reconcileCloud(p, l);
        const adopted = l.read().resources.find((r) => r.remote?.instanceId === lost.id);
        assert.equal(adopted?.executionMode, PluginExecutionMode.CLOUD_VM);
      });
    }
  });
}

describe('cloud safety through the CLI (fake Lambda Cloud)', function () {
  this.timeout(120_000);
  let fake: FakeLambdaServer;
  let ws: string;
  const dirs: string[] = [];
  const envOf = (stateDir: string) => ({ TETHER_STATE_DIR: stateDir, LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url, TETHER_TEST_SRC: '1' });
  const stateDir = () => {
    const d = tmpDir('tether-safety-cli-');
    dirs.push(d);
    return d;
  };
  const provision = (env: Record<string, string>, ...extra: string[]) =>
    runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--yes', '--json', '--workspace', ws, ...extra], env);
  const status = async (env: Record<string, string>) => JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;

  beforeEach(async () => {
    fake = new FakeLambdaServer({ bootMs: 200, terminateMs: 200 });
    await fake.start();
    ws = workspaceWith({ plugins: [] });
  });
  afterEach(async () => {
    await fake?.stop();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('item 3: two state folders share one account: B shows A\'s instance as Tether-launched elsewhere and `tether terminate` without --unmanaged refuses it', async () => {
    const A = envOf(stateDir());
    const B = envOf(stateDir());
    const launched = await provision(A, '--name', 'trainer');
    assert.equal(launched.code, 0, launched.stderr);
    const id = (JSON.parse(launched.stdout) as { id: string }).id;
    const sb = await status(B);
    const v = sb.cloud.instances.find((i) => i.id === id)!;
    assert.ok(v, 'B lists A\'s instance');
    assert.equal(v.managed, false);
    assert.match(v.problem ?? '', /Tether-launched elsewhere/);
    assert.equal(sb.totals.costPerHour, 0, 'not in B\'s spend');
    const human = await runCli(['status', '--workspace', ws], B);
    assert.match(human.stdout, /Tether-launched elsewhere/);
    const ledgerB = new Ledger(B.TETHER_STATE_DIR).read();
    assert.ok(!ledgerB.resources.some((r) => r.remote?.instanceId === id), 'B never adopted it');
    const refused = await runCli(['terminate', id, '--workspace', ws], B);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /--unmanaged/);
    assert.equal(fake.instances.size, 1);
    assert.notEqual((await runCli(['terminate', 'trainer', '--workspace', ws], B)).code, 0, 'B has no "trainer" of its own');
    const sa = await status(A);
    assert.equal(sa.cloud.instances.find((i) => i.id === id)?.managed, true, 'A still manages it');
    const byA = await runCli(['terminate', 'trainer', '--workspace', ws], A);
    assert.equal(byA.code, 0, byA.stderr);
  });

  it('item 7: a duplicate --name is refused at launch (nothing launched, no intent); the default name gets a unique suffix', async () => {
    const env = envOf(stateDir());
    const first = await provision(env, '--name', 'dup');
    assert.equal(first.code, 0, first.stderr);
    const second = await provision(env, '--name', 'dup');
    assert.equal(second.code, 2, `refused: ${second.stdout}${second.stderr}`);
    assert.match(second.stderr, /"dup" is already/);
    assert.equal(fake.instanceCount(), 1, 'nothing launched');
    const body = new Ledger(env.TETHER_STATE_DIR).read();
    assert.equal(body.resources.length, 1);
    assert.equal(body.ended.length, 0, 'no intent written for the refused launch');
    const d1 = await provision(env);
    const d2 = await provision(env);
    assert.equal(d1.code, 0, d1.stderr);
    assert.equal(d2.code, 0, d2.stderr);
    assert.deepEqual([JSON.parse(d1.stdout).name, JSON.parse(d2.stdout).name], ['gpu_1x_a10', 'gpu_1x_a10-2']);
  });

  it('item 7: two launches with one --name at the same moment: exactly one goes ahead', async () => {
    const env = envOf(stateDir());
    const both = await Promise.all([provision(env, '--name', 'racer'), provision(env, '--name', 'racer')]);
    assert.deepEqual(both.map((x) => x.code).sort(), [0, 2], both.map((x) => x.stderr).join('\n'));
    assert.equal(fake.instanceCount(), 1);
    assert.equal(new Ledger(env.TETHER_STATE_DIR).read().resources.filter((r) => r.plugin === 'racer').length, 1);
  });

  it('a launch the provider refuses (or a name taken in a race) leaves a failed intent that costs $0 in `tether cost`', async () => {
    const env = envOf(stateDir());
    const refused = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-south-9', '--ssh-key', 'laptop', '--yes', '--workspace', ws], env);
    assert.equal(refused.code, 1, refused.stderr);
    const failed = new Ledger(env.TETHER_STATE_DIR).read().ended;
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.state, 'failed');
    const cost = JSON.parse((await runCli(['cost', '--json', '--workspace', ws], env)).stdout) as { lines: Array<{ ledgerId: string; cost: number }>; total: number };
    assert.equal(cost.lines.find((x) => x.ledgerId === failed[0]!.id)?.cost ?? 0, 0, 'never launched, never billed');
    assert.equal(cost.total, 0);
  });

  it('item 7: terminate / cloud stop / deadman refuse an ambiguous name and list the candidates\' ids', async () => {
    const env = envOf(stateDir());
    const mine = await provision(env, '--name', 'trainer');
    assert.equal(mine.code, 0, mine.stderr);
    const mineId = (JSON.parse(mine.stdout) as { id: string }).id;
    const foreign = fake.addForeign('trainer'); // the user's own box with the same name
    for (const args of [['terminate', 'trainer'], ['cloud', 'terminate', 'trainer'], ['cloud', 'stop', 'trainer']]) {
      const r = await runCli([...args, '--workspace', ws], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /ambiguous/);
      assert.ok(r.stderr.includes(mineId) && r.stderr.includes(foreign), r.stderr);
    }
    assert.equal(fake.requests.filter((r) => /\/instance-operations\/terminate$/.test(r.path)).length, 0, 'nothing terminated');
    // Two records of one name (made before names were unique): deadman refuses too.
    const l = new Ledger(env.TETHER_STATE_DIR);
    const twins = [];
    for (let i = 0; i < 2; i++) {
      twins.push(await l.addIntent({ kind: 'cloud', plugin: 'twin', executionMode: PluginExecutionMode.CLOUD_GPU, remote: remoteResourceInfo({ provider: CloudProviderType.LAMBDA_LABS, instanceId: `twin-${i}`, status: 'running' }) }));
    }
    const dm = await runCli(['deadman', 'twin', '--minutes', '5', '--workspace', ws], env);
    assert.equal(dm.code, 2, dm.stderr);
    assert.match(dm.stderr, /ambiguous/);
    assert.ok(twins.every((x) => dm.stderr.includes(x.id)), dm.stderr);
    // By id, each is still reachable.
    const byId = await runCli(['terminate', mineId, '--workspace', ws], env);
    assert.equal(byId.code, 0, byId.stderr);
    await waitFor(() => fake.requests.some((r) => /\/instance-operations\/terminate$/.test(r.path)), 60_000, 'the terminate');
  });
});
