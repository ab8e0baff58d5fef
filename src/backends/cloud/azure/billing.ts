/**
 * Azure VMs: how they bill and how their states map onto Tether's words. Light on purpose (no
 * client, no SDK): the registry and the cost code load it without the Azure client.
 *
 * Power states (instanceView `PowerState/*`) and billing, from Microsoft's "States and billing
 * status of Azure Virtual Machines" (https://learn.microsoft.com/en-us/azure/virtual-machines/states-billing):
 *   starting — not billed · running — billed · stopping — billed ·
 *   stopped — **billed** (powered off from inside the guest or with the powerOff API: the hardware
 *   stays allocated, "Stopped (allocated)") · deallocating — not billed · deallocated — not billed.
 *   Disks and public IPs bill in every state until deleted.
 *
 * Tether's mapping: `PowerState/stopped` → `stopping` (it is not stopped as far as the bill goes:
 * Tether's stop is a deallocate) with a warning in `metadata.billingWarning`;
 * `PowerState/deallocating` → `stopping` too (Microsoft bills it not; Tether counts it, so its
 * figure errs high by the seconds a deallocation takes, never low).
 */
import type { BillingRule } from '../../../core/cost';
import type { InstanceState } from '../provider';

/**
 * The billing increment. Sources disagree (checked 2026-12-01, not re-verifiable from this
 * machine): the Linux VM pricing FAQ says VMs are billed **per minute**
 * (https://azure.microsoft.com/en-us/pricing/details/virtual-machines/linux/ — FAQ "How does
 * Azure bill for virtual machines?"), while other Microsoft pages and third-party guides describe
 * per-second metering with a minimum (figures of 1 and 5 minutes circulate). Tether uses the
 * pricing page's rule — it is the one on the page that quotes the prices. To change it, edit
 * these two numbers (and the summary): nothing else depends on them.
 */
export const AZURE_BILLING_INCREMENT_SECONDS = 60;
export const AZURE_BILLING_MINIMUM_SECONDS = 60;

/**
 * Azure's billing rule for pay-as-you-go VMs, as data. Compute: `running` and `stopping`
 * (which carries PowerState/stopping, PowerState/stopped — allocated, still billed — and
 * PowerState/deallocating); storage (OS disk, public IP): every state until terminated.
 */
export const AZURE_BILLING: BillingRule = {
  provider: 'azure',
  computeStates: ['running', 'stopping'],
  storageStates: ['provisioning', 'running', 'stopping', 'stopped'],
  incrementSeconds: AZURE_BILLING_INCREMENT_SECONDS,
  minimumSeconds: AZURE_BILLING_MINIMUM_SECONDS,
  citation: 'https://azure.microsoft.com/en-us/pricing/details/virtual-machines/linux/',
  summary:
    'per minute while running; a VM powered off from inside (Stopped, allocated) still bills compute — only a deallocate (Tether\'s stop) ends it; the OS disk and public IP bill until deleted',
};

/** What the UI shows when a VM is powered off but still allocated (and billing compute). */
export const STOPPED_ALLOCATED_WARNING =
  'Stopped (allocated): powered off from inside the VM or with powerOff, but its hardware is still allocated and Azure still bills compute. Stop it with Tether (deallocate) to end the compute charge.';

/**
 * Tether's state for an Azure VM from its provisioningState and the instanceView's
 * `PowerState/*` code (undefined when the view has none yet).
 */
export function azureStateOf(provisioningState: string | undefined, powerCode: string | undefined): InstanceState {
  const ps = (provisioningState ?? '').toLowerCase();
  if (ps === 'deleting') return 'terminating';
  switch ((powerCode ?? '').toLowerCase()) {
    case 'powerstate/running':
      return 'running';
    case 'powerstate/starting':
      return 'provisioning';
    case 'powerstate/stopping':
    case 'powerstate/stopped':
    case 'powerstate/deallocating':
      return 'stopping';
    case 'powerstate/deallocated':
      return 'stopped';
    default:
      break;
  }
  if (ps === 'creating' || ps === 'updating' || ps === 'migrating' || ps === '') return 'provisioning';
  return 'unknown';
}

/** True when the VM is powered off but allocated (PowerState/stopped): Azure still bills compute. */
export function isStoppedAllocated(powerCode: string | undefined): boolean {
  return (powerCode ?? '').toLowerCase() === 'powerstate/stopped';
}
