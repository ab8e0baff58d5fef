/**
 * The Kubernetes backend (loaded on first use through index.ts): a declared `"kubernetes": {…}`
 * plugin runs as a Job on a cluster of the user's kubeconfig (see jobs.ts). Its status carries
 * the Job's Pods as `parts` (phase, node, restarts, GPU requests) and its price per hour; its
 * stop deletes the Job with Background propagation (the Pods go with it); Jobs with this ledger's
 * marker and no record show as orphans with their own identity-safe stop.
 *
 * `@kubernetes/client-node` itself is imported on the first call to a cluster (client.ts).
 */
import type { PluginSpec } from '../../core/config';
import type { LedgerResource } from '../../core/ledger';
import { readLedgerIdentity } from '../../core/ledgerIdentity';
import type { StopReport } from '../../core/treeKiller';
import { applyLastEnded, baseStatus, type ActionId, type Backend, type BackendContext, type DeclaredPlugin, type PluginStatus, type StatusInput, type UnrecordedResource } from '../backend';
import { kubernetesActions } from './actions';
import { KubernetesJobs, metaOf, type JobView, type KubernetesJobsOptions, type PodView } from './jobs';

class KubernetesPlugin implements DeclaredPlugin {
  private record: LedgerResource | undefined;
  constructor(
    private readonly spec: PluginSpec,
    private readonly jobs: KubernetesJobs,
  ) {}

  get ledgerRecord(): LedgerResource | undefined {
    return this.record;
  }

  async start(): Promise<LedgerResource> {
    this.record = await this.jobs.start(this.spec.name, this.spec.kubernetes!);
    return this.record;
  }

  attach(record: LedgerResource | undefined): void {
    this.record = record;
  }
}

const n = (x: number) => String(Math.round(x * 100) / 100);

/** One Pod as a line of the tree. */
export function podPart(p: PodView): NonNullable<PluginStatus['parts']>[number] {
  const req = [p.gpus ? `${n(p.gpus)} GPU` : '', p.cpus ? `${n(p.cpus)} CPU` : '', p.memoryGiB ? `${n(p.memoryGiB)} GiB` : ''].filter(Boolean).join(', ');
  return {
    id: `pod:${p.namespace}/${p.name}`,
    label: p.name,
    description: [p.terminating ? 'Terminating' : p.phase, p.node ?? 'unscheduled', p.restarts ? `${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : '', req].filter(Boolean).join(' · '),
    tooltip: `Pod ${p.namespace}/${p.name}\nphase: ${p.phase}${p.terminating ? ' (terminating)' : ''}\nnode: ${p.node ?? '—'}\nrestarts: ${p.restarts}\nrequests: ${req || 'none'}${p.startTime ? `\nstarted: ${p.startTime}` : ''}${p.orphaned ? '\norphaned: its Job is gone (deleted without propagation)' : ''}`,
    state: p.phase.toLowerCase(),
  };
}

export class KubernetesBackend implements Backend {
  readonly kind = 'kubernetes';
  readonly jobs: KubernetesJobs;
  private views = new Map<string, JobView>();

  constructor(
    private readonly ctx: BackendContext,
    extra: Partial<Pick<KubernetesJobsOptions, 'env' | 'api' | 'refuse'>> = {},
  ) {
    // The workspace's budget check (a hard cap refuses the launch before its intent), when it lends one.
    const refuse: KubernetesJobsOptions['refuse'] = ({ pricePerHour, what }) => {
      let check: ((provider: string, what: string, perHour: number | undefined) => Error | undefined) | undefined;
      try {
        check = ctx.service('launch-refusal');
      } catch {
        return undefined; // no budget service here (a bare test context)
      }
      return check?.('kubernetes', what, pricePerHour);
    };
    this.jobs = new KubernetesJobs({ ledger: ctx.ledger, owner: ctx.owner, workspace: ctx.workspace, log: (l) => ctx.log.info(l), refuse, ...extra });
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    return new KubernetesPlugin(spec, this.jobs);
  }

  async observe(records: readonly LedgerResource[]): Promise<void> {
    const mine = records.filter((r) => r.kind === 'kubernetes');
    if (!mine.length) return;
    try {
      this.views = await this.jobs.observe(mine);
    } catch (err) {
      this.ctx.log.warn(`kubernetes: ${(err as Error).message}`);
    }
  }

  async status(input: StatusInput): Promise<PluginStatus> {
    const { spec, record } = input;
    input.plugin?.attach(record);
    // observe() may have ended the record since the workspace read it.
    const live = record ? this.ctx.ledger.read().resources.find((r) => r.id === record.id) : undefined;
    const lastEnded = record && !live ? (this.ctx.ledger.read().ended.find((r) => r.id === record.id) ?? input.lastEnded) : input.lastEnded;
    const st = baseStatus(this.ctx, this.kind, { name: input.name, ...(live ? { record: live } : {}), ...(live && input.orphanReason ? { orphanReason: input.orphanReason } : {}) }, [], !!spec);
    const m = live ? metaOf(live) : undefined;
    const view = live ? this.views.get(live.id) : undefined;
    if (spec?.kubernetes) {
      const k = spec.kubernetes;
      st.command = [k.image, ...(k.command ?? []), ...(k.args ?? [])].join(' ');
      st.healthUrl = spec.healthUrl ?? null;
    }
    if (live && m) {
      st.where = `${m.context}/${m.namespace}`;
      st.stopDetail = `The Job ${m.namespace}/${m.jobName} in context ${m.context} is deleted with propagationPolicy Background: its Pods get SIGTERM, then SIGKILL after their termination grace period.`;
      if (!input.orphanReason) st.state = live.state === 'stopping' ? 'stopping' : live.state === 'starting' ? 'starting' : 'running';
      const price = view?.pricePerHour ?? live.remote?.estimatedCostPerHour;
      if (price !== undefined) st.costPerHour = price;
      if (view) st.parts = view.pods.map(podPart);
      else if (m.orphanedPods?.length) st.parts = m.orphanedPods.map((name) => ({ id: `pod:${m.namespace}/${name}`, label: name, description: 'orphaned: its Job was deleted without propagation', state: 'running' }));
      if (live.remote?.status === 'orphaned-pods') st.problem = `the Job ${m.namespace}/${m.jobName} was deleted without propagation: ${m.orphanedPods?.length ?? 0} of its Pods still run (stop deletes them)`;
    }
    applyLastEnded(st, { ...(live ? { record: live } : {}), ...(lastEnded ? { lastEnded } : {}) });
    st.actions = this.actions(st);
    return st;
  }

  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    if (!metaOf(record)) return undefined;
    this.unrecordedCache = undefined;
    // The Pods' own grace period (terminationGracePeriodSeconds) is the cluster's; wait for it and a margin.
    const r = await this.jobs.stop(record.id, { waitMs: Math.max(opts.graceMs, 30_000) + 30_000, ...(opts.reason ? { reason: opts.reason } : {}) });
    return { processes: [], terminated: r.deletedJob || r.deletedPods.length ? 1 : 0, killed: 0, survivors: [], denied: [] };
  }

  async logs(record: LedgerResource, opts: { tail: number }): Promise<string> {
    return this.jobs.logs(record.id, { tail: opts.tail });
  }

  actions(s: PluginStatus): ActionId[] {
    return kubernetesActions(s);
  }

  /** How long a look for unrecorded Jobs is reused (a cluster call per poll would be too many). */
  unrecordedTtlMs = 30_000;
  private unrecordedCache: { at: number; value: UnrecordedResource[] } | undefined;

  /** Jobs with this ledger's marker and no active record, on the contexts and namespaces this ledger has used. */
  async unrecorded(): Promise<UnrecordedResource[]> {
    const c = this.unrecordedCache;
    const open = new Set(this.ctx.ledger.read().resources.map((r) => r.id));
    if (c && Date.now() - c.at < this.unrecordedTtlMs) return c.value.filter((u) => !open.has(u.status.ledgerId ?? ''));
    const value = await this.findUnrecorded();
    this.unrecordedCache = { at: Date.now(), value };
    return value;
  }

  private async findUnrecorded(): Promise<UnrecordedResource[]> {
    const body = this.ctx.ledger.read();
    const all = [...body.resources, ...body.ended].filter((r) => r.kind === 'kubernetes');
    const contexts = [...new Set(all.map((r) => metaOf(r)?.context).filter((c): c is string => !!c))];
    const self = readLedgerIdentity(this.ctx.ledger.stateDir);
    const out: UnrecordedResource[] = [];
    if (!self) return out;
    for (const context of contexts) {
      const namespaces = [...new Set(all.filter((r) => metaOf(r)?.context === context).map((r) => metaOf(r)!.namespace))];
      let views: JobView[];
      try {
        views = await this.jobs.list({ context, namespaces });
      } catch (err) {
        this.ctx.log.debug(`kubernetes: cannot list ${context}: ${(err as Error).message}`);
        continue;
      }
      for (const v of views) {
        if (v.origin !== 'this' || !v.recordId || body.resources.some((r) => r.id === v.recordId)) continue;
        if (v.state === 'succeeded' || v.state === 'failed' || v.state === 'terminating') continue;
        const ended = body.ended.find((r) => r.id === v.recordId);
        const st = baseStatus(this.ctx, this.kind, { name: v.plugin ?? v.name, ...(ended ? { record: ended } : {}), orphanReason: 'a Job with this ledger’s marker and no active record' }, [], false);
        st.state = 'orphan';
        st.ledgerId = v.recordId;
        st.where = `${context}/${v.namespace}`;
        st.parts = v.pods.map(podPart);
        if (v.pricePerHour !== undefined) st.costPerHour = v.pricePerHour;
        st.actions = this.actions(st);
        out.push({
          status: st,
          ...(ended ? { record: ended } : {}),
          stop: (opts) => {
            this.unrecordedCache = undefined;
            return this.jobs.stopMarked({ context, namespace: v.namespace, name: v.name, recordId: v.recordId!, ledger: self, uid: v.uid, waitMs: Math.max(opts.graceMs, 30_000) });
          },
        });
      }
    }
    return out;
  }
}
