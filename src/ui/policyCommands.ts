/** The policy commands' work (loaded on their first use; src/ui/policyUi.ts registers them). */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Budget, BudgetPeriod } from '../core/budget';
import { describeError } from '../core/errors';
import { PROVIDERS, policyFile, readPolicy, removeBudget, setBudget, setDefaultTimeLimit, setIdleAutostop, updatePolicy } from '../fleet/policy';
import { CLOUD_ACCOUNT_TITLES } from '../fleet/cloudAccounts';

export function policyCommandHandlers(stateDir: () => string, refresh: () => unknown): Record<string, () => Promise<unknown>> {
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
  return {
    'tether.setBudget': run(async () => {
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
    }),
    'tether.removeBudget': run(async () => {
      const budgets = readPolicy(stateDir()).budgets;
      if (!budgets.length) return 'no budget is set';
      const pick = await vscode.window.showQuickPick(budgets.map((b) => ({ label: b.name, description: `$${b.limitUsd.toFixed(2)} per ${b.period}` })), { title: 'Remove Budget' });
      if (!pick) return undefined;
      await removeBudget(stateDir(), pick.label);
      return `removed budget "${pick.label}"`;
    }),
    'tether.setIdleAutostop': run(async () => {
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
    }),
    'tether.setDefaultTimeLimit': run(async () => {
      const cur = readPolicy(stateDir()).defaultTimeLimitHours;
      const h = await vscode.window.showInputBox({ title: 'Default time limit for new instances (hours; 0: none)', value: String(cur), validateInput: (v) => (v.trim() !== '' && Number(v) >= 0 ? undefined : 'A number of hours, 0 for none.') });
      if (h === undefined) return undefined;
      await setDefaultTimeLimit(stateDir(), Number(h));
      return Number(h) ? `every instance Tether launches gets a ${Number(h)} h time limit` : 'no default time limit';
    }),
    'tether.openPolicyFile': async () => {
      const file = policyFile(stateDir());
      // Created (empty policy) when missing; a damaged file is opened as it is.
      if (!fs.existsSync(file)) await updatePolicy(stateDir(), () => undefined, 'creating the policy file').catch(() => undefined);
      await vscode.window.showTextDocument(vscode.Uri.file(file));
    },
  };
}
