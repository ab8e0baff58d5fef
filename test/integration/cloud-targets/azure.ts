/**
 * Azure VMs as a target of the shared cloud contract suite (test/integration/cloud-rest.test.ts),
 * against the HTTPS ARM fake (test/fakes/azureArmFake.ts). The client trusts the fake's throwaway
 * CA through its `ca` option; the bearer token plays the API key.
 */
import { AzureVmProvider } from '../../../src/backends/cloud/azure/azure';
import { AZURE_SHIPPED_CATALOGUE } from '../../../src/backends/cloud/azure/azure';
import type { CloudProvider } from '../../../src/backends/cloud/provider';
import { AzureArmFake } from '../../fakes/azureArmFake';
import type { FaultKind, LoggedRequest, ProviderFake } from '../../fakes/fakeBase';

export const azureTarget = {
  label: 'Azure VMs',
  fakeLabel: 'its HTTPS ARM fake',
  fake: (): ProviderFake => new AzureArmFake(),
  provider: (f: ProviderFake, o: { apiKey?: string; timeoutMs?: number } = {}): CloudProvider => {
    const a = f as AzureArmFake;
    return new AzureVmProvider({
      subscriptionId: a.subscriptionId,
      resourceGroup: a.resourceGroup,
      location: a.location,
      baseUrl: a.url,
      accessToken: o.apiKey ?? a.apiKey,
      ca: AzureArmFake.ca,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      retries: 3,
      backoffMs: 20,
      pollMs: 20,
    });
  },
  instanceType: 'Standard_NC4as_T4_v3',
  region: 'eastus',
  sshKeyName: 'laptop',
  price: AZURE_SHIPPED_CATALOGUE.regions.eastus!.Standard_NC4as_T4_v3!,
  listMethod: 'GET',
  listPath: /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/virtualMachines$/,
  createPath: /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/virtualMachines\/[^/]+$/,
  createMethod: 'PUT',
  ambiguousCreate: ['create-then-hang', 'create-then-fail'] as FaultKind[],
  unknownId: 'no-such-vm',
  sendsRetryAfter: true,
  keepsTerminated: false,
  /** Any non-GET whose path names the VM. */
  writesTo: (r: LoggedRequest, id: string) => r.method !== 'GET' && r.path.includes(`/virtualMachines/${id}`),
  canStop: true,
  stopCall: { method: 'POST', path: /\/virtualMachines\/[^/]+\/deallocate$/ },
};
