// `tether budget` and `tether watch` through the real CLI, with no VS Code: a budget with
// auto-terminate set from the shell, an instance launched on the fake Lambda Cloud server,
// `tether watch --once` terminating it within its one tick and the ledger saying why; two watchers
// at once with one leader; the systemd user service where there is no systemd (as on this machine).
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeLambdaServer } from '../fakes/lambdaServer';
import { runCli } from '../helpers/cli';
import { sleep, tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';
import { Ledger, type LedgerBody } from '../../src/core/ledger';
import type { LeaderInfo } from '../../src/fleet/leader';

const root = path.resolve(__dirname, '..', '..');

/** A long-running `tether …` (same entry as runCli), its output collected as it comes. */
function startCli(args: string[], env: Record<string, string>): { p: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const dist = path.join(root, 'dist', 'cli.js');
  const argv = fs.existsSync(dist) && !process.env.TETHER_TEST_SRC ? [dist, ...args] : ['--import', 'tsx', path.join(root, 'src', 'cliEntry.ts'), ...args];
  const p = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return { p, out: () => out, err: () => err, exited };
}

describe('tether budget + tether watch (no VS Code; fake Lambda Cloud server)', function () {
  this.timeout(120000);
  let fake: FakeLambdaServer;
  let env: Record<string, string>;
  let ws: string;
  const children: ChildProcess[] = [];
  before(async () => {
    fake = new FakeLambdaServer({ bootMs: 200, terminateMs: 200 });
    await fake.start();
    ws = workspaceWith({ plugins: [] });
  });
  beforeEach(() => {
    env = { TETHER_STATE_DIR: tmpDir('tether-watch-'), LAMBDA_API_KEY: fake.apiKey, TETHER_LAMBDA_API_URL: fake.url };
  });
  afterEach(async () => {
    // Only the watchers this test started.
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  after(async () => {
    await fake?.stop();
  });

  it('a budget with auto-terminate set through the CLI: `tether watch --once` terminates the instance in one tick and the ledger records why', async () => {
    // Lambda bills from launch by the started minute: one minute at $0.75/h ($0.0125) is already past a $0.01 cap.
    // Launched before the cap is set: `tether provision` refuses a launch past a hard cap (provision-budget.test.ts).
    const launch = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'pricey', '--yes', '--workspace', ws], env);
    assert.equal(launch.code, 0, launch.stderr);
    const set = await runCli(['budget', 'set', 'hard cap', '--limit', '0.01', '--period', 'lifetime', '--provider', 'lambda', '--auto-terminate'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^added budget "hard cap": \$0\.01 per lifetime on lambda_labs, auto-terminate/);
    const running = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'pricey' && i.status === 'running');
    }, 20000, 'the instance running');
    // Nothing but the watcher terminates it: no VS Code, and `tether status` does not enforce budgets.
    assert.ok(!fake.requests.some((r) => /\/instance-operations\/terminate$/.test(r.path)), 'nothing terminated it before the watcher');
    const list = await runCli(['budget', 'list', '--json'], env);
    const listed = JSON.parse(list.stdout) as Array<{ name: string; spent: number; autoTerminate: boolean }>;
    assert.equal(listed[0]?.name, 'hard cap');
    assert.ok(listed[0]!.spent >= 0.0125 - 1e-9, `spent ${listed[0]!.spent}`);

    const once = await runCli(['watch', '--once', '--workspace', ws], env);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /leading the policy tick/);
    assert.match(once.stdout, /terminated pricey \(Lambda Cloud \S+\): budget "hard cap" \(\$0\.01 per lifetime\)/);
    // Within this one tick: the provider was asked to terminate it before the command returned.
    const term = fake.requests.filter((r) => r.method === 'POST' && /\/instance-operations\/terminate$/.test(r.path));
    assert.equal(term.length, 1);
    assert.deepEqual((term[0]!.body as { instance_ids: string[] }).instance_ids, [running.id]);
    assert.ok(fake.instances.get(running.id!)?.terminatedAt, 'the fake has it terminating');
    // The ledger says why.
    const b: LedgerBody = new Ledger(env.TETHER_STATE_DIR!).read();
    const rec = [...b.resources, ...b.ended].find((r) => r.id === running.ledgerId)!;
    assert.ok(rec, 'the record is still in the ledger (live or ended)');
    assert.ok(
      rec.history.some((h) => /terminated by budget "hard cap" \(\$0\.01 per lifetime\): \$0\.01 spent/.test(h.note ?? '')),
      `history: ${JSON.stringify(rec.history.map((h) => h.note))}`,
    );
  });

  it('a time limit reached while no editor is open: `tether watch --once` ends the instance and the ledger says why', async () => {
    // 0.0003 h ≈ 1 s.
    const launch = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'short', '--time-limit', '0.0003', '--yes', '--workspace', ws], env);
    assert.equal(launch.code, 0, launch.stderr);
    const running = await waitFor(async () => {
      const s = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
      return s.cloud.instances.find((i) => i.name === 'short' && i.status === 'running' && Date.parse(i.timeLimitAt ?? '') < Date.now());
    }, 20000, 'the instance running past its time limit');
    const once = await runCli(['watch', '--once', '--workspace', ws], env);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /time limit ended short: its time limit \(.*\) is reached/);
    assert.ok(fake.instances.get(running.id!)?.terminatedAt, 'terminated at the provider');
    const b = new Ledger(env.TETHER_STATE_DIR!).read();
    const rec = [...b.resources, ...b.ended].find((r) => r.id === running.ledgerId)!;
    assert.ok(rec.history.some((h) => /terminated by autostop: its time limit .* is reached/.test(h.note ?? '')), JSON.stringify(rec.history.map((h) => h.note)));
  });

  it('two watchers at once: only one leads (tether status names it); when it stops, the other takes over', async () => {
    const a = startCli(['watch', '--interval', '1', '--workspace', ws], env);
    children.push(a.p);
    await waitFor(() => /leading the policy tick/.test(a.out()), 30000, 'the first watcher leading');
    const b = startCli(['watch', '--interval', '1', '--workspace', ws], env);
    children.push(b.p);
    await waitFor(() => /not leading: policy tick: led by tether watch \(pid (\d+)/.exec(b.out()), 30000, 'the second watcher not leading');
    assert.match(b.out(), new RegExp(`led by tether watch \\(pid ${a.p.pid}\\)`));
    // Several ticks of both later (interval 1 s), still exactly one leader.
    await sleep(3000);
    const st = await runCli(['status', '--json', '--workspace', ws], env);
    const leader = (JSON.parse(st.stdout) as { policyLeader: LeaderInfo | null }).policyLeader;
    assert.equal(leader?.pid, a.p.pid);
    assert.equal(leader?.kind, 'watch');
    assert.equal(leader?.leading, true);
    assert.doesNotMatch(b.out(), /leading the policy tick/);
    const human = await runCli(['status', '--workspace', ws], env);
    assert.match(human.stdout, new RegExp(`policy tick: led by tether watch \\(pid ${a.p.pid}\\)`));
    // The leader stops (SIGTERM): it gives the lease up, and the other leads at its next tick.
    a.p.kill('SIGTERM');
    assert.equal(await a.exited, 0, a.err());
    await waitFor(() => /leading the policy tick/.test(b.out()), 30000, 'the second watcher taking over');
    const after = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as { policyLeader: LeaderInfo | null };
    assert.equal(after.policyLeader?.pid, b.p.pid);
    b.p.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.err());
    const none = await runCli(['status', '--workspace', ws], env);
    assert.match(none.stdout, /policy tick: nobody leads/);
  });

  it('a VS Code window that leads (its poll holds the lease) is not fought: `tether watch` stands by and takes over when the window goes', async () => {
    // Stands in for a window's poll: the same PolicyLease the model takes, kind "vscode", renewed every 2 s.
    const script = `const { PolicyLease } = require(${JSON.stringify(path.join(root, 'src', 'fleet', 'leader.ts'))});
      const l = new PolicyLease(process.env.TETHER_STATE_DIR, 'vscode');
      const beat = async () => { const r = await l.tryLead(2000); console.log(r.leader ? 'leading' : 'not leading'); };
      beat(); setInterval(beat, 2000);`;
    const win = spawn(process.execPath, ['--import', 'tsx', '-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(win);
    let out = '';
    win.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.startsWith('leading'), 30000, 'the stand-in window leading');
    const once = await runCli(['watch', '--once', '--workspace', ws], env);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, new RegExp(`not leading: policy tick: led by a VS Code window \\(extension host pid ${win.pid}\\)`));
    assert.doesNotMatch(out, /not leading/, 'the window kept the lease');
    win.kill('SIGKILL');
    await new Promise((r) => win.on('exit', r));
    const after = await runCli(['watch', '--once', '--workspace', ws], env);
    assert.match(after.stdout, /leading the policy tick/);
  });

  it('a leader killed without a goodbye (SIGKILL) is replaced at once: its PID + start time prove it gone', async () => {
    const a = startCli(['watch', '--interval', '60', '--workspace', ws], env);
    children.push(a.p);
    await waitFor(() => /leading the policy tick/.test(a.out()), 30000, 'the first watcher leading');
    a.p.kill('SIGKILL');
    await a.exited;
    const once = await runCli(['watch', '--once', '--workspace', ws], env);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /leading the policy tick/, 'the lease of a dead holder is free, though its heartbeat is fresh');
  });

  it('bad budgets are refused with a clear error, before anything is written', async () => {
    const file = path.join(env.TETHER_STATE_DIR!, 'policy.json');
    const cases: Array<[string[], RegExp]> = [
      [['budget', 'set', 'x', '--limit', '5', '--period', 'week'], /--period must be day, month or lifetime, got "week"/],
      [['budget', 'set', 'x', '--limit', '-5', '--period', 'day'], /--limit must be an amount of USD above 0 .*got "-5"/],
      [['budget', 'set', 'x', '--limit', '0', '--period', 'day'], /--limit must be an amount of USD above 0/],
      [['budget', 'set', 'x', '--limit', 'lots', '--period', 'day'], /--limit must be an amount of USD above 0 .*got "lots"/],
      [['budget', 'set', 'x', '--limit', '5', '--period', 'day', '--provider', 'nimbus'], /unknown provider "nimbus" — Use one of lambda_labs, runpod, vast_ai, aws/],
      [['budget', 'set', 'x', '--limit', '5', '--period', 'day', '--thresholds', '0.5,1.5'], /--thresholds must be fractions of the limit above 0 and at most 1/],
      [['budget', 'set', 'x', '--limit', '5', '--period', 'day', '--resource', 'no-such-box'], /no cloud resource of Tether's named "no-such-box"/],
      [['budget', 'set', 'x', '--period', 'day'], /needs --limit USD/],
      [['budget', 'set', '--limit', '5', '--period', 'day'], /needs exactly one NAME/],
      [['budget', 'rm', 'nope'], /no budget named "nope"/],
      [['autostop', 'set', '--gpu-below', '150'], /--gpu-below must be a percentage from 0 to 100, got "150"/],
      [['autostop', 'set', '--action', 'explode'], /--action must be terminate or stop/],
      [['limit', 'default', '-1'], /HOURS must be a number of hours of at least 0/],
      [['watch', '--interval', '0'], /--interval must be a number of seconds of at least 1/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.match(r.stderr, /^tether: .* — /);
      assert.equal(fs.existsSync(file), false, `${args.join(' ')} wrote nothing`);
    }
    // And valid edits round-trip through the one file.
    assert.equal((await runCli(['budget', 'set', 'monthly', '--limit', '300', '--period', 'month', '--thresholds', '0.9,0.5'], env)).code, 0);
    assert.equal((await runCli(['autostop', 'set', '--idle-minutes', '20', '--action', 'stop'], env)).code, 0);
    assert.equal((await runCli(['limit', 'default', '8'], env)).code, 0);
    const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { budgets: Array<{ thresholds: number[] }>; idleAutostop: { enabled: boolean; idleMinutes: number; action: string }; defaultTimeLimitHours: number };
    assert.deepEqual(p.budgets[0]!.thresholds, [0.5, 0.9]);
    assert.deepEqual([p.idleAutostop.enabled, p.idleAutostop.idleMinutes, p.idleAutostop.action], [true, 20, 'stop']);
    assert.equal(p.defaultTimeLimitHours, 8);
    assert.match((await runCli(['autostop', 'show'], env)).stdout, /^idle autostop on: after 20 min/);
    assert.equal((await runCli(['autostop', 'off'], env)).code, 0);
    assert.match((await runCli(['autostop', 'show'], env)).stdout, /^idle autostop off/);
    assert.match((await runCli(['limit', 'show'], env)).stdout, /^default time limit: 8 h/);
    // The default time limit reaches `tether provision`.
    const launch = await runCli(['provision', '--provider', 'lambda', '--type', 'gpu_1x_a10', '--region', 'us-east-1', '--ssh-key', 'laptop', '--name', 'limited-by-default', '--yes', '--json', '--workspace', ws], env);
    assert.equal(launch.code, 0, launch.stderr);
    const st = JSON.parse((await runCli(['status', '--json', '--workspace', ws], env)).stdout) as StatusReport;
    const v = st.cloud.instances.find((i) => i.name === 'limited-by-default')!;
    const ends = Date.parse(v.timeLimitAt ?? '') - Date.now();
    assert.ok(ends > 7.9 * 3_600_000 && ends <= 8 * 3_600_000, `ends in 8 h, got ${v.timeLimitAt}`);
    assert.equal((await runCli(['terminate', 'limited-by-default', '--workspace', ws], env)).code, 0);
    // A damaged policy file is reported, never silently replaced.
    fs.writeFileSync(file, '{"format": "tether-policy/1", "budgets": [{"name": "x", "limitUsd": -1, "period": "day"}]}');
    const bad = await runCli(['budget', 'list'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /policy file .* is damaged \(budgets\[0\]: "limitUsd" must be a number of USD above 0/);
    const refused = await runCli(['budget', 'set', 'y', '--limit', '1', '--period', 'day'], env);
    assert.equal(refused.code, 1);
    assert.match(fs.readFileSync(file, 'utf8'), /"limitUsd": -1/, 'left as it was');
  });

  describe('tether watch --install / --uninstall', () => {
    let home: string;
    let bin: string;
    beforeEach(() => {
      home = tmpDir('tether-xdg-');
      bin = tmpDir('tether-bin-');
    });
    /** A `systemctl` stand-in (this machine has no systemd user session): its calls are logged. */
    const fakeSystemctl = (script: string) => {
      fs.writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$@" >> ${JSON.stringify(path.join(bin, 'calls'))}\n${script}\n`, { mode: 0o755 });
    };
    const calls = () => (fs.existsSync(path.join(bin, 'calls')) ? fs.readFileSync(path.join(bin, 'calls'), 'utf8').trim().split('\n') : []);

    it('no user bus (as here): says so, prints how to run it instead, writes nothing', async () => {
      fakeSystemctl('echo "Failed to connect to bus: No medium found" >&2; exit 1');
      const r = await runCli(['watch', '--install', '--interval', '45'], { ...env, XDG_CONFIG_HOME: home, PATH: `${bin}:${process.env.PATH}` });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot install tether-watch\.service: systemd has no user session here \(`systemctl --user` says: Failed to connect to bus: No medium found\)/);
      assert.match(r.stdout, /Run it yourself instead/);
      assert.match(r.stdout, new RegExp(`nohup .* watch --state-dir ${env.TETHER_STATE_DIR} --interval 45`));
      assert.match(r.stdout, /@reboot /);
      assert.deepEqual(calls(), ['--user show-environment'], 'only asked whether systemd is there');
      assert.equal(fs.existsSync(path.join(home, 'systemd')), false, 'no unit written');
    });

    it('no systemctl at all: says so', async () => {
      // A PATH without systemctl (the CLI is run by absolute path).
      const r = await runCli(['watch', '--install'], { ...env, XDG_CONFIG_HOME: home, PATH: bin });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /systemctl is not installed \(this machine does not run systemd\)/);
      assert.match(r.stdout, /Run it yourself instead/);
    });

    it('with a user manager: writes the unit (no secret in it), enables it; --uninstall disables and removes it', async () => {
      fakeSystemctl('exit 0');
      const e = { ...env, XDG_CONFIG_HOME: home, PATH: `${bin}:${process.env.PATH}`, TETHER_LAMBDA_API_URL: 'http://127.0.0.1:9/v1 with space' };
      const r = await runCli(['watch', '--install', '--interval', '45'], e);
      assert.equal(r.code, 0, r.stderr);
      const unit = path.join(home, 'systemd', 'user', 'tether-watch.service');
      const text = fs.readFileSync(unit, 'utf8');
      assert.match(text, new RegExp(`^ExecStart=\\S+ .*watch --state-dir ${env.TETHER_STATE_DIR} --interval 45$`, 'm'));
      assert.match(text, /^Environment="TETHER_LAMBDA_API_URL=http:\/\/127\.0\.0\.1:9\/v1 with space"$/m);
      assert.match(text, new RegExp(`^EnvironmentFile=-${path.join(home, 'tether', 'watch.env')}$`, 'm'));
      assert.match(text, /^WantedBy=default\.target$/m);
      assert.ok(!text.includes(fake.apiKey), 'the API key is not in the unit');
      assert.match(r.stdout, /LAMBDA_API_KEY is set here but not copied into the unit/);
      assert.deepEqual(calls(), ['--user show-environment', '--user daemon-reload', '--user enable --now tether-watch.service']);
      const u = await runCli(['watch', '--uninstall'], e);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /removed tether-watch\.service .*stopped and disabled/);
      assert.equal(fs.existsSync(unit), false);
      assert.deepEqual(calls().slice(3), ['--user show-environment', '--user disable --now tether-watch.service', '--user daemon-reload']);
      const again = await runCli(['watch', '--uninstall'], e);
      assert.match(again.stdout, /no tether-watch\.service installed/);
    });
  });
});
