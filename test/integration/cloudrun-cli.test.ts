// Cloud Run jobs through the real `tether` CLI, against the strict run/v2 fake (the real API
// cannot be called from tests): provision (a job per launch, run), status, terminate (cancel, then
// the job deleted), cost by the instance-time rule, bad input refused before any intent, and a
// crash at every step of a launch leaving nothing unknown to the ledger.
import { strict as assert } from 'node:assert';
import { FakeCloudRunServer } from '../fakes/cloudRunFake';
import { runCli } from '../helpers/cli';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import { Ledger } from '../../src/core/ledger';
import { shapePricePerHour } from '../../src/backends/cloud/cloudrun/pricing';
import type { StatusReport } from '../../src/workspace/engine';

const IMAGE = 'us-docker.pkg.dev/tether-test/jobs/train:1';
const L4_PRICE = shapePricePerHour({ cpu: 4, memoryGiB: 16, gpu: 'nvidia-l4' }, 'us-central1')!;

function envFor(fake: FakeCloudRunServer, state: string): Record<string, string> {
  return {
    TETHER_STATE_DIR: state,
    TETHER_GCP_ACCESS_TOKEN: fake.apiKey,
    TETHER_GCP_RUN_API_URL: fake.url,
    TETHER_GCP_RUN_REGION: 'us-central1',
    GOOGLE_CLOUD_PROJECT: fake.project,
    // Never the machine's own gcloud configuration or credentials.
    CLOUDSDK_CONFIG: tmpDir('tether-gcloud-'),
    // The same project and token switch GCP Compute Engine on too: it must not reach out either (it gets 404s from this fake).
    TETHER_GCP_API_URL: `${fake.url}/compute-is-not-served-here`,
  };
}

const status = async (ws: string, env: Record<string, string>) => {
  const r = await runCli(['status', '--json', '--workspace', ws], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusReport;
};

describe('tether CLI with Google Cloud Run jobs (strict run/v2 fake)', function () {
  this.timeout(180_000);
  let fake: FakeCloudRunServer;
  let env: Record<string, string>;
  let ws: string;
  before(async () => {
    fake = new FakeCloudRunServer({ bootMs: 300, terminateMs: 300, maxPageSize: 2 });
    await fake.start();
    env = envFor(fake, tmpDir('tether-cloudrun-cli-'));
    ws = workspaceWith({ plugins: [] });
  });
  after(async () => {
    await fake?.stop();
  });

  it('types → provision --cpu/--memory/--gpu (intent first) → status → terminate (cancel, job deleted); a foreign execution stays unmanaged; cost per 100 ms', async () => {
    const types = await runCli(['cloud', 'types', 'cloudrun', '--json', '--workspace', ws], env);
    assert.equal(types.code, 0, types.stderr);
    const l4 = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number; gpuCount: number }>).find((t) => t.name === 'l4-4vcpu-16gib');
    assert.equal(l4?.pricePerHour, L4_PRICE);
    assert.equal(l4?.gpuCount, 1);
    const foreign = fake.addForeign('someone-elses-job');
    const args = ['provision', '--provider', 'run', '--cpu', '4', '--memory', '16', '--gpu', 'l4', '--image', IMAGE, '--name', 'trainer', '--workspace', ws];
    const unconfirmed = await runCli(args, env);
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(unconfirmed.stderr, /this launches l4-4vcpu-16gib at \$1\.05\/h \(\$25\.12\/day\) until you terminate it — Add --yes/);
    assert.equal(fake.instanceCount(), 1, 'nothing ran without --yes (only the foreign execution)');

    let intentSeen = false;
    fake.onCreate = () => {
      const rec = new Ledger(env.TETHER_STATE_DIR!).read().resources.find((x) => x.plugin === 'trainer');
      assert.ok(rec, 'the intent is in the ledger when :run arrives');
      assert.equal(rec.remote?.provider, 'cloud_run');
      assert.equal(rec.remote?.estimatedCostPerHour, L4_PRICE);
      intentSeen = true;
    };
    const launch = await runCli([...args, '--yes'], env);
    fake.onCreate = undefined;
    assert.equal(launch.code, 0, launch.stderr);
    assert.deepEqual(fake.hookErrors, []);
    assert.ok(intentSeen);
    assert.match(launch.stdout, /^launched trainer: Google Cloud Run jobs us-central1\/tether-[0-9a-f]{8}[0-9a-z]{8}-trainer\/tether-[0-9a-z-]+ l4-4vcpu-16gib us-central1 at \$1\.05\/h/);
    assert.equal(fake.instanceCount(), 2);
    // The job carries the marker in its id and labels, and asks for the L4 the way run/v2 says.
    const job = [...fake.jobs.values()].find((j) => j.jobId.endsWith('-trainer'))!;
    assert.match(job.labels['tether-id']!, /^[0-9a-f]{8}[0-9a-z]{8}$/);
    const tt = (job.template as { template: { containers: Array<{ image: string; resources: { limits: Record<string, string> } }>; nodeSelector: unknown; maxRetries: number } }).template;
    assert.deepEqual(tt.containers[0]!.resources.limits, { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' });
    assert.deepEqual(tt.nodeSelector, { accelerator: 'nvidia-l4' });
    assert.equal(tt.containers[0]!.image, IMAGE);
    assert.equal(tt.maxRetries, 0);

    const st = await waitFor(async () => {
      const s = await status(ws, env);
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'running' ? s : undefined;
    }, 60_000, 'the execution running');
    const mine = st.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(mine.managed, true);
    assert.equal(mine.pricePerHour, L4_PRICE);
    assert.equal(mine.gpuCount, 1);
    const other = st.cloud.instances.find((i) => i.id === foreign)!;
    assert.equal(other.managed, false);
    assert.equal(other.status, 'running');
    const refuse = await runCli(['cloud', 'terminate', foreign, '--workspace', ws], env);
    assert.equal(refuse.code, 2);
    assert.match(refuse.stderr, /was not launched by Tether — Add --unmanaged/);

    const term = await runCli(['terminate', 'trainer', '--workspace', ws], env);
    assert.equal(term.code, 0, term.stderr);
    assert.ok(
      fake.requests.some((r) => r.method === 'POST' && r.path.endsWith(':cancel') && r.path.includes('-trainer-')),
      'cancelled through executions/{id}:cancel',
    );
    assert.ok(!fake.jobs.has(job.name), 'the job Tether created for the launch is deleted');
    const after = await waitFor(async () => {
      const s = await status(ws, env);
      return s.cloud.instances.some((i) => i.name === 'trainer') ? undefined : s;
    }, 60_000, 'the execution gone');
    assert.equal(after.totals.costPerHour, 0);
    assert.ok(after.cloud.instances.some((i) => i.id === foreign && i.status === 'running'), 'the foreign execution was never touched');
    assert.deepEqual(fake.requests.filter((r) => r.method !== 'GET' && r.path.includes('someone-elses-job')), []);
    assert.deepEqual(fake.specViolations, []);
    assert.ok(fake.requests.some((r) => r.path.startsWith('/compute-is-not-served-here/')), 'GCP Compute Engine (switched on by the same project and token) was kept on 127.0.0.1 too');

    // Instance time per 100 ms, no minimum: a run of a few seconds costs a few seconds (Lambda's rule would charge a minute).
    const cost = JSON.parse((await runCli(['cost', '--json', '--workspace', ws], env)).stdout) as { lines: Array<{ name: string; provider: string; cost: number; endedAt: string | null }> };
    const line = cost.lines.find((l) => l.name === 'trainer')!;
    assert.equal(line.provider, 'cloud_run');
    assert.ok(line.endedAt);
    assert.ok(line.cost > 0 && line.cost < (L4_PRICE * 60) / 3600, `billed for its seconds, not a minute: ${line.cost}`);
  });

  it('bad input is refused before any intent: no image, an invalid shape, a region without a price; --project reaches the API', async () => {
    const base = ['provision', '--provider', 'cloud_run', '--name', 'bad', '--yes', '--workspace', ws];
    const before = fake.requests.filter((r) => r.method === 'POST').length;
    const noImage = await runCli([...base, '--type', '2vcpu-8gib'], env);
    assert.equal(noImage.code, 2, noImage.stderr);
    assert.match(noImage.stderr, /needs a container image.*— pass --image/);
    const shape = await runCli([...base, '--cpu', '3', '--memory', '4', '--image', IMAGE], env);
    assert.equal(shape.code, 2);
    assert.match(shape.stderr, /no instance type "3vcpu-4gib"/);
    const launchShape = await runCli(['cloud', 'launch', 'cloudrun', '1vcpu-16gib', '--image', IMAGE, '--workspace', ws], env);
    assert.equal(launchShape.code, 2, launchShape.stderr);
    assert.match(launchShape.stderr, /1 vCPU take 1 to 4 GiB of memory, not 16/);
    const region = await runCli([...base, '--type', '2vcpu-8gib', '--image', IMAGE, '--region', 'southamerica-east1'], env);
    assert.equal(region.code, 2, region.stderr);
    assert.match(region.stderr, /no shipped Cloud Run price for region southamerica-east1/);
    const unwatched = await runCli([...base, '--type', '2vcpu-8gib', '--image', IMAGE, '--region', 'europe-west1'], env);
    assert.equal(unwatched.code, 2, unwatched.stderr);
    assert.match(unwatched.stderr, /does not watch Cloud Run region europe-west1 \(it lists us-central1\) — launch in us-central1, or add europe-west1 to TETHER_GCP_RUN_REGIONS/);
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, before, 'nothing was created');
    assert.equal(new Ledger(env.TETHER_STATE_DIR!).read().resources.filter((r) => r.plugin === 'bad').length, 0, 'no intent left behind');
    const other = await runCli(['cloud', 'types', 'cloudrun', '--project', 'someone-else', '--workspace', ws], env);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /HTTP 403: Permission 'run\.jobs\.list' denied on resource 'projects\/someone-else\/.*— the Google credentials lack a Cloud Run permission in project someone-else/);
    const badToken = await runCli(['cloud', 'types', 'cloudrun', '--workspace', ws], { ...env, TETHER_GCP_ACCESS_TOKEN: 'ya29.wrong-secret-token-77' });
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /HTTP 401.*— Google refused the credentials/);
    assert.doesNotMatch(badToken.stderr + badToken.stdout, /wrong-secret-token-77/);
  });
});

describe('Cloud Run provisioning survives a crash at every step (the CLI killed; strict run/v2 fake)', function () {
  this.timeout(180_000);
  for (const point of ['before-launch', 'after-launch', 'after-record'] as const) {
    it(`killed ${point}: after a restart no execution is unknown to the ledger`, async () => {
      const fake = new FakeCloudRunServer({ bootMs: 100, terminateMs: 100 });
      await fake.start();
      try {
        const env = envFor(fake, tmpDir('tether-cloudrun-crash-'));
        const ws = workspaceWith({ plugins: [] });
        const args = ['provision', '--provider', 'cloudrun', '--type', '2vcpu-8gib', '--image', IMAGE, '--name', 'job', '--yes', '--workspace', ws];
        const crashed = await runCli(args, { ...env, TETHER_TEST_CRASH_AT: point });
        assert.equal(crashed.code, -1, `killed by SIGKILL: ${crashed.stderr}`);
        await sleep(200);
        // Restart: the next status reconciles the provider's list with the ledger.
        const st = await status(ws, env);
        const live = st.cloud.instances.filter((i) => i.status !== 'terminated');
        assert.equal(fake.instanceCount(), point === 'before-launch' ? 0 : 1);
        assert.ok(live.every((i) => i.managed && i.ledgerId), `every execution is known to the ledger: ${JSON.stringify(live)}`);
        assert.equal(live.filter((i) => i.id).length, fake.instanceCount());
        if (point === 'before-launch') assert.deepEqual(live.map((i) => [i.status, i.id]), [['provisioning', null]]);
        for (const i of live) {
          const t = await runCli(['terminate', i.ledgerId!, '--workspace', ws], env);
          assert.equal(t.code, 0, t.stderr);
        }
        const end = await status(ws, env);
        assert.deepEqual(end.cloud.instances.filter((i) => i.status !== 'terminated'), [], 'nothing left running');
        assert.equal(fake.jobs.size, 0, 'no job left behind');
        assert.deepEqual(fake.specViolations, []);
      } finally {
        await fake.stop();
      }
    });
  }
});
