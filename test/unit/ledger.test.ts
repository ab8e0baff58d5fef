import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Ledger, defaultStateDir } from '../../src/core/ledger';
import { LedgerCorruptError, LockTimeoutError } from '../../src/core/errors';
import { FileLock } from '../../src/core/fileLock';
import { identify } from '../../src/core/procfs';
import { PluginExecutionMode } from '../../src/core/protocols';
import { tmpDir } from '../helpers/tmp';

const intent = (plugin: string) => ({ kind: 'local' as const, plugin, executionMode: PluginExecutionMode.SUBPROCESS });

describe('ledger', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('tether-ledger-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records an intent, patches it with history, ends it, and survives a re-open', async () => {
    const l = new Ledger(dir);
    assert.deepEqual(l.read().resources, []);
    const r = await l.addIntent(intent('a'));
    assert.equal(r.state, 'starting');
    await l.patch(r.id, { state: 'running', processes: [{ pid: 1, startTime: 2 }] }, 'started');
    const again = new Ledger(dir).read();
    assert.equal(again.resources[0]!.state, 'running');
    assert.deepEqual(again.resources[0]!.history.map((h) => h.state), ['starting', 'running']);
    await l.end(r.id, 'stopped', 'done');
    const end = new Ledger(dir).read();
    assert.equal(end.resources.length, 0);
    assert.equal(end.ended[0]!.state, 'stopped');
    assert.equal(end.seq, 3);
  });

  it('keeps the previous version as ledger.json.bak and leaves no temporary files', async () => {
    const l = new Ledger(dir);
    await l.addIntent(intent('a'));
    await l.addIntent(intent('b'));
    const bak = fs.readFileSync(path.join(dir, 'ledger.json.bak'), 'utf8');
    assert.match(bak, /"plugin": "a"/);
    assert.doesNotMatch(bak, /"plugin": "b"/);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['ledger.json', 'ledger.json.bak']);
  });

  it('detects a torn (truncated) file and a changed byte, and never replaces it', async () => {
    const l = new Ledger(dir);
    await l.addIntent(intent('a'));
    const good = fs.readFileSync(l.file, 'utf8');
    for (const bad of [good.slice(0, good.length / 2), good.replace('"plugin": "a"', '"plugin": "b"'), '', '{"format":"other"}']) {
      fs.writeFileSync(l.file, bad);
      assert.throws(() => l.read(), LedgerCorruptError);
      await assert.rejects(l.addIntent(intent('c')), (e: Error) => e instanceof LedgerCorruptError && /tether ledger repair/.test((e as LedgerCorruptError).remedy));
      assert.equal(fs.readFileSync(l.file, 'utf8'), bad, 'the damaged file is left as it was');
    }
    const aside = await l.moveAside();
    assert.ok(fs.existsSync(aside));
    assert.deepEqual(l.read().resources, []);
  });

  it('serialises concurrent writers in separate processes: no update is lost', async function () {
    this.timeout(60000);
    const writers = 4;
    const each = 15;
    const procs = Array.from({ length: writers }, (_, w) =>
      spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'helpers', 'ledgerWriter.ts'), dir, String(each), `w${w}`], { stdio: 'inherit' }),
    );
    await Promise.all(procs.map((p) => new Promise((r) => p.on('exit', r))));
    const body = new Ledger(dir).read();
    assert.equal(body.resources.length, writers * each);
    assert.equal(body.seq, writers * each);
    assert.equal(new Set(body.resources.map((r) => r.plugin)).size, writers * each);
  });

  it('breaks a stale lock left by a crashed writer at once', async () => {
    // A real process that held the lock and died: its PID + start time no longer run.
    const crashed = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
    const pid = Number(crashed.stdout.trim());
    fs.writeFileSync(path.join(dir, 'ledger.lock'), JSON.stringify({ pid, startTime: 1, host: os.hostname(), nonce: 'x', since: new Date().toISOString(), what: 'crashed' }));
    const t0 = Date.now();
    await new Ledger(dir).addIntent(intent('a'));
    // Not the lock's 10 s wait for a live holder (src/core/fileLock.ts): the dead one was seen at once.
    assert.ok(Date.now() - t0 < 9000, `took ${Date.now() - t0} ms`);
    assert.equal(fs.existsSync(path.join(dir, 'ledger.lock')), false);
  });

  it('waits for a live holder and then names it when it gives up', async () => {
    const me = identify(process.pid)!;
    fs.writeFileSync(path.join(dir, 'ledger.lock'), JSON.stringify({ ...me, host: os.hostname(), nonce: 'live', since: 'now', what: 'tether cli' }));
    const lock = new FileLock(path.join(dir, 'ledger.lock'));
    await assert.rejects(lock.acquire({ timeoutMs: 200 }), (e: Error) => e instanceof LockTimeoutError && /tether cli \(pid \d+/.test(e.message));
    assert.ok(fs.existsSync(path.join(dir, 'ledger.lock')), 'a live holder keeps its lock');
  });

  it('uses TETHER_STATE_DIR, else the XDG data folder', () => {
    assert.equal(defaultStateDir({ TETHER_STATE_DIR: '/x/y' }), '/x/y');
    assert.equal(defaultStateDir({ XDG_DATA_HOME: '/data' }), '/data/tether');
    assert.equal(defaultStateDir({}), path.join(os.homedir(), '.local', 'share', 'tether'));
  });
});
