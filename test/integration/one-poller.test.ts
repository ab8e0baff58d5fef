// Issue #14 item 3, exactly one poller per user: windows (`TetherModel`s, what each VS Code
// window runs, here in plain node with the vscode stand-in) on one state folder ask the provider
// for its instances once per tick in all, not once per window: the policy leader lists and
// publishes <state>/fleet-snapshot.json, the others render it. Counted in ticks (rounds of polls),
// never in wall-clock rates; against the Lambda Cloud protocol fake.
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TetherModel, type Snapshot } from '../../src/ui/model';
import { silentLogger } from '../../src/core/logger';
import { Engine } from '../../src/workspace/engine';
import { LambdaCloudProvider } from '../../src/backends/cloud/lambda/lambda';
import { PolicyWatcher } from '../../src/fleet/watcher';
import { readLeader } from '../../src/fleet/leader';
import { readSnapshot, SNAPSHOT_FILE } from '../../src/fleet/snapshot';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { tmpDir, workspaceWith } from '../helpers/tmp';

const INSTANCES = 4;
const TICKS = 8;
// Each window's poll interval as the model passes it to the lease: 1 ms, so that the leader lists
// at every round of this test (it reuses its own listing only within half an interval) while the
// lease and the snapshot stay fresh for the lease's floor of 15 s — far longer than one round.
const POLL_MS = 1;

describe('one poller per user: the policy leader lists the providers, the other windows render its snapshot', function () {
  this.timeout(180_000);
  let fake: FakeLambdaServer;
  let stateDir: string;
  let ws: string;
  const models: TetherModel[] = [];

  beforeEach(async () => {
    fake = new FakeLambdaServer();
    await fake.start();
    for (let i = 0; i < INSTANCES; i++) fake.addForeign(`other-${i}`);
    stateDir = tmpDir('tether-one-poller-state-');
    ws = workspaceWith({ plugins: [{ name: 'idle', command: 'sleep', args: ['600'] }] });
  });
  afterEach(async () => {
    for (const m of models.splice(0)) m.dispose();
    await fake.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(ws, { recursive: true, force: true });
  });

  /** A window: its own client for the same account (as every window builds one from SecretStorage). */
  const windowOn = (folders: string[] = [ws], pollMs = POLL_MS) => {
    const provider = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url });
    const m = new TetherModel(silentLogger, () => stateDir, {}, () => [], () => [provider], () => ({ budgets: [], pollMs }));
    m.setFolders(folders);
    models.push(m);
    return m;
  };
  const lists = () => fake.requests.filter((r) => r.method === 'GET' && /\/instances$/.test(r.path)).length;
  /** `ticks` rounds in which every window polls once (all at the same time, as timers would); the list requests they cost. */
  const rounds = async (ws: TetherModel[], ticks: number): Promise<{ lists: number; snaps: Snapshot[][] }> => {
    const from = lists();
    const snaps: Snapshot[][] = [];
    for (let t = 0; t < ticks; t++) snaps.push(await Promise.all(ws.map((m) => m.refresh('interval'))));
    return { lists: lists() - from, snaps };
  };
  const shown = (s: Snapshot) => (s.cloud?.instances ?? []).map((i) => i.name).sort();

  it('1 window and 3 windows cost the same list requests over the same ticks, and every follower shows the instances', async () => {
    const one = windowOn();
    await one.refresh('startup');
    const single = await rounds([one], TICKS);
    // Another state folder and fake would be a different user: the same one, three windows now.
    for (const m of models.splice(0)) m.dispose();
    fs.rmSync(path.join(stateDir, SNAPSHOT_FILE), { force: true });
    const three = [windowOn(), windowOn(), windowOn()];
    await Promise.all(three.map((m) => m.refresh('startup')));
    const multi = await rounds(three, TICKS);
    console.log(`      list requests over ${TICKS} ticks: 1 window ${single.lists}, 3 windows ${multi.lists}`);
    assert.ok(single.lists >= TICKS - 1 && single.lists <= TICKS + 1, `one window lists about once a tick: ${single.lists} in ${TICKS} ticks`);
    assert.ok(Math.abs(multi.lists - single.lists) <= 1, `3 windows cost what 1 does (within one tick): ${multi.lists} vs ${single.lists}`);
    // Every window shows every instance, each round; exactly one of them listed, the others rendered the snapshot.
    const names = Array.from({ length: INSTANCES }, (_, i) => `other-${i}`);
    for (const round of multi.snaps) {
      for (const s of round) assert.deepEqual(shown(s), names);
      assert.equal(round.filter((s) => s.cloudSource === 'listed').length, 1, `one lister a round: ${round.map((s) => s.cloudSource).join(', ')}`);
    }
    // The published file: versioned, private, with who published it, and nothing secret.
    const file = path.join(stateDir, SNAPSHOT_FILE);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(!text.includes(fake.apiKey), 'the API key is not in the snapshot');
    const snap = readSnapshot(stateDir)!;
    assert.equal(snap.version, 1);
    assert.equal(snap.by.pid, process.pid);
    assert.equal(snap.by.kind, 'vscode');
    assert.equal(snap.by.leader, true);
    assert.deepEqual(snap.providers, ['lambda_labs']);
    assert.equal(snap.cloud.instances.length, INSTANCES);
  });

  it('several folders in one window share one listing a tick', async () => {
    const ws2 = workspaceWith({ plugins: [] });
    const ws3 = workspaceWith({ plugins: [] });
    try {
      const m = windowOn([ws, ws2, ws3]);
      await m.refresh('startup');
      const r = await rounds([m], TICKS);
      assert.ok(r.lists <= TICKS + 1, `3 folders: ${r.lists} list requests in ${TICKS} ticks (one a tick)`);
      for (const s of r.snaps.flat()) {
        assert.equal(s.folders.length, 3);
        for (const f of s.folders) assert.equal(f.report?.cloud.instances.length, INSTANCES, `folder ${f.name} shows the instances`);
      }
    } finally {
      fs.rmSync(ws2, { recursive: true, force: true });
      fs.rmSync(ws3, { recursive: true, force: true });
    }
  });

  it('the leader disposed: another window takes over at its next tick and the snapshot keeps updating', async () => {
    const wins = [windowOn(), windowOn(), windowOn()];
    await Promise.all(wins.map((m) => m.refresh('startup')));
    const before = await rounds(wins, 2);
    const leaderIdx = before.snaps[1]!.findIndex((s) => s.cloudSource === 'listed');
    assert.ok(leaderIdx >= 0, 'someone leads');
    const seq0 = readSnapshot(stateDir)!.seq;
    const at0 = readSnapshot(stateDir)!.at;
    const [gone] = wins.splice(leaderIdx, 1);
    models.splice(models.indexOf(gone!), 1);
    gone!.dispose(); // a closed window gives its lease up
    const after = await rounds(wins, TICKS);
    assert.ok(after.lists >= TICKS - 1 && after.lists <= TICKS + 1, `still one listing a tick: ${after.lists} in ${TICKS}`);
    const snap = readSnapshot(stateDir)!;
    assert.ok(snap.seq >= seq0 + TICKS - 1, `the snapshot kept updating: seq ${seq0} → ${snap.seq}`);
    assert.ok(snap.at > at0);
    assert.equal(snap.by.leader, true);
    assert.equal(readLeader(stateDir)?.leading, true, 'a window leads again');
    for (const round of after.snaps.slice(1)) {
      assert.equal(round.filter((s) => s.cloudSource === 'listed').length, 1, 'one of the two left lists');
      for (const s of round) assert.equal(s.cloud?.instances.length, INSTANCES);
    }
  });

  it("a user's action lists at once in the acting window and publishes, so the others show it without a request of their own", async () => {
    const wins = [windowOn(), windowOn(), windowOn()];
    await Promise.all(wins.map((m) => m.refresh('startup')));
    const r = await rounds(wins, 1);
    const follower = wins.find((_, i) => r.snaps[0]![i]!.cloudSource === 'snapshot')!;
    const other = wins.find((m, i) => m !== follower && r.snaps[0]![i]!.cloudSource === 'snapshot')!;
    fake.addForeign('made-elsewhere');
    const from = lists();
    const acted = await follower.refresh('action');
    assert.equal(acted.cloudSource, 'listed');
    assert.equal(lists() - from, 1, 'the acting window listed once');
    assert.ok(shown(acted).includes('made-elsewhere'));
    assert.equal(readSnapshot(stateDir)!.by.leader, false, 'published by the window that acted');
    const seen = await other.refresh('interval');
    assert.equal(seen.cloudSource, 'snapshot');
    assert.equal(lists() - from, 1, 'the other window made no request');
    assert.ok(shown(seen).includes('made-elsewhere'), 'the other window shows the change from the snapshot');
  });

  it('focused windows polling faster than a background leader keep their cadence: one of them refreshes the snapshot for all, once a tick', async () => {
    // The leader polls every 30 s (`tether watch`, like a window in the background); three
    // focused windows every 5 s. Each round starts more than 1.5 of their intervals after the last listing.
    const provider = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url });
    const engine = new Engine({ workspace: ws, ownerKind: 'cli', stateDir, cloudProviders: () => [provider] });
    const watcher = new PolicyWatcher(engine, silentLogger, 30_000, undefined, () => [provider.type]);
    assert.equal((await watcher.tick()).leader, true);
    try {
      const wins = [windowOn([ws], 5000), windowOn([ws], 5000), windowOn([ws], 5000)];
      await Promise.all(wins.map((m) => m.refresh('startup')));
      const ROUNDS = 3;
      let total = 0;
      for (let r = 0; r < ROUNDS; r++) {
        await new Promise((ok) => setTimeout(ok, 7600)); // > 1.5 × 5 s since the last listing
        fake.addForeign(`new-${r}`);
        const from = lists();
        const snaps = await Promise.all(wins.map((m) => m.refresh('interval')));
        total += lists() - from;
        assert.equal(snaps.filter((s) => s.cloudSource === 'listed').length, 1, `round ${r}: one window listed (${snaps.map((s) => s.cloudSource).join(', ')})`);
        for (const s of snaps) assert.ok(shown(s).includes(`new-${r}`), `round ${r}: every window shows what the provider has now`);
      }
      assert.equal(total, ROUNDS, `one listing a round for three windows: ${total} in ${ROUNDS}`);
      assert.equal(readLeader(stateDir)?.kind, 'watch', 'the leader was not fought');
      // Published with the leader's interval: it stays fresh until the leader's next tick.
      assert.ok(readSnapshot(stateDir)!.intervalMs >= 30_000);
    } finally {
      await watcher.lease.release();
    }
  });

  it('`tether watch` leading publishes too: a window renders its listing without asking the provider', async () => {
    const provider = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url });
    const engine = new Engine({ workspace: ws, ownerKind: 'cli', stateDir, cloudProviders: () => [provider] });
    const watcher = new PolicyWatcher(engine, silentLogger, 30_000, undefined, () => [provider.type]);
    const t = await watcher.tick();
    assert.equal(t.leader, true);
    assert.equal(readSnapshot(stateDir)?.by.kind, 'watch');
    const win = windowOn([ws], 30_000); // polling as often as the watcher (a faster one refreshes: the test above)
    const from = lists();
    for (let i = 0; i < 3; i++) {
      const s = await win.refresh('interval');
      assert.equal(s.cloudSource, 'snapshot');
      assert.equal(s.cloud?.instances.length, INSTANCES);
    }
    assert.equal(lists() - from, 0, 'the window made no list request while `tether watch` leads');
    await watcher.lease.release();
  });
});
