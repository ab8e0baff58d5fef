// The per-user fleet layer without VS Code: the policy leader lease, the policy file, and the
// policy tick's split between the leader (acts) and the others (verdicts only).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { identify } from '../../src/core/procfs';
import { silentLogger } from '../../src/core/logger';
import { Ledger } from '../../src/core/ledger';
import type { Budget, BudgetVerdict } from '../../src/core/budget';
import { DEFAULT_IDLE_POLICY } from '../../src/core/autostop';
import { LEASE_FILE, PolicyLease, describeLeader, readLeader, staleAfterMs } from '../../src/fleet/leader';
import { POLICY_FILE, PolicyFileError, migrateSettings, readPolicy, removeBudget, setBudget, setIdleAutostop } from '../../src/fleet/policy';
import { policyTick, type PolicyTickDeps } from '../../src/fleet/policyTick';
import type { CloudStatus } from '../../src/fleet/cloud';
import { CloudProviderType } from '../../src/core/protocols';
import { tmpDir } from '../helpers/tmp';

const me = identify(process.pid)!;

describe('policy leader lease (src/fleet/leader.ts)', () => {
  it('many contenders at once (different identities, one live process): exactly one leads', async () => {
    const dir = tmpDir('tether-lease-');
    // Every contender claims this (live) process as its holder, so none can be called dead: only the lock decides.
    const contenders = Array.from({ length: 12 }, (_, i) => new PolicyLease(dir, i % 2 ? 'watch' : 'vscode', { identity: me }));
    const results = await Promise.all(contenders.map((c) => c.tryLead(30_000)));
    assert.equal(results.filter((r) => r.leader).length, 1);
    const winner = contenders[results.findIndex((r) => r.leader)]!;
    assert.ok(winner.holds());
    // Renewing keeps it; the others still do not lead.
    for (let round = 0; round < 3; round++) {
      const again = await Promise.all(contenders.map((c) => c.tryLead(30_000)));
      assert.deepEqual(again.map((r) => r.leader), contenders.map((c) => c === winner));
    }
    const losers = results.filter((r) => !r.leader);
    assert.ok(losers.every((r) => r.holder?.leading && r.holder.pid === process.pid));
  });

  it('a holder that stopped beating is replaced after three missed intervals (at least 15 s), not before', async () => {
    const dir = tmpDir('tether-lease-');
    let now = 1_000_000;
    const a = new PolicyLease(dir, 'vscode', { identity: me, now: () => now });
    const b = new PolicyLease(dir, 'watch', { identity: me, now: () => now });
    assert.equal((await a.tryLead(2000)).leader, true);
    now += staleAfterMs(2000); // 15 s: exactly at the limit, still a's
    assert.equal((await b.tryLead(30_000)).leader, false);
    now += 1;
    const took = await b.tryLead(30_000);
    assert.equal(took.leader, true);
    assert.equal((await a.tryLead(2000)).leader, false, 'a stale holder coming back does not take it back');
    assert.equal(staleAfterMs(30_000), 90_000);
  });

  it("a holder whose PID + start time no longer run is replaced at once, whatever its heartbeat", async () => {
    const dir = tmpDir('tether-lease-');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const id = await (async () => {
      for (let i = 0; i < 100; i++) {
        const x = identify(child.pid!);
        if (x) return x;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('child not seen');
    })();
    const dead = new PolicyLease(dir, 'watch', { identity: id });
    assert.equal((await dead.tryLead(60_000)).leader, true);
    const other = new PolicyLease(dir, 'vscode', { identity: me });
    assert.equal((await other.tryLead(2000)).leader, false, 'alive: not taken');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const info = readLeader(dir);
    assert.equal(info?.alive, false);
    assert.equal(info?.leading, false);
    assert.match(describeLeader(info), /nobody leads \(last: tether watch, pid \d+, \d+ s ago, gone\)/);
    assert.equal((await other.tryLead(2000)).leader, true);
  });

  it('release gives the lease up only when it is still ours', async () => {
    const dir = tmpDir('tether-lease-');
    let now = 0;
    const a = new PolicyLease(dir, 'watch', { identity: me, now: () => now });
    const b = new PolicyLease(dir, 'watch', { identity: me, now: () => now });
    await a.tryLead(1000);
    now += 60_000;
    await b.tryLead(1000); // a went stale; b leads
    await a.release();
    assert.ok(b.holds(), "a's release left b's lease alone");
    await b.release();
    assert.equal(fs.existsSync(path.join(dir, LEASE_FILE)), false);
    assert.match(describeLeader(readLeader(dir)), /^policy tick: nobody leads;/);
  });
});

describe('policy file (src/fleet/policy.ts)', () => {
  it('set, replace, remove; concurrent writers lose nothing', async () => {
    const dir = tmpDir('tether-policy-');
    assert.deepEqual(readPolicy(dir).budgets, []);
    await Promise.all(Array.from({ length: 10 }, (_, i) => setBudget(dir, { name: `b${i}`, limitUsd: i + 1, period: 'day' })));
    assert.deepEqual(readPolicy(dir).budgets.map((b) => b.name).sort(), Array.from({ length: 10 }, (_, i) => `b${i}`).sort());
    assert.deepEqual(await setBudget(dir, { name: 'b3', limitUsd: 99, period: 'month', autoTerminate: true }), { replaced: true });
    assert.deepEqual(readPolicy(dir).budgets.find((b) => b.name === 'b3'), { name: 'b3', limitUsd: 99, period: 'month', autoTerminate: true });
    await removeBudget(dir, 'b3');
    await assert.rejects(removeBudget(dir, 'b3'), /no budget named "b3"/);
    assert.equal(readPolicy(dir).budgets.length, 9);
  });

  it('refuses bad values with every problem named, and writes nothing', async () => {
    const dir = tmpDir('tether-policy-');
    await assert.rejects(setBudget(dir, { name: 'x', limitUsd: -1, period: 'week' as 'day', provider: 'nimbus', thresholds: [2] }), (err: Error) => {
      assert.match(err.message, /"limitUsd" must be a number of USD above 0, got -1/);
      assert.match(err.message, /"period" must be day, month or lifetime, got "week"/);
      assert.match(err.message, /"provider" must be one of lambda_labs, runpod, vast_ai, aws(, [a-z_]+)*, got "nimbus"/);
      assert.match(err.message, /"thresholds" must be fractions/);
      return true;
    });
    await assert.rejects(setIdleAutostop(dir, { idleMinutes: 0 }), /"idleMinutes" must be a number of at least 1, got 0/);
    assert.equal(fs.existsSync(path.join(dir, POLICY_FILE)), false);
  });

  it('a damaged file is reported (never treated as "no budgets") and never overwritten', async () => {
    const dir = tmpDir('tether-policy-');
    fs.writeFileSync(path.join(dir, POLICY_FILE), '{"format": "tether-policy/1", "budgets": [');
    assert.throws(() => readPolicy(dir), PolicyFileError);
    await assert.rejects(setBudget(dir, { name: 'x', limitUsd: 1, period: 'day' }), PolicyFileError);
    assert.equal(fs.readFileSync(path.join(dir, POLICY_FILE), 'utf8'), '{"format": "tether-policy/1", "budgets": [');
  });

  it("VS Code's settings are migrated once: valid entries copied, invalid ones reported, the file's own budgets win", async () => {
    const dir = tmpDir('tether-policy-');
    await setBudget(dir, { name: 'daily', limitUsd: 10, period: 'day' });
    const settings = {
      budgets: [{ name: 'daily', limitUsd: 50, period: 'day' }, { name: 'monthly', limitUsd: 300, period: 'month', autoTerminate: true }, { name: 'broken', limitUsd: 0, period: 'day' }],
      idleAutostop: { enabled: true, idleMinutes: 20 },
      defaultTimeLimitHours: 6,
    };
    const first = await migrateSettings(dir, settings);
    assert.deepEqual(first?.budgets, ['monthly']);
    assert.equal(first?.idle, true);
    assert.equal(first?.timeLimit, true);
    assert.equal(first?.skipped.length, 1);
    assert.match(first!.skipped[0]!, /tether\.budgets\[2\]: "limitUsd" must be a number of USD above 0/);
    const p = readPolicy(dir);
    assert.deepEqual(p.budgets.map((b) => [b.name, b.limitUsd]), [['daily', 10], ['monthly', 300]]);
    assert.deepEqual(p.idleAutostop, { ...DEFAULT_IDLE_POLICY, enabled: true, idleMinutes: 20 });
    assert.equal(p.defaultTimeLimitHours, 6);
    assert.ok(p.migratedFromSettings);
    // Once: later settings (e.g. a workspace's) change nothing.
    await removeBudget(dir, 'monthly');
    assert.equal(await migrateSettings(dir, { budgets: [{ name: 'sneaky', limitUsd: 1e6, period: 'day' }] }), undefined);
    assert.deepEqual(readPolicy(dir).budgets.map((b) => b.name), ['daily']);
  });
});

describe('policy tick (src/fleet/policyTick.ts)', () => {
  const budgets: Budget[] = [{ name: 'cap', limitUsd: 1, period: 'day', autoTerminate: true }];
  const cloud: CloudStatus = {
    instances: [{ ledgerId: 'L1', managed: true, provider: CloudProviderType.LAMBDA_LABS, providerTitle: 'Lambda Cloud', id: 'i1', name: 'box', status: 'running', rawStatus: 'active', gpuCount: 1, pricePerHour: 2, costSoFar: 3, uptimeSeconds: 10, deadman: { minutes: 5, state: 'armed', endsBilling: false, effect: '' } }],
    errors: [],
    costPerHour: 2,
    costSoFar: 3,
  };
  function deps() {
    const calls: string[] = [];
    const d: PolicyTickDeps = {
      cloud: {
        enforceBudgets: async (_s, bs) => {
          calls.push(`budgets autoTerminate=${bs.map((b) => String(!!b.autoTerminate)).join(',')}`);
          return bs.map((b): BudgetVerdict => ({ budget: b, spent: 3, level: 1, terminate: b.autoTerminate ? ['L1'] : [], projected: 3.1, projectedAfter: 3 }));
        },
        enforceAutostop: async () => {
          calls.push('autostop');
          return [];
        },
      },
      deadman: {
        tend: async () => {
          calls.push('deadman');
          return [];
        },
      },
      ledger: new Ledger(tmpDir('tether-tick-')),
      log: silentLogger,
    };
    return { d, calls };
  }

  it('the leader enforces budgets, autostop and switch pushes', async () => {
    const { d, calls } = deps();
    const r = await policyTick(d, { cloud, reports: [], policy: { budgets, idleAutostop: DEFAULT_IDLE_POLICY }, pollMs: 30_000, leader: true });
    assert.deepEqual(calls, ['budgets autoTerminate=true', 'autostop', 'deadman']);
    assert.deepEqual(r.budgets[0]?.terminate, ['L1']);
  });

  it('a window that does not lead gets the verdicts (against the real budgets) but acts on nothing', async () => {
    const { d, calls } = deps();
    const r = await policyTick(d, { cloud, reports: [], policy: { budgets, idleAutostop: DEFAULT_IDLE_POLICY }, pollMs: 2000, leader: false });
    assert.deepEqual(calls, ['budgets autoTerminate=false']);
    assert.equal(r.budgets[0]?.budget.autoTerminate, true, 'shown as the user set it');
    assert.deepEqual(r.budgets[0]?.terminate, []);
    assert.equal(r.budgets[0]?.spent, 3);
  });
});
