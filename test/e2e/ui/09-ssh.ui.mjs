// A remote plugin on an SSH host (a real OpenSSH server on 127.0.0.1 started for this test) in a
// real VS Code: the unknown host key is shown with its fingerprint and accepted by the user, the
// plugin starts on the host, its remote PIDs and the host's GPUs (from a fixture nvidia-smi that
// prints hand-written sample output: there is no GPU here) appear under "SSH hosts", and it stops.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { acceptPickIfShown, clickDialogButton, contextMenu, openActivity, sshHome, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';
import { startSshd, processesOf } from '../../helpers/sshd.ts';

export const timeout = 150000;
let sshd;
let home;

export const workspace = {
  files: {
    '.vscode/tether.json': {
      plugins: [{ name: 'trainer', host: 'tether-test', command: 'sh', args: ['-c', 'echo epoch 1; sleep 300 & sleep 300; :'] }],
    },
  },
};

export async function setup({ log }) {
  sshd = await startSshd();
  // HOME for code-server: ~/.ssh/config names the test host; known_hosts is empty, so Tether
  // must ask the user about the host key.
  const h = sshHome(sshd, { config: fs.readFileSync(sshd.sshConfig, 'utf8') });
  home = h.home;
  fs.writeFileSync(
    path.join(sshd.binDir, 'nvidia-smi'),
    ['#!/bin/sh', 'case "$*" in', '  *--query-gpu=*) printf \'0, NVIDIA A100-SXM4-80GB, 87, 61234, 81920\\n1, NVIDIA A100-SXM4-80GB, 0, 4, 81920\\n\';;', '  *) exit 2;;', 'esac', ''].join('\n'),
    { mode: 0o755 },
  );
  log(`sshd on 127.0.0.1:${sshd.port}, HOME ${home}`);
  return {
    env: h.env,
    teardown: async () => {
      await sshd.stop();
      h.remove();
    },
  };
}

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^tether-test /);
  await waitForRow(page, /^trainer stopped/);
  await screenshot('1-host-idle');

  await contextMenu(page, 'trainer', 'Start Plugin');
  await acceptPickIfShown(page, 'trainer', { timeout: 800 });
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 20000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`host key prompt: ${text}`);
  assert.match(text, /authenticity of host "127\.0\.0\.1:\d+" can't be established/);
  assert.match(text, /SHA256:[A-Za-z0-9+/]{43}/);
  await screenshot('2-host-key-prompt');
  await clickDialogButton(page, 'Trust and Connect');

  const rows = await waitForRows(page, (r) => r.some((x) => /^trainer running · 3 processes/.test(x)) && r.filter((x) => /^sleep PID \d+/.test(x)).length === 2, 'the remote plugin and its two children', { timeout: 30000 });
  log(`tree: ${JSON.stringify(rows)}`);
  assert.ok(rows.some((x) => /^tether-test connected · 2 GPUs · 1 running/.test(x)), 'host row');
  assert.ok(rows.some((x) => /^GPU 0: NVIDIA A100-SXM4-80GB 87% util · 59\.8\/80 GiB · busy/.test(x)), 'GPU 0 row, busy');
  assert.ok(rows.some((x) => /^GPU 1: NVIDIA A100-SXM4-80GB 0% util/.test(x)), 'GPU 1 row');
  assert.equal(processesOf(sshd.uid).length >= 3, true, 'the processes run as the SSH user on the host');
  assert.match(fs.readFileSync(path.join(home, '.ssh', 'known_hosts'), 'utf8'), /^\|1\|/m, 'the accepted key was recorded (hashed)');
  await waitForStatusBar(page, /1 running/);
  await screenshot('3-remote-running');

  // Show Logs follows the remote log while it is open (like tail -f): a line the job writes later appears.
  await contextMenu(page, /trainer\s*running/, 'Show Logs');
  const editorText = () => page.evaluate(() => (document.querySelector('.monaco-editor .view-lines')?.textContent ?? '').replace(/\u00a0/g, ' '));
  await page.waitForFunction(() => (document.querySelector('.monaco-editor .view-lines')?.textContent ?? '').replace(/\u00a0/g, ' ').includes('epoch 1'), null, { timeout: 15000 });
  const logDir = path.join(sshd.home, '.cache', 'tether', 'logs');
  // The newest trainer log (the test user's home outlives earlier runs).
  const logFile = fs.readdirSync(logDir).filter((f) => f.startsWith('trainer')).map((f) => path.join(logDir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  fs.appendFileSync(logFile, 'epoch 2 (written after the log was opened)\n');
  await page.waitForFunction(() => (document.querySelector('.monaco-editor .view-lines')?.textContent ?? '').replace(/\u00a0/g, ' ').includes('epoch 2 (written after'), null, { timeout: 15000 });
  log(`log editor: ${(await editorText()).slice(-120)}`);
  await screenshot('3b-remote-log-following');

  await contextMenu(page, 'trainer', 'Stop Plugin');
  await acceptPickIfShown(page, 'trainer');
  await clickDialogButton(page, 'Stop');
  await waitForRows(page, (r) => r.some((x) => /^trainer stopped/.test(x)) && !r.some((x) => /PID/.test(x)), 'trainer stopped', { timeout: 30000 });
  await waitForStatusBar(page, /0 running/);
  // Only Tether's kept SSH connection (the user's sshd session process) may remain. Killed
  // processes take a moment to vanish (longer on a loaded machine): wait up to 30 s for it.
  const comm = (pid) => { try { return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return 'gone'; } };
  const leftNow = () => processesOf(sshd.uid).filter((pid) => !['sshd', 'gone'].includes(comm(pid)));
  for (const until = Date.now() + 30000; leftNow().length && Date.now() < until; ) await page.waitForTimeout(200);
  const left = leftNow();
  assert.deepEqual(left.map((pid) => `${pid} ${comm(pid)}`), [], 'nothing of the plugin left on the host');
  await screenshot('4-remote-stopped');
}
