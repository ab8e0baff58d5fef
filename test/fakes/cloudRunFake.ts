/**
 * A strict fake of the Cloud Run Admin API v2 — jobs, executions, tasks and long-running
 * operations — on test/fakes/fakeBase.ts (the real API cannot be called from tests).
 *
 * At least as strict as the published run/v2 discovery document (test/fakes/cloudRunSpec.ts,
 * fixtures in test/fixtures/cloudrun/ with their source):
 * - `Authorization: Bearer <token>` only; anything else is 401 UNAUTHENTICATED; another project
 *   is 403 PERMISSION_DENIED; errors are Google's `{"error": {code, message, status}}`;
 * - request bodies validated against the discovery schemas (unknown fields refused like Google's
 *   front end: "Invalid JSON payload received. Unknown name …"; "Required." fields present;
 *   enums, int32 / int64 / duration forms), path parameters against their patterns; every answer
 *   checked against the response schema (`specViolations` must stay empty);
 * - what the API documents in prose: job ids (lowercase letters, digits, dashes, a letter first,
 *   no dash last, ≤ 63), GCP label rules (keys: a lowercase letter first, then lowercase letters,
 *   digits, `_`, `-`, ≤ 63; values the same without the first-letter rule, may be empty; ≤ 64
 *   labels; no `run.googleapis.com`-style system keys), `limits` keys `cpu`, `memory`,
 *   `nvidia.com/gpu` only, CPU '1', '2', '4' or '8', memory within the CPU's range, GPU '1' only
 *   and only with `nodeSelector.accelerator` `nvidia-l4` (4 vCPU, 16 GiB at least) in a GPU region;
 * - create / delete / run / cancel answer a long-running Operation (`operations.get` polls it):
 *   create and delete are done after `opMs`; `:run`'s Operation has the Execution as metadata and
 *   is done only when the execution completes; `:cancel`'s when it is cancelled;
 * - `etag` on jobs and executions, changing with every change; a stale `etag` is 409 ABORTED;
 * - `pageSize` / `pageToken` / `nextPageToken` (a token only works with the same parent; pages
 *   are at most `maxPageSize`), `jobs/-/executions` across jobs, newest first;
 * - executions: pending → started (`startTime`, after `bootMs`) → completed (`completionTime`,
 *   conditions `Completed` / `ResourcesAvailable` / `Started`) when a test ends it
 *   ({@link FakeCloudRunServer.finish}) or after `runMs`; a cancel: CANCELLING for `terminateMs`,
 *   then CANCELLED with `completionTime`; a cancel of a completed execution is 400
 *   FAILED_PRECONDITION; deleting a job with a running execution is 400 FAILED_PRECONDITION
 *   unless `force`; a deleted job takes its executions with it (404 after).
 * Choices of the fake where the documentation says nothing (named so): the codes of a cancel of a
 * completed execution (FAILED_PRECONDITION) and of a missing image (the create Operation ends
 * with INVALID_ARGUMENT "Image '…' not found").
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { FakeProviderServer, type Answer, type FakeOptions } from './fakeBase';
import { check } from './cloudRunSpec';

const STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
const RPC: Record<string, number> = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, FAILED_PRECONDITION: 9, ABORTED: 10, INTERNAL: 13, UNAUTHENTICATED: 16 };

export const gerr = (code: number, message: string, status = STATUS[code] ?? 'UNKNOWN'): Answer => ({ status: code, body: { error: { code, message, status } } });

/** Cloud Run regions the fake knows (a few), and those with L4 GPUs for jobs. */
export const FAKE_LOCATIONS = ['us-central1', 'us-east1', 'us-east4', 'us-west1', 'europe-west1', 'europe-west4', 'europe-north1', 'asia-east1', 'asia-northeast1', 'asia-southeast1', 'southamerica-east1'];
export const FAKE_GPU_LOCATIONS = ['us-central1', 'us-east4', 'europe-west1', 'europe-west4', 'asia-southeast1'];

const JOB_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const MEMORY_RANGE: Record<string, [number, number]> = { '1': [0.125, 4], '2': [0.125, 8], '4': [2, 16], '8': [4, 32] };

interface FJob {
  name: string;
  location: string;
  jobId: string;
  uid: string;
  labels: Record<string, string>;
  template: Record<string, unknown>;
  createTime: string;
  updateTime: string;
  generation: number;
  executionCount: number;
  latest?: string;
}

interface FExec {
  name: string;
  id: string;
  job: FJob;
  uid: string;
  labels: Record<string, string>;
  taskTemplate: Record<string, unknown>;
  taskCount: number;
  parallelism: number;
  createdAt: number;
  startAt: number;
  cancelAt?: number;
  finish?: { at: number; exitCode: number };
  generation: number;
  deleted?: boolean;
}

interface FOp {
  name: string;
  kind: 'create-job' | 'delete-job' | 'run' | 'cancel' | 'delete-execution';
  at: number;
  job?: FJob;
  exec?: FExec;
  error?: { code: number; message: string };
}

export interface CloudRunFakeOptions extends FakeOptions {
  project?: string;
  /** Create / delete Operations are done after this long, ms. Default 50. */
  opMs?: number;
  /** An execution completes (exit 0) this long after it started, ms. Default: never (until cancelled or {@link FakeCloudRunServer.finish}). */
  runMs?: number;
  /** Largest page the fake answers. Default 1000. */
  maxPageSize?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const rand5 = () => Array.from(randomBytes(5), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');

export class FakeCloudRunServer extends FakeProviderServer {
  readonly project: string;
  readonly opMs: number;
  readonly runMs: number;
  readonly maxPageSize: number;
  readonly jobs = new Map<string, FJob>();
  readonly executions = new Map<string, FExec>();
  readonly operations = new Map<string, FOp>();
  /** Images the "registry" does not have: creating a job with one ends its Operation with an error. */
  readonly missingImages = new Set<string>(['us-docker.pkg.dev/nope/nope/missing:latest']);
  /** Answers that do not match the discovery document's response schemas (must stay empty). */
  readonly specViolations: string[] = [];
  private created = 0;

  constructor(o: CloudRunFakeOptions = {}) {
    super({ apiKey: 'ya29.fake-access-token-0123456789', ...o });
    this.project = o.project ?? 'tether-test';
    this.opMs = o.opMs ?? 50;
    this.runMs = o.runMs ?? Infinity;
    this.maxPageSize = o.maxPageSize ?? 1000;
  }

  instanceCount(): number {
    return this.created;
  }

  /** A job (named `name`, made a valid job id) started outside Tether, with one running execution; returns Tether's id of the execution. */
  addForeign(name: string, location = 'us-central1'): string {
    let jobId = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+$/, '').slice(0, 63);
    if (!/^[a-z]/.test(jobId)) jobId = `j-${jobId}`.slice(0, 63);
    const job = this.jobs.get(this.jobName(location, jobId)) ?? this.makeJob(location, jobId, {}, { containers: [{ image: 'us-docker.pkg.dev/cloudrun/container/job:latest', resources: { limits: { cpu: '1', memory: '512Mi' } } }] });
    const e = this.makeExecution(job, {});
    e.createdAt -= 60_000;
    e.startAt = e.createdAt + 1000;
    return `${location}/${jobId}/${e.id}`;
  }

  /** Ends an execution as its container would (exit 0: succeeded; else failed). */
  finish(executionIdOrName: string, exitCode = 0): void {
    const e = [...this.executions.values()].find((x) => x.name === executionIdOrName || x.id === executionIdOrName || executionIdOrName.endsWith(`/${x.id}`));
    if (!e) throw new Error(`no execution ${executionIdOrName}`);
    e.finish = { at: Date.now(), exitCode };
    e.generation++;
  }

  protected authorized(a: string | undefined): boolean {
    return a === `Bearer ${this.apiKey}`;
  }
  protected authError(): Answer {
    return gerr(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.');
  }
  /** Google sends no Retry-After on RESOURCE_EXHAUSTED. */
  protected rateLimited(): Answer {
    return gerr(429, "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per region' of service 'run.googleapis.com'.");
  }
  protected serverError(): Answer {
    return gerr(500, 'Internal error encountered.');
  }
  protected override invalidJson(): Answer {
    return gerr(400, 'Invalid JSON payload received. Unexpected token.');
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'POST' && /\/jobs\/[^/]+:run$/.test(path); // v2 and v1 (gcloud)
  }

  private jobName(location: string, jobId: string): string {
    return `projects/${this.project}/locations/${location}/jobs/${jobId}`;
  }

  private makeJob(location: string, jobId: string, labels: Record<string, string>, taskTemplate: Record<string, unknown>, execTemplate: Record<string, unknown> = {}): FJob {
    const now = iso(Date.now());
    const job: FJob = {
      name: this.jobName(location, jobId),
      location,
      jobId,
      uid: randomUUID(),
      labels,
      template: { ...execTemplate, template: taskTemplate },
      createTime: now,
      updateTime: now,
      generation: 1,
      executionCount: 0,
    };
    this.jobs.set(job.name, job);
    return job;
  }

  private makeExecution(job: FJob, overrides: { taskCount?: number }): FExec {
    const t = job.template as { labels?: Record<string, string>; taskCount?: number; parallelism?: number; template: Record<string, unknown> };
    const id = `${job.jobId}-${rand5()}`;
    const taskCount = overrides.taskCount ?? t.taskCount ?? 1;
    const now = Date.now();
    const e: FExec = {
      name: `${job.name}/executions/${id}`,
      id,
      job,
      uid: randomUUID(),
      labels: { ...(t.labels ?? {}) },
      taskTemplate: JSON.parse(JSON.stringify(t.template)) as Record<string, unknown>,
      taskCount,
      parallelism: Math.min(t.parallelism || taskCount, taskCount),
      createdAt: now,
      startAt: now + this.bootMs,
      generation: 1,
    };
    this.executions.set(e.name, e);
    job.executionCount++;
    job.latest = e.name;
    this.created++;
    return e;
  }

  // ---- lifecycle ----

  /** When the execution completed (undefined: not yet), and how. */
  private completion(e: FExec, now = Date.now()): { at: number; how: 'succeeded' | 'failed' | 'cancelled' } | undefined {
    const ends: Array<{ at: number; how: 'succeeded' | 'failed' | 'cancelled' }> = [];
    if (e.cancelAt !== undefined) ends.push({ at: e.cancelAt + this.terminateMs, how: 'cancelled' });
    if (e.finish) ends.push({ at: Math.max(e.finish.at, e.startAt), how: e.finish.exitCode === 0 ? 'succeeded' : 'failed' });
    if (Number.isFinite(this.runMs)) ends.push({ at: e.startAt + this.runMs, how: 'succeeded' });
    const first = ends.filter((x) => x.at <= now).sort((a, b) => a.at - b.at)[0];
    // A cancel asked before another end came wins.
    if (first && e.cancelAt !== undefined && first.how !== 'cancelled' && e.cancelAt < first.at) return now >= e.cancelAt + this.terminateMs ? { at: e.cancelAt + this.terminateMs, how: 'cancelled' } : undefined;
    return first;
  }

  private etagOf(kind: string, name: string, generation: number, extra: string): string {
    return `"${Buffer.from(`${kind}:${name}:${generation}:${extra}`).toString('base64url').slice(-24)}"`;
  }

  private execView(e: FExec, now = Date.now()): Record<string, unknown> {
    const done = this.completion(e, now);
    const started = now >= e.startAt && !(e.cancelAt !== undefined && e.cancelAt < e.startAt);
    const cancelling = e.cancelAt !== undefined && !done;
    const running = started && !done ? Math.min(e.parallelism, e.taskCount) : 0;
    const cond = (type: string, state: string, extra: Record<string, unknown> = {}) => ({ type, state, lastTransitionTime: iso(Math.min(now, e.createdAt + 1)), ...extra });
    const conditions = [
      cond('ResourcesAvailable', started || done ? 'CONDITION_SUCCEEDED' : 'CONDITION_RECONCILING'),
      cond('Started', started ? 'CONDITION_SUCCEEDED' : 'CONDITION_PENDING'),
      done
        ? done.how === 'succeeded'
          ? cond('Completed', 'CONDITION_SUCCEEDED', { message: 'Execution completed successfully.' })
          : done.how === 'failed'
            ? cond('Completed', 'CONDITION_FAILED', { executionReason: 'NON_ZERO_EXIT_CODE', message: `Task ${e.id}-0 failed with exit code ${e.finish?.exitCode}.` })
            : cond('Completed', 'CONDITION_FAILED', { executionReason: 'CANCELLED', message: 'The execution was cancelled.' })
        : cancelling
          ? cond('Completed', 'CONDITION_RECONCILING', { executionReason: 'CANCELLING', message: 'The execution is being cancelled.' })
          : cond('Completed', 'CONDITION_PENDING'),
    ];
    const stateKey = `${started}:${done?.how ?? ''}:${cancelling}`;
    return {
      name: e.name,
      uid: e.uid,
      generation: String(e.generation),
      labels: e.labels,
      annotations: {},
      createTime: iso(e.createdAt),
      ...(started ? { startTime: iso(e.startAt) } : {}),
      ...(done ? { completionTime: iso(done.at) } : {}),
      updateTime: iso(Math.min(now, Math.max(e.createdAt, done?.at ?? e.cancelAt ?? (started ? e.startAt : e.createdAt)))),
      launchStage: 'GA',
      job: e.job.jobId,
      parallelism: e.parallelism,
      taskCount: e.taskCount,
      template: e.taskTemplate,
      reconciling: !done,
      conditions,
      observedGeneration: String(e.generation),
      runningCount: running,
      succeededCount: done?.how === 'succeeded' ? e.taskCount : 0,
      failedCount: done?.how === 'failed' ? 1 : 0,
      cancelledCount: done?.how === 'cancelled' ? e.taskCount : 0,
      retriedCount: 0,
      logUri: `https://console.cloud.google.com/logs/viewer?project=${this.project}&advancedFilter=resource.type%3D%22cloud_run_job%22%0Alabels.%22run.googleapis.com/execution_name%22%3D%22${e.id}%22`,
      satisfiesPzs: false,
      etag: this.etagOf('execution', e.name, e.generation, stateKey),
    };
  }

  private jobView(j: FJob): Record<string, unknown> {
    const latest = j.latest ? this.executions.get(j.latest) : undefined;
    return {
      name: j.name,
      uid: j.uid,
      generation: String(j.generation),
      labels: j.labels,
      annotations: {},
      createTime: j.createTime,
      updateTime: j.updateTime,
      creator: 'someone@example.com',
      lastModifier: 'someone@example.com',
      launchStage: 'GA',
      template: j.template,
      observedGeneration: String(j.generation),
      terminalCondition: { type: 'Ready', state: 'CONDITION_SUCCEEDED', lastTransitionTime: j.updateTime },
      conditions: [],
      executionCount: j.executionCount,
      ...(latest && !latest.deleted ? { latestCreatedExecution: { name: latest.name, createTime: iso(latest.createdAt) } } : {}),
      reconciling: false,
      satisfiesPzs: false,
      etag: this.etagOf('job', j.name, j.generation, String(j.executionCount)),
    };
  }

  private taskViews(e: FExec, now = Date.now()): Record<string, unknown>[] {
    const ev = this.execView(e, now) as { startTime?: string; completionTime?: string; conditions: Array<{ type: string }> };
    const done = this.completion(e, now);
    return Array.from({ length: e.taskCount }, (_, index) => ({
      name: `${e.name}/tasks/${e.id}-${index}`,
      uid: randomUUID(),
      generation: '1',
      labels: e.labels,
      job: e.job.jobId,
      execution: e.id,
      containers: (e.taskTemplate.containers as unknown[]) ?? [],
      maxRetries: (e.taskTemplate.maxRetries as number | undefined) ?? 3,
      index,
      retried: 0,
      createTime: iso(e.createdAt),
      ...(ev.startTime ? { startTime: ev.startTime } : {}),
      ...(ev.completionTime ? { completionTime: ev.completionTime } : {}),
      conditions: ev.conditions.filter((c) => c.type === 'Completed').map((c) => ({ ...c })),
      ...(done && done.how !== 'cancelled' ? { lastAttemptResult: { exitCode: done.how === 'succeeded' ? 0 : e.finish?.exitCode ?? 1, status: { code: done.how === 'succeeded' ? 0 : 2, message: '' } } } : {}),
      reconciling: !done,
      observedGeneration: '1',
      etag: this.etagOf('task', e.name, index, String(done?.how)),
    }));
  }

  private opView(op: FOp, now = Date.now()): Record<string, unknown> {
    let done = false;
    let result: Record<string, unknown> | undefined;
    let type = 'type.googleapis.com/google.cloud.run.v2.Job';
    if (op.kind === 'create-job' || op.kind === 'delete-job') {
      done = now >= op.at + this.opMs;
      result = this.jobView(op.job!);
    } else {
      type = 'type.googleapis.com/google.cloud.run.v2.Execution';
      const e = op.exec!;
      if (op.kind === 'delete-execution') done = now >= op.at + this.opMs;
      else done = this.completion(e, now) !== undefined;
      result = this.execView(e, now);
    }
    const typed = { '@type': type, ...result };
    return {
      name: op.name,
      metadata: typed,
      done,
      ...(done ? (op.error ? { error: op.error } : { response: typed }) : {}),
    };
  }

  private newOp(kind: FOp['kind'], location: string, x: { job?: FJob; exec?: FExec; error?: FOp['error'] }): FOp {
    const op: FOp = { name: `projects/${this.project}/locations/${location}/operations/${randomUUID()}`, kind, at: Date.now(), ...x };
    this.operations.set(op.name, op);
    return op;
  }

  // ---- routes ----

  protected route(method: string, path: string, url: URL, body: unknown): Answer {
    const [schemaName, answer] = this.dispatch(method, path, url, body);
    if (schemaName && answer.status === 200 && answer.body !== undefined) for (const p of check(schemaName, 'response', answer.body)) this.specViolations.push(`${method} ${path}: ${p}`);
    if (answer.status !== 200) {
      const e = (answer.body as { error?: { code?: unknown; message?: unknown; status?: unknown } } | undefined)?.error;
      if (typeof e?.code !== 'number' || typeof e.message !== 'string' || typeof e.status !== 'string') this.specViolations.push(`${method} ${path} ${answer.status}: not Google's error shape`);
    }
    return answer;
  }

  private visibleExec(name: string): FExec | undefined {
    const e = this.executions.get(name);
    return e && !e.deleted && this.jobs.get(e.job.name) === e.job ? e : undefined;
  }

  private dispatch(method: string, path: string, url: URL, body: unknown): [string | undefined, Answer] {
    if (path.startsWith('/apis/run.googleapis.com/v1/')) return [undefined, this.dispatchV1(method, path, url, body)];
    const m = /^\/v2\/projects\/([^/]+)\/locations\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) return [undefined, gerr(404, `The requested URL ${path} was not found on this server.`)];
    const [, project, location, rest = ''] = m as unknown as [string, string, string, string | undefined];
    if (project !== this.project) return [undefined, gerr(403, `Permission 'run.jobs.list' denied on resource 'projects/${project}/locations/${location}' (or it may not exist).`)];
    if (!FAKE_LOCATIONS.includes(location)) return [undefined, gerr(404, `Location ${location} not found or not available to project ${project}.`)];
    const q = (k: string) => url.searchParams.get(k) ?? undefined;

    let r: RegExpExecArray | null;
    // operations.get
    if ((r = /^\/operations\/([^/]+)$/.exec(rest)) && method === 'GET') {
      const op = this.operations.get(`projects/${project}/locations/${location}/operations/${r[1]}`);
      return op ? ['GoogleLongrunningOperation', { status: 200, body: this.opView(op) }] : [undefined, gerr(404, `Operation ${r[1]} not found.`)];
    }
    // jobs.create / jobs.list
    if (rest === '/jobs') {
      if (method === 'GET') return this.page('GoogleCloudRunV2ListJobsResponse', 'jobs', path, url, [...this.jobs.values()].filter((j) => j.location === location).map((j) => this.jobView(j)));
      if (method === 'POST') return this.createJob(location, q('jobId'), q('validateOnly') === 'true', body);
    }
    // executions across jobs (`-`) or of one job
    if ((r = /^\/jobs\/([^/]+)\/executions$/.exec(rest)) && method === 'GET') {
      const jobId = r[1]!;
      if (jobId !== '-' && !this.jobs.has(this.jobName(location, jobId))) return [undefined, gerr(404, `Resource '${jobId}' of kind 'JOB' in region '${location}' in project '${project}' does not exist.`)];
      const list = [...this.executions.values()]
        .filter((e) => this.visibleExec(e.name) && e.job.location === location && (jobId === '-' || e.job.jobId === jobId))
        .sort((a, b) => b.createdAt - a.createdAt || (a.name < b.name ? -1 : 1))
        .map((e) => this.execView(e));
      return this.page('GoogleCloudRunV2ListExecutionsResponse', 'executions', path, url, list);
    }
    if ((r = /^\/jobs\/([^/]+)\/executions\/([^/]+)\/tasks$/.exec(rest)) && method === 'GET') {
      const [jobId, execId] = [r[1]!, r[2]!];
      const list = [...this.executions.values()]
        .filter((e) => this.visibleExec(e.name) && e.job.location === location && (jobId === '-' || e.job.jobId === jobId) && (execId === '-' || e.id === execId))
        .flatMap((e) => this.taskViews(e));
      if (execId !== '-' && !list.length) return [undefined, gerr(404, `Resource '${execId}' of kind 'EXECUTION' in region '${location}' in project '${project}' does not exist.`)];
      return this.page('GoogleCloudRunV2ListTasksResponse', 'tasks', path, url, list);
    }
    if ((r = /^\/jobs\/([^/:]+)\/executions\/([^/:]+)(:cancel)?$/.exec(rest))) {
      const e = this.visibleExec(`${this.jobName(location, r[1]!)}/executions/${r[2]}`);
      const notFound = gerr(404, `Resource '${r[2]}' of kind 'EXECUTION' in region '${location}' in project '${project}' does not exist.`);
      if (r[3] && method === 'POST') {
        const problems = check('GoogleCloudRunV2CancelExecutionRequest', 'request', body ?? {}, 'cancel_execution_request');
        if (problems.length) return [undefined, gerr(400, `Invalid JSON payload received. ${problems.join(' ')}`)];
        if (!e) return [undefined, notFound];
        const b = (body ?? {}) as { etag?: string; validateOnly?: boolean };
        const view = this.execView(e);
        if (b.etag && b.etag !== view.etag) return [undefined, gerr(409, `Etag mismatch: the execution ${e.id} was modified.`, 'ABORTED')];
        if (this.completion(e)) return [undefined, gerr(400, `Execution ${e.id} has already completed and cannot be cancelled.`, 'FAILED_PRECONDITION')];
        if (!b.validateOnly && e.cancelAt === undefined) {
          e.cancelAt = Date.now();
          e.generation++;
        }
        return ['GoogleLongrunningOperation', { status: 200, body: this.opView(this.newOp('cancel', location, { exec: e })) }];
      }
      if (!r[3] && method === 'GET') return e ? ['GoogleCloudRunV2Execution', { status: 200, body: this.execView(e) }] : [undefined, notFound];
      if (!r[3] && method === 'DELETE') {
        if (!e) return [undefined, notFound];
        const view = this.execView(e);
        if (q('etag') && q('etag') !== view.etag) return [undefined, gerr(409, `Etag mismatch: the execution ${e.id} was modified.`, 'ABORTED')];
        if (!this.completion(e)) return [undefined, gerr(400, `Execution ${e.id} is still running: cancel it first.`, 'FAILED_PRECONDITION')];
        const op = this.newOp('delete-execution', location, { exec: e });
        if (q('validateOnly') !== 'true') e.deleted = true;
        return ['GoogleLongrunningOperation', { status: 200, body: this.opView(op) }];
      }
    }
    if ((r = /^\/jobs\/([^/:]+)(:run)?$/.exec(rest))) {
      const jobId = r[1]!;
      if (!JOB_ID.test(jobId)) return [undefined, gerr(400, `Invalid value for field 'name': 'jobs/${jobId}' is not a valid job name.`)];
      const job = this.jobs.get(this.jobName(location, jobId));
      const notFound = gerr(404, `Resource '${jobId}' of kind 'JOB' in region '${location}' in project '${project}' does not exist.`);
      if (r[2] && method === 'POST') {
        const problems = check('GoogleCloudRunV2RunJobRequest', 'request', body ?? {}, 'run_job_request');
        if (problems.length) return [undefined, gerr(400, `Invalid JSON payload received. ${problems.join(' ')}`)];
        if (!job) return [undefined, notFound];
        const b = (body ?? {}) as { etag?: string; validateOnly?: boolean; overrides?: { taskCount?: number } };
        if (b.etag && b.etag !== this.jobView(job).etag) return [undefined, gerr(409, `Etag mismatch: the job ${jobId} was modified.`, 'ABORTED')];
        if (b.overrides?.taskCount !== undefined && b.overrides.taskCount < 1) return [undefined, gerr(400, 'overrides.task_count must be at least 1.')];
        if (b.validateOnly) return ['GoogleLongrunningOperation', { status: 200, body: { name: `projects/${project}/locations/${location}/operations/${randomUUID()}`, done: true, response: { '@type': 'type.googleapis.com/google.cloud.run.v2.Execution' } } }];
        const e = this.makeExecution(job, b.overrides ?? {});
        return ['GoogleLongrunningOperation', { status: 200, body: this.opView(this.newOp('run', location, { exec: e })) }];
      }
      if (!r[2] && method === 'GET') return job ? ['GoogleCloudRunV2Job', { status: 200, body: this.jobView(job) }] : [undefined, notFound];
      if (!r[2] && method === 'DELETE') {
        if (!job) return [undefined, notFound];
        if (q('etag') && q('etag') !== this.jobView(job).etag) return [undefined, gerr(409, `Etag mismatch: the job ${jobId} was modified.`, 'ABORTED')];
        const running = [...this.executions.values()].filter((e) => e.job === job && !e.deleted && !this.completion(e));
        if (running.length && q('force') !== 'true') return [undefined, gerr(400, `Job ${jobId} has ${running.length} running execution(s): cancel them first, or delete with force.`, 'FAILED_PRECONDITION')];
        const op = this.newOp('delete-job', location, { job });
        if (q('validateOnly') !== 'true') {
          for (const e of running) e.cancelAt = Date.now();
          this.jobs.delete(job.name);
        }
        return ['GoogleLongrunningOperation', { status: 200, body: this.opView(op) }];
      }
    }
    return [undefined, gerr(404, `The requested URL ${path} was not found on this server.`)];
  }

  // ---- the v1 (Knative-style) view of the same jobs and executions: what `gcloud run jobs` speaks ----

  /**
   * `gcloud run jobs …` (Cloud SDK 528) calls the v1 API at the *regional* endpoint
   * (`https://{region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{project}/…`): the
   * location comes from the host name. Shapes from the Cloud SDK's generated v1 client
   * (googlecloudsdk/generated_clients/apis/run/v1/run_v1_messages.py: Job, Execution, ObjectMeta,
   * ExecutionStatus, GoogleCloudRunV1Condition, ListJobsResponse, ListMeta). The same objects as
   * the v2 view: a job Tether created through v2 is listed by gcloud, an execution gcloud starts is
   * listed by Tether, a cancel through either is seen by both.
   */
  private dispatchV1(method: string, path: string, url: URL, body: unknown): Answer {
    const m = /^\/apis\/run\.googleapis\.com\/v1\/namespaces\/([^/]+)\/(jobs|executions)(?:\/([^/:]+)(:run|:cancel)?)?$/.exec(path);
    if (!m) return gerr(404, `The requested URL ${path} was not found on this server.`);
    const [, ns, kind, name, verb] = m as unknown as [string, string, 'jobs' | 'executions', string | undefined, string | undefined];
    if (ns !== this.project) return gerr(403, `Permission denied on resource project ${ns}.`);
    const location = /^([a-z]+-[a-z]+\d+)-/.exec(url.hostname)?.[1];
    if (!location || !FAKE_LOCATIONS.includes(location)) return gerr(404, `No regional endpoint for host ${url.hostname}: the v1 API is served at {region}-run.googleapis.com.`);
    // Kubernetes label selectors as gcloud writes them ("run.googleapis.com/job = NAME"): equality terms only.
    const selector = (url.searchParams.get('labelSelector') ?? '')
      .split(',')
      .filter((t) => t.trim())
      .map((t) => t.split(/==?/).map((x) => x.trim()) as [string, string]);
    if (selector.some((t) => t.length !== 2 || !t[0])) return gerr(400, `Unsupported labelSelector "${url.searchParams.get('labelSelector')}": only key=value terms.`);
    const matches = (labels: Record<string, string>) => selector.every(([k, v]) => labels[k] === v);
    if (kind === 'jobs') {
      if (!name && method === 'GET') {
        const items = [...this.jobs.values()].filter((j) => j.location === location).map((j) => this.jobV1(j)).filter((j) => matches(j.metadata.labels));
        return this.pageV1('JobsList', path, url, items);
      }
      const job = name ? this.jobs.get(this.jobName(location, name)) : undefined;
      if (!job) return gerr(404, `Resource '${name}' of kind 'JOB' in region '${location}' in project '${ns}' does not exist.`);
      if (!verb && method === 'GET') return { status: 200, body: this.jobV1(job) };
      if (verb === ':run' && method === 'POST') {
        const b = (body ?? {}) as Record<string, unknown>;
        const unknown = Object.keys(b).filter((k) => k !== 'overrides');
        if (unknown.length) return gerr(400, `Invalid JSON payload received. Unknown name "${unknown[0]}": Cannot find field.`);
        const o = (b.overrides ?? {}) as { taskCount?: number };
        return { status: 200, body: this.executionV1(this.makeExecution(job, o.taskCount ? { taskCount: o.taskCount } : {})) };
      }
    } else {
      if (!name && method === 'GET') {
        const items = [...this.executions.values()]
          .filter((e) => this.visibleExec(e.name) && e.job.location === location)
          .sort((a, b) => b.createdAt - a.createdAt)
          .map((e) => this.executionV1(e))
          .filter((e) => matches(e.metadata.labels));
        return this.pageV1('ExecutionsList', path, url, items);
      }
      const e = [...this.executions.values()].find((x) => x.id === name && x.job.location === location && this.visibleExec(x.name));
      if (!e) return gerr(404, `Resource '${name}' of kind 'EXECUTION' in region '${location}' in project '${ns}' does not exist.`);
      if (!verb && method === 'GET') return { status: 200, body: this.executionV1(e) };
      if (verb === ':cancel' && method === 'POST') {
        if (body !== undefined && Object.keys(body as object).length) return gerr(400, 'Invalid JSON payload received. CancelExecutionRequest has no fields.');
        if (this.completion(e)) return gerr(400, `Execution ${e.id} has already completed and cannot be cancelled.`, 'FAILED_PRECONDITION');
        if (e.cancelAt === undefined) {
          e.cancelAt = Date.now();
          e.generation++;
        }
        return { status: 200, body: this.executionV1(e) };
      }
    }
    return gerr(404, `The requested URL ${path} was not found on this server.`);
  }

  private pageV1(kind: string, path: string, url: URL, all: Array<Record<string, unknown>>): Answer {
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 0) || this.maxPageSize, this.maxPageSize);
    let offset = 0;
    const token = url.searchParams.get('continue');
    if (token) {
      const [p, o] = Buffer.from(token, 'base64url').toString('utf8').split('\n');
      if (p !== path || !/^\d+$/.test(o ?? '')) return gerr(400, 'Invalid continue token.');
      offset = Number(o);
    }
    const next = offset + limit < all.length ? Buffer.from(`${path}\n${offset + limit}`).toString('base64url') : undefined;
    return { status: 200, body: { apiVersion: 'run.googleapis.com/v1', kind, metadata: next ? { continue: next } : {}, items: all.slice(offset, offset + limit) } };
  }

  private taskSpecV1(tt: Record<string, unknown>): Record<string, unknown> {
    const timeout = typeof tt.timeout === 'string' ? Number(tt.timeout.replace(/s$/, '')) : 600;
    const accel = (tt.nodeSelector as { accelerator?: string } | undefined)?.accelerator;
    return {
      containers: tt.containers ?? [],
      maxRetries: (tt.maxRetries as number | undefined) ?? 3,
      timeoutSeconds: String(timeout),
      ...(tt.serviceAccount ? { serviceAccountName: tt.serviceAccount } : {}),
      ...(accel ? { nodeSelector: { 'run.googleapis.com/accelerator': accel } } : {}),
    };
  }

  private jobV1(j: FJob): { metadata: { labels: Record<string, string> } & Record<string, unknown> } & Record<string, unknown> {
    const v2 = this.jobView(j) as { etag: string; latestCreatedExecution?: { name: string; createTime: string } };
    const t = j.template as { labels?: Record<string, string>; taskCount?: number; parallelism?: number; template: Record<string, unknown> };
    const latest = j.latest ? this.executions.get(j.latest) : undefined;
    const done = latest ? this.completion(latest) : undefined;
    return {
      apiVersion: 'run.googleapis.com/v1',
      kind: 'Job',
      metadata: {
        name: j.jobId,
        namespace: this.project,
        selfLink: `/apis/run.googleapis.com/v1/namespaces/${this.project}/jobs/${j.jobId}`,
        uid: j.uid,
        resourceVersion: v2.etag.replace(/"/g, ''),
        generation: j.generation,
        creationTimestamp: j.createTime,
        labels: { ...j.labels, 'cloud.googleapis.com/location': j.location },
        annotations: { 'run.googleapis.com/creator': 'someone@example.com', 'run.googleapis.com/lastModifier': 'someone@example.com', 'run.googleapis.com/launch-stage': 'GA' },
      },
      spec: {
        template: {
          metadata: { ...(t.labels ? { labels: t.labels } : {}) },
          spec: { taskCount: t.taskCount ?? 1, ...(t.parallelism ? { parallelism: t.parallelism } : {}), template: { spec: this.taskSpecV1(t.template) } },
        },
      },
      status: {
        observedGeneration: j.generation,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: j.updateTime }],
        executionCount: j.executionCount,
        ...(latest && !latest.deleted
          ? { latestCreatedExecution: { name: latest.id, creationTimestamp: iso(latest.createdAt), ...(done ? { completionTimestamp: iso(done.at), completionStatus: done.how === 'succeeded' ? 'EXECUTION_SUCCEEDED' : done.how === 'failed' ? 'EXECUTION_FAILED' : 'EXECUTION_CANCELLED' } : { completionStatus: 'EXECUTION_RUNNING' }) } }
          : {}),
      },
    };
  }

  private executionV1(e: FExec): { metadata: { labels: Record<string, string> } & Record<string, unknown> } & Record<string, unknown> {
    const v2 = this.execView(e) as Record<string, any>;
    const v1cond = (c: { type: string; state: string; message?: string; executionReason?: string; lastTransitionTime: string }) => ({
      type: c.type,
      status: c.state === 'CONDITION_SUCCEEDED' ? 'True' : c.state === 'CONDITION_FAILED' ? 'False' : 'Unknown',
      ...(c.executionReason === 'CANCELLED' ? { reason: 'Cancelled' } : c.executionReason === 'CANCELLING' ? { reason: 'Cancelling' } : c.executionReason === 'NON_ZERO_EXIT_CODE' ? { reason: 'NonZeroExitCode' } : {}),
      ...(c.message ? { message: c.message } : {}),
      lastTransitionTime: c.lastTransitionTime,
    });
    return {
      apiVersion: 'run.googleapis.com/v1',
      kind: 'Execution',
      metadata: {
        name: e.id,
        namespace: this.project,
        selfLink: `/apis/run.googleapis.com/v1/namespaces/${this.project}/executions/${e.id}`,
        uid: e.uid,
        resourceVersion: String(v2.etag).replace(/"/g, ''),
        generation: e.generation,
        creationTimestamp: v2.createTime,
        labels: { ...e.labels, 'run.googleapis.com/job': e.job.jobId, 'cloud.googleapis.com/location': e.job.location },
        annotations: {},
        ownerReferences: [{ kind: 'Job', name: e.job.jobId, uid: e.job.uid, apiVersion: 'run.googleapis.com/v1', controller: true, blockOwnerDeletion: true }],
      },
      spec: { parallelism: e.parallelism, taskCount: e.taskCount, template: { spec: this.taskSpecV1(e.taskTemplate) } },
      status: {
        observedGeneration: e.generation,
        conditions: (v2.conditions as Parameters<typeof v1cond>[0][]).map(v1cond),
        ...(v2.startTime ? { startTime: v2.startTime } : {}),
        ...(v2.completionTime ? { completionTime: v2.completionTime } : {}),
        ...(v2.runningCount ? { runningCount: v2.runningCount } : {}),
        ...(v2.succeededCount ? { succeededCount: v2.succeededCount } : {}),
        ...(v2.failedCount ? { failedCount: v2.failedCount } : {}),
        ...(v2.cancelledCount ? { cancelledCount: v2.cancelledCount } : {}),
        logUri: v2.logUri,
      },
    };
  }

  /** One page of a list: `pageSize` (≤ maxPageSize), `pageToken` from an earlier page of the same list. */
  private page(schemaName: string, field: string, path: string, url: URL, all: unknown[]): [string, Answer] {
    const sizeRaw = url.searchParams.get('pageSize');
    const size = sizeRaw === null ? 100 : Number(sizeRaw);
    if (!Number.isInteger(size) || size < 0) return [schemaName, gerr(400, `Invalid value at 'page_size' (TYPE_INT32), "${sizeRaw}"`)];
    const limit = Math.min(size || 100, this.maxPageSize);
    let offset = 0;
    const token = url.searchParams.get('pageToken');
    if (token) {
      const [p, o] = Buffer.from(token, 'base64url').toString('utf8').split('\n');
      if (p !== path || !/^\d+$/.test(o ?? '')) return [schemaName, gerr(400, 'Invalid page token.')];
      offset = Number(o);
    }
    const items = all.slice(offset, offset + limit);
    const next = offset + limit < all.length ? Buffer.from(`${path}\n${offset + limit}`).toString('base64url') : undefined;
    return [schemaName, { status: 200, body: { ...(items.length ? { [field]: items } : {}), ...(next ? { nextPageToken: next } : {}) } }];
  }

  private createJob(location: string, jobId: string | undefined, validateOnly: boolean, body: unknown): [string | undefined, Answer] {
    if (!jobId) return [undefined, gerr(400, 'job_id is required.')];
    if (!JOB_ID.test(jobId)) {
      return [undefined, gerr(400, `Invalid value for field 'job_id': '${jobId}'. Job name must use only lowercase alphanumeric characters and dashes, cannot begin or end with a dash, and cannot be longer than 63 characters.`)];
    }
    const problems = check('GoogleCloudRunV2Job', 'request', body ?? {}, 'job');
    if (problems.length) return [undefined, gerr(400, `Invalid JSON payload received. ${problems.join(' ')}`)];
    const job = body as { labels?: Record<string, string>; template: { labels?: Record<string, string>; taskCount?: number; parallelism?: number; template: Record<string, unknown> } };
    for (const [where, labels] of [['job.labels', job.labels], ['job.template.labels', job.template.labels]] as const) {
      const bad = labelProblem(labels ?? {});
      if (bad) return [undefined, gerr(400, `Invalid value at '${where}': ${bad}`)];
    }
    const tt = job.template.template as { containers?: Array<{ image: string; resources?: { limits?: Record<string, string> } }>; nodeSelector?: { accelerator: string } };
    if (!tt.containers?.length) return [undefined, gerr(400, 'job.template.template.containers: at least one container is required.')];
    const { taskCount = 1, parallelism = 0 } = job.template;
    if (taskCount < 1 || taskCount > 10_000) return [undefined, gerr(400, 'job.template.task_count must be between 1 and 10000.')];
    if (parallelism < 0 || parallelism > taskCount) return [undefined, gerr(400, 'job.template.parallelism must be between 0 and task_count.')];
    for (const [i, c] of tt.containers.entries()) {
      const bad = limitsProblem(c.resources?.limits ?? {}, tt.nodeSelector, location);
      if (bad) return [undefined, gerr(400, `Invalid value at 'job.template.template.containers[${i}].resources.limits': ${bad}`)];
    }
    if (tt.nodeSelector && !tt.containers.some((c) => c.resources?.limits?.['nvidia.com/gpu'])) return [undefined, gerr(400, "job.template.template.node_selector requires a container with an 'nvidia.com/gpu' limit.")];
    if (this.jobs.has(this.jobName(location, jobId))) return [undefined, gerr(409, `Resource '${jobId}' already exists.`, 'ALREADY_EXISTS')];
    // Output-only fields are ignored, never stored (AIP-203): only what the schema lets a caller set.
    const taskTemplate = pick(tt, ['containers', 'volumes', 'maxRetries', 'timeout', 'serviceAccount', 'executionEnvironment', 'encryptionKey', 'vpcAccess', 'nodeSelector', 'gpuZonalRedundancyDisabled']);
    const execTemplate = pick(job.template, ['labels', 'annotations', 'parallelism', 'taskCount']);
    const missing = tt.containers.find((c) => this.missingImages.has(c.image));
    if (validateOnly) return ['GoogleLongrunningOperation', { status: 200, body: { name: `projects/${this.project}/locations/${location}/operations/${randomUUID()}`, done: true, response: { '@type': 'type.googleapis.com/google.cloud.run.v2.Job' } } }];
    const made = this.makeJob(location, jobId, job.labels ?? {}, taskTemplate, execTemplate);
    if (missing) {
      // The job is not kept: its create Operation ends with the error.
      this.jobs.delete(made.name);
      return ['GoogleLongrunningOperation', { status: 200, body: this.opView(this.newOp('create-job', location, { job: made, error: { code: RPC.INVALID_ARGUMENT!, message: `Image '${missing.image}' not found.` } })) }];
    }
    return ['GoogleLongrunningOperation', { status: 200, body: this.opView(this.newOp('create-job', location, { job: made })) }];
  }
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, JSON.parse(JSON.stringify(o[k]))]));
}

/** GCP label rules (https://cloud.google.com/resource-manager/docs/labels-overview#requirements), and Cloud Run's reserved namespaces. */
export function labelProblem(labels: Record<string, string>): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length > 64) return `${entries.length} labels; at most 64`;
  for (const [k, v] of entries) {
    if (/(^|\.)(run\.googleapis\.com|cloud\.googleapis\.com|serving\.knative\.dev|autoscaling\.knative\.dev)\//.test(k)) return `label "${k}": system labels cannot be set`;
    if (!LABEL_KEY.test(k)) return `label key "${k}": must start with a lowercase letter and contain only lowercase letters, digits, underscores and dashes (at most 63)`;
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) return `label value "${String(v)}" of "${k}": only lowercase letters, digits, underscores and dashes (at most 63)`;
  }
  return undefined;
}

function memGiB(q: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (!m) return undefined;
  const f: Record<string, number> = { Ki: 2 ** -20, Mi: 2 ** -10, Gi: 1, k: 1e3 / 2 ** 30, M: 1e6 / 2 ** 30, G: 1e9 / 2 ** 30 };
  return m[2] ? Number(m[1]) * f[m[2]]! : Number(m[1]) / 2 ** 30;
}

function limitsProblem(limits: Record<string, string>, nodeSelector: { accelerator: string } | undefined, location: string): string | undefined {
  for (const k of Object.keys(limits)) if (!['cpu', 'memory', 'nvidia.com/gpu'].includes(k)) return `unsupported resource "${k}": only cpu, memory and nvidia.com/gpu`;
  const cpu = limits.cpu ?? '1';
  const range = MEMORY_RANGE[cpu];
  if (!range) return `cpu "${cpu}": the only supported values are '1', '2', '4' and '8'`;
  const mem = limits.memory === undefined ? 0.5 : memGiB(limits.memory);
  if (mem === undefined) return `memory "${limits.memory}" is not a quantity`;
  if (mem < range[0] || mem > range[1]) return `memory ${limits.memory} is outside ${range[0]}–${range[1]} GiB for ${cpu} CPU`;
  const gpu = limits['nvidia.com/gpu'];
  if (gpu !== undefined) {
    if (gpu !== '1') return `nvidia.com/gpu "${gpu}": the only supported value is '1'`;
    if (nodeSelector?.accelerator !== 'nvidia-l4') return `a GPU needs node_selector.accelerator 'nvidia-l4' (got ${JSON.stringify(nodeSelector?.accelerator)})`;
    if (Number(cpu) < 4 || mem < 16) return 'an nvidia-l4 GPU needs at least 4 CPU and 16Gi of memory';
    if (!FAKE_GPU_LOCATIONS.includes(location)) return `nvidia-l4 GPUs are not available to jobs in ${location}`;
  }
  return undefined;
}
