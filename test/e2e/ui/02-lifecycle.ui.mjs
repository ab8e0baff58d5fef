// Start a plugin from the tree's context menu, watch its PIDs and the status bar, stop it from
// the palette with the confirmation modal, and watch everything update.
import assert from 'node:assert/strict';
import { acceptPickIfShown, clickDialogButton, contextMenu, openActivity, runCommand, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench, treeRows } from '../lib.mjs';

export const workspace = 'demo';
export const timeout = 120000;

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^workers stopped/);
  await waitForRow(page, /^ticker stopped/);
  await waitForStatusBar(page, /0 running · \$0\.00\/h/);
  await screenshot('1-stopped');

  await contextMenu(page, 'workers', 'Start Plugin');
  await acceptPickIfShown(page, 'workers', { timeout: 800 });
  const rows = await waitForRows(page, (r) => r.filter((x) => /PID \d+/.test(x)).length >= 3, 'the root and two child PIDs');
  const pidRows = rows.filter((x) => /PID \d+/.test(x));
  log(`tree: ${JSON.stringify(rows)}`);
  assert.match(rows.find((r) => r.startsWith('workers')), /^workers running · 3 processes/);
  assert.ok(pidRows.some((r) => /^node PID \d+/.test(r)), 'the node root');
  assert.ok(pidRows.filter((r) => /^sleep PID \d+/.test(r)).length >= 1 || pidRows.length >= 3, 'children');
  const bar = await waitForStatusBar(page, /1 running · \$0\.00\/h/);
  log(`status bar: ${bar}`);
  await screenshot('2-running');

  await runCommand(page, 'Tether: Stop Plugin…');
  // Filter and accept with the keyboard: a click can land while the list re-renders.
  const pick = page.locator('.quick-input-list .monaco-list-row', { hasText: 'workers' }).first();
  await pick.waitFor({ timeout: 10000 });
  await page.locator('.quick-input-widget input').fill('workers');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'workers' }).first().waitFor({ timeout: 10000 });
  await screenshot('3-stop-pick');
  await page.keyboard.press('Enter');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 10000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`modal: ${text}`);
  assert.match(text, /Stop "workers"\?/);
  assert.match(text, /SIGTERM goes to 3 process\(es\) \(PIDs \d+, \d+, \d+\)/);
  await screenshot('4-stop-confirm');
  await clickDialogButton(page, 'Stop');
  await waitForRows(page, (r) => !r.some((x) => /PID \d+/.test(x)) && r.some((x) => /^workers stopped/.test(x)), 'workers stopped, no PIDs');
  await waitForStatusBar(page, /0 running · \$0\.00\/h/);
  log(`after stop: ${JSON.stringify(await treeRows(page))}`);
  await screenshot('5-stopped-again');
}
