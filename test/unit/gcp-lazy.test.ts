// GCP Compute Engine in the registry: creating its provider loads neither the client nor
// google-auth-library (activation stays light); the first call does; the lazy wrapper answers
// like the client (type, title, billing rule, stop and start).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createProviders, LazyProvider } from '../../src/fleet/cloudAccounts';
import { silentLogger } from '../../src/core/logger';
import { BILLING_RULES, providerKindOf } from '../../src/backends/cloud/registry';
import { gcpDescriptor } from '../../src/backends/cloud/gcp/descriptor';
import { tmpDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');
const dead = 'http://127.0.0.1:9/compute/v1';

function modulesLoadedBy(code: string): string[] {
  const script = [
    '(async () => {',
    code.replaceAll('@src/', `${root}/src/`),
    '})().then(() => {',
    '  process.stdout.write(JSON.stringify(Object.keys(require.cache)));',
    '  process.exit(0);',
    '}, (err) => { console.error(err); process.exit(1); });',
  ].join('\n');
  const dir = tmpDir('tether-gcp-lazy-');
  const file = path.join(dir, 'probe.ts');
  fs.writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', env: { ...process.env, HOME: dir, CLOUDSDK_CONFIG: dir, METADATA_SERVER_DETECTION: 'none' } });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('GCP Compute Engine loads on first use', function () {
  this.timeout(120_000);
  const account = { project: 'tether-test', zone: 'us-central1-a', endpoint: dead, accessToken: 'ya29.t', env: {} };

  it('creating the provider loads neither gcp.ts nor googleAuth.ts nor google-auth-library; loading it loads the client', () => {
    const before = modulesLoadedBy(`
      const { createProviders } = require('@src/fleet/cloudAccounts');
      const { silentLogger } = require('@src/core/logger');
      const ps = createProviders({ gcp: ${JSON.stringify(account)} }, silentLogger);
      if (ps.length !== 1 || ps[0].type !== 'gcp' || !ps[0].billing) throw new Error('one gcp provider with its billing rule');`);
    const heavy = before.filter((f) => /google-auth-library|gaxios|gcp-metadata|\/cloud\/gcp\/gcp\.ts$|\/cloud\/googleAuth\.ts$/.test(f));
    assert.deepEqual(heavy, []);
    const after = modulesLoadedBy(`
      const { createProviders } = require('@src/fleet/cloudAccounts');
      const { silentLogger } = require('@src/core/logger');
      await createProviders({ gcp: ${JSON.stringify({ ...account, accessToken: undefined })} }, silentLogger)[0].load();
      await require('@src/backends/cloud/googleAuth').googleAccessToken({ env: {} }).catch(() => undefined);`);
    assert.ok(after.some((f) => f.endsWith('/cloud/gcp/gcp.ts')), 'the client loaded');
    assert.ok(after.some((f) => f.includes('/google-auth-library/')), 'google-auth-library loaded on the first token request');
  });

  it('the lazy provider answers like the client; --provider names; the account needs a project or explicit credentials', async () => {
    const lazy = createProviders({ gcp: account }, silentLogger)[0] as LazyProvider;
    const real = await lazy.load();
    assert.equal(lazy.type, 'gcp');
    assert.equal(lazy.title, real.title);
    assert.equal(lazy.billing, real.billing);
    assert.equal(lazy.billing, BILLING_RULES.gcp);
    for (const m of ['stop', 'start'] as const) assert.equal(typeof (lazy as unknown as Record<string, unknown>)[m], 'function', m);
    const inst = { id: 'box-1', provider: real.type, gpuCount: 0, status: 'running' as const, rawStatus: 'RUNNING', region: 'us-central1-b', metadata: {} };
    assert.equal(lazy.consoleUrl(inst), 'https://console.cloud.google.com/compute/instancesDetail/zones/us-central1-b/instances/box-1?project=tether-test');
    for (const n of ['gcp', 'GCE', 'google']) assert.equal(providerKindOf(n), 'gcp');
    assert.equal(gcpDescriptor.account({ env: {} }), undefined, 'nothing configured: no provider, no calls to Google');
    assert.equal(gcpDescriptor.account({ env: { GOOGLE_CLOUD_PROJECT: 'my-proj-1' } })?.project, 'my-proj-1');
    assert.equal(gcpDescriptor.account({ env: { TETHER_GCP_PROJECT: 'flag-proj-1', GOOGLE_CLOUD_PROJECT: 'env-proj-1' } })?.project, 'flag-proj-1');
    assert.ok(gcpDescriptor.account({ env: { TETHER_GCP_ACCESS_TOKEN: 't' } }), 'a token alone: configured (project from gcloud config at load)');
    const fromSettings = gcpDescriptor.account({ env: { GOOGLE_CLOUD_PROJECT: 'env-proj-1' }, setting: (k) => ({ 'tether.gcp.project': 'set-proj-1', 'tether.gcp.zone': 'europe-west4-a' })[k], secret: { accessToken: 'ya29.s' } });
    assert.deepEqual([fromSettings?.project, fromSettings?.zone, fromSettings?.accessToken], ['set-proj-1', 'europe-west4-a', 'ya29.s']);
  });
});
