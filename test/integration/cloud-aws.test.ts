/**
 * The AWS EC2 provider with the real @aws-sdk/client-ec2 against moto (an AWS emulator, started
 * by test/helpers/moto.ts with AMI and instance-type validation). No test calls real AWS.
 * moto's instances get fake public IPs: nothing here connects to them.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { EC2ServiceException, RunInstancesCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { AwsEc2Provider, AWS_TAG_LEDGER_ID, AWS_TAG_MANAGED, awsClientToken, mapAwsState, toAwsCloudApiError, type AwsEc2Options } from '../../src/backends/cloud/aws/aws';
import { CloudApiError, markedName } from '../../src/backends/cloud/provider';
import { CloudProviderType } from '../../src/core/protocols';
import { findMotoServer, startMoto, type MotoServer } from '../helpers/moto';
import { freePort as closedPort } from '../helpers/net';
import { skipBecause } from '../helpers/skip';

/** An Ubuntu AMI in moto's built-in image list (AMI validation is on). */
const AMI = 'ami-1e749f67';
const DUMMY = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Records the input and output of every command `client` sends (and can fail one on purpose). */
function spy(client: EC2Client, opts: { loseFirstResponseOf?: string } = {}) {
  const calls: { command: string; input: any; output?: any }[] = [];
  let lost = false;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const call: { command: string; input: any; output?: any } = { command: String(context.commandName), input: args.input };
      calls.push(call);
      const res = await next(args);
      call.output = res.output;
      if (opts.loseFirstResponseOf === call.command && !lost) {
        lost = true;
        const e = new Error('socket hang up after the request was sent');
        (e as any).code = 'ECONNRESET';
        throw e;
      }
      return res;
    },
    { step: 'initialize', name: 'tetherTestSpy' },
  );
  return calls;
}


describe('AWS EC2 provider (real @aws-sdk/client-ec2 against moto)', function () {
  this.timeout(30000);
  let moto: MotoServer | undefined;
  let p: AwsEc2Provider;
  const providers: AwsEc2Provider[] = [];
  const make = (o: Partial<AwsEc2Options> = {}) => {
    const x = new AwsEc2Provider({ region: 'us-east-1', endpoint: moto!.endpoint, credentials: DUMMY, defaultImageId: AMI, ...o });
    providers.push(x);
    return x;
  };

  before(async function () {
    const found = findMotoServer();
    if (!found.bin) {
      skipBecause(this, `the AWS EC2 tier: moto_server (moto 5.x, the AWS emulator in the machine image's pyenv Python) was not found; looked at:\n  ${found.searched.join('\n  ')}`);
    }
    moto = await startMoto(found.bin!);
  });
  after(async () => {
    for (const x of providers) x.dispose();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto!.reset();
    p = make();
  });

  it('lists instance types with GPUs, priced from the shipped dated catalogue (unpriced ones say so)', async () => {
    assert.match(p.catalogue.asOf, /^\d{4}-\d{2}-\d{2}$/);
    assert.match(p.catalogue.source, /^https:\/\/aws\.amazon\.com\//);
    const types = await p.listInstanceTypes();
    const byName = new Map(types.map((t) => [t.name, t]));
    const t4 = byName.get('g4dn.xlarge')!;
    assert.equal(t4.gpuType, 'NVIDIA T4');
    assert.equal(t4.gpuCount, 1);
    assert.equal(t4.vcpus, 4);
    assert.equal(t4.pricePerHour, p.catalogue.regions['us-east-1']!['g4dn.xlarge']);
    assert.match(t4.description!, new RegExp(`as of ${p.catalogue.asOf}`));
    const a100 = byName.get('p4d.24xlarge')!;
    assert.equal(a100.gpuType, 'NVIDIA A100');
    assert.equal(a100.gpuCount, 8);
    assert.ok(a100.pricePerHour > 10);
    // A GPU type missing from the catalogue: no guessed price, and a description that says why.
    const unpriced = types.filter((t) => t.gpuCount > 0 && Number.isNaN(t.pricePerHour));
    assert.ok(unpriced.length > 0);
    assert.match(unpriced[0]!.description!, /no price: not in Tether's AWS price catalogue/);
    // CPU types appear only when catalogued; every catalogued type is one EC2 (moto's copy) knows.
    assert.equal(byName.get('t3.micro')!.pricePerHour, 0.0104);
    assert.ok(types.every((t) => t.gpuCount > 0 || !Number.isNaN(t.pricePerHour)));
    for (const [region, prices] of Object.entries(p.catalogue.regions)) {
      for (const [name, price] of Object.entries(prices)) {
        assert.ok(Number.isFinite(price) && price > 0, `${region} ${name}`);
        assert.ok(byName.has(name), `catalogued ${name} is not an EC2 instance type`);
      }
    }
    // GPU types first, largest first.
    assert.ok(types[0]!.gpuCount >= types[types.length - 1]!.gpuCount);
  });

  it('the catalogue asks EC2 only for what it shows (GPU families and priced types, filtered and paginated) and shows the same as the whole list', async function () {
    // The comparison lists every type once (moto: over a thousand, seconds on a loaded machine).
    this.timeout(300_000);
    const calls = spy(p.client());
    const shown = await p.listInstanceTypes();
    const asked = calls.filter((c) => c.command === 'DescribeInstanceTypesCommand');
    assert.ok(asked.length >= 1);
    for (const c of asked) {
      assert.equal(c.input.InstanceTypes, undefined);
      assert.ok(c.input.MaxResults > 0 && c.input.MaxResults <= 100, `paginated (MaxResults ${c.input.MaxResults})`);
      assert.equal(c.input.Filters?.length, 1);
      assert.equal(c.input.Filters[0].Name, 'instance-type');
      assert.ok(c.input.Filters[0].Values.length <= 100);
    }
    const values = asked.flatMap((c) => c.input.Filters[0].Values as string[]);
    assert.ok(values.includes('g*') && values.includes('p*'), values.join(','));
    assert.ok(values.includes('t3.micro'), 'a priced CPU type is asked for by name');
    const answered = asked.reduce((n, c) => n + (c.output.InstanceTypes?.length ?? 0), 0);
    const all = make({ includeAllTypes: true, requestTimeoutMs: 240_000 });
    const everything = await all.listInstanceTypes();
    assert.ok(answered < everything.length / 2, `asked for ${answered} of ${everything.length} types`);
    // What the wizard shows is unchanged: every GPU type and every priced type of the full list.
    const expected = everything.filter((t) => t.gpuCount > 0 || !Number.isNaN(t.pricePerHour));
    assert.deepEqual(
      shown.map((t) => t.name),
      expected.map((t) => t.name),
    );
    assert.deepEqual(shown, expected);
  });

  it('launches with the ledger id as ClientToken and tags; pending, then running', async () => {
    const calls = spy(p.client());
    const inst = await p.launch({ ledgerId: 'led-0001-aws', name: 'train', instanceType: 'g4dn.xlarge' });
    assert.equal(inst.provider, CloudProviderType.AWS);
    assert.match(inst.id, /^i-[0-9a-f]+$/);
    assert.equal(inst.rawStatus, 'pending');
    assert.equal(inst.status, 'provisioning');
    assert.equal(inst.tetherId, 'led-0001-aws');
    assert.equal(inst.name, markedName('led-0001-aws', 'train'));
    assert.equal(inst.gpuType, 'NVIDIA T4');
    assert.equal(inst.pricePerHour, 0.526);
    assert.equal(inst.sshPort, 22);
    assert.ok(inst.sshHost, 'public DNS or IP');
    assert.ok(inst.launchedAt);

    const run = calls.find((c) => c.command === 'RunInstancesCommand')!;
    assert.equal(run.input.ClientToken, 'led-0001-aws');
    assert.equal(run.input.MinCount, 1);
    assert.equal(run.input.MaxCount, 1);

    const again = await p.describe(inst.id);
    assert.equal(again!.rawStatus, 'running');
    assert.equal(again!.status, 'running');
    // The tags as EC2 stores them, read with the SDK directly.
    const raw = await p.client().send(new DescribeInstancesCommand({ InstanceIds: [inst.id] }));
    const tags = Object.fromEntries((raw.Reservations![0]!.Instances![0]!.Tags ?? []).map((t) => [t.Key, t.Value]));
    assert.deepEqual(tags, { [AWS_TAG_LEDGER_ID]: 'led-0001-aws', [AWS_TAG_MANAGED]: 'true', Name: markedName('led-0001-aws', 'train') });
    assert.equal(p.consoleUrl(inst), `https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#InstanceDetails:instanceId=${inst.id}`);
  });

  it('a retry after a lost RunInstances answer launches nothing new (tag lookup; moto does not enforce ClientToken, EC2 does)', async () => {
    const calls = spy(p.client(), { loseFirstResponseOf: 'RunInstancesCommand' });
    const req = { ledgerId: 'led-retry', name: 'job', instanceType: 'g5.xlarge' };
    await assert.rejects(p.launch(req), (e: unknown) => e instanceof CloudApiError && e.code === 'ECONNRESET');
    const second = await p.launch(req);
    const third = await p.launch(req);
    assert.equal(second.id, third.id);
    assert.equal(calls.filter((c) => c.command === 'RunInstancesCommand').length, 1, 'exactly one RunInstances');
    const all = await p.listInstances();
    assert.deepEqual(
      all.map((i) => i.id),
      [second.id],
    );
    assert.equal(second.tetherId, 'led-retry');
  });

  it('describes by id; an unknown or malformed id is undefined', async () => {
    const inst = await p.launch({ ledgerId: 'led-desc', name: 'd', instanceType: 't3.micro' });
    const d = await p.describe(inst.id);
    assert.equal(d!.id, inst.id);
    assert.equal(d!.instanceType, 't3.micro');
    assert.equal(d!.gpuCount, 0);
    assert.equal(d!.pricePerHour, 0.0104);
    assert.equal(await p.describe('i-0123456789abcdef0'), undefined);
    assert.equal(await p.describe('not-an-instance'), undefined);
  });

  it("lists Tether's instances with tetherId and one launched outside Tether without it", async () => {
    const ours = await p.launch({ ledgerId: 'led-list', name: 'ours', instanceType: 't3.micro' });
    const res = await p.client().send(new RunInstancesCommand({ ImageId: AMI, InstanceType: 't3.small', MinCount: 1, MaxCount: 1 }));
    const theirsId = res.Instances![0]!.InstanceId!;
    const all = await p.listInstances();
    assert.equal(all.length, 2);
    assert.equal(all.find((i) => i.id === ours.id)!.tetherId, 'led-list');
    assert.equal(all.find((i) => i.id === ours.id)!.metadata.managed, true);
    const theirs = all.find((i) => i.id === theirsId)!;
    assert.equal(theirs.tetherId, undefined);
    assert.equal(theirs.metadata.managed, false);
    assert.equal(theirs.pricePerHour, 0.0208);
    assert.deepEqual(
      (await p.listTetherInstances()).map((i) => i.id),
      [ours.id],
    );
    assert.deepEqual(
      (await p.listTetherInstances('led-list')).map((i) => i.id),
      [ours.id],
    );
    assert.deepEqual(await p.listTetherInstances('led-other'), []);
  });

  it('terminates (shutting-down, then terminated); terminating again or an unknown id is fine', async () => {
    const inst = await p.launch({ ledgerId: 'led-term', name: 't', instanceType: 't3.micro' });
    const calls = spy(p.client());
    await p.terminate(inst.id);
    const term = calls.find((c) => c.command === 'TerminateInstancesCommand')!;
    assert.equal(term.output.TerminatingInstances[0].CurrentState.Name, 'shutting-down');
    assert.equal(mapAwsState('shutting-down'), 'terminating');
    const d = await p.describe(inst.id);
    assert.equal(d!.rawStatus, 'terminated');
    assert.equal(d!.status, 'terminated');
    await p.terminate(inst.id);
    await p.terminate('i-0123456789abcdef0');
    // A terminated instance is no launch to reuse: the same ledger id launches anew.
    const relaunch = await p.launch({ ledgerId: 'led-term', name: 't', instanceType: 't3.micro' });
    assert.notEqual(relaunch.id, inst.id);
  });

  it('maps AWS errors from moto: InvalidAMIID, InvalidInstanceType, missing AMI', async () => {
    await assert.rejects(p.launch({ ledgerId: 'led-ami', name: 'x', instanceType: 't3.micro', image: 'ami-00000000deadbeef' }), (e: unknown) => {
      assert.ok(e instanceof CloudApiError);
      assert.equal(e.code, 'InvalidAMIID.NotFound');
      assert.equal(e.provider, 'AWS EC2');
      assert.match(e.remedy, /AMI/);
      return true;
    });
    await assert.rejects(p.launch({ ledgerId: 'led-type', name: 'x', instanceType: 'g99.huge' }), (e: unknown) => {
      assert.ok(e instanceof CloudApiError);
      assert.match(e.code!, /^InvalidInstanceType/);
      assert.match(e.remedy, /instance type/);
      return true;
    });
    const noAmi = make({ defaultImageId: undefined });
    await assert.rejects(noAmi.launch({ ledgerId: 'led-noami', name: 'x', instanceType: 't3.micro' }), (e: unknown) => e instanceof CloudApiError && e.code === 'MissingParameter');
    assert.deepEqual(await p.listInstances(), []);
  });

  it('wrong credentials: AuthFailure with a credentials remedy (a second moto that validates keys)', async function () {
    // moto checks access keys against its IAM when INITIAL_NO_AUTH_ACTION_COUNT=0; these keys exist nowhere.
    const strict = await startMoto(moto!.bin, { env: { INITIAL_NO_AUTH_ACTION_COUNT: '0' } });
    try {
      const q = make({ endpoint: strict.endpoint, credentials: { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'wrong-secret-value' } });
      await assert.rejects(q.listInstances(), (e: unknown) => {
        assert.ok(e instanceof CloudApiError);
        assert.equal(e.code, 'AuthFailure');
        assert.equal(e.status, 401);
        assert.match(e.remedy, /credentials/);
        assert.doesNotMatch(e.message + e.remedy, /wrong-secret-value/);
        return true;
      });
    } finally {
      await strict.stop();
    }
  });
});

describe('AWS EC2 provider: errors and tokens (no emulator needed)', function () {
  this.timeout(30000);
  const providers: AwsEc2Provider[] = [];
  const make = (o: Partial<AwsEc2Options> & { endpoint: string }) => {
    const x = new AwsEc2Provider({ region: 'us-east-1', credentials: DUMMY, defaultImageId: AMI, ...o });
    providers.push(x);
    return x;
  };
  after(() => providers.forEach((x) => x.dispose()));

  it('an unreachable endpoint is a CloudApiError naming the endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const q = make({ endpoint });
    await assert.rejects(q.listInstances(), (e: unknown) => {
      assert.ok(e instanceof CloudApiError);
      assert.equal(e.code, 'ECONNREFUSED');
      assert.ok(e.remedy.includes(endpoint), e.remedy);
      return true;
    });
  });

  it("RequestLimitExceeded is retried by the SDK's standard retry strategy, then reported (local HTTP server answering EC2's error XML)", async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'text/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>req-1</RequestID></Response>');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const q = make({ endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, maxAttempts: 2 });
      await assert.rejects(q.listInstances(), (e: unknown) => {
        assert.ok(e instanceof CloudApiError);
        assert.equal(e.code, 'RequestLimitExceeded');
        assert.equal(e.status, 503);
        assert.match(e.remedy, /retry strategy already retried with backoff \(2 attempts in all\)/);
        return true;
      });
      assert.equal(requests, 2);
    } finally {
      server.close();
    }
  });

  it('maps SDK errors moto cannot produce (injected EC2ServiceException: capacity, quota, permissions)', () => {
    const sdkError = (name: string, message: string, status = 400) =>
      new EC2ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: status, attempts: 1, requestId: 'r-1' } });
    const cap = toAwsCloudApiError(sdkError('InsufficientInstanceCapacity', 'We currently do not have sufficient p4d.24xlarge capacity', 500), 'RunInstances', 'x');
    assert.equal(cap.code, 'InsufficientInstanceCapacity');
    assert.match(cap.message, /sufficient p4d\.24xlarge capacity \[request r-1\]/);
    assert.match(cap.remedy, /another availability zone, region or instance type/);
    assert.match(toAwsCloudApiError(sdkError('VcpuLimitExceeded', 'vCPU limit'), 'RunInstances', 'x').remedy, /Service Quotas/);
    assert.match(toAwsCloudApiError(sdkError('UnauthorizedOperation', 'not authorized', 403), 'RunInstances', 'x').remedy, /IAM policy allows ec2:RunInstances/);
    assert.match(toAwsCloudApiError(sdkError('IdempotentParameterMismatch', 'mismatch'), 'RunInstances', 'x').remedy, /new launch/);
    const noCreds = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    assert.match(toAwsCloudApiError(noCreds, 'DescribeInstances', 'x').remedy, /credentials/);
  });

  it('ClientToken: the ledger id when it fits EC2 rules, else a stable ≤ 64-character hash', () => {
    assert.equal(awsClientToken('01J9Z7-abc'), '01J9Z7-abc');
    const long = 'x'.repeat(80);
    assert.equal(awsClientToken(long), awsClientToken(long));
    assert.ok(awsClientToken(long).length <= 64);
    assert.notEqual(awsClientToken('ledger id with spaces'), 'ledger id with spaces');
    assert.match(awsClientToken('é-ünïcode'), /^[\x21-\x7e]{1,64}$/);
  });
});
