// An empty workspace shows the welcome view; its button writes a commented example config.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openActivity, waitForRow, waitForWorkbench } from '../lib.mjs';

export const workspace = 'empty';

export async function run({ page, url, workspace: ws, screenshot }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  const welcome = page.locator('.part.sidebar .welcome-view-content');
  await welcome.waitFor({ timeout: 20000 });
  assert.match(await welcome.innerText(), /declares no plugins yet/);
  await screenshot('1-welcome');
  await welcome.locator('.monaco-button', { hasText: 'Create tether.json' }).click();
  await page.locator('.tabs-container .tab', { hasText: 'tether.json' }).waitFor({ timeout: 15000 });
  await waitForRow(page, /^web stopped/);
  const text = fs.readFileSync(path.join(ws, '.vscode', 'tether.json'), 'utf8');
  assert.match(text, /^\/\/ Tether: the processes this workspace starts/);
  await screenshot('2-created');
}
