// The ledger lock when its holder line never reached the disk (#13 item 11): an empty or
// unreadable lock file is a crash's leftover once it is older than a few seconds.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ledger } from '../../src/core/ledger';
import { LockTimeoutError } from '../../src/core/errors';
import { FileLock, UNREADABLE_LOCK_STALE_MS } from '../../src/core/fileLock';
import { PluginExecutionMode } from '../../src/core/protocols';
import { tmpDir } from '../helpers/tmp';

const intent = (plugin: string) => ({ kind: 'local' as const, plugin, executionMode: PluginExecutionMode.SUBPROCESS });

describe('ledger lock: empty or unreadable holder', function () {
  this.timeout(60_000);
  let dir: string;
  let lockFile: string;
  beforeEach(() => {
    dir = tmpDir('tether-lock-');
    lockFile = path.join(dir, 'ledger.lock');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const age = (file: string, ms: number) => {
    const t = (Date.now() - ms) / 1000;
    fs.utimesSync(file, t, t);
  };

  for (const [what, text] of [
    ['an empty', ''],
    ['a half-written', '{"pid":12'],
    ['a holder-less', '{}'],
  ] as const) {
    it(`${what} lock file older than the threshold is stale: a write succeeds promptly`, async () => {
      fs.writeFileSync(lockFile, text);
      age(lockFile, UNREADABLE_LOCK_STALE_MS + 30_000);
      const t0 = Date.now();
      await new Ledger(dir).addIntent(intent('a'));
      const took = Date.now() - t0;
      assert.ok(took < 3000, `took ${took} ms (the lock gives up after 10 s)`);
      assert.equal(new Ledger(dir).read().resources.length, 1);
      assert.equal(fs.existsSync(lockFile), false, 'released afterwards');
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.stale') || f.endsWith('.tmp')), [], 'no leftovers');
    });
  }

  it('a fresh empty lock (its holder is writing it right now) is respected for a moment, then broken', async () => {
    fs.writeFileSync(lockFile, '');
    const lock = new FileLock(lockFile);
    await assert.rejects(lock.acquire({ timeoutMs: 300 }), (e: Error) => e instanceof LockTimeoutError);
    assert.ok(fs.existsSync(lockFile), 'the fresh lock was left alone');
    const t0 = Date.now();
    const release = await lock.acquire({ timeoutMs: UNREADABLE_LOCK_STALE_MS + 20_000 });
    release();
    const waited = Date.now() - t0;
    assert.ok(waited >= UNREADABLE_LOCK_STALE_MS - 1000, `waited ${waited} ms before breaking a fresh empty lock`);
  });
});
