/**
 * Refreshing Tether's AWS EC2 on-demand price catalogue (aws-prices.json) from the AWS Price List
 * Query API, through the official `@aws-sdk/client-pricing` (v3; AWS JSON 1.1, SigV4 — the SDK
 * signs). No `vscode` here: the extension and the CLI both use it.
 *
 * API reference:
 * - GetProducts: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
 *   (ServiceCode `AmazonEC2`; Filters of Type `TERM_MATCH` on product attributes; paged by
 *   NextToken, MaxResults ≤ 100; `PriceList` is a list of JSON strings, one product each)
 * - Filter: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_Filter.html
 * - Errors (AccessDeniedException, ThrottlingException, InvalidParameterException,
 *   ExpiredNextTokenException, InternalErrorException...): same pages, "Errors".
 * - Price List Query API, its endpoints (api.pricing.us-east-1 / eu-central-1 / ap-south-1
 *   .amazonaws.com — not every region) and the IAM action `pricing:GetProducts`:
 *   https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html
 * - What an entry looks like (product.attributes, terms.OnDemand.*.priceDimensions.*.pricePerUnit):
 *   https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-files-for-services.html
 *
 * The attribute values used as filters are the ones AWS's EC2 price list uses for a plain
 * on-demand Linux instance: operatingSystem `Linux`, tenancy `Shared` (not `Dedicated`/`Host`),
 * preInstalledSw `NA` (not `SQL Web`...), capacitystatus `Used` (not `UnusedCapacityReservation`
 * / `AllocatedCapacityReservation`, which are priced for reservations), licenseModel
 * `No License required`, regionCode the region's code ("us-east-1"). Without an instance type
 * list the query is restricted to instanceFamily `GPU instance` (g4dn, g5, g6, p4d, p5...: what
 * Tether rents); Inferentia/Trainium are `Machine Learning ASIC Instances` and are not fetched then.
 *
 * The user's refreshed catalogue lives in Tether's state folder (`aws-prices.json`) and never
 * replaces the shipped one: {@link newestCatalogue} merges the two, the newer `asOf` winning.
 * Keys never reach logs or error messages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Filter } from '@aws-sdk/client-pricing';
import type { Logger } from '../../../core/logger';
import { TetherError } from '../../../core/errors';
import { CREDENTIAL_CODES, toAwsCloudApiError, type AwsCredentials, type AwsPriceCatalogue } from './aws';
import { CloudApiError } from '../provider';

/** `source` of a fetched catalogue. */
export const AWS_PRICE_LIST_API_URL = 'https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html';
/** `terms` of a fetched catalogue. */
export const AWS_FETCHED_TERMS = 'on-demand, Linux, shared tenancy';
/** File name of the user's catalogue in Tether's state folder. */
export const AWS_USER_CATALOGUE_FILE = 'aws-prices.json';
/** Regions serving the Price List Query API (the client signs for and calls one of them). */
export const AWS_PRICING_API_REGIONS = ['us-east-1', 'eu-central-1', 'ap-south-1'] as const;

const PROVIDER = 'AWS Price List';
const DEFAULT_MAX_ATTEMPTS = 3;

export interface FetchAwsPricesOptions {
  /** EC2 regions to price ("us-east-1"). */
  regions: string[];
  /** Only these types (one query each per region); default: every `GPU instance` type. */
  instanceTypes?: string[];
  /** Another endpoint (a proxy; the protocol fake in tests). Default: the Price List endpoint of `pricingRegion`. */
  endpoint?: string;
  /** Explicit keys; default: the standard AWS credential chain. */
  credentials?: AwsCredentials;
  /** Region of the Price List Query API endpoint (us-east-1, eu-central-1 or ap-south-1). */
  pricingRegion?: string;
  log?: Logger;
  /** Clock for `asOf` (tests). */
  now?: () => Date;
  /** MaxResults per page (1..100, default 100). */
  pageSize?: number;
  /** Attempts per call by the SDK's standard retry strategy (default 3). */
  maxAttempts?: number;
  /** Connect timeout, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Whole-request timeout, ms (default 30000). */
  requestTimeoutMs?: number;
}

const BASE_FILTERS: Array<[string, string]> = [
  ['operatingSystem', 'Linux'],
  ['tenancy', 'Shared'],
  ['preInstalledSw', 'NA'],
  ['capacitystatus', 'Used'],
  ['licenseModel', 'No License required'],
];

function termMatch(field: string, value: string): Filter {
  return { Type: 'TERM_MATCH', Field: field, Value: value };
}

/** The GetProducts filters for one region (and one type, when given). */
export function awsPriceFilters(region: string, instanceType?: string): Filter[] {
  return [
    termMatch('regionCode', region),
    ...BASE_FILTERS.map(([f, v]) => termMatch(f, v)),
    instanceType ? termMatch('instanceType', instanceType) : termMatch('instanceFamily', 'GPU instance'),
  ];
}

/** One product of a price list entry: its type and its on-demand USD/h prices (Hrs dimensions, as written). */
export interface ParsedPriceListEntry {
  sku?: string;
  instanceType?: string;
  regionCode?: string;
  /** Every OnDemand `Hrs` pricePerUnit.USD, unparsed ("0.5260000000"). */
  usdPerHour: string[];
}

/** Parses one `PriceList` element (a JSON string; some SDK versions hand over a String wrapper or the object). */
export function parsePriceListEntry(entry: unknown): ParsedPriceListEntry {
  const doc = (typeof entry === 'string' || entry instanceof String ? JSON.parse(String(entry)) : entry) as any;
  const attrs = doc?.product?.attributes ?? {};
  const usdPerHour: string[] = [];
  for (const term of Object.values<any>(doc?.terms?.OnDemand ?? {})) {
    for (const dim of Object.values<any>(term?.priceDimensions ?? {})) {
      if (dim?.unit !== 'Hrs') continue;
      const usd = dim?.pricePerUnit?.USD;
      if (usd !== undefined) usdPerHour.push(String(usd));
    }
  }
  return {
    sku: typeof doc?.product?.sku === 'string' ? doc.product.sku : undefined,
    instanceType: typeof attrs.instanceType === 'string' ? attrs.instanceType : undefined,
    regionCode: typeof attrs.regionCode === 'string' ? attrs.regionCode : undefined,
    usdPerHour,
  };
}

const PRICING_CREDENTIAL_CODES = new Set([
  // The Price List API speaks AWS JSON 1.1, whose credential errors are named differently from EC2's.
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'AccessDeniedException',
  'AccessDenied',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  ...CREDENTIAL_CODES,
]);
const THROTTLE_CODES = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'TimeoutError', 'RequestTimeout']);

function pricingRemedy(code: string, attempts: number | undefined, endpoint: string): string | undefined {
  if (PRICING_CREDENTIAL_CODES.has(code)) {
    return 'Check the AWS credentials (the keys stored in Tether, or the standard chain: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws / SSO): that they are valid and not expired, and that their IAM policy allows pricing:GetProducts (the Price List Query API; the EC2 permissions are not enough).';
  }
  if (THROTTLE_CODES.has(code)) {
    return `AWS throttled the Price List API; the SDK's standard retry strategy already retried with backoff${attempts ? ` (${attempts} attempts in all)` : ''}. Wait a minute and refresh again, or refresh fewer regions or instance types at once.`;
  }
  if (NETWORK_CODES.has(code)) {
    return `Check the network, proxy and endpoint (${endpoint}): no answer${attempts ? ` after ${attempts} attempts by the SDK's retry strategy` : ''}. The Price List Query API is served only from ${AWS_PRICING_API_REGIONS.join(', ')} (api.pricing.<region>.amazonaws.com).`;
  }
  if (code === 'ExpiredNextTokenException' || code === 'InvalidNextTokenException') return 'The paging token expired mid-refresh: refresh again.';
  if (code === 'InvalidParameterException') return 'AWS refused the query (a filter or the service code): check the region codes and instance type names, then refresh again.';
  if (code === 'InternalErrorException') return `AWS's Price List service failed${attempts ? ` (${attempts} attempts)` : ''}: refresh again later; the shipped catalogue stays in use meanwhile.`;
  return undefined;
}

/**
 * Any error from the SDK → CloudApiError of the Price List API: AWS's code, message and status
 * as {@link toAwsCloudApiError} reads them, with a Price List remedy (pricing:GetProducts,
 * throttling, endpoint regions) where EC2's would mislead.
 */
export function toAwsPricingError(err: unknown, what: string, endpoint: string): CloudApiError {
  if (err instanceof CloudApiError && err.provider === PROVIDER) return err;
  const base = toAwsCloudApiError(err, what, endpoint);
  const prefix = `${base.provider}: `;
  const message = base.message.startsWith(prefix) ? base.message.slice(prefix.length) : base.message;
  const code = base.code ?? 'Unknown';
  const attempts = (err as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts;
  return new CloudApiError(PROVIDER, message, {
    remedy: pricingRemedy(code, attempts, endpoint) ?? base.remedy,
    ...(base.status === undefined ? {} : { status: base.status }),
    code,
    cause: err,
  });
}

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Fetches on-demand Linux / shared-tenancy USD/h prices of EC2 instance types for `regions` from
 * the Price List Query API. Zero and non-numeric prices are skipped; when several products match
 * one type the lowest positive price is kept (and logged). Regions without any price are left out
 * of `regions` (and logged). Throws {@link CloudApiError} when AWS answers with an error or not at all.
 */
export async function fetchAwsPrices(opts: FetchAwsPricesOptions): Promise<AwsPriceCatalogue> {
  const pricingRegion = opts.pricingRegion ?? 'us-east-1';
  const endpointLabel = opts.endpoint ?? `the Price List endpoint of ${pricingRegion}`;
  const log = opts.log;
  const regions = [...new Set(opts.regions)];
  if (regions.length === 0) throw new TetherError('No region to fetch AWS prices for.', { remedy: 'Name at least one region (e.g. us-east-1).' });
  const pageSize = opts.pageSize ?? 100;
  // The Pricing SDK loads here, on first use (a chunk of its own in the bundles).
  const { PricingClient, paginateGetProducts } = await import('@aws-sdk/client-pricing');
  const client = new PricingClient({
    region: pricingRegion,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: { ...opts.credentials } } : {}),
    maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryMode: 'standard',
    // throwOnRequestTimeout: without it a hung endpoint would only log a warning and hang the refresh.
    requestHandler: { connectionTimeout: opts.connectTimeoutMs ?? 5000, requestTimeout: opts.requestTimeoutMs ?? 30000, throwOnRequestTimeout: true },
  });
  const out: Record<string, Record<string, number>> = {};
  try {
    for (const region of regions) {
      const found = new Map<string, { usd: number; sku?: string }[]>();
      const queries: (string | undefined)[] = opts.instanceTypes?.length ? [...new Set(opts.instanceTypes)] : [undefined];
      for (const type of queries) {
        const what = `GetProducts(AmazonEC2, ${region}${type ? `, ${type}` : ', GPU instances'})`;
        try {
          const pages = paginateGetProducts({ client, pageSize }, { ServiceCode: 'AmazonEC2', FormatVersion: 'aws_v1', Filters: awsPriceFilters(region, type) });
          for await (const page of pages) {
            for (const raw of (page.PriceList ?? []) as unknown[]) {
              let e: ParsedPriceListEntry;
              try {
                e = parsePriceListEntry(raw);
              } catch (err) {
                log?.warn(`aws pricing: ${region}: skipped a price list entry that is not JSON (${String(err)})`);
                continue;
              }
              if (!e.instanceType) {
                log?.warn(`aws pricing: ${region}: skipped product ${e.sku ?? '?'} without instanceType`);
                continue;
              }
              for (const s of e.usdPerHour) {
                const usd = Number(s);
                if (!/^\s*[0-9.]+\s*$/.test(s) || !Number.isFinite(usd) || usd <= 0) {
                  log?.debug(`aws pricing: ${region} ${e.instanceType}: skipped price "${s}" of ${e.sku ?? '?'} (zero or not a number)`);
                  continue;
                }
                const list = found.get(e.instanceType) ?? [];
                list.push({ usd, ...(e.sku ? { sku: e.sku } : {}) });
                found.set(e.instanceType, list);
              }
            }
          }
        } catch (err) {
          throw toAwsPricingError(err, what, endpointLabel);
        }
        if (type && !found.has(type)) log?.warn(`aws pricing: no on-demand Linux price for ${type} in ${region}`);
      }
      const prices: Record<string, number> = {};
      for (const [type, list] of [...found].sort(([a], [b]) => a.localeCompare(b))) {
        const lowest = Math.min(...list.map((x) => x.usd));
        if (list.length > 1) {
          log?.info(`aws pricing: ${region} ${type}: ${list.length} matching prices (${list.map((x) => `${x.usd}${x.sku ? ` [${x.sku}]` : ''}`).join(', ')}); kept the lowest, ${lowest}`);
        }
        prices[type] = lowest;
      }
      if (Object.keys(prices).length === 0) {
        log?.warn(`aws pricing: no price at all for ${region} (unknown region code?); it is left out`);
      } else {
        out[region] = prices;
        log?.info(`aws pricing: ${region}: ${Object.keys(prices).length} instance types priced`);
      }
    }
  } finally {
    client.destroy();
  }
  return {
    asOf: isoDate((opts.now ?? (() => new Date()))()),
    source: AWS_PRICE_LIST_API_URL,
    currency: 'USD',
    terms: AWS_FETCHED_TERMS,
    note: `Fetched from the AWS Price List Query API (GetProducts, ServiceCode AmazonEC2) for ${Object.keys(out).join(', ') || 'no region'}${opts.instanceTypes?.length ? '' : ', GPU instances'}.`,
    regions: out,
  };
}

/** Why a catalogue is not usable, or undefined when it is. */
export function catalogueProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'not a JSON object';
  const c = x as Record<string, unknown>;
  if (typeof c.asOf !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(c.asOf) || Number.isNaN(Date.parse(c.asOf))) return '/asOf: not an ISO date (YYYY-MM-DD)';
  if (typeof c.source !== 'string' || !c.source) return '/source: missing';
  if (c.currency !== 'USD') return `/currency: ${JSON.stringify(c.currency)} (Tether prices in USD)`;
  for (const k of ['terms', 'note'] as const) if (c[k] !== undefined && typeof c[k] !== 'string') return `/${k}: not a string`;
  if (typeof c.regions !== 'object' || c.regions === null || Array.isArray(c.regions)) return '/regions: not an object';
  for (const [region, types] of Object.entries(c.regions as Record<string, unknown>)) {
    if (typeof types !== 'object' || types === null || Array.isArray(types)) return `/regions/${region}: not an object`;
    for (const [type, usd] of Object.entries(types as Record<string, unknown>)) {
      if (typeof usd !== 'number' || !Number.isFinite(usd) || usd <= 0) return `/regions/${region}/${type}: ${JSON.stringify(usd)} is not a positive price`;
    }
  }
  return undefined;
}

export interface UserCatalogueRead {
  file: string;
  /** Undefined when the file is missing or unusable. */
  catalogue?: AwsPriceCatalogue;
  /** Why an existing file was not used (unreadable, not JSON, wrong shape). */
  problem?: string;
}

/** Reads the user's catalogue from `stateDir`; never throws. */
export function readUserCatalogue(stateDir: string): UserCatalogueRead {
  const file = path.join(stateDir, AWS_USER_CATALOGUE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file };
    return { file, problem: `cannot read it: ${(err as Error).message}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { file, problem: `not valid JSON: ${(err as Error).message}` };
  }
  const problem = catalogueProblem(json);
  return problem ? { file, problem } : { file, catalogue: json as AwsPriceCatalogue };
}

/**
 * The user's refreshed catalogue, or undefined when there is none or it is unusable (the reason
 * goes to `log` as a warning; the shipped catalogue then stays in use). Never throws.
 */
export function loadUserCatalogue(stateDir: string, log?: Logger): AwsPriceCatalogue | undefined {
  const r = readUserCatalogue(stateDir);
  if (r.problem) log?.warn(`aws pricing: ignored ${r.file}: ${r.problem}; using the shipped price catalogue`);
  return r.catalogue;
}

/** Writes the user's catalogue atomically (temp file, fsync, rename); returns the file. */
export function saveUserCatalogue(stateDir: string, cat: AwsPriceCatalogue): string {
  const problem = catalogueProblem(cat);
  if (problem) throw new TetherError(`Refusing to save an invalid AWS price catalogue: ${problem}`, { remedy: 'Refresh the prices again.' });
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, AWS_USER_CATALOGUE_FILE);
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeFileSync(fd, `${JSON.stringify(cat, null, 2)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return file;
}

/**
 * The catalogue to price with: the newer of `shipped` and `user` (by `asOf`; `user` wins a tie)
 * supplies its metadata and its prices, and the older one fills in what the newer lacks (other
 * regions, other types of a region) — so refreshing the GPU types of one region keeps the shipped
 * prices of everything else. `note` says which regions came from which catalogue.
 */
export function newestCatalogue(shipped: AwsPriceCatalogue, user?: AwsPriceCatalogue): AwsPriceCatalogue {
  if (!user) return shipped;
  const userNewer = user.asOf >= shipped.asOf;
  const newer = userNewer ? user : shipped;
  const older = userNewer ? shipped : user;
  const regions: Record<string, Record<string, number>> = {};
  for (const r of new Set([...Object.keys(older.regions), ...Object.keys(newer.regions)])) {
    regions[r] = { ...(older.regions[r] ?? {}), ...(newer.regions[r] ?? {}) };
  }
  const newerRegions = Object.keys(newer.regions);
  const fillIns = Object.keys(older.regions).some((r) => !newer.regions[r] || Object.keys(older.regions[r]!).some((t) => newer.regions[r]![t] === undefined));
  const provenance = fillIns
    ? ` Prices of ${newerRegions.join(', ') || 'no region'} as of ${newer.asOf} (${newer.source}); the rest from the catalogue as of ${older.asOf} (${older.source}).`
    : '';
  return { ...newer, ...(provenance ? { note: `${newer.note ?? ''}${provenance}`.trim() } : {}), regions };
}

/**
 * Fetches prices and stores them as the user's catalogue, merged over the previous user
 * catalogue (so refreshing one region keeps an earlier refresh of another). Returns the stored
 * catalogue; combine it with the shipped one through {@link newestCatalogue}.
 */
export async function refreshUserCatalogue(stateDir: string, opts: FetchAwsPricesOptions): Promise<{ catalogue: AwsPriceCatalogue; file: string }> {
  const fetched = await fetchAwsPrices(opts);
  const previous = loadUserCatalogue(stateDir, opts.log);
  const catalogue = previous ? newestCatalogue(previous, fetched) : fetched;
  return { catalogue, file: saveUserCatalogue(stateDir, catalogue) };
}
