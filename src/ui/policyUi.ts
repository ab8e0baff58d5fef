/**
 * Budgets, idle autostop and the default time limit in the editor. The source of truth is the
 * policy file of the state folder (src/fleet/policy.ts), shared with the CLI and `tether watch`;
 * the old settings (`tether.budgets`, `tether.idleAutostop`, `tether.cloud.defaultTimeLimitHours`)
 * are copied into it once, from the user settings only (a workspace cannot set a budget), and
 * these commands edit the file.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { emptyPolicy, migrateSettings, policyFile, readPolicy, type Policy } from '../fleet/policy';

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

/** The policy commands; their work (src/ui/policyCommands.ts) loads on first use. */
export function registerPolicyCommands(stateDir: () => string, refresh: () => unknown): vscode.Disposable[] {
  return POLICY_COMMANDS.map((id) =>
    vscode.commands.registerCommand(id, async () => (await import('./policyCommands')).policyCommandHandlers(stateDir, refresh)[id]!()),
  );
}

export const POLICY_COMMANDS = ['tether.setBudget', 'tether.removeBudget', 'tether.setIdleAutostop', 'tether.setDefaultTimeLimit', 'tether.openPolicyFile'] as const;
