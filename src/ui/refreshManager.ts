/**
 * Owns every timer and watcher that makes Tether poll. It polls on an interval only while
 * something is tracked and the window is focused; otherwise it sleeps and wakes on events:
 * the ledger changing (another window, the CLI), the config changing, the window regaining
 * focus, or a manual refresh (never debounced).
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Logger } from '../core/logger';
import type { RefreshReason, TetherModel } from './model';

export class RefreshManager implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private focused = vscode.window.state.focused;

  constructor(
    private readonly model: TetherModel,
    private readonly intervalMs: () => number,
    private readonly log: Logger,
  ) {
    this.subs.push(
      vscode.window.onDidChangeWindowState((st) => {
        const was = this.focused;
        this.focused = st.focused;
        if (st.focused && !was) this.request('event');
        this.schedule();
      }),
      model.onDidChange(() => this.schedule()),
    );
  }

  /** Watches the ledger folder so changes by the CLI or another window show up at once. */
  watchStateDir(dir: string): void {
    this.watcher?.close();
    try {
      fs.mkdirSync(dir, { recursive: true });
      this.watcher = fs.watch(dir, (_event, file) => {
        if (file === 'ledger.json') this.request('event');
      });
      this.watcher.on('error', (err) => this.log.warn(`cannot watch ${dir}: ${err.message}`));
    } catch (err) {
      this.log.warn(`cannot watch ${dir}: ${(err as Error).message}`);
    }
  }

  /** Asks for a refresh. Events are coalesced for 150 ms; manual and action refreshes run now. */
  request(reason: RefreshReason): Promise<void> | void {
    if (reason === 'manual' || reason === 'action' || reason === 'startup') {
      return this.model.refresh(reason).then(() => undefined, (err: unknown) => this.log.error(err as Error));
    }
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.model.refresh(reason).catch((err: unknown) => this.log.error(err as Error)), 150);
  }

  /** (Re)arms the interval: on while something is tracked and the window is focused. */
  schedule(): void {
    const want = this.model.hasTracked && this.focused;
    if (want && !this.timer) {
      this.timer = setInterval(() => void this.model.refresh('interval').catch((err: unknown) => this.log.error(err as Error)), this.intervalMs());
    } else if (!want && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Applies a changed interval setting. */
  restart(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  dispose(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    for (const s of this.subs) s.dispose();
  }
}
