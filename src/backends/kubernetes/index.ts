/**
 * The Kubernetes backend's registration: which specs and records it owns, and a backend that
 * loads its implementation (kubernetesBackend.ts, its own webpack chunk; it loads
 * `@kubernetes/client-node` on its first call to a cluster) only when a workspace first uses it,
 * so the extension's main bundle carries none of it.
 */
import type { PluginSpec } from '../../core/config';
import type { LedgerResource } from '../../core/ledger';
import type { StopReport } from '../../core/treeKiller';
import type { ActionId, Backend, BackendContext, BackendFactory, DeclaredPlugin, PluginStatus, StatusInput, UnrecordedResource } from '../backend';
import { kubernetesActions } from './actions';
import type { KubernetesBackend } from './kubernetesBackend';

class LazyKubernetesPlugin implements DeclaredPlugin {
  private inner: DeclaredPlugin | undefined;
  private record: LedgerResource | undefined;
  constructor(
    private readonly spec: PluginSpec,
    private readonly backend: () => Promise<KubernetesBackend>,
  ) {}

  get ledgerRecord(): LedgerResource | undefined {
    return this.inner?.ledgerRecord ?? this.record;
  }

  async start(): Promise<LedgerResource> {
    const inner = (this.inner ??= (await this.backend()).plugin(this.spec));
    const rec = await inner.start();
    this.record = rec;
    return rec;
  }

  attach(record: LedgerResource | undefined): void {
    this.record = record;
    this.inner?.attach(record);
  }
}

class LazyKubernetesBackend implements Backend {
  readonly kind = 'kubernetes';
  private loading: Promise<KubernetesBackend> | undefined;
  constructor(private readonly ctx: BackendContext) {}

  private impl(): Promise<KubernetesBackend> {
    this.loading ??= import('./kubernetesBackend').then((m) => new m.KubernetesBackend(this.ctx));
    this.loading.catch(() => (this.loading = undefined));
    return this.loading;
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    return new LazyKubernetesPlugin(spec, () => this.impl());
  }

  async observe(records: readonly LedgerResource[]): Promise<void> {
    if (!records.some((r) => r.kind === 'kubernetes')) return; // nothing of ours: nothing loaded
    await (await this.impl()).observe(records);
  }

  async status(input: StatusInput): Promise<PluginStatus> {
    const plugin = input.plugin instanceof LazyKubernetesPlugin ? undefined : input.plugin;
    input.plugin?.attach(input.record);
    return (await this.impl()).status({ ...input, ...(plugin ? { plugin } : { plugin: undefined }) });
  }

  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    return (await this.impl()).stop(record, { graceMs: opts.graceMs, ...(opts.reason ? { reason: opts.reason } : {}) });
  }

  async logs(record: LedgerResource, opts: { tail: number }): Promise<string> {
    return (await this.impl()).logs(record, opts);
  }

  actions(s: PluginStatus): ActionId[] {
    return kubernetesActions(s);
  }

  async unrecorded(): Promise<UnrecordedResource[]> {
    // Only a ledger that ever ran a Job looks for them (no cluster call otherwise).
    const body = this.ctx.ledger.read();
    if (![...body.resources, ...body.ended].some((r) => r.kind === 'kubernetes')) return [];
    return (await this.impl()).unrecorded();
  }
}

export const kubernetesBackend: BackendFactory = {
  kind: 'kubernetes',
  recordKinds: ['kubernetes'],
  owns: (spec) => !!spec.kubernetes,
  create: (ctx) => new LazyKubernetesBackend(ctx),
  actions: kubernetesActions,
};
