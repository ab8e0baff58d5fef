// The dead man's switch against a REAL OpenSSH server (sshd -D on 127.0.0.1, started by this file).
// The "remote host" is this machine, so the tests check the watcher's PID in /proc and the files
// in the test user's home directly. The action is never a real shutdown: every test uses a
// harmless stand-in that writes a file in the test user's home.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isGoneState, readStat } from '../../src/core/procfs';
import { SshConnectionPool, type SshConnectionOptions } from '../../src/backends/ssh/connection';
import {
  armDeadman,
  DeadmanError,
  deadmanStatus,
  disarmDeadman,
  pushDeadman,
  type DeadmanConnection,
} from '../../src/backends/ssh/deadman';
import { processesOf, type TestSshd, startSshdOrSkip } from '../helpers/sshd';
import { sleep, waitFor } from '../helpers/tmp';

function alive(pid: number, startTime?: number): boolean {
  const st = readStat(pid);
  return !!st && !isGoneState(st.state) && (startTime === undefined || st.startTime === startTime);
}

/** Live processes whose process group is `pgid` (the watcher leads its own, thanks to setsid). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const st = readStat(Number(n));
    if (st && st.pgid === pgid && !isGoneState(st.state)) out.push(st.pid);
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

describe("dead man's switch over SSH (real OpenSSH server; the action is a harmless stand-in for shutdown)", function () {
  this.timeout(30000);
  let sshd: TestSshd;
  const pools: SshConnectionPool[] = [];
  const armedIds = new Set<string>();

  const poolOpts = (): SshConnectionOptions => ({
    resolve: { configPath: sshd.sshConfig },
    knownHostsFiles: [sshd.knownHosts],
    agent: null,
    backoffInitialMs: 200,
  });
  const newPool = () => {
    const p = new SshConnectionPool(poolOpts());
    pools.push(p);
    return p;
  };
  const conn = () => newPool().get('tether-test');
  /** Where the stand-in action of `id` writes, seen from this (the same) machine. */
  const firedFile = (id: string) => path.join(sshd.home, `deadman-fired-${id}`);
  /** The stand-in for `shutdown -h now`: writes a file in the test user's home. */
  const standIn = (id: string) => `echo fired > "$HOME/deadman-fired-${id}"`;
  const stateDir = (id: string) => path.join(sshd.home, '.tether', 'deadman', id);
  const watchersOf = (id: string) => processesOf(sshd.uid).filter((pid) => cmdline(pid).includes(`/.tether/deadman/${id}/watch.sh`));
  const arm = async (c: DeadmanConnection, id: string, timeoutSec: number, checkEverySec = 1, action = standIn(id)) => {
    fs.rmSync(firedFile(id), { force: true });
    armedIds.add(id);
    return armDeadman(c, { id, timeoutSec, checkEverySec, action });
  };

  before(async function () {
    sshd = await startSshdOrSkip(this);
  });
  after(async () => {
    if (sshd) {
      const c = conn();
      for (const id of armedIds) await disarmDeadman(c, id).catch(() => undefined);
    }
    for (const p of pools) p.closeAll();
    await sshd?.stop();
  });

  it('armed and pushed every 500 ms for 2x the timeout: the stand-in action does NOT run and the watcher stays alive', async () => {
    const c = conn();
    const id = 'dm-pushed';
    const armed = await arm(c, id, 2, 1);
    assert.ok(alive(armed.pid, armed.startTime), 'the watcher runs on the host');
    assert.ok(Math.abs(armed.armedAt.getTime() - Date.now()) < 5000, 'armedAt is now (same clock here)');
    assert.match(cmdline(armed.pid), /\/bin\/sh .*\/\.tether\/deadman\/dm-pushed\/watch\.sh/);
    assert.equal(fs.readFileSync(path.join(stateDir(id), 'timeout'), 'utf8'), '2\n');
    assert.equal(fs.readFileSync(path.join(stateDir(id), 'pid'), 'utf8'), `${armed.pid}\n`);
    assert.equal(fs.readFileSync(path.join(stateDir(id), 'start'), 'utf8'), `${armed.startTime}\n`);
    const until = Date.now() + 4500;
    let pushes = 0;
    while (Date.now() < until) {
      const t0 = Date.now();
      const r = await pushDeadman(c, id);
      assert.deepEqual(r, { armed: true, pushed: true, alive: true });
      pushes++;
      await sleep(Math.max(0, 500 - (Date.now() - t0)));
    }
    assert.ok(pushes >= 8, `${pushes} pushes`);
    assert.ok(!fs.existsSync(firedFile(id)), 'the stand-in action did not run');
    assert.ok(alive(armed.pid, armed.startTime), 'the watcher still runs');
    const st = await deadmanStatus(c, id);
    assert.equal(st.armed, true);
    assert.equal(st.alive, true);
    assert.equal(st.fired, undefined);
    assert.equal(st.pid, armed.pid);
    assert.equal(st.startTime, armed.startTime);
    assert.equal(st.timeoutSec, 2);
    assert.equal(st.checkEverySec, 1);
    assert.ok(st.lastPushAgeSec !== undefined && st.lastPushAgeSec >= 0 && st.lastPushAgeSec < 1.5, `last push ${st.lastPushAgeSec} s ago`);
    assert.equal((await disarmDeadman(c, id)).outcome, 'stopped');
  });

  it('once the pushes stop, the stand-in action runs within timeout + checkEvery + 1 s (never before the timeout); status says fired; the watcher exits', async () => {
    const c = conn();
    const id = 'dm-fires';
    const timeoutSec = 2;
    const checkEverySec = 1;
    const armed = await arm(c, id, timeoutSec, checkEverySec);
    await pushDeadman(c, id);
    await sleep(400);
    const last = await pushDeadman(c, id);
    const lastPushDone = Date.now();
    assert.equal(last.alive, true);
    await waitFor(() => fs.existsSync(firedFile(id)), (timeoutSec + checkEverySec + 1) * 1000 + 500, 'the stand-in action');
    const latencyMs = Date.now() - lastPushDone;
    console.log(`      fired ${latencyMs} ms after the last push (timeout ${timeoutSec} s, checked every ${checkEverySec} s)`);
    assert.ok(latencyMs >= timeoutSec * 1000 - 100, `not before the timeout (${latencyMs} ms)`);
    assert.ok(latencyMs <= (timeoutSec + checkEverySec + 1) * 1000, `within timeout + checkEvery + 1 s (${latencyMs} ms)`);
    assert.equal(fs.readFileSync(firedFile(id), 'utf8'), 'fired\n');
    await waitFor(() => !alive(armed.pid, armed.startTime), 2000, 'the watcher to exit');
    assert.deepEqual(groupMembers(armed.pid), [], 'nothing of the watcher is left');
    const st = await deadmanStatus(c, id);
    assert.equal(st.armed, true);
    assert.equal(st.alive, false);
    assert.ok(st.fired, 'status reports fired');
    assert.ok(Math.abs(st.fired.at.getTime() - Date.now()) < 5000, `fired at ${st.fired.at.toISOString()}`);
    const push = await pushDeadman(c, id);
    assert.equal(push.alive, false);
    assert.ok(push.fired, 'a push after the fact says it fired');
    const log = fs.readFileSync(path.join(stateDir(id), 'log'), 'utf8');
    assert.match(log, /no heartbeat for \d+ ms \(timeout 2 s\): running the action/);
    assert.match(log, /the action exited with status 0/);
    const d = await disarmDeadman(c, id);
    assert.equal(d.outcome, 'already-exited');
    assert.equal(d.signalled, false);
    assert.ok(!fs.existsSync(stateDir(id)));
  });

  it('survives the SSH connection being dropped and the pool closing, and still fires later (the laptop was closed)', async () => {
    const pool = newPool();
    const id = 'dm-dropped';
    const armed = await arm(pool.get('tether-test'), id, 2, 1);
    await pushDeadman(pool.get('tether-test'), id);
    assert.ok(sshd.dropConnections() >= 1, 'the SSH session was killed');
    pool.closeAll();
    await sleep(300);
    assert.ok(alive(armed.pid, armed.startTime), 'the watcher outlives the connection');
    const ppid = readStat(armed.pid)!.ppid;
    assert.ok(!/sshd/.test(readStat(ppid)?.comm ?? ''), 'its parent is not an sshd session process');
    assert.ok(!fs.existsSync(firedFile(id)));
    await waitFor(() => fs.existsSync(firedFile(id)), 5000, 'the stand-in action after the drop');
    await waitFor(() => !alive(armed.pid, armed.startTime), 2000, 'the watcher to exit');
    const st = await deadmanStatus(conn(), id);
    assert.ok(st.fired);
    assert.equal(st.alive, false);
    await disarmDeadman(conn(), id);
  });

  it('disarm stops the watcher (by PID, with its sleep), removes the state, is idempotent; re-arming the same id replaces the watcher', async () => {
    const c = conn();
    const id = 'dm-disarm';
    const armed = await arm(c, id, 30, 1);
    await waitFor(() => groupMembers(armed.pid).length >= 2, 3000, "the watcher's sleep");
    const members = groupMembers(armed.pid);
    const d = await disarmDeadman(c, id);
    assert.equal(d.wasArmed, true);
    assert.equal(d.outcome, 'stopped');
    assert.equal(d.signalled, true);
    assert.equal(d.pid, armed.pid);
    assert.equal(d.removed, true);
    assert.ok(!alive(armed.pid), 'the watcher PID is gone');
    assert.deepEqual(members.filter((p) => alive(p)), [], `no process of its group is left (${members.join(' ')})`);
    assert.ok(!fs.existsSync(stateDir(id)), 'the state is removed');
    const again = await disarmDeadman(c, id);
    assert.deepEqual({ wasArmed: again.wasArmed, outcome: again.outcome, signalled: again.signalled }, { wasArmed: false, outcome: 'not-armed', signalled: false });
    assert.deepEqual(await deadmanStatus(c, id), { armed: false, alive: false });
    assert.deepEqual(await pushDeadman(c, id), { armed: false, pushed: false, alive: false });
    assert.ok(!fs.existsSync(stateDir(id)), 'a push does not resurrect the state');

    const id2 = 'dm-rearm';
    const first = await arm(c, id2, 30, 1);
    const second = await arm(c, id2, 30, 1);
    assert.notEqual(second.pid, first.pid);
    assert.equal(second.replacedPid, first.pid);
    assert.ok(!alive(first.pid, first.startTime), 'the first watcher is gone');
    assert.ok(alive(second.pid, second.startTime), 'the second runs');
    assert.deepEqual(watchersOf(id2), [second.pid], 'exactly one watcher for the id');
    const st = await deadmanStatus(c, id2);
    assert.equal(st.pid, second.pid);
    assert.equal(st.alive, true);
    assert.equal((await disarmDeadman(c, id2)).outcome, 'stopped');
    assert.deepEqual(watchersOf(id2), []);
  });

  it('refuses a hostile id before any remote command; an action with quotes and $ arrives byte-for-byte', async () => {
    let calls = 0;
    const recorder: DeadmanConnection = {
      exec: async () => {
        calls++;
        return { code: 0, stdout: 'END\n', stderr: '' };
      },
    };
    const pool = newPool();
    const real = pool.get('tether-test');
    const hostile = ['../x', '..', '.', '', '.hidden', 'a/b', 'a b', "a'b", 'a;rm -rf ~', '$(id)', '`id`', 'a\nb', 'x'.repeat(129), 'é'];
    for (const id of hostile) {
      for (const c of [recorder, real]) {
        await assert.rejects(armDeadman(c, { id, timeoutSec: 2, action: 'true' }), (e: unknown) => e instanceof DeadmanError && /Invalid dead man's switch id/.test(e.message), JSON.stringify(id));
        await assert.rejects(pushDeadman(c, id), DeadmanError);
        await assert.rejects(disarmDeadman(c, id), DeadmanError);
        await assert.rejects(deadmanStatus(c, id), DeadmanError);
      }
    }
    assert.equal(calls, 0, 'no command was sent');
    assert.equal(real.connects, 0, 'the real connection was never even opened');
    await assert.rejects(armDeadman(recorder, { id: 'ok', timeoutSec: 0, action: 'true' }), /timeoutSec/);
    await assert.rejects(armDeadman(recorder, { id: 'ok', timeoutSec: 5, action: '  ' }), /no action/);
    await assert.rejects(armDeadman(recorder, { id: 'ok', timeoutSec: 5, action: 'a\0b' }), /NUL/);
    assert.equal(calls, 0);

    const id = 'dm-quotes';
    const out = path.join(sshd.home, 'deadman-bytes');
    fs.rmSync(out, { force: true });
    const payload = `it's "double" \`bt\` \\ $HOME $(id) %s 'single'`;
    // printf prints its arguments verbatim; the payload is single-quoted the shell way.
    const action = `printf '%s\\n' '${payload.replace(/'/g, `'\\''`)}' "$HOME" > "$HOME/deadman-bytes"; ${standIn(id)}`;
    const armed = await arm(real, id, 1, 1, action);
    assert.equal(fs.readFileSync(path.join(stateDir(id), 'action'), 'utf8'), action, 'the action file holds the exact bytes');
    await waitFor(() => fs.existsSync(firedFile(id)), 4000, 'the stand-in action');
    assert.equal(fs.readFileSync(out, 'utf8'), `${payload}\n${sshd.home}\n`);
    await waitFor(() => !alive(armed.pid, armed.startTime), 2000, 'the watcher to exit');
    await disarmDeadman(real, id);
    fs.rmSync(out, { force: true });
  });

  it('PID reuse: a recorded PID whose start time does not match is NOT signalled, and disarm says why', async () => {
    const c = conn();
    // (a) A stranger of the same user now holds the recorded PID (as after a reboot and PID reuse).
    const id = 'dm-reuse';
    const armed = await arm(c, id, 30, 3);
    const started = await c.exec('nohup setsid sleep 60 < /dev/null > /dev/null 2>&1 & echo $!');
    const stranger = Number(started.stdout.trim());
    const strangerStart = readStat(stranger)!.startTime;
    await c.exec(`printf '%s\\n' ${stranger} > "$HOME/.tether/deadman/${id}/pid"`);
    try {
      const d = await disarmDeadman(c, id);
      assert.equal(d.outcome, 'pid-mismatch');
      assert.equal(d.signalled, false);
      assert.equal(d.pid, stranger);
      assert.match(d.reason, new RegExp(`PID ${stranger} is not the watcher: it started at tick ${strangerStart}, the watcher was recorded at tick ${armed.startTime}`));
      assert.match(d.reason, /not signalled/);
      assert.ok(alive(stranger, strangerStart), 'the stranger still runs');
      assert.ok(!fs.existsSync(stateDir(id)));
      // The real watcher sees its state gone and exits by itself, without firing.
      await waitFor(() => !alive(armed.pid, armed.startTime), 5000, 'the orphaned watcher to exit by itself');
      assert.ok(!fs.existsSync(firedFile(id)), 'it did not fire');
    } finally {
      try {
        process.kill(stranger, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }

    // (b) The recorded start time was tampered with: the watcher itself is not signalled either.
    const id2 = 'dm-tamper';
    const w = await arm(c, id2, 30, 3);
    fs.writeFileSync(path.join(stateDir(id2), 'start'), `${w.startTime + 1}\n`);
    const d2 = await disarmDeadman(c, id2);
    assert.equal(d2.outcome, 'pid-mismatch');
    assert.equal(d2.signalled, false);
    assert.match(d2.reason, new RegExp(`PID ${w.pid} is not the watcher: it started at tick ${w.startTime}, the watcher was recorded at tick ${w.startTime + 1}`));
    assert.ok(alive(w.pid, w.startTime), 'not signalled: it still runs right after the disarm');
    await waitFor(() => !alive(w.pid, w.startTime), 5000, 'the watcher to exit by itself (state gone)');
    assert.ok(!fs.existsSync(firedFile(id2)));
  });

  it('leaves nothing of the test user running', async () => {
    const userProcs = () => processesOf(sshd.uid).filter((pid) => !/sshd/.test(readStat(pid)?.comm ?? ''));
    await waitFor(() => userProcs().length === 0, 4000, 'no process of the test user').catch(() => undefined);
    const left = userProcs().map((pid) => `${pid} ${cmdline(pid)}`);
    assert.deepEqual(left, []);
    for (const id of armedIds) fs.rmSync(firedFile(id), { force: true });
  });
});
