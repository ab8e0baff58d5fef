/**
 * Refreshing the AWS EC2 price catalogue: the real @aws-sdk/client-pricing against the protocol
 * fake of the Price List Query API (test/fakes/awsPricingServer.ts, on 127.0.0.1). No test calls AWS.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AwsEc2Provider, AWS_SHIPPED_CATALOGUE, type AwsPriceCatalogue } from '../../src/backends/cloud/aws/aws';
import {
  AWS_FETCHED_TERMS,
  AWS_PRICE_LIST_API_URL,
  AWS_USER_CATALOGUE_FILE,
  fetchAwsPrices,
  loadUserCatalogue,
  newestCatalogue,
  parsePriceListEntry,
  readUserCatalogue,
  refreshUserCatalogue,
  saveUserCatalogue,
  type FetchAwsPricesOptions,
} from '../../src/backends/cloud/aws/awsPricing';
import { CloudApiError } from '../../src/backends/cloud/provider';
import type { Logger } from '../../src/core/logger';
import { AwsPricingFake, defaultFakeProducts, priceListEntry, PRICING_TARGET } from '../fakes/awsPricingServer';
import { freePort } from '../helpers/net';
import { runCli } from '../helpers/cli';
import { accountsFromEnv, createProviders, type LazyProvider } from '../../src/fleet/cloudAccounts';
import { silentLogger } from '../../src/core/logger';

function memLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (lvl: string) => (m: string | Error) => void lines.push(`${lvl} ${String(m)}`);
  return { lines, trace: add('trace'), debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') };
}

const US_EAST_1_GPU = { 'g4dn.xlarge': 0.526, 'g5.xlarge': 1.006, 'g6.xlarge': 0.8048, 'p4d.24xlarge': 21.96 };
const EU_WEST_1_GPU = { 'g4dn.xlarge': 0.587, 'g5.xlarge': 1.123 };

function cat(asOf: string, regions: AwsPriceCatalogue['regions'], source = `src-${asOf}`): AwsPriceCatalogue {
  return { asOf, source, currency: 'USD', regions };
}

describe('AWS price catalogue refresh (real @aws-sdk/client-pricing against a protocol fake)', function () {
  this.timeout(20000);
  let fake: AwsPricingFake;
  const dirs: string[] = [];
  const tmpDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-awsprices-'));
    dirs.push(d);
    return d;
  };
  const opts = (o: Partial<FetchAwsPricesOptions> = {}): FetchAwsPricesOptions => ({
    regions: ['us-east-1'],
    endpoint: fake.url,
    credentials: fake.credentials,
    ...o,
  });

  beforeEach(async () => {
    fake = new AwsPricingFake();
    await fake.start();
  });
  afterEach(async () => {
    await fake.stop();
  });
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('fetchAwsPrices', () => {
    it('gives exactly the Linux / shared-tenancy on-demand GPU prices of a region, following the pages', async () => {
      const log = memLog();
      const c = await fetchAwsPrices(opts({ pageSize: 2, log }));
      assert.deepEqual(c.regions, { 'us-east-1': US_EAST_1_GPU });
      assert.equal(c.currency, 'USD');
      assert.equal(c.source, AWS_PRICE_LIST_API_URL);
      assert.equal(c.terms, AWS_FETCHED_TERMS);
      // What the SDK sent: the JSON 1.1 operation, the filters, and the pages.
      const ok = fake.requests.filter((r) => r.status === 200);
      assert.ok(ok.length >= 3, `paging: ${ok.length} pages`);
      assert.ok(ok.every((r) => r.target === PRICING_TARGET && r.body.ServiceCode === 'AmazonEC2' && r.body.MaxResults === 2));
      assert.equal(ok[0]!.body.NextToken, undefined);
      assert.ok(ok.slice(1).every((r) => typeof r.body.NextToken === 'string'));
      const filters = Object.fromEntries((ok[0]!.body.Filters as { Type: string; Field: string; Value: string }[]).map((f) => [f.Field, `${f.Type}:${f.Value}`]));
      assert.deepEqual(filters, {
        regionCode: 'TERM_MATCH:us-east-1',
        operatingSystem: 'TERM_MATCH:Linux',
        tenancy: 'TERM_MATCH:Shared',
        preInstalledSw: 'TERM_MATCH:NA',
        capacitystatus: 'TERM_MATCH:Used',
        licenseModel: 'TERM_MATCH:No License required',
        instanceFamily: 'TERM_MATCH:GPU instance',
      });
      // Two matching g6.xlarge products: the lowest is kept and said so; the zero price is skipped.
      assert.ok(log.lines.some((l) => l.includes('g6.xlarge') && l.includes('kept the lowest, 0.8048')), log.lines.join('\n'));
      assert.ok(log.lines.some((l) => l.includes('g4dn.2xlarge') && l.includes('zero or not a number')), log.lines.join('\n'));
    });

    it('prices several regions separately', async () => {
      const c = await fetchAwsPrices(opts({ regions: ['us-east-1', 'eu-west-1'] }));
      assert.deepEqual(c.regions, { 'us-east-1': US_EAST_1_GPU, 'eu-west-1': EU_WEST_1_GPU });
    });

    it('asks per instance type when given a list (any family), and logs the types without a price', async () => {
      const log = memLog();
      const c = await fetchAwsPrices(opts({ instanceTypes: ['g4dn.xlarge', 't3.micro', 'nope.large'], log }));
      assert.deepEqual(c.regions, { 'us-east-1': { 'g4dn.xlarge': 0.526, 't3.micro': 0.0104 } });
      const asked = fake.requests.map((r) => (r.body.Filters as { Field: string; Value: string }[]).find((f) => f.Field === 'instanceType')?.Value);
      assert.deepEqual(asked, ['g4dn.xlarge', 't3.micro', 'nope.large']);
      assert.ok(fake.requests.every((r) => !(r.body.Filters as { Field: string }[]).some((f) => f.Field === 'instanceFamily')));
      assert.ok(log.lines.some((l) => l.startsWith('warn') && l.includes('nope.large')));
    });

    it('leaves out a region without prices, and says so', async () => {
      const log = memLog();
      const c = await fetchAwsPrices(opts({ regions: ['us-east-1', 'xx-nowhere-9'], log }));
      assert.deepEqual(Object.keys(c.regions), ['us-east-1']);
      assert.ok(log.lines.some((l) => l.startsWith('warn') && l.includes('xx-nowhere-9')));
    });

    it("dates the catalogue today (UTC) by default, or by the injected clock", async () => {
      const before = new Date().toISOString().slice(0, 10);
      const c = await fetchAwsPrices(opts());
      const after = new Date().toISOString().slice(0, 10);
      assert.ok(c.asOf === before || c.asOf === after, c.asOf);
      assert.match(c.asOf, /^\d{4}-\d{2}-\d{2}$/);
      const d = await fetchAwsPrices(opts({ now: () => new Date('2027-03-04T23:59:00Z') }));
      assert.equal(d.asOf, '2027-03-04');
    });

    it('a wrong access key → CloudApiError with a pricing:GetProducts remedy and no key in it', async () => {
      const bad = { accessKeyId: 'AKIDWRONGWRONG000001', secretAccessKey: 'sekrit-wrong-0123456789' };
      const err = await fetchAwsPrices(opts({ credentials: bad })).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError, String(err));
      assert.equal(err.code, 'UnrecognizedClientException');
      assert.equal(err.status, 400);
      assert.match(err.message, /^AWS Price List: GetProducts\(AmazonEC2, us-east-1, GPU instances\) failed: UnrecognizedClientException: The security token included in the request is invalid\./);
      assert.match(err.remedy, /pricing:GetProducts/);
      for (const secret of [bad.accessKeyId, bad.secretAccessKey, fake.accessKeyId, fake.secretAccessKey]) {
        assert.ok(!err.oneLine().includes(secret), `leaked ${secret}`);
      }
      // Not retried: a credentials error is not transient.
      assert.equal(fake.requests.length, 1);
      assert.equal(fake.requests[0]!.accessKeyId, bad.accessKeyId);
    });

    it('a ThrottlingException is retried by the SDK and the refresh succeeds', async () => {
      fake.inject('throttle', 1);
      const c = await fetchAwsPrices(opts());
      assert.deepEqual(c.regions['us-east-1'], US_EAST_1_GPU);
      assert.deepEqual(
        fake.requests.map((r) => r.errorCode ?? r.status),
        ['ThrottlingException', 200],
      );
    });

    it('throttling beyond maxAttempts → CloudApiError with the attempts in the remedy', async () => {
      fake.inject('throttle', 5);
      const err = await fetchAwsPrices(opts({ maxAttempts: 2 })).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError);
      assert.equal(err.code, 'ThrottlingException');
      assert.match(err.remedy, /throttled.*2 attempts/);
      assert.equal(fake.requests.length, 2);
    });

    it('a 500 is retried by the SDK', async () => {
      fake.inject('error-500', 1);
      const c = await fetchAwsPrices(opts());
      assert.deepEqual(c.regions['us-east-1'], US_EAST_1_GPU);
      assert.deepEqual(
        fake.requests.map((r) => r.status),
        [500, 200],
      );
    });

    it('an unreachable endpoint → CloudApiError naming the endpoint', async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      const err = await fetchAwsPrices(opts({ endpoint: url, maxAttempts: 1 })).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CloudApiError, String(err));
      assert.equal(err.code, 'ECONNREFUSED');
      assert.ok(err.remedy.includes(url), err.remedy);
    });

    it('parses a real-shaped entry: only OnDemand Hrs dimensions, not Reserved', () => {
      const e = parsePriceListEntry(priceListEntry(defaultFakeProducts()[0]!));
      assert.deepEqual(e, { sku: 'AAAA1111G4DNXL01', instanceType: 'g4dn.xlarge', regionCode: 'us-east-1', usdPerHour: ['0.5260000000'] });
    });
  });

  describe('the user catalogue in the state folder', () => {
    it('save → load round trip (atomic: no temp file left)', () => {
      const dir = path.join(tmpDir(), 'nested', 'state');
      const c: AwsPriceCatalogue = { ...cat('2026-12-01', { 'us-east-1': { 'g5.xlarge': 0.99 } }), terms: 'x', note: 'y' };
      const file = saveUserCatalogue(dir, c);
      assert.equal(file, path.join(dir, AWS_USER_CATALOGUE_FILE));
      assert.deepEqual(loadUserCatalogue(dir), c);
      assert.deepEqual(fs.readdirSync(dir), [AWS_USER_CATALOGUE_FILE]);
      // Overwrite.
      saveUserCatalogue(dir, cat('2026-12-02', { 'eu-west-1': { 'g5.xlarge': 1.1 } }));
      assert.equal(loadUserCatalogue(dir)?.asOf, '2026-12-02');
    });

    it('a missing file is no catalogue and no problem', () => {
      const dir = tmpDir();
      const log = memLog();
      assert.equal(loadUserCatalogue(dir, log), undefined);
      assert.deepEqual(readUserCatalogue(dir), { file: path.join(dir, AWS_USER_CATALOGUE_FILE) });
      assert.deepEqual(log.lines, []);
    });

    it('a corrupt or ill-shaped file is ignored, with the reason', () => {
      const dir = tmpDir();
      const file = path.join(dir, AWS_USER_CATALOGUE_FILE);
      const cases: [string, RegExp][] = [
        ['{"asOf": "2026-12-01", "regions": {', /not valid JSON/],
        ['[1,2]', /not a JSON object/],
        [JSON.stringify({ ...cat('yesterday', {}) }), /\/asOf/],
        [JSON.stringify({ ...cat('2026-12-01', {}), currency: 'EUR' }), /\/currency/],
        [JSON.stringify(cat('2026-12-01', { 'us-east-1': { 'g5.xlarge': '1.0' as unknown as number } })), /\/regions\/us-east-1\/g5\.xlarge/],
        [JSON.stringify(cat('2026-12-01', { 'us-east-1': { 'g5.xlarge': 0 } })), /not a positive price/],
      ];
      for (const [text, why] of cases) {
        fs.writeFileSync(file, text);
        const log = memLog();
        assert.equal(loadUserCatalogue(dir, log), undefined, text);
        assert.equal(log.lines.length, 1);
        assert.match(log.lines[0]!, /^warn .*ignored .*aws-prices\.json/);
        assert.match(log.lines[0]!, why);
        assert.match(readUserCatalogue(dir).problem ?? '', why);
      }
    });

    it('refuses to save an invalid catalogue', () => {
      assert.throws(() => saveUserCatalogue(tmpDir(), cat('2026-12-01', { r: { t: -1 } })), /not a positive price/);
    });

    it('refreshUserCatalogue: fetches, merges over the previous refresh, saves', async () => {
      const dir = tmpDir();
      await refreshUserCatalogue(dir, opts({ regions: ['eu-west-1'], now: () => new Date('2026-12-01T10:00:00Z') }));
      const { catalogue } = await refreshUserCatalogue(dir, opts({ regions: ['us-east-1'], now: () => new Date('2026-12-02T10:00:00Z') }));
      assert.equal(catalogue.asOf, '2026-12-02');
      assert.deepEqual(catalogue.regions, { 'eu-west-1': EU_WEST_1_GPU, 'us-east-1': US_EAST_1_GPU });
      assert.deepEqual(loadUserCatalogue(dir), catalogue);
    });
  });

  describe('newestCatalogue', () => {
    const shipped = cat('2026-11-23', { 'us-east-1': { 't3.micro': 0.0104, 'g5.xlarge': 1.006 }, 'us-west-2': { 'g5.xlarge': 1.006 } });

    it('without a user catalogue: the shipped one', () => {
      assert.equal(newestCatalogue(shipped), shipped);
    });

    it('a newer user catalogue wins per type; other types and regions keep the shipped prices', () => {
      const user = cat('2026-12-01', { 'us-east-1': { 'g5.xlarge': 0.9 }, 'eu-west-1': { 'g5.xlarge': 1.123 } });
      const m = newestCatalogue(shipped, user);
      assert.equal(m.asOf, '2026-12-01');
      assert.equal(m.source, user.source);
      assert.deepEqual(m.regions, {
        'us-east-1': { 't3.micro': 0.0104, 'g5.xlarge': 0.9 },
        'us-west-2': { 'g5.xlarge': 1.006 },
        'eu-west-1': { 'g5.xlarge': 1.123 },
      });
      assert.match(m.note ?? '', /as of 2026-12-01.*as of 2026-11-23/);
      // Inputs untouched.
      assert.deepEqual(shipped.regions['us-east-1'], { 't3.micro': 0.0104, 'g5.xlarge': 1.006 });
    });

    it('the user catalogue wins a tie', () => {
      const m = newestCatalogue(shipped, cat('2026-11-23', { 'us-east-1': { 'g5.xlarge': 0.9 } }));
      assert.equal(m.regions['us-east-1']!['g5.xlarge'], 0.9);
      assert.equal(m.source, 'src-2026-11-23');
    });

    it('an older user catalogue (Tether shipped newer prices since) only fills gaps', () => {
      const user = cat('2026-10-01', { 'us-east-1': { 'g5.xlarge': 0.5, 'p5.48xlarge': 55 }, 'eu-west-1': { 'g5.xlarge': 1.2 } });
      const m = newestCatalogue(shipped, user);
      assert.equal(m.asOf, '2026-11-23');
      assert.deepEqual(m.regions['us-east-1'], { 't3.micro': 0.0104, 'g5.xlarge': 1.006, 'p5.48xlarge': 55 });
      assert.deepEqual(m.regions['eu-west-1'], { 'g5.xlarge': 1.2 });
    });
  });

  it('AwsEc2Provider prices from the merged catalogue (refreshed prices, shipped for the rest)', async () => {
    // The fake's us-east-1 g4dn.xlarge costs 0.5 today; eu-west-1 is not in the shipped catalogue.
    fake.products = defaultFakeProducts().map((x) => (x.sku === 'AAAA1111G4DNXL01' ? { ...x, usd: '0.5000000000' } : x));
    const fetched = await fetchAwsPrices(opts({ regions: ['us-east-1', 'eu-west-1'], now: () => new Date('2099-01-01T00:00:00Z') }));
    const dir = tmpDir();
    saveUserCatalogue(dir, fetched);
    const merged = newestCatalogue(AWS_SHIPPED_CATALOGUE, loadUserCatalogue(dir));
    const p = new AwsEc2Provider({ region: 'us-east-1', catalogue: merged });
    try {
      assert.equal(p.priceOf('g4dn.xlarge'), 0.5);
      assert.equal(p.priceOf('g4dn.xlarge', 'eu-west-1'), 0.587);
      assert.equal(p.priceOf('t3.micro'), AWS_SHIPPED_CATALOGUE.regions['us-east-1']!['t3.micro']);
      assert.equal(p.priceOf('g5.xlarge', 'us-west-2'), AWS_SHIPPED_CATALOGUE.regions['us-west-2']!['g5.xlarge']);
      assert.ok(Number.isNaN(p.priceOf('g4dn.12xlarge', 'eu-west-1')));
      assert.equal(p.catalogue.asOf, '2099-01-01');
    } finally {
      p.dispose();
    }
  });
});

describe('`tether cloud prices aws` (the real CLI against the Price List protocol fake) and the providers that use the result', function () {
  this.timeout(60000);
  let fake: AwsPricingFake;
  before(async () => {
    // AWS changed the g4dn.xlarge price since the shipped catalogue: the refresh must pick it up.
    const products = defaultFakeProducts().map((x) => (x.instanceType === 'g4dn.xlarge' && x.regionCode === 'us-east-1' ? { ...x, usd: '0.4990000000' } : x));
    fake = new AwsPricingFake({ products });
    await fake.start();
  });
  after(async () => fake?.stop());

  it('refreshes us-east-1 into the state folder; EC2 providers then price from it; bad usage is exit 2', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-prices-cli-'));
    const env = {
      TETHER_STATE_DIR: stateDir,
      TETHER_AWS_REGION: 'us-east-1',
      TETHER_AWS_PRICING_API_URL: fake.url,
      AWS_ACCESS_KEY_ID: fake.accessKeyId,
      AWS_SECRET_ACCESS_KEY: fake.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const r = await runCli(['cloud', 'prices', 'aws'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^g4dn\.xlarge\s+\$0\.4990\/h$/m);
    assert.match(r.stdout, /\d+ on-demand Linux prices for us-east-1 as of \d{4}-\d{2}-\d{2}, saved to .*aws-prices\.json/);
    const providers = await Promise.all(createProviders(accountsFromEnv(env), silentLogger, stateDir).map((p) => (p as LazyProvider).load()));
    const aws = providers.find((p): p is AwsEc2Provider => p instanceof AwsEc2Provider)!;
    assert.equal(aws.catalogue.asOf, new Date().toISOString().slice(0, 10), 'the refreshed catalogue is in use');
    assert.equal(AWS_SHIPPED_CATALOGUE.regions['us-east-1']!['g4dn.xlarge'], 0.526);
    assert.equal(aws.priceOf('g4dn.xlarge'), 0.499, 'the refreshed price, not the shipped one');
    for (const p of providers) (p as AwsEc2Provider).dispose?.();
    assert.equal((await runCli(['cloud', 'prices', 'lambda'], env)).code, 2);
    const noRegion = await runCli(['cloud', 'prices', 'aws'], { ...env, TETHER_AWS_REGION: '', AWS_REGION: '' });
    assert.equal(noRegion.code, 2);
    assert.match(noRegion.stderr, /no AWS region — Pass --region R or set TETHER_AWS_REGION/);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
});
