/**
 * Cloud accounts for the extension: API keys entered once through "Tether: Set Cloud API Key…"
 * and kept in VS Code's SecretStorage (shared by every window; never in settings, the ledger or
 * logs). Provider endpoints may be redirected with TETHER_<P>_URL (proxies, tests).
 */
import * as vscode from 'vscode';
import { API_URL_ENV, CLOUD_ACCOUNT_TITLES, type CloudAccountKind, type CloudAccounts } from '../fleet/cloudAccounts';

const KEY = (kind: CloudAccountKind) => `tether.cloud.${kind}.apiKey`;
const REST_KINDS = ['lambda_labs', 'runpod', 'vast_ai'] as const;
/** The API base URL: TETHER_<PROVIDER>_API_URL, else the `tether.cloud.apiUrls` setting. */
function apiUrl(kind: CloudAccountKind): string | undefined {
  return process.env[API_URL_ENV[kind]] || vscode.workspace.getConfiguration('tether.cloud').get<Record<string, string>>('apiUrls', {})[kind] || undefined;
}

export class CloudKeys implements vscode.Disposable {
  private accounts: CloudAccounts = {};
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.sub = vscode.Disposable.from(
      secrets.onDidChange((e) => {
        if (e.key.startsWith('tether.cloud.')) void this.load();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('tether.aws') || e.affectsConfiguration('tether.cloud')) void this.load();
      }),
    );
  }

  /** The configured accounts (read synchronously by every poll). */
  get current(): CloudAccounts {
    return this.accounts;
  }

  async load(): Promise<void> {
    const next: CloudAccounts = {};
    for (const kind of REST_KINDS) {
      const apiKey = await this.secrets.get(KEY(kind));
      const baseUrl = apiUrl(kind);
      if (apiKey) next[kind] = { apiKey, ...(baseUrl ? { baseUrl } : {}) };
    }
    const aws = vscode.workspace.getConfiguration('tether.aws');
    const region = aws.get<string>('region', '').trim();
    if (region) {
      const creds = await this.secrets.get(KEY('aws'));
      const parsed = creds ? (JSON.parse(creds) as { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) : undefined;
      const ami = aws.get<string>('imageId', '').trim();
      next.aws = { region, ...(parsed ? { credentials: parsed } : {}), ...(ami ? { defaultImageId: ami } : {}), ...(apiUrl('aws') ? { endpoint: apiUrl('aws')! } : {}) };
    }
    this.accounts = next;
    this.changed.fire();
  }

  /** "Tether: Set Cloud API Key…": asks for the provider and the key, stores it. */
  async setKey(): Promise<void> {
    const kinds = Object.keys(CLOUD_ACCOUNT_TITLES) as CloudAccountKind[];
    const pick = await vscode.window.showQuickPick(
      kinds.map((k) => ({ label: CLOUD_ACCOUNT_TITLES[k], description: this.accounts[k] ? 'configured' : '', account: k })),
      { placeHolder: 'Which cloud account?' },
    );
    if (!pick) return;
    if (pick.account === 'aws') {
      const region = await vscode.window.showInputBox({ title: 'AWS EC2: region', value: vscode.workspace.getConfiguration('tether.aws').get('region') || 'us-east-1', ignoreFocusOut: true });
      if (!region) return;
      await vscode.workspace.getConfiguration('tether.aws').update('region', region, vscode.ConfigurationTarget.Global);
      const id = await vscode.window.showInputBox({ title: 'AWS access key id (empty: use the standard AWS credential chain)', ignoreFocusOut: true });
      if (id === undefined) return;
      if (id) {
        const secret = await vscode.window.showInputBox({ title: 'AWS secret access key', password: true, ignoreFocusOut: true });
        if (!secret) return;
        await this.secrets.store(KEY('aws'), JSON.stringify({ accessKeyId: id, secretAccessKey: secret }));
      } else {
        await this.secrets.delete(KEY('aws'));
      }
    } else {
      const key = await vscode.window.showInputBox({
        title: `${pick.label} API key`,
        prompt: 'Kept in VS Code\'s secret storage, never in settings or logs.',
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim().length < 8 ? 'That does not look like an API key.' : undefined),
      });
      if (!key) return;
      await this.secrets.store(KEY(pick.account), key.trim());
    }
    await this.load();
    void vscode.window.showInformationMessage(`Tether: ${pick.label} account saved.`);
  }

  /** "Tether: Remove Cloud API Key…". */
  async removeKey(): Promise<void> {
    const kinds = (Object.keys(CLOUD_ACCOUNT_TITLES) as CloudAccountKind[]).filter((k) => this.accounts[k]);
    if (!kinds.length) return void vscode.window.showInformationMessage('Tether: no cloud account is configured.');
    const pick = await vscode.window.showQuickPick(kinds.map((k) => ({ label: CLOUD_ACCOUNT_TITLES[k], account: k })), { placeHolder: 'Forget which account?' });
    if (!pick) return;
    await this.secrets.delete(KEY(pick.account));
    if (pick.account === 'aws') await vscode.workspace.getConfiguration('tether.aws').update('region', undefined, vscode.ConfigurationTarget.Global);
    await this.load();
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
