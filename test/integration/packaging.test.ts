// The .vsix a user installs: what it contains, and that the bundles stand on their own.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { zipEntries } from '../helpers/zip';
import { skipBecause } from '../helpers/skip';

const root = path.resolve(__dirname, '..', '..');
const vsix = path.join(root, 'dist', 'tether.vsix');

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
    const stray = files.filter(
      (f) => /^(src|test|bench|scripts|demo|node_modules|\.ci)\//.test(f) || /\.map$/.test(f) || (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)) || /^tsconfig|^webpack|^\.mocharc/.test(f),
    );
    assert.deepEqual(stray, []);
    // A sanity bound: two minified bundles (with ssh2 and dockerode inside) plus media.
    assert.ok(fs.statSync(vsix).size < 3 * 1024 * 1024, `under 3 MB (is ${fs.statSync(vsix).size} bytes)`);
  });

  it('the bundles need nothing but Node built-ins and vscode at run time', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    for (const bundle of ['extension.js', 'cli.js']) {
      const code = fs.readFileSync(path.join(root, 'dist', bundle), 'utf8');
      // Real calls only: the AWS SDK quotes `[require("@aws-sdk/signature-v4-crt");]` in an error message.
      const required = [...code.matchAll(/(?:^|[^\w.$[])require\("([^"]+)"\)/g)].map((m) => m[1]!);
      // Ajv keeps `require("ajv/dist/runtime/…")` as text for its standalone code generator; at
      // run time it passes those functions by value (the CLI tests validate through this bundle).
      const foreign = [...new Set(required)].filter((m) => !builtins.has(m) && m !== 'vscode' && !m.startsWith('ajv/dist/runtime/'));
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
});
