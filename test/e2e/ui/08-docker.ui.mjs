// A container plugin in a real VS Code against a private dockerd started for this test: start it
// from the tree, see the container with its host process tree, open its logs, stop it.
import assert from 'node:assert/strict';
import { acceptPickIfShown, contextMenu, openActivity, clickDialogButton, waitForRow, waitForRows, waitForStatusBar, waitForWorkbench } from '../lib.mjs';
import { startDockerd } from '../../helpers/dockerd.ts';

export const timeout = 150000;
let dockerd;

export const workspace = {
  files: {
    '.vscode/tether.json': {
      plugins: [{ name: 'box', command: 'sh', args: ['-c', 'echo hello from the container; sleep 300 & sleep 300'], docker: { image: 'tether-test/busybox:1' } }],
    },
  },
};

export async function setup({ log }) {
  dockerd = await startDockerd();
  log(`dockerd at ${dockerd.host}, image ${dockerd.image}`);
  return { env: { DOCKER_HOST: dockerd.host }, teardown: () => dockerd.stop() };
}

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^box stopped/);
  await contextMenu(page, 'box', 'Start Plugin');
  await acceptPickIfShown(page, 'box', { timeout: 800 });
  const rows = await waitForRows(page, (r) => r.some((x) => /^box running · 2 processes .* tether-test\/busybox:1/.test(x)) && r.filter((x) => /^sleep PID \d+/.test(x)).length === 2, 'the container and its two processes');
  log(`tree: ${JSON.stringify(rows)}`);
  const containers = await dockerd.docker.listContainers({ filters: { label: ['dev.tether.plugin=box'] } });
  assert.equal(containers.length, 1);
  await waitForStatusBar(page, /1 running/);
  await screenshot('1-container-running');

  await contextMenu(page, 'box', 'Show Logs');
  const editor = page.locator('.monaco-editor .view-lines').first();
  await editor.waitFor({ timeout: 15000 });
  // Monaco renders spaces as no-break spaces.
  await page.waitForFunction(() => (document.querySelector('.monaco-editor .view-lines')?.textContent ?? '').replace(/\u00a0/g, ' ').includes('hello from the container'), null, { timeout: 15000 });
  await screenshot('2-container-logs');

  await contextMenu(page, 'box', 'Stop Plugin');
  await acceptPickIfShown(page, 'box');
  await clickDialogButton(page, 'Stop');
  await waitForRows(page, (r) => r.some((x) => /^box stopped/.test(x)) && !r.some((x) => /PID/.test(x)), 'box stopped');
  await waitForStatusBar(page, /0 running/);
  assert.deepEqual(await dockerd.docker.listContainers({ all: true, filters: { label: ['dev.tether.plugin=box'] } }), []);
  await screenshot('3-container-stopped');
}
