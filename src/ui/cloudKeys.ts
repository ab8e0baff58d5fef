/**
 * Cloud accounts for the extension, one per provider of the registry
 * (src/backends/cloud/registry.ts): what "Tether: Set Cloud API Key…" asked for, each provider's
 * own prompts — secrets kept in VS Code's SecretStorage (shared by every window; never in
 * settings, the ledger or logs), the rest in user settings. Provider endpoints may be redirected
 * with TETHER_<PROVIDER>_API_URL or `tether.cloud.apiUrls` (proxies, tests).
 */
import * as vscode from 'vscode';
import { accountsFrom, CLOUD_PROVIDERS, type CloudAccounts, type CloudProviderDescriptor } from '../fleet/cloudAccounts';

/** Where a provider's secret fields live (the name kept from when every secret was one API key). */
const KEY = (kind: string) => `tether.cloud.${kind}.apiKey`;

/** The API base URL: TETHER_<PROVIDER>_API_URL, else the `tether.cloud.apiUrls` setting. */
function apiUrl(d: CloudProviderDescriptor): string | undefined {
  return process.env[d.apiUrlEnv] || vscode.workspace.getConfiguration('tether.cloud').get<Record<string, string>>('apiUrls', {})[d.kind] || undefined;
}

/** A user setting by its full name (`tether.aws.region`). */
function setting(key: string): unknown {
  const i = key.lastIndexOf('.');
  return vscode.workspace.getConfiguration(key.slice(0, i)).get(key.slice(i + 1));
}

async function updateSetting(key: string, value: unknown): Promise<void> {
  const i = key.lastIndexOf('.');
  await vscode.workspace.getConfiguration(key.slice(0, i)).update(key.slice(i + 1), value, vscode.ConfigurationTarget.Global);
}

/** The secret fields a provider's prompts store. */
const secretFields = (d: CloudProviderDescriptor) => d.prompts.flatMap((p) => ('secret' in p.store ? [p.store.secret] : []));

/** Stored text → fields: one field (an API key) is stored as itself, several as JSON. */
function parseSecret(d: CloudProviderDescriptor, text: string | undefined): Record<string, string> | undefined {
  if (!text) return undefined;
  const fields = secretFields(d);
  if (fields.length === 1) return { [fields[0]!]: text };
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return undefined;
  }
}

export class CloudKeys implements vscode.Disposable {
  private accounts: CloudAccounts = {};
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly secrets: vscode.SecretStorage) {
    const sections = ['tether.cloud', ...CLOUD_PROVIDERS.flatMap((d) => d.settingsSections ?? [])];
    this.sub = vscode.Disposable.from(
      secrets.onDidChange((e) => {
        if (e.key.startsWith('tether.cloud.')) void this.load();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (sections.some((s) => e.affectsConfiguration(s))) void this.load();
      }),
    );
  }

  /** The configured accounts (read synchronously by every poll). */
  get current(): CloudAccounts {
    return this.accounts;
  }

  async load(): Promise<void> {
    const secrets = new Map<string, Record<string, string> | undefined>();
    for (const d of CLOUD_PROVIDERS) if (secretFields(d).length) secrets.set(d.kind, parseSecret(d, await this.secrets.get(KEY(d.kind))));
    this.accounts = accountsFrom((d) => {
      const url = apiUrl(d);
      const secret = secrets.get(d.kind);
      return { env: process.env, setting, ...(secret ? { secret } : {}), ...(url ? { apiUrl: url } : {}) };
    });
    this.changed.fire();
  }

  /** "Tether: Set Cloud API Key…": asks for the provider, then what that provider needs; stores it. */
  async setKey(): Promise<void> {
    const pick = await vscode.window.showQuickPick(
      CLOUD_PROVIDERS.map((d) => ({ label: d.title, description: this.accounts[d.kind] ? 'configured' : '', d })),
      { placeHolder: 'Which cloud account?' },
    );
    if (!pick) return;
    const d = pick.d;
    const secret: Record<string, string> = {};
    const settings: Array<[string, string | undefined]> = [];
    for (const p of d.prompts) {
      const current = 'setting' in p.store ? setting(p.store.setting) : undefined;
      const answer = await vscode.window.showInputBox({
        title: p.title,
        ...(p.password ? { password: true, prompt: "Kept in VS Code's secret storage, never in settings or logs." } : {}),
        ...(p.placeholder ? { placeHolder: p.placeholder } : {}),
        value: typeof current === 'string' && current ? current : (p.value ?? ''),
        ignoreFocusOut: true,
        validateInput: (v) => (!v.trim() ? (p.optional ? undefined : 'Required.') : p.validate?.(v.trim())),
      });
      if (answer === undefined) return;
      const v = answer.trim();
      if ('secret' in p.store) {
        if (v) secret[p.store.secret] = v;
        // An optional secret left empty (AWS: use the credential chain) skips the ones after it.
        else if (p.optional) break;
      } else settings.push([p.store.setting, v || undefined]);
    }
    for (const [k, v] of settings) await updateSetting(k, v);
    const fields = secretFields(d);
    if (fields.length) {
      if (!Object.keys(secret).length) await this.secrets.delete(KEY(d.kind));
      else await this.secrets.store(KEY(d.kind), fields.length === 1 ? secret[fields[0]!]! : JSON.stringify(secret));
    }
    await this.load();
    void vscode.window.showInformationMessage(`Tether: ${d.title} account saved.`);
  }

  /** "Tether: Remove Cloud API Key…": forgets a provider's secret and the settings its prompts wrote. */
  async removeKey(): Promise<void> {
    const configured = CLOUD_PROVIDERS.filter((d) => this.accounts[d.kind]);
    if (!configured.length) return void vscode.window.showInformationMessage('Tether: no cloud account is configured.');
    const pick = await vscode.window.showQuickPick(configured.map((d) => ({ label: d.title, d })), { placeHolder: 'Forget which account?' });
    if (!pick) return;
    await this.secrets.delete(KEY(pick.d.kind));
    for (const p of pick.d.prompts) if ('setting' in p.store) await updateSetting(p.store.setting, undefined);
    await this.load();
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
