/**
 * Notifications about money that a poll brings: budget thresholds (Terminate… / Extend / Ignore),
 * idle-autostop and time-limit warnings (Keep Running / Terminate Now) and actions, and dead
 * man's switch events. Each is said once: the engine returns an event only when it happens.
 */
import * as vscode from 'vscode';
import type { TetherModel } from './model';

export function registerMoneyNotifications(model: TetherModel, log: vscode.LogOutputChannel): vscode.Disposable[] {
  // Budget thresholds: one notification each time a budget reaches a new level.
  const budgetLevels = new Map<string, number>();
  const budgets = model.onDidChange((s) => {
    for (const v of s.budgets) {
      const before = budgetLevels.get(v.budget.name) ?? 0;
      budgetLevels.set(v.budget.name, v.level);
      if (v.level <= before) continue;
      const msg = `Tether: budget "${v.budget.name}" at ${Math.round(v.level * 100)} %: $${v.spent.toFixed(2)} of $${v.budget.limitUsd.toFixed(2)} per ${v.budget.period}${v.terminate.length ? ` — terminated ${v.terminate.length} instance(s) to stay within it` : ''}.`;
      log.warn(msg);
      void vscode.window.showWarningMessage(msg, 'Terminate…', 'Extend', 'Ignore').then((c) => {
        if (c === 'Terminate…') void vscode.commands.executeCommand('tether.terminateInstance');
        if (c === 'Extend') void vscode.commands.executeCommand('tether.setBudget');
      });
    }
  });

  // Dead man's switches: say when one is armed, fired, or cannot be reached.
  const deadman = model.onDidChange((s) => {
    for (const e of s.deadman ?? []) {
      if (e.event === 'armed' || e.event === 're-armed') {
        log.info(`dead man's switch of ${e.name} ${e.event} (${e.detail})`);
        vscode.window.setStatusBarMessage(`Tether: dead man's switch of ${e.name} ${e.event}`, 5000);
      } else if (e.event === 'fired') {
        log.warn(`dead man's switch of ${e.name} fired at ${e.detail}`);
        void vscode.window
          .showWarningMessage(`Tether: the dead man's switch of ${e.name} fired at ${e.detail} (Tether had been silent). Check the instance: on some providers it still bills until terminated.`, 'Terminate…')
          .then((c) => {
            if (c) void vscode.commands.executeCommand('tether.terminateInstance');
          });
      } else {
        log.warn(`dead man's switch of ${e.name}: ${e.detail}`);
      }
    }
  });

  // Idle autostop and time limits: a warning with Keep Running before acting, a note after.
  const autostop = model.onDidChange((s) => {
    for (const e of s.autostop ?? []) {
      if (e.phase === 'act') {
        log.warn(`autostop acted on ${e.name}: ${e.reason}`);
        void vscode.window.showWarningMessage(`Tether stopped the bill of ${e.name}: ${e.reason}. See the ledger note and the Cloud view.`);
        continue;
      }
      const when = new Date(e.actAt).toLocaleTimeString();
      log.info(`autostop warning for ${e.name}: ${e.reason}`);
      const keep = e.kind === 'idle' ? 'Keep Running' : 'Remove Time Limit';
      void vscode.window.showWarningMessage(`Tether: ${e.name} — ${e.reason} (at ${when}).`, keep, 'Terminate Now').then((c) => {
        if (c === keep) void vscode.commands.executeCommand('tether.internal.keepRunning', e.ledgerId, e.kind);
        if (c === 'Terminate Now') void vscode.commands.executeCommand('tether.terminateInstance');
      });
    }
  });
  return [budgets, deadman, autostop];
}
