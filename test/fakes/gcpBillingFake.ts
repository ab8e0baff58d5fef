/**
 * A fake of the Cloud Billing Catalog API's `services.skus.list` for Compute Engine
 * (`GET /v1/services/6F81-5844-456A/skus`, https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list):
 * Bearer check (401 in Google's error shape), `pageSize` (max 5000) / `pageToken` paging,
 * `currencyCode`, 404 for another service, and SKUs in the API's shape (description, category
 * {serviceDisplayName, resourceFamily, resourceGroup, usageType}, serviceRegions, pricingInfo[0]
 * .pricingExpression {usageUnit, tieredRates[{startUsageAmount, unitPrice {currencyCode, units, nanos}}]}).
 * The prices are the fake's own (not Google's); decoys a client must skip are included
 * (commitments, custom, another region, storage, A100 80GB next to A100).
 */
import { FakeProviderServer, type Answer, type FakeOptions } from './fakeBase';
import { googleError } from './gcpComputeFake';

export interface FakeSku {
  description: string;
  resourceFamily?: string;
  resourceGroup: string;
  usageType: string;
  regions: string[];
  usd: number;
  unit?: string;
}

const money = (usd: number) => ({ currencyCode: 'USD', units: String(Math.floor(usd)), nanos: Math.round((usd - Math.floor(usd)) * 1e9) });

export const FAKE_SKUS: FakeSku[] = [
  { description: 'G2 Instance Core running in Americas', resourceGroup: 'CPU', usageType: 'OnDemand', regions: ['us-central1', 'us-east1'], usd: 0.02 },
  { description: 'G2 Instance Ram running in Americas', resourceGroup: 'RAM', usageType: 'OnDemand', regions: ['us-central1', 'us-east1'], usd: 0.004, unit: 'GiBy.h' },
  { description: 'Spot Preemptible G2 Instance Core running in Americas', resourceGroup: 'CPU', usageType: 'Preemptible', regions: ['us-central1'], usd: 0.008 },
  { description: 'Spot Preemptible G2 Instance Ram running in Americas', resourceGroup: 'RAM', usageType: 'Preemptible', regions: ['us-central1'], usd: 0.0016, unit: 'GiBy.h' },
  { description: 'Nvidia L4 GPU running in Americas', resourceGroup: 'GPU', usageType: 'OnDemand', regions: ['us-central1'], usd: 0.56004 },
  { description: 'Nvidia L4 GPU attached to Spot Preemptible VMs running in Americas', resourceGroup: 'GPU', usageType: 'Preemptible', regions: ['us-central1'], usd: 0.2231 },
  { description: 'A2 Instance Core running in Americas', resourceGroup: 'CPU', usageType: 'OnDemand', regions: ['us-central1'], usd: 0.03 },
  { description: 'A2 Instance Ram running in Americas', resourceGroup: 'RAM', usageType: 'OnDemand', regions: ['us-central1'], usd: 0.004, unit: 'GiBy.h' },
  { description: 'Nvidia Tesla A100 GPU running in Americas', resourceGroup: 'GPU', usageType: 'OnDemand', regions: ['us-central1'], usd: 2.93391 },
  { description: 'Nvidia A100 80GB GPU running in Americas', resourceGroup: 'GPU', usageType: 'OnDemand', regions: ['us-central1'], usd: 3.9 },
  // Decoys.
  { description: 'Commitment v1: G2 Cpu in Americas for 1 Year', resourceGroup: 'CPU', usageType: 'Commit1Yr', regions: ['us-central1'], usd: 0.001 },
  { description: 'Custom G2 Instance Core running in Americas', resourceGroup: 'CPU', usageType: 'OnDemand', regions: ['us-central1'], usd: 9 },
  { description: 'G2 Instance Core running in Paris', resourceGroup: 'CPU', usageType: 'OnDemand', regions: ['europe-west9'], usd: 7 },
  { description: 'Storage PD Capacity', resourceFamily: 'Storage', resourceGroup: 'PDStandard', usageType: 'OnDemand', regions: ['us-central1'], usd: 0.04, unit: 'GiBy.mo' },
  { description: 'Reserved G2 Instance Ram running in Americas', resourceGroup: 'RAM', usageType: 'OnDemand', regions: ['us-central1'], usd: 5, unit: 'GiBy.h' },
];

export class FakeGcpBillingServer extends FakeProviderServer {
  skus: FakeSku[] = FAKE_SKUS;
  constructor(o: FakeOptions = {}) {
    super({ apiKey: 'ya29.fake-token-0123456789', ...o });
  }
  override async start(): Promise<string> {
    await super.start();
    this.url = `${this.url}/v1`;
    return this.url;
  }
  instanceCount(): number {
    return 0;
  }
  addForeign(): string {
    throw new Error('no instances in the Billing Catalog API');
  }
  protected authorized(a: string | undefined): boolean {
    return a === `Bearer ${this.apiKey}`;
  }
  protected authError(): Answer {
    return googleError(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', { status: 'UNAUTHENTICATED' });
  }
  protected rateLimited(): Answer {
    return googleError(429, 'rateLimitExceeded', 'Quota exceeded', { status: 'RESOURCE_EXHAUSTED', domain: 'usageLimits' });
  }
  protected serverError(): Answer {
    return googleError(500, 'backendError', 'Internal error', { status: 'INTERNAL' });
  }
  protected isCreate(): boolean {
    return false;
  }
  protected route(method: string, path: string, url: URL): Answer {
    const m = /^\/v1\/services\/([^/]+)\/skus$/.exec(path);
    if (!m || method !== 'GET') return googleError(404, 'notFound', `Not Found: ${path}`, { status: 'NOT_FOUND' });
    if (m[1] !== '6F81-5844-456A') return googleError(404, 'notFound', `Service ${m[1]} not found`, { status: 'NOT_FOUND' });
    for (const k of url.searchParams.keys()) if (!['currencyCode', 'pageSize', 'pageToken', 'startTime', 'endTime', 'alt', 'key'].includes(k)) return googleError(400, 'badRequest', `Invalid JSON payload received. Unknown name "${k}"`, { status: 'INVALID_ARGUMENT' });
    const ps = url.searchParams.get('pageSize');
    const size = Math.min(ps === null ? 5000 : Number(ps), 5000, 4); // this fake answers at most 4 per page
    if (!Number.isInteger(size) || size <= 0) return googleError(400, 'badRequest', 'Invalid pageSize', { status: 'INVALID_ARGUMENT' });
    const tok = url.searchParams.get('pageToken');
    const start = tok ? Number(Buffer.from(tok, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) return googleError(400, 'badRequest', 'Invalid page token', { status: 'INVALID_ARGUMENT' });
    const page = this.skus.slice(start, start + size).map((s, i) => ({
      name: `services/6F81-5844-456A/skus/F${String(start + i).padStart(3, '0')}-0000-0000`,
      skuId: `F${String(start + i).padStart(3, '0')}-0000-0000`,
      description: s.description,
      category: { serviceDisplayName: 'Compute Engine', resourceFamily: s.resourceFamily ?? 'Compute', resourceGroup: s.resourceGroup, usageType: s.usageType },
      serviceRegions: s.regions,
      pricingInfo: [{ effectiveTime: '2026-11-30T00:00:00Z', pricingExpression: { usageUnit: s.unit ?? 'h', displayQuantity: 1, tieredRates: [{ startUsageAmount: 0, unitPrice: money(s.usd) }] }, currencyConversionRate: 1 }],
      serviceProviderName: 'Google',
    }));
    const next = start + size < this.skus.length ? Buffer.from(String(start + size)).toString('base64url') : '';
    return { status: 200, body: { skus: page, nextPageToken: next } };
  }
}
