/**
 * What SSH needs from the user, asked the VS Code way: key passphrases (asked once, then kept in
 * SecretStorage — never in settings, the ledger or logs) and the decision to trust an unknown
 * host key (shown with its fingerprint; only the user can accept it).
 */
import * as vscode from 'vscode';

const PASSPHRASE_KEY = (keyFile: string) => `tether.ssh.passphrase:${keyFile}`;

export class SshPrompts implements vscode.Disposable {
  private readonly sub: vscode.Disposable;
  /** Passphrases other windows changed: dropped from the in-memory view at once. */
  private readonly changed = new vscode.EventEmitter<string>();
  readonly onDidChangePassphrase = this.changed.event;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.sub = secrets.onDidChange((e) => {
      if (e.key.startsWith('tether.ssh.passphrase:')) this.changed.fire(e.key.slice('tether.ssh.passphrase:'.length));
    });
  }

  /** The passphrase of a key file: from SecretStorage, else asked once and stored. */
  async passphrase(keyFile: string, retry = false): Promise<string | undefined> {
    if (!retry) {
      const kept = await this.secrets.get(PASSPHRASE_KEY(keyFile));
      if (kept !== undefined) return kept;
    }
    const value = await vscode.window.showInputBox({
      title: 'Tether: SSH key passphrase',
      prompt: retry ? `Wrong passphrase for ${keyFile}; try again` : `Passphrase for ${keyFile} (kept in VS Code's secret storage)`,
      password: true,
      ignoreFocusOut: true,
    });
    if (value !== undefined) await this.secrets.store(PASSPHRASE_KEY(keyFile), value);
    return value;
  }

  /** The stored passphrase only, never asking (for background polls). */
  async storedPassphrase(keyFile: string): Promise<string | undefined> {
    return this.secrets.get(PASSPHRASE_KEY(keyFile));
  }

  async forgetPassphrase(keyFile: string): Promise<void> {
    await this.secrets.delete(PASSPHRASE_KEY(keyFile));
  }

  /** Asks whether to trust an unknown host key; true only when the user accepts it. */
  async trustHostKey(host: string, fingerprint: string, knownHostsFile: string): Promise<boolean> {
    const accept = 'Trust and Connect';
    const choice = await vscode.window.showWarningMessage(
      `Tether: the authenticity of host "${host}" can't be established.`,
      {
        modal: true,
        detail: `Its key fingerprint is ${fingerprint}.\nConnect only if this matches the host's key (ssh-keygen -lf on the host). Accepting adds it to ${knownHostsFile}.`,
      },
      accept,
    );
    return choice === accept;
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
