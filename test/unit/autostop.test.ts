/** Idle autostop and time limits as pure decisions over a simulated clock. */
import * as assert from 'node:assert/strict';
import { evaluateAutostop, isIdle, snooze, type AutostopState, type IdleObservation, type IdlePolicy } from '../../src/core/autostop';

const MIN = 60_000;
const policy: IdlePolicy = { enabled: true, idleMinutes: 30, gpuUtilBelowPercent: 10, warnMinutes: 5 };
const idle: IdleObservation = { reachable: true, gpuUtil: [3, 0], pluginsRunning: 0 };

/** Runs one decision per poll from t0 for `minutes`, one poll a minute; returns the actions with their minute. */
function run(state: AutostopState, obs: (m: number) => IdleObservation | undefined, p: IdlePolicy, t0: number, minutes: number) {
  const out: Array<{ m: number; kind: string; phase: string }> = [];
  let s = state;
  for (let m = 0; m <= minutes; m++) {
    const r = evaluateAutostop(s, obs(m), p, t0 + m * MIN);
    s = r.state;
    if (r.action) {
      out.push({ m, kind: r.action.kind, phase: r.action.phase });
      if (r.action.phase === 'act') break;
    }
  }
  return { actions: out, state: s };
}

describe('idle autostop and time limits (simulated clock)', () => {
  const t0 = Date.parse('2026-11-23T10:00:00Z');

  it('what counts as idle: every GPU under the threshold, reachable, no plugin; unknown is never idle', () => {
    assert.equal(isIdle(idle, policy), true);
    assert.equal(isIdle({ ...idle, gpuUtil: [3, 12] }, policy), false, 'one busy GPU');
    assert.equal(isIdle({ ...idle, pluginsRunning: 1 }, policy), false, 'a Tether plugin runs there');
    assert.equal(isIdle({ ...idle, reachable: false }, policy), false, 'unreachable');
    assert.equal(isIdle({ reachable: true, pluginsRunning: 0 }, policy), false, 'no nvidia-smi');
    assert.equal(isIdle({ ...idle, gpuUtil: [null] }, policy), false, 'utilisation unknown');
  });

  it('idle for 30 min: warned once at 25, terminated at 30', () => {
    const { actions } = run({}, () => idle, policy, t0, 60);
    assert.deepEqual(actions, [
      { m: 25, kind: 'idle', phase: 'warn' },
      { m: 30, kind: 'idle', phase: 'act' },
    ]);
  });

  it('activity restarts the idle clock; disabled or unreachable never acts', () => {
    const busyAt20 = run({}, (m) => (m === 20 ? { ...idle, gpuUtil: [80, 0] } : idle), policy, t0, 60);
    assert.deepEqual(busyAt20.actions, [
      { m: 46, kind: 'idle', phase: 'warn' },
      { m: 51, kind: 'idle', phase: 'act' },
    ]);
    assert.deepEqual(run({}, () => idle, { ...policy, enabled: false }, t0, 180).actions, []);
    assert.deepEqual(run({}, () => ({ ...idle, reachable: false }), policy, t0, 180).actions, []);
    assert.deepEqual(run({}, () => undefined, policy, t0, 180).actions, []);
  });

  it('Keep Running after the warning gives another full idle period', () => {
    const first = run({}, () => idle, policy, t0, 25);
    assert.deepEqual(first.actions, [{ m: 25, kind: 'idle', phase: 'warn' }]);
    const snoozed = snooze(first.state, t0 + 26 * MIN);
    const { actions } = run(snoozed, () => idle, policy, t0 + 26 * MIN, 60);
    assert.deepEqual(actions, [
      { m: 25, kind: 'idle', phase: 'warn' },
      { m: 30, kind: 'idle', phase: 'act' },
    ]);
  });

  it('a time limit acts whatever the GPUs do, warned first; it survives a restart as plain state', () => {
    const state: AutostopState = { timeLimitAt: t0 + 90 * MIN };
    const busy = { ...idle, gpuUtil: [99] };
    const { actions } = run(JSON.parse(JSON.stringify(state)) as AutostopState, () => busy, { ...policy, enabled: false }, t0, 120);
    assert.deepEqual(actions, [
      { m: 85, kind: 'time-limit', phase: 'warn' },
      { m: 90, kind: 'time-limit', phase: 'act' },
    ]);
    const late = evaluateAutostop(state, undefined, policy, t0 + 200 * MIN);
    assert.equal(late.action?.phase, 'act', 'a deadline passed while nothing polled acts at the next poll');
  });
});
