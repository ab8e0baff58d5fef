import { strict as assert } from 'node:assert';
import '../helpers/vscodeStub';
import { meterValue, statusText, type MeterMark } from '../../src/ui/statusBar';
import type { Snapshot } from '../../src/ui/model';

/** A snapshot taken at `at` ms with `spent` USD today and `perHour` burning. */
function snap(at: number, spent: number, perHour: number, since = '2026-12-01T00:00:00.000Z'): Snapshot {
  return {
    seq: 1, at, folders: [], apiPlugins: [], orphans: [], running: 1, costPerHour: perHour, costSoFar: spent, budgets: [], cloud: undefined,
    spend: { period: 'day', since, at, spent, perHour, byProvider: {} },
  } as Snapshot;
}

describe('the status bar money meter', () => {
  const rate = 0.75; // USD/h: $0.000208 a second, seen in the meter's 4 decimals
  it('ticks between polls from the burn rate', () => {
    const s = snap(0, 0.0125, rate);
    assert.ok(meterValue(s, 2000) > meterValue(s, 1000));
    assert.match(statusText(s, 0), /\$0\.0125 today/);
  });
  it('never goes back when a poll reports less than it showed (a per-minute provider bills its first minute at launch)', () => {
    // First poll: the first minute billed in full. The meter ticks on from it for 1.5 s...
    let mark: MeterMark | undefined;
    const first = snap(0, 0.0125, rate);
    for (const t of [0, 500, 1000, 1500]) mark = { since: first.spend!.since, value: meterValue(first, t, mark), at: t };
    const shown = mark!.value;
    // ...then the next poll, still inside the first minute, says 0.0125 again.
    const again = snap(2000, 0.0125, rate);
    const v = meterValue(again, 2000, mark);
    assert.ok(v > shown, `${v} > ${shown}: it keeps ticking forward, no drop to 0.0125`);
    assert.ok(Math.abs(v - (shown + (rate * 500) / 3_600_000)) < 1e-9);
    // Later polls: never below what the ledger says, and ahead of it by at most one billing increment (a minute).
    const later = meterValue(snap(61_000, 0.025, rate), 61_000, mark);
    assert.ok(later >= 0.025 && later - 0.025 < (rate * 60) / 3600, String(later));
    assert.equal(meterValue(snap(61_000, 0.05, rate), 61_000, mark), 0.05, 'a poll that reports more wins');
    // A new day starts from the new period's figure.
    assert.equal(meterValue(snap(90_000, 0, rate, '2026-12-02T00:00:00.000Z'), 90_000, mark), 0);
  });
});
