/**
 * RunPod Pods over the REST API v1.
 *
 * API reference: https://docs.runpod.io/api-reference/overview (OpenAPI:
 * https://docs.runpod.io/api-reference/openapi.json; base https://rest.runpod.io/v1,
 * `Authorization: Bearer <key>`). Endpoints used: `GET /pods`, `POST /pods`, `GET /pods/{id}`,
 * `POST /pods/{id}/stop` (https://docs.runpod.io/api-reference/pods/POST/pods/podId/stop: the
 * pod powers off and keeps its volume, then reports `desiredStatus: "EXITED"`),
 * `DELETE /pods/{id}` (terminate). The GPU price catalogue is not in
 * REST v1: it comes from the GraphQL API (`https://api.runpod.io/graphql`,
 * `gpuTypes { id displayName memoryInGb securePrice communityPrice }`), which reports client
 * errors as HTTP 200 with an `errors` array.
 *
 * Note: RunPod announced REST v1 is deprecated in favour of REST v2
 * (https://docs.runpod.io/api-reference-v2/overview, retirement announced for November 2026);
 * the base URL is a setting, the v2 pod shape (`status`, `image`) is read where it differs.
 *
 * Traps handled: `costPerHr` is a *string* in REST (`adjustedCostPerHr` a number); no tags, so
 * the pod name carries the marker and a launch lists by name before every (re)try.
 */
import type { BillingRule } from '../../core/cost';
import { CloudProviderType } from '../../core/protocols';
import { bearerClient, isAmbiguous, type JsonHttpClient, type ParsedError, type RestProviderOptions } from './http';
import { launchIdempotently, parseMarker } from './marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from './provider';

export { matchesLedgerId } from './marker';

export const RUNPOD_DEFAULT_URL = 'https://rest.runpod.io/v1';
export const RUNPOD_GRAPHQL_URL = 'https://api.runpod.io/graphql';
export const RUNPOD_DEFAULT_IMAGE = 'runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04';

export interface RunPodOptions extends RestProviderOptions {
  /** GraphQL endpoint for the GPU price catalogue. */
  graphqlUrl?: string;
  /** SECURE (default) or COMMUNITY. */
  cloudType?: 'SECURE' | 'COMMUNITY';
}

export interface RunPodPod {
  id: string;
  name?: string;
  desiredStatus?: string;
  /** v2 */
  status?: string;
  /** A string in REST v1 ("0.69"). */
  costPerHr?: string | number;
  adjustedCostPerHr?: number;
  gpu?: { id?: string; count?: number; displayName?: string };
  gpuCount?: number;
  machine?: { gpuTypeId?: string; dataCenterId?: string; location?: string };
  publicIp?: string | null;
  portMappings?: Record<string, number> | null;
  lastStartedAt?: string;
  imageName?: string;
  image?: string;
}

interface GpuType {
  id: string;
  displayName?: string;
  memoryInGb?: number;
  securePrice?: number | null;
  communityPrice?: number | null;
}

export function parseRunPodError(body: unknown, text: string): ParsedError {
  const b = body as Record<string, unknown> | undefined;
  if (b && typeof b.error === 'string') return { message: b.error };
  if (b && typeof b.message === 'string') return { message: b.message };
  if (b && Array.isArray(b.errors) && b.errors.length) return { message: String((b.errors[0] as { message?: string }).message ?? 'error') };
  return text ? { message: text.trim().slice(0, 300) } : {};
}

function runpodState(p: RunPodPod): { state: InstanceState; raw: string } {
  const raw = p.status ?? p.desiredStatus ?? 'UNKNOWN';
  switch (raw) {
    case 'RUNNING':
      // v1 says RUNNING from the moment of creation; the pod is up once it has an address.
      return { state: p.status === 'RUNNING' || p.publicIp || (p.portMappings && Object.keys(p.portMappings).length) ? 'running' : 'provisioning', raw };
    case 'PROVISIONING':
    case 'STARTING':
    case 'CREATED':
    case 'RESTARTING':
      return { state: 'provisioning', raw };
    case 'EXITED':
    case 'STOPPED':
    case 'ERROR':
      return { state: 'stopped', raw };
    case 'TERMINATING':
      return { state: 'terminating', raw };
    case 'TERMINATED':
      return { state: 'terminated', raw };
    default:
      return { state: 'unknown', raw };
  }
}

/**
 * RunPod's billing rule: pods are billed per second while running (costPerHr); a stopped
 * (EXITED) pod keeps paying for its volume disk at the storage rate until it is terminated.
 * Source: RunPod docs, "Pricing" / "Storage" (https://docs.runpod.io/pods/pricing).
 */
export const RUNPOD_BILLING: BillingRule = {
  provider: 'runpod',
  computeStates: ['running'],
  storageStates: ['stopped'],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: 'https://docs.runpod.io/pods/pricing',
  summary: 'billed per second while running; a stopped pod still pays for its volume',
};

export class RunPodProvider implements CloudProvider {
  readonly billing = RUNPOD_BILLING;
  readonly type = CloudProviderType.RUNPOD;
  readonly title = 'RunPod';
  private readonly http: JsonHttpClient;
  private readonly gql: JsonHttpClient;

  constructor(private readonly opts: RunPodOptions) {
    this.http = bearerClient(this.title, opts, opts.baseUrl ?? RUNPOD_DEFAULT_URL, parseRunPodError);
    this.gql = bearerClient(this.title, opts, opts.graphqlUrl ?? RUNPOD_GRAPHQL_URL, parseRunPodError);
  }

  async listInstanceTypes(): Promise<InstanceType[]> {
    // A read-only query: safe to retry.
    const { status, body } = await this.gql.post<{ data?: { gpuTypes?: GpuType[] }; errors?: { message?: string }[] }>('', {
      body: { query: 'query GpuTypes { gpuTypes { id displayName memoryInGb securePrice communityPrice } }' },
      retrySafe: true,
    });
    if (body?.errors?.length) {
      const msg = body.errors.map((e) => e.message ?? '?').join('; ');
      const auth = /unauthori[sz]ed|api key/i.test(msg);
      throw new CloudApiError(this.title, `GPU types: ${this.http.scrub(msg)}`, {
        remedy: auth ? 'check the API key (Tether: Set Cloud API Key…)' : 'try again later',
        status: auth ? 401 : status,
      });
    }
    const secure = (this.opts.cloudType ?? 'SECURE') === 'SECURE';
    return (body?.data?.gpuTypes ?? [])
      .map((g) => {
        const price = (secure ? g.securePrice : g.communityPrice) ?? g.securePrice ?? g.communityPrice;
        return {
          name: g.id,
          ...(g.displayName ? { description: g.displayName, gpuType: g.displayName } : {}),
          gpuCount: 1,
          ...(g.memoryInGb !== undefined ? { memoryGiB: g.memoryInGb } : {}),
          pricePerHour: typeof price === 'number' ? price : NaN,
        };
      })
      .filter((t) => Number.isFinite(t.pricePerHour) && t.pricePerHour > 0);
  }

  async listInstances(): Promise<CloudInstance[]> {
    const { body } = await this.http.get<RunPodPod[] | { pods?: RunPodPod[] }>('/pods');
    const pods = Array.isArray(body) ? body : (body?.pods ?? []);
    return pods.map((p) => this.toInstance(p));
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    try {
      const { body } = await this.http.get<RunPodPod>(`/pods/${encodeURIComponent(id)}`);
      return body?.id ? this.toInstance(body) : undefined;
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** `instanceType` is a GPU type id ("NVIDIA RTX A6000"), optionally prefixed by a count ("2x NVIDIA A100 80GB PCIe"). */
  async launch(req: LaunchRequest): Promise<CloudInstance> {
    const m = /^(\d+)\s*x\s+(.+)$/i.exec(req.instanceType);
    const gpuCount = m ? Number(m[1]) : 1;
    const gpuTypeId = m ? m[2]! : req.instanceType;
    const name = markedName(req);
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      mayHaveCreated: isAmbiguous,
      attempts: this.http.retries + 1,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        const { body } = await this.http.post<RunPodPod>('/pods', {
          body: {
            name,
            imageName: req.image ?? RUNPOD_DEFAULT_IMAGE,
            gpuTypeIds: [gpuTypeId],
            gpuCount,
            cloudType: this.opts.cloudType ?? 'SECURE',
            ...(req.region ? { dataCenterIds: [req.region] } : {}),
            containerDiskInGb: 50,
            ports: ['22/tcp'],
            supportPublicIp: true,
          },
        });
        if (!body?.id) throw new CloudApiError(this.title, 'create answered without a pod id', { remedy: 'refresh the pod list; Tether reconciles by name' });
        return this.toInstance(body);
      },
    });
  }

  /**
   * Stops a pod: it powers off and keeps its volume (still billed at the storage rate), and reads
   * back as EXITED → 'stopped'. Stopping a stopped pod is fine (so the POST is safe to retry).
   * A pod that no longer exists (404) is an error: a stop must not pretend to have worked.
   */
  async stop(id: string): Promise<void> {
    try {
      await this.http.post(`/pods/${encodeURIComponent(id)}/stop`, { retrySafe: true });
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) {
        throw new CloudApiError(this.title, `stop ${id}: the pod no longer exists (HTTP 404)`, {
          remedy: 'it was terminated or never existed, so there is nothing to stop (and nothing billing for it); refresh the pod list',
          status: 404,
          ...(err.code ? { code: err.code } : {}),
          cause: err,
        });
      }
      throw err;
    }
  }

  async terminate(id: string): Promise<void> {
    try {
      await this.http.delete(`/pods/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return;
      throw err;
    }
  }

  consoleUrl(_instance: CloudInstance): string {
    return 'https://console.runpod.io/pods';
  }

  private toInstance(p: RunPodPod): CloudInstance {
    const { state, raw } = runpodState(p);
    const price = typeof p.costPerHr === 'string' ? Number.parseFloat(p.costPerHr) : typeof p.costPerHr === 'number' ? p.costPerHr : p.adjustedCostPerHr;
    const sshPort = p.portMappings?.['22'];
    const tetherId = parseMarker(p.name);
    return {
      id: p.id,
      provider: this.type,
      ...(p.name ? { name: p.name } : {}),
      ...(p.machine?.dataCenterId ? { region: p.machine.dataCenterId } : {}),
      ...(p.machine?.gpuTypeId || p.gpu?.id ? { instanceType: (p.machine?.gpuTypeId ?? p.gpu?.id)! } : {}),
      ...(p.gpu?.displayName ? { gpuType: p.gpu.displayName } : {}),
      gpuCount: p.gpu?.count ?? p.gpuCount ?? 0,
      status: state,
      rawStatus: raw,
      ...(price !== undefined && Number.isFinite(price) ? { pricePerHour: price } : {}),
      ...(p.publicIp && sshPort ? { sshHost: p.publicIp, sshPort, sshUser: 'root' } : {}),
      ...(p.lastStartedAt ? { launchedAt: p.lastStartedAt } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: { image: p.image ?? p.imageName, adjustedCostPerHr: p.adjustedCostPerHr },
    };
  }
}
