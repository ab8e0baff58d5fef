import { apiKeyAccount, apiKeyPrompt, type ApiKeyAccount } from '../apiKeyAccount';
import type { CloudProviderDescriptor } from '../registry';
import { RUNPOD_BILLING } from '../rules';

export const runpodDescriptor: CloudProviderDescriptor<ApiKeyAccount> = {
  kind: 'runpod',
  title: 'RunPod',
  aliases: [],
  apiUrlEnv: 'TETHER_RUNPOD_API_URL',
  billing: RUNPOD_BILLING,
  canStop: true,
  extraCalls: ['start'],
  configHelp: 'RUNPOD_API_KEY',
  secretEnv: ['RUNPOD_API_KEY'],
  prompts: [apiKeyPrompt('RunPod')],
  account: (src) => apiKeyAccount('RUNPOD_API_KEY', src),
  load: async (a, { log }) => new (await import('./runpod')).RunPodProvider({ ...a, log: (l: string) => log.debug(l) }),
};
