#!/usr/bin/env node
// `npm test`: the whole suite, from a fresh clone. Installs npm dependencies when missing,
// type-checks, builds and packages the .vsix, runs unit and integration tests (real process
// trees, the real CLI, the packaged .vsix), then the end-to-end tests in a real VS Code
// (code-server + Chromium; the harness installs itself into ~/.cache/tether-harness).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const steps = [];
const only = process.argv.slice(2);

function run(name, cmd, args, env = {}) {
  if (only.length && !only.some((o) => name.includes(o))) return;
  const t0 = Date.now();
  console.log(`\n━━ ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  const ok = r.status === 0;
  steps.push({ name, ok, s: (Date.now() - t0) / 1000 });
  if (!ok) finish(r.status ?? 1);
}

function finish(code) {
  console.log('\n━━ summary');
  for (const s of steps) console.log(`${s.ok ? 'PASS' : 'FAIL'}  ${s.name.padEnd(28)} ${s.s.toFixed(1)} s`);
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
const lock = path.join(root, 'package-lock.json');
const stamp = path.join(root, 'node_modules', '.package-lock.json');
if (!fs.existsSync(stamp) || fs.statSync(stamp).mtimeMs < fs.statSync(lock).mtimeMs) {
  run('install npm dependencies', 'npm', ['ci', '--no-audit', '--no-fund']);
}
run('typecheck', 'npm', ['run', '--silent', 'typecheck']);
run('build and package', 'npm', ['run', '--silent', 'package']);
run('unit tests', 'npx', ['mocha', 'test/unit/**/*.test.ts']);
run('integration tests', 'npx', ['mocha', '--timeout', '60000', 'test/integration/**/*.test.ts'], { TETHER_REQUIRE_VSIX: '1' });
run('e2e tests (real VS Code)', 'node', ['--import', 'tsx', 'test/e2e/run.mjs'], { TETHER_E2E_SKIP_BUILD: '1' });
finish(0);
