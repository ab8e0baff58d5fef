/**
 * The two plugin protocols Tether implements: lifecycle-aware and cloud-aware plugins.
 *
 * Faithful TypeScript port of the protocols of cjm-fasthtml-plugins (see README, "Protocols").
 * Method names are camelCase; enum *values* are kept exactly, because they appear in the ledger,
 * in the CLI's JSON and in the public API.
 *
 * Deliberate extensions (documented in the README): `getAllManagedPids` returns the whole live
 * process tree, and `getTotalEstimatedCost` reports a broken estimate instead of throwing.
 */
import { descendantsOf } from './procfs';

/** How and where a plugin runs. Values are the protocol's wire strings. */
export enum PluginExecutionMode {
  IN_PROCESS = 'in_process',
  SUBPROCESS = 'subprocess',
  DOCKER = 'docker',
  CONDA_ENV = 'conda_env',
  /** An external local service. Name and value differ on purpose, as in the original. */
  EXTERNAL_SERVICE = 'external',
  REMOTE_SSH = 'remote_ssh',
  /** EC2, GCP Compute. */
  CLOUD_VM = 'cloud_vm',
  /** ECS, Cloud Run. */
  CLOUD_CONTAINER = 'cloud_container',
  CLOUD_SERVERLESS = 'cloud_serverless',
  /** GPU rental and managed GPU services. */
  CLOUD_GPU = 'cloud_gpu',
  CLOUD_CPU = 'cloud_cpu',
  KUBERNETES = 'kubernetes',
}

/** Cloud providers a remote resource can live on. */
export enum CloudProviderType {
  AWS = 'aws',
  GCP = 'gcp',
  AZURE = 'azure',
  LAMBDA_LABS = 'lambda_labs',
  RUNPOD = 'runpod',
  VAST_AI = 'vast_ai',
  CLOUD_RUN = 'cloud_run',
  PAPERSPACE = 'paperspace',
  TOGETHER_AI = 'together_ai',
  CUSTOM = 'custom',
}

const LOCAL_MODES: ReadonlySet<PluginExecutionMode> = new Set([
  PluginExecutionMode.IN_PROCESS,
  PluginExecutionMode.SUBPROCESS,
  PluginExecutionMode.DOCKER,
  PluginExecutionMode.CONDA_ENV,
  PluginExecutionMode.EXTERNAL_SERVICE,
]);

/** True for the modes that run on this machine. */
export function isLocalMode(mode: PluginExecutionMode): boolean {
  return LOCAL_MODES.has(mode);
}

/** A resource that lives somewhere else: a VM, a GPU rental, a job. */
export interface RemoteResourceInfo {
  provider: CloudProviderType;
  region?: string;
  instanceId?: string;
  jobId?: string;
  endpointUrl?: string;
  sshHost?: string;
  /** Default 22. */
  sshPort: number;
  /** e.g. provisioning, running, stopping, stopped, terminated. Default "unknown". */
  status: string;
  /** e.g. "p3.2xlarge", "4x_A100". */
  resourceType?: string;
  /** Default 0. */
  gpuCount: number;
  gpuType?: string;
  /** USD per hour. */
  estimatedCostPerHour?: number;
  /** Provider-specific extras. Default {}. */
  metadata: Record<string, unknown>;
}

/** Builds a {@link RemoteResourceInfo} with the protocol's defaults filled in. */
export function remoteResourceInfo(
  fields: Partial<RemoteResourceInfo> & { provider: CloudProviderType },
): RemoteResourceInfo {
  return { sshPort: 22, status: 'unknown', gpuCount: 0, metadata: {}, ...fields };
}

/** Describes a plugin without loading it. */
export class PluginMetadata {
  name: string;
  category: string;
  title: string;
  configSchema: Record<string, unknown>;
  description?: string;
  version?: string;
  isConfigured = false;
  executionMode: PluginExecutionMode = PluginExecutionMode.IN_PROCESS;
  managesChildProcesses = false;
  managesExternalResources = false;
  spawnedPids: number[] = [];
  containerId?: string;
  condaEnvName?: string;
  remoteResource?: RemoteResourceInfo;

  constructor(
    fields: Pick<PluginMetadata, 'name' | 'category' | 'title' | 'configSchema'> &
      Partial<Omit<PluginMetadata, 'uniqueId' | 'key' | 'isLocalExecution' | 'isCloudExecution' | 'hasActiveResources'>>,
  ) {
    this.name = fields.name;
    this.category = fields.category;
    this.title = fields.title;
    this.configSchema = fields.configSchema;
    Object.assign(this, fields);
  }

  /** The original's id, `${category}_${name}`. It can collide (`a_b`+`c` vs `a`+`b_c`); see {@link key}. */
  get uniqueId(): string {
    return `${this.category}_${this.name}`;
  }

  /** Tether's collision-free id: both parts percent-encoded around a separator they cannot contain. */
  get key(): string {
    return `${encodeURIComponent(this.category)}/${encodeURIComponent(this.name)}`;
  }

  isLocalExecution(): boolean {
    return isLocalMode(this.executionMode);
  }

  isCloudExecution(): boolean {
    return !this.isLocalExecution();
  }

  hasActiveResources(): boolean {
    return this.spawnedPids.length > 0 || !!this.containerId || this.remoteResource?.status === 'running';
  }
}

/** A plugin that starts processes or other resources and can be made to release all of them. */
export interface LifecycleAwarePlugin {
  getExecutionMode(): PluginExecutionMode;
  /** PIDs of the child processes it manages; [] when none run. */
  getChildPids(): number[];
  /** Server URLs, container ids, conda envs... */
  getManagedResources(): Record<string, unknown>;
  /** Kill processes, stop containers, release everything it manages. */
  forceCleanup(): void | Promise<void>;
}

/** A plugin that provisions, watches and terminates a remote resource. */
export interface CloudAwarePlugin {
  /** Undefined until provisioned. */
  getRemoteResourceInfo(): RemoteResourceInfo | undefined;
  provisionRemoteResource(config: Record<string, unknown>): RemoteResourceInfo | Promise<RemoteResourceInfo>;
  /** "not_provisioned" before anything exists, else the resource's status. */
  checkRemoteResourceStatus(): string | Promise<string>;
  /** True if termination succeeded; false when there was nothing to do. */
  terminateRemoteResource(): boolean | Promise<boolean>;
  /** USD for the given hours; 0 when nothing is provisioned; a missing rate counts as 0. */
  estimateCost(durationHours: number): number;
}

const LIFECYCLE_METHODS = ['getExecutionMode', 'getChildPids', 'getManagedResources', 'forceCleanup'] as const;
const CLOUD_METHODS = [
  'getRemoteResourceInfo',
  'provisionRemoteResource',
  'checkRemoteResourceStatus',
  'terminateRemoteResource',
  'estimateCost',
] as const;

function hasMethods(x: unknown, names: readonly string[]): boolean {
  if (x === null || (typeof x !== 'object' && typeof x !== 'function')) return false;
  const rec = x as Record<string, unknown>;
  return names.every((n) => typeof rec[n] === 'function');
}

/** Structural check, like Python's runtime-checkable Protocol: all four methods present. */
export function isLifecycleAware(x: unknown): x is LifecycleAwarePlugin {
  return hasMethods(x, LIFECYCLE_METHODS);
}

/** Structural check of the five cloud methods. */
export function isCloudAware(x: unknown): x is CloudAwarePlugin {
  return hasMethods(x, CLOUD_METHODS);
}

/**
 * Every PID a plugin manages: its child PIDs plus every live descendant of theirs
 * (the original returns only the children). [] for a non-plugin. Order: children first, then
 * descendants breadth-first; no duplicates.
 */
export function getAllManagedPids(x: unknown): number[] {
  if (!isLifecycleAware(x)) return [];
  const roots = x.getChildPids();
  const seen = new Set<number>(roots);
  const out = [...roots];
  for (const pid of descendantsOf(roots)) {
    if (!seen.has(pid)) {
      seen.add(pid);
      out.push(pid);
    }
  }
  return out;
}

/** True when a resource exists and its *cached* status is exactly "running" (as the original). */
export function hasActiveCloudResources(x: unknown): boolean {
  if (!isCloudAware(x)) return false;
  return x.getRemoteResourceInfo()?.status === 'running';
}

/** A plugin whose estimate could not be used, reported by {@link getTotalEstimatedCost}. */
export interface EstimateError {
  plugin: unknown;
  error: Error;
}

/**
 * Sum of `estimateCost(durationHours)` over the plugins that are cloud-aware and have an active
 * resource. A missing or non-finite estimate is reported through `onError` and skipped, so one
 * broken plugin cannot hide the others' cost. Negative durations are rejected.
 */
export function getTotalEstimatedCost(
  plugins: readonly unknown[],
  durationHours = 1,
  onError?: (e: EstimateError) => void,
): number {
  if (!Number.isFinite(durationHours) || durationHours < 0) {
    throw new RangeError(`durationHours must be a finite number >= 0, got ${durationHours}`);
  }
  let total = 0;
  for (const p of plugins) {
    if (!isCloudAware(p) || !hasActiveCloudResources(p)) continue;
    let cost: unknown;
    try {
      cost = p.estimateCost(durationHours);
    } catch (err) {
      onError?.({ plugin: p, error: err instanceof Error ? err : new Error(String(err)) });
      continue;
    }
    if (typeof cost !== 'number' || !Number.isFinite(cost)) {
      onError?.({ plugin: p, error: new Error(`estimateCost(${durationHours}) returned ${String(cost)}`) });
      continue;
    }
    total += cost;
  }
  return total;
}
