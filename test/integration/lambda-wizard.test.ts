/**
 * The provisioning wizard's Lambda SSH key step (src/ui/lambdaSshKey.ts) against the fake Lambda
 * Cloud server, with a scripted stand-in for the `vscode` module (the dialogs answer what a user
 * would pick): the account's keys are offered; an account without keys is offered to add one —
 * upload a public key, or let Lambda generate a pair whose private key lands in ~/.ssh (0600).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { LambdaCloudProvider } from '../../src/backends/cloud/lambda/lambda';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { tmpDir } from '../helpers/tmp';

type Call = { fn: string; args: unknown[] };
const calls: Call[] = [];
/** Answers for the dialogs, by function name, consumed in order. */
let script: Record<string, Array<(args: unknown[]) => unknown>> = {};
const answer = (fn: string) => (...args: unknown[]) => {
  calls.push({ fn, args });
  const next = script[fn]?.shift();
  if (!next) throw new Error(`unexpected vscode.window.${fn}(${JSON.stringify(args[0])})`);
  return Promise.resolve(next(args));
};
const vscodeStub = {
  window: {
    showQuickPick: answer('showQuickPick'),
    showWarningMessage: answer('showWarningMessage'),
    showInputBox: answer('showInputBox'),
    showOpenDialog: answer('showOpenDialog'),
    showSaveDialog: answer('showSaveDialog'),
    showErrorMessage: (...args: unknown[]) => void calls.push({ fn: 'showErrorMessage', args }),
    showInformationMessage: (...args: unknown[]) => void calls.push({ fn: 'showInformationMessage', args }),
    setStatusBarMessage: () => undefined,
    withProgress: (_o: unknown, task: () => Promise<unknown>) => task(),
  },
  ProgressLocation: { Notification: 15 },
  QuickPickItemKind: { Separator: -1, Default: 0 },
  Uri: { file: (p: string) => ({ fsPath: p }) },
};

// `import * as vscode from 'vscode'` in the step resolves to the stand-in.
const M = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const load = M._load;
M._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscodeStub : load.call(this, request, ...rest);
};
// A fresh copy of the step, even when another test file loaded it already with another stand-in.
const stepFile = require.resolve('../../src/ui/lambdaSshKey');
delete require.cache[stepFile];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { pickLambdaSshKey } = require(stepFile) as typeof import('../../src/ui/lambdaSshKey');
delete require.cache[stepFile]; // nor does a later test file get this copy
M._load = load; // only the step's own import sees the stand-in

describe('provisioning wizard: the Lambda Cloud SSH key step (fake Lambda Cloud, scripted dialogs)', function () {
  this.timeout(30_000);
  let fake: FakeLambdaServer;
  let home: string;
  let oldHome: string | undefined;
  let p: LambdaCloudProvider;
  beforeEach(async () => {
    fake = new FakeLambdaServer();
    await fake.start();
    p = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url, retries: 0, backoffMs: 10, launchGapMs: 10 });
    home = tmpDir('tether-wizard-home-');
    oldHome = process.env.HOME;
    process.env.HOME = home;
    calls.length = 0;
    script = {};
  });
  afterEach(async () => {
    process.env.HOME = oldHome;
    await fake.stop();
    fs.rmSync(home, { recursive: true, force: true });
    assert.deepEqual(Object.values(script).flat(), [], 'every scripted answer was asked for');
  });

  it('offers the account\'s keys (and adding one); picking a key returns it', async () => {
    script.showQuickPick = [(a) => (a[0] as Array<{ label: string; key?: string }>).find((i) => i.key === 'laptop')];
    assert.equal(await pickLambdaSshKey(p, 'Provision (4/5)'), 'laptop');
    const items = calls[0]!.args[0] as Array<{ label: string }>;
    assert.deepEqual(items.map((i) => i.label), ['laptop', '', '$(cloud-upload) Upload a Public Key…', '$(key) Generate a Key Pair']);
    assert.match((calls[0]!.args[1] as { title: string }).title, /Provision \(4\/5\): SSH key/);
  });

  it('an account without keys is offered to add one; Generate: Lambda makes the pair, the private key is saved in ~/.ssh (0600) and works', async () => {
    fake.sshKeys.length = 0;
    script.showWarningMessage = [(a) => (assert.match(String(a[0]), /no SSH key.*exactly one.*Add one now\?/), 'Generate a Key Pair')];
    script.showInputBox = [(a) => (assert.equal((a[0] as { validateInput: (v: string) => unknown }).validateInput('x'.repeat(65)) !== undefined, true), 'my-gen')];
    assert.equal(await pickLambdaSshKey(p, 'Provision (4/5)'), 'my-gen');
    assert.deepEqual(fake.sshKeys.map((k) => k.name), ['my-gen']);
    const file = path.join(home, '.ssh', 'lambda-my-gen');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
    assert.equal(derived, fake.sshKeys[0]!.public_key.split(' ').slice(0, 2).join(' '));
    const info = calls.find((c) => c.fn === 'showInformationMessage');
    assert.match(String(info?.args[0]), new RegExp(`saved as ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.doesNotMatch(JSON.stringify(calls), /PRIVATE KEY/, 'the private key is never shown');
    // The new key launches.
    await p.launch({ ledgerId: '0123456789abcdef', name: 'x', instanceType: 'gpu_1x_a10', region: 'us-east-1', sshKeyName: 'my-gen' });
  });

  it('Upload: a public key from ~/.ssh goes to the account; a private key file is refused', async () => {
    fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me', '-f', path.join(home, '.ssh', 'id_ed25519')]);
    script.showQuickPick = [
      (a) => (a[0] as Array<{ how?: string }>).find((i) => i.how === 'Upload a Public Key…'),
      (a) => (a[0] as Array<{ label: string }>).find((i) => i.label === 'id_ed25519.pub'),
    ];
    script.showInputBox = [() => 'my-laptop'];
    assert.equal(await pickLambdaSshKey(p, 'Provision (4/5)'), 'my-laptop');
    assert.equal(fake.sshKeys.find((k) => k.name === 'my-laptop')?.public_key, fs.readFileSync(path.join(home, '.ssh', 'id_ed25519.pub'), 'utf8').trim());

    // Browse… to the private key: refused, nothing added.
    script.showQuickPick = [(a) => (a[0] as Array<{ how?: string }>).find((i) => i.how === 'Upload a Public Key…'), (a) => (a[0] as Array<{ label: string }>).at(-1)];
    script.showOpenDialog = [() => [{ fsPath: path.join(home, '.ssh', 'id_ed25519') }]];
    assert.equal(await pickLambdaSshKey(p, 'Provision (4/5)'), undefined);
    assert.match(String(calls.find((c) => c.fn === 'showErrorMessage')?.args[0]), /private key/);
    assert.equal(fake.sshKeys.length, 2);
  });

  it('cancelling adds nothing; an API error (inactive account) is thrown for the wizard to show', async () => {
    fake.sshKeys.length = 0;
    script.showWarningMessage = [() => undefined];
    assert.equal(await pickLambdaSshKey(p, 'Provision (4/5)'), undefined);
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, 0);
    fake.account = 'inactive';
    await assert.rejects(pickLambdaSshKey(p, 'Provision (4/5)'), (e: Error & { remedy?: string }) => /account is inactive/.test(e.remedy ?? ''));
  });
});
