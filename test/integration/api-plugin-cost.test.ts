// A cloud-aware plugin registered through Tether's API reports a remote resource: its cost goes to
// the ledger like Tether's own cloud records (budgets, period spend, the cost report, `tether
// cost`), survives a reload (a new model on the same state folder), and ends when the plugin
// reports it terminated, its cost kept. The real model (VS Code itself stubbed), a real ledger,
// the real CLI in its own process.
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { TetherModel } from '../../src/ui/model';
import { silentLogger } from '../../src/core/logger';
import * as fs from 'node:fs';
import { Ledger, salvageLedger, type LedgerResource } from '../../src/core/ledger';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo, type CloudAwarePlugin, type LifecycleAwarePlugin, type RemoteResourceInfo } from '../../src/core/protocols';
import { identify, signalIfSame } from '../../src/core/procfs';
import type { Budget } from '../../src/core/budget';
import { budgetSpend } from '../../src/fleet/spend';
import { PolicyLease } from '../../src/fleet/leader';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor } from '../helpers/tmp';

interface FakeCloudPlugin extends CloudAwarePlugin {
  info: RemoteResourceInfo | undefined;
  terminations: number;
}

/** A plugin of another extension: it holds its resource's state; Tether only reads it. */
function cloudPlugin(info: RemoteResourceInfo, perHour: number): FakeCloudPlugin {
  const p: FakeCloudPlugin = {
    info,
    terminations: 0,
    getRemoteResourceInfo: () => p.info,
    provisionRemoteResource: () => p.info!,
    checkRemoteResourceStatus: () => p.info?.status ?? 'not_provisioned',
    terminateRemoteResource: () => {
      p.terminations++;
      if (!p.info) return false;
      p.info = { ...p.info, status: 'terminated' };
      return true;
    },
    estimateCost: (h) => (p.info?.status === 'running' ? perHour * h : 0),
  };
  return p;
}

interface CostJson {
  lines: Array<{ ledgerId: string; name: string; provider: string; pricePerHour: number; cost: number; endedAt: string | null }>;
  total: number;
}

describe('API plugins: their remote resources and cost go to the ledger', function () {
  this.timeout(120_000);
  const models: TetherModel[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });
  let stateDir: string;
  let ws: string;
  let budgets: Budget[];
  beforeEach(() => {
    stateDir = tmpDir('tether-state-');
    ws = tmpDir('tether-ws-');
    budgets = [];
  });
  const newModel = () => {
    const m = new TetherModel(silentLogger, () => stateDir, {}, () => [], () => [], () => ({ budgets, pollMs: 2000 }));
    m.setFolders([ws]);
    models.push(m);
    return m;
  };
  const apiRecords = (open = true): LedgerResource[] => {
    const b = new Ledger(stateDir).read();
    return (open ? b.resources : b.ended).filter((r) => r.kind === 'api' && r.remote);
  };
  const costJson = async (): Promise<CostJson> => {
    const r = await runCli(['cost', '--json', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as CostJson;
  };
  // Lambda bills per started minute with a one-minute minimum: $6/h is exactly $0.10 in the first minute.
  const lambda = () =>
    remoteResourceInfo({ provider: CloudProviderType.LAMBDA_LABS, instanceId: 'i-0abc', status: 'running', estimatedCostPerHour: 6, resourceType: 'gpu_1x_a10', metadata: { apiToken: 'secret-token-xyz' } });

  it('a running resource at $6/h: in the ledger, in `tether cost --json`, counted by a budget and the period spend', async () => {
    budgets = [{ name: 'daily', limitUsd: 100, period: 'day' }];
    const m = newModel();
    const plugin = cloudPlugin(lambda(), 6);
    m.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    const snap = await m.refresh('manual');
    const [rec, ...more] = apiRecords();
    assert.ok(rec, `a ledger record of the plugin's resource: ${JSON.stringify(new Ledger(stateDir).read())}`);
    assert.deepEqual(more, []);
    assert.equal(rec.plugin, 'gpu-ext');
    assert.equal(rec.remote!.provider, 'lambda_labs');
    assert.equal(rec.remote!.instanceId, 'i-0abc');
    assert.equal(rec.remote!.estimatedCostPerHour, 6);
    assert.ok(!JSON.stringify(rec).includes('secret-token-xyz'), 'the plugin\'s free-form metadata (a token) is not copied to the ledger');
    assert.equal(snap.apiPlugins[0]!.costLedgerId, rec.id);
    assert.ok(Math.abs(snap.apiPlugins[0]!.costSoFar - 0.1) < 1e-9, `the view's cost comes from the ledger: ${snap.apiPlugins[0]!.costSoFar}`);
    // Budgets and the period spend count it (the billing rule's one-minute minimum: $0.10).
    assert.ok(Math.abs(snap.budgets[0]!.spent - 0.1) < 1e-9, `the budget counts it: ${JSON.stringify(snap.budgets)}`);
    assert.ok(Math.abs(snap.spend!.spent - 0.1) < 1e-9, `the period spend counts it: ${JSON.stringify(snap.spend)}`);
    assert.equal(snap.spend!.perHour, 6);
    assert.equal(snap.costPerHour, 6, 'counted once in the burn rate (the ledger\'s, not the plugin\'s on top)');
    assert.ok(Math.abs(budgetSpend(new Ledger(stateDir), budgets)[0]! - 0.1) < 1e-9);
    const cost = await costJson();
    const line = cost.lines.find((l) => l.ledgerId === rec.id);
    assert.ok(line, `tether cost --json lists it: ${JSON.stringify(cost)}`);
    assert.equal(line.name, 'gpu-ext');
    assert.equal(line.provider, 'lambda_labs');
    assert.equal(line.pricePerHour, 6);
    assert.equal(line.endedAt, null);
    assert.ok(Math.abs(line.cost - 0.1) < 1e-9, `${line.cost}`);
  });

  it('a provider Tether has no rule for: accrued per second at the plugin\'s own estimateCost', async () => {
    const m = newModel();
    const plugin = cloudPlugin(remoteResourceInfo({ provider: CloudProviderType.CUSTOM, jobId: 'job-7', status: 'running' }), 3.6);
    m.apiSurface.registerPlugin(plugin, { name: 'custom-ext' });
    await m.refresh('manual');
    const [rec] = apiRecords();
    assert.ok(rec, 'recorded');
    assert.equal(rec.remote!.estimatedCostPerHour, 3.6, 'the price is the plugin\'s estimateCost(1)');
    const t0 = Date.parse(rec.createdAt);
    const cost = await costJson();
    const after = Date.now();
    const line = cost.lines.find((l) => l.ledgerId === rec.id);
    assert.ok(line, JSON.stringify(cost));
    // Per started second (API_ESTIMATE_RULE): at most the whole seconds since it was recorded.
    assert.ok(line.cost > 0 && line.cost <= (3.6 * Math.ceil((after - t0) / 1000)) / 3600 + 1e-12, `${line.cost} for ${after - t0} ms at $3.6/h`);
  });

  it('survives a reload: a new model on the same state folder still has it, and the plugin re-attaches to the same record', async () => {
    budgets = [{ name: 'daily', limitUsd: 100, period: 'day' }];
    const m1 = newModel();
    const plugin = cloudPlugin(lambda(), 6);
    m1.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    await m1.refresh('manual');
    const [rec] = apiRecords();
    assert.ok(rec, 'recorded before the reload');
    m1.dispose();
    models.splice(models.indexOf(m1), 1);

    const m2 = newModel();
    // Before the plugin registers again: the record is still open, counted by budgets and the cost report.
    const before = await m2.refresh('manual');
    assert.deepEqual(apiRecords().map((r) => r.id), [rec.id]);
    assert.ok(Math.abs(before.budgets[0]!.spent - 0.1) < 1e-9, `a budget still counts it: ${JSON.stringify(before.budgets)}`);
    assert.ok((await costJson()).lines.some((l) => l.ledgerId === rec.id && l.endedAt === null));
    // The extension activates again and registers the same resource: no second record.
    m2.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    const snap = await m2.refresh('manual');
    assert.deepEqual(apiRecords().map((r) => r.id), [rec.id], 'the same record, not a new one');
    assert.equal(snap.apiPlugins[0]!.costLedgerId, rec.id);
    assert.equal(snap.spend!.perHour, 6);
  });

  it('terminated by its plugin: the record ends with its cost kept (cost report, budgets)', async () => {
    budgets = [{ name: 'daily', limitUsd: 100, period: 'day' }];
    const m = newModel();
    const plugin = cloudPlugin(lambda(), 6);
    m.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    await m.refresh('manual');
    const [rec] = apiRecords();
    assert.ok(rec);
    await plugin.terminateRemoteResource();
    const snap = await m.refresh('manual');
    assert.deepEqual(apiRecords(), [], 'no open record left');
    const ended = apiRecords(false).find((r) => r.id === rec.id);
    assert.ok(ended, 'the record is among the ended ones');
    assert.equal(snap.spend!.perHour, 0, 'it bills nothing more');
    assert.ok(Math.abs(snap.budgets[0]!.spent - 0.1) < 1e-9, `its cost still counts: ${JSON.stringify(snap.budgets)}`);
    const line = (await costJson()).lines.find((l) => l.ledgerId === rec.id);
    assert.ok(line && line.endedAt !== null, JSON.stringify(line));
    assert.ok(Math.abs(line.cost - 0.1) < 1e-9, `${line.cost}`);
  });

  it('an auto-terminate budget it crosses: Tether asks the plugin to terminate (it has no credentials of its own)', async () => {
    budgets = [{ name: 'cap', limitUsd: 0.05, period: 'day', autoTerminate: true }];
    const m = newModel();
    const plugin = cloudPlugin(lambda(), 6);
    m.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    await m.refresh('manual');
    assert.equal(plugin.terminations, 1, 'the plugin\'s terminateRemoteResource() was called');
    await m.refresh('manual');
    assert.deepEqual(apiRecords(), [], 'its report of `terminated` ended the record');
  });

  it('another process leads the policy tick (tether watch): the window still asks its own plugin to terminate', async () => {
    budgets = [{ name: 'cap', limitUsd: 0.05, period: 'day', autoTerminate: true }];
    const watch = new PolicyLease(stateDir, 'watch');
    assert.equal((await watch.tryLead(600_000)).leader, true);
    try {
      const m = newModel();
      const plugin = cloudPlugin(lambda(), 6);
      m.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
      await m.refresh('manual');
      assert.equal(plugin.terminations, 1, 'the plugin\'s terminateRemoteResource() was called');
      await m.refresh('manual');
      assert.deepEqual(apiRecords(), []);
    } finally {
      watch.releaseSync();
    }
  });

  it('a plugin whose terminate fails is asked again at most once a minute, the failure noted in its record', async () => {
    budgets = [{ name: 'cap', limitUsd: 0.05, period: 'day', autoTerminate: true }];
    const m = newModel();
    const plugin = cloudPlugin(lambda(), 6);
    plugin.terminateRemoteResource = () => {
      plugin.terminations++;
      throw new Error('provider said no');
    };
    m.apiSurface.registerPlugin(plugin, { name: 'gpu-ext' });
    await m.refresh('manual');
    await m.refresh('manual');
    await m.refresh('manual');
    assert.equal(plugin.terminations, 1);
    const [rec] = apiRecords();
    assert.ok(rec?.history.some((h) => h.note?.includes('termination failed: provider said no')), JSON.stringify(rec?.history));
  });

  it('bad input from a plugin: a clear error, nothing recorded', async () => {
    const m = newModel();
    const plugin = cloudPlugin({ ...lambda(), estimatedCostPerHour: -5 }, 6);
    m.apiSurface.registerPlugin(plugin, { name: 'bad-ext' });
    const snap = await m.refresh('manual');
    assert.match(snap.apiPlugins[0]!.error ?? '', /price/);
    assert.deepEqual(apiRecords(), []);
  });
});

describe('API plugins: their local PIDs\' ledger record survives a reload', function () {
  this.timeout(120_000);
  const models: TetherModel[] = [];
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
    for (const c of children.splice(0)) if (c.pid) signalIfSame(identify(c.pid) ?? { pid: c.pid, startTime: -1 }, 'SIGKILL');
  });

  it('a subprocess-mode plugin registering again after a reload takes over its record: one record, no orphan', async () => {
    const stateDir = tmpDir('tether-state-');
    const ws = tmpDir('tether-ws-');
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    children.push(child);
    await waitFor(() => identify(child.pid!), 5000, 'the child');
    const plugin: LifecycleAwarePlugin = { getExecutionMode: () => PluginExecutionMode.SUBPROCESS, getChildPids: () => [child.pid!], getManagedResources: () => ({}), forceCleanup: () => undefined };
    const newModel = () => {
      const m = new TetherModel(silentLogger, () => stateDir);
      m.setFolders([ws]);
      models.push(m);
      return m;
    };
    const records = () => new Ledger(stateDir).read().resources.filter((r) => r.kind === 'api' && r.processes.some((p) => p.pid === child.pid));
    const m1 = newModel();
    m1.apiSurface.registerPlugin(plugin, { name: 'local-ext' });
    await m1.refresh('manual');
    const [first, ...more] = records();
    assert.ok(first, 'recorded by the first window');
    assert.deepEqual(more, []);
    m1.dispose();
    models.splice(0);
    const m2 = newModel();
    m2.apiSurface.registerPlugin(plugin, { name: 'local-ext' });
    const snap = await m2.refresh('manual');
    assert.deepEqual(records().map((r) => r.id), [first.id], `the same record, not a second one: ${JSON.stringify(records())}`);
    assert.deepEqual(snap.apiPlugins[0]!.processes.map((p) => p.pid), [child.pid]);
    assert.ok(!snap.orphans.some((o) => o.ledgerId === first.id), `not an orphan: ${JSON.stringify(snap.orphans.map((o) => o.ledgerId))}`);
  });
});

describe('API plugins: `tether ledger repair` keeps their remote resources', function () {
  this.timeout(60_000);
  it('an open record of an API plugin\'s remote resource is carried over from a damaged ledger', async () => {
    const stateDir = tmpDir('tether-state-');
    const ws = tmpDir('tether-ws-');
    const m = new TetherModel(silentLogger, () => stateDir);
    m.setFolders([ws]);
    try {
      m.apiSurface.registerPlugin(cloudPlugin(remoteResourceInfo({ provider: CloudProviderType.RUNPOD, instanceId: 'pod-1', status: 'running', estimatedCostPerHour: 2 }), 2), { name: 'pod-ext' });
      await m.refresh('manual');
    } finally {
      m.dispose();
    }
    const file = new Ledger(stateDir).file;
    const [rec] = new Ledger(stateDir).read().resources.filter((r) => r.kind === 'api' && r.remote);
    assert.ok(rec, 'recorded');
    const text = fs.readFileSync(file, 'utf8');
    const got = salvageLedger(text.replace('"sha256":"', '"sha256":"0'), undefined, file);
    assert.ok(got?.resources.some((r) => r.id === rec.id), `carried over: ${JSON.stringify(got)}`);
  });
});
