/**
 * The user's money policy — budgets, idle autostop, the default time limit — in one file of the
 * state folder (`<state>/policy.json`). It is the one source of truth for VS Code, the CLI and
 * `tether watch`; a workspace cannot override it (it is per user, not per folder). VS Code's old
 * settings (`tether.budgets`, `tether.idleAutostop`, `tether.cloud.defaultTimeLimitHours`) are
 * migrated into it once (see {@link migrateSettings}); after that the file wins.
 *
 * Writes are read-modify-write under a lock file named by PID + start time (src/core/fileLock.ts),
 * to a temporary file that is fsynced and renamed over the policy, so a reader never sees half a
 * file and two writers never lose each other's change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileLock } from '../core/fileLock';
import { checkStateDir, ensureStateDir } from '../core/ledger';
import { TetherError, UsageError } from '../core/errors';
import type { Budget, BudgetPeriod } from '../core/budget';
import { DEFAULT_IDLE_POLICY, type IdlePolicy } from '../core/autostop';
import { writeFileAtomic as writeAtomic } from '../core/atomicFile';
import { CLOUD_PROVIDERS } from '../backends/cloud/registry';

export const POLICY_FILE = 'policy.json';
export const POLICY_FORMAT = 'tether-policy/1';

export interface Policy {
  format: typeof POLICY_FORMAT;
  budgets: Budget[];
  idleAutostop: IdlePolicy;
  /** A time limit given to every instance Tether launches (0: none). */
  defaultTimeLimitHours: number;
  /** When VS Code's settings were copied in (once); absent until then. */
  migratedFromSettings?: string;
  /**
   * Budgets of VS Code's settings the migration could not take (invalid), kept so that every
   * reader (`tether budget list`, `tether status`, VS Code) says so until the budget is set again
   * under its name or removed by hand: a budget must never vanish without a word.
   */
  skippedSettings?: SkippedSetting[];
  updatedAt?: string;
}

/** One invalid settings entry the migration skipped: its name (when it had one) and what was wrong. */
export interface SkippedSetting {
  name?: string;
  problems: string[];
}

export const PERIODS: readonly BudgetPeriod[] = ['day', 'month', 'lifetime'];
/** Provider types a budget may be scoped to (the registry's). */
export const PROVIDERS: readonly string[] = [...CLOUD_PROVIDERS.map((d) => d.kind), 'kubernetes']; // kubernetes: clusters priced by the user's table

export function emptyPolicy(): Policy {
  return { format: POLICY_FORMAT, budgets: [], idleAutostop: { ...DEFAULT_IDLE_POLICY }, defaultTimeLimitHours: 0 };
}

export function policyFile(stateDir: string): string {
  return path.join(stateDir, POLICY_FILE);
}

/** A damaged policy file: reported, never silently replaced (budgets must not vanish unnoticed). */
export class PolicyFileError extends TetherError {
  constructor(file: string, detail: string) {
    super(`The policy file ${file} is damaged (${detail}); budgets, idle autostop and the default time limit cannot be read`, {
      remedy: `Fix the file by hand (it is JSON), or move it aside and set the budgets again with \`tether budget set\`.`,
    });
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Checks one budget; returns the problems (empty when valid). `where` prefixes each. */
export function budgetProblems(b: unknown, where = 'budget'): string[] {
  if (!isObj(b)) return [`${where}: not an object`];
  const out: string[] = [];
  if (typeof b.name !== 'string' || !b.name.trim()) out.push(`${where}: "name" must be a non-empty string`);
  if (typeof b.limitUsd !== 'number' || !Number.isFinite(b.limitUsd) || b.limitUsd <= 0) out.push(`${where}: "limitUsd" must be a number of USD above 0, got ${JSON.stringify(b.limitUsd)}`);
  if (!PERIODS.includes(b.period as BudgetPeriod)) out.push(`${where}: "period" must be day, month or lifetime, got ${JSON.stringify(b.period)}`);
  if (b.provider !== undefined && !PROVIDERS.includes(b.provider as string)) out.push(`${where}: "provider" must be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(b.provider)}`);
  if (b.ledgerId !== undefined && (typeof b.ledgerId !== 'string' || !b.ledgerId)) out.push(`${where}: "ledgerId" must be a ledger id`);
  if (b.thresholds !== undefined) {
    if (!Array.isArray(b.thresholds) || !b.thresholds.length || !b.thresholds.every((t) => typeof t === 'number' && t > 0 && t <= 1)) {
      out.push(`${where}: "thresholds" must be fractions of the limit above 0 and at most 1 (e.g. 0.5,0.8,1), got ${JSON.stringify(b.thresholds)}`);
    }
  }
  if (b.autoTerminate !== undefined && typeof b.autoTerminate !== 'boolean') out.push(`${where}: "autoTerminate" must be true or false`);
  return out;
}

export function idleProblems(p: unknown, where = 'idleAutostop'): string[] {
  if (!isObj(p)) return [`${where}: not an object`];
  const out: string[] = [];
  if (typeof p.enabled !== 'boolean') out.push(`${where}: "enabled" must be true or false`);
  const num = (k: string, min: number, max = Infinity) => {
    const v = p[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) out.push(`${where}: "${k}" must be a number ${max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(v)}`);
  };
  num('idleMinutes', 1);
  num('gpuUtilBelowPercent', 0, 100);
  num('warnMinutes', 0);
  if (p.action !== undefined && p.action !== 'terminate' && p.action !== 'stop') out.push(`${where}: "action" must be terminate or stop, got ${JSON.stringify(p.action)}`);
  return out;
}

export function timeLimitProblems(h: unknown): string[] {
  return typeof h === 'number' && Number.isFinite(h) && h >= 0 ? [] : [`defaultTimeLimitHours must be a number of hours >= 0 (0: none), got ${JSON.stringify(h)}`];
}

/** Parses and checks a policy file's text; throws {@link PolicyFileError}. */
export function parsePolicy(file: string, text: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PolicyFileError(file, `not JSON: ${(err as Error).message}`);
  }
  if (!isObj(raw) || raw.format !== POLICY_FORMAT) throw new PolicyFileError(file, `no "format": "${POLICY_FORMAT}"`);
  const budgets = Array.isArray(raw.budgets) ? raw.budgets : undefined;
  const problems: string[] = [];
  if (!budgets) problems.push('"budgets" must be a list');
  budgets?.forEach((b, i) => problems.push(...budgetProblems(b, `budgets[${i}]`)));
  const names = (budgets ?? []).map((b) => (isObj(b) ? b.name : undefined));
  const dup = names.find((n, i) => typeof n === 'string' && names.indexOf(n) !== i);
  if (dup) problems.push(`two budgets are named "${String(dup)}"`);
  const idle = isObj(raw.idleAutostop) ? { ...DEFAULT_IDLE_POLICY, ...raw.idleAutostop } : raw.idleAutostop === undefined ? { ...DEFAULT_IDLE_POLICY } : raw.idleAutostop;
  problems.push(...idleProblems(idle));
  const limit = raw.defaultTimeLimitHours ?? 0;
  problems.push(...timeLimitProblems(limit));
  const skipped = parseSkipped(raw.skippedSettings, problems);
  if (problems.length) throw new PolicyFileError(file, problems.join('; '));
  return {
    format: POLICY_FORMAT,
    budgets: budgets as Budget[],
    idleAutostop: idle as IdlePolicy,
    defaultTimeLimitHours: limit as number,
    ...(typeof raw.migratedFromSettings === 'string' ? { migratedFromSettings: raw.migratedFromSettings } : {}),
    ...(skipped.length ? { skippedSettings: skipped } : {}),
    ...(typeof raw.updatedAt === 'string' ? { updatedAt: raw.updatedAt } : {}),
  };
}

function parseSkipped(v: unknown, problems: string[]): SkippedSetting[] {
  if (v === undefined) return [];
  const ok = (e: unknown): e is SkippedSetting =>
    isObj(e) && (e.name === undefined || typeof e.name === 'string') && Array.isArray(e.problems) && e.problems.every((x) => typeof x === 'string');
  if (!Array.isArray(v) || !v.every(ok)) {
    problems.push('"skippedSettings" must be a list of { "name"?, "problems": [text] }');
    return [];
  }
  return v.map((e) => ({ ...(e.name !== undefined ? { name: e.name } : {}), problems: [...e.problems] }));
}

/**
 * What a reader must say about the policy of a state folder (each a line): a damaged policy file
 * (nothing of it is enforced) or settings the migration could not take. Never throws.
 */
export function policyWarnings(stateDir: string): string[] {
  let p: Policy;
  try {
    p = readPolicy(stateDir);
  } catch (err) {
    return [err instanceof TetherError ? `${err.message} — ${err.remedy}` : String(err)];
  }
  return (p.skippedSettings ?? []).map(
    (e) =>
      `a budget${e.name ? ` "${e.name}"` : ''} of your VS Code settings was not moved into ${policyFile(stateDir)} and is not enforced: ${e.problems.join('; ')} — set it again with \`tether budget set${e.name ? ` "${e.name}"` : ''} …\` (or "Tether: Set Budget…")`,
  );
}

/** The policy of a state folder (the empty policy when there is no file). Throws {@link PolicyFileError}. */
export function readPolicy(stateDir: string): Policy {
  checkStateDir(stateDir);
  const file = policyFile(stateDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyPolicy();
    throw err;
  }
  return parsePolicy(file, text);
}


/**
 * Read-modify-write of the policy under its lock: `fn` changes the policy it gets (or throws to
 * abort with nothing written). The result is checked as a whole before it is written.
 */
export async function updatePolicy<T>(stateDir: string, fn: (p: Policy) => T, what = 'changing the policy'): Promise<T> {
  ensureStateDir(stateDir);
  const file = policyFile(stateDir);
  return new FileLock(`${file}.lock`).withLock(
    () => {
      const p = readPolicy(stateDir);
      const result = fn(p);
      p.updatedAt = new Date().toISOString();
      // Never write what could not be read back.
      const text = JSON.stringify(p, null, 2) + '\n';
      parsePolicy(file, text);
      writeAtomic(file, text);
      return result;
    },
    { what },
  );
}

// ---- edits (shared by the CLI and VS Code's commands) ---------------------------------------

/** Adds a budget, or replaces the one of the same name. Throws {@link UsageError} on a bad budget. */
export function checkBudget(b: Budget): Budget {
  const problems = budgetProblems(b, `budget "${b.name}"`);
  if (problems.length) throw new UsageError(problems.join('; '), 'See `tether budget set --help` (or the README, "Budgets").');
  const out: Budget = { name: b.name.trim(), limitUsd: b.limitUsd, period: b.period };
  if (b.provider) out.provider = b.provider;
  if (b.ledgerId) out.ledgerId = b.ledgerId;
  if (b.thresholds) out.thresholds = [...b.thresholds].sort((x, y) => x - y);
  if (b.autoTerminate) out.autoTerminate = true;
  return out;
}

export async function setBudget(stateDir: string, budget: Budget): Promise<{ replaced: boolean }> {
  const b = checkBudget(budget);
  return updatePolicy(stateDir, (p) => {
    const i = p.budgets.findIndex((x) => x.name === b.name);
    if (i >= 0) p.budgets[i] = b;
    else p.budgets.push(b);
    // A budget the migration skipped is reported until it is set again.
    if (p.skippedSettings) {
      p.skippedSettings = p.skippedSettings.filter((e) => e.name?.trim() !== b.name);
      if (!p.skippedSettings.length) delete p.skippedSettings;
    }
    return { replaced: i >= 0 };
  }, `setting budget "${b.name}"`);
}

export async function removeBudget(stateDir: string, name: string): Promise<void> {
  await updatePolicy(stateDir, (p) => {
    const i = p.budgets.findIndex((x) => x.name === name);
    if (i < 0) {
      throw new UsageError(`no budget named "${name}"`, p.budgets.length ? `Budgets: ${p.budgets.map((b) => `"${b.name}"`).join(', ')}.` : 'No budget is set (`tether budget set`).');
    }
    p.budgets.splice(i, 1);
  }, `removing budget "${name}"`);
}

export async function setIdleAutostop(stateDir: string, change: Partial<IdlePolicy>): Promise<IdlePolicy> {
  return updatePolicy(stateDir, (p) => {
    const next = { ...p.idleAutostop, ...change };
    const problems = idleProblems(next);
    if (problems.length) throw new UsageError(problems.join('; '), 'See `tether autostop --help`.');
    p.idleAutostop = next;
    return next;
  }, 'setting idle autostop');
}

export async function setDefaultTimeLimit(stateDir: string, hours: number): Promise<void> {
  const problems = timeLimitProblems(hours);
  if (problems.length) throw new UsageError(problems[0]!, 'Give a number of hours, or 0 for none.');
  await updatePolicy(stateDir, (p) => {
    p.defaultTimeLimitHours = hours;
  }, 'setting the default time limit');
}

/** What VS Code's user settings held before the policy file (each key only when the user set it). */
export interface LegacySettings {
  budgets?: unknown;
  idleAutostop?: unknown;
  defaultTimeLimitHours?: unknown;
}

/**
 * Copies VS Code's user settings into the policy file, once per state folder: a budget whose name
 * is already in the file keeps the file's version; invalid entries are skipped and reported.
 * Returns what was copied and skipped, or undefined when the migration had already happened.
 */
export async function migrateSettings(stateDir: string, s: LegacySettings): Promise<{ budgets: string[]; idle: boolean; timeLimit: boolean; skipped: string[] } | undefined> {
  if (readPolicy(stateDir).migratedFromSettings) return undefined;
  return updatePolicy(stateDir, (p) => {
    if (p.migratedFromSettings) return undefined;
    const out = { budgets: [] as string[], idle: false, timeLimit: false, skipped: [] as string[] };
    if (Array.isArray(s.budgets)) {
      s.budgets.forEach((b, i) => {
        const problems = budgetProblems(b, `tether.budgets[${i}]`);
        if (problems.length) {
          out.skipped.push(...problems);
          // Kept in the file: the CLI and VS Code keep saying so until it is set again.
          const name = isObj(b) && typeof b.name === 'string' && b.name.trim() ? b.name.trim() : undefined;
          (p.skippedSettings ??= []).push({ ...(name ? { name } : {}), problems });
          return;
        }
        const budget = checkBudget(b as Budget);
        if (p.budgets.some((x) => x.name === budget.name)) return;
        p.budgets.push(budget);
        out.budgets.push(budget.name);
      });
    }
    if (isObj(s.idleAutostop)) {
      const next = { ...p.idleAutostop, ...s.idleAutostop } as IdlePolicy;
      const problems = idleProblems(next, 'tether.idleAutostop');
      if (problems.length) out.skipped.push(...problems);
      else {
        p.idleAutostop = next;
        out.idle = true;
      }
    }
    if (s.defaultTimeLimitHours !== undefined) {
      if (timeLimitProblems(s.defaultTimeLimitHours).length) out.skipped.push(`tether.cloud.defaultTimeLimitHours: ${timeLimitProblems(s.defaultTimeLimitHours)[0]}`);
      else if (!p.defaultTimeLimitHours) {
        p.defaultTimeLimitHours = s.defaultTimeLimitHours as number;
        out.timeLimit = true;
      }
    }
    p.migratedFromSettings = new Date().toISOString();
    return out;
  }, 'migrating VS Code settings into the policy file');
}
