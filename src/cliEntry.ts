// Entry point of the `tether` binary (dist/cli.js): runs the CLI and exits with its code.
import { main } from './cli';
import { ExitCode, describeError } from './core/errors';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tether: internal error: ${describeError(err)}\n`);
    process.exitCode = ExitCode.FAILED;
  },
);
