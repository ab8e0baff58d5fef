/**
 * Docker plugins against a REAL engine: a private dockerd started by this file (own data root
 * and socket; see test/helpers/dockerd.ts) and a busybox image imported locally.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import { ProcessTracker } from '../../src/core/processTracker';
import { readCmdline } from '../../src/core/procfs';
import {
  DockerEngineUnavailableError,
  DockerError,
  DockerImageNotFoundError,
  DockerPlugin,
  DockerPortInUseError,
  LABEL_LEDGER,
  LABEL_LEDGER_ID,
  LABEL_PLUGIN,
  LABEL_WORKSPACE,
  dockerClient,
  findOrphanContainers,
  findTetherContainers,
  listContainers,
  removeTetherContainer,
  type DockerSpec,
} from '../../src/backends/docker/docker';
import { currentOwner } from '../../src/backends/local/subprocess';
import { startDockerd, type TestDockerd } from '../helpers/dockerd';
import { tmpDir, waitFor } from '../helpers/tmp';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text());

describe('docker plugin (real dockerd)', function () {
  this.timeout(60_000);
  let d: TestDockerd;
  let stateDir: string;
  let workspace: string;
  let ledger: Ledger;
  const savedHost = process.env.DOCKER_HOST;
  const t0 = Date.now();

  before(async function () {
    this.timeout(90_000);
    d = await startDockerd();
    process.env.DOCKER_HOST = d.host;
    console.log(`      (dockerd up and image imported in ${Date.now() - t0} ms)`);
  });
  after(async function () {
    this.timeout(30_000);
    if (savedHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedHost;
    await d?.stop();
  });
  beforeEach(() => {
    stateDir = tmpDir('tether-dstate-');
    workspace = tmpDir('tether-dws-');
    ledger = new Ledger(stateDir);
  });
  afterEach(async () => {
    // Nothing a test started may survive it.
    const left = await d.docker.listContainers({ all: true });
    await Promise.all(left.map((c) => d.docker.getContainer(c.Id).remove({ force: true })));
    assert.equal(left.length, 0, `containers left behind: ${left.map((c) => c.Names.join(',')).join('; ')}`);
  });

  const plugin = (spec: Omit<DockerSpec, 'image'> & { image?: string }) =>
    new DockerPlugin({ image: d.image, ...spec }, { workspace, ledger, owner: currentOwner('vscode'), log: silentLogger, tracker: new ProcessTracker(), docker: d.docker });

  it('starts a labelled container, shows its host PID, tree, stats and logs, and stops it (zero containers left)', async () => {
    const port = await freePort();
    const p = plugin({
      name: 'web',
      command: 'sh',
      args: ['-c', 'trap "exit 0" TERM; echo hello from web; httpd -f -p 80 -h /www & wait'],
      ports: [`127.0.0.1:${port}:80`],
      network: d.network,
      env: { GREETING: 'hi' },
      healthUrl: `http://127.0.0.1:${port}/`,
    });
    assert.deepEqual(p.getChildPids(), []);
    const rec = await p.start();
    assert.equal(rec.kind, 'docker');
    assert.equal(rec.state, 'running');
    assert.equal(rec.executionMode, 'docker');
    assert.match(rec.container!.id, /^[0-9a-f]{64}$/);
    assert.deepEqual(rec.history.map((h) => h.state), ['starting', 'starting', 'running']); // intent, created, running
    const info = await d.docker.getContainer(rec.container!.id).inspect();
    assert.deepEqual(
      [LABEL_LEDGER_ID, LABEL_PLUGIN, LABEL_WORKSPACE, LABEL_LEDGER].map((l) => info.Config.Labels[l]),
      [rec.id, 'web', workspace, ledger.tag],
    );
    assert.ok(info.Config.Env.includes('GREETING=hi'));
    // The host PID is the container's main process, seen from the host.
    const [pid] = p.getChildPids();
    assert.equal(pid, info.State.Pid);
    assert.equal(readCmdline(pid!)[0], 'sh');
    assert.equal(rec.processes[0]!.pid, pid);
    const st = await p.refresh();
    assert.equal(st!.state, 'running');
    assert.ok(st!.ports.includes(`127.0.0.1:${port}:80/tcp`), st!.ports.join());
    const httpd = await waitFor(async () => (await p.refresh())!.processes.find((x) => x.pid !== pid && x.command.includes('httpd')), 5000, 'httpd in the tree');
    assert.equal(httpd.ppid, pid);
    assert.equal(await waitFor(() => get(`http://127.0.0.1:${port}/`).catch(() => ''), 5000, 'the page'), 'tether test page\n');
    const res = p.getManagedResources();
    assert.equal(res.container_id, rec.container!.id);
    assert.equal(res.image, d.image);
    assert.equal(res.pid, pid);
    assert.equal(res.is_running, true);
    assert.equal(res.server_url, `http://127.0.0.1:${port}/`);
    const s1 = await p.stats();
    assert.ok(s1!.memoryBytes > 0 && s1!.memoryBytes < 512 * 1024 * 1024, `memory ${s1!.memoryBytes}`);
    assert.ok(s1!.memoryLimitBytes > 0);
    assert.ok(s1!.cpuPercent === null || (s1!.cpuPercent >= 0 && s1!.cpuPercent < 400), `cpu ${s1!.cpuPercent}`);
    const s2 = await p.stats(); // one-shot against our own previous sample
    assert.equal(typeof s2!.cpuPercent, 'number');
    assert.match(await p.logs({ tail: 10 }), /hello from web/);
    // Found by its label, as the reconciler would.
    assert.deepEqual((await findTetherContainers(d.docker, ledger.tag)).map((c) => c.ledgerId), [rec.id]);
    assert.deepEqual(await findOrphanContainers(d.docker, ledger), []); // its window (this process) is alive

    const report = await p.stop();
    assert.equal(report!.stoppedBy, 'signal');
    assert.equal(report!.exitCode, 0);
    assert.ok(report!.elapsedMs < 30000, `stop took ${report!.elapsedMs} ms`); // stoppedBy says how; this only says it did not hang
    assert.deepEqual(await d.docker.listContainers({ all: true }), []);
    assert.deepEqual(p.getChildPids(), []);
    const body = ledger.read();
    assert.equal(body.resources.length, 0);
    assert.equal(body.ended[0]!.id, rec.id);
    assert.equal(body.ended[0]!.state, 'stopped');
    await waitFor(() => !fs.existsSync(`/proc/${pid}`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1')), 3000, 'host pid gone');
  });

  it('kills a container whose process ignores SIGTERM after the grace period, and removes it', async () => {
    const p = plugin({ name: 'stubborn', command: 'sh', args: ['-c', 'trap "" TERM; while :; do sleep 1; done'], stopGraceSeconds: 1 });
    const rec = await p.start();
    const t = Date.now();
    await p.forceCleanup();
    const took = Date.now() - t;
    assert.ok(took >= 900 && took < 30000, `stop took ${took} ms`); // waited the 1 s grace; the upper bound only says it did not hang
    assert.deepEqual(await d.docker.listContainers({ all: true }), []);
    const ended = ledger.read().ended[0]!;
    assert.equal(ended.id, rec.id);
    assert.equal(ended.state, 'stopped');
    assert.equal(ended.exit?.code, 137);
    assert.equal(ended.exit?.signal, 'SIGKILL');
    assert.match(ended.history.at(-1)!.note!, /killed after 1s \(ignored the stop signal\)/);
  });

  it('crash and reconcile: the window that started a container dies; the container is found by label as an orphan and cleaned; a stranger is never touched', async () => {
    // A container Tether did not start (no labels).
    const stranger = await d.docker.createContainer({ Image: d.image, Cmd: ['sleep', '300'], name: 'stranger' });
    await stranger.start();
    const helper = path.join(__dirname, '..', 'helpers', 'dockerOwner.ts');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', helper, workspace, stateDir, d.image, 'crashy'], { env: { ...process.env, DOCKER_HOST: d.host } }, (err, stdout, stderr) =>
        // It kills itself with SIGKILL after printing the id: that is the crash.
        err && (err as { signal?: string }).signal !== 'SIGKILL' ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
      ),
    );
    const containerId = out.trim();
    assert.match(containerId, /^[0-9a-f]{64}$/);
    // Nothing in memory here knows about it: only the ledger and the labels do.
    const found = await findTetherContainers(d.docker, ledger.tag);
    assert.deepEqual(found.map((c) => [c.id, c.plugin, c.state]), [[containerId, 'crashy', 'running']]);
    assert.deepEqual(await findTetherContainers(d.docker, 'some-other-ledger'), []);
    const orphans = await findOrphanContainers(d.docker, ledger);
    assert.equal(orphans.length, 1);
    assert.equal(orphans[0]!.container.id, containerId);
    assert.match(orphans[0]!.reason, /VS Code window that started it \(pid \d+\) is gone/);
    const all = await listContainers(d.docker, ledger.tag);
    assert.deepEqual(all.managed.map((c) => c.id), [containerId]);
    assert.deepEqual(all.unmanaged.map((c) => c.name), ['stranger']);
    // Cleanup refuses the stranger, and leaves it running.
    await assert.rejects(removeTetherContainer(d.docker, stranger.id, { ledger }), (e: unknown) => e instanceof DockerError && /not started by this Tether ledger/.test(e.message));
    assert.equal((await stranger.inspect()).State.Running, true);
    // The orphan is cleaned (its `sleep` is PID 1 and ignores SIGTERM: killed after the grace).
    const report = await removeTetherContainer(d.docker, orphans[0]!.container.id, { ledger, graceSeconds: 1, reason: 'orphan cleanup' });
    assert.equal(report.removed, true);
    assert.deepEqual(await findTetherContainers(d.docker, ledger.tag), []);
    assert.equal(ledger.read().resources.length, 0);
    assert.equal(ledger.read().ended[0]!.plugin, 'crashy');
    assert.equal((await stranger.inspect()).State.Running, true);
    await stranger.remove({ force: true });
  });

  it('a reloaded plugin re-attaches to its ledger record and stops the container (in-memory state dropped)', async () => {
    const first = plugin({ name: 'reload', command: 'sleep', args: ['300'], stopGraceSeconds: 0 });
    const rec = await first.start();
    const second = plugin({ name: 'reload', command: 'sleep', args: ['300'], stopGraceSeconds: 0 });
    second.attach(ledger.read().resources.find((r) => r.id === rec.id));
    assert.deepEqual(second.getChildPids(), first.getChildPids());
    assert.equal((await second.refresh())!.running, true);
    await second.stop();
    assert.deepEqual(await d.docker.listContainers({ all: true }), []);
  });

  it('an image that does not exist: a clear error (no pull), nothing recorded, nothing created', async () => {
    const p = plugin({ name: 'ghost', image: 'tether-test/does-not-exist:1', command: 'true' });
    await assert.rejects(p.start(), (e: unknown) => {
      assert.ok(e instanceof DockerImageNotFoundError, String(e));
      assert.match(e.message, /image "tether-test\/does-not-exist:1" is not on this machine/);
      assert.match(e.message, /does not pull/);
      assert.match(e.remedy, /docker load|docker build/);
      return true;
    });
    assert.deepEqual(ledger.read().resources, []);
  });

  it('a host port already in use: a clear error naming the port; the container is removed and the record failed', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const p = plugin({ name: 'clash', command: 'sleep', args: ['300'], ports: [`127.0.0.1:${port}:80`], network: d.network });
      await assert.rejects(p.start(), (e: unknown) => {
        assert.ok(e instanceof DockerPortInUseError, String(e));
        assert.match(e.message, new RegExp(`host port ${port} is already in use`));
        assert.match(e.remedy, /docker\.ports/);
        return true;
      });
      assert.equal(ledger.read().resources.length, 0);
      assert.equal(ledger.read().ended[0]!.state, 'failed');
    } finally {
      server.close();
    }
  });

  it('a container that exits at once did not start: error with its output, container removed', async () => {
    const p = plugin({ name: 'quick', command: 'sh', args: ['-c', 'echo boom; exit 3'] });
    await assert.rejects(p.start(), /exited at once with code 3; last output: boom/);
    assert.equal(ledger.read().ended[0]!.state, 'failed');
  });
});

describe('docker plugin: engine not running', () => {
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  const attempt = async (host: string) => {
    process.env.DOCKER_HOST = host;
    const stateDir = tmpDir('tether-dstate-');
    const ledger = new Ledger(stateDir);
    const p = new DockerPlugin({ name: 'x', image: 'busybox' }, { workspace: tmpDir('tether-dws-'), ledger, owner: currentOwner('vscode'), log: silentLogger, docker: dockerClient() });
    const err = await p.start().then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    assert.deepEqual(ledger.read().resources, []);
    return err as DockerEngineUnavailableError;
  };

  it('a socket that does not exist (DOCKER_HOST): names the socket and how to start Docker', async () => {
    const sock = path.join(tmpDir('tether-nosock-'), 'docker.sock');
    const e = await attempt(`unix://${sock}`);
    assert.ok(e instanceof DockerEngineUnavailableError, String(e));
    assert.match(e.message, new RegExp(`not reachable at unix://${sock.replace(/[.]/g, '\\.')} \\(the socket does not exist, ENOENT\\)`));
    assert.match(e.remedy, /Start Docker .*DOCKER_HOST/);
  });

  it('a dead socket (left by a crashed engine): ECONNREFUSED, same advice', async () => {
    const sock = path.join(tmpDir('tether-deadsock-'), 'docker.sock');
    // A listener killed with SIGKILL leaves its socket file behind, as a killed dockerd does.
    await new Promise<void>((resolve) =>
      execFile(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`], () => resolve()),
    );
    assert.ok(fs.existsSync(sock));
    const e = await attempt(`unix://${sock}`);
    assert.ok(e instanceof DockerEngineUnavailableError, String(e));
    assert.match(e.message, /nothing listens on it, ECONNREFUSED/);
  });
});
