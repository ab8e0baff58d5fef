// A state folder shared by several machines (an NFS home: the lock file already names its holder's
// host for this). A local record made on another machine names that machine's processes: this one
// never ends it for lack of processes here, never takes a local process that happens to match its
// PID and start time for it, and never signals one.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { identify, isSameProcessAlive, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

describe('a state folder shared with another machine', function () {
  this.timeout(120_000);
  const kids: ChildProcess[] = [];
  let victim: ProcessIdentity | undefined;
  afterEach(() => {
    if (victim) signalIfSame(victim, 'SIGKILL');
    for (const k of kids.splice(0)) k.kill('SIGKILL');
  });

  it('its local records are neither ended, nor matched to local processes, nor stopped here', async () => {
    const c = spawn('sleep', ['300'], { stdio: 'ignore' });
    kids.push(c);
    victim = await waitFor(() => identify(c.pid!), 5000, 'the local process');
    const stateDir = tmpDir('tether-shared-host-');
    const ws = workspaceWith({ plugins: [{ name: 'web', command: 'sleep', args: ['300'] }, { name: 'api', command: 'sleep', args: ['300'] }] });
    const now = new Date().toISOString();
    const owner = { kind: 'cli' as const, pid: 4321, startTime: 777, host: 'another-machine.example' };
    const rec = (id: string, plugin: string, processes: ProcessIdentity[]) => ({
      id, kind: 'local' as const, plugin, workspace: ws, executionMode: 'subprocess' as never, state: 'running' as const,
      owner, createdAt: now, updatedAt: now, processes: processes.map((p) => ({ ...p, command: 'sleep 300' })), history: [],
    });
    await new Ledger(stateDir).update((b) => {
      // "web" runs there; its PID and start time happen to match a process here.
      b.resources.push(rec('11111111-2222-4333-8444-555555555555', 'web', [victim!]));
      // "api" runs there too; nothing here matches it.
      b.resources.push(rec('66666666-7777-4888-8999-000000000000', 'api', [{ pid: 999_999, startTime: 1 }]));
    });
    const env = { TETHER_STATE_DIR: stateDir };
    const st = await runCli(['status', '--json', '--workspace', ws], env);
    assert.equal(st.code, 0, st.stderr);
    const body = new Ledger(stateDir).read();
    assert.deepEqual(body.resources.map((r) => r.plugin).sort(), ['api', 'web'], `both records are kept: ended ${body.ended.map((r) => r.plugin).join(',')}`);
    assert.ok(!st.stdout.includes(`"pid": ${victim.pid},`), 'the local process is not shown as part of "web"');
    const stop = await runCli(['stop', 'web', '--grace', '1', '--workspace', ws], env);
    assert.notEqual(stop.code, 0, `the stop is refused: ${stop.stdout}`);
    assert.match(stop.stderr, /another-machine\.example/);
    assert.ok(isSameProcessAlive(victim), 'the local process was not signalled');
    // No longer declared here: still not this machine's orphan to kill.
    fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [] }));
    const k = await runCli(['orphans', '--kill', '--grace', '1', '--workspace', ws], env);
    assert.equal(k.code, 0, k.stderr);
    assert.ok(isSameProcessAlive(victim), 'orphans --kill spared the local process');
    assert.equal(new Ledger(stateDir).read().resources.length, 2, 'and kept the other machine\'s records');
  });
});
