// Issue #14 item 3, exactly one poller per user, in a real VS Code: two windows (two browser pages
// on one code-server — each page is a window with its own extension host, checked below through
// /proc) on one workspace and state folder, one Lambda Cloud account on the protocol fake. The
// provider's list requests are counted over the same number of policy ticks (heartbeats of the
// leader's lease, src/fleet/leader.ts) with one window open and then with two: the same, within
// one tick. Counted in ticks, never as a rate over wall-clock time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { acceptPickIfShown, contextMenu, openActivity, pick, runCommand, typeInput as type, waitForRow, waitForWorkbench } from '../lib.mjs';
import { FakeLambdaServer } from '../../fakes/lambdaServer.ts';

export const workspace = 'demo';
export const timeout = 240000;
// Both windows poll every 2 s while something is tracked (Playwright keeps every page focused).
export const userSettings = { 'tether.pollIntervalSeconds': 2 };

const TICKS = 8;
let fake;

export async function setup({ log }) {
  fake = new FakeLambdaServer();
  await fake.start();
  fake.addForeign('other-0');
  fake.addForeign('other-1');
  log(`fake Lambda Cloud at ${fake.url}`);
  return { env: { TETHER_LAMBDA_API_URL: fake.url }, teardown: () => fake.stop() };
}

const lists = () => fake.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/instances').length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readJson = (f) => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch {
    return undefined;
  }
};

/** [state, pgrp, start time] of a live process, or undefined. */
function stat(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return /^[ZX]/.test(f[0]) ? undefined : { pgrp: Number(f[2]), startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/** The extension hosts code-server runs (processes of its process group with `extensionHost` in their command line). */
function extensionHosts(pgid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || stat(d)?.pgrp !== pgid) continue;
    try {
      if (/extensionHost/.test(fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Waits for `ticks` policy ticks of whichever window leads (each changes the lease's heartbeat)
 * and returns the list requests the provider got between the first and the last of them.
 */
async function listsOverTicks(stateDir, ticks) {
  const leaseFile = path.join(stateDir, 'policy-leader.json');
  const deadline = Date.now() + 60000 + ticks * 30000;
  let last = readJson(leaseFile)?.heartbeatAt;
  let seen = -1;
  let from = 0;
  const pids = new Set();
  while (seen < ticks) {
    if (Date.now() > deadline) throw new Error(`only ${seen} policy ticks came in ${Math.round((Date.now() - deadline) / 1000 + 60 + ticks * 30)} s`);
    await sleep(25);
    const l = readJson(leaseFile);
    if (!l || l.heartbeatAt === last) continue;
    last = l.heartbeatAt;
    pids.add(l.pid);
    if (++seen === 0) from = lists();
  }
  return { lists: lists() - from, leaders: [...pids] };
}

export async function run({ page, url, stateDir, codeServer, screenshot, log }) {
  const leftovers = [];
  try {
    await page.goto(url);
    await waitForWorkbench(page);
    await openActivity(page, 'Tether');
    await waitForRow(page, /^ticker stopped/);
    // Window 1: the cloud account (SecretStorage: shared by the pages of this browser context)...
    await runCommand(page, 'Tether: Set Cloud API Key…');
    await pick(page, 'Lambda Cloud');
    await type(page, fake.apiKey);
    await page.locator('.notification-toast', { hasText: 'Lambda Cloud account saved' }).first().waitFor({ timeout: 60000 });
    await waitForRow(page, /^other-0 unmanaged/);
    // ...and something tracked, so that every focused window polls on its interval.
    await contextMenu(page, 'ticker', 'Start Plugin');
    await acceptPickIfShown(page, 'ticker', { timeout: 800 });
    const pidRow = await waitForRow(page, /^node PID \d+/);
    const tickerPid = Number(/PID (\d+)/.exec(pidRow)[1]);
    const ticker = stat(tickerPid);
    if (ticker) leftovers.push({ pid: tickerPid, startTime: ticker.startTime });
    const hosts1 = extensionHosts(codeServer.pgid);
    log(`one window: extension hosts ${JSON.stringify(hosts1)}`);
    assert.equal(hosts1.length, 1, 'one window, one extension host');

    const one = await listsOverTicks(stateDir, TICKS);
    log(`one window: ${one.lists} list requests over ${TICKS} ticks (leader ${one.leaders.join(', ')})`);
    await screenshot('1-one-window');

    // Window 2: another page of the same browser context on the same code-server.
    const page2 = await page.context().newPage();
    page2.on('pageerror', (e) => log(`page 2 error: ${e.message}`));
    await page2.goto(url);
    await waitForWorkbench(page2);
    await openActivity(page2, 'Tether');
    await waitForRow(page2, /^ticker running/);
    await waitForRow(page2, /^other-0 unmanaged/);
    const deadline = Date.now() + 60000;
    let hosts2 = extensionHosts(codeServer.pgid);
    while (hosts2.length < 2 && Date.now() < deadline) {
      await sleep(500);
      hosts2 = extensionHosts(codeServer.pgid);
    }
    log(`two windows: extension hosts ${JSON.stringify(hosts2)}`);
    assert.equal(hosts2.length, 2, 'each browser window has its own extension host');
    // Both windows poll: an instance that appears at the provider (no ledger change, so no event)
    // reaches both trees only through their interval polls.
    fake.addForeign('late-arrival');
    await waitForRow(page2, /^late-arrival unmanaged/);
    await waitForRow(page, /^late-arrival unmanaged/);

    const two = await listsOverTicks(stateDir, TICKS);
    log(`two windows: ${two.lists} list requests over ${TICKS} ticks (leader ${two.leaders.join(', ')})`);
    const shot = await screenshot('2-two-windows');
    await page2.screenshot({ path: shot.replace(/\.png$/, '-second.png') });
    assert.ok(two.lists <= one.lists + 1, `two windows cost what one does over ${TICKS} ticks (one tick of slack): ${two.lists} vs ${one.lists}`);
    assert.ok(one.lists <= TICKS + 1, `one window lists about once a tick: ${one.lists} over ${TICKS}`);

    // Who listed: the lease holder, an extension host of this code-server, published the snapshot
    // the other window renders.
    const snap = readJson(path.join(stateDir, 'fleet-snapshot.json'));
    assert.ok(snap, 'the leader published <state>/fleet-snapshot.json');
    const lease = readJson(path.join(stateDir, 'policy-leader.json'));
    assert.ok(hosts2.includes(lease.pid), `the leader (pid ${lease.pid}) is one of the windows' extension hosts ${JSON.stringify(hosts2)}`);
    assert.equal(snap.by.pid, lease.pid);
    assert.deepEqual(snap.providers, ['lambda_labs']);
    assert.equal(snap.cloud.instances.length, 3);
    assert.equal(fs.statSync(path.join(stateDir, 'fleet-snapshot.json')).mode & 0o777, 0o600);
    assert.ok(!JSON.stringify(snap).includes(fake.apiKey), 'no API key in the snapshot');
  } finally {
    // The ticker runs in its own session: stop it here (same PID and start time only).
    for (const p of leftovers) if (stat(p.pid)?.startTime === p.startTime) process.kill(p.pid, 'SIGTERM');
  }
}
