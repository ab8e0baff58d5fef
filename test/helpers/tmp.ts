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

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
