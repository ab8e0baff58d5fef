// A state folder another local user can write to is refused (like OpenSSH's StrictModes): records
// planted there would name this user's processes and `orphans --kill` would stop them.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { tmpDir, workspaceWith } from '../helpers/tmp';

describe('state folder permissions (CLI)', function () {
  this.timeout(120000);
  const ws = workspaceWith({ plugins: [{ name: 'a', command: 'sleep', args: ['1'] }] });

  it('a world-writable state folder: status, orphans --kill and budget set exit 2 naming chmod 700, and write nothing', async () => {
    const stateDir = tmpDir('tether-perm-state-');
    fs.chmodSync(stateDir, 0o777);
    for (const args of [['status'], ['orphans', '--kill'], ['budget', 'list'], ['budget', 'set', 'b', '--limit', '5', '--period', 'day']]) {
      const r = await runCli([...args, '--workspace', ws], { TETHER_STATE_DIR: stateDir });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`writable by every user \\(mode 777\\).*chmod 700 ${stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.deepEqual(fs.readdirSync(stateDir), [], `${args.join(' ')} wrote nothing`);
    }
  });

  it('a group-writable ledger.json in a 0700 folder is refused too; a 0700 folder with a 0600 ledger works', async () => {
    const stateDir = tmpDir('tether-perm-state-');
    const ok = await runCli(['status', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(ok.code, 0, ok.stderr);
    // Make a ledger through a real write, then open it up to the group.
    const start = await runCli(['start', 'a', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(start.code, 0, start.stderr);
    const ledger = path.join(stateDir, 'ledger.json');
    assert.equal(fs.statSync(ledger).mode & 0o777, 0o600);
    fs.chmodSync(ledger, 0o660);
    const before = fs.readFileSync(ledger, 'utf8');
    const bad = await runCli(['status', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /ledger\.json is writable by its group \(mode 660\).*chmod 600/);
    assert.equal(fs.readFileSync(ledger, 'utf8'), before);
    fs.chmodSync(ledger, 0o600);
    assert.equal((await runCli(['status', '--workspace', ws], { TETHER_STATE_DIR: stateDir })).code, 0);
  });

  it('a missing state folder is created 0700', async () => {
    const stateDir = path.join(tmpDir('tether-perm-parent-'), 'state');
    const r = await runCli(['status', '--workspace', ws], { TETHER_STATE_DIR: stateDir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
  });
});

describe('state folder permissions (VS Code model)', function () {
  this.timeout(60000);
  it('a world-writable state folder: the window says why (once) instead of failing to activate, and writes nothing', async () => {
    const { vscode } = await import('../helpers/vscodeStub');
    const { TetherModel } = await import('../../src/ui/model');
    const { silentLogger } = await import('../../src/core/logger');
    const stateDir = tmpDir('tether-perm-state-');
    fs.chmodSync(stateDir, 0o777);
    const shown: string[] = [];
    const win = vscode.window as unknown as { showErrorMessage: (m: string) => Promise<undefined> };
    const orig = win.showErrorMessage;
    win.showErrorMessage = async (m: string) => void shown.push(m);
    const model = new TetherModel(silentLogger, () => stateDir);
    try {
      model.setFolders([workspaceWith({ plugins: [] })]);
      model.setFolders([workspaceWith({ plugins: [] })]);
      assert.equal(shown.length, 1, shown.join('\n'));
      assert.match(shown[0]!, /writable by every user \(mode 777\).*chmod 700/);
      assert.deepEqual(fs.readdirSync(stateDir), []);
    } finally {
      win.showErrorMessage = orig;
      model.dispose();
    }
  });
});
