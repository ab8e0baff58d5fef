/**
 * One status-bar item, created once and updated in place: what runs and what it costs.
 * Clicking it opens a quick pick of running resources with their actions.
 */
import * as vscode from 'vscode';
import { formatUsd } from '../core/format';
import type { Snapshot, TetherModel } from './model';

export function statusText(s: Snapshot): string {
  const spend = s.costSoFar > 0 ? ` · ${formatUsd(s.costSoFar)}` : '';
  return `$(pulse) ${s.running} running · ${formatUsd(s.costPerHour)}/h${spend}`;
}

export class TetherStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('tether.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;
  private last = '';

  constructor(model: TetherModel) {
    this.item.name = 'Tether';
    this.item.command = 'tether.statusMenu';
    this.sub = model.onDidChange((s) => this.render(s));
    this.render(model.snapshot);
    this.item.show();
  }

  private render(s: Snapshot): void {
    const text = statusText(s);
    const nearBudget = s.budgets.filter((b) => b.level >= 0.8);
    const warn = s.orphans.length > 0 || nearBudget.length > 0;
    const sig = `${text}|${warn}|${s.budgets.map((b) => `${b.budget.name}:${b.spent.toFixed(2)}`).join(',')}|${s.folders.map((f) => f.report?.plugins.map((p) => `${p.name}:${p.state}:${p.processes.length}`).join(',')).join(';')}`;
    if (sig === this.last) return; // nothing visible changed: leave the item alone
    this.last = sig;
    this.item.text = text;
    this.item.backgroundColor = warn ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendMarkdown(`**Tether** — ${s.running} running, ${formatUsd(s.costPerHour)}/h`);
    if (s.costSoFar > 0) tip.appendMarkdown(`, ${formatUsd(s.costSoFar)} so far`);
    tip.appendMarkdown('\n\n');
    for (const f of s.folders) {
      for (const p of f.report?.plugins ?? []) {
        if (p.processes.length) tip.appendMarkdown(`- $(circle-filled) ${p.name}: ${p.processes.length} process(es)\n`);
      }
    }
    for (const a of s.apiPlugins) if (a.processes.length || a.costPerHour) tip.appendMarkdown(`- $(extensions) ${a.title}${a.costPerHour ? `: ${formatUsd(a.costPerHour)}/h` : ''}\n`);
    if (s.orphans.length) tip.appendMarkdown(`\n$(warning) ${s.orphans.length} orphan(s) — run **Tether: Kill orphans…**\n`);
    for (const b of s.budgets) {
      tip.appendMarkdown(`\n${b.level >= 0.8 ? '$(warning)' : '$(graph)'} budget "${b.budget.name}": ${formatUsd(b.spent)} of ${formatUsd(b.budget.limitUsd)} per ${b.budget.period}\n`);
    }
    tip.appendMarkdown('\nClick for actions.');
    this.item.tooltip = tip;
    this.item.accessibilityInformation = { label: `Tether: ${s.running} running, ${formatUsd(s.costPerHour)} per hour` };
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
