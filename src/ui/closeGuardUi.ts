/**
 * The window-close guard in the editor (the logic is src/fleet/closeGuard.ts): this window is
 * registered (PID + start time) and beats every minute; a window that died without closing is
 * turned into a record at start; the last window to close leaves one; and the next start shows it
 * (notification, Cloud row, badge) until the user dismisses it.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { Ledger } from '../core/ledger';
import { identify } from '../core/procfs';
import { WindowRegistry, dismissCloseRecord, recordCrashedWindows, recordWindowClose } from '../fleet/closeGuard';
import type { TetherModel } from './model';

export class CloseGuard implements vscode.Disposable {
  private readonly me = identify(process.pid);
  private readonly beat: NodeJS.Timeout | undefined;
  private readonly command: vscode.Disposable;

  constructor(
    private readonly stateDir: () => string,
    private readonly log: vscode.LogOutputChannel,
    refresh: () => unknown,
  ) {
    this.command = vscode.commands.registerCommand('tether.dismissCloseReport', async () => {
      dismissCloseRecord(this.stateDir());
      await refresh();
    });
    const me = this.me;
    if (!me) return;
    try {
      // A window that died without closing (crash, killed extension host) left no record: make it now.
      const crashed = recordCrashedWindows(new Ledger(stateDir()), me);
      if (crashed) log.warn(`the last window ended without closing at about ${crashed.closedAt}, while ${crashed.resources.length} cloud resource(s) billed`);
      new WindowRegistry(stateDir()).register(me);
    } catch (err) {
      log.error(`close guard: ${describeError(err)}`);
    }
    // The registry entry's mtime is this window's last sign of life (for the crash case above).
    this.beat = setInterval(() => {
      try {
        new WindowRegistry(this.stateDir()).heartbeat(me);
      } catch {
        /* the state folder may be changing; the next beat retries */
      }
    }, 60_000);
  }

  /** This window polls in the background for everyone: the longest-running live window on this machine. */
  isLeader(): boolean {
    const me = this.me;
    if (!me) return true;
    try {
      return new WindowRegistry(this.stateDir())
        .others(me)
        .every((o) => o.startTime > me.startTime || (o.startTime === me.startTime && o.pid > me.pid));
    } catch {
      return true;
    }
  }

  /** At deactivation, after this window's own cleanup: the last window leaves a record if something bills. */
  onClose(): void {
    if (!this.me) return;
    try {
      const rec = recordWindowClose(new Ledger(this.stateDir()), this.me);
      if (rec) this.log.warn(`last window closing while ${rec.resources.length} cloud resource(s) bill ($${rec.perHour.toFixed(2)}/h): ${rec.resources.map((r) => r.name).join(', ')}`);
    } catch (err) {
      this.log.error(`close guard: ${describeError(err)}`);
    }
  }

  /** At start, after the first poll: what billed while no window was open. */
  async showAtStart(model: TetherModel, refresh: () => unknown): Promise<void> {
    const closed = model.snapshot.folders.find((f) => f.report?.closedWhileBilling)?.report?.closedWhileBilling;
    if (!closed) return;
    if (Date.now() - Date.parse(closed.closedAt) < 60_000) {
      // A reload, not a closed editor: nothing worth a notification.
      this.log.info(`close record from ${closed.closedAt} (under a minute ago, a reload): dismissed`);
      dismissCloseRecord(this.stateDir());
      await refresh();
      return;
    }
    this.log.warn(closed.message);
    void vscode.window.showWarningMessage(`Tether: ${closed.message}`, 'Show Instances', 'Cost Report', 'Dismiss').then(async (c) => {
      if (c === 'Show Instances') void vscode.commands.executeCommand('tether.resources.focus');
      if (c === 'Cost Report') void vscode.commands.executeCommand('tether.showCostReport');
      if (c === 'Dismiss') await vscode.commands.executeCommand('tether.dismissCloseReport');
    });
  }

  dispose(): void {
    if (this.beat) clearInterval(this.beat);
    this.command.dispose();
  }
}
