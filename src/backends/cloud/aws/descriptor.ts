import { ExitCode, TetherError } from '../../../core/errors';
import type { CloudProviderDescriptor } from '../registry';
import { AWS_BILLING } from '../rules';
import type { AwsCredentials } from './aws';

export interface AwsAccount {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentials;
  defaultImageId?: string;
}

/** Environment override of the AWS Price List Query API endpoint (`tether cloud prices aws`). */
export const AWS_PRICING_URL_ENV = 'TETHER_AWS_PRICING_API_URL';

export const awsDescriptor: CloudProviderDescriptor<AwsAccount> = {
  kind: 'aws',
  title: 'AWS EC2',
  aliases: ['ec2'],
  apiUrlEnv: 'TETHER_AWS_API_URL',
  billing: AWS_BILLING,
  canStop: true,
  configHelp: 'TETHER_AWS_REGION (or AWS_REGION) + the AWS credential chain',
  settingsSections: ['tether.aws'],
  secretEnv: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
  deadmanShutdownBehavior: 'terminate',
  unitEnv: [AWS_PRICING_URL_ENV, 'TETHER_AWS_REGION', 'AWS_REGION', 'AWS_PROFILE', 'TETHER_AWS_AMI'],
  prompts: [
    { store: { setting: 'tether.aws.region' }, title: 'AWS EC2: region', value: 'us-east-1', validate: (v) => (/^[a-z]{2}(-[a-z]+)+-\d$/.test(v.trim()) ? undefined : 'A region looks like us-east-1.') },
    { store: { secret: 'accessKeyId' }, title: 'AWS access key id (empty: use the standard AWS credential chain)', optional: true },
    { store: { secret: 'secretAccessKey' }, title: 'AWS secret access key', password: true },
  ],
  account(src) {
    // VS Code: the region setting (and keys from SecretStorage, else the chain); the CLI: the environment.
    const region = src.setting ? String(src.setting('tether.aws.region') ?? '').trim() : (src.env.TETHER_AWS_REGION ?? src.env.AWS_REGION ?? '');
    if (!region) return undefined;
    const ami = src.setting ? String(src.setting('tether.aws.imageId') ?? '').trim() : (src.env.TETHER_AWS_AMI ?? '');
    const s = src.secret;
    return {
      region,
      ...(src.apiUrl ? { endpoint: src.apiUrl } : {}),
      ...(s?.accessKeyId && s.secretAccessKey ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, ...(s.sessionToken ? { sessionToken: s.sessionToken } : {}) } } : {}),
      ...(ami ? { defaultImageId: ami } : {}),
    };
  },
  async refreshPrices(a, { log, stateDir, env, region }) {
    const r = region ?? a?.region;
    if (!r) throw new TetherError('no AWS region', { remedy: 'Pass --region R or set TETHER_AWS_REGION (CLI) or tether.aws.region (VS Code).', exitCode: ExitCode.USAGE });
    const endpoint = env[AWS_PRICING_URL_ENV];
    const { catalogue, file } = await (await import('./awsPricing')).refreshUserCatalogue(stateDir, {
      regions: [r],
      ...(endpoint ? { endpoint } : {}),
      ...(a?.credentials ? { credentials: a.credentials } : {}),
      log,
    });
    const prices = catalogue.regions[r] ?? {};
    return {
      catalogue,
      lines: Object.entries(prices)
        .sort((x, y) => x[1] - y[1])
        .map(([t, p]) => `${t.padEnd(20)} $${p.toFixed(4)}/h`),
      summary: `${Object.keys(prices).length} EC2 on-demand Linux prices for ${r} as of ${catalogue.asOf}, saved to ${file}`,
    };
  },
  async load(a, { log, stateDir }) {
    const [{ AWS_SHIPPED_CATALOGUE, AwsEc2Provider }, { loadUserCatalogue, newestCatalogue }] = await Promise.all([import('./aws'), import('./awsPricing')]);
    const user = stateDir ? loadUserCatalogue(stateDir, log) : undefined;
    return new AwsEc2Provider({ ...a, log, ...(user ? { catalogue: newestCatalogue(AWS_SHIPPED_CATALOGUE, user) } : {}) });
  },
};
