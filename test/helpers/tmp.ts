import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh temporary folder, removed by the returned cleanup. */
export function tmpDir(prefix = 'tether-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A workspace folder with the given `.vscode/tether.json` text (or object). */
export function workspaceWith(config: unknown): string {
  const ws = tmpDir('tether-ws-');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return ws;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits no test may bet on the machine's speed with: every waitFor waits at least this long
 * (a condition that holds returns at once; only a failure takes the whole wait).
 */
export const WAIT_FLOOR_MS = 30_000;

/** Polls `fn` until it returns a truthy value or the timeout (at least {@link WAIT_FLOOR_MS}) passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<NonNullable<T>> {
  timeoutMs = Math.max(timeoutMs, WAIT_FLOOR_MS);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
