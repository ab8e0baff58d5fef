/**
 * A small JSON HTTP client shared by the REST providers (Lambda Cloud, RunPod, Vast.ai).
 *
 * - Base URL + auth header; the API key never appears in an error message or a log line.
 * - Per-request timeout (AbortSignal.timeout).
 * - Pacing: optional per-method minimum gaps between two requests to the same provider account
 *   (same provider, URL origin and key: clients share the pacing state), e.g. Vast.ai's
 *   documented minimum intervals. Time is injectable ({@link Clock}) so tests assert the waits.
 * - Retries with exponential backoff (and jitter):
 *   - 429 on any method (the provider refused the request, nothing was done); Retry-After
 *     seconds are honoured; without Retry-After the retry never comes sooner than the method's
 *     minimum gap;
 *   - 5xx and network errors / timeouts only on idempotent requests: GET, PUT-less DELETE, and a
 *     POST/PUT only when the caller passes `retrySafe: true`. A non-idempotent request that
 *     times out or gets a 5xx is *ambiguous* (it may have been carried out): it is thrown at
 *     once, with {@link isAmbiguous} true, so the provider can look before it retries.
 * - Error answers become {@link CloudApiError} with the provider's message and a remedy.
 */
import { createHash } from 'node:crypto';
import { CloudApiError, isAmbiguous, markAmbiguous } from './provider';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Minimum gap between two requests with the same method to the same provider account, ms. */
export type MinGaps = Partial<Record<HttpMethod, number>>;

/** Time as the client sees it (tests inject one that records the waits instead of sleeping). */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** What a provider's error body says, parsed by the provider. */
export interface ParsedError {
  message?: string;
  code?: string;
  suggestion?: string;
}

export interface HttpClientOptions {
  /** Display name used in errors ("Lambda Cloud"). */
  provider: string;
  baseUrl: string;
  /** Auth and other headers sent with every request. */
  headers: Record<string, string>;
  /** Per-request timeout, ms. Default 30 000. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First backoff delay, ms (doubles each retry, capped at 30 s). Default 500. */
  backoffMs?: number;
  /** Cap on a Retry-After wait, ms. Default 60 000. */
  maxRetryAfterMs?: number;
  log?: (line: string) => void;
  /** Reads the provider's error body. */
  parseError?: (body: unknown, text: string) => ParsedError;
  /** Strings that must never be shown (the API key); scrubbed from every message. */
  secrets?: string[];
  /** Per-method minimum gaps between requests (the provider's documented rate limits). Default: none. */
  minGapMs?: MinGaps;
  /** Default: the real clock. */
  clock?: Clock;
  /** The transport (default: the global fetch); Azure passes one over node:https that takes a CA. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** The caller vouches that repeating this POST/PUT cannot do anything twice. */
  retrySafe?: boolean;
  timeoutMs?: number;
}

export interface HttpAnswer<T> {
  status: number;
  body: T;
  /** The answer's headers (ARM's Azure-AsyncOperation, Location, Retry-After). */
  headers?: Headers;
}

export { isAmbiguous };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The real clock. */
export const REAL_CLOCK: Clock = { now: () => Date.now(), sleep };

/**
 * When each method may next be sent, per provider account (provider, URL origin and a hash of the
 * key): every client of the same account shares it, so two clients cannot together go faster
 * than the provider allows.
 */
const pacing = new Map<string, Map<HttpMethod, number>>();

export const API_KEY_REMEDY = 'check the API key (Tether: Set Cloud API Key…)';

/** The remedy for an HTTP status. */
export function remedyFor(status: number | undefined, attempts: number, suggestion?: string): string {
  const extra = suggestion ? ` (provider says: ${suggestion})` : '';
  if (status === 401 || status === 403) return `${API_KEY_REMEDY}${extra}`;
  if (status === 404) return `the resource does not exist (any more) at the provider; refresh the list${extra}`;
  if (status === 409) return `the request conflicts with the resource's current state; refresh and try again${extra}`;
  if (status === 410) return `the provider has retired this API endpoint or the resource is no longer available (HTTP 410 Gone): update Tether, and check that an API URL setting does not point at an outdated proxy${extra}`;
  if (status === 429) return `rate limited: wait a little and try again${extra}`;
  if (status !== undefined && status >= 500) return `provider error, retried ${attempts - 1} times; try again later or check the provider's status page${extra}`;
  if (status === undefined) return `the provider did not answer (retried ${attempts - 1} times); check the network, a proxy, or the API URL setting${extra}`;
  return suggestion ? `provider says: ${suggestion}` : 'check the request (instance type, region, SSH key name) and try again';
}

/** How a REST provider's client is configured (Lambda Cloud, RunPod, Vast.ai). */
export interface RestProviderOptions {
  apiKey: string;
  /** API base URL (tests point it at a local fake). */
  baseUrl?: string;
  timeoutMs?: number;
  retries?: number;
  /** First retry delay, ms. */
  backoffMs?: number;
  log?: (line: string) => void;
  /** Per-method minimum gaps between requests, ms (default: the provider's documented limits; tests scale them down). */
  minGapMs?: MinGaps;
  /** Default: the real clock (tests inject one). */
  clock?: Clock;
}

/**
 * A client for a provider that authenticates with `Authorization: Bearer KEY`; the key is scrubbed
 * from every message. `defaultMinGapMs`: the provider's documented minimum gaps, used unless the
 * options override them.
 */
export function bearerClient(provider: string, o: RestProviderOptions, baseUrl: string, parseError: HttpClientOptions['parseError'], defaultMinGapMs?: MinGaps): JsonHttpClient {
  const minGapMs = o.minGapMs ?? defaultMinGapMs;
  return new JsonHttpClient({
    provider,
    baseUrl,
    headers: { Authorization: `Bearer ${o.apiKey}` },
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.retries !== undefined ? { retries: o.retries } : {}),
    ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(parseError ? { parseError } : {}),
    secrets: [o.apiKey],
    ...(minGapMs ? { minGapMs } : {}),
    ...(o.clock ? { clock: o.clock } : {}),
  });
}

export class JsonHttpClient {
  readonly provider: string;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  /** Retries after the first attempt (callers that retry whole operations use the same count). */
  readonly retries: number;
  /** First backoff delay, ms. */
  readonly backoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly clock: Clock;
  private readonly paceKey: string;

  constructor(private readonly opts: HttpClientOptions) {
    this.provider = opts.provider;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = Math.max(0, opts.retries ?? 3);
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.clock = opts.clock ?? REAL_CLOCK;
    let origin = this.baseUrl;
    try {
      origin = new URL(this.baseUrl).origin;
    } catch {
      /* an invalid URL fails at the first request */
    }
    const who = createHash('sha256').update((opts.secrets ?? []).join('\0')).digest('hex').slice(0, 16);
    this.paceKey = `${opts.provider}\0${origin}\0${who}`;
  }

  /** The minimum gap between two requests of this method, ms (0: none). */
  minGapFor(method: HttpMethod): number {
    return Math.max(0, this.opts.minGapMs?.[method] ?? 0);
  }

  /**
   * Waits until this method may be sent again (its minimum gap after the previous request of the
   * same method to the same account) and books the slot, so concurrent callers queue up.
   */
  private async pace(method: HttpMethod, what: string): Promise<void> {
    const gap = this.minGapFor(method);
    if (gap <= 0) return;
    let slots = pacing.get(this.paceKey);
    if (!slots) pacing.set(this.paceKey, (slots = new Map()));
    const now = this.clock.now();
    const at = Math.max(now, slots.get(method) ?? -Infinity);
    slots.set(method, at + gap);
    if (at > now) {
      this.log(`${this.provider}: ${what}: pacing ${at - now} ms (minimum gap ${gap} ms between ${method} requests)`);
      await this.clock.sleep(at - now);
    }
  }

  get<T>(path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    return this.request<T>('GET', path, o);
  }
  post<T>(path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    return this.request<T>('POST', path, o);
  }
  put<T>(path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    return this.request<T>('PUT', path, o);
  }
  delete<T>(path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    return this.request<T>('DELETE', path, o);
  }

  /** Removes every secret from a text. */
  scrub(text: string): string {
    let out = text;
    for (const s of this.opts.secrets ?? []) if (s) out = out.split(s).join('***');
    return out;
  }

  private log(line: string): void {
    this.opts.log?.(this.scrub(line));
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(path === '' ? this.baseUrl : this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  async request<T>(method: HttpMethod, path: string, o: RequestOptions = {}): Promise<HttpAnswer<T>> {
    const idempotent = method === 'GET' || method === 'DELETE' || o.retrySafe === true;
    const url = this.url(path, o.query);
    const what = `${method} ${path}`;
    let attempt = 0;
    for (;;) {
      attempt += 1;
      await this.pace(method, what);
      let res: Response;
      let text: string;
      try {
        res = await (this.opts.fetch ?? fetch)(url, {
          method,
          headers: { Accept: 'application/json', ...(o.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...this.opts.headers },
          ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
          signal: AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        const timedOut = (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError';
        const reason = timedOut ? `no answer within ${o.timeoutMs ?? this.timeoutMs} ms` : `network error (${this.scrub(String((err as Error)?.cause ?? (err as Error)?.message ?? err))})`;
        if (idempotent && attempt <= this.retries) {
          const delay = this.backoff(attempt);
          this.log(`${this.provider}: ${what}: ${reason}; retry ${attempt}/${this.retries} in ${delay} ms`);
          await this.clock.sleep(delay);
          continue;
        }
        const e = new CloudApiError(this.provider, `${what}: ${reason}`, {
          remedy: idempotent ? remedyFor(undefined, attempt) : 'the outcome is unknown: Tether checks by its marker before trying again',
          code: timedOut ? 'timeout' : 'network',
          cause: err,
        });
        throw idempotent ? e : markAmbiguous(e);
      }

      let body: unknown = undefined;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
      }
      if (res.ok) return { status: res.status, body: body as T, headers: res.headers };

      const status = res.status;
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      const retryable = status === 429 || (status >= 500 && idempotent);
      if (retryable && attempt <= this.retries) {
        // A 429 without Retry-After is never retried sooner than the method's minimum gap.
        const delay =
          status === 429 && retryAfterMs !== undefined
            ? Math.min(retryAfterMs, this.maxRetryAfterMs)
            : status === 429
              ? Math.max(this.backoff(attempt), this.minGapFor(method))
              : this.backoff(attempt);
        this.log(`${this.provider}: ${what}: HTTP ${status}; retry ${attempt}/${this.retries} in ${delay} ms`);
        await this.clock.sleep(delay);
        continue;
      }
      const parsed = this.parse(body, text);
      const message = this.scrub(`${what}: HTTP ${status}${parsed.message ? `: ${parsed.message}` : ''}`);
      const e = new CloudApiError(this.provider, message, {
        remedy: this.scrub(remedyFor(status, attempt, parsed.suggestion)),
        status,
        ...(parsed.code ? { code: parsed.code } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
      throw status >= 500 && !idempotent ? markAmbiguous(e) : e;
    }
  }

  private parse(body: unknown, text: string): ParsedError {
    try {
      const p = this.opts.parseError?.(body, text) ?? {};
      if (p.message || p.code) return p;
    } catch {
      /* fall through */
    }
    const b = body as Record<string, unknown> | undefined;
    const msg = typeof b?.message === 'string' ? b.message : typeof b?.error === 'string' ? b.error : text.trim().slice(0, 300);
    return msg ? { message: msg } : {};
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.backoffMs * 2 ** (attempt - 1), 30_000);
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }
}

/** Retry-After: seconds, or an HTTP date. */
export function parseRetryAfter(v: string | null): number | undefined {
  if (v === null || v.trim() === '') return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.round(s * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
