/**
 * Compute Engine's billing rule, apart from the client so that it loads without it (the registry,
 * the cost report and budgets need the rule, not the REST client).
 *
 * - "All vCPUs, GPUs, and GB of memory are charged a minimum of 1 minute ... After 1 minute,
 *   instances are charged in 1 second increments." Uptime runs "between when you start an
 *   instance and when you stop an instance, the latter being when the instance state is
 *   TERMINATED" (a stopped instance is TERMINATED in Compute Engine's words); an instance in
 *   STOPPING still runs until it is TERMINATED, so it bills.
 *   Source: https://cloud.google.com/compute/vm-instance-pricing ("Billing model", "Instance uptime").
 * - A stopped (TERMINATED) or suspended instance is not charged for vCPUs, GPUs and memory, but
 *   its persistent disks and any static external IP keep billing until they are deleted.
 *   Source: https://cloud.google.com/compute/docs/instances/stop-start-instance
 * - Tether's states: PROVISIONING/STAGING → provisioning (not billed: "the instance isn't
 *   running yet"), RUNNING → running, STOPPING/SUSPENDING → stopping, TERMINATED/SUSPENDED →
 *   stopped (storage only). A deleted instance is gone (terminated).
 */
import type { BillingRule } from '../../../core/cost';

export const GCP_BILLING: BillingRule = {
  provider: 'gcp',
  computeStates: ['running', 'stopping'],
  storageStates: ['provisioning', 'running', 'stopping', 'stopped'],
  incrementSeconds: 1,
  minimumSeconds: 60,
  citation: 'https://cloud.google.com/compute/vm-instance-pricing',
  summary: '1-minute minimum, then per second until TERMINATED (stopped); disks and static IPs bill while stopped',
};

export const GCP_TITLE = 'GCP Compute Engine';
