import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist', 'cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `tether` CLI in its own process: the bundled dist/cli.js when `npm test` has just
 * built it (TETHER_REQUIRE_VSIX=1), else the TypeScript source through tsx — never a dist/ left
 * over from an older build.
 */
export function runCli(args: string[], env: Record<string, string> = {}, opts: { prefix?: string[] } = {}): Promise<CliResult> {
  const useDist = process.env.TETHER_REQUIRE_VSIX === '1' && !process.env.TETHER_TEST_SRC;
  if (useDist && !fs.existsSync(dist)) throw new Error(`${dist} is missing: npm test builds it before the integration tests`);
  const argv = useDist ? [dist, ...args] : ['--import', 'tsx', path.join(root, 'src', 'cliEntry.ts'), ...args];
  // `prefix`: a command that runs node (e.g. `unshare -m sh -c '...; exec "$@"' sh`).
  const [cmd, ...cmdArgs] = [...(opts.prefix ?? []), process.execPath, ...argv];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd!, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
