// Review of ea3cc30 (the status-bar meter's floor): the floor may keep the meter from going back,
// but it must never invent spend. A mark made while nothing billed (or billed less) must not be
// ticked on at a rate that only started later.
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import '../helpers/vscodeStub';
import { TetherStatusBar } from '../../src/ui/statusBar';
import type { Snapshot, TetherModel } from '../../src/ui/model';

const vscode = createRequire(__filename)('vscode') as { window: Record<string, unknown>; MarkdownString: { prototype: Record<string, unknown> }; EventEmitter: new () => { event: unknown; fire(s: Snapshot): void } };
// The stub's MarkdownString has no appendMarkdown (the tooltip): enough of it for render().
vscode.MarkdownString.prototype.appendMarkdown ??= function (this: { value: string }, t: string) {
  this.value += t;
  return this;
};

function snap(at: number, spent: number, perHour: number, since = '2026-12-01T00:00:00.000Z'): Snapshot {
  return {
    seq: 1, at, folders: [], apiPlugins: [], orphans: [], running: perHour > 0 ? 1 : 0, costPerHour: perHour, costSoFar: spent, budgets: [], cloud: undefined,
    spend: { period: 'day', since, at, spent, perHour, byProvider: {} },
  } as Snapshot;
}

describe('review: the status bar meter floor never invents spend', () => {
  it('a rate that starts after the last render is not applied to the time before it', () => {
    const item = { text: '', show: () => undefined, dispose: () => undefined } as Record<string, unknown>;
    const saved = vscode.window.createStatusBarItem;
    const savedNow = Date.now;
    vscode.window.createStatusBarItem = () => item;
    const hour = 3_600_000;
    const t0 = Date.parse('2026-12-01T10:00:00.000Z');
    let now = t0;
    Date.now = () => now;
    const emitter = new vscode.EventEmitter();
    // 10:00: nothing bills; the day cost $1.00 so far; the meter renders it.
    const model = { snapshot: snap(t0, 1.0, 0), onDidChange: emitter.event } as unknown as TetherModel;
    const bar = new TetherStatusBar(model);
    try {
      assert.match(String(item.text), /\$1\.0000 today/);
      // The next render comes an hour later (a window that slept, or polled slowly in the
      // background): an $8/h instance was launched a minute before that poll, which reports
      // $1.00 + its first minute.
      now = t0 + hour;
      const spent = 1.0 + 8 / 60;
      const next = snap(now, spent, 8);
      (model as unknown as { snapshot: Snapshot }).snapshot = next;
      emitter.fire(next);
      assert.match(String(item.text), /\$1\.1333 today/, `the meter shows ${String(item.text)} while the day's spend is $${spent.toFixed(4)}`);
    } finally {
      bar.dispose();
      vscode.window.createStatusBarItem = saved;
      Date.now = savedNow;
    }
  });
});
