/**
 * Vast.ai over its REST API v0.
 *
 * API reference: https://docs.vast.ai/api-reference/introduction (base
 * https://console.vast.ai/api/v0, `Authorization: Bearer <key>`); instance creation:
 * https://docs.vast.ai/api-reference/creating-instances-with-api; errors and rate limits:
 * https://docs.vast.ai/api-reference/rate-limits-and-errors (`{"success": false, "error",
 * "msg"}`; 429 often with a plain-text body and no Retry-After). Endpoints used:
 * `GET /bundles/?q=` (search offers, `dph_total`), `PUT /asks/{offer_id}/` (rent an offer:
 * `{success, new_contract}`), `GET /instances/`, `GET /instances/{id}/`,
 * `PUT /instances/{id}/` with `{"state": "stopped"}` (stop: the instance keeps its disk, still
 * billed; https://docs.vast.ai/api-reference/instances/manage-instance),
 * `DELETE /instances/{id}/` (destroy).
 *
 * Traps handled: a create that reports failure or times out can still have created the
 * instance, so the label carries Tether's marker and the list is searched by label before any
 * retry; `no_such_instance` on destroy means already gone.
 */
import type { BillingRule } from '../../core/cost';
import { CloudProviderType } from '../../core/protocols';
import { bearerClient, type JsonHttpClient, type ParsedError, type RestProviderOptions } from './http';
import { launchIdempotently, parseMarker } from './marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from './provider';

export { matchesLedgerId } from './marker';

export const VAST_DEFAULT_URL = 'https://console.vast.ai/api/v0';
export const VAST_DEFAULT_IMAGE = 'pytorch/pytorch:latest';

export interface VastOptions extends RestProviderOptions {
  /** Offer search filter (Vast query JSON). Default: rentable, verified, on-demand. */
  offerQuery?: Record<string, unknown>;
  /** Disk of new instances, GB. Default 32. */
  diskGb?: number;
}

export interface VastOffer {
  id: number;
  gpu_name?: string;
  num_gpus?: number;
  dph_total?: number;
  geolocation?: string;
  cpu_cores_effective?: number;
  cpu_ram?: number;
  gpu_ram?: number;
}

export interface VastInstance {
  id: number;
  label?: string | null;
  actual_status?: string | null;
  intended_status?: string | null;
  cur_state?: string | null;
  dph_total?: number;
  start_date?: number | null;
  ssh_host?: string | null;
  ssh_port?: number | null;
  gpu_name?: string;
  num_gpus?: number;
  geolocation?: string | null;
  machine_id?: number;
}

export function parseVastError(body: unknown, text: string): ParsedError {
  const b = body as { error?: unknown; msg?: unknown; message?: unknown } | undefined;
  const message = typeof b?.msg === 'string' ? b.msg : typeof b?.message === 'string' ? b.message : body === undefined ? text.trim().slice(0, 300) : undefined;
  return { ...(message ? { message } : {}), ...(typeof b?.error === 'string' ? { code: b.error } : {}) };
}

function vastState(i: VastInstance): InstanceState {
  const a = i.actual_status ?? null;
  if (i.intended_status === 'stopped' && a === 'running') return 'stopping';
  switch (a) {
    case null:
    case 'created':
    case 'loading':
    case 'rebooting':
      return 'provisioning';
    case 'running':
      return 'running';
    case 'stopped':
    case 'exited':
    case 'frozen':
      return 'stopped';
    default:
      return 'unknown';
  }
}

/**
 * Vast.ai's billing rule: the GPU is billed per second while the instance runs; storage is
 * billed per second from creation (loading, running and stopped alike) until it is destroyed.
 * Source: Vast.ai docs, "Billing" (https://docs.vast.ai/documentation/reference/billing).
 */
export const VAST_BILLING: BillingRule = {
  provider: 'vast_ai',
  computeStates: ['running'],
  storageStates: ['provisioning', 'running', 'stopping', 'stopped'],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: 'https://docs.vast.ai/documentation/reference/billing',
  summary: 'GPU per second while running; storage per second from creation until destroyed',
};

export class VastAiProvider implements CloudProvider {
  readonly billing = VAST_BILLING;
  readonly type = CloudProviderType.VAST_AI;
  readonly title = 'Vast.ai';
  private readonly http: JsonHttpClient;

  constructor(private readonly opts: VastOptions) {
    this.http = bearerClient(this.title, opts, opts.baseUrl ?? VAST_DEFAULT_URL, parseVastError);
  }

  /** Offers are the catalogue: `name` is the offer id to launch. */
  async listInstanceTypes(): Promise<InstanceType[]> {
    const q = this.opts.offerQuery ?? { rentable: { eq: true }, verified: { eq: true }, type: 'on-demand', order: [['dph_total', 'asc']] };
    const { body } = await this.http.get<{ offers?: VastOffer[] }>('/bundles/', { query: { q: JSON.stringify(q) } });
    return (body?.offers ?? []).map((o) => ({
      name: String(o.id),
      description: `${o.num_gpus ?? 0}x ${o.gpu_name ?? 'GPU'}${o.geolocation ? ` (${o.geolocation})` : ''}`,
      ...(o.gpu_name ? { gpuType: o.gpu_name } : {}),
      gpuCount: o.num_gpus ?? 0,
      ...(o.cpu_cores_effective !== undefined ? { vcpus: o.cpu_cores_effective } : {}),
      ...(o.cpu_ram !== undefined ? { memoryGiB: Math.round(o.cpu_ram / 1024) } : {}),
      pricePerHour: o.dph_total ?? NaN,
      regionsWithCapacity: o.geolocation ? [o.geolocation] : [],
    }));
  }

  async listInstances(): Promise<CloudInstance[]> {
    const { body } = await this.http.get<{ instances?: VastInstance[] }>('/instances/');
    return (body?.instances ?? []).map((i) => this.toInstance(i));
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    try {
      const { body } = await this.http.get<{ instances?: VastInstance | null }>(`/instances/${encodeURIComponent(id)}/`);
      const i = body?.instances;
      return i && typeof i === 'object' && !Array.isArray(i) ? this.toInstance(i) : undefined;
    } catch (err) {
      if (err instanceof CloudApiError && (err.status === 404 || err.code === 'no_such_instance')) return undefined;
      throw err;
    }
  }

  /** `instanceType` is an offer id from {@link listInstanceTypes}. */
  async launch(req: LaunchRequest): Promise<CloudInstance> {
    const label = markedName(req);
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      // Anything but a refused key or a rate limit may have created the instance.
      mayHaveCreated: (err) => !(err instanceof CloudApiError && (err.status === 401 || err.status === 403 || err.status === 429)),
      attempts: this.http.retries + 1,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        const { status, body } = await this.http.put<{ success?: boolean; new_contract?: number; error?: string; msg?: string }>(
          `/asks/${encodeURIComponent(req.instanceType)}/`,
          { body: { client_id: 'me', image: req.image ?? VAST_DEFAULT_IMAGE, disk: this.opts.diskGb ?? 32, label, runtype: 'ssh' } },
        );
        if (!body?.success || !body.new_contract) {
          throw new CloudApiError(this.title, `create from offer ${req.instanceType} failed: ${body?.msg ?? body?.error ?? 'no contract id'}`, {
            remedy: 'pick another offer; Tether checked for a half-created instance by label',
            status,
            ...(body?.error ? { code: body.error } : {}),
          });
        }
        const id = String(body.new_contract);
        return (
          (await this.describe(id)) ?? {
            id,
            provider: this.type,
            name: label,
            gpuCount: 0,
            status: 'provisioning',
            rawStatus: 'created',
            tetherId: req.ledgerId.slice(0, 8),
            metadata: { offerId: req.instanceType },
          }
        );
      },
    });
  }

  async terminate(id: string): Promise<void> {
    try {
      const { body } = await this.http.delete<{ success?: boolean; error?: string; msg?: string }>(`/instances/${encodeURIComponent(id)}/`);
      if (body && body.success === false && body.error !== 'no_such_instance') {
        throw new CloudApiError(this.title, `destroy ${id}: ${body.msg ?? body.error ?? 'failed'}`, { remedy: 'try again, or destroy it in the Vast.ai console', ...(body.error ? { code: body.error } : {}) });
      }
    } catch (err) {
      if (err instanceof CloudApiError && (err.code === 'no_such_instance' || err.status === 404)) return; // already gone
      throw err;
    }
  }

  /**
   * Stops an instance (`PUT /instances/{id}/` `{"state": "stopped"}`): the GPU stops billing, the
   * disk keeps billing; it reads back as stopping (intended stopped, actually running), then
   * stopped. Stopping a stopped instance is fine (so the PUT is safe to retry). An instance that
   * no longer exists (`no_such_instance` / 404) is an error: a stop must not pretend to have worked.
   */
  async stop(id: string): Promise<void> {
    const gone = (cause: unknown, status?: number) =>
      new CloudApiError(this.title, `stop ${id}: the instance no longer exists (no_such_instance)`, {
        remedy: 'it was destroyed or never existed, so there is nothing to stop (and nothing billing for it); refresh the instance list',
        status: status ?? 404,
        code: 'no_such_instance',
        cause,
      });
    let body: { success?: boolean; error?: string; msg?: string } | undefined;
    try {
      ({ body } = await this.http.put<typeof body>(`/instances/${encodeURIComponent(id)}/`, { body: { state: 'stopped' }, retrySafe: true }));
    } catch (err) {
      if (err instanceof CloudApiError && (err.code === 'no_such_instance' || err.status === 404)) throw gone(err, err.status);
      throw err;
    }
    if (body && body.success === false) {
      if (body.error === 'no_such_instance') throw gone(body, 200);
      throw new CloudApiError(this.title, `stop ${id}: ${body.msg ?? body.error ?? 'failed'}`, {
        remedy: 'try again, or stop it in the Vast.ai console',
        ...(body.error ? { code: body.error } : {}),
      });
    }
  }

  consoleUrl(_instance: CloudInstance): string {
    return 'https://cloud.vast.ai/instances/';
  }

  private toInstance(i: VastInstance): CloudInstance {
    const tetherId = parseMarker(i.label);
    return {
      id: String(i.id),
      provider: this.type,
      ...(i.label ? { name: i.label } : {}),
      ...(i.geolocation ? { region: i.geolocation } : {}),
      ...(i.gpu_name ? { instanceType: `${i.num_gpus ?? 1}x ${i.gpu_name}`, gpuType: i.gpu_name } : {}),
      gpuCount: i.num_gpus ?? 0,
      status: vastState(i),
      rawStatus: i.actual_status ?? 'null',
      ...(i.dph_total !== undefined ? { pricePerHour: i.dph_total } : {}),
      ...(i.ssh_host && i.ssh_port ? { sshHost: i.ssh_host, sshPort: i.ssh_port, sshUser: 'root' } : {}),
      ...(i.start_date ? { launchedAt: new Date(i.start_date * 1000).toISOString() } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: { intendedStatus: i.intended_status, curState: i.cur_state, machineId: i.machine_id },
    };
  }
}
