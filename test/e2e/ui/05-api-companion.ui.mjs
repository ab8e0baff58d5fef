// A second extension registers a plugin through Tether's public API; it shows up in the tree
// with its process tree and counts in the status bar.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openActivity, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const workspace = 'demo';
export const extraExtensions = [path.join(here, '..', 'fixtures', 'companion')];

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  const row = await waitForRow(page, /^Companion server running · 3 processes/);
  log(`api plugin: ${row}`);
  const rows = await waitForRows(page, (r) => r.filter((x) => /^(sh|sleep) PID \d+/.test(x)).length === 3, 'sh and its two sleeps');
  log(`tree: ${JSON.stringify(rows)}`);
  assert.ok(rows.some((r) => /^sh PID/.test(r)));
  const bar = await waitForStatusBar(page, /1 running/);
  log(`status bar: ${bar}`);
  await screenshot('1-api-plugin');
}
