/**
 * AWS ECS against moto (create cluster, register task definition, run task on Fargate and on EC2
 * container instances, list with filters, tags, stop task), through the strict proxy that plays
 * the task lifecycle moto lacks (test/fakes/ecsMotoFake.ts: states, timestamps, clientToken) —
 * plus spec tests of that proxy: what the real ECS API refuses, it refuses.
 */
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ECSClient, DescribeTasksCommand, ListTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, CreateClusterCommand } from '@aws-sdk/client-ecs';
import { EcsProvider, ECS_TAG_LEDGER_ID, ecsStartedBy } from '../../src/backends/cloud/ecs/ecs';
import { CloudApiError, markedName, type CloudInstance } from '../../src/backends/cloud/provider';
import { EcsMotoFake } from '../fakes/ecsMotoFake';
import { skipBecause } from '../helpers/skip';
import { waitFor } from '../helpers/tmp';

const IMAGE = 'public.ecr.aws/docker/library/busybox:latest';
const WAIT_MS = 60_000;

describe('AWS ECS against moto (Fargate and EC2 tasks, lifecycle from the strict proxy)', function () {
  this.timeout(4 * WAIT_MS);
  let fake: EcsMotoFake;
  let made: Array<{ dispose?(): void; destroy?(): void }> = [];
  const provider = (o: Partial<ConstructorParameters<typeof EcsProvider>[0]> = {}) => {
    const p = new EcsProvider({ region: 'us-east-1', endpoint: fake.url, credentials: { accessKeyId: fake.apiKey, secretAccessKey: 'testing' }, maxAttempts: 3, ...o });
    made.push(p);
    return p;
  };
  const sdk = () => {
    const c = new ECSClient({ region: 'us-east-1', endpoint: fake.url, credentials: { accessKeyId: fake.apiKey, secretAccessKey: 'testing' }, maxAttempts: 1 });
    made.push(c);
    return c;
  };
  const req = (name = 'job', instanceType = 'fargate-1vcpu-2gb') => ({ ledgerId: randomUUID(), owner: 'abcd1234', name, instanceType, image: IMAGE });
  const ops = (from = 0) => fake.requests.slice(from).map((r) => r.path);

  before(function () {
    const why = EcsMotoFake.unavailable();
    if (why) skipBecause(this, `the ECS tests: ${why}`);
  });
  after(async () => {
    await EcsMotoFake.stopMoto();
  });
  beforeEach(async () => {
    fake = new EcsMotoFake({ provisionMs: 300, pendingMs: 300, stopStageMs: 250 });
    await fake.start();
  });
  afterEach(async () => {
    made.forEach((x) => (x.dispose ? x.dispose() : x.destroy?.()));
    made = [];
    await fake?.stop();
  });

  it('Fargate: PROVISIONING → PENDING → RUNNING → STOPPING → DEPROVISIONING → STOPPED with its timestamps, containers and stop reason', async () => {
    const p = provider();
    const r = req('life');
    const inst = await p.launch(r);
    assert.equal(inst.rawStatus, 'PROVISIONING');
    assert.equal(inst.status, 'provisioning');
    assert.equal(inst.instanceType, 'fargate-1vcpu-2gb');
    assert.equal(inst.pricePerHour, 0.04937);
    assert.equal(inst.metadata.launchType, 'FARGATE');
    assert.equal(inst.metadata.startedBy, ecsStartedBy(r));
    assert.equal(inst.tetherId, `${r.ledgerId}@abcd1234`);
    const seen: string[] = [];
    const track = (d: CloudInstance | undefined) => {
      const s = d?.rawStatus ?? 'gone';
      if (seen[seen.length - 1] !== s) seen.push(s);
      return d;
    };
    const up = await waitFor(async () => {
      const d = track(await p.describe(inst.id));
      return d?.rawStatus === 'RUNNING' ? d : undefined;
    }, WAIT_MS, 'RUNNING');
    const md = up.metadata as Record<string, string | undefined> & { containers: Array<{ name: string; lastStatus: string; exitCode?: number }> };
    const created = Date.parse(md.createdAt!);
    assert.ok(Math.abs(created - Date.parse(up.launchedAt!)) < 1, 'launchedAt is createdAt');
    assert.ok(Date.parse(md.pullStartedAt!) >= created && Date.parse(md.startedAt!) >= Date.parse(md.pullStartedAt!), `createdAt ≤ pullStartedAt ≤ startedAt: ${md.createdAt} ${md.pullStartedAt} ${md.startedAt}`);
    assert.equal(md.stoppedAt, undefined);
    assert.deepEqual(md.containers.map((c) => [c.name, c.lastStatus, c.exitCode]), [['main', 'RUNNING', undefined]]);
    assert.equal(md.desiredStatus, 'RUNNING');

    await p.terminate(inst.id);
    const down = await waitFor(async () => {
      const d = track(await p.describe(inst.id));
      return d?.rawStatus === 'STOPPED' ? d : undefined;
    }, WAIT_MS, 'STOPPED');
    assert.equal(down.status, 'terminated');
    const dm = down.metadata as Record<string, string | undefined> & { containers: Array<{ lastStatus: string; exitCode?: number }> };
    assert.equal(dm.desiredStatus, 'STOPPED');
    assert.equal(dm.stopCode, 'UserInitiated');
    assert.equal(dm.stoppedReason, 'Stopped by Tether');
    assert.ok(Date.parse(dm.stoppedAt!) >= Date.parse(dm.stoppingAt!) && Date.parse(dm.stoppingAt!) >= Date.parse(dm.startedAt!), 'startedAt ≤ stoppingAt ≤ stoppedAt');
    assert.deepEqual(dm.containers.map((c) => [c.lastStatus, c.exitCode]), [['STOPPED', 137]]);
    // The order the task went through, as Tether saw it (a poll may skip a short state, never reorder).
    const order = ['PROVISIONING', 'PENDING', 'RUNNING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'];
    assert.deepEqual(seen, [...seen].sort((a, b) => order.indexOf(a) - order.indexOf(b)), `in order: ${seen.join(' → ')}`);
    assert.ok(seen.includes('RUNNING') && seen.includes('STOPPED'));
    // A stopped task is still listed (ECS keeps it about an hour), as terminated, with its marker.
    const listed = (await p.listInstances()).find((i) => i.id === inst.id);
    assert.equal(listed?.status, 'terminated');
    assert.equal(listed?.tetherId, `${r.ledgerId}@abcd1234`);
    // Stopping it again is fine.
    await p.terminate(inst.id);
  });

  it('a job that ends by itself: STOPPED with its exit code and EssentialContainerExited', async () => {
    const p = provider();
    const inst = await p.launch(req('done'));
    await waitFor(async () => (await p.describe(inst.id))?.rawStatus === 'RUNNING', WAIT_MS, 'RUNNING');
    fake.finish(inst.id, 3);
    const d = await waitFor(async () => {
      const x = await p.describe(inst.id);
      return x?.rawStatus === 'STOPPED' ? x : undefined;
    }, WAIT_MS, 'STOPPED');
    assert.equal(d.metadata.stopCode, 'EssentialContainerExited');
    assert.deepEqual((d.metadata.containers as Array<{ exitCode?: number }>).map((c) => c.exitCode), [3]);
  });

  it('EC2 launch type on a registered container instance: $0 per task (the instance bills), GPU requests from the task definition', async () => {
    const p = provider();
    // No container instance yet: nothing is placed, and that is a refusal (no task exists).
    const n0 = fake.instanceCount();
    const refused = await p.launch(req('nocap', 'ec2-1vcpu-2gb')).then(
      () => assert.fail('launched without capacity'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof CloudApiError && refused.code === 'NoTaskPlaced' && refused.status === 400, String(refused));
    assert.match(refused.remedy, /add EC2 capacity/);
    assert.equal(fake.instanceCount(), n0);

    const { containerInstanceArn, ec2InstanceId } = await fake.addContainerInstance('default');
    const inst = await p.launch(req('gpu', 'ec2-2vcpu-4gb-1gpu'));
    assert.equal(inst.metadata.launchType, 'EC2');
    assert.equal(inst.instanceType, 'ec2-2vcpu-4gb-1gpu');
    assert.equal(inst.gpuCount, 1);
    assert.equal(inst.metadata.gpuRequests, 1);
    assert.equal(inst.pricePerHour, 0);
    assert.match(String(inst.metadata.priceNote), /billed by the EC2 container instance/);
    assert.equal(inst.metadata.containerInstanceArn, containerInstanceArn);
    const described = await p.describe(inst.id);
    assert.equal(described?.metadata.ec2InstanceId, ec2InstanceId, 'the EC2 instance that bills for it');
    assert.match(String(described?.metadata.priceNote), new RegExp(`billed by the EC2 container instance it runs on \\(${ec2InstanceId}\\)`));
    const up = await waitFor(async () => {
      const d = await p.describe(inst.id);
      return d?.rawStatus === 'RUNNING' ? d : undefined;
    }, WAIT_MS, 'RUNNING');
    assert.equal(up.metadata.pullStartedAt !== undefined, true);
    // EC2 (bridge network): no PROVISIONING/DEPROVISIONING stages.
    const seen = new Set<string>();
    await p.terminate(inst.id);
    await waitFor(async () => {
      const d = await p.describe(inst.id);
      seen.add(d!.rawStatus);
      return d?.rawStatus === 'STOPPED';
    }, WAIT_MS, 'STOPPED');
    assert.ok(!seen.has('DEPROVISIONING'), [...seen].join(','));
  });

  it('task definitions: registered once per image and size, reused by later launches', async () => {
    const p = provider();
    const n = fake.requests.length;
    await p.launch(req('a'));
    await p.launch(req('b'));
    assert.equal(ops(n).filter((o) => o === '/RegisterTaskDefinition').length, 1, ops(n).join(' '));
    // Another provider (a new window): finds the family's ACTIVE revision instead of registering again.
    const again = provider();
    const m = fake.requests.length;
    await again.launch(req('c'));
    assert.equal(ops(m).filter((o) => o === '/RegisterTaskDefinition').length, 0, ops(m).join(' '));
    await again.launch(req('d', 'fargate-0.5vcpu-1gb'));
    assert.equal(ops(m).filter((o) => o === '/RegisterTaskDefinition').length, 1);
  });

  it('awslogs: with a log group, each task says its CloudWatch group and stream', async () => {
    const p = provider({ logGroup: '/tether/jobs', executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole' });
    const inst = await p.launch(req('logged'));
    const d = await p.describe(inst.id);
    const taskId = inst.id.split('/').pop();
    assert.deepEqual((d!.metadata.logs as Array<{ group: string; stream: string }>).map((l) => [l.group, l.stream]), [['/tether/jobs', `tether/main/${taskId}`]]);
    assert.match(String(d!.metadata.logsNote), /does not read them/);
    const plain = provider();
    const q = await plain.launch(req('unlogged', 'fargate-0.25vcpu-0.5gb'));
    assert.deepEqual((await plain.describe(q.id))!.metadata.logs, []);
  });

  it('lists every cluster, all pages, running and stopped; tags and startedBy carry the marker; unmanaged tasks have none', async () => {
    // Pages of at most 2 (ECS may return fewer than maxResults): the provider must follow nextToken.
    const paged = new EcsMotoFake({ provisionMs: 0, pendingMs: 0, pageSize: 2 });
    await fake.stop();
    fake = paged;
    await fake.start();
    await sdk().send(new CreateClusterCommand({ clusterName: 'research' }));
    const p = provider();
    const mine = await Promise.all(['one', 'two', 'three'].map((n) => p.launch(req(n))));
    const foreignDefault = await fake.addForeign('nightly-etl');
    const foreignOther = await fake.addForeign('my-notebook', { cluster: 'research', tags: [{ key: 'team', value: 'ml' }] });
    await p.terminate(mine[2]!.id);
    await waitFor(async () => (await p.describe(mine[2]!.id))?.status === 'terminated', WAIT_MS, 'stopped');
    const n = fake.requests.length;
    const all = await p.listInstances();
    const byId = new Map(all.map((i) => [i.id, i]));
    for (const m of mine) assert.ok(byId.get(m.id)?.tetherId?.endsWith('@abcd1234'), `listed with its marker: ${m.id}`);
    assert.equal(byId.get(mine[2]!.id)?.status, 'terminated');
    assert.equal(byId.get(foreignDefault)?.tetherId, undefined);
    assert.equal(byId.get(foreignOther)?.tetherId, undefined);
    assert.equal(byId.get(foreignOther)?.metadata.cluster, 'research');
    assert.equal(byId.get(foreignOther)?.name, 'my-notebook');
    assert.equal(all.length, 5);
    // Pages of 2: ListTasks followed nextToken (default cluster: 3 running + 1 stopped → more than one page).
    const listTasks = fake.requests.slice(n).filter((r) => r.path === '/ListTasks');
    assert.ok(listTasks.some((r) => (r.body as { nextToken?: string }).nextToken), 'followed a nextToken');
    // The launch's tags as ECS has them (DescribeTasks include TAGS).
    const d = await sdk().send(new DescribeTasksCommand({ cluster: 'default', tasks: [mine[0]!.id], include: ['TAGS'] }));
    const tags = Object.fromEntries((d.tasks?.[0]?.tags ?? []).map((t) => [t.key, t.value]));
    assert.equal(tags[ECS_TAG_LEDGER_ID]?.length, 36);
    assert.equal(tags['tether:managed'], 'true');
    assert.equal(tags['tether:origin-ledger'], 'abcd1234');
    assert.equal(tags.Name, markedName({ ledgerId: tags[ECS_TAG_LEDGER_ID]!, owner: 'abcd1234', name: 'one' }));
    // Tags lost (a task started by hand with a marked startedBy): the marker still reads from startedBy.
    const lost = await fake.addForeign(markedName({ ledgerId: 'feedbeef-0000-4000-8000-000000000000', owner: 'abcd1234', name: 'lost' }));
    assert.equal((await p.describe(lost))?.tetherId, 'feedbeef@abcd1234');
    // Listing by marker uses ListTasks' startedBy filter, alone.
    const found = await p.listByStartedBy(ecsStartedBy({ ledgerId: tags[ECS_TAG_LEDGER_ID]!, owner: 'abcd1234', name: 'one' }));
    assert.deepEqual(found.map((i) => i.id), [mine[0]!.id]);
  });

  it('a retried launch (same ledger id) finds its task by startedBy and does not run a second one', async () => {
    const p = provider();
    const r = req('once');
    const a = await p.launch(r);
    const n = fake.instanceCount();
    const b = await provider().launch(r);
    assert.equal(b.id, a.id);
    assert.equal(fake.instanceCount(), n);
  });

  it('RunTask answered 500 after placing the task: the SDK retries with the same clientToken and ECS answers the same task (one task)', async () => {
    const p = provider();
    fake.inject({ method: 'POST', path: /^\/RunTask$/, kind: 'create-then-fail' });
    const n = fake.instanceCount();
    const r = req('retried');
    const inst = await p.launch(r);
    const runs = fake.requests.filter((x) => x.path === '/RunTask').map((x) => (x.body as { clientToken?: string }).clientToken);
    assert.deepEqual(runs, [r.ledgerId, r.ledgerId], 'retried once, with the ledger id as clientToken');
    assert.equal(fake.instanceCount(), n + 1, 'one task');
    assert.equal(inst.tetherId, `${r.ledgerId}@abcd1234`);
  });

  it('a bad size or no image is refused before any call; another region than the account is refused', async () => {
    const p = provider();
    const n = fake.requests.length;
    assert.throws(() => p.checkLaunch({ instanceType: 'fargate-1vcpu-1gb', image: IMAGE }), (e: unknown) => e instanceof CloudApiError && /Fargate runs 1 vCPU with 2–8 GB/.test(e.message));
    assert.throws(() => p.checkLaunch({ instanceType: 'fargate-1vcpu-2gb' }), (e: unknown) => e instanceof CloudApiError && e.code === 'MissingImage' && /--image/.test(e.remedy));
    await assert.rejects(p.launch({ ...req(), instanceType: 'fargate-2vcpu-1gb' }), (e: unknown) => e instanceof CloudApiError && e.code === 'InvalidTaskSize');
    assert.deepEqual(ops(n), []);
    await assert.rejects(p.launch({ ...req(), region: 'eu-west-1' }), (e: unknown) => e instanceof CloudApiError && e.code === 'WrongRegion');
  });

  it('a cluster that does not exist: ClusterNotFoundException with the remedy to create or name one', async () => {
    const p = provider({ cluster: 'nope' });
    // The wizard's first step (the catalogue) already says so.
    await assert.rejects(p.listInstanceTypes(), (e: unknown) => e instanceof CloudApiError && e.code === 'ClusterNotFoundException' && /"nope"/.test(e.message));
    const err = await p.launch(req()).then(
      () => assert.fail('launched into a missing cluster'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CloudApiError && err.code === 'ClusterNotFoundException', String(err));
    assert.match(err.remedy, /create-cluster|--cluster/);
  });
});

describe('the ECS proxy refuses what the real ECS API refuses (spec tests of the fake)', function () {
  this.timeout(120_000);
  let fake: EcsMotoFake;
  let c: ECSClient;
  let td: string;
  let net: { subnet: string; securityGroup: string };
  const refused = async (p: Promise<unknown>, name: string, message?: RegExp) => {
    const e = await p.then(
      () => assert.fail(`accepted; ECS answers ${name}`),
      (x: unknown) => x as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } },
    );
    assert.equal(e.name, name, String(e.message));
    if (message) assert.match(e.message ?? '', message);
    return e;
  };
  before(function () {
    const why = EcsMotoFake.unavailable();
    if (why) skipBecause(this, `the ECS proxy spec tests: ${why}`);
  });
  after(async () => {
    await EcsMotoFake.stopMoto();
  });
  beforeEach(async () => {
    fake = new EcsMotoFake();
    await fake.start();
    c = new ECSClient({ region: 'us-east-1', endpoint: fake.url, credentials: { accessKeyId: fake.apiKey, secretAccessKey: 'testing' }, maxAttempts: 1 });
    td = (await c.send(new RegisterTaskDefinitionCommand({ family: 'spec', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'a', image: IMAGE, memory: 512 }] }))).taskDefinition!.taskDefinitionArn!;
    net = await fake.defaultNetwork();
  });
  afterEach(async () => {
    c?.destroy();
    await fake?.stop();
  });
  const run = (extra: Record<string, unknown> = {}) =>
    c.send(new RunTaskCommand({ cluster: 'default', taskDefinition: td, launchType: 'FARGATE', networkConfiguration: { awsvpcConfiguration: { subnets: [net.subnet], securityGroups: [net.securityGroup] } }, ...extra }));

  it('Fargate sizes outside the table, GPUs on Fargate, and a non-awsvpc Fargate task definition', async () => {
    await refused(c.send(new RegisterTaskDefinitionCommand({ family: 'bad', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '1024', memory: '512', containerDefinitions: [{ name: 'a', image: IMAGE, memory: 512 }] })), 'ClientException', /No Fargate configuration exists for given values: 1024 CPU, 512 memory/);
    await refused(c.send(new RegisterTaskDefinitionCommand({ family: 'bad', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '1024', memory: '2048', containerDefinitions: [{ name: 'a', image: IMAGE, memory: 2048, resourceRequirements: [{ type: 'GPU', value: '1' }] }] })), 'ClientException', /GPU/);
    await refused(c.send(new RegisterTaskDefinitionCommand({ family: 'bad', requiresCompatibilities: ['FARGATE'], networkMode: 'bridge', cpu: '1024', memory: '2048', containerDefinitions: [{ name: 'a', image: IMAGE, memory: 2048 }] })), 'ClientException', /awsvpc/);
    await refused(c.send(new RegisterTaskDefinitionCommand({ family: 'bad name!', containerDefinitions: [{ name: 'a', image: IMAGE, memory: 64 }] })), 'ClientException', /Family/);
  });

  it('clientToken: at most 64 characters 33–126; the same token with other parameters is a ConflictException; the same request answers the same task', async () => {
    await refused(run({ clientToken: 'x'.repeat(65) }), 'InvalidParameterException', /clientToken/);
    await refused(run({ clientToken: 'has space' }), 'InvalidParameterException', /clientToken/);
    const a = await run({ clientToken: 'tok-1', startedBy: 'me' });
    const b = await run({ clientToken: 'tok-1', startedBy: 'me' });
    assert.equal(b.tasks?.[0]?.taskArn, a.tasks?.[0]?.taskArn);
    await refused(run({ clientToken: 'tok-1', startedBy: 'someone-else' }), 'ConflictException');
  });

  it('startedBy, tags and count limits', async () => {
    await refused(run({ startedBy: 'x'.repeat(129) }), 'InvalidParameterException', /startedBy/);
    await refused(run({ startedBy: 'has.dot' }), 'InvalidParameterException', /startedBy/);
    await refused(run({ tags: [{ key: 'aws:owner', value: 'x' }] }), 'InvalidParameterException', /aws:/);
    await refused(run({ tags: [{ key: 'k', value: 'v'.repeat(257) }] }), 'InvalidParameterException', /256/);
    await refused(run({ tags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }), 'InvalidParameterException', /50/);
    await refused(run({ count: 11 }), 'InvalidParameterException', /count/);
  });

  it('ListTasks: startedBy must be the only filter; maxResults 1–100; the default lists desired RUNNING only', async () => {
    await refused(c.send(new ListTasksCommand({ cluster: 'default', startedBy: 'me', desiredStatus: 'STOPPED' })), 'InvalidParameterException', /only filter/);
    await refused(c.send(new ListTasksCommand({ cluster: 'default', maxResults: 101 })), 'InvalidParameterException', /maxResults/);
    const t = (await run({ startedBy: 'me' })).tasks![0]!.taskArn!;
    await c.send(new StopTaskCommand({ cluster: 'default', task: t }));
    assert.deepEqual((await c.send(new ListTasksCommand({ cluster: 'default' }))).taskArns, []);
    assert.deepEqual((await c.send(new ListTasksCommand({ cluster: 'default', desiredStatus: 'STOPPED' }))).taskArns, [t]);
  });

  it('StopTask of an unknown task: 400 InvalidParameterException (moto: a 500); DescribeTasks of one: failures MISSING; tags only with include TAGS', async () => {
    const unknown = 'arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef';
    await run(); // the cluster has a task: moto's "no registered tasks" path is not the one tested
    const e = await refused(c.send(new StopTaskCommand({ cluster: 'default', task: unknown })), 'InvalidParameterException', /referenced task was not found/);
    assert.equal(e.$metadata?.httpStatusCode, 400);
    const d = await c.send(new DescribeTasksCommand({ cluster: 'default', tasks: [unknown] }));
    assert.deepEqual(d.tasks, []);
    assert.deepEqual(d.failures, [{ arn: unknown, reason: 'MISSING' }]);
    const t = (await run({ tags: [{ key: 'team', value: 'ml' }] })).tasks![0]!;
    assert.equal((await c.send(new DescribeTasksCommand({ cluster: 'default', tasks: [t.taskArn!] }))).tasks?.[0]?.tags, undefined);
    assert.deepEqual((await c.send(new DescribeTasksCommand({ cluster: 'default', tasks: [t.taskArn!], include: ['TAGS'] }))).tasks?.[0]?.tags, [{ key: 'team', value: 'ml' }]);
    await refused(c.send(new DescribeTasksCommand({ cluster: 'nope', tasks: [t.taskArn!] })), 'ClusterNotFoundException');
  });

  it('a wrong access key: 403 InvalidClientTokenId', async () => {
    const bad = new ECSClient({ region: 'us-east-1', endpoint: fake.url, credentials: { accessKeyId: 'AKIAWRONG', secretAccessKey: 'x' }, maxAttempts: 1 });
    try {
      const e = await refused(bad.send(new ListTasksCommand({})), 'InvalidClientTokenId');
      assert.equal(e.$metadata?.httpStatusCode, 403);
    } finally {
      bad.destroy();
    }
  });
});
