// Azure prices refreshed from the (fake) Azure Retail Prices API into the state folder, and used
// by the client afterwards — in process and through `tether cloud prices azure`.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AZURE_SHIPPED_CATALOGUE } from '../../src/backends/cloud/azure/azure';
import { AZURE_USER_CATALOGUE, loadUserCatalogue, newestCatalogue, refreshUserCatalogue } from '../../src/backends/cloud/azure/azurePricing';
import { CloudApiError } from '../../src/backends/cloud/provider';
import { AzureArmFake } from '../fakes/azureArmFake';
import { FakeRetailPricesServer } from '../fakes/azureRetailPricesFake';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('Azure prices from the Retail Prices API (fake)', function () {
  this.timeout(120_000);
  let prices: FakeRetailPricesServer;
  beforeEach(async () => {
    prices = new FakeRetailPricesServer();
    await prices.start();
  });
  afterEach(async () => {
    await prices.stop();
  });

  it('keeps pay-as-you-go Linux hourly N-series prices (newest effective), follows NextPageLink, saves a dated catalogue', async () => {
    const state = tmpDir('tether-azure-prices-');
    const r = await refreshUserCatalogue(state, 'eastus', { baseUrl: prices.url, now: new Date('2027-01-15T10:00:00Z') });
    assert.deepEqual(r.prices, { Standard_NC24ads_A100_v4: 3.8, Standard_NC4as_T4_v3: 0.61, Standard_NV36ads_A10_v5: 3.3 });
    assert.ok(prices.requests.length >= 2, 'more than one page');
    assert.match(decodeURIComponent(prices.requests[0]!), /\$filter=serviceName eq 'Virtual Machines' and armRegionName eq 'eastus' and priceType eq 'Consumption'/);
    const saved = loadUserCatalogue(state)!;
    assert.equal(saved.asOf, '2027-01-15');
    assert.equal(r.file, path.join(state, AZURE_USER_CATALOGUE));
    const merged = newestCatalogue(AZURE_SHIPPED_CATALOGUE, saved);
    assert.equal(merged.regions.eastus!.Standard_NC4as_T4_v3, 0.61, 'the refreshed price wins');
    assert.equal(merged.regions.eastus!.Standard_ND96asr_v4, AZURE_SHIPPED_CATALOGUE.regions.eastus!.Standard_ND96asr_v4, 'the shipped one fills the gaps');
    assert.deepEqual(merged.regions.westeurope, AZURE_SHIPPED_CATALOGUE.regions.westeurope, 'other regions untouched');
  });

  it('an API that does not answer: a CloudApiError with a remedy, and the saved catalogue untouched', async () => {
    const state = tmpDir('tether-azure-prices-');
    await refreshUserCatalogue(state, 'eastus', { baseUrl: prices.url });
    const before = fs.readFileSync(path.join(state, AZURE_USER_CATALOGUE), 'utf8');
    await prices.stop();
    await assert.rejects(refreshUserCatalogue(state, 'eastus', { baseUrl: prices.url, now: new Date('2030-01-01') }), (e: unknown) => e instanceof CloudApiError && /no answer/.test(e.message) && /shipped|proxy/.test(e.remedy));
    assert.equal(fs.readFileSync(path.join(state, AZURE_USER_CATALOGUE), 'utf8'), before);
    await assert.rejects(refreshUserCatalogue(state, 'east us', { baseUrl: prices.url }), /not an Azure region name/);
  });

  it('`tether cloud prices azure --region eastus`, then `tether cloud types azure` quotes the refreshed price', async () => {
    const arm = new AzureArmFake();
    await arm.start();
    try {
      const env = {
        TETHER_STATE_DIR: tmpDir('tether-azure-prices-cli-'),
        TETHER_AZURE_PRICES_API_URL: prices.url,
        TETHER_AZURE_ACCESS_TOKEN: arm.apiKey,
        TETHER_AZURE_API_URL: arm.url,
        NODE_EXTRA_CA_CERTS: AzureArmFake.caFile,
        AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
        TETHER_AZURE_RESOURCE_GROUP: arm.resourceGroup,
        TETHER_AZURE_LOCATION: 'eastus',
      };
      const ws = workspaceWith({ plugins: [] });
      const r = await runCli(['cloud', 'prices', 'azure', '--region', 'eastus', '--workspace', ws], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /3 Azure pay-as-you-go Linux GPU prices for eastus as of \d{4}-\d{2}-\d{2}, saved to .*azure-prices\.json/);
      const types = await runCli(['cloud', 'types', 'azure', '--json', '--workspace', ws], env);
      assert.equal(types.code, 0, types.stderr);
      const t4 = (JSON.parse(types.stdout) as Array<{ name: string; pricePerHour: number }>).find((t) => t.name === 'Standard_NC4as_T4_v3');
      assert.equal(t4?.pricePerHour, 0.61);
    } finally {
      await arm.stop();
    }
  });
});
