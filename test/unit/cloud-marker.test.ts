// Markers that say which ledger launched an instance (issue 13 item 3) and the ledger's own id.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import * as marker from '../../src/backends/cloud/marker';
import { markedName } from '../../src/backends/cloud/provider';
import { tmpDir } from '../helpers/tmp';

const m = marker as unknown as {
  ledgerIdentity: (dir: string) => string;
  readLedgerIdentity: (dir: string) => string | undefined;
  markerOf: (tetherId: string | undefined) => { record: string; ledger?: string } | undefined;
};

describe('cloud markers name the ledger that launched the instance', () => {
  it('a state folder gets one persistent random ledger id, created once (reading never creates it)', () => {
    const dir = tmpDir('tether-ledger-id-');
    try {
      assert.equal(m.readLedgerIdentity(dir), undefined);
      assert.deepEqual(fs.readdirSync(dir), [], 'reading wrote nothing');
      const id = m.ledgerIdentity(dir);
      assert.match(id, /^[0-9a-z]{8}$/);
      assert.equal(m.ledgerIdentity(dir), id);
      assert.equal(m.readLedgerIdentity(dir), id);
      const other = tmpDir('tether-ledger-id-');
      assert.notEqual(m.ledgerIdentity(other), id);
      fs.rmSync(other, { recursive: true, force: true });
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
      assert.ok(fs.existsSync(path.join(dir, 'ledger-id')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the marker carries record and ledger, fits the strictest provider limit (Lambda: 64), and old markers still parse', () => {
    const rec = randomUUID();
    const name = markedName({ ledgerId: rec, name: 'x'.repeat(300), owner: 'k3j9x8a2' } as never);
    assert.ok(name.length <= 64, `${name.length}`);
    assert.ok(name.startsWith(`tether-${rec.slice(0, 8)}k3j9x8a2-x`));
    assert.deepEqual(m.markerOf(marker.parseMarker(name)), { record: rec.slice(0, 8), ledger: 'k3j9x8a2' });
    // Old format: record only (even when the user's name looks like another id).
    const old = `tether-${rec.slice(0, 8)}-1234abcd-run`;
    assert.deepEqual(m.markerOf(marker.parseMarker(old)), { record: rec.slice(0, 8) });
    assert.equal(markedName(rec, 'job'), `tether-${rec.slice(0, 8)}-job`);
    assert.equal(marker.parseMarker('my-own-box'), undefined);
  });
});

describe('launchIdempotently: after an ambiguous create, re-list for the settle window before any retry (issue 13 item 16)', () => {
  const inst = (ledgerId: string) => ({ id: 'i-1', provider: 'lambda_labs', gpuCount: 1, status: 'provisioning', rawStatus: 'booting', tetherId: ledgerId.slice(0, 8), metadata: {} }) as never;
  const ambiguous = new Error('timed out after the request was sent');

  it('a list that lags the create by 5× the old window still finds the instance: one create', async () => {
    const id = randomUUID();
    let creates = 0;
    let createdAt = 0;
    const got = await marker.launchIdempotently({
      ledgerId: id,
      attempts: 4,
      backoffMs: 10, // old window: 10 + 20 + 30 ms; settle window: 120 × 10 ms
      mayHaveCreated: () => true,
      list: async () => (createdAt && Date.now() - createdAt > 300 ? [inst(id)] : []),
      create: async () => {
        creates++;
        createdAt = Date.now();
        throw ambiguous;
      },
    });
    assert.equal((got as { id: string }).id, 'i-1');
    assert.equal(creates, 1);
  });

  it('when the list does not answer at the end of the window it does not create again (it cannot know)', async () => {
    const id = randomUUID();
    let creates = 0;
    let lists = 0;
    await assert.rejects(
      marker.launchIdempotently({
        ledgerId: id,
        attempts: 4,
        backoffMs: 5,
        mayHaveCreated: () => true,
        list: async () => {
          if (lists++ > 0) throw new Error('list: 503');
          return [];
        },
        create: async () => {
          creates++;
          throw ambiguous;
        },
      }),
      (err) => err === ambiguous,
    );
    assert.equal(creates, 1);
    assert.ok(lists > 3, `kept re-listing (${lists})`);
  });

  it('a list that answers, without the marker, for the whole window: then it creates again', async () => {
    const id = randomUUID();
    let creates = 0;
    const got = await marker.launchIdempotently({
      ledgerId: id,
      attempts: 2,
      backoffMs: 2,
      mayHaveCreated: () => true,
      list: async () => [],
      create: async () => {
        if (++creates === 1) throw ambiguous;
        return inst(id);
      },
    });
    assert.equal((got as { id: string }).id, 'i-1');
    assert.equal(creates, 2);
  });
});
