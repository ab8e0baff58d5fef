/**
 * The engine side of the dead man's switch, against the real loopback OpenSSH server: a cloud
 * record that asks for a switch gets it armed over SSH, pushed while Tether runs, re-armed when
 * its watcher vanished, reported when it fired, and disarmed on request. The record is written
 * by hand as a running Lambda instance whose SSH endpoint is the loopback server (no cloud is
 * involved: the keeper reads only the ledger), and the action is a stand-in for the shutdown
 * (it writes a file).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger, type LedgerResource } from '../../src/core/ledger';
import { silentLogger } from '../../src/core/logger';
import { isSameProcessAlive } from '../../src/core/procfs';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { deadmanOf, requestDeadman } from '../../src/fleet/cloud';
import { DeadmanKeeper } from '../../src/fleet/deadmanKeeper';
import { SshConnectionPool } from '../../src/backends/ssh/connection';
import { SshHostMonitor } from '../../src/backends/ssh/remotePlugin';
import { processesOf, type TestSshd, startSshdOrSkip } from '../helpers/sshd';
import { sleep, tmpDir, waitFor } from '../helpers/tmp';

describe("dead man's switch keeper (ledger + real loopback OpenSSH; stand-in action instead of a shutdown)", function () {
  this.timeout(60000);
  let sshd: TestSshd;
  let pool: SshConnectionPool;
  let monitor: SshHostMonitor;
  let dir: string;
  let ledger: Ledger;
  let now: number;
  let keeper: DeadmanKeeper;
  const fired = (_id: string) => path.join(sshd.home, 'keeper-fired');

  const record = (id: string): LedgerResource => {
    const at = new Date().toISOString();
    return {
      id,
      kind: 'cloud',
      plugin: `gpu-${id}`,
      executionMode: PluginExecutionMode.CLOUD_GPU,
      state: 'running',
      createdAt: at,
      updatedAt: at,
      processes: [],
      remote: remoteResourceInfo({
        provider: CloudProviderType.LAMBDA_LABS,
        instanceId: `i-${id}`,
        status: 'running',
        estimatedCostPerHour: 1,
        sshHost: '127.0.0.1',
        sshPort: sshd.port,
        metadata: { sshUser: sshd.user },
      }),
      history: [{ at, state: 'running', note: 'cloud:running' }],
    };
  };

  before(async function () {
    sshd = await startSshdOrSkip(this);
    // The instance's endpoint (user@127.0.0.1:port) logs in with the test key.
    fs.appendFileSync(sshd.sshConfig, `Host 127.0.0.1\n  IdentityFile ${sshd.userKey}\n`);
    pool = new SshConnectionPool({ resolve: { configPath: sshd.sshConfig }, knownHostsFiles: [sshd.knownHosts], agent: null, backoffInitialMs: 200 });
    monitor = new SshHostMonitor(pool);
  });
  after(async () => {
    pool?.closeAll();
    await sshd?.stop();
  });
  beforeEach(() => {
    dir = tmpDir('tether-keeper-');
    ledger = new Ledger(dir);
    now = Date.now();
    keeper = new DeadmanKeeper(ledger, () => monitor, silentLogger, () => now, () => 'echo fired >> "$HOME/keeper-fired"');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('arms once the instance answers, pushes at most every timeout/4, reports firing after Tether goes silent', async () => {
    const id = 'keeper-a';
    fs.rmSync(fired(id), { force: true });
    await ledger.update((b) => void b.resources.push(record(id)));
    await requestDeadman(ledger, id, 3 / 60); // 3 s of silence
    const armed = await keeper.tend();
    assert.deepEqual(armed.map((e) => e.event), ['armed']);
    const st = deadmanOf(ledger.read().resources.find((r) => r.id === id)!)!;
    assert.ok(st.armedAt && st.pid && st.startTime, JSON.stringify(st));
    assert.ok(isSameProcessAlive({ pid: st.pid!, startTime: st.startTime! }), 'the watcher runs on the host (PID and start time as recorded)');
    // Pushed while "Tether runs": 5 s of real time, with the keeper's clock moving 1 s a tick.
    for (let i = 0; i < 10; i++) {
      await sleep(500);
      now += 1000;
      assert.deepEqual(await keeper.tend(), []);
    }
    assert.ok(!fs.existsSync(fired(id)), 'pushed: not fired');
    // Tether goes silent: the switch fires on its own.
    const silentAt = Date.now();
    await waitFor(() => fs.existsSync(fired(id)), 10_000, 'the stand-in action');
    const latency = Date.now() - silentAt;
    assert.ok(latency >= 2000, `not before the timeout (${latency} ms)`);
    now += 60_000;
    const ev = await keeper.tend();
    assert.deepEqual(ev.map((e) => e.event), ['fired']);
    assert.ok(deadmanOf(ledger.read().resources.find((r) => r.id === id)!)!.firedAt);
    assert.deepEqual(await keeper.tend(), [], 'a fired switch is left alone');
  });

  it('re-arms when its watcher vanished (a reboot), and disarm stops it and clears the record', async () => {
    const id = 'keeper-b';
    await ledger.update((b) => void b.resources.push(record(id)));
    await requestDeadman(ledger, id, 10);
    assert.deepEqual((await keeper.tend()).map((e) => e.event), ['armed']);
    const first = deadmanOf(ledger.read().resources.find((r) => r.id === id)!)!;
    process.kill(first.pid!, 'SIGKILL'); // plays the reboot
    await waitFor(() => !isSameProcessAlive({ pid: first.pid!, startTime: first.startTime! }), 5000, 'the watcher gone');
    now += 10 * 60_000;
    assert.deepEqual((await keeper.tend()).map((e) => e.event), ['re-armed']);
    const second = deadmanOf(ledger.read().resources.find((r) => r.id === id)!)!;
    assert.notEqual(second.pid, first.pid);
    const why = await keeper.disarm(id);
    assert.match(why, /stopped|stop/i);
    assert.equal(deadmanOf(ledger.read().resources.find((r) => r.id === id)!), undefined);
    await waitFor(() => !isSameProcessAlive({ pid: second.pid!, startTime: second.startTime! }), 5000, 'the watcher stopped');
    assert.equal(await keeper.disarm(id), "no dead man's switch was set");
  });

  it('an unreachable instance records the problem once and arms when it answers again', async () => {
    const id = 'keeper-c';
    const rec = record(id);
    rec.remote!.sshPort = 1; // nothing listens there
    await ledger.update((b) => void b.resources.push(rec));
    await requestDeadman(ledger, id, 10);
    const ev = await keeper.tend();
    assert.deepEqual(ev.map((e) => e.event), ['error']);
    assert.match(deadmanOf(ledger.read().resources.find((r) => r.id === id)!)!.error ?? '', /refused|unreachable|connect/i);
    assert.deepEqual(await keeper.tend(), [], 'the same problem is not reported twice');
    await ledger.update((b) => void (b.resources.find((r) => r.id === id)!.remote!.sshPort = sshd.port));
    assert.deepEqual((await keeper.tend()).map((e) => e.event), ['armed']);
    await keeper.disarm(id);
  });

  it('leaves no watcher of the test user running', async () => {
    await sleep(200);
    const left = processesOf(sshd.uid).filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('.tether/deadman/');
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, []);
  });
});
