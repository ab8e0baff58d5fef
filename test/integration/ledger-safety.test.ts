// Ledger safety through the real CLI (issue #13): cost history is never evicted, concurrent
// starts start one copy, a rejected or failed start leaves no phantom "starting" record.
import { strict as assert } from 'node:assert';
import { Ledger, endIn } from '../../src/core/ledger';
import { CloudProviderType, PluginExecutionMode, remoteResourceInfo } from '../../src/core/protocols';
import { periodSpend } from '../../src/engine/costReport';
import { runCli } from '../helpers/cli';
import { tmpDir } from '../helpers/tmp';

describe('ledger safety (CLI)', function () {
  this.timeout(120_000);

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
});
