/**
 * Refreshing Tether's Fargate price catalogue (fargate-prices.json) from the AWS Price List Query
 * API through `@aws-sdk/client-pricing` (loaded on first use): GetProducts with ServiceCode
 * `AmazonECS` and `regionCode` = the region
 * (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html;
 * endpoints api.pricing.us-east-1 / eu-central-1 / ap-south-1; IAM `pricing:GetProducts`).
 *
 * Fargate's on-demand Linux rates are the products whose `usagetype` is
 * `[REGION-]Fargate-vCPU-Hours:perCPU` and `[REGION-]Fargate-GB-Hours` (x86), and the same with
 * `Fargate-ARM-` (ARM) — e.g. `USE1-Fargate-vCPU-Hours:perCPU` — priced per hour in their
 * OnDemand term. Spot (`…SpotUsage:Fargate-…`), ephemeral storage (`Fargate-EphemeralStorage-…`)
 * and Windows products are other usage types and are not taken.
 *
 * The refreshed catalogue goes to `<state>/fargate-prices.json` and never replaces the shipped
 * one: per region, the newer `asOf` wins ({@link newestFargateCatalogue}).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../../core/atomicFile';
import { TetherError } from '../../../core/errors';
import type { Logger } from '../../../core/logger';
import { CloudApiError } from '../provider';
import type { FargatePriceCatalogue, FargateRates } from './pricing';
import type { EcsArch } from './sizes';

export const FARGATE_USER_CATALOGUE_FILE = 'fargate-prices.json';
export const PRICE_LIST_API_DOC = 'https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html';

const USAGE = /^(?:[A-Z0-9]+-)?Fargate-(ARM-)?(vCPU-Hours:perCPU|GB-Hours)$/;

export interface FetchFargateOptions {
  region: string;
  /** Another endpoint (a proxy, the test fake); default: the Price List endpoint of us-east-1. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  log?: Logger;
  now?: () => Date;
  maxAttempts?: number;
  requestTimeoutMs?: number;
}

/** The Fargate rate a price list entry carries: architecture, dimension and USD/h; undefined for other products. */
export function fargateRateOf(entry: unknown): { arch: EcsArch; dim: 'vcpuHour' | 'gbHour'; usd: number } | undefined {
  const doc = (typeof entry === 'string' || entry instanceof String ? JSON.parse(String(entry)) : entry) as {
    product?: { attributes?: Record<string, string> };
    terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { pricePerUnit?: { USD?: string } }> }> };
  };
  const m = USAGE.exec(doc?.product?.attributes?.usagetype ?? '');
  if (!m) return undefined;
  for (const term of Object.values(doc.terms?.OnDemand ?? {})) {
    for (const d of Object.values(term.priceDimensions ?? {})) {
      const usd = Number(d.pricePerUnit?.USD);
      if (Number.isFinite(usd) && usd > 0) return { arch: m[1] ? 'ARM64' : 'X86_64', dim: m[2] === 'GB-Hours' ? 'gbHour' : 'vcpuHour', usd };
    }
  }
  return undefined;
}

/** Fetches the region's Fargate on-demand Linux rates. Throws CloudApiError when AWS answers with an error, or has no Fargate rates there. */
export async function fetchFargatePrices(o: FetchFargateOptions): Promise<FargatePriceCatalogue> {
  const { PricingClient, paginateGetProducts } = await import('@aws-sdk/client-pricing');
  const client = new PricingClient({
    region: 'us-east-1',
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.credentials ? { credentials: { ...o.credentials } } : {}),
    maxAttempts: o.maxAttempts ?? 3,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5000, requestTimeout: o.requestTimeoutMs ?? 30000, throwOnRequestTimeout: true },
  });
  const found: Partial<Record<EcsArch, Partial<FargateRates>>> = {};
  let products = 0;
  try {
    for await (const page of paginateGetProducts({ client, pageSize: 100 }, { ServiceCode: 'AmazonECS', FormatVersion: 'aws_v1', Filters: [{ Type: 'TERM_MATCH', Field: 'regionCode', Value: o.region }] })) {
      for (const e of page.PriceList ?? []) {
        products++;
        const r = fargateRateOf(e);
        if (r) (found[r.arch] ??= {})[r.dim] = r.usd;
      }
    }
  } catch (err) {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const code = e.name && e.name !== 'Error' ? e.name : 'Unknown';
    const creds = /Unrecognized|InvalidSignature|AccessDenied|ExpiredToken|MissingAuthentication|CredentialsProvider/.test(code);
    throw new CloudApiError('AWS Price List', `GetProducts(AmazonECS, ${o.region}) failed: ${code}: ${e.message ?? String(err)}`, {
      remedy: creds
        ? 'Check the AWS credentials and that their IAM policy allows pricing:GetProducts (the Price List Query API).'
        : `Retry later; the shipped Fargate catalogue stays in use meanwhile (endpoint ${o.endpoint ?? 'api.pricing.us-east-1.amazonaws.com'}).`,
      ...(e.$metadata?.httpStatusCode !== undefined ? { status: e.$metadata.httpStatusCode } : {}),
      code,
      cause: err,
    });
  } finally {
    client.destroy();
  }
  const rates: Partial<Record<EcsArch, FargateRates>> = {};
  for (const arch of ['X86_64', 'ARM64'] as const) {
    const r = found[arch];
    if (r?.vcpuHour !== undefined && r.gbHour !== undefined) rates[arch] = { vcpuHour: r.vcpuHour, gbHour: r.gbHour };
  }
  if (!rates.X86_64 && !rates.ARM64) {
    throw new CloudApiError('AWS Price List', `no Fargate on-demand rates for ${o.region} among ${products} AmazonECS products`, {
      remedy: 'Check the region code (Fargate may not run there); the shipped Fargate catalogue stays in use.',
      code: 'NoFargateRates',
    });
  }
  o.log?.info(`ecs pricing: ${o.region}: ${JSON.stringify(rates)} from ${products} AmazonECS products`);
  return {
    asOf: (o.now?.() ?? new Date()).toISOString().slice(0, 10),
    source: PRICE_LIST_API_DOC,
    currency: 'USD',
    terms: 'On-Demand, Linux, per vCPU-hour and per GB-hour (AmazonECS usage types Fargate-vCPU-Hours:perCPU, Fargate-GB-Hours, and their ARM twins)',
    regions: { [o.region]: rates },
  };
}

function catalogueProblem(c: unknown): string | undefined {
  const x = c as FargatePriceCatalogue;
  if (!x || typeof x !== 'object' || typeof x.asOf !== 'string' || !x.regions || typeof x.regions !== 'object') return 'not a Fargate price catalogue (asOf, regions)';
  for (const [region, archs] of Object.entries(x.regions)) {
    for (const [arch, r] of Object.entries(archs ?? {})) {
      if (!(r && Number.isFinite(r.vcpuHour) && r.vcpuHour > 0 && Number.isFinite(r.gbHour) && r.gbHour > 0)) return `${region} ${arch}: rates must be positive numbers`;
    }
  }
  return undefined;
}

/** The user's refreshed catalogue in `stateDir`, or undefined (missing or unusable: said in the log). Never throws. */
export function loadUserFargateCatalogue(stateDir: string, log?: Logger): FargatePriceCatalogue | undefined {
  const file = path.join(stateDir, FARGATE_USER_CATALOGUE_FILE);
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    const problem = catalogueProblem(json);
    if (problem) {
      log?.warn(`ecs pricing: ignored ${file}: ${problem}; using the shipped Fargate catalogue`);
      return undefined;
    }
    return json as FargatePriceCatalogue;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn(`ecs pricing: ignored ${file}: ${(err as Error).message}; using the shipped Fargate catalogue`);
    return undefined;
  }
}

/** Per region, the rates of the catalogue with the newer `asOf` (`user` wins a tie); the other fills in the regions it lacks. */
export function newestFargateCatalogue(shipped: FargatePriceCatalogue, user?: FargatePriceCatalogue): FargatePriceCatalogue {
  if (!user) return shipped;
  const userNewer = user.asOf >= shipped.asOf;
  const [newer, older] = userNewer ? [user, shipped] : [shipped, user];
  return { ...newer, regions: { ...older.regions, ...newer.regions } };
}

/** Fetches the region's rates and stores them over the previous user catalogue; returns the stored catalogue and its file. */
export async function refreshFargateCatalogue(stateDir: string, o: FetchFargateOptions): Promise<{ catalogue: FargatePriceCatalogue; file: string }> {
  const fetched = await fetchFargatePrices(o);
  const previous = loadUserFargateCatalogue(stateDir, o.log);
  const catalogue = previous ? { ...fetched, regions: { ...previous.regions, ...fetched.regions } } : fetched;
  const problem = catalogueProblem(catalogue);
  if (problem) throw new TetherError(`refusing to save an invalid Fargate catalogue: ${problem}`, { remedy: 'Refresh again.' });
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, FARGATE_USER_CATALOGUE_FILE);
  writeFileAtomic(file, `${JSON.stringify(catalogue, null, 2)}\n`);
  return { catalogue, file };
}
