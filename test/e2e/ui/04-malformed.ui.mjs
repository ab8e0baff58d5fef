// A malformed .vscode/tether.json: a readable error in a notification, the tree and Problems.
import assert from 'node:assert/strict';
import { openActivity, waitForRow, waitForRows, waitForWorkbench } from '../lib.mjs';

export const workspace = {
  files: {
    '.vscode/tether.json': '{\n  "plugins": [\n    {"name": "bad name!", "command": 3}\n  ]\n}\n',
  },
};

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  const row = await waitForRow(page, /tether\.json has problems 2 problems/);
  log(`tree: ${row}`);
  const rows = await waitForRows(page, (r) => r.some((x) => /^\/plugins\/0\/command: must be string line 3$/.test(x)), 'one row per problem');
  assert.ok(rows.some((x) => /^\/plugins\/0\/name: must start with a letter or digit.* line 3$/.test(x)), JSON.stringify(rows));
  const toast = page.locator('.notification-toast', { hasText: 'Tether:' }).first();
  await toast.waitFor({ timeout: 15000 });
  const toastText = (await toast.innerText()).replace(/\s+/g, ' ');
  log(`notification: ${toastText}`);
  assert.match(toastText, /\.vscode\/tether\.json has 2 problem\(s\): \/plugins\/0\/name \(line 3\): must start/);
  assert.match(toastText, /Open tether\.json/);
  const problems = (await page.locator('.part.statusbar').innerText()).replace(/\s+/g, ' ');
  assert.match(problems, /2/, `the Problems counter shows the two errors: ${problems}`);
  await screenshot('1-malformed');
  // Clicking a problem opens the file at its line.
  await page.locator('.part.sidebar .monaco-list-row', { hasText: '/plugins/0/command' }).first().click();
  await page.locator('.tabs-container .tab', { hasText: 'tether.json' }).waitFor({ timeout: 15000 });
  await screenshot('2-problem-opened');
}
