/**
 * Every Tether command. Each takes the tree node it was invoked on, or asks with a quick pick
 * when run from the palette. Destructive ones confirm with a modal that names what will stop;
 * long ones show progress; failures offer to open the log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EXAMPLE_CONFIG, configPath } from '../core/config';
import { describeError } from '../core/errors';
import { resolveGraceMs } from '../core/grace';
import type { PluginStatus } from '../workspace/engine';
import type { CloudKeys } from './cloudKeys';
import { isLambdaKeyApi, pickLambdaSshKey } from './lambdaSshKey';
import { formatUsd } from '../core/format';
import { CLOUD_ACCOUNT_TITLES, providerDescriptor, type CloudAccountKind } from '../fleet/cloudAccounts';
import { shutdownEffectOf, type CloudView } from '../fleet/cloud';
import type { TetherModel } from './model';
import type { RefreshManager } from './refreshManager';
import type { TreeNode } from './treeProvider';
import { statusText } from './statusBar';
import { readPolicy } from '../fleet/policy';
import { hardCapRefusal } from '../fleet/spend';

export interface CommandDeps {
  model: TetherModel;
  refresh: RefreshManager;
  log: vscode.LogOutputChannel;
  graceMs: () => number;
  confirm: () => boolean;
  cloudKeys: CloudKeys;
}

type PluginRef = { folder: string; status: PluginStatus };

function pluginsOf(model: TetherModel, filter: (p: PluginStatus) => boolean): PluginRef[] {
  return model.snapshot.folders.flatMap((f) => (f.report?.plugins ?? []).filter(filter).map((status) => ({ folder: f.folder, status })));
}

async function pickPlugin(model: TetherModel, filter: (p: PluginStatus) => boolean, placeHolder: string, none: string): Promise<PluginRef | undefined> {
  await model.refresh('manual');
  const refs = pluginsOf(model, filter);
  if (!refs.length) {
    void vscode.window.showInformationMessage(none);
    return undefined;
  }
  const multi = model.snapshot.folders.length > 1;
  const picked = await vscode.window.showQuickPick(
    refs.map((r) => ({
      label: r.status.name,
      description: `${r.status.state}${r.status.processes.length ? ` · ${r.status.processes.length} process(es)` : ''}`,
      detail: `${multi ? `${path.basename(r.folder)}: ` : ''}${r.status.command}`,
      ref: r,
    })),
    { placeHolder, matchOnDetail: true, ignoreFocusOut: true },
  );
  return picked?.ref;
}

function refFromNode(node: unknown): PluginRef | undefined {
  const n = node as TreeNode | undefined;
  if (n?.kind === 'plugin') return { folder: n.folder, status: n.status };
  return undefined;
}

const pidList = (p: PluginStatus) => p.processes.map((x) => x.pid).join(', ');

async function confirm(deps: CommandDeps, message: string, detail: string, action: string): Promise<boolean> {
  if (!deps.confirm()) return true;
  const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, action);
  return choice === action;
}

async function showError(deps: CommandDeps, err: unknown, logPath?: string | null): Promise<void> {
  const text = describeError(err);
  deps.log.error(text);
  const actions = logPath ? ['Show Plugin Log', 'Open Tether Log'] : ['Open Tether Log'];
  const choice = await vscode.window.showErrorMessage(`Tether: ${text}`, ...actions);
  if (choice === 'Open Tether Log') deps.log.show(true);
  if (choice === 'Show Plugin Log' && logPath) await openLog(logPath);
}

async function openLog(file: string): Promise<void> {
  if (!fs.existsSync(file)) {
    void vscode.window.showInformationMessage(`No log yet: ${file}`);
    return;
  }
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  const editor = await vscode.window.showTextDocument(doc, { preview: true });
  const last = doc.lineCount - 1;
  editor.revealRange(new vscode.Range(last, 0, last, 0));
}

function withProgress<T>(title: string, task: () => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: false }, task);
}

/**
 * Read-only documents for fetched logs (container, remote): not dirty, nothing to save. With
 * `follow`, the log is fetched again every 2 s while the document is visible (like `tail -f`:
 * an editor scrolled to the end stays at the end), until it is closed.
 */
const readOnlyDocs = new Map<string, string>();
const followers = new Map<string, NodeJS.Timeout>();
const readOnlyChanged = new vscode.EventEmitter<vscode.Uri>();
const READONLY_SCHEME = 'tether-log';
const FOLLOW_MS = 2000;
let followLog: vscode.LogOutputChannel | undefined;
async function showReadOnly(name: string, text: string, follow?: () => Promise<string>): Promise<void> {
  const uri = vscode.Uri.from({ scheme: READONLY_SCHEME, path: `/${name}`, query: String(Date.now()) });
  const key = uri.toString();
  readOnlyDocs.set(key, text);
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.languages.setTextDocumentLanguage(doc, 'log');
  const editor = await vscode.window.showTextDocument(doc, { preview: true });
  const last = doc.lineCount - 1;
  editor.revealRange(new vscode.Range(last, 0, last, 0));
  if (!follow || followers.has(key)) return;
  let busy = false;
  followers.set(
    key,
    setInterval(async () => {
      const shown = vscode.window.visibleTextEditors.find((e) => e.document === doc);
      if (!shown || busy) return;
      busy = true;
      try {
        const fresh = await follow();
        if (fresh === readOnlyDocs.get(key)) return;
        const atEnd = (shown.visibleRanges[shown.visibleRanges.length - 1]?.end.line ?? 0) >= shown.document.lineCount - 2;
        readOnlyDocs.set(key, fresh);
        readOnlyChanged.fire(uri);
        if (atEnd) setTimeout(() => shown.revealRange(new vscode.Range(shown.document.lineCount - 1, 0, shown.document.lineCount - 1, 0)), 50);
      } catch (err) {
        followLog?.debug(`following ${name}: ${describeError(err)} (trying again)`);
      } finally {
        busy = false;
      }
    }, FOLLOW_MS),
  );
}

function stopFollowing(doc: vscode.TextDocument): void {
  const key = doc.uri.toString();
  const t = followers.get(key);
  if (t) clearInterval(t);
  followers.delete(key);
  if (doc.uri.scheme === READONLY_SCHEME) readOnlyDocs.delete(key);
}

/** Registers every command of this module (src/ui/lazyCommands.ts registers them on first use instead). */
export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { table, disposables } = commandTable(deps);
  return [...disposables, ...Object.entries(table).map(([id, fn]) => vscode.commands.registerCommand(id, fn))];
}

/** The handlers by command id, and what they need disposed (a read-only document provider, log followers). */
export function commandTable(deps: CommandDeps): { table: Record<string, (...args: unknown[]) => unknown>; disposables: vscode.Disposable[] } {
  const { model, log } = deps;
  followLog = log;
  const provider = vscode.workspace.registerTextDocumentContentProvider(READONLY_SCHEME, {
    onDidChange: readOnlyChanged.event,
    provideTextDocumentContent: (uri) => readOnlyDocs.get(uri.toString()) ?? '',
  });
  const closeWatch = vscode.workspace.onDidCloseTextDocument(stopFollowing);
  const stopAll = { dispose: () => [...followers.values()].forEach((t) => clearInterval(t)) };
  const after = () => deps.refresh.request('action');

  const start = async (node?: unknown) => {
    const ref = refFromNode(node) ?? (await pickPlugin(model, (p) => p.actions.includes('start'), 'Start which plugin?', 'Every declared plugin is already running.'));
    if (!ref) return;
    try {
      await model.interactive(async () => {
        // A backend that may ask things first (SSH: a passphrase, an unknown host key) asks them here.
        await model.engine(ref.folder).prepare(ref.status.name);
        await withProgress(`Tether: starting ${ref.status.name}…`, () => model.engine(ref.folder).start(ref.status.name));
      });
      log.info(`started ${ref.status.name}`);
    } catch (err) {
      await showError(deps, err, ref.status.logPath);
    } finally {
      await after();
    }
  };

  const stop = async (node?: unknown, graceOverride?: number) => {
    const ref = refFromNode(node) ?? (await pickPlugin(model, (p) => p.actions.includes('stop') || p.actions.includes('kill'), 'Stop which plugin?', 'Nothing is running.'));
    if (!ref) return;
    const s = ref.status;
    const grace = resolveGraceMs({ overrideMs: graceOverride, pluginMs: s.stopGraceMs, settingMs: deps.graceMs() });
    const ok = await confirm(
      deps,
      graceOverride === 0 ? `Kill the whole process tree of "${s.name}"?` : `Stop "${s.name}"?`,
      // What the stop does, in its backend's words when it is not signals to processes of this machine (a Job's deletion).
      s.stopDetail ??
        (graceOverride === 0
          ? `SIGKILL goes at once to ${s.processes.length} process(es): PIDs ${pidList(s)}.`
          : `SIGTERM goes to ${s.processes.length} process(es) (PIDs ${pidList(s)}); any still running after ${grace / 1000} s get SIGKILL.`),
      graceOverride === 0 ? 'Kill' : 'Stop',
    );
    if (!ok) return;
    try {
      await model.interactive(() => withProgress(`Tether: stopping ${s.name}…`, () => model.stopRecord(ref.folder, s, grace)));
    } catch (err) {
      await showError(deps, err, s.logPath);
    } finally {
      await after();
    }
  };

  const restart = async (node?: unknown) => {
    const ref = refFromNode(node) ?? (await pickPlugin(model, (p) => p.declared, 'Restart which plugin?', 'No plugin is declared.'));
    if (!ref) return;
    try {
      await model.interactive(() => withProgress(`Tether: restarting ${ref.status.name}…`, () => model.engine(ref.folder).restart(ref.status.name)));
    } catch (err) {
      await showError(deps, err, ref.status.logPath);
    } finally {
      await after();
    }
  };

  const cleanupAll = async () => {
    await model.refresh('manual');
    const running = pluginsOf(model, (p) => p.processes.length > 0 && p.state !== 'orphan');
    const api = model.snapshot.apiPlugins;
    if (!running.length && !api.length) {
      void vscode.window.showInformationMessage('Tether: nothing to clean up.');
      return;
    }
    const lines = [
      ...running.map((r) => `• ${r.status.name}: ${r.status.processes.length} process(es), PIDs ${pidList(r.status)}`),
      ...api.map((a) => `• ${a.title} (registered by an extension)${a.remote ? `: ${a.remote.provider} ${a.remote.instanceId ?? ''}` : ''}`),
    ];
    if (!(await confirm(deps, 'Clean up everything Tether manages?', `This stops:\n${lines.join('\n')}`, 'Clean Up'))) return;
    const r = await withProgress('Tether: cleaning up…', () => model.cleanup('all', { settingMs: deps.graceMs() }));
    await after();
    if (r.errors.length) await showError(deps, new Error(r.errors.join('; ')));
    else void vscode.window.showInformationMessage(`Tether: stopped ${r.stopped.length ? r.stopped.join(', ') : 'nothing'}.`);
  };

  const killOrphans = async (node?: unknown) => {
    await model.refresh('manual');
    const only = refFromNode(node);
    const orphans = only ? [only.status] : model.snapshot.orphans;
    if (!orphans.length) {
      void vscode.window.showInformationMessage('Tether: no orphans.');
      return;
    }
    const detail = orphans.map((o) => `• ${o.name}: PIDs ${pidList(o)} — ${o.orphanReason ?? ''}`).join('\n');
    if (!(await confirm(deps, `Stop ${orphans.length} orphaned resource(s)?`, detail, 'Kill Orphans'))) return;
    try {
      await withProgress('Tether: stopping orphans…', async () => {
        if (only) await model.stopRecord(only.folder, only.status, 2000);
        else {
          const r = await model.killOrphans(2000);
          if (r.errors.length) throw new Error(r.errors.join('; '));
        }
      });
    } catch (err) {
      await showError(deps, err);
    } finally {
      await after();
    }
  };

  const showLogs = async (node?: unknown) => {
    const ref = refFromNode(node) ?? (await pickPlugin(model, (p) => p.actions.includes('logs'), 'Show the log of which plugin?', 'No plugin has a log yet.'));
    if (!ref) return;
    // A log file on this machine opens (and follows) in an editor; other backends read theirs.
    if (ref.status.logPath && !ref.status.host) return void (await openLog(ref.status.logPath));
    const engine = model.engine(ref.folder);
    const where = ref.status.host ? ` on ${ref.status.host}` : '';
    const read = async () => (await engine.logs(ref.status, 1000)) || '(no output yet)';
    try {
      const text = await withProgress(`Tether: reading the log of ${ref.status.name}${where}…`, () => engine.logs(ref.status, 1000));
      if (text === undefined) return void vscode.window.showInformationMessage(`Tether: ${ref.status.name} has no log yet.`);
      await showReadOnly(`${ref.status.name}${where || (ref.status.container ? ' (container)' : '')}.log`, text || '(no output yet)', read);
    } catch (err) {
      await showError(deps, err);
    }
  };

  const hostOf = (node: unknown): { host: string; folder: string } | undefined => {
    const n = node as TreeNode | undefined;
    return n?.kind === 'host' ? { host: n.host.host, folder: n.folder } : undefined;
  };

  const sshConnect = async (node?: unknown) => {
    const h = hostOf(node);
    if (!h) return;
    try {
      await model.interactive(() => withProgress(`Tether: connecting to ${h.host}…`, () => model.engine(h.folder).ssh.connect(h.host)));
    } catch (err) {
      await showError(deps, err);
    } finally {
      await after();
    }
  };

  const sshDisconnect = async (node?: unknown) => {
    const h = hostOf(node);
    if (!h) return;
    model.engine(h.folder).ssh.disconnect(h.host);
    await after();
  };

  const hostTerminal = (node?: unknown) => {
    const h = hostOf(node);
    if (!h) return;
    let sh;
    try {
      sh = model.engine(h.folder).hostShell(h.host);
    } catch (err) {
      return void showError(deps, err);
    }
    vscode.window.createTerminal({ name: sh.name, shellPath: sh.command, shellArgs: sh.args }).show();
  };

  const openShell = async (node?: unknown) => {
    const ref = refFromNode(node) ?? (await pickPlugin(model, (p) => p.actions.includes('shell'), 'Open a shell in which plugin?', 'No running plugin has a shell.'));
    if (!ref?.status.ledgerId) return;
    const sh = await model.engine(ref.folder).shell(ref.status.ledgerId);
    if (!sh) return;
    vscode.window.createTerminal({ name: sh.name, shellPath: sh.command, shellArgs: sh.args, ...(sh.env ? { env: sh.env } : {}) }).show();
  };

  const openConfig = async (folderArg?: unknown) => {
    const folder = typeof folderArg === 'string' ? folderArg : await pickFolder(model);
    if (!folder) return;
    const file = configPath(folder);
    if (!fs.existsSync(file)) {
      const choice = await vscode.window.showInformationMessage(`${path.join('.vscode', 'tether.json')} does not exist in ${path.basename(folder)}.`, 'Create It');
      if (choice !== 'Create It') return;
      await createConfig(folder);
      return;
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file));
  };

  const createConfig = async (folderArg?: unknown) => {
    const folder = typeof folderArg === 'string' ? folderArg : await pickFolder(model);
    if (!folder) {
      void vscode.window.showWarningMessage('Tether: open a folder first; tether.json lives in its .vscode folder.');
      return;
    }
    const file = configPath(folder);
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, EXAMPLE_CONFIG);
      log.info(`created ${file}`);
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file));
    await after();
  };

  const revealConfig = async (node?: unknown) => {
    const ref = refFromNode(node);
    if (!ref) return openConfig();
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(configPath(ref.folder)));
    const at = doc.getText().search(new RegExp(`"name"\\s*:\\s*"${ref.status.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
    const pos = doc.positionAt(Math.max(0, at));
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos) });
  };

  const copyPid = async (node?: unknown) => {
    const n = node as TreeNode | undefined;
    const pid = n?.kind === 'process' ? n.proc.pid : n?.kind === 'plugin' ? n.status.processes[0]?.pid : undefined;
    if (pid === undefined) return;
    await vscode.env.clipboard.writeText(String(pid));
    vscode.window.setStatusBarMessage(`Copied PID ${pid}`, 2000);
  };

  const adopt = async (node?: unknown) => {
    const ref = refFromNode(node);
    if (!ref?.status.ledgerId) return;
    await model.engine(model.folders[0]!).adopt(ref.status.ledgerId);
    await after();
  };

  const cleanupApi = async (node?: unknown) => {
    const n = node as TreeNode | undefined;
    if (n?.kind !== 'api') return;
    if (!(await confirm(deps, `Clean up "${n.view.title}"?`, 'Tether calls the plugin\'s forceCleanup() and terminates its remote resource, if any.', 'Clean Up'))) return;
    try {
      await withProgress(`Tether: cleaning up ${n.view.title}…`, () => model.cleanupApi(n.view.name, { settingMs: deps.graceMs() }));
    } catch (err) {
      await showError(deps, err);
    } finally {
      await after();
    }
  };

  const statusMenu = async () => {
    await model.refresh('manual');
    const s = model.snapshot;
    type Item = vscode.QuickPickItem & { run?: () => unknown };
    const items: Item[] = [];
    for (const r of pluginsOf(model, (p) => p.processes.length > 0)) {
      items.push({ label: `$(circle-filled) ${r.status.name}`, kind: vscode.QuickPickItemKind.Separator });
      items.push({ label: '$(debug-stop) Stop', description: r.status.name, run: () => stop({ kind: 'plugin', id: '', folder: r.folder, status: r.status }) });
      if (r.status.declared) items.push({ label: '$(debug-restart) Restart', description: r.status.name, run: () => restart({ kind: 'plugin', id: '', folder: r.folder, status: r.status }) });
      items.push({ label: '$(output) Show log', description: r.status.name, run: () => showLogs({ kind: 'plugin', id: '', folder: r.folder, status: r.status }) });
    }
    items.push({ label: 'Tether', kind: vscode.QuickPickItemKind.Separator });
    items.push({ label: '$(play) Start plugin…', run: () => start() });
    if (s.orphans.length) items.push({ label: `$(warning) Kill orphans… (${s.orphans.length})`, run: () => killOrphans() });
    items.push({ label: '$(clear-all) Clean up everything…', run: () => cleanupAll() });
    items.push({ label: '$(list-tree) Show Tether view', run: () => vscode.commands.executeCommand('tether.resources.focus') });
    const picked = await vscode.window.showQuickPick(items, { placeHolder: statusText(s).replace('$(pulse) ', 'Tether: ') });
    await picked?.run?.();
  };

  // ---- cloud ------------------------------------------------------------------------------

  const firstEngine = () => {
    const f = model.folders[0];
    if (!f) throw new Error('Open a folder first: Tether keeps its ledger per user, but needs a workspace to run.');
    return model.engine(f);
  };

  const provision = async () => {
    const accounts = deps.cloudKeys.current;
    const kinds = (Object.keys(CLOUD_ACCOUNT_TITLES) as CloudAccountKind[]).filter((k) => accounts[k]);
    if (!kinds.length) {
      const c = await vscode.window.showInformationMessage('Tether: no cloud account yet. Add an API key first.', 'Set Cloud API Key…');
      if (c) await deps.cloudKeys.setKey();
      return;
    }
    const provider = await vscode.window.showQuickPick(kinds.map((k) => ({ label: CLOUD_ACCOUNT_TITLES[k], account: k })), { title: 'Provision (1/5): provider', placeHolder: 'Which provider?' });
    if (!provider) return;
    const engine = firstEngine();
    let types;
    try {
      types = await withProgress(`Tether: reading ${provider.label}'s instance types…`, () => engine.cloud.catalogue(provider.account));
    } catch (err) {
      return showError(deps, err);
    }
    const offered = types.filter((t) => Number.isFinite(t.pricePerHour)).sort((a, b) => a.pricePerHour - b.pricePerHour);
    const type = await vscode.window.showQuickPick(
      offered.map((t) => ({
        label: t.name,
        description: `${t.gpuCount ? `${t.gpuCount} × ${t.gpuType ?? 'GPU'}` : 'CPU only'} · ${formatUsd(t.pricePerHour)}/h`,
        detail: t.regionsWithCapacity === undefined ? t.description : t.regionsWithCapacity.length ? `capacity in ${t.regionsWithCapacity.join(', ')}` : 'no capacity right now',
        t,
      })),
      { title: 'Provision (2/5): instance type', placeHolder: 'GPU, count, $/h and regions with capacity', matchOnDescription: true, matchOnDetail: true },
    );
    if (!type) return;
    let region: string | undefined;
    const regions = type.t.regionsWithCapacity;
    if (regions && regions.length) {
      region = (await vscode.window.showQuickPick(regions, { title: 'Provision (3/5): region', placeHolder: 'Regions with capacity' })) ?? undefined;
      if (!region) return;
    } else if (regions && !regions.length) {
      return void vscode.window.showWarningMessage(`Tether: ${type.t.name} has no capacity anywhere right now; try another type.`);
    }
    let sshKeyName: string | undefined;
    const lambda = engine.cloud.provider(provider.account);
    if (isLambdaKeyApi(lambda)) {
      // Lambda launches with exactly one of the account's keys: pick one, or add one (upload / generate).
      try {
        sshKeyName = await pickLambdaSshKey(lambda, 'Provision (4/5)');
      } catch (err) {
        return showError(deps, err);
      }
      if (!sshKeyName) return;
    }
    const name = await vscode.window.showInputBox({
      title: 'Provision (5/5): name',
      value: `${type.t.name.replace(/[^\w-]/g, '-')}-${new Date().toISOString().slice(5, 10)}`,
      validateInput: (v) => (/^[\w][\w.-]{0,40}$/.test(v) ? undefined : 'Letters, digits, ".", "_" and "-" (at most 41).'),
    });
    if (!name) return;
    const spend = model.snapshot;
    const applicable = spend.budgets.filter((v) => !v.budget.ledgerId && (!v.budget.provider || v.budget.provider === provider.account));
    // The same refusal as `tether provision` (src/fleet/spend.ts).
    const hardCap = hardCapRefusal(spend.budgets, provider.account, type.t.name, type.t.pricePerHour);
    if (hardCap) {
      void vscode.window.showErrorMessage(`Tether: ${hardCap.oneLine()}`);
      return;
    }
    const budgetLine = applicable.length
      ? applicable.map((v) => `Budget "${v.budget.name}": ${formatUsd(Math.max(0, v.budget.limitUsd - v.spent))} left of ${formatUsd(v.budget.limitUsd)} per ${v.budget.period}.`).join('\n')
      : 'No budget is set (Tether: Set Budget…, or `tether budget set`).';
    const deadmanMinutes = vscode.workspace.getConfiguration('tether').get<number>('cloud.deadmanMinutes', 60);
    // With the switch, a provider that lets the launch choose (EC2) terminates on shutdown (see CloudManager.provision).
    const effect = shutdownEffectOf(provider.account, providerDescriptor(provider.account)?.deadmanShutdownBehavior);
    const withSwitch = `Launch with Dead Man's Switch (${deadmanMinutes} min)`;
    const ok = await vscode.window.showWarningMessage(
      `Launch ${type.t.name} on ${provider.label} for ${formatUsd(type.t.pricePerHour)}/h?`,
      {
        modal: true,
        detail:
          `${name}${region ? ` in ${region}` : ''}: ${formatUsd(type.t.pricePerHour)} per hour (${formatUsd(type.t.pricePerHour * 24)} per day) until you terminate it.\nYou are spending ${formatUsd(spend.costPerHour)}/h now (${formatUsd(spend.costSoFar)} so far).\n${budgetLine}` +
          (effect ? `\n\nDead man's switch: the instance shuts itself down ${deadmanMinutes} min after Tether goes silent (laptop closed). ${effect.text}` : ''),
      },
      'Launch',
      ...(effect ? [withSwitch] : []),
    );
    if (ok !== 'Launch' && ok !== withSwitch) return;
    try {
      const v = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Tether: launching ${name}…`, cancellable: true }, async (progress, token) => {
        const timeLimitHours = readPolicy(engine.ledger.stateDir).defaultTimeLimitHours; // the policy file (tether limit default)
        const launched = await engine.cloud.provision(provider.account, {
          name,
          instanceType: type.t.name,
          pricePerHour: type.t.pricePerHour,
          ...(region ? { region } : {}),
          ...(sshKeyName ? { sshKeyName } : {}),
          ...(timeLimitHours > 0 ? { timeLimitHours } : {}),
          ...(ok === withSwitch ? { deadmanMinutes } : {}),
        });
        log.info(`launched ${launched.name}: ${launched.providerTitle} ${launched.id} at ${formatUsd(launched.pricePerHour)}/h`);
        // Progress while it boots (Cancel stops waiting, not the instance): polls as usual.
        const t0 = Date.now();
        for (;;) {
          await after();
          const now = model.snapshot.cloud?.instances.find((i) => i.ledgerId === launched.ledgerId);
          if (!now || now.status !== 'provisioning' || token.isCancellationRequested || Date.now() - t0 > 15 * 60_000) return now ?? launched;
          progress.report({ message: `booting on ${launched.providerTitle} (${Math.round((Date.now() - t0) / 1000)} s, ${formatUsd(launched.pricePerHour)}/h)` });
          await new Promise((r) => setTimeout(r, 1000));
        }
      });
      if (v.status === 'running') {
        const host = v.sshCommand ? ` SSH: ${v.sshCommand.replace(/^ssh /, '').replace('-- ', '')} (under SSH hosts).` : '';
        void vscode.window.showInformationMessage(`Tether: ${v.name} is up on ${v.providerTitle} (${formatUsd(v.pricePerHour)}/h).${host}`);
      } else {
        void vscode.window.showInformationMessage(`Tether: ${v.name} is ${v.status} on ${v.providerTitle} (${formatUsd(v.pricePerHour)}/h); it shows in the Cloud view.`);
      }
    } catch (err) {
      await showError(deps, err);
    } finally {
      await after();
    }
  };

  const cloudOf = (node: unknown): CloudView | undefined => {
    const n = node as TreeNode | undefined;
    return n?.kind === 'cloud' ? n.view : undefined;
  };

  const terminate = async (node?: unknown) => {
    let v = cloudOf(node);
    if (!v) {
      await model.refresh('manual');
      const all = (model.snapshot.cloud?.instances ?? []).filter((i) => i.status !== 'terminated');
      if (!all.length) return void vscode.window.showInformationMessage('Tether: no cloud instance is running.');
      const picked = await vscode.window.showQuickPick(
        all.map((i) => ({ label: i.name, description: `${i.providerTitle} · ${i.status} · ${formatUsd(i.pricePerHour)}/h${i.managed ? '' : ' · unmanaged'}`, view: i })),
        { placeHolder: 'Terminate which instance?', ignoreFocusOut: true },
      );
      if (!picked) return;
      v = picked.view;
    }
    const money = `${formatUsd(v.pricePerHour)}/h, ${formatUsd(v.costSoFar)} so far`;
    const ok = await vscode.window.showWarningMessage(
      v.managed ? `Terminate ${v.name}?` : `Terminate ${v.name}? Tether did not launch it.`,
      { modal: true, detail: `${v.providerTitle} ${v.id ?? ''} · ${v.instanceType ?? ''} ${v.region ?? ''} · ${money}.\nTermination deletes the instance and its local disk.${v.managed ? '' : '\nIt was started outside Tether; you are picking it by hand.'}` },
      'Terminate',
    );
    if (ok !== 'Terminate') return;
    try {
      await withProgress(`Tether: terminating ${v.name}…`, () => firstEngine().cloud.terminate(v, { picked: !v.managed }));
    } catch (err) {
      await showError(deps, err);
    } finally {
      await after();
    }
  };

  const copySsh = async (node?: unknown) => {
    const v = cloudOf(node);
    if (!v?.sshCommand) return void vscode.window.showInformationMessage('Tether: no SSH address yet (still booting?).');
    await vscode.env.clipboard.writeText(v.sshCommand);
    vscode.window.setStatusBarMessage(`Copied: ${v.sshCommand}`, 3000);
  };

  const addAsSshHost = async (node?: unknown) => {
    const v = cloudOf(node);
    const m = v?.sshCommand ? /^ssh (?:-p (\d+) )?(?:-- )?(?:(\S+)@)?(\S+)$/.exec(v.sshCommand) : null;
    if (!v || !m) return void vscode.window.showInformationMessage('Tether: no SSH address yet (still booting?).');
    const target = `${m[2] ? `${m[2]}@` : ''}${m[3]}:${m[1] ?? '22'}`;
    const cfg = vscode.workspace.getConfiguration('tether');
    const hosts = cfg.get<string[]>('sshHosts', []);
    if (!hosts.includes(target)) await cfg.update('sshHosts', [...hosts, target], vscode.ConfigurationTarget.Global);
    void vscode.window.showInformationMessage(`Tether: ${target} is now under SSH hosts; declare plugins with "host": "${target}" to run them there.`);
    await after();
  };

  const setTimeLimit = async (node?: unknown) => {
    const v = cloudOf(node);
    if (!v?.ledgerId) return void vscode.window.showInformationMessage('Tether: pick an instance Tether launched (in the Cloud view).');
    const answer = await vscode.window.showInputBox({
      title: `Time limit for ${v.name}`,
      prompt: `Hours from now after which Tether terminates ${v.name} (${formatUsd(v.pricePerHour)}/h). Empty: no limit.`,
      placeHolder: 'e.g. 2.5',
      validateInput: (x) => (x.trim() === '' || Number(x) > 0 ? undefined : 'A number of hours above 0, or empty for no limit'),
    });
    if (answer === undefined) return;
    const hours = answer.trim() === '' ? undefined : Number(answer);
    await firstEngine().cloud.setTimeLimit(v.ledgerId, hours === undefined ? undefined : Date.now() + hours * 3_600_000);
    vscode.window.setStatusBarMessage(
      hours === undefined ? `Tether: no time limit for ${v.name}` : `Tether: ${v.name} ends in ${hours} h (at most ${formatUsd(hours * v.pricePerHour)} more)`,
      5000,
    );
    await after();
  };

  const armDeadman = async (node?: unknown) => {
    const v = cloudOf(node);
    if (!v?.ledgerId) return void vscode.window.showInformationMessage('Tether: pick an instance Tether launched (in the Cloud view).');
    const rec = firstEngine().ledger.read().resources.find((r) => r.id === v.ledgerId);
    const effect = shutdownEffectOf(v.provider, rec?.remote?.metadata.shutdownBehavior);
    const pick = await vscode.window.showQuickPick(
      [15, 30, 60, 120, 240].map((m) => ({ label: `${m} min`, minutes: m, description: `shuts down ${m} min after Tether goes silent` })),
      { title: `Dead man's switch for ${v.name}`, placeHolder: 'How long may Tether be silent before the instance shuts itself down?' },
    );
    if (!pick) return;
    const go = await vscode.window.showWarningMessage(
      `Arm a dead man's switch on ${v.name} (${pick.minutes} min)?`,
      { modal: true, detail: `Tether puts a small watcher on the instance over SSH and pushes it forward while Tether runs. If Tether is silent for ${pick.minutes} min, the instance runs a shutdown.\n\n${effect?.text ?? ''}` },
      'Arm',
    );
    if (go !== 'Arm') return;
    await firstEngine().deadman.request(v.ledgerId, pick.minutes);
    vscode.window.setStatusBarMessage(`Tether: dead man's switch for ${v.name} is armed once it answers over SSH`, 5000);
    await after();
  };

  const disarmDeadman = async (node?: unknown) => {
    const v = cloudOf(node);
    if (!v?.ledgerId) return;
    try {
      const why = await withProgress(`Tether: disarming the switch of ${v.name}…`, () => firstEngine().deadman.disarm(v.ledgerId!));
      vscode.window.setStatusBarMessage(`Tether: ${v.name}: ${why}`, 5000);
    } catch (err) {
      await showError(deps, err);
    }
    await after();
  };

  const stopInstance = async (node?: unknown) => {
    const v = cloudOf(node);
    if (!v) return;
    const ok = await vscode.window.showWarningMessage(
      `Stop ${v.name}?`,
      { modal: true, detail: `${v.providerTitle} ${v.id ?? ''}: compute billing (${formatUsd(v.pricePerHour)}/h) stops; its disk is kept and keeps billing until you terminate it.` },
      'Stop',
    );
    if (ok !== 'Stop') return;
    try {
      await withProgress(`Tether: stopping ${v.name}…`, () => firstEngine().cloud.stop(v, { picked: true }));
    } catch (err) {
      await showError(deps, err);
    }
    await after();
  };

  const keepRunning = async (ledgerId?: unknown, kind?: unknown) => {
    if (typeof ledgerId !== 'string') return;
    if (kind === 'time-limit') await firstEngine().cloud.setTimeLimit(ledgerId, undefined);
    else await firstEngine().cloud.snoozeIdle(ledgerId);
    await after();
  };

  const openConsole = async (node?: unknown) => {
    const v = cloudOf(node);
    if (v?.consoleUrl) await vscode.env.openExternal(vscode.Uri.parse(v.consoleUrl));
  };

  const table: Record<string, (...args: unknown[]) => unknown> = {
    'tether.provision': provision,
    'tether.terminateInstance': terminate,
    'tether.copySshCommand': copySsh,
    'tether.openProviderConsole': openConsole,
    'tether.addAsSshHost': addAsSshHost,
    'tether.setTimeLimit': setTimeLimit,
    'tether.armDeadman': armDeadman,
    'tether.stopInstance': stopInstance,
    'tether.disarmDeadman': disarmDeadman,
    'tether.internal.keepRunning': keepRunning,
    'tether.setCloudKey': () => deps.cloudKeys.setKey(),
    'tether.removeCloudKey': () => deps.cloudKeys.removeKey(),
    'tether.start': start,
    'tether.stop': (n) => stop(n),
    'tether.restart': restart,
    'tether.killTree': (n) => stop(n, 0),
    'tether.cleanupAll': cleanupAll,
    'tether.killOrphans': killOrphans,
    'tether.refresh': () => deps.refresh.request('manual'),
    'tether.showLogs': showLogs,
    'tether.openShell': openShell,
    'tether.sshConnect': sshConnect,
    'tether.sshDisconnect': sshDisconnect,
    'tether.openHostTerminal': hostTerminal,
    'tether.openConfig': openConfig,
    'tether.createConfig': createConfig,
    'tether.revealConfig': revealConfig,
    'tether.copyPid': copyPid,
    'tether.adoptOrphan': adopt,
    'tether.cleanupApiPlugin': cleanupApi,
    'tether.statusMenu': statusMenu,
    'tether.showOutput': () => log.show(),
  };
  return { table, disposables: [provider, closeWatch, stopAll] };
}

async function pickFolder(model: TetherModel): Promise<string | undefined> {
  const folders = model.folders;
  if (folders.length <= 1) return folders[0];
  const picked = await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which folder?' });
  return picked?.uri.fsPath;
}
