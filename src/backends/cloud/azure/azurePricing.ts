/**
 * Azure VM prices from the public Azure Retail Prices API (no auth, no token sent):
 * https://learn.microsoft.com/en-us/rest/api/cost-management/retail-prices/azure-retail-prices
 *
 * `tether cloud prices azure [--region R]` (and the UI's "Refresh Cloud Prices…") reads the
 * pay-as-you-go Linux hourly prices of the N-series (GPU) sizes of one region into
 * `<state>/azure-prices.json`; the client then uses, per region, the newer of that file and the
 * shipped snapshot (azure-prices.json). Loaded on first use (a chunk of its own).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../../core/logger';
import { CloudApiError } from '../provider';
import type { AzurePriceCatalogue } from './azure';

export const AZURE_RETAIL_PRICES_URL = 'https://prices.azure.com/api/retail/prices';
export const AZURE_RETAIL_API_VERSION = '2023-01-01-preview';
/** Environment override of the Retail Prices endpoint (tests, proxies). */
export const AZURE_PRICES_URL_ENV = 'TETHER_AZURE_PRICES_API_URL';
export const AZURE_USER_CATALOGUE = 'azure-prices.json';

/** One item of the Retail Prices API's answer (the fields Tether reads). */
export interface RetailPriceItem {
  currencyCode?: string;
  retailPrice?: number;
  armRegionName?: string;
  armSkuName?: string;
  skuName?: string;
  meterName?: string;
  productName?: string;
  serviceName?: string;
  unitOfMeasure?: string;
  type?: string;
  effectiveStartDate?: string;
}

/** The OData filter Tether asks with (only `eq`, which the API documents). */
export function retailFilter(region: string): string {
  return `serviceName eq 'Virtual Machines' and armRegionName eq '${region}' and priceType eq 'Consumption'`;
}

/** Whether an item is a pay-as-you-go Linux hourly price of an N-series size (not Spot, Low Priority or Windows). */
export function isLinuxGpuHourly(i: RetailPriceItem): boolean {
  return (
    i.type === 'Consumption' &&
    i.unitOfMeasure === '1 Hour' &&
    typeof i.retailPrice === 'number' &&
    i.retailPrice > 0 &&
    typeof i.armSkuName === 'string' &&
    /^Standard_N/.test(i.armSkuName) &&
    !/ Windows$/.test(i.productName ?? '') &&
    !/\b(Spot|Low Priority)\b/.test(`${i.skuName ?? ''} ${i.meterName ?? ''}`)
  );
}

/** The hourly USD prices of one region's N-series sizes (newest effective price per size). */
export async function fetchAzureGpuPrices(region: string, o: { baseUrl?: string; log?: Logger; timeoutMs?: number } = {}): Promise<Record<string, number>> {
  if (!/^[a-z0-9]+$/.test(region)) throw new CloudApiError('Azure Retail Prices', `"${region}" is not an Azure region name`, { remedy: 'e.g. eastus, westeurope' });
  const base = o.baseUrl ?? AZURE_RETAIL_PRICES_URL;
  const origin = new URL(base).origin;
  let url: string | undefined = `${base}?api-version=${AZURE_RETAIL_API_VERSION}&$filter=${encodeURIComponent(retailFilter(region))}`;
  const best = new Map<string, { price: number; since: string }>();
  for (let page = 0; url; page++) {
    if (page > 500) throw new CloudApiError('Azure Retail Prices', 'more than 500 pages', { remedy: 'report this: the API kept answering with a NextPageLink' });
    let res: Response;
    try {
      res = await fetch(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(o.timeoutMs ?? 30_000) });
    } catch (err) {
      throw new CloudApiError('Azure Retail Prices', `no answer from ${origin} (${(err as Error).message})`, { remedy: 'check the network or a proxy, or TETHER_AZURE_PRICES_API_URL', cause: err });
    }
    const body = (await res.json().catch(() => undefined)) as { Items?: RetailPriceItem[]; NextPageLink?: string | null; Error?: { Message?: string } } | undefined;
    if (!res.ok || !body || !Array.isArray(body.Items)) {
      throw new CloudApiError('Azure Retail Prices', `HTTP ${res.status}${body?.Error?.Message ? `: ${body.Error.Message}` : ''}`, { remedy: 'try again later; the shipped prices stay in use', status: res.status });
    }
    for (const i of body.Items) {
      if (!isLinuxGpuHourly(i) || i.armRegionName !== region || (i.currencyCode && i.currencyCode !== 'USD')) continue;
      const since = i.effectiveStartDate ?? '';
      const had = best.get(i.armSkuName!);
      if (!had || since > had.since) best.set(i.armSkuName!, { price: i.retailPrice!, since });
    }
    o.log?.debug(`Azure Retail Prices: page ${page + 1}, ${body.Items.length} items, ${best.size} GPU sizes so far`);
    const next = body.NextPageLink ?? undefined;
    if (next && new URL(next).origin !== origin) throw new CloudApiError('Azure Retail Prices', `refusing to follow a link to another host (${new URL(next).origin})`, { remedy: 'check TETHER_AZURE_PRICES_API_URL' });
    url = next;
  }
  return Object.fromEntries([...best].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.price]));
}

/** The catalogue refreshed into the state folder, if any (a damaged file is ignored and said). */
export function loadUserCatalogue(stateDir: string, log?: Logger): AzurePriceCatalogue | undefined {
  const file = path.join(stateDir, AZURE_USER_CATALOGUE);
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as AzurePriceCatalogue;
    if (typeof c.asOf !== 'string' || typeof c.regions !== 'object' || c.regions === null) throw new Error('not a price catalogue');
    return c;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn(`${file}: ignored (${(err as Error).message}); using the shipped Azure prices`);
    return undefined;
  }
}

/** Per region, the newer of the two catalogues' prices; hardware facts from both. */
export function newestCatalogue(shipped: AzurePriceCatalogue, user: AzurePriceCatalogue | undefined): AzurePriceCatalogue {
  if (!user) return shipped;
  const regions: Record<string, Record<string, number>> = { ...shipped.regions };
  const userAsOf = user.regionAsOf ?? {};
  for (const [r, prices] of Object.entries(user.regions)) {
    if ((userAsOf[r] ?? user.asOf) >= shipped.asOf) regions[r] = { ...(shipped.regions[r] ?? {}), ...prices };
  }
  return { ...shipped, regions, sizes: { ...shipped.sizes, ...(user.sizes ?? {}) }, note: `${shipped.note ?? ''} Refreshed regions: ${Object.keys(user.regions).join(', ')} (${user.asOf}).`.trim() };
}

/** Reads one region's prices and saves them into `<state>/azure-prices.json` (other regions kept). */
export async function refreshUserCatalogue(stateDir: string, region: string, o: { baseUrl?: string; log?: Logger; now?: Date } = {}): Promise<{ catalogue: AzurePriceCatalogue; file: string; prices: Record<string, number> }> {
  const prices = await fetchAzureGpuPrices(region, o);
  if (!Object.keys(prices).length) throw new CloudApiError('Azure Retail Prices', `no N-series Linux pay-as-you-go prices for ${region}`, { remedy: 'check the region name; the shipped prices stay in use' });
  const today = (o.now ?? new Date()).toISOString().slice(0, 10);
  const had = loadUserCatalogue(stateDir, o.log);
  const catalogue: AzurePriceCatalogue = {
    asOf: today,
    source: `Azure Retail Prices API: ${o.baseUrl ?? AZURE_RETAIL_PRICES_URL}`,
    query: `$filter=${retailFilter('<region>')}; kept: type Consumption, '1 Hour', armSkuName Standard_N*, not Windows / Spot / Low Priority`,
    currency: 'USD',
    terms: 'pay-as-you-go (Consumption), Linux, per hour',
    sizes: had?.sizes ?? {},
    regions: { ...(had?.regions ?? {}), [region]: prices },
    regionAsOf: { ...(had?.regionAsOf ?? {}), [region]: today },
  };
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, AZURE_USER_CATALOGUE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(catalogue, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return { catalogue, file, prices };
}
