/**
 * The billing rule of Kubernetes records, in a file of its own so that the cost code loads it
 * without the backend (like src/backends/cloud/rules.ts).
 */
import type { BillingRule } from '../../core/cost';

/**
 * Per second while its Pods run (from the Pod's `startTime`, when it is bound to a node and holds
 * its requests there, until it finishes), at the price its requests have in the user's table
 * (prices.ts), while a stop is under way too (a deleted Pod holds its node's resources until its
 * containers are stopped). A Pod waiting to be scheduled costs nothing.
 */
export const KUBERNETES_BILLING: BillingRule = {
  provider: 'kubernetes',
  computeStates: ['running', 'stopping'],
  storageStates: [],
  incrementSeconds: 1,
  minimumSeconds: 0,
  citation: 'your per-cluster price table (tether k8s prices set); Kubernetes reports no price',
  summary: 'per second while its Pods run: GPU/CPU/memory requests × your price table for the cluster',
};
