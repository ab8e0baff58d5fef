/**
 * The provisioning wizard's SSH key step for Lambda Cloud: a launch names exactly one of the
 * account's SSH keys. Offers the account's keys, and — always, and at once when the account has
 * none — to add one through `POST /ssh-keys` (spec AddSSHKeyRequest): upload a public key the
 * user picks, or let Lambda generate a pair (its private key is saved under ~/.ssh, 0600; Lambda
 * keeps no copy). The private key is never logged nor shown.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LambdaGeneratedSshKey, LambdaSshKey } from '../backends/cloud/lambda/lambda';

/** The Lambda client module, loaded by the first {@link pickLambdaSshKey} (a chunk of its own: not loaded at activation). */
let lambda: typeof import('../backends/cloud/lambda/lambda');

/** What the step needs of the Lambda client. */
export interface LambdaKeyApi {
  listSshKeys(): Promise<LambdaSshKey[]>;
  addSshKey(name: string, publicKey?: string): Promise<LambdaSshKey | LambdaGeneratedSshKey>;
}

export function isLambdaKeyApi(p: unknown): p is LambdaKeyApi {
  return typeof (p as LambdaKeyApi | undefined)?.listSshKeys === 'function' && typeof (p as LambdaKeyApi).addSshKey === 'function';
}

const UPLOAD = 'Upload a Public Key…';
const GENERATE = 'Generate a Key Pair';

function progress<T>(title: string, task: () => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: false }, task);
}

/** The key name the launch will use; undefined when the user cancels. Errors (API) are thrown. */
export async function pickLambdaSshKey(api: LambdaKeyApi, step: string): Promise<string | undefined> {
  lambda ??= await import('../backends/cloud/lambda/lambda');
  const keys = await progress('Tether: reading your Lambda Cloud SSH keys…', () => api.listSshKeys());
  let how: string | undefined;
  if (keys.length) {
    type Item = vscode.QuickPickItem & { key?: string; how?: string };
    const items: Item[] = [
      ...keys.map((k) => ({ label: k.name, description: k.public_key.split(' ')[0], key: k.name })),
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: `$(cloud-upload) ${UPLOAD}`, description: 'add one of your public keys to the account', how: UPLOAD },
      { label: `$(key) ${GENERATE}`, description: 'Lambda generates it; Tether saves the private key in ~/.ssh', how: GENERATE },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: `${step}: SSH key`, placeHolder: 'Lambda Cloud launches with exactly one of your SSH keys' });
    if (!picked) return undefined;
    if (picked.key) return picked.key;
    how = picked.how;
  } else {
    how = await vscode.window.showWarningMessage(
      'Tether: your Lambda Cloud account has no SSH key, and Lambda launches an instance only with exactly one. Add one now?',
      {
        modal: true,
        detail: `${UPLOAD}: one of your public keys (~/.ssh/*.pub) goes to your Lambda Cloud account.\n${GENERATE}: Lambda generates a key pair; Tether saves its private key in ~/.ssh (Lambda keeps no copy).`,
      },
      UPLOAD,
      GENERATE,
    );
  }
  if (how === UPLOAD) return upload(api, keys);
  if (how === GENERATE) return generate(api, keys);
  return undefined;
}

async function askName(keys: LambdaSshKey[], value: string): Promise<string | undefined> {
  const taken = new Set(keys.map((k) => k.name));
  return vscode.window.showInputBox({
    title: 'Name of the SSH key at Lambda Cloud',
    value: value.slice(0, 64),
    validateInput: (v) => lambda.sshKeyNameProblem(v) ?? (taken.has(v) ? `your account already has a key named "${v}"` : undefined),
  });
}

async function upload(api: LambdaKeyApi, keys: LambdaSshKey[]): Promise<string | undefined> {
  const sshDir = path.join(os.homedir(), '.ssh');
  let files: string[] = [];
  try {
    files = fs.readdirSync(sshDir).filter((f) => f.endsWith('.pub'));
  } catch {
    /* no ~/.ssh */
  }
  type Item = vscode.QuickPickItem & { file?: string };
  const BROWSE = '$(folder-opened) Browse…';
  const picked = await vscode.window.showQuickPick<Item>(
    [...files.map((f) => ({ label: f, description: sshDir, file: path.join(sshDir, f) })), { label: BROWSE }],
    { title: 'Public key to upload to Lambda Cloud', placeHolder: 'A .pub file (never the private key)' },
  );
  if (!picked) return undefined;
  let file = picked.file;
  if (!file) {
    const uri = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Upload', filters: { 'Public keys': ['pub'], 'All files': ['*'] }, ...(fs.existsSync(sshDir) ? { defaultUri: vscode.Uri.file(sshDir) } : {}) });
    file = uri?.[0]?.fsPath;
    if (!file) return undefined;
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    void vscode.window.showErrorMessage(`Tether: cannot read ${file}: ${(err as Error).message}`);
    return undefined;
  }
  const problem = lambda.publicKeyProblem(text);
  if (problem) {
    void vscode.window.showErrorMessage(`Tether: ${file}: ${problem}.`);
    return undefined;
  }
  const name = await askName(keys, `${os.hostname()}-${path.basename(file, '.pub')}`);
  if (!name) return undefined;
  const added = await progress(`Tether: adding ${name} to your Lambda Cloud account…`, () => api.addSshKey(name, text));
  vscode.window.setStatusBarMessage(`Tether: SSH key ${added.name} added to Lambda Cloud`, 5000);
  return added.name;
}

async function generate(api: LambdaKeyApi, keys: LambdaSshKey[]): Promise<string | undefined> {
  const name = await askName(keys, `tether-${os.hostname()}`);
  if (!name) return undefined;
  const added = await progress(`Tether: Lambda Cloud is generating the key pair ${name}…`, () => api.addSshKey(name));
  if (!('private_key' in added) || !added.private_key) {
    throw new Error(`Lambda Cloud added ${added.name} without returning its private key; delete it in the Lambda Cloud dashboard and upload a public key instead`);
  }
  let file: string | undefined;
  try {
    file = lambda.savePrivateKey(path.join(os.homedir(), '.ssh'), name, added);
  } catch (err) {
    // Lambda keeps no copy: ask where else to put it rather than lose it.
    const uri = await vscode.window.showSaveDialog({ title: `Save the private key of ${name} (could not write ~/.ssh: ${(err as Error).message})` });
    if (uri) {
      fs.writeFileSync(uri.fsPath, added.private_key.endsWith('\n') ? added.private_key : `${added.private_key}\n`, { mode: 0o600 });
      fs.chmodSync(uri.fsPath, 0o600);
      file = uri.fsPath;
    }
  }
  if (!file) {
    void vscode.window.showWarningMessage(`Tether: the private key of ${name} was not saved and Lambda keeps no copy: delete ${name} in the Lambda Cloud dashboard and add another key.`);
    return undefined;
  }
  void vscode.window.showInformationMessage(
    `Tether: Lambda Cloud generated the SSH key ${name}; its private key is saved as ${file} (mode 600; Lambda keeps no copy). Log in with ssh -i ${file} ubuntu@<ip>, or add "IdentityFile ${file}" to ~/.ssh/config.`,
  );
  return name;
}
