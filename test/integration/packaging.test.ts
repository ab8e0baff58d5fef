// The .vsix a user installs: what it contains, and that the bundles stand on their own.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { zipEntries } from '../helpers/zip';
import { skipBecause } from '../helpers/skip';
import { probeBundle } from '../helpers/bundleProbe';
import { tmpDir, workspaceWith } from '../helpers/tmp';
import { freePort } from '../helpers/net';

const root = path.resolve(__dirname, '..', '..');
const vsix = path.join(root, 'dist', 'tether.vsix');
const chunkDir = path.join(root, 'dist', 'chunks');
const chunks = () => (fs.existsSync(chunkDir) ? fs.readdirSync(chunkDir).filter((f) => f.endsWith('.js')) : []);

/** The main bundle's limit (issue #14: activation in every window must stay cheap). */
const MAIN_BUNDLE_MAX_BYTES = 300_000;
/** Strings only each heavy library's own code holds (checked against src/ below). */
const HEAVY: Record<string, string> = {
  '@aws-sdk/client-ec2': '2016-11-15', // the EC2 API version the SDK sends
  '@aws-sdk/client-pricing': 'AWSPriceListService',
  '@aws-sdk/client-ecs': 'AmazonEC2ContainerServiceV20141113', // the ECS API's target prefix
  'the AWS SDK signer (@smithy/signature-v4)': 'X-Amz-Date',
  ssh2: 'SSH-2.0-ssh2js',
  dockerode: '/containers/json',
};
const heavyIn = (file: string) => {
  const code = fs.readFileSync(file, 'utf8');
  return Object.entries(HEAVY)
    .filter(([, sig]) => code.includes(sig))
    .map(([lib]) => lib);
};

describe('packaging (dist/tether.vsix)', function () {
  before(function () {
    if (!fs.existsSync(vsix)) {
      if (process.env.TETHER_REQUIRE_VSIX) throw new Error('dist/tether.vsix is missing: run `npm run package`');
      skipBecause(this, 'dist/tether.vsix is missing: run `npm run package` (`npm test` packages first and sets TETHER_REQUIRE_VSIX)');
    }
  });

  it('contains the bundles, types, media, manifest, README and LICENSE — and nothing else', () => {
    const entries = zipEntries(vsix);
    const files = entries.filter((e) => e.startsWith('extension/')).map((e) => e.slice('extension/'.length));
    console.log(`      vsix contents (${files.length} files): ${files.join(', ')}`);
    for (const must of ['package.json', 'readme.md', 'LICENSE.txt', 'dist/extension.js', 'dist/cli.js', 'dist/types/api.d.ts', 'media/icon.png', 'media/tether.svg', 'media/tether.schema.json']) {
      assert.ok(files.includes(must), `missing ${must}`);
    }
    // The chunks the bundles load on first use (the AWS SDKs, ssh2, dockerode, the provider clients).
    assert.ok(chunks().length > 0, 'dist/chunks/ holds the code loaded on first use');
    for (const c of chunks()) assert.ok(files.includes(`dist/chunks/${c}`), `missing dist/chunks/${c}`);
    const stray = files.filter(
      (f) => /^(src|test|bench|scripts|demo|node_modules|\.ci)\//.test(f) || /\.map$/.test(f) || (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)) || /^tsconfig|^webpack|^\.mocharc/.test(f),
    );
    assert.deepEqual(stray, []);
    // A sanity bound: two minified bundles (with ssh2 and dockerode inside) plus media.
    assert.ok(fs.statSync(vsix).size < 3 * 1024 * 1024, `under 3 MB (is ${fs.statSync(vsix).size} bytes)`);
  });

  it('the bundles need nothing but Node built-ins and vscode at run time', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    for (const bundle of ['extension.js', 'cli.js', ...chunks().map((c) => `chunks/${c}`)]) {
      const code = fs.readFileSync(path.join(root, 'dist', bundle), 'utf8');
      // Real calls only: the AWS SDK quotes `[require("@aws-sdk/signature-v4-crt");]` in an error message.
      const required = [...code.matchAll(/(?:^|[^\w.$[])require\("([^"]+)"\)/g)].map((m) => m[1]!);
      // Ajv keeps `require("ajv/dist/runtime/…")` as text for its standalone code generator; at
      // run time it passes those functions by value (the CLI tests validate through this bundle).
      // node-fetch 2's ESM build (inside @kubernetes/client-node's chunk) tries the optional `encoding`
      // module in a try/catch and works without it: allowed only in exactly that guarded form.
      const guarded = (m: string) => new RegExp(`try\\{[^{}]*require\\("${m}"\\)[^{}]*\\}catch`).test(code) && code.split(`require("${m}")`).length === 2;
      const foreign = [...new Set(required)].filter((m) => !builtins.has(m) && m !== 'vscode' && !m.startsWith('ajv/dist/runtime/') && !(m === 'encoding' && guarded(m)));
      assert.deepEqual(foreign, [], `${bundle} requires ${foreign.join(', ')}`);
    }
  });

  it('the packaged manifest points at files that exist, and the bundled CLI runs', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string; bin: Record<string, string>; contributes: { commands: Array<{ command: string; category: string }> } };
    assert.ok(fs.existsSync(path.join(root, pkg.main)));
    assert.ok(pkg.contributes.commands.every((c) => c.category === 'Tether'));
    const r = spawnSync(process.execPath, [path.join(root, pkg.bin.tether!), '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  it(`the main bundle is under ${MAIN_BUNDLE_MAX_BYTES / 1000} KB, without the AWS SDKs, ssh2 or dockerode: those are chunks of their own`, () => {
    const main = path.join(root, 'dist', 'extension.js');
    const size = fs.statSync(main).size;
    console.log(`      dist/extension.js: ${size} bytes; dist/chunks/: ${chunks().length} files`);
    assert.ok(size < MAIN_BUNDLE_MAX_BYTES, `dist/extension.js is ${size} bytes (limit ${MAIN_BUNDLE_MAX_BYTES})`);
    assert.deepEqual(heavyIn(main), [], 'dist/extension.js holds none of the heavy libraries');
    // The signatures are the libraries' own: Tether's source holds none of them...
    const srcFiles = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? srcFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
    for (const f of srcFiles(path.join(root, 'src'))) assert.deepEqual(heavyIn(f), [], f);
    // ...and each of them is in a chunk.
    const inChunks = new Set(chunks().flatMap((c) => heavyIn(path.join(chunkDir, c))));
    assert.deepEqual([...inChunks].sort(), Object.keys(HEAVY).sort());
  });

  it('requiring dist/extension.js and activating it (a workspace with Docker, SSH and cloud accounts) loads no chunk and none of the heavy libraries', async function () {
    this.timeout(60000);
    const ws = workspaceWith({
      plugins: [
        { name: 'ticker', command: 'sleep', args: ['300'] },
        { name: 'db', docker: { image: 'tether-probe-none:latest' } },
        { name: 'remote', command: 'sleep', args: ['300'], host: `probe@127.0.0.1:${await freePort()}` },
      ],
      hosts: [`probe@127.0.0.1:${await freePort()}`],
    });
    const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there, and nothing leaves this machine
    const r = await probeBundle(path.join(root, 'dist', 'extension.js'), {
      activate: true,
      workspace: ws,
      secrets: { 'tether.cloud.lambda_labs.apiKey': 'probe-key', 'tether.cloud.runpod.apiKey': 'probe-key', 'tether.cloud.vast_ai.apiKey': 'probe-key' },
      settings: { 'aws.region': 'us-east-1' },
      env: {
        TETHER_LAMBDA_API_URL: dead,
        TETHER_RUNPOD_API_URL: dead,
        TETHER_VAST_API_URL: dead,
        TETHER_AWS_API_URL: dead,
        TETHER_AWS_PRICING_API_URL: dead,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_ACCESS_KEY_ID: 'probe-key-id',
        AWS_SECRET_ACCESS_KEY: 'probe-secret',
        DOCKER_HOST: `unix://${path.join(tmpDir('tether-probe-docker-'), 'none.sock')}`,
      },
    });
    console.log(`      require ${r.requireMs.toFixed(1)} ms, activate ${r.activateMs!.toFixed(1)} ms (not asserted: a shared machine)`);
    assert.deepEqual(r.loadedAfterRequire, ['extension.js']);
    assert.deepEqual(r.loadedAfterActivate, ['extension.js']);
    // What was loaded holds none of the heavy libraries.
    for (const f of r.loadedAfterActivate!) assert.deepEqual(heavyIn(path.join(root, 'dist', f)), [], `dist/${f}`);
  });

  it('the CLI runs from an installed .vsix, chunks included (the EC2 client and the AWS SDK load on first use)', async function () {
    this.timeout(60000);
    const dir = tmpDir('tether-vsix-');
    const unzip = spawnSync('unzip', ['-q', vsix, '-d', dir], { encoding: 'utf8' });
    assert.equal(unzip.status, 0, unzip.stderr);
    const cli = path.join(dir, 'extension', 'dist', 'cli.js');
    const version = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    // Listing EC2 instance types loads the EC2 client's chunk and the SDK's; the error (nothing listens there) comes from that code.
    const env = {
      ...process.env,
      TETHER_STATE_DIR: tmpDir('tether-vsix-state-'),
      TETHER_AWS_REGION: 'us-east-1',
      TETHER_AWS_API_URL: `http://127.0.0.1:${await freePort()}`,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: 'probe-key-id',
      AWS_SECRET_ACCESS_KEY: 'probe-secret',
    };
    const types = spawnSync(process.execPath, [cli, 'cloud', 'types', 'aws'], { encoding: 'utf8', env, cwd: dir });
    assert.doesNotMatch(types.stderr, /Cannot find module|ChunkLoadError|Loading chunk/i, types.stderr);
    assert.match(types.stderr, /AWS EC2: \w+ failed: ECONNREFUSED/, `${types.stdout}\n${types.stderr}`);
  });
});
