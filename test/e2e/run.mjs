#!/usr/bin/env node
// `npm run test:e2e`: Tether inside a real VS Code (code-server 4.139.1 = VS Code 1.139.1).
//
//   node test/e2e/run.mjs [--host-only | --ui-only] [--grep TEXT] [UI-TEST-FILTER...]
//
// (a) in-host mocha: test/e2e/suite/index.js runs every test/e2e/suite/**/*.test.js inside the
//     extension host, with the repo as extensionDevelopmentPath;
// (b) UI tests: every test/e2e/ui/*.ui.mjs exporting
//       async function run({page, url, workspace, stateDir, screenshot, codeServer, log})
//     plus optional `workspace` ('demo' | 'empty' | {files}) and `timeout` (ms), each in a fresh
//     code-server + browser context with its own workspace and TETHER_STATE_DIR.
// Artifacts (screenshots, logs) land in test-artifacts/e2e/<test>/.
//
// Env: TETHER_E2E_SKIP_BUILD=1          skip `npm run build` + `npm run package`
//      TETHER_E2E_EXTENSION_DIR=DIR     use this unpacked extension instead of the repo/.vsix
//      TETHER_E2E_VERBOSE=1             also show the workbench's own console output
//      TETHER_E2E_GREP=TEXT             only in-host tests whose title matches
//      TETHER_HARNESS_CACHE=DIR         cache for Node 24 + code-server
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  REPO_ROOT, buildFreshness, cleanNpmEnv, ensureHarness, startCodeServer, launchBrowser, runInHostTests, registerCleanup, stopAll, shutdownSignal,
} from '../../scripts/harness.mjs';
import { prepareWorkspace } from './lib.mjs';

const E2E_DIR = path.join(REPO_ROOT, 'test', 'e2e');
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'e2e');
const VSIX = path.join(REPO_ROOT, 'dist', 'tether.vsix');

const argv = process.argv.slice(2);
const flag = (f) => argv.includes(f);
const grepIdx = argv.indexOf('--grep');
if (grepIdx >= 0) { process.env.TETHER_E2E_GREP = argv[grepIdx + 1]; argv.splice(grepIdx, 2); }
const uiFilters = argv.filter((a) => !a.startsWith('--'));
const doHost = !flag('--ui-only') && uiFilters.length === 0;
const doUi = !flag('--host-only');

const extDirOverride = process.env.TETHER_E2E_EXTENSION_DIR ? path.resolve(process.env.TETHER_E2E_EXTENSION_DIR) : null;
const log = (...a) => console.log('[e2e]', ...a);
const results = []; // {name, ok, ms, error?}
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
// No UI test gets less than this (a module's `timeout` is for a quiet machine; this one is shared and loaded).
const UI_TEST_FLOOR_MS = 240000;

function sh(cmd, args) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, stdio: 'inherit', env: cleanNpmEnv() });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (rc ${r.status ?? r.signal})`);
}

function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cleanup = registerCleanup(`rm ${d}`, () => fs.rmSync(d, { recursive: true, force: true }));
  return { dir: d, cleanup };
}

function saveServerLogs(cs, dest) {
  try { fs.copyFileSync(cs.logFile, path.join(dest, 'code-server.log')); } catch { /* */ }
  try { fs.cpSync(path.join(cs.userDataDir, 'logs'), path.join(dest, 'vscode-logs'), { recursive: true }); } catch { /* */ }
}

async function inHost() {
  const name = 'in-host mocha (test/e2e/suite)';
  const t0 = Date.now();
  const out = path.join(ARTIFACTS, 'in-host');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const ws = tempDir('tether-e2e-ws-');
  const state = tempDir('tether-e2e-state-');
  let cs;
  try {
    prepareWorkspace('demo', ws.dir);
    cs = await startCodeServer({ workspace: ws.dir, smokeDriver: true, env: { TETHER_STATE_DIR: state.dir }, log });
    const extensionPath = extDirOverride || REPO_ROOT;
    log(`in-host: ${cs.url} extension=${extensionPath}`);
    const code = await runInHostTests({
      url: cs.url, port: cs.port, workspace: ws.dir, extensionPath,
      testsEntry: path.join(E2E_DIR, 'suite', 'index.js'),
      log: (s) => process.stdout.write(`  │ ${s.replace(/\n(?!$)/g, '\n  │ ')}`),
      timeoutMs: Number(process.env.TETHER_E2E_HOST_TIMEOUT || 300000),
      logsDir: path.join(out, 'workbench-logs'),
    });
    saveServerLogs(cs, out);
    results.push({ name, ok: code === 0, ms: Date.now() - t0, error: code === 0 ? undefined : `exit code ${code}` });
  } catch (e) {
    if (cs) saveServerLogs(cs, out);
    results.push({ name, ok: false, ms: Date.now() - t0, error: e.stack || String(e) });
  } finally {
    await cs?.stop();
    await ws.cleanup();
    await state.cleanup();
  }
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

async function uiTest(file, browser) {
  const name = path.basename(file).replace(/\.ui\.mjs$/, '');
  const t0 = Date.now();
  const out = path.join(ARTIFACTS, name);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const ws = tempDir(`tether-e2e-${name}-ws-`);
  const state = tempDir(`tether-e2e-${name}-state-`);
  let cs; let context; let page; let extraEnv = {}; let teardown;
  const tlog = (...a) => console.log(`  │ [${name}]`, ...a);
  try {
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.run !== 'function') throw new Error(`${file} does not export async function run()`);
    prepareWorkspace(mod.workspace ?? 'demo', ws.dir);
    // Optional per-test services (a dockerd, an sshd...): env for code-server, torn down after.
    if (typeof mod.setup === 'function') {
      const s = await mod.setup({ workspace: ws.dir, stateDir: state.dir, log: tlog });
      extraEnv = s?.env ?? {};
      teardown = s?.teardown;
    }
    cs = await startCodeServer({
      workspace: ws.dir,
      env: { TETHER_STATE_DIR: state.dir, ...extraEnv },
      installFolder: [extDirOverride, ...(mod.extraExtensions || [])].filter(Boolean),
      installVsix: extDirOverride ? undefined : VSIX,
      userSettings: mod.userSettings || {},
      log: tlog,
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => tlog(`page error: ${e.message}`));
    const screenshot = async (shot) => {
      const f = path.join(out, `${shot.replace(/[^\w.-]+/g, '_')}.png`);
      await page.screenshot({ path: f });
      return f;
    };
    const url = `${cs.url}?folder=${encodeURIComponent(ws.dir)}`;
    await withTimeout(
      mod.run({ page, url, workspace: ws.dir, stateDir: state.dir, screenshot, codeServer: cs, log: tlog, env: extraEnv }),
      Math.max(mod.timeout || 0, UI_TEST_FLOOR_MS), name);
    results.push({ name: `ui ${name}`, ok: true, ms: Date.now() - t0 });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(out, 'failure.png') }).catch(() => {});
    if (cs) saveServerLogs(cs, out);
    results.push({ name: `ui ${name}`, ok: false, ms: Date.now() - t0, error: e.stack || String(e) });
  } finally {
    await context?.close().catch(() => {});
    await cs?.stop();
    if (teardown) await teardown().catch((e) => tlog(`teardown failed: ${e.message}`));
    await ws.cleanup();
    await state.cleanup();
  }
}

async function main() {
  const t0 = Date.now();
  if (extDirOverride) {
    log(`using unpacked extension ${extDirOverride} (no build)`);
  } else if (process.env.TETHER_E2E_SKIP_BUILD === '1') {
    log('TETHER_E2E_SKIP_BUILD=1: using existing dist/');
  } else if (buildFreshness().fresh) {
    log('dist/ is newer than every build input: no build');
  } else {
    sh('npm', ['run', 'package']); // builds first
  }
  if (!extDirOverride && !fs.existsSync(path.join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('dist/extension.js missing: run `npm run build`');

  const th = Date.now();
  await ensureHarness({ log });
  log(`harness ready in ${secs(Date.now() - th)}`);

  if (doHost) await inHost();

  if (doUi) {
    let files = fs.readdirSync(path.join(E2E_DIR, 'ui')).filter((f) => f.endsWith('.ui.mjs')).sort();
    if (uiFilters.length) files = files.filter((f) => uiFilters.some((x) => f.includes(x)));
    if (files.length && !extDirOverride && !fs.existsSync(VSIX)) throw new Error(`${VSIX} missing: run \`npm run package\``);
    if (files.length) {
      const browser = await launchBrowser();
      try {
        for (const f of files) {
          log(`ui: ${f}`);
          await uiTest(path.join(E2E_DIR, 'ui', f), browser);
        }
      } finally {
        await browser.close().catch(() => {});
      }
    }
  }

  if (shutdownSignal()) await new Promise(() => {}); // interrupted: the harness stops everything and exits
  console.log('\n──────── e2e summary ────────');
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}  (${secs(r.ms)})`);
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) console.log(`\n✗ ${r.name}\n${r.error}`);
  console.log(`\n${results.length - failed.length} passed, ${failed.length} failed, ${secs(Date.now() - t0)} total; artifacts: ${path.relative(process.cwd(), ARTIFACTS) || ARTIFACTS}`);
  if (!results.length) { console.log('no tests ran'); return 1; }
  return failed.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (shutdownSignal()) await new Promise(() => {});
  console.error(`[e2e] ${e.stack || e}`);
  code = 1;
} finally {
  await stopAll();
}
process.exit(code);
