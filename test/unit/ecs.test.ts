// ECS task sizes, Fargate prices and the billing rule, the marker in startedBy, state mapping —
// against hand-worked examples (no SDK, no network).
import { strict as assert } from 'node:assert';
import { accrue, type StateEvent } from '../../src/core/cost';
import { TetherError } from '../../src/core/errors';
import { parseMarker } from '../../src/backends/cloud/marker';
import { ECS_BILLING, FARGATE_SHIPPED_CATALOGUE, ecsPricePerHour, ecsTypeEntry, fargateCatalogue } from '../../src/backends/cloud/ecs/pricing';
import { FARGATE_MEMORY, ecsSizeName, fargateSizes, parseEcsSize } from '../../src/backends/cloud/ecs/sizes';
import { ecsClientToken, ecsStartedBy, mapEcsState, parseTaskArn, taskLogs, taskDefinitionFacts } from '../../src/backends/cloud/ecs/ecs';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);
const refuses = (name: string, why: RegExp) => assert.throws(() => parseEcsSize(name), (e: unknown) => e instanceof TetherError && why.test(e.message) && /vcpu-<GB>gb/.test(e.remedy));

describe('ECS task sizes', () => {
  it('parses the scheme and writes it back the same', () => {
    assert.deepEqual(parseEcsSize('fargate-1vcpu-2gb'), { launchType: 'FARGATE', cpu: 1024, memoryMiB: 2048, gpus: 0, arch: 'X86_64' });
    assert.deepEqual(parseEcsSize('fargate-0.25vcpu-0.5gb-arm64'), { launchType: 'FARGATE', cpu: 256, memoryMiB: 512, gpus: 0, arch: 'ARM64' });
    assert.deepEqual(parseEcsSize('ec2-4vcpu-16gb-1gpu'), { launchType: 'EC2', cpu: 4096, memoryMiB: 16384, gpus: 1, arch: 'X86_64' });
    for (const n of ['fargate-1vcpu-2gb', 'fargate-0.25vcpu-0.5gb-arm64', 'ec2-4vcpu-16gb-1gpu', 'fargate-16vcpu-120gb', 'ec2-0.125vcpu-0.125gb']) assert.equal(ecsSizeName(parseEcsSize(n)), n);
  });

  it("accepts exactly Fargate's CPU/memory pairs (developer guide table)", () => {
    // The table's corners and steps.
    for (const ok of ['fargate-0.25vcpu-2gb', 'fargate-0.5vcpu-4gb', 'fargate-2vcpu-16gb', 'fargate-4vcpu-30gb', 'fargate-8vcpu-60gb', 'fargate-8vcpu-20gb', 'fargate-16vcpu-32gb', 'fargate-16vcpu-120gb']) parseEcsSize(ok);
    refuses('fargate-1vcpu-1gb', /Fargate runs 1 vCPU with 2–8 GB in 1 GB steps, not 1 GB/);
    refuses('fargate-0.25vcpu-3gb', /0\.5 GB, 1 GB, 2 GB/);
    refuses('fargate-4vcpu-31gb', /8–30 GB/);
    refuses('fargate-8vcpu-18gb', /16–60 GB in 4 GB steps/);
    refuses('fargate-16vcpu-36gb', /32–120 GB in 8 GB steps/);
    refuses('fargate-3vcpu-8gb', /Fargate offers 0\.25, 0\.5, 1, 2, 4, 8, 16 vCPU, not 3/);
    refuses('fargate-1vcpu-2gb-1gpu', /Fargate has no GPUs/);
    refuses('ec2-0.1vcpu-1gb', /whole multiples|0\.125–192 vCPU/);
    refuses('ec2-200vcpu-1gb', /0\.125–192 vCPU/);
    refuses('p3.2xlarge', /is not an ECS task size/);
    refuses('no-such-type', /is not an ECS task size/);
    // 3 + 4 + 7 + 13 + 23 + 12 + 12 sizes per architecture.
    assert.equal([...FARGATE_MEMORY.values()].reduce((n, m) => n + m.length, 0), 74);
    assert.equal(fargateSizes().length, 148);
  });
});

describe('Fargate prices and billing', () => {
  it('a task costs vCPU × rate + GB × rate, from the dated catalogue; EC2-launched tasks cost 0 per task', () => {
    assert.match(FARGATE_SHIPPED_CATALOGUE.asOf, /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(FARGATE_SHIPPED_CATALOGUE.source, 'https://aws.amazon.com/fargate/pricing/');
    assert.match(FARGATE_SHIPPED_CATALOGUE.refresh ?? '', /GetProducts.*ServiceCode=AmazonECS/);
    // us-east-1 Linux/x86: $0.04048 per vCPU-hour, $0.004445 per GB-hour → 1 vCPU 2 GB = 0.04937
    close(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb'), 'us-east-1'), 0.04937);
    // ARM: $0.03238 + 2 × $0.00356 = 0.0395
    close(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb-arm64'), 'us-east-1'), 0.0395);
    // 0.25 vCPU 0.5 GB: 0.01012 + 0.0022225 = 0.0123425
    close(ecsPricePerHour(parseEcsSize('fargate-0.25vcpu-0.5gb'), 'us-east-1'), 0.0123425);
    assert.ok(Number.isNaN(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb'), 'ap-south-2')), 'a region without rates is unpriced, not guessed');
    assert.equal(ecsPricePerHour(parseEcsSize('ec2-4vcpu-16gb-1gpu'), 'us-east-1'), 0);
    assert.match(ecsTypeEntry('ec2-4vcpu-16gb-1gpu', 'us-east-1').description, /billed by the EC2 container instance/);
    assert.match(ecsTypeEntry('fargate-1vcpu-2gb', 'ap-south-2').description, /\bno price\b/);
    const cat = fargateCatalogue('us-east-1');
    assert.equal(cat.length, 148);
    assert.ok(cat.every((t) => t.pricePerHour > 0 && t.gpuCount === 0));
  });

  it('per second from launch until STOPPED, with a one-minute minimum (AWS Fargate pricing)', () => {
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const ev = (...xs: Array<[number, StateEvent['state']]>): StateEvent[] => xs.map(([s, state]) => ({ at: t0 + s * 1000, state }));
    const p = [{ at: t0, computePerHour: 0.04937 }];
    // 20 s of PROVISIONING/PENDING, 10 s running, 5 s stopping: 35 s → billed 60 s.
    const short = accrue(ev([0, 'provisioning'], [20, 'running'], [30, 'terminating'], [35, 'terminated']), p, ECS_BILLING, t0 + 3600_000);
    assert.equal(short.billedSeconds, 60);
    close(short.total, 0.04937 / 60);
    // 10 min 30.2 s from launch to STOPPED → 631 s (rounded up to the second).
    const long = accrue(ev([0, 'provisioning'], [12, 'running'], [620, 'terminating'], [630.2, 'terminated']), p, ECS_BILLING, t0 + 3600_000);
    assert.equal(long.billedSeconds, 631);
    close(long.total, (0.04937 * 630.2) / 3600 + (0.04937 * 0.8) / 3600);
    assert.deepEqual(ECS_BILLING.storageStates, []);
    assert.equal(ECS_BILLING.citation, 'https://aws.amazon.com/fargate/pricing/');
  });
});

describe('ECS marker, states and ARNs', () => {
  it("startedBy carries the marker in ECS's alphabet within 36 characters; parseMarker reads it back", () => {
    const ledgerId = '3f2a9c1e-7b4d-4e8f-9a0b-1c2d3e4f5a6b';
    const s = ecsStartedBy({ ledgerId, owner: 'abcd1234', name: 'train.v2 job with spaces' });
    assert.ok(s.length <= 36, s);
    assert.match(s, /^[A-Za-z0-9_/-]+$/);
    assert.equal(s, 'tether-3f2a9c1eabcd1234-train_v2_job');
    assert.equal(parseMarker(s), '3f2a9c1e@abcd1234');
    assert.equal(parseMarker(ecsStartedBy({ ledgerId, name: 'x' })), '3f2a9c1e');
    assert.equal(ecsClientToken(ledgerId), ledgerId);
    const long = ecsClientToken('x'.repeat(80));
    assert.ok(long.length <= 64 && /^[\x21-\x7e]+$/.test(long));
  });

  it('lastStatus / desiredStatus map onto Tether states', () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['PROVISIONING', 'RUNNING', 'provisioning'],
      ['PENDING', 'RUNNING', 'provisioning'],
      ['ACTIVATING', 'RUNNING', 'provisioning'],
      ['RUNNING', 'RUNNING', 'running'],
      ['RUNNING', 'STOPPED', 'terminating'],
      ['PENDING', 'STOPPED', 'terminating'],
      ['DEACTIVATING', 'STOPPED', 'terminating'],
      ['STOPPING', 'STOPPED', 'terminating'],
      ['DEPROVISIONING', 'STOPPED', 'terminating'],
      ['STOPPED', 'STOPPED', 'terminated'],
      ['DELETED', undefined, 'terminated'],
      ['WHATEVER', undefined, 'unknown'],
    ];
    for (const [last, desired, want] of cases) assert.equal(mapEcsState(last, desired), want, `${last}/${desired}`);
  });

  it('task ARNs: region, cluster and id (the old short form has no cluster)', () => {
    assert.deepEqual(parseTaskArn('arn:aws:ecs:eu-west-1:123456789012:task/gpu-jobs/0123abcd'), { region: 'eu-west-1', cluster: 'gpu-jobs', taskId: '0123abcd' });
    assert.deepEqual(parseTaskArn('arn:aws:ecs:us-east-1:123456789012:task/0123abcd'), { region: 'us-east-1', taskId: '0123abcd' });
    assert.deepEqual(parseTaskArn('0123abcd'), { taskId: '0123abcd' });
  });

  it('logs: awslogs containers give their group and stream (PREFIX/CONTAINER/TASK); others are not named', () => {
    const facts = taskDefinitionFacts({
      taskDefinitionArn: 'arn:aws:ecs:us-east-1:1:task-definition/x:1',
      containerDefinitions: [
        { name: 'main', image: 'i', logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/ecs/train', 'awslogs-stream-prefix': 'tether' } } },
        { name: 'side', image: 'i', resourceRequirements: [{ type: 'GPU', value: '2' }] },
      ],
      runtimePlatform: { cpuArchitecture: 'ARM64' },
    });
    assert.equal(facts.gpus, 2);
    assert.equal(facts.arch, 'ARM64');
    const logs = taskLogs(facts, 'abc123', 'us-east-1');
    assert.deepEqual(logs.map((l) => [l.container, l.group, l.stream]), [['main', '/ecs/train', 'tether/main/abc123']]);
    assert.match(logs[0]!.command, /^aws logs tail \/ecs\/train --region us-east-1 --log-stream-names tether\/main\/abc123/);
  });
});

describe('ECS account (registry descriptor)', () => {
  it('is opt-in by cluster; region, endpoint and network from the environment (CLI) or settings (VS Code)', async () => {
    const { ecsDescriptor } = await import('../../src/backends/cloud/ecs/descriptor');
    const { providerKindOf, BILLING_RULES } = await import('../../src/backends/cloud/registry');
    assert.equal(providerKindOf('ecs'), 'ecs');
    assert.equal(providerKindOf('fargate'), 'ecs');
    assert.equal(BILLING_RULES.ecs, ECS_BILLING);
    // A region alone (an EC2 user) does not enable ECS polling.
    assert.equal(ecsDescriptor.account({ env: { TETHER_AWS_REGION: 'us-east-1' } }), undefined);
    assert.deepEqual(ecsDescriptor.account({ env: { TETHER_AWS_REGION: 'us-east-1', TETHER_ECS_CLUSTER: 'default', TETHER_AWS_API_URL: 'http://127.0.0.1:9' } }), { region: 'us-east-1', cluster: 'default', endpoint: 'http://127.0.0.1:9' });
    assert.deepEqual(
      ecsDescriptor.account({ env: { TETHER_ECS_REGION: 'eu-west-1', AWS_REGION: 'us-east-1', TETHER_ECS_CLUSTER: 'gpu', TETHER_ECS_SUBNETS: 'subnet-a, subnet-b', TETHER_ECS_LOG_GROUP: '/tether' }, apiUrl: 'http://127.0.0.1:8' }),
      { region: 'eu-west-1', cluster: 'gpu', endpoint: 'http://127.0.0.1:8', subnets: ['subnet-a', 'subnet-b'], logGroup: '/tether' },
    );
    const settings: Record<string, unknown> = { 'tether.ecs.cluster': 'default', 'tether.aws.region': 'us-west-2', 'tether.ecs.securityGroups': ['sg-1'] };
    assert.deepEqual(ecsDescriptor.account({ env: {}, setting: (k) => settings[k], secret: { accessKeyId: 'AKIA', secretAccessKey: 's' } }), {
      region: 'us-west-2',
      cluster: 'default',
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 's' },
      securityGroups: ['sg-1'],
    });
  });
});
