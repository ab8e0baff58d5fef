/**
 * Which cloud accounts Tether may use, and the provider clients for them. API keys come from
 * VS Code's SecretStorage (the UI) or from environment variables (the CLI) — never from settings,
 * the ledger or logs.
 */
import type { Logger } from '../core/logger';
import { AwsEc2Provider, type AwsCredentials } from '../plugins/cloud/aws';
import { LambdaCloudProvider } from '../plugins/cloud/lambda';
import type { CloudProvider } from '../plugins/cloud/provider';
import { RunPodProvider } from '../plugins/cloud/runpod';
import { VastAiProvider } from '../plugins/cloud/vastai';

export type CloudAccountKind = 'lambda_labs' | 'runpod' | 'vast_ai' | 'aws';

export interface CloudAccounts {
  lambda_labs?: { apiKey: string; baseUrl?: string };
  runpod?: { apiKey: string; baseUrl?: string };
  vast_ai?: { apiKey: string; baseUrl?: string };
  aws?: { region: string; endpoint?: string; credentials?: AwsCredentials; defaultImageId?: string };
}

/** Display names, in the order the wizard offers them. */
export const CLOUD_ACCOUNT_TITLES: Record<CloudAccountKind, string> = {
  lambda_labs: 'Lambda Cloud',
  runpod: 'RunPod',
  vast_ai: 'Vast.ai',
  aws: 'AWS EC2',
};

/**
 * Accounts from the environment (the CLI): LAMBDA_API_KEY, RUNPOD_API_KEY, VAST_API_KEY, and
 * AWS when TETHER_AWS_REGION is set (credentials from the standard AWS chain). TETHER_<P>_URL
 * and TETHER_AWS_ENDPOINT point a provider at another endpoint (tests use local fakes).
 */
export function accountsFromEnv(env: NodeJS.ProcessEnv = process.env): CloudAccounts {
  const a: CloudAccounts = {};
  const url = (name: string) => (env[name] ? { baseUrl: env[name]! } : {});
  if (env.LAMBDA_API_KEY) a.lambda_labs = { apiKey: env.LAMBDA_API_KEY, ...url('TETHER_LAMBDA_URL') };
  if (env.RUNPOD_API_KEY) a.runpod = { apiKey: env.RUNPOD_API_KEY, ...url('TETHER_RUNPOD_URL') };
  if (env.VAST_API_KEY) a.vast_ai = { apiKey: env.VAST_API_KEY, ...url('TETHER_VAST_URL') };
  if (env.TETHER_AWS_REGION) {
    a.aws = {
      region: env.TETHER_AWS_REGION,
      ...(env.TETHER_AWS_ENDPOINT ? { endpoint: env.TETHER_AWS_ENDPOINT } : {}),
      ...(env.TETHER_AWS_AMI ? { defaultImageId: env.TETHER_AWS_AMI } : {}),
    };
  }
  return a;
}

/** Provider clients for the configured accounts. */
export function createProviders(accounts: CloudAccounts, log: Logger): CloudProvider[] {
  const out: CloudProvider[] = [];
  const line = (l: string) => log.debug(l);
  if (accounts.lambda_labs) out.push(new LambdaCloudProvider({ ...accounts.lambda_labs, log: line }));
  if (accounts.runpod) out.push(new RunPodProvider({ ...accounts.runpod, log: line }));
  if (accounts.vast_ai) out.push(new VastAiProvider({ ...accounts.vast_ai, log: line }));
  if (accounts.aws) out.push(new AwsEc2Provider({ ...accounts.aws, log }));
  return out;
}
