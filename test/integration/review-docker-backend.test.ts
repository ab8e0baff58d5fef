// Review of 1263aa1 (the engine on the Backend interface) against a REAL private dockerd
// (test/helpers/dockerd.ts; needs root, like docker.test.ts).
import { strict as assert } from 'node:assert';
import { Engine } from '../../src/workspace/engine';
import { startDockerd, type TestDockerd } from '../helpers/dockerd';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

describe('review: container plugins through the engine (real dockerd)', function () {
  this.timeout(120_000);
  let d: TestDockerd;
  const savedHost = process.env.DOCKER_HOST;
  before(async function () {
    this.timeout(180_000);
    d = await startDockerd();
    process.env.DOCKER_HOST = d.host;
  });
  after(async function () {
    this.timeout(60_000);
    if (savedHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedHost;
    await d?.stop();
  });
  afterEach(async () => {
    const left = await d.docker.listContainers({ all: true });
    await Promise.all(left.map((c) => d.docker.getContainer(c.Id).remove({ force: true })));
  });

  it('pids NAME of a running container lists its host process tree (as before the Backend interface)', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sh', args: ['-c', 'sleep 300 & sleep 300'], docker: { image: d.image } }] });
    const engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-review-docker-'), ownerKind: 'cli' });
    const record = await engine.start('box');
    const host = record.processes[0];
    assert.ok(host, 'the container record names its host process');
    // The host tree (busybox sh execs its last sleep, plus the background one) as status shows it.
    const st = await waitFor(async () => {
      const p = (await engine.status()).plugins.find((x) => x.name === 'box');
      return p && p.processes.length >= 2 ? p : undefined;
    }, 20_000, 'the container and its processes');
    const pids = await engine.pids('box');
    assert.ok(pids.includes(host.pid), `tether pids box: [${pids.join(', ')}] lacks the container's host pid ${host.pid}`);
    assert.deepEqual([...pids].sort(), st.processes.map((p) => p.pid).sort());
    await engine.stop('box', 1000);
  });
});
