/**
 * SSH host specs → connection targets.
 *
 * A spec is either an alias of the user's `~/.ssh/config` (Host patterns, HostName, User, Port,
 * IdentityFile, ProxyJump are honoured, first obtained value wins, as in ssh_config(5)) or an
 * explicit `user@host:port` (`[v6addr]:port` for IPv6). Explicit parts of the spec win over the
 * config, as they do on ssh's command line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import SSHConfig from 'ssh-config';
import { TetherError, ExitCode } from '../../core/errors';

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
}

export interface ResolveOptions {
  /** ssh config file; default ~/.ssh/config. A missing file is no error. */
  configPath?: string;
  /** Home folder for `~` and default identities; default os.homedir(). */
  homeDir?: string;
  /** Local user name, the default remote user; default os.userInfo().username. */
  localUser?: string;
}

export class HostSpecError extends TetherError {}

/** Splits `user@host:port`, `host`, `user@[::1]:2222`. Parts not given are undefined. */
export function parseHostSpec(spec: string): { user?: string; host: string; port?: number } {
  const s = spec.trim();
  if (!s || /[\s'"`$\\;|&<>(){}]/.test(s)) {
    throw new HostSpecError(`Invalid SSH host "${spec}"`, {
      remedy: 'Use an alias from ~/.ssh/config or the form user@host:port.',
      exitCode: ExitCode.USAGE,
    });
  }
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

/** Resolves a spec against the ssh config into a connection target. */
export function resolveHost(spec: string, opts: ResolveOptions = {}): SshTarget {
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
      const cfg = SSHConfig.parse(expandIncludes(text, home));
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
