// The remote poll's incremental marker sweep reuses the markers of the previous poll for PIDs not
// allocated since. After the host's PID counter wraps between two polls (pid_max is often 32768;
// polls pause while VS Code is unfocused), a marked PID may now belong to a stranger: a cached
// marker must only count while the same process (PID + start time) holds the PID. Otherwise the
// stranger joins the resource's tree, is remembered by the monitor, and the next stop kills it.
// The real poll and stop scripts run on this machine's /bin/sh and /proc (this machine is the host).
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { buildPollScript, buildStopScript, parsePollOutput, parseStopOutput, type MarkerSweepState } from '../../src/backends/ssh/remote';
import { identify, isSameProcessAlive } from '../../src/core/procfs';
import { MARKER_ENV } from '../../src/core/processTracker';

const ID = 'a1b2c3d4-0000-4000-8000-00000000cafe';
const runSh = (script: string) => execFileSync('/bin/sh', ['-s'], { input: script, encoding: 'utf8', timeout: 60_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('remote marker cache: PID + start time', function () {
  this.timeout(60_000);

  it('a cached marker whose PID is now held by another process (PID reuse after a wrap) is dropped, never polled or stopped', async () => {
    const stranger = spawn('sleep', ['300'], { stdio: 'ignore' }); // no marker: a stranger
    try {
      let id = identify(stranger.pid!);
      for (let i = 0; !id && i < 100; i++) (await sleep(50), (id = identify(stranger.pid!)));
      assert.ok(id, 'the stranger runs');
      // The previous poll saw a marked process at this PID (it started earlier, then died) and the
      // counter has gone all the way round since, landing near where it was.
      const now = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
      const prev: MarkerSweepState = { lastPid: now, markers: [{ pid: id.pid, id: ID, startTime: id.startTime - 1 } as MarkerSweepState['markers'][number]] };
      const out = parsePollOutput(runSh(buildPollScript([{ id: ID, known: [] }], [], prev)));
      assert.ok(out.complete);
      assert.equal(out.sweep, 'incremental', 'the incremental path is the one under test');
      assert.deepEqual((out.byId.get(ID) ?? []).map((p) => p.pid), [], 'the stranger is not part of the resource');
      assert.ok(!(out.sweepState?.markers ?? []).some((m) => m.pid === id!.pid), 'nor carried to the next poll as a marker');
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('control: a process that really carries the marker is found by a full sweep and kept by the incremental one, then stopped', async () => {
    const own = spawn('sleep', ['300'], { stdio: 'ignore', env: { ...process.env, [MARKER_ENV]: ID } });
    try {
      let id = identify(own.pid!);
      for (let i = 0; !id && i < 100; i++) (await sleep(50), (id = identify(own.pid!)));
      assert.ok(id);
      const full = parsePollOutput(runSh(buildPollScript([{ id: ID, known: [] }])));
      assert.deepEqual((full.byId.get(ID) ?? []).map((p) => p.pid), [own.pid]);
      const again = parsePollOutput(runSh(buildPollScript([{ id: ID, known: [] }], [], full.sweepState)));
      assert.deepEqual((again.byId.get(ID) ?? []).map((p) => p.pid), [own.pid], `sweep ${again.sweep}`);
      const stop = parseStopOutput(runSh(buildStopScript({ id: ID, known: [] }, 2000)));
      assert.ok(stop.complete);
      assert.ok(!isSameProcessAlive(id) || /Z/.test(fs.readFileSync(`/proc/${id.pid}/stat`, 'utf8').split(') ')[1]!.slice(0, 1)));
    } finally {
      own.kill('SIGKILL');
    }
  });

  it('the poll reads the host\'s last PID whole under dash and busybox sh (a sysctl file read byte by byte gives its first digit)', () => {
    const before = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    const out = parsePollOutput(runSh(buildPollScript([])));
    assert.ok(out.sweepState, 'the poll reports it');
    assert.ok(out.sweepState.lastPid >= before || out.sweepState.lastPid < 300 /* wrapped meanwhile */, `reported ${out.sweepState.lastPid}, ns_last_pid was ${before}`);
    assert.ok(String(out.sweepState.lastPid).length >= Math.min(String(before).length, 3), `reported ${out.sweepState.lastPid}, ns_last_pid was ${before}`);
  });
});
