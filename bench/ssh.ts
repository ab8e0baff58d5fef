/**
 * SSH part of `npm run bench`: 50 polls of a tracked remote tree over Tether's kept ssh2
 * connection against 50 fresh `ssh -o BatchMode=yes … host true` runs of the system OpenSSH
 * client, both against the same real sshd on 127.0.0.1 (started here, as in the SSH tests).
 * Goal: the kept connection is ≥ 20× faster. Needs root (sshd, a test user); skipped otherwise.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ledger } from '../src/core/ledger';
import { SshConnectionPool } from '../src/backends/ssh/connection';
import { RemoteSshPlugin, SshHostMonitor } from '../src/backends/ssh/remotePlugin';
import { startSshd, sshdUnavailableReason } from '../test/helpers/sshd';

const execFileP = promisify(execFile);
const ROUNDS = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<{ total: number; each: number[] }> {
  const each: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    each.push(performance.now() - t);
  }
  return { total: performance.now() - t0, each };
}

export async function benchSsh(): Promise<void> {
  console.log('\nSSH: 50 polls over the kept connection vs 50 fresh `ssh host true` (system OpenSSH client), same sshd on 127.0.0.1');
  const reason = sshdUnavailableReason();
  if (reason) {
    console.log(`  skipped: ${reason}`);
    return;
  }
  const sshd = await startSshd();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-ssh-'));
  const pool = new SshConnectionPool({ resolve: { configPath: sshd.sshConfig }, knownHostsFiles: [sshd.knownHosts], agent: null });
  const monitor = new SshHostMonitor(pool);
  const ledger = new Ledger(stateDir);
  const plugin = new RemoteSshPlugin(
    { name: 'bench-tree', command: 'sh', args: ['-c', 'sleep 300 & sleep 300 & sleep 300 & wait'], cwd: '.', env: {}, host: 'tether-test', stopGraceSeconds: 1 },
    { ledger, monitor, owner: { kind: 'cli', pid: process.pid, startTime: 0, host: os.hostname() } },
  );
  try {
    await plugin.start();
    let found = 0;
    for (let i = 0; i < 50 && found < 4; i++) found = (await monitor.poll(ledger.read().resources)).get(plugin.ledgerRecord!.id)?.length ?? 0;
    if (found !== 4) throw new Error(`expected a 4-process remote tree, found ${found}`);
    const records = ledger.read().resources;
    for (let i = 0; i < 5; i++) await monitor.poll(records); // warm-up
    const polls = await timed(ROUNDS, async () => {
      const m = await monitor.poll(records);
      if ((m.get(plugin.ledgerRecord!.id)?.length ?? 0) !== 4) throw new Error('poll lost the tree');
    });
    const conn = monitor.connection('tether-test');
    const bare = await timed(ROUNDS, () => conn.exec('true'));
    const sshArgs = [
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${sshd.knownHosts}`,
      '-o', 'IdentitiesOnly=yes',
      '-i', sshd.userKey,
      '-p', String(sshd.port),
      `${sshd.user}@127.0.0.1`,
      'true',
    ];
    await execFileP('ssh', sshArgs); // warm-up (and proof that it works)
    const fresh = await timed(ROUNDS, () => execFileP('ssh', sshArgs));
    const ratio = fresh.total / polls.total;
    console.log(`  tether poll (4-process tree, marker sweep, GPU probe), kept connection:    ${polls.total.toFixed(0)} ms total, median ${median(polls.each).toFixed(2)} ms`);
    console.log(`  tether bare command (\`true\`), kept connection:                         ${bare.total.toFixed(0)} ms total, median ${median(bare.each).toFixed(2)} ms`);
    console.log(`  fresh \`ssh -o BatchMode=yes … true\` (system client):                    ${fresh.total.toFixed(0)} ms total, median ${median(fresh.each).toFixed(2)} ms`);
    console.log(`  connections opened by tether: ${conn.connects}`);
    console.log(`goal kept connection ≥ 20× faster than fresh ssh: ${ratio >= 20 ? 'met' : 'NOT met'} (${ratio.toFixed(1)}×)`);
  } finally {
    await plugin.stop(0).catch(() => undefined);
    pool.closeAll();
    await sshd.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}
