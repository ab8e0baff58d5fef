'use strict';
// Inside the real extension host (code-server), on the demo workspace: the model behind the tree
// and status bar, commands, and the public API.
const assert = require('assert');
const fs = require('fs');
const { spawn } = require('child_process');
const vscode = require('vscode');

const snapshot = () => vscode.commands.executeCommand('tether.internal.snapshot');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await vscode.commands.executeCommand('tether.refresh');
    const v = await fn(await snapshot());
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await snapshot(), null, 1).slice(0, 2000)}`);
    await sleep(200);
  }
}
const plugin = (s, name) => s.folders[0].report.plugins.find((p) => p.name === name);
const alive = (pid) => {
  try {
    return !/^\S+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('Tether in the extension host', function () {
  this.timeout(60000);
  let api;

  before(async () => {
    api = await vscode.extensions.getExtension('tether-dev.tether').activate();
    await vscode.workspace.getConfiguration('tether').update('confirmDestructiveActions', false, vscode.ConfigurationTarget.Global);
  });

  it('reads the demo workspace: two declared plugins, both stopped', async () => {
    const s = await until((s) => s.folders[0]?.report && s, 'a report');
    assert.deepStrictEqual(s.folders[0].report.plugins.map((p) => [p.name, p.state]), [['ticker', 'stopped'], ['workers', 'stopped']]);
    assert.strictEqual(s.running, 0);
  });

  it('starts a plugin by command, sees its child processes, and stops the whole tree', async () => {
    const s0 = await snapshot();
    const node = { kind: 'plugin', id: 'x', folder: s0.folders[0].folder, status: plugin(s0, 'workers') };
    await vscode.commands.executeCommand('tether.start', node);
    const s1 = await until((s) => plugin(s, 'workers').processes.length >= 3 && s, 'workers and its two children');
    const procs = plugin(s1, 'workers').processes;
    assert.strictEqual(plugin(s1, 'workers').state, 'running');
    assert.strictEqual(plugin(s1, 'workers').ownedByMe, true);
    assert.ok(procs.filter((p) => p.ppid === procs[0].pid).length >= 2, 'two children of the root');
    assert.strictEqual(s1.running, 1);
    await vscode.commands.executeCommand('tether.stop', { ...node, status: plugin(s1, 'workers') });
    const s2 = await until((s) => plugin(s, 'workers').processes.length === 0 && s, 'workers stopped');
    assert.strictEqual(plugin(s2, 'workers').state, 'stopped');
    for (const p of procs) assert.strictEqual(alive(p.pid), false, `pid ${p.pid} is gone`);
  });

  it('the public API: registration is validated, plugins show up, clean-up stops their whole tree', async () => {
    assert.strictEqual(api.apiVersion, 1);
    assert.throws(() => api.registerPlugin({ not: 'a plugin' }, { name: 'bad' }), /neither LifecycleAwarePlugin nor CloudAwarePlugin/);
    // A sloppy plugin whose cleanup kills only its direct child: Tether must get the grandchild too.
    const server = spawn('sh', ['-c', 'sleep 300 & sleep 300; :'], { stdio: 'ignore' });
    let cleaned = 0;
    const reg = api.registerPlugin(
      {
        getExecutionMode: () => 'subprocess',
        getChildPids: () => (server.exitCode === null && server.signalCode === null ? [server.pid] : []),
        getManagedResources: () => ({}),
        forceCleanup: () => {
          cleaned++;
          server.kill('SIGKILL');
        },
      },
      { name: 'in-test-server' },
    );
    assert.throws(() => api.registerPlugin({ getExecutionMode() {}, getChildPids() {}, getManagedResources() {}, forceCleanup() {} }, { name: 'in-test-server' }), /already registered/);
    let info;
    const rate = 4.4;
    const cloud = {
      getRemoteResourceInfo: () => info,
      provisionRemoteResource: () => (info = { provider: 'lambda_labs', status: 'running', gpuCount: 4, gpuType: 'A100', resourceType: '4x_A100', region: 'us-west-1', estimatedCostPerHour: rate, sshPort: 22, metadata: {} }),
      checkRemoteResourceStatus: () => (info ? info.status : 'not_provisioned'),
      terminateRemoteResource: () => {
        if (!info) return false;
        info.status = 'terminated';
        return true;
      },
      estimateCost: (h) => (info ? (info.estimatedCostPerHour || 0) * h : 0),
    };
    cloud.provisionRemoteResource({});
    const regCloud = api.registerPlugin(cloud, { name: 'gpu-box', title: 'GPU box' });
    try {
      const s = await until((s) => {
        const a = s.apiPlugins.find((x) => x.name === 'in-test-server');
        return a && a.processes.length === 3 && s;
      }, 'the API plugin with its tree');
      assert.deepStrictEqual(api.registeredPlugins().sort(), ['gpu-box', 'in-test-server']);
      const tree = s.apiPlugins.find((x) => x.name === 'in-test-server').processes;
      const gpu = s.apiPlugins.find((x) => x.name === 'gpu-box');
      assert.strictEqual(gpu.costPerHour, 4.4);
      assert.strictEqual(s.costPerHour, 4.4);
      assert.strictEqual(gpu.remote.gpuCount, 4);
      await vscode.commands.executeCommand('tether.cleanupAll');
      const after = await until((s) => s.apiPlugins.every((x) => x.processes.length === 0) && s, 'the API tree gone');
      assert.strictEqual(cleaned, 1, 'forceCleanup was called once');
      assert.strictEqual(info.status, 'terminated', 'the cloud resource was terminated');
      assert.strictEqual(after.costPerHour, 0);
      for (const p of tree) assert.strictEqual(alive(p.pid), false, `pid ${p.pid} (${p.command}) is gone`);
    } finally {
      reg.dispose();
      regCloud.dispose();
      server.kill('SIGKILL');
    }
    assert.deepStrictEqual(api.registeredPlugins(), []);
  });
});
