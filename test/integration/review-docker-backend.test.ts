// Review of 1263aa1 (the engine on the Backend interface) against a REAL private dockerd
// (test/helpers/dockerd.ts; needs root, like docker.test.ts).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
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

  it('a container record no longer declared whose container is gone: Kill Orphans closes it instead of leaving an orphan for ever', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sleep', args: ['300'], docker: { image: d.image } }] });
    const engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-review-docker-'), ownerKind: 'cli' });
    const record = await engine.start('box');
    // The plugin is renamed in tether.json, and its container removed behind Tether's back.
    fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [{ name: 'box2', command: 'sleep', args: ['300'], docker: { image: d.image } }] }));
    await d.docker.getContainer(record.container!.id).remove({ force: true });
    const before = await engine.status();
    assert.ok(before.orphans.some((o) => o.ledgerId === record.id), 'listed as an orphan (no longer declared)');
    const r = await engine.killOrphans(1000);
    assert.deepEqual(r.errors, []);
    assert.ok(r.killed.includes('box'), 'reported as stopped');
    const after = await engine.status();
    assert.ok(!after.orphans.some((o) => o.ledgerId === record.id), `still an orphan after Kill Orphans said it stopped it: ${JSON.stringify(after.orphans.map((o) => [o.name, o.orphanReason]))}`);
    assert.ok(!engine.ledger.read().resources.some((x) => x.id === record.id), 'its record is closed');
  });

  it('an orphan whose record names its container only by name (a start that crashed before recording the id): Kill Orphans stops that container', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sleep', args: ['300'], docker: { image: d.image } }] });
    const engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-review-docker-'), ownerKind: 'cli' });
    const record = await engine.start('box');
    // As a crash between "create" and "record its id" leaves it: the intent's name, no id, no owner.
    await engine.ledger.update((b) => {
      const r = b.resources.find((x) => x.id === record.id)!;
      r.container = { ...r.container!, id: '' };
      delete r.owner;
    }, 'test: a start that crashed after create');
    const before = await engine.status();
    assert.ok(before.orphans.some((o) => o.ledgerId === record.id), 'an orphan (no owner)');
    const r = await engine.killOrphans(1000);
    assert.deepEqual(r.errors, []);
    const left = await d.docker.listContainers({ all: true, filters: { label: [`dev.tether.ledger-id=${record.id}`] } });
    assert.deepEqual(left.map((c) => c.Names), [], 'Kill Orphans said it stopped it, but its container is still there');
  });

  it('Kill on one orphan container whose record was closed (the view: stopById) stops that container', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sleep', args: ['300'], docker: { image: d.image } }, { name: 'keep', command: 'sleep', args: ['300'], docker: { image: d.image } }] });
    const engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-review-docker-'), ownerKind: 'cli' });
    await engine.start('keep'); // (orphan containers are looked for while the ledger has a container record)
    const record = await engine.start('box');
    // Its record closed while the container lives on (e.g. a stop that failed half-way).
    await engine.ledger.end(record.id, 'stopped', 'test: closed, container left');
    const st = await engine.status();
    const o = st.orphans.find((x) => x.container?.id === record.container!.id);
    assert.ok(o, 'the container is listed as an orphan');
    assert.ok(o.actions.includes('kill'), 'with a Kill action');
    // What the view's Kill on that row does (TetherModel.stopRecord: not declared → stopById).
    await engine.stopById(o.ledgerId!, 1000, 'stopped from the Tether view');
    const left = await d.docker.listContainers({ all: true, filters: { label: [`dev.tether.ledger-id=${record.id}`] } });
    assert.deepEqual(left.map((c) => c.Names), [], 'the Kill did nothing: the orphan container is still there');
  });

  it('another workspace\'s container whose window is gone: the orphan row keeps its container (state, image) and its Shell action, as before', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'box', command: 'sleep', args: ['300'], docker: { image: d.image } }] });
    const stateDir = tmpDir('tether-review-docker-');
    const a = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    const record = await a.start('box');
    // Started by a VS Code window of this machine that is gone (no such pid + start time).
    await a.ledger.patch(record.id, { owner: { ...a.owner, kind: 'vscode', pid: 4_194_000, startTime: 1 } }, 'test: its window is gone');
    // Seen from another folder (where "box" is not declared).
    const b = new Engine({ workspace: workspaceWith({ plugins: [] }), stateDir, ownerKind: 'cli' });
    const o = (await b.status()).orphans.find((x) => x.ledgerId === record.id);
    assert.ok(o, 'an orphan');
    assert.equal(o.container?.id, record.container!.id, `the orphan row has no container: ${JSON.stringify(o)}`);
    assert.equal(o.container?.state, 'running');
    assert.ok(o.actions.includes('shell') && o.actions.includes('kill'), `actions: ${o.actions.join(',')}`);
    await b.killOrphans(1000);
  });
});
