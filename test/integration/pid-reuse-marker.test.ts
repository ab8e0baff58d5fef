// A long-lived tracker (the extension's) caches which marker each PID carries. When the PID
// counter wraps between two polls, a PID that belonged to a plugin's process can be handed to a
// stranger: the cache must not let the stranger inherit the dead process's marker, join the
// plugin's tree, be written to the ledger or be stopped with it. Reproduced as root by forcing
// the PID counter (/proc/sys/kernel/ns_last_pid), as the existing reuse test does.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Engine } from '../../src/workspace/engine';
import { identify, isSameProcessAlive, lastPid, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { ProcessTracker, MARKER_ENV } from '../../src/core/processTracker';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

/**
 * Makes a stranger (a `sleep` without any Tether marker) take `pid`, then moves the counter
 * back to `resumeAt`: for the tracker it looks as if the counter went all the way round.
 */
function strangerAt(pid: number, resumeAt: number, env: Record<string, string> = {}): ChildProcess {
  // Every other process forking on the machine (another run of the suite, say) races with us
  // for the PID, and may hold it a while: try for a generous time, not a fixed number of times.
  const deadline = Date.now() + 90_000;
  for (let attempt = 0; attempt < 300 || Date.now() < deadline; attempt++) {
    if (fs.existsSync(`/proc/${pid}`)) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // another process holds it now
      continue;
    }
    fs.writeFileSync(NS_LAST_PID, String(pid - 1));
    const c = spawn('sleep', ['300'], { stdio: 'ignore', env: { PATH: process.env.PATH!, ...env } });
    if (c.pid === pid) {
      fs.writeFileSync(NS_LAST_PID, String(Math.max(resumeAt, lastPid() ?? 0)));
      return c;
    }
    c.kill('SIGKILL');
  }
  throw new Error(`could not make a stranger take pid ${pid} (machine too busy?)`);
}

describe('PID reuse through the marker cache (forced with ns_last_pid, root)', function () {
  this.timeout(60_000);
  const cleanup: ProcessIdentity[] = [];
  const children: ChildProcess[] = [];
  let engine: Engine | undefined;
  before(function () {
    assert.equal(process.getuid?.(), 0, 'forcing PIDs through ns_last_pid needs root');
  });
  afterEach(async () => {
    await engine?.down(0).catch(() => undefined);
    engine = undefined;
    for (const p of cleanup.splice(0)) signalIfSame(p, 'SIGKILL');
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  // The counter resumes where the poll left it (the tracker's "nothing started since" path) or one past it (a full sweep).
  for (const offset of [0, 1]) it(`a reused PID does not inherit a dead process's marker, tree membership, ledger entry or stop (counter +${offset})`, async () => {
    const dir = tmpDir('tether-reuse-');
    const pidFile = path.join(dir, 'child.pid');
    // The plugin's root spawns one marked child (it inherits TETHER_RESOURCE_ID) and reaps it
    // when it dies (Node waits for its children), so the child's PID is freed at once.
    const script = `const c=require('child_process').spawn('sleep',['300'],{stdio:'ignore'});require('fs').writeFileSync(${JSON.stringify(pidFile)},String(c.pid));c.on('exit',()=>{});setInterval(()=>{},1000);`;
    const ws = workspaceWith({ plugins: [{ name: 'keeper', command: process.execPath, args: ['-e', script], stopGraceSeconds: 0.3 }] });
    engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-state-'), ownerKind: 'vscode', tracker: new ProcessTracker() });
    const rec = await engine.start('keeper');
    cleanup.push(rec.processes[0]!);
    const childPid = await waitFor(() => (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : 0), 10_000, 'the marked child');
    const child = await waitFor(() => identify(childPid), 5000, 'the marked child to run');
    cleanup.push(child);
    // A poll of the long-lived tracker: the child is found (and its marker cached).
    const first = await engine.status();
    const keeper = () => first.plugins.find((p) => p.name === 'keeper')!;
    assert.ok(keeper().processes.some((p) => p.pid === child.pid), 'the marked child is part of the tree');
    const counterAtPoll = lastPid()!;

    // The child dies behind Tether's back; its parent reaps it; a stranger gets its PID.
    process.kill(child.pid, 'SIGKILL');
    await waitFor(() => !fs.existsSync(`/proc/${child.pid}`), 5000, 'the PID to be freed');
    const strangerProc = strangerAt(child.pid, counterAtPoll + offset);
    children.push(strangerProc);
    const stranger = identify(strangerProc.pid!)!;
    assert.notEqual(stranger.startTime, child.startTime);
    assert.equal(fs.readFileSync(`/proc/${stranger.pid}/environ`, 'latin1').includes(`${MARKER_ENV}=`), false, 'the stranger has no marker');

    // The next poll must not take the stranger for the dead child.
    const second = await engine.status();
    const procs = second.plugins.find((p) => p.name === 'keeper')!.processes;
    assert.ok(!procs.some((p) => p.pid === stranger.pid), `the stranger joined the tree: ${JSON.stringify(procs)}`);
    const recorded = engine.ledger.read().resources.flatMap((r) => r.processes);
    // (The dead child may still be on record under its own identity; the stranger must not be.)
    assert.ok(!recorded.some((p) => p.pid === stranger.pid && p.startTime === stranger.startTime), `the stranger was written to the ledger: ${JSON.stringify(recorded)}`);
    const markers = await engine.tracker.sweepMarkers();
    assert.ok(![...markers.values()].some((pids) => pids.includes(stranger.pid)), 'the stranger carries no marker for the tracker');

    const report = await engine.stop('keeper', 300);
    assert.ok(report && !report.processes.some((p) => p.pid === stranger.pid), 'the stop did not target the stranger');
    await sleep(300);
    assert.ok(isSameProcessAlive(stranger), 'the stranger is alive after the plugin was stopped');
  });

  it('a marked process that takes a PID last seen unmarked is found (its marker is read, not the cache\'s "none")', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'holder', command: 'sleep', args: ['300'], stopGraceSeconds: 0.3 }] });
    engine = new Engine({ workspace: ws, stateDir: tmpDir('tether-state-'), ownerKind: 'vscode', tracker: new ProcessTracker() });
    const rec = await engine.start('holder');
    cleanup.push(rec.processes[0]!);
    // An unmarked process the tracker sees (and caches as carrying no marker)...
    const plain = spawn('sleep', ['300'], { stdio: 'ignore', env: { PATH: process.env.PATH! } });
    children.push(plain);
    const plainId = await waitFor(() => identify(plain.pid!), 5000, 'the unmarked process');
    await engine.status();
    const counterAtPoll = lastPid()!;
    // ...exits; after a wrap its PID goes to an escapee of the plugin (setsid, re-parented away),
    // found only by its marker.
    plain.kill('SIGKILL');
    await waitFor(() => !fs.existsSync(`/proc/${plainId.pid}`), 5000, 'the PID to be freed');
    // (The counter resumes one past where the poll left it: a wrap that lands exactly where the
    // last poll saw it looks like "nothing started", which the tracker takes at its word.)
    const escapeeProc = strangerAt(plainId.pid, counterAtPoll + 1, { [MARKER_ENV]: rec.id });
    children.push(escapeeProc);
    const escapee = identify(escapeeProc.pid!)!;
    const s = await engine.status();
    const procs = s.plugins.find((p) => p.name === 'holder')!.processes;
    assert.ok(procs.some((p) => p.pid === escapee.pid && p.startTime === escapee.startTime), `the marked process is part of the tree: ${JSON.stringify(procs)}`);
    const report = await engine.stop('holder', 300);
    assert.equal(report?.survivors.length, 0);
    assert.equal(isSameProcessAlive(escapee), false, 'the stop reached the marked process');
  });
});
