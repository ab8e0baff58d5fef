/**
 * ECS's billing rule on its own (no catalogue, no SDK): the provider registry imports it at
 * activation. Source: "AWS Fargate Pricing", https://aws.amazon.com/fargate/pricing/ (see pricing.ts).
 */
import type { BillingRule } from '../../../core/cost';

/**
 * The ECS billing rule Tether applies to a task's state history. Compute bills from the
 * launch (PROVISIONING and PENDING map to `provisioning`: AWS starts billing at the image pull,
 * during PENDING, so the few seconds of PROVISIONING before it are counted — erring high, never
 * low) through DEACTIVATING / STOPPING / DEPROVISIONING (`terminating`) until STOPPED; per second,
 * one-minute minimum. There is no stop (a stopped task is gone) and no storage beyond the 20 GB
 * included. EC2-launched tasks carry a price of 0 (their instance bills).
 */
export const ECS_BILLING: BillingRule = {
  provider: 'ecs',
  computeStates: ['provisioning', 'running', 'stopping', 'terminating', 'unknown'],
  storageStates: [],
  incrementSeconds: 1,
  minimumSeconds: 60,
  citation: 'https://aws.amazon.com/fargate/pricing/',
  summary: 'Fargate: vCPU + GB per second until the task stops, 1-minute minimum; EC2-launched tasks: $0 (their instance bills)',
};
