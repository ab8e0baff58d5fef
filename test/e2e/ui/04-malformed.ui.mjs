// A malformed .vscode/tether.json: a readable error in a notification, the tree and Problems.
import assert from 'node:assert/strict';
import { openActivity, waitForRow, waitForWorkbench } from '../lib.mjs';

export const workspace = {
  files: {
    '.vscode/tether.json': '{\n  "plugins": [\n    {"name": "bad name!", "command": 3}\n  ]\n}\n',
  },
};

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  const row = await waitForRow(page, /tether\.json has problems/);
  log(`tree: ${row}`);
  assert.match(row, /\/plugins\/0\/name \(line 3\): must start with a letter or digit/);
  assert.match(row, /\/plugins\/0\/command \(line 3\): must be string/);
  const toast = page.locator('.notification-toast', { hasText: 'Tether:' }).first();
  await toast.waitFor({ timeout: 15000 });
  const toastText = (await toast.innerText()).replace(/\s+/g, ' ');
  log(`notification: ${toastText}`);
  assert.match(toastText, /tether\.json: \/plugins\/0\/name/);
  assert.match(toastText, /Open tether\.json/);
  const problems = (await page.locator('.part.statusbar').innerText()).replace(/\s+/g, ' ');
  assert.match(problems, /2/, `the Problems counter shows the two errors: ${problems}`);
  await screenshot('1-malformed');
}
