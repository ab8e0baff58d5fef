/**
 * GCP Compute Engine in the provider registry. Light: the client (gcp.ts) and
 * google-auth-library load on first use.
 *
 * Account: the project and zone from the CLI (`--project P --zone Z`, passed in as
 * TETHER_GCP_PROJECT / TETHER_GCP_ZONE) or the settings `tether.gcp.project` / `tether.gcp.zone`,
 * else GOOGLE_CLOUD_PROJECT / CLOUDSDK_CORE_PROJECT and CLOUDSDK_COMPUTE_ZONE, else
 * `gcloud config get-value project|compute/zone` (resolved when the client loads). The provider
 * counts as configured when a project is named (flag, setting, environment) or explicit
 * credentials are given (TETHER_GCP_ACCESS_TOKEN, GOOGLE_APPLICATION_CREDENTIALS, a stored
 * token); gcloud's application-default login is then used when there is no explicit one. A launch with no
 * zone anywhere goes to {@link GCP_FALLBACK_ZONE} and says so in the log.
 */
import { TetherError } from '../../../core/errors';
import type { CloudProviderDescriptor } from '../registry';
import { GCP_BILLING, GCP_TITLE } from './billing';

export interface GcpAccount {
  project?: string;
  zone?: string;
  endpoint?: string;
  /** From SecretStorage (VS Code); the CLI reads TETHER_GCP_ACCESS_TOKEN itself. */
  accessToken?: string;
  image?: string;
  /** The environment the account came from (gcloud config, credentials). */
  env: NodeJS.ProcessEnv;
}

// Not imported from googleAuth.ts: that module (and google-auth-library behind it) loads with the client, not at activation.
const GCP_TOKEN_ENV = 'TETHER_GCP_ACCESS_TOKEN';
/** A project id (googleAuth.ts PROJECT_ID_RE, repeated here for the prompt). */
const PROJECT_ID_RE = /^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

export const GCP_PROJECT_ENV = 'TETHER_GCP_PROJECT';
export const GCP_ZONE_ENV = 'TETHER_GCP_ZONE';
export const GCP_FALLBACK_ZONE = 'us-central1-a';
const ZONE_RE = /^[a-z]+-[a-z]+\d+-[a-z]$/;

export const gcpDescriptor: CloudProviderDescriptor<GcpAccount> = {
  kind: 'gcp',
  title: GCP_TITLE,
  aliases: ['gce', 'google', 'compute-engine'],
  apiUrlEnv: 'TETHER_GCP_API_URL',
  billing: GCP_BILLING,
  canStop: true,
  extraCalls: ['start'],
  configHelp: 'GOOGLE_CLOUD_PROJECT or --project (else gcloud config) + Google application-default credentials or TETHER_GCP_ACCESS_TOKEN; --zone or TETHER_GCP_ZONE',
  settingsSections: ['tether.gcp'],
  secretEnv: [GCP_TOKEN_ENV],
  unitEnv: [GCP_PROJECT_ENV, GCP_ZONE_ENV, 'GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT', 'CLOUDSDK_COMPUTE_ZONE', 'GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_CONFIG'],
  // A shutdown from inside a VM stops it (TERMINATED): vCPUs, GPUs and memory stop billing, the disk does not.
  selfShutdown: {
    endsBilling: false,
    text: 'GCP Compute Engine: a shutdown inside the VM stops it (TERMINATED): vCPUs, GPUs and memory stop billing; disks and static IPs bill until it is deleted.',
    docs: ['https://cloud.google.com/compute/docs/instances/stop-start-instance', 'https://cloud.google.com/compute/vm-instance-pricing'],
  },
  prompts: [
    { store: { setting: 'tether.gcp.project' }, title: 'GCP Compute Engine: project id', placeholder: 'my-project-123', validate: (v) => (PROJECT_ID_RE.test(v.trim()) ? undefined : 'A project id is 6-30 characters: lowercase letters, digits, hyphens.') },
    { store: { setting: 'tether.gcp.zone' }, title: 'GCP Compute Engine: zone', value: GCP_FALLBACK_ZONE, validate: (v) => (ZONE_RE.test(v.trim()) ? undefined : 'A zone looks like us-central1-a.') },
    {
      store: { secret: 'accessToken' },
      title: 'Google access token (empty: application-default credentials)',
      password: true,
      optional: true,
    },
  ],
  account(src) {
    const env = src.env;
    const fromSetting = (k: string) => (src.setting ? String(src.setting(k) ?? '').trim() : '');
    const project = fromSetting('tether.gcp.project') || env[GCP_PROJECT_ENV] || env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || env.CLOUDSDK_CORE_PROJECT || undefined;
    const zone = fromSetting('tether.gcp.zone') || env[GCP_ZONE_ENV] || env.CLOUDSDK_COMPUTE_ZONE || undefined;
    const token = src.secret?.accessToken || undefined;
    // gcloud's application-default file alone does not switch the provider on (no calls to Google
    // unless a project or explicit credentials were given); once on, it is used (googleAuth.ts).
    const credentials = !!(token || env[GCP_TOKEN_ENV] || env.GOOGLE_APPLICATION_CREDENTIALS);
    if (!project && !credentials) return undefined;
    const image = fromSetting('tether.gcp.image') || env.TETHER_GCP_IMAGE || undefined;
    return { ...(project ? { project } : {}), ...(zone ? { zone } : {}), ...(src.apiUrl ? { endpoint: src.apiUrl } : {}), ...(token ? { accessToken: token } : {}), ...(image ? { image } : {}), env };
  },
  async refreshPrices(a, ctx) {
    if (!a) throw new TetherError('GCP Compute Engine is not configured', { remedy: 'Pass --project P --zone Z (or set GOOGLE_CLOUD_PROJECT), with Google credentials.' });
    const client = await gcpDescriptor.load(a, ctx);
    return (await import('./gcpPricing')).refreshGcpPrices(client as import('./gcp').GcpComputeProvider, { ...ctx, ...(a.accessToken ? { accessToken: a.accessToken } : {}), accountEnv: a.env });
  },
  async load(a, ctx) {
    return (await import('./gcp')).createGcpProvider(a, ctx);
  },
};
