/** Each provider's billing rule and display name, by provider type (no client needed). */
import type { BillingRule } from '../../core/cost';
import { AWS_BILLING } from './aws';
import { LAMBDA_BILLING } from './lambda';
import { RUNPOD_BILLING } from './runpod';
import { VAST_BILLING } from './vastai';

export const BILLING_RULES: Record<string, BillingRule> = {
  lambda_labs: LAMBDA_BILLING,
  runpod: RUNPOD_BILLING,
  vast_ai: VAST_BILLING,
  aws: AWS_BILLING,
};

/** Display names, in the order the wizard offers the providers. */
export const PROVIDER_TITLES: Record<'lambda_labs' | 'runpod' | 'vast_ai' | 'aws', string> = { lambda_labs: 'Lambda Cloud', runpod: 'RunPod', vast_ai: 'Vast.ai', aws: 'AWS EC2' };

/** The display name of a provider type (the type itself when unknown). */
export function providerTitle(type: string): string {
  return (PROVIDER_TITLES as Record<string, string>)[type] ?? type;
}
