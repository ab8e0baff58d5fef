// The stop grace period of Clean Up Everything (and cleanup on exit) follows the one rule of
// src/core/grace.ts: the plugin's own stopGraceSeconds wins over the tether.stopGraceSeconds
// setting. Real process trees, the real command handler and model (VS Code itself stubbed).
import '../helpers/vscodeStub';
import { registeredCommands } from '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import { TetherModel } from '../../src/ui/model';
import { registerCommands, type CommandDeps } from '../../src/ui/commands';
import { silentLogger } from '../../src/core/logger';
import { isSameProcessAlive, type ProcessIdentity, signalIfSame } from '../../src/core/procfs';
import { tmpDir, workspaceWith } from '../helpers/tmp';

// Ignores SIGTERM: only SIGKILL after the grace period ends it, so the stop's duration shows the grace used.
const stubborn = (name: string, stopGraceSeconds: number) => ({ name, command: 'sh', args: ['-c', 'trap "" TERM; while :; do sleep 0.05; done'], stopGraceSeconds });

describe('stop grace precedence in Clean Up Everything and cleanup on exit', function () {
  this.timeout(60_000);
  let model: TetherModel | undefined;
  const started: ProcessIdentity[] = [];
  afterEach(() => {
    for (const p of started.splice(0)) signalIfSame(p, 'SIGKILL');
    model?.dispose();
    for (const d of registered.splice(0)) d?.dispose?.();
  });
  const registered: Array<{ dispose(): unknown }> = [];

  async function modelWith(plugins: unknown[]): Promise<{ model: TetherModel; ws: string }> {
    const ws = workspaceWith({ plugins });
    const stateDir = tmpDir('tether-state-');
    const m = new TetherModel(silentLogger, () => stateDir);
    m.setFolders([ws]);
    model = m;
    return { model: m, ws };
  }

  it("Clean Up Everything gives a plugin its own stopGraceSeconds, not the (shorter) setting", async () => {
    const { model: m, ws } = await modelWith([stubborn('slowstop', 2)]);
    const rec = await m.engine(ws).start('slowstop');
    started.push(rec.processes[0]!);
    await m.refresh('manual');
    const deps = {
      model: m,
      refresh: { request: async () => undefined },
      log: silentLogger,
      graceMs: () => 200, // the tether.stopGraceSeconds setting: 0.2 s
      confirm: () => false,
      cloudKeys: {},
    } as unknown as CommandDeps;
    registered.push(...registerCommands(deps));
    const t0 = Date.now();
    await registeredCommands.get('tether.cleanupAll')!();
    const took = Date.now() - t0;
    assert.equal(isSameProcessAlive(rec.processes[0]!), false, 'the plugin was stopped');
    assert.ok(took >= 1900, `SIGKILL came after the plugin's own 2 s grace, not the setting's 0.2 s (took ${took} ms)`);
  });

  it("cleanup on exit: the plugin's grace, bounded by the shutdown budget", async () => {
    const { model: m, ws } = await modelWith([stubborn('slowexit', 1.5), stubborn('longexit', 30)]);
    const a = await m.engine(ws).start('slowexit');
    const b = await m.engine(ws).start('longexit');
    started.push(a.processes[0]!, b.processes[0]!);
    await m.refresh('manual');
    const t0 = Date.now();
    const r = await m.cleanup('local', { settingMs: 100, capMs: 2500 });
    const took = Date.now() - t0;
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.stopped.sort(), ['longexit', 'slowexit']);
    assert.equal(isSameProcessAlive(a.processes[0]!), false);
    assert.equal(isSameProcessAlive(b.processes[0]!), false);
    assert.ok(took >= 1400, `the 1.5 s plugin got its own grace, not the 0.1 s setting (took ${took} ms)`);
  });
});
