/** The providers' JSON HTTP client, against a throwaway local server. */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JsonHttpClient, isAmbiguous, parseRetryAfter } from '../../src/backends/cloud/http';
import { CloudApiError } from '../../src/backends/cloud/provider';

const KEY = 'sk-secret-abc123';

describe('cloud JSON HTTP client', () => {
  let server: http.Server;
  let url: string;
  let script: ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
  let hits: number;
  const logs: string[] = [];

  beforeEach(async () => {
    script = [];
    hits = 0;
    logs.length = 0;
    server = http.createServer((req, res) => {
      hits++;
      const step = script.shift();
      if (step) step(req, res);
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const client = (o: Partial<ConstructorParameters<typeof JsonHttpClient>[0]> = {}) =>
    new JsonHttpClient({ provider: 'P', baseUrl: url, headers: { Authorization: `Bearer ${KEY}` }, timeoutMs: 200, retries: 2, backoffMs: 10, secrets: [KEY], log: (l) => logs.push(l), ...o });

  it('retries a GET that timed out', async () => {
    script.push(() => undefined); // hang
    const r = await client().get<{ ok: boolean }>('/x');
    assert.equal(r.body.ok, true);
    assert.equal(hits, 2);
  });

  it('does not retry a POST on 500 or timeout: the error is ambiguous', async () => {
    script.push((_q, s) => s.writeHead(500).end('{"error":"boom"}'));
    const e1 = await client().post('/launch', { body: {} }).catch((e: unknown) => e);
    assert.ok(e1 instanceof CloudApiError && isAmbiguous(e1) && e1.status === 500);
    assert.match(e1.remedy, /provider error, retried 0 times/);
    assert.equal(hits, 1);
    script.push(() => undefined);
    const e2 = await client().post('/launch', { body: {} }).catch((e: unknown) => e);
    assert.ok(e2 instanceof CloudApiError && isAmbiguous(e2) && e2.code === 'timeout');
    assert.equal(hits, 2);
  });

  it('retries a POST the caller marks safe, and a 429 on any method', async () => {
    script.push((_q, s) => s.writeHead(503).end());
    script.push((_q, s) => s.writeHead(429, { 'Retry-After': '0' }).end('slow down'));
    await client().post('/terminate', { body: {}, retrySafe: true });
    assert.equal(hits, 3);
  });

  it('gives up after N retries with "retried N times"', async () => {
    for (let i = 0; i < 3; i++) script.push((_q, s) => s.writeHead(502).end());
    const e = await client().get('/x').catch((x: unknown) => x);
    assert.ok(e instanceof CloudApiError && e.status === 502);
    assert.match(e.remedy, /retried 2 times/);
  });

  it('never shows the API key, even when the provider echoes it', async () => {
    script.push((_q, s) => s.writeHead(401).end(JSON.stringify({ error: `key ${KEY} is invalid` })));
    const e = await client().get('/x').catch((x: unknown) => x);
    assert.ok(e instanceof CloudApiError && e.status === 401);
    assert.ok(!e.oneLine().includes(KEY), e.oneLine());
    assert.match(e.remedy, /Tether: Set Cloud API Key/);
    assert.ok(logs.every((l) => !l.includes(KEY)));
  });

  it('reads Retry-After as seconds or a date', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(null), undefined);
    const d = parseRetryAfter(new Date(Date.now() + 5000).toUTCString())!;
    assert.ok(d > 3000 && d <= 5000);
  });
});
