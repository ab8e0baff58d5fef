// A repository cannot change money or safety settings, and Restricted Mode never starts a
// workspace's commands (#13 item 8).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Engine } from '../../src/workspace/engine';
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
  // How often budgets, time limits, idle autostop and dead man's pushes run: a repository that
  // sets a huge interval switches them off (and past 2^31 ms Node fires the timer every 1 ms).
  'tether.pollIntervalSeconds',
  'tether.backgroundPollSeconds',
  // 0 would mean SIGKILL at once for API plugins and orphans.
  'tether.stopGraceSeconds',
];

/**
 * Guards read from the user's own settings in every window. `machine` scope is not enough for
 * them: in a remote window (code-server, Remote-SSH) VS Code ignores a machine-scoped value in the
 * local user settings, so a budget the user set would silently not apply.
 */
const GUARDS = [
  'tether.budgets',
  'tether.idleAutostop',
  'tether.cloud.defaultTimeLimitHours',
  'tether.cloud.deadmanMinutes',
  'tether.confirmDestructiveActions',
  'tether.cleanupOnExit',
  'tether.pollIntervalSeconds',
  'tether.backgroundPollSeconds',
  'tether.stopGraceSeconds',
];

describe('workspace trust and setting scopes', () => {
  for (const key of MONEY_AND_SAFETY) {
    it(`${key} is application or machine scoped (a repository's .vscode/settings.json cannot set it)`, () => {
      assert.ok(settings[key], `${key} is contributed`);
      assert.ok(['application', 'machine'].includes(settings[key]!.scope ?? ''), `${key} has scope ${settings[key]!.scope ?? '(none: window)'}`);
    });
  }

  for (const key of GUARDS) {
    it(`${key} is application scoped (it applies in remote windows too)`, () => {
      assert.equal(settings[key]?.scope, 'application');
    });
  }

  for (const key of ['tether.pollIntervalSeconds', 'tether.backgroundPollSeconds']) {
    it(`${key} has a maximum (budgets and dead man's switches keep running; no timer overflow)`, () => {
      const max = (settings[key] as { maximum?: number }).maximum;
      assert.ok(typeof max === 'number' && max > 0 && max * 1000 < 2 ** 31 - 1 && max <= 3600, `${key} maximum: ${max}`);
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

  it('an untrusted workspace\'s tether.json hosts are never connected to (no SSH login with the user\'s keys to a host a repository names)', async function () {
    this.timeout(60_000);
    // A plain TCP listener stands for the host: any connection at all is an SSH attempt.
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const stateDir = tmpDir('tether-trust-');
      const home = tmpDir('tether-trust-home-');
      const ws = workspaceWith({ hosts: [`someone@127.0.0.1:${port}`], plugins: [{ name: 'remote', command: 'sleep', args: ['1'], host: `other@127.0.0.1:${port}` }] });
      let trusted = false;
      const engine = new Engine({
        workspace: ws,
        stateDir,
        ownerKind: 'vscode',
        trusted: () => trusted,
        ssh: { resolve: { configPath: path.join(home, 'config'), homeDir: home, sshBinary: null }, knownHostsFiles: [path.join(home, 'known_hosts')], agent: null, connectTimeoutMs: 5000, readyTimeoutMs: 5000 },
      });
      try {
        const status = await engine.status();
        assert.equal(connections, 0, 'Restricted Mode: no connection to a host named by the repository');
        assert.ok(status.hosts.length >= 1, 'the hosts are still shown');
        for (const h of status.hosts) assert.match(h.error ?? '', /not trusted|Restricted Mode/, `${h.host}: ${h.error ?? '(no note)'}`);
        trusted = true;
        await engine.status();
        assert.ok(connections > 0, 'control: once trusted, the host is polled');
      } finally {
        engine.dispose();
      }
    } finally {
      server.close();
    }
  });
});
