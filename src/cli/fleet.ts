/**
 * Routes the per-user commands (`budget`, `autostop`, `limit`, `watch`) to their files, each with
 * its own options; everything else stays with src/cli.ts.
 */
import { parseArgs } from 'node:util';
import { ExitCode, TetherError, describeError } from '../core/errors';
import { runPolicyCommand, type Io } from './policy';
import { runWatch } from './watch';
import { runK8sCommand } from './k8s';

const COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  budget: runPolicyCommand,
  autostop: runPolicyCommand,
  limit: runPolicyCommand,
  watch: runWatch,
  k8s: runK8sCommand,
};

/** The command's exit code, or undefined when `argv` is not one of these commands. */
export async function fleetCommand(argv: string[], io: Io): Promise<number | undefined> {
  let first: string | undefined;
  try {
    // Only to find the command word: the options that take a value before it must not be taken for it.
    first = parseArgs({ args: argv, allowPositionals: true, strict: false, options: { workspace: { type: 'string' }, 'state-dir': { type: 'string' } } }).positionals[0];
  } catch {
    return undefined;
  }
  const run = first !== undefined ? COMMANDS[first] : undefined;
  if (!run) return undefined;
  // The command's own options are parsed without the command word's position mattering.
  const rest = [...argv];
  try {
    return await run(rest, io);
  } catch (err) {
    io.err(`tether: ${describeError(err)}`);
    return err instanceof TetherError ? err.exitCode : ExitCode.FAILED;
  }
}
