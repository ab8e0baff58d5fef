/**
 * A real OpenSSH server for the SSH tests: host and user keys generated into a temporary
 * folder, a dedicated unprivileged test user, `tini -s -- sshd -D -e -f CONFIG` on 127.0.0.1
 * and a free port, as a child of the test process. Needs root (to run sshd and add the user)
 * and Debian's openssh-server and tini (`apt-get install -y openssh-server tini`).
 *
 * Safe with other runs of the suite on the same machine: every server gets its own Unix user
 * `tether-t-<8 hex>` (home /home/<user>), created by {@link startSshd} and removed with
 * `userdel -r` by `stop()`, which kills only that user's processes. The user's comment field
 * names the creating process (pid and start time), so a later run removes the users of runs that
 * crashed — only users with this prefix, whose creator is gone, that run nothing and are older
 * than {@link STALE_TEST_USER_MS}. sshd's port is confirmed by sshd's own "Server listening"
 * line (another run may take a port between freePort() and sshd's bind; then a new port is tried).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './net';
import { skipBecause } from './skip';

/** Every test user's name is this prefix and 8 hex digits (17 characters; Linux allows 32). */
export const TEST_USER_PREFIX = 'tether-t-';
const TEST_USER_RE = /^tether-t-[0-9a-f]{8}$/;
/** A crashed run's test user is removed by a later run only when it is at least this old. */
export const STALE_TEST_USER_MS = 2 * 3600_000;
/** How long sshd may take to listen (generous: the machine may be loaded by other jobs). */
const SSHD_READY_MS = 90_000;

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
  /** Stops sshd, kills whatever this server's user still runs and removes the user and its home. */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start time (clock ticks after boot, field 22 of /proc/PID/stat) of a live process, else undefined. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

/** The comment (GECOS) field of a test user: who created it and when. No ':' (passwd's separator). */
export function testUserComment(creator: { pid: number; startTime: string; atMs: number }): string {
  return `tether test sshd user,pid ${creator.pid},start ${creator.startTime},at ${creator.atMs}`;
}

function parseTestUserComment(gecos: string): { pid: number; startTime: string; atMs: number } | undefined {
  const m = /^tether test sshd user,pid (\d+),start (\d+),at (\d+)$/.exec(gecos);
  return m ? { pid: Number(m[1]), startTime: m[2]!, atMs: Number(m[3]) } : undefined;
}

/**
 * Runs useradd/usermod/userdel, retrying while another process holds the passwd/group lock
 * (useradd exits 1 or 10 then; other runs of the suite add and remove users concurrently).
 * Returns the final exit status and stderr.
 */
async function shadowTool(cmd: string, args: string[], retryOn: number[] = [1, 10]): Promise<{ status: number; stderr: string }> {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const status = r.status ?? -1;
    if (status === 0 || !retryOn.includes(status) || attempt >= 40) return { status, stderr: r.stderr ?? '' };
    await sleep(100 + Math.floor(Math.random() * 400));
  }
}

interface PasswdEntry {
  name: string;
  uid: number;
  gecos: string;
  home: string;
}

function passwdEntries(): PasswdEntry[] {
  const out = spawnSync('getent', ['passwd'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 7)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gecos: f[4]!, home: f[5]! }));
}

/** Kills every live process of uid (SIGKILL), repeating until none is left (a dying job may still fork). */
async function killAllOf(uid: number, timeoutMs = 30_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesOf(uid);
    if (!left.length || Date.now() > deadline) return left;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(50);
  }
}

/**
 * Removes the test users left by runs that crashed before their `stop()`: only users named
 * `tether-t-<8 hex>` whose comment names a creator process that no longer exists (pid and start
 * time), that own no live process, and that were created at least `olderThanMs` ago. Returns the
 * names removed.
 */
export async function removeStaleTestUsers(olderThanMs = STALE_TEST_USER_MS): Promise<string[]> {
  const removed: string[] = [];
  for (const u of passwdEntries()) {
    if (!TEST_USER_RE.test(u.name)) continue;
    const c = parseTestUserComment(u.gecos);
    if (!c || Date.now() - c.atMs < olderThanMs) continue;
    if (startTimeOf(c.pid) === c.startTime) continue; // its run is still alive
    if (processesOf(u.uid).length) continue; // something still runs as it: not ours to end
    const r = await shadowTool('userdel', ['-r', u.name], [1, 10]);
    if (r.status === 0 || r.status === 12 /* home already gone */) removed.push(u.name);
  }
  return removed;
}

/** Creates a fresh test user `tether-t-<8 hex>` (home /home/<user>, unlocked for key logins). */
async function createTestUser(): Promise<{ user: string; uid: number; home: string }> {
  const comment = testUserComment({ pid: process.pid, startTime: startTimeOf(process.pid) ?? '0', atMs: Date.now() });
  for (let attempt = 0; ; attempt++) {
    const user = `${TEST_USER_PREFIX}${randomBytes(4).toString('hex')}`;
    const home = `/home/${user}`;
    // useradd exits 9 when the name is taken (by another run: draw another), 12 when the home exists.
    const r = await shadowTool('useradd', ['-m', '-d', home, '-s', '/bin/sh', '-c', comment, user]);
    if ((r.status === 9 || r.status === 12) && attempt < 5) continue;
    if (r.status !== 0) throw new Error(`useradd ${user} failed (exit ${r.status}): ${r.stderr.trim()}`);
    // useradd leaves the account locked ('!'), which sshd refuses without PAM.
    const m = await shadowTool('usermod', ['-p', '*', user]);
    if (m.status !== 0) {
      await removeTestUser(user);
      throw new Error(`usermod -p '*' ${user} failed (exit ${m.status}): ${m.stderr.trim()}`);
    }
    const entry = passwdEntries().find((e) => e.name === user);
    if (!entry) throw new Error(`useradd ${user} succeeded but getent does not list it`);
    return { user, uid: entry.uid, home: entry.home };
  }
}

/** Kills the test user's processes and removes it with its home (`userdel -r`). */
async function removeTestUser(user: string, uid?: number): Promise<void> {
  if (!TEST_USER_RE.test(user)) throw new Error(`refusing to remove ${user}: not a test user`);
  if (uid !== undefined) {
    const left = await killAllOf(uid);
    if (left.length) throw new Error(`processes of ${user} survived SIGKILL: ${left.join(', ')}`);
  }
  // -f: processes killed just now may not be reaped yet; the user is ours alone.
  const r = await shadowTool('userdel', ['-f', '-r', user], [1, 10]);
  if (r.status !== 0 && r.status !== 12 && r.status !== 6 /* no such user */) {
    throw new Error(`userdel -r ${user} failed (exit ${r.status}): ${r.stderr.trim()}`);
  }
}

/** `port`: the first port to try (tests of this helper; another port is tried when it is taken). */
export async function startSshd(opts: { port?: number } = {}): Promise<TestSshd> {
  const reason = sshdUnavailableReason();
  if (reason) throw new Error(reason);
  await removeStaleTestUsers().catch(() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-sshd-'));
  fs.chmodSync(dir, 0o755);
  const { user, uid, home } = await createTestUser();
  try {
    return await startSshdAs(dir, user, uid, home, opts.port);
  } catch (err) {
    await removeTestUser(user, uid).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startSshdAs(dir: string, user: string, uid: number, home: string, firstPort?: number): Promise<TestSshd> {
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
  execFileSync('chown', ['-R', `${user}:`, path.join(home, '.ssh')]);
  const knownHosts = path.join(dir, 'known_hosts');
  const sshConfig = path.join(dir, 'ssh_config');
  const config = path.join(dir, 'sshd_config');
  const writeConfigs = (port: number) => {
    const pub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}\n`);
    fs.writeFileSync(
      sshConfig,
      [
        'Host tether-test',
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${userKey}`,
        'Host tether-jumped',
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${userKey}`,
        '  ProxyJump tether-test',
        'Host tether-enc',
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${encryptedKey}`,
        '',
      ].join('\n'),
    );
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
        `AllowUsers ${user}`,
        'AllowTcpForwarding yes',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
  };
  // Shared by every sshd on the machine; mkdir -p is idempotent and never removed.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  let child!: ChildProcess;
  let port = 0;
  let log = '';
  let exited!: Promise<void>;
  for (let attempt = 1; ; attempt++) {
    port = attempt === 1 && firstPort ? firstPort : await freePort();
    writeConfigs(port);
    log = '';
    // tini -s: a subreaper in front of sshd, so processes killed on the "host" do not linger as zombies.
    const c: ChildProcess = spawn('/usr/bin/tini', ['-s', '--', '/usr/sbin/sshd', '-D', '-e', '-f', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    c.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.length > 200_000) log = log.slice(-100_000);
    });
    exited = new Promise<void>((r) => c.once('exit', () => r()));
    // Ready when sshd itself says it listens on our port (a banner alone could come from another
    // run's server that took the port first), then the port answers with the SSH banner.
    const listening = `Server listening on 127.0.0.1 port ${port}.`;
    const deadline = Date.now() + SSHD_READY_MS;
    let ok = false;
    while (!ok) {
      if (c.exitCode !== null || c.signalCode !== null) break;
      if (log.includes(listening)) ok = await banner(port);
      if (!ok) {
        if (Date.now() > deadline) {
          c.kill('SIGKILL');
          throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${SSHD_READY_MS} ms: ${log}`);
        }
        await sleep(50);
      }
    }
    if (ok) break;
    await exited;
    if (/Address already in use/.test(log) && attempt < 5) continue; // another process took the port: try another
    throw new Error(`sshd did not start (exit ${c.exitCode}): ${log}`);
  }
  const sshdPid = (): number | undefined => childrenOf(child.pid!)[0];
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
  let stopped: Promise<void> | undefined;
  return {
    port,
    dir,
    user,
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
    stop(): Promise<void> {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          dropConnections();
          child.kill('SIGTERM');
          await Promise.race([exited, sleep(10_000)]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
        // Whatever the tests left running as this server's own user (started by these tests only),
        // then the user and its home.
        await removeTestUser(user, uid);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** True when 127.0.0.1:port answers with a line (the SSH banner) within 5 s. */
function banner(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 5000);
    s.once('data', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** Starts the test sshd, or skips the calling suite loudly (naming what is missing) when it cannot run here. */
export async function startSshdOrSkip(ctx: Mocha.Context): Promise<TestSshd> {
  const reason = sshdUnavailableReason();
  if (reason) {
    skipBecause(ctx, reason);
  }
  return startSshd();
}
