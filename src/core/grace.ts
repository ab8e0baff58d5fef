/**
 * How long a stop waits between SIGTERM and SIGKILL: one rule for every way of stopping
 * (Stop, Clean Up Everything, cleanup on exit, `tether stop`/`down`).
 *
 * 1. An explicit choice for this one action (the CLI's `--grace`, Kill's 0) wins.
 * 2. Else the plugin's own `stopGraceSeconds` (it knows how long it needs to shut down).
 * 3. Else the `tether.stopGraceSeconds` setting.
 * 4. Else {@link DEFAULT_STOP_GRACE_MS}.
 * A cap (VS Code's shutdown budget on exit) then bounds the result. A value that is not a
 * finite number >= 0 counts as absent.
 */

/** The grace period when neither the plugin nor the user chose one. */
export const DEFAULT_STOP_GRACE_MS = 5000;

export interface GraceSources {
  /** An explicit choice for this one action, in ms. */
  overrideMs?: number | null | undefined;
  /** The plugin's own grace period (its `stopGraceSeconds`), in ms. */
  pluginMs?: number | null | undefined;
  /** The user's setting (`tether.stopGraceSeconds`), in ms. */
  settingMs?: number | null | undefined;
  /** An upper bound, in ms (e.g. what is left of a shutdown budget). */
  capMs?: number | null | undefined;
}

const valid = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The grace period in ms (see the module comment for the order). */
export function resolveGraceMs(s: GraceSources): number {
  const chosen = [s.overrideMs, s.pluginMs, s.settingMs].find(valid) ?? DEFAULT_STOP_GRACE_MS;
  return valid(s.capMs) ? Math.min(chosen, s.capMs) : chosen;
}

/** A plugin's `stopGraceSeconds` in ms (undefined when it declares none). */
export function pluginGraceMs(stopGraceSeconds: number | undefined): number | undefined {
  return stopGraceSeconds === undefined ? undefined : stopGraceSeconds * 1000;
}
