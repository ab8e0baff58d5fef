// signalIfSame, the one place Tether's signals go through, never signals this process or an ancestor.
import { strict as assert } from 'node:assert';
import { identify, isSelfOrAncestor, selfAndAncestors, signalIfSame } from '../../src/core/procfs';

describe('never signal Tether itself or its ancestors', () => {
  it('selfAndAncestors walks from this process up to PID 1 by PID and start time', () => {
    const chain = selfAndAncestors();
    assert.deepEqual(chain[0], identify(process.pid));
    assert.deepEqual(chain[1], identify(process.ppid));
    assert.equal(chain[chain.length - 1]!.pid, 1);
    assert.ok(isSelfOrAncestor(identify(process.ppid)!));
    assert.ok(!isSelfOrAncestor({ pid: process.pid, startTime: chain[0]!.startTime + 1 }), 'the start time is part of the identity');
  });

  // SIGCONT only: harmless to running processes should a regression let the signal through.
  it('signalIfSame refuses this process and every ancestor', () => {
    for (const id of selfAndAncestors()) assert.equal(signalIfSame(id, 'SIGCONT'), 'self');
  });
});
