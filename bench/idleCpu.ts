/**
 * Idle CPU of the extension host (issue #14 item 8): a separate node process (bench/idleHost.ts)
 * runs a `TetherModel` polling at the default interval with 50 tracked local processes (5
 * plugins of 10 processes each, started here), 5 SSH hosts (five aliases of the real test sshd,
 * test/helpers/sshd.ts, which needs root; without it five aliases of a closed 127.0.0.1 port, so
 * the hosts are unreachable — said in the output) and 20 instances on the Lambda Cloud protocol
 * fake (served from this process, so the fake's work is not counted). Its process.cpuUsage()
 * over BENCH_IDLE_SECONDS (default 60) after a warm-up, as % of one core.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../src/workspace/engine';
import { FakeLambdaServer } from '../test/fakes/lambdaServer';
import { startSshd, sshdUnavailableReason, type TestSshd } from '../test/helpers/sshd';
import { freePort } from '../test/helpers/net';
import { BENCH_INSTANCES } from './windows';

const SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const TREES = 5; // × 10 processes
const HOSTS = 5;

function runHost(setup: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'idleHost.ts')], {
      env: { ...process.env, BENCH_IDLE_HOST: JSON.stringify(setup) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`idle host exited ${code}: ${err.trim()}`))));
  });
}

export async function benchIdleCpu(): Promise<void> {
  console.log(`\nidle CPU of the extension host: a TetherModel polling every 2 s (the default) for ${SECONDS} s (BENCH_IDLE_SECONDS) with ${TREES * 10} tracked local processes, ${HOSTS} SSH hosts and ${BENCH_INSTANCES} instances on the Lambda fake`);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-idle-'));
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-idle-ws-'));
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-idle-ssh-'));
  fs.mkdirSync(path.join(ws, '.vscode'));
  const plugins = Array.from({ length: TREES }, (_, i) => ({ name: `tree${i}`, command: 'sh', args: ['-c', 'for i in 1 2 3 4 5 6 7 8 9; do sleep 900 & done; wait'] }));
  fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins }));
  const engine = new Engine({ workspace: ws, stateDir, ownerKind: 'cli' });
  const fake = new FakeLambdaServer();
  let sshd: TestSshd | undefined;
  try {
    await fake.start();
    for (let i = 0; i < BENCH_INSTANCES; i++) fake.addForeign(`bench-${i}`);
    for (const p of plugins) await engine.start(p.name);
    // SSH hosts: five aliases of the test sshd, or of a closed port.
    const reason = sshdUnavailableReason();
    let sshConfig: string;
    let knownHosts: string;
    let hostNote: string;
    const aliases = Array.from({ length: HOSTS }, (_, i) => `bench-host-${i}`);
    if (!reason) {
      sshd = await startSshd();
      const s = sshd;
      knownHosts = s.knownHosts;
      sshConfig = path.join(cfgDir, 'ssh_config');
      fs.writeFileSync(sshConfig, aliases.map((a) => [`Host ${a}`, '  HostName 127.0.0.1', `  Port ${s.port}`, `  User ${s.user}`, `  IdentityFile ${s.userKey}`].join('\n')).join('\n') + '\n');
      hostNote = `${HOSTS} aliases of the real test sshd on 127.0.0.1:${s.port}`;
    } else {
      const port = await freePort();
      knownHosts = path.join(cfgDir, 'known_hosts');
      fs.writeFileSync(knownHosts, '');
      sshConfig = path.join(cfgDir, 'ssh_config');
      fs.writeFileSync(sshConfig, aliases.map((a) => [`Host ${a}`, '  HostName 127.0.0.1', `  Port ${port}`, '  User nobody'].join('\n')).join('\n') + '\n');
      hostNote = `UNREACHABLE: no sshd (${reason}); ${HOSTS} aliases of the closed port 127.0.0.1:${port}`;
    }
    const out = await runHost({ stateDir, workspace: ws, sshConfig, knownHosts, hosts: aliases, lambda: { apiKey: fake.apiKey, baseUrl: fake.url }, seconds: SECONDS, warmupPolls: 3 });
    const r = JSON.parse(out.trim().split('\n').pop()!) as {
      seen: { processes: number; instances: number; hosts: string[]; error?: string };
      wallMs: number;
      userMs: number;
      systemMs: number;
      polls: number;
    };
    const pct = ((r.userMs + r.systemMs) / r.wallMs) * 100;
    console.log(`  SSH hosts: ${hostNote}`);
    console.log(`  the window saw: ${r.seen.processes} local processes, ${r.seen.instances} instances, hosts ${r.seen.hosts.join(', ')}${r.seen.error ? `, error: ${r.seen.error}` : ''}`);
    console.log(`  over ${(r.wallMs / 1000).toFixed(1)} s, ${r.polls} polls: user ${r.userMs.toFixed(0)} ms + system ${r.systemMs.toFixed(0)} ms of CPU = ${pct.toFixed(2)}% of one core (${((r.userMs + r.systemMs) / Math.max(1, r.polls)).toFixed(1)} ms per poll; load ${os.loadavg()[0]!.toFixed(2)}, ${os.cpus().length} cores)`);
  } finally {
    await engine.down(0).catch(() => undefined);
    await fake.stop();
    await sshd?.stop();
    for (const d of [stateDir, ws, cfgDir]) fs.rmSync(d, { recursive: true, force: true });
  }
}
