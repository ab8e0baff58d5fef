import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import {
  CloudProviderType,
  PluginExecutionMode,
  PluginMetadata,
  getAllManagedPids,
  getTotalEstimatedCost,
  hasActiveCloudResources,
  isCloudAware,
  isLifecycleAware,
  remoteResourceInfo,
  type CloudAwarePlugin,
  type LifecycleAwarePlugin,
  type RemoteResourceInfo,
} from '../../src/core/protocols';
import { isSameProcessAlive, identify } from '../../src/core/procfs';

/** The spec's example cloud plugin (the original's mock provider, re-created). */
class ExampleCloudPlugin implements CloudAwarePlugin {
  private info: RemoteResourceInfo | undefined;
  getRemoteResourceInfo() {
    return this.info;
  }
  provisionRemoteResource(config: Record<string, unknown>) {
    this.info = remoteResourceInfo({
      provider: CloudProviderType.LAMBDA_LABS,
      region: String(config.region),
      instanceId: 'inst-1',
      status: 'running',
      resourceType: '4x_A100',
      gpuCount: 4,
      gpuType: 'A100',
      estimatedCostPerHour: 4.4,
    });
    return this.info;
  }
  checkRemoteResourceStatus() {
    return this.info ? this.info.status : 'not_provisioned';
  }
  terminateRemoteResource() {
    if (!this.info) return false;
    this.info.status = 'terminated';
    return true;
  }
  estimateCost(hours: number) {
    if (!this.info) return 0;
    return (this.info.estimatedCostPerHour ?? 0) * hours;
  }
}

/** The spec's example subprocess plugin: starts `sleep 3600`. */
class SleepPlugin implements LifecycleAwarePlugin {
  pid: number | undefined;
  start(cmd = 'sleep', args = ['3600']) {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    this.pid = child.pid;
    return child;
  }
  getExecutionMode() {
    return PluginExecutionMode.SUBPROCESS;
  }
  getChildPids() {
    return this.pid === undefined ? [] : [this.pid];
  }
  getManagedResources() {
    return { server_url: 'http://localhost:8000', is_running: this.pid !== undefined, pid: this.pid };
  }
  forceCleanup() {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGKILL');
    this.pid = undefined;
  }
}

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);

describe('protocols (the spec\'s documented examples)', () => {
  it('keeps the enum value strings of the original, including EXTERNAL_SERVICE = "external"', () => {
    assert.deepEqual(Object.values(PluginExecutionMode), [
      'in_process', 'subprocess', 'docker', 'conda_env', 'external', 'remote_ssh', 'cloud_vm',
      'cloud_container', 'cloud_serverless', 'cloud_gpu', 'cloud_cpu', 'kubernetes',
    ]);
    assert.equal(PluginExecutionMode.EXTERNAL_SERVICE, 'external');
    // The spec's values, in its order; Tether's own providers beyond the spec (a container service
    // of a spec provider: Cloud Run, ECS) may only be added, never replace one.
    const spec = ['aws', 'gcp', 'azure', 'lambda_labs', 'runpod', 'vast_ai', 'paperspace', 'together_ai', 'custom'];
    const values: string[] = Object.values(CloudProviderType);
    assert.deepEqual(values.filter((v) => spec.includes(v)), spec);
    assert.deepEqual(values.filter((v) => !spec.includes(v)).sort(), ['cloud_run', 'ecs'].filter((v) => values.includes(v)).sort());
  });

  it('fills RemoteResourceInfo defaults', () => {
    const r = remoteResourceInfo({ provider: CloudProviderType.AWS });
    assert.deepEqual(r, { provider: 'aws', sshPort: 22, status: 'unknown', gpuCount: 0, metadata: {} });
  });

  it('a subprocess plugin running sleep 3600: mode, child PIDs, resources, cleanup', async () => {
    const p = new SleepPlugin();
    const child = p.start();
    const exited = new Promise((r) => child.on('exit', r));
    assert.ok(isLifecycleAware(p));
    assert.equal(p.getExecutionMode(), 'subprocess');
    assert.deepEqual(p.getChildPids(), [child.pid]);
    assert.deepEqual(p.getManagedResources(), { server_url: 'http://localhost:8000', is_running: true, pid: child.pid });
    const id = identify(child.pid!)!;
    p.forceCleanup();
    await exited;
    assert.equal(isSameProcessAlive(id), false);
    assert.deepEqual(p.getChildPids(), []);
  });

  it('a plain object is not a plugin and manages no PIDs', () => {
    const plain = { not: 'a plugin' };
    assert.equal(isLifecycleAware(plain), false);
    assert.deepEqual(getAllManagedPids(plain), []);
    assert.equal(isCloudAware(plain), false);
    assert.equal(hasActiveCloudResources(plain), false);
    assert.equal(isLifecycleAware(null), false);
    assert.equal(isLifecycleAware(42), false);
  });

  it('structural checks: a missing or null method disqualifies; one object may implement both', () => {
    const lc = { getExecutionMode() {}, getChildPids() {}, getManagedResources() {}, forceCleanup() {} };
    assert.ok(isLifecycleAware(lc));
    assert.equal(isLifecycleAware({ ...lc, forceCleanup: null }), false);
    const { getChildPids: _omit, ...three } = lc;
    assert.equal(isLifecycleAware(three), false);
    const both = Object.assign(new ExampleCloudPlugin(), lc);
    assert.ok(isLifecycleAware(both) && isCloudAware(both));
  });

  it('a cloud plugin: not_provisioned → 4x_A100 at $4.40/h → 4.40 and 35.20 → terminated', async () => {
    const p = new ExampleCloudPlugin();
    assert.ok(isCloudAware(p));
    assert.equal(p.checkRemoteResourceStatus(), 'not_provisioned');
    assert.equal(p.getRemoteResourceInfo(), undefined);
    assert.equal(p.estimateCost(1), 0);
    assert.equal(hasActiveCloudResources(p), false);
    const info = p.provisionRemoteResource({ region: 'us-west-1' });
    assert.equal(info.provider, 'lambda_labs');
    assert.equal(info.gpuCount, 4);
    assert.equal(p.checkRemoteResourceStatus(), 'running');
    assert.equal(hasActiveCloudResources(p), true);
    close(p.estimateCost(1), 4.4);
    close(p.estimateCost(8), 35.2);
    assert.equal(p.terminateRemoteResource(), true);
    assert.equal(p.checkRemoteResourceStatus(), 'terminated');
    assert.equal(hasActiveCloudResources(p), false);
    assert.equal(new ExampleCloudPlugin().terminateRemoteResource(), false);
  });

  it('two cloud plugins plus a plain object: 8.80 for 1 h, 211.20 for 24 h; 0 after both terminate', () => {
    const a = new ExampleCloudPlugin();
    const b = new ExampleCloudPlugin();
    a.provisionRemoteResource({ region: 'us-west-1' });
    b.provisionRemoteResource({ region: 'us-west-1' });
    const all = [a, b, { not: 'a plugin' }];
    close(getTotalEstimatedCost(all), 8.8);
    close(getTotalEstimatedCost(all, 24), 211.2);
    a.terminateRemoteResource();
    b.terminateRemoteResource();
    assert.equal(hasActiveCloudResources(a) || hasActiveCloudResources(b), false);
    assert.equal(getTotalEstimatedCost(all), 0);
    assert.equal(getTotalEstimatedCost([]), 0);
  });

  it('hasActiveCloudResources compares the cached status to exactly "running"', () => {
    const p = new ExampleCloudPlugin();
    p.provisionRemoteResource({ region: 'x' });
    p.getRemoteResourceInfo()!.status = 'Running';
    assert.equal(hasActiveCloudResources(p), false);
  });

  it('a broken estimate is reported for its plugin and does not crash the total; negative hours are rejected', () => {
    const good = new ExampleCloudPlugin();
    good.provisionRemoteResource({ region: 'x' });
    const bad = new ExampleCloudPlugin();
    bad.provisionRemoteResource({ region: 'x' });
    bad.estimateCost = () => Number.NaN;
    const throwing = new ExampleCloudPlugin();
    throwing.provisionRemoteResource({ region: 'x' });
    throwing.estimateCost = () => {
      throw new Error('boom');
    };
    const errors: unknown[] = [];
    close(getTotalEstimatedCost([good, bad, throwing], 1, (e) => errors.push(e.plugin)), 4.4);
    assert.deepEqual(errors, [bad, throwing]);
    assert.throws(() => getTotalEstimatedCost([good], -1), RangeError);
  });

  it('getAllManagedPids returns children and every descendant, not just direct children', async () => {
    const p = new SleepPlugin();
    // sh → sh → sleep: a child and a grandchild under the managed PID.
    const child = p.start('sh', ['-c', 'sh -c "sleep 30; :" & sleep 30; :']);
    try {
      let pids: number[] = [];
      // Until the whole tree is up: generous, a loaded machine forks slowly.
      for (const deadline = Date.now() + 60_000; Date.now() < deadline && pids.length < 4; ) {
        await new Promise((r) => setTimeout(r, 20));
        pids = getAllManagedPids(p);
      }
      assert.equal(pids[0], child.pid);
      assert.equal(pids.length, 4, `expected sh, sh, sleep, sleep; got ${pids}`);
    } finally {
      for (const pid of getAllManagedPids(p).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone with its parent */
        }
      }
    }
  });

  it('PluginMetadata: local/cloud execution, active resources, and ids that do not collide', () => {
    const m = (name: string, category: string) => new PluginMetadata({ name, category, title: name, configSchema: {} });
    const a = m('c', 'a_b');
    const b = m('b_c', 'a');
    assert.equal(a.uniqueId, b.uniqueId, 'the original id collides, as documented');
    assert.notEqual(a.key, b.key);
    assert.equal(a.isLocalExecution(), true);
    a.executionMode = PluginExecutionMode.CLOUD_GPU;
    assert.equal(a.isCloudExecution(), true);
    a.executionMode = PluginExecutionMode.EXTERNAL_SERVICE;
    assert.equal(a.isLocalExecution(), true);
    assert.equal(a.hasActiveResources(), false);
    a.spawnedPids = [1];
    assert.equal(a.hasActiveResources(), true);
    b.remoteResource = remoteResourceInfo({ provider: CloudProviderType.RUNPOD, status: 'stopped' });
    assert.equal(b.hasActiveResources(), false);
    b.remoteResource.status = 'running';
    assert.equal(b.hasActiveResources(), true);
  });
});
