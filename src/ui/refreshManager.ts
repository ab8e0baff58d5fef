/**
 * Owns every timer and watcher that makes Tether poll. It polls on an interval while something
 * is tracked and the window is focused. Unfocused, it keeps polling at the slower background
 * interval only while something bills (so budgets, time limits, idle autostop and dead man's
 * switches hold while you work in another app) and only in one window (the leader); otherwise it
 * sleeps and wakes on events: the ledger changing (another window, the CLI), the config
 * changing, the window regaining focus, or a manual refresh (never debounced).
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Logger } from '../core/logger';
import { pollIntervalMs } from '../core/polling';
import type { RefreshReason, TetherModel } from './model';

export class RefreshManager implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private focused = vscode.window.state.focused;
  /** The interval the timer runs at (0: no timer). */
  private runningMs = 0;
  /** Requested polls wait for this (see {@link holdUntil}). */
  private ready: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly model: TetherModel,
    private readonly intervalMs: () => number,
    private readonly log: Logger,
    private readonly background: { intervalMs: () => number; isLeader: () => boolean } = { intervalMs: () => 30_000, isLeader: () => true },
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

  /** Holds every requested poll until `ready` settles (activation returns before the cloud keys are read; no poll runs without them). */
  holdUntil(ready: Promise<unknown>): void {
    this.ready = ready.catch(() => undefined);
  }

  /** Asks for a refresh. Events are coalesced for 150 ms; manual and action refreshes run now. */
  request(reason: RefreshReason): Promise<void> | void {
    if (reason === 'manual' || reason === 'action' || reason === 'startup') {
      return this.ready.then(() => this.model.refresh(reason)).then(() => undefined, (err: unknown) => this.log.error(err as Error));
    }
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.ready.then(() => this.model.refresh(reason)).catch((err: unknown) => this.log.error(err as Error)), 150);
  }

  /** The time until the next interval poll as things stand (what budgets project over). */
  currentIntervalMs(): number {
    return this.runningMs || (this.focused ? this.intervalMs() : this.background.intervalMs());
  }

  /** (Re)arms the interval: fast while focused and tracking, slow while unfocused and billing (leader only), else off. */
  schedule(): void {
    const billing = this.model.isBilling;
    const ms = pollIntervalMs(
      { focused: this.focused, tracked: this.model.hasTracked, billing, leader: !this.focused && billing ? this.background.isLeader() : true },
      this.intervalMs(),
      this.background.intervalMs(),
    );
    if (ms === this.runningMs) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.runningMs = ms;
    if (ms > 0) this.timer = setInterval(() => void this.model.refresh('interval').catch((err: unknown) => this.log.error(err as Error)), ms);
  }

  /** Applies a changed interval setting. */
  restart(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.runningMs = 0;
    this.schedule();
  }

  dispose(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    for (const s of this.subs) s.dispose();
  }
}
