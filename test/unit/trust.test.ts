// A repository cannot change money or safety settings, and Restricted Mode never starts a
// workspace's commands (#13 item 8).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../../src/engine/engine';
import { Ledger } from '../../src/core/ledger';
import { tmpDir, workspaceWith } from '../helpers/tmp';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { scope?: string }> } | Array<{ properties: Record<string, { scope?: string }> }> };
  capabilities?: { untrustedWorkspaces?: { supported?: unknown; description?: unknown } };
};
const sections = Array.isArray(pkg.contributes.configuration) ? pkg.contributes.configuration : [pkg.contributes.configuration];
const settings: Record<string, { scope?: string }> = Object.assign({}, ...sections.map((s) => s.properties));

/** Settings that spend, cap or protect money, or decide what is killed or kept: never from a repository. */
const MONEY_AND_SAFETY = [
  'tether.budgets',
  'tether.idleAutostop',
  'tether.cloud.defaultTimeLimitHours',
  'tether.cloud.deadmanMinutes',
  'tether.cloud.deadmanAction',
  'tether.confirmDestructiveActions',
  'tether.cleanupOnExit',
  'tether.stateDirectory',
  'tether.cloud.apiUrls',
];

describe('workspace trust and setting scopes', () => {
  for (const key of MONEY_AND_SAFETY) {
    it(`${key} is application or machine scoped (a repository's .vscode/settings.json cannot set it)`, () => {
      assert.ok(settings[key], `${key} is contributed`);
      assert.ok(['application', 'machine'].includes(settings[key]!.scope ?? ''), `${key} has scope ${settings[key]!.scope ?? '(none: window)'}`);
    });
  }

  it('declares limited support for untrusted workspaces, saying what works', () => {
    const u = pkg.capabilities?.untrustedWorkspaces;
    assert.equal(u?.supported, 'limited');
    assert.equal(typeof u?.description, 'string');
    assert.match(String(u?.description), /Restricted Mode/);
    assert.match(String(u?.description), /never start/i);
  });

  it('an untrusted workspace never starts (or restarts) a plugin its tether.json declares; nothing is written', async () => {
    const stateDir = tmpDir('tether-trust-');
    const marker = path.join(stateDir, 'ran');
    const ws = workspaceWith({ plugins: [{ name: 'evil', command: 'touch', args: [marker] }] });
    let trusted = false;
    const engine = new Engine({ workspace: ws, stateDir, ownerKind: 'vscode', trusted: () => trusted });
    for (const act of [() => engine.start('evil'), () => engine.restart('evil')]) {
      await assert.rejects(act(), (e: Error) => /not trusted/.test(e.message) && /Restricted Mode/.test(e.message));
    }
    assert.equal(fs.existsSync(marker), false, 'the command never ran');
    const body = new Ledger(stateDir).read();
    assert.equal(body.resources.length + body.ended.length, 0, 'no intent was written');
    // Viewing still works.
    const status = await engine.status();
    assert.equal(status.plugins[0]?.name, 'evil');
    trusted = true;
    await engine.start('evil').catch(() => undefined); // `touch` exits at once: a failed start, but it ran
    assert.equal(fs.existsSync(marker), true, 'once trusted, it starts');
  });
});
