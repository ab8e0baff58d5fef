import { strict as assert } from 'node:assert';
import { lazyBackend } from '../../src/backends/lazy';
import type { Backend, BackendContext, DeclaredPlugin, PluginStatus, StatusInput } from '../../src/backends/backend';
import type { LedgerResource } from '../../src/core/ledger';
import type { PluginSpec } from '../../src/core/config';

const record = { id: 'r1', kind: 'fake', plugin: 'p' } as unknown as LedgerResource;
const spec = { name: 'p', command: 'x', args: [], cwd: '.', env: {} } as PluginSpec;

describe('a lazily loaded backend (src/backends/lazy.ts)', () => {
  it('loads its module once, on the first call that needs it, and hands the real plugin object to the real backend', async () => {
    let loads = 0;
    const seen: Array<DeclaredPlugin | undefined> = [];
    class RealPlugin implements DeclaredPlugin {
      rec: LedgerResource | undefined;
      async start() {
        return record;
      }
      attach(r: LedgerResource | undefined) {
        this.rec = r;
      }
      get ledgerRecord() {
        return this.rec;
      }
    }
    const real: Backend = {
      kind: 'fake',
      plugin: () => new RealPlugin(),
      observe: async () => {},
      status: async (i: StatusInput) => {
        seen.push(i.plugin);
        return { name: i.name } as PluginStatus;
      },
      stop: async (_r, o) => {
        seen.push(o.plugin);
        return undefined;
      },
      actions: () => ['start'],
    };
    const f = lazyBackend({ kind: 'fake', recordKinds: ['fake'], owns: () => true, actions: () => ['logs'] }, async () => {
      loads++;
      return () => real;
    });
    const ctx = { ledger: { read: () => ({ resources: [], ended: [] }) } } as unknown as BackendContext;
    const b = f.create(ctx);
    const p = b.plugin(spec);
    p.attach(record);
    assert.equal(loads, 0, 'making the plugin object and attaching it load nothing');
    assert.deepEqual(b.actions({} as PluginStatus), ['logs'], 'actions come from the registry entry, unloaded');
    await b.observe([]);
    assert.deepEqual(await b.unrecorded!(), [], 'no record of its kind: nothing to look for, nothing loaded');
    assert.equal(loads, 0);
    await b.status({ name: 'p', spec, plugin: p });
    await b.stop(record, { graceMs: 1000, plugin: p });
    assert.equal(loads, 1, 'loaded once');
    assert.ok(seen[0] instanceof RealPlugin && seen[1] === seen[0], 'the real backend sees its own plugin object, the same each time');
    assert.equal((seen[0] as RealPlugin).rec, record, 'attached to the record given before it loaded');
    assert.equal(p.ledgerRecord, record);
  });
  it('tries a failed load again on the next call', async () => {
    let n = 0;
    const f = lazyBackend({ kind: 'fake', recordKinds: [], owns: () => true, actions: () => [] }, async () => {
      if (++n === 1) throw new Error('chunk missing');
      return () => ({ kind: 'fake', plugin: () => ({}) as DeclaredPlugin, observe: async () => {}, status: async () => ({ name: 'ok' }) as PluginStatus, stop: async () => undefined, actions: () => [] });
    });
    const b = f.create({} as BackendContext);
    await assert.rejects(b.status({ name: 'p' }), /chunk missing/);
    assert.equal((await b.status({ name: 'p' })).name, 'ok');
  });
});

describe('the ssh_config parser, loaded on first need (src/backends/ssh/hosts.ts)', () => {
  it('loads once and parses a config', async () => {
    const { loadSshConfigParser } = await import('../../src/backends/ssh/hosts');
    const a = await loadSshConfigParser();
    assert.equal(await loadSshConfigParser(), a);
    const cfg = a.parse('Host box\n  HostName 10.0.0.9\n  User ml\n');
    assert.equal((cfg.compute('box') as Record<string, string>).HostName, '10.0.0.9');
  });
});
