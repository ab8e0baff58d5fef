/**
 * A PROTOCOL FAKE of the AWS Price List Query API (GetProducts) serving a few hand-typed AmazonECS
 * products, for the Fargate price refresh. Not AWS's data: the prices below are made up so that a
 * refresh is told apart from the shipped catalogue; the entries' shape follows the price list
 * format (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-files-for-services.html)
 * and the AmazonECS usage types seen in AWS bills and price lists (`USE1-Fargate-vCPU-Hours:perCPU`,
 * `USE1-Fargate-GB-Hours`, `USE1-Fargate-ARM-…`, `USE1-SpotUsage:Fargate-…`,
 * `USE1-Fargate-EphemeralStorage-GB-Hours`, `USE1-Fargate-Windows-…`).
 *
 * Checked as the real API does: AWS JSON 1.1 (`POST /`, `X-Amz-Target:
 * AWSPriceListService.GetProducts`), the SigV4 credential scope (this fake's key id, service
 * `pricing`; else 400 UnrecognizedClientException / InvalidSignatureException), `ServiceCode`
 * required, filters of Type TERM_MATCH on product attributes, MaxResults 1–100, paging by an
 * opaque NextToken bound to its query (else InvalidNextTokenException). Faults: ThrottlingException
 * for the next N requests.
 */
import type * as http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { LocalHttpServer, readBody } from '../helpers/net';

export const FARGATE_PRICING_KEY_ID = 'AKIDFARGATEPRICES001';

interface Product {
  sku: string;
  attributes: Record<string, string>;
  usd: string;
  unit: string;
}

const REGION_PREFIX: Record<string, string> = { 'us-east-1': 'USE1', 'eu-west-1': 'EU' };
const LOCATION: Record<string, string> = { 'us-east-1': 'US East (N. Virginia)', 'eu-west-1': 'EU (Ireland)' };

function products(): Product[] {
  const out: Product[] = [];
  const add = (region: string, usage: string, usd: string, family = 'Compute', unit = 'hours') =>
    out.push({
      sku: createHash('sha1').update(region + usage).digest('hex').slice(0, 16).toUpperCase(),
      attributes: { servicecode: 'AmazonECS', regionCode: region, location: LOCATION[region]!, productFamily: family, usagetype: `${REGION_PREFIX[region]}-${usage}`, operation: '' },
      usd,
      unit,
    });
  // us-east-1: made-up rates (not AWS's), distinct from the shipped catalogue.
  add('us-east-1', 'Fargate-vCPU-Hours:perCPU', '0.0500000000');
  add('us-east-1', 'Fargate-GB-Hours', '0.0050000000');
  add('us-east-1', 'Fargate-ARM-vCPU-Hours:perCPU', '0.0400000000');
  add('us-east-1', 'Fargate-ARM-GB-Hours', '0.0040000000');
  add('us-east-1', 'SpotUsage:Fargate-vCPU-Hours:perCPU', '0.0150000000');
  add('us-east-1', 'Fargate-EphemeralStorage-GB-Hours', '0.0001110000', 'Storage');
  add('us-east-1', 'Fargate-Windows-vCPU-Hours:perCPU', '0.0900000000');
  // eu-west-1: only x86 (an ARM rate missing on one dimension must not make an ARM entry).
  add('eu-west-1', 'Fargate-vCPU-Hours:perCPU', '0.0440000000');
  add('eu-west-1', 'Fargate-GB-Hours', '0.0048000000');
  add('eu-west-1', 'Fargate-ARM-vCPU-Hours:perCPU', '0.0350000000');
  return out;
}

function entry(p: Product): string {
  const term = `${p.sku}.JRTCKXETXF`;
  return JSON.stringify({
    product: { productFamily: p.attributes.productFamily, attributes: p.attributes, sku: p.sku },
    serviceCode: 'AmazonECS',
    terms: {
      OnDemand: {
        [term]: {
          priceDimensions: { [`${term}.6YS6EN2CT7`]: { unit: p.unit, endRange: 'Inf', description: `$${p.usd} per ${p.unit}`, appliesTo: [], rateCode: `${term}.6YS6EN2CT7`, beginRange: '0', pricePerUnit: { USD: p.usd } } },
          sku: p.sku,
          effectiveDate: '2026-11-01T00:00:00Z',
          offerTermCode: 'JRTCKXETXF',
          termAttributes: {},
        },
      },
    },
    version: '20261101000000',
    publicationDate: '2026-11-01T00:00:00Z',
  });
}

function err(status: number, type: string, message: string): { status: number; body: unknown } {
  return { status, body: { __type: type, message } };
}

export class FakeFargatePricingServer {
  readonly requests: Array<{ body: Record<string, unknown> }> = [];
  private throttle = 0;
  private readonly http = new LocalHttpServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(private readonly maxPageSize = 3) {}

  async start(): Promise<string> {
    this.url = await this.http.start();
    return this.url;
  }
  async stop(): Promise<void> {
    await this.http.stop();
  }
  throttleNext(n: number): void {
    this.throttle = n;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const a = this.answer(req, raw);
    res.writeHead(a.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
    res.end(JSON.stringify(a.body));
  }

  private answer(req: http.IncomingMessage, raw: string): { status: number; body: unknown } {
    if (req.method !== 'POST' || req.headers['x-amz-target'] !== 'AWSPriceListService.GetProducts') return err(400, 'UnknownOperationException', 'Unknown operation');
    const scope = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(String(req.headers.authorization ?? ''));
    if (!scope || scope[1] !== FARGATE_PRICING_KEY_ID) return err(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (scope[3] !== 'pricing') return err(400, 'InvalidSignatureException', `Credential should be scoped to correct service: 'pricing'.`);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return err(400, 'SerializationException', 'Malformed JSON');
    }
    this.requests.push({ body });
    if (this.throttle > 0) {
      this.throttle--;
      return err(400, 'ThrottlingException', 'Rate exceeded');
    }
    if (typeof body.ServiceCode !== 'string' || !body.ServiceCode) return err(400, 'InvalidParameterException', 'ServiceCode is required.');
    const filters = (body.Filters as Array<{ Type?: string; Field?: string; Value?: string }> | undefined) ?? [];
    if (filters.some((f) => f.Type !== 'TERM_MATCH' || !f.Field || typeof f.Value !== 'string')) return err(400, 'InvalidParameterException', 'Only TERM_MATCH filters with a Field and a Value are supported by this fake.');
    const max = body.MaxResults === undefined ? 100 : Number(body.MaxResults);
    if (!(max >= 1 && max <= 100)) return err(400, 'InvalidParameterException', 'MaxResults must be between 1 and 100.');
    const query = createHash('sha256').update(JSON.stringify([body.ServiceCode, filters])).digest('hex').slice(0, 12);
    let offset = 0;
    if (body.NextToken !== undefined) {
      const m = /^([0-9a-f]{12}):(\d+)$/.exec(Buffer.from(String(body.NextToken), 'base64').toString('utf8'));
      if (!m || m[1] !== query) return err(400, 'InvalidNextTokenException', 'The next token is invalid.');
      offset = Number(m[2]);
    }
    const matching = body.ServiceCode === 'AmazonECS' ? products().filter((p) => filters.every((f) => p.attributes[f.Field!] === f.Value)) : [];
    const size = Math.min(max, this.maxPageSize);
    const page = matching.slice(offset, offset + size);
    const next = offset + size < matching.length ? Buffer.from(`${query}:${offset + size}`).toString('base64') : undefined;
    return { status: 200, body: { FormatVersion: 'aws_v1', PriceList: page.map(entry), ...(next ? { NextToken: next } : {}) } };
  }
}
