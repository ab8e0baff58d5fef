/**
 * GCP Compute Engine as a target of the shared cloud contract suite (test/integration/cloud-rest.test.ts),
 * against the strict compute/v1 fake (test/fakes/gcpComputeFake.ts). Typed where it is used (the
 * suite's Target), so this file stays independent of the suite's internals.
 */
import { GcpComputeProvider, GCP_SHIPPED_CATALOGUE } from '../../../src/backends/cloud/gcp/gcp';
import type { LoggedRequest, ProviderFake } from '../../fakes/fakeBase';
import { FakeGcpComputeServer } from '../../fakes/gcpComputeFake';

export const GCP_TEST_PROJECT = 'tether-test';
export const GCP_TEST_ZONE = 'us-central1-a';

export const gcpTarget = {
  label: 'GCP Compute Engine',
  fakeLabel: 'its strict compute/v1 fake',
  fake: (): ProviderFake => new FakeGcpComputeServer({ project: GCP_TEST_PROJECT }),
  provider: (f: ProviderFake, o: { apiKey?: string; timeoutMs?: number } = {}) =>
    new GcpComputeProvider({
      project: GCP_TEST_PROJECT,
      zone: GCP_TEST_ZONE,
      baseUrl: f.url,
      token: async () => o.apiKey ?? f.apiKey,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      retries: 3,
      backoffMs: 20,
      operationPollMs: 50,
    }),
  instanceType: 'g2-standard-4',
  region: GCP_TEST_ZONE,
  price: GCP_SHIPPED_CATALOGUE.regions['us-central1']!['g2-standard-4']!.onDemand,
  listMethod: 'GET',
  listPath: /^\/compute\/v1\/projects\/[^/]+\/aggregated\/instances$/,
  createPath: /^\/compute\/v1\/projects\/[^/]+\/zones\/[^/]+\/instances$/,
  createMethod: 'POST',
  ambiguousCreate: ['create-then-hang', 'create-then-fail'] as ('create-then-hang' | 'create-then-fail')[],
  unknownId: 'no-such-instance',
  // Google's 429 (rateLimitExceeded) carries no Retry-After.
  sendsRetryAfter: false,
  // A deleted instance is gone (404), not kept as terminated.
  keepsTerminated: false,
  writesTo: (r: LoggedRequest, id: string) => r.method !== 'GET' && r.path.includes(`/instances/${id}`),
  canStop: true,
  stopCall: { method: 'POST', path: /^\/compute\/v1\/projects\/[^/]+\/zones\/[^/]+\/instances\/[^/]+\/stop$/ },
};
