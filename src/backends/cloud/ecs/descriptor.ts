/**
 * AWS ECS (Fargate and EC2-launched tasks) in the provider registry. The account is opt-in:
 * EC2 users with a region set are not polled for ECS tasks unless they name a cluster.
 *
 * CLI (environment): TETHER_ECS_CLUSTER (or `--cluster`; usually `default`) enables it, in the
 * region TETHER_ECS_REGION, else TETHER_AWS_REGION / AWS_REGION; credentials from the standard AWS
 * chain; TETHER_AWS_API_URL redirects it like EC2 (TETHER_ECS_API_URL: ECS alone). Optional: TETHER_ECS_SUBNETS and
 * TETHER_ECS_SECURITY_GROUPS (comma-separated; default: the default VPC's default subnets with a
 * public IP), TETHER_ECS_LOG_GROUP + TETHER_ECS_EXECUTION_ROLE (awslogs).
 * VS Code: the settings tether.ecs.cluster, tether.ecs.region (else tether.aws.region),
 * tether.ecs.subnets, tether.ecs.securityGroups, tether.ecs.logGroup, tether.ecs.executionRoleArn;
 * keys as for EC2 (SecretStorage, else the chain).
 */
import type { CloudProviderDescriptor } from '../registry';
import { ECS_BILLING } from './billing';

export interface EcsAccount {
  region: string;
  cluster: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  subnets?: string[];
  securityGroups?: string[];
  logGroup?: string;
  executionRoleArn?: string;
}

const list = (v: unknown): string[] =>
  (Array.isArray(v) ? v.map(String) : String(v ?? '').split(','))
    .map((x) => x.trim())
    .filter(Boolean);

export const ecsDescriptor: CloudProviderDescriptor<EcsAccount> = {
  kind: 'ecs',
  title: 'AWS ECS',
  aliases: ['fargate'],
  // Its own variable (the registry keeps them unique); TETHER_AWS_API_URL, EC2's, also redirects ECS when this one is unset.
  apiUrlEnv: 'TETHER_ECS_API_URL',
  billing: ECS_BILLING,
  canStop: false,
  extraCalls: ['checkLaunch', 'instanceType'],
  configHelp: 'TETHER_ECS_CLUSTER (or --cluster) + TETHER_AWS_REGION and the AWS credential chain',
  settingsSections: ['tether.ecs', 'tether.aws'],
  secretEnv: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
  unitEnv: ['TETHER_AWS_PRICING_API_URL', 'TETHER_ECS_CLUSTER', 'TETHER_ECS_REGION', 'TETHER_AWS_REGION', 'AWS_REGION', 'AWS_PROFILE', 'TETHER_ECS_SUBNETS', 'TETHER_ECS_SECURITY_GROUPS', 'TETHER_ECS_LOG_GROUP', 'TETHER_ECS_EXECUTION_ROLE'],
  // A task has no SSH: Tether cannot arm a switch inside it. What ends a task's bill is its essential container exiting (or StopTask).
  selfShutdown: {
    endsBilling: true,
    text: "AWS ECS: a task has no SSH, so no switch can be armed in it; a task stops billing when its essential container exits (bound it with --time-limit)",
    docs: ['https://aws.amazon.com/fargate/pricing/'],
  },
  prompts: [
    { store: { setting: 'tether.ecs.cluster' }, title: 'AWS ECS: cluster tasks run in', value: 'default', validate: (v) => (/^[A-Za-z0-9_-]{1,255}$/.test(v.trim()) ? undefined : 'A cluster name: letters, digits, "-" and "_".') },
    { store: { setting: 'tether.ecs.region' }, title: 'AWS ECS: region (empty: the EC2 region setting)', optional: true, validate: (v) => (!v.trim() || /^[a-z]{2}(-[a-z]+)+-\d$/.test(v.trim()) ? undefined : 'A region looks like us-east-1.') },
    { store: { secret: 'accessKeyId' }, title: 'AWS access key id (empty: use the standard AWS credential chain)', optional: true },
    { store: { secret: 'secretAccessKey' }, title: 'AWS secret access key', password: true, optional: true },
  ],
  account(src) {
    const get = (setting: string, env: string): string => (src.setting ? String(src.setting(setting) ?? '') : (src.env[env] ?? '')).trim();
    const cluster = get('tether.ecs.cluster', 'TETHER_ECS_CLUSTER');
    const region = get('tether.ecs.region', 'TETHER_ECS_REGION') || (src.setting ? String(src.setting('tether.aws.region') ?? '').trim() : (src.env.TETHER_AWS_REGION ?? src.env.AWS_REGION ?? '').trim());
    if (!cluster || !region) return undefined;
    const s = src.secret;
    const subnets = list(src.setting ? src.setting('tether.ecs.subnets') : src.env.TETHER_ECS_SUBNETS);
    const securityGroups = list(src.setting ? src.setting('tether.ecs.securityGroups') : src.env.TETHER_ECS_SECURITY_GROUPS);
    const logGroup = get('tether.ecs.logGroup', 'TETHER_ECS_LOG_GROUP');
    const executionRoleArn = get('tether.ecs.executionRoleArn', 'TETHER_ECS_EXECUTION_ROLE');
    return {
      region,
      cluster,
      ...(src.apiUrl || src.env.TETHER_AWS_API_URL ? { endpoint: src.apiUrl || src.env.TETHER_AWS_API_URL } : {}),
      ...(s?.accessKeyId && s.secretAccessKey ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, ...(s.sessionToken ? { sessionToken: s.sessionToken } : {}) } } : {}),
      ...(subnets.length ? { subnets } : {}),
      ...(securityGroups.length ? { securityGroups } : {}),
      ...(logGroup ? { logGroup } : {}),
      ...(executionRoleArn ? { executionRoleArn } : {}),
    };
  },
  // `tether cloud prices ecs [--region R]`: the region's Fargate rates from the AWS Price List API into <state>/fargate-prices.json.
  refreshPrices: async (a, ctx) => (await import('./lazy')).refreshEcsPrices(a, ctx),
  load: async (a, ctx) => (await import('./lazy')).loadEcs(a, ctx),
};
