/**
 * moto (an AWS emulator) as a child of the test process, for the EC2 provider tests:
 * `moto_server -H 127.0.0.1 -p PORT` with AMI and instance-type validation on. moto ships in
 * the machine image's pyenv Python (not in /usr/bin/python3, not pip-installable here), so it
 * is looked up on PATH, under the pyenv versions and through the pyenv shims. When it is
 * absent the suite skips loudly, naming what is missing — never silently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './net';
import { isExecutable } from '../../src/core/executables';

export interface MotoServer {
  endpoint: string;
  port: number;
  /** The moto_server executable used. */
  bin: string;
  /** `POST /moto-api/reset`: every emulated resource is gone. */
  reset(): Promise<void>;
  /** moto's output so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Where moto_server was looked for, and the first executable found (real binaries before pyenv shims). */
export function findMotoServer(): { bin?: string; searched: string[] } {
  const pyenvRoot = process.env.PYENV_ROOT || path.join(os.homedir(), '.pyenv');
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const versionDirs: string[] = [];
  try {
    for (const v of fs.readdirSync(path.join(pyenvRoot, 'versions')).sort().reverse()) versionDirs.push(path.join(pyenvRoot, 'versions', v, 'bin'));
  } catch {
    /* no pyenv */
  }
  const shims = path.join(pyenvRoot, 'shims');
  const dirs = [...new Set([...pathDirs.filter((d) => d !== shims), ...versionDirs, shims])];
  const searched = dirs.map((d) => path.join(d, 'moto_server'));
  return { bin: searched.find(isExecutable), searched };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts moto; throws with moto's output when it does not come up within `timeoutMs`. */
export async function startMoto(bin: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<MotoServer> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    env: {
      ...process.env,
      MOTO_ENABLE_AMI_VALIDATION: 'true',
      MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: 'true',
      // Dummy credentials in moto's own environment too; the tests pass theirs explicitly.
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() ends moto and nothing else
  });
  child.stdout!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-20000)));
  child.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-20000)));
  let exited = false;
  const exitedP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));

  const reset = async () => {
    const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
  };
  const stop = async () => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await Promise.race([exitedP, sleep(3000)]);
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await Promise.race([exitedP, sleep(2000)]);
    }
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`moto_server (${bin}) exited at start:\n${output}`);
    try {
      await reset();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`moto_server (${bin}) did not answer on ${endpoint} within ${timeoutMs} ms:\n${output}`);
      }
      await sleep(100);
    }
  }
  return { endpoint, port, bin, reset, stop, log: () => output };
}
