// The real `tether` CLI in its own process: exit codes, JSON, detached plugins, orphans, faults.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isSameProcessAlive, identify, type ProcessIdentity, signalIfSame } from '../../src/core/procfs';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';

describe('tether CLI', function () {
  this.timeout(30000);
  let stateDir: string;
  let env: Record<string, string>;
  const leftovers: ProcessIdentity[] = [];
  beforeEach(() => {
    stateDir = tmpDir('tether-cli-state-');
    env = { TETHER_STATE_DIR: stateDir };
  });
  afterEach(() => {
    for (const p of leftovers.splice(0)) signalIfSame(p, 'SIGKILL');
  });

  it('start → the plugin outlives the CLI → status --json shows its tree → stop leaves nothing', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'workers', command: 'sh', args: ['-c', 'sleep 300 & sleep 300 & wait'] }] });
    const start = await runCli(['start', 'workers', '--workspace', ws], env);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^started workers: pid \d+/);
    const status = await waitFor(async () => {
      const r = await runCli(['status', '--json', '--workspace', ws], env);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as StatusReport;
      leftovers.push(...s.plugins[0]!.processes);
      return s.plugins[0]!.processes.length === 3 ? s : undefined;
    }, 5000, 'three processes');
    assert.equal(status.schemaVersion, 1);
    assert.equal(status.workspace, fs.realpathSync(ws) === ws ? ws : path.resolve(ws));
    const p = status.plugins[0]!;
    assert.equal(p.state, 'running');
    assert.equal(p.owner?.kind, 'cli');
    assert.equal(p.declared, true);
    assert.deepEqual(Object.keys(p.processes[0]!).sort(), ['command', 'cpuPercent', 'escaped', 'pid', 'ppid', 'rssBytes', 'startTime', 'startedAt', 'state'].sort());
    leftovers.push(...p.processes);
    const pids = await runCli(['pids', 'workers', '--json', '--workspace', ws], env);
    assert.deepEqual(new Set(JSON.parse(pids.stdout)), new Set(p.processes.map((x) => x.pid)));
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /workers\s+running\s+3 process\(es\)/);
    const stop = await runCli(['stop', 'workers', '--workspace', ws], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped workers: 3 process\(es\).*0 left/);
    for (const x of p.processes) assert.equal(isSameProcessAlive(x), false);
  });

  it('exit code 2 with a one-line error: unknown plugin, missing config, malformed config, bad usage', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'a', command: 'sleep', args: ['1'] }] });
    const unknown = await runCli(['start', 'nope', '--workspace', ws], env);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr.trim().split('\n').length, 1);
    assert.match(unknown.stderr, /unknown plugin "nope" — Declared in .*tether\.json: a\./);
    const missing = await runCli(['start', 'a', '--workspace', tmpDir()], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /tether\.json does not exist — Create it/);
    const bad = workspaceWith('{"plugins": [{"name": "x", "comand": "y"}]}');
    const malformed = await runCli(['start', 'x', '--workspace', bad], env);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /\/plugins\/0 \(line 1\): missing required property "command"; \/plugins\/0\/comand \(line 1\): unknown property "comand"/);
    const st = await runCli(['status', '--workspace', bad], env);
    assert.equal(st.code, 2);
    assert.match(st.stdout, /config error:/);
    for (const args of [[], ['frobnicate'], ['down'], ['stop'], ['status', '--bogus'], ['stop', 'a', '--grace', 'soon']]) {
      const r = await runCli([...args, '--workspace', ws], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^tether: .+ — .+\n$/);
    }
    assert.equal((await runCli(['--help'])).code, 0);
  });

  it('exit code 1 when the operation fails: command not found, exits at once', async () => {
    const ws = workspaceWith({
      plugins: [
        { name: 'ghost', command: 'definitely-not-installed' },
        { name: 'crash', command: 'sh', args: ['-c', 'exit 7'] },
      ],
    });
    const ghost = await runCli(['start', 'ghost', '--workspace', ws], env);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /command "definitely-not-installed" was not found — Install it/);
    const crash = await runCli(['start', 'crash', '--workspace', ws], env);
    assert.equal(crash.code, 1);
    assert.match(crash.stderr, /exited at once with code 7/);
  });

  it('down --all stops every plugin of the workspace', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'a', command: 'sleep', args: ['300'] }, { name: 'b', command: 'sleep', args: ['300'] }] });
    for (const n of ['a', 'b']) assert.equal((await runCli(['start', n, '--workspace', ws], env)).code, 0);
    const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
    const procs = s.plugins.flatMap((p) => p.processes);
    assert.equal(procs.length, 2);
    leftovers.push(...procs);
    const down = await runCli(['down', '--all', '--workspace', ws], env);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stopped: a, b/);
    for (const p of procs) assert.equal(isSameProcessAlive(p), false);
  });

  it('a crashed VS Code window leaves an orphan that `orphans` lists and `orphans --kill` stops', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'srv', command: 'sh', args: ['-c', 'sleep 300 & wait'] }] });
    const helper = path.resolve(__dirname, '..', 'helpers', 'crashingOwner.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', helper, ws, stateDir, 'srv'], { encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const rootPid = Number(r.stdout.trim());
    const root = identify(rootPid)!;
    leftovers.push(root);
    const list = await runCli(['orphans', '--json', '--workspace', ws], env);
    assert.equal(list.code, 0, list.stderr);
    const orphans = JSON.parse(list.stdout) as StatusReport['orphans'];
    assert.equal(orphans.length, 1);
    assert.equal(orphans[0]!.state, 'orphan');
    assert.match(orphans[0]!.orphanReason!, /VS Code window that started it \(pid \d+\) is gone/);
    const procs = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.plugins[0]!.processes.length === 2 ? s.plugins[0]!.processes : undefined;
    });
    // Seen from another workspace too.
    const elsewhere = await runCli(['orphans', '--workspace', tmpDir()], env);
    assert.match(elsewhere.stdout, /^srv\t/);
    const kill = await runCli(['orphans', '--kill', '--workspace', ws], env);
    assert.equal(kill.code, 0, kill.stderr);
    assert.match(kill.stdout, /stopped orphans: srv/);
    for (const p of procs) assert.equal(isSameProcessAlive(p), false);
    assert.match((await runCli(['orphans', '--workspace', ws], env)).stdout, /no orphans/);
  });

  it('a corrupt ledger is reported (exit 1, file untouched) and `ledger repair` rebuilds it from running processes', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'keep', command: 'sleep', args: ['300'] }] });
    assert.equal((await runCli(['start', 'keep', '--workspace', ws], env)).code, 0);
    const file = path.join(stateDir, 'ledger.json');
    const damaged = fs.readFileSync(file, 'utf8').slice(0, 100);
    fs.writeFileSync(file, damaged);
    const st = await runCli(['status', '--workspace', ws], env);
    assert.equal(st.code, 1);
    assert.match(st.stderr, /ledger .* is damaged \(not valid JSON.*\); Tether left it untouched — Run `tether ledger repair`/);
    assert.equal(fs.readFileSync(file, 'utf8'), damaged);
    const repair = await runCli(['ledger', 'repair', '--workspace', ws], env);
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(repair.stdout, /rebuilt from running processes: 1 resource\(s\) found/);
    assert.ok(fs.readdirSync(stateDir).some((f) => f.startsWith('ledger.json.corrupt-')));
    const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
    assert.equal(s.plugins[0]!.processes.length, 1, 'the running plugin was found again by its marker');
    leftovers.push(...s.plugins[0]!.processes);
    assert.equal((await runCli(['stop', 'keep', '--workspace', ws], env)).code, 0);
    assert.equal(isSameProcessAlive(s.plugins[0]!.processes[0]!), false);
  });

  it('a stale lock from a crashed writer does not block the CLI', async () => {
    const ws = workspaceWith({ plugins: [{ name: 'a', command: 'sleep', args: ['300'] }] });
    const dead = spawnSync('true');
    fs.writeFileSync(path.join(stateDir, 'ledger.lock'), JSON.stringify({ pid: dead.pid, startTime: 1, host: require('node:os').hostname(), nonce: 'n', since: 'then', what: 'crashed cli' }));
    const r = await runCli(['start', 'a', '--workspace', ws], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await runCli(['stop', 'a', '--workspace', ws], env)).code, 0);
  });
});
