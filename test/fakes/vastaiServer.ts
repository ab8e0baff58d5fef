/**
 * Fake Vast.ai API server (the real API cannot be called from tests). Follows
 * https://docs.vast.ai/api-reference/introduction: Bearer (or `?api_key=`) auth under
 * `/api/v0`, `GET /bundles/?q=` offers with `dph_total`, `PUT /asks/{offer}/` →
 * `{success, new_contract}`, `GET /instances/` → `{instances: [...]}` with `label`,
 * `actual_status` (null → loading → running), `PUT /instances/{id}/` with `{"state": "stopped"}`
 * or `{"state": "running"}` and/or `{"label"}` → `{success: true}`
 * (https://docs.vast.ai/api-reference/instances/manage-instance; a stop shows
 * `intended_status: "stopped"` with `actual_status: "running"` for `terminateMs`, then
 * `actual_status: "stopped"`; a stopped instance stays listed and can be destroyed),
 * `DELETE /instances/{id}/` (`no_such_instance` when unknown); errors
 * `{success: false, error, msg}`, 429 as plain text. The
 * `create-then-fail` fault reproduces the documented trap: the create answers failure, yet the
 * instance exists.
 */
import { FakeProviderServer, phaseOf, type Answer, type FakeOptions, type Life } from './fakeBase';

interface Inst extends Life {
  id: number;
  label: string | null;
  offer: number;
  image: string;
}

const OFFERS = [
  { id: 4101, gpu_name: 'RTX 4090', num_gpus: 1, dph_total: 0.345, geolocation: 'Norway, NO', cpu_cores_effective: 16, cpu_ram: 64512, gpu_ram: 24564, rentable: true, verified: true },
  { id: 4102, gpu_name: 'A100 SXM4', num_gpus: 2, dph_total: 2.1, geolocation: 'Texas, US', cpu_cores_effective: 32, cpu_ram: 257024, gpu_ram: 81920, rentable: true, verified: true },
];

const err = (status: number, error: string, msg: string): Answer => ({ status, body: { success: false, error, msg } });

export class FakeVastServer extends FakeProviderServer {
  readonly instances = new Map<number, Inst>();

  constructor(o: FakeOptions = {}) {
    super(o);
  }

  instanceCount(): number {
    return this.instances.size;
  }

  addForeign(label: string): string {
    const id = 9_000_000 + this.nextId();
    this.instances.set(id, { id, label, offer: 4101, image: 'pytorch/pytorch', createdAt: Date.now() - 60_000 });
    return String(id);
  }

  protected authorized(a: string | undefined, url: URL): boolean {
    return a === `Bearer ${this.apiKey}` || url.searchParams.get('api_key') === this.apiKey;
  }
  protected authError(): Answer {
    return err(401, 'invalid_api_key', 'Invalid user key');
  }
  protected rateLimited(retryAfterSec?: number): Answer {
    return { status: 429, text: 'API requests too frequent', ...(retryAfterSec !== undefined ? { headers: { 'Retry-After': String(retryAfterSec) } } : {}) };
  }
  protected serverError(): Answer {
    return err(500, 'server_error', 'Internal error');
  }
  protected override createFailed(): Answer {
    return err(400, 'no_such_ask', 'Instance creation failed: the offer is no longer available');
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'PUT' && /^\/api\/v0\/asks\/\d+\/$/.test(path);
  }

  private view(i: Inst): Record<string, unknown> | undefined {
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
      dph_total: o.dph_total,
      start_date: i.createdAt / 1000,
      ssh_host: phase === 'active' ? '127.0.0.1' : null,
      ssh_port: phase === 'active' ? 40022 : null,
      gpu_name: o.gpu_name,
      num_gpus: o.num_gpus,
      geolocation: o.geolocation,
      machine_id: 77,
      image_uuid: i.image,
    };
  }

  protected route(method: string, path: string, url: URL, body: unknown): Answer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'GET' && path === '/api/v0/bundles/') {
      let q: Record<string, unknown> = {};
      try {
        q = JSON.parse(url.searchParams.get('q') ?? '{}') as Record<string, unknown>;
      } catch {
        return err(400, 'invalid_args', 'q is not JSON');
      }
      const wantsRentable = (q.rentable as { eq?: boolean } | undefined)?.eq;
      return { status: 200, body: { offers: OFFERS.filter((o) => wantsRentable === undefined || o.rentable === wantsRentable) } };
    }
    const ask = /^\/api\/v0\/asks\/(\d+)\/$/.exec(path);
    if (method === 'PUT' && ask) {
      const offer = OFFERS.find((o) => o.id === Number(ask[1]));
      if (!offer) return err(404, 'no_such_ask', `Offer ${ask[1]} does not exist or is no longer available`);
      if (typeof b.image !== 'string' && typeof b.template_hash_id !== 'string') return err(400, 'invalid_args', 'image or template_hash_id is required');
      const id = 8_000_000 + this.nextId();
      this.instances.set(id, { id, label: typeof b.label === 'string' ? b.label : null, offer: offer.id, image: String(b.image), createdAt: Date.now() });
      return { status: 200, body: { success: true, new_contract: id } };
    }
    if (method === 'GET' && path === '/api/v0/instances/') {
      return { status: 200, body: { instances: [...this.instances.values()].map((i) => this.view(i)).filter(Boolean) } };
    }
    const one = /^\/api\/v0\/instances\/(\d+)\/$/.exec(path);
    if (one) {
      const i = this.instances.get(Number(one[1]));
      const v = i && this.view(i);
      if (method === 'GET') return v ? { status: 200, body: { instances: v } } : err(404, 'no_such_instance', 'Instance not found');
      if (method === 'PUT') {
        if (!i || !v) return err(404, 'no_such_instance', 'Instance does not exist');
        const state = b.state;
        if (state !== undefined && state !== 'stopped' && state !== 'running') return err(400, 'invalid_args', `state must be "stopped" or "running", not ${JSON.stringify(state)}`);
        if (state === undefined && typeof b.label !== 'string') return err(400, 'invalid_args', 'state or label is required');
        if (typeof b.label === 'string') i.label = b.label;
        if (state === 'stopped') i.stoppedAt ??= Date.now(); // stopping a stopped instance changes nothing
        if (state === 'running') delete i.stoppedAt;
        return { status: 200, body: { success: true } };
      }
      if (method === 'DELETE') {
        if (!i || !v) return err(404, 'no_such_instance', 'Instance does not exist');
        i.terminatedAt = Date.now() - this.terminateMs; // Vast destroys at once
        return { status: 200, body: { success: true } };
      }
    }
    return err(404, 'not_found', `no route ${method} ${path}`);
  }
}
