/**
 * The AWS EC2 protocol fake for the cloud contract suite: moto (an AWS emulator speaking the
 * real EC2 Query API, test/helpers/moto.ts) behind a small fault-injecting HTTP proxy on
 * 127.0.0.1:0. It offers what the suite uses of the REST fakes ({@link ProviderFake}).
 *
 * The proxy:
 * - reads the form-encoded EC2 Query body (`Action=RunInstances&...`) and logs each request as
 *   `{ method, path: '/' + Action, body: params }`;
 * - checks the SigV4 `Authorization` header's `Credential=AKID/...`: the access key id must be
 *   `apiKey`, else EC2's `AuthFailure` (HTTP 401). moto itself accepts any key unless its IAM
 *   emulation is on, which would need IAM users set up;
 * - injects EC2-shaped faults: `rate-limit` → 503 `RequestLimitExceeded` (EC2 sends no
 *   Retry-After; `retryAfterSec` is ignored), `error-500` → 500 `InternalError`, `hang` → no
 *   answer, `create-then-hang` / `create-then-fail` → forwarded to moto, then no answer / 500;
 * - implements what moto does not: RunInstances idempotency by `ClientToken`. Real EC2 answers
 *   a repeated token with the original launch's answer and launches nothing
 *   (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html), and refuses the
 *   token with other parameters (`IdempotentParameterMismatch`);
 * - forwards everything else to moto unchanged (moto does not check signatures) and returns
 *   moto's answer.
 *
 * One moto process serves every AWS test (started on the first start(), reset by each start());
 * the suite must call {@link AwsEc2MotoFake.stopMoto} in an `after()`: moto runs detached.
 * When moto_server is absent, {@link AwsEc2MotoFake.unavailable} says where it was looked for.
 */
import * as http from 'node:http';
import { LocalHttpServer, readBody } from '../helpers/net';
import { randomUUID } from 'node:crypto';
import { DescribeInstancesCommand, DescribeInstanceTypesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { findMotoServer, startMoto, type MotoServer } from '../helpers/moto';
import { takeFault, type Fault, type LoggedRequest, type ProviderFake } from './fakeBase';

/** An Ubuntu AMI in moto's built-in image list (moto runs with AMI validation on). */
export const MOTO_AMI = 'ami-1e749f67';

let shared: Promise<MotoServer> | undefined;

function sharedMoto(): Promise<MotoServer> {
  if (!shared) {
    const found = findMotoServer();
    if (!found.bin) return Promise.reject(new Error(missingMessage(found.searched)));
    const starting = startMoto(found.bin).then(warmUp);
    shared = starting;
    starting.catch(() => {
      if (shared === starting) shared = undefined;
    });
  }
  return shared;
}

/**
 * moto builds its EC2 backend on the first EC2 call (about a second); after a reset it takes
 * ~40 ms. Done once here so that no test's first call (a 300 ms client timeout in the
 * ambiguous-create tests) pays for it. Stops moto when the warm-up fails.
 */
async function warmUp(m: MotoServer): Promise<MotoServer> {
  const c = new EC2Client({ region: 'us-east-1', endpoint: m.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  try {
    await c.send(new DescribeInstancesCommand({}));
    await c.send(new DescribeInstanceTypesCommand({ MaxResults: 5 }));
    return m;
  } catch (err) {
    await m.stop();
    throw new Error(`moto (${m.bin}) did not answer its first EC2 calls: ${String(err)}\n${m.log()}`);
  } finally {
    c.destroy();
  }
}

function missingMessage(searched: string[]): string {
  return `moto_server (moto 5.x, the AWS emulator in the machine image's pyenv Python) was not found; looked at:\n  ${searched.join('\n  ')}`;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** EC2's error document (Query API): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html */
function ec2Error(status: number, code: string, message: string): Reply {
  return {
    status,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
  };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'upgrade']);

export class AwsEc2MotoFake implements ProviderFake {
  readonly apiKey: string;
  readonly requests: LoggedRequest[] = [];
  readonly hookErrors: unknown[] = [];
  onCreate: (() => void) | undefined;
  url = '';
  private faults: Fault[] = [];
  private readonly http = new LocalHttpServer((req, res) => void this.handle(req, res));
  private moto: MotoServer | undefined;
  private direct: EC2Client | undefined;
  /** Instance ids launched so far (RunInstances answers and addForeign). */
  private readonly created = new Set<string>();
  /** ClientToken → the launch's parameters and moto's answer. */
  private readonly tokens = new Map<string, { fingerprint: string; reply: Reply }>();

  constructor(o: { apiKey?: string } = {}) {
    this.apiKey = o.apiKey ?? 'AKIATETHERTEST000001';
  }

  /** Why the AWS fake cannot run here (moto_server missing, naming where it was looked for), or undefined. */
  static unavailable(): string | undefined {
    const found = findMotoServer();
    return found.bin ? undefined : missingMessage(found.searched);
  }

  /** Stops the shared moto process (call in an `after()`; it runs detached and would outlive mocha). */
  static async stopMoto(): Promise<void> {
    const m = shared;
    shared = undefined;
    if (!m) return;
    await (await m.catch(() => undefined))?.stop();
  }

  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  instanceCount(): number {
    return this.created.size;
  }

  /** Launches an instance straight into moto (not through the proxy, not logged) with only a `Name` tag. */
  async addForeign(name: string): Promise<string> {
    if (!this.moto) throw new Error('AwsEc2MotoFake: start() first');
    this.direct ??= new EC2Client({
      region: 'us-east-1',
      endpoint: this.moto.endpoint,
      credentials: { accessKeyId: this.apiKey, secretAccessKey: 'testing' },
    });
    const res = await this.direct.send(
      new RunInstancesCommand({
        ImageId: MOTO_AMI,
        InstanceType: 'g4dn.xlarge',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: name }] }],
      }),
    );
    const id = res.Instances?.[0]?.InstanceId;
    if (!id) throw new Error('moto: RunInstances answered without an instance');
    this.created.add(id);
    return id;
  }

  async start(): Promise<string> {
    this.moto = await sharedMoto();
    await this.moto.reset();
    this.url = await this.http.start();
    return this.url;
  }

  /** Stops the proxy (moto keeps running for the next test; see stopMoto). */
  async stop(): Promise<void> {
    this.direct?.destroy();
    this.direct = undefined;
    await this.http.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const params = new URLSearchParams(raw.toString('utf8'));
    const action = params.get('Action') ?? '';
    const method = req.method ?? 'POST';
    const path = `/${action}`;
    const authorization = req.headers.authorization;
    this.requests.push({ method, path, ...(authorization ? { authorization } : {}), body: Object.fromEntries(params) });

    // SigV4: `AWS4-HMAC-SHA256 Credential=AKID/date/region/ec2/aws4_request, SignedHeaders=..., Signature=...`
    const keyId = /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
    if (keyId !== this.apiKey) return this.send(res, ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials'));

    const fault = takeFault(this.faults, method, path);
    if (fault?.kind === 'hang') return; // never answer
    if (fault?.kind === 'rate-limit') return this.send(res, ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.'));
    if (fault?.kind === 'error-500') return this.send(res, internalError());

    let reply: Reply;
    if (action === 'RunInstances') {
      if (this.onCreate) {
        try {
          this.onCreate();
        } catch (err) {
          this.hookErrors.push(err);
        }
      }
      reply = await this.runInstances(req, raw, params);
    } else {
      reply = await this.forward(req, raw);
    }
    if (fault?.kind === 'create-then-hang') return;
    if (fault?.kind === 'create-then-fail') return this.send(res, internalError());
    this.send(res, reply);
  }

  /** RunInstances with EC2's ClientToken idempotency (moto ignores the token). */
  private async runInstances(req: http.IncomingMessage, raw: Buffer, params: URLSearchParams): Promise<Reply> {
    const token = params.get('ClientToken');
    const fingerprint = JSON.stringify([...params.entries()].filter(([k]) => k !== 'ClientToken').sort(([a], [b]) => a.localeCompare(b)));
    const seen = token ? this.tokens.get(token) : undefined;
    if (seen) {
      if (seen.fingerprint !== fingerprint) {
        return ec2Error(400, 'IdempotentParameterMismatch', `Arguments on this idempotent request are inconsistent with arguments used in previous request(s) with the same client token (${token}).`);
      }
      return seen.reply;
    }
    const reply = await this.forward(req, raw);
    if (reply.status === 200) {
      for (const m of reply.body.toString().matchAll(/<instanceId>([^<]+)<\/instanceId>/g)) this.created.add(m[1]!);
      if (token) this.tokens.set(token, { fingerprint, reply });
    }
    return reply;
  }

  private forward(req: http.IncomingMessage, raw: Buffer): Promise<Reply> {
    const target = new URL(req.url ?? '/', this.moto!.endpoint);
    return new Promise<Reply>((resolve) => {
      const out = http.request(target, { method: req.method, headers: req.headers }, (mres) => {
        const chunks: Buffer[] = [];
        mres.on('data', (c: Buffer) => chunks.push(c));
        mres.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(mres.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: mres.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
        });
        mres.on('error', (e) => resolve(ec2Error(500, 'InternalError', `proxy: moto's answer broke off: ${e.message}`)));
      });
      out.on('error', (e) => resolve(ec2Error(500, 'InternalError', `proxy: moto unreachable: ${e.message}`)));
      out.end(raw);
    });
  }

  private send(res: http.ServerResponse, r: Reply): void {
    if (res.destroyed) return;
    res.writeHead(r.status, { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) });
    res.end(r.body);
  }
}

function internalError(): Reply {
  return ec2Error(500, 'InternalError', 'An internal error has occurred.');
}
