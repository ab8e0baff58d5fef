/**
 * Commands are registered by id at activation and their module loads on first use
 * (src/ui/lazyCommands.ts): the id list must name exactly what src/ui/commands.ts handles, and a
 * call through the lazy registration must reach the real handler.
 */
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import { registeredCommands } from '../helpers/vscodeStub';
import { commandTable, type CommandDeps } from '../../src/ui/commands';
import { COMMAND_IDS, registerCommandsLazily } from '../../src/ui/lazyCommands';

describe('commands registered lazily', () => {
  const calls: string[] = [];
  const deps = {
    model: {},
    refresh: { request: (why: string) => void calls.push(`refresh:${why}`) },
    log: { show: () => void calls.push('log.show'), info: () => undefined, warn: () => undefined, error: () => undefined, trace: () => undefined, debug: () => undefined },
    graceMs: () => 5000,
    confirm: () => true,
    cloudKeys: {},
  } as unknown as CommandDeps;

  it('the id list is exactly the ids src/ui/commands.ts handles', () => {
    const { table, disposables } = commandTable(deps);
    disposables.forEach((d) => d?.dispose?.()); // the stand-in returns no disposable for some registrations
    assert.deepEqual([...COMMAND_IDS].sort(), Object.keys(table).sort());
  });

  it('a command run through the lazy registration reaches its real handler', async () => {
    const disposables = registerCommandsLazily(deps);
    try {
      for (const id of COMMAND_IDS) assert.ok(registeredCommands.has(id), `${id} is registered`);
      await registeredCommands.get('tether.refresh')!();
      await registeredCommands.get('tether.showOutput')!();
      assert.deepEqual(calls, ['refresh:manual', 'log.show']);
    } finally {
      disposables.forEach((d) => d?.dispose?.()); // the stand-in returns no disposable for some registrations
    }
  });
});
