/**
 * A real OpenSSH server for the SSH tests: host and user keys generated into a temporary
 * folder, a dedicated unprivileged test user, `tini -s -- sshd -D -e -f CONFIG` on 127.0.0.1
 * and a free port, as a child of the test process. Needs root (to run sshd and add the user)
 * and Debian's openssh-server and tini (`apt-get install -y openssh-server tini`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './net';
import { skipBecause } from './skip';

export const TEST_USER = 'tether-ssh-test';

export interface TestSshd {
  port: number;
  dir: string;
  user: string;
  uid: number;
  home: string;
  /** Host key (private; `.pub` next to it). */
  hostKey: string;
  /** Authorised user key, and a key the server does not know. */
  userKey: string;
  wrongKey: string;
  /** Authorised user key encrypted with {@link passphrase}. */
  encryptedKey: string;
  passphrase: string;
  /** known_hosts holding the server's key as `[127.0.0.1]:port`. */
  knownHosts: string;
  /** ssh config with aliases `tether-test` (direct), `tether-jumped` (ProxyJump via tether-test), `tether-enc` (encrypted key). */
  sshConfig: string;
  /** A folder first on the test user's PATH (for fixture commands such as nvidia-smi). */
  binDir: string;
  /** sshd's stderr so far. */
  log(): string;
  /** Kills every per-connection sshd process: all connections drop, the listener stays. */
  dropConnections(): number;
  /** Stops sshd and kills whatever the test user still runs. */
  stop(): Promise<void>;
}


function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const t = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
      if (t) out.push(...t.split(' ').map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** PIDs of live processes owned by uid. */
export function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const status = fs.readFileSync(`/proc/${n}/status`, 'latin1');
      const u = /^Uid:\s+(\d+)/m.exec(status);
      const st = /^State:\s+(\S)/m.exec(status);
      if (u && Number(u[1]) === uid && st && st[1] !== 'Z' && st[1] !== 'X') out.push(Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Why the SSH tests cannot run here, or undefined when they can. */
export function sshdUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'the SSH tests need root (to run sshd and create a test user); run them as root, e.g. in CI';
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/bin/tini']) {
    if (!fs.existsSync(bin)) return `${bin} is missing: apt-get install -y openssh-server tini`;
  }
  return undefined;
}

function keygen(file: string, passphrase = ''): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', path.basename(file), '-f', file], { stdio: 'ignore' });
}

function ensureUser(): { uid: number; home: string } {
  const home = `/home/${TEST_USER}`;
  try {
    execFileSync('id', ['-u', TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-d', home, '-s', '/bin/sh', TEST_USER], { stdio: 'ignore' });
  }
  // useradd leaves the account locked ('!'), which sshd refuses without PAM.
  execFileSync('usermod', ['-p', '*', TEST_USER], { stdio: 'ignore' });
  const uid = Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim());
  const realHome = execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).split(':')[5]!;
  return { uid, home: realHome };
}

export async function startSshd(): Promise<TestSshd> {
  const reason = sshdUnavailableReason();
  if (reason) throw new Error(reason);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-sshd-'));
  fs.chmodSync(dir, 0o755);
  const { uid, home } = ensureUser();
  const port = await freePort();
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'user_ed25519');
  const wrongKey = path.join(dir, 'wrong_ed25519');
  const encryptedKey = path.join(dir, 'enc_ed25519');
  const passphrase = 'correct horse battery staple';
  keygen(hostKey);
  keygen(userKey);
  keygen(wrongKey);
  keygen(encryptedKey, passphrase);
  const authorized = path.join(dir, 'authorized_keys');
  fs.writeFileSync(authorized, fs.readFileSync(`${userKey}.pub`, 'utf8') + fs.readFileSync(`${encryptedKey}.pub`, 'utf8'), { mode: 0o644 });
  const binDir = path.join(dir, 'bin');
  fs.mkdirSync(binDir, { mode: 0o755 });
  // PATH of the test user's sessions: the fixture folder first (PermitUserEnvironment).
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
  fs.writeFileSync(path.join(home, '.ssh', 'environment'), `PATH=${binDir}:/usr/local/bin:/usr/bin:/bin\n`);
  execFileSync('chown', ['-R', `${TEST_USER}:`, path.join(home, '.ssh')]);
  const knownHosts = path.join(dir, 'known_hosts');
  const pub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}\n`);
  const sshConfig = path.join(dir, 'ssh_config');
  fs.writeFileSync(
    sshConfig,
    [
      'Host tether-test',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${TEST_USER}`,
      `  IdentityFile ${userKey}`,
      'Host tether-jumped',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${TEST_USER}`,
      `  IdentityFile ${userKey}`,
      '  ProxyJump tether-test',
      'Host tether-enc',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${TEST_USER}`,
      `  IdentityFile ${encryptedKey}`,
      '',
    ].join('\n'),
  );
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 50',
      'MaxStartups 200',
      'PermitRootLogin no',
      'PermitUserEnvironment yes',
      `AllowUsers ${TEST_USER}`,
      'AllowTcpForwarding yes',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  // tini -s: a subreaper in front of sshd, so processes killed on the "host" do not linger as zombies.
  const child: ChildProcess = spawn('/usr/bin/tini', ['-s', '--', '/usr/sbin/sshd', '-D', '-e', '-f', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const sshdPid = (): number | undefined => childrenOf(child.pid!)[0];
  // Ready when the port accepts a connection and prints the SSH banner.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      setTimeout(() => {
        s.destroy();
        resolve(false);
      }, 500);
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`sshd did not start (exit ${child.exitCode}): ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const dropConnections = (): number => {
    const listener = sshdPid();
      if (!listener) return 0;
      // Per connection: "sshd: USER [priv]" and its child "sshd: USER@notty", which holds the socket.
      const sessions: number[] = [];
      const queue = childrenOf(listener);
      while (queue.length) {
        const pid = queue.shift()!;
        let comm = '';
        try {
          comm = fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
        } catch {
          continue;
        }
        if (comm !== 'sshd') continue;
        sessions.push(pid);
        queue.push(...childrenOf(pid));
      }
      for (const pid of sessions) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      return sessions.length;
  };
  return {
    port,
    dir,
    user: TEST_USER,
    uid,
    home,
    hostKey,
    userKey,
    wrongKey,
    encryptedKey,
    passphrase,
    knownHosts,
    sshConfig,
    binDir,
    log: () => log,
    dropConnections,
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) {
        dropConnections();
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      // Whatever the tests left running as the test user (started by these tests only).
      for (const pid of processesOf(uid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts the test sshd, or skips the calling suite loudly (naming what is missing) when it cannot run here. */
export async function startSshdOrSkip(ctx: Mocha.Context): Promise<TestSshd> {
  const reason = sshdUnavailableReason();
  if (reason) {
    skipBecause(ctx, reason);
  }
  return startSshd();
}
