// ECS tasks through the real `tether` CLI (`tether provision --provider ecs …`), against moto
// behind the strict ECS lifecycle proxy (test/fakes/ecsMotoFake.ts): bad input refused before
// any ledger intent, launch, status, unmanaged tasks untouched, terminate, cost; and a crash at
// every step of a launch leaving nothing unknown to the ledger.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { EcsMotoFake } from '../fakes/ecsMotoFake';
import { runCli } from '../helpers/cli';
import { skipBecause } from '../helpers/skip';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';

const IMAGE = 'public.ecr.aws/docker/library/busybox:latest';
const WAIT_MS = 90_000;

/** The CLI's environment for a fake: ECS enabled by its cluster, in its own region variable (EC2 stays off). */
function cliEnv(fake: EcsMotoFake, state: string): Record<string, string> {
  return {
    TETHER_STATE_DIR: state,
    TETHER_ECS_CLUSTER: 'default',
    TETHER_ECS_REGION: 'us-east-1',
    TETHER_AWS_API_URL: fake.url,
    AWS_ACCESS_KEY_ID: fake.apiKey,
    AWS_SECRET_ACCESS_KEY: 'testing',
    // Nothing from the machine's own AWS setup.
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: path.join(state, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(state, 'no-aws-credentials'),
  };
}

const ledgerOf = (state: string) => new Ledger(state).read();
const hasLedger = (state: string) => fs.existsSync(path.join(state, 'ledger.json'));

describe('tether CLI with AWS ECS (moto behind the ECS lifecycle proxy)', function () {
  this.timeout(4 * WAIT_MS);
  let fake: EcsMotoFake;
  let env: Record<string, string>;
  let ws: string;
  let state: string;
  before(function () {
    const why = EcsMotoFake.unavailable();
    if (why) skipBecause(this, `the ECS CLI tests: ${why}`);
  });
  after(async () => {
    await EcsMotoFake.stopMoto();
  });
  beforeEach(async () => {
    fake = new EcsMotoFake({ provisionMs: 200, pendingMs: 200, stopStageMs: 150 });
    await fake.start();
    state = tmpDir('tether-ecs-cli-');
    env = cliEnv(fake, state);
    ws = workspaceWith({ plugins: [] });
  });
  afterEach(async () => {
    await fake?.stop();
  });

  it('bad input is refused before any ledger intent (exit 2): a size Fargate does not offer, no image, no cluster', async () => {
    const base = ['provision', '--provider', 'ecs', '--name', 'bad', '--yes', '--workspace', ws];
    const size = await runCli([...base, '--type', 'fargate-1vcpu-1gb', '--image', IMAGE], env);
    assert.equal(size.code, 2, size.stderr);
    assert.match(size.stderr, /Fargate runs 1 vCPU with 2–8 GB in 1 GB steps, not 1 GB — Name an ECS task size as/);
    const gpu = await runCli([...base, '--type', 'fargate-4vcpu-16gb-1gpu', '--image', IMAGE], env);
    assert.equal(gpu.code, 2, gpu.stderr);
    assert.match(gpu.stderr, /Fargate has no GPUs/);
    const image = await runCli([...base, '--type', 'fargate-1vcpu-2gb'], env);
    assert.equal(image.code, 2, image.stderr);
    assert.match(image.stderr, /needs a container image .*--image/);
    const cluster = await runCli([...base, '--type', 'fargate-1vcpu-2gb', '--image', IMAGE, '--cluster', 'nope'], env);
    assert.equal(cluster.code, 1, cluster.stderr);
    assert.match(cluster.stderr, /the cluster "nope" does not exist .*create-cluster/);
    // Nothing was recorded, nothing ran.
    if (hasLedger(state)) {
      const l = ledgerOf(state);
      assert.deepEqual([l.resources.length, l.ended.length], [0, 0], JSON.stringify(l));
    }
    assert.equal(fake.requests.filter((r) => r.path === '/RunTask' || r.path === '/RegisterTaskDefinition').length, 0);
    // Without ECS configured at all, --provider ecs says how to configure it.
    const none = await runCli([...base, '--type', 'fargate-1vcpu-2gb', '--image', IMAGE], { ...env, TETHER_ECS_CLUSTER: '' });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no ecs account is configured — .*TETHER_ECS_CLUSTER \(or --cluster\)/);
  });

  it('types → provision (intent first) → status (running, $/h) → a foreign task stays unmanaged → terminate → cost by the minute minimum', async () => {
    const types = await runCli(['cloud', 'types', 'ecs', '--json', '--workspace', ws], env);
    assert.equal(types.code, 0, types.stderr);
    const t = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number }>).find((x) => x.name === 'fargate-1vcpu-2gb');
    assert.equal(t?.pricePerHour, 0.04937);
    const foreign = await fake.addForeign('nightly-etl');
    const args = ['provision', '--provider', 'ecs', '--type', 'fargate-1vcpu-2gb', '--image', IMAGE, '--name', 'trainer', '--workspace', ws];
    const unconfirmed = await runCli(args, env);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /this launches fargate-1vcpu-2gb at \$0\.05\/h \(\$1\.18\/day\) until you terminate it — Add --yes/);
    let intentSeen = false;
    fake.onCreate = () => {
      const rec = ledgerOf(state).resources.find((r) => r.plugin === 'trainer');
      assert.ok(rec, 'the intent is in the ledger when RunTask arrives');
      intentSeen = true;
    };
    const launch = await runCli([...args, '--yes'], env);
    assert.equal(launch.code, 0, launch.stderr);
    assert.deepEqual(fake.hookErrors, []);
    assert.ok(intentSeen);
    assert.match(launch.stdout, /^launched trainer: AWS ECS arn:aws:ecs:us-east-1:\d+:task\/default\/\S+ fargate-1vcpu-2gb us-east-1 at \$0\.05\/h/);
    const st = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'running' ? s : undefined;
    }, WAIT_MS, 'the task running');
    const mine = st.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(mine.managed, true);
    assert.equal(mine.pricePerHour, 0.04937);
    assert.equal(mine.canStop, undefined, 'a task cannot be stopped, only terminated');
    assert.match(mine.consoleUrl ?? '', /^https:\/\/us-east-1\.console\.aws\.amazon\.com\/ecs\/v2\/clusters\/default\/tasks\//);
    const other = st.cloud.instances.find((i) => i.id === foreign)!;
    assert.equal(other.managed, false);
    assert.equal(other.name, 'nightly-etl');
    const refuse = await runCli(['cloud', 'terminate', foreign, '--workspace', ws], env);
    assert.equal(refuse.code, 2);
    assert.match(refuse.stderr, /was not launched by Tether — Add --unmanaged/);
    // What ECS says of it: containers, and no log location (no awslogs configured).
    const desc = await runCli(['cloud', 'describe', 'trainer', '--workspace', ws], env);
    assert.equal(desc.code, 0, desc.stderr);
    assert.match(desc.stdout, /^trainer: running \(RUNNING\) fargate-1vcpu-2gb us-east-1 \$0\.0494\/h\n  id arn:aws:ecs:/);
    assert.match(desc.stdout, /\n  container main: RUNNING\n/);
    assert.match(desc.stdout, /logs: no awslogs log configuration/);
    const term = await runCli(['terminate', 'trainer', '--workspace', ws], env);
    assert.equal(term.code, 0, term.stderr);
    const stops = fake.requests.filter((r) => r.path === '/StopTask');
    assert.deepEqual(stops.map((r) => (r.body as { task: string }).task), [mine.id], 'one StopTask, for our task only');
    const after = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.some((i) => i.name === 'trainer') ? undefined : s;
    }, WAIT_MS, 'the task gone from status');
    assert.ok(after.cloud.instances.some((i) => i.id === foreign && i.status === 'running'), 'the foreign task was never touched');
    assert.equal(fake.requests.filter((r) => r.path === '/StopTask' && JSON.stringify(r.body).includes(foreign)).length, 0);
    // Fargate: per second, one-minute minimum — a task of a few seconds pays one minute.
    const cost = JSON.parse((await runCli(['cost', '--json', '--workspace', ws], env)).stdout) as { lines: Array<{ name: string; cost: number; provider: string }> };
    const line = cost.lines.find((l) => l.name === 'trainer')!;
    assert.equal(line.provider, 'ecs');
    assert.ok(Math.abs(line.cost - 0.04937 / 60) < 1e-6, `one minute at $0.04937/h, got ${line.cost}`);
  });

  it("cloud describe: a stopped task shows its containers' exit codes, its stop reason and its CloudWatch log group and stream", async () => {
    const logEnv = { ...env, TETHER_ECS_LOG_GROUP: '/tether/jobs', TETHER_ECS_EXECUTION_ROLE: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole' };
    const r = await runCli(['provision', '--provider', 'ecs', '--type', 'fargate-0.5vcpu-1gb', '--image', IMAGE, '--name', 'logged', '--yes', '--workspace', ws], logEnv);
    assert.equal(r.code, 0, r.stderr);
    const id = /task\/default\/(\S+)/.exec(r.stdout)![1]!;
    await waitFor(async () => /container main: RUNNING/.test((await runCli(['cloud', 'describe', 'logged', '--workspace', ws], logEnv)).stdout), WAIT_MS, 'running');
    fake.finish(`arn:aws:ecs:us-east-1:123456789012:task/default/${id}`, 2);
    const out = await waitFor(async () => {
      const d = await runCli(['cloud', 'describe', `arn:aws:ecs:us-east-1:123456789012:task/default/${id}`, '--workspace', ws], logEnv);
      return /\(STOPPED\)/.test(d.stdout) ? d.stdout : undefined;
    }, WAIT_MS, 'stopped');
    assert.match(out, /\n  container main: STOPPED, exit 2\n/);
    assert.match(out, /\n  stopped: Essential container in task exited \(EssentialContainerExited\)/);
    assert.match(out, new RegExp(`\\n  logs of main: CloudWatch /tether/jobs / tether/main/${id} — aws logs tail /tether/jobs --region us-east-1 --log-stream-names tether/main/${id} --follow`));
    const json = JSON.parse((await runCli(['cloud', 'describe', 'logged', '--json', '--workspace', ws], logEnv)).stdout) as { metadata: { stoppedAt?: string; startedAt?: string } };
    assert.ok(json.metadata.stoppedAt && json.metadata.startedAt && Date.parse(json.metadata.stoppedAt) >= Date.parse(json.metadata.startedAt));
  });

  it('an EC2-launched GPU task via --cluster: the size is resolved outside the Fargate list, priced $0 (its instance bills)', async () => {
    await fake.addContainerInstance('default');
    const r = await runCli(['provision', '--provider', 'ecs', '--cluster', 'default', '--type', 'ec2-1vcpu-2gb-1gpu', '--image', IMAGE, '--name', 'gpujob', '--yes', '--json', '--workspace', ws], { ...env, TETHER_ECS_CLUSTER: '' });
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as { gpuCount: number; pricePerHour: number; instanceType: string };
    assert.equal(v.instanceType, 'ec2-1vcpu-2gb-1gpu');
    assert.equal(v.gpuCount, 1);
    assert.equal(v.pricePerHour, 0);
    const run = fake.requests.find((x) => x.path === '/RunTask')!.body as { launchType: string; startedBy: string; tags: Array<{ key: string }> };
    assert.equal(run.launchType, 'EC2');
    assert.ok(run.startedBy.length <= 36 && run.startedBy.startsWith('tether-'));
    assert.ok(run.tags.some((x) => x.key === 'tether:ledger-id'));
    assert.equal((await runCli(['terminate', 'gpujob', '--workspace', ws], env)).code, 0);
  });
});

describe('ECS provisioning survives a crash at every step (the CLI killed; moto behind the ECS proxy)', function () {
  this.timeout(4 * WAIT_MS);
  before(function () {
    const why = EcsMotoFake.unavailable();
    if (why) skipBecause(this, `the ECS crash tests: ${why}`);
  });
  after(async () => {
    await EcsMotoFake.stopMoto();
  });
  for (const point of ['before-launch', 'after-launch', 'after-record'] as const) {
    it(`killed ${point}: after a restart no task is unknown to the ledger, and foreign tasks are left alone`, async () => {
      const fake = new EcsMotoFake({ provisionMs: 100, pendingMs: 100, stopStageMs: 100 });
      await fake.start();
      try {
        const state = tmpDir('tether-ecs-crash-');
        const env = cliEnv(fake, state);
        const ws = workspaceWith({ plugins: [] });
        const foreign = await fake.addForeign('someone-elses-job');
        const args = ['provision', '--provider', 'ecs', '--type', 'fargate-0.5vcpu-1gb', '--image', IMAGE, '--name', 'job', '--yes', '--workspace', ws];
        const crashed = await runCli(args, { ...env, TETHER_TEST_CRASH_AT: point });
        assert.equal(crashed.code, -1, `killed by SIGKILL: ${crashed.stderr}`);
        await sleep(200);
        const st = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
        const live = st.cloud.instances.filter((i) => i.status !== 'terminated' && i.id !== foreign);
        const ours = fake.instanceCount() - 1; // minus the foreign one
        assert.equal(ours, point === 'before-launch' ? 0 : 1);
        assert.ok(live.every((i) => i.managed && i.ledgerId), `every task is known to the ledger: ${JSON.stringify(live)}`);
        assert.equal(live.filter((i) => i.id).length, ours);
        if (point === 'before-launch') assert.deepEqual(live.map((i) => [i.status, i.id]), [['provisioning', null]]);
        const f = st.cloud.instances.find((i) => i.id === foreign);
        assert.equal(f?.managed, false, 'the foreign task is listed as unmanaged');
        for (const i of live) assert.equal((await runCli(['terminate', i.ledgerId!, '--workspace', ws], env)).code, 0);
        // Never touched: no write names the foreign task.
        assert.deepEqual(fake.requests.filter((r) => !/^\/(Describe|List)/.test(r.path) && JSON.stringify(r.body ?? {}).includes(foreign)), []);
        if (point !== 'before-launch') {
          const gone = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
          assert.ok(!gone.cloud.instances.some((i) => i.managed && i.status !== 'terminated'), 'nothing of ours still runs');
        }
      } finally {
        await fake.stop();
      }
    });
  }
});
