// Remote plugins through the whole stack: the real `tether` CLI (its own process, as a user runs
// it) against a REAL OpenSSH server on 127.0.0.1 (see test/helpers/sshd.ts). The CLI finds the
// test host the way it finds a user's hosts: HOME points at a folder whose ~/.ssh/config and
// ~/.ssh/known_hosts name it. The "remote" processes run on this machine as the test user, so
// the tests check them in /proc directly.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { readEnvVar, readStat, isGoneState } from '../../src/core/procfs';
import type { StatusReport } from '../../src/workspace/engine';
import { runCli } from '../helpers/cli';
import { type TestSshd, startSshdOrSkip } from '../helpers/sshd';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

function alive(p: { pid: number; startTime?: number }): boolean {
  const st = readStat(p.pid);
  return !!st && !isGoneState(st.state) && (p.startTime === undefined || st.startTime === p.startTime);
}

function uidOf(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A HOME folder with .ssh/config and .ssh/known_hosts. */
function homeWith(config: string, knownHosts: string): string {
  const home = tmpDir('tether-ssh-home-');
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(home, '.ssh', 'config'), config);
  fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), knownHosts);
  return home;
}

const json = (stdout: string) => JSON.parse(stdout) as StatusReport;

describe('tether CLI with remote SSH plugins (real OpenSSH server)', function () {
  this.timeout(30000);
  let sshd: TestSshd;
  let home: string;
  let env: Record<string, string>;

  before(async function () {
    sshd = await startSshdOrSkip(this);
    home = homeWith(fs.readFileSync(sshd.sshConfig, 'utf8'), fs.readFileSync(sshd.knownHosts, 'utf8'));
    // The default identity, for specs without an alias (user@host:port).
    fs.copyFileSync(sshd.userKey, path.join(home, '.ssh', 'id_ed25519'));
  });
  after(async () => {
    await sshd?.stop();
  });
  beforeEach(() => {
    // No ssh-agent: the key comes from IdentityFile in the config.
    env = { HOME: home, SSH_AUTH_SOCK: '', TETHER_STATE_DIR: tmpDir('tether-ssh-cli-state-') };
  });

  it('start → status --json shows both remote PIDs (kind ssh, host) and the host → pids → stop leaves zero survivors', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'srv', command: 'sh', args: ['-c', 'sleep 300 & wait'], host: 'tether-test', stopGraceSeconds: 1 }] });
    const start = await runCli(['start', 'srv', '--workspace', ws], env);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^started srv: pid \d+ on tether-test \(log /);
    assert.ok(start.stdout.includes(` (log ${sshd.home}/.cache/tether/logs/`), start.stdout);
    let last = '';
    const report = await waitFor(async () => {
      const r = await runCli(['status', '--json', '--workspace', ws], env);
      assert.equal(r.code, 0, r.stderr);
      last = r.stdout;
      const s = json(r.stdout);
      return s.plugins[0]!.processes.length === 2 ? s : undefined;
    }, 8000, 'root and child on the host').catch((e: Error) => {
      throw new Error(`${e.message}; last status: ${last}`);
    });
    const p = report.plugins[0]!;
    assert.equal(p.kind, 'ssh');
    assert.equal(p.host, 'tether-test');
    assert.equal(p.executionMode, 'remote_ssh');
    assert.equal(p.state, 'running');
    assert.equal(p.declared, true);
    assert.equal(p.owner?.kind, 'cli');
    assert.equal(p.problem, undefined);
    assert.equal(p.command, 'sh -c sleep 300 & wait');
    assert.equal(p.stopGraceMs, 1000);
    const [root, child] = p.processes;
    assert.equal(child!.ppid, root!.pid);
    assert.match(child!.command, /^sleep 300/);
    for (const x of p.processes) {
      assert.ok(alive(x), `${x.pid} runs with the reported start time`);
      assert.equal(uidOf(x.pid), sshd.uid, 'runs as the SSH user');
      assert.equal(readEnvVar(x.pid, 'TETHER_RESOURCE_ID'), p.ledgerId);
    }
    assert.deepEqual(report.hosts, [
      { host: 'tether-test', target: `${sshd.user}@127.0.0.1:${sshd.port}`, state: 'connected', plugins: ['srv'] },
    ]);
    assert.equal(report.totals.running, 1);
    assert.equal(report.totals.processes, 2);
    assert.deepEqual(report.orphans, []);

    const pids = await runCli(['pids', 'srv', '--json', '--workspace', ws], env);
    assert.equal(pids.code, 0, pids.stderr);
    assert.deepEqual(new Set(JSON.parse(pids.stdout)), new Set(p.processes.map((x) => x.pid)));
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /^srv\s+running\s+2 process\(es\)\s+on tether-test/m);
    assert.match(human.stdout, new RegExp(`^hosts:\\n  tether-test \\(${sshd.user}@127\\.0\\.0\\.1:${sshd.port}\\)  connected  plugins: srv$`, 'm'));
    const again = await runCli(['start', 'srv', '--workspace', ws], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /srv is already running \(pid \d+\)/);

    const stop = await runCli(['stop', 'srv', '--workspace', ws], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped srv: 3 process\(es\).*0 left/); // the command, its child and the exit-code wrapper
    for (const x of p.processes) assert.equal(alive(x), false, `${x.pid} is gone`);
    const after = json((await runCli(['status', '--json', '--workspace', ws], env)).stdout);
    assert.equal(after.plugins[0]!.state, 'stopped');
    assert.equal(after.plugins[0]!.kind, 'ssh');
    assert.deepEqual(after.plugins[0]!.processes, []);
    assert.equal(after.totals.running, 0);
  });

  it('a remote job that ends on its own reports its exit code: 0 is stopped, 3 is failed (exit 3)', async () => {
    const ws = workspaceWith({
      plugins: [
        { name: 'ok', command: 'sh', args: ['-c', 'sleep 1; echo done'], host: 'tether-test' },
        { name: 'bad', command: 'sh', args: ['-c', 'sleep 1; echo oops >&2; exit 3'], host: 'tether-test' },
      ],
    });
    for (const n of ['ok', 'bad']) assert.equal((await runCli(['start', n, '--workspace', ws], env)).code, 0);
    const s = await waitFor(async () => {
      const r = json((await runCli(['status', '--json', '--workspace', ws], env)).stdout);
      return r.plugins.every((p) => p.processes.length === 0 && p.state !== 'running') ? r : undefined;
    }, 10000, 'both jobs ended');
    const ok = s.plugins.find((p) => p.name === 'ok')!;
    const bad = s.plugins.find((p) => p.name === 'bad')!;
    assert.equal(ok.state, 'stopped');
    assert.equal(ok.lastExit?.code, 0);
    assert.equal(bad.state, 'failed');
    assert.equal(bad.lastExit?.code, 3);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /^bad\s+failed/m);
  });

  it('an unreachable host keeps the record and reports the problem (status exits 0); it recovers when the host is back', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'away', command: 'sleep', args: ['300'], host: 'tether-test', stopGraceSeconds: 1 }] });
    const start = await runCli(['start', 'away', '--workspace', ws], env);
    assert.equal(start.code, 0, start.stderr);
    // The same alias now resolves to a port nothing listens on: the host is "down".
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const down = { ...env, HOME: homeWith(fs.readFileSync(sshd.sshConfig, 'utf8').replace(`Port ${sshd.port}`, `Port ${closedPort}`), '') };
    const r = await runCli(['status', '--json', '--workspace', ws], down);
    assert.equal(r.code, 0, r.stderr);
    const s = json(r.stdout);
    const p = s.plugins[0]!;
    assert.equal(p.kind, 'ssh');
    assert.equal(p.state, 'running', 'the state stays as recorded');
    assert.ok(p.ledgerId);
    assert.match(p.problem ?? '', /^host tether-test is unreachable \(.*connection refused.*\); the ledger record is kept and Tether retries from \d{4}-/);
    assert.equal(s.hosts.length, 1);
    assert.equal(s.hosts[0]!.state, 'unreachable');
    assert.match(s.hosts[0]!.error ?? '', new RegExp(`127\\.0\\.0\\.1:${closedPort}.*connection refused`));
    assert.ok(s.hosts[0]!.retryAt);
    const human = await runCli(['status', '--workspace', ws], down);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^away\s+running\s+on tether-test\n  problem: host tether-test is unreachable/m);
    assert.match(human.stdout, /^  tether-test \(.*\)  unreachable  plugins: away\n    error: .*connection refused/m);
    // pids and stop cannot know: they fail (exit 1) and the record stays.
    const pids = await runCli(['pids', 'away', '--workspace', ws], down);
    assert.equal(pids.code, 1);
    assert.match(pids.stderr, /connection refused/);
    const stop = await runCli(['stop', 'away', '--workspace', ws], down);
    assert.equal(stop.code, 1);
    const kept = json((await runCli(['status', '--json', '--workspace', ws], down)).stdout).plugins[0]!;
    assert.equal(kept.ledgerId, p.ledgerId, 'the record is kept');
    assert.equal(kept.state, 'stopping', 'as recorded by the failed stop');
    // Back: the processes are found again, and the stop completes.
    const back = json((await runCli(['status', '--json', '--workspace', ws], env)).stdout).plugins[0]!;
    assert.equal(back.ledgerId, p.ledgerId);
    assert.equal(back.processes.length, 1);
    assert.equal(back.problem, undefined);
    assert.equal((await runCli(['stop', 'away', '--workspace', ws], env)).code, 0);
    assert.equal(alive(back.processes[0]!), false);
  });

  it('an unknown host key is refused with a clear error (no one to ask in the CLI)', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'k', command: 'sleep', args: ['300'], host: 'tether-test' }] });
    const r = await runCli(['start', 'k', '--workspace', ws], { ...env, HOME: homeWith(fs.readFileSync(sshd.sshConfig, 'utf8'), '') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /host key of \[127\.0\.0\.1\]:\d+ \(SHA256:[^)]+\) is unknown and there is no one to ask — .*ssh -p \d+ -- 127\.0\.0\.1 true.*VS Code/);
    const s = json((await runCli(['status', '--json', '--workspace', ws], env)).stdout);
    assert.equal(s.plugins[0]!.state, 'failed', 'the start intent was closed');
  });

  it('a hostile argument is not injected; orphans --kill and down --all stop remote plugins', async () => {
    const marker = `/tmp/tether-cli-pwned-${process.pid}`;
    const hostile = [`a'; touch ${marker} #`, `$(touch ${marker}-2)`, `"; touch ${marker}-3; "`];
    const argvFile = path.join(sshd.home, 'argv-cli.bin');
    const plugins = [
      { name: 'hostile', command: 'sh', args: ['-c', 'printf "%s\\0" "$@" > "$HOME/argv-cli.bin"; exec sleep 300', 'sh', ...hostile], host: 'tether-test' },
      { name: 'other', command: 'sleep', args: ['300'], host: `${sshd.user}@127.0.0.1:${sshd.port}` },
    ];
    const ws = workspaceWith({ plugins });
    for (const name of ['hostile', 'other']) {
      const r = await runCli(['start', name, '--workspace', ws], env);
      assert.equal(r.code, 0, r.stderr);
    }
    const argv = await waitFor(() => (fs.existsSync(argvFile) ? fs.readFileSync(argvFile, 'utf8') : undefined), 3000, 'argv written');
    assert.deepEqual(argv.split('\0').slice(0, -1), hostile, 'arguments arrive byte for byte');
    for (const suffix of ['', '-2', '-3']) assert.ok(!fs.existsSync(marker + suffix), `${marker}${suffix} must not exist`);
    fs.rmSync(argvFile, { force: true });
    const s = json((await runCli(['status', '--json', '--workspace', ws], env)).stdout);
    assert.deepEqual(s.hosts.map((h) => [h.host, h.state, h.plugins]).sort(), [
      ['tether-test', 'connected', ['hostile']],
      [`${sshd.user}@127.0.0.1:${sshd.port}`, 'connected', ['other']],
    ].sort());
    const procs = s.plugins.flatMap((p) => p.processes);
    assert.equal(procs.length, 2);
    // No longer declared: an orphan, listed with its host and stopped by orphans --kill.
    fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [plugins[1]] }));
    const orphans = await runCli(['orphans', '--workspace', ws], env);
    assert.match(orphans.stdout, /^hostile@tether-test\t\d+\t"hostile" is no longer declared/m);
    const kill = await runCli(['orphans', '--kill', '--grace', '1', '--workspace', ws], env);
    assert.equal(kill.code, 0, kill.stderr);
    assert.equal(kill.stdout.trim(), 'stopped orphans: hostile');
    const downAll = await runCli(['down', '--all', '--grace', '1', '--workspace', ws], env);
    assert.equal(downAll.code, 0, downAll.stderr);
    assert.equal(downAll.stdout.trim(), 'stopped: other');
    for (const p of procs) assert.equal(alive(p), false, `${p.pid} is gone`);
    assert.deepEqual(json((await runCli(['status', '--json', '--workspace', ws], env)).stdout).hosts.map((h) => h.plugins), [['other']]);
  });
});
