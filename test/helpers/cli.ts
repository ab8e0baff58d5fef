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
 * Runs the real `tether` CLI in its own process: the bundled dist/cli.js when it has been
 * built (as `npm test` does), else the TypeScript source through tsx.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const argv = fs.existsSync(dist) && !process.env.TETHER_TEST_SRC ? [dist, ...args] : ['--import', 'tsx', path.join(root, 'src', 'cliEntry.ts'), ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
