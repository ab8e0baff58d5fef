// Container plugins through the whole stack: the real `tether` CLI against a private dockerd.
import { strict as assert } from 'node:assert';
import { startDockerd, type TestDockerd } from '../helpers/dockerd';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';

describe('tether CLI with Docker containers (real dockerd)', function () {
  this.timeout(90000);
  let d: TestDockerd;
  before(async function () {
    this.timeout(120000);
    d = await startDockerd();
  });
  after(async () => {
    await d?.stop();
  });

  it('start → status shows the container and its host process tree → stop removes it', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sh', args: ['-c', 'sleep 300 & sleep 300'], docker: { image: d.image } }] });
    const env = { TETHER_STATE_DIR: tmpDir('tether-docker-cli-'), DOCKER_HOST: d.host };
    let last = '';
    const start = await runCli(['start', 'box', '--workspace', ws], env);
    assert.equal(start.code, 0, start.stderr);
    const s = await waitFor(async () => {
      const r = await runCli(['status', '--json', '--workspace', ws], env);
      const rep = JSON.parse(r.stdout) as StatusReport;
      last = JSON.stringify(rep.plugins[0]) + r.stderr;
      return rep.plugins[0]!.processes.length >= 2 ? rep : undefined; // busybox sh execs its last command: sleep (pid 1 inside) + a background sleep
    }, 15000, 'the container and its processes').catch((e: Error) => {
      throw new Error(`${e.message}; last status: ${last}`);
    });
    const p = s.plugins[0]!;
    assert.equal(p.kind, 'docker');
    assert.equal(p.state, 'running');
    assert.equal(p.container?.state, 'running');
    assert.equal(p.container?.image, d.image);
    assert.equal(s.totals.running, 1);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /container tether-box-\S+ \(\w{12}\) tether-test\/busybox:1 running/);
    const stop = await runCli(['stop', 'box', '--workspace', ws, '--grace', '1'], env);
    assert.equal(stop.code, 0, stop.stderr);
    const left = await d.docker.listContainers({ all: true, filters: { label: ['dev.tether.plugin=box'] } });
    assert.deepEqual(left, []);
    const after = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
    assert.equal(after.plugins[0]!.state, 'stopped');
  });

  it('an engine that is not running: a clear error naming the socket (exit 1)', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', docker: { image: d.image } }] });
    const r = await runCli(['start', 'box', '--workspace', ws], { TETHER_STATE_DIR: tmpDir(), DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/nonexistent\/docker\.sock/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
