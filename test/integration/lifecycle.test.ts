// Real process trees, real signals: the lifecycle of local subprocess plugins.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Engine } from '../../src/workspace/engine';
import { identify, isSameProcessAlive, readStat, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { getAllManagedPids, isLifecycleAware } from '../../src/core/protocols';
import { tmpDir, waitFor, workspaceWith, sleep } from '../helpers/tmp';
import { skipBecause } from '../helpers/skip';

const fixture = path.resolve(__dirname, '..', 'fixtures', 'tree.sh');

describe('local subprocess plugins (real process trees)', function () {
  this.timeout(30000);
  let stateDir: string;
  let engine: Engine;
  const cleanupPids: ProcessIdentity[] = [];

  beforeEach(() => {
    stateDir = tmpDir('tether-state-');
  });
  afterEach(async () => {
    await engine?.down(0).catch(() => undefined);
    for (const p of cleanupPids.splice(0)) signalIfSame(p, 'SIGKILL');
  });

  it('tracks children, a SIGTERM-ignoring subtree and a setsid double-fork escapee, then leaves zero survivors', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'tree', command: 'sh', args: [fixture], stopGraceSeconds: 0.5 }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    const rec = await engine.start('tree');
    const rootPid = rec.processes[0]!.pid;
    // root sh, the TERM-ignoring sh and its sleep, the escaped sh and its sleep
    const status = await waitFor(async () => {
      const s = await engine.status();
      return s.plugins[0]!.processes.length === 5 ? s : undefined;
    }, 5000, 'five processes');
    const procs = status.plugins[0]!.processes;
    for (const p of procs) cleanupPids.push(p);
    const escaped = procs.filter((p) => p.escaped);
    assert.equal(escaped.length, 1, `one escapee expected: ${JSON.stringify(procs, null, 1)}`);
    const rootSid = readStat(rootPid)!.sid;
    assert.notEqual(readStat(escaped[0]!.pid)!.sid, rootSid, 'the escapee left the session');
    assert.ok(!procs.some((p) => p.pid === escaped[0]!.ppid), 'the escapee is no longer a descendant');
    for (const p of procs) {
      assert.ok(p.startedAt && p.command && p.rssBytes > 0, `complete info for ${p.pid}`);
    }
    // getAllManagedPids through the protocol covers the escapee too
    const plugin = engine.plugin(engine.config()!.plugins[0]!);
    assert.ok(isLifecycleAware(plugin));
    assert.deepEqual(new Set(getAllManagedPids(plugin)), new Set(procs.map((p) => p.pid)));
    assert.deepEqual(new Set(await engine.pids('tree')), new Set(procs.map((p) => p.pid)));

    const report = (await engine.stop('tree'))!;
    assert.equal(report.survivors.length, 0);
    assert.ok(report.killed >= 2, `the TERM-ignoring sh and sleep need SIGKILL (killed ${report.killed})`);
    for (const p of procs) assert.equal(isSameProcessAlive(p), false, `pid ${p.pid} is gone`);
    const s = await engine.status();
    assert.equal(s.plugins[0]!.state, 'stopped');
    assert.equal(engine.ledger.read().resources.length, 0);
    assert.match(fs.readFileSync(s.plugins[0]!.logPath!, 'utf8'), /tree started/);
  });

  it('escalates to SIGKILL after the grace period and not before', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'stubborn', command: 'sh', args: ['-c', 'trap "" TERM; while :; do sleep 0.05; done'], stopGraceSeconds: 0.8 }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await engine.start('stubborn');
    const t0 = Date.now();
    const report = (await engine.stop('stubborn'))!;
    const took = Date.now() - t0;
    assert.ok(took >= 750, `waited the grace period (${took} ms)`);
    assert.ok(took < 30000, `then killed (${took} ms)`); // report.killed says how; this bound only says it did not hang
    assert.ok(report.killed >= 1);
    assert.equal(report.survivors.length, 0);
  });

  it('a polite process exits on SIGTERM without SIGKILL', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'polite', command: 'sleep', args: ['300'] }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await engine.start('polite');
    const t0 = Date.now();
    // A 60 s grace: a stop that waited it out cannot pass for a quick one, however loaded the machine.
    const report = (await engine.stop('polite', 60_000))!;
    assert.equal(report.killed, 0);
    assert.equal(report.terminated, 1);
    assert.ok(Date.now() - t0 < 30_000, 'did not wait for the 60 s grace period');
  });

  it('never signals a stranger that took a dead plugin\'s PID (forced PID reuse)', async function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'forcing PID reuse writes /proc/sys/kernel/ns_last_pid: run as root');
    const ws = workspaceWith({ plugins: [{ name: 'victim', command: 'sleep', args: ['300'] }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    const rec = await engine.start('victim');
    const old = rec.processes[0]!;
    process.kill(old.pid, 'SIGKILL'); // it dies behind Tether's back; Node reaps it (we are its parent)
    await waitFor(() => !fs.existsSync(`/proc/${old.pid}`), 5000, 'the PID to be freed');
    let stranger: ChildProcess | undefined;
    // Other processes forking on the machine (another run of the suite) race for the PID: try for a generous time.
    const deadline = Date.now() + 90_000;
    for (let attempt = 0; (attempt < 200 || Date.now() < deadline) && !stranger; attempt++) {
      if (fs.existsSync(`/proc/${old.pid}`)) {
        await sleep(5); // another process holds it now
        continue;
      }
      fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(old.pid - 1));
      const c = spawn('sleep', ['300'], { stdio: 'ignore', env: { PATH: process.env.PATH! } });
      if (c.pid === old.pid) stranger = c;
      else c.kill('SIGKILL');
    }
    assert.ok(stranger, 'could not make a stranger take the PID (machine too busy?)');
    const strangerId = identify(stranger.pid!)!;
    cleanupPids.push(strangerId);
    assert.notEqual(strangerId.startTime, old.startTime);
    // The ledger still names the old identity; every way of stopping must spare the stranger.
    assert.equal(signalIfSame(old, 'SIGKILL'), 'gone');
    const report = await engine.stop('victim', 200);
    assert.equal(report?.processes.length ?? 0, 0, 'the stranger is not part of the tree');
    await sleep(200);
    assert.ok(isSameProcessAlive(strangerId), 'the stranger is alive');
    assert.equal(readStat(stranger.pid!)!.state !== 'Z', true);
    stranger.kill('SIGKILL');
  });

  it('a command that does not exist fails with a clear error and closes its ledger record', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'ghost', command: 'no-such-command-tether' }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await assert.rejects(engine.start('ghost'), /command "no-such-command-tether" was not found/);
    const body = engine.ledger.read();
    assert.equal(body.resources.length, 0);
    assert.equal(body.ended[0]!.state, 'failed');
  });

  it('a process that exits at once is reported with its exit code and last output', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'crash', command: 'sh', args: ['-c', 'echo "missing model weights" >&2; exit 3'] }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await assert.rejects(engine.start('crash'), /exited at once with code 3; last output: missing model weights/);
    const s = await engine.status();
    assert.equal(s.plugins[0]!.state, 'failed');
    assert.equal(s.plugins[0]!.lastExit?.code, 3);
  });

  it('refuses to start a plugin twice, and stop of a stopped plugin is a no-op', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'once', command: 'sleep', args: ['300'] }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await engine.start('once');
    await assert.rejects(engine.start('once'), /already running \(pid \d+\)/);
    await engine.stop('once');
    assert.equal(await engine.stop('once'), undefined);
  });

  it('reconcile drops a record whose processes are provably gone', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'short', command: 'sleep', args: ['1'] }] });
    engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
    await engine.start('short');
    await sleep(1300);
    const s = await engine.status();
    assert.equal(s.plugins[0]!.state, 'stopped');
    assert.equal(engine.ledger.read().resources.length, 0);
    assert.match(engine.ledger.read().ended[0]!.history.at(-1)!.note!, /no process left/);
  });
});
