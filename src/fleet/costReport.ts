/**
 * The cost report: what every cloud resource in the ledger (running or ended) has cost, by its
 * provider's billing rule, from the recorded state history alone (no network).
 */
import type { BillingRule } from '../core/cost';
import type { Ledger, LedgerBody, LedgerResource } from '../core/ledger';
import { BILLING_RULES } from '../backends/cloud/registry';
import { periodStart } from '../core/budget';
import { accruedCost, billingEvents } from './cloud';
import { billingRuleOf } from './apiCost';

export { BILLING_RULES };

export interface CostLine {
  ledgerId: string;
  name: string;
  provider: string;
  instanceType: string | null;
  pricePerHour: number;
  startedAt: string;
  /** ISO time it ended, null while it runs. */
  endedAt: string | null;
  /** USD accrued since `since` (or in all). */
  cost: number;
  rule: string;
}

export interface CostReport {
  since: string | null;
  generatedAt: string;
  lines: CostLine[];
  total: number;
  byProvider: Record<string, number>;
}

/** Cost of every cloud record, accrued since `sinceMs` (default: all time). */
export function costReport(ledger: Ledger, sinceMs?: number, nowMs = Date.now()): CostReport {
  return costReportOf(ledger.read(), sinceMs, nowMs);
}

function costReportOf(body: LedgerBody, sinceMs: number | undefined, nowMs: number): CostReport {
  const lines: CostLine[] = [];
  const add = (r: LedgerResource, ended: boolean) => {
    const rule = billingRuleOf(r); // cloud records and API plugins' remote resources
    if (!rule || !r.remote) return;
    const total = accruedCost(r, rule, ended, nowMs);
    const before = sinceMs !== undefined && sinceMs > Date.parse(r.createdAt) ? accruedCost(r, rule, ended, sinceMs) : 0;
    const cost = Math.max(0, total - before);
    const endedAt = ended ? r.updatedAt : null;
    if (sinceMs !== undefined && endedAt && Date.parse(endedAt) < sinceMs) return;
    lines.push({
      ledgerId: r.id,
      name: r.plugin,
      provider: r.remote.provider,
      instanceType: r.remote.resourceType ?? null,
      pricePerHour: r.remote.estimatedCostPerHour ?? 0,
      startedAt: r.createdAt,
      endedAt,
      cost,
      rule: rule.summary,
    });
  };
  for (const r of body.resources) add(r, false);
  for (const r of body.ended) add(r, true);
  lines.sort((a, b) => b.cost - a.cost);
  const byProvider: Record<string, number> = {};
  for (const l of lines) byProvider[l.provider] = (byProvider[l.provider] ?? 0) + l.cost;
  return {
    since: sinceMs === undefined ? null : new Date(sinceMs).toISOString(),
    generatedAt: new Date(nowMs).toISOString(),
    lines,
    total: lines.reduce((s, l) => s + l.cost, 0),
    byProvider,
  };
}

export type SpendPeriod = 'day' | 'month';

export interface PeriodSpend {
  period: SpendPeriod;
  /** Start of the period (UTC, like budgets). */
  since: string;
  /** When these figures were computed (ms since the epoch); the status bar extrapolates from here. */
  at: number;
  /** USD accrued in the period by every cloud record, running or ended. */
  spent: number;
  /** USD/h billing right now (compute and storage, by each provider's rule). */
  perHour: number;
  byProvider: Record<string, { spent: number; perHour: number }>;
}

/** What a record bills per hour right now: compute in compute states, storage in storage states. */
export function currentRate(r: LedgerResource, rule: BillingRule): number {
  const ev = billingEvents(r, false);
  const state = ev[ev.length - 1]?.state;
  if (!state) return 0;
  const compute = rule.computeStates.includes(state) ? (r.remote?.estimatedCostPerHour ?? 0) : 0;
  const storage = rule.storageStates.includes(state) ? Number(r.remote?.metadata.storagePerHour ?? 0) || 0 : 0;
  return compute + storage;
}

/** Cloud records that bill right now (compute, or storage while stopped), with their rate. */
export function billingNow(resources: readonly LedgerResource[]): Array<{ ledgerId: string; name: string; provider: string; perHour: number }> {
  const out: Array<{ ledgerId: string; name: string; provider: string; perHour: number }> = [];
  for (const r of resources) {
    const rule = billingRuleOf(r);
    if (!rule) continue;
    const perHour = currentRate(r, rule);
    if (perHour > 0) out.push({ ledgerId: r.id, name: r.plugin, provider: r.remote!.provider, perHour });
  }
  return out;
}

/** Spend so far in the current day or month (UTC) and the burn rate, from the ledger alone. */
export function periodSpend(ledger: Ledger, period: SpendPeriod, nowMs = Date.now()): PeriodSpend {
  const since = periodStart(period, nowMs);
  const body = ledger.read();
  const report = costReportOf(body, since, nowMs);
  const byProvider: PeriodSpend['byProvider'] = {};
  for (const [p, spent] of Object.entries(report.byProvider)) byProvider[p] = { spent, perHour: 0 };
  for (const b of billingNow(body.resources)) (byProvider[b.provider] ??= { spent: 0, perHour: 0 }).perHour += b.perHour;
  const entries = Object.values(byProvider);
  return {
    period,
    since: new Date(since).toISOString(),
    at: nowMs,
    spent: entries.reduce((s, e) => s + e.spent, 0),
    perHour: entries.reduce((s, e) => s + e.perHour, 0),
    byProvider,
  };
}

/** The spend `ms` after the figures were taken, by the burn rate (local arithmetic: what the status bar ticks). */
export function spendAt(s: Pick<PeriodSpend, 'spent' | 'perHour' | 'at'>, nowMs: number): number {
  return s.spent + (s.perHour * Math.max(0, nowMs - s.at)) / 3_600_000;
}

/** RFC 4180 CSV of the report's lines. */
export function costCsv(r: CostReport): string {
  const q = (v: unknown) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const head = ['ledger_id', 'name', 'provider', 'instance_type', 'usd_per_hour', 'started_at', 'ended_at', 'cost_usd'];
  const rows = r.lines.map((l) => [l.ledgerId, l.name, l.provider, l.instanceType, l.pricePerHour, l.startedAt, l.endedAt, l.cost.toFixed(4)].map(q).join(','));
  return [head.join(','), ...rows].join('\r\n') + '\r\n';
}

/** Cumulative spend per provider and per resource at `points` moments from the first cloud resource until now. */
export function spendSeries(ledger: Ledger, points = 48, nowMs = Date.now()): { labels: string[]; byProvider: Record<string, number[]>; byResource: Record<string, number[]> } {
  const body = ledger.read();
  const records = [...body.resources.map((r) => ({ r, ended: false })), ...body.ended.map((r) => ({ r, ended: true }))].filter(
    ({ r }) => !!billingRuleOf(r),
  );
  if (!records.length) return { labels: [], byProvider: {}, byResource: {} };
  const start = Math.min(...records.map(({ r }) => Date.parse(r.createdAt)));
  const span = Math.max(60_000, nowMs - start);
  const times = Array.from({ length: points }, (_, i) => start + (span * i) / (points - 1));
  const byProvider: Record<string, number[]> = {};
  const byResource: Record<string, number[]> = {};
  for (const { r, ended } of records) {
    const rule = billingRuleOf(r)!;
    const row = (byProvider[r.remote!.provider] ??= times.map(() => 0));
    // Two resources of the same name (a relaunch) stay apart: the second gets its short id.
    const key = byResource[r.plugin] ? `${r.plugin} (${r.id.slice(0, 8)})` : r.plugin;
    const own = (byResource[key] = times.map(() => 0));
    times.forEach((t, i) => {
      const c = accruedCost(r, rule, ended && t >= Date.parse(r.updatedAt), t);
      row[i]! += c;
      own[i] = c;
    });
  }
  // Round away float noise (1e-18 differences would look like cliffs on a tiny axis).
  for (const row of [...Object.values(byProvider), ...Object.values(byResource)]) row.forEach((v, i) => (row[i] = Math.round(v * 1e6) / 1e6));
  const day = span > 36 * 3_600_000;
  const labels = times.map((t) => {
    const d = new Date(t);
    return day ? d.toISOString().slice(5, 16).replace('T', ' ') : d.toISOString().slice(11, 19);
  });
  return { labels, byProvider, byResource };
}
