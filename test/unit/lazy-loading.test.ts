// Heavy code loads on first use (issue #14.7): the provider clients (LazyProvider), the AWS SDKs,
// ssh2 and dockerode are not loaded by creating Tether's objects, only by their first call.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createProviders, LazyProvider, type CloudAccountKind, type CloudAccounts } from '../../src/fleet/cloudAccounts';
import { silentLogger } from '../../src/core/logger';
import { Ledger } from '../../src/core/ledger';
import { CloudInstancePlugin } from '../../src/backends/cloud/cloudPlugin';
import { BILLING_RULES } from '../../src/backends/cloud/registry';
import type { CloudProvider } from '../../src/backends/cloud/provider';
import { checkEngine, dockerClient, DockerEngineUnavailableError } from '../../src/backends/docker/docker';
import { tmpDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');
const dead = 'http://127.0.0.1:9';
const accounts: CloudAccounts = {
  lambda_labs: { apiKey: 'k', baseUrl: dead },
  runpod: { apiKey: 'k', baseUrl: dead },
  vast_ai: { apiKey: 'k', baseUrl: dead },
  aws: { region: 'us-east-1', endpoint: dead, credentials: { accessKeyId: 'id', secretAccessKey: 'secret' } },
};

/** Runs `code` (TypeScript, may await; `@src/` is the repository's src/) in a fresh node, and returns the npm packages it loaded. */
function packagesLoadedBy(code: string): string[] {
  const script = [
    '(async () => {',
    code.replaceAll('@src/', `${root}/src/`),
    '})().then(() => {',
    "  const seen = new Set(Object.keys(require.cache).map((f) => (f.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//) || [])[1]).filter(Boolean));",
    '  process.stdout.write(JSON.stringify([...seen]));',
    '  process.exit(0);',
    '}, (err) => { console.error(err); process.exit(1); });',
  ].join('\n');
  const file = path.join(tmpDir('tether-lazy-'), 'probe.ts');
  fs.writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('lazy loading of heavy code', function () {
  this.timeout(60000);

  it('creating the provider clients, an SSH pool and a Docker client loads none of the AWS SDKs, ssh2 or dockerode', () => {
    const loaded = packagesLoadedBy(`
      const { createProviders } = require('@src/fleet/cloudAccounts');
      const { SshConnectionPool } = require('@src/backends/ssh/connection');
      const { dockerClient, DockerPlugin } = require('@src/backends/docker/docker');
      const { silentLogger } = require('@src/core/logger');
      const ps = createProviders(${JSON.stringify(accounts)}, silentLogger);
      if (ps.length !== 4 || ps.some((p) => !p.title || !p.billing)) throw new Error('four providers with title and billing');
      new SshConnectionPool({ log: silentLogger });
      const d = dockerClient();
      d.getContainer('x');
      new DockerPlugin({ name: 'db', image: 'busybox' }, { workspace: '/tmp', ledger: {}, owner: {}, log: silentLogger, docker: d });`);
    const heavy = loaded.filter((p) => /^@aws-sdk\/|^@smithy\/|^ssh2$|^dockerode$|^docker-modem$/.test(p));
    assert.deepEqual(heavy, [], `loaded ${heavy.join(', ')}`);
  });

  it('a first call loads them', () => {
    const loaded = packagesLoadedBy(`
      const net = require('node:net');
      const { createProviders } = require('@src/fleet/cloudAccounts');
      const { silentLogger } = require('@src/core/logger');
      const { dockerClient } = require('@src/backends/docker/docker');
      const { SshConnectionPool } = require('@src/backends/ssh/connection');
      await Promise.all(createProviders(${JSON.stringify(accounts)}, silentLogger).map((p) => p.load()));
      await dockerClient({ socketPath: '/nonexistent/docker.sock' }).ping().catch(() => undefined);
      // An SSH "server" on 127.0.0.1 that hangs up: the connection gets as far as ssh2.
      const server = net.createServer((s) => s.destroy());
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const pool = new SshConnectionPool({ log: silentLogger, agent: null });
      await pool.get('nobody@127.0.0.1:' + server.address().port).exec('true').catch(() => undefined);
      pool.closeAll();
      server.close();`);
    for (const p of ['@aws-sdk/client-ec2', 'dockerode', 'ssh2']) assert.ok(loaded.includes(p), `${p} loaded (got ${loaded.join(', ')})`);
  });

  it('a LazyProvider answers like the client it loads: type, title, billing rule, stop where it can, Lambda\'s extra calls', async () => {
    const lazies = createProviders(accounts, silentLogger) as LazyProvider[];
    assert.deepEqual(lazies.map((p) => p.type), ['lambda_labs', 'runpod', 'vast_ai', 'aws']);
    for (const lazy of lazies) {
      const real = await lazy.load();
      assert.ok(!(real instanceof LazyProvider));
      assert.equal(await lazy.load(), real, 'loaded once');
      assert.equal(lazy.type, real.type);
      assert.equal(lazy.title, real.title);
      assert.equal(lazy.billing, real.billing);
      assert.equal(lazy.billing, BILLING_RULES[lazy.type]);
      for (const m of ['stop', 'checkLaunch', 'listSshKeys', 'addSshKey', 'start'] as const) {
        assert.equal(typeof (lazy as unknown as Record<string, unknown>)[m], typeof (real as unknown as Record<string, unknown>)[m], `${lazy.type}.${m}`);
      }
      const inst = { id: 'i-1', provider: real.type, gpuCount: 0, status: 'running' as const, rawStatus: 'running', region: 'us-east-1', metadata: {} };
      assert.equal(lazy.consoleUrl(inst), real.consoleUrl(inst));
      lazy.dispose();
    }
  });

  it('a LazyProvider that failed to load tries again on the next call', async () => {
    let n = 0;
    const real = { listInstances: async () => [] } as unknown as CloudProvider;
    const lazy = new LazyProvider('runpod' as CloudAccountKind, async () => {
      if (++n === 1) throw new Error('chunk missing');
      return real;
    });
    await assert.rejects(lazy.listInstances(), /chunk missing/);
    assert.deepEqual(await lazy.listInstances(), []);
    assert.equal(n, 2);
  });

  it('Lambda\'s launch check still refuses before the intent is written (through a LazyProvider)', async () => {
    const ledger = new Ledger(tmpDir('tether-lazy-state-'));
    const [lambda] = createProviders({ lambda_labs: { apiKey: 'k', baseUrl: dead } }, silentLogger);
    const plugin = new CloudInstancePlugin({ provider: lambda!, ledger, name: 'gpu' });
    await assert.rejects(plugin.provisionRemoteResource({ instanceType: 'gpu_1x_a10', region: 'us-east-1' }), /SSH key/i);
    assert.deepEqual(ledger.read().resources, [], 'no intent');
    assert.deepEqual(ledger.read().ended ?? [], []);
  });

  it('the lazy Docker client talks to the engine through dockerode once loaded, and says where it looked when there is none', async () => {
    const dir = tmpDir('tether-lazy-docker-');
    const sock = path.join(dir, 'docker.sock');
    const server = http.createServer((req, res) => {
      if (req.url?.endsWith('/_ping')) return void res.end('OK');
      if (req.url?.includes('/containers/json')) return void res.setHeader('content-type', 'application/json'), void res.end('[]');
      if (/\/containers\/missing\/json/.test(req.url ?? '')) {
        res.statusCode = 404;
        res.setHeader('content-type', 'application/json');
        return void res.end('{"message":"No such container: missing"}');
      }
      res.statusCode = 500;
      res.end();
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const d = dockerClient({ socketPath: sock });
      await assert.rejects(d.getContainer('missing').inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
      assert.equal(await d.ping().then(String), 'OK');
      assert.deepEqual(await d.listContainers({ all: true }), []);
      assert.equal((d.modem as { socketPath?: string }).socketPath, sock, 'the loaded client itself');
    } finally {
      server.close();
    }
    await assert.rejects(checkEngine(dockerClient({ socketPath: path.join(dir, 'none.sock') })), (e: Error) => e instanceof DockerEngineUnavailableError && e.message.includes(path.join(dir, 'none.sock')));
  });
});
