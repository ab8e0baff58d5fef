/**
 * Each provider's billing rule (no client needed), read by its descriptor (registry.ts). They live
 * here, not in the provider files, so that they load without a provider client or the AWS SDK
 * (those load on first use); each provider file re-exports its own.
 */
import type { BillingRule } from '../../core/cost';

/**
 * Lambda Cloud's billing rule: on-demand instances are billed in one-minute increments from
 * launch until termination, whatever their state (booting and unhealthy instances bill too);
 * there is no stop. A preempted instance is mapped to `terminated` (not billed).
 * Source: Lambda Cloud docs, "Billing" (https://docs.lambda.ai/public-cloud/billing/)
 * and the on-demand pricing page (https://lambda.ai/service/gpu-cloud#pricing).
 */
export const LAMBDA_BILLING: BillingRule = {
  provider: 'lambda_labs',
  computeStates: ['provisioning', 'running', 'unknown', 'stopping', 'terminating'],
  storageStates: [],
  incrementSeconds: 60,
  minimumSeconds: 60,
  citation: 'https://docs.lambda.ai/public-cloud/billing/',
  summary: 'billed per started minute from launch until terminated (or preempted), booting included',
};

/**
 * RunPod's billing rule: pods are billed per second while running (`cost`); a stopped
 * (EXITED) pod keeps paying for its volume disk at the storage rate until it is terminated.
 * Source: RunPod docs, "Pricing" / "Storage" (https://docs.runpod.io/pods/pricing).
 */
export const RUNPOD_BILLING: BillingRule = {
  provider: 'runpod',
  computeStates: ['running'],
  storageStates: ['stopped'],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: 'https://docs.runpod.io/pods/pricing',
  summary: 'billed per second while running; a stopped pod still pays for its volume',
};

/**
 * Vast.ai's billing rule: the GPU is billed per second while the instance runs; storage is
 * billed per second from creation (loading, running and stopped alike) until it is destroyed.
 * Source: Vast.ai docs, "Billing" (https://docs.vast.ai/documentation/reference/billing).
 */
export const VAST_BILLING: BillingRule = {
  provider: 'vast_ai',
  computeStates: ['running'],
  storageStates: ['provisioning', 'running', 'stopping', 'stopped'],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: 'https://docs.vast.ai/documentation/reference/billing',
  summary: 'GPU per second while running; storage per second from creation until destroyed',
};

/**
 * EC2's billing rule for Linux on-demand instances: per second while running, with a
 * 60-second minimum each time an instance starts; pending instances are not billed; attached EBS
 * volumes keep billing while the instance is stopped. Source: "Amazon EC2 On-Demand Pricing",
 * per-second billing (https://aws.amazon.com/ec2/pricing/on-demand/).
 */
export const AWS_BILLING: BillingRule = {
  provider: 'aws',
  computeStates: ['running'],
  storageStates: ['running', 'stopping', 'stopped'],
  incrementSeconds: 1,
  minimumSeconds: 60,
  citation: 'https://aws.amazon.com/ec2/pricing/on-demand/',
  summary: 'per second while running, 60 s minimum per start; EBS bills while stopped',
};
