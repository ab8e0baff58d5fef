// Cloud instances through the real `tether` CLI, against a fake Lambda Cloud server that follows
// the published API (the real API cannot be called from tests).
import { strict as assert } from 'node:assert';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { runCli } from '../helpers/cli';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';

describe('tether CLI with a cloud provider (fake Lambda Cloud server)', function () {
  this.timeout(60000);
  let fake: FakeLambdaServer;
  let env: Record<string, string>;
  let ws: string;
  before(async () => {
    fake = new FakeLambdaServer({ bootMs: 200, terminateMs: 200 });
    await fake.start();
    env = { TETHER_STATE_DIR: tmpDir('tether-cloud-cli-'), LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
    ws = workspaceWith({ plugins: [] });
  });
  after(async () => {
    await fake?.stop();
  });

  it('types → launch (intent first) → status shows it billing → terminate; a foreign instance stays unmanaged', async () => {
    const types = await runCli(['cloud', 'types', 'lambda_labs', '--json', '--workspace', ws], env);
    assert.equal(types.code, 0, types.stderr);
    const a10 = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number }>).find((t) => t.name === 'gpu_1x_a10');
    assert.equal(a10?.pricePerHour, 0.75);
    const foreign = fake.addForeign('someone-elses-box');
    const args = ['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'trainer', '--workspace', ws];
    const unconfirmed = await runCli(args, env);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /this launches gpu_1x_a10 in us-east-1 at \$0\.75\/h \(\$18\.00\/day\) until you terminate it — Add --yes/);
    assert.equal(fake.instanceCount(), 1, 'nothing launched without --yes (only the foreign one)');
    const launch = await runCli([...args, '--yes'], env);
    assert.equal(launch.code, 0, launch.stderr);
    assert.match(launch.stdout, /^launched trainer: Lambda Cloud \S+ gpu_1x_a10 us-east-1 at \$0\.75\/h/);
    assert.equal(fake.instanceCount(), 2);
    const st = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'running' ? s : undefined;
    }, 10000, 'the instance running');
    const mine = st.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(mine.managed, true);
    assert.equal(mine.status, 'running');
    assert.equal(mine.pricePerHour, 0.75);
    assert.equal(st.totals.costPerHour, 0.75);
    const other = st.cloud.instances.find((i) => i.id === foreign)!;
    assert.equal(other.managed, false);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /trainer\s+Lambda Cloud \S+ running .*\$0\.75\/h/);
    assert.match(human.stdout, /\(unmanaged\)/);
    const refuse = await runCli(['cloud', 'terminate', foreign, '--workspace', ws], env);
    assert.equal(refuse.code, 2);
    assert.match(refuse.stderr, /was not launched by Tether — Add --unmanaged/);
    const term = await runCli(['terminate', 'trainer', '--workspace', ws], env);
    assert.equal(term.code, 0, term.stderr);
    const after = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.some((i) => i.name === 'trainer') ? undefined : s;
    }, 10000, 'the instance gone');
    assert.equal(after.cloud.instances.some((i) => i.name === 'trainer'), false);
    assert.equal(after.totals.costPerHour, 0);
    assert.ok(after.cloud.instances.some((i) => i.id === foreign && i.status === 'running'), 'the foreign instance was never touched');
    // What it cost, by Lambda's rule (per started minute): a run of a few seconds pays one minute.
    const cost = JSON.parse((await runCli(['cost', '--json', '--workspace', ws], env)).stdout) as { lines: Array<{ name: string; cost: number; endedAt: string | null }>; total: number };
    const line = cost.lines.find((l) => l.name === 'trainer')!;
    assert.ok(Math.abs(line.cost - 0.75 / 60) < 1e-9, `one minute at $0.75/h, got ${line.cost}`);
    assert.ok(line.endedAt);
    const csv = (await runCli(['cost', '--csv', '--workspace', ws], env)).stdout;
    assert.match(csv, /^ledger_id,name,provider,instance_type,usd_per_hour,started_at,ended_at,cost_usd\r\n[^,]+,trainer,lambda_labs,gpu_1x_a10,0\.75,/);
    const future = await runCli(['cost', '--since', '2999-01-01', '--json', '--workspace', ws], env);
    assert.equal((JSON.parse(future.stdout) as { total: number }).total, 0);
    assert.equal((await runCli(['cost', '--since', 'yesterday-ish', '--workspace', ws], env)).code, 2);
  });

  it('time limit and dead man\'s switch from the command line: bad values refused; a switch on an unreachable instance says why', async () => {
    const base = ['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'limited', '--yes', '--workspace', ws];
    const bad = await runCli([...base, '--time-limit', '0'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--time-limit must be a number of hours above 0/);
    assert.equal((await runCli([...base, '--deadman', 'soon'], env)).code, 2);
    const before = fake.instanceCount();
    const ok = await runCli([...base, '--time-limit', '1.5', '--deadman', '30'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fake.instanceCount(), before + 1);
    const st = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      const v = s.cloud.instances.find((i) => i.name === 'limited');
      return v?.status === 'running' && v.deadman?.state === 'error' ? v : undefined;
    }, 15000, 'the instance running, its switch not armable');
    // The fake's instance answers on 127.0.0.1:22, where nothing listens: the switch cannot be armed, and says so.
    assert.equal(st.deadman?.minutes, 30);
    const limit = Date.parse(st.timeLimitAt ?? '') - Date.now();
    assert.ok(limit > 1.4 * 3_600_000 && limit <= 1.5 * 3_600_000, `ends in 1.5 h (${limit} ms)`);
    assert.match(st.deadman?.detail ?? '', /refused|unreachable|connect/i);
    assert.match(st.deadman?.effect ?? '', /Lambda Cloud: a shutdown from inside does NOT terminate the instance/);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /limited .* dead-man 30m error/);
    const again = await runCli(['deadman', 'limited', '--minutes', '45', '--workspace', ws], env);
    assert.equal(again.code, 1, 'cannot arm: exit 1');
    assert.match(again.stdout, /limited: dead man's switch requested; not armed yet: .*: 45 min without Tether and it shuts down\.\nLambda Cloud: a shutdown/);
    const dis = await runCli(['deadman', 'limited', '--disarm', '--workspace', ws], env);
    assert.equal(dis.code, 0, dis.stderr);
    assert.match(dis.stdout, /limited: the instance is not reachable over SSH|limited: no dead man/);
    assert.equal((await runCli(['terminate', 'limited', '--workspace', ws], env)).code, 0);
  });

  it('a wrong API key: the provider error with a remedy, the key never printed', async () => {
    const r = await runCli(['cloud', 'types', 'lambda_labs', '--workspace', ws], { ...env, LAMBDA_API_KEY: 'wrong-secret-key-123' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Lambda Cloud: .*— .*API key/i);
    assert.doesNotMatch(r.stderr + r.stdout, /wrong-secret-key-123/);
  });
});

describe('provisioning survives a crash at every step (the CLI killed; fake Lambda Cloud server)', function () {
  this.timeout(60000);
  for (const point of ['before-launch', 'after-launch', 'after-record'] as const) {
    it(`killed ${point}: after a restart no instance is unknown to the ledger`, async () => {
      const fake = new FakeLambdaServer({ bootMs: 100, terminateMs: 100 });
      await fake.start();
      try {
        const env = { TETHER_STATE_DIR: tmpDir('tether-crash-'), LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
        const ws = workspaceWith({ plugins: [] });
        const args = ['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'job', '--yes', '--workspace', ws];
        const crashed = await runCli(args, { ...env, TETHER_TEST_CRASH_AT: point });
        assert.equal(crashed.code, -1, `killed by SIGKILL: ${crashed.stderr}`);
        // Restart: the next status reconciles the provider's list with the ledger.
        await sleep(200);
        const st = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
        const live = st.cloud.instances.filter((i) => i.status !== 'terminated');
        assert.equal(fake.instanceCount(), point === 'before-launch' ? 0 : 1);
        assert.ok(live.every((i) => i.managed && i.ledgerId), `every instance is known to the ledger: ${JSON.stringify(live)}`);
        // Every instance the provider has is known; an intent that never reached the provider stays
        // visible (no id) until a poll proves nothing exists, and can be closed by hand.
        assert.equal(live.filter((i) => i.id).length, fake.instanceCount());
        if (point === 'before-launch') assert.deepEqual(live.map((i) => [i.status, i.id]), [['provisioning', null]]);
        for (const i of live) assert.equal((await runCli(['terminate', i.ledgerId!, '--workspace', ws], env)).code, 0);
      } finally {
        await fake.stop();
      }
    });
  }
});
