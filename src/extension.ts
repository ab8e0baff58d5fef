/**
 * Wires Tether into VS Code: the model, the tree, the status bar, the commands, the refresh
 * manager and the config diagnostics. Logic lives in src/core, src/backends, src/fleet, src/workspace and src/ui.
 */
import * as vscode from 'vscode';
import type { TetherApi } from './api';
import { defaultStateDir } from './core/ledger';
import { describeError } from './core/errors';
import { registerCommandsLazily } from './ui/lazyCommands';
import { ConfigDiagnostics } from './ui/configDiagnostics';
import { TetherModel } from './ui/model';
import { RefreshManager } from './ui/refreshManager';
import { TetherStatusBar } from './ui/statusBar';
import { TetherTreeProvider } from './ui/treeProvider';
import { SshPrompts } from './ui/sshPrompts';
import { CloudKeys } from './ui/cloudKeys';
import { createProviders } from './fleet/cloudAccounts';
import { registerCloudPricesCommand } from './ui/cloudPrices';
import type { CloudProvider } from './backends/cloud/provider';
import { PolicySource, registerPolicyCommands } from './ui/policyUi';
import { CloseGuard } from './ui/closeGuardUi';
import { registerMoneyNotifications } from './ui/moneyNotifications';

type CleanupOnExit = 'none' | 'localPlugins' | 'everything';

/** Deactivation never holds VS Code's shutdown longer than this. */
const SHUTDOWN_BUDGET_MS = 3000;

let onDeactivate: (() => Promise<void>) | undefined;

function settings() {
  const c = vscode.workspace.getConfiguration('tether');
  return {
    pollMs: Math.min(60_000, Math.max(500, (Number(c.get<number>('pollIntervalSeconds', 2)) || 2) * 1000)), // package.json's bounds, also for a hand-edited value
    graceMs: Math.max(0, c.get<number>('stopGraceSeconds', 5) * 1000),
    confirm: c.get<boolean>('confirmDestructiveActions', true),
    cleanupOnExit: c.get<CleanupOnExit>('cleanupOnExit', 'localPlugins'),
    stateDir: c.get<string>('stateDirectory', '').trim() || undefined,
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<TetherApi> {
  const activateStart = performance.now();
  const log = vscode.window.createOutputChannel('Tether', { log: true });
  context.subscriptions.push(log);
  const stateDir = () => settings().stateDir ?? defaultStateDir();
  log.info(`Tether activating (state folder ${stateDir()})`);

  // Cloud API keys live in SecretStorage; provider clients are rebuilt when they change.
  const cloudKeys = new CloudKeys(context.secrets);
  let cloudProviders: CloudProvider[] = [];
  context.subscriptions.push(
    cloudKeys,
    cloudKeys.onDidChange(() => {
      cloudProviders = createProviders(cloudKeys.current, log, stateDir());
      void model.refresh('config');
    }),
  );

  // Key passphrases live in SecretStorage; unknown host keys are accepted only by the user.
  const prompts = new SshPrompts(context.secrets);
  // Background polls never open a dialog: an unknown host key or a missing passphrase then shows
  // on the host's row until the user starts something there or clicks Connect.
  // The model reads the poll interval budgets project over from the refresh manager, made below.
  const refreshHolder: { current?: RefreshManager } = {};
  const policy = new PolicySource(stateDir, log);
  await policy.migrate();
  const model: TetherModel = new TetherModel(log, stateDir, {
    passphrase: async (keyFile, o) => (model.isInteractive ? prompts.passphrase(keyFile, o.retry) : prompts.storedPassphrase(keyFile)),
    onPassphraseRejected: (keyFile) => prompts.forgetPassphrase(keyFile),
    onUnknownKey: async (fingerprint, info) => model.isInteractive && prompts.trustHostKey(`${info.host}:${info.port}`, fingerprint, info.knownHostsFile),
  }, () => vscode.workspace.getConfiguration('tether').get<string[]>('sshHosts', []).filter((h) => typeof h === 'string' && /^[^\s'"`$\\;|&<>(){}]+$/.test(h)),
  () => cloudProviders,
  () => ({
    // Budgets and idle autostop come from the state folder's policy file (shared with the CLI and `tether watch`).
    budgets: policy.current().budgets,
    // Budgets project spend over the time to the next poll, which is slower when unfocused.
    pollMs: refreshHolder.current?.currentIntervalMs() ?? settings().pollMs,
    spendPeriod: vscode.workspace.getConfiguration('tether').get<string>('spendPeriod', 'day') === 'month' ? 'month' : 'day',
    idle: policy.current().idleAutostop,
  }));
  context.subscriptions.push(prompts, model, prompts.onDidChangePassphrase((keyFile) => model.forgetSshPassphrase(keyFile)));
  // Read after activation returns (SecretStorage answers over IPC); polls wait for it (below).
  const keysLoaded = cloudKeys.load();
  keysLoaded.catch((err: unknown) => log.error(`cloud keys: ${describeError(err)}`));
  const folders = () => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  model.setFolders(folders());

  // The window-close guard: a record when the last window closes (or died) while something bills.
  const closeGuard = new CloseGuard(stateDir, log, () => refresh.request('action'));
  context.subscriptions.push(closeGuard);
  const guardOnClose = () => closeGuard.onClose();

  // Unfocused, only the leader window keeps polling (slower) while something bills.
  const refresh: RefreshManager = new RefreshManager(model, () => settings().pollMs, log, {
    intervalMs: () => Math.min(600, Math.max(5, Number(vscode.workspace.getConfiguration('tether').get<number>('backgroundPollSeconds', 30)) || 30)) * 1000,
    isLeader: () => closeGuard.isLeader(),
  });
  refreshHolder.current = refresh;
  refresh.holdUntil(keysLoaded);
  context.subscriptions.push(refresh);
  refresh.watchStateDir(stateDir());

  const tree = new TetherTreeProvider(model);
  const view = vscode.window.createTreeView('tether.resources', { treeDataProvider: tree, showCollapseAll: true });
  context.subscriptions.push(tree, view);
  context.subscriptions.push(
    model.onDidChange((s) => {
      const closed = s.folders.find((f) => f.report?.closedWhileBilling)?.report?.closedWhileBilling;
      const tip = [s.running > 0 ? `${s.running} running` : '', closed ? `billed $${closed.spentSince.toFixed(2)} while VS Code was closed` : ''].filter(Boolean).join(' · ');
      view.badge = s.running > 0 || closed ? { value: s.running + (closed ? 1 : 0), tooltip: tip } : undefined;
      void vscode.commands.executeCommand('setContext', 'tether.hasOrphans', s.orphans.length > 0);
    }),
    view.onDidChangeVisibility((e) => e.visible && refresh.request('event')),
  );

  context.subscriptions.push(new TetherStatusBar(model));

  const diagnostics = new ConfigDiagnostics();
  context.subscriptions.push(diagnostics);
  let lastConfigErrors = '';
  const onConfigChanged = () => {
    const errors = diagnostics.update(model.folders);
    const text = errors.map((e) => e.oneLine()).join('\n');
    if (text && text !== lastConfigErrors) {
      log.error(text);
      const first = errors[0]!;
      const where = (p: (typeof first.problems)[number]) => `${p.path || '/'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`;
      const summary = first.problems.slice(0, 3).map(where).join('; ') + (first.problems.length > 3 ? ` (+${first.problems.length - 3} more)` : '');
      void vscode.window.showErrorMessage(`Tether: .vscode/tether.json has ${first.problems.length} problem(s): ${summary}`, 'Open tether.json').then((c) => {
        if (c) void vscode.commands.executeCommand('tether.openConfig', errors[0]!.file.replace(/[\\/]\.vscode[\\/]tether\.json$/, ''));
      });
    }
    lastConfigErrors = text;
    refresh.request('config');
  };
  const configWatcher = vscode.workspace.createFileSystemWatcher('**/.vscode/tether.json');
  context.subscriptions.push(
    configWatcher,
    configWatcher.onDidChange(onConfigChanged),
    configWatcher.onDidCreate(onConfigChanged),
    configWatcher.onDidDelete(onConfigChanged),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      model.setFolders(folders());
      onConfigChanged();
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('tether.pollIntervalSeconds') || e.affectsConfiguration('tether.backgroundPollSeconds')) refresh.restart();
      if (e.affectsConfiguration('tether.sshHosts') || e.affectsConfiguration('tether.budgets') || e.affectsConfiguration('tether.spendPeriod') || e.affectsConfiguration('tether.idleAutostop')) refresh.request('config');
      if (e.affectsConfiguration('tether.stateDirectory')) {
        model.setFolders(folders());
        refresh.watchStateDir(stateDir());
        refresh.request('config');
      }
    }),
  );

  context.subscriptions.push(
    ...registerCommandsLazily({ model, refresh, log, graceMs: () => settings().graceMs, confirm: () => settings().confirm, cloudKeys }),
  );

  context.subscriptions.push(...registerPolicyCommands(stateDir, () => refresh.request('action')));
  context.subscriptions.push(vscode.commands.registerCommand('tether.showCostReport', async () => (await import('./ui/costReportView')).showCostReport(context, model)));
  context.subscriptions.push(
    registerCloudPricesCommand({
      cloudKeys,
      stateDir,
      log,
      onRefreshed: () => {
        cloudProviders = createProviders(cloudKeys.current, log, stateDir());
        return refresh.request('config');
      },
    }),
  );

  // Not contributed (so not in the palette): lets in-editor tests read what the UI renders.
  context.subscriptions.push(vscode.commands.registerCommand('tether.internal.snapshot', () => model.snapshot));

  onDeactivate = async () => {
    const mode = settings().cleanupOnExit;
    if (mode === 'none') {
      const left = await model.detachOwned();
      if (left.length) log.info(`on exit: left running (cleanupOnExit = none): ${left.join(', ')}`);
      guardOnClose();
      return;
    }
    // Each plugin's own grace (else the setting), bounded by the shutdown budget (src/core/grace.ts).
    const work = model.cleanup(mode === 'everything' ? 'all' : 'local', { settingMs: settings().graceMs, capMs: SHUTDOWN_BUDGET_MS - 1000 }).then((r) => {
      if (r.stopped.length) log.info(`on exit: stopped ${r.stopped.join(', ')}`);
      for (const e of r.errors) log.error(`on exit: ${e}`);
    });
    await Promise.race([work, new Promise((r) => setTimeout(r, SHUTDOWN_BUDGET_MS))]);
    guardOnClose();
  };

  context.subscriptions.push(...registerMoneyNotifications(model, log));

  onConfigChanged();
  // Activation returns now (it stays cheap in every window); the first poll and what it finds
  // (orphans, what billed while VS Code was closed) follow.
  void (async () => {
    await refresh.request('startup');
    if (model.snapshot.orphans.length) {
      const n = model.snapshot.orphans.length;
      log.warn(`${n} orphaned resource(s) found: ${model.snapshot.orphans.map((o) => `${o.name} (${o.orphanReason})`).join(', ')}`);
      void vscode.window
        .showWarningMessage(`Tether found ${n} orphaned resource(s) still running from an earlier session.`, 'Kill Orphans…', 'Show')
        .then((c) => {
          if (c === 'Kill Orphans…') void vscode.commands.executeCommand('tether.killOrphans');
          if (c === 'Show') void vscode.commands.executeCommand('tether.resources.focus');
        });
    }
    await closeGuard.showAtStart(model, () => refresh.request('action'));
    log.info('Tether ready');
  })().catch((err: unknown) => log.error(`startup: ${describeError(err)}`));
  log.info(`Tether activated in ${(performance.now() - activateStart).toFixed(1)} ms; the first poll follows`);
  return model.apiSurface;
}

export async function deactivate(): Promise<void> {
  try {
    await onDeactivate?.();
  } catch (err) {
    console.error(`Tether: cleanup on exit failed: ${describeError(err)}`);
  }
}
