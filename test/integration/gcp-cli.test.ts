// GCP Compute Engine through the real `tether` CLI (`--provider gcp --project P --zone Z`),
// against the strict compute/v1 fake: types, provision (intent first), status, stop, terminate,
// cost by Compute Engine's rule, and a crash at every step of a launch leaving nothing unknown.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { FakeGcpComputeServer } from '../fakes/gcpComputeFake';
import { runCli } from '../helpers/cli';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';
import { GCP_SHIPPED_CATALOGUE } from '../../src/backends/cloud/gcp/gcp';

const PRICE = GCP_SHIPPED_CATALOGUE.regions['us-central1']!['g2-standard-4']!;
/** State changes are awaited generously: the machine is shared and loaded. */
const WAIT_MS = 60_000;

function gcpEnv(fake: FakeGcpComputeServer, extra: Record<string, string> = {}): Record<string, string> {
  const home = tmpDir('tether-gcp-home-');
  return {
    TETHER_STATE_DIR: tmpDir('tether-gcp-cli-'),
    TETHER_GCP_ACCESS_TOKEN: fake.apiKey,
    TETHER_GCP_API_URL: fake.url,
    // gcloud (on PATH) must never read the user's configuration.
    CLOUDSDK_CONFIG: home,
    HOME: home,
    ...extra,
  };
}

describe('tether CLI with GCP Compute Engine (strict compute/v1 fake)', function () {
  this.timeout(4 * WAIT_MS);
  let fake: FakeGcpComputeServer;
  before(async () => {
    fake = new FakeGcpComputeServer({ project: 'tether-test' });
    await fake.start();
  });
  after(async () => {
    await fake?.stop();
  });

  it('types → provision --project --zone (confirmation first) → running → stop (disk billing) → terminate; cost by the 1-minute minimum', async () => {
    const env = gcpEnv(fake);
    const ws = workspaceWith({ plugins: [] });
    const flags = ['--project', 'tether-test', '--zone', 'us-central1-a', '--workspace', ws];
    const types = await runCli(['cloud', 'types', 'gcp', '--json', ...flags], env);
    assert.equal(types.code, 0, types.stderr);
    const list = JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number | null; gpuCount: number; gpuType?: string }>;
    const g2 = list.find((t) => t.name === 'g2-standard-4');
    assert.equal(g2?.pricePerHour, PRICE.onDemand);
    assert.equal(g2?.gpuCount, 1);
    assert.match(g2?.gpuType ?? '', /L4/);
    assert.equal(list.find((t) => t.name === 'g2-standard-4:spot')?.pricePerHour, PRICE.spot);
    assert.ok(list.some((t) => t.name === 'a3-highgpu-8g' && t.gpuCount === 8), 'an accelerator-optimized type the catalogue does not price is listed (unpriced)');

    const args = ['provision', '--provider', 'gcp', '--type', 'g2-standard-4', '--name', 'trainer', ...flags];
    const unconfirmed = await runCli(args, env);
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(unconfirmed.stderr, /this launches g2-standard-4 at \$0\.71\/h .* — Add --yes/);
    assert.equal(fake.instanceCount(), 0);
    const launch = await runCli([...args, '--yes'], env);
    assert.equal(launch.code, 0, launch.stderr);
    assert.match(launch.stdout, /^launched trainer: GCP Compute Engine tether-[0-9a-z]{16}-trainer g2-standard-4 us-central1-a at \$0\.71\/h/);
    assert.equal(fake.instanceCount(), 1);
    const made = [...fake.instances.values()][0]!;
    assert.equal(made.labels['tether-managed'], 'true');
    assert.match(made.labels['tether-record'] ?? '', /^[0-9a-f-]{36}$/);
    assert.match(made.labels['tether-ledger'] ?? '', /^[0-9a-z]{8}$/);

    const statusEnv = { ...env, GOOGLE_CLOUD_PROJECT: 'tether-test', TETHER_GCP_ZONE: 'us-central1-a' };
    const st = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], statusEnv)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'running' ? s : undefined;
    }, WAIT_MS, 'the instance running');
    const mine = st.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(mine.managed, true);
    assert.equal(mine.pricePerHour, PRICE.onDemand);

    const stop = await runCli(['cloud', 'stop', 'trainer', '--workspace', ws], statusEnv);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], statusEnv)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'stopped';
    }, WAIT_MS, 'the instance stopped (TERMINATED)');
    assert.equal(made.stoppedAt !== undefined, true);

    const term = await runCli(['terminate', 'trainer', '--workspace', ws], statusEnv);
    assert.equal(term.code, 0, term.stderr);
    await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], statusEnv)).stdout) as StatusReport;
      return !s.cloud.instances.some((i) => i.name === 'trainer');
    }, WAIT_MS, 'the instance gone');
    const cost = JSON.parse((await runCli(['cost', '--json', '--workspace', ws], statusEnv)).stdout) as { lines: Array<{ name: string; cost: number; provider: string }> };
    const line = cost.lines.find((l) => l.name === 'trainer')!;
    assert.equal(line.provider, 'gcp');
    assert.ok(line.cost >= PRICE.onDemand / 60 - 1e-9, `at least the 1-minute minimum, got ${line.cost}`);
    fs.rmSync(env.TETHER_STATE_DIR!, { recursive: true, force: true });
  });

  it('no project anywhere (no flag, no environment, gcloud config unset): a usage error with the remedy, before any ledger intent', async () => {
    const env = gcpEnv(fake);
    const ws = workspaceWith({ plugins: [] });
    const r = await runCli(['provision', '--provider', 'gcp', '--type', 'g2-standard-4', '--zone', 'us-central1-a', '--yes', '--workspace', ws], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No Google Cloud project given — .*--project/);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(fake.apiKey));
    assert.equal(fake.instanceCount(), 1, 'nothing launched (the one from the previous test)');
    const st = JSON.parse((await runCli(['status', '--json', '--workspace', ws], { ...env, GOOGLE_CLOUD_PROJECT: 'tether-test' })).stdout) as StatusReport;
    assert.deepEqual(st.cloud.instances.filter((i) => i.managed), [], 'no intent was written');
  });
});

describe('GCP provisioning survives a crash at every step (the CLI killed; strict compute/v1 fake)', function () {
  this.timeout(4 * WAIT_MS);
  for (const point of ['before-launch', 'after-launch', 'after-record'] as const) {
    it(`killed ${point}: after a restart no instance is unknown to the ledger`, async () => {
      const fake = new FakeGcpComputeServer({ project: 'tether-test', bootMs: 300 });
      await fake.start();
      try {
        const env = gcpEnv(fake, { GOOGLE_CLOUD_PROJECT: 'tether-test', TETHER_GCP_ZONE: 'us-central1-a' });
        const ws = workspaceWith({ plugins: [] });
        const args = ['provision', '--provider', 'gcp', '--project', 'tether-test', '--zone', 'us-central1-a', '--type', 'g2-standard-4', '--name', 'job', '--yes', '--workspace', ws];
        const crashed = await runCli(args, { ...env, TETHER_TEST_CRASH_AT: point });
        assert.equal(crashed.code, -1, `killed by SIGKILL: ${crashed.stderr}`);
        await sleep(200);
        const st = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
        const live = st.cloud.instances.filter((i) => i.status !== 'terminated');
        assert.equal(fake.instanceCount(), point === 'before-launch' ? 0 : 1);
        assert.ok(live.every((i) => i.managed && i.ledgerId), `every instance is known to the ledger: ${JSON.stringify(live)}`);
        assert.equal(live.filter((i) => i.id).length, fake.instanceCount());
        if (point === 'before-launch') assert.deepEqual(live.map((i) => [i.status, i.id]), [['provisioning', null]]);
        for (const i of live) assert.equal((await runCli(['terminate', i.ledgerId!, '--workspace', ws], env)).code, 0);
      } finally {
        await fake.stop();
      }
    });
  }
});
