/**
 * Which cloud accounts Tether may use, and the provider clients for them. API keys come from
 * VS Code's SecretStorage (the UI) or from environment variables (the CLI) — never from settings,
 * the ledger or logs.
 */
import type { Logger } from '../core/logger';
import { AWS_SHIPPED_CATALOGUE, AwsEc2Provider, type AwsCredentials } from '../plugins/cloud/aws';
import { loadUserCatalogue, newestCatalogue } from '../plugins/cloud/awsPricing';
import { LambdaCloudProvider } from '../plugins/cloud/lambda';
import type { CloudProvider } from '../plugins/cloud/provider';
import { PROVIDER_TITLES } from '../plugins/cloud/rules';
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
export const CLOUD_ACCOUNT_TITLES: Record<CloudAccountKind, string> = PROVIDER_TITLES;

/** Environment overrides of each provider's API base URL (proxies, compatible endpoints, tests). */
export const API_URL_ENV: Record<CloudAccountKind, string> = {
  lambda_labs: 'TETHER_LAMBDA_API_URL',
  runpod: 'TETHER_RUNPOD_API_URL',
  vast_ai: 'TETHER_VAST_API_URL',
  aws: 'TETHER_AWS_API_URL',
};

/** Short names the CLI accepts for `--provider`. */
export function accountKindOf(name: string): CloudAccountKind | undefined {
  const n = name.toLowerCase();
  if (n === 'lambda' || n === 'lambda_labs' || n === 'lambdalabs') return 'lambda_labs';
  if (n === 'runpod') return 'runpod';
  if (n === 'vast' || n === 'vast_ai' || n === 'vastai') return 'vast_ai';
  if (n === 'aws' || n === 'ec2') return 'aws';
  return undefined;
}

/**
 * Accounts from the environment (the CLI), with each provider's conventional variable:
 * LAMBDA_API_KEY, RUNPOD_API_KEY, VAST_API_KEY, and AWS when TETHER_AWS_REGION (or AWS_REGION)
 * is set (credentials from the standard AWS chain). TETHER_<PROVIDER>_API_URL points a provider
 * at another endpoint.
 */
export function accountsFromEnv(env: NodeJS.ProcessEnv = process.env): CloudAccounts {
  const a: CloudAccounts = {};
  const url = (kind: CloudAccountKind) => (env[API_URL_ENV[kind]] ? { baseUrl: env[API_URL_ENV[kind]]! } : {});
  if (env.LAMBDA_API_KEY) a.lambda_labs = { apiKey: env.LAMBDA_API_KEY, ...url('lambda_labs') };
  if (env.RUNPOD_API_KEY) a.runpod = { apiKey: env.RUNPOD_API_KEY, ...url('runpod') };
  if (env.VAST_API_KEY) a.vast_ai = { apiKey: env.VAST_API_KEY, ...url('vast_ai') };
  const region = env.TETHER_AWS_REGION ?? env.AWS_REGION;
  if (region) {
    a.aws = {
      region,
      ...(env[API_URL_ENV.aws] ? { endpoint: env[API_URL_ENV.aws]! } : {}),
      ...(env.TETHER_AWS_AMI ? { defaultImageId: env.TETHER_AWS_AMI } : {}),
    };
  }
  return a;
}

/** Environment override of the AWS Price List Query API endpoint (`tether cloud prices aws`). */
export const AWS_PRICING_URL_ENV = 'TETHER_AWS_PRICING_API_URL';

/**
 * Provider clients for the configured accounts. With `stateDir`, EC2 prices come from the newer
 * of the shipped catalogue and the one refreshed into the state folder (`tether cloud prices aws`,
 * "Tether: Refresh AWS Prices").
 */
export function createProviders(accounts: CloudAccounts, log: Logger, stateDir?: string): CloudProvider[] {
  const out: CloudProvider[] = [];
  const line = (l: string) => log.debug(l);
  if (accounts.lambda_labs) out.push(new LambdaCloudProvider({ ...accounts.lambda_labs, log: line }));
  if (accounts.runpod) out.push(new RunPodProvider({ ...accounts.runpod, log: line }));
  if (accounts.vast_ai) out.push(new VastAiProvider({ ...accounts.vast_ai, log: line }));
  if (accounts.aws) {
    const user = stateDir ? loadUserCatalogue(stateDir, log) : undefined;
    out.push(new AwsEc2Provider({ ...accounts.aws, log, ...(user ? { catalogue: newestCatalogue(AWS_SHIPPED_CATALOGUE, user) } : {}) }));
  }
  return out;
}
