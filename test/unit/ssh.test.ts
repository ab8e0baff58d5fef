import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHostSpec, resolveHost, targetKey } from '../../src/backends/ssh/hosts';
import { appendKnownHost, checkHostKey, fingerprintOf, hostFieldMatches, keyTypeOf } from '../../src/backends/ssh/knownHosts';
import { buildPollScript, buildStartScript, parseNvidiaSmi, parsePollOutput, parseStopOutput, shQuote } from '../../src/backends/ssh/remote';
import { tmpDir } from '../helpers/tmp';

/** An ssh-ed25519 public key blob (string "ssh-ed25519" + 32-byte key). */
function edBlob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const t = Buffer.from('ssh-ed25519');
  const b = Buffer.alloc(4 + t.length + 4 + raw.length);
  b.writeUInt32BE(t.length, 0);
  t.copy(b, 4);
  b.writeUInt32BE(raw.length, 4 + t.length);
  raw.copy(b, 8 + t.length);
  return b;
}

describe('ssh: shell quoting', () => {
  const hostile = ["a'; touch /tmp/pwned #", "'", "''", '$(id)', '`id`', '"$HOME"', 'a\nb', '\\', '*', '!', ' ', '', 'é😀'];
  it('round-trips every hostile string through a real /bin/sh unchanged', () => {
    for (const s of hostile) {
      const out = execFileSync('/bin/sh', ['-c', `printf '%s' ${shQuote(s)}`], { encoding: 'utf8' });
      assert.equal(out, s);
    }
  });
  it('refuses NUL bytes', () => {
    assert.throws(() => shQuote('a\0b'), /NUL/);
  });
  it('start script: hostile name/args/env stay data; bad env names and ids are refused', () => {
    const s = buildStartScript({ id: 'id-1', plugin: "x'; rm -rf ~ #", command: 'echo', args: ["a'; touch /tmp/pwned #"], env: { V: "'; id #" } });
    assert.ok(s.includes(shQuote("a'; touch /tmp/pwned #")));
    assert.throws(() => buildStartScript({ id: 'id-1', plugin: 'p', command: 'echo', args: [], env: { 'A;B': 'x' } }), /environment variable name/);
    assert.throws(() => buildStartScript({ id: "x'y", plugin: 'p', command: 'echo', args: [] }), /invalid resource id/);
    assert.throws(() => buildStartScript({ id: 'ok', plugin: 'p', command: '-x', args: [] }), /invalid command/);
    assert.throws(() => buildPollScript([{ id: 'a b', known: [] }]), /invalid resource id/);
  });
});

describe('ssh: host specs and ~/.ssh/config', () => {
  it('parses user@host:port, host, [v6]:port', () => {
    assert.deepEqual(parseHostSpec('alice@gpu1:2222'), { user: 'alice', host: 'gpu1', port: 2222 });
    assert.deepEqual(parseHostSpec('gpu1'), { host: 'gpu1' });
    assert.deepEqual(parseHostSpec('bob@[::1]:22'), { user: 'bob', host: '::1', port: 22 });
    assert.throws(() => parseHostSpec('a;b'), /Invalid SSH host/);
    assert.throws(() => parseHostSpec('h:70000'), /Invalid SSH host/);
    assert.throws(() => parseHostSpec('-oProxyCommand=./x.sh'), /starts with "-", so ssh would read it as an option/);
    assert.throws(() => parseHostSpec('u@-oProxyCommand=./x.sh'), /host part starts with "-"/);
    assert.throws(() => parseHostSpec('a\u0001b'), /control character/);
    assert.throws(() => parseHostSpec('a\tb'), /control character/);
    assert.throws(() => parseHostSpec(' host'), /whitespace/);
  });
  it('honours Host patterns, HostName (%h), User, Port, IdentityFile (~, %d), ProxyJump; explicit parts win', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'config');
    fs.writeFileSync(
      cfg,
      'Host gpu-*\n  HostName %h.lab.example\n  Port 2200\n  IdentityFile ~/.ssh/lab\n  ProxyJump bastion\nHost db\n  HostName 10.0.0.5\n  User alice\n  ProxyJump none\nHost *\n  User bob\n  IdentityFile %d/.ssh/all\n',
    );
    // Tether's fallback parser (no ssh client); test/unit/ssh-resolve.test.ts covers ssh -G.
    const o = { configPath: cfg, homeDir: '/home/u', localUser: 'u', sshBinary: null };
    assert.deepEqual(resolveHost('gpu-7', o), {
      spec: 'gpu-7',
      host: 'gpu-7.lab.example',
      port: 2200,
      user: 'bob',
      identityFiles: ['/home/u/.ssh/lab', '/home/u/.ssh/all'],
      proxyJump: 'bastion',
      userFromConfig: true,
      resolvedBy: 'parser',
    });
    const db = resolveHost('carol@db:23', o);
    assert.equal(db.host, '10.0.0.5');
    assert.equal(db.user, 'carol');
    assert.equal(db.userFromConfig, undefined, 'the spec named the user');
    assert.equal(db.port, 23);
    assert.equal(db.proxyJump, undefined);
    const plain = resolveHost('x.example', { ...o, configPath: path.join(dir, 'missing') });
    assert.equal(plain.user, 'u');
    assert.equal(plain.userFromConfig, undefined, 'the local account');
    assert.equal(plain.port, 22);
    assert.equal(targetKey(plain), 'u@x.example:22');
  });
});

describe('ssh: Include in ~/.ssh/config', () => {
  it('reads included files in place: relative to ~/.ssh, ~, globs in lexical order, nested; missing ones skipped', () => {
    const home = tmpDir();
    const ssh = path.join(home, '.ssh');
    fs.mkdirSync(path.join(ssh, 'config.d'), { recursive: true });
    fs.writeFileSync(path.join(ssh, 'config.d', '20-lab'), 'Host lab-*\n  HostName %h.example\n  User second\n');
    fs.writeFileSync(path.join(ssh, 'config.d', '10-lab'), 'Host lab-*\n  User first\n  Include ~/.ssh/nested\n');
    fs.writeFileSync(path.join(ssh, 'config.d', '.hidden'), 'Host lab-*\n  User hidden\n');
    fs.writeFileSync(path.join(ssh, 'nested'), 'Port 2222\n');
    const cfg = path.join(ssh, 'config');
    fs.writeFileSync(cfg, 'Include config.d/*\nInclude "missing file"\nHost *\n  User fallback\n');
    const o = { configPath: cfg, homeDir: home, localUser: 'u', sshBinary: null };
    const t = resolveHost('lab-7', o);
    // First value wins, as in ssh: 10-lab (lexically first) sets the user; the nested file the port.
    assert.equal(t.user, 'first');
    assert.equal(t.port, 2222);
    assert.equal(t.host, 'lab-7.example');
    assert.equal(resolveHost('elsewhere', o).user, 'fallback');
    // An include loop ends (depth limit) instead of hanging.
    fs.writeFileSync(path.join(ssh, 'loop'), 'Include loop\n');
    fs.writeFileSync(cfg, 'Include loop\nHost x\n  User y\n');
    assert.equal(resolveHost('x', o).user, 'y');
  });
});

describe('ssh: known_hosts', () => {
  const key = edBlob();
  const other = edBlob();
  const b64 = (k: Buffer) => k.toString('base64');
  it('fingerprints like ssh-keygen -lf (SHA256, base64 without padding)', () => {
    assert.equal(fingerprintOf(key), 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, ''));
    assert.equal(keyTypeOf(key), 'ssh-ed25519');
  });
  it('matches plain, patterns, negations, [host]:port and hashed entries', () => {
    assert.ok(hostFieldMatches('gpu1,10.0.0.1', 'gpu1', 22));
    assert.ok(!hostFieldMatches('gpu1', 'gpu1', 2222), 'a bare name is port 22 only');
    assert.ok(hostFieldMatches('[gpu1]:2222', 'gpu1', 2222));
    assert.ok(hostFieldMatches('*.lab,!bad.lab', 'a.lab', 22));
    assert.ok(!hostFieldMatches('*.lab,!bad.lab', 'bad.lab', 22));
    const salt = Buffer.from('0123456789abcdefghij');
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[gpu1]:2222').digest('base64')}`;
    assert.ok(hostFieldMatches(hashed, 'gpu1', 2222));
    assert.ok(!hostFieldMatches(hashed, 'gpu1', 22));
  });
  it('match / unknown / changed (file and line) / revoked; @cert-authority lines are skipped', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'known_hosts');
    fs.writeFileSync(
      f,
      [
        '# comment',
        `@cert-authority *.lab ssh-ed25519 ${b64(other)}`,
        `[gpu1]:2222 ssh-ed25519 ${b64(key)}`,
        `gpu2 ssh-ed25519 ${b64(other)}`,
        `gpu3 ecdsa-sha2-nistp256 ${b64(Buffer.from('whatever'))}`,
        `@revoked gpu4 ssh-ed25519 ${b64(key)}`,
        '',
      ].join('\n'),
    );
    assert.deepEqual(checkHostKey([f], 'gpu1', 2222, key), { status: 'match', file: f, line: 3 });
    const changed = checkHostKey([f], 'gpu2', 22, key);
    assert.equal(changed.status, 'changed');
    assert.equal((changed as { line: number }).line, 4);
    const diffType = checkHostKey([f], 'gpu3', 22, key);
    assert.equal(diffType.status, 'unknown');
    assert.deepEqual((diffType as { otherKeyTypes: string[] }).otherKeyTypes, ['ecdsa-sha2-nistp256']);
    assert.equal(checkHostKey([f], 'gpu4', 22, key).status, 'revoked');
    const unknown = checkHostKey([f, path.join(dir, 'missing')], 'x.lab', 22, key);
    assert.equal(unknown.status, 'unknown');
    assert.equal((unknown as { fingerprint: string }).fingerprint, fingerprintOf(key));
  });
  it('appends accepted keys (hashed by default) that then match', () => {
    const f = path.join(tmpDir(), 'sub', 'known_hosts');
    appendKnownHost(f, 'gpu9', 2022, key);
    appendKnownHost(f, 'gpu10', 22, other, { hash: false });
    assert.equal(checkHostKey([f], 'gpu9', 2022, key).status, 'match');
    assert.equal(checkHostKey([f], 'gpu10', 22, other).status, 'match');
    assert.match(fs.readFileSync(f, 'utf8'), /^\|1\|/);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  });
});

describe('ssh: poll and stop output', () => {
  it('parses nvidia-smi csv,noheader,nounits (names with commas, [N/A] values)', () => {
    assert.deepEqual(parseNvidiaSmi('0, NVIDIA A100-SXM4-80GB, 87, 61234, 81920\n1, Tesla T4, [N/A], 4, 15360\n'), [
      { index: 0, name: 'NVIDIA A100-SXM4-80GB', utilizationPercent: 87, memoryUsedMiB: 61234, memoryTotalMiB: 81920 },
      { index: 1, name: 'Tesla T4', utilizationPercent: null, memoryUsedMiB: 4, memoryTotalMiB: 15360 },
    ]);
  });
  it('parses processes, boot time, GPUs; drops zombies and forged lines', () => {
    const stat = (pid: number, ppid: number, state = 'S', comm = 'sleep') =>
      `${pid} (${comm}) ${state} ${ppid} ${pid} ${pid} 0 -1 4194304 99 0 0 0 3 2 0 0 20 0 1 0 5000 2990080 388 0`;
    const out = [
      'B 1700000000',
      'P r1',
      stat(10, 1, 'S', 'my prog) S 1'),
      'sh -c sleep 300 ',
      'P r1',
      stat(11, 10, 'Z'),
      '',
      'P r1',
      stat(12, 10),
      '=',
      'G 0',
      '0, GPU, 1, 2, 3',
      'GEND',
      'END',
    ].join('\n');
    const p = parsePollOutput(out);
    assert.equal(p.complete, true);
    assert.equal(p.bootTimeMs, 1_700_000_000_000);
    const l = p.byId.get('r1')!;
    assert.deepEqual(l.map((x) => x.pid), [10, 12]);
    assert.equal(l[0]!.comm, 'my prog) S 1');
    assert.equal(l[0]!.command, 'sh -c sleep 300');
    assert.equal(l[0]!.cpuTicks, 5);
    assert.equal(l[1]!.command, undefined, '"=" means: command already known');
    assert.equal(p.gpus!.length, 1);
    assert.equal(parsePollOutput('GNONE\n').complete, false);
  });
  it('parses the stop report', () => {
    const r = parseStopOutput('X 10:5000 term\nX 11:5001 kill\nX 12:5002 left\nX 13:5003 denied\nEND\n');
    assert.equal(r.terminated, 1);
    assert.equal(r.killed, 1);
    assert.deepEqual(r.survivors.map((p) => p.pid), [12, 13]);
    assert.deepEqual(r.denied.map((p) => p.pid), [13]);
    assert.ok(r.complete);
  });
});
