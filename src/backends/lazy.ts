/**
 * A backend whose code loads on first use, as a webpack chunk of its own (`import()`): the
 * registry names it, its actions and which specs and records it owns without loading it; the
 * first call that needs it (a status, a start, a stop) loads it. Activation then carries none of
 * it, and a user who never declares a container never loads the Docker backend.
 */
import type { PluginSpec } from '../core/config';
import type { LedgerResource } from '../core/ledger';
import type { StopReport } from '../core/treeKiller';
import type { ActionId, Backend, BackendContext, BackendFactory, DeclaredPlugin, PluginStatus, ShellCommand, StatusInput, UnrecordedResource } from './backend';

type Meta = Omit<BackendFactory, 'create'>;

/** A factory whose backends load `load()`'s module on first use. */
export function lazyBackend(meta: Meta, load: () => Promise<(ctx: BackendContext) => Backend>): BackendFactory {
  return { ...meta, create: (ctx) => new LazyBackend(meta, ctx, load) };
}

/** A declared plugin whose real object is made once its backend has loaded. */
class LazyPlugin implements DeclaredPlugin {
  private record: LedgerResource | undefined;
  private made: DeclaredPlugin | undefined;
  constructor(
    private readonly spec: PluginSpec,
    private readonly backend: LazyBackend,
  ) {}

  async real(): Promise<DeclaredPlugin> {
    if (!this.made) {
      const p = (await this.backend.load()).plugin(this.spec);
      if (!this.made) {
        p.attach(this.record);
        this.made = p;
      }
    }
    return this.made;
  }
  async start(): Promise<LedgerResource> {
    return (await this.real()).start();
  }
  attach(record: LedgerResource | undefined): void {
    this.record = record;
    this.made?.attach(record);
  }
  get ledgerRecord(): LedgerResource | undefined {
    return this.made ? this.made.ledgerRecord : this.record;
  }
}

const unwrap = async (p: DeclaredPlugin | undefined) => (p instanceof LazyPlugin ? p.real() : p);

class LazyBackend implements Backend {
  readonly kind: string;
  private real: Backend | undefined;
  private loading: Promise<Backend> | undefined;
  constructor(
    private readonly meta: Meta,
    private readonly ctx: BackendContext,
    private readonly loader: () => Promise<(ctx: BackendContext) => Backend>,
  ) {
    this.kind = meta.kind;
  }

  /** The backend itself (a failed load is tried again on the next call). */
  load(): Promise<Backend> {
    this.loading ??= this.loader().then(
      (make) => (this.real = make(this.ctx)),
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  plugin(spec: PluginSpec): DeclaredPlugin {
    return new LazyPlugin(spec, this);
  }
  async observe(records: readonly LedgerResource[]): Promise<void> {
    if (!records.length && !this.real) return;
    await (await this.load()).observe(records);
  }
  async status(input: StatusInput): Promise<PluginStatus> {
    const b = await this.load();
    const plugin = await unwrap(input.plugin);
    return b.status({ ...input, ...(plugin ? { plugin } : {}) });
  }
  async stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined> {
    const b = await this.load();
    const plugin = await unwrap(opts.plugin);
    return b.stop(record, { ...opts, ...(plugin ? { plugin } : {}) });
  }
  async pids(record: LedgerResource): Promise<number[]> {
    return (await (await this.load()).pids?.(record)) ?? [];
  }
  async logs(record: LedgerResource, opts: { tail: number }): Promise<string> {
    return (await (await this.load()).logs?.(record, opts)) ?? '';
  }
  async shell(record: LedgerResource): Promise<ShellCommand | undefined> {
    return (await this.load()).shell?.(record);
  }
  actions(status: PluginStatus): ActionId[] {
    return this.meta.actions(status);
  }
  async prepare(spec: PluginSpec): Promise<void> {
    await (await this.load()).prepare?.(spec);
  }
  async unrecorded(): Promise<UnrecordedResource[]> {
    // Only a ledger that ever had one of this backend's records looks (no engine, daemon or chunk otherwise).
    if (!this.real && !this.ctx.ledger.read().resources.some((r) => (this.meta.ownsRecord ? this.meta.ownsRecord(r) : this.meta.recordKinds.includes(r.kind)))) return [];
    return (await (await this.load()).unrecorded?.()) ?? [];
  }
  dispose(): void {
    this.real?.dispose?.();
  }
}
