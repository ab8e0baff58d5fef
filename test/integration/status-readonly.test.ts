// `tether status` only reads: with a process of another ledger running (its marker is not this
// ledger's), the ledger file is left byte-for-byte alone, and status works on a read-only
// state folder. The real CLI, real processes; the read-only folder is a read-only bind mount
// in a private mount namespace of the CLI's own (root only: mounting needs CAP_SYS_ADMIN).
import '../helpers/vscodeStub';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { identify, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import type { StatusReport } from '../../src/workspace/engine';
import { runCli } from '../helpers/cli';
import { TetherModel } from '../../src/ui/model';
import { silentLogger } from '../../src/core/logger';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';

/** Every file of a folder with its bytes, mtime and inode. */
function fingerprint(dir: string): Record<string, { sha: string; mtimeNs: bigint; ino: bigint }> {
  const out: Record<string, { sha: string; mtimeNs: bigint; ino: bigint }> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = fs.statSync(p, { bigint: true });
    out[name] = { sha: st.isFile() ? createHash('sha256').update(fs.readFileSync(p)).digest('hex') : 'dir', mtimeNs: st.mtimeNs, ino: st.ino };
  }
  return out;
}

describe('tether status never writes unless something changed', function () {
  this.timeout(60_000);
  const leftovers: ProcessIdentity[] = [];
  afterEach(() => {
    for (const p of leftovers.splice(0)) signalIfSame(p, 'SIGKILL');
  });

  let mine: { ws: string; state: string };
  let foreign: { ws: string; state: string };
  beforeEach(async () => {
    mine = { ws: workspaceWith({ plugins: [{ name: 'mine', command: 'sleep', args: ['300'] }] }), state: tmpDir('tether-state-mine-') };
    foreign = { ws: workspaceWith({ plugins: [{ name: 'theirs', command: 'sleep', args: ['300'] }] }), state: tmpDir('tether-state-theirs-') };
    for (const [w, name] of [[mine, 'mine'], [foreign, 'theirs']] as const) {
      const r = await runCli(['start', name, '--workspace', w.ws, '--state-dir', w.state]);
      assert.equal(r.code, 0, r.stderr);
      const pid = Number(/pid (\d+)/.exec(r.stdout)![1]);
      leftovers.push(await waitFor(() => identify(pid), 5000, `${name}'s process`));
    }
    // Settle: a first status may legitimately record what it learns (nothing should be left to learn).
    const settle = await runCli(['status', '--json', '--workspace', mine.ws, '--state-dir', mine.state]);
    assert.equal(settle.code, 0, settle.stderr);
  });

  it('leaves the ledger byte-identical (same bytes, mtime and inode) while another ledger\'s process runs', async () => {
    const before = fingerprint(mine.state);
    assert.ok(before['ledger.json'], 'the ledger exists');
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['status', '--json', '--workspace', mine.ws, '--state-dir', mine.state]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as StatusReport;
      assert.equal(s.plugins.find((p) => p.name === 'mine')?.state, 'running');
      assert.equal(s.orphans.length, 0, 'the other ledger\'s process is not adopted');
    }
    assert.deepEqual(fingerprint(mine.state), before);
  });

  it("the extension's poll leaves the ledger alone too", async () => {
    const model = new TetherModel(silentLogger, () => mine.state);
    try {
      model.setFolders([mine.ws]);
      const before = fingerprint(mine.state);
      for (let i = 0; i < 3; i++) {
        const snap = await model.refresh('interval');
        assert.equal(snap.folders[0]?.error, undefined);
        assert.equal(snap.folders[0]?.report?.plugins.find((p) => p.name === 'mine')?.state, 'running');
      }
      // The window leads the policy tick: its lease heartbeat (policy-leader.json, src/fleet/leader.ts)
      // is the one file a poll renews. The ledger and everything else stay as they were.
      const lease = (f: Record<string, unknown>) => Object.fromEntries(Object.entries(f).filter(([k]) => !k.startsWith('policy-leader.json')));
      const after = fingerprint(mine.state);
      assert.ok(after['policy-leader.json'], 'the window took the policy lease');
      assert.deepEqual(lease(after), lease(before));
    } finally {
      model.dispose();
    }
  });

  it('works on a read-only state folder (EROFS on any write)', async () => {
    assert.equal(process.getuid?.(), 0, 'this test mounts a read-only bind mount: run it as root');
    const dir = mine.state;
    // A private mount namespace: the read-only mount exists only for the CLI run, never leaks.
    const prefix = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', dir];
    const probe = await runCli(['--version'], {}, { prefix: ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && touch "$0/x" 2>&1; exec "$@"', dir] });
    assert.equal(probe.code, 0, probe.stderr);
    assert.match(probe.stdout, /Read-only file system/, 'the mount really is read-only');
    assert.ok(!fs.existsSync(path.join(dir, 'x')));
    const before = fingerprint(dir);
    const r = await runCli(['status', '--json', '--workspace', mine.ws, '--state-dir', dir], {}, { prefix });
    assert.equal(r.code, 0, `status failed on a read-only state folder: ${r.stderr}`);
    const s = JSON.parse(r.stdout) as StatusReport;
    assert.equal(s.plugins.find((p) => p.name === 'mine')?.state, 'running');
    const human = await runCli(['status', '--workspace', mine.ws, '--state-dir', dir], {}, { prefix });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /mine\s+running/);
    assert.deepEqual(fingerprint(dir), before);
  });
});
