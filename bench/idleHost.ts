/**
 * The "extension host" of the idle-CPU bench (bench/idleCpu.ts): a node process that runs what a
 * VS Code window runs — a `TetherModel` (vscode stand-in, test/helpers/vscodeStub.ts) polling at
 * the default interval (2 s) — and nothing else, so its process.cpuUsage() is Tether's own cost.
 * Reads its setup from BENCH_IDLE_HOST (JSON), prints one JSON line of results.
 */
import '../test/helpers/vscodeStub';
import * as vscode from 'vscode';
import { TetherModel } from '../src/ui/model';
import { silentLogger } from '../src/core/logger';
import { LambdaCloudProvider } from '../src/backends/cloud/lambda/lambda';
import { pollLoop } from './windows';

interface Setup {
  stateDir: string;
  workspace: string;
  sshConfig: string;
  knownHosts: string;
  hosts: string[];
  lambda: { apiKey: string; baseUrl: string };
  seconds: number;
  warmupPolls: number;
}

async function main() {
  const s = JSON.parse(process.env.BENCH_IDLE_HOST!) as Setup;
  (vscode.workspace as { isTrusted?: boolean }).isTrusted = true;
  const provider = new LambdaCloudProvider({ apiKey: s.lambda.apiKey, baseUrl: s.lambda.baseUrl });
  const model = new TetherModel(silentLogger, () => s.stateDir, { resolve: { configPath: s.sshConfig }, knownHostsFiles: [s.knownHosts], agent: null }, () => s.hosts, () => [provider]);
  model.setFolders([s.workspace]);
  for (let i = 0; i < s.warmupPolls; i++) await model.refresh('interval');
  const snap = model.snapshot;
  const report = snap.folders[0]?.report;
  const seen = {
    processes: report?.totals.processes ?? 0,
    instances: snap.cloud?.instances.length ?? 0,
    hosts: (report?.hosts ?? []).map((h) => `${h.host}:${h.state}`),
    error: snap.folders[0]?.error,
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = pollLoop(model, 2000);
  await new Promise((r) => setTimeout(r, s.seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  await loop.stop();
  model.dispose();
  console.log(JSON.stringify({ seen, wallMs, userMs: cpu.user / 1000, systemMs: cpu.system / 1000, polls: loop.polls() }));
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
});
