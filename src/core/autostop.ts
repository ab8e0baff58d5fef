/**
 * Idle autostop and time limits for billing resources, as a pure decision per poll (no I/O, no
 * clock of its own): the engine feeds it what the last poll saw, keeps the returned state in the
 * ledger (so a restart neither forgets an idle clock nor restarts it), and carries out the action.
 *
 * Idle means: the instance answered over SSH, it has GPUs, every GPU is below the utilisation
 * threshold, and no Tether plugin runs on it. Anything unknown (host unreachable, no nvidia-smi)
 * is *not* idle: Tether never terminates on a guess.
 */

export interface IdlePolicy {
  enabled: boolean;
  /** Minutes idle before acting. */
  idleMinutes: number;
  gpuUtilBelowPercent: number;
  /** Minutes before acting that the user is warned (and may cancel). */
  warnMinutes: number;
  /** What an idle instance gets: terminated, or stopped where the provider can stop (its disk keeps billing). */
  action?: 'terminate' | 'stop';
}

export const DEFAULT_IDLE_POLICY: IdlePolicy = { enabled: false, idleMinutes: 30, gpuUtilBelowPercent: 10, warnMinutes: 5 };

export interface IdleObservation {
  /** The host answered this poll. */
  reachable: boolean;
  /** GPU utilisation per GPU (null: unknown); undefined when the host reports no GPUs. */
  gpuUtil?: Array<number | null>;
  /** Tether plugins with live processes on the instance. */
  pluginsRunning: number;
}

/** What Tether keeps per resource in its ledger record (`remote.metadata.autostop`). */
export interface AutostopState {
  /** ms since the epoch the instance became idle; absent while busy or unknown. */
  idleSince?: number;
  /** The user cancelled an idle stop at this time: the idle period counts again from here. */
  idleClockFrom?: number;
  /** ms since the epoch: terminate at this time (a plain time limit). */
  timeLimitAt?: number;
  /** The warning already given for this deadline (ms), so it is given once. */
  warnedFor?: number;
}

export interface AutostopAction {
  kind: 'idle' | 'time-limit';
  phase: 'warn' | 'act';
  /** When Tether acts (ms since the epoch). */
  actAt: number;
  /** One sentence for the user and the ledger. */
  reason: string;
}

export function isIdle(o: IdleObservation, p: IdlePolicy): boolean {
  if (!o.reachable || !o.gpuUtil?.length || o.pluginsRunning > 0) return false;
  return o.gpuUtil.every((u) => u !== null && u < p.gpuUtilBelowPercent);
}

const minutes = (ms: number) => Math.round(ms / 60_000);

/**
 * One poll's decision for one resource: the new state and, when due, a warning or the action.
 * `observation` undefined: the resource is not reachable over SSH at all (only the time limit applies).
 */
export function evaluateAutostop(
  state: AutostopState,
  observation: IdleObservation | undefined,
  policy: IdlePolicy,
  nowMs: number,
): { state: AutostopState; action?: AutostopAction } {
  const next: AutostopState = { ...state };
  // The time limit comes first: it holds whatever the GPUs do.
  if (next.timeLimitAt !== undefined) {
    const at = next.timeLimitAt;
    const reason = `its time limit (${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} UTC) is reached`;
    if (nowMs >= at) return { state: next, action: { kind: 'time-limit', phase: 'act', actAt: at, reason } };
    if (nowMs >= at - policy.warnMinutes * 60_000 && next.warnedFor !== at) {
      next.warnedFor = at;
      return { state: next, action: { kind: 'time-limit', phase: 'warn', actAt: at, reason: `its time limit ends in ${minutes(at - nowMs)} min` } };
    }
  }
  if (!policy.enabled || !observation) {
    delete next.idleSince;
    return { state: next };
  }
  if (!isIdle(observation, policy)) {
    delete next.idleSince;
    return { state: next };
  }
  next.idleSince ??= nowMs;
  const from = Math.max(next.idleSince, next.idleClockFrom ?? 0);
  const at = from + policy.idleMinutes * 60_000;
  const why = `every GPU below ${policy.gpuUtilBelowPercent} % and no Tether plugin running for ${minutes(nowMs - next.idleSince)} min`;
  if (nowMs >= at) return { state: next, action: { kind: 'idle', phase: 'act', actAt: at, reason: `idle: ${why}` } };
  if (nowMs >= at - policy.warnMinutes * 60_000 && next.warnedFor !== at) {
    next.warnedFor = at;
    const verb = policy.action === 'stop' ? 'stops it (terminates it where the provider cannot stop)' : 'terminates it';
    return { state: next, action: { kind: 'idle', phase: 'warn', actAt: at, reason: `idle: ${why}; Tether ${verb} in ${minutes(at - nowMs)} min` } };
  }
  return { state: next };
}

/** The user's "keep it running": no idle action for another full idle period from now. */
export function snooze(state: AutostopState, nowMs: number): AutostopState {
  const { warnedFor: _, ...rest } = state;
  return { ...rest, idleClockFrom: nowMs };
}
