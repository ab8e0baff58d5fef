// Ledger safety through the real CLI (issue #13): cost history is never evicted, concurrent
// starts start one copy, a rejected or failed start leaves no phantom "starting" record.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger, endIn } from '../../src/core/ledger';
import { FileLock } from '../../src/core/fileLock';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { periodSpend } from '../../src/fleet/costReport';
import { isSameProcessAlive, readStat, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { logPathFor } from '../../src/backends/local/subprocess';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import { Engine, type StatusReport } from '../../src/workspace/engine';

describe('ledger safety (CLI)', function () {
  this.timeout(300_000);
  const leftovers: ProcessIdentity[] = [];
  /** Ledger tags of this suite's state folders: every process carrying one is this suite's. */
  const tags: string[] = [];
  afterEach(() => {
    for (const p of leftovers.splice(0)) signalIfSame(p, 'SIGKILL');
    for (const tag of tags.splice(0)) for (const p of markedProcesses(tag)) signalIfSame(p, 'SIGKILL');
  });

  it('an ended cloud record survives 250 later local start/stop cycles: tether cost, --csv and the period spend still count it (#13 item 6)', async () => {
    const stateDir = tmpDir('tether-history-');
    const ledger = new Ledger(stateDir);
    const now = Date.now();
    const at = (msAgo: number) => new Date(now - msAgo).toISOString();
    // A Lambda instance that ran for one hour at $2/h and ended 10 minutes ago.
    await ledger.update((b) => {
      b.resources.push({
        id: 'cloud-1',
        kind: 'cloud',
        plugin: 'trainer',
        executionMode: PluginExecutionMode.CLOUD_GPU,
        state: 'running',
        createdAt: at(70 * 60_000),
        updatedAt: at(70 * 60_000),
        processes: [],
        remote: remoteResourceInfo({ provider: CloudProviderType.LAMBDA_LABS, instanceId: 'i-1', estimatedCostPerHour: 2, status: 'running', metadata: {} }),
        history: [
          { at: at(70 * 60_000), state: 'starting' },
          { at: at(70 * 60_000), state: 'running', note: 'cloud:running' },
        ],
      });
    });
    await ledger.update((b) => {
      const r = b.resources.find((x) => x.id === 'cloud-1')!;
      r.history.push({ at: at(10 * 60_000), state: 'stopped', note: 'cloud:terminated' });
      endIn(b, 'cloud-1', 'stopped');
    });
    // 250 ordinary local start/stop cycles afterwards, each its own locked write, as `tether start`/`stop` do.
    for (let i = 0; i < 250; i++) {
      const r = await ledger.addIntent({ kind: 'local', plugin: `local-${i}`, executionMode: PluginExecutionMode.SUBPROCESS });
      await ledger.end(r.id, 'stopped', 'stopped by the user');
    }
    const body = ledger.read();
    assert.ok(body.ended.length >= 200, 'the ordinary history is still kept (capped)');
    const cost = await runCli(['cost', '--json'], { TETHER_STATE_DIR: stateDir });
    assert.equal(cost.code, 0, cost.stderr);
    const report = JSON.parse(cost.stdout) as { lines: Array<{ ledgerId: string; cost: number }>; total: number };
    const line = report.lines.find((l) => l.ledgerId === 'cloud-1');
    assert.ok(line, `tether cost still lists the ended cloud record: ${cost.stdout}`);
    assert.ok(Math.abs(line.cost - 2) < 0.01, `it cost $2 (1 h at $2/h), got $${line.cost}`);
    const csv = await runCli(['cost', '--csv'], { TETHER_STATE_DIR: stateDir });
    assert.match(csv.stdout, /cloud-1,trainer,lambda_labs/);
    assert.ok(periodSpend(ledger, 'month', now).spent >= 1.99, 'the status bar month spend still counts it');
  });

  it('concurrent `tether start` of one plugin starts exactly one copy; stop then leaves none (#13 item 9)', async () => {
    const stateDir = tmpDir('tether-race-');
    const env = { TETHER_STATE_DIR: stateDir };
    const ws = workspaceWith({ plugins: [{ name: 'p1', command: 'sh', args: ['-c', 'sleep 300 & wait'] }] });
    const ledger = new Ledger(stateDir);
    tags.push(ledger.tag);
    for (const n of [4, 6, 8]) {
      // Another writer holds the ledger while the starts run, and lets go once every start waits
      // for a lock (each waiter leaves its `*.lock.<nonce>.tmp` owner file), or once the first has
      // waited 6 s (the CLI gives up on the ledger lock after 10 s).
      const held = await new FileLock(path.join(stateDir, 'ledger.lock')).acquire({ what: 'the test (another writer)' });
      const pending = Promise.all(Array.from({ length: n }, () => runCli(['start', 'p1', '--workspace', ws], env)));
      await locksAwaited(stateDir, n);
      held();
      const runs = await pending;
      const started = runs.filter((r) => r.code === 0);
      const active = ledger.read().resources.filter((r) => r.plugin === 'p1');
      for (const r of active) leftovers.push(...r.processes);
      // Every copy of this plugin, whatever the records say: marked processes machine-wide, by their environment.
      const marked = markedRoots(ledger.tag);
      leftovers.push(...marked);
      assert.equal(started.length, 1, `round of ${n}: ${started.length} starts succeeded:\n${runs.map((r) => `${r.code} ${r.stdout}${r.stderr}`).join('')}`);
      for (const r of runs.filter((x) => x.code !== 0)) assert.match(r.stderr, /already running/, r.stderr);
      assert.equal(active.length, 1, `round of ${n}: ${active.length} active records`);
      assert.equal(marked.length, 1, `round of ${n}: ${marked.length} root processes carry this ledger's p1 marker`);
      const stop = await runCli(['stop', 'p1', '--workspace', ws], env);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /0 left/);
      await waitFor(() => markedRoots(ledger.tag).every((p) => !isSameProcessAlive(p)), 10_000, 'no p1 process left');
      assert.equal(ledger.read().resources.length, 0);
    }
  });

  it('concurrent starts of one plugin in one process (the extension: two windows\' engines, a double click) start one copy (#13 item 9)', async () => {
    const stateDir = tmpDir('tether-race-inproc-');
    const ws = workspaceWith({ plugins: [{ name: 'p1', command: 'sh', args: ['-c', 'sleep 300 & wait'] }] });
    const ledger = new Ledger(stateDir);
    tags.push(ledger.tag);
    for (const n of [4, 8]) {
      const engines = Array.from({ length: n }, () => new Engine({ workspace: ws, stateDir, ownerKind: 'vscode' }));
      // Each start's reconcile writes the ledger whenever any process on this machine carries a
      // Tether marker (other test suites' do), which staggers the starts at random. Left out here,
      // every start reaches its check at once: the race is then the same in every run.
      for (const e of engines) e.reconcile = async () => new Map();
      // Another writer (a window's poll, the CLI) holds the ledger for a moment while the starts run.
      const held = await new FileLock(path.join(stateDir, 'ledger.lock')).acquire({ what: 'the test (another writer)' });
      const pending = Promise.allSettled(engines.map((e) => e.start('p1')));
      await locksAwaited(stateDir, n);
      held();
      const runs = await pending;
      const marked = markedRoots(ledger.tag);
      leftovers.push(...marked);
      const ok = runs.filter((r) => r.status === 'fulfilled');
      assert.equal(ok.length, 1, `round of ${n}: ${ok.length} starts succeeded`);
      for (const r of runs) if (r.status === 'rejected') assert.match(String(r.reason), /already running/);
      assert.equal(ledger.read().resources.length, 1, `round of ${n}: one active record`);
      assert.equal(marked.length, 1, `round of ${n}: ${marked.length} copies run`);
      const report = await engines[0]!.stop('p1');
      assert.equal(report?.survivors.length, 0);
      await waitFor(() => markedRoots(ledger.tag).every((p) => !isSameProcessAlive(p)), 10_000, 'no p1 process left');
      assert.equal(ledger.read().resources.length, 0);
    }
  });

  it('a NUL byte in args is refused before any intent is written; the next start says the same (#13 item 10)', async () => {
    const stateDir = tmpDir('tether-nul-');
    const env = { TETHER_STATE_DIR: stateDir };
    const ws = workspaceWith({ plugins: [{ name: 'nul', command: 'echo', args: ['a\u0000b'] }] });
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['start', 'nul', '--workspace', ws], env);
      assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /\/plugins\/0\/args\/0.*NUL/, r.stderr);
      assert.doesNotMatch(r.stderr, /already running/);
    }
    const body = new Ledger(stateDir).read();
    assert.equal(body.resources.length + body.ended.length, 0, 'no record was written');
  });

  it('a remote env name the remote script refuses (MY-VAR) is refused before any intent; stop of the unreachable host is not stuck (#13 item 10)', async () => {
    const stateDir = tmpDir('tether-envname-');
    const env = { TETHER_STATE_DIR: stateDir };
    // Port 1 on 127.0.0.1: nothing listens there (the host is unreachable).
    const ws = workspaceWith({ plugins: [{ name: 'remote', host: 'nobody@127.0.0.1:1', command: 'sleep', args: ['300'], env: { 'MY-VAR': 'x' } }] });
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['start', 'remote', '--workspace', ws], env);
      assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /\/plugins\/0\/env.*MY-VAR/, r.stderr);
      assert.doesNotMatch(r.stderr, /already running/);
    }
    assert.equal(new Ledger(stateDir).read().resources.length, 0, 'no starting record');
    // Nothing to stop, so nothing stuck: stop names the config's problem (exit 2), never a failed stop of the host.
    const stop = await runCli(['stop', 'remote', '--workspace', ws], env);
    assert.equal(stop.code, 2, `${stop.stdout}${stop.stderr}`);
    assert.match(stop.stderr, /MY-VAR/);
  });

  it('a start that fails after its intent was written closes the record as failed; the next start is not "already running" (#13 item 10)', async () => {
    const stateDir = tmpDir('tether-afterintent-');
    const env = { TETHER_STATE_DIR: stateDir };
    const ws = workspaceWith({ plugins: [{ name: 'p', command: 'sleep', args: ['300'] }] });
    // The log file cannot be opened (a folder stands in its place): the start fails after the intent.
    const st = await runCli(['status', '--json', '--workspace', ws], env);
    const workspace = (JSON.parse(st.stdout) as StatusReport).workspace;
    fs.mkdirSync(logPathFor(stateDir, workspace, 'p'), { recursive: true });
    const r = await runCli(['start', 'p', '--workspace', ws], env);
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    const body = new Ledger(stateDir).read();
    assert.deepEqual(body.resources.filter((x) => x.plugin === 'p'), [], 'no phantom "starting" record');
    const closed = body.ended.find((x) => x.plugin === 'p');
    assert.equal(closed?.state, 'failed');
    assert.match(closed!.history.map((h) => h.note).join('\n'), /start failed/);
    fs.rmSync(logPathFor(stateDir, workspace, 'p'), { recursive: true });
    const again = await runCli(['start', 'p', '--workspace', ws], env);
    assert.equal(again.code, 0, again.stderr);
    const rec = new Ledger(stateDir).read().resources.find((x) => x.plugin === 'p')!;
    leftovers.push(...rec.processes);
    assert.equal((await runCli(['stop', 'p', '--workspace', ws], env)).code, 0);
  });
});

/**
 * Resolves once `n` lock waiters are seen in the state folder (each leaves its
 * `*.lock.<nonce>.tmp` owner file while it waits), or once the first has waited 6 s (a ledger
 * write gives up after 10 s).
 */
async function locksAwaited(stateDir: string, n: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const waiting = fs.readdirSync(stateDir).filter((f) => /\.lock\.[0-9a-f-]{36}\.tmp$/.test(f));
    const oldest = Math.min(Date.now(), ...waiting.map((f) => fs.statSync(path.join(stateDir, f), { throwIfNoEntry: false })?.mtimeMs ?? Date.now()));
    if (waiting.length >= n || Date.now() - oldest > 6000 || Date.now() - t0 > 120_000) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Live processes on this machine that carry this ledger's tag and plugin p1 (by /proc/PID/environ). */
function markedProcesses(tag: string): Array<ProcessIdentity & { ppid: number }> {
  const out: Array<ProcessIdentity & { ppid: number }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let envs: string[];
    try {
      envs = fs.readFileSync(path.join('/proc', d, 'environ'), 'latin1').split('\0');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!envs.includes(`TETHER_LEDGER=${tag}`) || !envs.includes('TETHER_PLUGIN=p1')) continue;
    const st = readStat(Number(d));
    if (!st || st.state === 'Z') continue;
    out.push({ pid: st.pid, startTime: st.startTime, ppid: st.ppid });
  }
  return out;
}

/** The roots among them: one per running copy of p1. */
function markedRoots(tag: string): ProcessIdentity[] {
  const out = markedProcesses(tag);
  const pids = new Set(out.map((p) => p.pid));
  return out.filter((p) => !pids.has(p.ppid)).map(({ pid, startTime }) => ({ pid, startTime }));
}
