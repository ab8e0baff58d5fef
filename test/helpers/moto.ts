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

/**
 * Starts moto; throws with moto's output when it does not come up within `timeoutMs`. Safe with
 * other runs of the suite on the machine: moto is ready only once it has printed that it runs on
 * our port (an answer alone could come from another process that took the port between
 * freePort() and moto's bind); when the port was taken, moto exits and another port is tried.
 * `port`: the first port to try (tests of this helper).
 */
export async function startMoto(bin: string, opts: { env?: Record<string, string>; timeoutMs?: number; port?: number } = {}): Promise<MotoServer> {
  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && opts.port ? opts.port : await freePort();
    const r = await startMotoOn(bin, port, opts);
    if (typeof r !== 'string') return r;
    if (attempt >= 5) throw new Error(`moto_server (${bin}) found no free port in ${attempt} attempts:\n${r}`);
  }
}

/** moto on `port`, or its output when the port was already in use. */
async function startMotoOn(bin: string, port: number, opts: { env?: Record<string, string>; timeoutMs?: number }): Promise<MotoServer | string> {
  // Generous: moto's start takes ~0.4 s on a quiet machine, many times that on a loaded one.
  const timeoutMs = opts.timeoutMs ?? 90_000;
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

  // werkzeug prints this once its socket is bound (moto 5: " * Running on http://127.0.0.1:PORT").
  const bound = `Running on ${endpoint}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      if (/Address already in use|is in use by another program/.test(output)) return output;
      throw new Error(`moto_server (${bin}) exited at start:\n${output}`);
    }
    try {
      if (!output.includes(bound)) throw new Error('not bound yet');
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
