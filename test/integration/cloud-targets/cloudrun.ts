/**
 * Google Cloud Run jobs as a target of the cloud contract suite (test/integration/cloud-rest.test.ts),
 * against the strict run/v2 fake (test/fakes/cloudRunFake.ts). An execution is the "instance": it has
 * no SSH endpoint and no stop; its create is `jobs/{job}:run`. Typed where it is used (the suite's
 * Target), so this file stays independent of the suite's internals.
 */
import { CloudRunProvider } from '../../../src/backends/cloud/cloudrun/cloudrun';
import { shapePricePerHour } from '../../../src/backends/cloud/cloudrun/pricing';
import type { FaultKind, LoggedRequest, ProviderFake } from '../../fakes/fakeBase';
import { FakeCloudRunServer } from '../../fakes/cloudRunFake';

export const cloudRunTarget = {
  label: 'Google Cloud Run jobs',
  fakeLabel: 'its strict run/v2 fake',
  fake: (): ProviderFake => new FakeCloudRunServer({ maxPageSize: 2 }),
  provider: (f: ProviderFake, o: { apiKey?: string; timeoutMs?: number } = {}) =>
    new CloudRunProvider({
      project: 'tether-test',
      region: 'us-central1',
      token: async () => o.apiKey ?? f.apiKey,
      baseUrl: f.url,
      defaultImage: 'us-docker.pkg.dev/tether-test/jobs/train:1',
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      retries: 3,
      backoffMs: 20,
      operationPollMs: 20,
    }),
  instanceType: 'l4-4vcpu-16gib',
  region: 'us-central1',
  price: shapePricePerHour({ cpu: 4, memoryGiB: 16, gpu: 'nvidia-l4' }, 'us-central1')!,
  listMethod: 'GET',
  listPath: /^\/v2\/projects\/tether-test\/locations\/us-central1\/jobs\/-\/executions$/,
  createPath: /^\/v2\/projects\/tether-test\/locations\/us-central1\/jobs\/[^/]+:run$/,
  createMethod: 'POST',
  ambiguousCreate: ['create-then-hang', 'create-then-fail'] as FaultKind[],
  unknownId: 'us-central1/nosuchjob/nosuchjob-abcde',
  sendsRetryAfter: false,
  keepsTerminated: false,
  // A write naming the execution (its cancel), or its job (`<location>/<job>/<execution>`).
  writesTo: (r: LoggedRequest, id: string) => {
    const [, job, execution] = id.split('/');
    return r.method !== 'GET' && (r.path.includes(`/executions/${execution}`) || r.path.endsWith(`/jobs/${job}`) || r.path.includes(`/jobs/${job}:`));
  },
  canStop: false,
  noSsh: true,
  checksTypeBeforeIntent: true,
};
