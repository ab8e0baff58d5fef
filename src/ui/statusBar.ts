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

/** The item's text at `nowMs` (spend extrapolated from the snapshot by its burn rate). */
export function statusText(s: Snapshot, nowMs = s.at): string {
  const sp = s.spend;
  const spent = sp ? spendAt({ ...sp, perHour: s.costPerHour }, nowMs) : s.costSoFar;
  const spend = spent > 0 || (sp && s.costPerHour > 0) ? ` · ${formatMeter(spent)} ${sp ? periodLabel(s) : 'so far'}` : '';
  return `$(pulse) ${s.running} running · ${formatUsd(s.costPerHour)}/h${spend}`;
}

export class TetherStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('tether.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;
  private last = '';
  private ticker: NodeJS.Timeout | undefined;

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
        const text = statusText(this.model.snapshot, Date.now());
        if (text !== this.item.text) this.item.text = text;
      }, 1000);
    } else if (!billing && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private render(s: Snapshot): void {
    this.schedule(s);
    const text = statusText(s, Date.now());
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
