// Review of e6eeb0c / 36ba0eb (accounts from the provider registry): in VS Code, secrets come
// from SecretStorage only — as for the API-key providers (LAMBDA_API_KEY in the extension host's
// environment is not used), a bearer token in the extension host's environment is not either.
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import '../helpers/vscodeStub';
import { tetherSettings } from '../helpers/vscodeStub';
import { CloudKeys } from '../../src/ui/cloudKeys';

const vscode = createRequire(__filename)('vscode') as { Disposable: { from?: (...d: unknown[]) => unknown } };
vscode.Disposable.from ??= () => ({ dispose: () => undefined });

function fakeSecrets(): { get(k: string): Promise<string | undefined>; store(k: string, v: string): Promise<void>; delete(k: string): Promise<void>; onDidChange: () => { dispose(): void } } {
  const m = new Map<string, string>();
  return {
    get: async (k) => m.get(k),
    store: async (k, v) => void m.set(k, v),
    delete: async (k) => void m.delete(k),
    onDidChange: () => ({ dispose: () => undefined }),
  };
}

describe('review: VS Code accounts take no secret from the environment', () => {
  const vars = ['LAMBDA_API_KEY', 'TETHER_AZURE_ACCESS_TOKEN', 'AZURE_SUBSCRIPTION_ID', 'TETHER_AZURE_RESOURCE_GROUP'];
  const saved = Object.fromEntries(vars.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of vars) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    for (const k of Object.keys(tetherSettings)) delete tetherSettings[k];
  });

  it('an Azure account set up in settings does not pick up TETHER_AZURE_ACCESS_TOKEN from the extension host environment', async () => {
    process.env.LAMBDA_API_KEY = 'lambda-key-from-env';
    process.env.TETHER_AZURE_ACCESS_TOKEN = 'token-from-env';
    tetherSettings['azure.subscriptionId'] = '00000000-0000-0000-0000-000000000001';
    tetherSettings['azure.resourceGroup'] = 'rg';
    const keys = new CloudKeys(fakeSecrets() as never);
    try {
      await keys.load();
      assert.equal(keys.current.lambda_labs, undefined, 'LAMBDA_API_KEY is the CLI\'s, not VS Code\'s');
      const az = keys.current.azure as { subscriptionId: string; accessToken?: string } | undefined;
      assert.equal(az?.subscriptionId, '00000000-0000-0000-0000-000000000001');
      assert.equal(az?.accessToken, undefined, 'a bearer token from the environment is used by VS Code');
    } finally {
      keys.dispose();
    }
  });
});
