/**
 * One ssh2 connection per host, kept alive and reused.
 *
 * - The TCP socket is made by Tether with Nagle's algorithm off (`setNoDelay`): with it on,
 *   every command costs ~45 ms more on a loopback or LAN link.
 * - The socket is a ProxyCommand's stdio when the host has one (run as ssh runs it), or a
 *   channel of the jump host's connection for ProxyJump (chains hop by hop).
 * - Host keys are checked against the host's UserKnownHostsFile/GlobalKnownHostsFile (see
 *   knownHosts.ts): a changed key is refused; an unknown key follows StrictHostKeyChecking
 *   ("yes": refused, "ask": shown to `onUnknownKey` and recorded only if it says yes,
 *   "accept-new"/"no": recorded, as ssh does).
 * - OpenSSH certificates (CertificateFile, IDENTITY-cert.pub) cannot be used by ssh2: Tether says
 *   so in a warning and in authentication errors.
 * - Authentication: ssh-agent (IdentityAgent, else SSH_AUTH_SOCK; with IdentitiesOnly only the
 *   identity files' keys), then each identity file; an encrypted key's
 *   passphrase comes from the `passphrase` callback (backed by SecretStorage in VS Code) and is
 *   never logged.
 * - A dropped connection is re-opened by the next call; failed attempts back off exponentially,
 *   and calls in the back-off window fail fast with the last error.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import type { AnyAuthMethod, AuthenticationType, Client, ClientChannel, OpenSSHAgent, ParsedKey } from 'ssh2';
import { TetherError } from '../../core/errors';
import { silentLogger, type Logger } from '../../core/logger';
import { parseHostSpec, resolveHost, targetKey, type ResolveOptions, type SshTarget } from './hosts';
import { appendKnownHost, checkHostKey, HostKeyChangedError, HostKeyUnknownError, keyTypeOf, hostField } from './knownHosts';

export type HostState = 'idle' | 'connecting' | 'connected' | 'unreachable';

export interface UnknownKeyInfo {
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
  /** Key types already known for this host (a different type is no proof of a change). */
  otherKeyTypes: string[];
  /** Where an accepted key is recorded. */
  knownHostsFile: string;
}

export interface SshConnectionOptions {
  /**
   * Files to check, in order; an accepted key is appended to the first. Default: the host's
   * UserKnownHostsFile then GlobalKnownHostsFile (as ssh -G resolves them), else
   * ~/.ssh/known_hosts, ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts.
   */
  knownHostsFiles?: string[];
  /** Write accepted keys hashed (`|1|...`). Default true. */
  hashKnownHosts?: boolean;
  /**
   * Asked about a key not in known_hosts when the host's StrictHostKeyChecking is "ask" (the
   * default); resolve true to accept (and record) it. No callback: refused. With "yes" an unknown
   * key is refused without asking; with "accept-new" or "no" it is recorded without asking (as
   * ssh does). A changed key is refused whatever the setting.
   */
  onUnknownKey?: (fingerprint: string, info: UnknownKeyInfo) => Promise<boolean>;
  /**
   * Passphrase of an encrypted key file, or undefined to skip that key. Called again with
   * `retry: true` once if the first answer was wrong. Never logged.
   */
  passphrase?: (keyFile: string, opts: { retry: boolean }) => Promise<string | undefined>;
  /** Told when a passphrase was wrong (e.g. to forget a stored one). */
  onPassphraseRejected?: (keyFile: string) => void | Promise<void>;
  /** ssh-agent socket; default the host's IdentityAgent, else SSH_AUTH_SOCK; null = no agent. */
  agent?: string | null;
  /** SSH-level keepalive; default 10 s, 3 missed = dropped. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** TCP connect timeout (default 8 s) and SSH handshake timeout (default 15 s). */
  connectTimeoutMs?: number;
  readyTimeoutMs?: number;
  /** Back-off after a failed connect: initial (default 1 s), doubling up to max (default 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Resolves ProxyJump hops; default resolveHost with `resolve`. */
  resolve?: ResolveOptions;
  log?: Logger;
}

export interface ExecOptions {
  /** Fails with {@link SshTimeoutError} after this long (the channel is closed). Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  stdin?: string;
}

export interface ExecResult {
  /** Exit code; null when the command was ended by a signal. */
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Base of every SSH failure; `kind` says which. */
export class SshError extends TetherError {
  constructor(
    readonly kind: 'unreachable' | 'auth' | 'dropped' | 'timeout' | 'protocol',
    message: string,
    opts: { remedy: string; cause?: unknown },
  ) {
    super(message, opts);
  }
}
export class SshUnreachableError extends SshError {}
export class SshAuthError extends SshError {}
export class SshDroppedError extends SshError {}
export class SshTimeoutError extends SshError {}

const DEFAULT_IDENTITY_NAMES = new Set(['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa']);

/**
 * OpenSSH certificates this host's config would use (CertificateFile, or IDENTITY-cert.pub next
 * to an identity file, as ssh loads them). ssh2 cannot authenticate with certificates, so Tether
 * names them in its warnings and errors instead of ignoring them silently.
 */
export function certificatesOf(t: SshTarget): string[] {
  const implicit = t.identityFiles.map((f) => `${f}-cert.pub`);
  return [...new Set([...(t.certificateFiles ?? []), ...implicit])].filter((f) => fs.existsSync(f));
}

function defaultKnownHosts(): string[] {
  const home = os.homedir();
  return [path.join(home, '.ssh', 'known_hosts'), path.join(home, '.ssh', 'known_hosts2'), '/etc/ssh/ssh_known_hosts'];
}

/** The known_hosts files to check for a target, and the one an accepted key is written to (none for UserKnownHostsFile none). */
function knownHostsOf(t: SshTarget, opts: SshConnectionOptions): { files: string[]; writeTo: string | undefined } {
  if (opts.knownHostsFiles) return { files: opts.knownHostsFiles, writeTo: opts.knownHostsFiles[0] };
  if (t.userKnownHostsFiles || t.globalKnownHostsFiles) {
    const user = t.userKnownHostsFiles ?? defaultKnownHosts().slice(0, 2);
    return { files: [...user, ...(t.globalKnownHostsFiles ?? [])], writeTo: user[0] };
  }
  const d = defaultKnownHosts();
  return { files: d, writeTo: d[0] };
}

/** ProxyJump hops in order (first hop first): `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export function jumpHops(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim().replace(/^ssh:\/\//i, '').replace(/\/$/, ''))
    .filter(Boolean);
}

type Ssh2 = typeof import('ssh2');
let ssh2: Promise<Ssh2> | undefined;
/** The ssh2 library, loaded on the first connection (a chunk of its own in the bundles, not loaded at activation). */
function loadSsh2(): Promise<Ssh2> {
  return (ssh2 ??= import('ssh2').then((m) => (m as Ssh2 & { default?: Ssh2 }).default ?? m));
}

/** An ssh-agent that offers only the keys of the host's identity files (IdentitiesOnly yes). */
function identitiesOnlyAgent({ OpenSSHAgent }: Ssh2, socketPath: string, allowed: Buffer[]): OpenSSHAgent {
  return new (class IdentitiesOnlyAgent extends OpenSSHAgent {
    override getIdentities(cb: Parameters<OpenSSHAgent['getIdentities']>[0]): void {
      super.getIdentities((err, keys) => {
        if (err || !keys) return cb(err ?? null, keys);
        const blob = (k: unknown): Buffer | undefined => {
          const key = (k as { pubKey?: unknown }).pubKey ?? k;
          if (Buffer.isBuffer(key)) return key;
          return typeof (key as ParsedKey).getPublicSSH === 'function' ? (key as ParsedKey).getPublicSSH() : undefined;
        };
        cb(null, keys.filter((k) => allowed.some((a) => blob(k)?.equals(a))) as typeof keys);
      });
    }
  })(socketPath);
}

/** The public key blob of an identity file: from FILE.pub, else from the (unencrypted) private key. */
function publicBlobOf(utils: Ssh2['utils'], file: string): Buffer | undefined {
  for (const f of [`${file}.pub`, file]) {
    try {
      const k = utils.parseKey(fs.readFileSync(f));
      if (k instanceof Error) continue;
      return (Array.isArray(k) ? k[0] : k).getPublicSSH();
    } catch {
      /* missing */
    }
  }
  return undefined;
}

/**
 * A ProxyCommand's stdio as a socket: run as ssh runs it (`$SHELL -c "exec CMD"`, /bin/sh
 * without $SHELL), stdin/stdout carry the SSH stream, stderr is kept for the error message. The
 * process is Tether's own child and is killed when the stream is destroyed.
 */
export function proxyCommandSocket(command: string, log: Logger = silentLogger): { sock: Duplex; stderr: () => string; exited: Promise<number | null> } {
  const shell = process.env.SHELL || '/bin/sh';
  const child = spawn(shell, ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 8192) err = err.slice(-4096);
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.once('error', (e) => {
    err += e.message;
  });
  const sock = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
  // A write after the command exited (EPIPE) ends the stream, never the process.
  child.stdin!.on('error', (e) => log.debug(`ProxyCommand stdin: ${e.message}`));
  sock.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  void exited.then(() => {
    if (!sock.destroyed) sock.destroy();
  });
  return { sock, stderr: () => err.trim(), exited };
}

function describeSocketError(target: SshTarget, err: NodeJS.ErrnoException): SshUnreachableError {
  const where = `${target.host}:${target.port}`;
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused (nothing listens on that port)',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ENOTFOUND: 'host name not found',
    EAI_AGAIN: 'host name lookup failed (temporary)',
    ECONNRESET: 'connection reset by the server',
  };
  return new SshUnreachableError('unreachable', `Cannot reach SSH host ${where} (${target.spec}): ${why[err.code ?? ''] ?? err.message}`, {
    remedy:
      err.code === 'ENOTFOUND'
        ? `Check the host name, or define "Host ${target.spec}" with a HostName in ~/.ssh/config.`
        : `Check that the host is up and sshd listens on port ${target.port} (ssh -p ${target.port} -- ${target.user}@${target.host}); Tether retries by itself.`,
    cause: err,
  });
}

/** One kept-alive connection to one host. Use {@link SshConnectionPool.get} to share it. */
export class SshConnection {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastError: Error | undefined;
  private pending = new Set<(err: Error) => void>();
  private passphrases = new Map<string, string>();
  private readonly log: Logger;
  private closed = false;
  /** Connections made so far (1 + reconnects). */
  connects = 0;
  private _state: HostState = 'idle';
  /** The connections that reach this one as their ProxyJump hop (a loop guard). */
  private jumpedFrom = new Set<SshConnection>();

  constructor(
    readonly target: SshTarget,
    private readonly opts: SshConnectionOptions = {},
    private readonly pool?: SshConnectionPool,
  ) {
    this.log = opts.log ?? silentLogger;
  }

  get key(): string {
    return targetKey(this.target);
  }

  get state(): HostState {
    return this._state;
  }

  /** The error of the last failed connect or drop (while not connected). */
  get error(): Error | undefined {
    return this._state === 'connected' ? undefined : this.lastError;
  }

  /** When the next connect attempt may run (ms since epoch; 0 = now). */
  get retryAt(): number {
    return this.nextAttemptAt;
  }

  /** Connects now unless connected (honouring the back-off window unless `force`). */
  async connect(force = false): Promise<void> {
    await this.ready(force);
  }

  private async ready(force = false): Promise<Client> {
    if (this.client) return this.client;
    if (this.connecting) return this.connecting;
    if (!force && Date.now() < this.nextAttemptAt && this.lastError) throw this.lastError;
    this.closed = false;
    this._state = 'connecting';
    const p = this.open(false).then(
      (c) => {
        this.failures = 0;
        this.nextAttemptAt = 0;
        this.lastError = undefined;
        this._state = 'connected';
        this.connecting = undefined;
        return c;
      },
      (err: Error) => {
        this.failures += 1;
        const initial = this.opts.backoffInitialMs ?? 1000;
        const delay = Math.min(this.opts.backoffMaxMs ?? 30_000, initial * 2 ** (this.failures - 1));
        this.nextAttemptAt = Date.now() + delay;
        this.lastError = err;
        this._state = 'unreachable';
        this.connecting = undefined;
        this.log.warn(`ssh ${this.key}: ${err.message} (retry in ${Math.round(delay / 100) / 10} s)`);
        throw err;
      },
    );
    this.connecting = p;
    return p;
  }

  private proxyStderr: (() => string) | undefined;
  private proxyExited: Promise<unknown> | undefined;

  /** Runs `fn` once the ProxyCommand has exited (at most 2 s later), so its stderr is complete; at once without one. */
  private afterProxy(fn: () => void): void {
    const exited = this.proxyExited;
    if (!exited) return fn();
    let timer: NodeJS.Timeout | undefined;
    void Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]).then(() => {
      clearTimeout(timer);
      fn();
    });
  }

  private async openSocket(): Promise<Duplex> {
    const t = this.target;
    this.proxyStderr = undefined;
    this.proxyExited = undefined;
    if (t.proxyJump) {
      if (!this.pool) throw new SshError('protocol', `ProxyJump for ${t.spec} needs a connection pool`, { remedy: 'Use SshConnectionPool.' });
      // As ssh does (`ssh -J REST -W host:port LAST`): the last hop is reached through the
      // others; a single hop connects as its own config says (its own ProxyJump/ProxyCommand too).
      const hops = jumpHops(t.proxyJump);
      const last = hops.pop()!;
      parseHostSpec(last);
      const jumpTarget = resolveHost(last, this.opts.resolve);
      if (hops.length) {
        jumpTarget.proxyJump = hops.join(',');
        delete jumpTarget.proxyCommand;
      }
      const jump = this.pool.get(jumpTarget);
      const chain = new Set([...this.jumpedFrom, this]);
      if (chain.has(jump)) {
        throw new SshError('protocol', `ProxyJump loop: ${t.spec} is reached through ${jump.target.spec}, which is reached through it`, {
          remedy: 'Check the ProxyJump lines of your ssh config (ssh -G -- HOST shows what each host resolves to).',
        });
      }
      for (const c of chain) jump.jumpedFrom.add(c);
      return jump.forwardOut(t.host, t.port);
    }
    if (t.proxyCommand) {
      const p = proxyCommandSocket(t.proxyCommand, this.log);
      this.proxyStderr = p.stderr;
      this.proxyExited = p.exited;
      this.log.debug(`ssh ${this.key}: ProxyCommand ${t.proxyCommand}`);
      return p.sock;
    }
    return new Promise<Duplex>((resolve, reject) => {
      const sock = net.connect({ host: t.host, port: t.port });
      sock.setNoDelay(true);
      sock.setKeepAlive(true, 30_000);
      const timer = setTimeout(() => {
        sock.destroy();
        const e = Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
        reject(describeSocketError(t, e));
      }, this.opts.connectTimeoutMs ?? 8000);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(sock);
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(describeSocketError(t, err));
      });
    });
  }

  /** A TCP stream to host:port through this connection (for ProxyJump). */
  async forwardOut(host: string, port: number): Promise<Duplex> {
    const c = await this.ready();
    return new Promise((resolve, reject) => {
      c.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
        if (err) {
          reject(
            new SshUnreachableError('unreachable', `Jump host ${this.target.spec} cannot reach ${host}:${port}: ${err.message}`, {
              remedy: 'Check ProxyJump in ~/.ssh/config and that the jump host allows TCP forwarding.',
              cause: err,
            }),
          );
        } else resolve(stream);
      });
    });
  }

  private async authMethods(): Promise<{ methods: AnyAuthMethod[]; tried: string[]; notes: string[] }> {
    const lib = await loadSsh2();
    const { utils } = lib;
    const t = this.target;
    const methods: AnyAuthMethod[] = [];
    const tried: string[] = [];
    const notes: string[] = [];
    const agent = this.opts.agent !== undefined ? this.opts.agent : t.identityAgent !== undefined ? t.identityAgent : process.env.SSH_AUTH_SOCK;
    if (agent && fs.existsSync(agent)) {
      if (t.identitiesOnly) {
        const allowed = t.identityFiles.map((f) => publicBlobOf(utils, f)).filter((b): b is Buffer => !!b);
        if (allowed.length) {
          methods.push({ type: 'agent', username: t.user, agent: identitiesOnlyAgent(lib, agent, allowed) } as AnyAuthMethod);
          tried.push('ssh-agent (IdentitiesOnly: the identity files\' keys)');
        }
      } else {
        methods.push({ type: 'agent', username: t.user, agent });
        tried.push('ssh-agent');
      }
    }
    for (const file of t.identityFiles) {
      let data: Buffer;
      try {
        data = fs.readFileSync(file);
      } catch (err) {
        // ssh -G lists the default identities whether they exist or not; only a missing one that is not a default is worth a note.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' || !DEFAULT_IDENTITY_NAMES.has(path.basename(file))) notes.push(`${file}: ${code ?? 'unreadable'}`);
        continue;
      }
      let parsed = utils.parseKey(data);
      let passphrase: string | undefined;
      if (parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message)) {
        passphrase = this.passphrases.get(file);
        parsed = passphrase !== undefined ? utils.parseKey(data, passphrase) : parsed;
        for (let attempt = 0; parsed instanceof Error && attempt < 2 && this.opts.passphrase; attempt++) {
          if (attempt > 0 || passphrase !== undefined) await this.opts.onPassphraseRejected?.(file);
          passphrase = await this.opts.passphrase(file, { retry: attempt > 0 || passphrase !== undefined });
          if (passphrase === undefined) break;
          parsed = utils.parseKey(data, passphrase);
        }
        if (parsed instanceof Error) {
          notes.push(`${file}: encrypted, ${passphrase === undefined ? 'no passphrase given' : 'wrong passphrase'}`);
          if (passphrase !== undefined) await this.opts.onPassphraseRejected?.(file);
          this.passphrases.delete(file);
          continue;
        }
        this.passphrases.set(file, passphrase!);
      }
      if (parsed instanceof Error) {
        notes.push(`${file}: ${parsed.message}`);
        continue;
      }
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      methods.push({ type: 'publickey', username: t.user, key, ...(passphrase !== undefined ? { passphrase } : {}) });
      tried.push(file);
    }
    return { methods, tried, notes };
  }

  /** `acceptedKey`: a key the user (or accept-new) accepted that could not be recorded (UserKnownHostsFile none). */
  private async open(retriedAfterAccept: boolean, acceptedKey?: Buffer): Promise<Client> {
    const t = this.target;
    const { files, writeTo } = knownHostsOf(t, this.opts);
    const strict = t.strictHostKeyChecking ?? 'ask';
    // HostKeyAlias: the name known_hosts is searched and written under (ssh does the same).
    const keyHost = t.hostKeyAlias ?? t.host;
    const certs = certificatesOf(t);
    if (certs.length) {
      this.log.warn(`ssh ${this.key}: Tether cannot use OpenSSH certificates (${certs.join(', ')}): the ssh2 library has no certificate support; offering the plain keys instead`);
    }
    const sock = await this.openSocket();
    const { methods, tried, notes } = await this.authMethods().catch((err: unknown) => {
      sock.destroy();
      throw err;
    });
    if (methods.length === 0) {
      sock.destroy();
      throw new SshAuthError('auth', `No way to authenticate to ${targetKey(t)}: no ssh-agent and no usable key file${notes.length ? ` (${notes.join('; ')})` : ''}`, {
        remedy: 'Start ssh-agent and add your key (ssh-add), or set IdentityFile for this host in ~/.ssh/config.',
      });
    }
    let keyVerdict:
      | { kind: 'unknown'; key: Buffer; fingerprint: string; otherKeyTypes: string[] }
      | { kind: 'changed'; error: HostKeyChangedError }
      | undefined;
    const client = new (await loadSsh2()).Client();
    const c = await new Promise<Client>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        client.removeAllListeners('ready');
        client.end();
        sock.destroy();
        reject(err);
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (settled) return;
        if (keyVerdict?.kind === 'changed') return fail(keyVerdict.error);
        if (keyVerdict?.kind === 'unknown') return fail(new HostKeyUnknownError(keyHost, t.port, keyVerdict.fingerprint, false, strict === 'yes' ? 'StrictHostKeyChecking yes' : undefined));
        if (err.level === 'client-authentication') {
          return fail(
            new SshAuthError(
              'auth',
              `Authentication failed for ${targetKey(t)} (tried: ${tried.join(', ')})${notes.length ? `; skipped ${notes.join('; ')}` : ''}${certs.length ? `; certificates not used (ssh2 has no OpenSSH certificate support): ${certs.join(', ')}` : ''}`,
              {
                remedy: certs.length
                  ? `This host may accept only certificates, which Tether cannot present: authorise a plain key in ~${t.user}/.ssh/authorized_keys on ${t.host}, or load a key the server accepts into ssh-agent.`
                  : `Add your public key to ~${t.user}/.ssh/authorized_keys on ${t.host}, load the right key into ssh-agent, or set IdentityFile/User for this host in ~/.ssh/config.`,
                cause: err,
              },
            ),
          );
        }
        if (t.proxyCommand && err.level !== 'client-timeout') {
          return this.afterProxy(() => {
            const proxyErr = this.proxyStderr?.();
            fail(
              new SshUnreachableError('unreachable', `SSH connection to ${targetKey(t)} through ProxyCommand failed: ${err.message}${proxyErr ? ` (ProxyCommand said: ${proxyErr})` : ''}`, {
                remedy: `Check the ProxyCommand (${t.proxyCommand}) in your ssh config: run "ssh -v -- ${t.spec}" in a terminal.`,
                cause: err,
              }),
            );
          });
        }
        if (err.level === 'client-timeout') {
          return fail(
            new SshUnreachableError('unreachable', `SSH handshake with ${targetKey(t)} timed out`, {
              remedy: 'Check that an SSH server (not another service) listens on that port; Tether retries by itself.',
              cause: err,
            }),
          );
        }
        if ((err as NodeJS.ErrnoException).code && err.level === 'client-socket') return fail(describeSocketError(t, err as NodeJS.ErrnoException));
        return fail(
          new SshUnreachableError('unreachable', `SSH connection to ${targetKey(t)} failed: ${err.message}`, {
            remedy: 'Check the host and its sshd log; Tether retries by itself.',
            cause: err,
          }),
        );
      });
      client.once('close', () => this.afterProxy(() => {
        const proxyErr = this.proxyStderr?.();
        fail(
          t.proxyCommand
            ? new SshUnreachableError('unreachable', `The ProxyCommand of ${targetKey(t)} ended the connection during the handshake${proxyErr ? `: ${proxyErr}` : ''}`, {
                remedy: `Check the ProxyCommand (${t.proxyCommand}) in your ssh config: run "ssh -v -- ${t.spec}" in a terminal.`,
              })
            : new SshUnreachableError('unreachable', `${targetKey(t)} closed the connection during the handshake`, { remedy: 'Check the host\'s sshd log (MaxStartups, AllowUsers, DenyUsers).' }),
        );
      }));
      const methodQueue = [...methods];
      client.connect({
        sock: sock as unknown as NodeJS.ReadableStream & Duplex,
        username: t.user,
        keepaliveInterval: this.opts.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: this.opts.keepaliveCountMax ?? 3,
        readyTimeout: this.opts.readyTimeoutMs ?? 15_000,
        // Synchronous verdict; an unknown key is asked about after this attempt ends, so the
        // handshake timeout never runs while the user reads the fingerprint.
        hostVerifier: (key: Buffer): boolean => {
          const r = checkHostKey(files, keyHost, t.port, key);
          if (r.status === 'match') return true;
          if (r.status === 'unknown' && acceptedKey?.equals(key)) return true;
          if (r.status !== 'unknown') {
            keyVerdict = { kind: 'changed', error: new HostKeyChangedError(keyHost, t.port, r.fingerprint, r.file, r.line, r.status === 'revoked') };
            return false;
          }
          keyVerdict = { kind: 'unknown', key, fingerprint: r.fingerprint, otherKeyTypes: r.otherKeyTypes };
          return false;
        },
        authHandler: (_left: AuthenticationType[], _partial: boolean, next: (m: AnyAuthMethod | AuthenticationType | false) => void) => {
          const m = methodQueue.shift();
          next(m ?? false);
        },
      } as Parameters<Client['connect']>[0]);
    }).catch(async (err: unknown) => {
      if (err instanceof HostKeyUnknownError && keyVerdict?.kind === 'unknown' && !retriedAfterAccept) {
        const v = keyVerdict;
        // StrictHostKeyChecking: "yes" never accepts an unknown key (no prompt); "accept-new" and
        // "no" record it without asking, as ssh does; "ask" asks the callback.
        if (strict === 'yes') throw err;
        if (strict === 'accept-new' || strict === 'no') {
          if (writeTo) appendKnownHost(writeTo, keyHost, t.port, v.key, { hash: this.opts.hashKnownHosts ?? true });
          this.log.info(`ssh: StrictHostKeyChecking ${strict}: accepted the new host key of ${hostField(keyHost, t.port)} (${v.fingerprint})${writeTo ? ` and recorded it in ${writeTo}` : ''}`);
          return this.open(true, writeTo ? undefined : v.key);
        }
        if (!this.opts.onUnknownKey) throw err;
        const info: UnknownKeyInfo = {
          host: keyHost,
          port: t.port,
          keyType: keyTypeOf(v.key),
          fingerprint: v.fingerprint,
          otherKeyTypes: v.otherKeyTypes,
          knownHostsFile: writeTo ?? '(nowhere: UserKnownHostsFile none)',
        };
        const ok = await this.opts.onUnknownKey(v.fingerprint, info);
        if (!ok) throw new HostKeyUnknownError(keyHost, t.port, v.fingerprint, true);
        if (writeTo) {
          appendKnownHost(writeTo, keyHost, t.port, v.key, { hash: this.opts.hashKnownHosts ?? true });
          this.log.info(`ssh: recorded host key of ${hostField(keyHost, t.port)} (${v.fingerprint}) in ${writeTo}`);
        }
        return this.open(true, writeTo ? undefined : v.key);
      }
      throw err;
    });
    if (c !== client) return c; // came from the retry after accepting a key
    this.connects += 1;
    this.client = client;
    client.removeAllListeners('error');
    client.removeAllListeners('close');
    client.on('error', (err) => {
      this.log.debug(`ssh ${this.key}: ${err.message}`);
      this.lastError = err;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = undefined;
      this._state = this.closed ? 'idle' : 'unreachable';
      const err = new SshDroppedError('dropped', `The SSH connection to ${targetKey(t)} dropped`, {
        remedy: 'Tether reconnects on the next call; check the network or the host if it keeps happening.',
        ...(this.lastError ? { cause: this.lastError } : {}),
      });
      if (!this.closed) {
        this.lastError = err;
        this.log.warn(`ssh ${this.key}: connection dropped`);
      }
      for (const rej of this.pending) rej(err);
      this.pending.clear();
    });
    this.log.info(`ssh ${this.key}: connected`);
    return client;
  }

  /** Runs one command over the kept connection (connecting first if needed). */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const c = await this.ready();
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return new Promise<ExecResult>((resolve, reject) => {
      let done = false;
      let channel: ClientChannel | undefined;
      const finish = (err: Error | undefined, res?: ExecResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(onDrop);
        if (err) reject(err);
        else resolve(res!);
      };
      const onDrop = (err: Error) => finish(err);
      this.pending.add(onDrop);
      const timer = setTimeout(() => {
        try {
          channel?.close();
        } catch {
          /* already closed */
        }
        finish(
          new SshTimeoutError('timeout', `Command on ${targetKey(this.target)} took longer than ${timeoutMs} ms`, {
            remedy: 'The host may be overloaded or the connection stalled; Tether retries on the next poll.',
          }),
        );
      }, timeoutMs);
      try {
        c.exec(command, (err, stream) => {
          if (err) {
            const dropped = !this.client;
            return finish(
              dropped
                ? new SshDroppedError('dropped', `The SSH connection to ${targetKey(this.target)} dropped`, { remedy: 'Tether reconnects on the next call.', cause: err })
                : new SshError('protocol', `Cannot run a command on ${targetKey(this.target)}: ${err.message}`, {
                    remedy: 'The server may limit sessions (MaxSessions in sshd_config); retry later.',
                    cause: err,
                  }),
            );
          }
          channel = stream;
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let code: number | null = null;
          let signal: string | undefined;
          stream.on('data', (d: Buffer) => out.push(d));
          stream.stderr.on('data', (d: Buffer) => errOut.push(d));
          stream.on('exit', (c2: number | null, sig?: string) => {
            code = c2 ?? null;
            if (sig) signal = sig;
          });
          stream.on('close', () => {
            finish(undefined, {
              code,
              ...(signal ? { signal } : {}),
              stdout: Buffer.concat(out).toString('utf8'),
              stderr: Buffer.concat(errOut).toString('utf8'),
            });
          });
          if (opts.stdin !== undefined) stream.end(opts.stdin);
          else stream.end();
        });
      } catch (err) {
        finish(
          new SshDroppedError('dropped', `The SSH connection to ${targetKey(this.target)} dropped`, { remedy: 'Tether reconnects on the next call.', cause: err }),
        );
      }
    });
  }

  /** Forgets a passphrase kept in memory (e.g. after it changed in SecretStorage). */
  forgetPassphrase(keyFile: string): void {
    this.passphrases.delete(keyFile);
  }

  /** Drops the connection without ending anything remote; the next call reconnects. */
  reset(): void {
    this.client?.destroy();
  }

  /** Closes the connection; the next call reconnects. */
  close(): void {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    this._state = 'idle';
    c?.end();
  }
}

/** The one-connection-per-host registry. */
export class SshConnectionPool {
  private readonly conns = new Map<string, SshConnection>();

  constructor(readonly opts: SshConnectionOptions = {}) {}

  /** Resolves a spec (alias or user@host:port) with the pool's ssh config. */
  resolve(spec: string): SshTarget {
    return resolveHost(spec, this.opts.resolve);
  }

  /** The shared connection to a target or spec (not connected until used). */
  get(target: SshTarget | string): SshConnection {
    const t = typeof target === 'string' ? this.resolve(target) : target;
    // Two aliases of one user@host:port with different ProxyCommands are different connections.
    const k = t.proxyCommand ? `${targetKey(t)} via ProxyCommand ${t.proxyCommand}` : targetKey(t);
    let c = this.conns.get(k);
    if (!c) {
      c = new SshConnection(t, this.opts, this);
      this.conns.set(k, c);
    }
    return c;
  }

  all(): SshConnection[] {
    return [...this.conns.values()];
  }

  /** Forgets a key's passphrase in every connection (the next connect asks the callback again). */
  forgetPassphrase(keyFile: string): void {
    for (const c of this.conns.values()) c.forgetPassphrase(keyFile);
  }

  closeAll(): void {
    for (const c of this.conns.values()) c.close();
  }
}

