// `tether ledger repair` must never forget what bills: a damaged ledger's cloud and SSH records
// (which no local process scan can rebuild) and the cost history are carried into the new one.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { Ledger, endIn } from '../../src/core/ledger';
import { CloudProviderType } from '../../src/core/protocols';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('ledger repair keeps what bills', function () {
  this.timeout(120_000);

  it('a damaged ledger\'s cloud records (running and ended) and SSH records survive `tether ledger repair`; the cost report is unchanged', async () => {
    const stateDir = tmpDir('tether-repair-');
    const ws = workspaceWith({ plugins: [] });
    const ledger = new Ledger(stateDir);
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
    const owner = { kind: 'cli' as const, pid: 1, startTime: 1, host: 'elsewhere' };
    await ledger.update((b) => {
      for (const [id, hours, status] of [['ended-1', 3, 'running'], ['live-1', 2, 'running']] as const) {
        b.resources.push({
          id: `${id}-0000-0000-0000-000000000000`,
          kind: 'cloud',
          plugin: id,
          executionMode: 'cloud_gpu' as never,
          state: 'running',
          owner,
          createdAt: hoursAgo(hours),
          updatedAt: hoursAgo(hours),
          processes: [],
          remote: { provider: CloudProviderType.LAMBDA_LABS, instanceId: `i-${id}`, sshPort: 22, status, resourceType: 'gpu_1x_a10', gpuCount: 1, estimatedCostPerHour: 10, metadata: { launchedAt: hoursAgo(hours) } },
          history: [{ at: hoursAgo(hours), state: 'running' }],
        });
      }
      b.resources.push({
        id: 'ssh-1-0000-0000-0000-000000000000', kind: 'ssh', plugin: 'train', workspace: ws, executionMode: 'remote_ssh' as never,
        state: 'running', owner, createdAt: hoursAgo(1), updatedAt: hoursAgo(1), host: 'gpu-box', processes: [{ pid: 4242, startTime: 99 }], history: [],
      });
      endIn(b, 'ended-1-0000-0000-0000-000000000000', 'stopped', 'terminated');
    });
    const env = { TETHER_STATE_DIR: stateDir, HOME: tmpDir('tether-repair-home-') };
    const before = await runCli(['cost', '--json'], env);
    assert.equal(before.code, 0, before.stderr);
    const totalBefore = (JSON.parse(before.stdout) as { total: number }).total;
    assert.ok(totalBefore > 20, `the records cost something: ${before.stdout}`);

    // A hand edit (the checksum no longer matches): the ledger is damaged.
    const text = fs.readFileSync(ledger.file, 'utf8');
    fs.writeFileSync(ledger.file, text.replace('"plugin": "train"', '"plugin": "train2"'));
    assert.throws(() => ledger.read(), /checksum/);

    const r = await runCli(['ledger', 'repair', '--workspace', ws], env);
    assert.equal(r.code, 0, r.stderr);
    const body = ledger.read();
    const ids = [...body.resources, ...body.ended].map((x) => x.id);
    for (const id of ['ended-1', 'live-1', 'ssh-1']) assert.ok(ids.some((x) => x.startsWith(id)), `${id} is still in the ledger: ${ids.join(' ')}`);
    assert.ok(body.resources.some((x) => x.id.startsWith('live-1')), 'the running instance is still active (it bills)');
    const after = await runCli(['cost', '--json'], env);
    assert.equal(after.code, 0, after.stderr);
    const totalAfter = (JSON.parse(after.stdout) as { total: number }).total;
    assert.ok(Math.abs(totalAfter - totalBefore) < 1, `cost before ${totalBefore}, after repair ${totalAfter}`);
  });

  it('a truncated ledger: the money records come back from the previous version (ledger.json.bak)', async () => {
    const stateDir = tmpDir('tether-repair-');
    const ws = workspaceWith({ plugins: [] });
    const ledger = new Ledger(stateDir);
    const at = new Date(Date.now() - 3_600_000).toISOString();
    await ledger.update((b) => {
      b.ended.push({
        id: 'paid-0000-0000-0000-000000000000', kind: 'cloud', plugin: 'paid', executionMode: 'cloud_gpu' as never, state: 'stopped',
        createdAt: at, updatedAt: new Date().toISOString(), processes: [], history: [],
        remote: { provider: CloudProviderType.LAMBDA_LABS, instanceId: 'i-paid', sshPort: 22, status: 'terminated', gpuCount: 1, estimatedCostPerHour: 10, metadata: {} },
      });
    });
    await ledger.update(() => undefined); // a second write: ledger.json.bak now holds the record too
    const text = fs.readFileSync(ledger.file, 'utf8');
    fs.writeFileSync(ledger.file, text.slice(0, Math.floor(text.length / 2)));
    const r = await runCli(['ledger', 'repair', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /carried over from the previous version/);
    assert.ok(ledger.read().ended.some((x) => x.id.startsWith('paid-')), 'the ended cloud record is back');
  });
});
