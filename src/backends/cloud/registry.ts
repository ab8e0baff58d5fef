/**
 * Every cloud provider Tether can rent from, as one descriptor each (kept in the provider's own
 * folder, `src/backends/cloud/<provider>/descriptor.ts`). A descriptor is light: it names the
 * provider, its billing rule, how an account is configured, and `load()`, which imports the
 * client (and its SDK) only when first used — a webpack chunk of its own.
 *
 * Adding a provider is its folder plus ONE line in {@link CLOUD_PROVIDERS}: the CLI's
 * `--provider`, `tether watch`, the account settings and keys, the wizard, budgets and the cost
 * report all read this list.
 */
import type { BillingRule } from '../../core/cost';
import type { Logger } from '../../core/logger';
import type { CloudProvider } from './provider';
import { lambdaDescriptor } from './lambda/descriptor';
import { runpodDescriptor } from './runpod/descriptor';
import { vastDescriptor } from './vastai/descriptor';
import { awsDescriptor } from './aws/descriptor';
import { gcpDescriptor } from './gcp/descriptor';
import { cloudRunDescriptor } from './cloudrun/descriptor';
import { azureDescriptor } from './azure/descriptor';

/** Where an account's settings come from: the environment (CLI, `tether watch`) and, in VS Code, the user's settings and secrets. */
export interface AccountSource {
  env: NodeJS.ProcessEnv;
  /** The provider's secret fields as stored in VS Code's SecretStorage (undefined in the CLI, or when none was stored). */
  secret?: Record<string, string>;
  /** A user setting (`tether.<section>.<key>`), undefined in the CLI. */
  setting?(key: string): unknown;
  /** The API base URL override: TETHER_<PROVIDER>_API_URL, else `tether.cloud.apiUrls[kind]`. */
  apiUrl?: string;
}

/** One value the "Set Cloud Credentials" flow asks for. */
export interface AccountPrompt {
  /** Where the answer goes: a field of the secret (SecretStorage) or a user setting. */
  store: { secret: string } | { setting: string };
  title: string;
  password?: boolean;
  /** An empty answer is allowed (and then not stored). */
  optional?: boolean;
  placeholder?: string;
  /** Initial value (for settings: the current one is shown instead when set). */
  value?: string;
  /** An error message for a bad answer, or undefined. */
  validate?(v: string): string | undefined;
}

/** What an OS-level shutdown from inside an instance does to its bill (dead man's switch). */
export interface SelfShutdownFacts {
  endsBilling: boolean;
  text: string;
  docs: string[];
}

/** What a price refresh read and where it saved it. */
export interface PriceRefresh {
  /** One line: how many prices, for where, as of when, saved to which file. */
  summary: string;
  /** One line per price, cheapest first. */
  lines: string[];
  /** The saved catalogue (for --json). */
  catalogue: unknown;
}

export interface CloudProviderDescriptor<A extends object = object> {
  /** The provider type in ledger records (`remote.provider`). */
  readonly kind: string;
  /** Display name ("Lambda Cloud"). */
  readonly title: string;
  /** Names `--provider` accepts (the kind is always accepted). */
  readonly aliases: readonly string[];
  /** Environment variable overriding the API base URL (proxies, compatible endpoints, tests). */
  readonly apiUrlEnv: string;
  readonly billing: BillingRule;
  /** The provider can stop an instance and keep its disk. */
  readonly canStop: boolean;
  /** The client's other async calls Tether makes through the lazy wrapper (Lambda's SSH keys, RunPod's start). */
  readonly extraCalls?: readonly string[];
  /** How to configure it, one line for help texts ("LAMBDA_API_KEY", "TETHER_AWS_REGION + the AWS credential chain"). */
  readonly configHelp: string;
  /** The settings section(s) whose change re-reads the account (`tether.aws`). */
  readonly settingsSections?: readonly string[];
  /** What "Set Cloud Credentials" asks, in order. */
  readonly prompts: readonly AccountPrompt[];
  /** Environment variables (never secrets) `tether watch --install` carries into its unit. */
  readonly unitEnv?: readonly string[];
  /** Environment variables holding secrets: never written into the unit, scrubbed from errors. */
  readonly secretEnv?: readonly string[];
  /** How a launch with a dead man's switch sets the instance's own shutdown behaviour (EC2: terminate on shutdown). */
  readonly deadmanShutdownBehavior?: 'stop' | 'terminate';
  /** What a shutdown from inside does, where Tether knows (else the dead man's switch says it does not). */
  readonly selfShutdown?: SelfShutdownFacts;
  /** The account, or undefined when this provider is not configured. */
  account(src: AccountSource): A | undefined;
  /**
   * Refreshes the provider's dated price catalogue into the state folder (where Tether keeps one;
   * providers that quote their own prices have none). `account` may be undefined when the region is given.
   */
  refreshPrices?(account: A | undefined, ctx: { log: Logger; stateDir: string; env: NodeJS.ProcessEnv; region?: string }): Promise<PriceRefresh>;
  /** Makes the client (imports it on first use). */
  load(account: A, ctx: { log: Logger; stateDir?: string }): Promise<CloudProvider>;
}

/** The providers, in the order the wizard offers them. ONE line per provider. */
export const CLOUD_PROVIDERS: readonly CloudProviderDescriptor<any>[] = [
  lambdaDescriptor,
  runpodDescriptor,
  vastDescriptor,
  awsDescriptor,
  gcpDescriptor,
  cloudRunDescriptor,
  azureDescriptor,
];

/** The descriptor of a provider type, or undefined. */
export function providerDescriptor(kind: string): CloudProviderDescriptor<any> | undefined {
  return CLOUD_PROVIDERS.find((d) => d.kind === kind);
}

/** The provider a `--provider` name means (its kind or an alias, any case), or undefined. */
export function providerKindOf(name: string): string | undefined {
  const n = name.toLowerCase();
  return CLOUD_PROVIDERS.find((d) => d.kind === n || d.aliases.includes(n))?.kind;
}

/** Billing rules by provider type. */
export const BILLING_RULES: Readonly<Record<string, BillingRule>> = Object.fromEntries(CLOUD_PROVIDERS.map((d) => [d.kind, d.billing]));

/** Display names by provider type, in the wizard's order. */
export const PROVIDER_TITLES: Readonly<Record<string, string>> = Object.fromEntries(CLOUD_PROVIDERS.map((d) => [d.kind, d.title]));

/** The display name of a provider type (the type itself when unknown). */
export function providerTitle(type: string): string {
  return PROVIDER_TITLES[type] ?? type;
}

/** `apiUrl` of an {@link AccountSource} as the CLI sees it. */
export function envApiUrl(d: Pick<CloudProviderDescriptor, 'apiUrlEnv'>, env: NodeJS.ProcessEnv): string | undefined {
  return env[d.apiUrlEnv] || undefined;
}
