// Tether's host resolution against OpenSSH itself, on this machine: for each config of the table,
// what resolveHost returns must equal what `ssh -G` prints (and, for the values ssh expands only
// when it connects — IdentityFile, CertificateFile, ProxyCommand — what `ssh -vvv` reports it
// uses). The test reads ssh's output with its own few lines of parsing, so it checks the mapping of
// ssh -G output into Tether's host model, defaults included. The fallback parser (used only
// without an ssh client) is run on the same table and its agreement recorded.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshConnectionPool } from '../../src/backends/ssh/connection';
import { clearHostCache, resolveHost, resolveHostWithParser, sshGStats, sshVersion, type SshTarget } from '../../src/backends/ssh/hosts';
import { tmpDir } from '../helpers/tmp';

const SSH = '/usr/bin/ssh';

interface Case {
  name: string;
  /** The config; "$D" is the case's temporary folder. */
  config: string;
  /** Other files, relative to $D. */
  files?: Record<string, string>;
  spec: string;
}

// Jump hosts never reach a network: their own ProxyCommand fails at once.
const JUMPS = 'Host j1 j2 j3\n  ProxyCommand /bin/false\n';

const CASES: Case[] = [
  { name: 'no matching block: every default', config: 'Host other\n  User nobody\n', spec: 'plain.example' },
  { name: 'alias with HostName, User, Port', config: 'Host box\n  HostName 10.1.2.3\n  User alice\n  Port 2222\n', spec: 'box' },
  { name: 'wildcard pattern and %h in HostName', config: 'Host *.lab\n  HostName %h.example.org\n', spec: 'gpu.lab' },
  { name: '"?" pattern matches one character', config: 'Host gpu?\n  User single\nHost *\n  User rest\n', spec: 'gpu10' },
  { name: '"?" pattern (match)', config: 'Host gpu?\n  User single\nHost *\n  User rest\n', spec: 'gpu1' },
  { name: 'negated pattern excludes a host', config: 'Host * !bastion\n  User inner\nHost bastion\n  User outer\n', spec: 'bastion' },
  { name: 'comma in a Host line is not a list', config: 'Host a,b\n  User commas\n', spec: 'a' },
  { name: 'Match host with a comma list', config: 'Match host a,b\n  User matched\n', spec: 'b' },
  { name: 'Match all after a Host block', config: 'Host x\n  Port 2200\nMatch all\n  User everyone\n  Port 9999\n', spec: 'x' },
  { name: 'Match originalhost and user', config: 'Host x\n  User carol\nMatch originalhost x user carol\n  Port 2022\n', spec: 'x' },
  { name: 'Match exec (runs a harmless command, as ssh does)', config: 'Match exec "true"\n  User viaexec\n', spec: 'any' },
  { name: 'Include at top level', config: 'Include $D/inc\nHost *\n  User late\n', files: { inc: 'Host inc-*\n  User included\n  Port 2201\n' }, spec: 'inc-1' },
  {
    name: 'Include inside a Host block applies to that block only',
    config: 'Host outer\n  Include $D/inner\nHost other\n  User otheruser\n',
    files: { inner: 'Port 2202\nHost other\n  User frominclude\n' },
    spec: 'other',
  },
  { name: 'Include inside a Host block (the block itself)', config: 'Host outer\n  Include $D/inner\n', files: { inner: 'Port 2202\nUser innerdefault\n' }, spec: 'outer' },
  { name: 'Include=file', config: 'Include=$D/eq\n', files: { eq: 'Host *\n  User equals\n' }, spec: 'h' },
  { name: 'Include glob in lexical order, first value wins', config: 'Include $D/conf.d/*\n', files: { 'conf.d/20-b': 'User second\n', 'conf.d/10-a': 'User first\nPort 2203\n' }, spec: 'h' },
  { name: 'quoted values', config: 'Host q\n  User "quoted"\n  IdentityFile "$D/with space/key"\n', spec: 'q' },
  { name: '"#" inside and after values', config: 'Host c\n  User bob # a comment\n  HostName x#y\n  IdentityFile $D/k#1\n', spec: 'c' },
  { name: 'first obtained value wins across blocks', config: 'Host c\n  Port 1111\nHost *\n  Port 2222\n  User star\n', spec: 'c' },
  { name: 'keyword=value, odd case and spacing', config: 'HOST kv\n  port=2204\n  hostname = kv.example\n  USER\tkvuser\n', spec: 'kv' },
  {
    name: 'tokens in IdentityFile: %h %p %r %u %l %L %i %d %n %k %C %%',
    config: 'Host t\n  HostName t.example\n  User tok\n  Port 2205\n  HostKeyAlias alias-%h\n  IdentityFile $D/id_%h_%p_%r_%u_%l_%L_%i_%n_%k_%%\n  IdentityFile %d/.ssh/c_%C\n',
    spec: 't',
  },
  { name: 'token %j in IdentityFile (known from OpenSSH 9.4)', config: `${JUMPS}Host tj\n  ProxyJump j1\n  IdentityFile $D/id_%j\n`, spec: 'tj' },
  { name: 'environment variable in IdentityFile', config: 'Host e\n  IdentityFile ${HOME}/.ssh/env_%h\n', spec: 'e' },
  { name: 'UserKnownHostsFile list with tokens, GlobalKnownHostsFile', config: 'Host k\n  UserKnownHostsFile $D/kh_%h %d/.ssh/kh2_%r\n  GlobalKnownHostsFile $D/global\n', spec: 'k' },
  { name: 'UserKnownHostsFile none, StrictHostKeyChecking yes', config: 'Host k\n  UserKnownHostsFile none\n  StrictHostKeyChecking yes\n', spec: 'k' },
  { name: 'StrictHostKeyChecking accept-new', config: 'Host k\n  StrictHostKeyChecking accept-new\n', spec: 'k' },
  { name: 'StrictHostKeyChecking off', config: 'Host k\n  StrictHostKeyChecking off\n', spec: 'k' },
  { name: 'IdentitiesOnly, IdentityAgent path with tokens', config: 'Host a\n  IdentitiesOnly yes\n  IdentityAgent $D/agent_%r.sock\n  IdentityFile $D/only\n', spec: 'a' },
  { name: 'IdentityAgent none', config: 'Host a\n  IdentityAgent none\n', spec: 'a' },
  { name: 'ProxyJump, one hop', config: `${JUMPS}Host pj\n  HostName 10.0.0.9\n  ProxyJump j1\n`, spec: 'pj' },
  { name: 'ProxyJump chain with user and port', config: `${JUMPS}Host pj\n  HostName 10.0.0.9\n  ProxyJump u1@j1:2222,j2,ssh://u3@j3:23\n`, spec: 'pj' },
  { name: 'ProxyJump none then a later value', config: `${JUMPS}Host pj\n  ProxyJump none\nHost *\n  ProxyJump j1\n`, spec: 'pj' },
  { name: 'ProxyCommand with %h %p %r %n %%', config: 'Host pc\n  HostName pc.internal\n  User pcuser\n  Port 2206\n  ProxyCommand /bin/false %h:%p %r %n 100%%\n', spec: 'pc' },
  { name: 'ProxyCommand before ProxyJump: the first wins', config: `${JUMPS}Host pc\n  ProxyCommand /bin/false %h\n  ProxyJump j1\n`, spec: 'pc' },
  { name: 'CertificateFile with tokens', config: 'Host cf\n  User certuser\n  CertificateFile $D/cert_%r_%h-cert.pub\n  IdentityFile $D/key_%h\n', spec: 'cf' },
  { name: 'user@host:port spec wins over the config', config: 'Host sp\n  User cfguser\n  Port 2207\n  HostName sp.example\n', spec: 'me@sp:2999' },
  { name: 'Match user sees the spec\'s user', config: 'Match user me\n  Port 2208\n', spec: 'me@mu' },
  { name: 'IPv6 spec', config: 'Host *\n  User six\n', spec: '[::1]:2209' },
];

/** `ssh -G` output → first value per keyword, and every value of the repeated ones. */
function sshG(cfg: string, spec: string): { one: (k: string) => string | undefined; all: (k: string) => string[] } {
  const m = /^(?:(.*)@)?(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(spec)!;
  const args = ['-F', cfg, '-G', ...(m[1] ? ['-l', m[1]] : []), ...(m[4] ? ['-p', m[4]] : []), '--', m[2] ?? m[3]!];
  const r = spawnSync(SSH, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const);
  return { one: (k) => lines.find(([key]) => key === k)?.[1], all: (k) => lines.filter(([key]) => key === k).map(([, v]) => v) };
}

/** What ssh really uses when it connects: identity files, certificate files, the proxy command (ssh -vvv). */
function sshUses(cfg: string, spec: string, hasProxy: boolean): { ok: boolean; identities: string[]; certificates: string[]; proxyCommand?: string; stderr: string } {
  const m = /^(?:(.*)@)?(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(spec)!;
  // -E: the log of this ssh only (a ProxyJump's inner ssh logs to stderr).
  const log = path.join(path.dirname(cfg), `ssh-${Math.random().toString(36).slice(2)}.log`);
  const args = [
    '-F', cfg, '-vvv', '-E', log, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
    // No network: a host without a proxy gets one that fails at once (it changes nothing else here).
    ...(hasProxy ? [] : ['-o', 'ProxyCommand=/bin/false']),
    ...(m[1] ? ['-l', m[1]] : []), ...(m[4] ? ['-p', m[4]] : []), '--', m[2] ?? m[3]!, 'true',
  ];
  const r = spawnSync(SSH, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const stderr = fs.readFileSync(log, 'utf8') + r.stderr;
  const identities: string[] = [];
  const certificates: string[] = [];
  let proxyCommand: string | undefined;
  for (const line of fs.readFileSync(log, 'utf8').split(/\r?\n/)) {
    let x = /^debug1: identity file (.*) type -?\d+$/.exec(line);
    if (x && !x[1]!.endsWith('-cert')) identities.push(x[1]!);
    x = /^debug1: certificate file (.*) type -?\d+$/.exec(line);
    if (x) certificates.push(x[1]!);
    x = /^debug1: Executing proxy command: exec (.*)$/.exec(line);
    if (x && proxyCommand === undefined) proxyCommand = x[1]!;
  }
  const ok = !/percent_dollar_expand: failed|unknown key %/.test(stderr);
  return { ok, identities, certificates, ...(proxyCommand !== undefined ? { proxyCommand } : {}), stderr };
}

/** What Tether's model must hold, computed from ssh's own output by the mapping rules. */
function expected(c: Case, cfg: string): Partial<SshTarget> & { error?: true } {
  const g = sshG(cfg, c.spec);
  const none = (v: string | undefined) => (v === undefined || v.toLowerCase() === 'none' ? undefined : v);
  const list = (v: string | undefined) => (v === undefined ? undefined : v === 'none' ? [] : v.split(' '));
  const jump = none(g.one('proxyjump'));
  const pc = none(g.one('proxycommand'));
  const uses = sshUses(cfg, c.spec, !!(jump || pc));
  if (!uses.ok) return { error: true };
  const strict = { true: 'yes', false: 'no', ask: 'ask', 'accept-new': 'accept-new' }[g.one('stricthostkeychecking')!] as SshTarget['strictHostKeyChecking'];
  const agent = g.one('identityagent');
  return {
    user: g.one('user')!,
    host: g.one('hostname')!,
    port: Number(g.one('port')),
    identityFiles: uses.identities,
    ...(jump ? { proxyJump: jump } : {}),
    ...(pc ? { proxyCommand: uses.proxyCommand! } : {}),
    userKnownHostsFiles: list(g.one('userknownhostsfile'))!,
    globalKnownHostsFiles: list(g.one('globalknownhostsfile'))!,
    strictHostKeyChecking: strict,
    ...(uses.certificates.length ? { certificateFiles: uses.certificates } : {}),
    identitiesOnly: g.one('identitiesonly') === 'yes',
    ...(agent === undefined || agent === 'SSH_AUTH_SOCK' ? {} : { identityAgent: agent === 'none' ? null : agent }),
    ...(g.one('hostkeyalias') !== undefined ? { hostKeyAlias: g.one('hostkeyalias')! } : {}),
  };
}

const FIELDS = ['user', 'host', 'port', 'identityFiles', 'proxyJump', 'proxyCommand', 'userKnownHostsFiles', 'globalKnownHostsFiles', 'strictHostKeyChecking', 'certificateFiles', 'identitiesOnly', 'identityAgent', 'hostKeyAlias'] as const;
const CORE = ['user', 'host', 'port', 'identityFiles', 'proxyJump'] as const;

function setUp(c: Case, root: string, i: number): string {
  const d = path.join(root, `case${i}`);
  fs.mkdirSync(d, { recursive: true });
  for (const [rel, text] of Object.entries(c.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
    fs.writeFileSync(path.join(d, rel), text.replaceAll('$D', d));
  }
  const cfg = path.join(d, 'config');
  fs.writeFileSync(cfg, c.config.replaceAll('$D', d));
  return cfg;
}

/**
 * OpenSSH takes the home folder from the account, never $HOME; with another $HOME (a sandbox,
 * `HOME=$(mktemp -d) npm test`) Tether maps the account's home onto $HOME on purpose. These tables
 * compare with ssh itself, so they run with $HOME set to the account's home.
 */
function withAccountHome(): void {
  let saved: string | undefined;
  before(() => {
    saved = process.env.HOME;
    process.env.HOME = os.userInfo().homedir;
  });
  after(() => {
    if (saved === undefined) delete process.env.HOME;
    else process.env.HOME = saved;
  });
}

describe('ssh: hosts resolved by OpenSSH (ssh -G) equal ssh itself', function () {
  withAccountHome();
  this.timeout(120_000);
  const root = tmpDir('tether-sshg-');
  const parserRight: string[] = [];

  before(function () {
    assert.ok(fs.existsSync(SSH), 'these tests need the OpenSSH client (Debian openssh-client)');
    assert.ok(CASES.length >= 25);
  });
  beforeEach(() => clearHostCache());

  CASES.forEach((c, i) => {
    it(`${i + 1}. ${c.name}`, () => {
      const cfg = setUp(c, root, i);
      const want = expected(c, cfg);
      if (want.error) {
        assert.throws(() => resolveHost(c.spec, { configPath: cfg, sshBinary: SSH }), /unknown token|not set/, 'ssh refuses this config; so does Tether');
        return;
      }
      const got = resolveHost(c.spec, { configPath: cfg, sshBinary: SSH });
      assert.equal(got.resolvedBy, 'ssh');
      assert.equal(got.spec, c.spec);
      for (const f of FIELDS) assert.deepEqual(got[f], want[f], `${f} (ssh: ${JSON.stringify(want[f])}, Tether: ${JSON.stringify(got[f])})`);
      // The fallback parser, on the same config: recorded, not required to agree.
      try {
        const p = resolveHostWithParser(c.spec, { configPath: cfg, sshBinary: null });
        const existing = (want.identityFiles ?? []).filter((f) => fs.existsSync(f) || !/\/\.ssh\/id_[a-z0-9_]+$/.test(f));
        if (CORE.every((f) => JSON.stringify(f === 'identityFiles' ? p[f] : p[f]) === JSON.stringify(f === 'identityFiles' ? existing : want[f]))) parserRight.push(String(i + 1));
      } catch {
        /* the parser fails on this config */
      }
    });
  });

  // Recorded on OpenSSH 9.2: the configs where the fallback parser (no ssh client) agrees with ssh
  // on user, host, port, identity files and ProxyJump. It gets wrong: a comma in a Host line (7),
  // Match exec (11), Include inside a Host block (13), Include=file (15), "#" in values (18),
  // %l %L %i %n %k %C tokens (21), %j (22), ${VAR} (23), ssh:// jump hops (31) and the
  // ProxyCommand/ProxyJump precedence (34). A change either way shows here.
  const PARSER_AGREES = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 16, 17, 19, 20, 24, 25, 26, 27, 28, 29, 30, 32, 33, 35, 36, 37, 38];
  it('the fallback parser agrees on the recorded configs (and only those)', () => {
    assert.deepEqual(parserRight.map(Number), PARSER_AGREES);
    console.log(`      fallback parser agrees with ssh on ${parserRight.length}/${CASES.length} configs`);
  });

  it('knows the installed version (for %j and %C)', () => {
    const [maj] = sshVersion(SSH);
    assert.ok(maj >= 7, String(maj));
  });
});

describe('ssh: the ssh -G cache', function () {
  withAccountHome();
  this.timeout(60_000);
  it('runs ssh -G once per host until the config or an included file (or a new file matching an Include glob) changes', () => {
    clearHostCache();
    const d = tmpDir('tether-sshg-cache-');
    fs.mkdirSync(path.join(d, 'conf.d'));
    fs.writeFileSync(path.join(d, 'inc'), 'Host h\n  User one\n');
    const cfg = path.join(d, 'config');
    fs.writeFileSync(cfg, `Include ${d}/inc\nInclude ${d}/conf.d/*\nHost *\n  Port 2222\n`);
    const o = { configPath: cfg, sshBinary: SSH };
    const runs = () => sshGStats.runs;
    const r0 = runs();
    assert.equal(resolveHost('h', o).user, 'one');
    assert.equal(resolveHost('h', o).user, 'one');
    assert.equal(runs() - r0, 1, 'cached');
    resolveHost('other', o);
    assert.equal(runs() - r0, 2, 'per host');
    // The included file changes (size differs).
    fs.writeFileSync(path.join(d, 'inc'), 'Host h\n  User second\n');
    assert.equal(resolveHost('h', o).user, 'second');
    assert.equal(runs() - r0, 3);
    // A new file matching the glob (its folder changes).
    fs.writeFileSync(path.join(d, 'conf.d', '00-first'), 'Host h\n  Port 2999\n');
    assert.equal(resolveHost('h', o).port, 2999);
    // The main file, same size, new mtime.
    const before = fs.readFileSync(cfg, 'utf8');
    fs.writeFileSync(cfg, before.replace('2222', '3333'));
    fs.utimesSync(cfg, new Date(), new Date(Date.now() + 5000));
    assert.equal(resolveHost('other', o).port, 3333);
    // A returned target is a copy: changing it does not change the cache.
    const t = resolveHost('h', o);
    t.user = 'mutated';
    assert.equal(resolveHost('h', o).user, 'second');
  });

  it('a config file that does not exist yet is no error; creating it is seen', () => {
    const d = tmpDir('tether-sshg-new-');
    const cfg = path.join(d, 'config');
    const o = { configPath: cfg, sshBinary: SSH };
    assert.equal(resolveHost('h', o).port, 22);
    fs.writeFileSync(cfg, 'Host h\n  Port 2345\n');
    assert.equal(resolveHost('h', o).port, 2345);
  });

  it('without an ssh client, the fallback parser resolves (and says so)', () => {
    const d = tmpDir('tether-sshg-fb-');
    const cfg = path.join(d, 'config');
    fs.writeFileSync(cfg, 'Host h\n  User fb\n');
    const t = resolveHost('h', { configPath: cfg, sshBinary: path.join(d, 'no-such-ssh') });
    assert.equal(t.user, 'fb');
    assert.equal(t.resolvedBy, 'parser');
    assert.equal(resolveHost('h', { configPath: cfg, sshBinary: null }).resolvedBy, 'parser');
  });

  it('a ProxyJump loop (a through b, b through a) is an error, not a hang', async () => {
    const d = tmpDir('tether-sshg-loop-');
    const cfg = path.join(d, 'config');
    fs.writeFileSync(cfg, 'Host a\n  HostName a.invalid\n  ProxyJump b\nHost b\n  HostName b.invalid\n  ProxyJump a\n');
    const pool = new SshConnectionPool({ resolve: { configPath: cfg, sshBinary: SSH }, agent: null, knownHostsFiles: [] });
    try {
      await assert.rejects(pool.get('a').exec('true', { timeoutMs: 5000 }), /ProxyJump loop/);
    } finally {
      pool.closeAll();
    }
  });

  it('a config ssh rejects is a clear error naming the problem', () => {
    const d = tmpDir('tether-sshg-bad-');
    const cfg = path.join(d, 'config');
    fs.writeFileSync(cfg, 'Host h\n  NoSuchOption yes\n');
    assert.throws(() => resolveHost('h', { configPath: cfg, sshBinary: SSH }), /ssh cannot resolve h: .*Bad configuration option/);
  });
});
