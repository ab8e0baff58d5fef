// conda itself is not installable on the test machines: these tests cover the command
// construction and the errors without a real conda (see test/integration/conda.test.ts for a
// run through a stand-in `conda` script).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CondaNotFoundError,
  condaRunCommand,
  envExists,
  findCondaTool,
  flavorOf,
  wrapCondaSpec,
} from '../../src/backends/conda/conda';
import { tmpDir } from '../helpers/tmp';

const exe = (dir: string, name: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return p;
};

describe('conda (no real conda on this machine: command construction and errors only)', () => {
  it('builds `conda run -n ENV --no-capture-output CMD ARGS` (no conda installed: pure construction)', () => {
    assert.deepEqual(condaRunCommand({ path: '/opt/conda/bin/conda', flavor: 'conda' }, 'ml', 'python', ['-m', 'http.server', '8000']), {
      command: '/opt/conda/bin/conda',
      args: ['run', '-n', 'ml', '--no-capture-output', 'python', '-m', 'http.server', '8000'],
    });
    assert.deepEqual(condaRunCommand({ path: '/x/micromamba', flavor: 'micromamba' }, 'ml', 'python', []).args, ['run', '-n', 'ml', 'python']);
    assert.deepEqual(condaRunCommand({ path: '/x/mamba', flavor: 'mamba' }, '/data/envs/ml', 'python', []).args, ['run', '-p', '/data/envs/ml', '--no-capture-output', 'python']);
    const spec = { name: 'train', command: 'python', args: ['train.py'], cwd: '.', env: {}, conda: 'torch' };
    assert.deepEqual(wrapCondaSpec(spec, { path: '/c/conda', flavor: 'conda' }), {
      ...spec,
      command: '/c/conda',
      args: ['run', '-n', 'torch', '--no-capture-output', 'python', 'train.py'],
    });
    const plain = { name: 'p', command: 'x', args: [], cwd: '.', env: {} };
    assert.equal(wrapCondaSpec(plain, { path: '/c/conda', flavor: 'conda' }), plain);
    assert.equal(flavorOf('/usr/local/bin/micromamba'), 'micromamba');
    assert.equal(flavorOf('/opt/mambaforge/bin/mamba'), 'mamba');
    assert.equal(flavorOf('/opt/conda/condabin/conda'), 'conda');
  });

  it('finds conda first, then micromamba, on PATH; an explicit executable or $CONDA_EXE wins (stand-in executables, no real conda)', () => {
    const a = tmpDir('tether-conda-a-');
    const b = tmpDir('tether-conda-b-');
    const mm = exe(b, 'micromamba');
    assert.deepEqual(findCondaTool({ env: { PATH: `${a}:${b}` } }), { path: mm, flavor: 'micromamba' });
    const conda = exe(a, 'conda');
    assert.deepEqual(findCondaTool({ env: { PATH: `${a}:${b}` } }), { path: conda, flavor: 'conda' });
    assert.deepEqual(findCondaTool({ env: { PATH: `${a}:${b}` }, executable: 'micromamba' }), { path: mm, flavor: 'micromamba' });
    assert.deepEqual(findCondaTool({ env: { PATH: '', TETHER_CONDA_EXE: mm } }), { path: mm, flavor: 'micromamba' });
    const other = exe(tmpDir('tether-conda-c-'), 'conda');
    assert.equal(findCondaTool({ env: { PATH: `${a}`, CONDA_EXE: other } }).path, other);
  });

  it('missing conda (none installed here): the error names everything it looked for and how to fix it', () => {
    const empty = tmpDir('tether-noconda-');
    assert.throws(
      () => findCondaTool({ env: { PATH: empty } }, 'train'),
      (e: unknown) => {
        assert.ok(e instanceof CondaNotFoundError, String(e));
        assert.match(e.message, /^train: neither conda nor micromamba was found \(looked for conda on PATH, micromamba on PATH, mamba on PATH; PATH=/);
        assert.match(e.message, new RegExp(empty));
        assert.match(e.remedy, /Install Miniforge \(conda\) or micromamba/);
        assert.equal(e.exitCode, 2);
        return true;
      },
    );
    assert.throws(() => findCondaTool({ env: { PATH: empty }, executable: '/opt/nowhere/conda' }), /configured conda executable "\/opt\/nowhere\/conda" was not found/);
  });

  it('matches environments by name, "base" and prefix', () => {
    const envs = ['/opt/conda', '/opt/conda/envs/ml', '/home/u/envs/tools'];
    assert.ok(envExists('ml', envs));
    assert.ok(envExists('tools', envs));
    assert.ok(envExists('base', envs));
    assert.ok(envExists('/home/u/envs/tools', envs));
    assert.ok(!envExists('torch', envs));
    assert.ok(!envExists('/opt/conda/envs/torch', envs));
  });
});
