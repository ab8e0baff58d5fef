// A remote record outlives its host's reboots; remote identities (PID + ticks since boot) do not.
// The poll and stop scripts never take a recorded identity of a record made before the host's
// current boot for a live process (a stranger may hold that PID with the same tick count).
// The real scripts run on this machine's /bin/sh and /proc (this machine is the host).
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { buildPollScript, buildStopScript, parsePollOutput, parseStopOutput, type RemoteTracked } from '../../src/backends/ssh/remote';
import { bootTimeMs, identify, isSameProcessAlive, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';

const ID = 'b00710e5-0000-4000-8000-0000000000aa';
const runSh = (script: string) => execFileSync('/bin/sh', ['-s'], { input: script, encoding: 'utf8', timeout: 60_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('remote records from before the host\'s current boot', function () {
  this.timeout(60_000);
  let stranger: ProcessIdentity | undefined;
  beforeEach(async () => {
    const c = spawn('sleep', ['300'], { stdio: 'ignore' });
    for (let i = 0; !stranger && i < 100; i++) (stranger = identify(c.pid!)) || (await sleep(50));
    assert.ok(stranger);
  });
  afterEach(() => {
    if (stranger) signalIfSame(stranger, 'SIGKILL');
    stranger = undefined;
  });
  const tracked = (createdAtMs: number): RemoteTracked => ({ id: ID, known: [stranger!], createdAtMs } as RemoteTracked);

  it('the poll does not report, and the stop does not signal, a recorded identity of a record made an hour before this boot', () => {
    const old = tracked(bootTimeMs() - 3_600_000);
    const out = parsePollOutput(runSh(buildPollScript([old])));
    assert.ok(out.complete);
    assert.deepEqual((out.byId.get(ID) ?? []).map((p) => p.pid), [], 'not reported as the record\'s process');
    const stop = parseStopOutput(runSh(buildStopScript(old, 500)));
    assert.ok(stop.complete);
    assert.deepEqual(stop.processes, []);
    assert.ok(isSameProcessAlive(stranger!), 'the process was not signalled');
  });

  it('control: the same identity in a record made during this boot is reported', () => {
    const out = parsePollOutput(runSh(buildPollScript([tracked(Date.now() - 1000)])));
    assert.deepEqual((out.byId.get(ID) ?? []).map((p) => p.pid), [stranger!.pid]);
  });
});
