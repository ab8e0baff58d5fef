/**
 * What each budget has spent in its current period, from the ledger alone (no provider call):
 * every cloud record in the budget's scope, running or ended, by its provider's billing rule.
 */
import { periodStart, type Budget } from '../core/budget';
import { ExitCode, TetherError } from '../core/errors';
import type { Ledger, LedgerResource } from '../core/ledger';
import { accruedCost } from './cloud';
import { billingRuleOf } from './apiCost';

export function budgetSpend(ledger: Ledger, budgets: readonly Budget[], nowMs = Date.now()): number[] {
  const body = ledger.read();
  const records: Array<{ r: LedgerResource; ended: boolean }> = [
    ...body.resources.map((r) => ({ r, ended: false })),
    ...body.ended.map((r) => ({ r, ended: true })),
  ].filter(({ r }) => !!billingRuleOf(r));
  return budgets.map((b) => {
    const start = periodStart(b.period, nowMs);
    let sum = 0;
    for (const { r, ended } of records) {
      if ((b.provider && r.remote!.provider !== b.provider) || (b.ledgerId && r.id !== b.ledgerId)) continue;
      const rule = billingRuleOf(r)!;
      const before = start > Date.parse(r.createdAt) ? accruedCost(r, rule, ended, start) : 0;
      sum += Math.max(0, accruedCost(r, rule, ended, nowMs) - before);
    }
    return sum;
  });
}

/** A budget and what it has spent in its current period (a {@link BudgetVerdict} is one). */
export interface BudgetStanding {
  budget: Budget;
  spent: number;
}

const usd = (n: number) => `$${n.toFixed(2)}`;

/**
 * The refusal of a launch that would cross a hard cap (a budget with auto-terminate, global or on
 * the launch's provider): what it has spent in its period plus the first hour of the new
 * instance is over its limit (with the price unknown, a cap already reached). Shared by the VS
 * Code wizard and `tether provision`; nothing overrides it but raising the budget.
 */
export function hardCapRefusal(standings: readonly BudgetStanding[], provider: string, instanceType: string, pricePerHour: number | undefined): TetherError | undefined {
  const price = pricePerHour !== undefined && Number.isFinite(pricePerHour) ? pricePerHour : undefined;
  const hit = standings.find(
    (v) =>
      v.budget.autoTerminate &&
      !v.budget.ledgerId &&
      (!v.budget.provider || v.budget.provider === provider) &&
      (v.spent + (price ?? 0) > v.budget.limitUsd || v.spent >= v.budget.limitUsd),
  );
  if (!hit) return undefined;
  const b = hit.budget;
  const left = Math.max(0, b.limitUsd - hit.spent);
  return new TetherError(
    `launching ${instanceType} would exceed the hard cap "${b.name}": ${usd(hit.spent)} spent + ${price === undefined ? 'an unknown price' : usd(price)} for the first hour > ${usd(b.limitUsd)} per ${b.period} (${usd(left)} left)`,
    { remedy: `Raise the budget (\`tether budget set "${b.name}" --limit USD …\`, or Tether: Set Budget…) or pick a cheaper type.`, exitCode: ExitCode.USAGE },
  );
}

/** {@link hardCapRefusal} against the spend the ledger of a state folder records (ended records too). */
export function hardCapRefusalFromLedger(ledger: Ledger, budgets: readonly Budget[], provider: string, instanceType: string, pricePerHour: number | undefined): TetherError | undefined {
  const spent = budgetSpend(ledger, budgets);
  return hardCapRefusal(budgets.map((budget, i) => ({ budget, spent: spent[i]! })), provider, instanceType, pricePerHour);
}
