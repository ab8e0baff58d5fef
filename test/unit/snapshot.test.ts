// The fleet snapshot (src/fleet/snapshot.ts): who lists, who renders, and that an older listing
// never overwrites a newer one. A stand-in `list` counts the listings; the clock is simulated.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { silentLogger } from '../../src/core/logger';
import { CloudProviderType } from '../../src/core/protocols';
import type { CloudStatus } from '../../src/fleet/cloud';
import { staleAfterMs } from '../../src/fleet/leader';
import { CloudPoll, isFresh, publishSnapshot, publisher, readSnapshot, SNAPSHOT_FILE } from '../../src/fleet/snapshot';
import { tmpDir } from '../helpers/tmp';

const status = (name: string): CloudStatus => ({
  instances: [{ ledgerId: null, managed: false, provider: CloudProviderType.LAMBDA_LABS, providerTitle: 'Lambda Cloud', id: name, name, status: 'running', rawStatus: 'active', gpuCount: 1, pricePerHour: 1, costSoFar: 0, uptimeSeconds: 1 }],
  errors: [],
  costPerHour: 0,
  costSoFar: 0,
});

describe('fleet snapshot (src/fleet/snapshot.ts)', () => {
  let dir: string;
  let now: number;
  let listed: number;
  beforeEach(() => {
    dir = tmpDir('tether-snapshot-');
    now = 1_000_000;
    listed = 0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const poll = (types = ['lambda_labs'], slowMs = 0) =>
    new CloudPoll({
      stateDir: dir,
      kind: 'vscode',
      list: async () => {
        const n = ++listed;
        if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
        return status(`listing-${n}`);
      },
      providerTypes: () => types,
      log: silentLogger,
      now: () => now,
    });

  it('an older listing never overwrites a newer one; each publication counts', async () => {
    const by = publisher('vscode', true);
    const a = await publishSnapshot(dir, { at: 200, by, intervalMs: 2000, providers: ['lambda_labs'], cloud: status('newer') });
    assert.equal(a?.seq, 1);
    const b = await publishSnapshot(dir, { at: 100, by, intervalMs: 2000, providers: ['lambda_labs'], cloud: status('older') });
    assert.equal(b, undefined);
    assert.equal(readSnapshot(dir)?.cloud.instances[0]?.name, 'newer');
    const c = await publishSnapshot(dir, { at: 300, by, intervalMs: 2000, providers: ['lambda_labs'], cloud: status('newest') });
    assert.equal(c?.seq, 2);
    assert.equal(fs.statSync(path.join(dir, SNAPSHOT_FILE)).mode & 0o777, 0o600);
  });

  it('fresh up to the lease’s stale time of the publisher’s interval, not a millisecond more', () => {
    assert.equal(isFresh({ at: 0, intervalMs: 2000 }, staleAfterMs(2000)), true);
    assert.equal(isFresh({ at: 0, intervalMs: 2000 }, staleAfterMs(2000) + 1), false);
    assert.equal(isFresh({ at: 0, intervalMs: 30_000 }, 90_000), true);
  });

  it('a follower renders a fresh snapshot, and lists when it is stale, of other accounts, or of another version', async () => {
    const leader = poll();
    assert.equal((await leader.tick({ leader: true, intervalMs: 2000 })).source, 'listed');
    const follower = poll();
    now += 2000;
    const r = await follower.tick({ leader: false, intervalMs: 2000, leaderIntervalMs: 2000 });
    assert.equal(r.source, 'snapshot');
    assert.equal(r.cloud.instances[0]?.name, 'listing-1');
    assert.equal(listed, 1);
    // Other accounts: the snapshot does not answer for them.
    assert.equal((await poll(['lambda_labs', 'runpod']).tick({ leader: false, intervalMs: 2000 })).source, 'listed');
    // Stale (the leader stopped): the follower lists for itself.
    now += staleAfterMs(2000) + 1;
    assert.equal((await follower.tick({ leader: false, intervalMs: 2000 })).source, 'listed');
    // A file of another version is not read.
    const file = path.join(dir, SNAPSHOT_FILE);
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), version: 2 }));
    assert.equal(readSnapshot(dir), undefined);
    assert.equal((await follower.tick({ leader: false, intervalMs: 2000 })).source, 'listed');
  });

  it('the leader reuses its listing within half an interval (events between ticks), and lists after', async () => {
    const leader = poll();
    await leader.tick({ leader: true, intervalMs: 2000 });
    now += 999;
    assert.equal((await leader.tick({ leader: true, intervalMs: 2000 })).source, 'snapshot');
    now += 1;
    assert.equal((await leader.tick({ leader: true, intervalMs: 2000 })).source, 'listed');
    assert.equal(listed, 2);
  });

  it('a user’s action always lists and publishes, whoever acts', async () => {
    await poll().tick({ leader: true, intervalMs: 2000 });
    const r = await poll().tick({ leader: false, intervalMs: 2000, fresh: true });
    assert.equal(r.source, 'listed');
    assert.equal(readSnapshot(dir)?.by.leader, false);
    assert.equal(readSnapshot(dir)?.cloud.instances[0]?.name, 'listing-2');
  });

  it('no provider account: nothing listed from a provider is shared, no file is written', async () => {
    const r = await poll([]).tick({ leader: true, intervalMs: 2000 });
    assert.equal(r.source, 'listed');
    assert.equal(fs.existsSync(path.join(dir, SNAPSHOT_FILE)), false);
  });

  it('five windows polling faster than the leader, all at once: one lists (under the lock), four render its listing', async () => {
    await poll().tick({ leader: true, intervalMs: 30_000 });
    now += 3001; // > 1.5 × 2 s
    const wins = Array.from({ length: 5 }, () => poll(['lambda_labs'], 50));
    const rs = await Promise.all(wins.map((w) => w.tick({ leader: false, intervalMs: 2000, leaderIntervalMs: 30_000 })));
    assert.equal(listed, 2, 'one listing by the leader, one by the five windows');
    assert.equal(rs.filter((r) => r.source === 'listed').length, 1);
    for (const r of rs) assert.equal(r.cloud.instances[0]?.name, 'listing-2');
    const s = readSnapshot(dir)!;
    assert.equal(s.by.leader, false);
    assert.equal(s.intervalMs, 30_000, 'published with the leader’s interval: fresh until its next tick');
    // Not faster than the leader (2 s vs 3 s): a window renders whatever the age within the stale time.
    now += 10_000;
    assert.equal((await poll().tick({ leader: false, intervalMs: 2000, leaderIntervalMs: 3000 })).source, 'snapshot');
  });
});
