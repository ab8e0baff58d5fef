// A ledger outlives reboots; process identities (PID + start time in clock ticks since boot) do
// not. After a restart, a stranger can hold a recorded PID with the very same tick count (boot
// sequences are deterministic: the same services get the same PIDs at nearly the same ticks). A
// record made before the current boot has no process left, whatever its identities match now.
// Simulated here by a record whose creation predates this boot and whose recorded identity is
// that of a live stranger (exactly what such a collision looks like).
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { Ledger } from '../../src/core/ledger';
import { bootTimeMs, identify, isSameProcessAlive, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

describe('ledger records from before the current boot', function () {
  this.timeout(120_000);
  const strangers: Array<{ c: ChildProcess; id?: ProcessIdentity }> = [];
  afterEach(() => {
    for (const s of strangers.splice(0)) if (s.id) signalIfSame(s.id, 'SIGKILL');
  });
  const stranger = async (): Promise<ProcessIdentity> => {
    const c = spawn('sleep', ['300'], { stdio: 'ignore' });
    const s: { c: ChildProcess; id?: ProcessIdentity } = { c };
    strangers.push(s);
    s.id = await waitFor(() => identify(c.pid!), 5000, 'the stranger');
    return s.id;
  };
  const setup = async (kind: 'declared' | 'orphan') => {
    const stateDir = tmpDir('tether-reboot-');
    const ws = workspaceWith({ plugins: [{ name: 'web', command: 'sleep', args: ['300'] }] });
    const victim = await stranger();
    const before = new Date(bootTimeMs() - 3_600_000).toISOString(); // an hour before this boot
    await new Ledger(stateDir).update((b) => {
      b.resources.push({
        id: '0b0e1d2c-3b4a-4596-8877-665544332211',
        kind: 'local',
        plugin: kind === 'declared' ? 'web' : 'gone-plugin',
        workspace: ws,
        executionMode: 'subprocess' as never,
        state: 'running',
        owner: { kind: 'vscode', pid: 999_999, startTime: 1, host: (require('node:os') as typeof import('node:os')).hostname() },
        createdAt: before,
        updatedAt: before,
        processes: [{ pid: victim.pid, startTime: victim.startTime, command: 'sleep 300' }],
        history: [{ at: before, state: 'running' }],
      });
    });
    return { stateDir, ws, victim };
  };

  it('`tether stop` of a record made before this boot never signals the process that now matches its identity', async () => {
    const { stateDir, ws, victim } = await setup('declared');
    const r = await runCli(['stop', 'web', '--grace', '1', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.ok(isSameProcessAlive(victim), `the stranger was killed: ${r.stdout}${r.stderr}`);
    const body = new Ledger(stateDir).read();
    assert.equal(body.resources.length, 0, 'the record is closed');
  });

  it('`tether orphans --kill` and `status` neither kill nor adopt it', async () => {
    const { stateDir, ws, victim } = await setup('orphan');
    const st = await runCli(['status', '--json', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(st.code, 0, st.stderr);
    assert.ok(!st.stdout.includes(`"pid": ${victim.pid},`), 'status does not show the stranger as the record\'s process');
    const k = await runCli(['orphans', '--kill', '--grace', '1', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(k.code, 0, k.stderr);
    assert.ok(isSameProcessAlive(victim), `the stranger was killed: ${k.stdout}${k.stderr}`);
  });
});
