/**
 * Refreshing Compute Engine prices from the Cloud Billing Catalog API (`tether cloud prices gcp`).
 *
 * API: `GET https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus` (Compute
 * Engine's service id; paged with `pageSize` / `nextPageToken`; Bearer token with the
 * cloud-platform scope; override `TETHER_GCP_BILLING_API_URL`). Reference:
 * https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list
 *
 * A machine type's price is composed as Google bills it (and as SkyPilot's catalogue fetcher,
 * skypilot-org/skypilot @ a2f08cfd sky/catalog/data_fetchers/fetch_gcp.py, matches SKUs): the
 * series' "Instance Core" SKU × vCPUs + its "Instance Ram" SKU × GiB, plus each attached GPU's
 * SKU × count, for the region, `usageType` OnDemand (Spot: Preemptible). SKUs that are custom,
 * premium, reserved, sole-tenant or commitments are ignored. A type whose parts are not all found
 * gets no price (never a guess). Machine types and their GPUs come from the zone's
 * `machineTypes.list`.
 *
 * The result is saved in the state folder as gcp-prices.json; the newer catalogue wins per type,
 * the shipped one fills the gaps (as for EC2).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TetherError } from '../../../core/errors';
import type { Logger } from '../../../core/logger';
import { JsonHttpClient } from '../http';
import type { PriceRefresh } from '../registry';
import type { GcpComputeProvider, GcpPriceCatalogue, GcpPrice } from './gcp';
import { parseGoogleError, regionOfZone } from './gcp';

export const GCE_BILLING_SERVICE = '6F81-5844-456A';
export const GCP_BILLING_URL = 'https://cloudbilling.googleapis.com/v1';
export const GCP_BILLING_URL_ENV = 'TETHER_GCP_BILLING_API_URL';
export const GCP_USER_CATALOGUE_FILE = 'gcp-prices.json';

/** Series → the words its Core/Ram SKUs carry (fetch_gcp.py SERIES_TO_DESCRIPTION). */
export const SERIES_DESCRIPTION: Record<string, string> = { a2: 'A2 Instance', a3: 'A3 Instance', g2: 'G2 Instance', n1: 'N1 Predefined Instance' };

/** Accelerator type → the words its GPU SKU carries. */
export const GPU_DESCRIPTION: Record<string, string[]> = {
  'nvidia-tesla-a100': ['A100 GPU'],
  'nvidia-a100-80gb': ['A100 80GB GPU'],
  'nvidia-h100-80gb': ['H100 80GB GPU'],
  'nvidia-h100-mega-80gb': ['H100 80GB Mega GPU', 'H100 Mega 80GB GPU', 'H100 80GB Plus GPU'],
  'nvidia-l4': ['L4 GPU'],
  'nvidia-tesla-t4': ['T4 GPU'],
  'nvidia-tesla-v100': ['V100 GPU'],
};

export interface BillingSku {
  name?: string;
  skuId?: string;
  description: string;
  category: { serviceDisplayName?: string; resourceFamily: string; resourceGroup: string; usageType: string };
  serviceRegions: string[];
  pricingInfo: { pricingExpression: { usageUnit?: string; tieredRates: { startUsageAmount?: number; unitPrice: { currencyCode?: string; units?: string; nanos?: number } }[] } }[];
}

export interface MachineTypeFacts {
  name: string;
  guestCpus?: number;
  memoryMb?: number;
  accelerators?: { guestAcceleratorType?: string; guestAcceleratorCount?: number }[];
}

/** USD per unit of a SKU's first tier (units + nanos). */
export function unitPrice(sku: BillingSku): number | undefined {
  const rates = sku.pricingInfo?.[0]?.pricingExpression?.tieredRates ?? [];
  const rate = rates[rates.length - 1] ?? rates[0];
  if (!rate) return undefined;
  const v = Number(rate.unitPrice.units ?? 0) + (rate.unitPrice.nanos ?? 0) / 1e9;
  return Number.isFinite(v) ? v : undefined;
}

/** The SKUs that price VMs: Compute, OnDemand or Preemptible, none of the special kinds. */
export function relevantSkus(skus: BillingSku[]): BillingSku[] {
  return skus.filter((s) => {
    const d = s.description.toLowerCase();
    return (
      s.category?.resourceFamily === 'Compute' &&
      (s.category.usageType === 'OnDemand' || s.category.usageType === 'Preemptible') &&
      !['custom', 'premium', 'reserved', 'sole tenancy', 'commitment'].some((w) => d.includes(w))
    );
  });
}

/** A machine type's price in a region from the SKUs, or undefined when a part is missing. */
export function composePrice(m: MachineTypeFacts, skus: BillingSku[], region: string, spot: boolean): number | undefined {
  const series = m.name.split('-')[0]!;
  const words = SERIES_DESCRIPTION[series];
  if (!words || !m.guestCpus || !m.memoryMb) return undefined;
  const usage = spot ? 'Preemptible' : 'OnDemand';
  const here = skus.filter((s) => s.category.usageType === usage && s.serviceRegions.includes(region));
  const part = (group: string[], word: RegExp) => here.find((s) => group.includes(s.category.resourceGroup) && s.description.toLowerCase().includes(words.toLowerCase()) && word.test(s.description));
  const core = part(['CPU', 'N1Standard'], /\bCore\b/);
  const ram = part(['RAM', 'N1Standard'], /\bRam\b/);
  const cp = core && unitPrice(core);
  const rp = ram && unitPrice(ram);
  if (cp === undefined || rp === undefined) return undefined;
  let total = cp * m.guestCpus + rp * (m.memoryMb / 1024);
  for (const a of m.accelerators ?? []) {
    const names = GPU_DESCRIPTION[a.guestAcceleratorType ?? ''];
    const gpu = names && here.find((s) => s.category.resourceGroup === 'GPU' && names.some((n) => s.description.includes(n)));
    const gp = gpu && unitPrice(gpu);
    if (gp === undefined) return undefined;
    total += gp * (a.guestAcceleratorCount ?? 0);
  }
  return Math.round(total * 1e5) / 1e5;
}

/** Every SKU of Compute Engine (all pages). */
export async function fetchSkus(o: { token: string; baseUrl?: string; log?: Logger; timeoutMs?: number }): Promise<BillingSku[]> {
  const client = new JsonHttpClient({
    provider: 'Cloud Billing Catalog API',
    baseUrl: (o.baseUrl ?? GCP_BILLING_URL).replace(/\/+$/, ''),
    headers: { Authorization: `Bearer ${o.token}` },
    secrets: [o.token],
    parseError: parseGoogleError,
    timeoutMs: o.timeoutMs ?? 60_000,
    ...(o.log ? { log: (l: string) => o.log!.info(l) } : {}),
  });
  const out: BillingSku[] = [];
  let pageToken: string | undefined;
  let pages = 0;
  do {
    const page = (await client.get<{ skus?: BillingSku[]; nextPageToken?: string }>(`/services/${GCE_BILLING_SERVICE}/skus`, { query: { currencyCode: 'USD', pageSize: 5000, pageToken } })).body;
    out.push(...(page.skus ?? []));
    pageToken = page.nextPageToken || undefined;
    if (++pages > 1000) throw new TetherError('The Cloud Billing Catalog API kept paging (over 1000 pages)', { remedy: 'Try again later; check TETHER_GCP_BILLING_API_URL.' });
  } while (pageToken);
  return out;
}

/** Prices of the given machine types in a region, from the SKUs. */
export function catalogueFromSkus(skus: BillingSku[], machineTypes: MachineTypeFacts[], region: string, asOf = new Date().toISOString().slice(0, 10)): GcpPriceCatalogue {
  const rel = relevantSkus(skus);
  const prices: Record<string, GcpPrice> = {};
  for (const m of machineTypes) {
    if (!SERIES_DESCRIPTION[m.name.split('-')[0]!] || !(m.accelerators ?? []).some((a) => (a.guestAcceleratorCount ?? 0) > 0)) continue;
    const onDemand = composePrice(m, rel, region, false);
    if (onDemand === undefined) continue;
    const spot = composePrice(m, rel, region, true);
    prices[m.name] = { onDemand, ...(spot !== undefined ? { spot } : {}) };
  }
  return {
    asOf,
    source: `Cloud Billing Catalog API, services/${GCE_BILLING_SERVICE}/skus (Core + Ram per series, plus GPUs), fetched by tether cloud prices gcp`,
    currency: 'USD',
    terms: 'On-demand and Spot list prices per instance-hour (vCPUs, memory and attached GPUs); disks, IPs and network extra',
    regions: { [region]: prices },
  };
}

export function readUserCatalogue(stateDir: string): GcpPriceCatalogue | undefined {
  const file = path.join(stateDir, GCP_USER_CATALOGUE_FILE);
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as GcpPriceCatalogue;
    return typeof c.asOf === 'string' && c.regions && typeof c.regions === 'object' ? c : undefined;
  } catch {
    return undefined;
  }
}

export function saveUserCatalogue(stateDir: string, cat: GcpPriceCatalogue): string {
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, GCP_USER_CATALOGUE_FILE);
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(cat, null, 2)}\n`);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return file;
}

/** The newer catalogue's prices win per type; the other fills the gaps. */
export function newestCatalogue(shipped: GcpPriceCatalogue, user?: GcpPriceCatalogue): GcpPriceCatalogue {
  if (!user) return shipped;
  const [older, newer] = user.asOf >= shipped.asOf ? [shipped, user] : [user, shipped];
  const regions: Record<string, Record<string, GcpPrice>> = {};
  for (const r of new Set([...Object.keys(older.regions), ...Object.keys(newer.regions)])) regions[r] = { ...(older.regions[r] ?? {}), ...(newer.regions[r] ?? {}) };
  return { ...newer, regions };
}

/** `tether cloud prices gcp`: the zone's machine types, the SKUs, the composed catalogue saved in the state folder. */
export async function refreshGcpPrices(
  gcp: GcpComputeProvider,
  ctx: { log: Logger; stateDir: string; env: NodeJS.ProcessEnv; region?: string; accessToken?: string; accountEnv: NodeJS.ProcessEnv },
): Promise<PriceRefresh> {
  const r = ctx.region ?? regionOfZone(gcp.zone);
  if (regionOfZone(gcp.zone) !== r) throw new TetherError(`--region ${r} is not the region of the zone ${gcp.zone}`, { remedy: "Pass --zone in that region (prices are composed from the zone's machine types)." });
  const machineTypes = await gcp.machineTypes();
  const token = ctx.accessToken ?? (await (await import('../googleAuth')).googleAccessToken({ env: ctx.accountEnv }));
  const baseUrl = ctx.env[GCP_BILLING_URL_ENV];
  const skus = await fetchSkus({ token, ...(baseUrl ? { baseUrl } : {}), log: ctx.log });
  const catalogue = catalogueFromSkus(skus, machineTypes, r);
  const prices = catalogue.regions[r] ?? {};
  if (!Object.keys(prices).length) throw new TetherError(`No Compute Engine GPU prices found for ${r} among ${skus.length} SKUs`, { remedy: 'Check the region; the Cloud Billing Catalog API may have renamed its SKUs (the shipped catalogue stays in use).' });
  const file = saveUserCatalogue(ctx.stateDir, catalogue);
  return {
    catalogue,
    lines: Object.entries(prices)
      .sort((x, y) => x[1].onDemand - y[1].onDemand)
      .map(([t, p]) => `${t.padEnd(20)} $${p.onDemand.toFixed(4)}/h${p.spot !== undefined ? `  spot $${p.spot.toFixed(4)}/h` : ''}`),
    summary: `${Object.keys(prices).length} Compute Engine GPU machine-type prices for ${r} as of ${catalogue.asOf} (from ${skus.length} SKUs), saved to ${file}`,
  };
}
