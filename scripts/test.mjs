#!/usr/bin/env node
// `npm test`: the whole suite, from a fresh clone. Installs npm dependencies when missing,
// type-checks, builds and packages the .vsix, runs unit and integration tests (real process
// trees, the real CLI, the packaged .vsix), then the end-to-end tests in a real VS Code
// (code-server + Chromium; the harness installs itself into ~/.cache/tether-harness).
// First it installs the Debian packages every tier needs (as root with apt; otherwise it stops
// and prints the exact command). The summary says how many tests were skipped and why; with
// CI=true a skipped test is a failure (.mocharc.cjs: forbid-pending).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFreshness, cleanNpmEnv, dependenciesState, stampDependencies } from './harness.mjs';
import { ensureSystemPackages } from './system-packages.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const steps = [];
const only = process.argv.slice(2);
const ci = !!process.env.CI && !/^(0|false|no)$/i.test(process.env.CI);
const skipFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tether-test-')), 'skipped.jsonl');

function run(name, cmd, args, env = {}) {
  if (only.length && !only.some((o) => name.includes(o))) return;
  const t0 = Date.now();
  console.log(`\n━━ ${name}: ${cmd} ${args.join(' ')}`);
  // A clean npm environment: nothing `npm test` exported reaches the inner npm/npx runs.
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...cleanNpmEnv(), TETHER_SKIP_SUMMARY: skipFile, ...env } });
  const ok = r.status === 0;
  steps.push({ name, ok, s: (Date.now() - t0) / 1000 });
  if (!ok) finish(r.status ?? 1);
}

function skipped() {
  try {
    return fs.readFileSync(skipFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

function finish(code) {
  console.log('\n━━ summary');
  for (const s of steps) console.log(`${s.ok ? 'PASS' : 'FAIL'}  ${s.name.padEnd(28)} ${s.s.toFixed(1)} s`);
  const sk = skipped();
  if (!sk.length) console.log(`0 tests skipped${ci ? ' (CI=true: a skipped test fails the run)' : ''}`);
  else {
    const by = new Map();
    for (const x of sk) by.set(x.reason, (by.get(x.reason) ?? 0) + 1);
    console.log(`${sk.length} test(s) skipped${ci ? ' — failures with CI=true' : ''}:`);
    for (const [reason, n] of by) console.log(`  ${n} × ${reason}`);
    if (ci && code === 0) code = 1;
  }
  fs.rmSync(path.dirname(skipFile), { recursive: true, force: true });
  process.exit(code);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`Tether needs Node.js >= 20.19 (this is ${process.version}). Install a newer Node.js and run npm test again.`);
  process.exit(2);
}
if (process.platform !== 'linux') {
  console.error('The Tether test suite needs Linux (/proc, process groups, code-server).');
  process.exit(2);
}
{
  const t0 = Date.now();
  try {
    const installed = ensureSystemPackages();
    steps.push({ name: 'system packages', ok: true, s: (Date.now() - t0) / 1000 });
    if (installed.length) console.log(`installed: ${installed.join(' ')}`);
  } catch (e) {
    console.error(`\n${e.message}\n\nThen run npm test again.`);
    process.exit(2);
  }
}
const deps = dependenciesState(root);
if (deps.install) {
  console.log(`npm ci: ${deps.why}`);
  run('install npm dependencies', 'npm', ['ci', '--no-audit', '--no-fund']);
  stampDependencies(root);
}
run('typecheck', 'npm', ['run', '--silent', 'typecheck']);
const fresh = buildFreshness(root);
if (fresh.fresh) console.log('\n━━ build and package: dist/ is newer than every build input: no build');
else run('build and package', 'npm', ['run', '--silent', 'package']); // one build: vscode:prepublish
run('unit tests', 'npx', ['mocha', 'test/unit/**/*.test.ts']);
run('integration tests', 'npx', ['mocha', '--timeout', '60000', 'test/integration/**/*.test.ts'], { TETHER_REQUIRE_VSIX: '1' });
run('e2e tests (real VS Code)', 'node', ['--import', 'tsx', 'test/e2e/run.mjs'], { TETHER_E2E_SKIP_BUILD: '1' });
finish(0);
