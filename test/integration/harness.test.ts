/**
 * The real-VS-Code harness (scripts/harness.mjs) on a fresh machine: its inner `npm install`
 * runs with a clean environment. On a fresh machine `npm start` failed after six minutes: the
 * harness handed the `npm_config_user_agent=npm/… node/v20…` that `npm start` exported to its
 * inner `npm install code-server`, whose postinstall then read "node v20" and refused although
 * Node 24 ran it. This test takes the same path, fast and offline: from inside an `npm run`
 * script, the harness's npmInstall installs a local package (test/fixtures/npm-clean-env/pkg)
 * into an EMPTY temporary harness cache; the package's postinstall checks the user agent's Node
 * major against the Node that runs it, refuses any outer npm configuration, and leaves a marker.
 *
 * This machine has one Node, so the outer npm is given a user agent naming another Node (v18),
 * which it exports to its script exactly as npm on Node 20 exported its own; the outer project's
 * .npmrc adds a configuration (tether-canary) that must not reach the inner install either.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');
const fixture = path.join(root, 'test', 'fixtures', 'npm-clean-env');

describe('harness: the inner npm install runs with a clean environment (cold cache, inside `npm run`)', function () {
  // Two npm runs and one offline install of a 1-file package: seconds; generous for a loaded machine.
  this.timeout(300_000);
  let work = '';
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("installs a package whose postinstall checks the Node major (like code-server's) into an empty harness cache, and the postinstall really ran", async () => {
    work = tmpDir('tether-harness-npm-');
    const { cleanNpmEnv } = await import('../../scripts/harness.mjs');
    const env0 = cleanNpmEnv({ env: process.env });

    // The fixture as a tarball (what a registry serves), packed without any outer npm's config.
    const pack = spawnSync('npm', ['pack', '--silent', '--pack-destination', work, path.join(fixture, 'pkg')], { cwd: work, env: env0, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = path.join(work, pack.stdout.trim().split('\n').pop()!);
    assert.ok(fs.existsSync(tgz), tgz);

    // An outer project whose `npm run` script runs the harness's install.
    const outer = path.join(work, 'outer');
    fs.mkdirSync(outer);
    fs.writeFileSync(
      path.join(outer, 'package.json'),
      JSON.stringify({ name: 'outer', version: '1.0.0', private: true, scripts: { 'install-fixture': `node ${JSON.stringify(path.join(fixture, 'install-with-harness.mjs'))}` } }),
    );
    fs.writeFileSync(path.join(outer, '.npmrc'), 'tether-canary=outer-npm-config\n');
    const cache = path.join(work, 'harness-cache'); // does not exist yet: a fresh machine
    const r = spawnSync('npm', ['run', 'install-fixture'], {
      cwd: outer,
      env: {
        ...env0,
        TETHER_HARNESS_CACHE: cache,
        FIXTURE_TGZ: tgz,
        npm_config_user_agent: 'npm/11.19.1 node/v18.20.8 linux x64 workspaces/false',
      },
      encoding: 'utf8',
    });
    const prefix = path.join(cache, 'fixture');
    const installLog = fs.existsSync(path.join(prefix, 'install.log')) ? fs.readFileSync(path.join(prefix, 'install.log'), 'utf8') : '(no install.log)';
    const why = `rc ${r.status}\n${r.stdout}\n${r.stderr}\ninstall.log:\n${installLog}`;

    // The script did run inside `npm run`, with the outer npm's variables in its environment.
    const outerEnv = JSON.parse(fs.readFileSync(path.join(work, 'outer-env.json'), 'utf8')) as Record<string, string>;
    assert.match(outerEnv.npm_config_user_agent ?? '', /node\/v18\./, 'the outer npm exported its user agent');
    assert.equal(outerEnv.npm_config_tether_canary, 'outer-npm-config', 'the outer npm exported its .npmrc');
    assert.equal(outerEnv.npm_lifecycle_event, 'install-fixture');

    assert.equal(r.status, 0, why);
    // The postinstall really ran (npm 11 may skip dependencies' install scripts) under this Node,
    // and saw the inner npm's own user agent.
    const marker = path.join(prefix, 'node_modules', 'tether-fixture-postinstall', 'postinstall-ran.json');
    assert.ok(fs.existsSync(marker), `the postinstall did not run: ${why}`);
    const ran = JSON.parse(fs.readFileSync(marker, 'utf8')) as { node: string; userAgent: string };
    assert.equal(ran.node, process.version);
    assert.match(ran.userAgent, new RegExp(`node/${process.version.replace(/\./g, '\\.')}\\b`));
    assert.match(installLog, /^done 0$/m);
  });

  it('cleanNpmEnv drops what an outer npm exported and keeps the rest', async () => {
    const { cleanNpmEnv } = await import('../../scripts/harness.mjs');
    const env = cleanNpmEnv({
      env: {
        HOME: '/home/u',
        CI: 'true',
        npm_config_user_agent: 'npm/11 node/v20',
        npm_config_cache: '/x',
        NPM_CONFIG_GLOBAL: 'true',
        npm_lifecycle_event: 'start',
        npm_lifecycle_script: 'node scripts/start.mjs',
        npm_package_name: 'tether',
        npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js',
        npm_node_execpath: '/usr/bin/node',
        npm_command: 'run-script',
        INIT_CWD: '/repo',
        NODE: '/usr/bin/node',
        PATH: '/repo/node_modules/.bin:/node_modules/.bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:/usr/local/bin:/usr/bin',
      },
      pathFirst: ['/opt/node24/bin'],
      config: { nodedir: '/opt/node24' },
    });
    assert.deepEqual(env, { HOME: '/home/u', CI: 'true', PATH: '/opt/node24/bin:/usr/local/bin:/usr/bin', npm_config_nodedir: '/opt/node24' });
  });
});
