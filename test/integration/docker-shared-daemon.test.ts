// Two ledgers at the same state-folder path (two dev containers sharing the host's docker.sock,
// two machines with identical homes on one DOCKER_HOST) share the path-derived ledger tag. A
// container the other ledger started is not this ledger's orphan: `orphans --kill` leaves it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { Ledger } from '../../src/core/ledger';
import { startDockerd, type TestDockerd } from '../helpers/dockerd';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('Docker: another ledger at the same state path on a shared daemon', function () {
  this.timeout(180_000);
  let d: TestDockerd;
  before(async function () {
    this.timeout(180_000);
    d = await startDockerd();
  });
  after(async () => {
    await d?.stop();
  });

  it('its containers are not orphans here: never removed by `orphans --kill`; this ledger\'s own orphan still is', async () => {
    const stateDir = tmpDir('tether-shared-') + '/state';
    const env = { TETHER_STATE_DIR: stateDir, DOCKER_HOST: d.host };
    const spec = (name: string) => ({ name, command: 'sleep', args: ['300'], docker: { image: d.image } });
    // "Machine A" starts a container, then its state folder is elsewhere (another machine / dev container).
    const wsA = workspaceWith({ plugins: [spec('theirs')] });
    const a = await runCli(['start', 'theirs', '--workspace', wsA], env);
    assert.equal(a.code, 0, a.stderr);
    fs.renameSync(stateDir, `${stateDir}.machine-a`);
    // "Machine B": a fresh ledger at the very same path, with containers of its own.
    const wsB = workspaceWith({ plugins: [spec('mine'), spec('gone')] });
    for (const n of ['mine', 'gone']) {
      const r = await runCli(['start', n, '--workspace', wsB], env);
      assert.equal(r.code, 0, r.stderr);
    }
    // B's own orphan: the record of "gone" is lost (as after a crash between create and record);
    // its container carries B's id, so it is B's orphan.
    await new Ledger(stateDir).update((body) => {
      body.resources = body.resources.filter((r) => r.plugin !== 'gone');
    });
    const k = await runCli(['orphans', '--kill', '--grace', '1', '--workspace', wsB], env);
    assert.equal(k.code, 0, k.stderr);
    const names = async () => (await d.docker.listContainers({ all: true })).map((c) => (c.Labels ?? {})['dev.tether.plugin']);
    const left = await names();
    assert.ok(left.includes('theirs'), `the other ledger's container was removed: ${k.stdout} ${k.stderr}`);
    assert.ok(left.includes('mine'));
    assert.ok(!left.includes('gone'), `this ledger's own orphan is still stopped: ${k.stdout}`);
    // Cleanup: machine A's own ledger stops its container.
    fs.renameSync(stateDir, `${stateDir}.machine-b`);
    fs.renameSync(`${stateDir}.machine-a`, stateDir);
    const s = await runCli(['stop', 'theirs', '--grace', '1', '--workspace', wsA], env);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(!(await names()).includes('theirs'), 'A still stops its own container');
    for (const c of await d.docker.listContainers({ all: true })) await d.docker.getContainer(c.Id).remove({ force: true });
  });
});
