/**
 * Loads a built extension bundle (dist/extension.js) the way VS Code does — `require` it, then
 * call `activate(context)` — against the vscode stub, in THIS process, and reports what it cost
 * and what it pulled in. Run it in a fresh process (see {@link probeBundle}) so nothing is cached:
 *
 *   node --import tsx test/helpers/bundleProbe.ts dist/extension.js [--activate]
 *
 * (with TETHER_PROBE_WORKSPACE, TETHER_PROBE_SECRETS and TETHER_PROBE_SETTINGS — see
 * {@link ProbeOptions} — in the environment) and prints one JSON line: `requireMs`, `activateMs` (until activate()'s promise settles),
 * `loadedAfterRequire` / `loadedAfterActivate` (files of the bundle's folder in require.cache,
 * relative to it: the entry and every webpack chunk it loaded), `heapUsedMB`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ProbeResult {
  requireMs: number;
  activateMs?: number;
  loadedAfterRequire: string[];
  loadedAfterActivate?: string[];
  heapUsedMB: number;
}

export interface ProbeOptions {
  /** Call activate() too (else only require). */
  activate?: boolean;
  /** The window's one workspace folder (default: none). */
  workspace?: string;
  /** What SecretStorage holds (cloud API keys: `tether.cloud.<provider>.apiKey`). */
  secrets?: Record<string, string>;
  /** `tether.*` settings (key without the `tether.` prefix). */
  settings?: Record<string, unknown>;
  env?: Record<string, string>;
}

/** Runs the probe in a fresh node process, with its own empty state folder. */
export function probeBundle(bundle: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-probe-'));
  const args = ['--import', 'tsx', __filename, bundle, ...(opts.activate ? ['--activate'] : [])];
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    TETHER_STATE_DIR: stateDir,
    TETHER_PROBE_SECRETS: JSON.stringify(opts.secrets ?? {}),
    TETHER_PROBE_SETTINGS: JSON.stringify(opts.settings ?? {}),
    ...(opts.workspace ? { TETHER_PROBE_WORKSPACE: opts.workspace } : {}),
    ...opts.env,
  };
  return new Promise<ProbeResult>((resolve, reject) => {
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      fs.rmSync(stateDir, { recursive: true, force: true });
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (code !== 0 || !line) return reject(new Error(`bundle probe exited ${code}: ${err.trim() || out.trim()}`));
      resolve(JSON.parse(line) as ProbeResult);
    });
  });
}

/** A value that answers every property and call with another such value (never a thenable); it keeps what is set on it. */
function deep(): unknown {
  const set = new Map<string | symbol, unknown>();
  return new Proxy(() => undefined, {
    get: (_t, prop) => (set.has(prop) ? set.get(prop) : prop === 'then' ? undefined : prop === Symbol.toPrimitive ? () => '' : deep()),
    set: (_t, prop, v) => (set.set(prop, v), true),
    apply: () => deep(),
  });
}

async function main(bundle: string, activate: boolean): Promise<ProbeResult> {
  const { vscode, tetherSettings } = (await import('./vscodeStub')) as { vscode: Record<string, Record<string, unknown>>; tetherSettings: Record<string, unknown> };
  Object.assign(tetherSettings, JSON.parse(process.env.TETHER_PROBE_SETTINGS || '{}'));
  const secrets = JSON.parse(process.env.TETHER_PROBE_SECRETS || '{}') as Record<string, string>;
  const ws = process.env.TETHER_PROBE_WORKSPACE;
  if (ws) vscode.workspace!.workspaceFolders = [{ uri: { fsPath: ws, path: ws, scheme: 'file' }, name: path.basename(ws), index: 0 }];
  // What activate() touches beyond what the stub models: the window's views and items.
  const win = vscode.window!;
  for (const k of ['createTreeView', 'createStatusBarItem', 'createOutputChannel']) win[k] = () => deep();
  win.state = { focused: true };
  vscode.languages = { createDiagnosticCollection: () => deep() } as Record<string, unknown>;
  const D = vscode.Disposable as unknown as { from?: (...d: Array<{ dispose(): unknown }>) => { dispose(): void } };
  const M = (vscode.MarkdownString as unknown as { prototype: Record<string, unknown> }).prototype;
  for (const k of ['appendMarkdown', 'appendText', 'appendCodeblock']) {
    M[k] ??= function (this: { value: string }, t: string) {
      this.value += t;
      return this;
    };
  }
  D.from ??= (...ds) => ({ dispose: () => ds.forEach((d) => d.dispose()) });
  const dir = path.dirname(path.resolve(bundle));
  const loaded = () =>
    Object.keys(require.cache)
      .filter((f) => path.dirname(f) === dir || f.startsWith(dir + path.sep))
      .map((f) => path.relative(dir, f))
      .sort();
  const t0 = performance.now();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ext = require(path.resolve(bundle)) as { activate: (c: unknown) => Promise<unknown>; deactivate: () => Promise<void> };
  const requireMs = performance.now() - t0;
  const result: ProbeResult = { requireMs, loadedAfterRequire: loaded(), heapUsedMB: 0 };
  if (activate) {
    const disposable = { dispose: () => undefined };
    const context = {
      subscriptions: [] as Array<{ dispose(): unknown }>,
      secrets: { get: async (k: string) => secrets[k], store: async () => undefined, delete: async () => undefined, onDidChange: () => disposable },
      extensionUri: { fsPath: path.dirname(dir), path: path.dirname(dir), scheme: 'file' },
      extensionPath: path.dirname(dir),
      globalState: { get: () => undefined, update: async () => undefined, keys: () => [] },
      workspaceState: { get: () => undefined, update: async () => undefined, keys: () => [] },
    };
    const t1 = performance.now();
    await ext.activate(context);
    result.activateMs = performance.now() - t1;
    result.loadedAfterActivate = loaded();
    await ext.deactivate();
    for (const d of context.subscriptions) {
      try {
        d.dispose();
      } catch {
        /* a stubbed disposable */
      }
    }
  }
  result.heapUsedMB = process.memoryUsage().heapUsed / 2 ** 20;
  return result;
}

if (require.main === module || process.argv[1] === __filename) {
  const [bundle, ...flags] = process.argv.slice(2);
  main(bundle!, flags.includes('--activate')).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
