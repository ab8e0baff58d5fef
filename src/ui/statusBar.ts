/**
 * One status-bar item, created once and updated in place: what runs, what it burns per hour and
 * what it has cost today (or this month, per `tether.spendPeriod`). The spend ticks every second
 * from local arithmetic (the last poll's figures plus rate × elapsed time, no network per tick);
 * each poll sets the exact figure again. Clicking it opens a quick pick of actions.
 */
import * as vscode from 'vscode';
import { formatUsd } from '../core/format';
import { spendAt } from '../fleet/costReport';
import { providerTitle } from '../fleet/cloudAccounts';
import type { Snapshot, TetherModel } from './model';

/** A money meter: four decimals under $10, so a cheap instance is seen to tick; cents above. */
export function formatMeter(n: number): string {
  return Math.abs(n) < 10 ? `$${n.toFixed(4)}` : formatUsd(n);
}


export function periodLabel(s: Snapshot): string {
  return s.spend?.period === 'month' ? 'this month' : 'today';
}

/** What the meter last showed: it never goes back within one period (see {@link meterValue}). */
export interface MeterMark {
  since: string;
  value: number;
  at: number;
  /** The burn rate when it was shown: the floor never ticks on faster (a rate that started later would invent spend). */
  perHour?: number;
}

/**
 * The meter's value at `nowMs`: the snapshot's spend extrapolated by its burn rate, and never
 * less than what the meter already showed in the same period, ticked on by the same rate. A poll
 * can report less than the meter showed: a per-minute provider bills its first minute in full at
 * launch, so the ledger's figure stays flat for that minute while the meter ticks on from it.
 */
export function meterValue(s: Snapshot, nowMs: number, mark?: MeterMark): number {
  const sp = s.spend;
  if (!sp) return s.costSoFar;
  const fromPoll = spendAt({ ...sp, perHour: s.costPerHour }, nowMs);
  if (!mark || mark.since !== sp.since) return fromPoll;
  return Math.max(fromPoll, spendAt({ spent: mark.value, perHour: Math.min(s.costPerHour, mark.perHour ?? s.costPerHour), at: mark.at }, nowMs));
}

/** The item's text at `nowMs` (spend extrapolated from the snapshot by its burn rate). */
export function statusText(s: Snapshot, nowMs = s.at, mark?: MeterMark): string {
  const sp = s.spend;
  const spent = meterValue(s, nowMs, mark);
  const spend = spent > 0 || (sp && s.costPerHour > 0) ? ` · ${formatMeter(spent)} ${sp ? periodLabel(s) : 'so far'}` : '';
  return `$(pulse) ${s.running} running · ${formatUsd(s.costPerHour)}/h${spend}`;
}

export class TetherStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('tether.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;
  private last = '';
  private ticker: NodeJS.Timeout | undefined;
  private mark: MeterMark | undefined;

  /** The text at `nowMs`, remembering what the meter showed. */
  private text(s: Snapshot, nowMs: number): string {
    const text = statusText(s, nowMs, this.mark);
    if (s.spend) this.mark = { since: s.spend.since, value: meterValue(s, nowMs, this.mark), at: nowMs, perHour: s.costPerHour };
    return text;
  }

  constructor(private readonly model: TetherModel) {
    this.item.name = 'Tether';
    this.item.command = 'tether.statusMenu';
    this.sub = model.onDidChange((s) => this.render(s));
    this.render(model.snapshot);
    this.item.show();
  }

  /** Ticks once a second while something bills; stops when nothing does. */
  private schedule(s: Snapshot): void {
    const billing = s.costPerHour > 0 && !!s.spend;
    if (billing && !this.ticker) {
      this.ticker = setInterval(() => {
        const text = this.text(this.model.snapshot, Date.now());
        if (text !== this.item.text) this.item.text = text;
      }, 1000);
    } else if (!billing && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private render(s: Snapshot): void {
    this.schedule(s);
    const text = this.text(s, Date.now());
    const nearBudget = s.budgets.filter((b) => b.level >= 0.8);
    const warn = s.orphans.length > 0 || nearBudget.length > 0;
    const sig = `${s.running}|${s.costPerHour}|${s.spend?.spent}|${warn}|${s.budgets.map((b) => `${b.budget.name}:${b.spent.toFixed(2)}`).join(',')}|${s.folders.map((f) => f.report?.plugins.map((p) => `${p.name}:${p.state}:${p.processes.length}`).join(',')).join(';')}`;
    this.item.text = text;
    if (sig === this.last) return; // nothing else visible changed: leave the rest alone
    this.last = sig;
    this.item.backgroundColor = warn ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendMarkdown(`**Tether** — ${s.running} running, ${formatUsd(s.costPerHour)}/h`);
    if (s.spend) tip.appendMarkdown(`, ${formatUsd(s.spend.spent)} ${periodLabel(s)} (since ${s.spend.since.slice(0, 16).replace('T', ' ')} UTC)`);
    else if (s.costSoFar > 0) tip.appendMarkdown(`, ${formatUsd(s.costSoFar)} so far`);
    tip.appendMarkdown('\n\n');
    const providers = Object.entries(s.spend?.byProvider ?? {}).filter(([, v]) => v.spent > 0 || v.perHour > 0);
    if (providers.length) {
      tip.appendMarkdown(`| provider | ${periodLabel(s)} | $/h |\n|:--|--:|--:|\n`);
      for (const [p, v] of providers.sort((a, b) => b[1].spent - a[1].spent)) {
        tip.appendMarkdown(`| ${providerTitle(p)} | ${formatUsd(v.spent)} | ${formatUsd(v.perHour)} |\n`);
      }
      tip.appendMarkdown('\n');
    }
    for (const f of s.folders) {
      for (const p of f.report?.plugins ?? []) {
        if (p.processes.length) tip.appendMarkdown(`- $(circle-filled) ${p.name}: ${p.processes.length} process(es)\n`);
      }
    }
    for (const a of s.apiPlugins) if (a.processes.length || a.costPerHour) tip.appendMarkdown(`- $(extensions) ${a.title}${a.costPerHour ? `: ${formatUsd(a.costPerHour)}/h, ${formatUsd(a.costSoFar)} so far` : ''}\n`);
    if (s.orphans.length) tip.appendMarkdown(`\n$(warning) ${s.orphans.length} orphan(s) — run **Tether: Kill orphans…**\n`);
    for (const b of s.budgets) {
      tip.appendMarkdown(`\n${b.level >= 0.8 ? '$(warning)' : '$(graph)'} budget "${b.budget.name}": ${formatUsd(b.spent)} of ${formatUsd(b.budget.limitUsd)} per ${b.budget.period}\n`);
    }
    tip.appendMarkdown('\nClick for actions.');
    this.item.tooltip = tip;
    this.item.accessibilityInformation = { label: `Tether: ${s.running} running, ${formatUsd(s.costPerHour)} per hour` };
  }

  dispose(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.sub.dispose();
    this.item.dispose();
  }
}
