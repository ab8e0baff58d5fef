/**
 * Keeps the dead man's switches of Tether's cloud instances: a switch requested for an instance
 * (in its ledger record, `remote.metadata.deadman`) is armed over SSH once the instance is up
 * and reachable, pushed forward while Tether runs (at most every timeout / 4, one round trip),
 * re-armed if its watcher vanished (a reboot), and reported when it fired. The switch itself
 * lives on the instance (src/backends/ssh/deadman.ts): it acts when Tether goes silent.
 */
import { TetherError, describeError } from '../core/errors';
import type { Ledger, LedgerResource } from '../core/ledger';
import type { Logger } from '../core/logger';
import { armDeadman, defaultShutdownAction, disarmDeadman, pushDeadman } from '../backends/ssh/deadman';
import type { SshHostMonitor } from '../backends/ssh/remotePlugin';
import { cloudSshHost, deadmanOf, requestDeadman, type DeadmanState } from './cloud';

export interface DeadmanEvent {
  ledgerId: string;
  name: string;
  event: 'armed' | 'fired' | 're-armed' | 'error';
  detail: string;
}

export class DeadmanKeeper {
  private readonly lastPush = new Map<string, number>();

  constructor(
    private readonly ledger: Ledger,
    private readonly ssh: () => SshHostMonitor,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** The command run on the instance when the switch fires (tests pass a harmless stand-in). */
    private readonly action: () => string = defaultShutdownAction,
    /** The SSH host spec of a cloud record (the engine's, so the switch uses the same connection as its polls). */
    private readonly hostOf: (r: LedgerResource) => string | undefined = (r) => cloudSshHost(r),
  ) {}

  private async setState(id: string, state: DeadmanState | undefined): Promise<void> {
    await this.ledger.update((b) => {
      const r = b.resources.find((x) => x.id === id);
      if (!r?.remote) return;
      const { deadman: _, ...rest } = r.remote.metadata;
      r.remote.metadata = state ? { ...rest, deadman: { ...state } } : rest;
    }, `dead man's switch of ${id}`);
  }

  /** Asks for a switch on an instance (armed at the next tend once it is reachable). */
  async request(ledgerId: string, minutes: number): Promise<void> {
    this.lastPush.delete(ledgerId);
    await requestDeadman(this.ledger, ledgerId, minutes, this.now());
  }

  /** Removes the switch from the instance (identity-checked) and from the record. */
  async disarm(ledgerId: string): Promise<string> {
    const rec = this.ledger.read().resources.find((r) => r.id === ledgerId);
    const st = rec ? deadmanOf(rec) : undefined;
    if (!rec || !st) return 'no dead man\'s switch was set';
    const host = this.hostOf(rec);
    let reason = 'the instance is not reachable over SSH: its watcher stays until the instance ends';
    if (host && st.armedAt) {
      try {
        reason = (await disarmDeadman(this.ssh().connection(host), rec.id)).reason;
      } catch (err) {
        reason = `could not reach the instance (${describeError(err)}): its watcher stays armed there`;
        throw new TetherError(`disarming the dead man's switch of ${rec.plugin} failed`, { remedy: reason });
      }
    }
    this.lastPush.delete(ledgerId);
    await this.setState(ledgerId, undefined);
    return reason;
  }

  /** One pass over every running instance with a switch: arm, push or report. */
  async tend(): Promise<DeadmanEvent[]> {
    const events: DeadmanEvent[] = [];
    for (const r of this.ledger.read().resources) {
      const st = deadmanOf(r);
      const host = st ? this.hostOf(r) : undefined;
      if (!st || !host || st.firedAt) continue;
      const conn = this.ssh().connection(host);
      try {
        if (!st.armedAt) {
          const a = await armDeadman(conn, { id: r.id, timeoutSec: st.timeoutSec, action: this.action() });
          await this.setState(r.id, { timeoutSec: st.timeoutSec, requestedAt: st.requestedAt, armedAt: a.armedAt.toISOString(), pid: a.pid, startTime: a.startTime });
          this.lastPush.set(r.id, this.now());
          this.log.info(`dead man's switch of ${r.plugin} armed on ${host}: ${Math.round(st.timeoutSec / 60)} min without Tether and it shuts down`);
          events.push({ ledgerId: r.id, name: r.plugin, event: 'armed', detail: host });
          continue;
        }
        const every = Math.min(60_000, (st.timeoutSec * 1000) / 4);
        if (this.now() - (this.lastPush.get(r.id) ?? 0) < every) continue;
        const p = await pushDeadman(conn, r.id);
        this.lastPush.set(r.id, this.now());
        if (p.fired) {
          await this.setState(r.id, { ...st, firedAt: p.fired.at.toISOString() });
          this.log.warn(`dead man's switch of ${r.plugin} fired at ${p.fired.at.toISOString()}`);
          events.push({ ledgerId: r.id, name: r.plugin, event: 'fired', detail: p.fired.at.toISOString() });
        } else if (!p.alive) {
          // Its watcher is gone (the instance rebooted, or someone killed it): arm it again.
          const a = await armDeadman(conn, { id: r.id, timeoutSec: st.timeoutSec, action: this.action() });
          await this.setState(r.id, { ...st, armedAt: a.armedAt.toISOString(), pid: a.pid, startTime: a.startTime });
          events.push({ ledgerId: r.id, name: r.plugin, event: 're-armed', detail: host });
        } else if (st.error) {
          const { error: _, ...ok } = st;
          await this.setState(r.id, ok);
        }
      } catch (err) {
        const line = describeError(err);
        if (line !== st.error) {
          await this.setState(r.id, { ...st, error: line });
          events.push({ ledgerId: r.id, name: r.plugin, event: 'error', detail: line });
        }
      }
    }
    return events;
  }
}
