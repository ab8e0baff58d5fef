// `npm start` builds only when a build input is newer than dist/ (scripts/harness.mjs buildFreshness).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';

describe('build freshness (npm start builds only what changed)', () => {
  let repo = '';
  const write = (f: string, atSec: number) => {
    const p = path.join(repo, f);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, 'x');
    fs.utimesSync(p, atSec, atSec);
  };
  const touchDir = (d: string, atSec: number) => fs.utimesSync(path.join(repo, d), atSec, atSec);
  beforeEach(() => {
    repo = tmpDir('tether-fresh-');
    for (const f of ['package.json', 'package-lock.json', 'README.md', 'src/core/a.ts', 'src/extension.ts', 'media/icon.png']) write(f, 1000);
    for (const d of ['src/core', 'src', 'media']) touchDir(d, 1000);
    for (const f of ['dist/extension.js', 'dist/cli.js', 'dist/tether.vsix']) write(f, 2000);
  });
  afterEach(() => fs.rmSync(repo, { recursive: true, force: true }));

  it('is fresh when dist/ is newer than src/, media/ and package.json; stale when any input is newer or an output is missing', async () => {
    const { buildFreshness } = await import('../../scripts/harness.mjs');
    assert.deepEqual(buildFreshness(repo), { fresh: true });
    write('src/core/a.ts', 3000);
    assert.deepEqual(buildFreshness(repo), { fresh: false, stale: 'src changed after the last build' });
    write('src/core/a.ts', 1000);
    touchDir('src/core', 1000);
    assert.equal(buildFreshness(repo).fresh, true);
    write('media/icon.png', 3000);
    assert.equal(buildFreshness(repo).fresh, false);
    write('media/icon.png', 1000);
    touchDir('media', 1000);
    write('package.json', 3000);
    assert.deepEqual(buildFreshness(repo), { fresh: false, stale: 'package.json changed after the last build' });
    write('package.json', 1000);
    // A deleted source file changes its folder's mtime.
    fs.rmSync(path.join(repo, 'src/core/a.ts'));
    assert.equal(buildFreshness(repo).fresh, false);
    touchDir('src/core', 1000);
    assert.equal(buildFreshness(repo).fresh, true);
    fs.rmSync(path.join(repo, 'dist/tether.vsix'));
    assert.deepEqual(buildFreshness(repo), { fresh: false, stale: 'dist/tether.vsix is missing' });
  });

  it('npm ci runs when node_modules is missing or package-lock.json changed, never into a symlinked (shared) node_modules', async () => {
    const { dependenciesState, stampDependencies } = await import('../../scripts/harness.mjs');
    assert.deepEqual(dependenciesState(repo), { install: true, why: 'node_modules is missing' });
    write('node_modules/.package-lock.json', 500); // older than package-lock.json (1000)
    assert.equal(dependenciesState(repo).install, true);
    stampDependencies(repo);
    assert.deepEqual(dependenciesState(repo), { install: false });
    write('package-lock.json', 5000); // touched, same content: nothing to do
    assert.deepEqual(dependenciesState(repo), { install: false });
    fs.writeFileSync(path.join(repo, 'package-lock.json'), '{"changed":true}');
    assert.deepEqual(dependenciesState(repo), { install: true, why: 'package-lock.json changed since the last npm ci' });
    // A worktree whose node_modules links to another checkout's: left alone whatever the mtimes.
    const other = tmpDir('tether-fresh-other-');
    try {
      fs.rmSync(path.join(repo, 'node_modules'), { recursive: true });
      fs.symlinkSync(other, path.join(repo, 'node_modules'));
      assert.equal(dependenciesState(repo).install, false);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
