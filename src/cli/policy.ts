/**
 * `tether budget|autostop|limit`: the user's money policy from the shell. It lives in the state
 * folder's policy file (src/fleet/policy.ts), the same one VS Code and `tether watch` read.
 */
import { parseArgs } from 'node:util';
import { ExitCode, UsageError } from '../core/errors';
import { Ledger, defaultStateDir } from '../core/ledger';
import type { Budget, BudgetPeriod } from '../core/budget';
import type { IdlePolicy } from '../core/autostop';
import { accountKindOf } from '../fleet/cloudAccounts';
import { budgetSpend } from '../fleet/spend';
import { PERIODS, PROVIDERS, policyFile, policyWarnings, readPolicy, removeBudget, setBudget, setDefaultTimeLimit, setIdleAutostop } from '../fleet/policy';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const POLICY_HELP = `Budgets, idle autostop and the default time limit (one policy file in the state folder,
shared by VS Code, the CLI and \`tether watch\`; a workspace cannot override it):

  budget set NAME --limit USD --period day|month|lifetime [--provider P] [--resource ID|NAME]
             [--thresholds 0.5,0.8,1] [--auto-terminate]
                         Add a budget, or replace the one of that name
  budget list [--json]   Every budget with what it has spent this period
  budget rm NAME         Remove a budget
  autostop set [--idle-minutes N] [--gpu-below PERCENT] [--warn-minutes M] [--action terminate|stop]
                         Turn idle autostop on (unset options keep their values)
  autostop show [--json] | autostop off
  limit default HOURS    A time limit for every instance Tether launches (0: none)
  limit show [--json]`;

const OPTIONS = {
  workspace: { type: 'string' },
  'state-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  limit: { type: 'string' },
  period: { type: 'string' },
  provider: { type: 'string' },
  resource: { type: 'string' },
  thresholds: { type: 'string' },
  'auto-terminate': { type: 'boolean', default: false },
  'idle-minutes': { type: 'string' },
  'gpu-below': { type: 'string' },
  'warn-minutes': { type: 'string' },
  action: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const NEG = 'neg:';
const REMEDY = 'Run `tether budget --help` for usage.';

/** `--limit -3` is a (bad) value, not an option: joined as `--limit=-3` so that the check below can say what is wrong with it. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const opt = a.startsWith('--') ? (OPTIONS as Record<string, { type: string }>)[a.slice(2)] : undefined;
    const next = argv[i + 1];
    if (opt?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else if (/^-[\d.]/.test(a)) out.push(`${NEG}${a}`); // a negative number as an argument (e.g. `limit default -1`)
    else out.push(a);
  }
  return out;
}

const usd = (n: number) => `$${n.toFixed(2)}`;

function num(v: string | undefined, flag: string, what: string, ok: (n: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`${flag} must be ${what}, got "${v}"`, REMEDY);
  return n;
}

/** Runs `tether budget|autostop|limit …`. */
export async function runPolicyCommand(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv), allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message, REMEDY);
  }
  const { values: o } = parsed;
  const [cmd, sub, ...rest] = parsed.positionals.map((p) => (p.startsWith(`${NEG}-`) ? p.slice(NEG.length) : p));
  if (o.help) {
    io.out(POLICY_HELP);
    return ExitCode.OK;
  }
  const stateDir = o['state-dir'] ?? defaultStateDir();
  if (cmd === 'budget') {
    if (sub === 'set') {
      if (rest.length !== 1) throw new UsageError('`tether budget set NAME --limit USD --period day|month|lifetime` needs exactly one NAME (quote a name with spaces)', REMEDY);
      const name = rest[0]!;
      if (o.limit === undefined) throw new UsageError('`tether budget set` needs --limit USD (the cap, above 0)', REMEDY);
      const limitUsd = num(o.limit, '--limit', 'an amount of USD above 0 (e.g. 25 or 12.50)', (n) => n > 0)!;
      if (o.period === undefined) throw new UsageError('`tether budget set` needs --period day|month|lifetime', REMEDY);
      if (!PERIODS.includes(o.period as BudgetPeriod)) throw new UsageError(`--period must be day, month or lifetime, got "${o.period}"`, REMEDY);
      const budget: Budget = { name, limitUsd, period: o.period as BudgetPeriod };
      if (o.provider !== undefined) {
        const p = o.provider === 'kubernetes' ? o.provider : accountKindOf(o.provider);
        if (!p) throw new UsageError(`unknown provider "${o.provider}"`, `Use one of ${PROVIDERS.join(', ')} (or lambda, vast, ec2).`);
        budget.provider = p;
      }
      if (o.resource !== undefined) {
        const body = new Ledger(stateDir).read();
        const match = (r: (typeof body.resources)[number]) => r.kind === 'cloud' && (r.id === o.resource || r.plugin === o.resource || r.remote?.instanceId === o.resource);
        const found = body.resources.filter(match);
        if (found.length > 1) throw new UsageError(`"${o.resource}" names ${found.length} cloud resources`, 'Pass the ledger id (see `tether status --json`).');
        const rec = found[0] ?? body.ended.find(match);
        if (!rec) throw new UsageError(`no cloud resource of Tether's named "${o.resource}"`, 'Pass a ledger id, instance id or name from `tether status`.');
        budget.ledgerId = rec.id;
      }
      if (o.thresholds !== undefined) {
        const parts = o.thresholds.split(',').map((t) => t.trim());
        const ts = parts.map(Number);
        if (!parts.length || parts.some((t) => t === '') || ts.some((t) => !Number.isFinite(t) || t <= 0 || t > 1)) {
          throw new UsageError(`--thresholds must be fractions of the limit above 0 and at most 1, separated by commas (e.g. 0.5,0.8,1), got "${o.thresholds}"`, REMEDY);
        }
        budget.thresholds = ts;
      }
      if (o['auto-terminate']) budget.autoTerminate = true;
      const { replaced } = await setBudget(stateDir, budget);
      io.out(`${replaced ? 'replaced' : 'added'} budget "${name}": ${usd(limitUsd)} per ${budget.period}${scopeText(budget)}${budget.autoTerminate ? ', auto-terminate' : ''} (${policyFile(stateDir)})`);
      return ExitCode.OK;
    }
    if (sub === 'list' || sub === undefined) {
      const policy = readPolicy(stateDir);
      for (const w of policyWarnings(stateDir)) io.err(`tether: warning: ${w}`);
      const spent = spentByBudget(stateDir, policy.budgets);
      if (o.json) {
        io.out(JSON.stringify(policy.budgets.map((b, i) => ({ ...b, spent: spent[i] ?? null })), null, 2));
        return ExitCode.OK;
      }
      if (!policy.budgets.length) io.out('no budget is set (`tether budget set NAME --limit USD --period day|month|lifetime`)');
      policy.budgets.forEach((b, i) => {
        const s = spent[i];
        io.out(`${b.name.padEnd(20)} ${usd(b.limitUsd)} per ${b.period}${scopeText(b)}${b.autoTerminate ? '  auto-terminate' : ''}${s !== undefined ? `  spent ${usd(s)} (${Math.round((s / b.limitUsd) * 100)} %)` : ''}`);
      });
      return ExitCode.OK;
    }
    if (sub === 'rm' || sub === 'remove') {
      if (rest.length !== 1) throw new UsageError('`tether budget rm NAME` needs exactly one NAME', REMEDY);
      await removeBudget(stateDir, rest[0]!);
      io.out(`removed budget "${rest[0]}"`);
      return ExitCode.OK;
    }
    throw new UsageError(`unknown budget command "${sub}"`, 'Use `tether budget set|list|rm`.');
  }
  if (cmd === 'autostop') {
    if (sub === 'set' || sub === 'on') {
      const change: Partial<IdlePolicy> = { enabled: true };
      const idle = num(o['idle-minutes'], '--idle-minutes', 'a number of minutes of at least 1', (n) => n >= 1);
      const gpu = num(o['gpu-below'], '--gpu-below', 'a percentage from 0 to 100', (n) => n >= 0 && n <= 100);
      const warn = num(o['warn-minutes'], '--warn-minutes', 'a number of minutes of at least 0', (n) => n >= 0);
      if (idle !== undefined) change.idleMinutes = idle;
      if (gpu !== undefined) change.gpuUtilBelowPercent = gpu;
      if (warn !== undefined) change.warnMinutes = warn;
      if (o.action !== undefined) {
        if (o.action !== 'terminate' && o.action !== 'stop') throw new UsageError(`--action must be terminate or stop, got "${o.action}"`, REMEDY);
        change.action = o.action;
      }
      const p = await setIdleAutostop(stateDir, change);
      io.out(`idle autostop on: ${idleText(p)}`);
      return ExitCode.OK;
    }
    if (sub === 'off') {
      await setIdleAutostop(stateDir, { enabled: false });
      io.out('idle autostop off (time limits still hold)');
      return ExitCode.OK;
    }
    if (sub === 'show' || sub === undefined) {
      const p = readPolicy(stateDir).idleAutostop;
      io.out(o.json ? JSON.stringify(p, null, 2) : p.enabled ? `idle autostop on: ${idleText(p)}` : 'idle autostop off');
      return ExitCode.OK;
    }
    throw new UsageError(`unknown autostop command "${sub}"`, 'Use `tether autostop set|show|off`.');
  }
  if (cmd === 'limit') {
    if (sub === 'default') {
      if (rest.length !== 1) throw new UsageError('`tether limit default HOURS` needs a number of hours (0: none)', REMEDY);
      const v = rest[0] === 'off' || rest[0] === 'none' ? 0 : num(rest[0], 'HOURS', 'a number of hours of at least 0 (0: none)', (n) => n >= 0)!;
      await setDefaultTimeLimit(stateDir, v);
      io.out(v ? `every instance Tether launches from now on gets a ${v} h time limit` : 'no default time limit');
      return ExitCode.OK;
    }
    if (sub === 'show' || sub === undefined) {
      const h = readPolicy(stateDir).defaultTimeLimitHours;
      io.out(o.json ? JSON.stringify({ defaultTimeLimitHours: h }) : h ? `default time limit: ${h} h` : 'no default time limit');
      return ExitCode.OK;
    }
    throw new UsageError(`unknown limit command "${sub}"`, 'Use `tether limit default HOURS` or `tether limit show`.');
  }
  throw new UsageError(`unknown command "${String(cmd)}"`, REMEDY);
}

function scopeText(b: Budget): string {
  return `${b.provider ? ` on ${b.provider}` : ''}${b.ledgerId ? ` for resource ${b.ledgerId}` : ''}${b.thresholds ? ` warning at ${b.thresholds.map((t) => `${Math.round(t * 100)} %`).join(', ')}` : ''}`;
}

function idleText(p: IdlePolicy): string {
  return `after ${p.idleMinutes} min with every GPU below ${p.gpuUtilBelowPercent} % and no Tether plugin running, ${p.action === 'stop' ? 'stop (where the provider can; else terminate)' : 'terminate'}, warning ${p.warnMinutes} min ahead`;
}

/** What each budget has spent in its current period, from the ledger alone (running and ended records). */
function spentByBudget(stateDir: string, budgets: readonly Budget[]): Array<number | undefined> {
  try {
    return budgetSpend(new Ledger(stateDir), budgets);
  } catch {
    return budgets.map(() => undefined);
  }
}
