/**
 * A PROTOCOL FAKE of the AWS Price List Query API (service `pricing`, operation GetProducts) for
 * tests: a node:http server on 127.0.0.1:0 that speaks the wire protocol the official
 * `@aws-sdk/client-pricing` sends, over a small hand-written product set. It is not AWS and not
 * an emulator of AWS's data: the products below imitate the shape of real price list entries
 * (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-files-for-services.html),
 * their prices are typed in by hand.
 *
 * What it checks and does, as the real API does
 * (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html):
 * - AWS JSON 1.1: `POST /`, `X-Amz-Target: AWSPriceListService.GetProducts`,
 *   `Content-Type: application/x-amz-json-1.1`, a JSON body `{ ServiceCode, Filters, FormatVersion,
 *   MaxResults, NextToken }`; answers `{ FormatVersion: 'aws_v1', PriceList: [<JSON strings>],
 *   NextToken? }`; errors are HTTP 400/500 with `{ "__type": <code>, "message": ... }`.
 * - Filters really filter: `TERM_MATCH` / `EQUALS` (exact attribute value) on `ServiceCode` and the
 *   product attributes; a product without the attribute does not match. Other filter types are
 *   refused with InvalidParameterException (this fake does not implement them).
 * - Paging: at most min(MaxResults, `maxPageSize`) products a page, then an opaque NextToken bound
 *   to the query (a token from another query → InvalidNextTokenException).
 * - Auth: the SigV4 `Authorization` header's `Credential=AKID/date/region/service/aws4_request`
 *   must carry this fake's access key id, else 400 UnrecognizedClientException ("The security token
 *   included in the request is invalid.", what AWS says for an unknown key); a scope naming another
 *   service than `pricing` → 400 InvalidSignatureException. The signature itself is NOT verified
 *   (the secret key is not checked).
 * - Injectable faults: ThrottlingException (400) and InternalErrorException (500), each for the
 *   next N requests.
 */
import type * as http from 'node:http';
import { LocalHttpServer, readBody } from '../helpers/net';
import { createHash, randomUUID } from 'node:crypto';

export const PRICING_TARGET = 'AWSPriceListService.GetProducts';
export const PRICING_FAKE_ACCESS_KEY_ID = 'AKIDPRICINGFAKE00001';
export const PRICING_FAKE_SECRET = 'pricing-fake-secret-not-checked';

/** One EC2 product of the fake's catalogue (turned into a real-shaped price list entry when served). */
export interface FakeEc2Product {
  sku: string;
  instanceType: string;
  regionCode: string;
  /** Display location AWS puts next to regionCode ("US East (N. Virginia)"). */
  location: string;
  instanceFamily: string;
  operatingSystem: string;
  tenancy: string;
  preInstalledSw: string;
  capacitystatus: string;
  licenseModel: string;
  /** pricePerUnit.USD as AWS writes it (a decimal string). */
  usd: string;
  /** Add a Reserved term too (a real entry carries both; the parser must ignore it). */
  withReservedTerm?: boolean;
}

const LOCATIONS: Record<string, string> = {
  'us-east-1': 'US East (N. Virginia)',
  'eu-west-1': 'EU (Ireland)',
};

function p(
  sku: string,
  instanceType: string,
  regionCode: string,
  usd: string,
  over: Partial<FakeEc2Product> = {},
): FakeEc2Product {
  return {
    sku,
    instanceType,
    regionCode,
    location: LOCATIONS[regionCode] ?? regionCode,
    instanceFamily: instanceType.startsWith('g') || instanceType.startsWith('p') ? 'GPU instance' : 'General purpose',
    operatingSystem: 'Linux',
    tenancy: 'Shared',
    preInstalledSw: 'NA',
    capacitystatus: 'Used',
    licenseModel: 'No License required',
    usd,
    ...over,
  };
}

/**
 * The default product set. Linux / shared / Used / no license / no pre-installed software:
 *   us-east-1: g4dn.xlarge 0.526, g5.xlarge 1.006, g6.xlarge 0.8048 (plus a second, dearer
 *              matching entry 0.9 — the lowest must win), p4d.24xlarge 21.96, t3.micro 0.0104
 *              (General purpose: only returned when asked for by type), g4dn.2xlarge "0.0000000000"
 *              (an artificial zero price that passes the filters: must be skipped)
 *   eu-west-1: g4dn.xlarge 0.587, g5.xlarge 1.123
 * and entries the filters must exclude (Windows, Dedicated tenancy, a zero-priced
 * AllocatedCapacityReservation, SQL Web pre-installed, RHEL with a licence).
 */
export function defaultFakeProducts(): FakeEc2Product[] {
  return [
    p('AAAA1111G4DNXL01', 'g4dn.xlarge', 'us-east-1', '0.5260000000', { withReservedTerm: true }),
    p('AAAA1111G5XL0001', 'g5.xlarge', 'us-east-1', '1.0060000000'),
    p('AAAA1111G6XL0001', 'g6.xlarge', 'us-east-1', '0.8048000000'),
    p('AAAA1111G6XL0002', 'g6.xlarge', 'us-east-1', '0.9000000000'),
    p('AAAA1111P4D24XL1', 'p4d.24xlarge', 'us-east-1', '21.9600000000'),
    p('AAAA1111T3MICRO1', 't3.micro', 'us-east-1', '0.0104000000'),
    p('AAAA1111G4DN2XL1', 'g4dn.2xlarge', 'us-east-1', '0.0000000000'),
    p('BBBB2222G4DNXL01', 'g4dn.xlarge', 'eu-west-1', '0.5870000000'),
    p('BBBB2222G5XL0001', 'g5.xlarge', 'eu-west-1', '1.1230000000'),
    // To be excluded by the filters:
    p('XXXX0001WINDOWS1', 'g4dn.xlarge', 'us-east-1', '0.7100000000', { operatingSystem: 'Windows', licenseModel: 'No License required' }),
    p('XXXX0002DEDICAT1', 'g4dn.xlarge', 'us-east-1', '0.5790000000', { tenancy: 'Dedicated' }),
    p('XXXX0003RESERVD1', 'g5.xlarge', 'us-east-1', '0.0000000000', { capacitystatus: 'AllocatedCapacityReservation' }),
    p('XXXX0004SQLWEB01', 'g5.xlarge', 'us-east-1', '1.1000000000', { preInstalledSw: 'SQL Web' }),
    p('XXXX0005RHEL0001', 'p4d.24xlarge', 'us-east-1', '22.1000000000', { operatingSystem: 'RHEL', licenseModel: 'Bring your own license' }),
  ];
}

const PUBLICATION = '2026-11-01T00:00:00Z';
const ON_DEMAND_TERM = 'JRTCKXETXF';
const HRS_RATE = '6YS6EN2CT7';

/** The product attributes of an entry, as AWS names them. */
export function productAttributes(x: FakeEc2Product): Record<string, string> {
  return {
    servicecode: 'AmazonEC2',
    servicename: 'Amazon Elastic Compute Cloud',
    location: x.location,
    locationType: 'AWS Region',
    regionCode: x.regionCode,
    instanceType: x.instanceType,
    instanceFamily: x.instanceFamily,
    currentGeneration: 'Yes',
    operatingSystem: x.operatingSystem,
    tenancy: x.tenancy,
    preInstalledSw: x.preInstalledSw,
    capacitystatus: x.capacitystatus,
    licenseModel: x.licenseModel,
    marketoption: 'OnDemand',
    operation: 'RunInstances',
    usagetype: `${x.regionCode === 'us-east-1' ? '' : 'EU-'}BoxUsage:${x.instanceType}`,
    vcpu: '4',
    memory: '16 GiB',
  };
}

/** The JSON of one price list entry, shaped like the real ones (aws_v1). */
export function priceListEntry(x: FakeEc2Product): string {
  const term = `${x.sku}.${ON_DEMAND_TERM}`;
  const entry = {
    product: {
      productFamily: 'Compute Instance',
      attributes: productAttributes(x),
      sku: x.sku,
    },
    serviceCode: 'AmazonEC2',
    terms: {
      OnDemand: {
        [term]: {
          priceDimensions: {
            [`${term}.${HRS_RATE}`]: {
              unit: 'Hrs',
              endRange: 'Inf',
              description: `$${Number(x.usd)} per On Demand ${x.operatingSystem} ${x.instanceType} Instance Hour`,
              appliesTo: [],
              rateCode: `${term}.${HRS_RATE}`,
              beginRange: '0',
              pricePerUnit: { USD: x.usd },
            },
          },
          sku: x.sku,
          effectiveDate: PUBLICATION,
          offerTermCode: ON_DEMAND_TERM,
          termAttributes: {},
        },
      },
      ...(x.withReservedTerm
        ? {
            Reserved: {
              [`${x.sku}.4NA7Y494T4`]: {
                priceDimensions: {
                  [`${x.sku}.4NA7Y494T4.6YS6EN2CT7`]: {
                    unit: 'Hrs',
                    endRange: 'Inf',
                    description: 'Linux/UNIX (Amazon VPC), reserved, 1yr no upfront',
                    appliesTo: [],
                    rateCode: `${x.sku}.4NA7Y494T4.6YS6EN2CT7`,
                    beginRange: '0',
                    pricePerUnit: { USD: '0.3300000000' },
                  },
                },
                sku: x.sku,
                effectiveDate: PUBLICATION,
                offerTermCode: '4NA7Y494T4',
                termAttributes: { LeaseContractLength: '1yr', OfferingClass: 'standard', PurchaseOption: 'No Upfront' },
              },
            },
          }
        : {}),
    },
    version: '20261101000000',
    publicationDate: PUBLICATION,
  };
  return JSON.stringify(entry);
}

export interface PricingRequestLog {
  target: string | undefined;
  accessKeyId: string | undefined;
  body: any;
  /** What was answered: HTTP status and, for errors, AWS's code. */
  status: number;
  errorCode?: string;
}

export type PricingFaultKind = 'throttle' | 'error-500';

export interface AwsPricingFakeOptions {
  accessKeyId?: string;
  products?: FakeEc2Product[];
  /** The largest page the fake gives, whatever MaxResults asks (the real cap is 100). */
  maxPageSize?: number;
}

interface Answer {
  status: number;
  body: unknown;
}

function awsError(status: number, code: string, message: string): Answer {
  return { status, body: { __type: code, message } };
}

export class AwsPricingFake {
  readonly accessKeyId: string;
  readonly secretAccessKey = PRICING_FAKE_SECRET;
  products: FakeEc2Product[];
  readonly maxPageSize: number;
  readonly requests: PricingRequestLog[] = [];
  private faults: { kind: PricingFaultKind; times: number }[] = [];
  private readonly http = new LocalHttpServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(o: AwsPricingFakeOptions = {}) {
    this.accessKeyId = o.accessKeyId ?? PRICING_FAKE_ACCESS_KEY_ID;
    this.products = o.products ?? defaultFakeProducts();
    this.maxPageSize = o.maxPageSize ?? 100;
  }

  /** Credentials the fake accepts. */
  get credentials(): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey };
  }

  /** The next `times` GetProducts requests (after auth) fail with `kind`. */
  inject(kind: PricingFaultKind, times = 1): void {
    this.faults.push({ kind, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  async start(): Promise<string> {
    this.url = await this.http.start();
    return this.url;
  }

  async stop(): Promise<void> {
    await this.http.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const target = header(req, 'x-amz-target');
    const cred = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(header(req, 'authorization') ?? '');
    let body: any;
    const answer = ((): Answer => {
      if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') return awsError(404, 'UnknownOperationException', 'Only POST / is served.');
      if (!(header(req, 'content-type') ?? '').startsWith('application/x-amz-json-1.1')) {
        return awsError(400, 'SerializationException', 'Expected Content-Type application/x-amz-json-1.1.');
      }
      if (!cred) return awsError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      if (cred[1] !== this.accessKeyId) return awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
      if (cred[3] !== 'pricing') return awsError(400, 'InvalidSignatureException', `Credential should be scoped to correct service: 'pricing'.`);
      if (target !== PRICING_TARGET) return awsError(400, 'UnknownOperationException', `Unknown operation ${target ?? '(no X-Amz-Target)'}.`);
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return awsError(400, 'SerializationException', 'The request body is not JSON.');
      }
      const fault = this.faults[0];
      if (fault) {
        if (--fault.times <= 0) this.faults.shift();
        if (fault.kind === 'throttle') return awsError(400, 'ThrottlingException', 'Rate exceeded');
        return awsError(500, 'InternalErrorException', 'An internal error occurred (injected by the fake).');
      }
      return this.getProducts(body);
    })();
    const errorCode = (answer.body as { __type?: string }).__type;
    this.requests.push({ target, accessKeyId: cred?.[1], body, status: answer.status, ...(errorCode ? { errorCode } : {}) });
    res.writeHead(answer.status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'x-amzn-RequestId': randomUUID(),
      ...(errorCode ? { 'x-amzn-ErrorType': errorCode } : {}),
    });
    res.end(JSON.stringify(answer.body));
  }

  private getProducts(body: any): Answer {
    if (typeof body.ServiceCode !== 'string' || !body.ServiceCode) return awsError(400, 'InvalidParameterException', 'ServiceCode is required.');
    if (body.FormatVersion !== undefined && body.FormatVersion !== 'aws_v1') return awsError(400, 'InvalidParameterException', `Unsupported FormatVersion ${body.FormatVersion}.`);
    const filters: { Type?: string; Field?: string; Value?: string }[] = body.Filters ?? [];
    for (const f of filters) {
      if (f.Type !== 'TERM_MATCH' && f.Type !== 'EQUALS') return awsError(400, 'InvalidParameterException', `Filter type ${f.Type} is not implemented by this fake.`);
      if (!f.Field || typeof f.Value !== 'string') return awsError(400, 'InvalidParameterException', 'A filter needs Field and Value.');
    }
    const max = body.MaxResults === undefined ? 100 : Number(body.MaxResults);
    if (!Number.isInteger(max) || max < 1 || max > 100) return awsError(400, 'InvalidParameterException', 'MaxResults must be 1..100.');
    const pageSize = Math.min(max, this.maxPageSize);
    const queryKey = createHash('sha256').update(JSON.stringify([body.ServiceCode, filters])).digest('hex').slice(0, 16);
    let start = 0;
    if (body.NextToken !== undefined) {
      const m = /^([0-9a-f]{16}):(\d+)$/.exec(Buffer.from(String(body.NextToken), 'base64').toString('utf8'));
      if (!m || m[1] !== queryKey) return awsError(400, 'InvalidNextTokenException', 'The pagination token is invalid.');
      start = Number(m[2]);
    }
    const matching = body.ServiceCode === 'AmazonEC2' ? this.products.filter((x) => filters.every((f) => matches(x, f.Field!, f.Value!))) : [];
    const page = matching.slice(start, start + pageSize);
    const next = start + pageSize < matching.length ? Buffer.from(`${queryKey}:${start + pageSize}`).toString('base64') : undefined;
    return { status: 200, body: { FormatVersion: 'aws_v1', PriceList: page.map(priceListEntry), ...(next ? { NextToken: next } : {}) } };
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A filter against a product: ServiceCode or one of the attributes the entry carries, exact value. */
function matches(x: FakeEc2Product, field: string, value: string): boolean {
  if (field === 'ServiceCode') return value === 'AmazonEC2';
  const attrs = productAttributes(x);
  return Object.prototype.hasOwnProperty.call(attrs, field) && attrs[field] === value;
}
