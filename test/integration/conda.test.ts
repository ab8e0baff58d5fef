// conda is not installable on the test machines: these tests run the real lifecycle (ledger,
// process tree, stop) through a STAND-IN `conda` script (test/fixtures/fake-conda.sh) that does
// what `conda run` does: it stays the parent and runs the command as its child.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import { ProcessTracker } from '../../src/core/processTracker';
import { isSameProcessAlive, readCmdline } from '../../src/core/procfs';
import { CondaEnvNotFoundError, CondaNotFoundError, CondaPlugin } from '../../src/backends/conda/conda';
import { currentOwner } from '../../src/backends/local/subprocess';
import { tmpDir, waitFor } from '../helpers/tmp';

const FAKE = path.resolve(__dirname, '..', 'fixtures', 'fake-conda.sh');

describe('conda plugin through a stand-in `conda` script (conda itself is not installed here)', function () {
  this.timeout(20_000);
  let root: string;
  let bin: string;
  let env: NodeJS.ProcessEnv;
  let ledger: Ledger;
  const deps = () => ({ workspace: tmpDir('tether-cws-'), ledger, tracker: new ProcessTracker(), owner: currentOwner('vscode'), log: silentLogger });

  beforeEach(() => {
    root = tmpDir('tether-fakeconda-');
    fs.mkdirSync(path.join(root, 'envs', 'ml', 'bin'), { recursive: true });
    bin = tmpDir('tether-fakeconda-bin-');
    fs.symlinkSync(FAKE, path.join(bin, 'conda'));
    env = { PATH: `${bin}:${process.env.PATH}`, FAKE_CONDA_ROOT: root };
    ledger = new Ledger(tmpDir('tether-cstate-'));
  });

  it('runs the command inside the env (stand-in conda run), reports conda_env, tracks and stops the whole tree', async () => {
    const spec = { name: 'train', command: 'sh', args: ['-c', 'echo "in $CONDA_DEFAULT_ENV"; sleep 300'], cwd: '.', env: { FAKE_CONDA_ROOT: root }, conda: 'ml' };
    const p = new CondaPlugin(spec, deps(), { env: { ...process.env, ...env } });
    assert.equal(p.getExecutionMode(), 'conda_env');
    const saved = process.env.PATH;
    process.env.PATH = env.PATH; // the spawned wrapper is looked up by absolute path; PATH is for `sleep` etc.
    try {
      const rec = await p.start();
      assert.equal(rec.executionMode, 'conda_env');
      assert.equal(rec.kind, 'local');
      assert.deepEqual(rec.command!.args.slice(0, 4), ['run', '-n', 'ml', '--no-capture-output']);
      const res = p.getManagedResources();
      assert.equal(res.conda_env, 'ml');
      assert.equal(res.conda_executable, path.join(bin, 'conda'));
      const [root0] = p.getChildPids();
      assert.match(readCmdline(root0!).join(' '), /conda run -n ml --no-capture-output sh -c/);
      // The wrapper is the parent; the command and its `sleep` run below it.
      const tree = await waitFor(async () => ((await p.refresh()).length >= 3 ? p.refresh() : undefined), 5000, 'the tree under conda run');
      assert.ok(tree.some((x) => x.command.startsWith('sleep 300')), tree.map((x) => x.command).join(' | '));
      await waitFor(() => fs.readFileSync(p.logPath, 'utf8').includes('in ml'), 3000, 'output in the log');
      const report = await p.stop(1000);
      assert.ok(report!.processes.length >= 3);
      assert.deepEqual(report!.survivors, []);
      for (const x of tree) assert.ok(!isSameProcessAlive(x), `pid ${x.pid} survived`);
      assert.equal(ledger.read().ended[0]!.state, 'stopped');
    } finally {
      process.env.PATH = saved;
    }
  });

  it('an env that does not exist: a clear error naming the env, the executable and the envs it knows; nothing started', async () => {
    const p = new CondaPlugin({ name: 'train', command: 'python', args: [], cwd: '.', env: {}, conda: 'torch' }, deps(), { env });
    await assert.rejects(p.start(), (e: unknown) => {
      assert.ok(e instanceof CondaEnvNotFoundError, String(e));
      assert.match(e.message, new RegExp(`conda environment "torch" was not found by ${path.join(bin, 'conda')} \\(it knows: .*ml\\)`));
      assert.match(e.remedy, /conda create -n torch/);
      return true;
    });
    assert.deepEqual(ledger.read().resources, []);
  });

  it('no conda and no micromamba on PATH: the error names what was looked for; nothing started', async () => {
    const p = new CondaPlugin({ name: 'train', command: 'python', args: [], cwd: '.', env: {}, conda: 'ml' }, deps(), { env: { PATH: tmpDir('tether-empty-') } });
    await assert.rejects(p.start(), (e: unknown) => e instanceof CondaNotFoundError && /looked for conda on PATH, micromamba on PATH/.test(e.message));
    assert.deepEqual(ledger.read().resources, []);
  });
});
