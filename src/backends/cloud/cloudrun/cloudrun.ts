/**
 * Google Cloud Run jobs over the Cloud Run Admin API v2 (REST), as a CloudProvider: an
 * *execution* of a job is an "instance".
 *
 * Follows the published run/v2 discovery document (test/fixtures/cloudrun/, with its source) and
 * protos: base `https://run.googleapis.com/v2/`, `Authorization: Bearer <OAuth access token>`.
 * Calls used: `projects.locations.jobs.create|get|delete|run`, `jobs.executions.list|get|cancel`
 * (`jobs/-/executions` lists across jobs), `jobs.executions.tasks.list`, `operations.get`.
 *
 * - Launch: one job per launch, its id deterministic from Tether's marker
 *   (`tether-<record><ledger>-<name>`, made a valid job id: lowercase letters, digits and dashes,
 *   at most 63 characters), labels carrying the marker too; created (a long-running Operation,
 *   waited for; an error inside a done Operation is an error), then `:run` — whose Operation stays
 *   open while the execution runs (it completes with the execution), so Tether takes the
 *   execution from the Operation's metadata and does not wait for the end; an Operation already
 *   done with an error is an error. Creating the job again answers 409 ALREADY_EXISTS: a retried
 *   create is safe. `:run` is not: after an ambiguous `:run` the launch re-lists by marker
 *   (marker.ts `launchIdempotently`).
 * - Terminate: `executions/{id}:cancel` (its Operation waited for), then the job Tether created
 *   for it is deleted (not when another of its executions still runs; never a job without
 *   Tether's marker). Already gone (404) or already ended counts as terminated. No stop: an
 *   execution cannot be paused.
 * - Price: Cloud Run quotes none; the execution's CPU, memory and GPU limits times the shipped
 *   Tier 1 table (pricing.ts), times the tasks it runs at once.
 */
import { ExitCode, TetherError } from '../../../core/errors';
import { CloudProviderType } from '../../../core/protocols';
import { bearerClient, isAmbiguous, type Clock, type JsonHttpClient, type ParsedError } from '../http';
import { launchIdempotently, parseMarker, tetherIdOf } from '../marker';
import { CloudApiError, markedName, type CloudInstance, type CloudProvider, type InstanceState, type InstanceType, type LaunchRequest } from '../provider';
import {
  CLOUD_RUN_BILLING,
  CLOUD_RUN_SHAPES,
  CLOUD_RUN_TITLE,
  cloudRunTypeName,
  parseCloudRunType,
  parseCpu,
  parseMemoryGiB,
  shapePricePerHour,
  shapeProblem,
  shapeRegions,
  type CloudRunShape,
} from './pricing';

export { CLOUD_RUN_BILLING };

export const CLOUD_RUN_DEFAULT_URL = 'https://run.googleapis.com';

/** Label keys of Tether's marker (GCP labels: lowercase keys and values, at most 63 characters). */
export const MARKER_LABEL = 'tether-id';
export const NAME_LABEL = 'tether-name';

/** A job id Cloud Run accepts: a lowercase letter first, then lowercase letters, digits and dashes, no dash at the end, at most 63 characters. */
export const JOB_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export interface CloudRunProviderOptions {
  /** Google Cloud project id. */
  project: string;
  /** Default location of launches (a Cloud Run region such as us-central1). */
  region: string;
  /** Locations listed (default: `[region]`). */
  regions?: string[];
  /** An OAuth 2 access token (called before each request; the caller caches and refreshes). */
  token: () => Promise<string>;
  /** API root (tests point it at a fake): default https://run.googleapis.com. */
  baseUrl?: string;
  /** Image used when a launch names none (else the launch is refused before any call). */
  defaultImage?: string;
  /** Per-task timeout of launched jobs, seconds (Cloud Run's default is 600 s: too short for training). Default 86 400 (24 h). */
  taskTimeoutSeconds?: number;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  log?: (line: string) => void;
  clock?: Clock;
  /** How often a long-running Operation is polled, ms. Default 1000. */
  operationPollMs?: number;
  /** How long a create / cancel Operation is waited for, ms. Default 120 000. */
  operationTimeoutMs?: number;
}

interface GoogleStatus {
  code?: number;
  message?: string;
  details?: unknown[];
}

export interface Operation {
  name: string;
  done?: boolean;
  error?: GoogleStatus;
  metadata?: Record<string, unknown>;
  response?: Record<string, unknown>;
}

interface Condition {
  type?: string;
  state?: string;
  message?: string;
  executionReason?: string;
  reason?: string;
  lastTransitionTime?: string;
}

interface Container {
  image?: string;
  resources?: { limits?: Record<string, string> };
}

export interface Execution {
  name: string;
  uid?: string;
  job?: string;
  labels?: Record<string, string>;
  createTime?: string;
  startTime?: string;
  completionTime?: string;
  deleteTime?: string;
  parallelism?: number;
  taskCount?: number;
  runningCount?: number;
  succeededCount?: number;
  failedCount?: number;
  cancelledCount?: number;
  retriedCount?: number;
  conditions?: Condition[];
  logUri?: string;
  etag?: string;
  template?: { containers?: Container[]; nodeSelector?: { accelerator?: string } };
}

interface Job {
  name: string;
  labels?: Record<string, string>;
  etag?: string;
  template?: unknown;
}

export interface Task {
  name: string;
  index?: number;
  startTime?: string;
  completionTime?: string;
  retried?: number;
  conditions?: Condition[];
  lastAttemptResult?: { exitCode?: number; status?: GoogleStatus };
}

/** The Google error body (`{"error": {code, message, status, details}}`). */
export function parseGoogleError(body: unknown): ParsedError {
  const e = (body as { error?: { message?: string; status?: string } } | undefined)?.error;
  if (!e || typeof e !== 'object') return {};
  return { ...(e.message ? { message: e.message } : {}), ...(e.status ? { code: e.status } : {}) };
}

/** google.rpc.Code numbers → their names (Operation.error carries the number). */
const RPC_CODES: Record<number, [string, number]> = {
  1: ['CANCELLED', 499],
  2: ['UNKNOWN', 500],
  3: ['INVALID_ARGUMENT', 400],
  4: ['DEADLINE_EXCEEDED', 504],
  5: ['NOT_FOUND', 404],
  6: ['ALREADY_EXISTS', 409],
  7: ['PERMISSION_DENIED', 403],
  8: ['RESOURCE_EXHAUSTED', 429],
  9: ['FAILED_PRECONDITION', 400],
  10: ['ABORTED', 409],
  13: ['INTERNAL', 500],
  14: ['UNAVAILABLE', 503],
  16: ['UNAUTHENTICATED', 401],
};

/** The remedy for a Cloud Run error, by HTTP status and Google status name. */
export function cloudRunRemedy(status: number | undefined, code: string | undefined, project: string): string | undefined {
  if (status === 401 || code === 'UNAUTHENTICATED') {
    return 'Google refused the credentials (missing, invalid or expired access token): set TETHER_GCP_ACCESS_TOKEN (e.g. `gcloud auth print-access-token`) or Application Default Credentials (`gcloud auth application-default login`)';
  }
  if (status === 403 || code === 'PERMISSION_DENIED') {
    return `the Google credentials lack a Cloud Run permission in project ${project} (e.g. roles/run.developer), or the Cloud Run Admin API is not enabled there (gcloud services enable run.googleapis.com)`;
  }
  if (code === 'RESOURCE_EXHAUSTED' || status === 429) return 'Cloud Run quota or rate limit reached: wait a little, or ask for more quota (GPU jobs need GPU quota in the region)';
  if (code === 'FAILED_PRECONDITION') return 'Cloud Run refused it in the resource\'s current state (see the message): refresh and try again';
  if (code === 'INVALID_ARGUMENT' || status === 400) return 'Cloud Run refused the request (see the message): check the image, the region and the CPU / memory / GPU shape';
  return undefined;
}

/** Bad input, refused before any call: the CLI's usage exit code (2). */
function asUsage(e: CloudApiError): CloudApiError {
  (e as unknown as { exitCode: ExitCode }).exitCode = ExitCode.USAGE;
  return e;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `tether-<record><ledger>-<name>` made a valid Cloud Run job id (deterministic: a retry names the same job). */
export function jobIdFor(req: Pick<LaunchRequest, 'ledgerId' | 'name' | 'owner'>): string {
  const raw = markedName({ ...req, ledgerId: req.ledgerId.toLowerCase() })
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-');
  const head = raw.slice(0, raw.indexOf('-', 'tether-'.length) + 1); // the marker, kept whole
  const tail = raw.slice(head.length).replace(/-+/g, '-').replace(/^-+/, '');
  return `${head}${tail || 'job'}`.slice(0, 63).replace(/-+$/, '');
}

/** A Tether id of an execution: `<location>/<job>/<execution>`. */
export function executionId(name: string): string {
  const m = /^projects\/[^/]+\/locations\/([^/]+)\/jobs\/([^/]+)\/executions\/([^/]+)$/.exec(name);
  if (!m) throw new CloudApiError(CLOUD_RUN_TITLE, `not an execution name: "${name}"`, { remedy: 'report this: Cloud Run answered an unexpected name' });
  return `${m[1]}/${m[2]}/${m[3]}`;
}

function splitId(id: string): { location: string; job: string; execution: string } | undefined {
  const m = /^([a-z0-9-]+)\/([a-z][a-z0-9-]*)\/([a-z0-9-]+)$/.exec(id);
  return m ? { location: m[1]!, job: m[2]!, execution: m[3]! } : undefined;
}

/** The shape an execution's first container asks for (limits), or undefined. */
export function shapeOfExecution(e: Pick<Execution, 'template'>): { cpu?: number; memoryGiB?: number; gpus: number; gpuType?: string } {
  const limits = e.template?.containers?.find((c) => c.resources?.limits)?.resources?.limits ?? {};
  const gpus = Number(limits['nvidia.com/gpu'] ?? 0) || 0;
  const accel = e.template?.nodeSelector?.accelerator;
  // Cloud Run's defaults when a limit is not set: 1 vCPU, 512 MiB.
  return { cpu: parseCpu(limits.cpu) ?? 1, memoryGiB: parseMemoryGiB(limits.memory) ?? 0.5, gpus, ...(gpus && accel ? { gpuType: accel } : {}) };
}

/** An execution's state in Tether's words, and Cloud Run's own word for it. */
export function executionState(e: Execution): { status: InstanceState; raw: string } {
  const completed = e.conditions?.find((c) => c.type === 'Completed');
  if (e.completionTime) {
    if (completed?.executionReason === 'CANCELLED' || (e.cancelledCount ?? 0) > 0) return { status: 'terminated', raw: 'Cancelled' };
    if (completed?.state === 'CONDITION_FAILED' || (e.failedCount ?? 0) > 0) return { status: 'terminated', raw: 'Failed' };
    return { status: 'terminated', raw: 'Succeeded' };
  }
  if (e.deleteTime) return { status: 'terminating', raw: 'Deleting' };
  if (completed?.executionReason === 'CANCELLING') return { status: 'terminating', raw: 'Cancelling' };
  if (e.startTime || (e.runningCount ?? 0) > 0) return { status: 'running', raw: 'Running' };
  return { status: 'provisioning', raw: 'Pending' };
}

export class CloudRunProvider implements CloudProvider {
  readonly type = CloudProviderType.CLOUD_RUN;
  readonly title = CLOUD_RUN_TITLE;
  readonly billing = CLOUD_RUN_BILLING;
  private readonly base: string;
  private readonly pollMs: number;
  private readonly opTimeoutMs: number;
  private client: { token: string; http: JsonHttpClient; once: JsonHttpClient } | undefined;

  constructor(private readonly opts: CloudRunProviderOptions) {
    if (!opts.project) throw new TetherError(`${CLOUD_RUN_TITLE}: no Google Cloud project`, { remedy: 'pass --project or set TETHER_GCP_PROJECT (or CLOUDSDK_CORE_PROJECT)', exitCode: ExitCode.USAGE });
    if (!opts.region) throw new TetherError(`${CLOUD_RUN_TITLE}: no Cloud Run region`, { remedy: 'pass --region or set TETHER_GCP_RUN_REGION', exitCode: ExitCode.USAGE });
    this.base = `${(opts.baseUrl ?? CLOUD_RUN_DEFAULT_URL).replace(/\/+$/, '')}/v2`;
    this.pollMs = opts.operationPollMs ?? 1000;
    this.opTimeoutMs = opts.operationTimeoutMs ?? 120_000;
  }

  get project(): string {
    return this.opts.project;
  }

  private regions(): string[] {
    return [...new Set([this.opts.region, ...(this.opts.regions ?? [])])];
  }

  /** HTTP clients for the current token (a new token, a new client: the token is scrubbed from every message). */
  private async http(): Promise<{ http: JsonHttpClient; once: JsonHttpClient }> {
    let token: string;
    try {
      token = (await this.opts.token()).trim();
    } catch (err) {
      if (err instanceof TetherError) throw err;
      throw new CloudApiError(this.title, `no Google access token (${(err as Error)?.message ?? err})`, { remedy: cloudRunRemedy(401, undefined, this.project)!, status: 401, code: 'UNAUTHENTICATED', cause: err });
    }
    if (this.client?.token !== token) {
      const o = { apiKey: token, ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}), ...(this.opts.retries !== undefined ? { retries: this.opts.retries } : {}), ...(this.opts.backoffMs !== undefined ? { backoffMs: this.opts.backoffMs } : {}), ...(this.opts.log ? { log: this.opts.log } : {}), ...(this.opts.clock ? { clock: this.opts.clock } : {}) };
      this.client = { token, http: bearerClient(this.title, o, this.base, parseGoogleError), once: bearerClient(this.title, { ...o, retries: 0 }, this.base, parseGoogleError) };
    }
    return this.client;
  }

  /** Runs a call and gives its error Cloud Run's remedy (in place: an ambiguous error stays ambiguous). */
  private async call<T>(f: (h: { http: JsonHttpClient; once: JsonHttpClient }) => Promise<T>): Promise<T> {
    const h = await this.http();
    try {
      return await f(h);
    } catch (err) {
      if (err instanceof CloudApiError && err.status !== undefined && !(isAmbiguous(err) && (err.status ?? 0) >= 500)) {
        const remedy = cloudRunRemedy(err.status, err.code, this.project);
        if (remedy) (err as unknown as { remedy: string }).remedy = remedy;
      }
      throw err;
    }
  }

  private parent(location: string): string {
    return `/projects/${encodeURIComponent(this.project)}/locations/${encodeURIComponent(location)}`;
  }

  /** The shape and price of a type in a region, checked without any call. */
  private typeInfo(instanceType: string, region: string): { shape: CloudRunShape; price: number } {
    const shape = parseCloudRunType(instanceType);
    const usage = (msg: string, remedy: string) => asUsage(new CloudApiError(this.title, msg, { remedy, code: 'tether/bad-launch' }));
    if (!shape) throw usage(`"${instanceType}" is not a Cloud Run shape`, 'name one like 4vcpu-16gib or l4-4vcpu-16gib (GPU), or pass --cpu N --memory NGi [--gpu l4]; `tether cloud types cloudrun` lists some');
    const problem = shapeProblem(shape);
    if (problem) throw usage(`${instanceType}: ${problem}`, 'pick another CPU / memory combination');
    const price = shapePricePerHour(shape, region);
    if (price === undefined) throw usage(`no shipped Cloud Run price for region ${region}`, `launch in one of ${shapeRegions(shape).join(', ')} (Tier 1 regions, priced in Tether's table)`);
    if (!shapeRegions(shape).includes(region)) throw usage(`Cloud Run jobs have no ${shape.gpu} GPU in ${region}`, `launch in one of ${shapeRegions(shape).join(', ')}`);
    return { shape, price };
  }

  /** What a launch needs, checked before any ledger intent or call. */
  checkLaunch(req: Pick<LaunchRequest, 'region' | 'image' | 'instanceType'>): void {
    const region = req.region ?? this.opts.region;
    this.typeInfo(req.instanceType, region);
    // Only where Tether lists: an execution in a location it does not list would be invisible to every poll (never reconciled).
    if (!this.regions().includes(region)) {
      throw asUsage(new CloudApiError(this.title, `Tether does not watch Cloud Run region ${region} (it lists ${this.regions().join(', ')})`, { remedy: `launch in ${this.regions().join(' or ')}, or add ${region} to TETHER_GCP_RUN_REGIONS (comma-separated) / set it as the region`, code: 'tether/region-not-listed' }));
    }
    if (!(req.image ?? this.opts.defaultImage)) {
      throw asUsage(new CloudApiError(this.title, 'a Cloud Run job needs a container image, and none was given', { remedy: 'pass --image (e.g. us-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG), or set TETHER_GCP_RUN_IMAGE / tether.cloudRun.image', code: 'tether/image-required' }));
    }
  }

  /**
   * The shapes Tether offers, priced from the shipped table (Cloud Run has no catalogue call).
   * One cheap authenticated call first (`jobs.list`, one item), so that a wrong token or project
   * is said here — where the wizard and `tether cloud types` start — not at launch.
   */
  async listInstanceTypes(): Promise<InstanceType[]> {
    await this.call(({ http }) => http.get(`${this.parent(this.opts.region)}/jobs`, { query: { pageSize: 1 } }));
    return CLOUD_RUN_SHAPES.map((s) => ({
      name: cloudRunTypeName(s),
      description: `${s.cpu} vCPU, ${s.memoryGiB} GiB${s.gpu ? ', 1× NVIDIA L4' : ''} per task (Tier 1 price, ${CLOUD_RUN_BILLING.summary})`,
      ...(s.gpu ? { gpuType: 'NVIDIA L4' } : {}),
      gpuCount: s.gpu ? 1 : 0,
      vcpus: s.cpu,
      memoryGiB: s.memoryGiB,
      pricePerHour: shapePricePerHour(s, undefined)!,
      regionsWithCapacity: shapeRegions(s),
    }));
  }

  /** Every execution of the listed locations (all jobs: `jobs/-`), every page. */
  async listInstances(): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    for (const location of this.regions()) {
      let pageToken: string | undefined;
      do {
        const { body } = await this.call(({ http }) =>
          http.get<{ executions?: Execution[]; nextPageToken?: string }>(`${this.parent(location)}/jobs/-/executions`, { query: { pageSize: 100, ...(pageToken ? { pageToken } : {}) } }),
        );
        for (const e of body?.executions ?? []) out.push(this.toInstance(e));
        pageToken = body?.nextPageToken || undefined;
      } while (pageToken);
    }
    return out;
  }

  private executionPath(id: string): string | undefined {
    const p = splitId(id);
    return p ? `${this.parent(p.location)}/jobs/${p.job}/executions/${p.execution}` : undefined;
  }

  async describe(id: string): Promise<CloudInstance | undefined> {
    const path = this.executionPath(id);
    if (!path) return undefined;
    try {
      const { body } = await this.call(({ http }) => http.get<Execution>(path));
      if (!body?.name) return undefined;
      const inst = this.toInstance(body);
      inst.metadata.tasks = await this.listTasks(id).catch(() => undefined);
      return inst;
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** The tasks of an execution (index, state, times, exit code of the last attempt). */
  async listTasks(id: string): Promise<Array<{ index: number; state: string; startTime?: string; completionTime?: string; retried: number; exitCode?: number }>> {
    const path = this.executionPath(id);
    if (!path) return [];
    const out: Task[] = [];
    let pageToken: string | undefined;
    do {
      const { body } = await this.call(({ http }) => http.get<{ tasks?: Task[]; nextPageToken?: string }>(`${path}/tasks`, { query: { pageSize: 100, ...(pageToken ? { pageToken } : {}) } }));
      out.push(...(body?.tasks ?? []));
      pageToken = body?.nextPageToken || undefined;
    } while (pageToken);
    return out.map((t) => {
      const done = t.conditions?.find((c) => c.type === 'Completed');
      const state = t.completionTime ? (done?.state === 'CONDITION_SUCCEEDED' ? 'Succeeded' : done?.executionReason === 'CANCELLED' ? 'Cancelled' : 'Failed') : t.startTime ? 'Running' : 'Pending';
      return {
        index: t.index ?? 0,
        state,
        ...(t.startTime ? { startTime: t.startTime } : {}),
        ...(t.completionTime ? { completionTime: t.completionTime } : {}),
        retried: t.retried ?? 0,
        ...(t.lastAttemptResult?.exitCode !== undefined ? { exitCode: t.lastAttemptResult.exitCode } : {}),
      };
    });
  }

  /** Polls an Operation until it is done (or the timeout); an error inside a done Operation is thrown. */
  async waitOperation(op: Operation, what: string, timeoutMs = this.opTimeoutMs): Promise<Operation> {
    const deadline = Date.now() + timeoutMs;
    let cur = op;
    for (let delay = Math.min(this.pollMs, 250); !cur.done; delay = Math.min(delay * 2, this.pollMs)) {
      if (Date.now() >= deadline) {
        throw new CloudApiError(this.title, `${what}: the operation ${cur.name} was not done after ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}`, { remedy: 'it may still finish: refresh in a moment', code: 'tether/operation-timeout' });
      }
      await sleep(delay);
      ({ body: cur } = await this.call(({ http }) => http.get<Operation>(`/${cur.name}`)));
    }
    this.throwIfFailed(cur, what);
    return cur;
  }

  private throwIfFailed(op: Operation, what: string): void {
    if (!op.done || !op.error) return;
    const [code, status] = RPC_CODES[op.error.code ?? 2] ?? ['UNKNOWN', 500];
    throw new CloudApiError(this.title, `${what}: ${op.error.message ?? code}`, { remedy: cloudRunRemedy(status, code, this.project) ?? 'see the message', status, code });
  }

  async launch(req: LaunchRequest): Promise<CloudInstance> {
    this.checkLaunch(req);
    const region = req.region ?? this.opts.region;
    const { shape } = this.typeInfo(req.instanceType, region);
    const image = (req.image ?? this.opts.defaultImage)!;
    const jobId = jobIdFor(req);
    const h = await this.http();
    return launchIdempotently({
      ledgerId: req.ledgerId,
      list: () => this.listInstances(),
      mayHaveCreated: isAmbiguous,
      attempts: h.http.retries + 1,
      backoffMs: h.http.backoffMs,
      ...(this.opts.log ? { log: this.opts.log } : {}),
      create: async () => {
        await this.ensureJob(region, jobId, req, shape, image);
        const { body: op } = await this.call(({ once }) => once.post<Operation>(`${this.parent(region)}/jobs/${jobId}:run`, { body: {} }));
        this.throwIfFailed(op, `running job ${jobId}`);
        const name = (op.metadata?.name as string | undefined) ?? (op.response?.name as string | undefined);
        if (!name) throw new CloudApiError(this.title, `running job ${jobId} answered without an execution`, { remedy: 'refresh the list: Tether finds the execution by its marker' });
        return (
          (await this.describe(executionId(name))) ??
          this.toInstance({ ...(op.metadata as unknown as Execution), name, job: `projects/${this.project}/locations/${region}/jobs/${jobId}` })
        );
      },
    });
  }

  /** Creates the launch's job (waiting for its Operation), or finds the one an earlier attempt created. */
  private async ensureJob(region: string, jobId: string, req: LaunchRequest, shape: CloudRunShape, image: string): Promise<void> {
    const marker = `${req.ledgerId.slice(0, 8).toLowerCase()}${req.owner ?? ''}`;
    const labels = { [MARKER_LABEL]: marker, [NAME_LABEL]: req.name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').slice(0, 63), 'managed-by': 'tether' };
    const limits: Record<string, string> = { cpu: String(shape.cpu), memory: `${shape.memoryGiB}Gi`, ...(shape.gpu ? { 'nvidia.com/gpu': '1' } : {}) };
    const job = {
      labels,
      template: {
        labels,
        taskCount: 1,
        parallelism: 1,
        template: {
          containers: [{ image, resources: { limits } }],
          // A failed training run is not silently started again (and billed again).
          maxRetries: 0,
          timeout: `${this.opts.taskTimeoutSeconds ?? 86_400}s`,
          ...(shape.gpu ? { nodeSelector: { accelerator: shape.gpu }, gpuZonalRedundancyDisabled: true } : {}),
        },
      },
    };
    try {
      // The job id is fixed: repeating the create cannot make a second job (409), so it may be retried.
      const { body: op } = await this.call(({ http }) => http.post<Operation>(`${this.parent(region)}/jobs`, { query: { jobId }, body: job, retrySafe: true }));
      await this.waitOperation(op, `creating job ${jobId}`);
    } catch (err) {
      if (!(err instanceof CloudApiError && (err.status === 409 || err.code === 'ALREADY_EXISTS'))) throw err;
      const { body: existing } = await this.call(({ http }) => http.get<Job>(`${this.parent(region)}/jobs/${jobId}`));
      if (existing?.labels?.[MARKER_LABEL] !== marker) {
        throw new CloudApiError(this.title, `a job named ${jobId} exists without this launch's marker`, { remedy: 'it is not Tether\'s: delete or rename it, or launch under another name', code: 'ALREADY_EXISTS', status: 409 });
      }
      this.opts.log?.(`${this.title}: job ${jobId} already exists (an earlier attempt): running it`);
    }
  }

  async terminate(id: string): Promise<void> {
    const p = splitId(id);
    const path = this.executionPath(id);
    if (!p || !path) return; // not an execution id: nothing Tether could have launched
    try {
      const { body: op } = await this.call(({ http }) => http.post<Operation>(`${path}:cancel`, { body: {}, retrySafe: true }));
      await this.waitOperation(op, `cancelling ${id}`);
    } catch (err) {
      if (err instanceof CloudApiError && err.status === 404) return; // already gone
      if (err instanceof CloudApiError && err.code === 'tether/operation-timeout') {
        // The cancel was accepted and is under way (the execution shows as terminating): its job is left for now.
        this.opts.log?.(`${this.title}: ${err.message}; the execution is being cancelled, its job is kept`);
        return;
      }
      // Cancelling an execution that has ended is refused: it is as terminated as it gets.
      if (!(err instanceof CloudApiError && err.code === 'FAILED_PRECONDITION')) throw err;
      const { body: exec } = await this.call(({ http }) => http.get<Execution>(path));
      if (executionState(exec).status !== 'terminated') throw err;
    }
    await this.deleteJobIfOurs(p.location, p.job);
  }

  /** Deletes the job Tether created for a launch once none of its executions runs (never a job without Tether's marker). */
  private async deleteJobIfOurs(location: string, job: string): Promise<void> {
    const jobPath = `${this.parent(location)}/jobs/${job}`;
    try {
      const { body: j } = await this.call(({ http }) => http.get<Job>(jobPath));
      if (!j?.labels?.[MARKER_LABEL] || !parseMarker(job)) return;
      const { body: op } = await this.call(({ http }) => http.delete<Operation>(jobPath, { query: { ...(j.etag ? { etag: j.etag } : {}) } }));
      this.throwIfFailed(op, `deleting job ${job}`);
    } catch (err) {
      // Gone already, another execution still runs, or it changed meanwhile: it is kept (an idle job costs nothing).
      if (err instanceof CloudApiError && (err.status === 404 || err.code === 'FAILED_PRECONDITION' || err.code === 'ABORTED')) {
        this.opts.log?.(`${this.title}: job ${job} kept (${err.message})`);
        return;
      }
      throw err;
    }
  }

  consoleUrl(instance: CloudInstance): string {
    const p = splitId(instance.id);
    if (!p) return `https://console.cloud.google.com/run/jobs?project=${encodeURIComponent(this.project)}`;
    return `https://console.cloud.google.com/run/jobs/executions/details/${p.location}/${p.execution}/tasks?project=${encodeURIComponent(this.project)}`;
  }

  toInstance(e: Execution): CloudInstance {
    const id = executionId(e.name);
    const { location, job } = splitId(id)!;
    const { status, raw } = executionState(e);
    const shape = shapeOfExecution(e);
    const label = e.labels?.[MARKER_LABEL];
    const fromLabel = label && /^[0-9a-z]{8}([0-9a-z]{8})?$/.test(label) ? tetherIdOf(label.slice(0, 8), label.slice(8) || undefined) : undefined;
    const tetherId = fromLabel ?? parseMarker(job);
    const typeShape: CloudRunShape | undefined =
      shape.cpu !== undefined && shape.memoryGiB !== undefined && Number.isInteger(shape.memoryGiB) ? { cpu: shape.cpu, memoryGiB: shape.memoryGiB, ...(shape.gpuType === 'nvidia-l4' ? { gpu: 'nvidia-l4' as const } : {}) } : undefined;
    // Priced from what it asks for, named only when it is one of the type names (whole GiB).
    const perTask = shape.cpu !== undefined && shape.memoryGiB !== undefined ? shapePricePerHour({ cpu: shape.cpu, memoryGiB: shape.memoryGiB, ...(shape.gpuType === 'nvidia-l4' ? { gpu: 'nvidia-l4' as const } : {}) }, location) : undefined;
    const atOnce = Math.max(1, Math.min(e.parallelism || e.taskCount || 1, e.taskCount || 1));
    return {
      id,
      provider: this.type,
      name: job,
      region: location,
      ...(typeShape ? { instanceType: cloudRunTypeName(typeShape) } : {}),
      ...(shape.gpuType ? { gpuType: shape.gpuType === 'nvidia-l4' ? 'NVIDIA L4' : shape.gpuType } : {}),
      gpuCount: shape.gpus * atOnce,
      status,
      rawStatus: raw,
      ...(perTask !== undefined ? { pricePerHour: Math.round(perTask * atOnce * 1e6) / 1e6 } : {}),
      ...(e.startTime ?? e.createTime ? { launchedAt: e.startTime ?? e.createTime } : {}),
      ...(tetherId ? { tetherId } : {}),
      metadata: {
        job,
        execution: e.name,
        taskCount: e.taskCount ?? 1,
        runningCount: e.runningCount ?? 0,
        succeededCount: e.succeededCount ?? 0,
        failedCount: e.failedCount ?? 0,
        cancelledCount: e.cancelledCount ?? 0,
        ...(e.completionTime ? { completionTime: e.completionTime } : {}),
        ...(e.logUri ? { logUri: e.logUri } : {}),
        image: e.template?.containers?.[0]?.image,
      },
    };
  }
}
