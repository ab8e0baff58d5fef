/**
 * AWS ECS (Fargate tasks) as a target of the cloud contract suite (cloud-rest.test.ts), against
 * moto behind the strict ECS proxy that plays the task lifecycle (test/fakes/ecsMotoFake.ts).
 * Where a task legitimately differs from a VM: no SSH endpoint, no GPU on Fargate, no stop, a
 * stopped task stays visible as STOPPED (about an hour on ECS), a bad task size is refused before
 * any ledger intent (Fargate's CPU/memory pairs are known offline), and ECS speaks AWS JSON 1.1
 * (POST with X-Amz-Target; the proxy logs the operation as the path).
 */
import { EcsProvider } from '../../../src/backends/cloud/ecs/ecs';
import { ecsPricePerHour } from '../../../src/backends/cloud/ecs/pricing';
import { parseEcsSize } from '../../../src/backends/cloud/ecs/sizes';
import { EcsMotoFake } from '../../fakes/ecsMotoFake';
import type { LoggedRequest, ProviderFake } from '../../fakes/fakeBase';
import type { Target } from '../cloud-rest.test';

const TYPE = 'fargate-1vcpu-2gb';

export const ECS_TARGET: Target = {
  label: 'AWS ECS (Fargate)',
  fakeLabel: 'moto behind the strict ECS lifecycle proxy',
  fake: () => new EcsMotoFake(),
  provider: (f: ProviderFake, o = {}) =>
    new EcsProvider({
      region: 'us-east-1',
      endpoint: f.url,
      credentials: { accessKeyId: o.apiKey ?? f.apiKey, secretAccessKey: 'testing' },
      ...(o.timeoutMs ? { requestTimeoutMs: o.timeoutMs } : {}),
      maxAttempts: 3,
    }),
  unavailable: () => EcsMotoFake.unavailable(),
  teardown: () => EcsMotoFake.stopMoto(),
  instanceType: TYPE,
  region: 'us-east-1',
  price: ecsPricePerHour(parseEcsSize(TYPE), 'us-east-1'),
  image: 'public.ecr.aws/docker/library/busybox:latest',
  listMethod: 'POST',
  // One ListClusters per listing (ListTasks runs twice per cluster: desired RUNNING and STOPPED).
  listPath: /^\/ListClusters$/,
  createPath: /^\/RunTask$/,
  createMethod: 'POST',
  ambiguousCreate: ['create-then-hang', 'create-then-fail'],
  unknownId: 'arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef',
  sendsRetryAfter: false,
  keepsTerminated: true,
  // A write (not Describe*/List*) whose JSON body names the task.
  writesTo: (r: LoggedRequest, id: string) => !/^\/(Describe|List)/.test(r.path) && JSON.stringify(r.body ?? {}).includes(id),
  canStop: false,
  noSsh: true,
  noGpu: true,
  checksTypeBeforeIntent: true,
};
