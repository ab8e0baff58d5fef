/**
 * Budgets: caps in USD over a period, global, per provider or per resource. Warn at thresholds;
 * with `autoTerminate`, stop what would cross the cap *before* the next poll, so nothing beyond
 * the cap is accrued (the decision looks one poll ahead at the current burn rate).
 */

export type BudgetPeriod = 'day' | 'month' | 'lifetime';

export interface Budget {
  /** Shown in messages ("daily GPU budget"). */
  name: string;
  limitUsd: number;
  period: BudgetPeriod;
  /** Whole scope when both are absent. */
  provider?: string;
  ledgerId?: string;
  /** Fractions of the limit that warn; default [0.5, 0.8, 1]. */
  thresholds?: number[];
  /** Terminate what would cross the cap before the next poll. Default false. */
  autoTerminate?: boolean;
}

/** One billing resource as the budget sees it. */
export interface SpendItem {
  ledgerId: string;
  provider: string;
  name: string;
  /** USD accrued within the budget's period (see {@link periodStart}). */
  spentInPeriod: (period: BudgetPeriod) => number;
  /** Current burn rate, USD/h (0 when not billing). */
  ratePerHour: number;
}

export interface BudgetVerdict {
  budget: Budget;
  spent: number;
  /** Highest threshold reached (0 when none). */
  level: number;
  /** Resources to terminate now (autoTerminate only), most expensive first. */
  terminate: string[];
  /** Spend projected at the next poll if nothing is done. */
  projected: number;
  /** Spend projected at the next poll once `terminate` is done. */
  projectedAfter: number;
}

/** Start of the period containing `nowMs` (UTC days and months; lifetime: 0). */
export function periodStart(period: BudgetPeriod, nowMs: number): number {
  if (period === 'lifetime') return 0;
  const d = new Date(nowMs);
  return period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * Evaluates every budget. A budget with autoTerminate asks to terminate, most expensive first,
 * as many billing resources as it takes for the spend projected at the next poll
 * (spent + rate × poll interval) to stay within the limit.
 */
export function evaluateBudgets(budgets: readonly Budget[], items: readonly SpendItem[], pollMs: number): BudgetVerdict[] {
  return budgets.map((b) => {
    const inScope = items.filter((i) => (!b.provider || i.provider === b.provider) && (!b.ledgerId || i.ledgerId === b.ledgerId));
    const spent = inScope.reduce((s, i) => s + i.spentInPeriod(b.period), 0);
    const ahead = (i: SpendItem) => (i.ratePerHour * pollMs) / 3_600_000;
    const projected = spent + inScope.reduce((s, i) => s + ahead(i), 0);
    let projectedAfter = projected;
    const thresholds = [...(b.thresholds ?? [0.5, 0.8, 1])].sort((x, y) => x - y);
    const level = thresholds.filter((t) => spent >= t * b.limitUsd).pop() ?? 0;
    const terminate: string[] = [];
    if (b.autoTerminate && projected > b.limitUsd) {
      for (const i of [...inScope].filter((x) => x.ratePerHour > 0).sort((x, y) => y.ratePerHour - x.ratePerHour)) {
        if (projectedAfter <= b.limitUsd) break;
        terminate.push(i.ledgerId);
        projectedAfter -= ahead(i);
      }
    }
    return { budget: b, spent, level, terminate, projected, projectedAfter };
  });
}
