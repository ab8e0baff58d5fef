/**
 * The policy tick without VS Code (`tether watch`): each tick takes or renews the policy lease
 * (leader.ts); the leader reads the policy file, polls what bills (providers, SSH hosts) and runs
 * the same policy tick as a VS Code window (policyTick.ts). A watcher that does not lead does
 * nothing but say who does.
 */
import type { Engine } from '../workspace/engine';
import type { Logger } from '../core/logger';
import { PolicyLease, type LeaderInfo } from './leader';
import { policyTick, type PolicyTickResult } from './policyTick';
import { readPolicy } from './policy';
import { publishSnapshot, publisher, sshTick } from './snapshot';
import { describeError } from '../core/errors';

export interface WatchTick {
  at: number;
  leader: boolean;
  /** Who leads (this watcher when `leader`). */
  holder: LeaderInfo | undefined;
  /** Only when leading. */
  result?: PolicyTickResult;
  /** One line per thing done or warned about (terminations, stops, warnings, switch events). */
  lines: string[];
}

export class PolicyWatcher {
  readonly lease: PolicyLease;
  private lastTickMs = 0;

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly intervalMs: number,
    lease?: PolicyLease,
    /** The provider types it has accounts for (published with its listing: windows with the same accounts render it). */
    private readonly providerTypes: () => string[] = () => [],
  ) {
    this.lease = lease ?? new PolicyLease(engine.ledger.stateDir, 'watch');
  }

  async tick(): Promise<WatchTick> {
    const started = Date.now();
    // The lease covers the interval plus this tick's own duration (a slow provider must not cost the lease).
    const { leader, holder } = await this.lease.tryLead(this.intervalMs + this.lastTickMs);
    if (!leader) return { at: started, leader, holder, lines: [] };
    const policy = readPolicy(this.engine.ledger.stateDir);
    const ssh = sshTick(this.engine.ssh, { stateDir: this.engine.ledger.stateDir, kind: 'watch', leader: true, intervalMs: this.intervalMs + this.lastTickMs, log: this.log });
    const report = await this.engine.status();
    await ssh.end(); // the windows show what it found of the SSH hosts
    // One poller per user: the windows render this listing instead of asking the providers (src/fleet/snapshot.ts).
    const providers = this.providerTypes();
    if (providers.length) {
      try {
        await publishSnapshot(this.engine.ledger.stateDir, { at: started, by: publisher('watch', true), intervalMs: this.intervalMs + this.lastTickMs, providers, cloud: report.cloud });
      } catch (err) {
        this.log.warn(`fleet snapshot: not published: ${describeError(err)}`);
      }
    }
    const result = await policyTick(
      { cloud: this.engine.cloud, deadman: this.engine.deadman, ledger: this.engine.ledger, log: this.log },
      // Budgets look one tick ahead: the next tick comes an interval (plus this tick's time) from now.
      { cloud: report.cloud, reports: [report], policy, pollMs: this.intervalMs + this.lastTickMs, leader: true },
    );
    this.lastTickMs = Date.now() - started;
    const lines: string[] = [];
    const names = new Map(report.cloud.instances.map((i) => [i.ledgerId, i] as const));
    for (const v of result.budgets) {
      for (const id of v.terminate) {
        const i = names.get(id);
        lines.push(`terminated ${i?.name ?? id}${i ? ` (${i.providerTitle} ${i.id ?? ''})` : ''}: budget "${v.budget.name}" ($${v.budget.limitUsd.toFixed(2)} per ${v.budget.period}): $${v.spent.toFixed(2)} spent, $${v.projected.toFixed(2)} by the next tick`);
      }
    }
    for (const e of result.autostop) lines.push(`${e.phase === 'act' ? (e.kind === 'idle' ? 'autostop acted on' : 'time limit ended') : 'warning:'} ${e.name}: ${e.reason}`);
    for (const e of result.deadman) lines.push(`dead man's switch of ${e.name}: ${e.event} (${e.detail})`);
    return { at: started, leader, holder, result, lines };
  }
}
