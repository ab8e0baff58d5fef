/**
 * SSH host specs → connection targets.
 *
 * A spec is either an alias of the user's ssh config or an explicit `user@host:port`
 * (`[v6addr]:port` for IPv6); explicit parts win over the config, as on ssh's command line.
 * When an `ssh` client is installed, OpenSSH itself resolves the spec (`ssh -G -- HOST`, cached
 * per host until a config file changes), so Include, Match (including `Match exec`, which runs
 * as it would for the user's own ssh), patterns, quoting, tokens and defaults are exactly what
 * the terminal's ssh uses. Without one, Tether's own parser (the `ssh-config` package plus
 * textual `Include` expansion) is the fallback, and the host's tooltip says so.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type SSHConfigLib from 'ssh-config';

/** Defined (true) in the webpack bundles; undefined when the TypeScript sources run as they are (tests, tsx). */
declare const __TETHER_BUNDLED__: boolean | undefined;

/**
 * The ssh_config parser (ssh-config), needed only where there is no `ssh` binary to ask (`ssh -G`
 * is the resolver): in the bundles it is a chunk of its own, loaded by {@link loadSshConfigParser}
 * on first need, so activation does not carry it.
 */
let sshConfigLib: typeof SSHConfigLib | undefined;
let sshConfigLoading: Promise<typeof SSHConfigLib> | undefined;

/** Loads the ssh_config parser (once; a failed load is tried again). */
export function loadSshConfigParser(): Promise<typeof SSHConfigLib> {
  sshConfigLoading ??= import('ssh-config').then(
    (m) => (sshConfigLib = ((m as { default?: typeof SSHConfigLib }).default ?? (m as unknown as typeof SSHConfigLib))),
    (err: unknown) => {
      sshConfigLoading = undefined;
      throw err;
    },
  );
  return sshConfigLoading;
}

function sshConfigParser(): typeof SSHConfigLib {
  if (sshConfigLib) return sshConfigLib;
  if (typeof __TETHER_BUNDLED__ === 'undefined') {
    // The sources as they are (tests): no chunks, load it now.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (sshConfigLib = require('ssh-config') as typeof SSHConfigLib);
  }
  void loadSshConfigParser().catch(() => undefined);
  throw new TetherError('the ssh_config parser is still loading (there is no ssh binary to ask)', { remedy: 'Tether tries again on the next poll; install OpenSSH (ssh -G) to resolve hosts exactly as ssh does.' });
}
import { TetherError, ExitCode } from '../../core/errors';
import { findOnPath } from '../../core/executables';
import { hostSpecProblem } from '../../core/config';

export { hostSpecProblem };

export interface SshTarget {
  /** The spec as the user wrote it (alias or user@host:port). */
  spec: string;
  /** What to connect to (after HostName). */
  host: string;
  port: number;
  user: string;
  /** Absolute paths, in the order to try; only files that exist when defaults are used. */
  identityFiles: string[];
  /** ProxyJump value (comma-separated jump specs), when set and not "none". */
  proxyJump?: string;
  /** The user came from the ssh config (a `User` line for this host), not from the spec or the local account. */
  userFromConfig?: boolean;
  /** ProxyCommand with %h %p %r %n %% expanded, run as `$SHELL -c "exec CMD"` like ssh does; absent when unset or "none". */
  proxyCommand?: string;
  /** UserKnownHostsFile (expanded; [] for "none"); absent: Tether's defaults. Accepted keys go to the first. */
  userKnownHostsFiles?: string[];
  /** GlobalKnownHostsFile (checked, never written). */
  globalKnownHostsFiles?: string[];
  /** StrictHostKeyChecking; absent: "ask". */
  strictHostKeyChecking?: StrictHostKeyChecking;
  /** CertificateFile entries (expanded). ssh2 cannot authenticate with OpenSSH certificates: see connection.ts. */
  certificateFiles?: string[];
  /** IdentitiesOnly: only the identity files' keys are offered (agent keys too, when they are among them). */
  identitiesOnly?: boolean;
  /** IdentityAgent: a socket path, or null for "none"; absent: SSH_AUTH_SOCK. */
  identityAgent?: string | null;
  /** HostKeyAlias: known_hosts is searched (and written) under this name instead of the host. */
  hostKeyAlias?: string;
  /** Who resolved the config: OpenSSH itself (`ssh -G`) or Tether's fallback parser (no ssh client installed). */
  resolvedBy?: 'ssh' | 'parser';
}

export type StrictHostKeyChecking = 'yes' | 'accept-new' | 'no' | 'ask';

export interface ResolveOptions {
  /** ssh config file; default ~/.ssh/config. A missing file is no error. */
  configPath?: string;
  /** Home folder for `~` and default identities; default os.homedir(). */
  homeDir?: string;
  /** Local user name, the default remote user; default os.userInfo().username. */
  localUser?: string;
  /**
   * The `ssh` client that resolves hosts (`ssh -G`); default `ssh` on PATH. null: never run it
   * (Tether's built-in parser only). With `configPath` set, ssh reads that file only (`-F`).
   * `localUser` only applies to the parser (ssh uses the real account); a `homeDir` (or $HOME)
   * other than the account's home is followed as described in resolveHostWithSsh.
   */
  sshBinary?: string | null;
}

export class HostSpecError extends TetherError {}

/** Splits `user@host:port`, `host`, `user@[::1]:2222`. Parts not given are undefined. */
export function parseHostSpec(spec: string): { user?: string; host: string; port?: number } {
  const problem = hostSpecProblem(spec);
  if (problem) {
    throw new HostSpecError(`Invalid SSH host ${JSON.stringify(spec)}: ${problem}`, {
      remedy: 'Use an alias from ~/.ssh/config or the form user@host:port.',
      exitCode: ExitCode.USAGE,
    });
  }
  const s = spec;
  const at = s.lastIndexOf('@');
  const user = at >= 0 ? s.slice(0, at) : undefined;
  let rest = at >= 0 ? s.slice(at + 1) : s;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    rest = v6[1]!;
    if (v6[2]) port = Number(v6[2]);
  } else {
    const m = /^([^:]+):(\d+)$/.exec(rest);
    if (m) {
      rest = m[1]!;
      port = Number(m[2]);
    }
  }
  if (!rest || (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) || user === '') {
    throw new HostSpecError(`Invalid SSH host "${spec}"`, {
      remedy: 'Use an alias from ~/.ssh/config or the form user@host:port (port 1–65535).',
      exitCode: ExitCode.USAGE,
    });
  }
  return { ...(user !== undefined ? { user } : {}), host: rest, ...(port !== undefined ? { port } : {}) };
}

function expandTokens(value: string, t: { home: string; host: string; origHost: string; user: string; localUser: string; port: number }): string {
  let v = value.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return t.home;
      case 'h':
        return t.host;
      case 'n':
        return t.origHost;
      case 'r':
        return t.user;
      case 'u':
        return t.localUser;
      case 'p':
        return String(t.port);
      default:
        return m;
    }
  });
  if (v === '~') v = t.home;
  else if (v.startsWith('~/')) v = path.join(t.home, v.slice(2));
  return v;
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519_sk', 'id_rsa', 'id_dsa'];

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The config text with its `Include` lines replaced by the files they name, in place (as OpenSSH
 * reads them): relative paths are under ~/.ssh, `~` is the home folder, `*` and `?` glob the last
 * path part (matches in lexical order), missing files are skipped, and nesting stops at 16 levels.
 */
export function expandIncludes(text: string, home: string, depth = 0): string {
  if (depth > 16) return '';
  return text
    .split(/\r?\n/)
    .map((line) => {
      const m = /^\s*include\s+(.+?)\s*$/i.exec(line);
      if (!m) return line;
      const parts = m[1]!.match(/"[^"]*"|\S+/g) ?? [];
      const out: string[] = [];
      for (const raw of parts) {
        let p = raw.replace(/^"|"$/g, '');
        if (p === '~' || p.startsWith('~/')) p = path.join(home, p.slice(1));
        else if (!path.isAbsolute(p)) p = path.join(home, '.ssh', p);
        for (const file of globFiles(p)) {
          try {
            out.push(expandIncludes(fs.readFileSync(file, 'utf8'), home, depth + 1));
          } catch {
            /* unreadable: skipped, as ssh does */
          }
        }
      }
      return out.join('\n');
    })
    .join('\n');
}

function globFiles(p: string): string[] {
  const base = path.basename(p);
  if (!/[*?]/.test(base)) return fs.existsSync(p) ? [p] : [];
  const dir = path.dirname(p);
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => re.test(f) && !f.startsWith('.'))
      .sort()
      .map((f) => path.join(dir, f))
      .filter((f) => fs.statSync(f).isFile());
  } catch {
    return [];
  }
}

/**
 * Resolves a spec with Tether's own parser (the `ssh-config` package plus textual `Include`
 * expansion). Only a fallback for machines without an `ssh` client: it disagrees with OpenSSH on
 * some configs (Include inside a Host block, Match, several tokens) and ignores ProxyCommand,
 * UserKnownHostsFile, StrictHostKeyChecking and CertificateFile.
 */
export function resolveHostWithParser(spec: string, opts: ResolveOptions = {}): SshTarget {
  const home = opts.homeDir ?? os.homedir();
  const localUser = opts.localUser ?? safeUser();
  const configPath = opts.configPath ?? path.join(home, '.ssh', 'config');
  const parsed = parseHostSpec(spec);
  let computed: Record<string, string | string[]> = {};
  let text: string | undefined;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    try {
      const cfg = sshConfigParser().parse(expandIncludes(text, home));
      // `Match exec` would run commands from the config: never for a host lookup.
      computed = cfg.compute(
        parsed.user !== undefined ? { Host: parsed.host, User: parsed.user } : { Host: parsed.host },
        { ignoreCase: true, matchExec: false },
      );
    } catch (err) {
      throw new HostSpecError(`Cannot parse ${configPath}: ${(err as Error).message}`, {
        remedy: `Fix the file (see man ssh_config) or remove the entry for ${parsed.host}.`,
        cause: err,
      });
    }
  }
  const user = parsed.user ?? first(computed.user) ?? localUser;
  const portText = first(computed.port);
  const port = parsed.port ?? (portText !== undefined ? Number(portText) : 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HostSpecError(`${configPath}: invalid Port "${portText}" for ${parsed.host}`, {
      remedy: 'Use a port number 1–65535.',
      exitCode: ExitCode.USAGE,
    });
  }
  const tokens = { home, host: parsed.host, origHost: parsed.host, user, localUser, port };
  const hostName = first(computed.hostname);
  const host = hostName ? expandTokens(hostName, tokens) : parsed.host;
  tokens.host = host;
  const configured = computed.identityfile;
  const idList = configured === undefined ? [] : Array.isArray(configured) ? configured : [configured];
  let identityFiles = idList.filter((f) => f.toLowerCase() !== 'none').map((f) => expandTokens(f, tokens));
  identityFiles = identityFiles.map((f) => (path.isAbsolute(f) ? f : path.join(home, '.ssh', f)));
  if (identityFiles.length === 0) {
    identityFiles = DEFAULT_IDENTITIES.map((n) => path.join(home, '.ssh', n)).filter((f) => fs.existsSync(f));
  }
  const jump = first(computed.proxyjump);
  return {
    spec,
    host,
    port,
    user,
    identityFiles: [...new Set(identityFiles)],
    ...(jump && jump.toLowerCase() !== 'none' ? { proxyJump: jump } : {}),
    ...(parsed.user === undefined && first(computed.user) !== undefined ? { userFromConfig: true } : {}),
    resolvedBy: 'parser',
  };
}

/** `user@host:port`, the canonical key of a target (one connection per key). */
export function targetKey(t: Pick<SshTarget, 'user' | 'host' | 'port'> & { proxyJump?: string }): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${h}:${t.port}${t.proxyJump ? ` via ${t.proxyJump}` : ''}`;
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

// ---------------------------------------------------------------------------------------------
// Resolution by OpenSSH itself: `ssh -G`.

/**
 * Resolves a spec into a connection target. When an `ssh` client is installed, OpenSSH itself
 * reads the config (`ssh -G -- HOST`: Include, Match, patterns, quoting and defaults exactly as
 * the terminal's ssh sees them); Tether's own parser is only the fallback without one.
 * Cached per host; a cached answer is dropped when a config file ssh read (or an Include
 * target/folder) changes size or mtime.
 */
export function resolveHost(spec: string, opts: ResolveOptions = {}): SshTarget {
  const bin = sshBinaryFor(opts);
  if (!bin) return resolveHostWithParser(spec, opts);
  return resolveHostWithSsh(spec, bin, opts);
}

/** Shown with a host when no ssh client is installed (the host's tooltip in VS Code). */
export const FALLBACK_RESOLVER_NOTE =
  'No ssh client found: ~/.ssh/config is read by Tether\'s built-in parser, which can differ from OpenSSH (Match, Include inside Host, some tokens) and ignores ProxyCommand, UserKnownHostsFile, StrictHostKeyChecking and CertificateFile. Install OpenSSH (ssh) for exact resolution.';

/** The ssh client `resolveHost` runs for these options, or undefined (then the parser is used). */
export function sshBinaryFor(opts: ResolveOptions = {}): string | undefined {
  if (opts.sshBinary === null) return undefined;
  return findOnPath(opts.sshBinary ?? 'ssh');
}

interface FileStamp {
  file: string;
  stamp: string;
}

interface CacheEntry {
  target: SshTarget;
  stamps: FileStamp[];
}

const cache = new Map<string, CacheEntry>();

function stampOf(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/** Forgets every cached resolution (the next resolve runs `ssh -G` again). */
export function clearHostCache(): void {
  cache.clear();
}

/** How many `ssh -G` runs resolveHost made (for tests of the cache). */
export const sshGStats = { runs: 0 };

/** Local facts the tokens stand for (as OpenSSH computes them: the account's home, not $HOME). */
function localFacts(): { home: string; user: string; uid: string; hostname: string } {
  let info: os.UserInfo<string> | undefined;
  try {
    info = os.userInfo();
  } catch {
    info = undefined;
  }
  return {
    home: info?.homedir ?? os.homedir(),
    user: info?.username ?? process.env.USER ?? 'root',
    uid: String(process.getuid?.() ?? info?.uid ?? 0),
    hostname: os.hostname(),
  };
}

let versionCache: { bin: string; version: [number, number] } | undefined;

/** The OpenSSH version of a client (`ssh -V`), e.g. [9, 2]; [0, 0] when unknown. */
export function sshVersion(bin: string): [number, number] {
  if (versionCache?.bin === bin) return versionCache.version;
  const r = spawnSync(bin, ['-V'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
  const version: [number, number] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  versionCache = { bin, version };
  return version;
}

/** `ssh -G` output: keyword → values (one per line; identityfile, certificatefile... repeat). */
export function parseSshG(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line);
    if (!m) continue;
    const k = m[1]!.toLowerCase();
    const list = out.get(k) ?? [];
    list.push(m[2]!);
    out.set(k, list);
  }
  return out;
}

export interface TokenContext {
  /** %d and ~: the local account's home. */
  home: string;
  /** %h: the remote host name (after HostName). */
  host: string;
  /** %n: the host as given. */
  origHost: string;
  /** %k: HostKeyAlias, else %n. */
  keyAlias: string;
  /** %p, %r, %u, %i, %l (full local host name), %L (up to its first dot), %j (ProxyJump or ""). */
  port: number;
  user: string;
  localUser: string;
  uid: string;
  localHost: string;
  jump: string;
  /** OpenSSH ≥ 9.4 knows %j and hashes it into %C; older ones refuse %j. */
  withJump: boolean;
}

/** %C: sha1 hex of %l%h%p%r (and %j from OpenSSH 9.4 on), as ssh computes it. */
export function connectionHash(t: TokenContext): string {
  return createHash('sha1')
    .update(`${t.localHost}${t.host}${t.port}${t.user}${t.withJump ? t.jump : ''}`)
    .digest('hex');
}

/**
 * Expands a path-like value as ssh does for IdentityFile and CertificateFile: `~` first, then
 * `${VAR}` and the tokens %% %C %d %h %i %j %k %L %l %n %p %r %u. An unknown token or an unset
 * variable is an error, as it is for ssh.
 */
export function expandPathValue(value: string, t: TokenContext, what: string): string {
  let v = value;
  if (v === '~') v = t.home;
  else if (v.startsWith('~/')) v = t.home + v.slice(1);
  const fail = (why: string) =>
    new HostSpecError(`${what} "${value}" for ${t.origHost}: ${why}`, {
      remedy: 'Fix the value in your ssh config (see TOKENS and ENVIRONMENT VARIABLES in man ssh_config).',
      exitCode: ExitCode.USAGE,
    });
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '$' && v[i + 1] === '{') {
      const end = v.indexOf('}', i + 2);
      if (end < 0) throw fail('unterminated ${');
      const name = v.slice(i + 2, end);
      const val = process.env[name];
      if (val === undefined) throw fail(`environment variable \${${name}} is not set`);
      out += val;
      i = end;
      continue;
    }
    if (c !== '%') {
      out += c;
      continue;
    }
    const k = v[++i];
    const map: Record<string, string | undefined> = {
      '%': '%',
      C: connectionHash(t),
      d: t.home,
      h: t.host,
      i: t.uid,
      j: t.withJump ? t.jump : undefined,
      k: t.keyAlias,
      L: t.localHost.split('.')[0]!,
      l: t.localHost,
      n: t.origHost,
      p: String(t.port),
      r: t.user,
      u: t.localUser,
    };
    const val = k === undefined ? undefined : map[k];
    if (val === undefined) throw fail(k === undefined ? 'a "%" at the end' : `unknown token %${k}`);
    out += val;
  }
  return out;
}

/** ProxyCommand's tokens (%% %h %n %p %r), as ssh expands them before running the command. */
export function expandProxyCommand(value: string, t: Pick<TokenContext, 'host' | 'origHost' | 'port' | 'user'>): string {
  return value.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'h':
        return t.host;
      case 'n':
        return t.origHost;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      default:
        throw new HostSpecError(`ProxyCommand "${value}" for ${t.origHost}: unknown token ${m}`, {
          remedy: 'ProxyCommand accepts %%, %h, %n, %p and %r (man ssh_config).',
          exitCode: ExitCode.USAGE,
        });
    }
  });
}

function strictOf(v: string | undefined): StrictHostKeyChecking {
  switch ((v ?? 'ask').toLowerCase()) {
    case 'true':
    case 'yes':
      return 'yes';
    case 'false':
    case 'no':
    case 'off':
      return 'no';
    case 'accept-new':
      return 'accept-new';
    default:
      return 'ask';
  }
}

/** Runs `ssh [-F FILE] -v -G [-l USER] [-p PORT] -- HOST`: the config as OpenSSH resolves it, and the files it read. */
function runSshG(bin: string, parsed: { user?: string; host: string; port?: number }, configPath: string | undefined): { out: Map<string, string[]>; files: string[] } {
  const args = [
    ...(configPath !== undefined ? ['-F', configPath] : []),
    '-v',
    '-G',
    ...(parsed.user !== undefined ? ['-l', parsed.user] : []),
    ...(parsed.port !== undefined ? ['-p', String(parsed.port)] : []),
    '--',
    parsed.host,
  ];
  sshGStats.runs += 1;
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 4 * 1024 * 1024 });
  const stderr = r.stderr ?? '';
  if (r.error || r.status !== 0) {
    const why = (r.error?.message ?? stderr.split('\n').filter((l) => l && !l.startsWith('debug') && !l.startsWith('OpenSSH_') && !/^Pseudo-terminal/.test(l)).join('; ')) || `exit ${r.status}`;
    throw new HostSpecError(`ssh cannot resolve ${parsed.host}: ${why}`, {
      remedy: `Check your ssh config: run "ssh -G -- ${parsed.host}" in a terminal to see the same error.`,
      exitCode: ExitCode.USAGE,
    });
  }
  const files: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^debug\d: Reading configuration data (.+)$/.exec(line.trimEnd());
    if (m) files.push(m[1]!);
  }
  return { out: parseSshG(r.stdout ?? ''), files };
}

/**
 * The files whose change can change an answer: those ssh read, the default config files (read
 * or not), and every Include target named in them (its folder too, for globs and new files).
 */
function trackedFiles(read: string[], configPath: string | undefined, home: string): string[] {
  const out = new Set<string>(read.map((f) => path.resolve(f)));
  if (configPath === undefined) {
    out.add(path.join(home, '.ssh', 'config'));
    out.add('/etc/ssh/ssh_config');
  } else out.add(path.resolve(configPath));
  for (const f of [...out]) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const base = f.startsWith('/etc/ssh/') ? '/etc/ssh' : path.join(home, '.ssh');
    for (const line of text.split(/\r?\n/)) {
      const m = /^\s*include(?:\s*=\s*|\s+)(.+?)\s*$/i.exec(line);
      if (!m) continue;
      for (const raw of m[1]!.match(/"[^"]*"|[^\s"]+/g) ?? []) {
        let p = raw.replace(/^"|"$/g, '');
        if (p === '~' || p.startsWith('~/')) p = path.join(home, p.slice(1));
        else if (!path.isAbsolute(p)) p = path.join(base, p);
        out.add(path.dirname(p));
        if (!/[*?[]/.test(p)) out.add(p);
      }
    }
  }
  return [...out];
}

/** Resolves a spec with `ssh -G` (cached until a tracked config file changes). */
export function resolveHostWithSsh(spec: string, bin: string, opts: ResolveOptions = {}): SshTarget {
  const parsed = parseHostSpec(spec);
  const key = JSON.stringify([bin, opts.configPath ?? null, opts.homeDir ?? os.homedir(), spec]);
  const hit = cache.get(key);
  if (hit && hit.stamps.every((s) => stampOf(s.file) === s.stamp)) return structuredClone(hit.target);
  const real = localFacts();
  // OpenSSH takes the home folder from the passwd entry, never $HOME. Tether keeps following
  // $HOME (os.homedir(), or `homeDir`) when it differs — a sandbox, a test, sudo with another
  // HOME — by reading $HOME/.ssh/config with -F and mapping the account's home to it in the answer.
  const home = path.resolve(opts.homeDir ?? os.homedir());
  const moved = home !== path.resolve(real.home);
  let configPath = opts.configPath;
  if (configPath === undefined && moved) {
    const own = path.join(home, '.ssh', 'config');
    configPath = fs.existsSync(own) ? own : '/dev/null';
  }
  const wanted = configPath;
  // A missing config file is no error (as for ssh's own ~/.ssh/config); its creation invalidates the answer.
  if (configPath !== undefined && !fs.existsSync(configPath)) configPath = '/dev/null';
  const local = { ...real, home };
  // Stamped before ssh reads them: a change during the run invalidates the answer next time.
  const { out, files } = runSshG(bin, parsed, configPath);
  if (moved) {
    const from = path.resolve(real.home);
    for (const k of ['userknownhostsfile', 'identityagent']) {
      const v = out.get(k);
      if (v) out.set(k, v.map((x) => x.split(' ').map((f) => (f === from || f.startsWith(`${from}/`) ? home + f.slice(from.length) : f)).join(' ')));
    }
  }
  const target = mapSshG(spec, out, { ...local, version: sshVersion(bin) });
  if (parsed.user === undefined && !target.userFromConfig && target.user === local.user) {
    // ssh -G cannot say whether a "User" line named the local account itself; the parser can.
    try {
      if (resolveHostWithParser(spec, opts).userFromConfig) target.userFromConfig = true;
    } catch {
      /* the parser disagrees with the file: ssh's answer stands */
      // The parser not loaded yet (bundles, first use): this answer is not the whole one: not kept.
      if (!sshConfigLib && typeof __TETHER_BUNDLED__ !== 'undefined') return structuredClone(target);
    }
  }
  const stamps = trackedFiles(wanted !== undefined ? [...files, wanted] : files, configPath, local.home).map((file) => ({ file, stamp: stampOf(file) }));
  cache.set(key, { target, stamps });
  return structuredClone(target);
}

/**
 * Maps `ssh -G` output into Tether's host model. Values ssh -G prints already expanded
 * (HostName, UserKnownHostsFile, IdentityAgent) are taken as they are; IdentityFile and
 * CertificateFile (printed raw) are expanded as ssh does when it connects.
 */
export function mapSshG(
  spec: string,
  g: Map<string, string[]>,
  local: { home: string; user: string; uid: string; hostname: string; version: [number, number] },
): SshTarget {
  const one = (k: string): string | undefined => g.get(k)?.[0];
  const parsed = parseHostSpec(spec);
  const user = one('user') ?? local.user;
  const host = one('hostname') ?? parsed.host;
  const port = Number(one('port') ?? '22');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HostSpecError(`ssh -G gave an invalid port "${one('port')}" for ${parsed.host}`, { remedy: 'Fix Port in your ssh config.', exitCode: ExitCode.USAGE });
  }
  const jumpRaw = one('proxyjump');
  const jump = jumpRaw && jumpRaw.toLowerCase() !== 'none' ? jumpRaw : undefined;
  const [maj, min] = local.version;
  const t: TokenContext = {
    home: local.home,
    host,
    origHost: parsed.host,
    keyAlias: one('hostkeyalias') ?? parsed.host,
    port,
    user,
    localUser: local.user,
    uid: local.uid,
    localHost: local.hostname,
    jump: jump ?? '',
    withJump: maj > 9 || (maj === 9 && min >= 4),
  };
  const identityFiles = (g.get('identityfile') ?? []).filter((f) => f.toLowerCase() !== 'none').map((f) => expandPathValue(f, t, 'IdentityFile'));
  const certificateFiles = (g.get('certificatefile') ?? []).filter((f) => f.toLowerCase() !== 'none').map((f) => expandPathValue(f, t, 'CertificateFile'));
  const pcRaw = one('proxycommand');
  const proxyCommand = pcRaw && pcRaw.toLowerCase() !== 'none' ? expandProxyCommand(pcRaw, t) : undefined;
  const split = (v: string | undefined) => (v === undefined ? undefined : v.toLowerCase() === 'none' ? [] : v.split(/\s+/).filter(Boolean));
  const agentRaw = one('identityagent');
  const identityAgent =
    agentRaw === undefined || agentRaw === 'SSH_AUTH_SOCK' ? undefined : agentRaw.toLowerCase() === 'none' ? null : agentRaw.startsWith('$') ? process.env[agentRaw.slice(1)] ?? null : agentRaw;
  const userKnownHostsFiles = split(one('userknownhostsfile'));
  const globalKnownHostsFiles = split(one('globalknownhostsfile'));
  return {
    spec,
    host,
    port,
    user,
    identityFiles: [...new Set(identityFiles)],
    ...(jump ? { proxyJump: jump } : {}),
    ...(parsed.user === undefined && user !== local.user ? { userFromConfig: true } : {}),
    ...(proxyCommand ? { proxyCommand } : {}),
    ...(userKnownHostsFiles ? { userKnownHostsFiles } : {}),
    ...(globalKnownHostsFiles ? { globalKnownHostsFiles } : {}),
    strictHostKeyChecking: strictOf(one('stricthostkeychecking')),
    ...(certificateFiles.length ? { certificateFiles } : {}),
    identitiesOnly: (one('identitiesonly') ?? 'no').toLowerCase() === 'yes' || one('identitiesonly') === 'true',
    ...(identityAgent !== undefined ? { identityAgent } : {}),
    ...(one('hostkeyalias') !== undefined ? { hostKeyAlias: one('hostkeyalias')! } : {}),
    resolvedBy: 'ssh',
  };
}
