/**
 * Kubernetes Jobs under Tether's leash: launched with a ledger intent written before the Job
 * exists, labelled with the ledger's marker (record id + ledger id), named deterministically from
 * the record (a retry after a crash finds the Job instead of making a second), observed (Job,
 * Pods: phase, node, restarts, GPU requests), priced from the Pods' requests and the user's
 * per-cluster table, stopped with `propagationPolicy: Background` always (a plain Job delete
 * orphans its Pods, which keep their GPUs), and reconciled after a crash.
 *
 * Identity: Tether deletes only a Job (or Pod) that carries this ledger's marker for the record
 * being stopped, with a UID precondition, so an object re-created under the same name by someone
 * else is never touched. What runs without Tether's label is listed as unmanaged and touched only
 * when the user picks it ({@link KubernetesJobs.stopUnmanaged}).
 */
import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import { ExitCode, TetherError } from '../../core/errors';
import { applyPatch, endIn, type Ledger, type LedgerResource, type ResourceOwner } from '../../core/ledger';
import { ledgerIdentity, readLedgerIdentity } from '../../core/ledgerIdentity';
import { PluginExecutionMode, remoteResourceInfo, type CloudProviderType, type RemoteResourceInfo } from '../../core/protocols';
import { kubeApi, statusOf, type KJob, type KPod, type KubeApi } from './client';
import { podPricePerHour, readPrices, type ClusterPrices } from './prices';
import {
  ANNOTATION_PLUGIN,
  DEFAULT_GPU_RESOURCE,
  LABEL_LEDGER,
  LABEL_RECORD,
  assertKubernetesSpec,
  describeRequests,
  jobBody,
  jobNameFor,
  requestsOf,
  requestsOfPod,
  type KubernetesSpec,
  type PodRequests,
} from './spec';

/** The `remote.provider` of Kubernetes records (budgets and the cost report group by it). */
export const KUBERNETES_PROVIDER = 'kubernetes' as CloudProviderType;

/** What Tether keeps about a Job in `remote.metadata` (no credential: context name and server URL only). */
export interface KubeRecordMeta {
  context: string;
  namespace: string;
  jobName: string;
  server: string;
  ledger: string;
  /** Set once the Job exists. */
  uid?: string;
  gpuResource: string;
  requests: PodRequests;
  /** The table's prices at launch (null: none set for the context; cost shows $0). */
  prices: ClusterPrices | null;
  parallelism: number;
  adopted?: boolean;
  /** The Job is gone but Pods of it still run (deleted without propagation outside Tether). */
  orphanedPods?: string[];
}

export interface PodView {
  name: string;
  namespace: string;
  phase: string;
  node: string | null;
  restarts: number;
  gpus: number;
  cpus: number;
  memoryGiB: number;
  startTime: string | null;
  terminating: boolean;
  /** Owned by no Job any more (its Job was deleted without propagation). */
  orphaned: boolean;
}

export interface JobView {
  context: string;
  namespace: string;
  name: string;
  uid: string;
  /** `this`: this ledger's marker; `elsewhere`: another ledger's; undefined: no marker (unmanaged). */
  origin: 'this' | 'elsewhere' | undefined;
  recordId?: string;
  plugin?: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'terminating';
  createdAt: string | null;
  pods: PodView[];
  gpus: number;
  /** USD/h of its running Pods by the context's price table (undefined: no table). */
  pricePerHour?: number;
}

export type CrashPoint = 'k8s-after-intent' | 'k8s-after-create' | 'k8s-after-record';

/**
 * Fault injection for the crash tests only: `TETHER_TEST_CRASH_AT=k8s-after-intent|k8s-after-create|
 * k8s-after-record` kills this process at that step of a launch, as a crash or a killed extension
 * host would (the cloud launch has the same points, src/backends/cloud/cloudPlugin.ts).
 */
function crashPoint(point: CrashPoint): void {
  if (process.env.TETHER_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

export interface KubernetesJobsOptions {
  ledger: Ledger;
  owner: ResourceOwner;
  workspace?: string;
  /** Environment whose KUBECONFIG (else HOME/.kube/config) names the clusters. Default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** How an API client is made (tests may wrap it). */
  api?: (o: { context?: string; namespace?: string; env?: NodeJS.ProcessEnv }) => Promise<KubeApi>;
  /**
   * A launch refused before its intent (a budget's hard cap: src/fleet/spend.ts), given the
   * price per hour (undefined: unknown) and what is launched.
   */
  refuse?: (o: { pricePerHour: number | undefined; what: string }) => Error | undefined;
}

const iso = (d: Date | string | undefined): string | null => (d === undefined ? null : typeof d === 'string' ? d : d.toISOString());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function metaOf(r: LedgerResource): KubeRecordMeta | undefined {
  return r.kind === 'kubernetes' && r.remote ? (r.remote.metadata as unknown as KubeRecordMeta) : undefined;
}

function podView(p: KPod, gpuResource: string): PodView {
  const req = requestsOfPod(p, gpuResource);
  return {
    name: p.metadata?.name ?? '',
    namespace: p.metadata?.namespace ?? '',
    phase: p.status?.phase ?? 'Unknown',
    node: p.spec?.nodeName ?? null,
    restarts: (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0),
    gpus: req.gpus,
    cpus: req.cpus,
    memoryGiB: req.memoryGiB,
    startTime: iso(p.status?.startTime),
    terminating: !!p.metadata?.deletionTimestamp,
    orphaned: !p.metadata?.ownerReferences?.some((o) => o.controller && o.kind === 'Job'),
  };
}

/** A Pod that holds its node's resources (bound and not finished). */
const holds = (p: PodView) => p.node !== null && p.phase !== 'Succeeded' && p.phase !== 'Failed';

function jobState(j: KJob, pods: PodView[]): JobView['state'] {
  const c = j.status?.conditions ?? [];
  if (j.metadata?.deletionTimestamp) return 'terminating';
  if (c.some((x) => x.type === 'Complete' && x.status === 'True')) return 'succeeded';
  if (c.some((x) => x.type === 'Failed' && x.status === 'True')) return 'failed';
  return pods.some((p) => p.phase === 'Running') ? 'running' : 'pending';
}

export class KubernetesJobs {
  private readonly ledger: Ledger;
  private readonly apis = new Map<string, Promise<KubeApi>>();

  constructor(private readonly o: KubernetesJobsOptions) {
    this.ledger = o.ledger;
  }

  private log(line: string): void {
    this.o.log?.(line);
  }

  /** The API of a context (one per context, kept). */
  api(context?: string, namespace?: string): Promise<KubeApi> {
    const key = `${context ?? ''}\u0000${namespace ?? ''}`;
    let a = this.apis.get(key);
    if (!a) {
      const make = this.o.api ?? kubeApi;
      a = make({ ...(context !== undefined ? { context } : {}), ...(namespace !== undefined ? { namespace } : {}), ...(this.o.env ? { env: this.o.env } : {}) });
      a.catch(() => this.apis.delete(key));
      this.apis.set(key, a);
    }
    return a;
  }

  /**
   * Launches a plugin as a Job. Everything the user can get wrong (the declaration, the context,
   * a budget's hard cap) is refused before the intent; then the intent, then the Job.
   */
  async start(plugin: string, spec: KubernetesSpec): Promise<LedgerResource> {
    assertKubernetesSpec(plugin, spec);
    const api = await this.api(spec.context, spec.namespace);
    const { target } = api;
    const requests = requestsOf(spec);
    let prices: ClusterPrices | null = null;
    try {
      prices = readPrices(this.ledger.stateDir)[target.context] ?? null;
    } catch (err) {
      this.log(`warning: ${(err as Error).message}`);
    }
    const price = prices ? podPricePerHour(requests, prices) : undefined;
    const refusal = this.o.refuse?.({ pricePerHour: price, what: `${plugin} (${describeRequests(requests)} on ${target.context})` });
    if (refusal) throw refusal;
    if (!prices) this.log(`warning: no price table for context "${target.context}": ${plugin} is costed at $0 (set one: tether k8s prices set ${target.context} --gpu-hour X --cpu-hour Y --gib-hour Z)`);
    const self = ledgerIdentity(this.ledger.stateDir);
    const id = randomUUID();
    const name = jobNameFor(id, self, plugin);
    // One read before the intent: credentials the cluster refuses (401/403) are said with nothing recorded.
    await api.readJob(target.namespace, name);
    const meta: KubeRecordMeta = { context: target.context, namespace: target.namespace, jobName: name, server: target.server, ledger: self, gpuResource: spec.gpuResource ?? DEFAULT_GPU_RESOURCE, requests, prices, parallelism: 1 };
    const rec = await this.ledger.addIntent({
      id,
      kind: 'kubernetes',
      plugin,
      ...(this.o.workspace ? { workspace: this.o.workspace } : {}),
      executionMode: PluginExecutionMode.KUBERNETES,
      owner: this.o.owner,
      remote: remoteOf(meta, 'pending', price),
    });
    crashPoint('k8s-after-intent');
    let job: KJob;
    try {
      job = await this.createOrFind(api, rec.id, self, name, target.namespace, () => jobBody({ name, namespace: target.namespace, plugin, recordId: rec.id, ledger: self, spec }));
    } catch (err) {
      // Refused for good (invalid, forbidden, no such namespace): nothing exists, the intent ends.
      await this.ledger.end(rec.id, 'failed', `the job was not created: ${(err as Error).message}`);
      throw err;
    }
    crashPoint('k8s-after-create');
    const uid = job.metadata?.uid ?? '';
    const out = await this.ledger.patch(rec.id, { remote: { ...rec.remote!, instanceId: uid, metadata: { ...rec.remote!.metadata, uid } } }, `job ${target.namespace}/${name} created (uid ${uid})`);
    crashPoint('k8s-after-record');
    this.log(`${plugin}: job ${target.namespace}/${name} created on context ${target.context}`);
    return out ?? rec;
  }

  /**
   * The Job of a record: an existing one carrying its marker (a retry), else a new one. A create
   * that failed ambiguously (no answer, 5xx) is followed by a read: the Job may exist anyway.
   */
  private async createOrFind(api: KubeApi, recordId: string, self: string, name: string, ns: string, body: () => Record<string, unknown>): Promise<KJob> {
    const ours = (j: KJob | undefined) => !!j && j.metadata?.labels?.[LABEL_RECORD] === recordId && j.metadata?.labels?.[LABEL_LEDGER] === self;
    const existing = await api.readJob(ns, name);
    if (existing) {
      if (ours(existing)) return existing;
      throw new TetherError(`a job named ${ns}/${name} exists and does not carry this record's marker`, { remedy: 'Tether leaves it alone; start the plugin again (a new record gets a new name).', exitCode: ExitCode.FAILED });
    }
    try {
      return await api.createJob(ns, body());
    } catch (err) {
      const code = statusOf(err);
      if (code !== undefined && code < 500 && code !== 409 && code !== 429) throw err;
      // 409 (a concurrent create of the same record), 5xx, a timeout: look before anything else.
      for (let i = 0; i < 5; i++) {
        const j = await api.readJob(ns, name).catch(() => undefined);
        if (ours(j)) return j!;
        await sleep(200 * (i + 1));
      }
      throw err;
    }
  }

  /** Views of the Jobs (and their Pods) of the given records, and the ledger brought up to date. */
  async observe(records?: readonly LedgerResource[]): Promise<Map<string, JobView>> {
    const out = new Map<string, JobView>();
    // Intents without a Job yet: completed when their Job exists, closed once older than the grace.
    for (const r of (records ?? this.ledger.read().resources).filter((x) => x.kind === 'kubernetes' && metaOf(x) && !metaOf(x)!.uid)) {
      if (Date.now() - Date.parse(r.createdAt) < this.intentSettleMs) continue; // a launch in flight
      try {
        await this.settleIntent(r, this.intentGraceMs);
      } catch (err) {
        this.log(`kubernetes: cannot check the intent ${r.id.slice(0, 8)}: ${(err as Error).message}`);
      }
    }
    const recs = (records ?? this.ledger.read().resources).filter((r) => r.kind === 'kubernetes' && metaOf(r)?.uid);
    const byTarget = new Map<string, LedgerResource[]>();
    for (const r of recs) {
      const m = metaOf(r)!;
      const k = `${m.context}\u0000${m.namespace}`;
      byTarget.set(k, [...(byTarget.get(k) ?? []), r]);
    }
    for (const [k, rs] of byTarget) {
      const [context, namespace] = k.split('\u0000') as [string, string];
      let api: KubeApi;
      let jobs: KJob[];
      let pods: KPod[];
      try {
        api = await this.api(context, namespace);
        const self = metaOf(rs[0]!)!.ledger;
        jobs = await api.listJobs(namespace, `${LABEL_LEDGER}=${self}`);
        pods = await api.listPods(namespace, `${LABEL_LEDGER}=${self}`);
      } catch (err) {
        this.log(`kubernetes: cannot read context ${context}/${namespace}: ${(err as Error).message}`);
        continue; // unknown, not gone
      }
      for (const r of rs) {
        const m = metaOf(r)!;
        const job = jobs.find((j) => j.metadata?.uid === m.uid);
        const myPods = pods.filter((p) => p.metadata?.labels?.[LABEL_RECORD] === r.id).map((p) => podView(p, m.gpuResource));
        const view = job ? this.viewOf(context, job, myPods, 'this', m.prices) : undefined;
        if (view) out.set(r.id, view);
        await this.record(r, job, myPods, view);
      }
    }
    return out;
  }

  private viewOf(context: string, j: KJob, pods: PodView[], origin: JobView['origin'], prices: ClusterPrices | null | undefined): JobView {
    const running = pods.filter(holds);
    return {
      context,
      namespace: j.metadata?.namespace ?? '',
      name: j.metadata?.name ?? '',
      uid: j.metadata?.uid ?? '',
      origin,
      ...(j.metadata?.labels?.[LABEL_RECORD] ? { recordId: j.metadata.labels[LABEL_RECORD] } : {}),
      ...(j.metadata?.annotations?.[ANNOTATION_PLUGIN] ? { plugin: j.metadata.annotations[ANNOTATION_PLUGIN] } : {}),
      state: jobState(j, pods),
      createdAt: iso(j.metadata?.creationTimestamp),
      pods,
      gpus: pods.reduce((n, p) => n + (holds(p) ? p.gpus : 0), 0),
      ...(prices ? { pricePerHour: running.reduce((s, p) => s + podPricePerHour(p, prices), 0) } : {}),
    };
  }

  /** Brings one record in line with what the cluster shows (history stamped at the Pods' own times). */
  private async record(r: LedgerResource, job: KJob | undefined, pods: PodView[], view: JobView | undefined): Promise<void> {
    const m = metaOf(r)!;
    const live = pods.filter((p) => p.phase !== 'Succeeded' && p.phase !== 'Failed');
    if (!job) {
      if (live.length) {
        // Deleted without propagation (outside Tether): its Pods still run and bill.
        const names = live.map((p) => p.name).sort();
        if (JSON.stringify(names) !== JSON.stringify(m.orphanedPods ?? [])) {
          await this.ledger.patch(r.id, { remote: { ...r.remote!, status: 'orphaned-pods', metadata: { ...r.remote!.metadata, orphanedPods: names } } }, `the job is gone but ${names.length} of its pods still run (deleted without propagation): stop it to delete them`);
        }
        return;
      }
      await this.finish(r, 'stopped', `job ${m.namespace}/${m.jobName} is gone${r.state === 'stopping' ? '' : ' (deleted outside Tether)'}`, undefined);
      return;
    }
    const state = view!.state;
    if (state === 'succeeded' || state === 'failed') {
      if (live.length) return; // still finishing
      const when = iso(job.status?.completionTime) ?? latestCondition(job) ?? undefined;
      const cond = (job.status?.conditions ?? []).find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      await this.finish(r, state === 'succeeded' ? 'stopped' : 'failed', `job ${state}${cond?.reason ? ` (${cond.reason})` : ''}`, when ?? undefined, state === 'succeeded' ? 0 : 1);
      return;
    }
    if (state === 'terminating' || r.state === 'stopping') return;
    const holding = pods.filter(holds);
    const want: LedgerResource['state'] = holding.length ? 'running' : 'starting';
    const status = holding.length ? 'running' : 'pending';
    if (r.state !== want) {
      const at = want === 'running' ? earliest(holding.map((p) => p.startTime)) : undefined;
      await this.ledger.update((b) => {
        const x = b.resources.find((y) => y.id === r.id);
        if (!x) return;
        applyPatch(x, { state: want, remote: { ...x.remote!, status } }, `cloud:${want === 'running' ? 'running' : 'provisioning'} ${holding.length} pod(s) on ${[...new Set(holding.map((p) => p.node))].join(', ') || 'no node yet'}`);
        backdate(x, at);
      }, `updating ${r.id}`);
    }
  }

  private async finish(r: LedgerResource, state: 'stopped' | 'failed', note: string, at: string | undefined, code?: number): Promise<void> {
    await this.ledger.update((b) => {
      if (!b.resources.some((y) => y.id === r.id)) return;
      endIn(b, r.id, state, `cloud:terminated ${note}`, { code: code ?? null, at: at ?? new Date().toISOString(), message: note });
      const x = b.ended.find((y) => y.id === r.id);
      if (x) {
        x.remote = { ...x.remote!, status: state === 'failed' ? 'failed' : 'terminated' };
        backdate(x, at);
      }
    }, `ending ${r.id}`);
  }

  /**
   * Stops a record's Job with `propagationPolicy: Background` (its Pods go with it) and deletes
   * Pods of it that a plain delete orphaned — only objects carrying this record's marker, with a
   * UID precondition. Waits up to `waitMs` for the Pods to be gone, then ends the record.
   */
  async stop(recordId: string, o: { waitMs?: number; reason?: string } = {}): Promise<{ job: string; deletedJob: boolean; deletedPods: string[]; remaining: string[] }> {
    const r = this.ledger.read().resources.find((x) => x.id === recordId);
    const m = r ? metaOf(r) : undefined;
    if (!r || !m) throw new TetherError(`no open Kubernetes record ${recordId}`, { remedy: 'List them with `tether k8s ls`.', exitCode: ExitCode.USAGE });
    await this.ledger.patch(r.id, { state: 'stopping' }, o.reason ?? 'stop requested');
    const out = await this.stopMarked({ context: m.context, namespace: m.namespace, name: m.jobName, recordId: r.id, ledger: m.ledger, ...(m.uid ? { uid: m.uid } : {}), waitMs: o.waitMs ?? 60_000 });
    if (!out.remaining.length) await this.finish(r, 'stopped', `stopped by Tether (job ${m.namespace}/${m.jobName} deleted with propagationPolicy Background)`, undefined);
    return out;
  }

  /**
   * Deletes the Job `name` if it carries the marker (record + ledger) and, when known, the uid —
   * with Background propagation and a UID precondition — and every Pod carrying the marker that
   * its deletion does not take (orphaned by a plain delete). Waits up to `waitMs` for them to go.
   */
  async stopMarked(o: { context: string; namespace: string; name: string; recordId: string; ledger: string; uid?: string; waitMs: number }): Promise<{ job: string; deletedJob: boolean; deletedPods: string[]; remaining: string[] }> {
    const api = await this.api(o.context, o.namespace);
    const ns = o.namespace;
    const ours = (x: { metadata?: { labels?: Record<string, string> } } | undefined) => x?.metadata?.labels?.[LABEL_RECORD] === o.recordId && x?.metadata?.labels?.[LABEL_LEDGER] === o.ledger;
    let deletedJob = false;
    const job = await api.readJob(ns, o.name);
    if (job && ours(job) && (!o.uid || job.metadata?.uid === o.uid)) {
      if (!job.metadata?.deletionTimestamp) {
        try {
          await api.deleteJob(ns, o.name, job.metadata!.uid!);
          deletedJob = true;
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
      }
    } else if (job) {
      this.log(`kubernetes: job ${ns}/${o.name} does not carry the marker of record ${o.recordId.slice(0, 8)} (or has another uid): not touched`);
    }
    const deletedPods: string[] = [];
    for (const p of await api.listPods(ns, `${LABEL_RECORD}=${o.recordId}`)) {
      if (!ours(p) || p.metadata?.deletionTimestamp) continue;
      if (deletedJob && p.metadata?.ownerReferences?.some((x) => x.controller && x.uid === job?.metadata?.uid)) continue; // the Job's deletion takes them
      try {
        await api.deletePod(ns, p.metadata!.name!, p.metadata!.uid!);
        deletedPods.push(p.metadata!.name!);
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    }
    const deadline = Date.now() + o.waitMs;
    let remaining: string[] = [];
    for (;;) {
      const [j, ps] = await Promise.all([api.readJob(ns, o.name), api.listPods(ns, `${LABEL_RECORD}=${o.recordId}`)]);
      remaining = ps.filter(ours).map((p) => p.metadata?.name ?? '');
      if ((!j || !ours(j)) && !remaining.length) break;
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    return { job: `${ns}/${o.name}`, deletedJob, deletedPods, remaining };
  }

  /** Deletes a Job the user picked that Tether did not start (Background propagation, UID precondition). */
  async stopUnmanaged(o: { context?: string; namespace: string; name: string; uid: string }): Promise<void> {
    const api = await this.api(o.context, o.namespace);
    await api.deleteJob(o.namespace, o.name, o.uid);
  }

  /**
   * What runs on a context: Jobs with this ledger's marker, with another ledger's ("elsewhere")
   * and without (unmanaged), each with its Pods. Namespaces: every namespace when the user may
   * list them cluster-wide, else `namespaces` (default: the context's).
   */
  async list(o: { context?: string; namespaces?: string[] } = {}): Promise<JobView[]> {
    const api = await this.api(o.context);
    const self = readLedgerIdentity(this.ledger.stateDir);
    let jobs: KJob[];
    let pods: KPod[];
    try {
      if (o.namespaces?.length) throw Object.assign(new Error('namespaced'), { status: 403 });
      [jobs, pods] = await Promise.all([api.listJobs(undefined), api.listPods(undefined)]);
    } catch (err) {
      if (statusOf(err) !== 403) throw err;
      const nss = o.namespaces?.length ? o.namespaces : [api.target.namespace];
      jobs = [];
      pods = [];
      for (const ns of nss) {
        jobs.push(...(await api.listJobs(ns)));
        pods.push(...(await api.listPods(ns)));
      }
    }
    let prices: ClusterPrices | undefined;
    try {
      prices = readPrices(this.ledger.stateDir)[api.target.context];
    } catch {
      prices = undefined;
    }
    return jobs.map((j) => {
      const uid = j.metadata?.uid ?? '';
      const labels = j.metadata?.labels ?? {};
      const origin = labels[LABEL_RECORD] ? (labels[LABEL_LEDGER] && labels[LABEL_LEDGER] === self ? 'this' : 'elsewhere') : undefined;
      const mine = pods.filter((p) => p.metadata?.ownerReferences?.some((x) => x.uid === uid) || (labels[LABEL_RECORD] && p.metadata?.labels?.[LABEL_RECORD] === labels[LABEL_RECORD]));
      return this.viewOf(api.target.context, j, mine.map((p) => podView(p, DEFAULT_GPU_RESOURCE)), origin, prices);
    });
  }

  /** The last lines of a record's Pods' logs (each Pod's, newest Pod last). */
  async logs(recordId: string, o: { tail?: number } = {}): Promise<string> {
    const { api, m, pods } = await this.podsOfRecord(recordId);
    const parts: string[] = [];
    for (const p of pods) {
      try {
        const text = await api.readLog(m.namespace, p.metadata!.name!, { ...(o.tail ? { tailLines: o.tail } : {}) });
        parts.push(pods.length > 1 ? `==> ${p.metadata!.name} <==\n${text}` : text);
      } catch (err) {
        parts.push(`(${p.metadata!.name}: ${(err as Error).message})\n`);
      }
    }
    return parts.join('');
  }

  /** Follows the log of a record's newest Pod into `out` until it ends (or the returned controller aborts). */
  async followLogs(recordId: string, out: Writable, o: { waitMs?: number } = {}): Promise<AbortController> {
    // A Pod still being scheduled or pulling its image has no log yet: wait for its container to start.
    const deadline = Date.now() + (o.waitMs ?? 120_000);
    let got = await this.podsOfRecord(recordId);
    const started = (p: KPod | undefined) => !!p && (p.status?.containerStatuses ?? []).some((c) => c.state?.running !== undefined || c.state?.terminated !== undefined || (c.restartCount ?? 0) > 0);
    while (!started(got.pods[got.pods.length - 1]) && Date.now() < deadline) {
      await sleep(500);
      got = await this.podsOfRecord(recordId);
    }
    const { api, m, pods } = got;
    const p = pods[pods.length - 1];
    if (!p) throw new TetherError(`the job of record ${recordId.slice(0, 8)} has no pod yet`, { remedy: 'Wait until it is scheduled, then try again.' });
    return api.followLog(m.namespace, p.metadata!.name!, p.spec?.containers?.[0]?.name ?? 'main', out);
  }

  private async podsOfRecord(recordId: string): Promise<{ api: KubeApi; m: KubeRecordMeta; pods: KPod[] }> {
    const body = this.ledger.read();
    const r = [...body.resources, ...body.ended].find((x) => x.id === recordId || x.id.startsWith(recordId));
    const m = r ? metaOf(r) : undefined;
    if (!r || !m) throw new TetherError(`no Kubernetes record ${recordId}`, { remedy: 'List them with `tether k8s ls`.', exitCode: ExitCode.USAGE });
    const api = await this.api(m.context, m.namespace);
    const pods = (await api.listPods(m.namespace, `${LABEL_RECORD}=${r.id}`)).sort((a, b) => String(iso(a.metadata?.creationTimestamp)).localeCompare(String(iso(b.metadata?.creationTimestamp))));
    return { api, m, pods };
  }

  /** How long an intent may wait for its Job before observe() closes it as failed (reconcile takes its own). */
  intentGraceMs = 15 * 60_000;
  /** observe() looks for an intent's Job once the intent is this old (a launch takes seconds). */
  intentSettleMs = 60_000;

  /** An intent's Job, found by its deterministic name and marker (the record is completed), else the intent closed once older than `grace`. */
  private async settleIntent(r: LedgerResource, grace: number): Promise<'completed' | 'failed' | undefined> {
    const m = metaOf(r)!;
    const api = await this.api(m.context, m.namespace);
    const j = await api.readJob(m.namespace, m.jobName);
    if (j && j.metadata?.labels?.[LABEL_RECORD] === r.id && j.metadata?.labels?.[LABEL_LEDGER] === m.ledger) {
      const uid = j.metadata.uid!;
      await this.ledger.patch(r.id, { remote: { ...r.remote!, instanceId: uid, metadata: { ...r.remote!.metadata, uid } } }, `re-adopted job ${m.namespace}/${m.jobName} by its marker (uid ${uid})`);
      return 'completed';
    }
    if (Date.now() - Date.parse(r.createdAt) > grace) {
      await this.ledger.end(r.id, 'failed', `no job carries this intent's marker after ${Math.round(grace / 1000)} s: the launch never happened`);
      return 'failed';
    }
    return undefined;
  }

  /**
   * After a crash: an intent with no Job is closed as failed once `graceMs` old (a launch may be
   * in flight before then); an intent whose Job exists is completed; a Job with this ledger's
   * marker and no record is adopted (flagged); other ledgers' Jobs and unmarked ones are
   * reported, never touched.
   */
  async reconcile(o: { context?: string; graceMs?: number; namespaces?: string[] } = {}): Promise<{ adopted: string[]; completed: string[]; failedIntents: string[]; elsewhere: string[]; unmanaged: string[] }> {
    const res = { adopted: [] as string[], completed: [] as string[], failedIntents: [] as string[], elsewhere: [] as string[], unmanaged: [] as string[] };
    const api = await this.api(o.context);
    const ctx = api.target.context;
    const self = readLedgerIdentity(this.ledger.stateDir);
    const grace = o.graceMs ?? 15 * 60_000;
    const open = () => this.ledger.read().resources.filter((r) => metaOf(r)?.context === ctx);
    // Intents without a uid: find their Job by its deterministic name, else close them after the grace.
    for (const r of open().filter((x) => !metaOf(x)!.uid)) {
      const got = await this.settleIntent(r, grace);
      if (got === 'completed') res.completed.push(r.id);
      if (got === 'failed') res.failedIntents.push(r.id);
    }
    const views = await this.list({ ...(o.context ? { context: o.context } : {}), ...(o.namespaces ? { namespaces: o.namespaces } : {}) });
    const body = this.ledger.read();
    for (const v of views) {
      if (v.origin === undefined) {
        res.unmanaged.push(`${v.namespace}/${v.name}`);
        continue;
      }
      if (v.origin === 'elsewhere' || !self) {
        res.elsewhere.push(`${v.namespace}/${v.name}`);
        continue;
      }
      const id = v.recordId!;
      if (body.resources.some((r) => r.id === id)) continue;
      const ended = body.ended.find((r) => r.id === id);
      if (ended) {
        // Ended here, yet its Job lives on (a stop that did not finish, a record closed by hand): re-opened, so it is seen and billed.
        if (v.state === 'terminating' || v.state === 'succeeded' || v.state === 'failed') continue;
        await this.ledger.update((b) => {
          const i = b.ended.findIndex((r) => r.id === id);
          if (i < 0) return;
          const [r] = b.ended.splice(i, 1);
          applyPatch(r!, { state: v.state === 'running' ? 'running' : 'starting', remote: { ...r!.remote!, status: v.state } }, `re-opened: job ${v.namespace}/${v.name} still runs`);
          b.resources.push(r!);
        }, `re-opening ${id}`);
        res.adopted.push(id);
        continue;
      }
      // This ledger's marker and no open record: adopted (under its marker's record id), flagged.
      const meta: KubeRecordMeta = {
        context: ctx,
        namespace: v.namespace,
        jobName: v.name,
        server: api.target.server,
        ledger: self,
        uid: v.uid,
        gpuResource: DEFAULT_GPU_RESOURCE,
        requests: v.pods[0] ? { gpus: v.pods[0].gpus, cpus: v.pods[0].cpus, memoryGiB: v.pods[0].memoryGiB } : { gpus: 0, cpus: 0, memoryGiB: 0 },
        prices: null,
        parallelism: 1,
        adopted: true,
      };
      try {
        meta.prices = readPrices(this.ledger.stateDir)[ctx] ?? null;
      } catch {
        /* unpriced */
      }
      const price = meta.prices ? podPricePerHour(meta.requests, meta.prices) : undefined;
      await this.ledger.addIntent({
        id,
        kind: 'kubernetes',
        plugin: v.plugin ?? `k8s-${v.name}`,
        executionMode: PluginExecutionMode.KUBERNETES,
        owner: { kind: 'detached', pid: 0, startTime: 0, host: '' },
        remote: { ...remoteOf(meta, v.state, price), instanceId: v.uid },
      });
      await this.ledger.patch(id, {}, `adopted job ${v.namespace}/${v.name}: it carries this ledger's marker but had no open record`);
      res.adopted.push(id);
    }
    await this.observe();
    return res;
  }
}

/** The `remote` of a Kubernetes record. */
export function remoteOf(m: KubeRecordMeta, status: string, price: number | undefined): RemoteResourceInfo {
  return remoteResourceInfo({
    provider: KUBERNETES_PROVIDER,
    region: m.context,
    jobId: `${m.namespace}/${m.jobName}`,
    ...(m.uid ? { instanceId: m.uid } : {}),
    status,
    resourceType: describeRequests(m.requests),
    gpuCount: m.requests.gpus * m.parallelism,
    ...(m.requests.gpus ? { gpuType: m.gpuResource } : {}),
    ...(price !== undefined ? { estimatedCostPerHour: price * m.parallelism } : {}),
    metadata: { ...m } as unknown as Record<string, unknown>,
  });
}

function latest(xs: Array<string | null>): string | undefined {
  const ok = xs.filter((x): x is string => !!x).sort();
  return ok[ok.length - 1];
}
function earliest(xs: Array<string | null>): string | undefined {
  return xs.filter((x): x is string => !!x).sort()[0];
}
function latestCondition(j: KJob): string | undefined {
  return latest((j.status?.conditions ?? []).map((c) => iso(c.lastTransitionTime)));
}

/**
 * Stamps a record's newest history event at the cluster's own time of the change (a Pod's
 * startTime, a Job's completionTime) when that is earlier than now and not before the previous
 * event: cost then follows what the cluster did, not when Tether looked.
 */
function backdate(r: LedgerResource, at: string | undefined): void {
  if (!at) return;
  const t = Date.parse(at);
  const h = r.history;
  const last = h[h.length - 1];
  if (!last || !Number.isFinite(t) || t >= Date.parse(last.at)) return;
  const prev = h[h.length - 2];
  const floor = prev ? Date.parse(prev.at) : Date.parse(r.createdAt);
  last.at = new Date(Math.max(t, floor)).toISOString();
}
