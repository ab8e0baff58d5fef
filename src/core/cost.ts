/**
 * Accrued cost by a provider's billing rule, from a resource's recorded state history — not a
 * naive rate × wall clock. The history lives in the ledger, so the figure survives restarts and
 * gaps in polling: a state lasts until the next recorded change.
 *
 * Billing model: compute is charged while the resource is in one of the rule's compute states,
 * in *sessions* (a run of consecutive compute states). Each session is rounded up to the billing
 * increment and to the minimum charge; the extra seconds are charged at the price in effect when
 * the session ended (or now, for a running session). Storage is charged per second while in a
 * storage state. Prices may change over time (a price event applies from its time on).
 */

/** Tether's state words (see src/backends/cloud/provider.ts InstanceState). */
export type BillingState = 'provisioning' | 'running' | 'stopping' | 'stopped' | 'terminating' | 'terminated' | 'unknown';

export interface BillingRule {
  provider: string;
  /** States in which compute is charged. */
  computeStates: readonly BillingState[];
  /** States in which storage (disk, volume) is charged at the storage rate. */
  storageStates: readonly BillingState[];
  /** Compute is charged in whole increments of this many seconds (1 = per second). */
  incrementSeconds: number;
  /** Minimum compute charge per session, seconds. */
  minimumSeconds: number;
  /** Where the rule comes from. */
  citation: string;
  /** One sentence for the UI. */
  summary: string;
}

export interface StateEvent {
  /** ms since the epoch */
  at: number;
  state: BillingState;
}

export interface PriceEvent {
  at: number;
  computePerHour: number;
  storagePerHour?: number;
}

export interface Accrual {
  compute: number;
  storage: number;
  total: number;
  /** Compute seconds charged (after rounding and minimums). */
  billedSeconds: number;
}

function priceAt(prices: readonly PriceEvent[], t: number): PriceEvent {
  let p = prices[0]!;
  for (const x of prices) if (x.at <= t) p = x;
  return p;
}

/** ∫ rate over [from, to), with the rate changing at price events. Rate in USD/h. */
function integrate(prices: readonly PriceEvent[], from: number, to: number, rate: (p: PriceEvent) => number): number {
  if (to <= from) return 0;
  const cuts = [from, ...prices.map((p) => p.at).filter((t) => t > from && t < to), to];
  let usd = 0;
  for (let i = 0; i + 1 < cuts.length; i++) usd += (rate(priceAt(prices, cuts[i]!)) * (cuts[i + 1]! - cuts[i]!)) / 3_600_000;
  return usd;
}

/** What a resource has cost from its state history up to `nowMs`. */
export function accrue(events: readonly StateEvent[], prices: readonly PriceEvent[], rule: BillingRule, nowMs: number): Accrual {
  const ev = [...events].filter((e) => e.at <= nowMs).sort((a, b) => a.at - b.at);
  const pr = [...prices].sort((a, b) => a.at - b.at);
  if (!ev.length || !pr.length) return { compute: 0, storage: 0, total: 0, billedSeconds: 0 };
  const compute = new Set(rule.computeStates);
  const storage = new Set(rule.storageStates);
  let computeUsd = 0;
  let storageUsd = 0;
  let billedSeconds = 0;
  let sessionStart: number | undefined;
  const closeSession = (end: number) => {
    if (sessionStart === undefined) return;
    const exact = (end - sessionStart) / 1000;
    const billed = Math.max(rule.minimumSeconds, Math.ceil(exact / rule.incrementSeconds - 1e-9) * rule.incrementSeconds);
    computeUsd += integrate(pr, sessionStart, end, (p) => p.computePerHour);
    computeUsd += (priceAt(pr, end).computePerHour * Math.max(0, billed - exact)) / 3600;
    billedSeconds += billed;
    sessionStart = undefined;
  };
  for (let i = 0; i < ev.length; i++) {
    const { at, state } = ev[i]!;
    const end = i + 1 < ev.length ? ev[i + 1]!.at : state === 'terminated' ? at : nowMs;
    if (compute.has(state)) sessionStart ??= at;
    else closeSession(at);
    if (storage.has(state)) storageUsd += integrate(pr, at, end, (p) => p.storagePerHour ?? 0);
  }
  closeSession(ev[ev.length - 1]!.state === 'terminated' ? ev[ev.length - 1]!.at : nowMs);
  return { compute: computeUsd, storage: storageUsd, total: computeUsd + storageUsd, billedSeconds };
}
