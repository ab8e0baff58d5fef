/**
 * Tether's door to a cluster: the kubeconfig as kubectl reads it (`KUBECONFIG` with its files
 * merged, else ~/.kube/config; contexts, namespaces, exec credential plugins — the library does
 * them) and the few API calls Tether makes. `@kubernetes/client-node` is ESM and heavy: it is
 * loaded with `await import()` on first use only, never by anything the extension loads at
 * activation.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { ExitCode, TetherError } from '../../core/errors';

type K8s = typeof import('@kubernetes/client-node');
let loaded: Promise<K8s> | undefined;
/** The client library, loaded once. */
export function loadClient(): Promise<K8s> {
  return (loaded ??= import('@kubernetes/client-node'));
}

/** Plain JSON shapes of what Tether reads (the library's classes, dates as Date or string). */
export interface KObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: Date | string;
    deletionTimestamp?: Date | string;
    finalizers?: string[];
    ownerReferences?: Array<{ uid: string; kind: string; name: string; controller?: boolean }>;
  };
}
export interface KJob extends KObject {
  spec?: { parallelism?: number; completions?: number; template?: { spec?: KPod['spec'] } };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    ready?: number;
    startTime?: Date | string;
    completionTime?: Date | string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: Date | string }>;
  };
}
export interface KPod extends KObject {
  spec?: { nodeName?: string; containers?: Array<{ name: string; image?: string; resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }> };
  status?: {
    phase?: string;
    startTime?: Date | string;
    containerStatuses?: Array<{ name: string; restartCount?: number; ready?: boolean; state?: { running?: unknown; waiting?: { reason?: string }; terminated?: { exitCode?: number; reason?: string; finishedAt?: Date | string } } }>;
  };
}

/** Where a cluster call goes: a kubeconfig context, its namespace and its server (no credentials). */
export interface KubeTarget {
  context: string;
  /** The context's namespace, else "default". */
  namespace: string;
  /** Server URL without user info, query or fragment. */
  server: string;
}

/** The kubeconfig files kubectl would read with this environment. */
export function kubeconfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.KUBECONFIG) return env.KUBECONFIG.split(path.delimiter).filter(Boolean);
  const home = env.HOME ?? env.USERPROFILE;
  return home ? [path.join(home, '.kube', 'config')] : [];
}

function safeServer(u: string | undefined): string {
  if (!u) return '';
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname === '/' ? '' : x.pathname}`;
  } catch {
    return '';
  }
}

/** Loads the kubeconfig as kubectl does (the first file to set a value wins; missing files are skipped). */
export async function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): Promise<InstanceType<K8s['KubeConfig']>> {
  const k8s = await loadClient();
  const files = kubeconfigFiles(env).filter((f) => fs.existsSync(f));
  if (!files.length) {
    throw new TetherError(`no kubeconfig found (${env.KUBECONFIG ? `KUBECONFIG=${env.KUBECONFIG}` : '~/.kube/config'} does not exist)`, {
      remedy: 'Point KUBECONFIG at your cluster\'s kubeconfig (as for kubectl), or create ~/.kube/config.',
      exitCode: ExitCode.USAGE,
    });
  }
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(files[0]!);
    for (const f of files.slice(1)) {
      const more = new k8s.KubeConfig();
      more.loadFromFile(f);
      mergeFirstWins(kc, more);
    }
  } catch (err) {
    throw new TetherError(`cannot read the kubeconfig (${files.join(path.delimiter)}): ${(err as Error).message}`, { remedy: 'Check it with `kubectl config view`.', exitCode: ExitCode.USAGE });
  }
  return kc;
}

/** kubectl's merge rule: a name (cluster, user, context) already defined by an earlier file is kept. */
function mergeFirstWins(kc: InstanceType<K8s['KubeConfig']>, more: InstanceType<K8s['KubeConfig']>): void {
  const have = (list: Array<{ name: string }>, n: string) => list.some((x) => x.name === n);
  const clusters = [...kc.clusters, ...more.clusters.filter((c) => !have(kc.clusters, c.name))];
  const users = [...kc.users, ...more.users.filter((u) => !have(kc.users, u.name))];
  const contexts = [...kc.contexts, ...more.contexts.filter((c) => !have(kc.contexts, c.name))];
  kc.loadFromOptions({ clusters, users, contexts, currentContext: kc.currentContext || more.currentContext });
}

/** The context a declaration names (or the current one), checked to exist: before any ledger intent. */
export async function resolveTarget(o: { context?: string; namespace?: string; env?: NodeJS.ProcessEnv }): Promise<{ target: KubeTarget; kc: InstanceType<K8s['KubeConfig']> }> {
  const kc = await loadKubeConfig(o.env);
  const name = o.context ?? kc.getCurrentContext();
  if (!name) throw new TetherError('the kubeconfig names no current context and the plugin names none', { remedy: 'Add "context" to the plugin\'s "kubernetes" settings, or `kubectl config use-context NAME`.', exitCode: ExitCode.USAGE });
  const ctx = kc.getContextObject(name);
  if (!ctx) {
    throw new TetherError(`the kubeconfig has no context "${name}" (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`, {
      remedy: 'Name a context that `kubectl config get-contexts` lists, or set KUBECONFIG to the file that has it.',
      exitCode: ExitCode.USAGE,
    });
  }
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) throw new TetherError(`context "${name}" names cluster "${ctx.cluster}", which the kubeconfig does not define`, { remedy: 'Fix the kubeconfig (kubectl config view).', exitCode: ExitCode.USAGE });
  kc.setCurrentContext(name);
  return { kc, target: { context: name, namespace: o.namespace ?? ctx.namespace ?? 'default', server: safeServer(cluster.server) } };
}

/** An API answer as a Tether error (the Status message, never a credential). */
export function apiError(err: unknown, what: string, target: KubeTarget): Error {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e?.code !== 'number') return new TetherError(`${what} on context "${target.context}" (${target.server}) failed: ${e?.message ?? String(err)}`, { remedy: 'Check that the cluster answers (kubectl cluster-info).', cause: err });
  let msg = '';
  try {
    const b = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    msg = (b as { message?: string })?.message ?? '';
  } catch {
    msg = typeof e.body === 'string' ? e.body.slice(0, 200) : '';
  }
  const remedy =
    e.code === 401
      ? `The cluster refused the credentials of context "${target.context}": renew them as for kubectl (its exec plugin or token).`
      : e.code === 403
        ? `Your user may not do this in namespace "${target.namespace}"; ask the cluster's admin (kubectl auth can-i).`
        : 'See the message; kubectl shows the same object.';
  const out = new TetherError(`${what} on context "${target.context}": ${e.code} ${msg || e.message || ''}`.trim(), { remedy, cause: err });
  (out as TetherError & { status?: number }).status = e.code;
  return out;
}

/** The HTTP status of an API error (from {@link apiError} or the library), or undefined. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { status?: number; code?: number };
  return typeof e?.status === 'number' ? e.status : typeof e?.code === 'number' ? e.code : undefined;
}

/** The calls Tether makes on one context. Lists page through `limit`/`continue`. */
export interface KubeApi {
  readonly target: KubeTarget;
  readJob(ns: string, name: string): Promise<KJob | undefined>;
  createJob(ns: string, body: Record<string, unknown>): Promise<KJob>;
  listJobs(ns: string | undefined, labelSelector?: string): Promise<KJob[]>;
  /** Deletes with `propagationPolicy: Background` and a UID precondition (never another object of the same name). */
  deleteJob(ns: string, name: string, uid: string): Promise<void>;
  listPods(ns: string | undefined, labelSelector?: string): Promise<KPod[]>;
  /** Deletes a Pod with a UID precondition. */
  deletePod(ns: string, name: string, uid: string): Promise<void>;
  readLog(ns: string, pod: string, o?: { container?: string; tailLines?: number }): Promise<string>;
  followLog(ns: string, pod: string, container: string, out: Writable): Promise<AbortController>;
  listNamespaces(): Promise<string[]>;
}

const PAGE = 250;

/** A {@link KubeApi} on a context of the kubeconfig (KUBECONFIG of `env`). */
export async function kubeApi(o: { context?: string; namespace?: string; env?: NodeJS.ProcessEnv }): Promise<KubeApi> {
  const k8s = await loadClient();
  const { kc, target } = await resolveTarget(o);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw apiError(err, what, target);
    }
  };
  async function pages<T>(what: string, call: (cont: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
    const out: T[] = [];
    let cont: string | undefined;
    do {
      const page = await wrap(what, () => call(cont));
      out.push(...page.items);
      cont = page.metadata?._continue || undefined;
    } while (cont);
    return out;
  }
  return {
    target,
    async readJob(ns, name) {
      try {
        return (await batch.readNamespacedJob({ name, namespace: ns })) as KJob;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw apiError(err, `reading job ${ns}/${name}`, target);
      }
    },
    createJob: (ns, body) => wrap(`creating a job in ${ns}`, async () => (await batch.createNamespacedJob({ namespace: ns, body: body as never, fieldValidation: 'Strict' })) as KJob),
    listJobs: (ns, labelSelector) =>
      pages(`listing jobs${ns ? ` in ${ns}` : ''}`, (cont) =>
        ns ? batch.listNamespacedJob({ namespace: ns, labelSelector, limit: PAGE, _continue: cont }) : batch.listJobForAllNamespaces({ labelSelector, limit: PAGE, _continue: cont }),
      ) as Promise<KJob[]>,
    async deleteJob(ns, name, uid) {
      await wrap(`deleting job ${ns}/${name}`, () => batch.deleteNamespacedJob({ name, namespace: ns, body: { propagationPolicy: 'Background', preconditions: { uid } } }));
    },
    listPods: (ns, labelSelector) =>
      pages(`listing pods${ns ? ` in ${ns}` : ''}`, (cont) =>
        ns ? core.listNamespacedPod({ namespace: ns, labelSelector, limit: PAGE, _continue: cont }) : core.listPodForAllNamespaces({ labelSelector, limit: PAGE, _continue: cont }),
      ) as Promise<KPod[]>,
    async deletePod(ns, name, uid) {
      await wrap(`deleting pod ${ns}/${name}`, () => core.deleteNamespacedPod({ name, namespace: ns, body: { preconditions: { uid } } }));
    },
    readLog: (ns, pod, lo = {}) => wrap(`reading the log of ${ns}/${pod}`, () => core.readNamespacedPodLog({ name: pod, namespace: ns, ...(lo.container ? { container: lo.container } : {}), ...(lo.tailLines ? { tailLines: lo.tailLines } : {}) })),
    followLog: (ns, pod, container, out) => wrap(`following the log of ${ns}/${pod}`, () => new k8s.Log(kc).log(ns, pod, container, out, { follow: true })),
    listNamespaces: async () => (await pages('listing namespaces', (cont) => core.listNamespace({ limit: PAGE, _continue: cont }))).map((n) => n.metadata?.name ?? '').filter(Boolean),
  };
}
