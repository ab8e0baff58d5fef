// Bad input gets a clear error before any ledger intent: an instance name with control characters
// (a newline splits `status` lines and the CSV; escape sequences rewrite the terminal) is refused.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('tether provision: instance names', function () {
  this.timeout(120_000);
  let fake: FakeLambdaServer;
  before(async () => {
    fake = new FakeLambdaServer({ bootMs: 200, terminateMs: 200 });
    await fake.start();
  });
  after(async () => {
    await fake?.stop();
  });

  it('a name with a newline, a tab or an escape sequence is refused with a clear error; no intent, no launch', async () => {
    const state = tmpDir('tether-names-');
    const env = { TETHER_STATE_DIR: state, LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
    const ws = workspaceWith({ plugins: [] });
    const before = fake.instanceCount();
    for (const name of ['a\nb', 'tab\there', 'red\u001b[31m', 'nul\u0000x'.replace('\u0000', '\u007f')]) {
      const r = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', name, '--yes', '--workspace', ws], env);
      assert.equal(r.code, 2, `${JSON.stringify(name)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /control character/);
    }
    assert.equal(fake.instanceCount(), before, 'nothing launched');
    const file = path.join(state, 'ledger.json');
    if (fs.existsSync(file)) {
      const body = (JSON.parse(fs.readFileSync(file, 'utf8')) as { body: { resources: unknown[]; ended: unknown[] } }).body;
      assert.equal(body.resources.length + body.ended.length, 0, 'no intent was written');
    }
    const ok = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'fine-name', '--yes', '--workspace', ws], env);
    assert.equal(ok.code, 0, ok.stderr);
    await runCli(['terminate', 'fine-name', '--workspace', ws], env);
  });
});
