// The SSH part of the fleet snapshot (src/fleet/snapshot.ts): the cloud part and the SSH part are
// published separately into one file and neither drops the other; an older SSH reading never
// overwrites a newer one; a damaged SSH part is dropped (the windows then poll themselves); a
// reading is shown only while fresh.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CloudProviderType } from '../../src/core/protocols';
import type { CloudStatus } from '../../src/fleet/cloud';
import { staleAfterMs } from '../../src/fleet/leader';
import { publishSnapshot, publishSshReading, publisher, readSnapshot, readSshReading, SNAPSHOT_FILE, type SshSnapshot } from '../../src/fleet/snapshot';
import { tmpDir } from '../helpers/tmp';

const cloud: CloudStatus = {
  instances: [{ ledgerId: null, managed: false, provider: CloudProviderType.LAMBDA_LABS, providerTitle: 'Lambda Cloud', id: 'i1', name: 'i1', status: 'running', rawStatus: 'active', gpuCount: 1, pricePerHour: 1, costSoFar: 0, uptimeSeconds: 1 }],
  errors: [],
  costPerHour: 0,
  costSoFar: 0,
};
const reading = (at: number): SshSnapshot => ({
  at,
  intervalMs: 2000,
  by: publisher('vscode', true),
  hosts: { box: { host: 'box', target: 'me@box:22', state: 'connected' } },
  records: { r1: [{ host: 'box', pid: 10, ppid: 1, startTime: 5, startedAt: new Date(0).toISOString(), command: 'sleep 600', state: 'S', cpuPercent: null, rssBytes: 1, escaped: false }], r2: null },
});

describe('fleet snapshot: the SSH part', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir('tether-snapshot-ssh-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the SSH reading and the cloud listing are published apart into one file; neither drops the other', async () => {
    assert.equal(await publishSshReading(dir, reading(1000), () => 1000), true);
    let s = readSnapshot(dir)!;
    assert.deepEqual(s.providers, [], 'no provider listed yet');
    assert.equal(s.at, 0, 'the empty cloud part is never fresh');
    assert.equal(s.ssh?.records.r2, null, 'unanswered is kept as such');
    await publishSnapshot(dir, { at: 2000, by: publisher('vscode', true), intervalMs: 2000, providers: ['lambda_labs'], cloud }, () => 2000);
    s = readSnapshot(dir)!;
    assert.equal(s.cloud.instances.length, 1);
    assert.equal(s.ssh?.at, 1000, 'the cloud publication kept the SSH part');
    assert.equal(await publishSshReading(dir, reading(3000), () => 3000), true);
    s = readSnapshot(dir)!;
    assert.equal(s.ssh?.at, 3000);
    assert.equal(s.at, 2000, 'the SSH publication kept the cloud part');
    assert.equal(s.cloud.instances.length, 1);
    assert.equal(fs.statSync(path.join(dir, SNAPSHOT_FILE)).mode & 0o777, 0o600);
  });

  it('an older SSH reading never overwrites a newer one', async () => {
    await publishSshReading(dir, reading(5000), () => 5000);
    assert.equal(await publishSshReading(dir, reading(4000), () => 6000), false);
    assert.equal(readSnapshot(dir)!.ssh?.at, 5000);
  });

  it('shown only while fresh (the lease’s stale time of its publisher’s interval); a damaged SSH part is dropped, the cloud part kept', async () => {
    await publishSshReading(dir, reading(10_000), () => 10_000);
    assert.ok(readSshReading(dir, 10_000 + staleAfterMs(2000)));
    assert.equal(readSshReading(dir, 10_000 + staleAfterMs(2000) + 1), undefined);
    const file = path.join(dir, SNAPSHOT_FILE);
    const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    raw.ssh.records = 'oops';
    fs.writeFileSync(file, JSON.stringify(raw));
    const s = readSnapshot(dir);
    assert.ok(s, 'the snapshot itself is still read');
    assert.equal(s.ssh, undefined);
    assert.equal(readSshReading(dir, 10_000), undefined);
  });
});
