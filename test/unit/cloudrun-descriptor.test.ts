import { strict as assert } from 'node:assert';
import { cloudRunDescriptor } from '../../src/backends/cloud/cloudrun/descriptor';
import { providerKindOf } from '../../src/backends/cloud/registry';

describe('Cloud Run jobs in the provider registry', () => {
  it('is --provider cloudrun, cloud_run or run; configured by a region; project, image and more regions from the environment', () => {
    for (const n of ['cloudrun', 'cloud_run', 'run', 'CloudRun']) assert.equal(providerKindOf(n), 'cloud_run');
    assert.equal(cloudRunDescriptor.account({ env: { GOOGLE_CLOUD_PROJECT: 'p-123456' } }), undefined, 'no region: not configured');
    assert.deepEqual(
      cloudRunDescriptor.account({
        env: { TETHER_GCP_RUN_REGION: 'us-central1', TETHER_GCP_PROJECT: 'mine-123', GOOGLE_CLOUD_PROJECT: 'other-123', TETHER_GCP_RUN_IMAGE: 'img:1', TETHER_GCP_RUN_REGIONS: 'europe-west1, bad region,us-east4' },
        apiUrl: 'http://127.0.0.1:9',
      }),
      { region: 'us-central1', regions: ['europe-west1', 'us-east4'], project: 'mine-123', baseUrl: 'http://127.0.0.1:9', defaultImage: 'img:1' },
    );
    assert.deepEqual(cloudRunDescriptor.account({ env: { CLOUDSDK_RUN_REGION: 'europe-west4', CLOUDSDK_CORE_PROJECT: 'sdk-proj' } }), { region: 'europe-west4', project: 'sdk-proj' });
    assert.equal(cloudRunDescriptor.canStop, false);
    assert.equal(cloudRunDescriptor.billing.citation, 'https://cloud.google.com/run/pricing');
    assert.ok(cloudRunDescriptor.secretEnv?.includes('TETHER_GCP_ACCESS_TOKEN'));
    assert.ok(!cloudRunDescriptor.unitEnv?.includes('TETHER_GCP_ACCESS_TOKEN'), 'the token is never written into a unit');
  });

  it('in VS Code reads its settings, never the environment', () => {
    const settings: Record<string, unknown> = { 'tether.cloudRun.region': 'europe-west1', 'tether.gcp.project': 'ui-proj-1', 'tether.cloudRun.image': 'img:2', 'tether.cloudRun.regions': ['us-central1'] };
    assert.deepEqual(cloudRunDescriptor.account({ env: { TETHER_GCP_RUN_REGION: 'us-east4', TETHER_GCP_PROJECT: 'env-proj' }, setting: (k) => settings[k] }), {
      region: 'europe-west1',
      regions: ['us-central1'],
      project: 'ui-proj-1',
      defaultImage: 'img:2',
    });
    assert.equal(cloudRunDescriptor.account({ env: { TETHER_GCP_RUN_REGION: 'us-east4' }, setting: () => undefined }), undefined);
  });

  it('loads the client with the account and a token from googleAuth (TETHER_GCP_ACCESS_TOKEN)', async () => {
    const saved = process.env.TETHER_GCP_ACCESS_TOKEN;
    process.env.TETHER_GCP_ACCESS_TOKEN = 'ya29.unit-test-token';
    try {
      const log = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
      const p = (await cloudRunDescriptor.load({ region: 'us-central1', project: 'tether-test' }, { log })) as unknown as { type: string; project: string; opts: { token: () => Promise<string> } };
      assert.equal(p.type, 'cloud_run');
      assert.equal(p.project, 'tether-test');
      assert.equal(await p.opts.token(), 'ya29.unit-test-token');
    } finally {
      if (saved === undefined) delete process.env.TETHER_GCP_ACCESS_TOKEN;
      else process.env.TETHER_GCP_ACCESS_TOKEN = saved;
    }
  });
});
