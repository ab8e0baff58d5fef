/**
 * known_hosts verification, as OpenSSH does it: plain and hashed (`|1|salt|hash`) host fields,
 * comma-separated patterns with `*`, `?` and `!` negation, `[host]:port` for non-22 ports.
 * `@revoked` keys are refused; `@cert-authority` lines are skipped (certificates are not
 * supported, so they can neither match nor count as a changed key).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { TetherError } from '../../core/errors';

export type HostKeyCheck =
  | { status: 'match'; file: string; line: number }
  | {
      status: 'unknown';
      fingerprint: string;
      keyType: string;
      /** Key types this host is known with (a different type is no proof of a change). */
      otherKeyTypes: string[];
    }
  | { status: 'changed' | 'revoked'; fingerprint: string; keyType: string; file: string; line: number };

/** `SHA256:<base64 without padding>` of a raw public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** The key type named inside a raw public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`...). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  if (len <= 0 || len > 64 || 4 + len > key.length) return 'unknown';
  return key.subarray(4, 4 + len).toString('latin1');
}

/** The host field ssh writes and looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostField(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(p: string): RegExp {
  const esc = p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, 'i');
}

function hashedMatches(entry: string, name: string): boolean {
  const parts = entry.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const want = Buffer.from(parts[3]!, 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && want.equals(got);
}

/** True when a known_hosts host field (patterns or one hash) names this host:port. */
export function hostFieldMatches(field: string, host: string, port: number): boolean {
  const name = hostField(host, port);
  if (field.startsWith('|')) return hashedMatches(field, name);
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pat = negated ? raw.slice(1) : raw;
    if (!pat) continue;
    // A pattern of the form [host]:port only matches that port; a bare pattern only port 22.
    if (globToRegExp(pat).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

interface Entry {
  file: string;
  line: number;
  marker?: string;
  hosts: string;
  keyType: string;
  key: Buffer;
}

function* entries(file: string): Generator<Entry> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (!l || l.startsWith('#')) continue;
    const f = l.split(/\s+/);
    let marker: string | undefined;
    if (f[0]!.startsWith('@')) marker = f.shift();
    if (f.length < 3) continue;
    const key = Buffer.from(f[2]!, 'base64');
    if (key.length === 0) continue;
    yield { file, line: i + 1, ...(marker ? { marker } : {}), hosts: f[0]!, keyType: f[1]!, key };
  }
}

/** Checks a server's raw public key against known_hosts files (first match decides, like ssh). */
export function checkHostKey(files: readonly string[], host: string, port: number, key: Buffer): HostKeyCheck {
  const keyType = keyTypeOf(key);
  const fingerprint = fingerprintOf(key);
  let match: { file: string; line: number } | undefined;
  let changed: { file: string; line: number } | undefined;
  const otherKeyTypes = new Set<string>();
  for (const file of files) {
    for (const e of entries(file)) {
      if (e.marker === '@cert-authority') continue;
      if (!hostFieldMatches(e.hosts, host, port)) continue;
      if (e.marker === '@revoked') {
        if (e.key.equals(key)) return { status: 'revoked', fingerprint, keyType, file: e.file, line: e.line };
        continue;
      }
      if (e.marker) continue; // unknown marker: ignore the line
      if (e.key.equals(key)) match ??= { file: e.file, line: e.line };
      else if (e.keyType === keyType || keyTypeOf(e.key) === keyType) changed ??= { file: e.file, line: e.line };
      else otherKeyTypes.add(e.keyType);
    }
  }
  // A revoked key was returned above; a matching line wins over a stale one of the same type,
  // as in OpenSSH (it accepts when any line matches).
  if (match) return { status: 'match', ...match };
  if (changed) return { status: 'changed', fingerprint, keyType, ...changed };
  return { status: 'unknown', fingerprint, keyType, otherKeyTypes: [...otherKeyTypes] };
}

/** Appends an accepted key (hashed by default, like `HashKnownHosts yes`). Creates the file 0600. */
export function appendKnownHost(file: string, host: string, port: number, key: Buffer, opts: { hash?: boolean } = {}): string {
  const name = hostField(host, port);
  let field = name;
  if (opts.hash ?? true) {
    const salt = randomBytes(20);
    field = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  }
  const line = `${field} ${keyTypeOf(key)} ${key.toString('base64')}\n`;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const cur = fs.readFileSync(file, 'utf8');
    if (cur.length && !cur.endsWith('\n')) prefix = '\n';
  } catch {
    /* new file */
  }
  fs.appendFileSync(file, prefix + line, { mode: 0o600 });
  return line.trimEnd();
}

/** The server presented a key different from the one recorded: possibly an attack. Refused. */
export class HostKeyChangedError extends TetherError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly fingerprint: string,
    readonly file: string,
    readonly line: number,
    revoked = false,
  ) {
    super(
      revoked
        ? `REFUSED: the host key of ${hostField(host, port)} (${fingerprint}) is marked @revoked in ${file}:${line}`
        : `REFUSED: the host key of ${hostField(host, port)} has CHANGED (now ${fingerprint}); it does not match ${file}:${line}. Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled`,
      {
        remedy: revoked
          ? 'Do not connect; ask the host administrator for a new host key.'
          : `Verify the new fingerprint with the host's administrator; if it is legitimate, remove line ${line} of ${file} (ssh-keygen -R "${hostField(host, port)}" -f ${file}) and connect again.`,
      },
    );
  }
}

/** The user declined (or could not be asked about) an unknown host key. */
export class HostKeyUnknownError extends TetherError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly fingerprint: string,
    asked: boolean,
    /** Why no one was asked, when a setting forbids it (e.g. "StrictHostKeyChecking yes"). */
    readonly refusedBy?: string,
  ) {
    super(
      asked
        ? `The host key of ${hostField(host, port)} (${fingerprint}) was not accepted`
        : refusedBy
          ? `REFUSED: the host key of ${hostField(host, port)} (${fingerprint}) is not in known_hosts and your ssh config says ${refusedBy}`
          : `The host key of ${hostField(host, port)} (${fingerprint}) is unknown and there is no one to ask`,
      {
        remedy: asked
          ? 'Connect again and accept the key once you have checked its fingerprint with the host administrator.'
          : refusedBy
            ? `Check the fingerprint with the host's administrator, then add the key to your known_hosts file (ssh-keyscan -p ${port} ${host} >> FILE after checking it); Tether never accepts an unknown key under ${refusedBy}.`
            : `Check the fingerprint, then connect once with ssh and accept it (ssh -p ${port} -- ${host} true), or accept it when Tether in VS Code asks.`,
      },
    );
  }
}
