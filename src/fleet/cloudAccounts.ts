/**
 * Which cloud accounts Tether may use, and the provider clients for them, from the provider
 * registry (src/backends/cloud/registry.ts). API keys come from VS Code's SecretStorage (the UI)
 * or from environment variables (the CLI) — never from settings, the ledger or logs.
 */
import type { BillingRule } from '../core/cost';
import type { Logger } from '../core/logger';
import type { CloudProviderType } from '../core/protocols';
import type { CloudInstance, CloudProvider, InstanceType, LaunchRequest } from '../backends/cloud/provider';
import { CLOUD_PROVIDERS, PROVIDER_TITLES, providerDescriptor, providerKindOf, type AccountSource, type CloudProviderDescriptor } from '../backends/cloud/registry';
export { AWS_PRICING_URL_ENV } from '../backends/cloud/aws/descriptor';
export { CLOUD_PROVIDERS, providerDescriptor, providerTitle, type CloudProviderDescriptor } from '../backends/cloud/registry';

/** A provider type in the registry ('lambda_labs', 'aws', ...). */
export type CloudAccountKind = string;

/** Each configured provider's account (its shape is the provider's own, see its descriptor). */
export type CloudAccounts = Record<CloudAccountKind, object | undefined>;

/** Display names, in the order the wizard offers them. */
export const CLOUD_ACCOUNT_TITLES: Readonly<Record<CloudAccountKind, string>> = PROVIDER_TITLES;

/** Environment overrides of each provider's API base URL (proxies, compatible endpoints, tests). */
export const API_URL_ENV: Readonly<Record<CloudAccountKind, string>> = Object.fromEntries(CLOUD_PROVIDERS.map((d) => [d.kind, d.apiUrlEnv]));

/** Short names the CLI accepts for `--provider`. */
export function accountKindOf(name: string): CloudAccountKind | undefined {
  return providerKindOf(name);
}

/**
 * Accounts from the environment (the CLI, `tether watch`), each provider reading its
 * conventional variables (its descriptor's `configHelp`); TETHER_<PROVIDER>_API_URL points a
 * provider at another endpoint.
 */
export function accountsFromEnv(env: NodeJS.ProcessEnv = process.env): CloudAccounts {
  return accountsFrom((d) => ({ env, ...(env[d.apiUrlEnv] ? { apiUrl: env[d.apiUrlEnv]! } : {}) }));
}

/** Accounts from a source per provider (the UI builds one from SecretStorage and settings). */
export function accountsFrom(source: (d: CloudProviderDescriptor) => AccountSource): CloudAccounts {
  const a: CloudAccounts = {};
  for (const d of CLOUD_PROVIDERS) {
    const acc = d.account(source(d));
    if (acc) a[d.kind] = acc;
  }
  return a;
}

/**
 * Provider clients for the configured accounts, each loaded on its first call (see
 * {@link LazyProvider}). `stateDir` lets a provider read what was refreshed into the state
 * folder (EC2 prices: `tether cloud prices aws`).
 */
export function createProviders(accounts: CloudAccounts, log: Logger, stateDir?: string): CloudProvider[] {
  const out: CloudProvider[] = [];
  for (const d of CLOUD_PROVIDERS) {
    const acc = accounts[d.kind];
    if (acc) out.push(new LazyProvider(d.kind, () => d.load(acc, { log, ...(stateDir ? { stateDir } : {}) })));
  }
  return out;
}

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
    const d = providerDescriptor(kind);
    if (!d) throw new Error(`no cloud provider "${kind}" in the registry`);
    this.type = kind as CloudProviderType;
    this.title = d.title;
    this.billing = d.billing;
    if (d.canStop) this.stop = (id) => this.call('stop', id);
    for (const m of d.extraCalls ?? []) (this as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => this.call(m, ...args);
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
