/**
 * The local backend: a declared command run as a process tree on this machine (see
 * subprocess.ts), found again after a crash by its marker and stopped by PID + start time.
 */
import type { PluginSpec } from '../../core/config';
import type { LedgerResource } from '../../core/ledger';
import { beforeThisBoot } from '../../core/procfs';
import type { StopReport } from '../../core/treeKiller';
import { applyLastEnded, applySpec, baseStatus, commonActions, type ActionId, type Backend, type BackendContext, type BackendFactory, type DeclaredPlugin, type PluginStatus, type StatusInput } from '../backend';
import { SubprocessPlugin, stopResourceTree, type SubprocessDeps } from './subprocess';

export class LocalBackend implements Backend {
  readonly kind: string = 'local';
  constructor(protected readonly ctx: BackendContext) {}

  protected deps(): SubprocessDeps {
    const { workspace, ledger, tracker, owner, log, startupCheckMs } = this.ctx;
    return { workspace, ledger, tracker, owner, log, ...(startupCheckMs === undefined ? {} : { startupCheckMs }) };
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    return new SubprocessPlugin(spec, this.deps());
  }

  /** Nothing to read: the workspace's reconcile walked `/proc` once for every local record (`ctx.liveProcesses`). */
  async observe(): Promise<void> {}

  async status(input: StatusInput): Promise<PluginStatus> {
    const processes = input.record ? (this.ctx.liveProcesses(input.record.id) ?? []) : [];
    const st = baseStatus(this.ctx, this.kind, input, processes, !!input.spec);
    if (input.spec) {
      const plugin = input.plugin as SubprocessPlugin | undefined;
      plugin?.attach(input.record, processes);
      applySpec(st, input.spec);
      if (plugin) st.logPath = plugin.logPath;
      applyLastEnded(st, input);
    }
    st.actions = this.actions(st);
    return st;
  }

  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    if (opts.plugin instanceof SubprocessPlugin && !opts.reason) {
      opts.plugin.attach(record);
      return opts.plugin.stop(opts.graceMs);
    }
    return stopResourceTree(record, this.ctx.ledger, this.ctx.tracker, this.ctx.log, { graceMs: opts.graceMs, ...(opts.reason ? { reason: opts.reason } : {}) });
  }

  async pids(record: LedgerResource): Promise<number[]> {
    // A record made before this boot has no process left, whatever now holds its PIDs.
    const snap = await this.ctx.tracker.snapshot([{ id: record.id, known: beforeThisBoot(record.createdAt) ? [] : record.processes }]);
    return (snap.get(record.id) ?? []).map((p) => p.pid);
  }

  actions(s: PluginStatus): ActionId[] {
    return localActions(s);
  }
}

/** What the user can do with one of its resources now. */
export function localActions(s: PluginStatus): ActionId[] {
  const out = commonActions(s, s.processes.length > 0);
  if (s.logPath) out.push('logs');
  return out;
}

export const localBackend: BackendFactory = {
  kind: 'local',
  recordKinds: ['local'],
  // An API plugin's local processes are local process trees too (its remote resource is not).
  ownsRecord: (r) => r.kind === 'local' || (r.kind === 'api' && !r.remote),
  owns: () => true,
  actions: localActions,
  create: (ctx) => new LocalBackend(ctx),
};
