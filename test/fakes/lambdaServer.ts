/**
 * Fake Lambda Cloud API server (the real API cannot be called from tests), at least as strict as
 * the published spec, Lambda Cloud API 1.8.3 (test/fixtures/lambda/openapi-1.8.3-excerpt.json,
 * from alexandervaneck/lambda-ai-cloud-api-client @ b6023bc07c0933df459426b281c113844f2571f5,
 * openapi-1.8.3.json):
 *
 * - served under `/api/v1` (its `url` includes it); Bearer, or Basic with the key (base64
 *   `key:`, or the key itself) as the spec's securitySchemes say;
 * - request bodies validated against the spec's own schemas (InstanceLaunchRequest,
 *   InstanceTerminateRequest, AddSSHKeyRequest: required fields, types, enums such as
 *   PublicRegionCode, lengths, patterns), plus what the spec says in prose: exactly one SSH key
 *   per launch (1.5.1 had minItems 1, maxItems 1), and `quantity`, absent from the 1.8.3 schema,
 *   only as the 1 of the spec's own example;
 * - answers `{"data": ...}`, errors `{"error": {code, message, suggestion}}` with the spec's
 *   codes and statuses (400 invalid parameters / capacity / quota, 401 invalid key, 403 account
 *   inactive / billing address, 404 instance or launch resource not found); every answer is
 *   checked against the spec's response schema and a mismatch recorded in `specViolations`;
 * - statuses from the spec's InstanceStatus: booting → active → terminating → terminated (then
 *   gone: 404), and `preempted` ({@link FakeLambdaServer.preempt});
 * - 429 without Retry-After: the spec documents neither a 429 body nor Retry-After.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { FakeProviderServer, phaseOf, type Answer, type FakeOptions, type Life } from './fakeBase';
import { check, component, responseSchema } from './lambdaSpec';

interface Inst extends Life {
  id: string;
  name: string;
  type: string;
  region: string;
  sshKeys: string[];
  preemptedAt?: number;
}

const TYPES: Record<string, { description: string; gpu: string; gpus: number; cents: number; vcpus: number; mem: number; regions: string[] }> = {
  gpu_1x_a10: { description: '1x A10 (24 GB PCIe)', gpu: 'A10 (24 GB PCIe)', gpus: 1, cents: 75, vcpus: 30, mem: 200, regions: ['us-east-1', 'us-west-1'] },
  gpu_8x_h100_sxm5: { description: '8x H100 (80 GB SXM5)', gpu: 'H100 (80 GB SXM5)', gpus: 8, cents: 2392, vcpus: 208, mem: 1800, regions: [] },
};

const REGION_NAMES: Record<string, string> = { 'us-east-1': 'Virginia, USA', 'us-west-1': 'California, USA' };

const err = (status: number, code: string, message: string, suggestion?: string): Answer => ({
  status,
  body: { error: { code, message, ...(suggestion ? { suggestion } : {}) } },
});

// The spec's error answers (component schemas ApiError*), with the spec's default texts.
const invalid = (problems: string[]) => err(400, 'global/invalid-parameters', `Invalid request data: ${problems.join('; ')}`);
const launchNotFound = (what: string) => err(404, 'global/object-does-not-exist', what, 'Check the name and try again.');
const instanceNotFound = () => err(404, 'global/object-does-not-exist', 'Specified instance does not exist.');

/** OpenSSH `ssh-rsa` public key line of an RSA key (wire format: string "ssh-rsa", mpint e, mpint n). */
function sshRsaPublic(jwk: { n?: string; e?: string }, comment: string): string {
  const mpint = (b64u: string) => {
    let b = Buffer.from(b64u, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return b;
  };
  const str = (b: Buffer) => Buffer.concat([Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(jwk.e!)), str(mpint(jwk.n!))]);
  return `ssh-rsa ${blob.toString('base64')} ${comment}`;
}

export class FakeLambdaServer extends FakeProviderServer {
  readonly instances = new Map<string, Inst>();
  readonly sshKeys: { id: string; name: string; public_key: string }[] = [
    { id: 'ddf9a910ceb744a0bb95242cbba6cb50', name: 'laptop', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T laptop' },
  ];
  /** The account's standing: anything but active answers 403 (spec: ApiErrorAccountInactive, ApiErrorInvalidBillingAddress). */
  account: 'active' | 'inactive' | 'invalid-address' = 'active';
  /** At most this many live instances (then 400 global/quota-exceeded). */
  quota = Infinity;
  /** When each launch request reached the routes (ms since the epoch), accepted or not (injected faults answer before). */
  readonly launchTimes: number[] = [];
  /** Answers of this fake that do not match the spec's response schema (must stay empty). */
  readonly specViolations: string[] = [];

  constructor(o: FakeOptions = {}) {
    super(o);
  }

  /** The real API lives under /api/v1: the base URL clients use includes it. */
  override async start(): Promise<string> {
    await super.start();
    this.url = `${this.url}/api/v1`;
    return this.url;
  }

  instanceCount(): number {
    return this.instances.size;
  }

  addForeign(name: string): string {
    const id = `0920582c7ff041399e34823a0be${String(this.nextId()).padStart(5, '0')}`;
    this.instances.set(id, { id, name, type: 'gpu_1x_a10', region: 'us-east-1', sshKeys: ['laptop'], createdAt: Date.now() - 60_000 });
    return id;
  }

  /** Lambda takes the instance back: its status becomes `preempted`. */
  preempt(id: string): void {
    const i = this.instances.get(id);
    if (!i) throw new Error(`no instance ${id}`);
    i.preemptedAt = Date.now();
  }

  protected authorized(a: string | undefined): boolean {
    if (a === `Bearer ${this.apiKey}`) return true;
    if (a?.startsWith('Basic ')) {
      const v = a.slice(6);
      return v === this.apiKey || Buffer.from(v, 'base64').toString('utf8') === `${this.apiKey}:`;
    }
    return false;
  }
  protected authError(): Answer {
    return err(401, 'global/invalid-api-key', 'API key was invalid, expired, or deleted.', 'Check your API key or create a new one, then try again.');
  }
  /** The spec documents no 429 answer and no Retry-After: the generic error shape, no header (whatever the test asked). */
  protected rateLimited(_retryAfterSec?: number): Answer {
    return err(429, 'global/too-many-requests', 'Too many requests.');
  }
  /** ApiErrorInternal, the spec's shape of an internal error. */
  protected serverError(): Answer {
    return err(500, 'global/internal-error', 'An internal server error occurred.', 'Try again later. Contact Support if the problem persists.');
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'POST' && path === '/api/v1/instance-operations/launch';
  }

  private phase(i: Inst): string {
    const p = phaseOf(i, this);
    return i.preemptedAt !== undefined && i.terminatedAt === undefined ? 'preempted' : p;
  }

  private view(i: Inst): Record<string, unknown> | undefined {
    const phase = this.phase(i);
    if (phase === 'gone') return undefined;
    const t = TYPES[i.type]!;
    const up = phase === 'active';
    const act = (available: boolean) => (available ? { available } : { available, reason_code: phase === 'booting' ? 'vm-has-not-launched' : 'vm-is-terminating', reason_description: `The instance is ${phase}.` });
    return {
      id: i.id,
      name: i.name,
      // Optional in the spec (absent, never null, until assigned).
      ...(up ? { ip: '127.0.0.1', private_ip: '10.0.0.2', hostname: `${i.id.slice(0, 8)}.cloud.lambda.ai`, jupyter_token: 'x', jupyter_url: `https://jupyter-${i.id}.lambdaspaces.com/?token=x` } : {}),
      status: phase,
      ssh_key_names: i.sshKeys,
      file_system_names: [],
      region: { name: i.region, description: REGION_NAMES[i.region] ?? i.region },
      instance_type: {
        name: i.type,
        description: t.description,
        gpu_description: t.gpu,
        price_cents_per_hour: t.cents,
        specs: { vcpus: t.vcpus, memory_gib: t.mem, storage_gib: 1400, gpus: t.gpus },
      },
      is_reserved: false,
      actions: { migrate: act(false), rebuild: act(up), restart: act(up), cold_reboot: act(up), terminate: act(phase !== 'terminating' && phase !== 'terminated') },
      tags: [],
    };
  }

  /** Routes, then checks the answer against the spec's response schema for that operation. */
  protected route(method: string, path: string, url: URL, body: unknown): Answer {
    const [specPath, answer] = this.dispatch(method, path, url, body);
    const v = specPath && answer.body !== undefined ? responseSchema(method, specPath, answer.status) : undefined;
    if (specPath && !v && answer.status !== 200) {
      // Undocumented status for this operation: at least the documented error shape.
      const e = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (typeof e?.code !== 'string' || typeof e.message !== 'string') this.specViolations.push(`${method} ${specPath} ${answer.status}: not the error shape`);
    }
    if (v) for (const p of check(v, answer.body)) this.specViolations.push(`${method} ${specPath} ${answer.status}: ${p}`);
    return answer;
  }

  private dispatch(method: string, fullPath: string, _url: URL, body: unknown): [string | undefined, Answer] {
    if (!fullPath.startsWith('/api/v1/')) return [undefined, err(404, 'global/object-does-not-exist', `No route ${method} ${fullPath}`)];
    const path = fullPath.slice('/api/v1'.length);
    const inactive = (specPath: string): [string, Answer] | undefined =>
      this.account === 'inactive'
        ? [specPath, err(403, 'global/account-inactive', 'Your account is inactive.', 'Make sure you have verified your email address and have a valid payment method. Contact Support if problems continue.')]
        : this.account === 'invalid-address' && specPath === '/api/v1/instance-operations/launch'
          ? [specPath, err(403, 'global/invalid-address', 'Your billing address is invalid.', 'Make sure your billing address is valid. Contact Support if problems continue.')]
          : undefined;

    if (method === 'GET' && path === '/instance-types') {
      const sp = '/api/v1/instance-types';
      const no = inactive(sp);
      if (no) return no;
      const data: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(TYPES)) {
        data[name] = {
          instance_type: { name, description: t.description, gpu_description: t.gpu, price_cents_per_hour: t.cents, specs: { vcpus: t.vcpus, memory_gib: t.mem, storage_gib: 1400, gpus: t.gpus } },
          regions_with_capacity_available: t.regions.map((r) => ({ name: r, description: REGION_NAMES[r] ?? r })),
        };
      }
      return [sp, { status: 200, body: { data } }];
    }
    if (method === 'GET' && path === '/instances') {
      const sp = '/api/v1/instances';
      return inactive(sp) ?? [sp, { status: 200, body: { data: [...this.instances.values()].map((i) => this.view(i)).filter(Boolean) } }];
    }
    const one = /^\/instances\/([^/]+)$/.exec(path);
    if (method === 'GET' && one) {
      const sp = '/api/v1/instances/{id}';
      const no = inactive(sp);
      if (no) return no;
      const i = this.instances.get(decodeURIComponent(one[1]!));
      const v = i && this.view(i);
      return [sp, v ? { status: 200, body: { data: v } } : instanceNotFound()];
    }
    if (method === 'POST' && path === '/instance-operations/launch') {
      const sp = '/api/v1/instance-operations/launch';
      this.launchTimes.push(Date.now());
      return [sp, inactive(sp)?.[1] ?? this.launch(body)];
    }
    if (method === 'POST' && path === '/instance-operations/terminate') {
      const sp = '/api/v1/instance-operations/terminate';
      const no = inactive(sp);
      if (no) return no;
      const problems = check(component('InstanceTerminateRequest'), body);
      if (problems.length) return [sp, invalid(problems)];
      const ids = (body as { instance_ids: string[] }).instance_ids;
      for (const id of ids) {
        const i = this.instances.get(id);
        if (!i || this.phase(i) === 'gone') return [sp, err(404, 'global/object-does-not-exist', `Instance ${id} does not exist.`)];
      }
      const out = [];
      for (const id of ids) {
        const i = this.instances.get(id)!;
        i.terminatedAt ??= Date.now();
        out.push(this.view(i));
      }
      return [sp, { status: 200, body: { data: { terminated_instances: out } } }];
    }
    if (path === '/ssh-keys') {
      const sp = '/api/v1/ssh-keys';
      const no = inactive(sp);
      if (no) return no;
      if (method === 'GET') return [sp, { status: 200, body: { data: this.sshKeys } }];
      if (method === 'POST') return [sp, this.addKey(body)];
    }
    return [undefined, err(404, 'global/object-does-not-exist', `No route ${method} ${fullPath}`)];
  }

  private launch(body: unknown): Answer {
    const problems = check(component('InstanceLaunchRequest'), body);
    if (problems.length) return invalid(problems);
    const b = body as { region_name: string; instance_type_name: string; ssh_key_names: string[]; name?: string; quantity?: unknown };
    // The spec's description: "Currently, exactly one SSH key must be specified." (1.5.1: minItems 1, maxItems 1)
    if (b.ssh_key_names.length !== 1) return invalid([`/ssh_key_names must name exactly one SSH key, got ${b.ssh_key_names.length}`]);
    // Not in the 1.8.3 schema; the spec's own launch example sends "quantity": 1.
    if (b.quantity !== undefined && b.quantity !== 1) return invalid([`/quantity must be 1, got ${JSON.stringify(b.quantity)}`]);
    const type = TYPES[b.instance_type_name];
    if (!type) return launchNotFound(`Instance type ${b.instance_type_name} does not exist.`);
    const key = b.ssh_key_names[0]!;
    if (!this.sshKeys.some((x) => x.name === key)) return launchNotFound(`SSH key ${key} does not exist.`);
    if (!type.regions.includes(b.region_name)) return err(400, 'instance-operations/launch/insufficient-capacity', 'Not enough capacity to fulfill launch request.', 'Choose another region or instance type.');
    const live = [...this.instances.values()].filter((i) => !['terminated', 'gone', 'preempted'].includes(this.phase(i))).length;
    if (live >= this.quota) return err(400, 'global/quota-exceeded', 'Quota exceeded.', 'Contact Support to increase your quota.');
    const id = `${randomBytes(4).toString('hex')}${String(this.nextId()).padStart(24, '0')}`;
    this.instances.set(id, { id, name: b.name ?? '', type: b.instance_type_name, region: b.region_name, sshKeys: [key], createdAt: Date.now() });
    return { status: 200, body: { data: { instance_ids: [id] } } };
  }

  private addKey(body: unknown): Answer {
    const problems = check(component('AddSSHKeyRequest'), body);
    if (problems.length) return invalid(problems);
    const b = body as { name: string; public_key?: string };
    if (this.sshKeys.some((k) => k.name === b.name)) return invalid([`an SSH key named ${b.name} already exists`]);
    const id = randomBytes(16).toString('hex');
    if (b.public_key !== undefined) {
      if (!/^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( [^\n]*)?$/.test(b.public_key)) return invalid(['/public_key is not a valid SSH public key']);
      const key = { id, name: b.name, public_key: b.public_key };
      this.sshKeys.push(key);
      return { status: 200, body: { data: key } };
    }
    // Generated pair: the private key in the spec's example format (PEM "RSA PRIVATE KEY"), kept nowhere here.
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const private_key = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const public_key = sshRsaPublic(pair.publicKey.export({ format: 'jwk' }), b.name);
    this.sshKeys.push({ id, name: b.name, public_key });
    return { status: 200, body: { data: { id, name: b.name, public_key, private_key } } };
  }
}
