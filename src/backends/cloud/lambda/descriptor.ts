import { apiKeyAccount, apiKeyPrompt, type ApiKeyAccount } from '../apiKeyAccount';
import type { CloudProviderDescriptor } from '../registry';
import { LAMBDA_BILLING } from '../rules';

export const lambdaDescriptor: CloudProviderDescriptor<ApiKeyAccount> = {
  kind: 'lambda_labs',
  title: 'Lambda Cloud',
  aliases: ['lambda', 'lambdalabs'],
  apiUrlEnv: 'TETHER_LAMBDA_API_URL',
  billing: LAMBDA_BILLING,
  canStop: false,
  extraCalls: ['checkLaunch', 'listSshKeys', 'addSshKey'],
  configHelp: 'LAMBDA_API_KEY',
  secretEnv: ['LAMBDA_API_KEY'],
  prompts: [apiKeyPrompt('Lambda Cloud')],
  account: (src) => apiKeyAccount('LAMBDA_API_KEY', src),
  load: async (a, { log }) => new (await import('./lambda')).LambdaCloudProvider({ ...a, log: (l: string) => log.debug(l) }),
};
