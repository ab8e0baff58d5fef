/**
 * The commands of src/ui/commands.ts, registered at activation by id only: the module itself (and
 * everything it imports) loads on the first command a user runs, which keeps activation cheap.
 */
import * as vscode from 'vscode';
import type { CommandDeps } from './commands';

/** Every id src/ui/commands.ts handles (test/unit/lazy-commands.test.ts keeps the two equal). */
export const COMMAND_IDS = [
  'tether.provision',
  'tether.terminateInstance',
  'tether.copySshCommand',
  'tether.openProviderConsole',
  'tether.addAsSshHost',
  'tether.setTimeLimit',
  'tether.armDeadman',
  'tether.stopInstance',
  'tether.disarmDeadman',
  'tether.internal.keepRunning',
  'tether.setCloudKey',
  'tether.removeCloudKey',
  'tether.start',
  'tether.stop',
  'tether.restart',
  'tether.killTree',
  'tether.cleanupAll',
  'tether.killOrphans',
  'tether.refresh',
  'tether.showLogs',
  'tether.openShell',
  'tether.sshConnect',
  'tether.sshDisconnect',
  'tether.openHostTerminal',
  'tether.openConfig',
  'tether.createConfig',
  'tether.revealConfig',
  'tether.copyPid',
  'tether.adoptOrphan',
  'tether.cleanupApiPlugin',
  'tether.statusMenu',
  'tether.showOutput',
] as const;

export function registerCommandsLazily(deps: CommandDeps): vscode.Disposable[] {
  const owned: vscode.Disposable[] = [];
  let table: Promise<Record<string, (...args: unknown[]) => unknown>> | undefined;
  const load = () =>
    (table ??= import('./commands').then((m) => {
      const made = m.commandTable(deps);
      owned.push(...made.disposables);
      return made.table;
    }));
  return [
    { dispose: () => owned.splice(0).forEach((d) => d?.dispose()) },
    ...COMMAND_IDS.map((id) =>
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        const handler = (await load())[id];
        if (!handler) throw new Error(`Tether: no handler for ${id}`);
        return handler(...args);
      }),
    ),
  ];
}
