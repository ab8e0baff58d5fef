/**
 * The ledger: one durable record of every resource Tether manages, shared by every VS Code
 * window and the CLI.
 *
 * - Crash-safe: each write goes to a temporary file, is fsynced, and renamed over the ledger;
 *   the previous version is kept as `ledger.json.bak`.
 * - Serialised: writers take a {@link FileLock}; readers need none (a rename is atomic).
 * - Verified: the body carries its SHA-256. A torn, truncated or hand-mangled file is reported
 *   ({@link LedgerCorruptError}) and never silently replaced.
 * - Written first: a resource is recorded as an *intent* before it is created, so a crash at
 *   any point leaves a trace the reconciler can follow.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { FileLock } from './fileLock';
import { ExitCode, LedgerCorruptError, TetherError } from './errors';
import type { ProcessIdentity } from './procfs';
import type { PluginExecutionMode, RemoteResourceInfo } from './protocols';

export const LEDGER_FORMAT = 'tether-ledger/1';

export type ResourceState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';
export type ResourceKind = 'local' | 'ssh' | 'cloud' | 'api' | 'docker' | 'kubernetes';

/**
 * Who started a resource. A `cli` owner detaches on purpose, and so does a window that closed
 * with `tether.cleanupOnExit: none` (it re-marks its resources `detached`); a `vscode` owner that
 * is gone without doing so crashed, and its resources are orphans.
 */
export interface ResourceOwner {
  kind: 'vscode' | 'cli' | 'api' | 'detached';
  pid: number;
  startTime: number;
  host: string;
}

export interface ProcessRecord extends ProcessIdentity {
  ppid?: number;
  command?: string;
}

export interface HistoryEvent {
  at: string;
  state: ResourceState;
  note?: string;
}

export interface LedgerResource {
  /** Random id, also the value of the environment marker its processes carry. */
  id: string;
  kind: ResourceKind;
  plugin: string;
  /** Absolute workspace folder the plugin was declared in. */
  workspace?: string;
  executionMode: PluginExecutionMode;
  state: ResourceState;
  owner?: ResourceOwner;
  createdAt: string;
  updatedAt: string;
  command?: { command: string; args: string[]; cwd: string };
  logPath?: string;
  /** Processes known to belong to it (root first); identity = pid + start time. */
  processes: ProcessRecord[];
  exit?: { code?: number | null; signal?: string | null; at: string; message?: string };
  remote?: RemoteResourceInfo;
  /** A Docker container (kind 'docker'); `id` is '' until the engine has created it. */
  container?: { id: string; name: string; image: string };
  /** SSH host spec (alias or user@host:port) of a `kind: 'ssh'` resource; its PIDs are remote. */
  host?: string;
  /**
   * The machine (host name) whose processes a local record names, when no owner says it (records
   * adopted by their marker). A state folder can be shared by machines (an NFS home).
   */
  machine?: string;
  history: HistoryEvent[];
}

export interface LedgerBody {
  /** Increases with every write. */
  seq: number;
  updatedAt: string;
  resources: LedgerResource[];
  /**
   * Ended resources, newest first. Those that bear money (cloud records) are kept for good: the
   * cost report, budgets and the status bar's spend read them. The others are capped.
   */
  ended: LedgerResource[];
}

const ENDED_KEEP = 200;

/**
 * For a local process record (kind local or api): the other machine whose processes it names, or
 * undefined when they are this machine's (or it cannot tell). PIDs and start times of another
 * machine name nobody here: such a record is never reconciled, matched or stopped from here.
 */
export function otherMachineOf(r: LedgerResource, hostname = os.hostname()): string | undefined {
  if (r.kind !== 'local' && r.kind !== 'api') return undefined;
  const m = r.machine ?? r.owner?.host;
  return m && m !== hostname ? m : undefined;
}

/** A record whose cost is counted (cost report, budgets, period spend): never evicted. */
export function bearsMoney(r: LedgerResource): boolean {
  return r.kind === 'cloud' || r.remote !== undefined;
}

/** Caps the ended records that bear no money at ENDED_KEEP (newest kept); money records all stay. */
export function trimEnded(body: LedgerBody): void {
  if (body.ended.length <= ENDED_KEEP) return;
  let others = 0;
  body.ended = body.ended.filter((r) => bearsMoney(r) || ++others <= ENDED_KEEP);
}

/** Default state folder: `TETHER_STATE_DIR`, else the user's data folder. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TETHER_STATE_DIR) return path.resolve(env.TETHER_STATE_DIR);
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'tether');
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'tether');
  return path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'tether');
}

/**
 * Refuses a state folder another local user could write to (like OpenSSH's StrictModes): records
 * planted there would name this user's processes, and `orphans --kill` would stop them. The
 * folder and the files Tether trusts in it must be owned by this user (or root) and writable by
 * no group or other user. A missing folder passes (Tether creates it 0700). Throws
 * {@link TetherError} (exit code 2) naming the fix.
 */
export function checkStateDir(stateDir: string, files: readonly string[] = ['ledger.json', 'policy.json']): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === undefined || process.platform === 'win32') return;
  for (const [target, isDir] of [[stateDir, true], ...files.map((f) => [path.join(stateDir, f), false] as const)] as const) {
    let st: fs.Stats;
    try {
      st = fs.statSync(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const what = isDir ? 'state folder' : 'file';
    if (st.uid !== uid && st.uid !== 0) {
      throw new TetherError(`The ${what} ${target} is owned by another user (uid ${st.uid}, you are ${uid}); Tether refuses to use it (records there could name your processes)`, {
        remedy: isDir ? `Use a state folder of your own (--state-dir or TETHER_STATE_DIR), or \`chown ${uid} ${target} && chmod 700 ${target}\`.` : `Remove it or \`chown ${uid} ${target}\` after checking its contents.`,
        exitCode: ExitCode.USAGE,
      });
    }
    if (st.mode & 0o022) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
      throw new TetherError(`The ${what} ${target} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${mode}); Tether refuses to use it (another user could plant records naming your processes)`, {
        remedy: isDir ? `Run \`chmod 700 ${target}\` (and check the files in it).` : `Run \`chmod 600 ${target}\` after checking its contents.`,
        exitCode: ExitCode.USAGE,
      });
    }
  }
}

/** Creates the state folder (0700) when missing, then {@link checkStateDir}. */
export function ensureStateDir(stateDir: string): void {
  checkStateDir(stateDir);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  checkStateDir(stateDir);
}

function emptyBody(): LedgerBody {
  return { seq: 0, updatedAt: new Date(0).toISOString(), resources: [], ended: [] };
}

function digest(bodyJson: string): string {
  return createHash('sha256').update(bodyJson).digest('hex');
}

export class Ledger {
  readonly file: string;
  /** Short stable name of this ledger (a hash of its folder), carried by its processes. */
  readonly tag: string;
  private readonly lock: FileLock;

  constructor(readonly stateDir: string) {
    ensureStateDir(stateDir);
    this.file = path.join(stateDir, 'ledger.json');
    this.tag = createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16);
    this.lock = new FileLock(path.join(stateDir, 'ledger.lock'));
  }

  /** The current contents. Throws {@link LedgerCorruptError} if the file is damaged. */
  read(): LedgerBody {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyBody();
      throw err;
    }
    return parseLedger(this.file, text);
  }

  /**
   * Read-modify-write under the lock. `fn` mutates the body it gets (or throws to abort with
   * nothing written); its result is returned.
   */
  async update<T>(fn: (body: LedgerBody) => T, what?: string): Promise<T> {
    return this.lock.withLock(
      () => {
        const body = this.read();
        const result = fn(body);
        body.seq += 1;
        body.updatedAt = new Date().toISOString();
        trimEnded(body);
        this.write(body);
        return result;
      },
      what === undefined ? {} : { what },
    );
  }

  /** Records a new resource as an intent (state `starting`) and returns it. */
  async addIntent(
    fields: Omit<LedgerResource, 'id' | 'state' | 'createdAt' | 'updatedAt' | 'history' | 'processes'> &
      Partial<Pick<LedgerResource, 'id' | 'processes'>>,
  ): Promise<LedgerResource> {
    const id = fields.id ?? randomUUID();
    let res: LedgerResource | undefined;
    await this.update((b) => {
      // Stamped under the lock: records are in the ledger in the order of their createdAt.
      const now = new Date().toISOString();
      res = { processes: [], ...fields, id, state: 'starting', createdAt: now, updatedAt: now, history: [{ at: now, state: 'starting', note: 'intent recorded' }] };
      b.resources.push(res);
    }, `recording ${fields.plugin}`);
    return res!;
  }

  /** Changes one resource; a changed `state` is appended to its history. Returns the new record. */
  async patch(
    id: string,
    change: Partial<Omit<LedgerResource, 'id' | 'history'>>,
    note?: string,
  ): Promise<LedgerResource | undefined> {
    return this.update((b) => {
      const r = b.resources.find((x) => x.id === id);
      if (!r) return undefined;
      applyPatch(r, change, note);
      return structuredClone(r);
    }, `updating ${id}`);
  }

  /** Moves a resource to the ended list with a final state. */
  async end(id: string, state: 'stopped' | 'failed', note?: string, exit?: LedgerResource['exit']): Promise<void> {
    await this.update((b) => endIn(b, id, state, note, exit), `ending ${id}`);
  }

  private write(body: LedgerBody): void {
    const bodyJson = JSON.stringify(body, null, 1);
    const text = `{"format":"${LEDGER_FORMAT}","sha256":"${digest(bodyJson)}","body":${bodyJson}}\n`;
    const tmp = `${this.file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (fs.existsSync(this.file)) {
      fs.rmSync(`${this.file}.bak`, { force: true });
      fs.linkSync(this.file, `${this.file}.bak`);
    }
    fs.renameSync(tmp, this.file);
    try {
      const dfd = fs.openSync(this.stateDir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    } catch {
      /* directories cannot be fsynced on every platform */
    }
  }

  /**
   * After {@link moveAside}: carries the damaged ledger's records that bill or cannot be rebuilt
   * into the (new) ledger ({@link salvageLedger}). Returns how many records were carried over.
   */
  async restoreFrom(aside: string): Promise<{ carried: number; from?: 'damaged' | 'backup' }> {
    let backup: string | undefined;
    try {
      backup = fs.readFileSync(`${this.file}.bak`, 'utf8');
    } catch {
      backup = undefined;
    }
    const got = salvageLedger(fs.readFileSync(aside, 'utf8'), backup, this.file);
    if (!got) return { carried: 0 };
    return this.update((b) => {
      let carried = 0;
      for (const r of got.resources) if (!b.resources.some((x) => x.id === r.id)) b.resources.push(r), carried++;
      for (const r of got.ended) if (!b.ended.some((x) => x.id === r.id)) b.ended.push(r), carried++;
      return { carried, from: got.from };
    }, 'restoring records from a damaged ledger');
  }

  /**
   * Moves a damaged ledger aside (never deleting it) so a fresh one can be started.
   * Returns the new name of the damaged file.
   */
  async moveAside(): Promise<string> {
    return this.lock.withLock(() => {
      const aside = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      fs.renameSync(this.file, aside);
      return aside;
    });
  }
}

/** Kinds of records a scan of local processes cannot rebuild: cloud instances, remote process trees, containers, Kubernetes Jobs. */
const NOT_REBUILT: readonly ResourceKind[] = ['cloud', 'ssh', 'docker', 'kubernetes'];

function isRecordShape(r: unknown): r is LedgerResource {
  const x = r as Partial<LedgerResource> | null;
  return (
    !!x &&
    typeof x === 'object' &&
    typeof x.id === 'string' &&
    typeof x.plugin === 'string' &&
    typeof x.kind === 'string' &&
    typeof x.createdAt === 'string' &&
    Array.isArray(x.processes) &&
    x.processes.every((p) => !!p && Number.isSafeInteger(p.pid) && p.pid > 1 && Number.isSafeInteger(p.startTime)) &&
    Array.isArray(x.history)
  );
}

/**
 * What `tether ledger repair` carries over from a damaged ledger: its records that no process
 * scan can rebuild (cloud, SSH, containers) and every ended record that bears money, so that what
 * bills and what was spent are never forgotten. The damaged text is used when it is still JSON of
 * the ledger's shape (a checksum mismatch: an edit outside Tether); otherwise the previous version
 * (`ledger.json.bak`, checksum verified). Undefined when neither can be read.
 */
export function salvageLedger(damagedText: string, backupText: string | undefined, file: string): { resources: LedgerResource[]; ended: LedgerResource[]; from: 'damaged' | 'backup' } | undefined {
  const pick = (b: { resources?: unknown; ended?: unknown }, from: 'damaged' | 'backup') => {
    if (!Array.isArray(b.resources) || !Array.isArray(b.ended)) return undefined;
    return {
      resources: b.resources.filter(isRecordShape).filter((r) => NOT_REBUILT.includes(r.kind) || bearsMoney(r)), // an API plugin's remote resource too
      ended: b.ended.filter(isRecordShape).filter(bearsMoney),
      from,
    };
  };
  try {
    const d = JSON.parse(damagedText) as { format?: unknown; body?: { resources?: unknown; ended?: unknown } };
    const got = d && d.format === LEDGER_FORMAT && d.body && typeof d.body === 'object' ? pick(d.body, 'damaged') : undefined;
    if (got) return got;
  } catch {
    /* not JSON: try the backup */
  }
  if (backupText === undefined) return undefined;
  try {
    return pick(parseLedger(`${file}.bak`, backupText), 'backup');
  } catch {
    return undefined;
  }
}

export function applyPatch(r: LedgerResource, change: Partial<Omit<LedgerResource, 'id' | 'history'>>, note?: string): void {
  const now = new Date().toISOString();
  const stateChanged = change.state !== undefined && change.state !== r.state;
  Object.assign(r, change, { updatedAt: now });
  if (stateChanged || note) r.history.push({ at: now, state: r.state, ...(note ? { note } : {}) });
}

export function endIn(
  b: LedgerBody,
  id: string,
  state: 'stopped' | 'failed',
  note?: string,
  exit?: LedgerResource['exit'],
): void {
  const i = b.resources.findIndex((x) => x.id === id);
  if (i < 0) return;
  const [r] = b.resources.splice(i, 1);
  applyPatch(r!, exit ? { state, exit } : { state }, note);
  b.ended.unshift(r!);
}

/** Parses and verifies a ledger file's text. */
export function parseLedger(file: string, text: string): LedgerBody {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new LedgerCorruptError(file, `not valid JSON: ${(err as Error).message}`);
  }
  const d = doc as { format?: unknown; sha256?: unknown; body?: unknown };
  if (!d || typeof d !== 'object' || d.format !== LEDGER_FORMAT) {
    throw new LedgerCorruptError(file, `unknown format ${JSON.stringify(d?.format)}`);
  }
  // Re-serialise exactly as written to check the digest.
  const bodyJson = JSON.stringify(d.body, null, 1);
  if (typeof d.sha256 !== 'string' || digest(bodyJson) !== d.sha256) {
    throw new LedgerCorruptError(file, 'checksum mismatch: the file was changed outside Tether or torn');
  }
  const body = d.body as LedgerBody;
  if (!Array.isArray(body?.resources) || !Array.isArray(body?.ended)) {
    throw new LedgerCorruptError(file, 'missing resources');
  }
  return body;
}
