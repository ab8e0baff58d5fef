/**
 * Idle autostop and time limits through the CloudManager, with a simulated clock: the instance
 * is launched on a fake Lambda Cloud server (protocol fake: the real API cannot be called from
 * tests), and its GPU utilisation is read over real SSH from the loopback OpenSSH server, where a
 * fixture nvidia-smi prints hand-written lines in nvidia-smi's CSV format (no GPU on this machine).
 * The test maps the instance to the loopback host itself: the fake's instance address cannot be
 * the test server's port, since Lambda's API always means port 22.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import type { IdleObservation, IdlePolicy } from '../../src/core/autostop';
import { CloudManager, autostopOf } from '../../src/fleet/cloud';
import { Engine, cloudSshHost } from '../../src/workspace/engine';
import { LambdaCloudProvider } from '../../src/backends/cloud/lambda/lambda';
import { RunPodProvider } from '../../src/backends/cloud/runpod/runpod';
import { FakeRunPodServer } from '../fakes/runpodServer';
import { SshConnectionPool } from '../../src/backends/ssh/connection';
import { SshHostMonitor } from '../../src/backends/ssh/remotePlugin';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { type TestSshd, startSshdOrSkip } from '../helpers/sshd';
import { tmpDir, waitFor } from '../helpers/tmp';

const MIN = 60_000;
const policy: IdlePolicy = { enabled: true, idleMinutes: 30, gpuUtilBelowPercent: 10, warnMinutes: 5 };
const owner = { kind: 'cli' as const, pid: process.pid, startTime: 0, host: 'test' };

describe('idle autostop and time limits (fake Lambda Cloud, GPU utilisation over real SSH, simulated clock)', function () {
  this.timeout(60000);
  let sshd: TestSshd;
  let fake: FakeLambdaServer;
  let pool: SshConnectionPool;
  let monitor: SshHostMonitor;
  let dir: string;
  let ledger: Ledger;
  let provider: LambdaCloudProvider;
  let now: number;
  let cloud: CloudManager;

  const setUtil = (values: number[]) =>
    fs.writeFileSync(
      path.join(sshd.binDir, 'nvidia-smi'),
      ['#!/bin/sh', `printf '${values.map((u, i) => `${i}, NVIDIA A10, ${u}, 100, 24576\\n`).join('')}'`, ''].join('\n'),
      { mode: 0o755 },
    );
  /** What the engine observes of the instance: the GPUs of its SSH host, polled for real. */
  const observeOverSsh = async (): Promise<IdleObservation> => {
    const gpus = await monitor.pollGpus('tether-test');
    return { reachable: monitor.hostState('tether-test') === 'connected', ...(gpus ? { gpuUtil: gpus.map((g) => g.utilizationPercent) } : {}), pluginsRunning: 0 };
  };
  const poll = async (obs?: IdleObservation) => {
    const st = await cloud.status();
    const o = obs ?? (await observeOverSsh());
    return cloud.enforceAutostop(st, () => o, policy);
  };
  const launch = async (timeLimitHours?: number) => {
    const v = await cloud.provision('lambda_labs', { name: 'trainer', instanceType: 'gpu_1x_a10', region: 'us-east-1', sshKeyName: 'laptop', ...(timeLimitHours ? { timeLimitHours } : {}) });
    await waitFor(async () => (await cloud.status()).instances.find((i) => i.ledgerId === v.ledgerId)?.status === 'running', 5000, 'running');
    return v.ledgerId!;
  };

  before(async function () {
    sshd = await startSshdOrSkip(this);
    pool = new SshConnectionPool({ resolve: { configPath: sshd.sshConfig }, knownHostsFiles: [sshd.knownHosts], agent: null, backoffInitialMs: 200 });
    monitor = new SshHostMonitor(pool);
  });
  after(async () => {
    pool?.closeAll();
    await sshd?.stop();
  });
  beforeEach(async () => {
    fake = new FakeLambdaServer({ bootMs: 100, terminateMs: 100 });
    await fake.start();
    dir = tmpDir('tether-autostop-');
    ledger = new Ledger(dir);
    provider = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url, retries: 1, backoffMs: 10 });
    now = Date.now();
    cloud = new CloudManager(ledger, owner, () => [provider], silentLogger, () => now);
  });
  afterEach(async () => {
    await fake.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.join(sshd.binDir, 'nvidia-smi'), { force: true });
  });

  it('a running instance is an SSH host (user@ip, the port only when not 22) of the engine', async () => {
    const id = await launch();
    const rec = ledger.read().resources.find((r) => r.id === id)!;
    assert.equal(cloudSshHost(rec), 'ubuntu@127.0.0.1');
    assert.equal(cloudSshHost({ ...rec, remote: { ...rec.remote!, sshPort: 40022 } }), 'ubuntu@127.0.0.1:40022');
    assert.equal(cloudSshHost({ ...rec, state: 'stopped' }), undefined, 'only while running');
    assert.equal(cloudSshHost({ ...rec, remote: { ...rec.remote!, sshHost: '1.2.3.4; rm -rf /' } }), undefined, 'an odd address is no host');
    // The provider's login user is a default: a User for that address in ~/.ssh/config wins.
    const cfg = path.join(dir, 'ssh_config');
    const engine = new Engine({ workspace: dir, stateDir: dir, ownerKind: 'cli', ssh: { resolve: { configPath: cfg } } });
    fs.writeFileSync(cfg, 'Host 10.9.8.7\n  User someone\n');
    assert.equal(engine.cloudHost(rec), 'ubuntu@127.0.0.1', 'no User for this address: the provider default');
    fs.writeFileSync(cfg, 'Host 127.0.0.1\n  User alice\n  Port 2222\n');
    assert.equal(engine.cloudHost(rec), '127.0.0.1', 'the config names the user (and may name the port)');
    engine.dispose();
  });

  it('idle GPUs: the idle clock is kept in the ledger, a warning at 25 min, Keep Running, then terminated and the reason recorded', async () => {
    setUtil([3, 0]);
    const id = await launch();
    assert.deepEqual(await poll(), []);
    const since = autostopOf(ledger.read().resources.find((r) => r.id === id)!).idleSince;
    assert.equal(since, now, 'the idle clock starts, in the ledger');
    // A restart: a new manager over the same ledger continues the same clock.
    cloud = new CloudManager(new Ledger(dir), owner, () => [provider], silentLogger, () => now);
    now += 25 * MIN;
    const warn = await poll();
    assert.deepEqual(warn.map((e) => [e.kind, e.phase, e.name]), [['idle', 'warn', 'trainer']]);
    assert.match(warn[0]!.reason, /every GPU below 10 % and no Tether plugin running for 25 min; Tether terminates it in 5 min/);
    assert.deepEqual(await poll(), [], 'warned once');
    await cloud.snoozeIdle(id);
    now += 10 * MIN;
    assert.deepEqual(await poll(), [], 'Keep Running: no action at 35 min');
    now += 25 * MIN;
    const act = await poll();
    assert.deepEqual(act.map((e) => [e.kind, e.phase]), [['idle', 'act']]);
    const ended = ledger.read().ended.find((r) => r.id === id);
    assert.ok(ended, 'the record is ended');
    assert.ok(ended.history.some((h) => /terminated by autostop: idle: every GPU below 10 %/.test(h.note ?? '')), JSON.stringify(ended.history));
    const inst = await provider.describe(ended.remote!.instanceId!);
    assert.ok(!inst || inst.status === 'terminating' || inst.status === 'terminated', `the instance is terminated (${inst?.status})`);
  });

  it('busy GPUs, or a host that cannot be reached, are never idle', async () => {
    setUtil([3, 87]);
    const id = await launch();
    for (let i = 0; i < 4; i++, now += 30 * MIN) assert.deepEqual(await poll(), []);
    assert.equal(autostopOf(ledger.read().resources.find((r) => r.id === id)!).idleSince, undefined);
    for (let i = 0; i < 4; i++, now += 30 * MIN) assert.deepEqual(await poll({ reachable: false, pluginsRunning: 0 }), []);
    fs.rmSync(path.join(sshd.binDir, 'nvidia-smi'));
    for (let i = 0; i < 4; i++, now += 30 * MIN) assert.deepEqual(await poll(), [], 'no nvidia-smi: unknown, not idle');
    assert.ok(ledger.read().resources.some((r) => r.id === id), 'still running after 6 simulated hours');
  });

  it('idle with action "stop" on a provider that can stop (RunPod fake): stopped, kept in the ledger; on Lambda (no stop): terminated', async () => {
    setUtil([1]);
    const pod = new FakeRunPodServer({ bootMs: 100, terminateMs: 100 });
    await pod.start();
    try {
      const runpod = new RunPodProvider({ apiKey: pod.apiKey, baseUrl: `${pod.url}/v2`, retries: 1, backoffMs: 10 });
      cloud = new CloudManager(ledger, owner, () => [provider, runpod], silentLogger, () => now);
      const v = await cloud.provision('runpod', { name: 'pod', instanceType: 'NVIDIA RTX A6000' });
      const lam = await launch();
      await waitFor(async () => (await cloud.status()).instances.find((i) => i.ledgerId === v.ledgerId)?.status === 'running', 5000, 'pod running');
      const stopPolicy = { ...policy, action: 'stop' as const };
      const o = await observeOverSsh();
      const pollStop = async () => cloud.enforceAutostop(await cloud.status(), () => o, stopPolicy);
      assert.deepEqual(await pollStop(), []);
      now += 25 * MIN;
      const warns = await pollStop();
      assert.deepEqual(warns.map((e) => e.phase).sort(), ['warn', 'warn']);
      assert.match(warns[0]!.reason, /Tether stops it \(terminates it where the provider cannot stop\)/);
      now += 5 * MIN;
      const acts = await pollStop();
      assert.deepEqual(acts.map((e) => [e.name, e.phase]).sort(), [['pod', 'act'], ['trainer', 'act']]);
      // The pod is stopped, not terminated: still in the ledger (its volume bills), noted why.
      const podRec = await waitFor(async () => {
        await cloud.status();
        const r = ledger.read().resources.find((x) => x.id === v.ledgerId);
        return r?.remote?.status === 'stopped' ? r : undefined;
      }, 5000, 'the pod stopped');
      assert.ok(podRec.history.some((h) => /stopped by autostop: idle/.test(h.note ?? '')));
      assert.ok(pod.requests.some((r) => r.method === 'POST' && r.path === `/v2/pods/${podRec.remote!.instanceId}/action` && (r.body as { action?: string }).action === 'stop'));
      assert.ok(!pod.requests.some((r) => r.method === 'DELETE'), 'never terminated');
      // Lambda cannot stop: its idle instance was terminated, and the ledger says so.
      assert.ok(ledger.read().ended.some((r) => r.id === lam && r.history.some((h) => /terminated by autostop/.test(h.note ?? ''))));
    } finally {
      await pod.stop();
    }
  });

  it('a time limit given at launch terminates at the limit whatever the GPUs do, after a warning', async () => {
    setUtil([95]);
    const id = await launch(1);
    now += 54 * MIN;
    assert.deepEqual(await poll(), []);
    now += 2 * MIN;
    assert.deepEqual((await poll()).map((e) => [e.kind, e.phase]), [['time-limit', 'warn']]);
    now += 5 * MIN;
    assert.deepEqual((await poll()).map((e) => [e.kind, e.phase]), [['time-limit', 'act']]);
    assert.ok(ledger.read().ended.some((r) => r.id === id && r.history.some((h) => /time limit/.test(h.note ?? ''))));
    assert.equal(fake.instanceCount(), 1);
  });
});
