/**
 * Fake Lambda Cloud API server (the real API cannot be called from tests). Follows
 * https://docs-api.lambda.ai/api/cloud: Bearer (or Basic with the key as user name) auth,
 * `{"data": ...}` answers, `{"error": {code, message, suggestion}}` errors, statuses
 * booting → active → terminating → terminated, then the instance disappears (404).
 */
import { FakeProviderServer, phaseOf, type Answer, type FakeOptions, type Life } from './fakeBase';

interface Inst extends Life {
  id: string;
  name: string;
  type: string;
  region: string;
  sshKeys: string[];
}

const TYPES: Record<string, { description: string; gpu: string; gpus: number; cents: number; vcpus: number; mem: number; regions: string[] }> = {
  gpu_1x_a10: { description: '1x A10 (24 GB PCIe)', gpu: 'A10 (24 GB PCIe)', gpus: 1, cents: 75, vcpus: 30, mem: 200, regions: ['us-east-1', 'us-west-1'] },
  gpu_8x_h100_sxm5: { description: '8x H100 (80 GB SXM5)', gpu: 'H100 (80 GB SXM5)', gpus: 8, cents: 2392, vcpus: 208, mem: 1800, regions: [] },
};

const err = (status: number, code: string, message: string, suggestion?: string): Answer => ({
  status,
  body: { error: { code, message, ...(suggestion ? { suggestion } : {}) } },
});

export class FakeLambdaServer extends FakeProviderServer {
  readonly instances = new Map<string, Inst>();
  readonly sshKeys = [{ id: 'k1', name: 'laptop', public_key: 'ssh-ed25519 AAAA laptop' }];

  constructor(o: FakeOptions = {}) {
    super(o);
  }

  instanceCount(): number {
    return this.instances.size;
  }

  addForeign(name: string): string {
    const id = `0920582c7ff041399e34823a0be${String(this.nextId()).padStart(5, '0')}`;
    this.instances.set(id, { id, name, type: 'gpu_1x_a10', region: 'us-east-1', sshKeys: ['laptop'], createdAt: Date.now() - 60_000 });
    return id;
  }

  protected authorized(a: string | undefined): boolean {
    if (a === `Bearer ${this.apiKey}`) return true;
    if (a?.startsWith('Basic ')) return Buffer.from(a.slice(6), 'base64').toString('utf8').split(':')[0] === this.apiKey;
    return false;
  }
  protected authError(): Answer {
    return err(401, 'global/invalid-api-key', 'API key was invalid, expired, or deleted.', 'Check your API key or create a new one, then try again.');
  }
  protected rateLimited(retryAfterSec?: number): Answer {
    return { ...err(429, 'global/too-many-requests', 'Too many requests.'), ...(retryAfterSec !== undefined ? { headers: { 'Retry-After': String(retryAfterSec) } } : {}) };
  }
  protected serverError(): Answer {
    return err(500, 'global/unknown', 'Internal server error.');
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'POST' && path === '/instance-operations/launch';
  }

  private view(i: Inst): Record<string, unknown> | undefined {
    const phase = phaseOf(i, this);
    if (phase === 'gone') return undefined;
    const t = TYPES[i.type]!;
    return {
      id: i.id,
      name: i.name,
      ip: phase === 'active' ? '127.0.0.1' : null,
      private_ip: phase === 'active' ? '10.0.0.2' : null,
      status: phase,
      ssh_key_names: i.sshKeys,
      file_system_names: [],
      region: { name: i.region, description: i.region },
      instance_type: {
        name: i.type,
        description: t.description,
        gpu_description: t.gpu,
        price_cents_per_hour: t.cents,
        specs: { vcpus: t.vcpus, memory_gib: t.mem, storage_gib: 1400, gpus: t.gpus },
      },
      hostname: phase === 'active' ? `${i.id.slice(0, 8)}.cloud.lambda.ai` : null,
      jupyter_token: 'x',
      jupyter_url: null,
      is_reserved: false,
    };
  }

  protected route(method: string, path: string, _url: URL, body: unknown): Answer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'GET' && path === '/instance-types') {
      const data: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(TYPES)) {
        data[name] = {
          instance_type: { name, description: t.description, gpu_description: t.gpu, price_cents_per_hour: t.cents, specs: { vcpus: t.vcpus, memory_gib: t.mem, storage_gib: 1400, gpus: t.gpus } },
          regions_with_capacity_available: t.regions.map((r) => ({ name: r, description: r })),
        };
      }
      return { status: 200, body: { data } };
    }
    if (method === 'GET' && path === '/instances') {
      return { status: 200, body: { data: [...this.instances.values()].map((i) => this.view(i)).filter(Boolean) } };
    }
    const one = /^\/instances\/([^/]+)$/.exec(path);
    if (method === 'GET' && one) {
      const i = this.instances.get(decodeURIComponent(one[1]!));
      const v = i && this.view(i);
      return v ? { status: 200, body: { data: v } } : err(404, 'global/object-does-not-exist', 'Specified instance does not exist.');
    }
    if (method === 'POST' && path === '/instance-operations/launch') {
      const type = TYPES[String(b.instance_type_name)];
      if (!type) return err(400, 'global/invalid-parameters', `Invalid instance type ${String(b.instance_type_name)}`);
      if (!type.regions.includes(String(b.region_name))) return err(400, 'instance-operations/launch/insufficient-capacity', 'Not enough capacity to fulfill launch request.', 'Choose another region or instance type.');
      const keys = (b.ssh_key_names as string[] | undefined) ?? [];
      for (const k of keys) if (!this.sshKeys.some((x) => x.name === k)) return err(400, 'global/invalid-parameters', `SSH key ${k} does not exist`);
      if (typeof b.name === 'string' && b.name.length > 64) return err(400, 'global/invalid-parameters', 'name too long');
      const id = `${Math.random().toString(16).slice(2, 10)}${String(this.nextId()).padStart(24, '0')}`;
      this.instances.set(id, { id, name: String(b.name ?? ''), type: String(b.instance_type_name), region: String(b.region_name), sshKeys: keys, createdAt: Date.now() });
      return { status: 200, body: { data: { instance_ids: [id] } } };
    }
    if (method === 'POST' && path === '/instance-operations/terminate') {
      const ids = (b.instance_ids as string[] | undefined) ?? [];
      const out = [];
      for (const id of ids) {
        const i = this.instances.get(id);
        if (!i || phaseOf(i, this) === 'gone') return err(404, 'global/object-does-not-exist', `Instance ${id} does not exist.`);
      }
      for (const id of ids) {
        const i = this.instances.get(id)!;
        i.terminatedAt ??= Date.now();
        out.push(this.view(i));
      }
      return { status: 200, body: { data: { terminated_instances: out } } };
    }
    if (method === 'GET' && path === '/ssh-keys') return { status: 200, body: { data: this.sshKeys } };
    return err(404, 'global/not-found', `No route ${method} ${path}`);
  }
}
