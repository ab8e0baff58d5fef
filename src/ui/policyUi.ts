/**
 * Budgets, idle autostop and the default time limit in the editor. The source of truth is the
 * policy file of the state folder (src/fleet/policy.ts), shared with the CLI and `tether watch`;
 * the old settings (`tether.budgets`, `tether.idleAutostop`, `tether.cloud.defaultTimeLimitHours`)
 * are copied into it once, from the user settings only (a workspace cannot set a budget), and
 * these commands edit the file.
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Budget, BudgetPeriod } from '../core/budget';
import { describeError } from '../core/errors';
import { PROVIDERS, emptyPolicy, migrateSettings, policyFile, readPolicy, removeBudget, setBudget, setDefaultTimeLimit, setIdleAutostop, updatePolicy, type Policy } from '../fleet/policy';
import { CLOUD_ACCOUNT_TITLES } from '../fleet/cloudAccounts';

/** Reads the policy; a damaged file is reported once (per distinct problem) and enforces nothing until fixed. */
export class PolicySource {
  private lastError = '';
  constructor(
    private readonly stateDir: () => string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  current(): Policy {
    try {
      const p = readPolicy(this.stateDir());
      this.lastError = '';
      return p;
    } catch (err) {
      const line = describeError(err);
      if (line !== this.lastError) {
        this.lastError = line;
        this.log.error(line);
        void vscode.window.showErrorMessage(`Tether: ${line}`, 'Open Policy File').then((c) => c && void vscode.commands.executeCommand('tether.openPolicyFile'));
      }
      return emptyPolicy();
    }
  }

  /** Copies the user's old settings into the policy file, once per state folder. */
  async migrate(): Promise<void> {
    const c = vscode.workspace.getConfiguration('tether');
    const user = <T>(key: string) => c.inspect<T>(key)?.globalValue;
    try {
      const r = await migrateSettings(this.stateDir(), {
        budgets: user<unknown>('budgets'),
        idleAutostop: user<unknown>('idleAutostop'),
        defaultTimeLimitHours: user<unknown>('cloud.defaultTimeLimitHours'),
      });
      if (!r) return;
      for (const s of r.skipped) this.log.error(`settings not migrated (invalid): ${s}`);
      // Once (the migration runs once per state folder); `tether budget list` and `tether status` keep saying it.
      if (r.skipped.length) void vscode.window.showWarningMessage(`Tether: ${r.skipped.length} invalid entr${r.skipped.length > 1 ? 'ies' : 'y'} of your settings ${r.skipped.length > 1 ? 'are' : 'is'} not enforced: ${r.skipped.join('; ')}. Set the budget again with "Tether: Set Budget…" (or \`tether budget set\`).`, 'Open Policy File').then((c2) => c2 && void vscode.commands.executeCommand('tether.openPolicyFile'));
      const what = [r.budgets.length ? `budget(s) ${r.budgets.map((b) => `"${b}"`).join(', ')}` : '', r.idle ? 'idle autostop' : '', r.timeLimit ? 'the default time limit' : ''].filter(Boolean);
      if (!what.length && !r.skipped.length) return;
      const msg = `Tether: ${what.length ? what.join(', ') : 'nothing'} moved from your settings into ${policyFile(this.stateDir())}, shared with the \`tether\` CLI and \`tether watch\`. Edit them with "Tether: Set Budget…" (or \`tether budget\`); the settings are no longer read.${r.skipped.length ? ` ${r.skipped.length} invalid entr${r.skipped.length > 1 ? 'ies were' : 'y was'} skipped (see the Tether log).` : ''}`;
      this.log.info(msg);
      void vscode.window.showInformationMessage(msg, 'Open Policy File').then((c2) => c2 && void vscode.commands.executeCommand('tether.openPolicyFile'));
    } catch (err) {
      this.log.error(`migrating settings into the policy file: ${describeError(err)}`);
    }
  }
}

export function registerPolicyCommands(stateDir: () => string, refresh: () => unknown): vscode.Disposable[] {
  const run = (fn: () => Promise<string | undefined>) => async () => {
    try {
      const done = await fn();
      if (done) {
        void vscode.window.showInformationMessage(`Tether: ${done}`);
        await refresh();
      }
    } catch (err) {
      void vscode.window.showErrorMessage(`Tether: ${describeError(err)}`);
    }
  };
  const positive = (v: string) => (Number.isFinite(Number(v)) && Number(v) > 0 ? undefined : 'A number above 0.');
  return [
    vscode.commands.registerCommand('tether.setBudget', run(async () => {
      const existing = readPolicy(stateDir()).budgets;
      const name = await vscode.window.showInputBox({ title: 'Set Budget (1/4): name', prompt: existing.length ? `An existing name replaces that budget (${existing.map((b) => b.name).join(', ')}).` : 'e.g. daily GPUs', validateInput: (v) => (v.trim() ? undefined : 'A name.') });
      if (!name) return undefined;
      const old = existing.find((b) => b.name === name.trim());
      const limit = await vscode.window.showInputBox({ title: 'Set Budget (2/4): limit in USD', value: old ? String(old.limitUsd) : '', validateInput: positive });
      if (!limit) return undefined;
      const period = (await vscode.window.showQuickPick(['day', 'month', 'lifetime'], { title: 'Set Budget (3/4): period (UTC days and months)' })) as BudgetPeriod | undefined;
      if (!period) return undefined;
      const scope = await vscode.window.showQuickPick([{ label: 'All providers', value: undefined as string | undefined }, ...PROVIDERS.map((p) => ({ label: CLOUD_ACCOUNT_TITLES[p as keyof typeof CLOUD_ACCOUNT_TITLES] ?? 'Kubernetes clusters', value: p as string | undefined }))], { title: 'Set Budget (4/4): scope' });
      if (!scope) return undefined;
      const hard = await vscode.window.showQuickPick(['Warn only', 'Warn, and terminate what would cross the cap'], { title: 'At the cap' });
      if (!hard) return undefined;
      const b: Budget = { name: name.trim(), limitUsd: Number(limit), period, ...(scope.value ? { provider: scope.value } : {}), ...(hard.startsWith('Warn,') ? { autoTerminate: true } : {}) };
      const { replaced } = await setBudget(stateDir(), b);
      return `${replaced ? 'replaced' : 'added'} budget "${b.name}": $${b.limitUsd.toFixed(2)} per ${b.period}${b.autoTerminate ? ', auto-terminate' : ''}`;
    })),
    vscode.commands.registerCommand('tether.removeBudget', run(async () => {
      const budgets = readPolicy(stateDir()).budgets;
      if (!budgets.length) return 'no budget is set';
      const pick = await vscode.window.showQuickPick(budgets.map((b) => ({ label: b.name, description: `$${b.limitUsd.toFixed(2)} per ${b.period}` })), { title: 'Remove Budget' });
      if (!pick) return undefined;
      await removeBudget(stateDir(), pick.label);
      return `removed budget "${pick.label}"`;
    })),
    vscode.commands.registerCommand('tether.setIdleAutostop', run(async () => {
      const cur = readPolicy(stateDir()).idleAutostop;
      const on = await vscode.window.showQuickPick(['On', 'Off'], { title: `Idle autostop (now ${cur.enabled ? 'on' : 'off'})` });
      if (!on) return undefined;
      if (on === 'Off') {
        await setIdleAutostop(stateDir(), { enabled: false });
        return 'idle autostop off';
      }
      const minutes = await vscode.window.showInputBox({ title: 'Idle minutes before acting', value: String(cur.idleMinutes), validateInput: (v) => (Number(v) >= 1 ? undefined : 'At least 1.') });
      if (!minutes) return undefined;
      const p = await setIdleAutostop(stateDir(), { enabled: true, idleMinutes: Number(minutes) });
      return `idle autostop on: after ${p.idleMinutes} min with every GPU below ${p.gpuUtilBelowPercent} %`;
    })),
    vscode.commands.registerCommand('tether.setDefaultTimeLimit', run(async () => {
      const cur = readPolicy(stateDir()).defaultTimeLimitHours;
      const h = await vscode.window.showInputBox({ title: 'Default time limit for new instances (hours; 0: none)', value: String(cur), validateInput: (v) => (v.trim() !== '' && Number(v) >= 0 ? undefined : 'A number of hours, 0 for none.') });
      if (h === undefined) return undefined;
      await setDefaultTimeLimit(stateDir(), Number(h));
      return Number(h) ? `every instance Tether launches gets a ${Number(h)} h time limit` : 'no default time limit';
    })),
    vscode.commands.registerCommand('tether.openPolicyFile', async () => {
      const file = policyFile(stateDir());
      // Created (empty policy) when missing; a damaged file is opened as it is.
      if (!fs.existsSync(file)) await updatePolicy(stateDir(), () => undefined, 'creating the policy file').catch(() => undefined);
      await vscode.window.showTextDocument(vscode.Uri.file(file));
    }),
  ];
}
