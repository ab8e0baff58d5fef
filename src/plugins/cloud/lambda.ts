/**
 * Lambda Cloud (On-Demand Cloud) over its public REST API.
 *
 * API reference: https://docs-api.lambda.ai/api/cloud (Lambda Cloud API v1; base
 * https://cloud.lambda.ai/api/v1, `Authorization: Bearer <key>`). Endpoints used:
 * `GET /instance-types`, `GET /instances`, `GET /instances/{id}`,
 * `POST /instance-operations/launch`, `POST /instance-operations/terminate`, `GET /ssh-keys`.
 * Errors: `{"error": {"code", "message", "suggestion"}}`. Rate limits: about 1 request/s,
 * launch about 1 per 10 s (429 beyond).
 *
 * Lambda has no tags and no idempotency token: the instance name carries Tether's marker
 * ({@link markedName}) and a launch lists by name before every (re)try.
 */
import type { BillingRule } from '../../core/cost';
import { CloudProviderType } from '../../core/protocols';
import { bearerClient, isAmbiguous, type JsonHttpClient, type ParsedError, type RestProviderOptions } from './http';
import { launchIdempotently, parseMarker } from './marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from './provider';

export { matchesLedgerId } from './marker';

export const LAMBDA_DEFAULT_URL = 'https://cloud.lambda.ai/api/v1';


interface LambdaInstance {
  id: string;
  name?: string | null;
  ip?: string | null;
  private_ip?: string | null;
  status: string;
  ssh_key_names?: string[];
  region?: { name: string; description?: string };
  instance_type?: {
    name: string;
    description?: string;
    gpu_description?: string;
    price_cents_per_hour?: number;
    specs?: { vcpus?: number; memory_gib?: number; storage_gib?: number; gpus?: number };
  };
  hostname?: string | null;
}

interface LambdaInstanceTypeEntry {
  instance_type: NonNullable<LambdaInstance['instance_type']>;
  regions_with_capacity_available: { name: string; description?: string }[];
}

export interface LambdaSshKey {
  id: string;
  name: string;
  public_key: string;
}

export function parseLambdaError(body: unknown): ParsedError {
  const e = (body as { error?: { code?: string; message?: string; suggestion?: string } } | undefined)?.error;
  if (!e || typeof e !== 'object') return {};
  return {
    ...(e.message ? { message: e.message } : {}),
    ...(e.code ? { code: e.code } : {}),
    ...(e.suggestion ? { suggestion: e.suggestion } : {}),
  };
}

function lambdaState(s: string): InstanceState {
  switch (s) {
    case 'booting':
      return 'provisioning';
    case 'active':
    case 'unhealthy':
      return 'running';
    case 'terminating':
      return 'terminating';
    case 'terminated':
      return 'terminated';
    default:
      return 'unknown';
  }
}

/**
 * Lambda Cloud's billing rule: on-demand instances are billed in one-minute increments from
 * launch until termination, whatever their state (booting and unhealthy instances bill too);
 * there is no stop. Source: Lambda Cloud docs, "Billing" (https://docs.lambda.ai/public-cloud/billing/)
 * and the on-demand pricing page (https://lambda.ai/service/gpu-cloud#pricing).
 */
export const LAMBDA_BILLING: BillingRule = {
  provider: 'lambda_labs',
  computeStates: ['provisioning', 'running', 'unknown', 'stopping', 'terminating'],
  storageStates: [],
  incrementSeconds: 60,
  minimumSeconds: 60,
  citation: 'https://docs.lambda.ai/public-cloud/billing/',
  summary: 'billed per started minute from launch until terminated, booting included',
};

export class LambdaCloudProvider implements CloudProvider {
  readonly billing = LAMBDA_BILLING;
  readonly type = CloudProviderType.LAMBDA_LABS;
  readonly title = 'Lambda Cloud';
  private readonly http: JsonHttpClient;

  constructor(private readonly opts: RestProviderOptions) {
    this.http = bearerClient(this.title, opts, opts.baseUrl ?? LAMBDA_DEFAULT_URL, parseLambdaError);
  }

  async listInstanceTypes(): Promise<InstanceType[]> {
    const { body } = await this.http.get<{ data: Record<string, LambdaInstanceTypeEntry> }>('/instance-types');
    return Object.values(body?.data ?? {}).map(({ instance_type: t, regions_with_capacity_available: r }) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.gpu_description ? { gpuType: t.gpu_description } : {}),
      gpuCount: t.specs?.gpus ?? 0,
      ...(t.specs?.vcpus !== undefined ? { vcpus: t.specs.vcpus } : {}),
      ...(t.specs?.memory_gib !== undefined ? { memoryGiB: t.specs.memory_gib } : {}),
      pricePerHour: (t.price_cents_per_hour ?? 0) / 100,
      regionsWithCapacity: (r ?? []).map((x) => x.name),
    }));
  }

  async listInstances(): Promise<CloudInstance[]> {
    const { body } = await this.http.get<{ data: LambdaInstance[] }>('/instances');
    return (body?.data ?? []).map((i) => this.toInstance(i));
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    try {
      const { body } = await this.http.get<{ data: LambdaInstance }>(`/instances/${encodeURIComponent(id)}`);
      return body?.data ? this.toInstance(body.data) : undefined;
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    if (!req.region) throw new CloudApiError(this.title, 'a region is required to launch', { remedy: 'pick a region with capacity from the instance type list' });
    const name = markedName(req);
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      mayHaveCreated: isAmbiguous,
      attempts: this.http.retries + 1,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        const { body } = await this.http.post<{ data: { instance_ids: string[] } }>('/instance-operations/launch', {
          body: {
            region_name: req.region,
            instance_type_name: req.instanceType,
            ssh_key_names: req.sshKeyName ? [req.sshKeyName] : [],
            quantity: 1,
            name,
          },
        });
        const id = body?.data?.instance_ids?.[0];
        if (!id) throw new CloudApiError(this.title, 'launch answered without an instance id', { remedy: 'refresh the instance list; Tether reconciles by name' });
        return (
          (await this.describe(id)) ?? {
            id,
            provider: this.type,
            name,
            region: req.region,
            instanceType: req.instanceType,
            gpuCount: 0,
            status: 'provisioning',
            rawStatus: 'booting',
            tetherId: req.ledgerId.slice(0, 8),
            metadata: {},
          }
        );
      },
    });
  }

  // No `stop`: Lambda Cloud cannot stop an instance, only restart or terminate it (instance operations: https://docs-api.lambda.ai/api/cloud).
  async terminate(id: string): Promise<void> {
    try {
      // Terminating twice is harmless, so retries are safe.
      await this.http.post('/instance-operations/terminate', { body: { instance_ids: [id] }, retrySafe: true });
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return; // already gone
      throw err;
    }
  }

  async listSshKeys(): Promise<LambdaSshKey[]> {
    const { body } = await this.http.get<{ data: LambdaSshKey[] }>('/ssh-keys');
    return body?.data ?? [];
  }

  consoleUrl(_instance: CloudInstance): string {
    return 'https://cloud.lambda.ai/instances';
  }

  private toInstance(i: LambdaInstance): CloudInstance {
    const t = i.instance_type;
    const tetherId = parseMarker(i.name);
    return {
      id: i.id,
      provider: this.type,
      ...(i.name ? { name: i.name } : {}),
      ...(i.region?.name ? { region: i.region.name } : {}),
      ...(t?.name ? { instanceType: t.name } : {}),
      ...(t?.gpu_description ? { gpuType: t.gpu_description } : {}),
      gpuCount: t?.specs?.gpus ?? 0,
      status: lambdaState(i.status),
      rawStatus: i.status,
      ...(t?.price_cents_per_hour !== undefined ? { pricePerHour: t.price_cents_per_hour / 100 } : {}),
      ...(i.ip ? { sshHost: i.ip, sshPort: 22, sshUser: 'ubuntu' } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: { hostname: i.hostname ?? undefined, sshKeyNames: i.ssh_key_names ?? [] },
    };
  }
}
