// Tether run from inside a plugin's tree (it inherited the plugin's TETHER_RESOURCE_ID) never
// signals itself or its ancestors: `tether stop NAME` / `tether down --all` from a shell of the
// plugin report, and that shell lives on, while the plugin's other processes are stopped.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSameProcessAlive, signalIfSame, type ProcessIdentity } from '../../src/core/procfs';
import { runCli } from '../helpers/cli';
import { tmpDir, waitFor, workspaceWith } from '../helpers/tmp';
import type { StatusReport } from '../../src/workspace/engine';

const root = path.resolve(__dirname, '..', '..');

/** The shell command line that runs the CLI the same way test/helpers/cli.ts does. */
function cliCommand(): string {
  const useDist = process.env.TETHER_REQUIRE_VSIX === '1' && !process.env.TETHER_TEST_SRC;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return useDist
    ? `${q(process.execPath)} ${q(path.join(root, 'dist', 'cli.js'))}`
    : `cd ${q(root)} && ${q(process.execPath)} --import tsx ${q(path.join(root, 'src', 'cliEntry.ts'))}`;
}

describe('Tether inside a plugin tree never signals itself or its ancestors', function () {
  this.timeout(120000);
  const leftovers: ProcessIdentity[] = [];
  afterEach(() => {
    for (const p of leftovers.splice(0)) signalIfSame(p, 'SIGKILL');
  });

  for (const how of [['stop', 'inner'], ['down', '--all']]) {
    it(`tether ${how.join(' ')} run by the plugin's own shell`, async () => {
      const stateDir = tmpDir('tether-self-state-');
      const env = { TETHER_STATE_DIR: stateDir };
      const ws = workspaceWith({ plugins: [] });
      const out = path.join(ws, 'out.txt');
      const go = path.join(ws, 'go');
      // The root shell: a sibling sleep, then (once the test says go) the CLI in the foreground,
      // then a line proving the shell outlived the CLI.
      const script = [
        'sleep 300 &',
        `while [ ! -e '${go}' ]; do sleep 0.1; done`,
        `(${cliCommand()} ${how.join(' ')} --workspace '${ws}') >'${out}' 2>&1`,
        `echo "cli exit $?" >>'${out}'`,
        `echo "shell alive" >>'${out}'`,
      ].join('\n');
      fs.writeFileSync(
        path.join(ws, '.vscode', 'tether.json'),
        JSON.stringify({
          plugins: [
            { name: 'inner', command: 'sh', args: ['-c', script] },
            { name: 'other', command: 'sleep', args: ['300'] },
          ],
        }),
      );
      for (const name of ['inner', 'other']) {
        const r = await runCli(['start', name, '--workspace', ws], env);
        assert.equal(r.code, 0, r.stderr);
      }
      const status = await waitFor(async () => {
        const r = await runCli(['status', '--json', '--workspace', ws], env);
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(r.stdout) as StatusReport;
        for (const p of s.plugins) leftovers.push(...p.processes);
        const inner = s.plugins.find((p) => p.name === 'inner')!;
        return inner.processes.some((p) => /^sleep 300/.test(p.command)) ? s : undefined;
      }, 30000, 'the inner sleep');
      const inner = status.plugins.find((p) => p.name === 'inner')!;
      const other = status.plugins.find((p) => p.name === 'other')!;
      const rootShell = inner.processes[0]!;
      const sibling = inner.processes.find((p) => /^sleep 300/.test(p.command))!;
      fs.writeFileSync(go, '');
      const text = await waitFor(() => {
        const t = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
        return /shell alive/.test(t) ? t : undefined;
      }, 60000, 'the shell to report after the CLI');
      assert.match(text, /cli exit 0\n/, text);
      assert.match(text, how[0] === 'stop' ? /stopped inner: \d+ process\(es\)/ : /stopped: .*inner/, text);
      assert.equal(isSameProcessAlive(sibling), false, 'the plugin\'s other process is stopped');
      if (how[0] === 'down') for (const p of other.processes) assert.equal(isSameProcessAlive(p), false, 'the other plugin is stopped');
      else assert.equal(other.processes.every(isSameProcessAlive), true, 'stop inner leaves the other plugin');
      // The shell ran on to its end (it was never signalled): it exits by itself.
      await waitFor(() => !isSameProcessAlive(rootShell), 30000, 'the shell to end by itself');
    });
  }
});
