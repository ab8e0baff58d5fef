// Azure VMs beyond the shared contract suite: the fake refuses what ARM refuses (spec excerpt in
// test/fixtures/azure/), paging, long-running operations, the "Stopped (allocated)" trap, the
// clean-up of a VM's NIC / public IP / OS disk, and credentials from the ecosystem's chain (a fake
// `az` on PATH). Everything over HTTPS on 127.0.0.1 with a throwaway CA.
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { AZURE_ARM_SCOPE, AzureVmProvider, type AzureVmOptions } from '../../src/backends/cloud/azure/azure';
import { CloudApiError, markedName } from '../../src/backends/cloud/provider';
import { AzureArmFake, isCloudError } from '../fakes/azureArmFake';
import { tmpDir, waitFor } from '../helpers/tmp';

const WAIT = 60_000;

/** One raw HTTPS request to the fake (trusting its CA). */
function raw(fake: AzureArmFake, method: string, p: string, body?: unknown, auth: string | null = `Bearer ${fake.apiKey}`): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${fake.url}${p}`, { method, ca: AzureArmFake.ca, headers: { ...(auth ? { Authorization: auth } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

describe('Azure VMs: the HTTPS ARM fake and the client, beyond the contract suite', function () {
  this.timeout(2 * WAIT);
  let fake: AzureArmFake;
  const made: AzureVmProvider[] = [];
  const provider = (o: Partial<AzureVmOptions> = {}) => {
    const p = new AzureVmProvider({ subscriptionId: fake.subscriptionId, resourceGroup: fake.resourceGroup, location: fake.location, baseUrl: fake.url, accessToken: fake.apiKey, ca: AzureArmFake.ca, retries: 2, backoffMs: 20, pollMs: 20, ...o });
    made.push(p);
    return p;
  };
  const vms = () => `/subscriptions/${fake.subscriptionId}/resourceGroups/${fake.resourceGroup}/providers/Microsoft.Compute/virtualMachines`;
  const req = (name = 'job') => ({ ledgerId: randomUUID(), name, instanceType: 'Standard_NC4as_T4_v3', region: 'eastus', sshKeyName: 'laptop' });

  beforeEach(async () => {
    fake = new AzureArmFake({ bootMs: 200, transitionMs: 300 });
    await fake.start();
  });
  afterEach(async () => {
    made.length = 0;
    await fake.stop();
  });

  describe('the fake refuses what ARM refuses, in ARM error bodies', () => {
    it('api-version: missing, malformed, unknown', async () => {
      const missing = await raw(fake, 'GET', vms());
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, 'MissingApiVersionParameter');
      const malformed = await raw(fake, 'GET', `${vms()}?api-version=latest`);
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, 'InvalidApiVersionParameter');
      const unknown = await raw(fake, 'GET', `${vms()}?api-version=2099-01-01`);
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.code, 'NoRegisteredProviderFound');
      for (const r of [missing, malformed, unknown]) assert.ok(isCloudError(r.body), `a CloudError: ${JSON.stringify(r.body)}`);
      assert.equal((await raw(fake, 'GET', `${vms()}?api-version=2024-11-01`)).status, 200);
    });

    it('no token, a wrong token', async () => {
      const none = await raw(fake, 'GET', `${vms()}?api-version=2024-11-01`, undefined, null);
      assert.equal(none.status, 401);
      assert.equal(none.body.error.code, 'AuthenticationFailed');
      const wrong = await raw(fake, 'GET', `${vms()}?api-version=2024-11-01`, undefined, 'Bearer nope');
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error.code, 'InvalidAuthenticationToken');
    });

    it('a VM body the spec refuses: unknown member, missing required member, bad enum, no location, bad name', async () => {
      // The body Tether sends, as the fake recorded it (accepted: 201).
      const p = provider();
      const inst = await p.launch(req());
      const sent = fake.requests.find((r) => r.method === 'PUT' && r.path === `${vms()}/${inst.id}`)!.body as any;
      const put = (name: string, body: unknown) => raw(fake, 'PUT', `${vms()}/${name}?api-version=2024-11-01`, body);
      const copy = () => JSON.parse(JSON.stringify(sent));

      const unknownMember = copy();
      unknownMember.properties.hardwareProfile.vmSizee = 'Standard_B2s';
      const a = await put('vm-a', unknownMember);
      assert.equal(a.status, 400);
      assert.equal(a.body.error.code, 'InvalidRequestContent');
      assert.match(a.body.error.message, /Could not find member 'vmSizee'/);

      const noCreateOption = copy();
      delete noCreateOption.properties.storageProfile.osDisk.createOption;
      const b = await put('vm-b', noCreateOption);
      assert.equal(b.status, 400);
      assert.equal(b.body.error.code, 'InvalidParameter');
      assert.match(b.body.error.message, /Required parameter 'properties\.storageProfile\.osDisk\.createOption' is missing/);

      const badEnum = copy();
      badEnum.properties.storageProfile.osDisk.caching = 'Sometimes';
      assert.equal((await put('vm-c', badEnum)).status, 400);

      const noLocation = copy();
      delete noLocation.location;
      const d = await put('vm-d', noLocation);
      assert.equal(d.body.error.code, 'LocationRequired');

      const e = await put('bad-name-', copy());
      assert.equal(e.status, 400);
      assert.equal(e.body.error.code, 'InvalidParameter');

      const badKeyPath = copy();
      badKeyPath.properties.osProfile.linuxConfiguration.ssh.publicKeys[0].path = '/root/.ssh/authorized_keys';
      assert.equal((await put('vm-f', badKeyPath)).status, 400);
      assert.equal(fake.instanceCount(), 1, 'none of them made a VM');
    });

    it('the client refuses to send a token over plain http (like the Azure SDK), and never calls', async () => {
      const n = fake.requests.length;
      const p = provider({ baseUrl: fake.url.replace('https:', 'http:') });
      await assert.rejects(p.listInstances(), (e: unknown) => e instanceof CloudApiError && /refusing to send an Azure token over plain http/.test(e.message));
      assert.equal(fake.requests.length, n);
    });
  });

  it('lists follow nextLink to the end (VMs and resource SKUs, two to a page)', async () => {
    for (let i = 0; i < 5; i++) fake.addForeign(`box-${i}`);
    const p = provider();
    const list = await p.listInstances();
    assert.deepEqual(list.map((i) => i.id).sort(), ['box-0', 'box-1', 'box-2', 'box-3', 'box-4']);
    assert.ok(list.every((i) => i.status === 'running' && i.tetherId === undefined), 'foreign VMs, running, no marker');
    const pages = fake.requests.filter((r) => r.method === 'GET' && r.path === vms());
    assert.equal(pages.length, 3, 'three pages of two');
    assert.ok(pages.slice(1).every((r) => /(\$|%24)skiptoken=/.test(r.search ?? '')));
    const types = await p.listInstanceTypes();
    assert.ok(fake.requests.filter((r) => r.path.endsWith('/providers/Microsoft.Compute/skus')).length >= 3);
    const nd = types.find((t) => t.name === 'Standard_ND96asr_v4')!;
    assert.deepEqual(nd.regionsWithCapacity, [], 'a size restricted for the subscription has no capacity');
    assert.equal(nd.gpuCount, 8);
    assert.ok(!types.some((t) => t.name === 'Standard_B2s'), 'no GPU, not catalogued: not offered');
    const v100 = types.find((t) => t.name === 'Standard_NC6s_v3')!;
    assert.equal(v100.pricePerHour, 3.06);
  });

  it('powered off from inside: Stopped (allocated) is shown as still billing, with a warning; stop deallocates it', async () => {
    const p = provider();
    const inst = await p.launch(req());
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', WAIT, 'running');
    fake.powerOffFromInside(inst.id);
    const d = (await p.describe(inst.id))!;
    assert.equal(d.rawStatus, 'PowerState/stopped');
    assert.equal(d.status, 'stopping', 'not stopped: compute still bills');
    assert.match(String(d.metadata.billingWarning), /Stopped \(allocated\).*still bills compute/);
    assert.ok(p.billing.computeStates.includes(d.status as never), 'the billing rule counts it');
    await p.stop(inst.id);
    assert.ok(fake.requests.some((r) => r.method === 'POST' && r.path === `${vms()}/${inst.id}/deallocate`));
    const after = await waitFor(async () => {
      const x = await p.describe(inst.id);
      return x?.status === 'stopped' ? x : undefined;
    }, WAIT, 'deallocated');
    assert.equal(after.rawStatus, 'PowerState/deallocated');
    assert.equal(after.metadata.billingWarning, undefined);
    await p.terminate(inst.id);
  });

  it('launch waits for the network on its Azure-AsyncOperation; terminate waits for the delete and leaves nothing of the VM', async () => {
    const p = provider();
    const inst = await p.launch(req());
    const ops = fake.requests.filter((r) => r.method === 'GET' && /\/operations\/[^/]+$/.test(r.path));
    assert.ok(ops.length >= 2, `polled the NSG and VNet operations (${ops.length})`);
    const order = fake.requests.filter((r) => r.method === 'PUT').map((r) => r.path.split('/').slice(-2)[0]);
    assert.deepEqual(order, ['networkSecurityGroups', 'virtualNetworks', 'virtualMachines']);
    assert.deepEqual(
      fake.resources().filter((r) => r.includes(inst.id.toLowerCase())),
      [`disks/${inst.id}-osdisk`, `networkInterfaces/${inst.id}-nic`, `publicIPAddresses/${inst.id}-ip`],
    );
    await waitFor(async () => (await p.describe(inst.id))?.status === 'running', WAIT, 'running');
    // A second launch needs no network set-up again (same client).
    const n = fake.requests.length;
    await p.terminate(inst.id);
    assert.equal(await p.describe(inst.id), undefined, 'gone as soon as terminate returns (it waited for the delete)');
    assert.ok(fake.requests.slice(n).some((r) => r.method === 'GET' && /\/Microsoft\.Compute\/locations\/eastus\/operations\//.test(r.path)), 'polled the delete operation');
    assert.deepEqual(fake.resources().filter((r) => r.includes(inst.id.toLowerCase())), []);
  });

  it('terminate deletes a NIC, public IP or OS disk that outlived its VM; what it cannot delete is named as still billing', async () => {
    const p = provider();
    fake.keepOnDelete.add('disks');
    const a = await p.launch(req('a'));
    await p.terminate(a.id);
    assert.ok(fake.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/providers/Microsoft.Compute/disks/${a.id}-osdisk`)), 'the left disk deleted by Tether');
    assert.deepEqual(fake.resources().filter((r) => r.includes(a.id.toLowerCase())), []);

    fake.keepOnDelete.add('publicIPAddresses');
    fake.refuseDelete.add('publicIPAddresses');
    const b = await p.launch(req('b'));
    const err = await p.terminate(b.id).then(
      () => assert.fail('terminate should report what still bills'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CloudApiError);
    assert.equal(err.code, 'LeftoversStillBilling');
    assert.match(err.message, new RegExp(`still bill: public IP ${b.id}-ip`));
    assert.doesNotMatch(err.message, /OS disk/, 'the disk it could delete is not listed');
    assert.deepEqual(fake.resources().filter((r) => r.includes(b.id.toLowerCase())), [`publicIPAddresses/${b.id}-ip`]);
  });

  it('a foreign VM keeps its disk and NIC when picked for terminate (only Tether\'s VMs are cleaned up after)', async () => {
    const p = provider();
    fake.addForeign('mine-own');
    await p.terminate('mine-own');
    assert.ok(!fake.requests.some((r) => r.method === 'DELETE' && /\/(disks|networkInterfaces|publicIPAddresses)\//.test(r.path)));
  });

  it('a mistyped resource group is an error, never "the VM is gone" (so no record is ended by it)', async () => {
    const p = provider();
    const inst = await p.launch(req());
    const wrong = provider({ resourceGroup: 'tether-rg-typo' });
    const err = await wrong.describe(inst.id).then(
      (d) => assert.fail(`describe should fail, got ${JSON.stringify(d)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CloudApiError);
    assert.equal(err.code, 'ResourceGroupNotFound');
    assert.match(err.remedy, /resource group tether-rg-typo.*az group create/);
    await assert.rejects(wrong.terminate(inst.id), (e: unknown) => e instanceof CloudApiError && e.code === 'ResourceGroupNotFound');
    await assert.rejects(wrong.stop(inst.id), (e: unknown) => e instanceof CloudApiError && e.code === 'ResourceGroupNotFound' && !/no longer exists/.test(e.message));
    assert.equal((await p.describe(inst.id))?.id, inst.id, 'the VM is still there');
  });

  it('VM names: the marker, with the user name made legal for Azure', async () => {
    const p = provider();
    const r = { ...req('my job/№1.'), ledgerId: randomUUID() };
    const inst = await p.launch(r);
    assert.equal(inst.id, markedName({ ...r, name: 'my-job-1' }));
    assert.ok(inst.tetherId?.startsWith(r.ledgerId));
  });

  describe('credentials from the ecosystem chain', () => {
    const saved: Record<string, string | undefined> = {};
    const vars = ['PATH', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_USERNAME', 'AZURE_PASSWORD', 'AZURE_FEDERATED_TOKEN_FILE', 'IDENTITY_ENDPOINT', 'MSI_ENDPOINT'];
    beforeEach(() => {
      for (const v of vars) saved[v] = process.env[v];
      for (const v of vars.slice(1)) delete process.env[v];
    });
    afterEach(() => {
      for (const v of vars) {
        if (saved[v] === undefined) delete process.env[v];
        else process.env[v] = saved[v];
      }
    });

    it('no environment credential → the Azure CLI login (`az account get-access-token`) → ARM calls with that token', async () => {
      const bin = tmpDir('tether-fake-az-');
      const log = path.join(bin, 'calls.log');
      const expires = Math.floor(Date.now() / 1000) + 3600;
      fs.writeFileSync(
        path.join(bin, 'az'),
        `#!/bin/sh\necho "$@" >> '${log}'\ncat <<'EOF'\n${JSON.stringify({ accessToken: fake.apiKey, expiresOn: new Date(expires * 1000).toISOString().replace('T', ' ').slice(0, 19), expires_on: expires, subscription: fake.subscriptionId, tenant: 't', tokenType: 'Bearer' })}\nEOF\n`,
        { mode: 0o755 },
      );
      process.env.PATH = `${bin}:${saved.PATH ?? ''}`;
      const p = provider({ accessToken: undefined });
      const list = await p.listInstances();
      assert.deepEqual(list, []);
      const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
      assert.equal(calls.length, 1, 'one token, cached for the next calls');
      assert.match(calls[0]!, /^account get-access-token --output json --resource https:\/\/management\.azure\.com/);
      assert.ok(AZURE_ARM_SCOPE.startsWith('https://management.azure.com'));
      await p.listInstances();
      assert.equal(fs.readFileSync(log, 'utf8').trim().split('\n').length, 1);
      assert.ok(fake.requests.every((r) => r.authorization === `Bearer ${fake.apiKey}`));
    });

    it('an injected token source that fails: a CloudApiError with the credentials remedy, nothing sent', async () => {
      const n = fake.requests.length;
      const p = provider({ accessToken: undefined, credential: { getToken: () => Promise.reject(new Error('EnvironmentCredential is unavailable. AzureCliCredential: Please run az login.')) } });
      const err = await p.listInstances().then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError);
      assert.equal(err.status, 401);
      assert.match(err.remedy, /az login/);
      assert.equal(fake.requests.length, n);
    });
  });
});
