// Issue #14 item 3 for SSH hosts: across windows (`TetherModel`s, what each VS Code window runs,
// here in plain node with the vscode stand-in) and folders on one state folder, each SSH host is
// polled once a tick in all: the policy leader polls and publishes what it found in
// <state>/fleet-snapshot.json, the other windows show that; one window's folders share each
// host's poll. Against a REAL OpenSSH server: the polls are counted on the host's side, by sshd's
// own log of the sessions it started (LogLevel VERBOSE: "Starting session: command for …"), so
// every exec request counts. Counted in ticks (rounds of polls), never in wall-clock rates.
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TetherModel, type Snapshot } from '../../src/ui/model';
import { silentLogger } from '../../src/core/logger';
import { Engine, type SshConnectionOptions } from '../../src/workspace/engine';
import type { SshHostMonitor } from '../../src/backends/ssh/remotePlugin';
import { PolicyWatcher } from '../../src/fleet/watcher';
import { readSnapshot, SNAPSHOT_FILE } from '../../src/fleet/snapshot';
import { startSshdOrSkip, type TestSshd } from '../helpers/sshd';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const TICKS = 6;
// The windows' poll interval: rounds run back to back, far within it, so the lease and the
// published reading stay fresh; each round is a new tick (polls are shared within a tick only).
const POLL_MS = 2000;

describe('one poller per user for SSH hosts: the leader polls each host once a tick, the other windows and folders show its reading (real OpenSSH server)', function () {
  this.timeout(240_000);
  let sshd: TestSshd;
  let stateDir: string;
  let ws: string;
  let starter: Engine;
  const models: TetherModel[] = [];
  const extra: string[] = [];

  const sshOpts = (): SshConnectionOptions => ({ resolve: { configPath: sshd.sshConfig }, knownHostsFiles: [sshd.knownHosts], agent: null, backoffInitialMs: 200 });
  const remote = { name: 'remote', command: 'sleep', args: ['600'], host: 'tether-test', stopGraceSeconds: 1 };

  before(async function () {
    sshd = await startSshdOrSkip(this);
  });
  after(async () => {
    await sshd?.stop();
  });
  beforeEach(async () => {
    stateDir = tmpDir('tether-one-poller-ssh-state-');
    ws = workspaceWith({ plugins: [remote] });
    starter = new Engine({ workspace: ws, ownerKind: 'cli', stateDir, ssh: sshOpts() });
    await starter.start('remote');
  });
  afterEach(async () => {
    for (const m of models.splice(0)) m.dispose();
    await starter.stop('remote').catch(() => undefined);
    starter.dispose();
    for (const d of [stateDir, ws, ...extra.splice(0)]) fs.rmSync(d, { recursive: true, force: true });
  });

  const windowOn = (folders: string[] = [ws], extraHosts: string[] = []) => {
    const m = new TetherModel(silentLogger, () => stateDir, sshOpts(), () => extraHosts, () => [], () => ({ budgets: [], pollMs: POLL_MS }));
    m.setFolders(folders);
    models.push(m);
    return m;
  };
  /** Sessions (exec requests) sshd started so far, from its own log. */
  const sessions = () => (sshd.log().match(/Starting session: command for /g) ?? []).length;
  /** Round trips a window's monitor made (each is one of the sessions above). */
  const pollsOf = (m: TetherModel) => (m as unknown as { sshMonitor: SshHostMonitor }).sshMonitor.hostPollCount;
  const rounds = async (wins: TetherModel[], ticks: number): Promise<{ polls: number; snaps: Snapshot[][] }> => {
    const from = sessions();
    const snaps: Snapshot[][] = [];
    for (let t = 0; t < ticks; t++) snaps.push(await Promise.all(wins.map((m) => m.refresh('interval'))));
    // sshd logs a session as it starts it, before the command runs: every counted poll is in the log.
    return { polls: sessions() - from, snaps };
  };
  /** The remote plugin's processes as a folder of a window shows them. */
  const remoteShown = (s: Snapshot, folder = ws) => s.folders.find((f) => f.folder === folder)?.report?.plugins.find((p) => p.name === 'remote');

  it('1 window and 3 windows cost the host the same polls over the same ticks, and every follower shows the remote processes', async () => {
    const rootPid = starter.ledger.read().resources[0]!.processes[0]!.pid;
    const one = windowOn();
    await one.refresh('startup');
    const single = await rounds([one], TICKS);
    for (const m of models.splice(0)) m.dispose();
    fs.rmSync(path.join(stateDir, SNAPSHOT_FILE), { force: true });
    const three = [windowOn(), windowOn(), windowOn()];
    await Promise.all(three.map((m) => m.refresh('startup')));
    const counts0 = three.map(pollsOf);
    const multi = await rounds(three, TICKS);
    const byWindow = three.map((m, i) => pollsOf(m) - counts0[i]!);
    console.log(`      SSH host polls over ${TICKS} ticks: 1 window ${single.polls}, 3 windows ${multi.polls} (by window: ${byWindow.join(', ')})`);
    assert.ok(single.polls >= TICKS - 1 && single.polls <= TICKS + 1, `one window polls the host about once a tick: ${single.polls} in ${TICKS} ticks`);
    assert.ok(Math.abs(multi.polls - single.polls) <= 1, `3 windows cost the host what 1 does (within one tick): ${multi.polls} vs ${single.polls}`);
    assert.equal(byWindow.filter((n) => n > 1).length, 1, `one window (the leader) polls: ${byWindow.join(', ')}`);
    // Every window shows the remote plugin's processes on the host, each round.
    for (const round of multi.snaps) {
      for (const s of round) {
        const p = remoteShown(s);
        assert.ok(p, 'the remote plugin is shown');
        assert.equal(p.state, 'running');
        assert.equal(p.problem, undefined);
        assert.ok(p.processes.some((x) => x.pid === rootPid || /sleep 600/.test(x.command)), `processes shown: ${JSON.stringify(p.processes.map((x) => x.command))}`);
        const host = s.folders[0]!.report!.hosts.find((h) => h.host === 'tether-test');
        assert.equal(host?.state, 'connected', 'the host is shown connected (as its poller found it)');
      }
    }
    // The published reading: what the tree shows, nothing secret.
    const snap = readSnapshot(stateDir)!;
    assert.ok(snap.ssh, 'the SSH part is published');
    assert.equal(snap.ssh.by.leader, true);
    assert.equal(snap.ssh.hosts['tether-test']?.state, 'connected');
    const id = starter.ledger.read().resources[0]!.id;
    assert.ok(snap.ssh.records[id]?.length, 'the record’s processes are published');
    const text = fs.readFileSync(path.join(stateDir, SNAPSHOT_FILE), 'utf8');
    assert.ok(!text.includes('PRIVATE KEY') && !text.includes(fs.readFileSync(sshd.userKey, 'utf8').split('\n')[1]!), 'no key in the snapshot');
    assert.equal(fs.statSync(path.join(stateDir, SNAPSHOT_FILE)).mode & 0o777, 0o600);
  });

  it('several folders in one window share one poll of the host a tick', async () => {
    const ws2 = workspaceWith({ plugins: [{ ...remote, name: 'remote2' }] });
    const ws3 = workspaceWith({ plugins: [], hosts: ['tether-test'] });
    extra.push(ws2, ws3);
    const m = windowOn([ws, ws2, ws3]);
    await m.refresh('startup');
    const r = await rounds([m], TICKS);
    assert.ok(r.polls >= TICKS - 1 && r.polls <= TICKS + 1, `3 folders: ${r.polls} polls of the host in ${TICKS} ticks (one a tick)`);
    for (const s of r.snaps.flat()) {
      assert.equal(s.folders.length, 3);
      assert.ok(remoteShown(s)!.processes.length > 0, 'the folder that runs it shows its processes');
      for (const f of s.folders) assert.equal(f.report?.hosts.find((h) => h.host === 'tether-test')?.state, 'connected', `folder ${f.name} shows the host`);
    }
  });

  it('within a tick a poll is shared, but an action on the host (a stop) makes the next poll ask again; an action’s refresh polls', async () => {
    const m = windowOn();
    await m.refresh('startup');
    const mon = (m as unknown as { sshMonitor: SshHostMonitor }).sshMonitor;
    const rec = () => starter.ledger.read().resources.find((r) => r.plugin === 'remote')!;
    // A tick of its own: two polls of the same host and record, the second shares the first.
    mon.beginTick({ intervalMs: 60_000 });
    const r0 = rec();
    const n0 = mon.hostPollCount;
    const a = await mon.poll([r0]);
    const b = await mon.poll([r0]);
    assert.equal(mon.hostPollCount - n0, 1, 'the second poll in the tick shared the first');
    assert.ok(a.get(r0.id)!.length > 0 && b.get(r0.id)!.length > 0);
    // A stop on the host, in the same tick: the next poll asks the host and sees nothing left.
    await mon.stopTree(r0, 1000);
    const c = await mon.poll([r0]);
    assert.equal(mon.hostPollCount - n0, 2, 'after the stop the host was asked again');
    assert.deepEqual(c.get(r0.id), [], 'nothing left on the host');
    mon.endTick();
    // The window's refresh after the action polls (a new tick) and the record is closed by it.
    const from = sessions();
    const s = await m.refresh('action');
    assert.ok(sessions() - from >= 1, 'the refresh after the action polled the host');
    assert.equal(remoteShown(s)!.processes.length, 0);
    assert.equal(starter.ledger.read().resources.some((r) => r.id === r0.id), false, 'its record is closed by the poller that asked the host');
  });

  it('the leader gone: another window polls at its next tick, and the others still show the processes', async () => {
    const wins = [windowOn(), windowOn(), windowOn()];
    await Promise.all(wins.map((m) => m.refresh('startup')));
    const c0 = wins.map(pollsOf);
    await rounds(wins, 2);
    const leaderIdx = wins.findIndex((m, i) => pollsOf(m) - c0[i]! >= 2);
    assert.ok(leaderIdx >= 0, 'someone polls');
    const [gone] = wins.splice(leaderIdx, 1);
    models.splice(models.indexOf(gone!), 1);
    gone!.dispose(); // a closed window gives its lease up
    const c1 = wins.map(pollsOf);
    const after = await rounds(wins, TICKS);
    const byWindow = wins.map((m, i) => pollsOf(m) - c1[i]!);
    assert.ok(after.polls >= TICKS - 1 && after.polls <= TICKS + 1, `still one poll a tick: ${after.polls} in ${TICKS} (by window: ${byWindow.join(', ')})`);
    assert.equal(byWindow.filter((n) => n > 1).length, 1, `one of the two left polls: ${byWindow.join(', ')}`);
    for (const round of after.snaps.slice(1)) for (const s of round) assert.ok(remoteShown(s)!.processes.length > 0);
  });

  it('windows out of step with the leader (their ticks start while its poll runs) still follow it after polling on their own (a Refresh); a watched host with nothing on it', async () => {
    // Nothing runs on the host: the windows watch it (the `tether.sshHosts` setting) for its state and GPUs.
    await starter.stop('remote');
    const empty = workspaceWith({ plugins: [] });
    extra.push(empty);
    const windowOnEmpty = () => windowOn([empty], ['tether-test']);
    const wins = [windowOnEmpty(), windowOnEmpty(), windowOnEmpty()];
    await Promise.all(wins.map((m) => m.refresh('startup')));
    const c0 = wins.map(pollsOf);
    await rounds(wins, 1);
    const leader = wins.find((m, i) => pollsOf(m) > c0[i]!)!;
    assert.ok(leader, 'someone polls');
    const followers = wins.filter((m) => m !== leader);
    // A user's Refresh in each follower: each polls the host itself (and publishes), after the leader's last tick.
    await Promise.all(followers.map((m) => m.refresh('manual')));
    const c1 = followers.map(pollsOf);
    for (let t = 0; t < TICKS; t++) {
      // The leader's tick begins; the followers' ticks begin while it polls (before it publishes).
      const lp = leader.refresh('interval');
      const snaps = await Promise.all(followers.map((m) => m.refresh('interval')));
      await lp;
      for (const s of snaps) assert.equal(s.folders[0]!.report!.hosts.find((h) => h.host === 'tether-test')?.state, 'connected', 'a follower shows the host');
    }
    const byFollower = followers.map((m, i) => pollsOf(m) - c1[i]!);
    assert.deepEqual(byFollower, [0, 0], `the followers made no poll of their own in ${TICKS} ticks: ${byFollower.join(', ')}`);
  });

  it('a follower closes no record from the reading, a user’s Refresh polls the host itself, and `tether watch` leading publishes too', async () => {
    const watcherEngine = new Engine({ workspace: ws, ownerKind: 'cli', stateDir, ssh: sshOpts() });
    const watcher = new PolicyWatcher(watcherEngine, silentLogger, 30_000);
    try {
      assert.equal((await watcher.tick()).leader, true);
      const id = starter.ledger.read().resources[0]!.id;
      assert.ok(readSnapshot(stateDir)?.ssh?.records[id]?.length, '`tether watch` published the host’s reading');
      const win = windowOn();
      const from = sessions();
      const s = await win.refresh('interval');
      assert.equal(sessions() - from, 0, 'the window did not poll the host while `tether watch` leads');
      assert.ok(remoteShown(s)!.processes.length > 0, 'it shows the processes `tether watch` found');
      // A reading that says nothing is left (as a stale or wrong one could): the follower shows
      // it but does not close the record — only a poller that asked the host does.
      const snap = readSnapshot(stateDir)!;
      snap.ssh!.records[id] = [];
      fs.writeFileSync(path.join(stateDir, SNAPSHOT_FILE), JSON.stringify(snap));
      await win.refresh('interval');
      assert.ok(starter.ledger.read().resources.some((r) => r.id === id), 'the record is kept');
      // A user's Refresh polls the host itself (and finds the process, and publishes it).
      const from2 = sessions();
      const manual = await win.refresh('manual');
      assert.ok(sessions() - from2 >= 1, 'Refresh polled the host');
      assert.ok(remoteShown(manual)!.processes.length > 0);
      await waitFor(() => (readSnapshot(stateDir)?.ssh?.records[id]?.length ?? 0) > 0, 5000, 'the fresh reading published');
    } finally {
      await watcher.lease.release();
      watcherEngine.dispose();
    }
  });
});
