/**
 * Vast.ai over its published REST API.
 *
 * Spec followed: Vast.ai's published OpenAPI (vast-ai/docs @ c624622622496828c1ae58edec481bba1f5d675d,
 * api-reference/openapi.yaml, info.version 1.0.0), cross-checked with the per-operation specs
 * generated from Vast's backend (vast-ai/docs @ 000751afdd860579861e726fc337897aa57b6926,
 * api-reference/openapi/yaml/auto_*.yaml) and Vast's CLI (vast-ai/vast-cli @
 * 55679830a2c2adcf5c7fad08bf08717a9591062a); excerpts in test/fixtures/vast/. Server
 * `https://console.vast.ai`, `Authorization: Bearer <key>`. Endpoints used:
 * - `GET /api/v1/instances/` (list; at most 25 a page, `next_token` → `after_token`). The old
 *   `GET /api/v0/instances/` answers 410 for accounts created after 2026-06-02.
 * - `GET /api/v0/instances/{id}/` (describe: `{instances: {...} | null}`).
 * - `POST /api/v0/bundles/` (search offers; the body is the filter object, `dph_total` is the price).
 * - `PUT /api/v0/asks/{offer_id}/` (create: `{success, new_contract}`; `success: false` with a
 *   `new_contract` means the instance exists but started stopped).
 * - `PUT /api/v0/instances/{id}/` `{"state": "stopped"}` (stop; the disk keeps billing).
 * - `DELETE /api/v0/instances/{id}/` (destroy).
 *
 * Rate limits: a minimum interval per endpoint and identity, 429 with a plain-text body
 * ("API requests too frequent") and no Retry-After (api-reference/rate-limits-and-errors.mdx):
 * the client keeps the documented minimum gaps ({@link VAST_MIN_GAPS_MS}).
 *
 * Traps handled: a create that reports failure or times out can still have created the
 * instance, so the label carries Tether's marker and the list is searched by label before any
 * retry; `no_such_instance` / 404 on destroy means already gone; a wrong key on the offer search
 * answers 404 "Invalid user key" (published spec), reported as the key problem it is.
 */
import { VAST_BILLING } from '../rules';
import { CloudProviderType } from '../../../core/protocols';
import { API_KEY_REMEDY, bearerClient, isAmbiguous, type JsonHttpClient, type MinGaps, type ParsedError, type RestProviderOptions } from '../http';
import { findByMarker, launchIdempotently, parseMarker } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';

export { matchesLedgerId } from '../marker';

/** Vast.ai's API server. A legacy setting ending in `/api/v0` is accepted too. */
export const VAST_DEFAULT_URL = 'https://console.vast.ai';
export const VAST_DEFAULT_IMAGE = 'pytorch/pytorch:latest';

/**
 * Documented minimum gaps between requests (Vast rate-limits each endpoint per identity; the
 * spec's 429 examples and x-rateLimit: create `PUT /asks/` 4.5 s, `DELETE /instances/{id}/` 3 s,
 * `GET /instances/{id}/` 2 s, `POST /bundles/` 2 s). Applied per method, so the strictest
 * endpoint of a method paces all of it.
 */
export const VAST_MIN_GAPS_MS: Readonly<Required<MinGaps>> = Object.freeze({ GET: 2000, POST: 2000, PUT: 4500, DELETE: 3000 });

/** Instances a v1 list page holds at most (the spec's maximum `limit`). */
export const VAST_PAGE_SIZE = 25;
/** Pages the list follows at most (a safety net against a cursor that never ends). */
const MAX_PAGES = 400;

export interface VastOptions extends RestProviderOptions {
  /** Offer search filter (the `POST /bundles/` body). Default: rentable, verified, not rented, cheapest first. */
  offerQuery?: Record<string, unknown>;
  /** Disk of new instances, GB. Default 32. */
  diskGb?: number;
}

export interface VastOffer {
  id: number;
  gpu_name?: string;
  num_gpus?: number;
  dph_total?: number;
  geolocation?: string | null;
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

/** One page of `GET /api/v1/instances/`. */
export interface VastInstancePage {
  success?: boolean;
  instances_found?: number;
  total_instances?: number;
  instances?: VastInstance[];
  next_token?: string | null;
}

/** Strips a legacy `/api/v0` (or `/api/v1`) from a configured URL: the client names the API version per path. */
export function vastServerRoot(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/api\/v\d+$/, '');
}

/** Vast's error bodies: `{success: false, error, msg}`, sometimes only `msg` / `message`, a 429's `{detail}` or plain text. */
export function parseVastError(body: unknown, text: string): ParsedError {
  const b = body as { error?: unknown; msg?: unknown; message?: unknown; detail?: unknown } | undefined;
  const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v : undefined);
  const message = str(b?.msg) ?? str(b?.message) ?? str(b?.detail) ?? (body === undefined || typeof body !== 'object' ? text.trim().slice(0, 300) : undefined);
  return { ...(message ? { message } : {}), ...(str(b?.error) ? { code: b!.error as string } : {}) };
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

export { VAST_BILLING };

export class VastAiProvider implements CloudProvider {
  readonly billing = VAST_BILLING;
  readonly type = CloudProviderType.VAST_AI;
  readonly title = 'Vast.ai';
  private readonly http: JsonHttpClient;

  constructor(private readonly opts: VastOptions) {
    this.http = bearerClient(this.title, opts, vastServerRoot(opts.baseUrl ?? VAST_DEFAULT_URL), parseVastError, VAST_MIN_GAPS_MS);
  }

  /** The offer search body (`POST /api/v0/bundles/`): the option's filters, or rentable verified on-demand offers, cheapest first. */
  offerQuery(): Record<string, unknown> {
    return (
      this.opts.offerQuery ?? {
        verified: { eq: true },
        rentable: { eq: true },
        rented: { eq: false },
        order: [['dph_total', 'asc']],
        limit: 100,
        // Priced with the disk Tether asks for (dph_total includes its storage).
        allocated_storage: this.opts.diskGb ?? 32,
      }
    );
  }

  /** Offers are the catalogue: `name` is the offer id to launch. */
  async listInstanceTypes(): Promise<InstanceType[]> {
    const { body } = await this.call(() => this.http.post<{ offers?: VastOffer[] | VastOffer }>('/api/v0/bundles/', { body: this.offerQuery(), retrySafe: true }));
    return vastOffers(body).map(toInstanceType);
  }

  /** Every instance of the account: `GET /api/v1/instances/`, page after page (`next_token`). */
  async listInstances(): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (let page = 1; ; page++) {
      const { body } = await this.call(() =>
        this.http.get<VastInstancePage>('/api/v1/instances/', {
          query: { limit: VAST_PAGE_SIZE, order_by: JSON.stringify([{ col: 'id', dir: 'asc' }]), ...(after ? { after_token: after } : {}) },
        }),
      );
      if (!body || !Array.isArray(body.instances)) {
        throw new CloudApiError(this.title, 'GET /api/v1/instances/: the answer has no instances list', { remedy: 'try again later; if it persists, check the API URL setting', code: 'bad_answer' });
      }
      for (const i of body.instances) out.push(this.toInstance(i));
      const next = typeof body.next_token === 'string' && body.next_token !== '' ? body.next_token : undefined;
      if (!next) return out;
      if (seen.has(next) || page >= MAX_PAGES) {
        throw new CloudApiError(this.title, `GET /api/v1/instances/: the page cursor does not advance (page ${page})`, { remedy: 'try again later', code: 'bad_cursor' });
      }
      seen.add(next);
      after = next;
    }
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    if (!isVastId(id)) return undefined; // not an id Vast can have
    try {
      const { body } = await this.call(() => this.http.get<{ instances?: VastInstance | null }>(`/api/v0/instances/${id}/`));
      const i = body?.instances;
      return i && typeof i === 'object' && !Array.isArray(i) ? this.toInstance(i) : undefined;
    } catch (err) {
      if (err instanceof CloudApiError && (err.status === 404 || err.code === 'no_such_instance')) return undefined;
      throw err;
    }
  }

  /** `instanceType` is an offer id from {@link listInstanceTypes}. */
  async launch(req: LaunchRequest): Promise<CloudInstance> {
    if (!isVastId(req.instanceType)) {
      throw new CloudApiError(this.title, `"${req.instanceType}" is not a Vast.ai offer id (a whole number)`, {
        remedy: 'pick an offer from the list of instance types (its name is the offer id)',
        // Refused before any call, as Vast would refuse it (400 invalid_args): nothing was created.
        status: 400,
        code: 'invalid_args',
      });
    }
    const label = markedName(req);
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      // Only an ambiguous end (timeout, network error, 5xx) or an answer without a contract id is
      // retried; a refusal was already checked by marker in create().
      mayHaveCreated: (err) => isAmbiguous(err) || (err instanceof CloudApiError && err.code === 'no_contract'),
      attempts: this.http.retries + 1,
      backoffMs: this.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: () => this.create(req, label),
    });
  }

  /** One `PUT /api/v0/asks/{offer}/`. */
  private async create(req: LaunchRequest, label: string): Promise<CloudInstance> {
    const body = { image: req.image ?? VAST_DEFAULT_IMAGE, label, disk: this.opts.diskGb ?? 32, runtype: 'ssh' };
    let answer: { success?: boolean; new_contract?: number; error?: string; msg?: string } | undefined;
    let status: number;
    try {
      ({ status, body: answer } = await this.call(() => this.http.put<typeof answer>(`/api/v0/asks/${req.instanceType}/`, { body })));
    } catch (err) {
      if (!(err instanceof CloudApiError) || isAmbiguous(err) || err.status === undefined || err.status === 401 || err.status === 403 || err.status === 429) throw err;
      // A refusal can come with the instance created anyway: look by marker before giving up.
      for (let look = 0; look < 2; look++) {
        if (look > 0) await new Promise((r) => setTimeout(r, this.http.backoffMs));
        const found = findByMarker(await this.listInstances(), req.ledgerId)[0];
        if (found) {
          this.opts.log?.(`Vast.ai: the create of offer ${req.instanceType} answered HTTP ${err.status}, yet instance ${found.id} carries the marker: using it`);
          return found;
        }
      }
      throw offerError(err, req.instanceType);
    }
    const contract = answer?.new_contract;
    if (typeof contract !== 'number' || !Number.isInteger(contract)) {
      throw new CloudApiError(this.title, `create from offer ${req.instanceType}: no contract id in the answer${answer?.msg ? ` (${answer.msg})` : ''}`, {
        remedy: 'Tether checks by label for a half-created instance before trying again',
        status,
        code: 'no_contract',
      });
    }
    // `success: false` with a contract: the instance exists but started stopped.
    const id = String(contract);
    return (
      (await this.describe(id)) ?? {
        id,
        provider: this.type,
        name: label,
        gpuCount: 0,
        status: answer?.success === false ? 'stopped' : 'provisioning',
        rawStatus: answer?.success === false ? 'stopped' : 'created',
        tetherId: parseMarker(label) ?? req.ledgerId.slice(0, 8),
        metadata: { offerId: req.instanceType },
      }
    );
  }

  async terminate(id: string): Promise<void> {
    this.checkId(id, 'destroy');
    try {
      const { body } = await this.call(() => this.http.delete<{ success?: boolean; error?: string; msg?: string }>(`/api/v0/instances/${id}/`));
      if (body && body.success === false && body.error !== 'no_such_instance') {
        throw new CloudApiError(this.title, `destroy ${id}: ${body.msg ?? body.error ?? 'failed'}`, { remedy: 'try again, or destroy it in the Vast.ai console', ...(body.error ? { code: body.error } : {}) });
      }
    } catch (err) {
      if (err instanceof CloudApiError && (err.code === 'no_such_instance' || err.status === 404)) return; // already gone
      throw err;
    }
  }

  /**
   * Stops an instance (`PUT /api/v0/instances/{id}/` `{"state": "stopped"}`): the GPU stops
   * billing, the disk keeps billing; it reads back as stopping (intended stopped, actually
   * running), then stopped. Stopping a stopped instance is fine (so the PUT is safe to retry). An
   * instance that no longer exists (`no_such_instance` / 404) is an error: a stop must not pretend
   * to have worked.
   */
  async stop(id: string): Promise<void> {
    this.checkId(id, 'stop');
    const gone = (cause: unknown, status?: number) =>
      new CloudApiError(this.title, `stop ${id}: the instance no longer exists (no_such_instance)`, {
        remedy: 'it was destroyed or never existed, so there is nothing to stop (and nothing billing for it); refresh the instance list',
        status: status ?? 404,
        code: 'no_such_instance',
        cause,
      });
    let body: { success?: boolean; error?: string; msg?: string } | undefined;
    try {
      ({ body } = await this.call(() => this.http.put<typeof body>(`/api/v0/instances/${id}/`, { body: { state: 'stopped' }, retrySafe: true })));
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

  /** Ids are whole numbers (the spec's path parameter is an integer); anything else is refused before a call. */
  private checkId(id: string, what: string): void {
    if (!isVastId(id)) {
      throw new CloudApiError(this.title, `${what}: "${id}" is not a Vast.ai instance id (a whole number)`, { remedy: 'pick the instance from the list', status: 400, code: 'invalid_args' });
    }
  }

  /** Runs a request and maps Vast's answers onto clear remedies. */
  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw vastRemedy(err);
    }
  }

  private toInstance(i: VastInstance): CloudInstance {
    return toCloudInstance(i, this.type);
  }
}

/** Whole-number ids (offers and instances are integers in the spec). */
function isVastId(id: string): boolean {
  return /^[1-9][0-9]{0,15}$/.test(id);
}

/** The offers of a search answer (the published example shows `offers` as one object, the schema as an array: both are read). */
export function vastOffers(body: { offers?: VastOffer[] | VastOffer } | undefined): VastOffer[] {
  const o = body?.offers;
  if (Array.isArray(o)) return o;
  return o && typeof o === 'object' ? [o] : [];
}

/** An offer as an instance type (its name is the offer id). */
export function toInstanceType(o: VastOffer): InstanceType {
  return {
    name: String(o.id),
    description: `${o.num_gpus ?? 0}x ${o.gpu_name ?? 'GPU'}${o.geolocation ? ` (${o.geolocation})` : ''}`,
    ...(o.gpu_name ? { gpuType: o.gpu_name } : {}),
    gpuCount: o.num_gpus ?? 0,
    ...(typeof o.cpu_cores_effective === 'number' ? { vcpus: o.cpu_cores_effective } : {}),
    ...(typeof o.cpu_ram === 'number' ? { memoryGiB: Math.round(o.cpu_ram / 1024) } : {}),
    pricePerHour: typeof o.dph_total === 'number' ? o.dph_total : NaN,
    regionsWithCapacity: o.geolocation ? [o.geolocation] : [],
  };
}

/** A Vast instance (v1 list row or v0 detail) as a CloudInstance. */
export function toCloudInstance(i: VastInstance, provider: CloudProviderType = CloudProviderType.VAST_AI): CloudInstance {
  const tetherId = parseMarker(i.label);
  return {
    id: String(i.id),
    provider,
    ...(i.label ? { name: i.label } : {}),
    ...(i.geolocation ? { region: i.geolocation } : {}),
    ...(i.gpu_name ? { instanceType: `${i.num_gpus ?? 1}x ${i.gpu_name}`, gpuType: i.gpu_name } : {}),
    gpuCount: i.num_gpus ?? 0,
    status: vastState(i),
    rawStatus: i.actual_status ?? 'null',
    ...(typeof i.dph_total === 'number' ? { pricePerHour: i.dph_total } : {}),
    ...(i.ssh_host && i.ssh_port ? { sshHost: i.ssh_host, sshPort: i.ssh_port, sshUser: 'root' } : {}),
    ...(i.start_date ? { launchedAt: new Date(i.start_date * 1000).toISOString() } : {}),
    ...(tetherId ? { tetherId } : {}),
    metadata: { intendedStatus: i.intended_status, curState: i.cur_state, machineId: i.machine_id },
  };
}

/** Vast's answers with the remedy that fits them. */
function vastRemedy(err: unknown): unknown {
  if (!(err instanceof CloudApiError)) return err;
  const text = `${err.code ?? ''} ${err.message}`;
  // The offer search answers a wrong key with 404 "Invalid user key" (published spec): a key problem, not a missing resource.
  if (/invalid user key|invalid_api_key|auth_error/i.test(text) && err.status !== 401 && err.status !== 403) {
    return new CloudApiError(err.provider, err.message.replace(/^Vast\.ai: /, ''), { remedy: API_KEY_REMEDY, status: 401, code: err.code ?? 'auth_error', cause: err });
  }
  if (err.status === 410 && /\/instances\//.test(err.message) && !/\/asks\//.test(err.message)) {
    return new CloudApiError(err.provider, err.message.replace(/^Vast\.ai: /, ''), {
      remedy: 'Vast.ai retired this endpoint for your account (accounts created after 2026-06-02 must use /api/v1/instances/): update Tether, and check that TETHER_VAST_API_URL does not point at an outdated proxy',
      status: 410,
      ...(err.code ? { code: err.code } : {}),
      cause: err,
    });
  }
  if (err.status === 400 && /invalid_args|invalid_request|invalid_price|no_ssh_key_for_vm|invalid_token/.test(text)) {
    return new CloudApiError(err.provider, err.message.replace(/^Vast\.ai: /, ''), {
      remedy: `Vast.ai refused the request as malformed (${err.code ?? 'invalid_args'}): check the offer filter, image and disk settings; if they are right, report this message as a Tether bug`,
      status: 400,
      ...(err.code ? { code: err.code } : {}),
      cause: err,
    });
  }
  return err;
}

/** A create refused for the offer (gone, taken, not available). */
function offerError(err: CloudApiError, offer: string): CloudApiError {
  if (err.status === 404 || err.status === 410 || err.code === 'no_such_ask') {
    return new CloudApiError(err.provider, err.message.replace(/^Vast\.ai: /, ''), {
      remedy: `offer ${offer} is no longer available (offers come and go by the minute): list the instance types again and pick another`,
      ...(err.status !== undefined ? { status: err.status } : {}),
      code: err.code ?? 'no_such_ask',
      cause: err,
    });
  }
  return err;
}
