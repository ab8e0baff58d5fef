// Azure VMs without the network: the state mapping and billing rule (as data), the VM name, the
// account from flags / environment / settings.
import { strict as assert } from 'node:assert';
import { AZURE_BILLING, AZURE_BILLING_INCREMENT_SECONDS, azureStateOf, isStoppedAllocated } from '../../src/backends/cloud/azure/billing';
import { azureDescriptor, azureFlagEnv } from '../../src/backends/cloud/azure/descriptor';
import { azureVmName } from '../../src/backends/cloud/azure/azure';
import { parseMarker } from '../../src/backends/cloud/marker';
import { BILLING_RULES, providerKindOf } from '../../src/backends/cloud/registry';
import { accrue } from '../../src/core/cost';
import { TetherError } from '../../src/core/errors';

const SUB = '00000000-0000-0000-0000-0000000000aa';

describe('Azure VMs: states and billing', () => {
  it('maps provisioningState + PowerState/* onto Tether states; Stopped (allocated) is not "stopped"', () => {
    const cases: Array<[string | undefined, string | undefined, string]> = [
      ['Creating', undefined, 'provisioning'],
      ['Creating', 'PowerState/starting', 'provisioning'],
      ['Succeeded', 'PowerState/running', 'running'],
      ['Succeeded', 'PowerState/stopping', 'stopping'],
      ['Succeeded', 'PowerState/stopped', 'stopping'],
      ['Succeeded', 'PowerState/deallocating', 'stopping'],
      ['Succeeded', 'PowerState/deallocated', 'stopped'],
      ['Deleting', 'PowerState/running', 'terminating'],
      ['Failed', undefined, 'unknown'],
    ];
    for (const [ps, power, want] of cases) assert.equal(azureStateOf(ps, power), want, `${ps} ${power}`);
    assert.equal(isStoppedAllocated('PowerState/stopped'), true);
    assert.equal(isStoppedAllocated('PowerState/deallocated'), false);
  });

  it('the rule is data with a citation, registered for the azure kind', () => {
    assert.equal(BILLING_RULES.azure, AZURE_BILLING);
    assert.match(AZURE_BILLING.citation, /^https:\/\/azure\.microsoft\.com\//);
    assert.equal(AZURE_BILLING.incrementSeconds, AZURE_BILLING_INCREMENT_SECONDS);
    assert.ok(AZURE_BILLING.computeStates.includes('stopping'), 'Stopped (allocated) bills compute');
    assert.ok(!AZURE_BILLING.computeStates.includes('stopped'), 'deallocated does not');
    assert.ok(AZURE_BILLING.storageStates.includes('stopped'), 'the disk bills while deallocated');
  });

  it('accrual: running 90 s, then powered off inside for 5 min (allocated), then deallocated: one session, 7 started minutes', () => {
    const t0 = 1_000_000;
    const events = [
      { at: t0, state: 'running' as const },
      { at: t0 + 90_000, state: azureStateOf('Succeeded', 'PowerState/stopped') },
      { at: t0 + 390_000, state: azureStateOf('Succeeded', 'PowerState/deallocated') },
    ];
    const a = accrue(events, [{ at: t0, computePerHour: 0.6 }], AZURE_BILLING, t0 + 3_600_000);
    assert.equal(a.billedSeconds, 420);
    assert.ok(Math.abs(a.compute - (0.6 * 7) / 60) < 1e-9, `${a.compute}`);
  });
});

describe('Azure VMs: names and accounts', () => {
  it('VM names carry the marker and are legal for Azure', () => {
    const ledgerId = 'abcdef12-3456-7890-abcd-ef1234567890';
    const n = azureVmName({ ledgerId, name: 'my job/1.', owner: 'x1y2z3w4' });
    assert.equal(n, 'tether-abcdef12x1y2z3w4-my-job-1');
    assert.equal(parseMarker(n), 'abcdef12@x1y2z3w4');
    const long = azureVmName({ ledgerId, name: 'a'.repeat(80) + '-' });
    assert.ok(long.length <= 64 && /^[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9_]$/.test(long), long);
    assert.equal(azureVmName({ ledgerId, name: '...' }), 'tether-abcdef12-vm');
  });

  it('--provider azure / az; the account needs a subscription and a resource group', () => {
    assert.equal(providerKindOf('az'), 'azure');
    assert.equal(providerKindOf('Azure'), 'azure');
    assert.equal(azureDescriptor.account({ env: { AZURE_SUBSCRIPTION_ID: SUB } }), undefined);
    assert.deepEqual(azureDescriptor.account({ env: { AZURE_SUBSCRIPTION_ID: SUB, AZURE_DEFAULTS_GROUP: 'g', AZURE_DEFAULTS_LOCATION: 'westeurope', TETHER_AZURE_ACCESS_TOKEN: 'tok' }, apiUrl: 'https://arm.example' }), {
      subscriptionId: SUB,
      resourceGroup: 'g',
      location: 'westeurope',
      baseUrl: 'https://arm.example',
      accessToken: 'tok',
    });
    // VS Code: the settings first, the environment as fallback.
    const settings: Record<string, string> = { 'tether.azure.resourceGroup': 'from-settings', 'tether.azure.location': 'eastus' };
    const a = azureDescriptor.account({ env: { AZURE_SUBSCRIPTION_ID: SUB, TETHER_AZURE_RESOURCE_GROUP: 'from-env' }, setting: (k) => settings[k] });
    assert.equal(a?.resourceGroup, 'from-settings');
    assert.equal(a?.subscriptionId, SUB);
    assert.ok(azureDescriptor.secretEnv?.includes('TETHER_AZURE_ACCESS_TOKEN'), 'the token is a secret: never in a unit file, scrubbed');
    assert.ok(!azureDescriptor.unitEnv?.includes('TETHER_AZURE_ACCESS_TOKEN'));
  });

  it('CLI flags: --subscription/--resource-group win over the environment; --region is the location only for Azure commands; bad values refused', () => {
    assert.deepEqual(azureFlagEnv({ subscription: SUB, 'resource-group': 'rg-1', region: 'eastus', provider: 'azure' }), { AZURE_SUBSCRIPTION_ID: SUB, TETHER_AZURE_RESOURCE_GROUP: 'rg-1', TETHER_AZURE_LOCATION: 'eastus' });
    assert.deepEqual(azureFlagEnv({ region: 'us-east-1', provider: 'aws' }), {});
    assert.deepEqual(azureFlagEnv({ region: 'eastus' }, ['cloud', 'types', 'azure']), { TETHER_AZURE_LOCATION: 'eastus' });
    assert.throws(() => azureFlagEnv({ subscription: 'my-sub' }), (e: unknown) => e instanceof TetherError && /not a subscription id/.test(e.message));
    assert.throws(() => azureFlagEnv({ 'resource-group': 'bad/group' }), /not a resource group name/);
    assert.throws(() => azureFlagEnv({ 'resource-group': 'ends.' }), /not a resource group name/);
  });
});
