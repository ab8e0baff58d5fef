/**
 * Cloud Run jobs' billing rule and name, apart from the price table so that the provider registry
 * (loaded at activation) carries only these few lines. Source and details: pricing.ts.
 */
import type { BillingRule } from '../../../core/cost';

/**
 * Cloud Run jobs' billing rule: instance time, per 100 ms, while an execution's tasks run (a
 * cancelling execution still runs until its instances stop); nothing before a task starts or
 * after the execution ended; no storage.
 */
export const CLOUD_RUN_BILLING: BillingRule = {
  provider: 'cloud_run',
  computeStates: ['running', 'terminating'],
  storageStates: [],
  incrementSeconds: 0.1,
  minimumSeconds: 0,
  citation: 'https://cloud.google.com/run/pricing',
  summary: 'instance time per 100 ms (vCPU-s, GiB-s, GPU-s) while the execution runs; jobs always bill by instance; nothing once it has ended',
};

export const CLOUD_RUN_TITLE = 'Google Cloud Run jobs';
