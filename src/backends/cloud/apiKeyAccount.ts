/**
 * The account of a provider configured by one API key: the key from VS Code's SecretStorage (the
 * UI) or the provider's conventional environment variable (the CLI), and an optional base URL.
 */
import type { AccountPrompt, AccountSource } from './registry';

export interface ApiKeyAccount {
  apiKey: string;
  baseUrl?: string;
}

/** The account of an API-key provider whose key lives in `keyEnv` (CLI) or the secret field `apiKey` (UI). */
export function apiKeyAccount(keyEnv: string, src: AccountSource): ApiKeyAccount | undefined {
  const apiKey = src.secret?.apiKey ?? (src.setting ? undefined : src.env[keyEnv]);
  if (!apiKey) return undefined;
  return { apiKey, ...(src.apiUrl ? { baseUrl: src.apiUrl } : {}) };
}

/** The one prompt of an API-key provider. */
export function apiKeyPrompt(title: string): AccountPrompt {
  return {
    store: { secret: 'apiKey' },
    title: `${title} API key`,
    password: true,
    validate: (v) => (v.trim().length < 8 ? 'That does not look like an API key.' : undefined),
  };
}
