// Budgets with a simulated clock (@sinonjs/fake-timers fakes Date) and an in-memory provider
// (a test double of the CloudProvider interface: no real or fake server is needed for this logic).
import { strict as assert } from 'node:assert';
import * as FakeTimers from '@sinonjs/fake-timers';
import { Ledger } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import { CloudProviderType } from '../../src/core/protocols';
import { evaluateBudgets, periodStart, type Budget } from '../../src/core/budget';
import type { BillingRule } from '../../src/core/cost';
import { CloudManager, accruedCost } from '../../src/fleet/cloud';
import type { CloudInstance, CloudProvider, InstanceType, LaunchRequest } from '../../src/backends/cloud/provider';
import { tmpDir } from '../helpers/tmp';

const PER_SECOND: BillingRule = { provider: 'custom', computeStates: ['running'], storageStates: [], incrementSeconds: 1, minimumSeconds: 0, citation: 'https://example.invalid/test-rule', summary: 'per second while running (test rule)' };

/** In-memory provider: launches are running at once, terminations immediate. */
class MemoryProvider implements CloudProvider {
  readonly type = CloudProviderType.CUSTOM;
  readonly title = 'Memory cloud';
  readonly billing = PER_SECOND;
  readonly instances = new Map<string, CloudInstance>();
  terminated: Array<{ id: string; at: number }> = [];
  async listInstanceTypes(): Promise<InstanceType[]> {
    return [{ name: 'big', gpuCount: 8, gpuType: 'H100', pricePerHour: 36 }];
  }
  async listInstances() {
    return [...this.instances.values()];
  }
  async describe(id: string) {
    return this.instances.get(id);
  }
  async launch(req: LaunchRequest) {
    const i: CloudInstance = { id: `i-${this.instances.size + 1}`, provider: this.type, name: `tether-${req.ledgerId.slice(0, 8)}-${req.name}`, instanceType: 'big', gpuCount: 8, gpuType: 'H100', status: 'running', rawStatus: 'running', pricePerHour: 36, tetherId: req.ledgerId.slice(0, 8), metadata: {} };
    this.instances.set(i.id, i);
    return i;
  }
  async terminate(id: string) {
    const i = this.instances.get(id);
    if (i && i.status !== 'terminated') {
      i.status = 'terminated';
      i.rawStatus = 'terminated';
      this.terminated.push({ id, at: Date.now() });
    }
  }
  consoleUrl() {
    return 'https://example.invalid';
  }
}

describe('budgets (simulated clock, in-memory provider)', () => {
  let clock: FakeTimers.InstalledClock;
  const T0 = Date.parse('2026-11-23T10:00:00Z');
  beforeEach(() => {
    clock = FakeTimers.install({ now: T0, toFake: ['Date'] });
  });
  afterEach(() => clock.uninstall());

  it('an autoTerminate cap terminates within one poll of crossing, and nothing beyond the cap is accrued', async () => {
    const ledger = new Ledger(tmpDir('tether-budget-'));
    const provider = new MemoryProvider();
    const owner = { kind: 'cli' as const, pid: process.pid, startTime: 0, host: 'test' };
    const cloud = new CloudManager(ledger, owner, () => [provider], silentLogger, () => Date.now());
    await cloud.provision(provider.type, { name: 'train', instanceType: 'big', pricePerHour: 36 }); // $0.01 per second
    const budget: Budget = { name: 'GPU cap', limitUsd: 5, period: 'lifetime', autoTerminate: true };
    const pollMs = 60_000; // $0.60 per poll interval
    const spentAtPolls: number[] = [];
    let polls = 0;
    while (!provider.terminated.length && polls < 100) {
      clock.tick(pollMs);
      polls++;
      const status = await cloud.status();
      const [v] = await cloud.enforceBudgets(status, [budget], pollMs);
      spentAtPolls.push(v!.spent);
    }
    // $0.60 a minute: after 8 polls $4.80 is spent and the next poll would reach $5.40 > $5.
    assert.equal(polls, 8, `terminated at poll ${polls}: ${spentAtPolls.map((s) => s.toFixed(2))}`);
    assert.ok(Math.abs(spentAtPolls[6]! - 4.2) < 1e-6 && spentAtPolls[6]! + 0.6 <= 5, 'the poll before did not need to act');
    const record = ledger.read().ended.find((r) => r.plugin === 'train')!;
    assert.match(record.history.map((h) => h.note).join('\n'), /terminated by budget "GPU cap" \(\$5\.00 per lifetime\): \$4\.80 spent, \$5\.40 by the next poll/);
    clock.tick(3_600_000);
    const final = accruedCost(record, PER_SECOND, true, Date.now());
    assert.ok(final <= budget.limitUsd, `accrued $${final} stays within the $5 cap`);
    assert.ok(Math.abs(final - 4.8) < 1e-6, `nothing accrues after termination ($${final})`);
  });

  it('a budget counts instances that ended earlier in its period, clipped to the period (#13 item 5)', async () => {
    // Yesterday 23:50: "a" runs 20 min across midnight ($0.01/s), ends; only its 10 min today count.
    clock.setSystemTime(Date.parse('2026-11-22T23:50:00Z'));
    const ledger = new Ledger(tmpDir('tether-budget-ended-'));
    const provider = new MemoryProvider();
    const owner = { kind: 'cli' as const, pid: process.pid, startTime: 0, host: 'test' };
    const cloud = new CloudManager(ledger, owner, () => [provider], silentLogger, () => Date.now());
    const a = await cloud.provision(provider.type, { name: 'a', instanceType: 'big', pricePerHour: 36 });
    clock.tick(20 * 60_000);
    await cloud.terminate(a);
    assert.ok(ledger.read().ended.some((r) => r.plugin === 'a'), 'a ended');
    // Today: "b" runs 13 min ($7.80). Spent today = $6 + $7.80 = $13.80; one poll more ($0.60) crosses $14.
    await cloud.provision(provider.type, { name: 'b', instanceType: 'big', pricePerHour: 36 });
    clock.tick(13 * 60_000);
    const day: Budget = { name: 'daily', limitUsd: 14, period: 'day', autoTerminate: true };
    const life: Budget = { name: 'all time', limitUsd: 1000, period: 'lifetime' };
    const [v, l] = await cloud.enforceBudgets(await cloud.status(), [day, life], 60_000);
    assert.ok(Math.abs(v!.spent - 13.8) < 1e-6, `today's spend counts the ended instance's part of today: $${v!.spent}`);
    assert.ok(Math.abs(l!.spent - 19.8) < 1e-6, `lifetime counts all of it: $${l!.spent}`);
    assert.equal(v!.terminate.length, 1, 'the running instance is terminated before crossing the cap');
    assert.equal(provider.terminated.length, 2, 'b was terminated by the budget');
    assert.ok(ledger.read().ended.find((r) => r.plugin === 'b')!.history.some((h) => /terminated by budget "daily"/.test(h.note ?? '')));
  });

  it('warns at 50 %, 80 %, 100 % and never terminates without autoTerminate', () => {
    const item = (spent: number, rate = 36) => ({ ledgerId: 'a', provider: 'custom', name: 'a', ratePerHour: rate, spentInPeriod: () => spent });
    const b: Budget = { name: 'daily', limitUsd: 10, period: 'day' };
    assert.deepEqual(evaluateBudgets([b], [item(4.9)], 60_000).map((v) => v.level), [0]);
    assert.deepEqual(evaluateBudgets([b], [item(5)], 60_000).map((v) => v.level), [0.5]);
    assert.deepEqual(evaluateBudgets([b], [item(8.5)], 60_000).map((v) => v.level), [0.8]);
    const over = evaluateBudgets([b], [item(12)], 60_000)[0]!;
    assert.equal(over.level, 1);
    assert.deepEqual(over.terminate, []);
  });

  it('terminates the most expensive first, only as much as needed; scopes by provider', () => {
    const items = [
      { ledgerId: 'small', provider: 'runpod', name: 's', ratePerHour: 0.6, spentInPeriod: () => 4 },
      { ledgerId: 'large', provider: 'runpod', name: 'l', ratePerHour: 60, spentInPeriod: () => 4 },
      { ledgerId: 'other', provider: 'aws', name: 'o', ratePerHour: 600, spentInPeriod: () => 0 },
    ];
    const [v] = evaluateBudgets([{ name: 'runpod', provider: 'runpod', limitUsd: 9, period: 'month', autoTerminate: true }], items, 60_000);
    assert.deepEqual(v!.terminate, ['large']);
  });

  it('periods start at UTC midnight and on the first of the month', () => {
    const now = Date.parse('2026-11-23T15:30:00Z');
    assert.equal(new Date(periodStart('day', now)).toISOString(), '2026-11-23T00:00:00.000Z');
    assert.equal(new Date(periodStart('month', now)).toISOString(), '2026-11-01T00:00:00.000Z');
    assert.equal(periodStart('lifetime', now), 0);
  });
});
