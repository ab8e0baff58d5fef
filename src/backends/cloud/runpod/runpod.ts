/**
 * RunPod Pods over the REST API v2.
 *
 * Spec followed: runpod/docs @ a900806e253c4f8c16da27d1a4370e72456da4cb,
 * `api-reference-v2/openapi.json` (OpenAPI 3.1, "Runpod REST API" 2.0.0; excerpt in
 * test/fixtures/runpod/). Base `https://api.runpod.io/v2`, `Authorization: Bearer <key>`.
 * REST v1 (`https://rest.runpod.io/v1`) was retired on 2026-11-15 (api-reference/overview.mdx);
 * nothing here calls it, and a base URL that still ends in `/v1` is refused with a clear error.
 *
 * Endpoints used (paths relative to the base):
 * - `GET /catalog/gpus?include=AVAILABILITY&product=POD&cloud=…` (listGpuTypes): the price list,
 *   `price.secure` / `price.community` USD per GPU per hour, and per-data-center stock. It lives on
 *   the same base URL as everything else, so the URL override covers it (the legacy GraphQL
 *   endpoint, which ignored the override, is no longer called).
 * - `GET /pods` (listPods): `{pods: [...]}`; not paged. The v2 pod carries `dataCenterId` and
 *   `gpu {id, count}` itself (v1 needed `includeMachine=true` for them).
 * - `POST /pods` (createPod): nested body `{name, image, gpu: {id, count}, cloud, dataCenterIds,
 *   disk, ports, startSsh}`; 201 with the pod in `PROVISIONING`.
 * - `GET /pods/{id}` (getPod); `DELETE /pods/{id}` (deletePod, 204; terminate).
 * - `POST /pods/{id}/action` `{action: "stop" | "start"}` (podAction, 200 with the pod); an action
 *   not valid for the pod's status is 409 (e.g. stopping an `EXITED` pod).
 * v1 is kept for nothing: the v2 spec covers every call Tether makes.
 *
 * Errors are RFC 9457 problems (`application/problem+json`: `{title, status, detail, errors?}`);
 * a 429 carries `Retry-After` (seconds), which the shared HTTP client honours.
 *
 * Traps handled: `cost` is a number in v2 and is 0.0 once a pod is `EXITED`/`TERMINATED` (so it is
 * not taken as the pod's price then); no tags, so the pod name carries the marker and a launch
 * lists by name before every (re)try.
 */
import { RUNPOD_BILLING } from '../rules';
import { CloudProviderType } from '../../../core/protocols';
import { bearerClient, isAmbiguous, type JsonHttpClient, type ParsedError, type RestProviderOptions } from '../http';
import { launchIdempotently, parseMarker } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';

export { matchesLedgerId } from '../marker';

export const RUNPOD_DEFAULT_URL = 'https://api.runpod.io/v2';
export const RUNPOD_DEFAULT_IMAGE = 'runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04';
/** Container disk of a Tether pod, GB (`disk`, minimum 1). */
export const RUNPOD_DISK_GB = 50;

export interface RunPodOptions extends RestProviderOptions {
  /** SECURE (default) or COMMUNITY. */
  cloudType?: 'SECURE' | 'COMMUNITY';
}

/** A pod as REST v2 describes it (`components.schemas.Pod`; the fields Tether reads). */
export interface RunPodPod {
  id: string;
  name?: string;
  /** PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED. */
  status?: string;
  actions?: string[];
  image?: string;
  gpu?: { id?: string; count?: number };
  cpu?: { id?: string; vcpuCount?: number };
  cloud?: string;
  dataCenterId?: string | null;
  /** USD per hour, a number (0.0 when EXITED or TERMINATED). */
  cost?: number | string;
  ssh?: { proxy?: RunPodSshEndpoint | null; direct?: RunPodSshEndpoint | null } | null;
  runtime?: { ports?: { private?: number; public?: number | null; type?: string; ip?: string | null }[] } | null;
  createdAt?: string;
  startedAt?: string | null;
  locked?: boolean;
}

interface RunPodSshEndpoint {
  host: string;
  port: number;
  username: string;
  command?: string;
}

/** `components.schemas.GpuType` (catalogue entry). */
export interface RunPodGpuType {
  id: string;
  name?: string;
  memory?: number;
  secure?: boolean;
  community?: boolean;
  price?: { secure?: number; community?: number; serverless?: number };
  maxCount?: { secure?: number; community?: number };
  availability?: string;
  dataCenters?: { id: string; name?: string; availability?: string }[];
}

const V1_RETIRED =
  'RunPod REST v1 was retired on 2026-11-15: set TETHER_RUNPOD_API_URL / tether.cloud.apiUrls.runpod to a REST v2 base URL (ending in /v2, default https://api.runpod.io/v2) or clear it';

/** Reads a REST v2 problem (`{title, status, detail, errors?}`), or older shapes (`{error}`, `{message}`). */
export function parseRunPodError(body: unknown, text: string): ParsedError {
  const b = body as Record<string, unknown> | undefined;
  const status = typeof b?.status === 'number' ? b.status : undefined;
  const suggestion =
    status === 402
      ? 'the account balance is too low: add credit in the RunPod console'
      : status === 403
        ? 'the key is valid but lacks access to this resource or action (RunPod keys are scoped when created)'
        : undefined;
  const extra = { ...(typeof b?.title === 'string' ? { code: b.title } : {}), ...(suggestion ? { suggestion } : {}) };
  if (b && typeof b.detail === 'string') {
    const errs = Array.isArray(b.errors) ? b.errors.filter((e): e is string => typeof e === 'string') : [];
    return { message: errs.length ? `${b.detail} (${errs.join('; ')})` : b.detail, ...extra };
  }
  if (b && typeof b.error === 'string') return { message: b.error, ...extra };
  if (b && typeof b.message === 'string') return { message: b.message, ...extra };
  return text ? { message: text.trim().slice(0, 300), ...extra } : extra;
}

export function runpodState(p: Pick<RunPodPod, 'status'>): { state: InstanceState; raw: string } {
  const raw = p.status ?? 'UNKNOWN';
  switch (raw) {
    case 'PROVISIONING':
    case 'STARTING':
      return { state: 'provisioning', raw };
    case 'RUNNING':
      return { state: 'running', raw };
    case 'EXITED':
    case 'ERROR':
      return { state: 'stopped', raw };
    case 'TERMINATED':
      return { state: 'terminated', raw };
    default:
      return { state: 'unknown', raw };
  }
}

export { RUNPOD_BILLING };

/** A number from a JSON number or a numeric string ("0.44"); undefined otherwise. */
function money(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

export class RunPodProvider implements CloudProvider {
  readonly billing = RUNPOD_BILLING;
  readonly type = CloudProviderType.RUNPOD;
  readonly title = 'RunPod';
  private readonly http: JsonHttpClient;
  /** Why the configured base URL cannot work (checked before any request), or undefined. */
  private readonly badBase: string | undefined;

  constructor(private readonly opts: RunPodOptions) {
    const base = opts.baseUrl ?? RUNPOD_DEFAULT_URL;
    this.badBase = RunPodProvider.checkBase(base);
    this.http = bearerClient(this.title, opts, base, parseRunPodError);
  }

  /** A base URL that points at REST v1 (retired) or is not a URL is refused. */
  static checkBase(base: string): string | undefined {
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      return `the API URL ${JSON.stringify(base)} is not a URL`;
    }
    if (/\/v1\/*$/.test(u.pathname)) return `the API URL ${u.origin}${u.pathname} is a REST v1 base`;
    return undefined;
  }

  private guard(): void {
    if (this.badBase) throw new CloudApiError(this.title, this.badBase, { remedy: V1_RETIRED, code: 'config' });
  }

  async listInstanceTypes(): Promise<InstanceType[]> {
    this.guard();
    const cloud = this.opts.cloudType ?? 'SECURE';
    const { body } = await this.http.get<{ gpus?: RunPodGpuType[] }>('/catalog/gpus', {
      query: { include: 'AVAILABILITY', product: 'POD', cloud },
    });
    if (!body || !Array.isArray(body.gpus)) throw this.unexpected('GET /catalog/gpus', 'no `gpus` list');
    return body.gpus.flatMap((g) => this.toType(g, cloud));
  }

  /** One catalogue entry as an instance type; none when it is not offered on the chosen cloud. */
  toType(g: RunPodGpuType, cloud: 'SECURE' | 'COMMUNITY' = this.opts.cloudType ?? 'SECURE'): InstanceType[] {
    const secure = cloud === 'SECURE';
    if ((secure ? g.secure : g.community) !== true) return [];
    const price = money(secure ? g.price?.secure : g.price?.community);
    if (price === undefined || price <= 0) return [];
    return [
      {
        name: g.id,
        ...(g.name ? { description: g.name, gpuType: g.name } : {}),
        gpuCount: 1,
        ...(typeof g.memory === 'number' ? { memoryGiB: g.memory } : {}),
        pricePerHour: price,
        // Asked with include=AVAILABILITY: dataCenters lists where it is offered ([] / absent: nowhere now).
        ...(g.availability !== undefined || g.dataCenters !== undefined
          ? { regionsWithCapacity: (g.dataCenters ?? []).filter((d) => d.availability && d.availability !== 'NONE').map((d) => d.id) }
          : {}),
      },
    ];
  }

  async listInstances(): Promise<CloudInstance[]> {
    this.guard();
    const { body } = await this.http.get<{ pods?: RunPodPod[] }>('/pods');
    if (!body || !Array.isArray(body.pods)) throw this.unexpected('GET /pods', Array.isArray(body) ? 'a bare list (the REST v1 shape)' : 'no `pods` list');
    return body.pods.map((p) => this.toInstance(p));
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    this.guard();
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
    this.guard();
    const m = /^(\d+)\s*x\s+(.+)$/i.exec(req.instanceType.trim());
    const gpuCount = m ? Number(m[1]) : 1;
    const gpuTypeId = (m ? m[2]! : req.instanceType).trim();
    if (!gpuTypeId || !Number.isSafeInteger(gpuCount) || gpuCount < 1) {
      throw new CloudApiError(this.title, `not a GPU type: ${JSON.stringify(req.instanceType)}`, {
        remedy: 'give a GPU type id from `tether cloud types runpod`, optionally prefixed by a count ("2x NVIDIA RTX A6000")',
        code: 'bad-request',
      });
    }
    const name = markedName(req);
    const body = {
      name,
      image: req.image ?? RUNPOD_DEFAULT_IMAGE,
      gpu: { id: gpuTypeId, count: gpuCount },
      cloud: this.opts.cloudType ?? 'SECURE',
      ...(req.region ? { dataCenterIds: [req.region] } : {}),
      disk: RUNPOD_DISK_GB,
      // ssh.direct needs 22/tcp published; startSsh puts the account's registered keys in the pod.
      ports: ['22/tcp'],
      startSsh: true,
    };
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      mayHaveCreated: isAmbiguous,
      attempts: this.http.retries + 1,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        const { body: pod } = await this.http.post<RunPodPod>('/pods', { body });
        if (!pod?.id) throw new CloudApiError(this.title, 'create answered without a pod id', { remedy: 'refresh the pod list; Tether reconciles by name' });
        return this.toInstance(pod);
      },
    });
  }

  /**
   * Stops a pod (`POST /pods/{id}/action {"action":"stop"}`): it releases the GPU and keeps its
   * disk (still billed at the storage rate), and reads back as EXITED → 'stopped'. v2 answers 409
   * when stop is not valid for the pod's status; if the pod is already stopped that is success.
   * A pod that no longer exists (404, or TERMINATED) is an error: a stop must not pretend to have worked.
   */
  async stop(id: string): Promise<void> {
    this.guard();
    try {
      await this.http.post(`/pods/${encodeURIComponent(id)}/action`, { body: { action: 'stop' }, retrySafe: true });
    } catch (err) {
      if (!(err instanceof CloudApiError) || (err.status !== 404 && err.status !== 409)) throw err;
      const now = err.status === 409 ? await this.describe(id) : undefined;
      if (now?.status === 'stopped') return; // already stopped
      if (now && now.status !== 'terminated') {
        throw new CloudApiError(this.title, `stop ${id}: not possible while the pod is ${now.rawStatus} (HTTP 409)`, {
          remedy: now.metadata.locked ? 'the pod is locked against stopping; unlock it in the RunPod console' : 'wait for the pod to settle, refresh, and try again',
          status: 409,
          ...(err.code ? { code: err.code } : {}),
          cause: err,
        });
      }
      throw new CloudApiError(this.title, `stop ${id}: the pod no longer exists (HTTP ${err.status})`, {
        remedy: 'it was terminated or never existed, so there is nothing to stop (and nothing billing for it); refresh the pod list',
        status: 404,
        ...(err.code ? { code: err.code } : {}),
        cause: err,
      });
    }
  }

  /** Starts a stopped pod (`POST /pods/{id}/action {"action":"start"}`); a pod already running or starting is fine. */
  async start(id: string): Promise<void> {
    this.guard();
    try {
      await this.http.post(`/pods/${encodeURIComponent(id)}/action`, { body: { action: 'start' }, retrySafe: true });
    } catch (err) {
      if (!(err instanceof CloudApiError) || (err.status !== 404 && err.status !== 409)) throw err;
      const now = err.status === 409 ? await this.describe(id) : undefined;
      if (now?.status === 'running' || now?.status === 'provisioning') return;
      if (now && now.status !== 'terminated') throw err;
      throw new CloudApiError(this.title, `start ${id}: the pod no longer exists (HTTP ${err.status})`, {
        remedy: 'it was terminated; launch a new one',
        status: 404,
        cause: err,
      });
    }
  }

  async terminate(id: string): Promise<void> {
    this.guard();
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

  private unexpected(what: string, why: string): CloudApiError {
    return new CloudApiError(this.title, `${what}: unexpected answer (${why})`, {
      remedy: `check that the API URL is a RunPod REST v2 base (default ${RUNPOD_DEFAULT_URL})`,
      code: 'unexpected-answer',
    });
  }

  /** A v2 pod in Tether's vocabulary (exported for the spec-example test). */
  toInstance(p: RunPodPod): CloudInstance {
    const { state, raw } = runpodState(p);
    const cost = money(p.cost);
    const direct = p.ssh?.direct ?? undefined;
    const port22 = p.runtime?.ports?.find((x) => x.private === 22 && x.type === 'tcp' && x.ip && x.public);
    const ssh = direct ? { host: direct.host, port: direct.port, user: direct.username } : port22 ? { host: port22.ip!, port: port22.public!, user: 'root' } : undefined;
    const tetherId = parseMarker(p.name);
    const type = p.gpu?.id ?? p.cpu?.id;
    return {
      id: p.id,
      provider: this.type,
      ...(p.name ? { name: p.name } : {}),
      ...(p.dataCenterId ? { region: p.dataCenterId } : {}),
      ...(type ? { instanceType: type } : {}),
      ...(p.gpu?.id ? { gpuType: p.gpu.id } : {}),
      gpuCount: p.gpu ? (p.gpu.count ?? 1) : 0,
      status: state,
      rawStatus: raw,
      // `cost` is 0.0 once the pod is EXITED or TERMINATED: that is not its price.
      ...(cost !== undefined && cost > 0 ? { pricePerHour: cost } : {}),
      ...(ssh && state === 'running' ? { sshHost: ssh.host, sshPort: ssh.port, sshUser: ssh.user } : {}),
      ...(p.createdAt ? { launchedAt: p.createdAt } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: {
        image: p.image,
        cloud: p.cloud,
        cost: cost,
        startedAt: p.startedAt ?? undefined,
        actions: p.actions,
        locked: p.locked,
        ...(p.ssh?.proxy ? { sshProxy: `${p.ssh.proxy.username}@${p.ssh.proxy.host}:${p.ssh.proxy.port}` } : {}),
      },
    };
  }
}
