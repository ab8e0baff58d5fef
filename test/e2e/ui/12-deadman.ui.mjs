// A cloud GPU with a dead man's switch, in a real VS Code: launched through the wizard on a fake
// Lambda Cloud server (protocol fake: the real API cannot be called from tests) whose instance
// address is 127.0.0.1. The user's ~/.ssh/config maps that address to the loopback OpenSSH server
// started for this test (port, user, key), so the instance becomes a connected SSH host by itself;
// "Launch with Dead Man's Switch" arms the watcher on it (a real process on the "instance"), the
// confirmation says what a self-shutdown does to a Lambda bill, and Disarm stops the watcher.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { clickDialogButton, contextMenu, openActivity, pick, runCommand, sshHome, typeInput, waitForRow, waitForRows, waitForWorkbench } from '../lib.mjs';
import { FakeLambdaServer } from '../../fakes/lambdaServer.ts';
import { processesOf, startSshd } from '../../helpers/sshd.ts';

export const timeout = 150000;
export const workspace = 'demo';
export const userSettings = { 'tether.cloud.deadmanMinutes': 5 };
let fake;
let sshd;

const watchers = () =>
  processesOf(sshd.uid).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('.tether/deadman/');
    } catch {
      return false;
    }
  });

export async function setup({ log }) {
  sshd = await startSshd();
  fake = new FakeLambdaServer({ bootMs: 1500, terminateMs: 500 });
  await fake.start();
  // The instance's address (127.0.0.1) → the loopback server; its key is already trusted.
  const h = sshHome(sshd, { config: `Host 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ~/.ssh/id_ed25519\n`, knownHosts: fs.readFileSync(sshd.knownHosts, 'utf8') });
  // Hand-written nvidia-smi output (no GPU on this machine).
  fs.writeFileSync(path.join(sshd.binDir, 'nvidia-smi'), "#!/bin/sh\nprintf '0, NVIDIA A10, 3, 512, 24576\\n'\n", { mode: 0o755 });
  log(`fake Lambda Cloud at ${fake.url}; sshd on 127.0.0.1:${sshd.port}`);
  return {
    env: { ...h.env, TETHER_LAMBDA_API_URL: fake.url },
    teardown: async () => {
      await fake.stop();
      await sshd.stop();
      h.remove();
    },
  };
}

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await runCommand(page, 'Tether: Set Cloud API Key…');
  await pick(page, 'Lambda Cloud');
  await typeInput(page, fake.apiKey);
  await page.locator('.notification-toast', { hasText: 'Lambda Cloud account saved' }).first().waitFor({ timeout: 15000 });

  await runCommand(page, 'Tether: Provision Cloud Instance…');
  await pick(page, 'Lambda Cloud', 'provider');
  await pick(page, 'gpu_1x_a10', 'instance type');
  await pick(page, 'us-east-1', 'region');
  await pick(page, 'laptop', 'SSH key');
  await typeInput(page, 'night-run');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 15000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`confirm: ${text}`);
  assert.match(text, /Dead man's switch: the instance shuts itself down 5 min after Tether goes silent/);
  assert.match(text, /Lambda Cloud: a shutdown from inside does NOT terminate the instance/);
  await screenshot('1-confirm-with-switch');
  await clickDialogButton(page, "Launch with Dead Man's Switch (5 min)");

  // The SSH host it reports is the one Tether connects with: ~/.ssh/config's user, not Lambda's
  // "ubuntu" — the host row names it without a user (the "is up" toast says the same, but it does not
  // always show under a full suite run on a fresh HOME: logged, not asserted — see the closing note).
  log(`toasts: ${JSON.stringify(await page.locator('.notification-toast').allInnerTexts())}`);
  const host = await waitForRow(page, /^night-run \(cloud\)\s*127\.0\.0\.1 · connected · 1 GPU/, { timeout: 40000 });
  log(`ssh host: ${host}`);
  const row = await waitForRow(page, /^night-run running .* · ⏻ 5m armed/, { timeout: 40000 });
  log(`instance: ${row}`);
  const armed = watchers();
  assert.equal(armed.length, 1, `one watcher runs on the instance: ${armed}`);
  const cmd = fs.readFileSync(`/proc/${armed[0]}/cmdline`, 'latin1').replace(/\0/g, ' ');
  log(`watcher pid ${armed[0]}: ${cmd}`);
  await screenshot('2-armed');

  await contextMenu(page, /night-run\s*running/, "Disarm Dead Man's Switch");
  await waitForRow(page, /^night-run running (?!.*⏻)/);
  await waitForRows(page, () => watchers().length === 0, 'the watcher stopped on the instance');
  await screenshot('3-disarmed');

  await contextMenu(page, /night-run\s*running/, 'Terminate Instance');
  await clickDialogButton(page, 'Terminate');
  await waitForRows(page, (r) => !r.some((x) => /^night-run/.test(x)), 'the instance and its host gone', { timeout: 30000 });
}
