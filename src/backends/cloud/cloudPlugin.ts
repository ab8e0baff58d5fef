/**
 * A cloud instance as a Tether plugin: {@link CloudAwarePlugin} over any {@link CloudProvider}
 * (execution mode `cloud_gpu` for a machine with a GPU, `cloud_vm` without; see executionModeOf).
 *
 * Never forget a billing instance: the ledger gets an *intent* (kind `cloud`, provider, type,
 * region and the price at launch) before the launch call; the instance id is patched in after;
 * an ambiguous failure keeps the record and re-checks by marker; termination ends the record.
 */
import type { Ledger, LedgerResource, ResourceState } from '../../core/ledger';
import { PluginExecutionMode, remoteResourceInfo, type CloudAwarePlugin, type RemoteResourceInfo } from '../../core/protocols';
import { findByMarker, ledgerIdentity } from './marker';
import { CloudApiError, isAmbiguous, markedName, type CloudInstance, type CloudProvider, type InstanceState } from './provider';

export interface CloudInstancePluginOptions {
  provider: CloudProvider;
  ledger: Ledger;
  /** Plugin name recorded in the ledger. Default `cloud-<provider>`. */
  name?: string;
  executionMode?: PluginExecutionMode;
  workspace?: string;
  log?: (line: string) => void;
  /**
   * Called with the intent once it is in the ledger, before the provider is called (e.g. to
   * refuse a name an earlier intent took). Throwing ends the intent as failed, unlaunched.
   */
  beforeLaunch?: (intent: LedgerResource) => void | Promise<void>;
}

export interface ProvisionConfig {
  instanceType: string;
  region?: string;
  name?: string;
  sshKeyName?: string;
  image?: string;
  /** What an OS-level shutdown does, where the provider lets the launch choose (EC2). */
  shutdownBehavior?: 'stop' | 'terminate';
  /** USD/h when the caller already knows it (else read from the catalogue). */
  pricePerHour?: number;
  /** GPUs of the type when the caller already knows them (else read from the catalogue). */
  gpuCount?: number;
  gpuType?: string;
}

/**
 * The kind of a rented machine (protocols.md: `cloud_gpu` for GPU rental, `cloud_vm` for a
 * virtual machine such as EC2): with GPUs `cloud_gpu`, with none `cloud_vm`; unknown (no
 * catalogue entry) `cloud_gpu`, what every provider here rents by default.
 */
export function executionModeOf(gpuCount: number | undefined): PluginExecutionMode {
  return gpuCount === 0 ? PluginExecutionMode.CLOUD_VM : PluginExecutionMode.CLOUD_GPU;
}

/** Ledger state for a provider state. */
export function ledgerStateOf(s: InstanceState): ResourceState {
  switch (s) {
    case 'running':
      return 'running';
    case 'provisioning':
    case 'unknown':
      return 'starting';
    case 'stopping':
    case 'terminating':
      return 'stopping';
    case 'stopped':
    case 'terminated':
      return 'stopped';
  }
}

/** The `remote` part of a ledger record for an instance. */
export function remoteOf(inst: CloudInstance, base?: RemoteResourceInfo): RemoteResourceInfo {
  return remoteResourceInfo({
    ...(base ?? {}),
    provider: inst.provider,
    instanceId: inst.id,
    ...(inst.region ?? base?.region ? { region: inst.region ?? base?.region } : {}),
    ...(inst.instanceType ?? base?.resourceType ? { resourceType: base?.resourceType ?? inst.instanceType } : {}),
    ...(inst.sshHost ? { sshHost: inst.sshHost } : {}),
    sshPort: inst.sshPort ?? base?.sshPort ?? 22,
    status: inst.status,
    gpuCount: inst.gpuCount || base?.gpuCount || 0,
    ...(inst.gpuType ?? base?.gpuType ? { gpuType: inst.gpuType ?? base?.gpuType } : {}),
    // The price recorded at launch wins over what the provider quotes later.
    ...(base?.estimatedCostPerHour ?? inst.pricePerHour) !== undefined ? { estimatedCostPerHour: base?.estimatedCostPerHour ?? inst.pricePerHour } : {},
    metadata: {
      ...(base?.metadata ?? {}),
      providerStatus: inst.rawStatus,
      ...(inst.name ? { name: inst.name } : {}),
      ...(inst.sshUser ? { sshUser: inst.sshUser } : {}),
      ...(inst.launchedAt ? { launchedAt: inst.launchedAt } : {}),
    },
  });
}

export class CloudInstancePlugin implements CloudAwarePlugin {
  readonly name: string;
  private info: RemoteResourceInfo | undefined;
  private recordId: string | undefined;
  /** The kind decided at provisioning (from the instance type's GPUs) when not given in the options. */
  private mode: PluginExecutionMode | undefined;

  constructor(private readonly opts: CloudInstancePluginOptions) {
    this.name = opts.name ?? `cloud-${opts.provider.type}`;
  }

  getExecutionMode(): PluginExecutionMode {
    return this.opts.executionMode ?? this.mode ?? PluginExecutionMode.CLOUD_GPU;
  }

  /** The ledger record of the current resource. */
  get ledgerId(): string | undefined {
    return this.recordId;
  }

  getRemoteResourceInfo(): RemoteResourceInfo | undefined {
    return this.info;
  }

  async provisionRemoteResource(config: Record<string, unknown>): Promise<RemoteResourceInfo> {
    const c = config as unknown as ProvisionConfig;
    if (typeof c.instanceType !== 'string' || !c.instanceType) throw new CloudApiError(this.opts.provider.title, 'no instance type given', { remedy: 'pick an instance type from the catalogue' });
    if (this.recordId) throw new CloudApiError(this.opts.provider.title, 'this plugin already has an instance', { remedy: 'terminate it first' });
    const { provider, ledger } = this.opts;
    // What the provider refuses without a call (Lambda: exactly one SSH key) is refused before the intent.
    await (provider as { checkLaunch?: (r: Pick<ProvisionConfig, 'instanceType' | 'region' | 'sshKeyName'>) => void | Promise<void> }).checkLaunch?.(c);

    let price = c.pricePerHour;
    let gpuType = c.gpuType;
    let knownGpus = c.gpuCount;
    if (price === undefined || knownGpus === undefined) {
      const t = (await provider.listInstanceTypes()).find((x) => x.name === c.instanceType);
      if (t) {
        price ??= t.pricePerHour;
        gpuType ??= t.gpuType;
        knownGpus ??= t.gpuCount;
      }
    }
    const gpuCount = knownGpus ?? 0;
    this.mode = executionModeOf(knownGpus);
    const name = c.name ?? 'tether';
    // This ledger's id goes into the marker: other ledgers sharing the account leave the instance alone.
    const owner = ledgerIdentity(ledger.stateDir);
    const rec = await ledger.addIntent({
      kind: 'cloud',
      plugin: this.name,
      executionMode: this.getExecutionMode(),
      ...(this.opts.workspace ? { workspace: this.opts.workspace } : {}),
      owner: { kind: 'api', pid: process.pid, startTime: 0, host: (await import('node:os')).hostname() },
      remote: remoteResourceInfo({
        provider: provider.type,
        ...(c.region ? { region: c.region } : {}),
        resourceType: c.instanceType,
        status: 'provisioning',
        gpuCount,
        ...(gpuType ? { gpuType } : {}),
        ...(price !== undefined ? { estimatedCostPerHour: price } : {}),
        metadata: { requestedName: name, priceAtLaunch: price ?? null, pricedAt: new Date().toISOString(), ...(c.shutdownBehavior ? { shutdownBehavior: c.shutdownBehavior } : {}) },
      }),
    });
    this.recordId = rec.id;
    // Set before launching so the marker is computed from the record id.
    rec.remote!.metadata.marker = markedName({ ledgerId: rec.id, name, owner });
    await ledger.patch(rec.id, { remote: rec.remote! });
    this.info = rec.remote;
    if (this.opts.beforeLaunch) {
      try {
        await this.opts.beforeLaunch(rec);
      } catch (err) {
        await ledger.end(rec.id, 'failed', `not launched: ${(err as Error).message}`);
        this.recordId = undefined;
        this.info = undefined;
        throw err;
      }
    }
    crashPoint('before-launch');

    let inst: CloudInstance;
    try {
      inst = await provider.launch({
        ledgerId: rec.id,
        owner,
        name,
        instanceType: c.instanceType,
        ...(c.region ? { region: c.region } : {}),
        ...(c.sshKeyName ? { sshKeyName: c.sshKeyName } : {}),
        ...(c.image ? { image: c.image } : {}),
        ...(c.shutdownBehavior ? { shutdownBehavior: c.shutdownBehavior } : {}),
      });
    } catch (err) {
      const ambiguous = isAmbiguous(err) || !(err instanceof CloudApiError) || err.status === undefined || err.status >= 500;
      if (ambiguous) {
        // It may exist anyway: look for the marker before giving up; keep the record either way.
        const found = await provider.listInstances().then((l) => findByMarker(l, rec.id, owner)[0], () => undefined);
        if (found) {
          inst = found;
        } else {
          await ledger.patch(rec.id, {}, `launch outcome unknown (${(err as Error).message}); the reconciler will look for the marker`).catch(() => undefined);
          throw err;
        }
      } else {
        await ledger.end(rec.id, 'failed', `launch refused: ${(err as Error).message}`);
        this.recordId = undefined;
        this.info = undefined;
        throw err;
      }
    }
    crashPoint('after-launch');
    this.info = remoteOf(inst, rec.remote);
    await ledger.patch(rec.id, { remote: this.info, state: ledgerStateOf(inst.status) }, `launched ${inst.id}`);
    crashPoint('after-record');
    return this.info;
  }

  async checkRemoteResourceStatus(): Promise<string> {
    if (!this.info) return 'not_provisioned';
    // Terminated through this plugin: the protocol's word is "terminated".
    if (!this.recordId) return this.info.status === 'terminated' ? 'terminated' : 'not_provisioned';
    const id = this.info.instanceId;
    if (!id) return this.info.status;
    const inst = await this.opts.provider.describe(id);
    if (!inst || inst.status === 'terminated') {
      this.info = { ...this.info, status: 'terminated', metadata: { ...this.info.metadata, providerStatus: inst?.rawStatus ?? 'gone' } };
      await this.opts.ledger.end(this.recordId, 'stopped', 'instance terminated at the provider');
      this.recordId = undefined;
      return 'terminated';
    }
    const changed = inst.status !== this.info.status || inst.rawStatus !== this.info.metadata.providerStatus || inst.sshHost !== this.info.sshHost;
    this.info = remoteOf(inst, this.info);
    if (changed) await this.opts.ledger.patch(this.recordId, { remote: this.info, state: ledgerStateOf(inst.status) }, `provider says ${inst.rawStatus}`);
    return inst.status;
  }

  async terminateRemoteResource(): Promise<boolean> {
    if (!this.recordId || !this.info?.instanceId) return false;
    await this.opts.provider.terminate(this.info.instanceId);
    const launchedAt = Date.parse(String(this.info.metadata.launchedAt ?? ''));
    const hours = Number.isFinite(launchedAt) ? Math.max(0, Date.now() - launchedAt) / 3_600_000 : undefined;
    const cost = hours === undefined ? '' : `; about $${this.estimateCost(hours).toFixed(2)} accrued`;
    this.info = { ...this.info, status: 'terminated' };
    await this.opts.ledger.end(this.recordId, 'stopped', `terminated by Tether${cost}`);
    this.recordId = undefined;
    return true;
  }

  estimateCost(durationHours: number): number {
    const rate = this.info?.estimatedCostPerHour;
    if (!this.info || rate === undefined || !Number.isFinite(rate)) return 0;
    return rate * durationHours;
  }

  /** Takes over a ledger record (after a restart). */
  static fromRecord(opts: CloudInstancePluginOptions, rec: LedgerResource): CloudInstancePlugin {
    const p = new CloudInstancePlugin({ ...opts, name: rec.plugin });
    p.recordId = rec.id;
    p.info = rec.remote;
    p.mode = rec.executionMode;
    return p;
  }
}

/**
 * Fault injection for the crash tests only: `TETHER_TEST_CRASH_AT=before-launch|after-launch|
 * after-record` kills this process at that step of provisioning, as a crash or a killed
 * extension host would.
 */
function crashPoint(point: 'before-launch' | 'after-launch' | 'after-record'): void {
  if (process.env.TETHER_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}
