// A VS Code window that crashed left a plugin running. Tether finds it on start, flags it as an
// orphan (tree, status bar, notification), and "Kill Orphans…" stops it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { clickDialogButton, openActivity, runCommand, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const workspace = 'demo';
export const timeout = 120000;

export async function run({ page, url, workspace: ws, stateDir, screenshot, log }) {
  // Plays the crashed window: starts "workers" as a VS Code owner, then dies by SIGKILL.
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'test', 'helpers', 'crashingOwner.ts'), ws, stateDir, 'workers'], { encoding: 'utf8', cwd: root });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const pid = Number(r.stdout.trim());
  log(`orphaned workers root pid ${pid}`);
  assert.ok(fs.existsSync(`/proc/${pid}`));

  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  const row = await waitForRow(page, /^workers orphan · 3 processes/);
  log(`tree: ${row}`);
  const toast = page.locator('.notification-toast', { hasText: 'orphaned resource' }).first();
  await toast.waitFor({ timeout: 15000 });
  await waitForStatusBar(page, /1 running/);
  await screenshot('1-orphan-found');

  await runCommand(page, 'Tether: Kill Orphans…');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 10000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`modal: ${text}`);
  assert.match(text, /Stop 1 orphaned resource\(s\)\?/);
  assert.match(text, new RegExp(`workers: PIDs ${pid}, \\d+, \\d+ — the VS Code window that started it \\(pid \\d+\\) is gone`));
  await screenshot('2-kill-orphans-confirm');
  await clickDialogButton(page, 'Kill Orphans');
  await waitForRows(page, (rows) => rows.some((x) => /^workers stopped/.test(x)) && !rows.some((x) => /PID/.test(x)), 'workers stopped');
  await waitForStatusBar(page, /0 running/);
  const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  assert.ok(!stat || / [ZX] /.test(stat.slice(stat.lastIndexOf(')'))), `pid ${pid} is gone`);
  await screenshot('3-orphan-killed');
}
