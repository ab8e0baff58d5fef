/**
 * The Tether tree: Local processes (declared plugins → process trees, API plugins, orphans),
 * SSH hosts, Cloud. Nodes are plain objects with a stable id, kept between polls so VS Code can
 * refresh a single node; state lives in `contextValue` flags that package.json menus match.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatBytes, formatCpu, formatUsd } from '../core/format';
import type { ProcessInfo } from '../core/processTracker';
import type { HostStatus, PluginStatus } from '../workspace/engine';
import type { CloudView } from '../fleet/cloud';
import type { ApiPluginView, Snapshot, TetherModel } from './model';
import { FALLBACK_RESOLVER_NOTE, sshBinaryFor } from '../workspace/engine';
import { isLive } from '../backends/backend';

export type TreeNode =
  | { kind: 'group'; id: string; group: 'local' | 'ssh' | 'cloud' }
  | { kind: 'folder'; id: string; folder: string; name: string }
  | { kind: 'plugin'; id: string; folder: string; status: PluginStatus }
  | { kind: 'process'; id: string; folder: string; plugin: PluginStatus; proc: ProcessInfo }
  | { kind: 'api'; id: string; view: ApiPluginView }
  | { kind: 'host'; id: string; host: HostStatus; folder: string }
  | { kind: 'gpu'; id: string; host: string; gpu: NonNullable<HostStatus['gpus']>[number] }
  | { kind: 'provider'; id: string; title: string }
  | { kind: 'cloud'; id: string; view: CloudView }
  | { kind: 'info'; id: string; label: string; icon: string; tooltip?: string; description?: string; command?: vscode.Command; contextValue?: string; children?: TreeNode[] };

const STATE_ICON: Record<PluginStatus['state'], [string, string | undefined]> = {
  running: ['circle-filled', 'testing.iconPassed'],
  starting: ['loading~spin', undefined],
  stopping: ['loading~spin', undefined],
  stopped: ['circle-outline', undefined],
  failed: ['error', 'testing.iconFailed'],
  orphan: ['warning', 'list.warningForeground'],
};

/**
 * `contextValue` flags: `tether.plugin;running;stop;...;` — menus match `viewItem =~ /;stop;/`.
 * The flags are the actions its backend offers (src/backends/backend.ts `ActionId`): the tree
 * never asks what kind of resource it is.
 */
export function pluginContext(s: PluginStatus): string {
  return ['tether.plugin', s.state, ...new Set(s.actions)].join(';') + ';';
}

function pluginDescription(s: PluginStatus): string {
  const live = s.processes;
  const c = s.container;
  const engineStats = c && c.memoryBytes !== undefined ? ` · container ${formatCpu(c.cpuPercent)} CPU, ${formatBytes(c.memoryBytes)}` : '';
  const where = c ? ` · ${c.image}${c.ports.length ? ` · ${c.ports.join(', ')}` : ''}${engineStats}` : '';
  const problem = s.problem ? ` · ⚠ ${s.problem}` : '';
  if (live.length) {
    const cpu = live.reduce((n, p) => n + (p.cpuPercent ?? 0), 0);
    const rss = live.reduce((n, p) => n + p.rssBytes, 0);
    const what = s.state === 'orphan' ? 'orphan' : s.state;
    return `${what} · ${live.length} process${live.length === 1 ? '' : 'es'} · ${formatCpu(cpu)} · ${formatBytes(rss)}${where}${problem}`;
  }
  if (s.container) return `${s.state}${where}${problem}`;
  if (s.where || s.costPerHour !== undefined) return [s.state, s.where, s.costPerHour !== undefined ? `${formatUsd(s.costPerHour)}/h` : ''].filter(Boolean).join(' · ') + problem;
  if (s.problem) return `${s.state}${problem}`;
  if (s.state === 'failed' && s.lastExit) return `failed (${s.lastExit.signal ?? `exit ${s.lastExit.code ?? '?'}`})`;
  return s.state;
}

function md(lines: string[]): vscode.MarkdownString {
  const m = new vscode.MarkdownString(lines.join('  \n'));
  m.supportThemeIcons = true;
  return m;
}

const escapeMd = (s: string) => s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');

export class TetherTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Node objects by id, reused across polls so per-node refreshes find them. */
  private readonly nodes = new Map<string, TreeNode>();
  private readonly parents = new Map<string, TreeNode | undefined>();
  /** Per-node rendering signature of the last poll. */
  private signatures = new Map<string, string>();
  private structure = '';
  private readonly sub: vscode.Disposable;

  constructor(private readonly model: TetherModel) {
    this.sub = model.onDidChange((s) => this.onSnapshot(s));
  }

  private get snap(): Snapshot {
    return this.model.snapshot;
  }

  /** Fires only what changed: the whole tree when nodes come or go, else the changed nodes. */
  private onSnapshot(s: Snapshot): void {
    const structure = JSON.stringify([
      s.folders.map((f) => [f.folder, f.error, f.report?.configError, f.report?.configured, f.report?.plugins.map((p) => [p.name, p.state, p.processes.map((x) => `${x.pid}:${x.ppid}`)])]),
      s.apiPlugins.map((a) => [a.name, a.processes.map((x) => x.pid), a.remote?.status, a.error]),
      s.orphans.map((o) => o.ledgerId),
      s.folders.map((f) => f.report?.hosts?.map((h) => [h.host, h.state, h.gpus?.length ?? 0, h.cloud?.ledgerId])),
      s.folders.map((f) => f.report?.closedWhileBilling?.spentSince.toFixed(2)),
      s.cloud?.instances.map((i) => [i.ledgerId, i.id, i.status, i.providerTitle]),
      s.cloud?.errors.length,
    ]);
    if (structure !== this.structure) {
      this.structure = structure;
      this.signatures.clear();
      this.changed.fire(undefined);
      return;
    }
    for (const [id, node] of this.nodes) {
      const fresh = this.refreshNode(node, s);
      if (!fresh) continue;
      const sig = JSON.stringify(this.getTreeItem(fresh).description);
      if (this.signatures.get(id) !== sig) {
        this.signatures.set(id, sig);
        this.changed.fire(fresh);
      }
    }
  }

  /** Updates a kept node's data from a new snapshot (in place), or undefined if it is gone. */
  private refreshNode(node: TreeNode, s: Snapshot): TreeNode | undefined {
    if (node.kind === 'plugin') {
      const f = s.folders.find((x) => x.folder === node.folder);
      const st = f?.report?.plugins.find((p) => p.name === node.status.name) ?? s.orphans.find((o) => o.ledgerId === node.status.ledgerId);
      if (!st) return undefined;
      node.status = st;
      return node;
    }
    if (node.kind === 'process') {
      const f = s.folders.find((x) => x.folder === node.folder);
      const st = f?.report?.plugins.find((p) => p.name === node.plugin.name) ?? s.orphans.find((o) => o.ledgerId === node.plugin.ledgerId);
      const proc = st?.processes.find((p) => p.pid === node.proc.pid && p.startTime === node.proc.startTime);
      if (!st || !proc) return undefined;
      node.plugin = st;
      node.proc = proc;
      return node;
    }
    if (node.kind === 'cloud') {
      const v = s.cloud?.instances.find((i) => i.provider === node.view.provider && (i.ledgerId ?? i.id) === (node.view.ledgerId ?? node.view.id));
      if (!v) return undefined;
      node.view = v;
      return node;
    }
    if (node.kind === 'provider') return node;
    if (node.kind === 'host') {
      const h = s.folders.flatMap((f) => f.report?.hosts ?? []).find((x) => x.host === node.host.host);
      if (!h) return undefined;
      node.host = h;
      return node;
    }
    if (node.kind === 'gpu') {
      const g = s.folders.flatMap((f) => f.report?.hosts ?? []).find((x) => x.host === node.host)?.gpus?.find((x) => x.index === node.gpu.index);
      if (!g) return undefined;
      node.gpu = g;
      return node;
    }
    if (node.kind === 'api') {
      const v = s.apiPlugins.find((a) => a.name === node.view.name);
      if (!v) return undefined;
      node.view = v;
      return node;
    }
    return undefined;
  }

  private node<T extends TreeNode>(n: T, parent: TreeNode | undefined): T {
    const kept = this.nodes.get(n.id) as T | undefined;
    const out = kept ? Object.assign(kept, n) : n;
    this.nodes.set(n.id, out);
    this.parents.set(n.id, parent);
    return out;
  }

  getParent(n: TreeNode): TreeNode | undefined {
    return this.parents.get(n.id);
  }

  getChildren(n?: TreeNode): TreeNode[] {
    const s = this.snap;
    if (!n) {
      const anyConfigured = s.folders.some((f) => f.report?.configured || f.error);
      const anything = anyConfigured || s.apiPlugins.length > 0 || s.orphans.length > 0;
      if (!anything) return []; // the welcome view explains what to do
      return (['local', 'ssh', 'cloud'] as const).map((group) => this.node({ kind: 'group', id: `group:${group}`, group }, undefined));
    }
    switch (n.kind) {
      case 'group':
        return this.groupChildren(n);
      case 'folder':
        return this.folderChildren(n.folder, n);
      case 'plugin':
        // What its backend shows below it (a Job's Pods), then its processes.
        return [
          ...(n.status.parts ?? []).map((p) =>
            this.node({ kind: 'info', id: `${n.id}#part:${p.id}`, label: p.label, icon: p.state === 'running' ? 'circle-filled' : p.state === 'failed' ? 'error' : 'circle-outline', ...(p.description ? { description: p.description } : {}), ...(p.tooltip ? { tooltip: p.tooltip } : {}), contextValue: 'tether.part;' }, n),
          ),
          ...this.processChildren(n.folder, n.status, undefined, n),
        ];
      case 'process':
        return this.processChildren(n.folder, n.plugin, n.proc, n);
      case 'info':
        return n.children ?? [];
      case 'host':
        return this.hostChildren(n);
      case 'provider': {
        return (this.snap.cloud?.instances ?? [])
          .filter((i) => i.providerTitle === n.title)
          .map((view) => this.node({ kind: 'cloud', id: `cloud:${view.provider}:${view.ledgerId ?? view.id}`, view }, n));
      }
      case 'api':
        return n.view.processes
          .filter((p) => !n.view.processes.some((q) => q.pid === p.ppid))
          .map((proc) => this.node({ kind: 'process', id: `${n.id}#${proc.pid}:${proc.startTime}`, folder: '', plugin: apiAsStatus(n.view), proc }, n));
      default:
        return [];
    }
  }

  private groupChildren(g: Extract<TreeNode, { kind: 'group' }>): TreeNode[] {
    const s = this.snap;
    if (g.group === 'ssh') {
      const hosts = new Map<string, { host: HostStatus; folder: string }>();
      for (const f of s.folders) for (const h of f.report?.hosts ?? []) if (!hosts.has(h.host)) hosts.set(h.host, { host: h, folder: f.folder });
      if (!hosts.size) {
        return [
          this.node(
            {
              kind: 'info',
              id: 'info:ssh',
              label: 'No SSH hosts yet',
              icon: 'remote',
              tooltip: 'Declare a plugin with "host": "<ssh alias or user@host:port>" in .vscode/tether.json to run it on a remote machine.',
            },
            g,
          ),
        ];
      }
      return [...hosts.values()].map(({ host, folder }) => this.node({ kind: 'host', id: `host:${host.host}`, host, folder }, g));
    }
    if (g.group === 'cloud') {
      const out: TreeNode[] = [];
      const providers = [...new Set((s.cloud?.instances ?? []).map((i) => i.providerTitle))];
      for (const title of providers) out.push(this.node({ kind: 'provider', id: `provider:${title}`, title }, g));
      for (const e of s.cloud?.errors ?? []) {
        out.push(this.node({ kind: 'info', id: `info:cloud-error:${e.provider}`, label: `${e.provider}: cannot list instances`, icon: 'error', description: e.message, tooltip: e.message, command: { title: 'Set key', command: 'tether.setCloudKey' } }, g));
      }
      for (const view of s.apiPlugins.filter((a) => a.cloud)) out.push(this.node({ kind: 'api', id: `api:${view.name}`, view }, g));
      const closed = s.folders.find((f) => f.report?.closedWhileBilling)?.report?.closedWhileBilling;
      if (closed) {
        out.unshift(
          this.node(
            {
              kind: 'info',
              id: 'info:closed-while-billing',
              label: `Billed ${`$${closed.spentSince.toFixed(2)}`} while VS Code was closed`,
              icon: 'warning',
              description: closed.resources.map((r) => r.name).join(', '),
              tooltip: closed.message,
              contextValue: 'tether.closeReport',
              command: { title: 'Cost report', command: 'tether.showCostReport' },
            },
            g,
          ),
        );
      }
      if (!out.length) {
        out.push(
          this.node(
            { kind: 'info', id: 'info:cloud', label: 'No cloud instances', icon: 'cloud', description: 'Provision…', tooltip: 'Provision a GPU on Lambda Cloud, RunPod, Vast.ai or AWS EC2 (add an API key first).', command: { title: 'Provision', command: 'tether.provision' } },
            g,
          ),
        );
      }
      return out;
    }
    const out: TreeNode[] = [];
    if (s.folders.length > 1) {
      for (const f of s.folders) out.push(this.node({ kind: 'folder', id: `folder:${f.folder}`, folder: f.folder, name: f.name }, g));
    } else if (s.folders[0]) {
      out.push(...this.folderChildren(s.folders[0].folder, g));
    }
    for (const view of s.apiPlugins.filter((a) => a.lifecycle && !a.cloud)) out.push(this.node({ kind: 'api', id: `api:${view.name}`, view }, g));
    const shown = new Set(s.folders.flatMap((f) => f.report?.plugins.map((p) => p.ledgerId) ?? []));
    for (const o of s.orphans.filter((x) => !shown.has(x.ledgerId))) {
      out.push(this.node({ kind: 'plugin', id: `orphan:${o.ledgerId}`, folder: s.folders[0]?.folder ?? '', status: o }, g));
    }
    if (!out.length) out.push(this.node({ kind: 'info', id: 'info:local-empty', label: 'No plugins declared', icon: 'info', command: { title: 'Open config', command: 'tether.openConfig' } }, g));
    return out;
  }

  private folderChildren(folder: string, parent: TreeNode): TreeNode[] {
    const f = this.snap.folders.find((x) => x.folder === folder);
    if (!f) return [];
    const out: TreeNode[] = [];
    const problems = f.report?.configProblems ?? [];
    if (f.error || problems.length) {
      const file = vscode.Uri.file(path.join(folder, '.vscode', 'tether.json'));
      const errorNode: Extract<TreeNode, { kind: 'info' }> = this.node<Extract<TreeNode, { kind: 'info' }>>(
        {
          kind: 'info',
          id: `info:error:${folder}`,
          label: f.error ? 'Tether cannot read its state' : 'tether.json has problems',
          icon: 'error',
          description: f.error ? f.error : `${problems.length} problem${problems.length === 1 ? '' : 's'}`,
          tooltip: f.error ?? f.report?.configError ?? '',
          command: { title: 'Open config', command: 'tether.openConfig', arguments: [folder] },
          contextValue: 'tether.error;',
        },
        parent,
      );
      errorNode.children = problems.map((p, i) =>
        this.node(
          {
            kind: 'info',
            id: `info:error:${folder}:${i}`,
            label: `${p.path || '/'}: ${p.message}`,
            icon: 'circle-small-filled',
            description: p.line ? `line ${p.line}` : '',
            tooltip: `${p.path || '/'} (line ${p.line ?? '?'}): ${p.message}`,
            command: {
              title: 'Go to problem',
              command: 'vscode.open',
              arguments: [file, { selection: new vscode.Range((p.line ?? 1) - 1, (p.column ?? 1) - 1, (p.line ?? 1) - 1, (p.column ?? 1) - 1) }],
            },
          },
          errorNode,
        ),
      );
      out.push(errorNode);
    }
    for (const status of (f.report?.plugins ?? []).filter((p) => !p.host)) {
      // A running plugin gets a fresh id so VS Code shows it expanded (it keeps the collapsed
      // state of an id it knows, and a stopped plugin has no children to expand).
      const who = status.ledgerId && !status.declared ? status.ledgerId : status.name;
      const phase = status.processes.length || status.parts?.length ? `live:${status.ledgerId}:${status.parts?.length ?? 0}` : 'idle';
      out.push(this.node({ kind: 'plugin', id: `plugin:${folder}:${who}:${phase}`, folder, status }, parent));
    }
    if (!out.length && f.report && !f.report.configured) {
      out.push(this.node({ kind: 'info', id: `info:noconfig:${folder}`, label: 'No .vscode/tether.json', icon: 'add', command: { title: 'Create', command: 'tether.createConfig', arguments: [folder] } }, parent));
    } else if (!out.length) {
      const remoteOnly = (f.report?.plugins ?? []).some((p) => !!p.host);
      const label = remoteOnly ? 'No local plugins (remote ones are under SSH hosts)' : 'No plugins declared';
      out.push(this.node({ kind: 'info', id: `info:empty:${folder}`, label, icon: 'info', command: { title: 'Open config', command: 'tether.openConfig', arguments: [folder] } }, parent));
    }
    return out;
  }

  private hostChildren(n: Extract<TreeNode, { kind: 'host' }>): TreeNode[] {
    const out: TreeNode[] = [];
    for (const gpu of n.host.gpus ?? []) out.push(this.node({ kind: 'gpu', id: `gpu:${n.host.host}:${gpu.index}`, host: n.host.host, gpu }, n));
    for (const f of this.snap.folders) {
      for (const status of f.report?.plugins ?? []) {
        if (status.host !== n.host.host) continue;
        const phase = status.processes.length || status.parts?.length ? `live:${status.ledgerId}:${status.parts?.length ?? 0}` : 'idle';
        out.push(this.node({ kind: 'plugin', id: `plugin:${f.folder}:ssh:${status.host}:${status.name}:${phase}`, folder: f.folder, status }, n));
      }
    }
    return out;
  }

  /** Children of a plugin (its top processes: the root and any escapee) or of a process. */
  private processChildren(folder: string, plugin: PluginStatus, under: ProcessInfo | undefined, parent: TreeNode): TreeNode[] {
    const procs = plugin.processes;
    const pids = new Set(procs.map((p) => p.pid));
    const kids = under ? procs.filter((p) => p.ppid === under.pid) : procs.filter((p) => !pids.has(p.ppid));
    const base = parent.kind === 'process' ? parent.id.slice(0, parent.id.lastIndexOf('#')) : parent.id;
    // A process that gains children later gets a new id: VS Code keeps a known id's collapsible
    // state, so a former leaf would never show its children.
    const leaf = (proc: ProcessInfo) => (procs.some((p) => p.ppid === proc.pid) ? '' : ':leaf');
    return kids.map((proc) => this.node({ kind: 'process', id: `${base}#${proc.pid}:${proc.startTime}${leaf(proc)}`, folder, plugin, proc }, parent));
  }

  getTreeItem(n: TreeNode): vscode.TreeItem {
    switch (n.kind) {
      case 'group': {
        const labels = { local: 'Local processes', ssh: 'SSH hosts', cloud: 'Cloud' };
        const icons = { local: 'server-process', ssh: 'remote', cloud: 'cloud' };
        const item = new vscode.TreeItem(labels[n.group], vscode.TreeItemCollapsibleState.Expanded);
        item.id = n.id;
        item.iconPath = new vscode.ThemeIcon(icons[n.group]);
        item.contextValue = `tether.group;${n.group};`;
        if (n.group === 'cloud' && this.snap.costPerHour > 0) item.description = `${formatUsd(this.snap.costPerHour)}/h`;
        return item;
      }
      case 'folder': {
        const item = new vscode.TreeItem(n.name, vscode.TreeItemCollapsibleState.Expanded);
        item.id = n.id;
        item.iconPath = vscode.ThemeIcon.Folder;
        item.tooltip = n.folder;
        return item;
      }
      case 'plugin': {
        const s = n.status;
        const item = new vscode.TreeItem(s.name, s.processes.length || s.parts?.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        const [icon, color] = STATE_ICON[s.state];
        item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
        item.description = pluginDescription(s);
        item.contextValue = pluginContext(s);
        if (s.icon && s.state !== 'failed' && s.state !== 'orphan') {
          item.iconPath = new vscode.ThemeIcon(s.icon, isLive(s) ? new vscode.ThemeColor('testing.iconPassed') : undefined);
        }
        item.tooltip = md([
          `**${escapeMd(s.name)}** — ${s.state}${s.orphanReason ? ` (${escapeMd(s.orphanReason)})` : ''}`,
          s.command ? `$(terminal) \`${s.command.replace(/`/g, "'")}\`` : '',
          s.container ? `$(package) container \`${s.container.name}\` (${s.container.id.slice(0, 12)}) · ${escapeMd(s.container.image)} · ${s.container.state}${s.container.ports.length ? ` · ports ${s.container.ports.join(', ')}` : ''}` : '',
          s.problem ? `$(warning) ${escapeMd(s.problem)}` : '',
          s.startedAt && s.processes.length ? `$(clock) started ${new Date(s.startedAt).toLocaleString()}` : '',
          s.owner ? `$(account) started by ${s.owner.kind}${s.ownedByMe ? ' (this window)' : ` pid ${s.owner.pid}`}` : '',
          s.logPath ? `$(output) ${escapeMd(s.logPath)}` : '',
          s.lastExit && !s.processes.length ? `last exit: ${s.lastExit.signal ?? `code ${s.lastExit.code}`}` : '',
        ].filter(Boolean));
        return item;
      }
      case 'process': {
        const p = n.proc;
        const hasKids = n.plugin.processes.some((q) => q.ppid === p.pid);
        const exe = path.basename(p.command.split(' ')[0] ?? p.command);
        const item = new vscode.TreeItem(exe || p.command, hasKids ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        item.description = `PID ${p.pid} · ${formatCpu(p.cpuPercent)} · ${formatBytes(p.rssBytes)}${p.escaped ? ' · escaped' : ''}`;
        item.iconPath = new vscode.ThemeIcon(p.escaped ? 'debug-disconnect' : 'symbol-event');
        item.contextValue = 'tether.process;copyPid;kill;';
        item.tooltip = md([
          `**PID ${p.pid}** (parent ${p.ppid})${p.escaped ? ' — left the tree (setsid/double fork); found by its Tether marker' : ''}`,
          `$(terminal) \`${p.command.replace(/`/g, "'")}\``,
          `$(clock) started ${new Date(p.startedAt).toLocaleString()}`,
          `$(pulse) CPU ${formatCpu(p.cpuPercent)} · memory ${formatBytes(p.rssBytes)} · state ${p.state}`,
          n.plugin.logPath ? `$(output) ${escapeMd(n.plugin.logPath)}` : '',
        ].filter(Boolean));
        return item;
      }
      case 'api': {
        const v = n.view;
        const item = new vscode.TreeItem(v.title, v.processes.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        const parts: string[] = [];
        if (v.remote) {
          parts.push(v.remote.status);
          if (v.remote.gpuCount) parts.push(`${v.remote.gpuType ?? 'GPU'} × ${v.remote.gpuCount}`);
          if (v.remote.region) parts.push(v.remote.region);
          parts.push(`${formatUsd(v.costPerHour)}/h`, `${formatUsd(v.costSoFar)} so far`);
        } else if (v.processes.length) {
          parts.push(`running · ${v.processes.length} process${v.processes.length === 1 ? '' : 'es'}`);
        } else {
          parts.push('idle');
        }
        if (v.error) parts.push(`error: ${v.error}`);
        item.description = parts.join(' · ');
        item.iconPath = new vscode.ThemeIcon(v.error ? 'error' : v.cloud ? 'vm' : 'extensions');
        item.contextValue = 'tether.api;cleanup;';
        item.tooltip = md([`**${escapeMd(v.title)}** (registered by an extension)`, v.description ? escapeMd(v.description) : '', v.executionMode ? `mode: ${v.executionMode}` : '', v.remote?.provider ? `provider: ${v.remote.provider}${v.remote.resourceType ? `, ${v.remote.resourceType}` : ''}` : ''].filter(Boolean));
        return item;
      }
      case 'host': {
        const h = n.host;
        // A cloud instance's endpoint is named after the instance (its address in the description).
        const item = new vscode.TreeItem(h.cloud ? `${h.cloud.name} (cloud)` : h.host, vscode.TreeItemCollapsibleState.Expanded);
        item.id = n.id;
        const icon = { connected: 'vm-active', connecting: 'loading~spin', idle: 'vm-outline', unreachable: 'debug-disconnect' }[h.state];
        item.iconPath = new vscode.ThemeIcon(icon, h.state === 'unreachable' ? new vscode.ThemeColor('list.warningForeground') : h.state === 'connected' ? new vscode.ThemeColor('testing.iconPassed') : undefined);
        const running = this.snap.folders.flatMap((f) => f.report?.plugins ?? []).filter((p) => p.host === h.host && p.processes.length).length;
        item.description = [h.cloud ? h.host : '', h.state, h.gpus?.length ? `${h.gpus.length} GPU${h.gpus.length === 1 ? '' : 's'}` : '', running ? `${running} running` : '', h.state === 'unreachable' && h.retryAt ? `retry ${new Date(h.retryAt).toLocaleTimeString()}` : '']
          .filter(Boolean)
          .join(' · ');
        item.tooltip = md([`**${escapeMd(h.host)}**${h.target ? ` (${escapeMd(h.target)})` : ''} — ${h.state}`, h.error ? `$(warning) ${escapeMd(h.error)}` : '', `plugins: ${h.plugins.map(escapeMd).join(', ') || '—'}`, sshBinaryFor() ? '' : `$(info) ${FALLBACK_RESOLVER_NOTE}`].filter(Boolean));
        item.contextValue = `tether.host;${h.state};${h.state === 'connected' ? 'disconnect;' : 'connect;'}terminal;`;
        return item;
      }
      case 'provider': {
        const item = new vscode.TreeItem(n.title, vscode.TreeItemCollapsibleState.Expanded);
        item.id = n.id;
        item.iconPath = new vscode.ThemeIcon('cloud');
        const inst = (this.snap.cloud?.instances ?? []).filter((i) => i.providerTitle === n.title && i.managed);
        const rate = inst.filter((i) => i.status === 'running' || i.status === 'provisioning').reduce((a, i) => a + i.pricePerHour, 0);
        item.description = rate ? `${formatUsd(rate)}/h` : '';
        item.contextValue = 'tether.provider;';
        return item;
      }
      case 'cloud': {
        const v = n.view;
        const item = new vscode.TreeItem(v.name, vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        const live = v.status === 'running' || v.status === 'provisioning';
        item.iconPath = new vscode.ThemeIcon(
          !v.managed ? 'question' : v.problem ? 'warning' : v.status === 'provisioning' ? 'loading~spin' : live ? 'vm-running' : 'vm-outline',
          v.managed && v.problem ? new vscode.ThemeColor('list.warningForeground') : live && v.managed ? new vscode.ThemeColor('testing.iconPassed') : undefined,
        );
        const up = v.uptimeSeconds >= 3600 ? `${Math.floor(v.uptimeSeconds / 3600)}h ${Math.floor((v.uptimeSeconds % 3600) / 60)}m` : `${Math.floor(v.uptimeSeconds / 60)}m`;
        item.description = [
          v.managed ? v.status : `unmanaged · ${v.status}`,
          v.gpuCount ? `${v.gpuType ?? 'GPU'} × ${v.gpuCount}` : v.instanceType ?? '',
          v.region ?? '',
          `${formatUsd(v.pricePerHour)}/h`,
          v.managed ? `${formatUsd(v.costSoFar)} so far` : '',
          v.managed && live ? up : '',
          v.timeLimitAt ? `⏱ until ${new Date(v.timeLimitAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : '',
          v.deadman ? `⏻ ${v.deadman.minutes}m ${v.deadman.state}` : '',
        ]
          .filter(Boolean)
          .join(' · ');
        item.tooltip = md([
          `**${escapeMd(v.name)}** — ${v.providerTitle} ${v.id ?? ''} (${v.rawStatus})`,
          `${v.instanceType ?? ''} ${v.region ?? ''} · ${formatUsd(v.pricePerHour)}/h · ${formatUsd(v.costSoFar)} so far`,
          v.sshCommand ? `$(terminal) \`${v.sshCommand}\`` : '',
          v.problem ? `$(warning) ${escapeMd(v.problem)}` : '',
          v.deadman
            ? `$(debug-disconnect) dead man's switch: ${v.deadman.minutes} min, ${v.deadman.state}${v.deadman.detail ? ` (${escapeMd(v.deadman.detail)})` : ''}. ${escapeMd(v.deadman.effect)}`
            : '',
        ].filter(Boolean));
        item.contextValue = `tether.cloud;${v.managed ? 'managed' : 'unmanaged'};${v.status !== 'terminated' ? 'terminate;' : ''}${v.sshCommand ? 'ssh;' : ''}${v.consoleUrl ? 'console;' : ''}${v.canStop && v.status === 'running' ? 'stop;' : ''}${v.managed && v.ledgerId ? (v.deadman ? 'deadman;' : 'nodeadman;') : ''}`;
        return item;
      }
      case 'gpu': {
        const g = n.gpu;
        const item = new vscode.TreeItem(`GPU ${g.index}: ${g.name}`, vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        item.iconPath = new vscode.ThemeIcon('circuit-board');
        const mem = g.memoryUsedMiB !== null && g.memoryTotalMiB ? `${(g.memoryUsedMiB / 1024).toFixed(1)}/${(g.memoryTotalMiB / 1024).toFixed(0)} GiB` : '';
        // Another process holding much of a GPU's memory is a conflict for the next job (the
        // original resource manager's "external busy" rule, threshold 45 %).
        const busy = g.memoryUsedMiB !== null && g.memoryTotalMiB ? g.memoryUsedMiB / g.memoryTotalMiB > 0.45 : false;
        item.description = [g.utilizationPercent !== null ? `${g.utilizationPercent}% util` : '', mem, busy ? 'busy' : ''].filter(Boolean).join(' · ');
        item.contextValue = 'tether.gpu;';
        return item;
      }
      case 'info': {
        const item = new vscode.TreeItem(n.label, n.children?.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = n.id;
        item.iconPath = new vscode.ThemeIcon(n.icon, n.icon === 'error' ? new vscode.ThemeColor('errorForeground') : undefined);
        if (n.tooltip) item.tooltip = n.tooltip;
        if (n.description) item.description = n.description;
        if (n.command) item.command = n.command;
        item.contextValue = n.contextValue ?? 'tether.info;';
        return item;
      }
    }
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}

/** An API plugin seen as a PluginStatus, so its processes render like a declared plugin's. */
function apiAsStatus(v: ApiPluginView): PluginStatus {
  return {
    name: v.name,
    kind: 'local',
    executionMode: v.executionMode ?? 'external',
    state: v.processes.length ? 'running' : 'stopped',
    declared: false,
    ledgerId: null,
    workspace: null,
    owner: null,
    ownedByMe: true,
    command: '',
    logPath: null,
    healthUrl: null,
    stopGraceMs: null,
    startedAt: null,
    lastExit: null,
    processes: v.processes,
    actions: [],
  };
}
