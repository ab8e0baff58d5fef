// Refreshing Compute Engine prices from the Cloud Billing Catalog API (fake) through the CLI:
// `tether cloud prices gcp` composes Core + Ram + GPU SKUs per machine type of the zone, skips
// commitments, custom, reserved and other regions' SKUs, saves a dated catalogue in the state
// folder, and `tether cloud types gcp` then prices from it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { catalogueFromSkus, composePrice, relevantSkus, type BillingSku } from '../../src/backends/cloud/gcp/gcpPricing';
import { FakeGcpBillingServer } from '../fakes/gcpBillingFake';
import { FAKE_MACHINE_TYPES, FakeGcpComputeServer } from '../fakes/gcpComputeFake';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('GCP prices from the Cloud Billing Catalog API (fake)', function () {
  this.timeout(240_000);
  let compute: FakeGcpComputeServer;
  let billing: FakeGcpBillingServer;
  beforeEach(async () => {
    compute = new FakeGcpComputeServer({ project: 'tether-test' });
    billing = new FakeGcpBillingServer();
    await compute.start();
    await billing.start();
  });
  afterEach(async () => {
    await compute?.stop();
    await billing?.stop();
  });

  const env = (state: string, token = compute.apiKey) => ({
    TETHER_STATE_DIR: state,
    TETHER_GCP_ACCESS_TOKEN: token,
    TETHER_GCP_API_URL: compute.url,
    TETHER_GCP_BILLING_API_URL: billing.url,
    CLOUDSDK_CONFIG: state,
    HOME: state,
  });

  it('composes Core × vCPUs + Ram × GiB + GPUs from the SKUs of the region, skipping the decoys; unpriced when a part is missing', async () => {
    const res = await fetch(`${billing.url}/services/6F81-5844-456A/skus?pageSize=5000`, { headers: { Authorization: `Bearer ${billing.apiKey}` } });
    const first = (await res.json()) as { skus: BillingSku[] };
    assert.equal(first.skus.length, 4, 'the fake pages by 4');
    const all: BillingSku[] = [];
    let tok = '';
    do {
      const r = (await (await fetch(`${billing.url}/services/6F81-5844-456A/skus${tok ? `?pageToken=${tok}` : ''}`, { headers: { Authorization: `Bearer ${billing.apiKey}` } })).json()) as { skus: BillingSku[]; nextPageToken: string };
      all.push(...r.skus);
      tok = r.nextPageToken;
    } while (tok);
    const types = Object.entries(FAKE_MACHINE_TYPES).map(([name, d]) => ({ name, ...d }));
    const cat = catalogueFromSkus(all, types, 'us-central1', '2026-12-02');
    const p = cat.regions['us-central1']!;
    assert.deepEqual(p['g2-standard-4'], { onDemand: Math.round((4 * 0.02 + 16 * 0.004 + 0.56004) * 1e5) / 1e5, spot: Math.round((4 * 0.008 + 16 * 0.0016 + 0.2231) * 1e5) / 1e5 });
    assert.equal(p['a2-highgpu-1g']?.onDemand, Math.round((12 * 0.03 + 85 * 0.004 + 2.93391) * 1e5) / 1e5, 'A100 40GB, not the 80GB SKU');
    assert.equal(p['a2-highgpu-1g']?.spot, undefined, 'no spot SKUs for A2 in the fake: no spot price');
    assert.equal(p['a3-highgpu-8g'], undefined, 'no A3 SKUs: unpriced, not guessed');
    assert.equal(p['e2-medium'], undefined, 'only GPU machine types');
    assert.equal(relevantSkus(all).some((s) => /Commitment|Custom|Reserved|Storage/.test(s.description)), false);
    assert.equal(composePrice({ name: 'g2-standard-4', guestCpus: 4, memoryMb: 16384, accelerators: [{ guestAcceleratorType: 'nvidia-l4', guestAcceleratorCount: 1 }] }, relevantSkus(all), 'europe-west9', false), undefined, 'Paris has a Core SKU only');
  });

  it('tether cloud prices gcp saves a dated catalogue that tether cloud types gcp then uses; a wrong token is refused without printing it', async () => {
    const state = tmpDir('tether-gcp-prices-');
    const ws = workspaceWith({ plugins: [] });
    try {
      const flags = ['--project', 'tether-test', '--zone', 'us-central1-a', '--workspace', ws];
      const r = await runCli(['cloud', 'prices', 'gcp', ...flags], env(state));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Compute Engine GPU machine-type prices for us-central1 as of \d{4}-\d\d-\d\d \(from 15 SKUs\), saved to .*gcp-prices\.json/);
      assert.match(r.stdout, /g2-standard-4\s+\$0\.7040\/h\s+spot \$0\.2807\/h/);
      const saved = JSON.parse(fs.readFileSync(path.join(state, 'gcp-prices.json'), 'utf8')) as { source: string; regions: Record<string, Record<string, { onDemand: number }>> };
      assert.match(saved.source, /Cloud Billing Catalog API/);
      const types = await runCli(['cloud', 'types', 'gcp', '--json', ...flags], env(state));
      assert.equal(types.code, 0, types.stderr);
      const g2 = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number }>).find((t) => t.name === 'g2-standard-4');
      assert.equal(g2?.pricePerHour, 0.70404, 'the refreshed price wins over the shipped one');
      // A Billing Catalog API that does not take this token.
      const b2 = new FakeGcpBillingServer({ apiKey: 'ya29.other-token' });
      await b2.start();
      try {
        const refused = await runCli(['cloud', 'prices', 'gcp', ...flags], { ...env(state), TETHER_GCP_BILLING_API_URL: b2.url });
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /Cloud Billing Catalog API: .*HTTP 401/);
        assert.doesNotMatch(refused.stderr + refused.stdout, new RegExp(compute.apiKey.replace(/\./g, '\\.')));
      } finally {
        await b2.stop();
      }
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
});
