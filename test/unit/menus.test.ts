// Which context-menu and inline commands each row of the Tether tree offers: every `when`
// clause of package.json's view/item/context menus, evaluated against the contextValue the real
// tree provider gives each node (local, docker and SSH plugins, processes, API plugins, hosts,
// GPUs, cloud providers and instances of every provider, info rows).
import '../helpers/vscodeStub';
import { BACKENDS, DEFAULT_BACKEND } from '../../src/backends/registry';
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TetherTreeProvider, type TreeNode } from '../../src/ui/treeProvider';
import type { Snapshot, TetherModel } from '../../src/ui/model';
import type { PluginStatus } from '../../src/workspace/engine';
import type { CloudView } from '../../src/fleet/cloud';
import type { ProcessInfo } from '../../src/core/processTracker';
import { CloudProviderType } from '../../src/core/protocols';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: { menus: Record<string, Array<{ command: string; when?: string }>> };
};

/** Evaluates the subset of VS Code's when-clause grammar package.json uses; throws on anything else. */
export function evalWhen(when: string, ctx: Record<string, string | boolean | undefined>): boolean {
  const or = when.split('||');
  if (or.length > 1) return or.some((w) => evalWhen(w, ctx));
  return when.split('&&').every((raw) => {
    const t = raw.trim();
    if (t === 'true') return true;
    if (t === 'false') return false;
    let m = /^([\w.]+)\s*=~\s*\/(.*)\/([a-z]*)$/.exec(t);
    if (m) return new RegExp(m[2]!, m[3]).test(String(ctx[m[1]!] ?? ''));
    m = /^([\w.]+)\s*(==|!=)\s*([\w.-]+)$/.exec(t);
    if (m) return (String(ctx[m[1]!] ?? '') === m[3]) === (m[2] === '==');
    m = /^(!?)([\w.]+)$/.exec(t);
    if (m) return !!ctx[m[2]!] !== (m[1] === '!');
    throw new Error(`unsupported when clause: ${t}`);
  });
}

const proc = (pid: number, ppid: number): ProcessInfo => ({
  pid,
  ppid,
  startTime: 1000 + pid,
  startedAt: new Date(0).toISOString(),
  command: 'sleep 300',
  state: 'S',
  cpuPercent: 0,
  rssBytes: 4096,
  escaped: false,
});

/** A status as its backend reports it: the actions come from the backend of its kind (src/backends/registry.ts). */
function plugin(over: Partial<PluginStatus>): PluginStatus {
  const s: PluginStatus = {
    name: 'p',
    kind: 'local',
    executionMode: 'subprocess',
    state: 'stopped',
    declared: true,
    ledgerId: null,
    workspace: '/ws',
    owner: null,
    ownedByMe: false,
    command: 'sleep 300',
    logPath: '/tmp/p.log',
    healthUrl: null,
    stopGraceMs: null,
    startedAt: null,
    lastExit: null,
    processes: [],
    actions: [],
    ...over,
  };
  if (!over.actions) s.actions = [DEFAULT_BACKEND, ...BACKENDS].find((f) => f.kind === s.kind)!.actions(s);
  return s;
}

function instance(over: Partial<CloudView>): CloudView {
  return {
    ledgerId: `L-${over.provider ?? 'aws'}${over.name ?? ''}`,
    managed: true,
    provider: CloudProviderType.AWS,
    providerTitle: 'AWS EC2',
    id: 'i-1',
    name: 'gpu',
    status: 'running',
    rawStatus: 'running',
    gpuCount: 1,
    pricePerHour: 1,
    costSoFar: 0.5,
    uptimeSeconds: 60,
    ...over,
  };
}

const running = { state: 'running' as const, processes: [proc(100, 1), proc(101, 100)] };
const snapshot: Snapshot = {
  seq: 1,
  at: 0,
  folders: [
    {
      folder: '/ws',
      name: 'ws',
      report: {
        schemaVersion: 1,
        workspace: '/ws',
        configFile: '/ws/.vscode/tether.json',
        configured: true,
        configError: null,
        configProblems: [],
        stateDir: '/state',
        generatedAt: new Date(0).toISOString(),
        plugins: [
          plugin({ name: 'web', ledgerId: 'L-web', ...running }),
          plugin({ name: 'idle' }),
          plugin({ name: 'box', kind: 'docker', ledgerId: 'L-box', ...running, container: { id: 'c1', name: 'box', image: 'img', state: 'running', ports: [] } }),
          plugin({ name: 'job', kind: 'ssh', host: 'gpu-box', ledgerId: 'L-job', ...running }),
          plugin({ name: 'lost', declared: false, ledgerId: 'L-lost', state: 'orphan', orphanReason: 'window gone', processes: [proc(200, 1)] }),
        ],
        orphans: [],
        hosts: [
          { host: 'gpu-box', state: 'connected', plugins: ['job'], gpus: [{ index: 0, name: 'A100', utilizationPercent: 5, memoryUsedMiB: 1, memoryTotalMiB: 80000 } as never] },
          { host: 'down-box', state: 'unreachable', error: 'refused', plugins: [] },
        ],
        cloud: { instances: [], errors: [], costPerHour: 0, costSoFar: 0 },
        totals: { running: 3, processes: 6, costPerHour: 0, costSoFar: 0 },
        closedWhileBilling: { spentSince: 1.5, message: 'billed', resources: [{ name: 'gpu' }] } as never,
      },
    },
  ],
  apiPlugins: [
    { name: 'ext', title: 'Ext', lifecycle: true, cloud: false, executionMode: 'subprocess', processes: [proc(300, 1)], costPerHour: 0, costSoFar: 0 },
    { name: 'extCloud', title: 'Ext cloud', lifecycle: false, cloud: true, processes: [], costPerHour: 1, costSoFar: 0 },
  ],
  orphans: [],
  running: 3,
  costPerHour: 3,
  costSoFar: 0,
  budgets: [],
  cloud: {
    instances: [
      instance({ provider: CloudProviderType.AWS, providerTitle: 'AWS EC2', name: 'aws1', canStop: true, sshCommand: 'ssh ubuntu@1.2.3.4', consoleUrl: 'https://console', deadman: undefined }),
      instance({ provider: CloudProviderType.RUNPOD, providerTitle: 'RunPod', name: 'pod1', canStop: true, sshCommand: 'ssh root@1.2.3.5', consoleUrl: 'https://runpod' }),
      instance({ provider: CloudProviderType.VAST_AI, providerTitle: 'Vast.ai', name: 'vast1', canStop: true, sshCommand: 'ssh root@1.2.3.6' }),
      instance({ provider: CloudProviderType.LAMBDA_LABS, providerTitle: 'Lambda Cloud', name: 'lam1', sshCommand: 'ssh ubuntu@1.2.3.7' }),
      instance({ provider: CloudProviderType.AWS, providerTitle: 'AWS EC2', name: 'foreign', managed: false, ledgerId: null, id: 'i-9', canStop: true }),
      instance({ provider: CloudProviderType.AWS, providerTitle: 'AWS EC2', name: 'gone', status: 'terminated', id: 'i-8' }),
    ] as CloudView[],
    errors: [],
    costPerHour: 3,
    costSoFar: 0,
  },
};

/** Every node of the real tree, with its contextValue. */
function allRows(): Array<{ node: TreeNode; context: string; label: string }> {
  const model = { snapshot, onDidChange: () => ({ dispose: () => undefined }) } as unknown as TetherModel;
  const tree = new TetherTreeProvider(model);
  const out: Array<{ node: TreeNode; context: string; label: string }> = [];
  const walk = (n?: TreeNode) => {
    for (const c of tree.getChildren(n)) {
      const item = tree.getTreeItem(c);
      out.push({ node: c, context: item.contextValue ?? '', label: String(item.label) });
      walk(c);
    }
  };
  walk();
  return out;
}

function commandsFor(context: string): string[] {
  const ctx = { view: 'tether.resources', viewItem: context };
  return [...new Set(pkg.contributes.menus['view/item/context']!.filter((m) => evalWhen(m.when ?? 'true', ctx)).map((m) => m.command))].sort();
}

/** Which kind of row each item command acts on (what its handler accepts). */
const COMMAND_KINDS: Record<string, ReadonlyArray<TreeNode['kind']>> = {
  'tether.start': ['plugin'],
  'tether.stop': ['plugin'],
  'tether.restart': ['plugin'],
  'tether.killTree': ['plugin'],
  'tether.killOrphans': ['plugin'],
  'tether.adoptOrphan': ['plugin'],
  'tether.showLogs': ['plugin'],
  'tether.revealConfig': ['plugin'],
  'tether.openShell': ['plugin'],
  'tether.copyPid': ['process'],
  'tether.cleanupApiPlugin': ['api'],
  'tether.sshConnect': ['host'],
  'tether.sshDisconnect': ['host'],
  'tether.openHostTerminal': ['host'],
  'tether.terminateInstance': ['cloud'],
  'tether.copySshCommand': ['cloud'],
  'tether.openProviderConsole': ['cloud'],
  'tether.addAsSshHost': ['cloud'],
  'tether.setTimeLimit': ['cloud'],
  'tether.armDeadman': ['cloud'],
  'tether.disarmDeadman': ['cloud'],
  'tether.stopInstance': ['cloud'],
  'tether.provision': ['provider', 'group'],
  'tether.dismissCloseReport': ['info'],
};

describe('package.json menus against the tree rows', () => {
  const rows = allRows();
  const row = (label: string, kind: TreeNode['kind']) => {
    const r = rows.find((x) => x.label === label && x.node.kind === kind);
    assert.ok(r, `a ${kind} row labelled ${label} (rows: ${rows.map((x) => `${x.node.kind}:${x.label}`).join(', ')})`);
    return r;
  };

  it('the when-clause evaluator understands every menu rule', () => {
    for (const [where, list] of Object.entries(pkg.contributes.menus)) {
      for (const m of list) evalWhen(m.when ?? 'true', { view: 'tether.resources', viewItem: 'x' }); // throws on unknown syntax
      assert.ok(list.length, where);
    }
    assert.equal(evalWhen('view == a && viewItem =~ /^tether\\.plugin;.*;stop;/', { view: 'a', viewItem: 'tether.plugin;local;running;stop;' }), true);
    assert.equal(evalWhen('view == a && viewItem =~ /;stop;/', { view: 'b', viewItem: ';stop;' }), false);
  });

  it('every row kind is covered by the fixture tree', () => {
    const kinds = new Set(rows.map((r) => r.node.kind));
    for (const k of ['group', 'plugin', 'process', 'api', 'host', 'gpu', 'provider', 'cloud', 'info'] as const) assert.ok(kinds.has(k), `a ${k} row`);
  });

  it('each item command appears only on the kind of row it acts on', () => {
    const wrong: string[] = [];
    for (const r of rows) {
      for (const c of commandsFor(r.context)) {
        const kinds = COMMAND_KINDS[c];
        assert.ok(kinds, `${c} has a row kind in this test`);
        if (!kinds.includes(r.node.kind)) wrong.push(`${c} on ${r.node.kind} row "${r.label}" (${r.context})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('running AWS, RunPod and Vast rows offer Stop Instance, never Stop Plugin', () => {
    for (const label of ['aws1', 'pod1', 'vast1']) {
      const cmds = commandsFor(row(label, 'cloud').context);
      assert.ok(cmds.includes('tether.stopInstance'), `${label}: ${cmds.join(', ')}`);
      assert.ok(cmds.includes('tether.terminateInstance'), `${label}: ${cmds.join(', ')}`);
      for (const c of ['tether.stop', 'tether.start', 'tether.restart', 'tether.killTree']) assert.ok(!cmds.includes(c), `${label} offers ${c}`);
    }
  });

  it('the exact command set of each representative row', () => {
    const expect: Array<[string, TreeNode['kind'], string[]]> = [
      ['web', 'plugin', ['tether.killTree', 'tether.restart', 'tether.revealConfig', 'tether.showLogs', 'tether.stop']],
      ['idle', 'plugin', ['tether.revealConfig', 'tether.showLogs', 'tether.start']],
      ['box', 'plugin', ['tether.killTree', 'tether.openShell', 'tether.restart', 'tether.revealConfig', 'tether.showLogs', 'tether.stop']],
      ['job', 'plugin', ['tether.killTree', 'tether.restart', 'tether.revealConfig', 'tether.showLogs', 'tether.stop']],
      ['lost', 'plugin', ['tether.adoptOrphan', 'tether.killOrphans', 'tether.killTree', 'tether.showLogs']],
      ['Ext', 'api', ['tether.cleanupApiPlugin']],
      ['gpu-box', 'host', ['tether.openHostTerminal', 'tether.sshDisconnect']],
      ['down-box', 'host', ['tether.openHostTerminal', 'tether.sshConnect']],
      ['AWS EC2', 'provider', ['tether.provision']],
      ['Cloud', 'group', ['tether.provision']],
      ['Local processes', 'group', []],
      [
        'aws1',
        'cloud',
        ['tether.addAsSshHost', 'tether.armDeadman', 'tether.copySshCommand', 'tether.openProviderConsole', 'tether.setTimeLimit', 'tether.stopInstance', 'tether.terminateInstance'],
      ],
      ['lam1', 'cloud', ['tether.addAsSshHost', 'tether.armDeadman', 'tether.copySshCommand', 'tether.setTimeLimit', 'tether.terminateInstance']],
      ['foreign', 'cloud', ['tether.setTimeLimit', 'tether.stopInstance', 'tether.terminateInstance']],
      ['gone', 'cloud', []], // terminated: nothing to arm, stop or terminate
    ];
    for (const [label, kind, cmds] of expect) assert.deepEqual(commandsFor(row(label, kind).context), cmds, `${kind} ${label}`);
    const pidRow = rows.find((r) => r.node.kind === 'process');
    assert.deepEqual(commandsFor(pidRow!.context), ['tether.copyPid']);
  });
});
