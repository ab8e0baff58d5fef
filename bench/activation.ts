/**
 * Activation part of `npm run bench`: the size of the bundles and of each chunk they load on
 * first use, and what loading the extension costs — `require('dist/extension.js')` and then
 * `activate()` against a stub of the vscode API (test/helpers/bundleProbe.ts), each run in a fresh
 * node process, median of several. Goals (issue #14): main bundle < 300 KB, activation < 20 ms,
 * and neither loads a chunk (the AWS SDKs, ssh2, dockerode and the provider clients load on first use).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeBundle, type ProbeResult } from '../test/helpers/bundleProbe';

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const RUNS = Number(process.env.BENCH_ACTIVATION_RUNS ?? 7);
export const MAIN_BUNDLE_GOAL_BYTES = 300_000;
const ACTIVATION_GOAL_MS = 20;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;

export async function benchActivation(): Promise<void> {
  const bundle = path.join(dist, 'extension.js');
  // Measure the bundle of this source: build it when it is missing or older than src/.
  if (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < Math.max(newestMtime(path.join(root, 'src')), fs.statSync(path.join(root, 'webpack.config.js')).mtimeMs)) {
    console.log('\nactivation: dist/ is missing or older than src/: npm run build…');
    const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed');
  }

  console.log(`\nbundle size (dist/, minified):`);
  const size = (f: string) => fs.statSync(path.join(dist, f)).size;
  const main = size('extension.js');
  console.log(`  extension.js (main)   ${kb(main).padStart(10)}   goal < ${kb(MAIN_BUNDLE_GOAL_BYTES)}: ${main < MAIN_BUNDLE_GOAL_BYTES ? 'met' : 'NOT met'}`);
  console.log(`  cli.js                ${kb(size('cli.js')).padStart(10)}`);
  const chunksDir = path.join(dist, 'chunks');
  const chunks = fs.existsSync(chunksDir) ? fs.readdirSync(chunksDir).filter((f) => f.endsWith('.js')) : [];
  const total = chunks.reduce((s, f) => s + size(path.join('chunks', f)), 0);
  console.log(`  chunks/ (loaded on first use): ${chunks.length} files, ${kb(total)}`);
  for (const f of chunks.sort((a, b) => size(path.join('chunks', b)) - size(path.join('chunks', a)))) {
    console.log(`    ${kb(size(path.join('chunks', f))).padStart(10)}  ${f}`);
  }

  const runs: ProbeResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await probeBundle(bundle, { activate: true }));
  const req = runs.map((r) => r.requireMs);
  const act = runs.map((r) => r.activateMs!);
  const both = runs.map((r) => r.requireMs + r.activateMs!);
  const loaded = new Set(runs.flatMap((r) => r.loadedAfterActivate ?? []));
  const fmt = (xs: number[]) => `median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  console.log(`\nactivation in a fresh node process, vscode API stubbed, no workspace folder (${RUNS} runs, load ${os.loadavg()[0]!.toFixed(2)}, ${os.cpus().length} cores):`);
  console.log(`  require(dist/extension.js)   ${fmt(req)}`);
  console.log(`  activate() until it returns  ${fmt(act)}`);
  console.log(`  both                         ${fmt(both)}   goal < ${ACTIVATION_GOAL_MS} ms: ${median(both) < ACTIVATION_GOAL_MS ? 'met' : 'NOT met'} (median)`);
  const extra = [...loaded].filter((f) => f !== 'extension.js');
  console.log(`  files of dist/ loaded by require + activate: ${[...loaded].join(', ')}${extra.length ? '   (chunks loaded at activation: NOT lazy)' : '   (no chunk)'}`);
}
