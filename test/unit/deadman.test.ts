import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isGoneState, readStat } from '../../src/core/procfs';
import {
  armDeadman,
  assertDeadmanId,
  buildArmScript,
  buildDisarmScript,
  buildPushScript,
  buildStatusScript,
  deadmanDir,
  deadmanStatus,
  defaultShutdownAction,
  disarmDeadman,
  pushDeadman,
  resolveCheckEvery,
  selfShutdownEffect,
  WATCHER_SCRIPT,
  type DeadmanConnection,
} from '../../src/backends/ssh/deadman';
import { shQuote } from '../../src/backends/ssh/remote';
import { sleep, tmpDir, waitFor } from '../helpers/tmp';

describe("dead man's switch: what a self-shutdown does to the bill", () => {
  it('only an AWS instance launched with InstanceInitiatedShutdownBehavior "terminate" ends its billing', () => {
    assert.equal(selfShutdownEffect('aws', { awsShutdownBehavior: 'terminate' }).endsBilling, true);
    assert.equal(selfShutdownEffect('aws', { awsShutdownBehavior: 'stop' }).endsBilling, false);
    assert.equal(selfShutdownEffect('aws').endsBilling, false, "EC2's default behaviour is stop");
    for (const p of ['lambda', 'runpod', 'vast'] as const) assert.equal(selfShutdownEffect(p).endsBilling, false, p);
  });

  it('says honestly what keeps billing, with the documentation it comes from', () => {
    const cases: Array<[ReturnType<typeof selfShutdownEffect>, RegExp[]]> = [
      [selfShutdownEffect('aws', { awsShutdownBehavior: 'terminate' }), [/terminates it/, /billing ends/]],
      [selfShutdownEffect('aws'), [/only STOPS/, /EBS volumes .*keep billing/, /InstanceInitiatedShutdownBehavior "terminate"/]],
      [selfShutdownEffect('lambda'), [/does NOT terminate/, /until it is terminated/, /budget and idle guards/]],
      [selfShutdownEffect('runpod'), [/volume disk/, /restarted/, /terminating the pod/]],
      [selfShutdownEffect('vast'), [/does not destroy/, /keeps paying for its storage/]],
    ];
    for (const [e, patterns] of cases) {
      for (const re of patterns) assert.match(e.text, re, e.provider);
      assert.ok(e.docs.length > 0 && e.docs.every((u) => /^https:\/\/docs\.(aws\.amazon\.com|lambda\.ai|runpod\.io|vast\.ai)\//.test(u)), e.provider);
      assert.ok(!e.text.includes('\n'), 'one paragraph');
    }
    assert.ok(selfShutdownEffect('aws').docs.some((u) => u.includes('API_RunInstances')));
    assert.ok(selfShutdownEffect('aws', { awsShutdownBehavior: 'terminate' }).docs.some((u) => u.includes('terminating-instances')));
    assert.throws(() => selfShutdownEffect('gcp' as never), /Unknown provider/);
  });

  it('the default action powers off as root or with passwordless sudo', () => {
    assert.match(defaultShutdownAction(), /^sudo -n shutdown -h now \|\| shutdown -h now/);
  });
});

describe("dead man's switch: scripts", () => {
  const scripts = (): Record<string, string> => ({
    arm: buildArmScript({ id: 'ledger-1', timeoutSec: 120, checkEverySec: 30, action: `echo "it's $HOME" \`x\` '\\'` }),
    push: buildPushScript('ledger-1'),
    status: buildStatusScript('ledger-1'),
    disarm: buildDisarmScript('ledger-1'),
    watcher: WATCHER_SCRIPT,
  });

  it('every generated script is valid sh (sh -n; also bash and busybox sh when present)', () => {
    const shells: string[][] = [['/bin/sh', '-n']];
    if (fs.existsSync('/usr/bin/dash')) shells.push(['/usr/bin/dash', '-n']);
    if (fs.existsSync('/bin/bash')) shells.push(['/bin/bash', '--posix', '-n']);
    if (fs.existsSync('/usr/bin/busybox')) shells.push(['/usr/bin/busybox', 'sh', '-n']);
    for (const [name, text] of Object.entries(scripts())) {
      assert.ok(!text.includes('@{'), `${name}: no unreplaced placeholder`);
      for (const [bin, ...args] of shells) {
        const r = spawnSync(bin!, args, { input: text, encoding: 'utf8' });
        assert.equal(r.status, 0, `${name} under ${bin}: ${r.stderr}`);
      }
    }
  });

  it('values are single-quoted data: the action and the id go in through shQuote', () => {
    const action = `echo "it's $HOME" \`x\``;
    const s = buildArmScript({ id: 'ledger-1', timeoutSec: 5, checkEverySec: 1, action });
    assert.ok(s.includes(`A=${shQuote(action)}\n`));
    assert.ok(s.includes(`D="$HOME/.tether/deadman/"'ledger-1'`));
    assert.equal(deadmanDir('ledger-1'), '.tether/deadman/ledger-1');
  });

  it('refuses ids that are not plain file names', () => {
    for (const id of ['', '.', '..', '../x', '.x', 'a/b', 'a b', "a'b", '$(id)', 'a\nb', 'x'.repeat(129)]) {
      assert.throws(() => assertDeadmanId(id), /Invalid dead man's switch id/, JSON.stringify(id));
      assert.throws(() => buildPushScript(id), /Invalid dead man's switch id/);
    }
    for (const id of ['0b6f0f5e-9c1e-4b6a-8d8e-2f0c1b2a3d4e', 'a', 'a.b_c-d', 'x'.repeat(128)]) assertDeadmanId(id);
  });

  it('check period: default min(30, timeout/4), at least 1; whole seconds', () => {
    assert.equal(resolveCheckEvery(2), 1);
    assert.equal(resolveCheckEvery(10), 2);
    assert.equal(resolveCheckEvery(600), 30);
    assert.equal(resolveCheckEvery(600, 5), 5);
    assert.equal(resolveCheckEvery(600, 0.2), 1);
    assert.throws(() => resolveCheckEvery(0), /timeoutSec/);
    assert.throws(() => resolveCheckEvery(Number.NaN), /timeoutSec/);
    assert.throws(() => resolveCheckEvery(10, -1), /checkEverySec/);
  });
});

/** Runs the scripts with a local /bin/sh (no SSH), HOME in a temporary folder, PATH as given. */
function localConnection(home: string, pathEnv: string): DeadmanConnection {
  return {
    exec: (command, opts) =>
      new Promise((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', command], { env: { HOME: home, PATH: pathEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(opts?.stdin ?? '');
      }),
  };
}

const running = (pid: number, startTime: number) => {
  const st = readStat(pid);
  return !!st && st.startTime === startTime && !isGoneState(st.state);
};

describe("dead man's switch: the watcher under a local sh (no SSH)", function () {
  this.timeout(20000);
  if (process.platform !== 'linux') return;
  let home: string;
  beforeEach(() => {
    home = tmpDir('tether-deadman-');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('without `stat -c` (a stat that refuses it) it falls back to whole seconds and still never fires early', async () => {
    const bin = path.join(home, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'stat'), '#!/bin/sh\necho "stat: illegal option -- c" >&2\nexit 1\n', { mode: 0o755 });
    const conn = localConnection(home, `${bin}:/usr/local/bin:/usr/bin:/bin`);
    const fired = path.join(home, 'fired');
    const armed = await armDeadman(conn, { id: 'nostat', timeoutSec: 1, checkEverySec: 1, action: `echo fired > ${shQuote(fired)}` });
    try {
      assert.ok(running(armed.pid, armed.startTime));
      const st = await deadmanStatus(conn, 'nostat');
      assert.equal(st.alive, true);
      assert.ok(st.lastPushAgeSec !== undefined && st.lastPushAgeSec < 1, `age ${st.lastPushAgeSec} (a whole-second mtime counts as the end of its second)`);
      const pushed = await pushDeadman(conn, 'nostat');
      const t0 = Date.now();
      assert.equal(pushed.alive, true);
      await waitFor(() => fs.existsSync(fired), 5000, 'the stand-in action');
      const latency = Date.now() - t0;
      assert.ok(latency >= 1000 - 50, `not before the timeout: ${latency} ms`);
      assert.ok(latency <= 1000 + 1000 + 1000 + 500, `within timeout + checkEvery + 1 s: ${latency} ms`);
      await waitFor(() => !running(armed.pid, armed.startTime), 2000, 'the watcher to exit');
      assert.ok((await deadmanStatus(conn, 'nostat')).fired);
    } finally {
      await disarmDeadman(conn, 'nostat');
    }
  });

  it('disarm while the watcher sleeps stops it at once; the stand-in action never runs', async () => {
    const conn = localConnection(home, '/usr/local/bin:/usr/bin:/bin');
    const fired = path.join(home, 'fired');
    const armed = await armDeadman(conn, { id: 'quick', timeoutSec: 1, checkEverySec: 1, action: `echo fired > ${shQuote(fired)}` });
    const d = await disarmDeadman(conn, 'quick');
    assert.equal(d.outcome, 'stopped');
    assert.ok(!running(armed.pid, armed.startTime));
    await sleep(1500);
    assert.ok(!fs.existsSync(fired));
    assert.ok(!fs.existsSync(path.join(home, '.tether', 'deadman', 'quick')));
  });
});
