/**
 * The policy tick: budgets (with auto-terminate), time limits, idle autostop and dead man's switch
 * pushes, applied to one poll's reading of the cloud instances. The same code runs in a VS Code
 * window's poll and in `tether watch`; no `vscode` here.
 *
 * Only the leader (see leader.ts) acts. Everyone else still gets the budget verdicts (what each
 * budget has spent, the threshold reached) so every window can show them, but terminates nothing,
 * keeps no idle clock and pushes no switch.
 */
import { describeError } from '../core/errors';
import type { Ledger } from '../core/ledger';
import type { Logger } from '../core/logger';
import type { BudgetVerdict } from '../core/budget';
import type { IdleObservation } from '../core/autostop';
import type { AutostopEvent, CloudManager, CloudStatus } from './cloud';
import type { DeadmanEvent, DeadmanKeeper } from './deadmanKeeper';
import { periodSpend, type PeriodSpend, type SpendPeriod } from './costReport';
import type { HostStatus, PluginStatus } from '../workspace/engine';
import type { Policy } from './policy';

export interface PolicyTickDeps {
  cloud: Pick<CloudManager, 'enforceBudgets' | 'enforceAutostop'>;
  deadman: Pick<DeadmanKeeper, 'tend'>;
  ledger: Ledger;
  log: Logger;
}

export interface PolicyTickInput {
  /** This poll's cloud instances (undefined: none read). */
  cloud: CloudStatus | undefined;
  /** This poll's hosts and plugins (idle autostop reads GPUs and remote plugins from them). */
  reports: ReadonlyArray<{ hosts: readonly HostStatus[]; plugins: readonly PluginStatus[] }>;
  policy: Pick<Policy, 'budgets' | 'idleAutostop'>;
  /** Time to the next tick (ms): budgets project spend over it. */
  pollMs: number;
  spendPeriod?: SpendPeriod;
  /** This process leads the tick (may terminate, stop, keep idle clocks, push switches). */
  leader: boolean;
}

export interface PolicyTickResult {
  budgets: BudgetVerdict[];
  autostop: AutostopEvent[];
  deadman: DeadmanEvent[];
  spend?: PeriodSpend;
  /** Problems of this tick, one line each (also logged). */
  errors: string[];
}

/** What idle autostop knows of a cloud instance from this poll's hosts and plugins. */
export function idleObserver(reports: PolicyTickInput['reports']): (ledgerId: string) => IdleObservation | undefined {
  return (ledgerId) => {
    const host = reports.flatMap((r) => r.hosts).find((h) => h.cloud?.ledgerId === ledgerId);
    if (!host) return undefined;
    const pluginsRunning = reports.flatMap((r) => r.plugins).filter((p) => p.kind === 'ssh' && p.host === host.host && p.processes.length > 0).length;
    return { reachable: host.state === 'connected' && !host.error, ...(host.gpus ? { gpuUtil: host.gpus.map((g) => g.utilizationPercent) } : {}), pluginsRunning };
  };
}

export async function policyTick(deps: PolicyTickDeps, input: PolicyTickInput): Promise<PolicyTickResult> {
  const { cloud, policy } = input;
  const errors: string[] = [];
  const fail = (what: string, err: unknown) => {
    const line = `${what}: ${describeError(err)}`;
    errors.push(line);
    deps.log.error(line);
  };
  let budgets: BudgetVerdict[] = [];
  if (policy.budgets.length && cloud) {
    try {
      if (input.leader) budgets = await deps.cloud.enforceBudgets(cloud, policy.budgets, input.pollMs);
      else {
        // Verdicts only: the same arithmetic with nothing to terminate, reported against the real budgets.
        const shown = await deps.cloud.enforceBudgets(cloud, policy.budgets.map((b) => ({ ...b, autoTerminate: false })), input.pollMs);
        budgets = shown.map((v, i) => ({ ...v, budget: policy.budgets[i]! }));
      }
    } catch (err) {
      fail('budgets', err);
    }
  }
  let autostop: AutostopEvent[] = [];
  if (input.leader && cloud?.instances.some((i) => i.managed && i.status === 'running')) {
    try {
      autostop = await deps.cloud.enforceAutostop(cloud, idleObserver(input.reports), policy.idleAutostop);
    } catch (err) {
      fail('autostop', err);
    }
  }
  let deadman: DeadmanEvent[] = [];
  if (input.leader && cloud?.instances.some((i) => i.deadman)) {
    try {
      deadman = await deps.deadman.tend();
    } catch (err) {
      fail("dead man's switch", err);
    }
  }
  let spend: PeriodSpend | undefined;
  try {
    spend = periodSpend(deps.ledger, input.spendPeriod ?? 'day');
  } catch (err) {
    fail('spend', err);
  }
  return { budgets, autostop, deadman, ...(spend ? { spend } : {}), errors };
}
