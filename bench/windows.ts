/**
 * Provider requests per minute against the number of open windows (issue #14 item 8, the BEFORE
 * figure for "exactly one poller per user", now the AFTER one: the policy leader lists, the other windows render its
 * snapshot, src/fleet/snapshot.ts): 1, 3 and 5 `TetherModel`s — what each VS Code
 * window runs, here in plain node with the vscode stand-in (test/helpers/vscodeStub.ts) — on one
 * state folder and one workspace, each with its own client for the same Lambda Cloud account,
 * pointed at the protocol fake (test/fakes/lambdaServer.ts, 20 instances). Each window refreshes
 * at the default poll interval (2 s; every window as if focused) for BENCH_WINDOWS_SECONDS
 * (default 20 s); the fake counts the list requests (GET /api/v1/instances) and all requests.
 * With root (the test sshd, test/helpers/sshd.ts), every window also watches one SSH host (the
 * `tether.sshHosts` setting): the polls that host receives per minute are counted from sshd's own
 * log of the sessions it starts (each poll is one exec request).
 */
import '../test/helpers/vscodeStub';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TetherModel } from '../src/ui/model';
import { silentLogger } from '../src/core/logger';
import { LambdaCloudProvider } from '../src/backends/cloud/lambda/lambda';
import { FakeLambdaServer } from '../test/fakes/lambdaServer';
import { startSshd, sshdUnavailableReason, type TestSshd } from '../test/helpers/sshd';

const SECONDS = Number(process.env.BENCH_WINDOWS_SECONDS ?? 20);
const POLL_MS = 2000; // package.json: tether.pollIntervalSeconds default 2
export const BENCH_INSTANCES = 20;

/** Runs `model.refresh('interval')` every `pollMs` (after the previous one ended) until stopped. */
export function pollLoop(model: TetherModel, pollMs: number): { stop: () => Promise<void>; polls: () => number } {
  let stopped = false;
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  const tick = () => {
    current = model.refresh('interval').then(
      () => n++,
      () => n++,
    ).finally(() => {
      if (!stopped) timer = setTimeout(tick, pollMs);
    });
  };
  tick();
  return {
    polls: () => n,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}

export async function benchWindows(): Promise<void> {
  console.log(`\nprovider requests per minute against open windows: one state folder, one Lambda Cloud account on the protocol fake (${BENCH_INSTANCES} instances), each window polling every ${POLL_MS / 1000} s for ${SECONDS} s`);
  const rows: Array<{ windows: number; list: number; all: number; polls: number; ssh?: number }> = [];
  const noSshd = sshdUnavailableReason();
  const sshd: TestSshd | undefined = noSshd ? undefined : await startSshd();
  const sessions = () => (sshd?.log().match(/Starting session: command for /g) ?? []).length;
  try {
  for (const windows of [1, 3, 5]) {
    const fake = new FakeLambdaServer();
    await fake.start();
    for (let i = 0; i < BENCH_INSTANCES; i++) fake.addForeign(`bench-${i}`);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-win-'));
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bench-win-ws-'));
    fs.mkdirSync(path.join(ws, '.vscode'));
    fs.writeFileSync(path.join(ws, '.vscode', 'tether.json'), JSON.stringify({ plugins: [{ name: 'idle', command: 'sleep', args: ['600'] }] }));
    const models = Array.from({ length: windows }, () => {
      const provider = new LambdaCloudProvider({ apiKey: fake.apiKey, baseUrl: fake.url });
      const m = sshd
        ? new TetherModel(silentLogger, () => stateDir, { resolve: { configPath: sshd.sshConfig }, knownHostsFiles: [sshd.knownHosts], agent: null }, () => ['tether-test'], () => [provider])
        : new TetherModel(silentLogger, () => stateDir, {}, () => [], () => [provider]);
      m.setFolders([ws]);
      return m;
    });
    try {
      // Warm-up: every window's first poll, not counted.
      await Promise.all(models.map((m) => m.refresh('startup')));
      const seen = models[0]!.snapshot.cloud?.instances.length ?? 0;
      if (seen !== BENCH_INSTANCES) throw new Error(`the window sees ${seen} instances, expected ${BENCH_INSTANCES}`);
      const from = fake.requests.length;
      const sshFrom = sessions();
      const t0 = performance.now();
      const loops = models.map((m) => pollLoop(m, POLL_MS));
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const reqs = fake.requests.slice(from);
      const sshPolls = sessions() - sshFrom;
      const minutes = (performance.now() - t0) / 60_000;
      await Promise.all(loops.map((l) => l.stop()));
      // Followers render the leader's snapshot: every window must still show every instance.
      for (const [i, m] of models.entries()) {
        const n = m.snapshot.cloud?.instances.length ?? 0;
        if (n !== BENCH_INSTANCES) throw new Error(`window ${i + 1} of ${windows} shows ${n} instances, expected ${BENCH_INSTANCES}`);
        const h = m.snapshot.folders[0]?.report?.hosts.find((x) => x.host === 'tether-test');
        if (sshd && h?.state !== 'connected') throw new Error(`window ${i + 1} of ${windows} shows the SSH host ${h?.state ?? 'missing'}, expected connected`);
      }
      const list = reqs.filter((r) => r.method === 'GET' && /\/instances$/.test(r.path)).length;
      rows.push({ windows, list: list / minutes, all: reqs.length / minutes, polls: loops.reduce((s, l) => s + l.polls(), 0), ...(sshd ? { ssh: sshPolls / minutes } : {}) });
    } finally {
      for (const m of models) m.dispose();
      await fake.stop();
      fs.rmSync(stateDir, { recursive: true, force: true });
      fs.rmSync(ws, { recursive: true, force: true });
    }
  }
  } finally {
    await sshd?.stop();
  }
  const one = rows[0]!.list;
  for (const r of rows) {
    console.log(`  ${r.windows} window${r.windows > 1 ? 's' : ' '}: ${r.list.toFixed(1).padStart(6)} list requests/min (${r.all.toFixed(1)} requests/min in all; ${r.polls} polls)   ${(r.list / one).toFixed(2)}× one window${r.ssh === undefined ? '' : `; SSH host polls/min ${r.ssh.toFixed(1)}`}`);
  }
  const last = rows[rows.length - 1]!;
  console.log(`goal provider requests do not grow with windows (one poller per user): ${last.list <= one * 1.2 ? 'met' : 'NOT met'} (5 windows: ${(last.list / one).toFixed(2)}× one window's list requests)`);
  if (last.ssh !== undefined && rows[0]!.ssh !== undefined) {
    console.log(`goal SSH host polls do not grow with windows (each host polled once): ${last.ssh <= rows[0]!.ssh * 1.2 ? 'met' : 'NOT met'} (5 windows: ${(last.ssh / rows[0]!.ssh).toFixed(2)}× one window's polls)`);
  } else console.log(`SSH host polls per minute: not measured (${noSshd})`);
}
