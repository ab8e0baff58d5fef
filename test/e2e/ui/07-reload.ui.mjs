// Closing the window (here: reloading it) stops what this window started, as the default
// `tether.cleanupOnExit: localPlugins` says, without holding the reload up.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { acceptPickIfShown, contextMenu, openActivity, runCommand, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';

export const workspace = 'demo';
export const timeout = 120000;

const alive = (pid) => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(st.slice(st.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^ticker stopped/);
  await contextMenu(page, 'ticker', 'Start Plugin');
  await acceptPickIfShown(page, 'ticker', { timeout: 800 });
  const rows = await waitForRows(page, (r) => r.some((x) => /^node PID \d+/.test(x)), 'the ticker PID');
  const pid = Number(/PID (\d+)/.exec(rows.find((x) => /^node PID/.test(x)))[1]);
  assert.ok(alive(pid));
  await waitForStatusBar(page, /1 running/);
  const t0 = Date.now();
  await runCommand(page, 'Developer: Reload Window');
  await page.waitForTimeout(1500);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^ticker stopped/, { timeout: 30000 });
  log(`reloaded in ${Date.now() - t0} ms; ticker pid ${pid} alive: ${alive(pid)}`);
  assert.equal(alive(pid), false, 'the ticker was stopped when the window went away');
  await waitForStatusBar(page, /0 running/);
  await screenshot('1-after-reload');
}
