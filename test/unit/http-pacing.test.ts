/**
 * Pacing in the providers' shared JSON HTTP client (src/backends/cloud/http.ts): per-method minimum
 * gaps between requests to the same account, and a 429 without Retry-After never retried sooner
 * than the gap. Time is a virtual clock: the waits are asserted, never slept.
 */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JsonHttpClient, type Clock } from '../../src/backends/cloud/http';

function virtualClock(): Clock & { sleeps: number[] } {
  let t = 5_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
  };
}

describe('cloud JSON HTTP client: pacing', () => {
  let server: http.Server;
  let url: string;
  let script: ((res: http.ServerResponse) => void)[];
  beforeEach(async () => {
    script = [];
    server = http.createServer((_req, res) => {
      const step = script.shift();
      if (step) step(res);
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const client = (clock: Clock, o: Partial<ConstructorParameters<typeof JsonHttpClient>[0]> = {}) =>
    new JsonHttpClient({ provider: 'P', baseUrl: url, headers: {}, timeoutMs: 2000, retries: 2, backoffMs: 10, secrets: ['key-1'], clock, ...o });

  it('without minGapMs nothing is paced (backward compatible)', async () => {
    const clock = virtualClock();
    const c = client(clock);
    await c.get('/a');
    await c.get('/a');
    await c.delete('/a');
    assert.deepEqual(clock.sleeps, []);
    assert.equal(c.minGapFor('GET'), 0);
  });

  it('gaps are per method; a method without a gap is not paced', async () => {
    const clock = virtualClock();
    const c = client(clock, { minGapMs: { GET: 300, DELETE: 700 } });
    await c.get('/a'); // 0
    await c.delete('/a'); // 0: its own gap
    await c.post('/a', { body: {} }); // no gap for POST
    await c.get('/b'); // +300
    await c.delete('/b'); // the GET's sleep moved time by 300: 400 more
    assert.deepEqual(clock.sleeps, [300, 400]);
  });

  it('a 429 without Retry-After waits at least the gap (not the 10 ms backoff)', async () => {
    const clock = virtualClock();
    const c = client(clock, { minGapMs: { GET: 1500 } });
    script.push((res) => res.writeHead(429, { 'Content-Type': 'text/plain' }).end('too frequent'));
    await c.get('/a');
    assert.equal(clock.sleeps.length, 1);
    assert.ok(clock.sleeps[0]! >= 1500, `waited ${clock.sleeps[0]}`);
  });

  it('a 5xx retry waits its backoff, then the pacing holds the rest of the gap', async () => {
    const clock = virtualClock();
    const c = client(clock, { minGapMs: { GET: 1500 } });
    script.push((res) => res.writeHead(503, { 'Content-Type': 'application/json' }).end('{}'));
    await c.get('/x');
    assert.equal(clock.sleeps.length, 2, clock.sleeps.join(', '));
    assert.ok(clock.sleeps[0]! < 100, `backoff ${clock.sleeps[0]}`);
    assert.equal(clock.sleeps[0]! + clock.sleeps[1]!, 1500);
  });

  it('a Retry-After is honoured, and capped by maxRetryAfterMs', async () => {
    const clock = virtualClock();
    const c = client(clock, { maxRetryAfterMs: 4000 });
    script.push((res) => res.writeHead(429, { 'Retry-After': '3' }).end());
    script.push((res) => res.writeHead(429, { 'Retry-After': '60' }).end());
    await c.get('/a');
    assert.deepEqual(clock.sleeps, [3000, 4000]);
  });
});
