/**
 * Skipping a test or a suite with a reason the summary can name. Outside CI the reporter
 * (test/helpers/reporter.cjs) lists every skipped test with its reason; with CI=true a skipped
 * test is a failure (.mocharc.cjs sets mocha's forbid-pending).
 */
const REASONS_KEY = '__tetherSkipReasons';

/** Runnable or suite → why it was skipped (read by the reporter). */
export function skipReasons(): Map<object, string> {
  const g = globalThis as unknown as Record<string, Map<object, string>>;
  return (g[REASONS_KEY] ??= new Map());
}

/**
 * Skips the calling test, or — from a hook — the suite, loudly and with `reason`.
 * Call it as `skipBecause(this, '…')` from a `function () {}` hook or test.
 */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  console.warn(`\n      *** SKIPPED: ${reason}\n`);
  const runnable = ctx.test;
  // From a hook the whole suite is skipped; from a test, that test.
  const key = runnable && (runnable as { type?: string }).type === 'hook' ? runnable.parent : runnable;
  if (key) skipReasons().set(key, reason);
  ctx.skip();
  throw new Error('unreachable: ctx.skip() throws');
}
