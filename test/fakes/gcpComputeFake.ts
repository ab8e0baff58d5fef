/**
 * A strict fake of Google Compute Engine's `compute/v1` REST API (no emulator exists), for the
 * contract suite, the crash tests and the real `gcloud` as referee (test/integration/gcloud-referee.test.ts).
 *
 * Served under `/compute/v1/` (`url` includes it). What it models, as the real API does:
 * - `Authorization: Bearer <token>`; anything else → 401 in Google's error shape
 *   `{error: {code, message, errors: [{message, domain, reason}], status}}`;
 * - the project and zones it knows (others → 404 notFound);
 * - instances: insert (validated against the compute/v1 Instance schema in test/fixtures/gcp —
 *   unknown fields, wrong types and enum values refused — plus the rules the schema states in
 *   prose: the name pattern, label key/value rules, an existing machine type in the zone, GPUs
 *   only with `onHostMaintenance=TERMINATE`, Spot without automatic restart), get, list,
 *   aggregatedList, stop, start, delete; statuses over time PROVISIONING → STAGING → RUNNING,
 *   STOPPING → TERMINATED, delete: STOPPING → gone (404);
 * - zonal Operations with `selfLink`, PENDING → RUNNING → DONE over time, `operations.get`,
 *   `operations.wait`, `operations.list` (filter on operationType / targetId), errors inside a DONE
 *   operation (`failNextInsert`), `compute.instances.preempted` operations ({@link preempt});
 * - `requestId`: a UUID (the zero UUID refused); a repeated request id answers the first request's
 *   operation and does nothing again;
 * - lists paged with `maxResults` (0..500, default 500) and `nextPageToken`; `filter` on
 *   `labels.KEY`, `name`, `status`, `zone` with `=` / `!=` (and `eq` / `ne`), several
 *   parenthesised expressions joined by AND;
 * - machineTypes (with `accelerators` for the GPU families), zones, images (the Debian family
 *   gcloud uses by default), 409 alreadyExists, 429 rateLimitExceeded.
 */
import { randomUUID } from 'node:crypto';
import { FakeProviderServer, type Answer, type FakeOptions, type GateRequest } from './fakeBase';
import { checkInstanceBody } from './gcpComputeSpec';

const NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY_RE = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE_RE = /^[a-z0-9_-]{0,63}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Query parameters every Google API method takes. */
const STANDARD_PARAMS = new Set(['alt', 'fields', 'key', 'oauth_token', 'prettyPrint', 'quotaUser', 'userIp', '$.xgafv', 'callback', 'upload_protocol', 'uploadType', 'access_token']);
const LIST_PARAMS = new Set(['filter', 'maxResults', 'orderBy', 'pageToken', 'returnPartialSuccess']);
/** aggregatedList takes two more (compute/v1 discovery: instances.aggregatedList). */
const AGG_PARAMS = new Set([...LIST_PARAMS, 'includeAllScopes', 'serviceProjectNumber']);

export interface GceMachineTypeDef {
  guestCpus: number;
  memoryMb: number;
  accelerators?: { guestAcceleratorType: string; guestAcceleratorCount: number }[];
}

export const FAKE_MACHINE_TYPES: Record<string, GceMachineTypeDef> = {
  'e2-medium': { guestCpus: 2, memoryMb: 4096 },
  'n1-standard-1': { guestCpus: 1, memoryMb: 3840 },
  'n1-standard-4': { guestCpus: 4, memoryMb: 15360 },
  'n1-standard-8': { guestCpus: 8, memoryMb: 30720 },
  'g2-standard-4': { guestCpus: 4, memoryMb: 16384, accelerators: [{ guestAcceleratorType: 'nvidia-l4', guestAcceleratorCount: 1 }] },
  'g2-standard-8': { guestCpus: 8, memoryMb: 32768, accelerators: [{ guestAcceleratorType: 'nvidia-l4', guestAcceleratorCount: 1 }] },
  'a2-highgpu-1g': { guestCpus: 12, memoryMb: 87040, accelerators: [{ guestAcceleratorType: 'nvidia-tesla-a100', guestAcceleratorCount: 1 }] },
  'a2-highgpu-2g': { guestCpus: 24, memoryMb: 174080, accelerators: [{ guestAcceleratorType: 'nvidia-tesla-a100', guestAcceleratorCount: 2 }] },
  'a3-highgpu-8g': { guestCpus: 208, memoryMb: 1916928, accelerators: [{ guestAcceleratorType: 'nvidia-h100-80gb', guestAcceleratorCount: 8 }] },
};
const ACCELERATOR_TYPES = new Set(['nvidia-tesla-t4', 'nvidia-tesla-v100', 'nvidia-l4', 'nvidia-tesla-a100', 'nvidia-h100-80gb']);

interface FakeInst {
  id: string;
  name: string;
  zone: string;
  machineType: string;
  labels: Record<string, string>;
  body: Record<string, unknown>;
  createdAt: number;
  /** Last start (creation or start). */
  startedAt: number;
  stoppedAt?: number;
  deletedAt?: number;
  preemptedAt?: number;
  natIP: string;
  networkIP: string;
}

interface FakeOp {
  id: string;
  name: string;
  zone: string;
  operationType: string;
  targetName: string;
  targetId: string;
  createdAt: number;
  /** DONE after this long, ms. */
  doneMs: number;
  error?: { errors: { code: string; message: string }[] };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
  user: string;
}

export interface GcpFakeOptions extends FakeOptions {
  project?: string;
  zones?: string[];
  /** insert/stop/start/delete operations are DONE after this long, ms (default 120). */
  opMs?: number;
  /** A page holds at most this many items whatever maxResults asks (the API may return fewer; clients must follow nextPageToken). Default 500. */
  pageCap?: number;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '-00:00');

export function googleError(code: number, reason: string, message: string, extra: { status?: string; domain?: string; location?: string; locationType?: string } = {}): Answer {
  return {
    status: code,
    body: {
      error: {
        code,
        message,
        errors: [{ message, domain: extra.domain ?? 'global', reason, ...(extra.location ? { location: extra.location, locationType: extra.locationType ?? 'parameter' } : {}) }],
        ...(extra.status ? { status: extra.status } : {}),
      },
    },
  };
}

const invalid = (message: string) => googleError(400, 'invalid', message);
const notFound = (resource: string) => googleError(404, 'notFound', `The resource '${resource}' was not found`);

/** One comparison of a Compute Engine list filter. */
interface Cond {
  field: string;
  /** `=` / `!=` compare literally; `eq` / `ne` match an RE2 regular expression (compute/v1 `filter` docs). */
  op: '=' | '!=' | 'eq' | 'ne';
  value: string;
}

/** Parses `(a = "x") AND (b != y)`, `labels.k = v`, `a eq x`; undefined when it cannot. */
export function parseFilter(filter: string): Cond[] | undefined {
  const f = filter.trim();
  if (!f) return [];
  const parts = f.startsWith('(') ? f.split(/\)\s*(?:AND\s*)?\(/).map((p) => p.replace(/^\(|\)$/g, '')) : [f];
  const out: Cond[] = [];
  for (const p of parts) {
    const m = /^\s*([a-zA-Z][\w.-]*)\s*(=|!=|\beq\b|\bne\b)\s*(?:"([^"]*)"|'([^']*)'|(\S+))\s*$/.exec(p);
    if (!m) return undefined;
    out.push({ field: m[1]!, op: m[2] as Cond['op'], value: m[3] ?? m[4] ?? m[5] ?? '' });
  }
  return out;
}

export class FakeGcpComputeServer extends FakeProviderServer {
  readonly project: string;
  readonly zones: string[];
  readonly opMs: number;
  readonly pageCap: number;
  readonly instances = new Map<string, FakeInst>();
  readonly operations = new Map<string, FakeOp>();
  private readonly byRequestId = new Map<string, FakeOp>();
  private created = 0;
  private idSeq = 4_000_000_000_000_000_000n;
  /** The next insert's operation ends DONE with this error (and no instance). */
  failNextInsert: { code: string; message: string; httpStatus?: number } | undefined;
  /** Zones the aggregated list cannot reach (listed in `unreachables`, their instances left out). */
  unreachableZones: string[] = [];
  /** Why requests were refused as invalid (for the spec tests). */
  readonly refusals: string[] = [];

  constructor(o: GcpFakeOptions = {}) {
    super({ apiKey: 'ya29.fake-token-0123456789', bootMs: 1500, terminateMs: 300, ...o });
    this.project = o.project ?? 'tether-test';
    this.zones = o.zones ?? ['us-central1-a', 'us-central1-b', 'europe-west4-a'];
    this.opMs = o.opMs ?? 120;
    this.pageCap = o.pageCap ?? 500;
  }

  override async start(): Promise<string> {
    await super.start();
    this.url = `${this.url}/compute/v1`;
    return this.url;
  }

  /** The origin without `/compute/v1`. */
  get origin(): string {
    return this.url.replace(/\/compute\/v1$/, '');
  }

  private link(path: string): string {
    return `${this.url}/${path}`;
  }

  instanceCount(): number {
    return this.created;
  }

  private nextNumericId(): string {
    this.idSeq += BigInt(1 + Math.floor(Math.random() * 1000));
    return this.idSeq.toString();
  }

  addForeign(name: string, zone = this.zones[0]!): string {
    const now = Date.now() - 60_000;
    this.created++;
    this.instances.set(`${zone}/${name}`, {
      id: this.nextNumericId(),
      name,
      zone,
      machineType: 'g2-standard-4',
      labels: {},
      body: { scheduling: { onHostMaintenance: 'TERMINATE', automaticRestart: true } },
      createdAt: now,
      startedAt: now,
      natIP: `34.0.0.${(this.created % 250) + 1}`,
      networkIP: `10.128.0.${(this.created % 250) + 1}`,
    });
    return name;
  }

  /** Compute Engine preempts a Spot VM: it is stopped (TERMINATED) and a `compute.instances.preempted` operation is recorded. */
  preempt(name: string, zone = this.zones[0]!): void {
    const i = this.instances.get(`${zone}/${name}`);
    if (!i) throw new Error(`no instance ${zone}/${name}`);
    const now = Date.now();
    i.preemptedAt = now;
    i.stoppedAt = now - this.terminateMs; // already TERMINATED
    this.newOp(zone, 'compute.instances.preempted', i, 0, 'system');
  }

  protected authorized(a: string | undefined): boolean {
    return a === `Bearer ${this.apiKey}`;
  }
  protected authError(): Answer {
    return googleError(
      401,
      'authError',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      { status: 'UNAUTHENTICATED', location: 'Authorization', locationType: 'header' },
    );
  }
  protected rateLimited(retryAfterSec?: number): Answer {
    const a = googleError(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { domain: 'usageLimits', status: 'RESOURCE_EXHAUSTED' });
    return retryAfterSec !== undefined ? { ...a, headers: { 'Retry-After': String(retryAfterSec) } } : a;
  }
  protected serverError(): Answer {
    return googleError(500, 'backendError', 'Internal error. Please try again or contact Google Support.', { status: 'INTERNAL' });
  }
  protected override invalidJson(): Answer {
    return googleError(400, 'parseError', 'Parse Error', { status: 'INVALID_ARGUMENT' });
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'POST' && /^\/compute\/v1\/projects\/[^/]+\/zones\/[^/]+\/instances$/.test(path);
  }

  /** Unknown query parameters are refused, as Google's front end does. */
  protected override gate(r: GateRequest): Answer | undefined {
    if (!r.path.startsWith('/compute/v1/')) return googleError(404, 'notFound', `Not Found: ${r.path}`);
    return undefined;
  }

  // ------------------------------------------------------------ state over time

  statusOf(i: FakeInst, now = Date.now()): string | undefined {
    if (i.deletedAt !== undefined) return now - i.deletedAt < this.terminateMs ? 'STOPPING' : undefined;
    if (i.stoppedAt !== undefined && i.stoppedAt >= i.startedAt) return now - i.stoppedAt < this.terminateMs ? 'STOPPING' : 'TERMINATED';
    const t = now - i.startedAt;
    if (t < this.bootMs / 3) return 'PROVISIONING';
    if (t < this.bootMs) return 'STAGING';
    return 'RUNNING';
  }

  private opStatus(op: FakeOp, now = Date.now()): 'PENDING' | 'RUNNING' | 'DONE' {
    const t = now - op.createdAt;
    if (t >= op.doneMs) return 'DONE';
    return t < op.doneMs / 3 ? 'PENDING' : 'RUNNING';
  }

  private newOp(zone: string, operationType: string, target: { name: string; id: string }, doneMs = this.opMs, user = 'tester@tether-test.iam.gserviceaccount.com'): FakeOp {
    const op: FakeOp = {
      id: this.nextNumericId(),
      name: `operation-${Date.now()}-${randomUUID().slice(0, 13).replace(/-/g, '')}-${randomUUID().slice(0, 8)}`,
      zone,
      operationType,
      targetName: target.name,
      targetId: target.id,
      createdAt: Date.now(),
      doneMs,
      user,
    };
    this.operations.set(`${zone}/${op.name}`, op);
    return op;
  }

  private opJson(op: FakeOp): Record<string, unknown> {
    const status = this.opStatus(op);
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      zone: this.link(`projects/${this.project}/zones/${op.zone}`),
      operationType: op.operationType,
      targetLink: this.link(`projects/${this.project}/zones/${op.zone}/instances/${op.targetName}`),
      targetId: op.targetId,
      status,
      user: op.user,
      progress: status === 'DONE' ? 100 : 0,
      insertTime: iso(op.createdAt),
      ...(status !== 'PENDING' ? { startTime: iso(op.createdAt + 1) } : {}),
      ...(status === 'DONE' ? { endTime: iso(op.createdAt + op.doneMs) } : {}),
      ...(status === 'DONE' && op.error ? { error: op.error, httpErrorStatusCode: op.httpErrorStatusCode ?? 400, httpErrorMessage: op.httpErrorMessage ?? 'BAD REQUEST' } : {}),
      selfLink: this.link(`projects/${this.project}/zones/${op.zone}/operations/${op.name}`),
    };
  }

  private instJson(i: FakeInst): Record<string, unknown> | undefined {
    const status = this.statusOf(i);
    if (!status) return undefined;
    const b = i.body;
    const zoneLink = this.link(`projects/${this.project}/zones/${i.zone}`);
    const scheduling = { onHostMaintenance: 'MIGRATE', automaticRestart: true, preemptible: false, provisioningModel: 'STANDARD', ...((b.scheduling as Record<string, unknown>) ?? {}) };
    if (scheduling.provisioningModel === 'SPOT') scheduling.preemptible = true;
    const fp = Buffer.from(JSON.stringify(i.labels)).toString('base64').slice(0, 12);
    return {
      kind: 'compute#instance',
      id: i.id,
      creationTimestamp: iso(i.createdAt),
      name: i.name,
      ...(b.description ? { description: b.description } : {}),
      tags: { fingerprint: '42WmSpB8rSM=' },
      machineType: `${zoneLink}/machineTypes/${i.machineType}`,
      status,
      zone: zoneLink,
      canIpForward: false,
      networkInterfaces: [
        {
          kind: 'compute#networkInterface',
          network: this.link(`projects/${this.project}/global/networks/default`),
          subnetwork: this.link(`projects/${this.project}/regions/${i.zone.replace(/-[a-z]$/, '')}/subnetworks/default`),
          networkIP: i.networkIP,
          name: 'nic0',
          accessConfigs: [{ kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: 'External NAT', ...(status === 'RUNNING' ? { natIP: i.natIP } : {}), networkTier: 'PREMIUM' }],
          fingerprint: 'Uc5eHJcA7iY=',
          stackType: 'IPV4_ONLY',
        },
      ],
      disks: [
        {
          kind: 'compute#attachedDisk',
          type: 'PERSISTENT',
          mode: 'READ_WRITE',
          source: `${zoneLink}/disks/${i.name}`,
          deviceName: i.name,
          index: 0,
          boot: true,
          autoDelete: true,
          interface: 'SCSI',
          diskSizeGb: String(((b.disks as { initializeParams?: { diskSizeGb?: string } }[] | undefined)?.[0]?.initializeParams?.diskSizeGb) ?? 10),
        },
      ],
      ...(b.guestAccelerators ? { guestAccelerators: (b.guestAccelerators as { acceleratorType: string; acceleratorCount: number }[]).map((a) => ({ acceleratorType: `${zoneLink}/acceleratorTypes/${a.acceleratorType.split('/').pop()}`, acceleratorCount: a.acceleratorCount })) } : {}),
      metadata: { kind: 'compute#metadata', fingerprint: 'kVSBhR2Uk2g=', ...((b.metadata as Record<string, unknown>) ?? {}) },
      selfLink: `${zoneLink}/instances/${i.name}`,
      scheduling,
      cpuPlatform: 'Intel Cascade Lake',
      labels: i.labels,
      labelFingerprint: fp,
      startRestricted: false,
      deletionProtection: false,
      fingerprint: 'qVvWn1fbwVE=',
      lastStartTimestamp: iso(i.startedAt),
      ...(i.stoppedAt !== undefined ? { lastStopTimestamp: iso(i.stoppedAt) } : {}),
    };
  }

  // ------------------------------------------------------------ routing

  protected route(method: string, path: string, url: URL, body: unknown): Answer {
    const m = /^\/compute\/v1\/projects\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) return googleError(404, 'notFound', `Not Found: ${path}`);
    const project = decodeURIComponent(m[1]!);
    const rest = m[2] ?? '';
    // Public image projects gcloud reads.
    if (project === 'debian-cloud') return this.images(method, rest);
    if (project !== this.project) return notFound(`projects/${project}`);
    let r: RegExpExecArray | null;
    if ((r = /^\/aggregated\/instances$/.exec(rest)) && method === 'GET') return this.query(url, AGG_PARAMS) ?? this.aggregated(url);
    if ((r = /^\/zones$/.exec(rest)) && method === 'GET') return this.query(url, LIST_PARAMS) ?? this.page(url, this.zones.map((z) => this.zoneJson(z)), 'compute#zoneList', `projects/${this.project}/zones`);
    if ((r = /^\/zones\/([^/]+)(\/.*)?$/.exec(rest))) {
      const zone = r[1]!;
      if (!this.zones.includes(zone)) return notFound(`projects/${this.project}/zones/${zone}`);
      return this.zonal(method, zone, r[2] ?? '', url, body);
    }
    if (/^\/global\/networks\/default$/.test(rest) && method === 'GET') return { status: 200, body: { kind: 'compute#network', name: 'default', selfLink: this.link(`projects/${this.project}/global/networks/default`) } };
    if (rest === '' && method === 'GET') return { status: 200, body: { kind: 'compute#project', name: this.project, id: '123456789012', selfLink: this.link(`projects/${this.project}`), commonInstanceMetadata: { kind: 'compute#metadata', items: [] } } };
    return googleError(404, 'notFound', `Not Found: ${method} ${path}`);
  }

  private images(method: string, rest: string): Answer {
    if (method !== 'GET') return googleError(403, 'forbidden', 'Required permission is missing');
    const m = /^\/global\/images\/family\/([^/]+)$/.exec(rest) ?? /^\/global\/images\/([^/]+)$/.exec(rest);
    if (!m || !/^debian-1[12]/.test(m[1]!)) return notFound(`projects/debian-cloud/global/images/${m?.[1] ?? rest}`);
    const name = m[1]!.startsWith('debian-12') ? 'debian-12-bookworm-v20261118' : 'debian-11-bullseye-v20261118';
    return { status: 200, body: { kind: 'compute#image', id: '7654321098765432109', name, family: name.slice(0, 9), status: 'READY', diskSizeGb: '10', architecture: 'X86_64', selfLink: this.link(`projects/debian-cloud/global/images/${name}`) } };
  }

  private zoneJson(z: string): Record<string, unknown> {
    return { kind: 'compute#zone', id: String(2000 + this.zones.indexOf(z)), name: z, status: 'UP', region: this.link(`projects/${this.project}/regions/${z.replace(/-[a-z]$/, '')}`), selfLink: this.link(`projects/${this.project}/zones/${z}`) };
  }

  /** Refuses query parameters the method does not take. */
  private query(url: URL, allowed: Set<string>): Answer | undefined {
    for (const k of url.searchParams.keys()) {
      if (!STANDARD_PARAMS.has(k) && !allowed.has(k)) {
        this.refusals.push(`unknown parameter ${k}`);
        return googleError(400, 'badRequest', `Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter. Field '${k}' could not be found in request message.`, { status: 'INVALID_ARGUMENT' });
      }
    }
    if (allowed.has('requestId')) {
      const rid = url.searchParams.get('requestId');
      if (rid !== null && (!UUID_RE.test(rid) || /^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(rid))) {
        this.refusals.push(`bad requestId ${rid}`);
        return invalid(`Invalid value for field 'requestId': '${rid}'. The request id must be a valid UUID with the exception that zero UUID is not supported (00000000-0000-0000-0000-000000000000).`);
      }
    }
    return undefined;
  }

  /** Pages a list: `maxResults` 0..500 (default 500), `pageToken` from the previous page. */
  private page(url: URL, items: unknown[], kind: string, selfPath: string): Answer {
    const mr = url.searchParams.get('maxResults');
    const max = mr === null ? 500 : Number(mr);
    if (!Number.isInteger(max) || max < 0 || max > 500) return invalid(`Invalid value for field 'maxResults': '${mr}'. Must be less than or equal to 500`);
    const size = Math.min(max === 0 ? 500 : max, this.pageCap);
    let start = 0;
    const tok = url.searchParams.get('pageToken');
    if (tok) {
      const n = Number(Buffer.from(tok, 'base64url').toString('utf8').replace(/^offset:/, ''));
      if (!Number.isInteger(n) || n < 0 || !Buffer.from(tok, 'base64url').toString('utf8').startsWith('offset:')) return invalid(`Invalid value for field 'pageToken': '${tok}'. Invalid page token.`);
      start = n;
    }
    const slice = items.slice(start, start + size);
    const next = start + size < items.length ? Buffer.from(`offset:${start + size}`).toString('base64url') : undefined;
    return { status: 200, body: { kind, id: selfPath, items: slice, ...(next ? { nextPageToken: next } : {}), selfLink: this.link(selfPath) } };
  }

  private filtered(url: URL, list: Record<string, unknown>[]): Record<string, unknown>[] | Answer {
    const f = url.searchParams.get('filter');
    if (!f) return list;
    const conds = parseFilter(f);
    if (!conds) {
      this.refusals.push(`bad filter ${f}`);
      return invalid(`Invalid value for field 'filter': '${f}'. Invalid list filter expression.`);
    }
    const value = (o: Record<string, unknown>, field: string): string | undefined => {
      if (field.startsWith('labels.')) return (o.labels as Record<string, string> | undefined)?.[field.slice(7)];
      const v = o[field];
      if (v === undefined) return undefined;
      return typeof v === 'string' && (field === 'zone' || field === 'machineType') ? v.split('/').pop() : String(v);
    };
    return list.filter((o) =>
      conds.every((c) => {
        const v = value(o, c.field);
        let hit: boolean;
        if (c.op === 'eq' || c.op === 'ne') {
          try {
            hit = v !== undefined && new RegExp(`^(?:${c.value})$`).test(v);
          } catch {
            hit = false;
          }
        } else hit = v === c.value;
        return c.op === '=' || c.op === 'eq' ? hit : !hit;
      }),
    );
  }

  private aggregated(url: URL): Answer {
    const all: { zone: string; inst: Record<string, unknown> }[] = [];
    for (const z of this.zones.filter((x) => !this.unreachableZones.includes(x))) for (const i of this.instances.values()) if (i.zone === z) {
      const j = this.instJson(i);
      if (j) all.push({ zone: z, inst: j });
    }
    const kept = this.filtered(url, all.map((x) => x.inst));
    if (!Array.isArray(kept)) return kept;
    const keep = new Set(kept);
    const flat = all.filter((x) => keep.has(x.inst));
    const paged = this.page(url, flat, 'compute#instanceAggregatedList', `projects/${this.project}/aggregated/instances`);
    if (paged.status !== 200) return paged;
    const pb = paged.body as { items: typeof flat; nextPageToken?: string };
    const items: Record<string, unknown> = {};
    for (const z of this.zones) {
      const here = pb.items.filter((x) => x.zone === z).map((x) => x.inst);
      items[`zones/${z}`] = here.length
        ? { instances: here }
        : { warning: { code: 'NO_RESULTS_ON_PAGE', message: 'There are no results for scope \'zones/' + z + '\' on this page.', data: [{ key: 'scope', value: `zones/${z}` }] } };
    }
    for (const z of this.unreachableZones) delete items[`zones/${z}`];
    const unreachables = this.unreachableZones.map((z) => `zones/${z}`);
    return { status: 200, body: { kind: 'compute#instanceAggregatedList', id: `projects/${this.project}/aggregated/instances`, items, ...(pb.nextPageToken ? { nextPageToken: pb.nextPageToken } : {}), ...(unreachables.length ? { unreachables } : {}), selfLink: this.link(`projects/${this.project}/aggregated/instances`) } };
  }

  private zonal(method: string, zone: string, rest: string, url: URL, body: unknown): Answer {
    let r: RegExpExecArray | null;
    if (rest === '' && method === 'GET') return { status: 200, body: this.zoneJson(zone) };
    if (rest === '/machineTypes' && method === 'GET') {
      const bad = this.query(url, LIST_PARAMS);
      if (bad) return bad;
      const items = Object.entries(FAKE_MACHINE_TYPES).map(([name, d]) => this.machineTypeJson(zone, name, d));
      const kept = this.filtered(url, items);
      return Array.isArray(kept) ? this.page(url, kept, 'compute#machineTypeList', `projects/${this.project}/zones/${zone}/machineTypes`) : kept;
    }
    if ((r = /^\/machineTypes\/([^/]+)$/.exec(rest)) && method === 'GET') {
      const d = FAKE_MACHINE_TYPES[r[1]!];
      return d ? { status: 200, body: this.machineTypeJson(zone, r[1]!, d) } : notFound(`projects/${this.project}/zones/${zone}/machineTypes/${r[1]}`);
    }
    if (rest === '/operations' && method === 'GET') {
      const bad = this.query(url, LIST_PARAMS);
      if (bad) return bad;
      const items = [...this.operations.values()].filter((o) => o.zone === zone).map((o) => this.opJson(o));
      const kept = this.filtered(url, items);
      return Array.isArray(kept) ? this.page(url, kept, 'compute#operationList', `projects/${this.project}/zones/${zone}/operations`) : kept;
    }
    if ((r = /^\/operations\/([^/]+)(\/wait)?$/.exec(rest)) && (method === 'GET' || (method === 'POST' && r[2]))) {
      const op = this.operations.get(`${zone}/${r[1]}`);
      if (!op) return notFound(`projects/${this.project}/zones/${zone}/operations/${r[1]}`);
      return { status: 200, body: this.opJson(op) };
    }
    if (rest === '/instances' && method === 'GET') {
      const bad = this.query(url, LIST_PARAMS);
      if (bad) return bad;
      const items = [...this.instances.values()].filter((i) => i.zone === zone).map((i) => this.instJson(i)).filter((x): x is Record<string, unknown> => !!x);
      const kept = this.filtered(url, items);
      return Array.isArray(kept) ? this.page(url, kept, 'compute#instanceList', `projects/${this.project}/zones/${zone}/instances`) : kept;
    }
    if (rest === '/instances' && method === 'POST') return this.query(url, new Set(['requestId', 'sourceInstanceTemplate', 'sourceMachineImage'])) ?? this.insert(zone, url, body);
    if ((r = /^\/instances\/([^/]+)$/.exec(rest))) {
      const i = this.instances.get(`${zone}/${r[1]}`);
      const live = i && this.statusOf(i) !== undefined ? i : undefined;
      if (method === 'GET') return live ? { status: 200, body: this.instJson(live) } : notFound(`projects/${this.project}/zones/${zone}/instances/${r[1]}`);
      if (method === 'DELETE') return this.query(url, new Set(['requestId'])) ?? this.action(zone, r[1]!, 'delete', url);
    }
    if ((r = /^\/instances\/([^/]+)\/(stop|start)$/.exec(rest)) && method === 'POST') return this.query(url, new Set(['requestId', 'discardLocalSsd', 'noGracefulShutdown'])) ?? this.action(zone, r[1]!, r[2] as 'stop' | 'start', url);
    return googleError(404, 'notFound', `Not Found: ${method} ${rest}`);
  }

  private machineTypeJson(zone: string, name: string, d: GceMachineTypeDef): Record<string, unknown> {
    return {
      kind: 'compute#machineType',
      id: String(1000 + Object.keys(FAKE_MACHINE_TYPES).indexOf(name)),
      name,
      description: `${d.guestCpus} vCPUs, ${d.memoryMb / 1024} GB RAM`,
      guestCpus: d.guestCpus,
      memoryMb: d.memoryMb,
      zone,
      ...(d.accelerators ? { accelerators: d.accelerators } : {}),
      isSharedCpu: false,
      selfLink: this.link(`projects/${this.project}/zones/${zone}/machineTypes/${name}`),
    };
  }

  /** A repeated requestId: the first request's operation. */
  private replay(url: URL): Answer | undefined {
    const rid = url.searchParams.get('requestId');
    const op = rid ? this.byRequestId.get(rid) : undefined;
    return op ? { status: 200, body: this.opJson(op) } : undefined;
  }

  private remember(url: URL, op: FakeOp): void {
    const rid = url.searchParams.get('requestId');
    if (rid) this.byRequestId.set(rid, op);
  }

  private insert(zone: string, url: URL, body: unknown): Answer {
    const replay = this.replay(url);
    if (replay) return replay;
    const problems = checkInstanceBody(body);
    if (problems.length) {
      this.refusals.push(...problems);
      return googleError(400, 'invalid', `Invalid value for field 'resource': ${problems.join('; ')}`, { status: 'INVALID_ARGUMENT' });
    }
    const b = body as Record<string, unknown> & { name: string; machineType: string; labels?: Record<string, string>; scheduling?: Record<string, unknown>; guestAccelerators?: { acceleratorType?: string; acceleratorCount?: number | string }[]; disks?: { boot?: boolean; initializeParams?: { sourceImage?: string } }[] };
    const bad = (msg: string) => {
      this.refusals.push(msg);
      return invalid(msg);
    };
    if (!NAME_RE.test(b.name)) return bad(`Invalid value for field 'resource.name': '${b.name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`);
    const labels = b.labels ?? {};
    if (Object.keys(labels).length > 64) return bad(`Invalid value for field 'resource.labels': too many labels (at most 64).`);
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL_KEY_RE.test(k)) return bad(`Invalid value for field 'resource.labels': ''. Label key '${k}' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long. International characters are allowed.`);
      if (!LABEL_VALUE_RE.test(v)) return bad(`Invalid value for field 'resource.labels': ''. Label value '${v}' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.`);
    }
    const mt = /^(?:.*\/)?zones\/([^/]+)\/machineTypes\/([^/]+)$/.exec(b.machineType) ?? /^()([^/]+)$/.exec(b.machineType);
    if (!mt || (mt[1] && mt[1] !== zone)) return bad(`Invalid value for field 'resource.machineType': '${b.machineType}'. Machine type must be in zone '${zone}'.`);
    const def = FAKE_MACHINE_TYPES[mt[2]!];
    if (!def) return bad(`Invalid value for field 'resource.machineType': '${b.machineType}'. Machine type with name '${mt[2]}' does not exist in zone '${zone}'.`);
    const boot = b.disks?.find((d) => d.boot) ?? b.disks?.[0];
    if (!boot) return bad(`Invalid value for field 'resource.disks': ''. At least one disk must be specified, and it must be a boot disk.`);
    const img = boot.initializeParams?.sourceImage;
    // Forms the API takes: an image, an image family, or gcloud's zonal image-family view; partial or full URL.
    if (img !== undefined && !/(^|\/)projects\/debian-cloud\/(global\/images\/(family\/debian-1[12]|debian-1[12]-[a-z0-9-]+)|zones\/[-a-z0-9]+\/imageFamilyViews\/debian-1[12])$/.test(img)) {
      return bad(`Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '${img}'. The referenced image resource cannot be found.`);
    }
    for (const a of b.guestAccelerators ?? []) {
      const t = (a.acceleratorType ?? '').split('/').pop() ?? '';
      if (!ACCELERATOR_TYPES.has(t)) return bad(`Invalid value for field 'resource.guestAccelerators[0].acceleratorType': '${a.acceleratorType}'. Accelerator type '${t}' does not exist in zone '${zone}'.`);
    }
    const hasGpu = !!def.accelerators?.length || !!b.guestAccelerators?.length;
    const sched = b.scheduling ?? {};
    if (hasGpu && sched.onHostMaintenance !== 'TERMINATE') return bad(`Invalid value for field 'resource.scheduling.onHostMaintenance': '${String(sched.onHostMaintenance ?? 'MIGRATE')}'. Instances with guest accelerators do not support live migration.`);
    if (sched.provisioningModel === 'SPOT' && sched.automaticRestart === true) return bad(`Invalid value for field 'resource.scheduling.automaticRestart': 'true'. Spot VMs cannot be automatically restarted.`);
    const key = `${zone}/${b.name}`;
    const existing = this.instances.get(key);
    if (existing && this.statusOf(existing) !== undefined) return googleError(409, 'alreadyExists', `The resource 'projects/${this.project}/zones/${zone}/instances/${b.name}' already exists`);
    const id = this.nextNumericId();
    if (this.failNextInsert) {
      const f = this.failNextInsert;
      this.failNextInsert = undefined;
      const op = this.newOp(zone, 'insert', { name: b.name, id });
      op.error = { errors: [{ code: f.code, message: f.message }] };
      op.httpErrorStatusCode = f.httpStatus ?? 503;
      op.httpErrorMessage = f.httpStatus === 403 ? 'FORBIDDEN' : 'SERVICE UNAVAILABLE';
      this.remember(url, op);
      return { status: 200, body: this.opJson(op) };
    }
    const now = Date.now();
    this.created++;
    this.instances.set(key, { id, name: b.name, zone, machineType: mt[2]!, labels: { ...labels }, body: b, createdAt: now, startedAt: now, natIP: `34.1.${Math.floor(this.created / 250)}.${(this.created % 250) + 1}`, networkIP: `10.128.0.${(this.created % 250) + 2}` });
    const op = this.newOp(zone, 'insert', { name: b.name, id });
    this.remember(url, op);
    return { status: 200, body: this.opJson(op) };
  }

  private action(zone: string, name: string, action: 'stop' | 'start' | 'delete', url: URL): Answer {
    const replay = this.replay(url);
    if (replay) return replay;
    const i = this.instances.get(`${zone}/${name}`);
    const status = i ? this.statusOf(i) : undefined;
    if (!i || status === undefined || i.deletedAt !== undefined) return notFound(`projects/${this.project}/zones/${zone}/instances/${name}`);
    const now = Date.now();
    if (action === 'delete') i.deletedAt = now;
    else if (action === 'stop') {
      if (status !== 'TERMINATED' && status !== 'STOPPING') i.stoppedAt = now;
    } else if (status === 'TERMINATED') {
      i.startedAt = now;
      i.stoppedAt = undefined;
      i.preemptedAt = undefined;
    } else if (status === 'STOPPING') {
      return googleError(400, 'resourceNotReady', `The resource 'projects/${this.project}/zones/${zone}/instances/${name}' is not ready`);
    }
    const op = this.newOp(zone, action, i);
    this.remember(url, op);
    return { status: 200, body: this.opJson(op) };
  }
}
