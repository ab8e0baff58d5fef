import { strict as assert } from 'node:assert';
import { accountsFromEnv, API_URL_ENV, accountKindOf, createProviders } from '../../src/fleet/cloudAccounts';
import { BILLING_RULES, CLOUD_PROVIDERS, providerDescriptor, providerKindOf, providerTitle } from '../../src/backends/cloud/registry';
import { silentLogger } from '../../src/core/logger';

describe('cloud provider registry (a provider is a folder plus one line in CLOUD_PROVIDERS)', () => {
  it('names every provider once: kinds, CLI names and API-URL variables do not collide', () => {
    const names = CLOUD_PROVIDERS.flatMap((d) => [d.kind, ...d.aliases]);
    assert.equal(new Set(names).size, names.length, `duplicate --provider names: ${names.join(', ')}`);
    const envs = CLOUD_PROVIDERS.map((d) => d.apiUrlEnv);
    assert.equal(new Set(envs).size, envs.length);
    for (const d of CLOUD_PROVIDERS) {
      assert.match(d.apiUrlEnv, /^TETHER_[A-Z0-9_]+_API_URL$/, d.kind);
      assert.equal(d.billing.provider, d.kind, `${d.kind}: its billing rule is its own`);
      assert.match(d.billing.citation, /^https:\/\//, `${d.kind}: the billing rule cites its source`);
      assert.ok(d.prompts.length > 0, `${d.kind}: "Set Cloud API Key…" has something to ask`);
      assert.equal(providerDescriptor(d.kind), d);
      assert.equal(BILLING_RULES[d.kind], d.billing);
      assert.equal(providerTitle(d.kind), d.title);
      assert.equal(API_URL_ENV[d.kind], d.apiUrlEnv);
    }
  });
  it('--provider accepts the kind and each alias in any case, and nothing else', () => {
    for (const d of CLOUD_PROVIDERS) for (const n of [d.kind, ...d.aliases, d.kind.toUpperCase()]) assert.equal(providerKindOf(n), d.kind, n);
    assert.equal(accountKindOf('ec2'), 'aws');
    assert.equal(accountKindOf('vast'), 'vast_ai');
    assert.equal(providerKindOf('digitalocean'), undefined);
  });
  it('reads accounts from each provider\'s own environment variables, and a secret never from the environment in VS Code', () => {
    const env = { LAMBDA_API_KEY: 'k-lambda-123', TETHER_LAMBDA_API_URL: 'http://127.0.0.1:9', TETHER_AWS_REGION: 'eu-west-1', TETHER_AWS_AMI: 'ami-1' };
    const a = accountsFromEnv(env);
    assert.deepEqual(a.lambda_labs, { apiKey: 'k-lambda-123', baseUrl: 'http://127.0.0.1:9' });
    assert.deepEqual(a.aws, { region: 'eu-west-1', defaultImageId: 'ami-1' });
    assert.equal(a.runpod, undefined);
    // In VS Code (a settings reader is given) an API key comes from SecretStorage only.
    assert.equal(providerDescriptor('lambda_labs')!.account({ env, setting: () => undefined }), undefined);
    assert.deepEqual(providerDescriptor('lambda_labs')!.account({ env, setting: () => undefined, secret: { apiKey: 'from-secret-store' } }), { apiKey: 'from-secret-store' });
    const aws = providerDescriptor('aws')!.account({ env, setting: (k) => ({ 'tether.aws.region': 'us-west-2' })[k], secret: { accessKeyId: 'AKIA', secretAccessKey: 's' } });
    assert.deepEqual(aws, { region: 'us-west-2', credentials: { accessKeyId: 'AKIA', secretAccessKey: 's' } });
  });
  it('makes one lazy client per configured account, in the registry\'s order, loading none of them', () => {
    const ps = createProviders(accountsFromEnv({ VAST_API_KEY: 'v-123456789', LAMBDA_API_KEY: 'l-123456789' }), silentLogger);
    assert.deepEqual(ps.map((p) => p.type), ['lambda_labs', 'vast_ai']);
    assert.deepEqual(ps.map((p) => typeof p.stop), ['undefined', 'function'], 'stop exists where the provider can stop');
  });
});

describe('package.json agrees with the provider registry', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require('../../package.json') as { contributes: { configuration: { properties: Record<string, { properties?: Record<string, unknown>; items?: { properties: { provider: { enum: string[] } } } }> } } };
  const props = pkg.contributes.configuration.properties;
  const kinds = CLOUD_PROVIDERS.map((d) => d.kind).sort();
  it('tether.cloud.apiUrls names every provider (and only those)', () => {
    assert.deepEqual(Object.keys(props['tether.cloud.apiUrls']!.properties!).sort(), kinds);
  });
  it('a budget in settings may be scoped to every provider (and only those)', () => {
    assert.deepEqual([...props['tether.budgets']!.items!.properties.provider.enum].sort(), kinds);
  });
});
