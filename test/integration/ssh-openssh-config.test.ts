// OpenSSH config semantics against a REAL sshd (test/helpers/sshd.ts), resolved by `ssh -G`:
// ProxyCommand through a real command (ssh -W via the test's jump host), a real ssh-agent holding
// the key (IdentityAgent, SSH_AUTH_SOCK, IdentitiesOnly), UserKnownHostsFile pointing to a custom
// file, and StrictHostKeyChecking (yes refuses an unknown key without asking; accept-new records it).
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SshConnectionPool, SshAuthError, SshUnreachableError, type SshConnectionOptions } from '../../src/backends/ssh/connection';
import { clearHostCache, resolveHost } from '../../src/backends/ssh/hosts';
import { HostKeyChangedError, HostKeyUnknownError, checkHostKey } from '../../src/backends/ssh/knownHosts';
import type { Logger } from '../../src/core/logger';
import { type TestSshd, startSshdOrSkip } from '../helpers/sshd';
import { tmpDir, waitFor } from '../helpers/tmp';

function recordingLogger(lines: string[]): Logger {
  const add = (m: string | Error) => void lines.push(String(m instanceof Error ? m.message : m));
  return { trace: add, debug: add, info: add, warn: add, error: add };
}

/** PIDs of this process's descendants whose command line contains `needle`. */
function descendantsMatching(needle: string): number[] {
  const out: number[] = [];
  const queue = [process.pid];
  while (queue.length) {
    const pid = queue.shift()!;
    let kids: number[] = [];
    try {
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const t = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
        if (t) kids.push(...t.split(' ').map(Number));
      }
    } catch {
      kids = [];
    }
    for (const k of kids) {
      queue.push(k);
      try {
        const st = fs.readFileSync(`/proc/${k}/stat`, 'latin1');
        if (/\) Z /.test(st)) continue;
        if (fs.readFileSync(`/proc/${k}/cmdline`, 'latin1').split('\0').join(' ').includes(needle)) out.push(k);
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

describe('OpenSSH config semantics with a real sshd (resolved by ssh -G)', function () {
  this.timeout(60_000);
  let sshd: TestSshd;
  let dir: string;
  let agent: ChildProcess | undefined;
  let agentSock: string;
  const pools: SshConnectionPool[] = [];

  /** A pool whose every setting comes from the ssh config (no overrides but the config file). */
  const pool = (configText: string, extra: SshConnectionOptions = {}) => {
    const cfg = path.join(dir, `config-${pools.length}`);
    fs.writeFileSync(cfg, configText);
    const p = new SshConnectionPool({ resolve: { configPath: cfg }, backoffInitialMs: 100, ...extra });
    pools.push(p);
    return p;
  };
  const base = () => `  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n`;

  before(async function () {
    sshd = await startSshdOrSkip(this);
    dir = tmpDir('tether-sshcfg-');
    fs.chmodSync(dir, 0o700);
    // A real ssh-agent (openssh-client), in the foreground as this test's child, holding the user key.
    agentSock = path.join(dir, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    await waitFor(() => fs.existsSync(agentSock) || undefined, 10_000, 'ssh-agent socket');
    execFileSync('ssh-add', [sshd.userKey], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
  });
  after(async () => {
    for (const p of pools) p.closeAll();
    if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
    await sshd?.stop();
  });
  beforeEach(() => clearHostCache());

  it('ProxyCommand: connects through a real command (ssh -W %h:%p via the jump host), which ends with the connection', async () => {
    const p = pool(
      [
        'Host jump',
        base(),
        `  IdentityFile ${sshd.userKey}`,
        'Host behind',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.userKey}`,
        // %h %p %r expanded by Tether as ssh does; the command is a real OpenSSH client.
        `  ProxyCommand ssh -F ${dir}/config-0 -o BatchMode=yes -o UserKnownHostsFile=${sshd.knownHosts} -o StrictHostKeyChecking=yes -l %r -W %h:%p jump`,
        '',
      ].join('\n'),
      { knownHostsFiles: [sshd.knownHosts], agent: null },
    );
    const t = p.resolve('behind');
    assert.equal(t.resolvedBy, 'ssh');
    assert.equal(t.proxyCommand, `ssh -F ${dir}/config-0 -o BatchMode=yes -o UserKnownHostsFile=${sshd.knownHosts} -o StrictHostKeyChecking=yes -l ${sshd.user} -W 127.0.0.1:${sshd.port} jump`);
    const conn = p.get('behind');
    const r = await conn.exec('id -un; echo "$SSH_CONNECTION"');
    assert.equal(r.stdout.split('\n')[0], sshd.user);
    const proxies = descendantsMatching(`-W 127.0.0.1:${sshd.port}`);
    assert.equal(proxies.length, 1, 'one ProxyCommand process, a child of Tether');
    assert.equal((await conn.exec('echo again')).stdout.trim(), 'again', 'reused');
    conn.close();
    await waitFor(() => (descendantsMatching(`-W 127.0.0.1:${sshd.port}`).length === 0 ? true : undefined), 10_000, 'the ProxyCommand ends');
  });

  it('ProxyJump chain (two real hops, the second spelled ssh://user@host:port) resolved by ssh -G', async () => {
    // "localhost": ssh -G refuses a jump host named like the destination (a loop).
    const kh = path.join(dir, 'kh_chain');
    const line = fs.readFileSync(sshd.knownHosts, 'utf8').trim();
    fs.writeFileSync(kh, `${line}\n${line.replace('[127.0.0.1]', '[localhost]')}\n`);
    const p = pool(`Host hop\n${base()}  IdentityFile ${sshd.userKey}\nHost chained\n${base()}  IdentityFile ${sshd.userKey}\n  ProxyJump hop,ssh://${sshd.user}@localhost:${sshd.port}\nHost localhost\n  IdentityFile ${sshd.userKey}\n`, {
      knownHostsFiles: [kh],
      agent: null,
    });
    // ssh -G prints the ssh:// hop in its plain form.
    assert.equal(p.resolve('chained').proxyJump, `hop,${sshd.user}@localhost:${sshd.port}`);
    const r = await p.get('chained').exec('echo "$SSH_CONNECTION"');
    assert.match(r.stdout, /^127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+/);
    assert.equal(p.all().length, 3, 'the target, the last hop (reached through the first), the first hop');
  });

  it('ProxyCommand that fails: a clear error with what the command said', async () => {
    const p = pool(`Host broken\n${base()}  IdentityFile ${sshd.userKey}\n  ProxyCommand sh -c 'echo "bastion says no" >&2; exit 3'\n`, { knownHostsFiles: [sshd.knownHosts], agent: null });
    await assert.rejects(p.get('broken').exec('true'), (err: unknown) => {
      assert.ok(err instanceof SshUnreachableError, String(err));
      assert.match(err.message, /ProxyCommand.*bastion says no/);
      return true;
    });
  });

  it('a real ssh-agent: IdentityAgent in the config, and SSH_AUTH_SOCK; IdentitiesOnly offers only the identity files\' keys', async () => {
    const noKey = path.join(dir, 'no-such-key');
    // IdentityAgent names the agent; the only identity file does not exist: the agent's key logs in.
    const p = pool(`Host viaagent\n${base()}  IdentityFile ${noKey}\n  IdentityAgent ${agentSock}\n`, { knownHostsFiles: [sshd.knownHosts] });
    assert.equal(p.resolve('viaagent').identityAgent, agentSock);
    assert.equal((await p.get('viaagent').exec('id -un')).stdout.trim(), sshd.user);
    // SSH_AUTH_SOCK (no IdentityAgent line).
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = agentSock;
    try {
      const q = pool(`Host viaenv\n${base()}  IdentityFile ${noKey}\n`, { knownHostsFiles: [sshd.knownHosts] });
      assert.equal(q.resolve('viaenv').identityAgent, undefined);
      assert.equal((await q.get('viaenv').exec('id -un')).stdout.trim(), sshd.user);
      // IdentityAgent none: no agent, so no way in.
      const n = pool(`Host noagent\n${base()}  IdentityFile ${noKey}\n  IdentityAgent none\n`, { knownHostsFiles: [sshd.knownHosts] });
      await assert.rejects(n.get('noagent').exec('true'), SshAuthError);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
    // IdentitiesOnly yes with another identity file: the agent's (authorised) key is not offered.
    const only = pool(`Host only\n${base()}  IdentityFile ${sshd.wrongKey}\n  IdentityAgent ${agentSock}\n  IdentitiesOnly yes\n`, { knownHostsFiles: [sshd.knownHosts] });
    await assert.rejects(only.get('only').exec('true'), SshAuthError);
    // ...and with the authorised key's file named, the agent offers it (the private key file is not read).
    const pubOnly = path.join(dir, 'pub-only');
    fs.copyFileSync(`${sshd.userKey}.pub`, `${pubOnly}.pub`);
    const ok = pool(`Host only2\n${base()}  IdentityFile ${pubOnly}\n  IdentityAgent ${agentSock}\n  IdentitiesOnly yes\n`, { knownHostsFiles: [sshd.knownHosts] });
    assert.equal((await ok.get('only2').exec('id -un')).stdout.trim(), sshd.user);
  });

  it('UserKnownHostsFile: the host key is checked against the custom file named in the config', async () => {
    const custom = path.join(dir, 'custom_known_hosts');
    fs.copyFileSync(sshd.knownHosts, custom);
    const p = pool(`Host kh\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${custom}\n  StrictHostKeyChecking yes\n`, { agent: null });
    assert.deepEqual(p.resolve('kh').userKnownHostsFiles, [custom]);
    assert.equal((await p.get('kh').exec('echo ok')).stdout.trim(), 'ok');
    // HostKeyAlias: the key is looked up under the alias (with the port), as ssh does.
    const aliased = path.join(dir, 'aliased_known_hosts');
    fs.writeFileSync(aliased, fs.readFileSync(sshd.knownHosts, 'utf8').replace('[127.0.0.1]', '[tether-alias]'));
    const a = pool(`Host ka\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${aliased}\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias tether-alias\n  StrictHostKeyChecking yes\n`, { agent: null });
    assert.equal((await a.get('ka').exec('echo ok')).stdout.trim(), 'ok');
  });

  it('StrictHostKeyChecking yes: an unknown host key is refused without asking, even when the prompt would accept', async () => {
    const empty = path.join(dir, 'empty_known_hosts');
    fs.writeFileSync(empty, '');
    let asked = 0;
    const p = pool(`Host strict\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${empty}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n`, {
      agent: null,
      onUnknownKey: async () => {
        asked += 1;
        return true;
      },
    });
    await assert.rejects(p.get('strict').exec('true'), (err: unknown) => {
      assert.ok(err instanceof HostKeyUnknownError, String(err));
      assert.match(err.message, /REFUSED: .* is not in known_hosts and your ssh config says StrictHostKeyChecking yes/);
      return true;
    });
    assert.equal(asked, 0, 'never asked');
    assert.equal(fs.readFileSync(empty, 'utf8'), '', 'nothing recorded');
    // The same host with "ask" (ssh's default) asks, and records the accepted key in the custom file.
    const ask = pool(`Host asked\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${empty}\n  GlobalKnownHostsFile /dev/null\n`, {
      agent: null,
      onUnknownKey: async () => {
        asked += 1;
        return true;
      },
    });
    assert.equal((await ask.get('asked').exec('echo ok')).stdout.trim(), 'ok');
    assert.equal(asked, 1);
    const hostPub = Buffer.from(fs.readFileSync(`${sshd.hostKey}.pub`, 'utf8').split(/\s+/)[1]!, 'base64');
    assert.equal(checkHostKey([empty], '127.0.0.1', sshd.port, hostPub).status, 'match');
  });

  it('StrictHostKeyChecking accept-new records a new key without asking; a changed key is refused even with "no"', async () => {
    const file = path.join(dir, 'acceptnew_known_hosts');
    let asked = 0;
    const onUnknownKey = async () => {
      asked += 1;
      return false;
    };
    const p = pool(`Host an\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${file}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking accept-new\n`, { agent: null, onUnknownKey });
    assert.equal((await p.get('an').exec('echo ok')).stdout.trim(), 'ok');
    assert.equal(asked, 0);
    const hostPub = Buffer.from(fs.readFileSync(`${sshd.hostKey}.pub`, 'utf8').split(/\s+/)[1]!, 'base64');
    assert.equal(checkHostKey([file], '127.0.0.1', sshd.port, hostPub).status, 'match', 'recorded in the UserKnownHostsFile');
    // A different key recorded for the host: refused whatever StrictHostKeyChecking says.
    const changed = path.join(dir, 'changed_known_hosts');
    const other = fs.readFileSync(`${sshd.wrongKey}.pub`, 'utf8').split(/\s+/);
    fs.writeFileSync(changed, `[127.0.0.1]:${sshd.port} ${other[0]} ${other[1]}\n`);
    const q = pool(`Host ch\n${base()}  IdentityFile ${sshd.userKey}\n  UserKnownHostsFile ${changed}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n`, { agent: null, onUnknownKey });
    await assert.rejects(q.get('ch').exec('true'), HostKeyChangedError);
  });

  it('a CertificateFile is named, not silently ignored (ssh2 has no certificate support)', async () => {
    const cert = path.join(dir, 'user-cert.pub');
    fs.writeFileSync(cert, 'ssh-ed25519-cert-v01@openssh.com AAAA fake\n');
    const lines: string[] = [];
    const p = pool(`Host cert\n${base()}  IdentityFile ${sshd.userKey}\n  CertificateFile ${cert}\n`, { knownHostsFiles: [sshd.knownHosts], agent: null, log: recordingLogger(lines) });
    assert.deepEqual(resolveHost('cert', { configPath: `${dir}/config-${pools.length - 1}` }).certificateFiles, [cert]);
    // The plain key still logs in; the certificate is reported.
    assert.equal((await p.get('cert').exec('echo ok')).stdout.trim(), 'ok');
    assert.ok(lines.some((l) => l.includes('cannot use OpenSSH certificates') && l.includes(cert)), lines.join('\n'));
    // When the server refuses the plain keys, the error names the certificate Tether could not use.
    const q = pool(`Host cert2\n${base()}  IdentityFile ${sshd.wrongKey}\n  CertificateFile ${cert}\n`, { knownHostsFiles: [sshd.knownHosts], agent: null });
    await assert.rejects(q.get('cert2').exec('true'), (err: unknown) => {
      assert.ok(err instanceof SshAuthError, String(err));
      assert.match(err.message, /certificates not used \(ssh2 has no OpenSSH certificate support\)/);
      return true;
    });
  });
});
