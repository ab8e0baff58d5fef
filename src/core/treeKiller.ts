/**
 * Identity-safe stop of a whole process tree: SIGTERM to every process, a grace period,
 * SIGKILL to the survivors, then proof that none is left.
 *
 * Each signal goes to a PID only after re-reading its start time (see `signalIfSame`), so a
 * stranger that inherited a dead process's PID is never touched. Processes are signalled one
 * by one rather than by process group, because a group id is a PID too and can be reused.
 */
import { isSameProcessAlive, isSelfOrAncestor, selfAndAncestors, signalIfSame, type ProcessIdentity } from './procfs';

export interface StopOptions {
  /** How long processes get to exit after SIGTERM. Default 5000 ms. */
  graceMs?: number;
  /** How often to look again. Default 50 ms. */
  pollMs?: number;
  /** How long to wait for SIGKILLed processes to vanish. Default 3000 ms. */
  killWaitMs?: number;
  log?: (line: string) => void;
}

export interface StopReport {
  /** Every process that was part of the tree while stopping. */
  processes: ProcessIdentity[];
  /** Processes that exited after SIGTERM. */
  terminated: number;
  /** Processes that had to be SIGKILLed. */
  killed: number;
  /** Processes still alive at the end (should be empty). */
  survivors: ProcessIdentity[];
  /** Processes Tether was not allowed to signal (EPERM). */
  denied: ProcessIdentity[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = (p: ProcessIdentity) => `${p.pid}:${p.startTime}`;

/**
 * Stops every process `discover` reports. `discover` is called again while waiting, so that
 * children forked during shutdown are caught too; every identity it ever returned stays
 * tracked even after it is re-parented.
 */
export async function stopProcessTree(
  discover: () => Promise<ProcessIdentity[]>,
  opts: StopOptions = {},
): Promise<StopReport> {
  const graceMs = opts.graceMs ?? 5000;
  const pollMs = opts.pollMs ?? 50;
  const killWaitMs = opts.killWaitMs ?? 3000;
  const log = opts.log ?? (() => undefined);
  const all = new Map<string, ProcessIdentity>();
  const termed = new Set<string>();
  const killed = new Set<string>();
  const denied = new Map<string, ProcessIdentity>();

  const refresh = async (): Promise<ProcessIdentity[]> => {
    // Tether itself and its ancestors (it may run inside the tree it stops) are never part of it.
    const lineage = selfAndAncestors();
    for (const p of await discover()) if (!isSelfOrAncestor(p, lineage)) all.set(key(p), p);
    return [...all.values()].filter(isSameProcessAlive);
  };
  const send = (p: ProcessIdentity, sig: NodeJS.Signals, sent: Set<string>) => {
    if (sent.has(key(p))) return;
    const r = signalIfSame(p, sig);
    if (r === 'sent') {
      sent.add(key(p));
      log(`${sig} → pid ${p.pid}`);
    } else if (r === 'denied') {
      denied.set(key(p), p);
    }
  };

  let alive = await refresh();
  const deadline = Date.now() + graceMs;
  while (alive.length) {
    for (const p of alive) send(p, 'SIGTERM', termed);
    if (Date.now() >= deadline) break;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
    alive = await refresh();
  }
  const killDeadline = Date.now() + killWaitMs;
  while (alive.length) {
    for (const p of alive) send(p, 'SIGKILL', killed);
    if (Date.now() >= killDeadline) break;
    await sleep(pollMs);
    alive = await refresh();
  }
  const survivors = [...all.values()].filter(isSameProcessAlive);
  return {
    processes: [...all.values()],
    terminated: [...termed].filter((k) => !killed.has(k)).length,
    killed: killed.size,
    survivors,
    denied: [...denied.values()],
  };
}
