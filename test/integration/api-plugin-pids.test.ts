// Plugins registered through the API report PIDs. Only a plugin whose execution mode runs on
// this machine may have them mapped to local processes: a remote_ssh, cloud or kubernetes
// plugin's PIDs are another machine's, and a local process that happens to hold the same number
// is a stranger. Real processes, the real model (VS Code itself stubbed), a real ledger.
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { TetherModel } from '../../src/ui/model';
import { silentLogger } from '../../src/core/logger';
import { identify, isSameProcessAlive, readStat, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { PluginExecutionMode, type LifecycleAwarePlugin } from '../../src/core/protocols';
import { localManagedIdentities } from '../../src/core/localPids';
import { sleep, tmpDir, waitFor } from '../helpers/tmp';

const REMOTE_MODES = [
  PluginExecutionMode.REMOTE_SSH,
  PluginExecutionMode.CLOUD_VM,
  PluginExecutionMode.CLOUD_CONTAINER,
  PluginExecutionMode.CLOUD_SERVERLESS,
  PluginExecutionMode.CLOUD_GPU,
  PluginExecutionMode.CLOUD_CPU,
  PluginExecutionMode.KUBERNETES,
  'a-mode-tether-does-not-know' as PluginExecutionMode,
];

function pluginReporting(mode: PluginExecutionMode, pids: () => number[], onCleanup = () => undefined): LifecycleAwarePlugin {
  return { getExecutionMode: () => mode, getChildPids: pids, getManagedResources: () => ({}), forceCleanup: onCleanup };
}

describe('API plugins: PIDs map to local processes only in local execution modes', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];
  let model: TetherModel | undefined;
  afterEach(() => {
    model?.dispose();
    model = undefined;
    for (const c of children.splice(0)) if (c.pid) signalIfSame(identify(c.pid) ?? { pid: c.pid, startTime: -1 }, 'SIGKILL');
  });
  const spawnSleep = () => {
    const c = spawn('sleep', ['300'], { stdio: 'ignore' });
    children.push(c);
    return c;
  };
  const newModel = () => {
    const stateDir = tmpDir('tether-state-');
    const ws = tmpDir('tether-ws-');
    const m = new TetherModel(silentLogger, () => stateDir);
    m.setFolders([ws]);
    model = m;
    return { m, ledger: () => m.engine(ws).ledger.read() };
  };

  it('the decision: no local identities for a remote, cloud, kubernetes or unknown mode', () => {
    const stranger = spawnSleep();
    for (const mode of REMOTE_MODES) assert.deepEqual(localManagedIdentities(pluginReporting(mode, () => [stranger.pid!])), [], mode);
    for (const mode of [PluginExecutionMode.SUBPROCESS, PluginExecutionMode.IN_PROCESS, PluginExecutionMode.EXTERNAL_SERVICE]) {
      assert.deepEqual(localManagedIdentities(pluginReporting(mode, () => [stranger.pid!])), [identify(stranger.pid!)], mode);
    }
  });

  it('a remote-mode plugin whose PIDs collide with a local process: that process is never shown, recorded or killed', async () => {
    const stranger = spawnSleep();
    const strangerId = await waitFor(() => identify(stranger.pid!), 5000, 'the stranger');
    const { m, ledger } = newModel();
    for (const mode of REMOTE_MODES) m.apiSurface.registerPlugin(pluginReporting(mode, () => [stranger.pid!]), { name: `remote-${mode}` });
    const snap = await m.refresh('manual');
    assert.equal(snap.apiPlugins.length, REMOTE_MODES.length);
    for (const v of snap.apiPlugins) assert.deepEqual(v.processes, [], `${v.name} shows no local process`);
    const recorded = ledger().resources.flatMap((r) => r.processes.map((p) => p.pid));
    assert.ok(!recorded.includes(stranger.pid!), `the ledger does not record pid ${stranger.pid}: ${JSON.stringify(ledger().resources)}`);
    const r = await m.cleanup('all', { settingMs: 100 });
    assert.deepEqual(r.errors, []);
    await sleep(300);
    assert.ok(isSameProcessAlive(strangerId), 'Clean Up Everything spared the local process with the same PID');
  });

  it('control: a subprocess-mode plugin\'s PIDs are recorded and cleaned up (the path above is live)', async () => {
    const own = spawnSleep();
    const ownId: ProcessIdentity = await waitFor(() => identify(own.pid!), 5000, 'the child');
    const { m, ledger } = newModel();
    m.apiSurface.registerPlugin(pluginReporting(PluginExecutionMode.SUBPROCESS, () => [own.pid!]), { name: 'local' });
    const snap = await m.refresh('manual');
    assert.deepEqual(snap.apiPlugins[0]!.processes.map((p) => p.pid), [own.pid]);
    await waitFor(() => ledger().resources.some((r) => r.processes.some((p) => p.pid === own.pid)), 5000, 'the ledger record');
    await m.cleanup('all', { settingMs: 100 });
    await waitFor(() => !isSameProcessAlive(ownId), 5000, 'the plugin\'s leftover process to be stopped');
  });
});

describe('API plugins: PIDs that name Tether itself, its ancestors or no process are never mapped', function () {
  this.timeout(60_000);
  const mode = PluginExecutionMode.IN_PROCESS;
  const plugin = (pids: unknown[]): LifecycleAwarePlugin => ({
    getExecutionMode: () => mode,
    getChildPids: () => pids as number[],
    getManagedResources: () => ({}),
    forceCleanup: () => undefined,
  });
  const ancestors = (): number[] => {
    const out: number[] = [];
    for (let pid = process.ppid; pid > 0 && out.length < 64; ) {
      out.push(pid);
      const st = readStat(pid);
      if (!st) break;
      pid = st.ppid;
    }
    return out;
  };

  it('an in-process plugin reporting the extension host\'s own PID (its whole tree would go) maps to nothing', () => {
    // A naive in_process plugin returns process.pid: Clean Up Everything would then stop the
    // extension host and every process under it.
    assert.deepEqual(localManagedIdentities(plugin([process.pid])), []);
  });

  it('PID 1, the host\'s parents, 0, negative, fractional and non-numeric PIDs map to nothing', () => {
    for (const pid of [1, ...ancestors(), 0, -1, -process.pid, 1.5, Number.NaN, 'self', 'thread-self', `${process.pid}`]) {
      assert.deepEqual(localManagedIdentities(plugin([pid])), [], `pid ${String(pid)}`);
    }
  });

  it('the plugin\'s real children are still mapped next to a bad PID', async () => {
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      const id = await waitFor(() => identify(child.pid!), 5000, 'the child');
      assert.deepEqual(localManagedIdentities(plugin([process.pid, 1, child.pid!])), [id]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the model never records the extension host\'s own process for such a plugin', async () => {
    const stateDir = tmpDir('tether-state-');
    const ws = tmpDir('tether-ws-');
    const m = new TetherModel(silentLogger, () => stateDir);
    try {
      m.setFolders([ws]);
      m.apiSurface.registerPlugin(plugin([process.pid, 1]), { name: 'naive-in-process' });
      const snap = await m.refresh('manual');
      assert.deepEqual(snap.apiPlugins[0]!.processes.map((p) => p.pid), []);
      const recorded = m.engine(ws).ledger.read().resources.flatMap((r) => r.processes.map((p) => p.pid));
      assert.ok(!recorded.includes(process.pid) && !recorded.includes(1), `recorded: ${recorded.join(' ')}`);
    } finally {
      m.dispose();
    }
  });
});
