/**
 * Which cloud accounts Tether may use, and the provider clients for them. API keys come from
 * VS Code's SecretStorage (the UI) or from environment variables (the CLI) — never from settings,
 * the ledger or logs.
 */
import type { BillingRule } from '../core/cost';
import type { Logger } from '../core/logger';
import type { CloudProviderType } from '../core/protocols';
import type { AwsCredentials } from '../backends/cloud/aws/aws';
import type { CloudInstance, CloudProvider, InstanceType, LaunchRequest } from '../backends/cloud/provider';
import { BILLING_RULES, PROVIDER_TITLES } from '../backends/cloud/rules';

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
 * Provider clients for the configured accounts, each loaded on its first call (see
 * {@link LazyProvider}). With `stateDir`, EC2 prices come from the newer of the shipped catalogue
 * and the one refreshed into the state folder (`tether cloud prices aws`, "Tether: Refresh AWS
 * Prices"), read when the client loads.
 */
export function createProviders(accounts: CloudAccounts, log: Logger, stateDir?: string): CloudProvider[] {
  const out: CloudProvider[] = [];
  const line = (l: string) => log.debug(l);
  const { lambda_labs, runpod, vast_ai, aws } = accounts;
  if (lambda_labs) out.push(new LazyProvider('lambda_labs', async () => new (await import('../backends/cloud/lambda/lambda')).LambdaCloudProvider({ ...lambda_labs, log: line })));
  if (runpod) out.push(new LazyProvider('runpod', async () => new (await import('../backends/cloud/runpod/runpod')).RunPodProvider({ ...runpod, log: line })));
  if (vast_ai) out.push(new LazyProvider('vast_ai', async () => new (await import('../backends/cloud/vastai/vastai')).VastAiProvider({ ...vast_ai, log: line })));
  if (aws) {
    out.push(
      new LazyProvider('aws', async () => {
        const [{ AWS_SHIPPED_CATALOGUE, AwsEc2Provider }, { loadUserCatalogue, newestCatalogue }] = await Promise.all([import('../backends/cloud/aws/aws'), import('../backends/cloud/aws/awsPricing')]);
        const user = stateDir ? loadUserCatalogue(stateDir, log) : undefined;
        return new AwsEc2Provider({ ...aws, log, ...(user ? { catalogue: newestCatalogue(AWS_SHIPPED_CATALOGUE, user) } : {}) });
      }),
    );
  }
  return out;
}

/** Which providers can stop an instance (keep its disk), and their other async calls Tether or its tests make. */
const LAZY_SHAPE: Record<CloudAccountKind, { stop: boolean; extra: string[] }> = {
  lambda_labs: { stop: false, extra: ['checkLaunch', 'listSshKeys', 'addSshKey'] },
  runpod: { stop: true, extra: ['start'] },
  vast_ai: { stop: true, extra: [] },
  aws: { stop: true, extra: [] },
};

/**
 * A provider client whose module (and, for AWS, the SDK) loads on its first call, as a chunk of
 * its own: activating the extension or running the CLI loads none of them. Its type, title and
 * billing rule are known without the client; `stop` exists where the provider can stop; the
 * provider's other calls (Lambda's SSH keys and launch check, RunPod's start) are passed on and
 * answer a promise. `consoleUrl` needs the client: it is '' until the first call has loaded it
 * (an instance to link to only comes from such a call).
 */
export class LazyProvider implements CloudProvider {
  readonly type: CloudProviderType;
  readonly title: string;
  readonly billing: BillingRule;
  readonly stop?: (id: string) => Promise<void>;
  private real: CloudProvider | undefined;
  private loading: Promise<CloudProvider> | undefined;

  constructor(
    kind: CloudAccountKind,
    private readonly create: () => Promise<CloudProvider>,
  ) {
    this.type = kind as CloudProviderType;
    this.title = PROVIDER_TITLES[kind];
    this.billing = BILLING_RULES[kind]!;
    const shape = LAZY_SHAPE[kind];
    if (shape.stop) this.stop = (id) => this.call('stop', id);
    for (const m of shape.extra) (this as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => this.call(m, ...args);
  }

  /** The provider client itself (loads it on the first call; a failed load is tried again next time). */
  load(): Promise<CloudProvider> {
    this.loading ??= this.create().then(
      (p) => (this.real = p),
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  private async call<T>(method: string, ...args: unknown[]): Promise<T> {
    const p = (await this.load()) as unknown as Record<string, (...a: unknown[]) => T>;
    return p[method]!(...args);
  }

  listInstanceTypes(): Promise<InstanceType[]> {
    return this.call('listInstanceTypes');
  }
  listInstances(): Promise<CloudInstance[]> {
    return this.call('listInstances');
  }
  describe(id: string): Promise<CloudInstance | undefined> {
    return this.call('describe', id);
  }
  launch(req: LaunchRequest): Promise<CloudInstance> {
    return this.call('launch', req);
  }
  terminate(id: string): Promise<void> {
    return this.call('terminate', id);
  }
  consoleUrl(instance: CloudInstance): string {
    return this.real?.consoleUrl(instance) ?? '';
  }
  /** Releases the client's sockets (the AWS SDK's), if it was loaded. */
  dispose(): void {
    (this.real as { dispose?: () => void } | undefined)?.dispose?.();
  }
}
