/**
 * A private Docker engine for the tests: `dockerd` with its own data root, exec root, socket and
 * pid file, started as a child of the test process and stopped by {@link TestDockerd.stop}.
 *
 * Parallel-safe: no default bridge (`--bridge=none`), no iptables changes; containers that need
 * ports join a bridge network of this daemon alone (`network`), with its own interface name and
 * subnet. No registry is reachable: the test image is `docker import`ed from a busybox-static
 * root filesystem.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { findOnPath } from '../../src/core/executables';

export const TEST_IMAGE = 'tether-test/busybox:1';

export interface TestDockerd {
  dir: string;
  socket: string;
  /** `unix://…`, for DOCKER_HOST. */
  host: string;
  docker: Docker;
  image: string;
  /** A bridge network of this daemon (use it for containers that publish ports). */
  network: string;
  /** dockerd's pid. */
  pid: number;
  /** Log of dockerd (for failure messages). */
  logFile: string;
  stop(): Promise<void>;
}

/** `cmd` on PATH or in the sbin folders (dockerd lives in /usr/sbin). */
const which = (cmd: string): string | undefined => findOnPath(cmd, { PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` });

/** True for a statically linked ELF64 (no PT_INTERP program header): it runs in an empty root. */
const isStaticBusybox = (p: string) => {
  try {
    const b = fs.readFileSync(p);
    if (b.subarray(0, 4).toString('latin1') !== '\x7fELF' || b[4] !== 2) return false;
    const phoff = Number(b.readBigUInt64LE(0x20));
    const phentsize = b.readUInt16LE(0x36);
    const phnum = b.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
    return true;
  } catch {
    return false;
  }
};

/** Installs docker.io and busybox-static when missing (as root with apt), else fails with the command. */
export function ensureDockerPackages(): { dockerd: string; busybox: string } {
  let dockerd = which('dockerd');
  const busyboxOk = () => ['/bin/busybox', '/usr/bin/busybox'].find(isStaticBusybox);
  let busybox = busyboxOk();
  const need = [...(dockerd ? [] : ['docker.io']), ...(busybox ? [] : ['busybox-static'])];
  if (need.length) {
    const cmd = `apt-get install -y --no-install-recommends ${need.join(' ')}`;
    if (process.getuid?.() !== 0 || !which('apt-get')) {
      throw new Error(`the Docker tests need Debian packages ${need.join(', ')}: run sudo ${cmd}`);
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // Wait for dpkg's lock (another run of the suite may be installing at the same time).
    const wait = cmd.replace('apt-get ', 'apt-get -o DPkg::Lock::Timeout=600 ');
    let r = spawnSync('sh', ['-c', wait], { env, stdio: 'inherit' });
    if (r.status !== 0) r = spawnSync('sh', ['-c', `apt-get -o DPkg::Lock::Timeout=600 update -qq && ${wait}`], { env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`could not install ${need.join(', ')}: run ${cmd}`);
    dockerd = which('dockerd');
    busybox = busyboxOk();
    if (!dockerd || !busybox) throw new Error(`still missing after install: ${need.join(', ')}`);
  }
  return { dockerd: dockerd!, busybox: busybox! };
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string, alive: () => string | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* retry */
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tar (ustar) of a busybox root filesystem, built in memory: /bin/busybox + applet symlinks. */
export function busyboxRootfsTar(busybox: string): Buffer {
  const blocks: Buffer[] = [];
  const header = (name: string, type: '0' | '2' | '5', size: number, mode: number, link = '') => {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write(mode.toString(8).padStart(7, '0'), 100);
    h.write('0000000', 108);
    h.write('0000000', 116);
    h.write(size.toString(8).padStart(11, '0'), 124);
    h.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, '0'), 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write(link, 157, 100, 'utf8');
    h.write('ustar\x0000', 257, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    return h;
  };
  for (const d of ['bin/', 'tmp/', 'etc/', 'www/', 'proc/', 'sys/', 'dev/']) blocks.push(header(d, '5', 0, d === 'tmp/' ? 0o1777 : 0o755));
  const bin = fs.readFileSync(busybox);
  blocks.push(header('bin/busybox', '0', bin.length, 0o755), bin, Buffer.alloc((512 - (bin.length % 512)) % 512));
  for (const a of ['sh', 'sleep', 'echo', 'cat', 'ls', 'ps', 'httpd', 'kill', 'true', 'false', 'yes', 'nc', 'env']) {
    blocks.push(header(`bin/${a}`, '2', 0, 0o777, 'busybox'));
  }
  const page = Buffer.from('tether test page\n');
  blocks.push(header('www/index.html', '0', page.length, 0o644), page, Buffer.alloc(512 - page.length));
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Starts a private dockerd and imports the test image. Call `stop()` in `after()`. */
export async function startDockerd(): Promise<TestDockerd> {
  const { dockerd, busybox } = ensureDockerPackages();
  if (process.getuid?.() !== 0) throw new Error('the Docker tests start their own dockerd and need root (run the suite as root)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdk-'));
  const socket = path.join(dir, 'docker.sock');
  const pidFile = path.join(dir, 'docker.pid');
  const logFile = path.join(dir, 'dockerd.log');
  const logFd = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    dockerd,
    [
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '-H', `unix://${socket}`,
      '--pidfile', pidFile,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--ip6tables=false',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `dockerd exited (code ${code}, signal ${sig}); log: ${tail(logFile)}`));
  child.on('error', (e) => (exited = `dockerd did not start: ${e.message}`));
  const docker = new Docker({ socketPath: socket });
  // Bridge name and subnet are drawn anew when creating the network fails (another run's daemon
  // may hold either): see createTestNetwork.
  let net = '';
  const stop = async () => {
    try {
      const cs = await docker.listContainers({ all: true });
      await Promise.all(cs.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      await docker.getNetwork(net).remove().catch(() => undefined);
    } catch {
      /* the daemon may be gone already */
    }
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }
    spawnSync('ip', ['link', 'del', net], { stdio: 'ignore' });
    // overlay mounts are gone with the daemon; keep the folder on failure for its log.
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    await waitFor(async () => (fs.existsSync(socket) ? (await docker.ping()) && true : undefined), 30_000, 'waiting for dockerd', () => exited);
    const tar = busyboxRootfsTar(busybox);
    const { Readable } = await import('node:stream');
    const stream = await docker.importImage(Readable.from([tar]) as unknown as NodeJS.ReadableStream, { repo: TEST_IMAGE.split(':')[0], tag: TEST_IMAGE.split(':')[1] });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())));
    await docker.getImage(TEST_IMAGE).inspect();
    for (let attempt = 1; ; attempt++) {
      net = `tth${process.pid.toString(36)}${randomBytes(4).toString('hex')}`.slice(0, 15);
      try {
        await docker.createNetwork({
          Name: net,
          Driver: 'bridge',
          Options: { 'com.docker.network.bridge.name': net },
          IPAM: { Config: [{ Subnet: freeSubnet() }] },
        });
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, socket, host: `unix://${socket}`, docker, image: TEST_IMAGE, network: net, pid: child.pid!, logFile, stop };
}

/**
 * A /24 in 10.100.0.0–10.199.255.0 that no route of this machine covers yet (other runs' test
 * daemons on this machine have bridges with subnets of their own; two bridges with one subnet
 * would send a container's traffic to the wrong one). Random, so two runs starting at once
 * collide with a chance of about 1 in 25,000; the caller retries when the network cannot be made.
 */
export function freeSubnet(routes = ipv4Routes()): string {
  const N = 100 * 256;
  const start = Math.floor(Math.random() * N);
  for (let k = 0; k < N; k++) {
    const i = (start + k) % N;
    const net = ((10 << 24) | ((100 + (i >> 8)) << 16) | ((i & 255) << 8)) >>> 0;
    const clash = routes.some((r) => ((net & r.mask) >>> 0 === r.dest && r.mask !== 0) || ((r.dest & 0xffffff00) >>> 0) === net);
    if (!clash) return `10.${100 + (i >> 8)}.${i & 255}.0/24`;
  }
  throw new Error('every /24 in 10.100.0.0-10.199.255.0 is routed on this machine already');
}

/** Routes of the main table from /proc/net/route (destination and mask as host-order numbers). */
function ipv4Routes(): Array<{ dest: number; mask: number }> {
  const le = (hex: string) => Buffer.from(hex, 'hex').readUInt32LE(0);
  try {
    return fs
      .readFileSync('/proc/net/route', 'latin1')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 8)
      .map((f) => ({ dest: le(f[1]!), mask: le(f[7]!) }));
  } catch {
    return [];
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-5).join(' | ');
  } catch {
    return '';
  }
}
