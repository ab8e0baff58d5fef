// Azure VMs through the real `tether` CLI (a child process), against the HTTPS ARM fake: the CLI
// trusts the fake's throwaway CA through NODE_EXTRA_CA_CERTS, and gets its token from
// TETHER_AZURE_ACCESS_TOKEN (the real ARM cannot be called from tests).
import { strict as assert } from 'node:assert';
import { AZURE_SHIPPED_CATALOGUE } from '../../src/backends/cloud/azure/azure';
import type { StatusReport } from '../../src/workspace/engine';
import { AzureArmFake } from '../fakes/azureArmFake';
import { runCli } from '../helpers/cli';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const PRICE = AZURE_SHIPPED_CATALOGUE.regions.eastus!.Standard_NC4as_T4_v3!;

const envFor = (fake: AzureArmFake, stateDir: string): Record<string, string> => ({
  TETHER_STATE_DIR: stateDir,
  TETHER_AZURE_ACCESS_TOKEN: fake.apiKey,
  TETHER_AZURE_API_URL: fake.url,
  NODE_EXTRA_CA_CERTS: AzureArmFake.caFile,
  // Nothing from the machine's own Azure setup.
  AZURE_SUBSCRIPTION_ID: '',
  TETHER_AZURE_RESOURCE_GROUP: '',
  AZURE_DEFAULTS_GROUP: '',
  TETHER_AZURE_LOCATION: '',
});

const acct = (fake: AzureArmFake) => ['--subscription', fake.subscriptionId, '--resource-group', fake.resourceGroup, '--region', 'eastus'];

describe('tether CLI with Azure VMs (HTTPS ARM fake)', function () {
  this.timeout(120_000);
  let fake: AzureArmFake;
  let env: Record<string, string>;
  let ws: string;
  before(async () => {
    fake = new AzureArmFake({ bootMs: 300, transitionMs: 300 });
    await fake.start();
    env = envFor(fake, tmpDir('tether-azure-cli-'));
    ws = workspaceWith({ plugins: [] });
  });
  after(async () => {
    await fake?.stop();
  });

  it('types → provision (intent first) → running → powered off inside: still billing, said so → stop (deallocate) → terminate; a foreign VM stays unmanaged', async () => {
    const types = await runCli(['cloud', 'types', 'azure', '--json', ...acct(fake), '--workspace', ws], env);
    assert.equal(types.code, 0, types.stderr);
    const t4 = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number }>).find((t) => t.name === 'Standard_NC4as_T4_v3');
    assert.equal(t4?.pricePerHour, PRICE);
    const foreign = fake.addForeign('someone-elses-vm');
    const args = ['provision', '--provider', 'azure', ...acct(fake), '--type', 'Standard_NC4as_T4_v3', '--ssh-key', 'laptop', '--name', 'trainer', '--workspace', ws];
    const unconfirmed = await runCli(args, env);
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(unconfirmed.stderr, /this launches Standard_NC4as_T4_v3 in eastus at \$0\.53\/h/);
    assert.equal(fake.instanceCount(), 1, 'nothing launched without --yes (only the foreign one)');
    const launch = await runCli([...args, '--yes'], env);
    assert.equal(launch.code, 0, launch.stderr);
    assert.match(launch.stdout, /^launched trainer: Azure VMs tether-\S+-trainer Standard_NC4as_T4_v3 eastus/);
    assert.equal(fake.instanceCount(), 2);
    const status = async () => JSON.parse((await runCli(['status', '--json', ...acct(fake), '--workspace', ws], env)).stdout) as StatusReport;
    const st = await waitFor(async () => {
      const s = await status();
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'running' ? s : undefined;
    }, 30_000, 'the VM running');
    const mine = st.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(mine.managed, true);
    assert.equal(mine.pricePerHour, PRICE);
    assert.equal(mine.rawStatus, 'PowerState/running');
    assert.match(mine.sshCommand ?? '', /azureuser@127\.0\.0\.1/);
    assert.equal(st.cloud.instances.find((i) => i.id === foreign)?.managed, false);

    // Shut down from inside: Stopped (allocated) — still billing compute, and the status says so.
    fake.powerOffFromInside(mine.id!);
    const off = await waitFor(async () => {
      const s = await status();
      const v = s.cloud.instances.find((i) => i.name === 'trainer');
      return v?.rawStatus === 'PowerState/stopped' ? s : undefined;
    }, 30_000, 'the VM stopped (allocated)');
    const allocated = off.cloud.instances.find((i) => i.name === 'trainer')!;
    assert.equal(allocated.status, 'stopping', 'not "stopped": it still bills');
    assert.match(allocated.problem ?? '', /still allocated and Azure still bills compute/);
    assert.equal(off.totals.costPerHour, PRICE, 'counted as billing');

    // Tether's stop is a deallocate: then it is stopped for the bill too.
    const stop = await runCli(['cloud', 'stop', 'trainer', ...acct(fake), '--workspace', ws], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(fake.requests.some((r) => r.method === 'POST' && r.path.endsWith(`/virtualMachines/${mine.id}/deallocate`)), 'a deallocate, not a powerOff');
    const stopped = await waitFor(async () => {
      const s = await status();
      return s.cloud.instances.find((i) => i.name === 'trainer')?.status === 'stopped' ? s : undefined;
    }, 30_000, 'the VM deallocated');
    assert.equal(stopped.cloud.instances.find((i) => i.name === 'trainer')?.rawStatus, 'PowerState/deallocated');
    assert.equal(stopped.totals.costPerHour, 0);

    const refuse = await runCli(['cloud', 'terminate', foreign, ...acct(fake), '--workspace', ws], env);
    assert.equal(refuse.code, 2);
    assert.match(refuse.stderr, /was not launched by Tether — Add --unmanaged/);
    const term = await runCli(['terminate', 'trainer', ...acct(fake), '--workspace', ws], env);
    assert.equal(term.code, 0, term.stderr);
    const after = await status();
    assert.equal(after.cloud.instances.some((i) => i.name === 'trainer'), false);
    // The NIC, public IP and OS disk went with it; the foreign VM and Tether's (free) network stay.
    assert.deepEqual(fake.resources().filter((r) => r.includes(mine.id!.toLowerCase())), []);
    assert.ok(after.cloud.instances.some((i) => i.id === foreign && i.status === 'running'), 'the foreign VM was never touched');
    const cost = JSON.parse((await runCli(['cost', '--json', ...acct(fake), '--workspace', ws], env)).stdout) as { lines: Array<{ name: string; cost: number }> };
    const line = cost.lines.find((l) => l.name === 'trainer')!;
    // Per started minute (60 s minimum) while running or stopped-allocated: whole minutes, at least one.
    const minutes = line.cost / (PRICE / 60);
    assert.ok(minutes >= 1 - 1e-9 && Math.abs(minutes - Math.round(minutes)) < 1e-6, `whole minutes at $${PRICE}/h, got ${line.cost} (${minutes} min)`);
  });

  it('bad account flags are refused before anything is written; the token never shows in errors', async () => {
    const bad = await runCli(['provision', '--provider', 'azure', '--subscription', 'not-a-guid', '--resource-group', 'g', '--region', 'eastus', '--type', 'Standard_NC4as_T4_v3', '--ssh-key', 'laptop', '--yes', '--workspace', ws], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--subscription "not-a-guid" is not a subscription id/);
    // No SSH key (no --ssh-key, no TETHER_AZURE_SSH_PUBLIC_KEY): refused before the intent.
    const before = fake.instanceCount();
    const nokey = await runCli(['provision', '--provider', 'azure', ...acct(fake), '--type', 'Standard_NC4as_T4_v3', '--name', 'nokey', '--yes', '--workspace', ws], env);
    assert.notEqual(nokey.code, 0);
    assert.match(nokey.stderr, /no SSH key for the VM — .*--ssh-key/);
    assert.equal(fake.instanceCount(), before);
    const st = JSON.parse((await runCli(['status', '--json', ...acct(fake), '--workspace', ws], env)).stdout) as StatusReport;
    assert.ok(!st.cloud.instances.some((i) => i.name === 'nokey'), 'no ledger record for it');
    const wrong = await runCli(['cloud', 'types', 'azure', ...acct(fake), '--workspace', ws], { ...env, TETHER_AZURE_ACCESS_TOKEN: 'wrong-secret-token-123' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /Azure VMs: .*InvalidAuthenticationToken|access token is invalid/);
    assert.match(wrong.stderr, /az login/);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-secret-token-123/);
  });
});

describe('provisioning on Azure survives a crash at every step (the CLI killed; HTTPS ARM fake)', function () {
  this.timeout(120_000);
  for (const point of ['before-launch', 'after-launch', 'after-record'] as const) {
    it(`killed ${point}: after a restart no VM is unknown to the ledger`, async () => {
      const fake = new AzureArmFake({ bootMs: 100, transitionMs: 100 });
      await fake.start();
      try {
        const env = envFor(fake, tmpDir('tether-azure-crash-'));
        const ws = workspaceWith({ plugins: [] });
        const args = ['provision', '--provider', 'azure', ...acct(fake), '--type', 'Standard_NC4as_T4_v3', '--ssh-key', 'laptop', '--name', 'job', '--yes', '--workspace', ws];
        const crashed = await runCli(args, { ...env, TETHER_TEST_CRASH_AT: point });
        assert.equal(crashed.code, -1, `killed by SIGKILL: ${crashed.stderr}`);
        await sleep(200);
        const st = JSON.parse((await runCli(['status', '--json', ...acct(fake), '--workspace', ws], env)).stdout) as StatusReport;
        const live = st.cloud.instances.filter((i) => i.status !== 'terminated');
        assert.equal(fake.instanceCount(), point === 'before-launch' ? 0 : 1);
        assert.ok(live.every((i) => i.managed && i.ledgerId), `every VM is known to the ledger: ${JSON.stringify(live)}`);
        assert.equal(live.filter((i) => i.id).length, fake.instanceCount());
        if (point === 'before-launch') assert.deepEqual(live.map((i) => [i.status, i.id]), [['provisioning', null]]);
        for (const i of live) assert.equal((await runCli(['terminate', i.ledgerId!, ...acct(fake), '--workspace', ws], env)).code, 0);
        // Nothing of a VM is left billing.
        assert.deepEqual(fake.resources().filter((r) => /^(networkinterfaces|publicipaddresses|disks)\//i.test(r)), []);
      } finally {
        await fake.stop();
      }
    });
  }
});
