// `tether provision` refuses a launch that would cross a hard-cap budget (auto-terminate), as the
// VS Code wizard does: before any ledger intent or provider call, exit 2, naming the budget and
// what is left; --yes does not override it. Ended records count. Fake Lambda Cloud server.
import { strict as assert } from 'node:assert';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import { Ledger } from '../../src/core/ledger';
import type { StatusReport } from '../../src/workspace/engine';

describe('tether provision and hard-cap budgets (fake Lambda Cloud server)', function () {
  this.timeout(180000);
  let fake: FakeLambdaServer;
  let env: Record<string, string>;
  let stateDir: string;
  let ws: string;
  before(async () => {
    fake = new FakeLambdaServer({ bootMs: 200, terminateMs: 200 });
    await fake.start();
    ws = workspaceWith({ plugins: [] });
  });
  beforeEach(() => {
    stateDir = tmpDir('tether-provbudget-');
    env = { TETHER_STATE_DIR: stateDir, LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
  });
  after(async () => {
    await fake?.stop();
  });
  const launches = () => fake.requests.filter((r) => /instance-operations\/launch$/.test(r.path)).length;
  const provision = (name: string, extra: string[] = ['--yes']) =>
    runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--name', name, '--ssh-key', 'laptop', ...extra, '--workspace', ws], env);

  it('a $0.50 hard cap refuses a $0.75/h launch, with or without --yes; nothing is written or launched', async () => {
    const set = await runCli(['budget', 'set', 'gpu cap', '--limit', '0.50', '--period', 'day', '--provider', 'lambda', '--auto-terminate'], env);
    assert.equal(set.code, 0, set.stderr);
    const before = launches();
    for (const extra of [['--yes'], []]) {
      const r = await provision('pricey', extra);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /hard cap "gpu cap": \$0\.00 spent \+ \$0\.75 for the first hour > \$0\.50 per day \(\$0\.50 left\).*tether budget set/);
    }
    assert.equal(launches(), before, 'no launch request');
    const body = new Ledger(stateDir).read();
    assert.equal(body.resources.length + body.ended.length, 0, 'no ledger intent');
  });

  it('ended records count; a warn-only budget or another provider\'s cap does not refuse', async () => {
    const first = await provision('first');
    assert.equal(first.code, 0, first.stderr);
    await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'first' && i.status === 'running');
    }, 30000, 'first running');
    const term = await runCli(['terminate', 'first'], env);
    assert.equal(term.code, 0, term.stderr);
    assert.equal(new Ledger(stateDir).read().ended.filter((r) => r.kind === 'cloud').length, 1);
    // Lambda bills the started minute: $0.0125 spent; $0.0125 + $0.75 > $0.76.
    for (const args of [
      ['budget', 'set', 'warn only', '--limit', '0.76', '--period', 'day'],
      ['budget', 'set', 'runpod cap', '--limit', '0.01', '--period', 'day', '--provider', 'runpod', '--auto-terminate'],
    ]) assert.equal((await runCli(args, env)).code, 0);
    const allowed = await provision('second');
    assert.equal(allowed.code, 0, allowed.stderr);
    const term2 = await runCli(['terminate', 'second'], env);
    assert.equal(term2.code, 0, term2.stderr);
    assert.equal((await runCli(['budget', 'set', 'all cap', '--limit', '0.76', '--period', 'lifetime', '--auto-terminate'], env)).code, 0);
    const before = launches();
    const refused = await provision('third');
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /hard cap "all cap": \$0\.0\d spent \+ \$0\.75 for the first hour > \$0\.76 per lifetime \(\$0\.7\d left\)/);
    assert.equal(launches(), before);
  });
});
