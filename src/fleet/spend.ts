/**
 * What each budget has spent in its current period, from the ledger alone (no provider call):
 * every cloud record in the budget's scope, running or ended, by its provider's billing rule.
 */
import { periodStart, type Budget } from '../core/budget';
import type { Ledger, LedgerResource } from '../core/ledger';
import { accruedCost } from '../engine/cloud';
import { BILLING_RULES } from '../engine/costReport';

export function budgetSpend(ledger: Ledger, budgets: readonly Budget[], nowMs = Date.now()): number[] {
  const body = ledger.read();
  const records: Array<{ r: LedgerResource; ended: boolean }> = [
    ...body.resources.map((r) => ({ r, ended: false })),
    ...body.ended.map((r) => ({ r, ended: true })),
  ].filter(({ r }) => r.kind === 'cloud' && !!r.remote && !!BILLING_RULES[r.remote.provider]);
  return budgets.map((b) => {
    const start = periodStart(b.period, nowMs);
    let sum = 0;
    for (const { r, ended } of records) {
      if ((b.provider && r.remote!.provider !== b.provider) || (b.ledgerId && r.id !== b.ledgerId)) continue;
      const rule = BILLING_RULES[r.remote!.provider]!;
      const before = start > Date.parse(r.createdAt) ? accruedCost(r, rule, ended, start) : 0;
      sum += Math.max(0, accruedCost(r, rule, ended, nowMs) - before);
    }
    return sum;
  });
}
