/**
 * One contract suite for every cloud provider, each run against its protocol fake (test/fakes:
 * the real APIs cannot be called from tests) — node:http fakes for the REST providers, moto
 * behind a fault-injecting proxy for AWS EC2 — plus the CloudInstancePlugin flow and the
 * reconciler. Where providers legitimately differ (AWS lists unpriced types, keeps terminated
 * instances visible, sends no Retry-After, speaks the EC2 Query API), a target field says so.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Ledger } from '../../src/core/ledger';
import { PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { AwsEc2Provider, AWS_SHIPPED_CATALOGUE } from '../../src/backends/cloud/aws/aws';
import { CloudInstancePlugin } from '../../src/backends/cloud/cloudPlugin';
import { LambdaCloudProvider } from '../../src/backends/cloud/lambda/lambda';
import { ledgerIdentity, matchesLedgerId } from '../../src/backends/cloud/marker';
import { CloudApiError, markedName, type CloudProvider } from '../../src/backends/cloud/provider';
import { reconcileCloud } from '../../src/backends/cloud/reconcile';
import { RunPodProvider } from '../../src/backends/cloud/runpod/runpod';
import { VAST_MIN_GAPS_MS, VastAiProvider } from '../../src/backends/cloud/vastai/vastai';
import { AwsEc2MotoFake, MOTO_AMI } from '../fakes/awsEc2Fake';
import type { FaultKind, LoggedRequest, ProviderFake } from '../fakes/fakeBase';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { FakeRunPodServer } from '../fakes/runpodServer';
import { FakeVastServer } from '../fakes/vastaiServer';
import { cloudRunTarget } from './cloud-targets/cloudrun';
import { tmpDir, waitFor } from '../helpers/tmp';
import { gcpTarget } from './cloud-targets/gcp';
import { azureTarget } from './cloud-targets/azure';
import { skipBecause } from '../helpers/skip';

interface ClientOpts {
  apiKey?: string;
  timeoutMs?: number;
}

interface Target {
  label: string;
  /** What the fake is ("its fake server"). */
  fakeLabel: string;
  fake: () => ProviderFake;
  provider: (f: ProviderFake, o?: ClientOpts) => CloudProvider;
  /** Why this target cannot run here (said loudly, then skipped), or undefined. */
  unavailable?: () => string | undefined;
  /** Run once after the target's tests (e.g. stop a shared emulator). */
  teardown?: () => Promise<void>;
  instanceType: string;
  region?: string;
  /** The SSH key a launch names, where the provider requires one (Lambda: exactly one). */
  sshKeyName?: string;
  price: number;
  /** HTTP method of the list call (REST: GET; the EC2 Query API POSTs everything). */
  listMethod: string;
  listPath: RegExp;
  createPath: RegExp;
  /** HTTP method of the create call. */
  createMethod: string;
  /** The create-then-X fault the provider's trap calls for. */
  ambiguousCreate: FaultKind[];
  unknownId: string;
  /** Whether the provider's throttling answer carries Retry-After (EC2's RequestLimitExceeded does not). */
  sendsRetryAfter: boolean;
  /** A terminated instance stays visible as `terminated` (EC2: about an hour) instead of disappearing. */
  keepsTerminated: boolean;
  /** Whether a logged request is a write that names instance `id`. */
  writesTo: (r: LoggedRequest, id: string) => boolean;
  /** Whether the provider can stop (power off, keep the disk) an instance: `provider.stop` exists. */
  canStop: boolean;
  /** The request a stop makes (with `writesTo` naming the instance), where `canStop`. */
  stopCall?: { method: string; path: RegExp };
  /** The provider's instances have no SSH endpoint (a container execution). */
  noSsh?: boolean;
  /** The provider refuses an unknown type in `checkLaunch`, before any ledger intent is written. */
  checksTypeBeforeIntent?: boolean;
}

/** REST: any non-GET whose path names the instance. */
const restWrite = (r: LoggedRequest, id: string) => r.method !== 'GET' && r.path.includes(id);

/**
 * No test here bets on the machine's speed: clients keep the product's timeouts (30 s) unless a
 * test needs a hang to end, and state changes are awaited for up to a minute.
 */
const STATE_WAIT_MS = 60_000;

const common = (f: ProviderFake, o: ClientOpts = {}) => ({
  apiKey: o.apiKey ?? f.apiKey,
  timeoutMs: o.timeoutMs,
  retries: 3,
  backoffMs: 20,
});

const TARGETS: Target[] = [
  {
    label: 'Lambda Cloud',
    fakeLabel: 'its fake server',
    fake: () => new FakeLambdaServer(),
    provider: (f, o) => new LambdaCloudProvider({ ...common(f, o), baseUrl: f.url }),
    instanceType: 'gpu_1x_a10',
    region: 'us-east-1',
    sshKeyName: 'laptop',
    price: 0.75,
    listMethod: 'GET',
    listPath: /^\/api\/v1\/instances$/,
    createPath: /^\/api\/v1\/instance-operations\/launch$/,
    createMethod: 'POST',
    ambiguousCreate: ['create-then-hang', 'create-then-fail'],
    sendsRetryAfter: false,
    keepsTerminated: false,
    writesTo: restWrite,
    unknownId: '0123456789abcdef0123456789abcdef',
    canStop: false,
  },
  {
    label: 'RunPod',
    fakeLabel: 'its fake server',
    fake: () => new FakeRunPodServer(),
    provider: (f, o) => new RunPodProvider({ ...common(f, o), baseUrl: `${f.url}/v2` }),
    instanceType: 'NVIDIA RTX A6000',
    price: 0.49,
    listMethod: 'GET',
    listPath: /^\/v2\/pods$/,
    createPath: /^\/v2\/pods$/,
    createMethod: 'POST',
    ambiguousCreate: ['create-then-hang', 'create-then-fail'],
    sendsRetryAfter: true,
    keepsTerminated: false,
    writesTo: restWrite,
    unknownId: 'nosuchpod123',
    canStop: true,
    stopCall: { method: 'POST', path: /^\/v2\/pods\/[^/]+\/action$/ },
  },
  {
    label: 'Vast.ai',
    fakeLabel: 'its fake server',
    // Vast's documented minimum gaps, scaled down: the fake enforces half of what the client keeps.
    fake: () => new FakeVastServer({ gapScale: 0.01 }),
    provider: (f, o) => new VastAiProvider({ ...common(f, o), baseUrl: `${f.url}/api/v0`, minGapMs: Object.fromEntries(Object.entries(VAST_MIN_GAPS_MS).map(([m, g]) => [m, g * 0.02])) }),
    instanceType: '4101',
    price: 0.345,
    listMethod: 'GET',
    listPath: /^\/api\/v1\/instances\/$/,
    createPath: /^\/api\/v0\/asks\/\d+\/$/,
    createMethod: 'PUT',
    ambiguousCreate: ['create-then-hang', 'create-then-fail'],
    sendsRetryAfter: false,
    keepsTerminated: false,
    writesTo: restWrite,
    unknownId: '123',
    canStop: true,
    stopCall: { method: 'PUT', path: /^\/api\/v0\/instances\/\d+\/$/ },
  },
  {
    label: 'AWS EC2',
    fakeLabel: 'moto behind a fault-injecting EC2 proxy',
    fake: () => new AwsEc2MotoFake(),
    provider: (f, o = {}) =>
      new AwsEc2Provider({
        region: 'us-east-1',
        endpoint: f.url,
        credentials: { accessKeyId: o.apiKey ?? f.apiKey, secretAccessKey: 'testing' },
        defaultImageId: MOTO_AMI,
        requestTimeoutMs: o.timeoutMs,
        maxAttempts: 3,
      }),
    unavailable: () => AwsEc2MotoFake.unavailable(),
    teardown: () => AwsEc2MotoFake.stopMoto(),
    instanceType: 'g4dn.xlarge',
    region: 'us-east-1',
    price: AWS_SHIPPED_CATALOGUE.regions['us-east-1']!['g4dn.xlarge']!,
    listMethod: 'POST',
    listPath: /^\/DescribeInstances$/,
    createPath: /^\/RunInstances$/,
    createMethod: 'POST',
    ambiguousCreate: ['create-then-hang', 'create-then-fail'],
    unknownId: 'i-0123456789abcdef0',
    sendsRetryAfter: false,
    keepsTerminated: true,
    // An Action other than Describe* whose parameters name the instance (TerminateInstances, CreateTags...).
    writesTo: (r, id) => !r.path.startsWith('/Describe') && Object.values((r.body ?? {}) as Record<string, string>).some((v) => v.includes(id)),
    canStop: true,
    stopCall: { method: 'POST', path: /^\/StopInstances$/ },
  },
  gcpTarget,
  cloudRunTarget,
  azureTarget,
];

/** Releases a provider's sockets when it has any to release (the AWS SDK client). */
const release = (p: CloudProvider) => (p as { dispose?: () => void }).dispose?.();

for (const t of TARGETS) {
  describe(`cloud contract: ${t.label} (against ${t.fakeLabel})`, function () {
    this.timeout(4 * STATE_WAIT_MS);
    let fake: ProviderFake;
    let p: CloudProvider;
    let state: string;
    let ledger: Ledger;
    let made: CloudProvider[] = [];
    /** A provider for this test's fake, released after the test. */
    const provider = (o?: ClientOpts) => {
      const x = t.provider(fake, o);
      made.push(x);
      return x;
    };

    before(function () {
      const why = t.unavailable?.();
      if (why) {
        skipBecause(this, `the ${t.label} contract tests: ${why}`);
      }
    });
    after(async () => {
      await t.teardown?.();
    });
    beforeEach(async () => {
      fake = t.fake();
      await fake.start();
      p = provider();
      state = tmpDir('tether-cloud-');
      ledger = new Ledger(state);
    });
    afterEach(async () => {
      made.forEach(release);
      made = [];
      await fake?.stop();
      if (state) fs.rmSync(state, { recursive: true, force: true });
    });

    const req = (ledgerId: string, name = 'job') => ({ ledgerId, name, instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}) });

    it('lists the catalogue with prices', async () => {
      const types = await p.listInstanceTypes();
      assert.ok(types.length > 0);
      // A price, or a description saying there is none (AWS lists unpriced GPU types with NaN by design).
      for (const x of types) {
        assert.ok((Number.isFinite(x.pricePerHour) && x.pricePerHour > 0) || (Number.isNaN(x.pricePerHour) && /\bno price\b/.test(x.description ?? '')), `${x.name} has a price or says it has none`);
      }
      const ours = types.find((x) => x.name === t.instanceType);
      assert.ok(ours, 'the test type is offered');
      assert.equal(ours.pricePerHour, t.price);
      assert.ok(ours.gpuCount >= 1);
    });

    it('launch → provisioning → running → terminate → terminated; the list shows the tether id', async () => {
      const id = randomUUID();
      const inst = await p.launch(req(id));
      assert.equal(inst.status, 'provisioning');
      assert.ok(matchesLedgerId(inst, id));
      const up = await waitFor(async () => {
        const d = await p.describe(inst.id);
        return d?.status === 'running' ? d : undefined;
      }, STATE_WAIT_MS, 'running');
      assert.equal(up.pricePerHour, t.price);
      assert.ok(t.noSsh || (up.sshHost && up.sshPort), 'an SSH endpoint once running');
      const listed = (await p.listInstances()).find((x) => x.id === inst.id);
      assert.ok(listed && matchesLedgerId(listed, id), `listed with the tether id (${listed?.tetherId})`);
      assert.equal(listed?.name, markedName(id, 'job'));
      await p.terminate(inst.id);
      await waitFor(async () => {
        const d = await p.describe(inst.id);
        return !d || d.status === 'terminated';
      }, STATE_WAIT_MS, 'terminated');
    });

    it('describe of an unknown id is undefined; terminating a gone instance is fine', async () => {
      assert.equal(await p.describe(t.unknownId), undefined);
      await p.terminate(t.unknownId);
      const inst = await p.launch(req(randomUUID()));
      await p.terminate(inst.id);
      await waitFor(async () => {
        const d = await p.describe(inst.id);
        return t.keepsTerminated ? d?.status === 'terminated' : !d;
      }, STATE_WAIT_MS, t.keepsTerminated ? 'terminated' : 'gone');
      await p.terminate(inst.id);
    });

    if (t.canStop) {
      it('launch → running → stop → stopped (still listed; stopping again is fine) → terminate → terminated', async () => {
        assert.equal(typeof p.stop, 'function', 'the provider has stop');
        const id = randomUUID();
        const inst = await p.launch(req(id));
        await waitFor(async () => (await p.describe(inst.id))?.status === 'running', STATE_WAIT_MS, 'running');
        const n = fake.requests.length;
        await p.stop!(inst.id);
        const stops = fake.requests.slice(n).filter((r) => r.method === t.stopCall!.method && t.stopCall!.path.test(r.path) && t.writesTo(r, inst.id));
        assert.equal(stops.length, 1, `one stop request naming the instance (${fake.requests.slice(n).map((r) => `${r.method} ${r.path}`).join(', ')})`);
        const seen: string[] = [];
        const stopped = await waitFor(async () => {
          const d = await p.describe(inst.id);
          seen.push(d?.status ?? 'gone');
          return d?.status === 'stopped' ? d : undefined;
        }, STATE_WAIT_MS, 'stopped');
        assert.deepEqual(seen.filter((x) => !['running', 'stopping', 'stopped'].includes(x)), [], `on the way to stopped: ${[...new Set(seen)].join(' → ')}`);
        assert.ok(matchesLedgerId(stopped, id), 'a stopped instance keeps its tether id');
        const listed = (await p.listInstances()).find((x) => x.id === inst.id);
        assert.equal(listed?.status, 'stopped', 'a stopped instance is still listed');
        assert.ok(matchesLedgerId(listed, id));

        await p.stop!(inst.id); // stopping a stopped instance is fine
        assert.equal((await p.describe(inst.id))?.status, 'stopped');

        await p.terminate(inst.id);
        await waitFor(async () => {
          const d = await p.describe(inst.id);
          return t.keepsTerminated ? d?.status === 'terminated' : !d || d.status === 'terminated';
        }, STATE_WAIT_MS, 'terminated');
        if (!t.keepsTerminated) {
          await waitFor(async () => !(await p.describe(inst.id)), STATE_WAIT_MS, 'gone');
          // A stop of an instance that is gone does not pretend to have worked.
          await assert.rejects(p.stop!(inst.id), (e: unknown) => e instanceof CloudApiError && /no longer exists/.test(e.message));
        }
      });

      it('stop of an unknown id rejects with a CloudApiError saying it no longer exists, with a remedy', async () => {
        const err = await p.stop!(t.unknownId).then(
          () => assert.fail('stop of an unknown id should fail'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof CloudApiError, String(err));
        assert.match(err.message, /no longer exists/);
        assert.ok(err.status === 404 || err.code === 'InvalidInstanceID.NotFound', `status ${err.status}, code ${err.code}`);
        assert.match(err.remedy, /refresh/);
      });

      it('CloudInstancePlugin: a stopped instance stays in the ledger as stopped (not ended: its disk still bills)', async () => {
        const plugin = new CloudInstancePlugin({ provider: p, ledger, name: 'gpu-box' });
        const info = await plugin.provisionRemoteResource({ instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}), name: 'box' });
        await waitFor(async () => (await plugin.checkRemoteResourceStatus()) === 'running', STATE_WAIT_MS, 'running');
        await p.stop!(info.instanceId!);
        await waitFor(async () => (await plugin.checkRemoteResourceStatus()) === 'stopped', STATE_WAIT_MS, 'stopped');
        const b = ledger.read();
        const rec = b.resources.find((x) => x.id === plugin.ledgerId);
        assert.ok(rec, 'the record is still live');
        assert.equal(rec.state, 'stopped');
        assert.equal(rec.remote?.status, 'stopped');
        assert.ok(!b.ended.some((x) => x.id === plugin.ledgerId), 'not ended');
        const ledgerId = plugin.ledgerId!;
        assert.equal(await plugin.terminateRemoteResource(), true);
        assert.equal(ledger.read().ended.find((x) => x.id === ledgerId)?.state, 'stopped');
      });
    } else {
      it('has no stop (the provider cannot stop an instance, only terminate it)', () => {
        assert.equal(p.stop, undefined);
        assert.ok(!('stop' in p), 'no stop method at all');
      });
    }

    it('a wrong API key gives a CloudApiError 401/403 with a remedy, without the key', async () => {
      const secret = 'wrong-secret-key-Z9Q7';
      const bad = provider({ apiKey: secret });
      const err = await bad.listInstances().then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError, String(err));
      assert.ok(err.status === 401 || err.status === 403, `status ${err.status}`);
      assert.match(err.remedy, /API key|credentials/);
      assert.ok(!err.message.includes(secret) && !err.remedy.includes(secret) && !err.oneLine().includes(secret));
      await assert.rejects(bad.listInstanceTypes(), (e: unknown) => e instanceof CloudApiError && (e.status === 401 || e.status === 403));
    });

    it(t.sendsRetryAfter ? 'retries a 429 after Retry-After and succeeds' : 'retries a throttled call (no Retry-After: backoff) and succeeds', async () => {
      fake.inject({ method: t.listMethod, path: t.listPath, kind: 'rate-limit', ...(t.sendsRetryAfter ? { retryAfterSec: 1 } : {}) });
      const t0 = Date.now();
      await p.listInstances();
      if (t.sendsRetryAfter) assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After');
      assert.equal(fake.requests.filter((r) => t.listPath.test(r.path)).length, 2);
    });

    it('retries a 500 and succeeds', async () => {
      fake.inject({ method: t.listMethod, path: t.listPath, kind: 'error-500', times: 2 });
      await p.listInstances();
      assert.equal(fake.requests.filter((r) => t.listPath.test(r.path)).length, 3);
    });

    for (const kind of t.ambiguousCreate) {
      it(`a launch whose create ends ambiguously (${kind}) is retried without launching twice`, async () => {
        // The hung create must end by the client's timeout, while no other call may hit it:
        // the timeout is derived from how long this fake takes to answer on this machine now.
        let slowest = 0;
        for (let i = 0; i < 3; i++) {
          const t0 = Date.now();
          await p.listInstances();
          slowest = Math.max(slowest, Date.now() - t0);
        }
        const impatient = provider({ timeoutMs: Math.max(2000, 20 * slowest) });
        fake.inject({ method: t.createMethod, path: t.createPath, kind });
        const before = fake.instanceCount();
        const id = randomUUID();
        const inst = await impatient.launch(req(id));
        assert.ok(matchesLedgerId(inst, id));
        assert.equal(fake.instanceCount(), before + 1, 'exactly one instance');
        // Asking again for the same ledger id does not launch either.
        await impatient.launch(req(id));
        assert.equal(fake.instanceCount(), before + 1);
      });
    }

    it('a refused launch (bad type) is not retried', async () => {
      await assert.rejects(p.launch({ ...req(randomUUID()), instanceType: 'no-such-type' }), CloudApiError);
      assert.equal(fake.instanceCount(), 0);
    });

    it('reconcile adopts a lost Tether instance, reports foreign ones as unmanaged (untouched), ends gone records', async () => {
      const incomplete = await ledger.addIntent({ kind: 'cloud', plugin: 'cloud-test', executionMode: PluginExecutionMode.CLOUD_GPU, remote: remoteResourceInfo({ provider: p.type }) });
      const lostId = await fake.addForeign(markedName(incomplete.id, 'lost'));
      const orphanLedgerId = randomUUID();
      const orphanId = await fake.addForeign(markedName({ ledgerId: orphanLedgerId, name: 'orphan', owner: ledgerIdentity(state) })); // this ledger's, no record at all
      const foreignId = await fake.addForeign('my-own-box');
      const goneRec = await ledger.addIntent({
        kind: 'cloud',
        plugin: 'cloud-test',
        executionMode: PluginExecutionMode.CLOUD_GPU,
        remote: remoteResourceInfo({ provider: p.type, instanceId: t.unknownId, status: 'running' }),
      });

      const r = await reconcileCloud(p, ledger);
      assert.deepEqual(r.adopted.map((i) => i.id).sort(), [lostId, orphanId].sort());
      assert.deepEqual(r.unmanaged.map((i) => i.id), [foreignId]);
      assert.deepEqual(r.gone, [goneRec.id]);

      const body = ledger.read();
      const patched = body.resources.find((x) => x.id === incomplete.id);
      assert.equal(patched?.remote?.instanceId, lostId);
      assert.equal(patched?.state, 'running');
      const adopted = body.resources.find((x) => x.remote?.instanceId === orphanId);
      assert.equal(adopted?.remote?.metadata.tetherId, `${orphanLedgerId.slice(0, 8)}@${ledgerIdentity(state)}`);
      assert.ok(!body.resources.some((x) => x.remote?.instanceId === foreignId), 'foreign instance not recorded');
      assert.equal(body.ended.find((x) => x.id === goneRec.id)?.state, 'stopped');

      // The foreign instance was never touched, and a second pass changes nothing.
      const writes = fake.requests.filter((x) => t.writesTo(x, foreignId));
      assert.deepEqual(writes, []);
      assert.equal((await p.describe(foreignId))?.status, 'running');
      const again = await reconcileCloud(p, ledger);
      assert.deepEqual([again.adopted.length, again.gone.length], [0, 0]);
      assert.equal(again.unmanaged.length, 1);
    });

    it('CloudInstancePlugin: intent before launch, price at launch, status, estimateCost, terminate ends the record', async () => {
      const plugin = new CloudInstancePlugin({ provider: p, ledger, name: 'gpu-box' });
      assert.equal(plugin.estimateCost(3), 0);
      assert.equal(await plugin.checkRemoteResourceStatus(), 'not_provisioned');
      let seen = false;
      fake.onCreate = () => {
        const rec = new Ledger(state).read().resources.find((x) => x.plugin === 'gpu-box');
        assert.ok(rec, 'the intent is in the ledger file when the launch arrives');
        assert.equal(rec.kind, 'cloud');
        assert.equal(rec.state, 'starting');
        assert.equal(rec.remote?.instanceId, undefined);
        assert.equal(rec.remote?.estimatedCostPerHour, t.price);
        assert.equal(rec.remote?.resourceType, t.instanceType);
        seen = true;
      };
      const info = await plugin.provisionRemoteResource({ instanceType: t.instanceType, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}), name: 'box' });
      assert.deepEqual(fake.hookErrors, []);
      assert.ok(seen, 'the fake saw the launch');
      assert.ok(info.instanceId);
      assert.equal(plugin.estimateCost(2), t.price * 2);
      const rec = ledger.read().resources.find((x) => x.id === plugin.ledgerId);
      assert.equal(rec?.remote?.instanceId, info.instanceId);
      assert.equal(rec?.remote?.provider, p.type);

      await waitFor(async () => (await plugin.checkRemoteResourceStatus()) === 'running', STATE_WAIT_MS, 'running');
      const running = ledger.read().resources.find((x) => x.id === plugin.ledgerId);
      assert.equal(running?.state, 'running');
      assert.equal(running?.remote?.status, 'running');
      assert.equal(typeof running?.remote?.metadata.providerStatus, 'string');
      assert.ok(running!.history.some((h) => h.state === 'running'));

      const ledgerId = plugin.ledgerId!;
      assert.equal(await plugin.terminateRemoteResource(), true);
      const after = ledger.read();
      assert.ok(!after.resources.some((x) => x.id === ledgerId));
      assert.equal(after.ended.find((x) => x.id === ledgerId)?.state, 'stopped');
      assert.equal(await plugin.terminateRemoteResource(), false);
    });

    it('CloudInstancePlugin: a refused launch ends the intent as failed', async () => {
      const plugin = new CloudInstancePlugin({ provider: p, ledger, name: 'gpu-box' });
      await assert.rejects(plugin.provisionRemoteResource({ instanceType: 'no-such-type', pricePerHour: 1, ...(t.region ? { region: t.region } : {}), ...(t.sshKeyName ? { sshKeyName: t.sshKeyName } : {}) }), CloudApiError);
      const b = ledger.read();
      assert.equal(b.resources.length, 0);
      if (t.checksTypeBeforeIntent) assert.deepEqual(b.ended, [], 'refused before any intent');
      else assert.equal(b.ended[0]?.state, 'failed');
    });
  });
}
