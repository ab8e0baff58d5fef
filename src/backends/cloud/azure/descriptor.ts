/**
 * Azure VMs in the provider registry. Light: the client (azure.ts) and @azure/identity load on
 * first use. An account is a subscription + resource group (+ location for launches and the
 * catalogue); credentials are not stored: the ecosystem's chain (environment, `az login`,
 * managed identity) or TETHER_AZURE_ACCESS_TOKEN.
 *
 * CLI: `--subscription S --resource-group G` (else AZURE_SUBSCRIPTION_ID and
 * TETHER_AZURE_RESOURCE_GROUP / az's AZURE_DEFAULTS_GROUP); the location is `--region`, else
 * TETHER_AZURE_LOCATION / AZURE_DEFAULTS_LOCATION. VS Code: the tether.azure.* settings, falling
 * back on the same variables.
 */
import { UsageError } from '../../../core/errors';
import type { CloudProviderDescriptor } from '../registry';
import { AZURE_BILLING } from './billing';

export interface AzureAccount {
  subscriptionId: string;
  resourceGroup: string;
  location?: string;
  baseUrl?: string;
  /** A bearer token given directly (TETHER_AZURE_ACCESS_TOKEN): never stored, scrubbed from errors. */
  accessToken?: string;
  sshPublicKey?: string;
}

/** A subscription id is a GUID. */
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Resource group names: 1-90 characters, letters, digits, '_', '-', '.', '(', ')'; not ending in '.'. */
const RESOURCE_GROUP = /^[-\w.()]{1,90}$/;

/**
 * The environment the CLI's Azure flags stand for: `--subscription`, `--resource-group` and
 * (for an Azure command) `--region` become the variables the descriptor reads (flags win over
 * the environment). Malformed values are refused here, before anything is written.
 */
export function azureFlagEnv(o: { subscription?: string; 'resource-group'?: string; region?: string; provider?: string }, positionals: readonly string[] = []): Record<string, string> {
  // --region is the Azure location when the command is about Azure (`--provider azure`, `cloud types azure`).
  const aboutAzure = [o.provider, ...positionals].some((p) => p !== undefined && /^(azure|az|azurevm)$/i.test(p));
  if (o.subscription !== undefined && !GUID.test(o.subscription)) throw new UsageError(`--subscription "${o.subscription}" is not a subscription id (a GUID)`, 'See `az account show --query id`.');
  if (o['resource-group'] !== undefined && (!RESOURCE_GROUP.test(o['resource-group']) || o['resource-group'].endsWith('.'))) {
    throw new UsageError(`--resource-group "${o['resource-group']}" is not a resource group name`, 'Letters, digits, _ - . ( ), at most 90 characters, not ending in a period.');
  }
  return {
    ...(o.subscription ? { AZURE_SUBSCRIPTION_ID: o.subscription } : {}),
    ...(o['resource-group'] ? { TETHER_AZURE_RESOURCE_GROUP: o['resource-group'] } : {}),
    ...(o.region && aboutAzure ? { TETHER_AZURE_LOCATION: o.region } : {}),
  };
}

export const azureDescriptor: CloudProviderDescriptor<AzureAccount> = {
  kind: 'azure',
  title: 'Azure VMs',
  aliases: ['az', 'azurevm'],
  apiUrlEnv: 'TETHER_AZURE_API_URL',
  billing: AZURE_BILLING,
  canStop: true,
  extraCalls: ['checkLaunch'],
  configHelp: 'AZURE_SUBSCRIPTION_ID + TETHER_AZURE_RESOURCE_GROUP (or --subscription/--resource-group) + TETHER_AZURE_LOCATION; credentials from the environment (AZURE_CLIENT_ID…), `az login`, a managed identity, or TETHER_AZURE_ACCESS_TOKEN',
  settingsSections: ['tether.azure'],
  secretEnv: ['TETHER_AZURE_ACCESS_TOKEN', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PASSWORD', 'AZURE_PASSWORD'],
  unitEnv: ['TETHER_AZURE_PRICES_API_URL', 'AZURE_SUBSCRIPTION_ID', 'TETHER_AZURE_RESOURCE_GROUP', 'TETHER_AZURE_LOCATION', 'TETHER_AZURE_SSH_PUBLIC_KEY', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CONFIG_DIR'],
  selfShutdown: {
    endsBilling: false,
    text: 'Azure: a shutdown from inside leaves the VM "Stopped (allocated)": it still bills compute until it is deallocated (Tether\'s stop) or deleted',
    docs: ['https://learn.microsoft.com/en-us/azure/virtual-machines/states-billing'],
  },
  prompts: [
    { store: { setting: 'tether.azure.subscriptionId' }, title: 'Azure: subscription id', validate: (v) => (GUID.test(v.trim()) ? undefined : 'A subscription id is a GUID (az account show --query id).') },
    { store: { setting: 'tether.azure.resourceGroup' }, title: 'Azure: resource group for Tether\'s VMs', validate: (v) => (RESOURCE_GROUP.test(v.trim()) && !v.trim().endsWith('.') ? undefined : 'A resource group name: letters, digits, _ - . ( ), at most 90.') },
    { store: { setting: 'tether.azure.location' }, title: 'Azure: location (region)', value: 'eastus', validate: (v) => (/^[a-z0-9]+$/.test(v.trim()) ? undefined : 'A location looks like eastus or westeurope.') },
    { store: { setting: 'tether.azure.sshPublicKey' }, title: 'Azure: OpenSSH public key for the VMs (empty: name an Azure SSH key at launch)', optional: true },
    // Last: an empty answer ends the prompts (the Azure credential chain is used).
    { store: { secret: 'accessToken' }, title: 'Azure access token (empty: the environment, `az login` or a managed identity)', password: true, optional: true },
  ],
  account(src) {
    const setting = (k: string) => (src.setting ? String(src.setting(`tether.azure.${k}`) ?? '').trim() : '');
    const env = src.env;
    const subscriptionId = setting('subscriptionId') || env.AZURE_SUBSCRIPTION_ID || '';
    const resourceGroup = setting('resourceGroup') || env.TETHER_AZURE_RESOURCE_GROUP || env.AZURE_DEFAULTS_GROUP || '';
    if (!subscriptionId || !resourceGroup) return undefined;
    const location = setting('location') || env.TETHER_AZURE_LOCATION || env.AZURE_DEFAULTS_LOCATION || '';
    const sshPublicKey = setting('sshPublicKey') || env.TETHER_AZURE_SSH_PUBLIC_KEY || '';
    // A token from the environment is the CLI's (VS Code: SecretStorage only, like every API key).
    const accessToken = src.secret?.accessToken || (src.setting ? '' : env.TETHER_AZURE_ACCESS_TOKEN) || '';
    return {
      subscriptionId,
      resourceGroup,
      ...(location ? { location } : {}),
      ...(src.apiUrl ? { baseUrl: src.apiUrl } : {}),
      ...(accessToken ? { accessToken } : {}),
      ...(sshPublicKey ? { sshPublicKey } : {}),
    };
  },
  async refreshPrices(a, { log, stateDir, env, region }) {
    const r = region ?? a?.location;
    if (!r) throw new UsageError('no Azure location', 'Pass --region R or set TETHER_AZURE_LOCATION (CLI) or tether.azure.location (VS Code).');
    const baseUrl = env.TETHER_AZURE_PRICES_API_URL;
    const { catalogue, file, prices } = await (await import('./azurePricing')).refreshUserCatalogue(stateDir, r, { log, ...(baseUrl ? { baseUrl } : {}) });
    return {
      catalogue,
      lines: Object.entries(prices)
        .sort((x, y) => x[1] - y[1])
        .map(([t, p]) => `${t.padEnd(28)} $${p.toFixed(4)}/h`),
      summary: `${Object.keys(prices).length} Azure pay-as-you-go Linux GPU prices for ${r} as of ${catalogue.asOf}, saved to ${file}`,
    };
  },
  async load(a, { log, stateDir }) {
    const [{ AZURE_SHIPPED_CATALOGUE, AzureVmProvider }, { loadUserCatalogue, newestCatalogue }] = await Promise.all([import('./azure'), import('./azurePricing')]);
    const user = stateDir ? loadUserCatalogue(stateDir, log) : undefined;
    return new AzureVmProvider({ ...a, log: (l: string) => log.debug(l), ...(user ? { catalogue: newestCatalogue(AZURE_SHIPPED_CATALOGUE, user) } : {}) });
  },
};
