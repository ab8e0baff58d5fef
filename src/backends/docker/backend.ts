/**
 * The Docker backend: a declared image run as a container labelled with the ledger's marker
 * (see docker.ts); its host process tree is shown below it, and only this ledger's containers
 * are ever stopped.
 */
import type Docker from 'dockerode';
import type { PluginSpec } from '../../core/config';
import type { LedgerResource } from '../../core/ledger';
import { beforeThisBoot } from '../../core/procfs';
import type { StopReport } from '../../core/treeKiller';
import { applySpec, baseStatus, type ActionId, type Backend, type BackendContext, type DeclaredPlugin, type PluginStatus, type ShellCommand, type StatusInput, type UnrecordedResource } from '../backend';
import { dockerActions } from './index';
import { DockerPlugin, containerLogs, dockerClient, dockerSpecFromPlugin, findOrphanContainers, removeTetherContainer, type ContainerStopReport } from './docker';

/** A container's stop, in the shape of a process-tree stop (its host process). */
function containerStopAsReport(r: ContainerStopReport | undefined, record: LedgerResource): StopReport | undefined {
  if (!r) return undefined;
  const host = record.processes[0];
  return {
    processes: host ? [host] : [],
    terminated: r.stoppedBy === 'signal' ? 1 : 0,
    killed: r.stoppedBy === 'SIGKILL' ? 1 : 0,
    survivors: [],
    denied: [],
  };
}

export class DockerBackend implements Backend {
  readonly kind = 'docker';
  private client: Docker | undefined;
  constructor(private readonly ctx: BackendContext) {}

  /** The Docker engine client (made on first use; honours DOCKER_HOST). */
  private get docker(): Docker {
    return (this.client ??= dockerClient());
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    const { workspace, ledger, tracker, owner, log, startupCheckMs } = this.ctx;
    return new DockerPlugin(dockerSpecFromPlugin(spec), { workspace, ledger, tracker, owner, log, ...(startupCheckMs === undefined ? {} : { startupCheckMs }), docker: this.docker });
  }

  /** Each container is read by its status (one inspect per declared container). */
  async observe(): Promise<void> {}

  async status(input: StatusInput): Promise<PluginStatus> {
    const { spec, record } = input;
    const plugin = input.plugin as DockerPlugin | undefined;
    plugin?.attach(record);
    let problem: string | undefined;
    let cs: Awaited<ReturnType<DockerPlugin['refresh']>>;
    if (record && plugin) {
      try {
        cs = await plugin.refresh();
      } catch (err) {
        problem = err instanceof Error ? ((err as { oneLine?: () => string }).oneLine?.() ?? err.message) : String(err);
      }
      if (cs && !cs.running) {
        // The container exited or vanished: the run is over.
        const failed = cs.exitCode !== null && cs.exitCode !== 0 && record.state !== 'stopping';
        await this.ctx.ledger.end(record.id, failed ? 'failed' : 'stopped', `container ${cs.state}`, { code: cs.exitCode, signal: null, at: new Date().toISOString() });
      }
    }
    const live = record && (cs?.running || !plugin) ? record : undefined;
    const st = baseStatus(this.ctx, this.kind, { name: input.name, record: live, ...(live && input.orphanReason ? { orphanReason: input.orphanReason } : {}) }, cs?.running ? cs.processes : [], !!spec);
    if (spec) {
      applySpec(st, spec);
      st.command = `${spec.docker!.image}${spec.args.length || spec.command ? ` ${[spec.command, ...spec.args].filter(Boolean).join(' ')}` : ''}`;
      st.stopGraceMs = null;
    }
    if (cs && live) {
      st.container = { id: cs.containerId, name: cs.name, image: cs.image, state: cs.state, ports: cs.ports };
      try {
        const stats = await plugin!.stats();
        if (stats) Object.assign(st.container, { cpuPercent: stats.cpuPercent, memoryBytes: stats.memoryBytes });
      } catch (err) {
        this.ctx.log.debug(`${input.name}: no container stats: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (problem) {
      st.problem = problem;
      if (record) st.state = record.state === 'failed' ? 'failed' : 'running';
    }
    if (!live && !problem && input.lastEnded) {
      st.state = input.lastEnded.state === 'failed' ? 'failed' : 'stopped';
      st.lastExit = input.lastEnded.exit ?? null;
    }
    st.icon = 'package';
    st.actions = this.actions(st);
    return st;
  }

  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    if (opts.plugin instanceof DockerPlugin && !opts.reason) {
      opts.plugin.attach(record);
      return containerStopAsReport(await opts.plugin.stop(opts.graceMs / 1000), record);
    }
    // An intent's container has a name before it has an id (a start that crashed in between).
    const ref = record.container?.id || record.container?.name;
    if (!ref) return undefined;
    const r = await removeTetherContainer(this.docker, ref, { ledger: this.ctx.ledger, graceSeconds: opts.graceMs / 1000, log: this.ctx.log, ...(opts.reason ? { reason: opts.reason } : {}) });
    // A container that was created (its id recorded) and that Docker no longer knows is gone: its run is over.
    // (A name alone may still be created by a start in progress: that record stays.)
    if (r.gone && record.container?.id && this.ctx.ledger.read().resources.some((x) => x.id === record.id)) {
      await this.ctx.ledger.end(record.id, 'stopped', `container ${record.container.name || record.container.id.slice(0, 12)} was already gone${opts.reason ? ` (${opts.reason})` : ''}`);
    }
    return containerStopAsReport(r, record);
  }

  /** The container's host process tree (its record names the host process), as `tether pids` printed it before. */
  async pids(record: LedgerResource): Promise<number[]> {
    const snap = await this.ctx.tracker.snapshot([{ id: record.id, known: beforeThisBoot(record.createdAt) ? [] : record.processes }]);
    return (snap.get(record.id) ?? []).map((p) => p.pid);
  }

  async logs(record: LedgerResource, opts: { tail: number }): Promise<string> {
    const cid = record.container?.id;
    return cid ? containerLogs(this.docker, cid, { tail: opts.tail, what: record.plugin }) : '';
  }

  shell(record: LedgerResource): ShellCommand | undefined {
    const cid = record.container?.id;
    if (!cid) return undefined;
    return { name: `${record.plugin} (container)`, command: 'docker', args: ['exec', '-it', cid, 'sh'], env: process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {} };
  }

  actions(s: PluginStatus): ActionId[] {
    return dockerActions(s);
  }

  async unrecorded(): Promise<UnrecordedResource[]> {
    // Only a ledger that ever ran a container looks for them (no Docker engine needed otherwise).
    const body = this.ctx.ledger.read();
    if (!body.resources.some((r) => r.kind === 'docker')) return [];
    const out: UnrecordedResource[] = [];
    for (const o of await findOrphanContainers(this.docker, this.ctx.ledger)) {
      const st = baseStatus(this.ctx, this.kind, { name: o.container.plugin ?? o.container.name, ...(o.record ? { record: o.record } : {}), orphanReason: o.reason }, [], false);
      st.state = 'orphan';
      st.ledgerId = o.record?.id ?? o.container.ledgerId ?? null;
      st.container = { id: o.container.id, name: o.container.name, image: o.container.image, state: o.container.state, ports: [] };
      st.actions = this.actions(st);
      out.push({
        status: st,
        ...(o.record ? { record: o.record } : {}),
        stop: (opts) => removeTetherContainer(this.docker, o.container.id, { ledger: this.ctx.ledger, graceSeconds: opts.graceMs / 1000, log: this.ctx.log, reason: opts.reason }),
      });
    }
    return out;
  }
}

