// UI smoke test: the workbench opens on the demo workspace and Tether has an activity-bar entry.
import assert from 'node:assert/strict';
import { waitForWorkbench, openActivity } from '../lib.mjs';

export const workspace = 'demo';
export const timeout = 90000;

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await screenshot('workbench');

  // The view container appears once the extension host has scanned extensions (~1-2 s later).
  const entry = page.locator('.part.activitybar [aria-label^="Tether"]').first();
  try {
    await entry.waitFor({ timeout: 30000 });
  } catch {
    const labels = await page.locator('.part.activitybar [aria-label]')
      .evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('aria-label')).filter(Boolean))]);
    assert.fail(`no activity-bar entry whose aria-label starts with "Tether" (have: ${labels.join(', ')})`);
  }
  log(`activity bar entry: ${await entry.getAttribute('aria-label')}`);

  await openActivity(page, 'Tether');
  await page.waitForSelector('.part.sidebar .composite.title', { timeout: 15000 });
  const title = await page.locator('.part.sidebar .composite.title').innerText();
  assert.match(title, /tether/i, `side bar title is "${title}"`);
  await screenshot('tether-view');
}
