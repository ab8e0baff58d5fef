/**
 * Local subprocess plugins: a command declared in `.vscode/tether.json`, started detached in its
 * own process group with its output in a per-plugin log file, and tracked — children,
 * grandchildren and setsid escapees — until it is stopped.
 *
 * The ledger is the plugin's memory: an intent is recorded before the spawn, the root's
 * identity right after, so a crash at any point leaves a trace.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { PluginSpec } from '../../core/config';
import { TetherError, ExitCode } from '../../core/errors';
import { otherMachineOf, type Ledger, type LedgerResource, type ResourceOwner } from '../../core/ledger';
import type { Logger } from '../../core/logger';
import { beforeThisBoot, identify, isSameProcessAlive, type ProcessIdentity } from '../../core/procfs';
import { MARKER_ENV, type ProcessInfo, type ProcessTracker } from '../../core/processTracker';
import { PluginExecutionMode, PluginMetadata, type LifecycleAwarePlugin } from '../../core/protocols';
import { stopProcessTree, type StopReport } from '../../core/treeKiller';
import type { BackendContext } from '../backend';
import { configSchema } from '../../core/config';

export const PLUGIN_ENV = 'TETHER_PLUGIN';
export const WORKSPACE_ENV = 'TETHER_WORKSPACE';
/** Names the ledger a process belongs to, so one state folder never adopts another's processes. */
export const LEDGER_ENV = 'TETHER_LEDGER';

/** What a local plugin needs of its workspace (its backend's context; `startupCheckMs`: how long a fresh process must survive to count as started, default 400 ms). */
export type SubprocessDeps = Pick<BackendContext, 'workspace' | 'ledger' | 'tracker' | 'owner' | 'log' | 'startupCheckMs'>;

export class StartError extends TetherError {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Folder of per-plugin log files. */
export function logsDir(stateDir: string): string {
  return path.join(stateDir, 'logs');
}

/** `<state>/logs/<workspace folder name>-<hash>/<plugin>.log`: stable per workspace and plugin. */
export function logPathFor(stateDir: string, workspace: string, plugin: string): string {
  const hash = createHash('sha256').update(workspace).digest('hex').slice(0, 8);
  const folder = `${path.basename(workspace).replace(/[^\w.-]/g, '_')}-${hash}`;
  return path.join(logsDir(stateDir), folder, `${plugin}.log`);
}

/** Lines Tether itself writes into a plugin's log (left out of error messages). */
const TETHER_LOG_HEADER = /^--- \d{4}-\d\d-\d\dT[\d:.]+Z tether: /;

/** The last `n` lines of a file (for error messages). */
export function tailFile(file: string, n: number): string {
  try {
    const stat = fs.statSync(file);
    const fd = fs.openSync(file, 'r');
    const len = Math.min(stat.size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, stat.size - len);
    fs.closeSync(fd);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l && !TETHER_LOG_HEADER.test(l))
      .slice(-n)
      .join('\n');
  } catch {
    return '';
  }
}

export class SubprocessPlugin implements LifecycleAwarePlugin {
  readonly metadata: PluginMetadata;
  /** The ledger record of the current run, if any. */
  private record: LedgerResource | undefined;
  /** The last processes seen by {@link refresh}. */
  private lastProcesses: ProcessInfo[] = [];

  constructor(
    readonly spec: PluginSpec,
    private readonly deps: SubprocessDeps,
  ) {
    this.metadata = new PluginMetadata({
      name: spec.name,
      category: 'subprocess',
      title: spec.title ?? spec.name,
      configSchema: configSchema.properties.plugins.items as unknown as Record<string, unknown>,
      executionMode: PluginExecutionMode.SUBPROCESS,
      isConfigured: true,
      managesChildProcesses: true,
      ...(spec.description ? { description: spec.description } : {}),
    });
  }

  get logPath(): string {
    return logPathFor(this.deps.ledger.stateDir, this.deps.workspace, this.spec.name);
  }

  /** Binds the plugin to an existing ledger record (after a reload or from the CLI). */
  attach(record: LedgerResource | undefined, processes: ProcessInfo[] = []): void {
    this.record = record;
    this.lastProcesses = processes;
    this.metadata.spawnedPids = this.getChildPids();
  }

  get ledgerRecord(): LedgerResource | undefined {
    return this.record;
  }

  getExecutionMode(): PluginExecutionMode {
    return PluginExecutionMode.SUBPROCESS;
  }

  /** The root process plus every process that left the tree (found by its marker), while alive. */
  getChildPids(): number[] {
    if (!this.record) return [];
    const roots: ProcessIdentity[] = [
      ...this.record.processes.slice(0, 1),
      ...this.lastProcesses.filter((p) => p.escaped),
    ];
    return [...new Set(roots.filter(isSameProcessAlive).map((p) => p.pid))];
  }

  getManagedResources(): Record<string, unknown> {
    const pid = this.getChildPids()[0];
    return {
      server_url: this.spec.healthUrl ?? null,
      is_running: pid !== undefined,
      pid: pid ?? null,
      log_path: this.logPath,
      ledger_id: this.record?.id ?? null,
    };
  }

  /** Stops the whole tree (TERM, grace, KILL) and closes the ledger record. */
  async forceCleanup(): Promise<void> {
    await this.stop();
  }

  /** Starts the command. Resolves once it has survived the startup check. */
  async start(): Promise<LedgerResource> {
    const { ledger, workspace, log } = this.deps;
    const spec = this.spec;
    const cwd = path.resolve(workspace, spec.cwd);
    if (!fs.existsSync(cwd)) {
      throw new StartError(`${spec.name}: working folder ${cwd} does not exist`, {
        remedy: 'Fix "cwd" in .vscode/tether.json (it is relative to the workspace folder).',
        exitCode: ExitCode.USAGE,
      });
    }
    const logPath = this.logPath;
    fs.mkdirSync(path.dirname(logPath), { recursive: true });
    // 1. Intent first: if we crash from here on, the reconciler knows what to look for.
    let record = await ledger.addIntent({
      kind: 'local',
      plugin: spec.name,
      workspace,
      executionMode: this.getExecutionMode(),
      owner: this.deps.owner,
      command: { command: spec.command, args: spec.args, cwd },
      logPath,
    });
    this.record = record;
    // The child writes straight into the log file (a raw fd, not a pipe through this process),
    // so its output is kept and it gets no SIGPIPE after the CLI or VS Code goes away.
    const fd = fs.openSync(logPath, 'a');
    fs.writeSync(fd, `\n--- ${new Date().toISOString()} tether: starting ${[spec.command, ...spec.args].join(' ')} (cwd ${cwd})\n`);
    const { execa } = await import('execa');
    let exited: { code: number | null; signal: string | null; message?: string } | undefined;
    const child = execa(spec.command, spec.args, {
      cwd,
      env: { ...spec.env, [MARKER_ENV]: record.id, [PLUGIN_ENV]: spec.name, [WORKSPACE_ENV]: workspace, [LEDGER_ENV]: ledger.tag },
      extendEnv: true,
      detached: true,
      cleanup: false,
      reject: false,
      buffer: false,
      stdin: 'ignore',
      // execa's types list fd numbers as literals; any open fd works at run time.
      stdout: fd as 1,
      stderr: fd as 1,
    });
    fs.closeSync(fd);
    const done = child.then((r) => {
      exited = {
        code: r.exitCode ?? null,
        signal: r.signal ?? null,
        ...(r.failed && r.exitCode === undefined && r.signal === undefined
          ? { message: /\bENOENT\b/.test(r.shortMessage ?? '') ? 'command not found' : (r.shortMessage ?? 'spawn failed') }
          : {}),
      };
      return exited;
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) {
      const r = await done;
      await ledger.end(record.id, 'failed', r.message, { code: null, signal: null, at: new Date().toISOString(), ...(r.message ? { message: r.message } : {}) });
      this.record = undefined;
      const notFound = r.message === 'command not found';
      throw new StartError(
        notFound ? `${spec.name}: command "${spec.command}" was not found` : `${spec.name}: could not start "${spec.command}": ${r.message ?? 'unknown error'}`,
        {
          remedy: notFound
            ? 'Install it or put its folder on PATH, or give an absolute path in "command" of .vscode/tether.json.'
            : `See ${logPath}.`,
        },
      );
    }
    const id = identify(pid);
    record =
      (await ledger.patch(
        record.id,
        { state: 'running', processes: id ? [{ ...id, command: [spec.command, ...spec.args].join(' ') }] : [] },
        `started pid ${pid}`,
      )) ?? record;
    this.record = record;
    log.info(`${spec.name}: started pid ${pid} (ledger ${record.id}), log ${logPath}`);
    void done.then(async (r) => {
      log.info(`${spec.name}: pid ${pid} exited (code ${r.code}, signal ${r.signal})`);
      await ledger.patch(record.id, { exit: { code: r.code, signal: r.signal, at: new Date().toISOString() } }).catch(() => undefined);
    });
    // 2. A command that dies at once (and leaves nothing behind) did not start.
    await Promise.race([done, sleep(this.deps.startupCheckMs ?? 400)]);
    if (exited) {
      const left = await this.refresh();
      if (left.length === 0) {
        const how = exited.signal ? `was killed by ${exited.signal}` : `exited at once with code ${exited.code}`;
        await ledger.end(record.id, 'failed', how, { code: exited.code, signal: exited.signal, at: new Date().toISOString() });
        this.record = undefined;
        const tail = tailFile(logPath, 3);
        throw new StartError(`${spec.name}: ${how}${tail ? `; last output: ${tail.replace(/\n/g, ' | ')}` : ''}`, {
          remedy: `Check the command and its arguments in .vscode/tether.json; full output in ${logPath}.`,
        });
      }
    }
    return record;
  }

  /** Re-reads the live tree of the current record. */
  async refresh(): Promise<ProcessInfo[]> {
    if (!this.record) return (this.lastProcesses = []);
    const snap = await this.deps.tracker.snapshot([{ id: this.record.id, known: this.record.processes }]);
    this.lastProcesses = snap.get(this.record.id) ?? [];
    this.metadata.spawnedPids = this.getChildPids();
    return this.lastProcesses;
  }

  /** Stops the whole tree and ends the ledger record. Throws if anything survived SIGKILL. */
  async stop(graceMs?: number): Promise<StopReport | undefined> {
    const record = this.record;
    if (!record) return undefined;
    const report = await stopResourceTree(record, this.deps.ledger, this.deps.tracker, this.deps.log, {
      graceMs: graceMs ?? (this.spec.stopGraceSeconds ?? 5) * 1000,
    });
    this.record = undefined;
    this.lastProcesses = [];
    this.metadata.spawnedPids = [];
    return report;
  }
}

/**
 * Stops every process of a ledger record (identity-safe), then ends the record. Used for
 * declared plugins and for orphans alike.
 */
export async function stopResourceTree(
  record: LedgerResource,
  ledger: Ledger,
  tracker: ProcessTracker,
  log: Logger,
  opts: { graceMs: number; reason?: string },
): Promise<StopReport> {
  const elsewhere = otherMachineOf(record);
  if (elsewhere) {
    throw new TetherError(`${record.plugin}: its processes run on ${elsewhere}, not on this machine (${os.hostname()}); Tether stops nothing here for it`, {
      remedy: `Stop it on ${elsewhere} (the state folder is shared). If this machine was renamed, its records name the old name.`,
    });
  }
  await ledger.patch(record.id, { state: 'stopping' }, opts.reason ?? 'stop requested');
  // A record made before this boot names no live process (its identities may match strangers now).
  const known = new Map<string, ProcessIdentity>(beforeThisBoot(record.createdAt) ? [] : record.processes.map((p) => [`${p.pid}:${p.startTime}`, p]));
  const report = await stopProcessTree(
    async () => {
      const snap = await tracker.snapshot([{ id: record.id, known: [...known.values()] }]);
      return (snap.get(record.id) ?? []).map((p) => ({ pid: p.pid, startTime: p.startTime }));
    },
    { graceMs: opts.graceMs, log: (l) => log.debug(`${record.plugin}: ${l}`) },
  );
  if (report.survivors.length) {
    await ledger.patch(record.id, { state: 'failed' }, `survivors after SIGKILL: ${report.survivors.map((p) => p.pid).join(', ')}`);
    throw new TetherError(
      `${record.plugin}: ${report.survivors.length} process(es) survived SIGKILL (pids ${report.survivors.map((p) => p.pid).join(', ')})`,
      {
        remedy:
          report.denied.length > 0
            ? 'They belong to another user: stop them with sufficient rights.'
            : 'They may be stuck in uninterruptible I/O (state D); they stay in the ledger and Tether retries on the next stop.',
      },
    );
  }
  await ledger.end(
    record.id,
    'stopped',
    `stopped: ${report.processes.length} process(es), ${report.terminated} on SIGTERM, ${report.killed} on SIGKILL`,
  );
  log.info(
    `${record.plugin}: stopped ${report.processes.length} process(es) (${report.terminated} SIGTERM, ${report.killed} SIGKILL, 0 left)`,
  );
  return report;
}

/** The identity of this process, as a ledger owner. */
export function currentOwner(kind: ResourceOwner['kind']): ResourceOwner {
  const me = identify(process.pid);
  return { kind, pid: process.pid, startTime: me?.startTime ?? 0, host: os.hostname() };
}
