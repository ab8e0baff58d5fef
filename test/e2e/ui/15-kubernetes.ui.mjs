// A Kubernetes Job in a real VS Code, against the strict API-server fake (https with a test CA
// inside the kubeconfig, which the extension host reads through KUBECONFIG): the plugin declared
// in tether.json starts as a Job, the tree shows it with its context/namespace, $/h from the
// cluster's price table and its Pod (phase, node, GPU), and Stop deletes the Job with Background
// propagation — no Pod is left running on the cluster.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acceptPickIfShown, clickDialogButton, contextMenu, openActivity, waitForRow, waitForRows, waitForWorkbench, treeRows } from '../lib.mjs';
import { FakeKubeApiServer } from '../../fakes/kubeApiServer.ts';
import { setPrices } from '../../../src/backends/kubernetes/prices.ts';

export const timeout = 180000;
export const workspace = {
  files: {
    '.vscode/tether.json': {
      plugins: [{ name: 'train', kubernetes: { context: 'gpu-cluster', namespace: 'ml', image: 'busybox:1', command: ['sh', '-c', 'echo ready; sleep 600'], gpus: 1 } }],
    },
  },
};
export const userSettings = { 'tether.pollIntervalSeconds': 2 };
let fake;
let dir;

export async function setup({ stateDir, log }) {
  fake = new FakeKubeApiServer({ namespaces: ['ml'] });
  await fake.start();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-e2e-kube-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, fake.kubeconfig({ context: 'gpu-cluster', namespace: 'ml' }));
  await setPrices(stateDir, 'gpu-cluster', { gpuHour: 2, cpuHour: 0.05, gibHour: 0.01 });
  log(`fake kube-apiserver at ${fake.url}`);
  return {
    env: { KUBECONFIG: kubeconfig },
    teardown: async () => {
      await fake.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const livePods = () => fake.list('pods', 'ml').filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase));

export async function run({ page, url, screenshot, log }) {
  await page.goto(url);
  await waitForWorkbench(page);
  await openActivity(page, 'Tether');
  await waitForRow(page, /^train stopped/);

  await contextMenu(page, 'train', 'Start Plugin');
  await acceptPickIfShown(page, 'train', { timeout: 800 });
  const rows = await waitForRows(page, (r) => r.some((x) => /^train running · gpu-cluster\/ml · \$\d+\.\d\d\/h/.test(x)) && r.some((x) => /^\S*train-[a-z0-9]+\s*Running · gpu-node-\d · 1 GPU/.test(x)), 'the Job running with its Pod', { timeout: 90000 });
  log(`tree: ${JSON.stringify(rows)}`);
  assert.equal(fake.list('jobs', 'ml').length, 1, 'one Job on the cluster');
  assert.equal(livePods().length, 1, 'its Pod runs');
  await screenshot('1-job-with-pod');

  await contextMenu(page, /train\s*running/, 'Stop Plugin');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 15000 });
  const text = (await dialog.innerText()).replace(/\s+/g, ' ');
  log(`modal: ${text}`);
  assert.match(text, /deleted with propagationPolicy Background/);
  await clickDialogButton(page, 'Stop');
  await waitForRows(page, (r) => r.some((x) => /^train stopped/.test(x)) && !r.some((x) => /^\S*train-[a-z0-9]+\s*Running/.test(x)), 'train stopped, no Pod row', { timeout: 60000 });
  for (let i = 0; i < 60 && (livePods().length || fake.list('jobs', 'ml').length); i++) await new Promise((r) => setTimeout(r, 500));
  assert.equal(fake.list('jobs', 'ml').length, 0, 'the Job is gone');
  assert.equal(livePods().length, 0, 'no Pod left running (Background propagation)');
  log(`after stop: ${JSON.stringify(await treeRows(page))}`);
  await screenshot('2-stopped');
}
