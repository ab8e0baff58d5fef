// Invalid budgets are never dropped without a word: a settings budget the one-time migration could
// not take (e.g. provider "lambda" instead of "lambda_labs") and a damaged policy file are said by
// `tether budget list` and `tether status` (a warning on stderr), until fixed.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';
import { migrateSettings, readPolicy } from '../../src/fleet/policy';

describe('invalid budgets are reported (migration and policy file; CLI)', function () {
  this.timeout(120000);
  const ws = workspaceWith({ plugins: [] });

  it('a settings budget with provider "lambda" is skipped by the migration and reported by budget list and status until set again', async () => {
    const stateDir = tmpDir('tether-polwarn-');
    const env = { TETHER_STATE_DIR: stateDir };
    const r = await migrateSettings(stateDir, {
      budgets: [
        { name: 'gpu cap', limitUsd: 5, period: 'day', provider: 'lambda', autoTerminate: true },
        { name: 'all', limitUsd: 50, period: 'month' },
      ],
    });
    assert.deepEqual(r?.budgets, ['all']);
    assert.match(r!.skipped.join('\n'), /tether\.budgets\[0\]: "provider" must be one of lambda_labs, runpod, vast_ai, aws(, [a-z_]+)*, got "lambda"/);
    assert.deepEqual(readPolicy(stateDir).budgets.map((b) => b.name), ['all']);
    const warning = /tether: warning: a budget "gpu cap" of your VS Code settings was not moved into .*policy\.json and is not enforced: .*got "lambda" — set it again with `tether budget set "gpu cap" …`/;
    for (const args of [['budget', 'list'], ['budget', 'list', '--json'], ['status', '--workspace', ws], ['status', '--json', '--workspace', ws]]) {
      const out = await runCli(args, env);
      assert.equal(out.code, 0, `${args.join(' ')}: ${out.stderr}`);
      assert.match(out.stderr, warning, args.join(' '));
      if (args.includes('--json')) JSON.parse(out.stdout); // stdout stays machine-readable
    }
    // Set again under its name: the warning goes.
    const set = await runCli(['budget', 'set', 'gpu cap', '--limit', '5', '--period', 'day', '--provider', 'lambda', '--auto-terminate'], env);
    assert.equal(set.code, 0, set.stderr);
    for (const args of [['budget', 'list'], ['status', '--workspace', ws]]) {
      const out = await runCli(args, env);
      assert.equal(out.code, 0, out.stderr);
      assert.doesNotMatch(out.stderr, /warning/, args.join(' '));
    }
    assert.deepEqual(readPolicy(stateDir).budgets.map((b) => [b.name, b.provider]), [['all', undefined], ['gpu cap', 'lambda_labs']]);
  });

  it('a policy file with an invalid budget: status warns that nothing of it is enforced (budget list fails with the same cause)', async () => {
    const stateDir = tmpDir('tether-polwarn-');
    const env = { TETHER_STATE_DIR: stateDir };
    fs.writeFileSync(
      path.join(stateDir, 'policy.json'),
      JSON.stringify({ format: 'tether-policy/1', budgets: [{ name: 'gpu', limitUsd: 5, period: 'day', provider: 'lambda', autoTerminate: true }] }),
      { mode: 0o600 },
    );
    const st = await runCli(['status', '--workspace', ws], env);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stderr, /tether: warning: The policy file .*policy\.json is damaged \(budgets\[0\]: "provider" must be one of lambda_labs, runpod, vast_ai, aws(, [a-z_]+)*, got "lambda"\)/);
    const list = await runCli(['budget', 'list'], env);
    assert.equal(list.code, 1);
    assert.match(list.stderr, /got "lambda"/);
  });
});
