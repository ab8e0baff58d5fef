/** When a window polls: the pure rule behind the refresh manager. */
import * as assert from 'node:assert/strict';
import { pollIntervalMs, type PollingState } from '../../src/core/polling';

const at = (s: Partial<PollingState>) => pollIntervalMs({ focused: false, tracked: false, billing: false, leader: false, ...s }, 2000, 30000);

describe('polling rule', () => {
  it('focused: fast while something is tracked or bills, else idle', () => {
    assert.equal(at({ focused: true, tracked: true }), 2000);
    assert.equal(at({ focused: true, billing: true }), 2000);
    assert.equal(at({ focused: true }), 0);
  });
  it('unfocused: the leader keeps polling slowly while something bills, so budgets and switches hold', () => {
    assert.equal(at({ billing: true, leader: true }), 30000);
    assert.equal(at({ billing: true, leader: false }), 0, 'one poller for all windows');
    assert.equal(at({ tracked: true, leader: true }), 0, 'local processes alone wait for focus');
  });
});
