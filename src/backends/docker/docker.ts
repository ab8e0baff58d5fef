/**
 * Docker plugins: a container declared in `.vscode/tether.json` (`"docker": {"image": ...}`),
 * started through the engine's API socket (dockerode; `DOCKER_HOST` honoured), labelled as
 * Tether's and tracked in the ledger like any other resource.
 *
 * - Intent first: the ledger records the container's name and image before it is created, its
 *   id right after, and `running` once it survived the startup check.
 * - Labels: every container carries `dev.tether.ledger-id`, `dev.tether.plugin`,
 *   `dev.tether.workspace` and `dev.tether.ledger` (the ledger's tag), so a crash at any point
 *   leaves a container the reconciler can find again ({@link findTetherContainers}).
 * - Strangers are safe: cleanup re-reads a container's labels before it touches it and refuses
 *   a container that is not labelled with this ledger's tag.
 */
import * as path from 'node:path';
import type Docker from 'dockerode';
import type { PluginSpec } from '../../core/config';
import { ExitCode, TetherError } from '../../core/errors';
import type { Ledger, LedgerResource, ResourceOwner } from '../../core/ledger';
import type { Logger } from '../../core/logger';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../../core/procfs';
import type { ProcessInfo, ProcessTracker } from '../../core/processTracker';
import { PluginExecutionMode, PluginMetadata, type LifecycleAwarePlugin } from '../../core/protocols';
import { configSchema } from '../../core/config';
import { ledgerIdentity, readLedgerIdentity } from '../../core/ledgerIdentity';

export const LABEL_LEDGER_ID = 'dev.tether.ledger-id';
export const LABEL_PLUGIN = 'dev.tether.plugin';
export const LABEL_WORKSPACE = 'dev.tether.workspace';
export const LABEL_LEDGER = 'dev.tether.ledger';
/**
 * The launching ledger's persistent random id (cloud/marker.ts `ledgerIdentity`). LABEL_LEDGER is
 * a hash of the state folder's path, which two ledgers share when they sit at the same path (two
 * dev containers on the host's docker.sock, two machines with identical homes on one DOCKER_HOST):
 * a container missing from this ledger is this ledger's orphan only when it carries this id.
 */
export const LABEL_LEDGER_UID = 'dev.tether.ledger-uid';

/** A container to run, as the plugin needs it (see {@link dockerSpecFromPlugin}). */
export interface DockerSpec {
  name: string;
  image: string;
  /** Overrides the image's command (CMD); the entrypoint is kept. */
  command?: string;
  args?: string[];
  /** `"8080:80"`, `"127.0.0.1:8080:80"`, `"8080:80/udp"`, or `"80"` (any free host port). */
  ports?: string[];
  env?: Record<string, string>;
  /** `"host:container[:ro]"`; a relative host path is resolved against the workspace, a bare name is a named volume. */
  volumes?: string[];
  healthUrl?: string;
  /** Seconds between the stop signal and SIGKILL (Docker's stop timeout). Default 5. */
  stopGraceSeconds?: number;
  /** Network mode or network name (Docker's default when absent). */
  network?: string;
  title?: string;
  description?: string;
}

/** The `docker` object of a plugin in `.vscode/tether.json`. */
export interface DockerConfig {
  image: string;
  ports?: string[];
  env?: Record<string, string>;
  volumes?: string[];
}

/** Builds a {@link DockerSpec} from a declared plugin that has a `docker` object. */
export function dockerSpecFromPlugin(spec: PluginSpec & { docker?: DockerConfig }): DockerSpec {
  const d = spec.docker;
  if (!d) throw new TypeError(`plugin ${spec.name} has no "docker" object`);
  return {
    name: spec.name,
    image: d.image,
    ...(spec.command ? { command: spec.command } : {}),
    args: spec.args ?? [],
    ports: d.ports ?? [],
    env: { ...spec.env, ...d.env },
    volumes: d.volumes ?? [],
    ...(spec.healthUrl ? { healthUrl: spec.healthUrl } : {}),
    ...(spec.stopGraceSeconds !== undefined ? { stopGraceSeconds: spec.stopGraceSeconds } : {}),
    ...(spec.title ? { title: spec.title } : {}),
    ...(spec.description ? { description: spec.description } : {}),
  };
}

export interface DockerDeps {
  workspace: string;
  ledger: Ledger;
  owner: ResourceOwner;
  log: Logger;
  /** The engine client; default {@link dockerClient}() (honours DOCKER_HOST). */
  docker?: Docker;
  /** Used by {@link DockerPlugin.refresh} for the process tree under the container's host PID. */
  tracker?: ProcessTracker;
  /** How long a fresh container must keep running to count as started. Default 300 ms. */
  startupCheckMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Errors

export class DockerError extends TetherError {}

/** The engine's socket cannot be reached. */
export class DockerEngineUnavailableError extends DockerError {}
export class DockerImageNotFoundError extends DockerError {}
export class DockerPortInUseError extends DockerError {}
export class DockerStartError extends DockerError {}

/** Where the engine is expected, as DOCKER_HOST would say it. */
export function dockerHostDescription(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** Docker's calls that answer a handle at once (its methods then call the engine). */
const DOCKER_HANDLES = new Set(['getContainer', 'getImage', 'getVolume', 'getNetwork', 'getExec', 'getService', 'getTask', 'getNode', 'getPlugin', 'getSecret', 'getConfig']);

/**
 * A client for the engine named by DOCKER_HOST (else the default local socket). dockerode (with
 * its dependencies) loads on the first call, as a chunk of its own in the bundles, so activation
 * does not load it: until then every method answers a promise, and `getContainer` & co. a handle
 * whose methods do; once loaded, this is the dockerode client itself.
 */
export function dockerClient(opts: Docker.DockerOptions = {}): Docker {
  let real: Docker | undefined;
  let loading: Promise<Docker> | undefined;
  const load = (): Promise<Docker> =>
    (loading ??= import('dockerode').then(
      (m) => (real = new ((m as { default?: typeof Docker }).default ?? (m as unknown as typeof Docker))(opts)),
      (err: unknown) => {
        loading = undefined;
        throw err;
      },
    ));
  type Callable = Record<string | symbol, (...a: unknown[]) => unknown>;
  const handle = (of: (d: Docker) => unknown) =>
    new Proxy({}, { get: (_t, k) => (k === 'then' ? undefined : (...a: unknown[]) => load().then((d) => (of(d) as Callable)[k]!(...a))) });
  return new Proxy({} as Docker, {
    get: (_t, k) => {
      if (real) {
        const v = (real as unknown as Record<string | symbol, unknown>)[k];
        return typeof v === 'function' ? v.bind(real) : v;
      }
      if (typeof k === 'symbol' || k === 'then' || k === 'modem') return undefined;
      if (DOCKER_HANDLES.has(k)) return (...a: unknown[]) => handle((d) => (d as unknown as Callable)[k]!(...a));
      return (...a: unknown[]) => load().then((d) => (d as unknown as Callable)[k]!(...a));
    },
  });
}

interface DockerApiError {
  code?: string;
  address?: string;
  statusCode?: number;
  reason?: string;
  json?: { message?: string } | null;
  message?: string;
}

function apiMessage(err: unknown): string {
  const e = err as DockerApiError;
  return (e?.json && typeof e.json === 'object' && e.json.message) || e?.message || String(err);
}

function socketOf(docker: Docker | undefined): string {
  const m = (docker as unknown as { modem?: { socketPath?: unknown; host?: string; port?: string } } | undefined)?.modem;
  if (m?.host) return `tcp://${m.host}${m.port ? `:${m.port}` : ''}`;
  if (typeof m?.socketPath === 'string') return `unix://${m.socketPath}`;
  return dockerHostDescription();
}

/**
 * Turns what dockerode throws into a {@link TetherError} with a cause and a remedy. `what` names
 * the plugin or the operation; `ctx` helps to name the image or the ports.
 */
export function toDockerError(err: unknown, what: string, ctx: { docker?: Docker; image?: string; ports?: string[] } = {}): TetherError {
  if (err instanceof TetherError) return err;
  const e = err as DockerApiError;
  const msg = apiMessage(err);
  if (e?.code && ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(e.code)) {
    const where = e.address ? (e.address.startsWith('/') ? `unix://${e.address}` : e.address) : socketOf(ctx.docker);
    const why =
      e.code === 'ENOENT'
        ? 'the socket does not exist'
        : e.code === 'ECONNREFUSED'
          ? 'nothing listens on it'
          : e.code === 'EACCES'
            ? 'permission denied'
            : e.code;
    return new DockerEngineUnavailableError(`${what}: the Docker engine is not reachable at ${where} (${why}, ${e.code})`, {
      remedy:
        e.code === 'EACCES'
          ? 'Add your user to the "docker" group (sudo usermod -aG docker $USER, then log in again) or point DOCKER_HOST at a socket you may use.'
          : 'Start Docker (sudo systemctl start docker, or open Docker Desktop; or run dockerd), or set DOCKER_HOST to the socket of a running engine (e.g. unix:///run/docker.sock).',
      cause: err,
    });
  }
  if (e?.statusCode === 404 && /no such image|pull access denied|repository .* not found|manifest .* not found/i.test(msg)) {
    const image = ctx.image ?? msg.replace(/^.*no such image:\s*/i, '');
    return new DockerImageNotFoundError(`${what}: image "${image}" is not on this machine (${msg}); Tether does not pull images`, {
      remedy: `Build or load it first (docker build -t ${image} ., docker load -i FILE.tar, or docker pull ${image} where a registry is reachable), or fix "docker.image" in .vscode/tether.json.`,
      exitCode: ExitCode.USAGE,
      cause: err,
    });
  }
  if (/port is already allocated|address already in use/i.test(msg)) {
    const port = /:(\d+)(?:\s|:|$)/.exec(msg.replace(/.*(?:Bind for|listen tcp\d?)\s*/i, ''))?.[1];
    return new DockerPortInUseError(`${what}: host port ${port ?? '(see message)'} is already in use (${msg})`, {
      remedy: `Stop whatever listens on it (ss -ltnp 'sport = :${port ?? 'PORT'}' shows it) or change "docker.ports" in .vscode/tether.json.`,
      cause: err,
    });
  }
  if (e?.statusCode === 409 && /already in use by container/i.test(msg)) {
    return new DockerError(`${what}: ${msg}`, {
      remedy: 'Another container holds that name; remove it (docker rm NAME) or let Tether clean up its orphans.',
      cause: err,
    });
  }
  return new DockerError(`${what}: the Docker engine refused: ${msg}`, {
    remedy: 'Check the plugin\'s "docker" settings in .vscode/tether.json and the engine\'s log.',
    cause: err,
  });
}

/** Resolves when the engine answers; throws {@link DockerEngineUnavailableError} otherwise. */
export async function checkEngine(docker: Docker, what = 'Docker'): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw toDockerError(err, what, { docker });
  }
}

// ---------------------------------------------------------------------------------------------
// Spec → create options

/** Parses the `ports` strings into Docker's ExposedPorts and PortBindings. */
export function parsePorts(ports: readonly string[]): {
  exposed: Record<string, object>;
  bindings: Record<string, Array<{ HostIp?: string; HostPort: string }>>;
} {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp?: string; HostPort: string }>> = {};
  for (const raw of ports) {
    const [spec, proto = 'tcp'] = raw.split('/');
    const parts = (spec ?? '').split(':');
    let hostIp: string | undefined;
    let hostPort = '';
    let containerPort: string;
    if (parts.length === 1) containerPort = parts[0]!;
    else if (parts.length === 2) [hostPort, containerPort] = [parts[0]!, parts[1]!];
    else [hostIp, hostPort, containerPort] = [parts.slice(0, -2).join(':'), parts.at(-2)!, parts.at(-1)!];
    if (!/^\d+$/.test(containerPort) || (hostPort && !/^\d+$/.test(hostPort)) || !/^(tcp|udp|sctp)$/.test(proto)) {
      throw new TetherError(`invalid port mapping "${raw}"`, {
        remedy: 'Write ports as "HOST:CONTAINER", "IP:HOST:CONTAINER" or "CONTAINER", optionally with "/udp".',
        exitCode: ExitCode.USAGE,
      });
    }
    const key = `${containerPort}/${proto}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ ...(hostIp ? { HostIp: hostIp.replace(/^\[|\]$/g, '') } : {}), HostPort: hostPort });
  }
  return { exposed, bindings };
}

/** Volume strings with relative host paths made absolute (bare names stay named volumes). */
export function resolveVolumes(volumes: readonly string[], workspace: string): string[] {
  return volumes.map((v) => {
    const i = v.indexOf(':');
    if (i <= 0) return v;
    const host = v.slice(0, i);
    const rest = v.slice(i);
    if (host.startsWith('.') || host.startsWith('/') || host.startsWith('~')) {
      const abs = host.startsWith('~') ? path.join(process.env.HOME ?? '/', host.slice(1)) : path.resolve(workspace, host);
      return abs + rest;
    }
    return v;
  });
}

/** The container name Tether gives a run: unique per ledger record, readable in `docker ps`. */
export function containerNameFor(plugin: string, ledgerId: string): string {
  return `tether-${plugin}-${ledgerId.slice(0, 8)}`;
}

/** The options for POST /containers/create. */
export function createOptions(
  spec: DockerSpec,
  ctx: { workspace: string; ledgerId: string; ledgerTag: string; containerName: string; ledgerUid?: string },
): Docker.ContainerCreateOptions {
  const { exposed, bindings } = parsePorts(spec.ports ?? []);
  const cmd = spec.command ? [spec.command, ...(spec.args ?? [])] : spec.args?.length ? spec.args : undefined;
  return {
    name: ctx.containerName,
    Image: spec.image,
    ...(cmd ? { Cmd: cmd } : {}),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABEL_LEDGER_ID]: ctx.ledgerId,
      [LABEL_PLUGIN]: spec.name,
      [LABEL_WORKSPACE]: ctx.workspace,
      [LABEL_LEDGER]: ctx.ledgerTag,
      ...(ctx.ledgerUid ? { [LABEL_LEDGER_UID]: ctx.ledgerUid } : {}),
    },
    ExposedPorts: exposed,
    StopTimeout: spec.stopGraceSeconds ?? 5,
    HostConfig: {
      PortBindings: bindings,
      Binds: resolveVolumes(spec.volumes ?? [], ctx.workspace),
      ...(spec.network ? { NetworkMode: spec.network } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Stats and logs

export interface ContainerStatsSample {
  /** Share of one CPU, 0–100 × cores, as `docker stats` shows it; null when not yet measurable. */
  cpuPercent: number | null;
  /** Memory in use without the page cache, bytes. */
  memoryBytes: number;
  /** The container's memory limit (the host's memory when unlimited), bytes. */
  memoryLimitBytes: number;
  pids: number | null;
  at: string;
}

interface CpuSample {
  total: number;
  system: number;
  cpus: number;
}

function cpuSample(c: Docker.ContainerStats['cpu_stats'] | undefined): CpuSample | undefined {
  if (!c?.cpu_usage || typeof c.system_cpu_usage !== 'number' || !c.system_cpu_usage) return undefined;
  return { total: c.cpu_usage.total_usage, system: c.system_cpu_usage, cpus: c.online_cpus || c.cpu_usage.percpu_usage?.length || 1 };
}

/** CPU % between two samples, the way the Docker CLI computes it. */
export function cpuPercentBetween(prev: CpuSample | undefined, cur: CpuSample | undefined): number | null {
  if (!prev || !cur) return null;
  const dCpu = cur.total - prev.total;
  const dSys = cur.system - prev.system;
  if (dSys <= 0 || dCpu < 0) return null;
  return (dCpu / dSys) * cur.cpus * 100;
}

/** Converts one answer of the stats API; `prev` is the caller's previous sample, if any. */
export function statsFromApi(s: Docker.ContainerStats, prev?: CpuSample): { sample: ContainerStatsSample; cpu: CpuSample | undefined } {
  const cur = cpuSample(s.cpu_stats);
  const pre = cpuSample(s.precpu_stats) ?? prev;
  const m = s.memory_stats ?? ({} as Docker.ContainerStats['memory_stats']);
  const ms = (m?.stats ?? {}) as unknown as Record<string, number | undefined>;
  // cgroup v1: total_inactive_file; cgroup v2: inactive_file (what `docker stats` subtracts).
  const cache = ms.total_inactive_file ?? ms.inactive_file ?? 0;
  const usage = m?.usage ?? 0;
  const pids = (s as unknown as { pids_stats?: { current?: number } }).pids_stats?.current;
  return {
    sample: {
      cpuPercent: cpuPercentBetween(pre, cur),
      memoryBytes: Math.max(0, usage - (cache < usage ? cache : 0)),
      memoryLimitBytes: m?.limit ?? 0,
      pids: typeof pids === 'number' ? pids : null,
      at: s.read ?? new Date().toISOString(),
    },
    cpu: cur,
  };
}

/** Splits the multiplexed log stream of a container without a TTY into text. */
export function demuxLogs(buf: Buffer): string {
  let out = '';
  let i = 0;
  // Frames: [stream(1) 0 0 0 size(4 BE)] payload.
  while (i + 8 <= buf.length && buf[i]! <= 2 && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  if (i === 0) return buf.toString('utf8'); // a TTY container: raw text
  return out + buf.subarray(i).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// Finding containers

/** A container as the reconciler and the tree view see it. */
export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  /** created, running, paused, restarting, removing, exited, dead. */
  state: string;
  /** Docker's human status, e.g. "Up 3 minutes". */
  status: string;
  ports: string[];
  labels: Record<string, string>;
  /** Present on Tether's containers. */
  ledgerId?: string;
  plugin?: string;
  workspace?: string;
  ledgerTag?: string;
  /** The launching ledger's random id ({@link LABEL_LEDGER_UID}); absent on containers of older versions. */
  ledgerUid?: string;
}

function summarize(c: Docker.ContainerInfo): ContainerSummary {
  const labels = c.Labels ?? {};
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
    image: c.Image,
    state: c.State,
    status: c.Status,
    ports: (c.Ports ?? []).map((p) => (p.PublicPort ? `${p.IP ? `${p.IP}:` : ''}${p.PublicPort}:${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`)),
    labels,
    ...(labels[LABEL_LEDGER_ID] ? { ledgerId: labels[LABEL_LEDGER_ID] } : {}),
    ...(labels[LABEL_PLUGIN] ? { plugin: labels[LABEL_PLUGIN] } : {}),
    ...(labels[LABEL_WORKSPACE] ? { workspace: labels[LABEL_WORKSPACE] } : {}),
    ...(labels[LABEL_LEDGER] ? { ledgerTag: labels[LABEL_LEDGER] } : {}),
    ...(labels[LABEL_LEDGER_UID] ? { ledgerUid: labels[LABEL_LEDGER_UID] } : {}),
  };
}

/** True when a container carries this ledger's random id (never created here: a ledger without one has launched nothing with it). */
function isThisLedgersContainer(labels: Record<string, string>, ledger: Ledger): boolean {
  const uid = labels[LABEL_LEDGER_UID];
  if (!uid) return false;
  try {
    return uid === readLedgerIdentity(ledger.stateDir);
  } catch {
    return false;
  }
}

/** Every container (running or not) that Tether started for the ledger with this tag. */
export async function findTetherContainers(docker: Docker, ledgerTag: string): Promise<ContainerSummary[]> {
  try {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_LEDGER}=${ledgerTag}`] } });
    return list.map(summarize);
  } catch (err) {
    throw toDockerError(err, 'listing containers', { docker });
  }
}

/**
 * All containers, sorted into this ledger's (`managed`), another Tether ledger's (`foreign`)
 * and those Tether did not start (`unmanaged`: shown, never touched by cleanup).
 */
export async function listContainers(
  docker: Docker,
  ledgerTag: string,
): Promise<{ managed: ContainerSummary[]; foreign: ContainerSummary[]; unmanaged: ContainerSummary[] }> {
  let list: Docker.ContainerInfo[];
  try {
    list = await docker.listContainers({ all: true });
  } catch (err) {
    throw toDockerError(err, 'listing containers', { docker });
  }
  const all = list.map(summarize);
  return {
    managed: all.filter((c) => c.ledgerTag === ledgerTag),
    foreign: all.filter((c) => c.ledgerTag !== undefined && c.ledgerTag !== ledgerTag),
    unmanaged: all.filter((c) => c.ledgerTag === undefined),
  };
}

export interface OrphanContainer {
  container: ContainerSummary;
  /** The ledger record of the run, when the ledger still has it. */
  record?: LedgerResource;
  reason: string;
}

/**
 * Tether's containers of this ledger that nobody owns any more: their ledger record is gone or
 * ended, or the VS Code window that started them (on this host) no longer runs. A `cli` or
 * `detached` owner left them running on purpose: not orphans.
 */
export async function findOrphanContainers(
  docker: Docker,
  ledger: Ledger,
  opts: { hostname?: string; isAlive?: (owner: ProcessIdentity) => boolean } = {},
): Promise<OrphanContainer[]> {
  const host = opts.hostname ?? (await import('node:os')).hostname();
  const isAlive = opts.isAlive ?? isSameProcessAlive;
  const containers = await findTetherContainers(docker, ledger.tag);
  const body = ledger.read();
  const out: OrphanContainer[] = [];
  for (const c of containers) {
    const record = body.resources.find((r) => r.id === c.ledgerId);
    if (!record) {
      const ended = body.ended.some((r) => r.id === c.ledgerId);
      // Without a record here, only this ledger's random id makes it ours (the tag is a path hash).
      if (!ended && !isThisLedgersContainer(c.labels, ledger)) continue;
      out.push({ container: c, reason: ended ? 'its ledger record was closed, but the container is still there' : 'it is missing from the ledger' });
      continue;
    }
    const o = record.owner;
    if (!o) out.push({ container: c, record, reason: 'no owner on record' });
    else if (o.kind === 'vscode' && o.host === host && !isAlive(o)) {
      out.push({ container: c, record, reason: `the VS Code window that started it (pid ${o.pid}) is gone` });
    }
  }
  return out;
}

/** A container's output (stdout and stderr interleaved), the last `tail` lines. */
export async function containerLogs(docker: Docker, cid: string, opts: { tail?: number; since?: number; what: string }): Promise<string> {
  try {
    const buf = await docker.getContainer(cid).logs({
      stdout: true,
      stderr: true,
      follow: false,
      tail: opts.tail ?? 200,
      ...(opts.since ? { since: opts.since } : {}),
    });
    return demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
  } catch (err) {
    throw toDockerError(err, `${opts.what}: logs`, { docker });
  }
}

export interface ContainerStopReport {
  containerId: string;
  name: string;
  /** How it ended: it stopped on the stop signal, was killed after the timeout, or was not running. */
  stoppedBy: 'signal' | 'SIGKILL' | 'not-running';
  exitCode: number | null;
  removed: boolean;
  /** Docker knew no such container (it was already gone: nothing was signalled, no record was closed). */
  gone?: boolean;
  elapsedMs: number;
}

/**
 * Stops (stop signal, then SIGKILL after `graceSeconds`: Docker's own timeout) and removes one of
 * Tether's containers, and closes its ledger record. Refuses, with a {@link DockerError}, any
 * container that does not carry this ledger's tag: Tether never touches a stranger's container.
 * A container that is already gone counts as removed.
 */
export async function removeTetherContainer(
  docker: Docker,
  idOrName: string,
  opts: { ledger: Ledger; graceSeconds?: number; log?: Logger; reason?: string },
): Promise<ContainerStopReport> {
  const t0 = Date.now();
  const c = docker.getContainer(idOrName);
  let info: Docker.ContainerInspectInfo;
  try {
    info = await c.inspect();
  } catch (err) {
    if ((err as DockerApiError).statusCode === 404) {
      return { containerId: idOrName, name: idOrName, stoppedBy: 'not-running', exitCode: null, removed: true, gone: true, elapsedMs: Date.now() - t0 };
    }
    throw toDockerError(err, `container ${idOrName}`, { docker });
  }
  const labels = info.Config?.Labels ?? {};
  const name = info.Name.replace(/^\//, '');
  if (labels[LABEL_LEDGER] !== opts.ledger.tag) {
    throw new DockerError(
      `container ${name} (${info.Id.slice(0, 12)}) was not started by this Tether ledger (label ${LABEL_LEDGER} is ${labels[LABEL_LEDGER] ? `"${labels[LABEL_LEDGER]}"` : 'absent'}); Tether leaves it alone`,
      { remedy: 'Stop it yourself (docker stop NAME) if you mean to.' },
    );
  }
  const ledgerId = labels[LABEL_LEDGER_ID];
  const body = opts.ledger.read();
  const record = ledgerId ? body.resources.find((r) => r.id === ledgerId) : undefined;
  if (!record && !body.ended.some((r) => r.id === ledgerId) && !isThisLedgersContainer(labels, opts.ledger)) {
    throw new DockerError(
      `container ${name} (${info.Id.slice(0, 12)}) was started by another Tether ledger at the same state folder path (label ${LABEL_LEDGER_UID} is ${labels[LABEL_LEDGER_UID] ? `"${labels[LABEL_LEDGER_UID]}"` : 'absent'}); Tether leaves it alone`,
      { remedy: 'Stop it from the Tether that started it, or yourself (docker stop NAME) if you mean to.' },
    );
  }
  if (record) await opts.ledger.patch(record.id, { state: 'stopping' }, opts.reason ?? 'stop requested');
  const wasRunning = info.State.Running || info.State.Restarting || info.State.Paused;
  const grace = opts.graceSeconds ?? 5;
  try {
    if (wasRunning) {
      if (info.State.Paused) await c.unpause().catch(() => undefined);
      await c.stop({ t: grace });
    }
  } catch (err) {
    const e = err as DockerApiError;
    // 304: already stopped; 404: already gone.
    if (e.statusCode !== 304 && e.statusCode !== 404) {
      if (record) await opts.ledger.patch(record.id, { state: 'failed' }, `stop failed: ${apiMessage(err)}`).catch(() => undefined);
      throw toDockerError(err, `stopping ${name}`, { docker });
    }
  }
  let exitCode: number | null = null;
  let stoppedBy: ContainerStopReport['stoppedBy'] = 'not-running';
  try {
    const after = await c.inspect();
    exitCode = after.State.ExitCode ?? null;
    if (wasRunning) stoppedBy = exitCode === 137 && !after.State.OOMKilled ? 'SIGKILL' : 'signal';
  } catch {
    /* gone meanwhile (auto-remove) */
  }
  try {
    await c.remove({ force: true, v: true });
  } catch (err) {
    const e = err as DockerApiError;
    if (e.statusCode !== 404 && !(e.statusCode === 409 && /already in progress/i.test(apiMessage(err)))) {
      if (record) await opts.ledger.patch(record.id, { state: 'failed' }, `remove failed: ${apiMessage(err)}`).catch(() => undefined);
      throw toDockerError(err, `removing ${name}`, { docker });
    }
  }
  const report: ContainerStopReport = { containerId: info.Id, name, stoppedBy, exitCode, removed: true, elapsedMs: Date.now() - t0 };
  if (record) {
    await opts.ledger.end(
      record.id,
      'stopped',
      `container ${name} ${stoppedBy === 'SIGKILL' ? `killed after ${grace}s (ignored the stop signal)` : stoppedBy === 'signal' ? 'stopped' : 'was not running'}; removed`,
      { code: exitCode, signal: stoppedBy === 'SIGKILL' ? 'SIGKILL' : null, at: new Date().toISOString() },
    );
  }
  opts.log?.info(`${labels[LABEL_PLUGIN] ?? name}: container ${name} ${stoppedBy}, exit ${exitCode}, removed (${report.elapsedMs} ms)`);
  return report;
}

// ---------------------------------------------------------------------------------------------
// The plugin

/** What {@link DockerPlugin.refresh} learns from the engine. */
export interface ContainerStatus {
  containerId: string;
  name: string;
  image: string;
  /** Docker's state: created, running, exited... ('missing' when the container is gone). */
  state: string;
  running: boolean;
  hostPid: number | null;
  exitCode: number | null;
  ports: string[];
  /** The process tree under the host PID (with a tracker), root first. */
  processes: ProcessInfo[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DockerPlugin implements LifecycleAwarePlugin {
  readonly metadata: PluginMetadata;
  readonly docker: Docker;
  private record: LedgerResource | undefined;
  private hostProcess: ProcessIdentity | undefined;
  private last: ContainerStatus | undefined;
  private prevCpu: CpuSample | undefined;

  constructor(
    readonly spec: DockerSpec,
    private readonly deps: DockerDeps,
  ) {
    this.docker = deps.docker ?? dockerClient();
    this.metadata = new PluginMetadata({
      name: spec.name,
      category: 'docker',
      title: spec.title ?? spec.name,
      configSchema: configSchema.properties.plugins.items as unknown as Record<string, unknown>,
      executionMode: PluginExecutionMode.DOCKER,
      isConfigured: true,
      managesChildProcesses: false,
      managesExternalResources: true,
      ...(spec.description ? { description: spec.description } : {}),
    });
  }

  getExecutionMode(): PluginExecutionMode {
    return PluginExecutionMode.DOCKER;
  }

  get ledgerRecord(): LedgerResource | undefined {
    return this.record;
  }

  get containerId(): string | undefined {
    return this.record?.container?.id || undefined;
  }

  /** The last status read by {@link refresh} (or {@link start}). */
  get status(): ContainerStatus | undefined {
    return this.last;
  }

  /** Binds the plugin to an existing ledger record (after a reload, from the CLI, or to clean up an orphan). */
  attach(record: LedgerResource | undefined): void {
    this.record = record;
    this.hostProcess = record?.processes[0];
    this.last = undefined;
    this.prevCpu = undefined;
    this.sync();
  }

  private sync(): void {
    this.metadata.containerId = this.containerId;
    this.metadata.spawnedPids = this.getChildPids();
  }

  /** The container's main process as the host sees it, while that very process runs. */
  getChildPids(): number[] {
    const p = this.hostProcess;
    return p && isSameProcessAlive(p) ? [p.pid] : [];
  }

  getManagedResources(): Record<string, unknown> {
    const pid = this.getChildPids()[0];
    return {
      container_id: this.containerId ?? null,
      container_name: this.record?.container?.name ?? null,
      image: this.spec.image,
      ports: this.last?.ports.length ? this.last.ports : (this.spec.ports ?? []),
      state: this.last?.state ?? (this.record ? this.record.state : 'not_started'),
      is_running: pid !== undefined,
      pid: pid ?? null,
      server_url: this.spec.healthUrl ?? null,
      ledger_id: this.record?.id ?? null,
      docker_host: socketOf(this.docker),
    };
  }

  /** Stops and removes the container Tether started, and closes the ledger record. */
  async forceCleanup(): Promise<void> {
    await this.stop();
  }

  /** Creates and starts the container. Resolves once it kept running through the startup check. */
  async start(): Promise<LedgerResource> {
    const { ledger, workspace, log } = this.deps;
    const spec = this.spec;
    const what = spec.name;
    // Fail early and clearly: engine and image first, before anything is recorded.
    await checkEngine(this.docker, what);
    try {
      await this.docker.getImage(spec.image).inspect();
    } catch (err) {
      throw toDockerError(err, what, { docker: this.docker, image: spec.image });
    }
    const { randomUUID } = await import('node:crypto');
    const id = randomUUID();
    const containerName = containerNameFor(spec.name, id);
    const options = createOptions(spec, { workspace, ledgerId: id, ledgerTag: ledger.tag, containerName, ledgerUid: ledgerIdentity(ledger.stateDir) });
    // 1. Intent first: from here on a crash leaves a record and a labelled container to find.
    let record = await ledger.addIntent({
      id,
      kind: 'docker',
      plugin: spec.name,
      workspace,
      executionMode: PluginExecutionMode.DOCKER,
      owner: this.deps.owner,
      container: { id: '', name: containerName, image: spec.image },
    });
    this.record = record;
    let container: Docker.Container | undefined;
    const fail = async (err: unknown, note: string): Promise<never> => {
      const te = toDockerError(err, what, { docker: this.docker, image: spec.image, ...(spec.ports ? { ports: spec.ports } : {}) });
      if (container) await container.remove({ force: true, v: true }).catch(() => undefined);
      await ledger.end(record.id, 'failed', `${note}: ${te.message}`).catch(() => undefined);
      this.record = undefined;
      this.hostProcess = undefined;
      this.sync();
      throw te;
    };
    try {
      container = await this.docker.createContainer(options);
    } catch (err) {
      return fail(err, 'create failed');
    }
    record = (await ledger.patch(record.id, { container: { id: container.id, name: containerName, image: spec.image } }, `created container ${container.id.slice(0, 12)}`)) ?? record;
    this.record = record;
    try {
      await container.start();
    } catch (err) {
      return fail(err, 'start failed');
    }
    // 2. A container that exits at once did not start.
    await sleep(this.deps.startupCheckMs ?? 300);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await container.inspect();
    } catch (err) {
      return fail(err, 'inspect failed');
    }
    if (!info.State.Running) {
      const tail = (await this.logs({ tail: 5 }).catch(() => '')).trim();
      const how = `container exited at once with code ${info.State.ExitCode}${info.State.Error ? ` (${info.State.Error})` : ''}`;
      return fail(
        new DockerStartError(`${what}: ${how}${tail ? `; last output: ${tail.replace(/\n/g, ' | ')}` : ''}`, {
          remedy: 'Check the image, "command"/"args" and "docker" settings in .vscode/tether.json; the container was removed.',
        }),
        how,
      );
    }
    const hostPid = info.State.Pid;
    const idn = hostPid ? identify(hostPid) : undefined;
    this.hostProcess = idn;
    record =
      (await ledger.patch(
        record.id,
        { state: 'running', processes: idn ? [{ ...idn, command: `container ${containerName}` }] : [] },
        `started container ${container.id.slice(0, 12)}, host pid ${hostPid}`,
      )) ?? record;
    this.record = record;
    this.last = statusFromInspect(info, []);
    this.sync();
    log.info(`${spec.name}: started container ${containerName} (${container.id.slice(0, 12)}) from ${spec.image}, host pid ${hostPid} (ledger ${record.id})`);
    return record;
  }

  /** Re-reads the container's state and host PID (and its process tree, given a tracker). */
  async refresh(): Promise<ContainerStatus | undefined> {
    const cid = this.containerId;
    if (!cid) return (this.last = undefined);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(cid).inspect();
    } catch (err) {
      if ((err as DockerApiError).statusCode === 404) {
        this.hostProcess = undefined;
        this.last = { containerId: cid, name: this.record?.container?.name ?? cid, image: this.spec.image, state: 'missing', running: false, hostPid: null, exitCode: null, ports: [], processes: [] };
        this.sync();
        return this.last;
      }
      throw toDockerError(err, this.spec.name, { docker: this.docker });
    }
    const hostPid = info.State.Running ? info.State.Pid : 0;
    if (!hostPid) this.hostProcess = undefined;
    else if (this.hostProcess?.pid !== hostPid || !isSameProcessAlive(this.hostProcess)) this.hostProcess = identify(hostPid);
    let processes: ProcessInfo[] = [];
    if (this.deps.tracker && this.hostProcess && this.record) {
      const snap = await this.deps.tracker.snapshot([{ id: this.record.id, known: [this.hostProcess] }]);
      processes = snap.get(this.record.id) ?? [];
    }
    this.last = statusFromInspect(info, processes);
    this.sync();
    return this.last;
  }

  /** CPU and memory from the engine's stats API (one answer, not a stream). */
  async stats(): Promise<ContainerStatsSample | undefined> {
    const cid = this.containerId;
    if (!cid) return undefined;
    try {
      // With a previous sample of our own, a one-shot answer is enough (and immediate);
      // the first call lets the engine take two samples (about a second).
      const raw = await this.docker.getContainer(cid).stats({ stream: false, 'one-shot': this.prevCpu !== undefined });
      const { sample, cpu } = statsFromApi(raw, this.prevCpu);
      this.prevCpu = cpu;
      return sample;
    } catch (err) {
      throw toDockerError(err, `${this.spec.name}: stats`, { docker: this.docker });
    }
  }

  /** The container's output (stdout and stderr interleaved), the last `tail` lines. */
  async logs(opts: { tail?: number; since?: number } = {}): Promise<string> {
    const cid = this.containerId;
    return cid ? containerLogs(this.docker, cid, { ...opts, what: this.spec.name }) : '';
  }

  /** A shell command line that opens a shell in the container (for a terminal). */
  shellCommand(shell = 'sh'): { command: string; args: string[]; env: Record<string, string> } {
    return {
      command: 'docker',
      args: ['exec', '-it', this.containerId ?? '', shell],
      env: process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {},
    };
  }

  /** Stops (grace, then Docker's SIGKILL) and removes the container, and ends the ledger record. */
  async stop(graceSeconds?: number): Promise<ContainerStopReport | undefined> {
    const record = this.record;
    if (!record) return undefined;
    const cid = record.container?.id || record.container?.name;
    let report: ContainerStopReport | undefined;
    if (cid) {
      report = await removeTetherContainer(this.docker, cid, {
        ledger: this.deps.ledger,
        graceSeconds: graceSeconds ?? this.spec.stopGraceSeconds ?? 5,
        log: this.deps.log,
      });
    }
    // The record may not have been closed (no container was ever created): close it.
    if (this.deps.ledger.read().resources.some((r) => r.id === record.id)) {
      await this.deps.ledger.end(record.id, 'stopped', 'no container left');
    }
    this.record = undefined;
    this.hostProcess = undefined;
    this.last = undefined;
    this.prevCpu = undefined;
    this.sync();
    return report;
  }
}

function statusFromInspect(info: Docker.ContainerInspectInfo, processes: ProcessInfo[]): ContainerStatus {
  const ports: string[] = [];
  for (const [cport, binds] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    for (const b of binds ?? []) ports.push(`${b.HostIp && b.HostIp !== '0.0.0.0' ? `${b.HostIp}:` : ''}${b.HostPort}:${cport}`);
  }
  return {
    containerId: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config?.Image ?? info.Image,
    state: info.State.Status,
    running: info.State.Running,
    hostPid: info.State.Running ? info.State.Pid : null,
    exitCode: info.State.Running ? null : (info.State.ExitCode ?? null),
    ports: [...new Set(ports)],
    processes,
  };
}
