/**
 * The one interface every kind of declared plugin runs behind — a local process tree, a conda
 * environment, a Docker container, a command on an SSH host, a Kubernetes Job — and the shapes
 * they report in. A workspace (src/workspace/engine.ts) asks the registry
 * (src/backends/registry.ts) which backend runs a spec and talks to it only through this
 * interface; the tree's context values and menus come from {@link Backend.actions}, so `src/ui`
 * never asks what kind a resource is.
 *
 * Cloud instances are the other family: one `CloudProvider` per provider
 * (src/backends/cloud/provider.ts, registered in src/backends/cloud/registry.ts).
 *
 * Adding a backend: a folder `src/backends/<name>/` whose `index.ts` exports a
 * {@link BackendFactory}, plus one line in src/backends/registry.ts.
 */
import type { PluginSpec } from '../core/config';
import type { Ledger, LedgerResource, ResourceOwner } from '../core/ledger';
import type { Logger } from '../core/logger';
import type { ProcessInfo, ProcessTracker } from '../core/processTracker';
import type { StopReport } from '../core/treeKiller';

export type PluginState = 'running' | 'starting' | 'stopping' | 'stopped' | 'failed' | 'orphan';

/**
 * What a resource offers the user. The tree's context value is made of these
 * (`tether.plugin;<state>;<action>;…;`) and package.json's menus match them, so a new backend
 * gets the right menus by saying what it can do.
 */
export type ActionId = 'start' | 'stop' | 'restart' | 'kill' | 'adopt' | 'logs' | 'shell' | 'config';

/** One plugin (declared, or found in the ledger) as `tether status --json` prints it. */
export interface PluginStatus {
  name: string;
  /**
   * The backend that runs it (its {@link BackendFactory.kind}): local: a process tree on this
   * machine; docker: a container (its host process tree below it); ssh: a process tree on an
   * SSH host (its PIDs are the host's, see `host`); kubernetes: a Job and its Pods. For display
   * and JSON only: nothing branches on it outside its backend.
   */
  kind: string;
  /**
   * The SSH host it runs on (alias or user@host:port) as declared and recorded: the tree shows it
   * under that host, whose connection and GPUs Tether watches.
   */
  host?: string;
  /** Where else it runs, for display (a Kubernetes context/namespace). */
  where?: string;
  executionMode: string;
  state: PluginState;
  /** Declared in this workspace's `.vscode/tether.json`. */
  declared: boolean;
  /** Why it is an orphan, when it is one. */
  orphanReason?: string;
  ledgerId: string | null;
  workspace: string | null;
  owner: ResourceOwner | null;
  /** True when this process (this window, this CLI run) started it. */
  ownedByMe: boolean;
  command: string;
  logPath: string | null;
  healthUrl: string | null;
  /** The plugin's own grace period (ms) between SIGTERM and SIGKILL, when it declares one. */
  stopGraceMs: number | null;
  startedAt: string | null;
  lastExit: { code?: number | null; signal?: string | null; at: string; message?: string } | null;
  processes: ProcessInfo[];
  /** For containers: what Docker says. */
  container?: {
    id: string;
    name: string;
    image: string;
    state: string;
    ports: string[];
    /** From the engine's stats API (null until two samples exist). */
    cpuPercent?: number | null;
    memoryBytes?: number;
  };
  /**
   * Sub-resources that are not processes of this machine (a Job's Pods: phase, node, restarts,
   * GPU requests), one line each for the tree.
   */
  parts?: Array<{ id: string; label: string; description?: string; tooltip?: string; state?: string }>;
  /** What stopping it does, when that is not signals to processes of this machine (a Job deleted with its Pods). */
  stopDetail?: string;
  /** A codicon for its row while it is not failed or an orphan (a container: 'package'); else the state's icon. */
  icon?: string;
  /** USD per hour while it runs, where the backend prices it (a Kubernetes Pod from its requests). */
  costPerHour?: number;
  /** A problem reading this plugin's state (e.g. the Docker engine is not running, the SSH host is unreachable). */
  problem?: string;
  /** What the user can do with it now (its backend's {@link Backend.actions}). */
  actions: ActionId[];
}

/** The services a workspace lends its backends (no VS Code). */
export interface BackendContext {
  workspace: string;
  ledger: Ledger;
  tracker: ProcessTracker;
  owner: ResourceOwner;
  log: Logger;
  /** How long a start waits to see a process die early (tests shorten it). */
  startupCheckMs?: number;
  /**
   * A client the workspace shares with its backends, by name, made on first use — e.g. 'ssh'
   * (the SSH host monitor: one connection per host for every workspace of a window).
   */
  service<T>(name: string): T;
  /** The live processes of local records, as this poll's reconcile read them (`/proc` once per poll). */
  liveProcesses(recordId: string): ProcessInfo[] | undefined;
}

/** A declared plugin's object (kept by the workspace across polls, so protocol calls see one instance). */
export interface DeclaredPlugin {
  /** Starts it: the ledger intent is written before anything exists. */
  start(): Promise<LedgerResource>;
  /** Ties it to its active record (or none). */
  attach(record: LedgerResource | undefined): void;
  readonly ledgerRecord: LedgerResource | undefined;
}

/** What a status call knows about one plugin before its backend looks. */
export interface StatusInput {
  name: string;
  /** Its declaration, when declared in this workspace. */
  spec?: PluginSpec;
  /** Its active ledger record, if any. */
  record?: LedgerResource;
  /** Its last ended record (for "stopped"/"failed" and the last exit), if any. */
  lastEnded?: LedgerResource;
  /** Why its record is an orphan, when it is one. */
  orphanReason?: string;
  /** Its declared plugin's object, kept by the workspace (attached to `record` by the backend). */
  plugin?: DeclaredPlugin;
}

/** A terminal to open: a program and its arguments. */
export interface ShellCommand {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** One backend, bound to one workspace. */
export interface Backend {
  readonly kind: string;
  /** The object of a declared plugin (made once per spec; the workspace keeps it). */
  plugin(spec: PluginSpec): DeclaredPlugin;
  /**
   * Reads, once per poll, what it needs to report on these records (this backend's), closing
   * the records whose resource is provably gone. Absent from the result = unknown, not gone.
   */
  observe(records: readonly LedgerResource[]): Promise<void>;
  /** One plugin's status, from what {@link observe} read. */
  status(input: StatusInput): Promise<PluginStatus>;
  /**
   * Stops the resource of an active record identity-safely (only what Tether provably started),
   * whoever started it; `graceMs` between the polite stop and the forced one comes from the one
   * resolver (src/core/grace.ts). With `plugin` (the record's declared plugin, when its
   * declaration still matches) the stop goes through it. Undefined when there was nothing to stop.
   */
  stop(record: LedgerResource, opts: { graceMs: number; reason?: string; plugin?: DeclaredPlugin }): Promise<StopReport | undefined>;
  /** Every live PID of an active record, where PIDs mean something on this machine. */
  pids?(record: LedgerResource): Promise<number[]>;
  /** The last lines of its output. */
  logs?(record: LedgerResource, opts: { tail: number }): Promise<string>;
  /** A shell inside it, when it is running. */
  shell?(record: LedgerResource): ShellCommand | undefined | Promise<ShellCommand | undefined>;
  /** What the user can do with it now (see {@link ActionId}). */
  actions(status: PluginStatus): ActionId[];
  /** Interactive preparation before a start (SSH: connect first, so passphrase and host-key prompts can show). */
  prepare?(spec: PluginSpec): Promise<void>;
  /**
   * Resources of this backend that carry this ledger's marker but have no active record (a
   * container left by a crash): shown as orphans, each with its own identity-safe stop.
   */
  unrecorded?(): Promise<UnrecordedResource[]>;
  dispose?(): void;
}

/** A resource found by its marker with no active record (see {@link Backend.unrecorded}). */
export interface UnrecordedResource {
  status: PluginStatus;
  /** Its (ended) record, when the ledger has one. */
  record?: LedgerResource;
  stop(opts: { graceMs: number; reason: string }): Promise<unknown>;
}

/**
 * An error of a start whose outcome is unknown (a remote start whose connection dropped): its
 * intent stays in the ledger, to be found by its marker, instead of being closed as failed.
 */
export function keepsIntent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { keepsIntent?: unknown }).keepsIntent === true;
}

/**
 * The status every backend starts from: the record's state (orphan, failed, running while
 * processes live, else what the record says), its owner and command; the backend then adds
 * what only it knows.
 */
export function baseStatus(ctx: Pick<BackendContext, 'workspace' | 'owner'>, kind: string, input: Pick<StatusInput, 'name' | 'record' | 'orphanReason'>, processes: ProcessInfo[], declared: boolean): PluginStatus {
  const { name, record, orphanReason } = input;
  let state: PluginState = 'stopped';
  if (record) {
    state = orphanReason ? 'orphan' : record.state === 'failed' ? 'failed' : processes.length ? (record.state === 'stopping' ? 'stopping' : 'running') : record.state;
  }
  return {
    name,
    kind,
    executionMode: record?.executionMode ?? 'subprocess',
    state,
    declared,
    ...(orphanReason ? { orphanReason } : {}),
    ledgerId: record?.id ?? null,
    workspace: record?.workspace ?? (declared ? ctx.workspace : null),
    owner: record?.owner ?? null,
    ownedByMe: !!record?.owner && record.owner.pid === ctx.owner.pid && record.owner.startTime === ctx.owner.startTime,
    command: record?.command ? [record.command.command, ...record.command.args].join(' ') : (processes[0]?.command ?? ''),
    logPath: record?.logPath ?? null,
    healthUrl: null,
    stopGraceMs: null,
    startedAt: record?.createdAt ?? null,
    lastExit: record?.exit ?? null,
    processes,
    actions: [],
  };
}

/** A declared plugin with no active record: stopped or failed as its last run ended. */
export function applyLastEnded(st: PluginStatus, input: Pick<StatusInput, 'record' | 'lastEnded'>): void {
  if (input.record || !input.lastEnded) return;
  st.state = input.lastEnded.state === 'failed' ? 'failed' : 'stopped';
  st.lastExit = input.lastEnded.exit ?? null;
}

/** What a declaration adds to a status: its command, health URL and own grace period. */
export function applySpec(st: PluginStatus, spec: PluginSpec | undefined): void {
  if (!spec) return;
  st.command = [spec.command, ...spec.args].filter(Boolean).join(' ');
  st.healthUrl = spec.healthUrl ?? null;
  st.stopGraceMs = spec.stopGraceSeconds === undefined ? null : spec.stopGraceSeconds * 1000;
}

/** A backend kind: which specs and records it owns, and how to make one for a workspace. */
export interface BackendFactory {
  readonly kind: string;
  /** Ledger record kinds it owns. */
  readonly recordKinds: readonly string[];
  /** Which records it owns, when its kinds do not say enough (default: `recordKinds` has the record's kind). */
  ownsRecord?(r: LedgerResource): boolean;
  /** True when a declared spec runs on it (the registry asks in its order; the first yes wins). */
  owns(spec: PluginSpec): boolean;
  create(ctx: BackendContext): Backend;
  /** What the user can do with one of its resources now (the same as its backends' {@link Backend.actions}). */
  actions(status: PluginStatus): ActionId[];
}

/** Running: live processes, a running container, or (a Job) running parts whose processes are not visible here. */
export function isLive(s: Pick<PluginStatus, 'processes' | 'container' | 'parts' | 'state'>): boolean {
  return s.processes.length > 0 || s.container?.state === 'running' || (!!s.parts?.length && (s.state === 'running' || s.state === 'orphan' || s.state === 'stopping'));
}

/** The actions every backend shares, from a status: start/stop/restart/kill/adopt/config. */
export function commonActions(s: Pick<PluginStatus, 'declared' | 'state' | 'processes' | 'container' | 'parts'>, live: boolean): ActionId[] {
  const out: ActionId[] = [];
  if (s.declared && !live) out.push('start');
  if (live && s.state !== 'orphan') out.push('stop', 'kill');
  if (s.declared && live) out.push('restart');
  if (s.state === 'orphan') out.push('kill', 'adopt');
  if (s.declared) out.push('config');
  return out;
}
