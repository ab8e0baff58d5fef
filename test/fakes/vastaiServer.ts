/**
 * Fake Vast.ai API server (the real API cannot be called from tests), written from Vast's
 * published OpenAPI spec and its backend-generated per-operation specs; the parts used are copied
 * in test/fixtures/vast/ (published-openapi.json: vast-ai/docs @ c624622622496828c1ae58edec481bba1f5d675d
 * api-reference/openapi.yaml; generated-openapi.json: vast-ai/docs @ 000751afdd860579861e726fc337897aa57b6926
 * api-reference/openapi/yaml/auto_*.yaml), and request bodies are validated with those very schemas.
 *
 * - Auth: `Authorization: Bearer KEY` (or `?api_key=`); a wrong key answers 401
 *   `{success: false, error: "auth_error", msg: "Invalid user key"}`, except the offer search,
 *   which answers 404 `{error, msg: "Invalid user key"}` (published spec) and works without a key.
 * - `GET /api/v0/instances/` answers 410 (deprecated for accounts created after 2026-06-02;
 *   `legacyAccount: true` for an older account) — list with `GET /api/v1/instances/`: keyset
 *   paging, `limit` default 25, at most 25 (more: 400), `after_token` from `next_token` (a bad
 *   token: 400 `invalid_token`), `order_by`, `select_cols`, `select_filters` (computed columns
 *   such as `dph_total`: 400 `invalid_request`).
 * - `POST /api/v0/bundles/` with the filter body (schema-checked; 400 `{error: "invalid_request", msg}`);
 *   `type` must be one of the schema's enum. One correction: the spec puts `minItems/maxItems: 2`
 *   on `order` itself, but its description and Vast's CLI (`[["score", "desc"]]`) make each entry
 *   a `[field, "asc"|"desc"]` pair; the fake checks the pairs.
 * - `PUT /api/v0/asks/{id}/` (schema-checked: `image` required, types, enums, price range;
 *   400 `{success: false, error: "invalid_args", msg: "error 400/3467: Invalid args: …", ask_id}`),
 *   404 `no_such_ask` for an unknown offer, 200 `{success, new_contract, instance_api_key}`
 *   (`success: false` when `target_state: "stopped"`: the instance exists, stopped).
 * - `GET /api/v0/instances/{id}/` → `{instances: {...} | null}` (null when unknown);
 *   `PUT /api/v0/instances/{id}/` `{state: "stopped"|"running", label}`; `DELETE /api/v0/instances/{id}/`;
 *   non-integer ids: 400 `invalid_args`; unknown: 404 `no_such_instance`.
 * - Rate limits: a request of a method sooner after the previous one (same identity) than the
 *   method's documented gap (the largest `x-rateLimit` of that method's endpoints in the generated
 *   spec: GET 2 s, POST 2 s, PUT 4.5 s, DELETE 3 s; `gapScale` scales them, 0 turns them off)
 *   gets a plain-text 429 "API requests too frequent: endpoint threshold=…" and no Retry-After.
 * - Paths are accepted with or without the trailing slash (the published spec has none, the
 *   generated spec and the CLI have one).
 * - The `create-then-fail` fault reproduces the documented trap: the create answers 410
 *   `no_such_ask`, yet the instance exists.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import generated from '../fixtures/vast/generated-openapi.json';
import published from '../fixtures/vast/published-openapi.json';
import { FakeProviderServer, phaseOf, type Answer, type FakeOptions, type GateRequest, type Life } from './fakeBase';

interface Inst extends Life {
  id: number;
  label: string | null;
  offer: number;
  image: string;
  disk: number;
}

export interface VastFakeOptions extends FakeOptions {
  /** Scales the documented minimum gaps (1: as documented, the default; 0: no rate limit). */
  gapScale?: number;
  /** An account created before 2026-06-02: `GET /api/v0/instances/` still answers. Default false. */
  legacyAccount?: boolean;
}

export const OFFERS = [
  { id: 4101, ask_contract_id: 4101, gpu_name: 'RTX 4090', num_gpus: 1, dph_total: 0.345, geolocation: 'Norway, NO', cpu_cores_effective: 16, cpu_ram: 64512, gpu_ram: 24564, rentable: true, rented: false, verified: true, verification: 'verified', external: false, reliability: 0.995, machine_id: 77, score: 210.5 },
  { id: 4102, ask_contract_id: 4102, gpu_name: 'A100 SXM4', num_gpus: 2, dph_total: 2.1, geolocation: 'Texas, US', cpu_cores_effective: 32, cpu_ram: 257024, gpu_ram: 81920, rentable: true, rented: false, verified: true, verification: 'verified', external: false, reliability: 0.999, machine_id: 78, score: 520.1 },
  { id: 4103, ask_contract_id: 4103, gpu_name: 'RTX 3090', num_gpus: 1, dph_total: 0.12, geolocation: 'Quebec, CA', cpu_cores_effective: 8, cpu_ram: 32256, gpu_ram: 24576, rentable: true, rented: false, verified: false, verification: 'unverified', external: false, reliability: 0.91, machine_id: 79, score: 90.2 },
];
type Offer = (typeof OFFERS)[number];

type Json = Record<string, unknown>;
const gen = generated.files as unknown as Record<string, { paths: Record<string, Record<string, Json>> }>;
const pub = published.paths as unknown as Record<string, Record<string, Json>>;

/** The request body schema of an operation in the copied spec. */
function bodySchema(op: Json): Json {
  return ((op.requestBody as Json).content as Record<string, Json>)['application/json']!.schema as Json;
}

const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false });
const createSchema = bodySchema(pub['/api/v0/asks/{id}']!.put!);
const manageSchema = bodySchema(pub['/api/v0/instances/{id}']!.put!);
const searchSchema = (() => {
  const s = structuredClone(bodySchema(gen['auto_post_api_v0_bundles_32b4bb.yaml']!.paths['/api/v0/bundles/']!.post!)) as Json;
  const props = s.properties as Record<string, Json>;
  // The correction described above: each order entry is a [field, direction] pair.
  props.order = { type: 'array', items: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 } };
  return s;
})();
const validateCreate = ajv.compile(createSchema);
const validateManage = ajv.compile(manageSchema);
const validateSearch: ValidateFunction = ajv.compile(searchSchema);

/** The documented minimum gap of each method: the largest x-rateLimit of its endpoints in the generated spec, ms. */
export const DOCUMENTED_GAPS_MS: Record<string, number> = (() => {
  const out: Record<string, number> = {};
  for (const f of Object.values(gen)) {
    for (const [method, op] of Object.entries(Object.values(f.paths)[0]!)) {
      const rl = op['x-rateLimit'] as number | { profile?: string; threshold?: number } | undefined;
      const sec = typeof rl === 'number' ? rl : rl?.profile === 'legacy_deprecating' ? undefined : rl?.threshold;
      if (sec !== undefined) out[method.toUpperCase()] = Math.max(out[method.toUpperCase()] ?? 0, sec * 1000);
    }
  }
  return out;
})();

const ajvText = (errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map((e) => `${e.instancePath.replace(/^\//, '') || 'body'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`).join('; ');

const err = (status: number, error: string, msg: string, extra: Json = {}): Answer => ({ status, body: { success: false, error, msg, ...extra } });

/** Columns a v1 list may filter on (stored on the contract); computed ones answer 400. */
const FILTERABLE = new Set(['id', 'label', 'actual_status', 'intended_status', 'cur_state', 'gpu_name', 'verification', 'machine_id', 'image_uuid']);
/** Columns a v1 list may be ordered by. */
const ORDERABLE = new Set([...FILTERABLE, 'start_date', 'num_gpus', 'dph_total', 'geolocation']);
const OPS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'in', 'notin'];

function matches(v: unknown, cond: Json): boolean {
  for (const [op, want] of Object.entries(cond)) {
    const ok =
      op === 'eq' ? v === want
      : op === 'neq' ? v !== want
      : op === 'gt' ? (v as number) > (want as number)
      : op === 'gte' ? (v as number) >= (want as number)
      : op === 'lt' ? (v as number) < (want as number)
      : op === 'lte' ? (v as number) <= (want as number)
      : op === 'in' ? Array.isArray(want) && want.includes(v)
      : op === 'notin' ? Array.isArray(want) && !want.includes(v)
      : false;
    if (!ok) return false;
  }
  return true;
}

const token = (id: number) => Buffer.from(JSON.stringify({ values: { id } })).toString('base64');
function untoken(t: string): number | undefined {
  try {
    const id = (JSON.parse(Buffer.from(t, 'base64').toString('utf8')) as { values?: { id?: unknown } }).values?.id;
    return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export class FakeVastServer extends FakeProviderServer {
  readonly instances = new Map<number, Inst>();
  readonly gapScale: number;
  readonly legacyAccount: boolean;
  /** 429s the rate limit answered (not the injected faults). */
  rateLimited429 = 0;
  private readonly lastByIdentity = new Map<string, number>();
  private lastAsk = 0;

  constructor(o: VastFakeOptions = {}) {
    super(o);
    this.gapScale = o.gapScale ?? 1;
    this.legacyAccount = o.legacyAccount ?? false;
  }

  /** The minimum gap the fake enforces for a method, ms. */
  gapMs(method: string): number {
    return (DOCUMENTED_GAPS_MS[method] ?? 0) * this.gapScale;
  }

  instanceCount(): number {
    return this.instances.size;
  }

  addForeign(label: string): string {
    const id = 9_000_000 + this.nextId();
    this.instances.set(id, { id, label, offer: 4101, image: 'pytorch/pytorch', disk: 16, createdAt: Date.now() - 60_000 });
    return String(id);
  }

  protected authorized(a: string | undefined, url: URL): boolean {
    return a === `Bearer ${this.apiKey}` || url.searchParams.get('api_key') === this.apiKey;
  }
  protected authError(): Answer {
    return err(401, 'auth_error', 'Invalid user key');
  }
  protected rateLimited(_retryAfterSec?: number): Answer {
    // Vast sends no Retry-After, whatever a test asks for.
    return { status: 429, text: 'API requests too frequent' };
  }
  protected serverError(): Answer {
    return err(500, 'server_error', 'Internal error');
  }
  protected override createFailed(): Answer {
    return err(410, 'no_such_ask', `error 410/3907: no_such_ask Instance type ${this.lastAsk} is no longer available.`, { ask_id: this.lastAsk });
  }
  protected override invalidJson(): Answer {
    return { status: 400, body: { error: 'invalid_request', msg: 'Invalid json body' } };
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'PUT' && /^\/api\/v0\/asks\/[^/]+\/?$/.test(path);
  }

  protected override gate(r: GateRequest): Answer | undefined {
    const isSearch = r.method === 'POST' && /^\/api\/v0\/bundles\/?$/.test(r.path);
    const ok = this.authorized(r.authorization, r.url);
    // The offer search needs no key, but a wrong one answers 404 (published spec).
    if (isSearch && !ok && (r.authorization || r.url.searchParams.has('api_key'))) return { status: 404, body: { error: 'auth_error', msg: 'Invalid user key' } };
    if (!ok && !isSearch) return undefined; // the base answers 401
    const gap = this.gapMs(r.method);
    if (gap > 0) {
      const key = `${r.authorization ?? r.url.searchParams.get('api_key') ?? 'anonymous'}\0${r.method}`;
      const now = performance.now();
      const last = this.lastByIdentity.get(key);
      this.lastByIdentity.set(key, now); // a refused request counts too: hammering keeps being refused
      if (last !== undefined && now - last < gap) {
        this.rateLimited429 += 1;
        return { status: 429, text: `API requests too frequent: endpoint threshold=${(gap / 1000).toFixed(1)}` };
      }
    }
    return undefined;
  }

  private view(i: Inst): Json | undefined {
    const phase = phaseOf(i, this);
    if (phase === 'terminating' || phase === 'terminated' || phase === 'gone') return undefined; // destroyed instances vanish
    const o = OFFERS.find((x) => x.id === i.offer)!;
    const early = Date.now() - i.createdAt < this.bootMs / 2;
    const stop = phase === 'stopping' || phase === 'stopped';
    // A stop asked while still loading: the container never ran, it goes straight to stopped.
    const wasUp = i.stoppedAt === undefined || i.stoppedAt - i.createdAt >= this.bootMs;
    return {
      id: i.id,
      label: i.label,
      actual_status: phase === 'active' || (phase === 'stopping' && wasUp) ? 'running' : stop ? 'stopped' : early ? null : 'loading',
      intended_status: stop ? 'stopped' : 'running',
      cur_state: phase === 'active' ? 'running' : 'stopped',
      next_state: stop ? 'stopped' : 'running',
      dph_total: o.dph_total,
      start_date: i.createdAt / 1000,
      ssh_host: phase === 'active' ? '127.0.0.1' : null,
      ssh_idx: '1',
      ssh_port: phase === 'active' ? 40022 : null,
      gpu_name: o.gpu_name,
      num_gpus: o.num_gpus,
      geolocation: o.geolocation,
      machine_id: o.machine_id,
      verification: o.verification,
      image_uuid: i.image,
      image_runtype: 'ssh',
      disk_space: i.disk,
      extra_env: [],
      status_msg: null,
    };
  }

  /** `/x/y` and `/x/y/` alike. */
  private static norm(path: string): string {
    return path.endsWith('/') ? path : `${path}/`;
  }

  protected route(method: string, rawPath: string, url: URL, body: unknown): Answer {
    const path = FakeVastServer.norm(rawPath);
    if (method === 'POST' && path === '/api/v0/bundles/') return this.search(body);
    if (path === '/api/v0/instances/' && method === 'GET') {
      if (!this.legacyAccount) return { status: 410, body: { error: 'deprecated', msg: 'Endpoint deprecated: /api/v0/instances/ is deprecated. Use /api/v1/instances/ instead.' } };
      const all = this.live().map((i) => this.view(i)!);
      return { status: 200, body: { instances_found: all.length, instances: all } };
    }
    if (path === '/api/v1/instances/' && method === 'GET') return this.listV1(url);
    const ask = /^\/api\/v0\/asks\/([^/]+)\/$/.exec(path);
    if (method === 'PUT' && ask) return this.create(ask[1]!, body);
    const one = /^\/api\/v0\/instances\/([^/]+)\/$/.exec(path);
    if (one && ['GET', 'PUT', 'DELETE'].includes(method)) {
      if (!/^\d+$/.test(one[1]!)) {
        return method === 'DELETE' ? { status: 400, body: { error: 'invalid_args', msg: 'invalid instance_id' } } : err(400, 'invalid_args', `invalid instance id ${JSON.stringify(one[1])}`);
      }
      const id = Number(one[1]);
      const i = this.instances.get(id);
      const v = i && this.view(i);
      if (method === 'GET') return { status: 200, body: { instances: v ?? null } };
      if (!i || !v) return err(404, 'no_such_instance', `Instance ${id} not found.`);
      if (method === 'PUT') {
        if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) return err(400, 'invalid_args', 'a JSON object body is required');
        if (!validateManage(body)) {
          const bad = validateManage.errors ?? [];
          if (bad.some((e) => e.instancePath === '/state')) return { status: 400, body: { success: false, msg: 'Invalid target state' } };
          if (bad.some((e) => e.instancePath === '/label' && e.keyword === 'maxLength')) return { status: 400, body: { error: 'invalid_args', msg: 'label_too_long' } };
          return err(400, 'invalid_args', ajvText(bad));
        }
        const b = body as { state?: string; label?: string };
        if (b.state === undefined && b.label === undefined) return err(400, 'invalid_args', 'state or label is required');
        if (typeof b.label === 'string') i.label = b.label;
        if (b.state === 'stopped') i.stoppedAt ??= Date.now(); // stopping a stopped instance changes nothing
        if (b.state === 'running') delete i.stoppedAt;
        return { status: 200, body: { success: true } };
      }
      // DELETE: Vast destroys at once.
      i.terminatedAt = Date.now() - this.terminateMs;
      return { status: 200, body: { success: true } };
    }
    return err(404, 'not_found', `no route ${method} ${rawPath}`);
  }

  private live(): Inst[] {
    return [...this.instances.values()].filter((i) => this.view(i) !== undefined);
  }

  private search(body: unknown): Answer {
    if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) return { status: 400, body: { error: 'invalid_request', msg: 'Invalid json body' } };
    if (!validateSearch(body)) return { status: 400, body: { error: 'invalid_request', msg: `Error in query parameters: ${ajvText(validateSearch.errors)}` } };
    const q = body as Json;
    // Every filter is an {operator: value} object with the documented operators (the schema's
    // declared filters only list some of them; its additionalProperties rule and the description say all).
    for (const [k, v] of Object.entries(q)) {
      if (['limit', 'type', 'order', 'allocated_storage'].includes(k)) continue;
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).some((op) => !OPS.includes(op))) {
        return { status: 400, body: { error: 'invalid_request', msg: `Error in query parameters: ${k} must be an object of operators (${OPS.join(', ')})` } };
      }
    }
    for (const pair of (q.order as string[][] | undefined) ?? []) {
      if (pair[1] !== 'asc' && pair[1] !== 'desc') return { status: 400, body: { error: 'invalid_request', msg: `Error in query parameters: order direction ${JSON.stringify(pair[1])} is not asc or desc` } };
    }
    // Schema defaults: verified, rentable, not rented.
    const filters: Record<string, Json> = { verified: { eq: true }, rentable: { eq: true }, rented: { eq: false } };
    for (const [k, v] of Object.entries(q)) if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).every((op) => OPS.includes(op))) filters[k] = v as Json;
    let offers: Offer[] = OFFERS.filter((o) => Object.entries(filters).every(([k, c]) => !(k in o) || matches((o as Record<string, unknown>)[k], c)));
    const [col, dir] = ((q.order as string[][] | undefined) ?? [['score', 'desc']])[0] ?? ['score', 'desc'];
    offers = [...offers].sort((a, b) => {
      const x = (a as Record<string, unknown>)[col!] as number;
      const y = (b as Record<string, unknown>)[col!] as number;
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === 'desc' ? -1 : 1);
    });
    if (typeof q.limit === 'number') offers = offers.slice(0, Math.max(0, q.limit));
    return { status: 200, body: { offers } };
  }

  private create(idText: string, body: unknown): Answer {
    if (!/^\d+$/.test(idText)) return err(400, 'invalid_args', "error 400/3467: Invalid args: 'id' is required and must be a valid offer ID");
    const askId = Number(idText);
    this.lastAsk = askId;
    if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) return err(400, 'invalid_args', 'error 400/3467: Invalid args: a JSON object body is required', { ask_id: askId });
    if (!validateCreate(body)) return err(400, 'invalid_args', `error 400/3467: Invalid args: ${ajvText(validateCreate.errors)}`, { ask_id: askId });
    const b = body as { image: string; label?: string; disk?: number; target_state?: string };
    const offer = OFFERS.find((o) => o.id === askId && o.rentable);
    if (!offer) return err(404, 'no_such_ask', `error 404/3603: no_such_ask Instance type by id ${askId} is not available.`, { ask_id: askId });
    const id = 8_000_000 + this.nextId();
    const now = Date.now();
    this.instances.set(id, { id, label: b.label ?? null, offer: offer.id, image: b.image, disk: b.disk ?? 8, createdAt: now, ...(b.target_state === 'stopped' ? { stoppedAt: now - this.terminateMs } : {}) });
    return { status: 200, body: { success: b.target_state !== 'stopped', new_contract: id, instance_api_key: `inst-key-${id}` } };
  }

  private listV1(url: URL): Answer {
    const bad = (error: string, msg: string): Answer => ({ status: 400, body: { error, msg } });
    const json = <T>(name: string, dflt: T): T | Answer => {
      const raw = url.searchParams.get(name);
      if (raw === null) return dflt;
      try {
        return JSON.parse(raw) as T;
      } catch {
        return bad('invalid_request', `Error in query parameters: ${name} is not valid JSON`);
      }
    };
    const isAnswer = (x: unknown): x is Answer => typeof x === 'object' && x !== null && 'status' in x && typeof (x as Answer).status === 'number' && !Array.isArray(x);
    let limit = 25;
    const rawLimit = url.searchParams.get('limit');
    if (rawLimit !== null) {
      if (!/^-?\d+$/.test(rawLimit)) return bad('invalid_request', `Error in query parameters: limit must be an integer, not ${JSON.stringify(rawLimit)}`);
      limit = Number(rawLimit);
      if (limit > 25) return bad('invalid_request', 'Error in query parameters: limit must be at most 25');
      if (limit <= 0) limit = 5;
    }
    const filters = json<Record<string, Json>>('select_filters', {});
    if (isAnswer(filters)) return filters;
    if (typeof filters !== 'object' || filters === null || Array.isArray(filters)) return bad('invalid_request', 'Error in query parameters: select_filters must be a JSON object');
    for (const [col, cond] of Object.entries(filters)) {
      if (!FILTERABLE.has(col)) return bad('invalid_request', `Error in query parameters: ${col} is not a valid search key`);
      if (typeof cond !== 'object' || cond === null || Object.keys(cond).some((op) => !OPS.includes(op))) return bad('invalid_request', `Error in query parameters: bad operator for ${col}`);
    }
    const order = json<{ col?: unknown; dir?: unknown }[]>('order_by', [{ col: 'id', dir: 'asc' }]);
    if (isAnswer(order)) return order;
    if (!Array.isArray(order)) return bad('invalid_request', 'Error in query parameters: order_by must be a JSON array');
    const cols = json<string[]>('select_cols', ['*']);
    if (isAnswer(cols)) return cols;
    if (!Array.isArray(cols) || cols.some((c) => typeof c !== 'string')) return bad('invalid_request', 'Error in query parameters: select_cols must be a JSON array of names');

    let rows = this.live().map((i) => this.view(i)!);
    for (const o of order) if (typeof o?.col !== 'string' || !ORDERABLE.has(o.col)) return bad('invalid_request', `Error in query parameters: ${String(o?.col)} is not a valid order column`);
    rows = rows.filter((r) => Object.entries(filters).every(([c, cond]) => matches(r[c], cond)));
    const total = rows.length;
    const keys = [...order.map((o) => ({ col: o.col as string, desc: o.dir === 'desc' })), { col: 'id', desc: false }];
    rows.sort((a, b) => {
      for (const k of keys) {
        const x = a[k.col] as number | string;
        const y = b[k.col] as number | string;
        if (x !== y) return (x < y ? -1 : 1) * (k.desc ? -1 : 1);
      }
      return 0;
    });
    const after = url.searchParams.get('after_token');
    if (after !== null) {
      const id = untoken(after);
      const at = id === undefined ? -1 : rows.findIndex((r) => r.id === id);
      if (at < 0) return bad('invalid_token', 'Invalid after_token');
      rows = rows.slice(at + 1);
    }
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    const labelCounts: Record<string, number> = {};
    for (const r of this.live().map((i) => this.view(i)!)) labelCounts[String(r.label ?? '')] = (labelCounts[String(r.label ?? '')] ?? 0) + 1;
    const project = (r: Json): Json => (cols.includes('*') ? r : Object.fromEntries(cols.map((c) => [c, c in r ? r[c] : null])));
    return {
      status: 200,
      body: { success: true, instances_found: page.length, total_instances: total, label_counts: labelCounts, next_token: more ? token(page[page.length - 1]!.id as number) : null, instances: page.map(project) },
    };
  }
}
