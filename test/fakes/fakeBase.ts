/**
 * Shared machinery of the fake provider servers (the real APIs cannot be called from tests):
 * a node:http server on 127.0.0.1:0, an auth check, a request log, injectable faults
 * (429 with Retry-After, 500, hangs, and "create, then fail or hang"), and time-driven state.
 */
import type * as http from 'node:http';
import { LocalHttpServer, readBody } from '../helpers/net';

export type FaultKind =
  /** 429 (with Retry-After when `retryAfterSec` is set). The AWS fake: 503 RequestLimitExceeded, no Retry-After. */
  | 'rate-limit'
  /** 500 before doing anything. */
  | 'error-500'
  /** Never answer (the client must time out). */
  | 'hang'
  /** Carry the request out, then never answer. */
  | 'create-then-hang'
  /** Carry the request out, then answer 500 (or the provider's failure body). */
  | 'create-then-fail';

export interface Fault {
  method?: string;
  /** Matched against the path (without query). */
  path?: RegExp;
  kind: FaultKind;
  /** How many requests it hits. Default 1. */
  times?: number;
  retryAfterSec?: number;
}

export interface Answer {
  status: number;
  body?: unknown;
  /** Plain text instead of JSON. */
  text?: string;
  headers?: Record<string, string>;
}

export interface FakeOptions {
  apiKey?: string;
  /** booting → active after this long, ms. */
  bootMs?: number;
  /** terminating → terminated (and stopping → stopped) after this long, ms. */
  terminateMs?: number;
  /** A terminated instance disappears from the list after this long, ms. */
  goneMs?: number;
  /** Reads (GET: list, describe) see a new instance only this long after its create, ms (eventual consistency). Default 0. */
  readLagMs?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
  /** The query string ("?a=1"), when there was one. */
  search?: string;
}

/** What {@link FakeProviderServer.gate} sees of a request. */
export interface GateRequest {
  method: string;
  path: string;
  url: URL;
  authorization: string | undefined;
  body: unknown;
}

/**
 * What the cloud contract suite (test/integration/cloud-rest.test.ts) uses of a provider's
 * protocol fake: the node:http fakes below and the AWS EC2 fake (moto behind a fault proxy,
 * test/fakes/awsEc2Fake.ts) both satisfy it.
 */
export interface ProviderFake {
  /** The credential the fake accepts (an API key; for AWS the access key id). */
  readonly apiKey: string;
  /** Base URL, set by start(). */
  readonly url: string;
  readonly requests: LoggedRequest[];
  /** Called when a create request arrives, before anything is created. */
  onCreate: (() => void) | undefined;
  /** Errors thrown by onCreate. */
  readonly hookErrors: unknown[];
  start(): Promise<string>;
  stop(): Promise<void>;
  inject(f: Fault): void;
  clearFaults(): void;
  /** Creates counted so far (for "no double launch"). */
  instanceCount(): number;
  /** Adds an instance launched outside Tether (or by Tether with a given name); returns its id. */
  addForeign(name: string): string | Promise<string>;
}

/** Takes (and uses up) the first injected fault matching the request, if any. */
export function takeFault(faults: Fault[], method: string, path: string): Fault | undefined {
  const i = faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || f.path.test(path)));
  if (i < 0) return undefined;
  const f = faults[i]!;
  f.times = (f.times ?? 1) - 1;
  if (f.times <= 0) faults.splice(i, 1);
  return f;
}

export abstract class FakeProviderServer implements ProviderFake {
  readonly apiKey: string;
  readonly bootMs: number;
  readonly terminateMs: number;
  readonly goneMs: number;
  readonly readLagMs: number;
  /** True while a GET is being answered (see `readLagMs`). */
  reading = false;
  readonly requests: LoggedRequest[] = [];
  private faults: Fault[] = [];
  private readonly http = new LocalHttpServer((req, res) => void this.handle(req, res));
  private seq = 0;
  /** Called when a create request arrives, before anything is created (tests inspect the ledger here). */
  onCreate: (() => void) | undefined;
  /** Errors thrown by onCreate (a test's assertion that failed inside the server). */
  readonly hookErrors: unknown[] = [];
  url = '';

  constructor(o: FakeOptions = {}) {
    this.apiKey = o.apiKey ?? 'test-key-0123456789';
    this.bootMs = o.bootMs ?? 150;
    this.terminateMs = o.terminateMs ?? 150;
    this.goneMs = o.goneMs ?? 400;
    this.readLagMs = o.readLagMs ?? 0;
  }

  inject(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  clearFaults(): void {
    this.faults = [];
  }

  protected nextId(): number {
    return ++this.seq;
  }

  /** Creates counted so far (for "no double launch"). */
  abstract instanceCount(): number;
  /** Adds an instance launched outside Tether (or by Tether with a given name). */
  abstract addForeign(name: string): string;

  protected abstract authorized(authorization: string | undefined, url: URL): boolean;
  protected abstract authError(): Answer;
  protected abstract rateLimited(retryAfterSec?: number): Answer;
  protected abstract serverError(): Answer;
  /** The failure a provider gives after a create that did happen. */
  protected createFailed(): Answer {
    return this.serverError();
  }
  protected abstract isCreate(method: string, path: string): boolean;
  /** The answer to a body that is not JSON. */
  protected invalidJson(): Answer {
    return { status: 400, body: { error: 'invalid JSON' } };
  }
  /**
   * Runs before the auth check and the injected faults: an answer here ends the request (a
   * provider's rate limit, or an auth answer that differs by endpoint). Default: none.
   */
  protected gate(_r: GateRequest): Answer | undefined {
    return undefined;
  }
  protected abstract route(method: string, path: string, url: URL, body: unknown): Answer;

  async start(): Promise<string> {
    this.url = await this.http.start();
    return this.url;
  }

  async stop(): Promise<void> {
    await this.http.stop();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return this.send(res, this.invalidJson());
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    this.requests.push({ method, path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body, ...(url.search ? { search: url.search } : {}) });
    const gated = this.gate({ method, path, url, authorization: req.headers.authorization, body });
    if (gated) return this.send(res, gated);

    if (!this.authorized(req.headers.authorization, url)) return this.send(res, this.authError());
    const fault = takeFault(this.faults, method, path);
    if (fault?.kind === 'hang') return; // never answer
    if (fault?.kind === 'rate-limit') return this.send(res, this.rateLimited(fault.retryAfterSec));
    if (fault?.kind === 'error-500') return this.send(res, this.serverError());
    if (this.isCreate(method, path) && this.onCreate) {
      try {
        this.onCreate();
      } catch (err) {
        this.hookErrors.push(err);
      }
    }
    let answer: Answer;
    try {
      this.reading = method === 'GET';
      answer = this.route(method, path, url, body);
    } catch (err) {
      answer = { status: 500, body: { error: String(err) } };
    } finally {
      this.reading = false;
    }
    if (fault?.kind === 'create-then-hang') return;
    if (fault?.kind === 'create-then-fail') return this.send(res, this.createFailed());
    this.send(res, answer);
  }

  private send(res: http.ServerResponse, a: Answer): void {
    const text = a.text ?? (a.body === undefined ? '' : JSON.stringify(a.body));
    res.writeHead(a.status, { 'Content-Type': a.text !== undefined ? 'text/plain' : 'application/json', ...(a.headers ?? {}) });
    res.end(text);
  }
}

/** Time-driven life of a fake instance. */
export interface Life {
  createdAt: number;
  /** When a stop was asked (undefined: never stopped, or started again since). */
  stoppedAt?: number;
  terminatedAt?: number;
}

export type Phase = 'booting' | 'active' | 'stopping' | 'stopped' | 'terminating' | 'terminated' | 'gone';

/**
 * Where an instance is in its life: booting → active (after `bootMs`); after a stop,
 * stopping → stopped (after `terminateMs`; stopped stays until started or terminated); after a
 * terminate, terminating → terminated (after `terminateMs`) → gone (after `goneMs` more).
 * A terminate wins over a stop.
 */
export function phaseOf(l: Life, s: FakeProviderServer, now = Date.now()): Phase {
  if (s.reading && now - l.createdAt < s.readLagMs) return 'gone'; // not visible to reads yet
  if (l.terminatedAt !== undefined) {
    const t = now - l.terminatedAt;
    if (t < s.terminateMs) return 'terminating';
    if (t < s.terminateMs + s.goneMs) return 'terminated';
    return 'gone';
  }
  if (l.stoppedAt !== undefined) return now - l.stoppedAt < s.terminateMs ? 'stopping' : 'stopped';
  return now - l.createdAt < s.bootMs ? 'booting' : 'active';
}
