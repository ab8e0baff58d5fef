/**
 * The SSH backend: a declared command run as a process tree on an SSH host (see
 * remotePlugin.ts), polled one round trip per host, stopped by PID + start time on the host;
 * and the hosts themselves (state, GPUs) for the tree.
 */
import type { PluginSpec } from '../../core/config';
import { TetherError } from '../../core/errors';
import { endIn, type LedgerResource } from '../../core/ledger';
import type { StopReport } from '../../core/treeKiller';
import { applyLastEnded, applySpec, baseStatus, commonActions, type ActionId, type Backend, type BackendContext, type BackendFactory, type DeclaredPlugin, type PluginStatus, type StatusInput } from '../backend';
import { SshError, type HostState } from './connection';
import type { GpuInfo } from './remote';
import { RemoteSshPlugin, stopRemoteResource, type RemotePluginSpec, type RemoteProcessInfo, type SshHostMonitor, type SshHostStatus, type SshReading } from './remotePlugin';

/** One SSH host as `tether status --json` prints it. */
export interface HostStatus {
  /** The host spec as declared / recorded (alias or user@host:port). */
  host: string;
  /** user@host:port the spec resolved to (absent when it cannot be resolved). */
  target?: string;
  state: HostState;
  /** Why it is unreachable (one line with the remedy). */
  error?: string;
  /** When the next connection attempt may run (ISO), while unreachable. */
  retryAt?: string;
  /** From nvidia-smi on the host; absent when unknown or when the host has no nvidia-smi. */
  gpus?: GpuInfo[];
  /** Plugins on this host: declared in this workspace, or with an active ledger record. */
  plugins: string[];
  /** Set when the host is the SSH endpoint of a running cloud instance Tether launched. */
  cloud?: { ledgerId: string; name: string; provider: string };
}

const oneLine = (err: unknown) => (err instanceof TetherError ? err.oneLine() : err instanceof Error ? err.message : String(err));

export class SshBackend implements Backend {
  readonly kind = 'ssh';
  /** What the last {@link observe} learned: every record whose host answered ([] = nothing left). */
  private polled = new Map<string, RemoteProcessInfo[]>();
  private observed = new Set<string>();
  constructor(private readonly ctx: BackendContext) {}

  /** The SSH connections and remote polls (shared by every workspace of a window). */
  get monitor(): SshHostMonitor {
    return this.ctx.service<SshHostMonitor>('ssh');
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    const { workspace, ledger, owner, log, startupCheckMs } = this.ctx;
    return new RemoteSshPlugin(spec as RemotePluginSpec, { ledger, monitor: this.monitor, owner, log, workspace, ...(startupCheckMs === undefined ? {} : { startupCheckMs }) });
  }

  async prepare(spec: PluginSpec): Promise<void> {
    if (spec.host) await this.monitor.connect(spec.host);
  }

  /**
   * One round trip per host for these records. A record whose host answered that nothing is
   * left is closed; a record of a host that could not be asked is absent from the result
   * (unknown, not gone) and is kept as it is.
   */
  async observe(records: readonly LedgerResource[]): Promise<void> {
    let remote = records.filter((r) => r.host);
    for (const r of remote) this.observed.add(r.id);
    // A window that follows the poll leader shows what the leader's polls found (src/fleet/snapshot.ts)
    // and never closes a record from it: only the process that asked the host does. A record the
    // leader did not poll (started since) is polled here.
    const shared = this.shared();
    if (shared) {
      const own: LedgerResource[] = [];
      for (const r of remote) {
        if (!Object.prototype.hasOwnProperty.call(shared.records, r.id)) own.push(r);
        else {
          const list = shared.records[r.id];
          if (list) this.polled.set(r.id, list);
          else this.polled.delete(r.id);
        }
      }
      remote = own;
    }
    if (!remote.length) return;
    const polled = await this.monitor.poll(remote);
    for (const r of remote) {
      if (polled.has(r.id)) this.polled.set(r.id, polled.get(r.id)!);
      else this.polled.delete(r.id);
    }
    const empty = (r: LedgerResource) => polled.get(r.id)?.length === 0;
    const gone = remote.filter((r) => empty(r) && r.state !== 'starting');
    // A `starting` record older than a minute with nothing on the host is a start that crashed.
    const staleIntents = remote.filter((r) => empty(r) && r.state === 'starting' && Date.now() - Date.parse(r.createdAt) > 60_000);
    if (!gone.length && !staleIntents.length) return;
    const ssh = this.monitor;
    await this.ctx.ledger.update((b) => {
      for (const r of gone) {
        if (!b.resources.some((x) => x.id === r.id)) continue;
        // The host recorded how the command ended when it ended on its own.
        const code = ssh.exitCode(r.id);
        if (code === undefined) endIn(b, r.id, 'stopped', `no process left on ${r.host} (reconciled)`);
        else endIn(b, r.id, code === 0 ? 'stopped' : 'failed', `exited with code ${code} on ${r.host}`, { code, signal: null, at: new Date().toISOString() });
      }
      for (const r of staleIntents) if (b.resources.some((x) => x.id === r.id)) endIn(b, r.id, 'failed', `start on ${r.host} never completed (crash during start?)`);
    }, 'reconciling');
    for (const r of [...gone, ...staleIntents]) {
      ssh.forget(r.id);
      this.ctx.log.info(`${r.plugin}@${r.host}: no process left; ledger record ${r.id} closed`);
    }
  }

  /** The poll leader's reading this window shows this tick instead of polling (undefined: it polls). */
  private shared(): SshReading | undefined {
    return this.monitor.following(this.ctx.ledger.stateDir);
  }

  /** A host's status as the leader's reading has it, unless this process polled the host itself in this tick. */
  private sharedHost(host: string): SshHostStatus | undefined {
    const h = this.shared()?.hosts[host];
    return h && !this.monitor.polledThisTick(host) ? h : undefined;
  }

  /** True when the last {@link observe} of this record got no answer from its host. */
  unanswered(recordId: string): boolean {
    return this.observed.has(recordId) && !this.polled.has(recordId);
  }

  /** The error to show for a host that could not be asked (its records are kept). */
  private unreachableError(host: string): TetherError {
    let err: unknown;
    const h = this.sharedHost(host);
    if (h?.error) return new SshError('unreachable', `${host}: ${h.error}`, { remedy: 'Its ledger records are kept; the poll leader retries by itself.' });
    try {
      err = this.monitor.connection(host).error;
    } catch (e) {
      err = e; // the spec itself cannot be resolved
    }
    if (err instanceof TetherError) return err;
    return new SshError('unreachable', `${host} is unreachable${err instanceof Error ? `: ${err.message}` : ''}`, {
      remedy: 'Its ledger records are kept; Tether retries by itself.',
    });
  }

  /** A host's status; `pollError` is a failure of this status call's poll. */
  hostStatus(host: string, plugins: string[], pollError?: string): HostStatus {
    try {
      const s = this.sharedHost(host) ?? this.monitor.status(host);
      const error = s.error ?? pollError;
      return {
        host,
        target: s.target,
        state: pollError && s.state === 'connected' ? 'unreachable' : s.state,
        ...(error ? { error } : {}),
        ...(s.retryAt ? { retryAt: s.retryAt } : {}),
        ...(s.gpus ? { gpus: s.gpus } : {}),
        plugins,
      };
    } catch (err) {
      return { host, state: 'unreachable', error: oneLine(err), plugins };
    }
  }

  /** Polls the GPUs (and reachability) of a host with nothing tracked on it. */
  async pollGpus(host: string): Promise<void> {
    if (this.sharedHost(host)) return; // the poll leader polled it
    await this.monitor.pollGpus(host);
  }

  async status(input: StatusInput): Promise<PluginStatus> {
    const { record, spec } = input;
    const host = record?.host ?? spec?.host ?? '';
    const list = record ? this.polled.get(record.id) : undefined;
    // Unknown is not gone: the record stays, with the state it has on record.
    const unknown = !!record && list === undefined;
    const processes = list ?? (record ? (this.monitor.lastKnown(record.id) ?? []) : []);
    const st = baseStatus(this.ctx, this.kind, input, processes, !!spec);
    st.host = host;
    if (!record) st.executionMode = 'remote_ssh';
    if (unknown) {
      st.state = input.orphanReason ? 'orphan' : record.state;
      const h = this.hostStatus(host, []);
      st.problem = `host ${host} is unreachable${h.error ? ` (${h.error})` : ''}; the ledger record is kept and Tether retries ${h.retryAt ? `from ${h.retryAt}` : 'on the next poll'}`;
    }
    if (spec) {
      if (!record || record.host === spec.host) (input.plugin as RemoteSshPlugin | undefined)?.attach(record, list ?? (st.processes as RemoteProcessInfo[]));
      applySpec(st, spec);
      applyLastEnded(st, input);
      if (!record && input.lastEnded) st.logPath = input.lastEnded.logPath ?? null;
    }
    st.actions = this.actions(st);
    return st;
  }

  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    const p = opts.plugin;
    if (p instanceof RemoteSshPlugin && p.spec.host === record.host && !opts.reason) {
      p.attach(record);
      return p.stop(opts.graceMs);
    }
    return stopRemoteResource(record, this.ctx.ledger, this.monitor, this.ctx.log, { graceMs: opts.graceMs, ...(opts.reason ? { reason: opts.reason } : {}) });
  }

  async pids(record: LedgerResource): Promise<number[]> {
    await this.observe([record]);
    const list = this.polled.get(record.id);
    if (list === undefined) throw this.unreachableError(record.host!);
    return list.map((p) => p.pid);
  }

  logs(record: LedgerResource, opts: { tail: number }): Promise<string> {
    return this.monitor.readLog(record, opts.tail);
  }

  actions(s: PluginStatus): ActionId[] {
    return sshActions(s);
  }
}

/** What the user can do with one of its resources now. */
export function sshActions(s: PluginStatus): ActionId[] {
  const out = commonActions(s, s.processes.length > 0);
  if (s.ledgerId || s.logPath) out.push('logs');
  return out;
}

export const sshBackend: BackendFactory = {
  kind: 'ssh',
  recordKinds: ['ssh'],
  owns: (spec) => !!spec.host,
  actions: sshActions,
  create: (ctx) => new SshBackend(ctx),
};
