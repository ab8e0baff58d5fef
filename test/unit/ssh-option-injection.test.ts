// A host spelled like an ssh option (`-oProxyCommand=./x.sh`) must never reach the ssh binary as
// an option: it is refused by the config schema, by the host-spec parser, and every ssh command
// line Tether builds puts the host after `--`.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';
import { parseHostSpec, resolveHost } from '../../src/backends/ssh/hosts';
import { sshArgsForHost, sshArgv } from '../../src/backends/ssh/sshArgs';
import { sshCommandOf } from '../../src/fleet/cloud';
import type { LedgerResource } from '../../src/core/ledger';
import { tmpDir } from '../helpers/tmp';

const HOSTILE = ['-oProxyCommand=./x.sh', 'me@-oProxyCommand=./x.sh', '-F/tmp/evil', 'a\u0000b', 'a\u001bb', 'a\nb', '\u007fhost'];

function problemsOf(text: string) {
  try {
    parseConfig(text, '/ws/.vscode/tether.json');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return assert.fail('expected a ConfigError');
}

describe('ssh: option injection through a host name', () => {
  it('tether.json refuses option-like hosts and control characters with a clear message (plugins and hosts)', () => {
    for (const h of HOSTILE) {
      const [p] = problemsOf(JSON.stringify({ plugins: [{ name: 'a', command: 'x', host: h }] }));
      assert.equal(p!.path, '/plugins/0/host', h);
      assert.match(p!.message, /no leading "-"/, h);
      const [q] = problemsOf(JSON.stringify({ plugins: [], hosts: ['ok', h] }));
      assert.equal(q!.path, '/hosts/1', h);
      assert.match(q!.message, /no leading "-", spaces, control characters/, h);
    }
    const [p] = problemsOf(JSON.stringify({ plugins: [{ name: 'a', command: 'x', host: '-oProxyCommand=./x.sh' }] }));
    assert.match(p!.message, /starts with "-", so ssh would read it as an option/);
    // Ordinary hosts still pass, dashes inside included.
    const ok = parseConfig(JSON.stringify({ plugins: [{ name: 'a', command: 'x', host: 'gpu-1' }], hosts: ['me@box-2:2222', 'u@[::1]:22'] }), 'f');
    assert.equal(ok.plugins[0]!.host, 'gpu-1');
  });

  it('the host parser (every resolve, CLI and settings too) refuses them before ssh runs', () => {
    for (const h of HOSTILE) assert.throws(() => parseHostSpec(h), /Invalid SSH host/, JSON.stringify(h));
    for (const h of HOSTILE) assert.throws(() => resolveHost(h), /Invalid SSH host/, JSON.stringify(h));
  });

  it('every ssh command line puts the host after "--": a hostile host cannot run a local program', () => {
    const dir = tmpDir('tether-inject-');
    const marker = path.join(dir, 'ran');
    const script = path.join(dir, 'x.sh');
    fs.writeFileSync(script, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    // Control: without "--", this very spelling runs the program (what the old code did).
    spawnSync('ssh', ['-F', '/dev/null', '-oProxyCommand=./x.sh', 'true'], { cwd: dir, stdio: 'ignore', timeout: 20_000 });
    assert.ok(fs.existsSync(marker), 'control: ssh without "--" runs a ProxyCommand given as a host');
    fs.rmSync(marker);
    // Open Terminal on Host: the spec is refused before any argv is built...
    for (const h of HOSTILE) assert.throws(() => sshArgsForHost(h), /Invalid SSH host/);
    // ...and had it reached the argv builder, it would sit after "--" (given to the real ssh binary).
    const args = sshArgv({ host: '-oProxyCommand=./x.sh' });
    assert.deepEqual(args, ['--', '-oProxyCommand=./x.sh']);
    const r = spawnSync('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', ...args, 'true'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.ok(!fs.existsSync(marker), `the program ran: ${r.stderr}`);
    assert.deepEqual(sshArgsForHost('me@box:2222'), ['-p', '2222', '--', 'me@box']);
    assert.deepEqual(sshArgsForHost('gpu-1'), ['--', 'gpu-1']);
    assert.deepEqual(sshArgsForHost('u@[::1]:2222'), ['-p', '2222', '--', 'u@::1']);
    // Copy SSH Command (cloud rows): the copied text runs the same way in a shell.
    const rec = { remote: { sshHost: '-oProxyCommand=./x.sh', sshPort: 2222, metadata: { sshUser: 'ubuntu' } } } as unknown as LedgerResource;
    const cmd = sshCommandOf(rec)!;
    assert.equal(cmd, 'ssh -p 2222 -- ubuntu@-oProxyCommand=./x.sh');
    const sh = spawnSync('/bin/sh', ['-c', cmd.replace(/^ssh /, 'ssh -F /dev/null -o BatchMode=yes ')], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(sh.status, 0);
    assert.ok(!fs.existsSync(marker), `the program ran: ${sh.stderr}`);
    assert.equal(sshCommandOf({ remote: { sshHost: '1.2.3.4', metadata: {} } } as unknown as LedgerResource), 'ssh -- 1.2.3.4');
  });
});
