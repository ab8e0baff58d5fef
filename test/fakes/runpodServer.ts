/**
 * Fake RunPod API server (the real API cannot be called from tests). Follows the REST v1
 * reference (https://docs.runpod.io/api-reference/overview): Bearer auth, `/v1/pods` list /
 * create / get, `POST /v1/pods/{id}/stop` and `/start`
 * (https://docs.runpod.io/api-reference/pods/POST/pods/podId/stop), `DELETE /v1/pods/{id}`,
 * `costPerHr` as a *string*, `desiredStatus`; and the GraphQL `gpuTypes` query at `/graphql`
 * (client errors as HTTP 200 with `errors`). Errors are `{error, status}`; an unknown pod is 404.
 * A pod is RUNNING without an address while booting, gets `publicIp` / `portMappings` once up;
 * after a stop it still shows RUNNING (v1 has no stopping state) until, `terminateMs` later, it
 * is EXITED without an address (still listed; stopping it again is fine; DELETE still works);
 * it shows TERMINATED after DELETE, then is gone (404).
 */
import { FakeProviderServer, phaseOf, type Answer, type FakeOptions, type Life } from './fakeBase';

interface Pod extends Life {
  id: string;
  name: string;
  gpuTypeId: string;
  gpuCount: number;
  image: string;
  dataCenterId: string;
}

const GPUS: Record<string, { displayName: string; memoryInGb: number; securePrice: number; communityPrice: number | null }> = {
  'NVIDIA RTX A6000': { displayName: 'RTX A6000', memoryInGb: 48, securePrice: 0.49, communityPrice: 0.33 },
  'NVIDIA H100 80GB HBM3': { displayName: 'H100 SXM', memoryInGb: 80, securePrice: 2.99, communityPrice: null },
};

const err = (status: number, message: string): Answer => ({ status, body: { error: message, status } });

export class FakeRunPodServer extends FakeProviderServer {
  readonly pods = new Map<string, Pod>();

  constructor(o: FakeOptions = {}) {
    super(o);
  }

  instanceCount(): number {
    return this.pods.size;
  }

  addForeign(name: string): string {
    const id = `fr${this.nextId()}x${Math.random().toString(36).slice(2, 10)}`;
    this.pods.set(id, { id, name, gpuTypeId: 'NVIDIA RTX A6000', gpuCount: 1, image: 'runpod/pytorch', dataCenterId: 'EU-RO-1', createdAt: Date.now() - 60_000 });
    return id;
  }

  protected authorized(a: string | undefined, url: URL): boolean {
    return a === `Bearer ${this.apiKey}` || (url.pathname === '/graphql' && url.searchParams.get('api_key') === this.apiKey);
  }
  protected authError(): Answer {
    return err(401, 'Unauthorized: invalid or missing API key');
  }
  protected rateLimited(retryAfterSec?: number): Answer {
    return { ...err(429, 'Too many requests'), ...(retryAfterSec !== undefined ? { headers: { 'Retry-After': String(retryAfterSec) } } : {}) };
  }
  protected serverError(): Answer {
    return err(500, 'Internal server error');
  }
  protected isCreate(method: string, path: string): boolean {
    return method === 'POST' && path === '/v1/pods';
  }

  private view(p: Pod): Record<string, unknown> | undefined {
    const phase = phaseOf(p, this);
    if (phase === 'gone') return undefined;
    const g = GPUS[p.gpuTypeId]!;
    const price = g.securePrice * p.gpuCount;
    // While stopping, the container is still shutting down: RUNNING with its address.
    const up = phase === 'active' || phase === 'stopping';
    return {
      id: p.id,
      name: p.name,
      desiredStatus: phase === 'terminating' || phase === 'terminated' ? 'TERMINATED' : phase === 'stopped' ? 'EXITED' : 'RUNNING',
      costPerHr: price.toFixed(2),
      adjustedCostPerHr: price,
      gpu: { id: p.gpuTypeId, count: p.gpuCount, displayName: g.displayName },
      machine: { gpuTypeId: p.gpuTypeId, dataCenterId: p.dataCenterId, location: 'RO' },
      image: p.image,
      imageName: p.image,
      publicIp: up ? '127.0.0.1' : null,
      portMappings: up ? { '22': 22022 } : null,
      lastStartedAt: new Date(p.createdAt).toISOString(),
      containerDiskInGb: 50,
    };
  }

  protected route(method: string, path: string, _url: URL, body: unknown): Answer {
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'POST' && path === '/graphql') {
      const q = String(b.query ?? '');
      if (!/gpuTypes/.test(q)) return { status: 200, body: { errors: [{ message: 'Cannot query this field' }] } };
      return { status: 200, body: { data: { gpuTypes: Object.entries(GPUS).map(([id, g]) => ({ id, ...g })) } } };
    }
    if (method === 'GET' && path === '/v1/pods') {
      return { status: 200, body: [...this.pods.values()].map((p) => this.view(p)).filter(Boolean) };
    }
    if (method === 'POST' && path === '/v1/pods') {
      const types = b.gpuTypeIds as string[] | undefined;
      if (typeof b.name !== 'string' || !b.name) return err(400, 'name is required');
      if (typeof b.imageName !== 'string' || !b.imageName) return err(400, 'imageName is required');
      const gpu = types?.find((t) => GPUS[t]);
      if (!gpu) return err(400, `There are no instances currently available for gpuTypeIds ${JSON.stringify(types)}`);
      const id = `${Math.random().toString(36).slice(2, 12)}${this.nextId()}`;
      const dcs = b.dataCenterIds as string[] | undefined;
      const p: Pod = { id, name: b.name, gpuTypeId: gpu, gpuCount: Number(b.gpuCount ?? 1), image: b.imageName, dataCenterId: dcs?.[0] ?? 'EU-RO-1', createdAt: Date.now() };
      this.pods.set(id, p);
      return { status: 201, body: this.view(p) };
    }
    const one = /^\/v1\/pods\/([^/]+)(\/stop|\/start)?$/.exec(path);
    if (one) {
      const p = this.pods.get(decodeURIComponent(one[1]!));
      const v = p && this.view(p);
      if (!p || !v) return err(404, 'pod not found');
      if (method === 'GET' && !one[2]) return { status: 200, body: v };
      const phase = phaseOf(p, this);
      if (method === 'POST' && one[2] === '/stop') {
        if (phase === 'terminating' || phase === 'terminated') return err(404, 'pod not found');
        p.stoppedAt ??= Date.now(); // stopping a stopped (or stopping) pod changes nothing
        return { status: 200, body: this.view(p) };
      }
      if (method === 'POST' && one[2] === '/start') {
        if (phase === 'terminating' || phase === 'terminated') return err(404, 'pod not found');
        delete p.stoppedAt;
        return { status: 200, body: this.view(p) };
      }
      if (method === 'DELETE' && !one[2]) {
        p.terminatedAt ??= Date.now();
        return { status: 204 };
      }
    }
    return err(404, `no route ${method} ${path}`);
  }
}
