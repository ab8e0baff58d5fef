/**
 * The window-close guard: when the last VS Code window closes while cloud resources still bill,
 * Tether leaves a record in its state folder (`closed-while-billing.json`); the next window (and
 * `tether status`) shows what kept billing meanwhile and what it cost, until the user dismisses it.
 *
 * "Last window" is decided with a registry of live windows (`windows/<pid>-<start time>`, one
 * file per extension host, checked by PID plus start time, so a crashed window never counts as
 * open). No VS Code here: the extension and the CLI share it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isSameProcessAlive, type ProcessIdentity } from '../core/procfs';
import type { Ledger, LedgerResource } from '../core/ledger';
import { accruedCost } from './cloud';
import { BILLING_RULES, billingNow, currentRate } from './costReport';
import { writeFileAtomic as writeAtomic } from '../core/atomicFile';

export const CLOSE_RECORD_FILE = 'closed-while-billing.json';

export interface CloseRecord {
  /** ISO time the last window closed (for a crash: when it was last seen alive). */
  closedAt: string;
  /** The last window did not close: its extension host died (crash, kill) and was found at the next start. */
  crashed?: boolean;
  host: string;
  /** What billed at that moment. */
  resources: Array<{ ledgerId: string; name: string; provider: string; perHour: number }>;
  perHour: number;
}

export interface CloseReport {
  closedAt: string;
  /** Hours between the close and `now`. */
  hoursSince: number;
  resources: Array<{ ledgerId: string; name: string; provider: string; perHour: number; stillBilling: boolean; spentSince: number }>;
  /** USD accrued by those resources since the close. */
  spentSince: number;
  /** One paragraph for a notification or the CLI. */
  message: string;
}


/** Live VS Code windows (extension hosts) sharing a state folder. */
export class WindowRegistry {
  private readonly dir: string;
  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'windows');
  }

  private file(me: ProcessIdentity): string {
    return path.join(this.dir, `${me.pid}-${me.startTime}`);
  }

  register(me: ProcessIdentity): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomic(this.file(me), JSON.stringify({ ...me, host: os.hostname(), since: new Date().toISOString() }));
  }

  unregister(me: ProcessIdentity): void {
    fs.rmSync(this.file(me), { force: true });
  }

  /** Marks this window alive now (the entry's mtime is its last sign of life). */
  heartbeat(me: ProcessIdentity): void {
    const now = new Date();
    try {
      fs.utimesSync(this.file(me), now, now);
    } catch {
      this.register(me);
    }
  }

  /**
   * Other windows: the live ones (PID and start time match), and the dead ones with when they
   * were last seen (their entries are removed).
   */
  sweep(me: ProcessIdentity): { alive: ProcessIdentity[]; dead: Array<{ id: ProcessIdentity; lastSeenMs: number }> } {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return { alive: [], dead: [] };
    }
    const alive: ProcessIdentity[] = [];
    const dead: Array<{ id: ProcessIdentity; lastSeenMs: number }> = [];
    for (const n of names) {
      const m = /^(\d+)-(\d+)$/.exec(n);
      if (!m) continue;
      const id = { pid: Number(m[1]), startTime: Number(m[2]) };
      if (id.pid === me.pid && id.startTime === me.startTime) continue;
      if (isSameProcessAlive(id)) {
        alive.push(id);
        continue;
      }
      const file = path.join(this.dir, n);
      try {
        dead.push({ id, lastSeenMs: fs.statSync(file).mtimeMs });
      } catch {
        /* removed meanwhile */
      }
      fs.rmSync(file, { force: true });
    }
    return { alive, dead };
  }

  /** Other windows still alive (PID and start time match); entries of dead ones are removed. */
  others(me: ProcessIdentity): ProcessIdentity[] {
    return this.sweep(me).alive;
  }
}


/**
 * Called as a window closes (after its own cleanup): unregisters it, and when no other window is
 * left and something still bills, writes the close record. Returns it, or undefined.
 */
export function recordWindowClose(ledger: Ledger, me: ProcessIdentity, nowMs = Date.now()): CloseRecord | undefined {
  const reg = new WindowRegistry(ledger.stateDir);
  reg.unregister(me);
  if (reg.others(me).length) return undefined;
  return writeCloseRecord(ledger, nowMs, false);
}

/** Writes the close record of what bills now, as of `closedAtMs`; undefined (nothing written) when nothing bills. */
function writeCloseRecord(ledger: Ledger, closedAtMs: number, crashed: boolean): CloseRecord | undefined {
  const resources = billingNow(ledger.read().resources);
  if (!resources.length) return undefined;
  const rec: CloseRecord = {
    closedAt: new Date(closedAtMs).toISOString(),
    ...(crashed ? { crashed: true } : {}),
    host: os.hostname(),
    resources,
    perHour: resources.reduce((s, r) => s + r.perHour, 0),
  };
  writeAtomic(path.join(ledger.stateDir, CLOSE_RECORD_FILE), JSON.stringify(rec, null, 1));
  return rec;
}

/**
 * Called as a window starts (before it registers): when no other window is alive but some died
 * without closing (a crash or a killed extension host) while cloud resources bill, writes the
 * close record as of when the last of them was seen alive. Returns it, or undefined.
 */
export function recordCrashedWindows(ledger: Ledger, me: ProcessIdentity): CloseRecord | undefined {
  const { alive, dead } = new WindowRegistry(ledger.stateDir).sweep(me);
  if (alive.length || !dead.length || readCloseRecord(ledger.stateDir)) return undefined;
  return writeCloseRecord(ledger, Math.max(...dead.map((d) => d.lastSeenMs)), true);
}

export function readCloseRecord(stateDir: string): CloseRecord | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(stateDir, CLOSE_RECORD_FILE), 'utf8')) as CloseRecord;
    return typeof rec.closedAt === 'string' && Array.isArray(rec.resources) ? rec : undefined;
  } catch {
    return undefined;
  }
}

export function dismissCloseRecord(stateDir: string): void {
  fs.rmSync(path.join(stateDir, CLOSE_RECORD_FILE), { force: true });
}

const usd = (n: number) => `$${n.toFixed(2)}`;

/** What the resources of a close record did and cost since the close (from the ledger alone). */
export function closeReport(rec: CloseRecord, ledger: Ledger, nowMs = Date.now()): CloseReport {
  const body = ledger.read();
  const closed = Date.parse(rec.closedAt);
  const find = (id: string): { r: LedgerResource; ended: boolean } | undefined => {
    const live = body.resources.find((x) => x.id === id);
    if (live) return { r: live, ended: false };
    const ended = body.ended.find((x) => x.id === id);
    return ended ? { r: ended, ended: true } : undefined;
  };
  const resources = rec.resources.map((x) => {
    const f = find(x.ledgerId);
    const rule = BILLING_RULES[x.provider];
    let spentSince = 0;
    let stillBilling = false;
    if (f && rule) {
      spentSince = Math.max(0, accruedCost(f.r, rule, f.ended, nowMs) - accruedCost(f.r, rule, false, closed));
      stillBilling = !f.ended && currentRate(f.r, rule) > 0;
    }
    return { ...x, stillBilling, spentSince };
  });
  const spentSince = resources.reduce((s, r) => s + r.spentSince, 0);
  const hoursSince = Math.max(0, (nowMs - closed) / 3_600_000);
  const still = resources.filter((r) => r.stillBilling);
  const when = new Date(closed).toISOString().slice(0, 16).replace('T', ' ');
  const opening = rec.crashed
    ? `VS Code's last window ended without closing (a crash or a killed extension host; last seen ${when} UTC, ${hoursSince.toFixed(1)} h ago), and ${rec.resources.length} cloud resource(s) kept billing `
    : `When the last VS Code window closed (${when} UTC, ${hoursSince.toFixed(1)} h ago), ${rec.resources.length} cloud resource(s) kept billing `;
  const message =
    opening +
    `(${usd(rec.perHour)}/h): ${rec.resources.map((r) => r.name).join(', ')}. They have cost ${usd(spentSince)} since. ` +
    (still.length ? `Still billing: ${still.map((r) => `${r.name} (${usd(r.perHour)}/h)`).join(', ')}.` : 'None of them bills any more.');
  return { closedAt: rec.closedAt, hoursSince, resources, spentSince, message };
}
