// Refreshing the Fargate price catalogue from the AWS Price List API (`tether cloud prices ecs`),
// against a protocol fake of GetProducts with hand-typed AmazonECS products
// (test/fakes/fargatePricingServer.ts), and what the refreshed rates change: the catalogue, a
// region the shipped file lacks, and the price a launch records.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fargateRateOf, loadUserFargateCatalogue, newestFargateCatalogue } from '../../src/backends/cloud/ecs/fargatePricing';
import { FARGATE_SHIPPED_CATALOGUE, ecsPricePerHour } from '../../src/backends/cloud/ecs/pricing';
import { parseEcsSize } from '../../src/backends/cloud/ecs/sizes';
import { FakeFargatePricingServer, FARGATE_PRICING_KEY_ID } from '../fakes/fargatePricingServer';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('Fargate prices from the AWS Price List API (tether cloud prices ecs, against a GetProducts fake)', function () {
  this.timeout(180_000);
  let fake: FakeFargatePricingServer;
  let state: string;
  let env: Record<string, string>;
  let ws: string;
  beforeEach(async () => {
    fake = new FakeFargatePricingServer(3);
    await fake.start();
    state = tmpDir('tether-fargate-prices-');
    ws = workspaceWith({ plugins: [] });
    env = {
      TETHER_STATE_DIR: state,
      TETHER_AWS_PRICING_API_URL: fake.url,
      AWS_ACCESS_KEY_ID: FARGATE_PRICING_KEY_ID,
      AWS_SECRET_ACCESS_KEY: 'not-checked',
      AWS_PROFILE: '',
      AWS_CONFIG_FILE: path.join(state, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(state, 'none'),
    };
  });
  afterEach(async () => {
    await fake?.stop();
  });

  it('reads only the on-demand Linux Fargate rates (not Spot, storage or Windows), pages through, and saves them dated', async () => {
    const r = await runCli(['cloud', 'prices', 'ecs', '--region', 'us-east-1', '--workspace', ws], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^X86_64  \$0\.05 per vCPU-hour, \$0\.005 per GB-hour\nARM64   \$0\.04 per vCPU-hour, \$0\.004 per GB-hour\nFargate on-demand Linux rates for us-east-1 as of \d{4}-\d{2}-\d{2}, saved to .*fargate-prices\.json\n$/);
    // 7 products in us-east-1, pages of 3: three requests, each next one carrying NextToken; the query filters by region.
    assert.equal(fake.requests.length, 3);
    assert.ok(fake.requests.slice(1).every((q) => typeof q.body.NextToken === 'string'));
    assert.deepEqual(fake.requests[0]!.body.Filters, [{ Type: 'TERM_MATCH', Field: 'regionCode', Value: 'us-east-1' }]);
    assert.equal(fake.requests[0]!.body.ServiceCode, 'AmazonECS');
    const saved = loadUserFargateCatalogue(state)!;
    assert.deepEqual(saved.regions['us-east-1'], { X86_64: { vcpuHour: 0.05, gbHour: 0.005 }, ARM64: { vcpuHour: 0.04, gbHour: 0.004 } });
    // A second region is added to the same file; eu-west-1 has an ARM vCPU rate but no ARM GB rate: no ARM entry.
    assert.equal((await runCli(['cloud', 'prices', 'ecs', '--region', 'eu-west-1', '--workspace', ws], env)).code, 0);
    const both = loadUserFargateCatalogue(state)!;
    assert.deepEqual(Object.keys(both.regions).sort(), ['eu-west-1', 'us-east-1']);
    assert.deepEqual(both.regions['eu-west-1'], { X86_64: { vcpuHour: 0.044, gbHour: 0.0048 } });
  });

  it('the refreshed rates price the catalogue the provider loads (and so its launches); a region the shipped file lacks becomes priced', async () => {
    assert.ok(Number.isNaN(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb'), 'eu-west-1')), 'eu-west-1 is unpriced in the shipped catalogue');
    assert.equal((await runCli(['cloud', 'prices', 'ecs', '--region', 'eu-west-1', '--workspace', ws], env)).code, 0);
    const merged = newestFargateCatalogue(FARGATE_SHIPPED_CATALOGUE, loadUserFargateCatalogue(state));
    assert.equal(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb'), 'eu-west-1', merged), 0.0536); // 0.044 + 2 × 0.0048
    assert.equal(ecsPricePerHour(parseEcsSize('fargate-1vcpu-2gb'), 'us-east-1', merged), 0.04937, 'us-east-1 keeps the shipped rates');
    // The provider loaded by the CLI reads the state folder's catalogue (its own chunk; nothing reaches ECS here).
    const { ecsDescriptor } = await import('../../src/backends/cloud/ecs/descriptor');
    const p = (await ecsDescriptor.load({ region: 'eu-west-1', cluster: 'default' }, { log: { debug() {}, info() {}, warn() {}, error() {} } as never, stateDir: state })) as unknown as { catalogue: typeof merged };
    assert.deepEqual(p.catalogue.regions['eu-west-1'], merged.regions['eu-west-1']);
  });

  it('throttling is retried; wrong credentials and a region without Fargate say why, and nothing is saved', async () => {
    fake.throttleNext(1);
    assert.equal((await runCli(['cloud', 'prices', 'ecs', '--region', 'us-east-1', '--workspace', ws], env)).code, 0);
    fs.rmSync(path.join(state, 'fargate-prices.json'));
    const bad = await runCli(['cloud', 'prices', 'ecs', '--region', 'us-east-1', '--workspace', ws], { ...env, AWS_ACCESS_KEY_ID: 'AKIAWRONG' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /AWS Price List: GetProducts\(AmazonECS, us-east-1\) failed: UnrecognizedClientException.* — .*pricing:GetProducts/);
    const none = await runCli(['cloud', 'prices', 'ecs', '--region', 'ap-south-2', '--workspace', ws], env);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no Fargate on-demand rates for ap-south-2 among 0 AmazonECS products/);
    assert.equal(fs.existsSync(path.join(state, 'fargate-prices.json')), false);
    const noRegion = await runCli(['cloud', 'prices', 'ecs', '--workspace', ws], env);
    assert.equal(noRegion.code, 2);
    assert.match(noRegion.stderr, /no AWS region for the Fargate prices/);
  });

  it('parses a price list entry: usage type → architecture and dimension; other ECS products are not Fargate rates', () => {
    const e = (usagetype: string, usd = '0.1') => JSON.stringify({ product: { attributes: { usagetype } }, terms: { OnDemand: { t: { priceDimensions: { d: { unit: 'hours', pricePerUnit: { USD: usd } } } } } } });
    assert.deepEqual(fargateRateOf(e('USE1-Fargate-vCPU-Hours:perCPU')), { arch: 'X86_64', dim: 'vcpuHour', usd: 0.1 });
    assert.deepEqual(fargateRateOf(e('Fargate-GB-Hours')), { arch: 'X86_64', dim: 'gbHour', usd: 0.1 });
    assert.deepEqual(fargateRateOf(e('EUC1-Fargate-ARM-GB-Hours')), { arch: 'ARM64', dim: 'gbHour', usd: 0.1 });
    for (const other of ['USE1-SpotUsage:Fargate-vCPU-Hours:perCPU', 'USE1-Fargate-EphemeralStorage-GB-Hours', 'USE1-Fargate-Windows-vCPU-Hours:perCPU', 'USE1-Fargate-GB-Hours-SpotDiscount']) assert.equal(fargateRateOf(e(other)), undefined, other);
    assert.equal(fargateRateOf(e('USE1-Fargate-GB-Hours', '0')), undefined, 'a zero price is no rate');
  });
});
