/**
 * A strict protocol fake of the Kubernetes API server (no kube-apiserver can be installed on these
 * machines). HTTPS on 127.0.0.1 with a throwaway CA (test/helpers/testCa.ts): kubectl sends no
 * bearer token over plain http. {@link FakeKubeApiServer.kubeconfig} names the server, the CA
 * (certificate-authority-data) and the token.
 *
 * What it does as the real server does (each rule below names where it comes from):
 * - discovery: /version, /api, /apis, /api/v1, /apis/batch, /apis/batch/v1 (plain JSON: clients
 *   that ask for aggregated discovery fall back on its content type, as against an old server);
 *   OpenAPI v3 as far as kubectl reads it (the `fieldValidation` parameter of each kind's PATCH,
 *   so it leaves validation to the server: `fieldValidation=Strict`); OpenAPI v2 is not served
 *   (404: kubectl then computes its apply patches without it).
 * - Bearer-token auth: 401 `kind: Status` Unauthorized; a read-only token gets 403 Forbidden on writes.
 * - namespaces, pods (v1), jobs (batch/v1): create (with `generateName`), get, list (label and
 *   field selectors, `limit`/`continue`), `?watch=1` streams, update (PUT, optimistic concurrency:
 *   409 Conflict), merge patch, delete with `propagationPolicy` (a Job deleted without one is
 *   orphaned: batch/v1's default GC policy is OrphanDependents), `preconditions`, grace periods,
 *   `deletionTimestamp` and finalizers.
 * - one increasing `resourceVersion` for every write; watch history can be compacted
 *   ({@link compact}): a watch from an older version gets an ERROR event carrying a 410 Status
 *   (reason Expired), a list `continue` token older than the compaction a 410 answer.
 * - request bodies validated against the OpenAPI property catalogue (test/fixtures/kubernetes):
 *   wrong types 400, unknown fields 400 with `fieldValidation=Strict` (else a `Warning` header),
 *   and the API server's own validation rules as 422 Invalid with `details.causes`.
 * - a small controller and kubelet: a Job makes Pods (ownerReferences, `controller-uid` and
 *   `job-name` labels, the job-tracking finalizer); Pods go Pending → (scheduled, `nodeName`,
 *   `startTime`) → Running → Succeeded/Failed; restarts under `OnFailure`; Job conditions
 *   Complete/Failed; logs at /api/v1/namespaces/{ns}/pods/{name}/log (with `follow`).
 *
 * The kubelet "runs" a container's command as a tiny script: `[sh -c] "echo TEXT; sleep N; exit N"`
 * (`;` or `&&` separated; `true`/`false` too). A command it does not understand runs until the Pod
 * is deleted. Each `echo` is a log line.
 */
import type * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readBody } from '../helpers/net';
import { testCert } from '../helpers/testCa';

type Obj = Record<string, any>;
type Res = 'pods' | 'jobs' | 'namespaces';

interface FieldType {
  ref?: string;
  array?: FieldType | string;
  map?: FieldType | string;
  type?: string;
  format?: string;
}
interface SchemaDef {
  properties: Record<string, FieldType | string>;
  required: string[];
}
/** test/fixtures/kubernetes/<file>, whether this module runs as CommonJS (mocha) or ESM (the e2e runner, where __dirname is not this folder). */
function fixture(file: string): string {
  const candidates = [path.join(__dirname, '../fixtures/kubernetes', file), path.join(process.cwd(), 'test/fixtures/kubernetes', file)];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`fixture ${file} not found in ${candidates.join(', ')}`);
  return found;
}
const CATALOGUE: Record<string, SchemaDef> = JSON.parse(fs.readFileSync(fixture('models-v1.34.json'), 'utf8')).schemas;

export interface LoggedRequest {
  method: string;
  path: string;
  search: string;
  authorization?: string;
  body?: unknown;
  contentType?: string;
  accept?: string;
}

export interface KubeFakeOptions {
  /** Token with every right. Default random. */
  token?: string;
  /** Token that may read but not write (403 on writes). */
  readOnlyToken?: string;
  /** Namespaces that exist besides default, kube-system, kube-public. */
  namespaces?: string[];
  /** Pending (unscheduled) → scheduled on a node, ms. Default 50. */
  scheduleMs?: number;
  /** Scheduled → Running (image pulled, container started), ms. Default 100. */
  startMs?: number;
  /** A deleted Pod's container is killed after this long (capped by its grace period), ms. Default 100. */
  killMs?: number;
  /** The garbage collector acts on dependents this long after their owner is deleted, ms. Default 30. */
  gcDelayMs?: number;
  /** Node names the scheduler picks from (round robin). */
  nodes?: string[];
}

export type KubeFault = { method?: string; path?: RegExp; kind: 'error-500' | 'create-then-fail' | 'hang'; times?: number };

interface HistoryEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  res: Res;
  obj: Obj;
  prev?: Obj;
}

interface Watcher {
  res: Res;
  ns?: string;
  match: (o: Obj) => boolean;
  out: http.ServerResponse;
}

interface ContainerRun {
  lines: Array<{ at: string; text: string }>;
  /** Waiting for follow readers. */
  followers: Set<() => void>;
  state: 'waiting' | 'running' | 'terminated';
  exitCode?: number;
  restarts: number;
  timer?: NodeJS.Timeout;
  startedAt?: string;
  finishedAt?: string;
}

const KINDS: Record<Res, { kind: string; apiVersion: string; group: string; namespaced: boolean; list: string }> = {
  pods: { kind: 'Pod', apiVersion: 'v1', group: '', namespaced: true, list: 'PodList' },
  jobs: { kind: 'Job', apiVersion: 'batch/v1', group: 'batch', namespaced: true, list: 'JobList' },
  namespaces: { kind: 'Namespace', apiVersion: 'v1', group: '', namespaced: false, list: 'NamespaceList' },
};

/** Supported field selectors per resource (the API server's field label conversion functions). */
const FIELDS: Record<Res, Record<string, (o: Obj) => string>> = {
  pods: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
    'spec.nodeName': (o) => o.spec?.nodeName ?? '',
    'spec.restartPolicy': (o) => o.spec?.restartPolicy ?? '',
    'spec.schedulerName': (o) => o.spec?.schedulerName ?? '',
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName ?? '',
    'status.phase': (o) => o.status?.phase ?? '',
    'status.podIP': (o) => o.status?.podIP ?? '',
    'status.nominatedNodeName': (o) => o.status?.nominatedNodeName ?? '',
  },
  jobs: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
    'status.successful': (o) => String(o.status?.succeeded ?? 0),
  },
  namespaces: {
    'metadata.name': (o) => o.metadata.name,
    'status.phase': (o) => o.status?.phase ?? '',
  },
};

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** resource.Quantity's grammar (k8s.io/apimachinery/pkg/api/resource). */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const clone = <T>(x: T): T => structuredClone(x);
const rand5 = () => {
  // The API server's generateName suffix alphabet (no vowels, no 0/1/3: k8s.io/apimachinery util/rand).
  const a = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from({ length: 5 }, () => a[Math.floor(Math.random() * a.length)]).join('');
};

/** Parses a resource.Quantity to a number (base units). */
export function parseQuantity(q: string): number {
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  const s = m[2] ?? '';
  const bin: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  const dec: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  if (s in bin) return n * bin[s]!;
  if (s in dec) return n * dec[s]!;
  return n * 10 ** Number(s.slice(1));
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Obj,
  ) {
    super(message);
  }
}

function statusBody(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

// ---------------------------------------------------------------------------------------------
// Label selectors (k8s.io/apimachinery/pkg/labels: equality- and set-based requirements).

type Req = { key: string; op: 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin'; values: string[] };

export function parseLabelSelector(s: string): Req[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() || parts.length) parts.push(cur);
  const bad = (p: string) => new ApiError(400, 'BadRequest', `unable to parse requirement: found '${p}', expected: identifier`);
  const key = (k: string, p: string) => {
    const [pre, name] = k.includes('/') ? [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)] : ['', k];
    if ((pre && (!DNS1123_SUBDOMAIN.test(pre) || pre.length > 253)) || !QUALIFIED_NAME.test(name) || name.length > 63) throw bad(p);
    return k;
  };
  return parts.map((raw) => {
    const p = raw.trim();
    if (!p) throw bad(raw);
    let m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(p);
    if (m) return { key: key(m[1]!, p), op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p);
    if (m) return { key: key(m[1]!, p), op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] };
    if (p.startsWith('!')) return { key: key(p.slice(1).trim(), p), op: '!exists', values: [] };
    return { key: key(p, p), op: 'exists', values: [] };
  });
}

function labelsMatch(reqs: Req[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
    }
  });
}

function parseFieldSelector(res: Res, s: string): (o: Obj) => boolean {
  const terms = s
    .split(',')
    .filter((t) => t.trim())
    .map((t) => {
      const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(t.trim());
      if (!m) throw new ApiError(400, 'BadRequest', `invalid selector: '${s}'; can't understand '${t}'`);
      const get = FIELDS[res][m[1]!.trim()];
      if (!get) throw new ApiError(400, 'BadRequest', `field label not supported: ${m[1]!.trim()}`);
      return { get, neg: m[2] === '!=', value: m[3]! };
    });
  return (o) => terms.every((t) => (t.get(o) === t.value) !== t.neg);
}

// ---------------------------------------------------------------------------------------------

export class FakeKubeApiServer {
  readonly token: string;
  readonly readOnlyToken: string;
  readonly requests: LoggedRequest[] = [];
  /** Warnings sent (Warning headers), for tests. */
  readonly warnings: string[] = [];
  private server: https.Server | undefined;
  private baseUrl = '';
  private readonly store = new Map<string, Obj>();
  private readonly history: HistoryEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly runs = new Map<string, Map<string, ContainerRun>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly faults: KubeFault[] = [];
  /** Called with each request before it is carried out (tests check what the ledger holds at that moment). */
  onRequest: ((r: LoggedRequest) => void) | undefined;
  private rv = 1000;
  /** Events with a resourceVersion at or below this were compacted away. */
  private compactedRv = 1000;
  private nodeTurn = 0;
  private stopped = false;
  readonly o: Required<Omit<KubeFakeOptions, 'token' | 'readOnlyToken' | 'namespaces'>>;

  constructor(opts: KubeFakeOptions = {}) {
    this.token = opts.token ?? `fake-token-${randomUUID()}`;
    this.readOnlyToken = opts.readOnlyToken ?? `fake-viewer-${randomUUID()}`;
    this.o = {
      scheduleMs: opts.scheduleMs ?? 50,
      startMs: opts.startMs ?? 100,
      killMs: opts.killMs ?? 100,
      gcDelayMs: opts.gcDelayMs ?? 30,
      nodes: opts.nodes ?? ['gpu-node-1', 'gpu-node-2'],
    };
    for (const ns of ['default', 'kube-system', 'kube-public', ...(opts.namespaces ?? [])]) {
      this.write('namespaces', this.newMeta({ metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } }, 'namespaces', undefined), 'ADDED');
    }
  }

  get url(): string {
    return this.baseUrl;
  }

  /** PEM of the CA that signed the server's certificate. */
  get caPem(): string {
    return testCert().ca;
  }

  async start(): Promise<string> {
    const { cert, key } = testCert();
    this.server = https.createServer({ cert, key }, (req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.baseUrl = `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const podRuns of this.runs.values()) for (const r of podRuns.values()) if (r.timer) clearTimeout(r.timer);
    for (const w of this.watchers) w.out.end();
    this.watchers.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }

  /** A kubeconfig (YAML is JSON) naming this server, `context` and `namespace`. */
  kubeconfig(o: { context?: string; namespace?: string; token?: string; cluster?: string; user?: string } = {}): string {
    const context = o.context ?? 'fake';
    const cluster = o.cluster ?? `${context}-cluster`;
    const user = o.user ?? `${context}-user`;
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster, cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') } }],
      users: [{ name: user, user: { token: o.token ?? this.token } }],
      contexts: [{ name: context, context: { cluster, user, ...(o.namespace ? { namespace: o.namespace } : {}) } }],
      'current-context': context,
    });
  }

  /** Drops the watch history: watches and continue tokens from before now get 410 Expired. */
  compact(): void {
    this.history.length = 0;
    this.compactedRv = this.rv;
  }

  injectFault(f: KubeFault): void {
    this.faults.push({ times: 1, ...f });
  }

  // --- direct access for tests (what `kubectl` would show) ---------------------------------

  get(res: Res, ns: string | undefined, name: string): Obj | undefined {
    const o = this.store.get(this.key(res, ns, name));
    return o ? this.withKind(res, clone(o)) : undefined;
  }

  list(res: Res, ns?: string): Obj[] {
    return [...this.store.entries()]
      .filter(([k]) => k.startsWith(`${res}/${ns === undefined ? '' : `${ns}/`}`))
      .map(([, o]) => this.withKind(res, clone(o)));
  }

  /** The log lines of a pod's container so far. */
  logOf(ns: string, pod: string, container?: string): string[] {
    const runs = this.runs.get(this.key('pods', ns, pod));
    const r = container ? runs?.get(container) : runs?.values().next().value;
    return r ? r.lines.map((l) => l.text) : [];
  }

  /**
   * Creates an object as another client would (bypassing auth; validated like any request).
   * Returns the stored object.
   */
  seed(res: Res, ns: string | undefined, body: Obj): Obj {
    return this.create(res, ns, clone(body), new URLSearchParams()).obj;
  }

  // --- HTTP ---------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let body: unknown;
    const raw = await readBody(req);
    const contentType = req.headers['content-type'];
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = raw.toString('utf8');
      }
    }
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      search: url.search,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(contentType ? { contentType } : {}),
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
    });
    this.onRequest?.(this.requests[this.requests.length - 1]!);
    const fault = this.faults.find((f) => (!f.method || f.method === req.method) && (!f.path || f.path.test(url.pathname)) && (f.times ?? 1) > 0);
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.kind === 'hang') return; // never answered
      if (fault.kind === 'error-500') return this.send(res, 500, statusBody(500, 'InternalError', 'Internal error occurred: injected fault'));
      if (fault.kind === 'create-then-fail') (res as any).__createThenFail = true;
    }
    try {
      const user = this.authenticate(req);
      await this.route(req.method ?? 'GET', url, body, contentType, req, res, user);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof ApiError) return this.send(res, err.code, statusBody(err.code, err.reason, err.message, err.details));
      return this.send(res, 500, statusBody(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`));
    }
  }

  private authenticate(req: http.IncomingMessage): { name: string; write: boolean } {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (m && m[1] === this.token) return { name: 'tester', write: true };
    if (m && m[1] === this.readOnlyToken) return { name: 'viewer', write: false };
    throw new ApiError(401, 'Unauthorized', 'Unauthorized');
  }

  private send(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    if ((res as any).__createThenFail && code < 300) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(statusBody(500, 'InternalError', 'Internal error occurred: injected fault after the write')));
      return;
    }
    res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private async route(method: string, url: URL, body: unknown, contentType: string | undefined, req: http.IncomingMessage, res: http.ServerResponse, user: { name: string; write: boolean }): Promise<void> {
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;
    if (method === 'GET') {
      const d = this.discovery(p);
      if (d) return this.send(res, 200, d);
    }
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/.exec(p);
    if (m && method === 'GET') return this.podLog(m[1]!, m[2]!, q, res);
    // /api/v1/{res} | /api/v1/namespaces/{ns}/{res}[/{name}] | /apis/batch/v1/...
    m = /^\/(?:api\/v1|apis\/batch\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?$/.exec(p);
    let ns: string | undefined;
    let resName: string | undefined;
    let name: string | undefined;
    if (m) [ns, resName, name] = [m[1], m[2], m[3]];
    // /api/v1/namespaces and /api/v1/namespaces/{name}
    const nsm = /^\/api\/v1\/namespaces(?:\/([^/]+))?$/.exec(p);
    if (nsm) [ns, resName, name] = [undefined, 'namespaces', nsm[1]];
    const group = p.startsWith('/apis/batch/v1') ? 'batch' : '';
    if (!resName || !(resName in KINDS) || KINDS[resName as Res].group !== group) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const r = resName as Res;
    if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) && !user.write) {
      const what = `${r}${KINDS[r].group ? `.${KINDS[r].group}` : ''}`;
      const verb = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method];
      throw new ApiError(403, 'Forbidden', `${what}${name ? ` "${name}"` : ''} is forbidden: User "${user.name}" cannot ${verb} resource "${r}" in API group "${KINDS[r].group}"${ns ? ` in the namespace "${ns}"` : ''}`, { ...(name ? { name } : {}), ...(KINDS[r].group ? { group: KINDS[r].group } : {}), kind: r });
    }
    if (ns !== undefined && r !== 'namespaces' && !this.store.has(this.key('namespaces', undefined, ns)) && method !== 'GET') {
      throw new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    }
    const table = (req.headers.accept ?? '').includes('as=Table');
    if (!name) {
      if (method === 'GET' && (q.get('watch') === '1' || q.get('watch') === 'true')) return this.watch(r, ns, q, res);
      if (method === 'GET') {
        const list = this.listBody(r, ns, q);
        return this.send(res, 200, table ? this.table(r, list.items, list.metadata) : list);
      }
      if (method === 'POST') {
        if (!body || typeof body !== 'object') throw new ApiError(400, 'BadRequest', 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml');
        const { obj, warnings } = this.create(r, ns, body as Obj, q);
        return this.send(res, 201, this.withKind(r, obj), warnings.length ? { Warning: warnings.map((w) => `299 - "${w.replace(/"/g, '\\"')}"`).join(', ') } : {});
      }
      throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }
    const key = this.key(r, ns, name);
    const cur = this.store.get(key);
    const notFound = () => new ApiError(404, 'NotFound', `${r}${KINDS[r].group ? `.${KINDS[r].group}` : ''} "${name}" not found`, { name, ...(KINDS[r].group ? { group: KINDS[r].group } : {}), kind: r });
    if (method === 'GET') {
      if (!cur) throw notFound();
      return this.send(res, 200, table ? this.table(r, [clone(cur)], { resourceVersion: cur.metadata.resourceVersion }) : this.withKind(r, clone(cur)));
    }
    if (method === 'DELETE') {
      if (!cur) throw notFound();
      const opts = (body && typeof body === 'object' ? body : {}) as Obj;
      const out = this.delete(r, cur, {
        propagationPolicy: opts.propagationPolicy ?? q.get('propagationPolicy') ?? undefined,
        gracePeriodSeconds: opts.gracePeriodSeconds ?? (q.has('gracePeriodSeconds') ? Number(q.get('gracePeriodSeconds')) : undefined),
        preconditions: opts.preconditions,
        orphanDependents: opts.orphanDependents,
      });
      return this.send(res, 200, out);
    }
    if (method === 'PUT' || method === 'PATCH') {
      if (!cur) throw notFound();
      let next: Obj;
      if (method === 'PUT') {
        next = body as Obj;
        if (next?.metadata?.resourceVersion && next.metadata.resourceVersion !== cur.metadata.resourceVersion) {
          throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${r}${KINDS[r].group ? `.${KINDS[r].group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: r });
        }
      } else {
        if (!/merge-patch\+json|strategic-merge-patch\+json/.test(contentType ?? '')) {
          throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json`);
        }
        next = mergePatch(clone(cur), body);
        if ((body as Obj)?.metadata?.resourceVersion && (body as Obj).metadata.resourceVersion !== cur.metadata.resourceVersion) {
          throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${r} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: r });
        }
      }
      return this.send(res, 200, this.withKind(r, this.update(r, cur, next, q)));
    }
    throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }


  private discovery(p: string): Obj | undefined {
    const res = (name: string, kind: string, namespaced: boolean, verbs: string[], extra: Obj = {}) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs, ...extra });
    const rw = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
    switch (p) {
      case '/version':
        return { major: '1', minor: '34', gitVersion: 'v1.34.0-tether-fake', gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2026-12-01T00:00:00Z', goVersion: 'go1.24.0', compiler: 'gc', platform: 'linux/amd64' };
      case '/api':
        return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] };
      case '/apis':
        return { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'batch', versions: [{ groupVersion: 'batch/v1', version: 'v1' }], preferredVersion: { groupVersion: 'batch/v1', version: 'v1' } }] };
      case '/apis/batch':
        return { kind: 'APIGroup', apiVersion: 'v1', name: 'batch', versions: [{ groupVersion: 'batch/v1', version: 'v1' }], preferredVersion: { groupVersion: 'batch/v1', version: 'v1' } };
      case '/api/v1':
        return {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            res('namespaces', 'Namespace', false, ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], { shortNames: ['ns'] }),
            res('pods', 'Pod', true, rw, { shortNames: ['po'], categories: ['all'] }),
            { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
          ],
        };
      case '/openapi/v3':
        // OpenAPI v3 discovery: kubectl reads it to learn that the server validates fields itself.
        return { paths: { 'api/v1': { serverRelativeURL: '/openapi/v3/api/v1?hash=TETHERFAKE1' }, 'apis/batch/v1': { serverRelativeURL: '/openapi/v3/apis/batch/v1?hash=TETHERFAKE1' } } };
      case '/openapi/v3/api/v1':
        return openapiV3([['pods', 'Pod', ''], ['namespaces', 'Namespace', '']], '/api/v1');
      case '/openapi/v3/apis/batch/v1':
        return openapiV3([['jobs', 'Job', 'batch']], '/apis/batch/v1');
      case '/apis/batch/v1':
        return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'batch/v1', resources: [res('jobs', 'Job', true, rw, { categories: ['all'] })] };
    }
    return undefined;
  }

  // --- storage ------------------------------------------------------------------------------

  private key(res: Res, ns: string | undefined, name: string): string {
    return KINDS[res].namespaced ? `${res}/${ns}/${name}` : `${res}/${name}`;
  }

  private withKind(res: Res, o: Obj): Obj {
    return { kind: KINDS[res].kind, apiVersion: KINDS[res].apiVersion, ...o };
  }

  private write(res: Res, obj: Obj, type: 'ADDED' | 'MODIFIED' | 'DELETED', prev?: Obj): Obj {
    this.rv += 1;
    obj.metadata.resourceVersion = String(this.rv);
    const key = this.key(res, obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') this.store.delete(key);
    else this.store.set(key, obj);
    const ev: HistoryEvent = { rv: this.rv, type, res, obj: clone(obj), ...(prev ? { prev: clone(prev) } : {}) };
    this.history.push(ev);
    for (const w of this.watchers) this.deliver(w, ev);
    this.schedule(() => this.controllers(), 0);
    return obj;
  }

  private newMeta(body: Obj, res: Res, ns: string | undefined): Obj {
    const meta = body.metadata ?? {};
    body.metadata = {
      ...meta,
      ...(KINDS[res].namespaced ? { namespace: ns } : {}),
      uid: randomUUID(),
      creationTimestamp: nowIso(),
      ...(res === 'jobs' ? { generation: 1 } : {}),
    };
    delete body.metadata.resourceVersion;
    delete body.metadata.deletionTimestamp;
    delete body.metadata.deletionGracePeriodSeconds;
    delete body.kind;
    delete body.apiVersion;
    return body;
  }

  private create(res: Res, ns: string | undefined, body: Obj, q: URLSearchParams): { obj: Obj; warnings: string[] } {
    const k = KINDS[res];
    if (body.kind !== undefined && body.kind !== k.kind) throw new ApiError(400, 'BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${k.apiVersion})`);
    if (body.apiVersion !== undefined && body.apiVersion !== k.apiVersion) throw new ApiError(400, 'BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${k.apiVersion})`);
    if (k.namespaced && ns === undefined) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (k.namespaced && body.metadata?.namespace !== undefined && body.metadata.namespace !== ns) {
      throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    const warnings = this.decode(res, body, q);
    const meta = body.metadata ?? {};
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${rand5()}`;
    body.metadata = meta;
    this.validate(res, body, true);
    if (this.store.has(this.key(res, ns, meta.name))) {
      throw new ApiError(409, 'AlreadyExists', `${res}${k.group ? `.${k.group}` : ''} "${meta.name}" already exists`, { name: meta.name, ...(k.group ? { group: k.group } : {}), kind: res });
    }
    const obj = this.newMeta(body, res, ns);
    if (res === 'jobs') this.defaultJob(obj);
    if (res === 'pods') this.defaultPod(obj);
    return { obj: clone(this.write(res, obj, 'ADDED')), warnings };
  }

  private update(res: Res, cur: Obj, next: Obj, q: URLSearchParams): Obj {
    this.decode(res, next, q);
    // Immutable metadata is kept; spec changes of pods/jobs are out of scope (refused like the API's immutable fields).
    const meta = { ...cur.metadata, labels: next.metadata?.labels ?? cur.metadata.labels, annotations: next.metadata?.annotations ?? cur.metadata.annotations, finalizers: next.metadata?.finalizers ?? [], ownerReferences: next.metadata?.ownerReferences ?? cur.metadata.ownerReferences };
    if (!meta.finalizers?.length) delete meta.finalizers;
    if (!meta.ownerReferences?.length) delete meta.ownerReferences;
    if (cur.metadata.deletionTimestamp) {
      const added = (meta.finalizers ?? []).filter((f: string) => !(cur.metadata.finalizers ?? []).includes(f));
      if (added.length) throw new ApiError(422, 'Invalid', `${KINDS[res].kind} "${cur.metadata.name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted`);
    }
    const obj = { ...cur, metadata: meta };
    this.validate(res, obj, false);
    if (cur.metadata.deletionTimestamp && !meta.finalizers?.length) {
      return clone(this.write(res, obj, 'DELETED', cur));
    }
    return clone(this.write(res, obj, 'MODIFIED', cur));
  }

  /**
   * Decoding: wrong JSON types are 400 (the API server's decoder), unknown fields 400 under
   * fieldValidation=Strict and a warning under Warn (the default since 1.27). Unknown fields are dropped.
   */
  private decode(res: Res, body: Obj, q: URLSearchParams): string[] {
    const mode = q.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(mode)) throw new ApiError(400, 'BadRequest', `fieldValidation parameter unsupported: ${mode}`);
    const unknown: string[] = [];
    const type = { pods: 'V1Pod', jobs: 'V1Job', namespaces: 'V1Namespace' }[res];
    walkSchema(type, body, '', unknown);
    if (unknown.length && mode === 'Strict') {
      throw new ApiError(400, 'BadRequest', `strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`);
    }
    const warnings = mode === 'Warn' ? unknown.map((u) => `unknown field "${u}"`) : [];
    this.warnings.push(...warnings);
    return warnings;
  }

  /** The API server's validation (pkg/apis/core/validation, pkg/apis/batch/validation): 422 Invalid with causes. */
  private validate(res: Res, o: Obj, creating: boolean): void {
    const causes: Array<{ reason: string; message: string; field: string }> = [];
    const add = (field: string, reason: string, message: string) => causes.push({ reason, message: `${message}`, field });
    const meta = o.metadata ?? {};
    const k = KINDS[res];
    if (creating) {
      if (!meta.name) add('metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required');
      else if (res === 'namespaces' ? !DNS1123_LABEL.test(meta.name) || meta.name.length > 63 : !DNS1123_SUBDOMAIN.test(meta.name) || meta.name.length > 253) {
        add('metadata.name', 'FieldValueInvalid', `Invalid value: "${meta.name}": a lowercase RFC 1123 ${res === 'namespaces' ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-'${res === 'namespaces' ? '' : " or '.'"}, and must start and end with an alphanumeric character`);
      } else if (res === 'jobs' && meta.name.length > 63) {
        // The Job's name becomes the value of its Pods' job-name label.
        add('metadata.name', 'FieldValueInvalid', `Invalid value: "${meta.name}": must be no more than 63 characters`);
      }
    }
    const labelProblems = (labels: Record<string, string> | undefined, at: string) => {
      for (const [key, v] of Object.entries(labels ?? {})) {
        const slash = key.indexOf('/');
        const [pre, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : ['', key];
        if ((slash >= 0 && (!pre || !DNS1123_SUBDOMAIN.test(pre) || pre.length > 253)) || !QUALIFIED_NAME.test(name) || name.length > 63) {
          add(`${at}`, 'FieldValueInvalid', `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
        }
        if (typeof v !== 'string' || (v !== '' && (!QUALIFIED_NAME.test(v) || v.length > 63))) {
          add(`${at}`, 'FieldValueInvalid', `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)`);
        }
      }
    };
    labelProblems(meta.labels, 'metadata.labels');
    const podSpec = (spec: Obj | undefined, at: string, forJob: boolean) => {
      if (!spec) return add(at, 'FieldValueRequired', 'Required value');
      const cs: Obj[] = spec.containers ?? [];
      if (!cs.length) add(`${at}.containers`, 'FieldValueRequired', 'Required value');
      const names = new Set<string>();
      cs.forEach((c, i) => {
        const cat = `${at}.containers[${i}]`;
        if (!c.name) add(`${cat}.name`, 'FieldValueRequired', 'Required value');
        else if (!DNS1123_LABEL.test(c.name) || c.name.length > 63) add(`${cat}.name`, 'FieldValueInvalid', `Invalid value: "${c.name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);
        else if (names.has(c.name)) add(`${cat}.name`, 'FieldValueDuplicate', `Duplicate value: "${c.name}"`);
        names.add(c.name);
        if (!c.image || !String(c.image).trim()) add(`${cat}.image`, 'FieldValueRequired', 'Required value');
        for (const kind of ['requests', 'limits'] as const) {
          for (const [rn, q] of Object.entries((c.resources?.[kind] ?? {}) as Record<string, unknown>)) {
            if (typeof q !== 'string' && typeof q !== 'number') add(`${cat}.resources.${kind}[${rn}]`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(q)}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
            else if (!QUANTITY.test(String(q))) add(`${cat}.resources.${kind}[${rn}]`, 'FieldValueInvalid', `Invalid value: "${q}": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
            else if (parseQuantity(String(q)) < 0) add(`${cat}.resources.${kind}[${rn}]`, 'FieldValueInvalid', `Invalid value: "${q}": must be greater than or equal to 0`);
          }
        }
        const req = (c.resources?.requests ?? {}) as Record<string, string>;
        const lim = (c.resources?.limits ?? {}) as Record<string, string>;
        for (const [rn, q] of Object.entries(req)) {
          const extended = rn.includes('/') && !rn.startsWith('kubernetes.io/');
          if (extended) {
            // Extended resources (nvidia.com/gpu) cannot be overcommitted: limit = request, whole numbers.
            if (lim[rn] === undefined) add(`${cat}.resources.limits`, 'FieldValueRequired', `Required value: Limit must be set for non overcommitable resources`);
            else if (parseQuantity(String(lim[rn])) !== parseQuantity(String(q))) add(`${cat}.resources.requests[${rn}]`, 'FieldValueInvalid', `Invalid value: "${q}": must be equal to ${rn} limit of ${lim[rn]}`);
            if (!Number.isInteger(parseQuantity(String(q)))) add(`${cat}.resources.requests[${rn}]`, 'FieldValueInvalid', `Invalid value: "${q}": must be an integer`);
          } else if (lim[rn] !== undefined && parseQuantity(String(q)) > parseQuantity(String(lim[rn]))) {
            add(`${cat}.resources.requests`, 'FieldValueInvalid', `Invalid value: "${q}": must be less than or equal to ${rn} limit of ${lim[rn]}`);
          }
        }
      });
      const rp = spec.restartPolicy;
      if (forJob) {
        if (rp === undefined) add(`${at}.restartPolicy`, 'FieldValueRequired', 'Required value: valid values: "OnFailure", "Never"');
        else if (rp !== 'OnFailure' && rp !== 'Never') add(`${at}.restartPolicy`, 'FieldValueNotSupported', `Unsupported value: "${rp}": supported values: "OnFailure", "Never"`);
      } else if (rp !== undefined && !['Always', 'OnFailure', 'Never'].includes(rp)) {
        add(`${at}.restartPolicy`, 'FieldValueNotSupported', `Unsupported value: "${rp}": supported values: "Always", "OnFailure", "Never"`);
      }
    };
    if (res === 'pods' && creating) podSpec(o.spec, 'spec', false);
    if (res === 'jobs' && creating) {
      const s = o.spec ?? {};
      if (!o.spec?.template) add('spec.template', 'FieldValueRequired', 'Required value');
      for (const f of ['parallelism', 'completions', 'backoffLimit', 'activeDeadlineSeconds', 'ttlSecondsAfterFinished']) {
        if (s[f] !== undefined && s[f] !== null && s[f] < 0) add(`spec.${f}`, 'FieldValueInvalid', `Invalid value: ${s[f]}: must be greater than or equal to 0`);
      }
      if (s.selector !== undefined && !s.manualSelector) add('spec.selector', 'FieldValueInvalid', '`selector` will be auto-generated');
      if (s.completionMode !== undefined && !['NonIndexed', 'Indexed'].includes(s.completionMode)) add('spec.completionMode', 'FieldValueNotSupported', `Unsupported value: "${s.completionMode}": supported values: "NonIndexed", "Indexed"`);
      labelProblems(s.template?.metadata?.labels, 'spec.template.metadata.labels');
      if (s.template) podSpec(s.template.spec, 'spec.template.spec', true);
    }
    if (causes.length) {
      const name = meta.name ?? meta.generateName ?? '';
      throw new ApiError(422, 'Invalid', `${k.kind}${k.group ? `.${k.group}` : ''} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
        name,
        ...(k.group ? { group: k.group } : {}),
        kind: k.kind,
        causes,
      });
    }
  }

  private defaultContainers(spec: Obj): void {
    spec.restartPolicy ??= 'Always';
    spec.dnsPolicy ??= 'ClusterFirst';
    spec.schedulerName ??= 'default-scheduler';
    spec.terminationGracePeriodSeconds ??= 30;
    spec.securityContext ??= {};
    for (const c of spec.containers ?? []) {
      c.imagePullPolicy ??= /:latest$|^[^:]+$/.test(c.image) ? 'Always' : 'IfNotPresent';
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.resources ??= {};
      // A limit without a request: the request defaults to the limit.
      if (c.resources.limits) c.resources.requests = { ...c.resources.limits, ...(c.resources.requests ?? {}) };
    }
  }

  private defaultJob(job: Obj): void {
    const s = job.spec;
    const uid = job.metadata.uid;
    s.parallelism ??= 1;
    s.completions ??= 1;
    s.backoffLimit ??= 6;
    s.completionMode ??= 'NonIndexed';
    s.suspend ??= false;
    s.podReplacementPolicy ??= 'TerminatingOrFailed';
    s.manualSelector = s.manualSelector || undefined;
    if (s.manualSelector === undefined) delete s.manualSelector;
    s.selector ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    s.template.metadata ??= {};
    s.template.metadata.labels = {
      ...(s.template.metadata.labels ?? {}),
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': job.metadata.name,
      'controller-uid': uid,
      'job-name': job.metadata.name,
    };
    job.metadata.labels ??= { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': job.metadata.name, 'controller-uid': uid, 'job-name': job.metadata.name };
    this.defaultContainers(s.template.spec);
    job.status = {};
  }

  private defaultPod(pod: Obj): void {
    this.defaultContainers(pod.spec);
    pod.spec.serviceAccountName ??= 'default';
    pod.spec.enableServiceLinks ??= true;
    pod.spec.priority ??= 0;
    pod.status = { phase: 'Pending', qosClass: qosOf(pod.spec) };
  }

  // --- delete and garbage collection --------------------------------------------------------

  private delete(res: Res, cur: Obj, o: { propagationPolicy?: string; gracePeriodSeconds?: number; preconditions?: Obj; orphanDependents?: boolean }): Obj {
    const k = KINDS[res];
    const name = cur.metadata.name;
    if (o.propagationPolicy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(o.propagationPolicy)) {
      throw new ApiError(422, 'Invalid', `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${o.propagationPolicy}": supported values: "Foreground", "Background", "Orphan", "nil"`);
    }
    if (o.preconditions?.uid && o.preconditions.uid !== cur.metadata.uid) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${res}${k.group ? `.${k.group}` : ''} "${name}": Precondition failed: UID in precondition: ${o.preconditions.uid}, UID in object meta: ${cur.metadata.uid}`, { name, kind: res });
    }
    if (o.preconditions?.resourceVersion && o.preconditions.resourceVersion !== cur.metadata.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${res} "${name}": Precondition failed: ResourceVersion in precondition: ${o.preconditions.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`, { name, kind: res });
    }
    // batch/v1 Jobs default to orphaning their Pods (the REST strategy's DefaultGarbageCollectionPolicy).
    let policy = o.propagationPolicy ?? (o.orphanDependents === true ? 'Orphan' : o.orphanDependents === false ? 'Background' : res === 'jobs' ? 'Orphan' : 'Background');
    if (res === 'pods') policy = policy === 'Foreground' ? 'Foreground' : 'Background';
    const next = clone(cur);
    const fins: string[] = [...(next.metadata.finalizers ?? [])];
    if (policy === 'Orphan' && res === 'jobs' && !fins.includes('orphan')) fins.push('orphan');
    if (policy === 'Foreground' && res === 'jobs' && !fins.includes('foregroundDeletion')) fins.push('foregroundDeletion');
    let grace = 0;
    if (res === 'pods') {
      grace = o.gracePeriodSeconds ?? next.spec.terminationGracePeriodSeconds ?? 30;
      // An unscheduled pod or a finished one goes at once (no kubelet to stop it).
      if (!next.spec.nodeName || ['Succeeded', 'Failed'].includes(next.status?.phase)) grace = 0;
    }
    if (!fins.length && grace === 0) {
      if (cur.metadata.deletionTimestamp && res === 'pods' && grace === 0) {
        /* a forced delete of a terminating pod */
      }
      this.write(res, next, 'DELETED', cur);
      this.afterDelete(res, next, policy);
      return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(k.group ? { group: k.group } : {}), kind: res, uid: cur.metadata.uid } };
    }
    if (!next.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      next.metadata.deletionGracePeriodSeconds = grace;
    }
    if (fins.length) next.metadata.finalizers = fins;
    if (res === 'jobs') next.metadata.generation = (next.metadata.generation ?? 1) + 1;
    const stored = this.write(res, next, 'MODIFIED', cur);
    if (res === 'pods') this.killPod(stored, grace);
    this.afterDelete(res, stored, policy);
    return this.withKind(res, clone(stored));
  }

  /** The garbage collector: what happens to the dependents of a deleted owner. */
  private afterDelete(res: Res, owner: Obj, policy: string): void {
    if (res !== 'jobs') return;
    const uid = owner.metadata.uid;
    this.schedule(() => {
      const dependents = [...this.store.values()].filter((o) => o.metadata.ownerReferences?.some((r: Obj) => r.uid === uid) && o.metadata.namespace === owner.metadata.namespace);
      if (policy === 'Orphan') {
        for (const d of dependents) {
          const nd = clone(d);
          nd.metadata.ownerReferences = nd.metadata.ownerReferences.filter((r: Obj) => r.uid !== uid);
          if (!nd.metadata.ownerReferences.length) delete nd.metadata.ownerReferences;
          this.write('pods', nd, 'MODIFIED', d);
        }
        this.dropFinalizer('jobs', owner.metadata.namespace, owner.metadata.name, 'orphan');
      } else {
        for (const d of dependents) {
          const live = this.store.get(this.key('pods', d.metadata.namespace, d.metadata.name));
          if (live && !live.metadata.deletionTimestamp) this.delete('pods', live, {});
        }
        if (policy === 'Foreground') this.foregroundWait(owner);
      }
    }, this.o.gcDelayMs);
  }

  private foregroundWait(owner: Obj): void {
    const left = [...this.store.values()].some((o) => o.metadata.ownerReferences?.some((r: Obj) => r.uid === owner.metadata.uid));
    if (left) return void this.schedule(() => this.foregroundWait(owner), 20);
    this.dropFinalizer('jobs', owner.metadata.namespace, owner.metadata.name, 'foregroundDeletion');
  }

  private dropFinalizer(res: Res, ns: string, name: string, fin: string): void {
    const cur = this.store.get(this.key(res, ns, name));
    if (!cur || !cur.metadata.finalizers?.includes(fin)) return;
    const next = clone(cur);
    next.metadata.finalizers = next.metadata.finalizers.filter((f: string) => f !== fin);
    if (!next.metadata.finalizers.length) delete next.metadata.finalizers;
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers) {
      this.write(res, next, 'DELETED', cur);
      if (res === 'pods') this.runs.delete(this.key('pods', ns, name));
    } else this.write(res, next, 'MODIFIED', cur);
  }

  // --- list and watch -----------------------------------------------------------------------

  private matcher(res: Res, q: URLSearchParams): (o: Obj) => boolean {
    const ls = q.get('labelSelector');
    const fs_ = q.get('fieldSelector');
    const reqs = ls ? parseLabelSelector(ls) : [];
    const fsel = fs_ ? parseFieldSelector(res, fs_) : () => true;
    return (o) => labelsMatch(reqs, o.metadata.labels) && fsel(o);
  }

  private listBody(res: Res, ns: string | undefined, q: URLSearchParams): Obj {
    const match = this.matcher(res, q);
    let start = '';
    let listRv = this.rv;
    const cont = q.get('continue');
    if (cont) {
      let tok: { rv: number; start: string };
      try {
        tok = JSON.parse(Buffer.from(cont, 'base64').toString('utf8'));
        if (typeof tok.rv !== 'number' || typeof tok.start !== 'string') throw new Error('shape');
      } catch {
        throw new ApiError(400, 'BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      }
      if (tok.rv < this.compactedRv) {
        throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
      }
      start = tok.start;
      listRv = tok.rv;
    }
    const prefix = `${res}/${ns === undefined ? '' : `${ns}/`}`;
    const all = [...this.store.entries()]
      .filter(([k, o]) => k.startsWith(prefix) && k > start && match(o))
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const limit = q.has('limit') ? Number(q.get('limit')) : 0;
    const page = limit > 0 ? all.slice(0, limit) : all;
    const more = limit > 0 && all.length > limit;
    return {
      kind: KINDS[res].list,
      apiVersion: KINDS[res].apiVersion,
      metadata: {
        resourceVersion: String(listRv),
        ...(more ? { continue: Buffer.from(JSON.stringify({ rv: listRv, start: page[page.length - 1]![0] })).toString('base64'), remainingItemCount: all.length - page.length } : {}),
      },
      items: page.map(([, o]) => clone(o)),
    };
  }

  private watch(res: Res, ns: string | undefined, q: URLSearchParams, out: http.ServerResponse): void {
    const match = this.matcher(res, q);
    const inNs = (o: Obj) => ns === undefined || o.metadata.namespace === ns;
    out.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const w: Watcher = { res, ...(ns !== undefined ? { ns } : {}), match: (o) => inNs(o) && match(o), out };
    const rvParam = q.get('resourceVersion');
    if (rvParam && rvParam !== '0') {
      const from = Number(rvParam);
      if (!Number.isFinite(from) || from < this.compactedRv) {
        out.write(JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${rvParam} (${this.compactedRv + 1})`) }) + '\n');
        out.end();
        return;
      }
      for (const ev of this.history) if (ev.rv > from) this.deliver(w, ev);
    } else {
      for (const [k, o] of [...this.store.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (k.startsWith(`${res}/`) && w.match(o)) out.write(JSON.stringify({ type: 'ADDED', object: this.withKind(res, clone(o)) }) + '\n');
      }
    }
    this.watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? 1800);
    const t = setTimeout(() => {
      this.watchers.delete(w);
      out.end();
    }, timeout * 1000);
    out.on('close', () => {
      clearTimeout(t);
      this.watchers.delete(w);
    });
  }

  private deliver(w: Watcher, ev: HistoryEvent): void {
    if (ev.res !== w.res) return;
    const now = w.match(ev.obj);
    const before = ev.prev ? w.match(ev.prev) : false;
    let type: string | undefined;
    if (ev.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else if (ev.type === 'DELETED') type = before || now ? 'DELETED' : undefined;
    else type = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : undefined;
    if (type) w.out.write(JSON.stringify({ type, object: this.withKind(ev.res, clone(ev.obj)) }) + '\n');
  }

  // --- tables (kubectl get's server-side printing) --------------------------------------------

  private table(res: Res, items: Obj[], metadata: Obj): Obj {
    const age = (o: Obj) => {
      const s = Math.max(0, Math.round((Date.now() - Date.parse(o.metadata.creationTimestamp)) / 1000));
      return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
    };
    const col = (name: string, type = 'string', format = '') => ({ name, type, format, description: name, priority: 0 });
    let columnDefinitions: Obj[];
    let cells: (o: Obj) => unknown[];
    if (res === 'pods') {
      columnDefinitions = [col('Name', 'string', 'name'), col('Ready'), col('Status'), col('Restarts', 'string'), col('Age'), { ...col('Node'), priority: 1 }];
      cells = (o) => {
        const cs: Obj[] = o.status?.containerStatuses ?? [];
        const ready = cs.filter((c) => c.ready).length;
        const status = o.metadata.deletionTimestamp ? 'Terminating' : cs[0]?.state?.waiting?.reason ?? (cs[0]?.state?.terminated && o.status.phase !== 'Running' ? (cs[0].state.terminated.exitCode === 0 ? 'Completed' : 'Error') : o.status?.phase);
        return [o.metadata.name, `${ready}/${o.spec.containers.length}`, status, String(cs.reduce((n, c) => n + (c.restartCount ?? 0), 0)), age(o), o.spec.nodeName ?? '<none>'];
      };
    } else if (res === 'jobs') {
      columnDefinitions = [col('Name', 'string', 'name'), col('Status'), col('Completions'), col('Duration'), col('Age')];
      cells = (o) => {
        const c: Obj[] = o.status?.conditions ?? [];
        const status = c.find((x) => x.type === 'Complete' && x.status === 'True') ? 'Complete' : c.find((x) => x.type === 'Failed' && x.status === 'True') ? 'Failed' : o.metadata.deletionTimestamp ? 'Terminating' : 'Running';
        const dur = o.status?.startTime ? `${Math.round(((o.status.completionTime ? Date.parse(o.status.completionTime) : Date.now()) - Date.parse(o.status.startTime)) / 1000)}s` : '';
        return [o.metadata.name, status, `${o.status?.succeeded ?? 0}/${o.spec.completions}`, dur, age(o)];
      };
    } else {
      columnDefinitions = [col('Name', 'string', 'name'), col('Status'), col('Age')];
      cells = (o) => [o.metadata.name, o.status?.phase ?? '', age(o)];
    }
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata,
      columnDefinitions,
      rows: items.map((o) => ({ cells: cells(o), object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })),
    };
  }

  // --- the controllers: Job controller, scheduler, kubelet -------------------------------------

  private schedule(fn: () => void, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  private controllerPending = false;
  private controllers(): void {
    if (this.controllerPending) return;
    this.controllerPending = true;
    this.schedule(() => {
      this.controllerPending = false;
      this.jobController();
      this.scheduler();
    }, 5);
  }

  private podsOf(job: Obj): Obj[] {
    return [...this.store.values()].filter((o) => o.metadata.namespace === job.metadata.namespace && o.spec?.containers && o.metadata.ownerReferences?.some((r: Obj) => r.uid === job.metadata.uid && r.controller));
  }

  private jobController(): void {
    // Pods whose Job is gone (orphaned, or owner deleted) keep the tracking finalizer only until the controller sees them.
    const jobUids = new Set([...this.store.values()].filter((o) => o.spec?.template).map((o) => o.metadata.uid));
    for (const p of [...this.store.values()].filter((o) => o.spec?.containers && o.metadata.finalizers?.includes('batch.kubernetes.io/job-tracking'))) {
      const owner = p.metadata.ownerReferences?.find((r: Obj) => r.controller && r.kind === 'Job');
      if (!owner || !jobUids.has(owner.uid)) this.dropFinalizer('pods', p.metadata.namespace, p.metadata.name, 'batch.kubernetes.io/job-tracking');
    }
    for (const job of [...this.store.values()].filter((o) => o.spec?.template && o.status !== undefined && o.metadata.namespace !== undefined)) {
      const pods = this.podsOf(job);
      // The job-tracking finalizer comes off every finished or terminating Pod once counted.
      for (const p of pods) {
        if ((['Succeeded', 'Failed'].includes(p.status?.phase) || p.metadata.deletionTimestamp) && p.metadata.finalizers?.includes('batch.kubernetes.io/job-tracking') && (['Succeeded', 'Failed'].includes(p.status?.phase) || !this.runs.get(this.key('pods', p.metadata.namespace, p.metadata.name))?.size || [...(this.runs.get(this.key('pods', p.metadata.namespace, p.metadata.name))?.values() ?? [])].every((r) => r.state !== 'running'))) {
          this.dropFinalizer('pods', p.metadata.namespace, p.metadata.name, 'batch.kubernetes.io/job-tracking');
        }
      }
      if (job.metadata.deletionTimestamp) continue;
      const conds: Obj[] = job.status.conditions ?? [];
      const finished = conds.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      const live = this.podsOf(job);
      const succeeded = live.filter((p) => p.status?.phase === 'Succeeded').length + (job.status.__goneSucceeded ?? 0);
      const failedPods = live.filter((p) => p.status?.phase === 'Failed').length;
      const restarts = live.reduce((n, p) => n + (p.status?.containerStatuses ?? []).reduce((m: number, c: Obj) => m + (c.restartCount ?? 0), 0), 0);
      const active = live.filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase) && !p.metadata.deletionTimestamp);
      const ready = active.filter((p) => p.status?.containerStatuses?.every((c: Obj) => c.ready)).length;
      const terminating = live.filter((p) => p.metadata.deletionTimestamp && !['Succeeded', 'Failed'].includes(p.status?.phase)).length;
      const next = clone(job);
      const st = next.status;
      const spec = job.spec;
      const now = nowIso();
      if (!finished && !spec.suspend) {
        st.startTime ??= now;
        const failures = failedPods + (spec.template.spec.restartPolicy === 'OnFailure' ? restarts : 0);
        if (succeeded >= spec.completions) {
          st.conditions = [...conds, { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: now, lastTransitionTime: now }, { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods', lastProbeTime: now, lastTransitionTime: now }];
          st.completionTime = now;
        } else if (failures > spec.backoffLimit) {
          st.conditions = [...conds, { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: now, lastTransitionTime: now }, { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: now, lastTransitionTime: now }];
          for (const p of active) this.delete('pods', this.store.get(this.key('pods', p.metadata.namespace, p.metadata.name))!, {});
        } else {
          const want = Math.min(spec.parallelism, spec.completions - succeeded) - active.length - (spec.podReplacementPolicy === 'Failed' ? terminating : 0);
          for (let i = 0; i < want; i++) this.createPodFor(job);
        }
      }
      const nowActive = this.podsOf(job).filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase) && !p.metadata.deletionTimestamp).length;
      st.active = st.conditions?.some((c: Obj) => ['Complete', 'Failed'].includes(c.type)) ? 0 : nowActive;
      st.ready = st.active ? ready : 0;
      st.terminating = terminating;
      st.succeeded = succeeded;
      st.failed = failedPods;
      for (const k of ['active', 'succeeded', 'failed'] as const) if (!st[k]) delete st[k];
      st.uncountedTerminatedPods = {};
      if (JSON.stringify(next.status) !== JSON.stringify(job.status)) this.write('jobs', next, 'MODIFIED', job);
    }
  }

  private createPodFor(job: Obj): void {
    const t = clone(job.spec.template);
    const name = `${job.metadata.name}-${rand5()}`;
    const pod: Obj = {
      metadata: {
        ...(t.metadata ?? {}),
        name,
        generateName: `${job.metadata.name}-`,
        labels: { ...(t.metadata?.labels ?? {}) },
        finalizers: ['batch.kubernetes.io/job-tracking'],
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: t.spec,
    };
    const obj = this.newMeta(pod, 'pods', job.metadata.namespace);
    this.defaultPod(obj);
    this.write('pods', obj, 'ADDED');
  }

  private scheduler(): void {
    for (const p of [...this.store.values()].filter((o) => o.spec?.containers && !o.spec.nodeName && !o.metadata.deletionTimestamp && o.status?.phase === 'Pending' && !o.__scheduling)) {
      p.__scheduling = true;
      this.schedule(() => this.bind(p.metadata.namespace, p.metadata.name), this.o.scheduleMs);
    }
  }

  private bind(ns: string, name: string): void {
    const cur = this.store.get(this.key('pods', ns, name));
    if (!cur || cur.metadata.deletionTimestamp || cur.spec.nodeName) return;
    const next = clone(cur);
    delete next.__scheduling;
    next.spec.nodeName = this.o.nodes[this.nodeTurn++ % this.o.nodes.length];
    const now = nowIso();
    next.status = {
      ...next.status,
      phase: 'Pending',
      hostIP: '10.0.0.1',
      startTime: now,
      conditions: [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now }],
      containerStatuses: next.spec.containers.map((c: Obj) => ({ name: c.name, image: c.image, imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason: 'ContainerCreating' } }, lastState: {} })),
    };
    this.write('pods', next, 'MODIFIED', cur);
    const runs = new Map<string, ContainerRun>();
    for (const c of next.spec.containers) runs.set(c.name, { lines: [], followers: new Set(), state: 'waiting', restarts: 0 });
    this.runs.set(this.key('pods', ns, name), runs);
    this.schedule(() => {
      for (const c of next.spec.containers) this.startContainer(ns, name, c);
    }, this.o.startMs);
  }

  private startContainer(ns: string, pod: string, c: Obj): void {
    const run = this.runs.get(this.key('pods', ns, pod))?.get(c.name);
    const cur = this.store.get(this.key('pods', ns, pod));
    if (!run || !cur || cur.metadata.deletionTimestamp) return;
    run.state = 'running';
    run.startedAt = nowIso();
    this.setContainerStatus(ns, pod, c.name, { ready: true, started: true, state: { running: { startedAt: run.startedAt } } }, 'Running');
    const script = scriptOf(c);
    let i = 0;
    const step = () => {
      if (run.state !== 'running') return;
      const s = script[i++];
      if (!s) return this.exitContainer(ns, pod, c, 0);
      if (s.op === 'echo') {
        run.lines.push({ at: new Date().toISOString(), text: s.text });
        for (const f of run.followers) f();
        return step();
      }
      if (s.op === 'sleep') {
        run.timer = setTimeout(step, s.ms);
        return;
      }
      if (s.op === 'exit') return this.exitContainer(ns, pod, c, s.code);
      if (s.op === 'forever') return; // runs until the pod is deleted
    };
    step();
  }

  private exitContainer(ns: string, pod: string, c: Obj, code: number): void {
    const run = this.runs.get(this.key('pods', ns, pod))?.get(c.name);
    const cur = this.store.get(this.key('pods', ns, pod));
    if (!run || !cur) return;
    if (run.timer) clearTimeout(run.timer);
    run.state = 'terminated';
    run.exitCode = code;
    run.finishedAt = nowIso();
    for (const f of run.followers) f();
    const terminated = { exitCode: code, reason: code === 0 ? 'Completed' : code === 137 ? 'Error' : 'Error', startedAt: run.startedAt, finishedAt: run.finishedAt };
    const rp = cur.spec.restartPolicy;
    if (!cur.metadata.deletionTimestamp && (rp === 'Always' || (rp === 'OnFailure' && code !== 0))) {
      run.restarts += 1;
      this.setContainerStatus(ns, pod, c.name, { ready: false, restartCount: run.restarts, lastState: { terminated }, state: { waiting: { reason: 'CrashLoopBackOff' } } }, 'Running');
      this.schedule(() => this.startContainer(ns, pod, c), Math.max(20, this.o.startMs));
      return;
    }
    const runs = [...(this.runs.get(this.key('pods', ns, pod))?.values() ?? [])];
    const allDone = runs.every((r) => r.state === 'terminated');
    const phase = !allDone ? 'Running' : runs.every((r) => r.exitCode === 0) ? 'Succeeded' : 'Failed';
    this.setContainerStatus(ns, pod, c.name, { ready: false, started: false, state: { terminated } }, phase);
  }

  private setContainerStatus(ns: string, pod: string, name: string, patch: Obj, phase: string): void {
    const cur = this.store.get(this.key('pods', ns, pod));
    if (!cur) return;
    const next = clone(cur);
    next.status.phase = phase;
    next.status.containerStatuses = next.status.containerStatuses.map((s: Obj) => (s.name === name ? { ...s, ...patch } : s));
    if (phase === 'Running') next.status.podIP ??= `10.244.0.${(this.rv % 250) + 2}`;
    const ready = next.status.containerStatuses.every((s: Obj) => s.ready);
    const now = nowIso();
    next.status.conditions = [
      ...(next.status.conditions ?? []).filter((c: Obj) => !['Ready', 'ContainersReady', 'Initialized'].includes(c.type)),
      { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: now },
      { type: 'Ready', status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now, ...(ready ? {} : { reason: phase === 'Running' ? 'ContainersNotReady' : 'PodCompleted' }) },
      { type: 'ContainersReady', status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now },
    ];
    this.write('pods', next, 'MODIFIED', cur);
    if (['Succeeded', 'Failed'].includes(phase) && next.metadata.deletionTimestamp) this.finishDelete(ns, pod);
  }

  /** The kubelet stops a deleted pod's containers (SIGTERM, then SIGKILL at the grace period). */
  private killPod(pod: Obj, graceSec: number): void {
    const ns = pod.metadata.namespace;
    const name = pod.metadata.name;
    const runs = this.runs.get(this.key('pods', ns, name));
    if (!runs || [...runs.values()].every((r) => r.state !== 'running')) {
      this.schedule(() => this.finishDelete(ns, name), Math.min(this.o.killMs, graceSec * 1000));
      return;
    }
    this.schedule(() => {
      for (const c of pod.spec.containers) {
        const r = runs.get(c.name);
        if (r && r.state !== 'terminated') {
          if (r.timer) clearTimeout(r.timer);
          r.state = 'running';
          this.exitContainer(ns, name, c, 137);
        }
      }
      this.finishDelete(ns, name);
    }, Math.min(this.o.killMs, graceSec * 1000));
  }

  /** After the kubelet stopped it: the pod object goes once no finalizer holds it. */
  private finishDelete(ns: string, name: string): void {
    const cur = this.store.get(this.key('pods', ns, name));
    if (!cur || !cur.metadata.deletionTimestamp) return;
    this.controllers();
    this.schedule(() => {
      const again = this.store.get(this.key('pods', ns, name));
      if (!again || again.metadata.finalizers?.length) return;
      this.write('pods', clone(again), 'DELETED', again);
      this.runs.delete(this.key('pods', ns, name));
    }, 15);
  }

  // --- logs ----------------------------------------------------------------------------------

  private podLog(ns: string, name: string, q: URLSearchParams, res: http.ServerResponse): void {
    const pod = this.store.get(this.key('pods', ns, name));
    if (!pod) throw new ApiError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    const names: string[] = pod.spec.containers.map((c: Obj) => c.name);
    let container = q.get('container') ?? undefined;
    if (!container) {
      if (names.length > 1) throw new ApiError(400, 'BadRequest', `a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
      container = names[0]!;
    }
    if (!names.includes(container)) throw new ApiError(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
    const run = this.runs.get(this.key('pods', ns, name))?.get(container);
    if (!run || (run.state === 'waiting' && !run.lines.length)) {
      throw new ApiError(400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start: ContainerCreating`);
    }
    const ts = q.get('timestamps') === 'true';
    const tail = q.has('tailLines') ? Number(q.get('tailLines')) : undefined;
    const fmt = (l: { at: string; text: string }) => `${ts ? `${l.at} ` : ''}${l.text}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    let sent = tail !== undefined ? Math.max(0, run.lines.length - tail) : 0;
    const flush = () => {
      while (sent < run.lines.length) res.write(fmt(run.lines[sent++]!));
    };
    flush();
    const follow = q.get('follow') === 'true' || q.get('follow') === '1';
    if (!follow || run.state === 'terminated') return void res.end();
    const onChange = () => {
      flush();
      if (run.state === 'terminated' || !this.store.has(this.key('pods', ns, name))) {
        run.followers.delete(onChange);
        res.end();
      }
    };
    run.followers.add(onChange);
    res.on('close', () => run.followers.delete(onChange));
  }
}

/**
 * A minimal OpenAPI v3 document for one group/version: the paths of its resources with the
 * query parameters the real document declares for them (kubectl looks for `fieldValidation` on
 * the PATCH operation of the kind it applies to decide that the server validates).
 */
function openapiV3(resources: Array<[string, string, string]>, prefix: string): Obj {
  const paths: Obj = {};
  const q = (name: string) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  for (const [plural, kind, group] of resources) {
    const gvk = { 'x-kubernetes-group-version-kind': { group, kind, version: 'v1' } };
    const base = kind === 'Namespace' ? `${prefix}/${plural}` : `${prefix}/namespaces/{namespace}/${plural}`;
    paths[base] = { get: { ...gvk, parameters: [q('labelSelector'), q('fieldSelector'), q('limit'), q('continue'), q('watch')] }, post: { ...gvk, parameters: [q('dryRun'), q('fieldManager'), q('fieldValidation')] } };
    paths[`${base}/{name}`] = {
      get: { ...gvk },
      put: { ...gvk, parameters: [q('dryRun'), q('fieldManager'), q('fieldValidation')] },
      patch: { ...gvk, parameters: [q('dryRun'), q('fieldManager'), q('fieldValidation'), q('force')] },
      delete: { ...gvk, parameters: [q('gracePeriodSeconds'), q('propagationPolicy')] },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (Tether fake)', version: 'v1.34.0' }, paths, components: { schemas: {} } };
}

/** The container's command as the fake kubelet's script. */
function scriptOf(c: Obj): Array<{ op: 'echo'; text: string } | { op: 'sleep'; ms: number } | { op: 'exit'; code: number } | { op: 'forever' }> {
  let argv: string[] = [...(c.command ?? []), ...(c.args ?? [])];
  if (argv.length >= 3 && /(^|\/)(ba)?sh$/.test(argv[0]!) && argv[1] === '-c') argv = [argv[2]!];
  const text = argv.join(' ').trim();
  if (!text) return [{ op: 'forever' }];
  const out: ReturnType<typeof scriptOf> = [];
  for (const raw of text.split(/;|&&/)) {
    const s = raw.trim();
    let m: RegExpExecArray | null;
    if (!s) continue;
    if ((m = /^echo\s+(.*)$/.exec(s))) out.push({ op: 'echo', text: m[1]!.replace(/^["']|["']$/g, '') });
    else if ((m = /^sleep\s+(\d+(?:\.\d+)?)$/.exec(s))) out.push({ op: 'sleep', ms: Number(m[1]) * 1000 });
    else if ((m = /^exit\s+(\d+)$/.exec(s))) out.push({ op: 'exit', code: Number(m[1]) });
    else if (s === 'true') continue;
    else if (s === 'false') out.push({ op: 'exit', code: 1 });
    else return [...out, { op: 'forever' }];
  }
  return out;
}

function qosOf(spec: Obj): string {
  const cs: Obj[] = spec.containers ?? [];
  const anyReq = cs.some((c) => Object.keys(c.resources?.requests ?? {}).length || Object.keys(c.resources?.limits ?? {}).length);
  if (!anyReq) return 'BestEffort';
  const guaranteed = cs.every((c) => ['cpu', 'memory'].every((r) => c.resources?.limits?.[r] !== undefined && parseQuantity(String(c.resources.limits[r])) === parseQuantity(String(c.resources?.requests?.[r] ?? c.resources.limits[r]))));
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** JSON merge patch (RFC 7386). Strategic merge patches are applied as merge patches (their list directives unsupported). */
function mergePatch(target: Obj, patch: unknown): Obj {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch as Obj;
  const out: Obj = target && typeof target === 'object' && !Array.isArray(target) ? target : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else if (typeof v === 'object' && !Array.isArray(v)) out[k] = mergePatch(out[k], v);
    else out[k] = v;
  }
  return out;
}

/**
 * Checks a body against the property catalogue: wrong types throw 400 BadRequest (as the API
 * server's JSON decoder), unknown fields are collected (and dropped).
 */
function walkSchema(type: string, value: unknown, at: string, unknown: string[]): void {
  const def = CATALOGUE[type];
  if (!def) return;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'BadRequest', `json: cannot unmarshal ${Array.isArray(value) ? 'array' : typeof value} into Go value of type ${type} (at ${at || '.'})`);
  }
  for (const [k, v] of Object.entries(value as Obj)) {
    const t = def.properties[k];
    const here = at ? `${at}.${k}` : k;
    if (t === undefined) {
      if (!k.startsWith('__')) {
        unknown.push(here);
        delete (value as Obj)[k];
      }
      continue;
    }
    checkField(t, v, here, unknown);
  }
}

function checkField(t: FieldType | string, v: unknown, at: string, unknown: string[]): void {
  if (v === null || v === undefined) return;
  const bad = (want: string) => new ApiError(400, 'BadRequest', `json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field ${at} of type ${want}`);
  if (typeof t === 'string') {
    if ((t === 'string' || t === 'Date') && typeof v !== 'string') throw bad('string');
    if (t === 'boolean' && typeof v !== 'boolean') throw bad('bool');
    if (t === 'number' && typeof v !== 'number') throw bad('number');
    if (t === 'IntOrString' && typeof v !== 'string' && !Number.isInteger(v)) throw bad('intstr.IntOrString');
    return;
  }
  if (t.type === 'number') {
    if (typeof v !== 'number' || ((t.format === 'int32' || t.format === 'int64') && !Number.isInteger(v))) throw bad(t.format ?? 'number');
    return;
  }
  if (t.ref) return walkSchema(t.ref, v, at, unknown);
  if (t.array) {
    if (!Array.isArray(v)) throw bad('array');
    v.forEach((x, i) => checkField(t.array!, x, `${at}[${i}]`, unknown));
    return;
  }
  if (t.map) {
    if (typeof v !== 'object' || Array.isArray(v)) throw bad('map');
    for (const [k, x] of Object.entries(v as Obj)) {
      // Resource quantities are strings or numbers on the wire (resource.Quantity unmarshals both).
      if (t.map === 'string' && at.includes('resources') && typeof x === 'number') continue;
      checkField(t.map, x, `${at}[${k}]`, unknown);
    }
  }
}
