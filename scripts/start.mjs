#!/usr/bin/env node
// `npm start`: build + package Tether (only when a build input is newer than dist/, and then
// once: `npm run package`, whose vscode:prepublish builds), then serve it in a real VS Code
// (code-server 4.139.1) on 127.0.0.1 with the demo workspace. Runs until Ctrl-C, then stops
// everything it started.
//
// Env: TETHER_PORT=8123             port (default 8123, or the next free one)
//      TETHER_E2E_SKIP_BUILD=1      reuse dist/tether.vsix even when stale
//      TETHER_E2E_EXTENSION_DIR=DIR serve this unpacked extension instead (no build)
//      TETHER_STATE_DIR=DIR         passed through (default .tether-dev/state)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, buildFreshness, cleanNpmEnv, dependenciesState, stampDependencies, ensureHarness, startCodeServer, portFrom, isPortFree, stopAll, shutdownSignal } from './harness.mjs';

const log = (...a) => console.log('[start]', ...a);
const DEV = path.join(REPO_ROOT, '.tether-dev');
const WS = path.join(DEV, 'demo-workspace');
const VSIX = path.join(REPO_ROOT, 'dist', 'tether.vsix');
const extDir = process.env.TETHER_E2E_EXTENSION_DIR ? path.resolve(process.env.TETHER_E2E_EXTENSION_DIR) : null;

function sh(cmd, args) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, stdio: 'inherit', env: cleanNpmEnv() });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (rc ${r.status ?? r.signal})`);
}

async function main() {
  if (!extDir) {
    const deps = dependenciesState();
    if (deps.install) {
      log(`npm ci: ${deps.why}`);
      sh('npm', ['ci', '--no-audit', '--no-fund']);
      stampDependencies();
    }
    const t0 = Date.now();
    const { fresh, stale } = buildFreshness();
    if (fresh) log('dist/ is newer than every build input: no build');
    else if (process.env.TETHER_E2E_SKIP_BUILD === '1') log(`TETHER_E2E_SKIP_BUILD=1: using dist/ although ${stale}`);
    else {
      log(`building: ${stale}`);
      sh('npm', ['run', 'package']); // one build: vscode:prepublish runs `npm run build`
      log(`built and packaged in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    if (!fs.existsSync(VSIX)) throw new Error(`${VSIX} missing after npm run package`);
  }
  await ensureHarness({ log });

  if (!fs.existsSync(WS)) {
    fs.mkdirSync(DEV, { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, 'demo'), WS, { recursive: true });
    log(`created demo workspace ${path.relative(REPO_ROOT, WS)}`);
  }
  const stateDir = process.env.TETHER_STATE_DIR || path.join(DEV, 'state');
  fs.mkdirSync(stateDir, { recursive: true });

  let port;
  if (process.env.TETHER_PORT) {
    port = Number(process.env.TETHER_PORT);
    if (!(await isPortFree(port))) throw new Error(`TETHER_PORT=${port} is in use`);
  } else {
    port = await portFrom(8123);
  }
  const cs = await startCodeServer({
    workspace: WS,
    port,
    installVsix: extDir ? undefined : VSIX,
    installFolder: extDir || undefined,
    env: { TETHER_STATE_DIR: stateDir },
    log,
  });
  const url = `${cs.url}?folder=${encodeURIComponent(WS).replace(/%2F/g, '/')}`;
  const bar = '═'.repeat(Math.max(60, url.length + 4));
  console.log(`\n${bar}\n  Tether is running in VS Code ${'(code-server 4.139.1)'}:\n\n  ${url}\n\n` +
    `  workspace: ${WS}\n  state:     ${stateDir}\n  log:       ${cs.logFile}\n\n  Ctrl-C stops everything.\n${bar}\n`);
  const ex = await cs.exited; // Ctrl-C is handled by the harness (stops code-server, exits 130)
  if (shutdownSignal()) return new Promise(() => {}); // the harness' signal handler exits
  throw new Error(`code-server exited unexpectedly (${JSON.stringify(ex)})`);
}

try {
  await main();
} catch (e) {
  if (shutdownSignal()) await new Promise(() => {});
  console.error(`[start] ${e.stack || e}`);
  await stopAll();
  process.exit(1);
}
