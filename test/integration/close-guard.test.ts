/**
 * The window-close guard: the last window to close while a cloud instance bills leaves a record;
 * a window that is not the last (another extension host alive, by PID and start time) does not;
 * `tether status` shows what billed since. "Windows" here are real processes registered the way
 * the extension registers its extension host.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger, type LedgerResource } from '../../src/core/ledger';
import { identify } from '../../src/core/procfs';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { CLOSE_RECORD_FILE, WindowRegistry, closeReport, readCloseRecord, recordCrashedWindows, recordWindowClose } from '../../src/fleet/closeGuard';
import type { StatusReport } from '../../src/workspace/engine';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

const HOUR = 3_600_000;

function running(id: string, createdMs: number, price: number): LedgerResource {
  const at = new Date(createdMs).toISOString();
  return {
    id,
    kind: 'cloud',
    plugin: id,
    executionMode: PluginExecutionMode.CLOUD_GPU,
    state: 'running',
    createdAt: at,
    updatedAt: at,
    processes: [],
    remote: remoteResourceInfo({ provider: CloudProviderType.LAMBDA_LABS, instanceId: `i-${id}`, estimatedCostPerHour: price, status: 'running' }),
    history: [
      { at, state: 'starting', note: 'intent recorded' },
      { at, state: 'running', note: 'cloud:running' },
    ],
  };
}

describe('window-close guard (real processes as windows, real CLI)', function () {
  this.timeout(30000);
  let dir: string;
  let ledger: Ledger;
  const me = identify(process.pid)!;
  beforeEach(() => {
    dir = tmpDir('tether-close-');
    ledger = new Ledger(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('not the last window: no record; the last one: a record of what bills, shown by `tether status`', async () => {
    const now = Date.now();
    await ledger.update((b) => void b.resources.push(running('trainer', now - 3 * HOUR, 0.75)));
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const otherId = await waitFor(async () => identify(other.pid!), 5000, 'the other window');
      const reg = new WindowRegistry(dir);
      reg.register(otherId);
      reg.register(me);
      assert.equal(recordWindowClose(ledger, me, now - 2 * HOUR), undefined, 'another window is open');
      assert.ok(!fs.existsSync(path.join(dir, CLOSE_RECORD_FILE)));
      // A stale entry whose PID is alive but whose start time differs (PID reuse) is no window.
      reg.register({ pid: process.pid, startTime: me.startTime - 7 });
      other.kill('SIGKILL');
      await waitFor(async () => !identify(other.pid!), 5000, 'the other window gone');
      reg.register(me);
      const rec = recordWindowClose(ledger, me, now - 2 * HOUR);
      assert.ok(rec, 'the last window leaves a record');
      assert.deepEqual(rec.resources.map((r) => [r.name, r.perHour]), [['trainer', 0.75]]);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'windows')), [], 'dead and stale entries are cleaned');
    } finally {
      other.kill('SIGKILL');
    }
    const report = closeReport(readCloseRecord(dir)!, ledger, now);
    // Lambda bills per started minute: 3 h now − 1 h at the close = 2 h at $0.75/h.
    assert.ok(Math.abs(report.spentSince - 1.5) < 0.02, String(report.spentSince));
    assert.equal(report.resources[0]!.stillBilling, true);
    assert.match(report.message, /1 cloud resource\(s\) kept billing \(\$0\.75\/h\): trainer\. They have cost \$1\.5\d since\. Still billing: trainer/);

    const ws = workspaceWith({ plugins: [] });
    const env = { TETHER_STATE_DIR: dir, LAMBDA_API_KEY: '', TETHER_LAMBDA_API_URL: '' };
    const json = await runCli(['status', '--json', '--workspace', ws], env);
    assert.equal(json.code, 0, json.stderr);
    const st = JSON.parse(json.stdout) as StatusReport;
    assert.ok(st.closedWhileBilling && Math.abs(st.closedWhileBilling.spentSince - 1.5) < 0.02);
    // No Lambda account in this environment: the record is still listed, billing, with the reason it cannot be checked.
    const v = st.cloud.instances.find((i) => i.ledgerId === 'trainer');
    assert.equal(v?.status, 'running');
    assert.match(v?.problem ?? '', /no Lambda Cloud account is configured here, so Tether cannot check or terminate it/);
    assert.equal(st.totals.running, 1);
    assert.equal(st.totals.costPerHour, 0.75);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, /! When the last VS Code window closed \(.* UTC, 2\.0 h ago\), 1 cloud resource\(s\) kept billing/);
  });

  it('a window killed without closing (SIGKILL, no deactivation): the next window writes the record as of its last heartbeat', async () => {
    const now = Date.now();
    await ledger.update((b) => void b.resources.push(running('crashjob', now - 4 * HOUR, 2)));
    const reg = new WindowRegistry(dir);
    const crashing = spawn('sleep', ['60'], { stdio: 'ignore' });
    const survivor = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const a = await waitFor(async () => identify(crashing.pid!), 5000, 'window A');
      const b = await waitFor(async () => identify(survivor.pid!), 5000, 'window B');
      reg.register(a);
      reg.register(b);
      reg.heartbeat(a);
      // A's last heartbeat was 3 h ago.
      const lastSeen = new Date(Math.floor((now - 3 * HOUR) / 1000) * 1000); // whole seconds: mtimes round sub-milliseconds
      fs.utimesSync(path.join(dir, 'windows', `${a.pid}-${a.startTime}`), lastSeen, lastSeen);
      crashing.kill('SIGKILL');
      await waitFor(async () => !identify(crashing.pid!), 5000, 'window A gone');
      assert.equal(recordCrashedWindows(ledger, me), undefined, 'window B still runs: not the last window');
      // A's entry was swept with the first look; play A dying after B again to test the rule itself.
      reg.register(a);
      fs.utimesSync(path.join(dir, 'windows', `${a.pid}-${a.startTime}`), lastSeen, lastSeen);
      survivor.kill('SIGKILL');
      await waitFor(async () => !identify(survivor.pid!), 5000, 'window B gone');
      fs.utimesSync(path.join(dir, 'windows', `${b.pid}-${b.startTime}`), new Date(now - 5 * HOUR), new Date(now - 5 * HOUR));
      const rec = recordCrashedWindows(ledger, me);
      assert.ok(rec?.crashed, 'a crash record');
      assert.equal(rec.closedAt, lastSeen.toISOString(), 'as of the last window seen alive');
      assert.deepEqual(fs.readdirSync(path.join(dir, 'windows')), []);
      assert.equal(recordCrashedWindows(ledger, me), undefined, 'written once');
      const report = closeReport(rec, ledger, now);
      assert.match(report.message, /VS Code's last window ended without closing \(a crash or a killed extension host; last seen .* UTC, 3\.0 h ago\), and 1 cloud resource\(s\) kept billing \(\$2\.00\/h\): crashjob\. They have cost \$6\.00 since/);
    } finally {
      crashing.kill('SIGKILL');
      survivor.kill('SIGKILL');
    }
  });

  it('nothing billing: the last window leaves no record; a terminated instance reads "none bills any more"', async () => {
    const reg = new WindowRegistry(dir);
    reg.register(me);
    assert.equal(recordWindowClose(ledger, me), undefined);
    assert.ok(!fs.existsSync(path.join(dir, CLOSE_RECORD_FILE)));

    const now = Date.now();
    await ledger.update((b) => void b.resources.push(running('box', now - 2 * HOUR, 1.2)));
    reg.register(me);
    const rec = recordWindowClose(ledger, me, now - HOUR)!;
    await ledger.end('box', 'stopped', 'terminated by the user');
    const report = closeReport(rec, ledger, now);
    assert.equal(report.resources[0]!.stillBilling, false);
    assert.match(report.message, /None of them bills any more/);
  });
});
