// A cloud GPU through the wizard in a real VS Code, against a fake Lambda Cloud server that follows
// the published API (the real API cannot be called from tests): the API key goes into
// SecretStorage, the wizard shows types with $/h and regions with capacity, the confirmation names
// the price, the instance appears under Cloud with its $/h, the status bar sums the spend, and
// Terminate (modal with the money figure) ends it.
import assert from 'node:assert/strict';
import { acceptPickIfShown, clickDialogButton, contextMenu, openActivity, pick, runCommand, statusBarText, typeInput as type, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';
import { FakeLambdaServer } from '../../fakes/lambdaServer.ts';

export const timeout = 150000;
export const workspace = 'demo';
// A daily budget (warn only): the wizard's confirmation states what is left of it.
// Polls every 6 s: the status bar's spend must tick every second in between, from local arithmetic.
export const userSettings = { 'tether.budgets': [{ name: 'daily GPUs', limitUsd: 25, period: 'day' }], 'tether.pollIntervalSeconds': 6 };
let fake;

export async function setup({ log }) {
  fake = new FakeLambdaServer({ bootMs: 1500, terminateMs: 500 });
  await fake.start();
  log(`fake Lambda Cloud at ${fake.url}`);
  return { env: { TETHER_LAMBDA_API_URL: fake.url }, teardown: () => fake.stop() };
}

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^No cloud instances/);

  await runCommand(page, 'Tether: Set Cloud API Key…');
  await pick(page, 'Lambda Cloud');
  await type(page, fake.apiKey);
  await page.locator('.notification-toast', { hasText: 'Lambda Cloud account saved' }).first().waitFor({ timeout: 15000 });

  await runCommand(page, 'Tether: Provision Cloud Instance…');
  await pick(page, 'Lambda Cloud', 'provider');
  const a10 = page.locator('.quick-input-list .monaco-list-row', { hasText: 'gpu_1x_a10' }).first();
  await a10.waitFor({ timeout: 15000 });
  const typeRow = (await a10.innerText()).replace(/\s+/g, ' ');
  log(`type row: ${typeRow}`);
  assert.match(typeRow, /gpu_1x_a10 ?1 × A10.* · \$0\.75\/h ?capacity in us-east-1, us-west-1/);
  await screenshot('1-wizard-types');
  await pick(page, 'gpu_1x_a10', 'instance type');
  await pick(page, 'us-west-1', 'region');
  await pick(page, 'laptop', 'SSH key');
  await type(page, 'trainer');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 15000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`confirm: ${text}`);
  assert.match(text, /Launch gpu_1x_a10 on Lambda Cloud for \$0\.75\/h\?/);
  assert.match(text, /trainer in us-west-1: \$0\.75 per hour \(\$18\.00 per day\)/);
  assert.match(text, /Budget "daily GPUs": \$25\.00 left of \$25\.00 per day\./);
  await screenshot('2-wizard-confirm');
  await clickDialogButton(page, 'Launch');

  const row = await waitForRow(page, /^trainer running · A10 \(24 GB PCIe\) × 1 · us-west-1 · \$0\.75\/h · \$0\.\d\d so far/, { timeout: 30000 });
  log(`instance: ${row}`);
  // The launch progress lasted while it booted, and ends saying where to reach it.
  const up = page.locator('.notification-toast', { hasText: 'trainer is up on Lambda Cloud' }).first();
  await up.waitFor({ timeout: 30000 });
  log(`toast: ${(await up.innerText()).replace(/\s+/g, ' ')}`);
  const bar = await waitForStatusBar(page, /1 running · \$0\.75\/h · \$0\.\d{4} today/);
  log(`status bar: ${bar}`);
  // The spend ticks every second between polls, from the burn rate alone: no request to the
  // provider per tick (at $0.75/h a second is $0.000208, visible in the meter's 4 decimals).
  const meter = async () => Number(/\$(\d+\.\d{4}) today/.exec(await statusBarText(page))?.[1]);
  const listBefore = fake.requests.filter((r) => r.path === '/api/v1/instances').length;
  const t0 = Date.now();
  const readings = [await meter()];
  for (let i = 0; i < 3; i++) {
    await page.waitForTimeout(1100);
    readings.push(await meter());
  }
  const polls = fake.requests.filter((r) => r.path === '/api/v1/instances').length - listBefore;
  log(`meter readings ${readings.join(' → ')} over ${Date.now() - t0} ms with ${polls} poll(s) of the provider`);
  for (let i = 1; i < readings.length; i++) assert.ok(readings[i] > readings[i - 1], `the meter ticks: ${readings.join(' → ')}`);
  assert.ok(polls <= 1, `ticks come from local arithmetic, not from polls (${polls} polls in ${Date.now() - t0} ms)`);
  assert.equal(fake.instanceCount?.() ?? 1, 1);
  // Once up, the instance's SSH endpoint is one of the SSH hosts (nothing listens on the fake's
  // 127.0.0.1:22, so it cannot connect: the row says so).
  const host = await waitForRow(page, /^trainer \(cloud\)\s*ubuntu@127\.0\.0\.1 · (unreachable|connecting)/);
  log(`ssh host: ${host}`);
  await screenshot('3-instance-running');

  await contextMenu(page, /trainer\s*running/, 'Terminate Instance');
  await acceptPickIfShown(page, 'trainer');
  const dlg = (await page.locator('.monaco-dialog-box').innerText()).replace(/\s+/g, ' ');
  log(`terminate: ${dlg}`);
  assert.match(dlg, /Terminate trainer\?.*\$0\.75\/h, \$0\.\d\d so far/);
  await clickDialogButton(page, 'Terminate');
  await waitForRows(page, (r) => !r.some((x) => /^trainer /.test(x)), 'the instance gone', { timeout: 30000 });
  await waitForStatusBar(page, /\$0\.00\/h/);
  await screenshot('4-terminated');

  // The cost report: a webview with the chart (Chart.js bundled, strict CSP) and the table.
  await runCommand(page, 'Tether: Show Cost Report');
  const frame = page.frameLocator('iframe.webview.ready').first().frameLocator('iframe#active-frame');
  await frame.locator('body[data-chart="ready"]').waitFor({ timeout: 20000 });
  const table = (await frame.locator('table').innerText()).replace(/\s+/g, ' ');
  log(`report table: ${table}`);
  assert.match(table, /trainer lambda_labs gpu_1x_a10 \$0\.75\/h .* \$0\.01/);
  const canvas = await frame.locator('canvas#spend').boundingBox();
  assert.ok(canvas && canvas.width > 100 && canvas.height > 100, 'the chart has a size');
  assert.equal(await frame.locator('body').getAttribute('data-series'), 'lambda_labs', 'stacked by provider');
  await screenshot('5-cost-report');
  await frame.locator('button[data-stack="resource"]').click();
  await frame.locator('body[data-stack="resource"][data-series="trainer"]').waitFor({ timeout: 10000 });
  await screenshot('6-cost-report-by-resource');
}
