/**
 * Period spend (today / this month, UTC) and the status bar's per-second extrapolation, from
 * hand-made ledger records with known state histories (no network, no real clock).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Ledger, type LedgerResource } from '../../src/core/ledger';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { periodSpend, spendAt, spendSeries } from '../../src/fleet/costReport';
import { tmpDir } from '../helpers/tmp';

const T = (iso: string) => `2026-11-${iso}Z`;

function record(id: string, provider: CloudProviderType, price: number, history: Array<[string, LedgerResource['state'], string?]>, storagePerHour = 0): LedgerResource {
  const last = history[history.length - 1]!;
  return {
    id,
    kind: 'cloud',
    plugin: id,
    executionMode: PluginExecutionMode.CLOUD_GPU,
    state: last[1],
    createdAt: T(history[0]![0]),
    updatedAt: T(last[0]),
    processes: [],
    remote: remoteResourceInfo({ provider, instanceId: `i-${id}`, estimatedCostPerHour: price, status: 'running', metadata: storagePerHour ? { storagePerHour } : {} }),
    history: history.map(([at, state, note]) => ({ at: T(at), state, ...(note ? { note } : {}) })),
  };
}

describe('period spend and the ticking meter', () => {
  let dir: string;
  let ledger: Ledger;
  beforeEach(() => {
    dir = tmpDir('tether-spend-');
    ledger = new Ledger(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const now = Date.parse(T('23T10:00:00.000'));

  it('today counts only what accrued since 00:00 UTC; this month counts it all; the rate is what bills now', async () => {
    await ledger.update((b) => {
      // Lambda, running since 08:00 today at $0.75/h: 2 h = $1.50 today.
      b.resources.push(record('a', CloudProviderType.LAMBDA_LABS, 0.75, [['23T08:00:00.000', 'starting'], ['23T08:00:00.000', 'running', 'cloud:running']]));
      // RunPod, stopped since yesterday 23:00 with its volume billing $0.02/h: compute yesterday only, storage 10 h today.
      b.resources.push(
        record('b', CloudProviderType.RUNPOD, 1, [['22T21:00:00.000', 'starting'], ['22T21:00:00.000', 'running', 'cloud:running'], ['22T23:00:00.000', 'stopped', 'cloud:stopped']], 0.02),
      );
      // Vast.ai, ended: ran 22:00 yesterday → 02:00 today at $0.50/h: $1.00 today, $2.00 in the month.
      b.ended.push(
        record('c', CloudProviderType.VAST_AI, 0.5, [['22T22:00:00.000', 'starting'], ['22T22:00:00.000', 'running', 'cloud:running'], ['23T02:00:00.000', 'stopped', 'cloud:terminated']]),
      );
    });
    const day = periodSpend(ledger, 'day', now);
    assert.equal(day.since, '2026-11-23T00:00:00.000Z');
    assert.ok(Math.abs(day.byProvider.lambda_labs!.spent - 1.5) < 1e-9, String(day.byProvider.lambda_labs!.spent));
    assert.ok(Math.abs(day.byProvider.runpod!.spent - 0.2) < 1e-9, String(day.byProvider.runpod!.spent));
    assert.ok(Math.abs(day.byProvider.vast_ai!.spent - 1.0) < 1e-9, String(day.byProvider.vast_ai!.spent));
    assert.ok(Math.abs(day.spent - 2.7) < 1e-9);
    // Burning now: the Lambda instance and the stopped pod's volume; the ended Vast instance nothing.
    assert.ok(Math.abs(day.perHour - 0.77) < 1e-9, String(day.perHour));
    assert.equal(day.byProvider.vast_ai!.perHour, 0);

    const month = periodSpend(ledger, 'month', now);
    assert.equal(month.since, '2026-11-01T00:00:00.000Z');
    // RunPod: 2 h compute at $1 + 11 h of volume at $0.02 (compute 21:00 → 23:00, storage from 23:00 until 10:00).
    assert.ok(Math.abs(month.byProvider.runpod!.spent - (2 + 11 * 0.02)) < 1e-9, String(month.byProvider.runpod!.spent));
    assert.ok(Math.abs(month.byProvider.vast_ai!.spent - 2.0) < 1e-9);
  });

  it('the meter extrapolates by the burn rate between polls and never runs backwards', () => {
    const s = { spent: 1.5, perHour: 0.75, at: now };
    assert.equal(spendAt(s, now), 1.5);
    assert.ok(Math.abs(spendAt(s, now + 60_000) - 1.5125) < 1e-12);
    assert.ok(Math.abs(spendAt(s, now + 3_600_000) - 2.25) < 1e-12);
    assert.equal(spendAt(s, now - 5000), 1.5, 'a clock step backwards does not lower the figure');
  });

  it('the report series stacks by provider or by resource; a relaunch under the same name stays apart', async () => {
    await ledger.update((b) => {
      b.ended.push(record('first-0001', CloudProviderType.VAST_AI, 0.5, [['23T06:00:00.000', 'starting'], ['23T06:00:00.000', 'running', 'cloud:running'], ['23T07:00:00.000', 'stopped', 'cloud:terminated']]));
      b.resources.push({ ...record('second-002', CloudProviderType.VAST_AI, 0.5, [['23T08:00:00.000', 'starting'], ['23T08:00:00.000', 'running', 'cloud:running']]), plugin: 'first-0001' });
      b.resources.push(record('lam', CloudProviderType.LAMBDA_LABS, 1, [['23T09:00:00.000', 'starting'], ['23T09:00:00.000', 'running', 'cloud:running']]));
    });
    const s = spendSeries(ledger, 5, now);
    // The running one keeps the name; the earlier, ended one gets its short id.
    assert.deepEqual(Object.keys(s.byResource).sort(), ['first-0001', 'first-0001 (first-00)', 'lam']);
    const last = (row: number[] | undefined) => row![row!.length - 1]!;
    // At 10:00: the ended Vast run $0.50, the relaunch 2 h = $1.00, Lambda 1 h = $1.00.
    assert.ok(Math.abs(last(s.byResource['first-0001 (first-00)']) - 0.5) < 1e-6);
    assert.ok(Math.abs(last(s.byResource['first-0001']) - 1) < 1e-6);
    assert.ok(Math.abs(last(s.byProvider.vast_ai) - 1.5) < 1e-6, 'the provider stack is the sum of its resources');
    assert.ok(Math.abs(last(s.byProvider.lambda_labs) - 1) < 1e-6);
    assert.equal(s.labels.length, 5);
  });

  it('an empty ledger spends nothing and burns nothing', () => {
    const s = periodSpend(ledger, 'day', now);
    assert.deepEqual([s.spent, s.perHour, Object.keys(s.byProvider).length], [0, 0, 0]);
  });
});
