import { apiKeyAccount, apiKeyPrompt, type ApiKeyAccount } from '../apiKeyAccount';
import type { CloudProviderDescriptor } from '../registry';
import { VAST_BILLING } from '../rules';

export const vastDescriptor: CloudProviderDescriptor<ApiKeyAccount> = {
  kind: 'vast_ai',
  title: 'Vast.ai',
  aliases: ['vast', 'vastai'],
  apiUrlEnv: 'TETHER_VAST_API_URL',
  billing: VAST_BILLING,
  canStop: true,
  configHelp: 'VAST_API_KEY',
  secretEnv: ['VAST_API_KEY'],
  prompts: [apiKeyPrompt('Vast.ai')],
  account: (src) => apiKeyAccount('VAST_API_KEY', src),
  load: async (a, { log }) => new (await import('./vastai')).VastAiProvider({ ...a, log: (l: string) => log.debug(l) }),
};
