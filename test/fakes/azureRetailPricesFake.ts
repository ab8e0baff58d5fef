/**
 * Fake Azure Retail Prices API (https://prices.azure.com/api/retail/prices: public, no auth, so
 * plain http here is faithful enough — no token is ever sent to it). It answers like the real
 * one, `{BillingCurrency, CustomerEntityId, CustomerEntityType, Items, NextPageLink, Count}`, a
 * few items a page, for an OData `$filter` of `field eq 'value'` clauses joined by `and` (other
 * syntax: 400 `{"Error":{"Code":"BadRequest",...}}`), with the traps a client must skip: Windows
 * products, Spot and Low Priority meters, DevTest prices, older effective prices, other regions.
 */
import type * as http from 'node:http';
import { LocalHttpServer } from '../helpers/net';
import type { RetailPriceItem } from '../../src/backends/cloud/azure/azurePricing';

const FIELDS = new Set(['serviceName', 'armRegionName', 'priceType', 'armSkuName', 'skuName', 'productName', 'meterName', 'serviceFamily', 'location', 'currencyCode', 'type']);

const item = (armSkuName: string, retailPrice: number, o: Partial<RetailPriceItem> = {}): RetailPriceItem & { priceType?: string } => {
  const sku = armSkuName.replace(/^Standard_/, '').replace(/_/g, ' ');
  return {
    currencyCode: 'USD',
    retailPrice,
    armRegionName: 'eastus',
    armSkuName,
    skuName: sku,
    meterName: sku,
    productName: `Virtual Machines ${sku.split(' ')[0]} Series`,
    serviceName: 'Virtual Machines',
    unitOfMeasure: '1 Hour',
    type: 'Consumption',
    effectiveStartDate: '2024-06-01T00:00:00Z',
    ...o,
  };
};

export class FakeRetailPricesServer {
  readonly requests: string[] = [];
  pageSize = 3;
  readonly items: Array<RetailPriceItem & { priceType?: string }> = [
    item('Standard_NC4as_T4_v3', 0.5, { effectiveStartDate: '2023-01-01T00:00:00Z' }),
    item('Standard_NC4as_T4_v3', 0.61),
    item('Standard_NC4as_T4_v3', 0.9, { productName: 'Virtual Machines NCasT4_v3 Series Windows' }),
    item('Standard_NC4as_T4_v3', 0.11, { skuName: 'NC4as T4 v3 Spot', meterName: 'NC4as T4 v3 Spot' }),
    item('Standard_NC4as_T4_v3', 0.2, { skuName: 'NC4as T4 v3 Low Priority', meterName: 'NC4as T4 v3 Low Priority' }),
    item('Standard_NC4as_T4_v3', 0.4, { type: 'DevTestConsumption' }),
    item('Standard_NC24ads_A100_v4', 3.8),
    item('Standard_NV36ads_A10_v5', 3.3),
    item('Standard_D2s_v5', 0.096),
    item('Standard_NC4as_T4_v3', 0.7, { armRegionName: 'westeurope' }),
  ];
  private readonly http = new LocalHttpServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<string> {
    this.url = `${await this.http.start()}/api/retail/prices`;
    return this.url;
  }
  stop(): Promise<void> {
    return this.http.stop();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    this.requests.push(u.pathname + u.search);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || u.pathname !== '/api/retail/prices') return send(404, { Error: { Code: 'NotFound', Message: 'Not found' } });
    const filter = u.searchParams.get('$filter') ?? '';
    const clauses = filter ? filter.split(' and ') : [];
    const conds: Array<[string, string]> = [];
    for (const c of clauses) {
      const m = /^(\w+) eq '([^']*)'$/.exec(c.trim());
      if (!m || !FIELDS.has(m[1]!)) return send(400, { Error: { Code: 'BadRequest', Message: 'Invalid OData parameters supplied' } });
      conds.push([m[1]!, m[2]!]);
    }
    const all = this.items.filter((i) => conds.every(([k, v]) => String((k === 'priceType' ? i.type : (i as Record<string, unknown>)[k]) ?? '') === v || (k === 'priceType' && v === 'Consumption' && i.type === 'DevTestConsumption')));
    const skip = Number(u.searchParams.get('$skip') ?? '0') || 0;
    const page = all.slice(skip, skip + this.pageSize);
    const next = skip + this.pageSize < all.length ? new URL(`${this.url}${u.search}`) : undefined;
    next?.searchParams.set('$skip', String(skip + this.pageSize));
    send(200, { BillingCurrency: 'USD', CustomerEntityId: 'Default', CustomerEntityType: 'Retail', Items: page, NextPageLink: next ? next.toString() : null, Count: page.length });
  }
}
