/**
 * Errors that tell the user what went wrong and what to do. Every error Tether shows carries a
 * cause and a remedy, and an exit code the CLI returns.
 */

/** CLI exit codes scripts can trust. */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class TetherError extends Error {
  /** What the user can do about it, in one sentence. */
  readonly remedy: string;
  readonly exitCode: ExitCode;

  constructor(message: string, opts: { remedy: string; exitCode?: ExitCode; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.remedy = opts.remedy;
    this.exitCode = opts.exitCode ?? ExitCode.FAILED;
  }

  /** One line: the cause, then the fix. */
  oneLine(): string {
    return `${this.message} — ${this.remedy}`;
  }
}

/** One problem of a config file, located by its JSON path (RFC 6901 pointer). */
export interface ConfigProblem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class ConfigError extends TetherError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    const where = (p: ConfigProblem) => `${p.path || '/'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`;
    super(`${file}: ${problems.map(where).join('; ')}`, {
      remedy: 'Fix the file and save it; the README section "Configuration" lists every field.',
      exitCode: ExitCode.USAGE,
    });
  }
}

export class UsageError extends TetherError {
  constructor(message: string, remedy = 'Run `tether --help` for usage.') {
    super(message, { remedy, exitCode: ExitCode.USAGE });
  }
}

export class LedgerCorruptError extends TetherError {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`The ledger ${file} is damaged (${detail}); Tether left it untouched`, {
      remedy: `Run \`tether ledger repair\` to move it aside and rebuild it from the running processes, or restore ${file}.bak.`,
    });
  }
}

export class LockTimeoutError extends TetherError {
  constructor(file: string, holder: string) {
    super(`The ledger is locked by ${holder} (${file})`, {
      remedy: 'Wait for that process to finish; if it hangs, stop it — Tether breaks a lock whose holder has exited.',
    });
  }
}

/** Renders any thrown value as one line for a log or a terminal. */
export function describeError(err: unknown): string {
  if (err instanceof TetherError) return err.oneLine();
  if (err instanceof Error) return err.message;
  return String(err);
}
