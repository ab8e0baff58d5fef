/**
 * Google Cloud Run jobs in the provider registry. Light: the client (cloudrun.ts) and the Google
 * credentials code (../googleAuth.ts, which loads google-auth-library itself on first use) are
 * imported only by `load()`.
 *
 * Account: a Cloud Run region (CLI `TETHER_GCP_RUN_REGION`, else gcloud's `CLOUDSDK_RUN_REGION`;
 * VS Code `tether.cloudRun.region`) makes it configured. The project: `tether.gcp.project` (VS Code),
 * `TETHER_GCP_PROJECT`, `GOOGLE_CLOUD_PROJECT`, `GCLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT`, else
 * `gcloud config get-value project` when the client loads. The token: `TETHER_GCP_ACCESS_TOKEN`,
 * else Application Default Credentials (googleAuth.ts). The image of launches without `--image`:
 * `TETHER_GCP_RUN_IMAGE` / `tether.cloudRun.image`. More locations to list (and launch into):
 * `TETHER_GCP_RUN_REGIONS` (comma-separated) / `tether.cloudRun.regions`.
 */
import type { CloudProviderDescriptor } from '../registry';
import { CLOUD_RUN_BILLING, CLOUD_RUN_TITLE } from './billing';

export interface CloudRunAccount {
  region: string;
  /** More locations to list (`TETHER_GCP_RUN_REGIONS`, comma-separated). */
  regions?: string[];
  project?: string;
  baseUrl?: string;
  defaultImage?: string;
}

const REGION = /^[a-z]+(-[a-z]+)+\d+$/;

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

export const cloudRunDescriptor: CloudProviderDescriptor<CloudRunAccount> = {
  kind: 'cloud_run',
  title: CLOUD_RUN_TITLE,
  aliases: ['cloudrun', 'run'],
  apiUrlEnv: 'TETHER_GCP_RUN_API_URL',
  billing: CLOUD_RUN_BILLING,
  canStop: false,
  extraCalls: ['checkLaunch', 'listTasks'],
  configHelp: 'TETHER_GCP_RUN_REGION + a project (--project, GOOGLE_CLOUD_PROJECT or gcloud config) + TETHER_GCP_ACCESS_TOKEN or Application Default Credentials',
  settingsSections: ['tether.cloudRun', 'tether.gcp'],
  secretEnv: ['TETHER_GCP_ACCESS_TOKEN'],
  unitEnv: ['TETHER_GCP_RUN_REGION', 'TETHER_GCP_RUN_REGIONS', 'TETHER_GCP_PROJECT', 'GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT', 'GOOGLE_APPLICATION_CREDENTIALS', 'TETHER_GCP_RUN_IMAGE'],
  prompts: [
    { store: { setting: 'tether.cloudRun.region' }, title: 'Google Cloud Run jobs: region', value: 'us-central1', validate: (v) => (REGION.test(v.trim()) ? undefined : 'A Cloud Run region looks like us-central1.') },
    { store: { setting: 'tether.gcp.project' }, title: 'Google Cloud project id (empty: GOOGLE_CLOUD_PROJECT or gcloud config)', optional: true },
    { store: { setting: 'tether.cloudRun.image' }, title: 'Default container image for Cloud Run jobs (empty: ask at each launch)', optional: true, placeholder: 'us-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG' },
  ],
  account(src) {
    const ui = !!src.setting;
    const region = ui ? str(src.setting!('tether.cloudRun.region')) : str(src.env.TETHER_GCP_RUN_REGION ?? src.env.CLOUDSDK_RUN_REGION);
    if (!region) return undefined;
    const project = ui ? str(src.setting!('tether.gcp.project')) : str(src.env.TETHER_GCP_PROJECT ?? src.env.GOOGLE_CLOUD_PROJECT ?? src.env.GCLOUD_PROJECT ?? src.env.CLOUDSDK_CORE_PROJECT);
    const image = ui ? str(src.setting!('tether.cloudRun.image')) : str(src.env.TETHER_GCP_RUN_IMAGE);
    const listed = ui ? src.setting!('tether.cloudRun.regions') : str(src.env.TETHER_GCP_RUN_REGIONS).split(',');
    const regions = (Array.isArray(listed) ? listed : []).map(str).filter((r) => REGION.test(r));
    return {
      region,
      ...(regions.length ? { regions } : {}),
      ...(project ? { project } : {}),
      ...(src.apiUrl ? { baseUrl: src.apiUrl } : {}),
      ...(image ? { defaultImage: image } : {}),
    };
  },
  async load(a, { log }) {
    const [{ CloudRunProvider }, auth] = await Promise.all([import('./cloudrun'), import('../googleAuth')]);
    const project = (await auth.googleProjectWithSource(a.project ? { project: a.project } : {})).project;
    return new CloudRunProvider({
      project,
      region: a.region,
      ...(a.regions ? { regions: a.regions } : {}),
      ...(a.baseUrl ? { baseUrl: a.baseUrl } : {}),
      ...(a.defaultImage ? { defaultImage: a.defaultImage } : {}),
      token: () => auth.googleAccessToken(),
      log: (l: string) => log.debug(l),
    });
  },
};
