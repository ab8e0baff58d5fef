// Accrual by each provider's billing rule, against hand-worked examples.
import { strict as assert } from 'node:assert';
import { accrue, type PriceEvent, type StateEvent } from '../../src/core/cost';
import { LAMBDA_BILLING } from '../../src/backends/cloud/lambda/lambda';
import { RUNPOD_BILLING } from '../../src/backends/cloud/runpod/runpod';
import { VAST_BILLING } from '../../src/backends/cloud/vastai/vastai';
import { AWS_BILLING } from '../../src/backends/cloud/aws/aws';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const at = (m: number, s = 0) => T0 + m * 60_000 + s * 1000;
const ev = (...xs: Array<[number, StateEvent['state']]>): StateEvent[] => xs.map(([t, state]) => ({ at: t, state }));
const price = (computePerHour: number, storagePerHour?: number, t = T0): PriceEvent => ({ at: t, computePerHour, ...(storagePerHour === undefined ? {} : { storagePerHour }) });
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);

describe('accrual by billing rule (hand-worked examples)', () => {
  it('Lambda: per started minute from launch (booting bills) to terminate', () => {
    // booting 10:00:00, active 10:02:30, terminated 10:47:10 → 47 min 10 s → 48 minutes × $1.29/h
    const a = accrue(ev([at(0), 'provisioning'], [at(2, 30), 'running'], [at(47, 10), 'terminated']), [price(1.29)], LAMBDA_BILLING, at(60));
    close(a.compute, (48 / 60) * 1.29); // 1.032
    assert.equal(a.billedSeconds, 48 * 60);
  });

  it('Lambda: terminated within the first minute still pays one minute', () => {
    const a = accrue(ev([at(0), 'provisioning'], [at(0, 20), 'terminated']), [price(1.29)], LAMBDA_BILLING, at(5));
    close(a.total, 1.29 / 60); // 0.0215
  });

  it('EC2: pending is free, 30 s of running pays the 60 s minimum', () => {
    const a = accrue(ev([at(0), 'provisioning'], [at(0, 40), 'running'], [at(1, 10), 'terminating'], [at(1, 30), 'terminated']), [price(1.006)], AWS_BILLING, at(10));
    close(a.compute, 1.006 / 60); // 0.016766…
    assert.equal(a.billedSeconds, 60);
  });

  it('EC2: a poll gap of an hour: the running state lasts until the next recorded change', () => {
    // running from 10:00, next event (stopped) recorded only at 12:00 → 2 h × $1.006
    const a = accrue(ev([at(0), 'running'], [at(120), 'stopped']), [price(1.006, 0.01)], AWS_BILLING, at(180));
    close(a.compute, 2.012);
    // EBS bills while running and stopped: 3 h × $0.01
    close(a.storage, 0.03);
  });

  it('EC2: every start has its own 60 s minimum', () => {
    const a = accrue(ev([at(0), 'running'], [at(0, 10), 'stopped'], [at(5), 'running'], [at(5, 10), 'terminated']), [price(3.6)], AWS_BILLING, at(10));
    close(a.compute, 2 * (3.6 / 60)); // two starts × 60 s × $0.001/s
  });

  it('RunPod: per second while running; a stopped pod pays its volume', () => {
    const a = accrue(ev([at(0), 'running'], [at(60), 'stopped'], [at(660), 'terminated']), [price(0.44, 0.01)], RUNPOD_BILLING, at(700));
    close(a.compute, 0.44); // 1 h
    close(a.storage, 0.1); // 10 h stopped × $0.01
    close(a.total, 0.54);
  });

  it('Vast.ai: a price change mid-run; storage from creation', () => {
    // loading 5 min, running 60 min (price $0.50 → $0.60 after 30 min), stopped 60 min, destroyed
    const prices = [price(0.5, 0.02), { at: at(35), computePerHour: 0.6, storagePerHour: 0.02 }];
    const a = accrue(ev([at(0), 'provisioning'], [at(5), 'running'], [at(65), 'stopped'], [at(125), 'terminated']), prices, VAST_BILLING, at(200));
    close(a.compute, 0.25 + 0.3);
    close(a.storage, (125 / 60) * 0.02);
  });

  it('a resource still running accrues up to now, and nothing before its first event', () => {
    const a = accrue(ev([at(10), 'running']), [price(2)], RUNPOD_BILLING, at(40));
    close(a.total, 1); // 30 min × $2/h
    assert.equal(accrue([], [price(2)], RUNPOD_BILLING, at(40)).total, 0);
  });

  it('every provider file states its rule with a citation', () => {
    for (const r of [LAMBDA_BILLING, RUNPOD_BILLING, VAST_BILLING, AWS_BILLING]) {
      assert.match(r.citation, /^https:\/\//);
      assert.ok(r.summary.length > 10);
    }
  });
});
