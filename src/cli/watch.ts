/**
 * `tether watch`: budgets, time limits, idle autostop and dead man's switch pushes without VS Code.
 * In the foreground (one tick per --interval), `--once` for one tick, or as a systemd user
 * service (`--install` / `--uninstall`). It takes part in the same leader election as VS Code's
 * windows (src/fleet/leader.ts), so only one of them acts per interval.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ExitCode, TetherError, UsageError, describeError } from '../core/errors';
import { defaultStateDir } from '../core/ledger';
import type { Logger } from '../core/logger';
import { accountsFromEnv, createProviders, CLOUD_PROVIDERS } from '../fleet/cloudAccounts';
import { Engine } from '../workspace/engine';
import { describeLeader } from '../fleet/leader';
import { PolicyWatcher } from '../fleet/watcher';
import type { Io } from './policy';

export const WATCH_HELP = `tether watch [--interval SECONDS] [--once] [--install | --uninstall] [--state-dir DIR]

  Enforces budgets, time limits and idle autostop and pushes dead man's switches with no editor
  open. Only one of {VS Code windows, tether watch} leads per state folder (\`tether status\` says who).
  --interval SECONDS     Time between ticks (default 30, at least 1)
  --once                 One tick, then exit
  --install              Write and enable a systemd user unit (tether-watch.service) running this
  --uninstall            Disable and remove it`;

export const UNIT_NAME = 'tether-watch.service';

const OPTIONS = {
  workspace: { type: 'string' },
  'state-dir': { type: 'string' },
  interval: { type: 'string' },
  once: { type: 'boolean', default: false },
  install: { type: 'boolean', default: false },
  uninstall: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Environment variables copied into the unit: endpoints and regions, never a secret. */
const UNIT_ENV = [...new Set(CLOUD_PROVIDERS.flatMap((d) => [d.apiUrlEnv, ...(d.unitEnv ?? [])]))];
/** Secrets the CLI reads from its environment: never written into the unit. */
const SECRET_ENV = CLOUD_PROVIDERS.flatMap((d) => d.secretEnv ?? []);

const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function logger(io: Io, verbose: boolean): Logger {
  return {
    trace: () => undefined,
    debug: (m) => verbose && io.err(`debug: ${m}`),
    info: (m) => verbose && io.err(m),
    warn: (m) => io.err(`${stamp()} warning: ${m}`),
    error: (m) => io.err(`${stamp()} error: ${m instanceof Error ? m.message : m}`),
  };
}

export async function runWatch(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message, 'Run `tether watch --help` for usage.');
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    io.out(WATCH_HELP);
    return ExitCode.OK;
  }
  if (positionals.length > 1) throw new UsageError(`\`tether watch\` takes no argument, got "${positionals.slice(1).join(' ')}"`, 'Run `tether watch --help` for usage.');
  const intervalSec = o.interval === undefined ? 30 : Number(o.interval);
  if (!Number.isFinite(intervalSec) || intervalSec < 1) throw new UsageError(`--interval must be a number of seconds of at least 1, got "${o.interval}"`);
  if ([o.once, o.install, o.uninstall].filter(Boolean).length > 1) throw new UsageError('pick one of --once, --install, --uninstall');
  const stateDir = path.resolve(o['state-dir'] ?? defaultStateDir(env));
  if (o.install) return install(io, env, stateDir, intervalSec);
  if (o.uninstall) return uninstall(io, env);

  const log = logger(io, o.verbose);
  const accounts = accountsFromEnv(env);
  const providers = createProviders(accounts, log, stateDir);
  const engine = new Engine({
    workspace: o.workspace ?? process.cwd(),
    ownerKind: 'cli',
    log,
    stateDir,
    cloudProviders: () => providers,
  });
  const watcher = new PolicyWatcher(engine, log, intervalSec * 1000, undefined, () => providers.map((p) => p.type));
  let wasLeading: boolean | undefined;
  const report = (t: Awaited<ReturnType<PolicyWatcher['tick']>>, once: boolean) => {
    if (t.leader !== wasLeading || once) io.out(`${stamp()} ${t.leader ? `leading the policy tick for ${stateDir} (every ${intervalSec} s)` : `not leading: ${describeLeader(t.holder)}`}`);
    wasLeading = t.leader;
    for (const l of t.lines) io.out(`${stamp()} ${l}`);
    if (t.result && once) {
      for (const v of t.result.budgets) io.out(`${stamp()} budget "${v.budget.name}": $${v.spent.toFixed(2)} of $${v.budget.limitUsd.toFixed(2)} per ${v.budget.period}`);
    }
  };
  try {
    if (o.once) {
      const t = await watcher.tick();
      report(t, true);
      if (!providers.length) io.err(`${stamp()} warning: no cloud account is configured (LAMBDA_API_KEY, RUNPOD_API_KEY, VAST_API_KEY, TETHER_AWS_REGION): only the ledger was checked`);
      return t.result?.errors.length ? ExitCode.FAILED : ExitCode.OK;
    }
    if (!providers.length) io.err(`${stamp()} warning: no cloud account is configured (LAMBDA_API_KEY, RUNPOD_API_KEY, VAST_API_KEY, TETHER_AWS_REGION): nothing can be terminated`);
    // Foreground loop until SIGINT / SIGTERM; the lease is given up on the way out.
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    let running = true;
    const onSignal = () => {
      running = false;
      stop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      while (running) {
        try {
          report(await watcher.tick(), false);
        } catch (err) {
          log.error(`tick failed: ${describeError(err)}`);
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, intervalSec * 1000)))]);
        clearTimeout(timer);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    io.out(`${stamp()} stopped`);
    return ExitCode.OK;
  } finally {
    await watcher.lease.release();
    engine.dispose();
  }
}

// ---- systemd user service -----------------------------------------------------------------------

function configHome(env: NodeJS.ProcessEnv): string {
  return env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
}

export function unitPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configHome(env), 'systemd', 'user', UNIT_NAME);
}

export function envFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configHome(env), 'tether', 'watch.env');
}

/** One ExecStart word, quoted for systemd (and `%` escaped) when needed. */
function unitWord(s: string): string {
  const e = s.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(e) ? e : `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The command that runs this same CLI (node, its flags such as a loader, the script). */
function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, path.resolve(process.argv[1] ?? 'tether')];
}

export function unitText(env: NodeJS.ProcessEnv, stateDir: string, intervalSec: number): string {
  const exec = [...selfCommand(), 'watch', '--state-dir', stateDir, '--interval', String(intervalSec)].map(unitWord).join(' ');
  const envLines = UNIT_ENV.filter((k) => env[k]).map((k) => `Environment=${unitWord(`${k}=${env[k]}`)}`);
  return [
    '# Written by `tether watch --install`; remove with `tether watch --uninstall`.',
    '[Unit]',
    `Description=Tether policy watcher (budgets, time limits, idle autostop) for ${stateDir.replace(/%/g, '%%')}`,
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    'WorkingDirectory=%h',
    `ExecStart=${exec}`,
    ...envLines,
    '# API keys: put LAMBDA_API_KEY=…, RUNPOD_API_KEY=…, VAST_API_KEY=… in this file (chmod 600); never in this unit.',
    `EnvironmentFile=-${envFilePath(env).replace(/%/g, '%%')}`,
    'Restart=on-failure',
    'RestartSec=30',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/** Why systemd's user manager cannot be used here, or undefined when it can. */
function systemdProblem(env: NodeJS.ProcessEnv): string | undefined {
  try {
    execFileSync('systemctl', ['--user', 'show-environment'], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 });
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer; status?: number };
    if (e.code === 'ENOENT') return 'systemctl is not installed (this machine does not run systemd)';
    const why = e.stderr?.toString().trim().split('\n')[0];
    return `systemd has no user session here (\`systemctl --user\` says: ${why || `exit ${e.status ?? e.code}`})`;
  }
}

function systemctl(env: NodeJS.ProcessEnv, args: string[]): void {
  try {
    execFileSync('systemctl', ['--user', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new TetherError(`systemctl --user ${args.join(' ')} failed: ${e.stderr?.toString().trim() || e.message}`, { remedy: 'See `systemctl --user status tether-watch`.' });
  }
}

function install(io: Io, env: NodeJS.ProcessEnv, stateDir: string, intervalSec: number): number {
  const problem = systemdProblem(env);
  const cmd = [...selfCommand(), 'watch', '--state-dir', stateDir, '--interval', String(intervalSec)].map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (problem) {
    io.err(`tether: cannot install ${UNIT_NAME}: ${problem} — run the watcher another way (below); nothing was written.`);
    io.out(
      [
        'Run it yourself instead, with your cloud API keys in its environment:',
        `  in a terminal (or tmux/screen):  ${cmd}`,
        `  in the background:               nohup ${cmd} >> ${path.join(stateDir, 'watch.log')} 2>&1 &`,
        `  at boot, from \`crontab -e\`:      @reboot ${cmd} >> ${path.join(stateDir, 'watch.log')} 2>&1`,
        'Only one watcher (or VS Code window) leads at a time; `tether status` says which.',
      ].join('\n'),
    );
    return ExitCode.FAILED;
  }
  const file = unitPath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, unitText(env, stateDir, intervalSec), { mode: 0o644 });
  systemctl(env, ['daemon-reload']);
  systemctl(env, ['enable', '--now', UNIT_NAME]);
  const secrets = SECRET_ENV.filter((k) => env[k]);
  io.out(
    [
      `installed and started ${UNIT_NAME} (${file}): a tick every ${intervalSec} s for ${stateDir}`,
      `logs: journalctl --user -u ${UNIT_NAME}; to keep it running after you log out: loginctl enable-linger ${os.userInfo().username}`,
      secrets.length
        ? `${secrets.join(', ')} ${secrets.length > 1 ? 'are' : 'is'} set here but not copied into the unit (secrets never go into unit files): put ${secrets.length > 1 ? 'them' : 'it'} in ${envFilePath(env)} (chmod 600), then \`systemctl --user restart ${UNIT_NAME}\``
        : `API keys: put LAMBDA_API_KEY=… (etc.) in ${envFilePath(env)} (chmod 600), then \`systemctl --user restart ${UNIT_NAME}\``,
    ].join('\n'),
  );
  return ExitCode.OK;
}

function uninstall(io: Io, env: NodeJS.ProcessEnv): number {
  const file = unitPath(env);
  const existed = fs.existsSync(file);
  const problem = systemdProblem(env);
  if (!problem) {
    try {
      systemctl(env, ['disable', '--now', UNIT_NAME]);
    } catch (err) {
      if (existed) io.err(`tether: warning: ${describeError(err)}`);
    }
  }
  fs.rmSync(file, { force: true });
  if (!problem) systemctl(env, ['daemon-reload']);
  io.out(existed ? `removed ${UNIT_NAME} (${file})${problem ? `; ${problem}, so nothing was running under systemd` : ', stopped and disabled'}` : `no ${UNIT_NAME} installed (${file} does not exist)`);
  return ExitCode.OK;
}
