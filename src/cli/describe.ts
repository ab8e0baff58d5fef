/**
 * `tether cloud describe NAME|ID [--json]`: what the provider says about one instance or task
 * now — its state, and where the provider reports them its containers (name, status, exit code),
 * GPU requests, stop reason and where its logs are (ECS: the awslogs group and stream; Tether does
 * not read CloudWatch Logs itself).
 */
import { TetherError, UsageError } from '../core/errors';
import { pickCloudView } from '../fleet/cloud';
import type { CloudInstance } from '../backends/cloud/provider';
import type { Engine } from '../workspace/engine';

interface ContainerLine {
  name?: string;
  lastStatus?: string;
  exitCode?: number;
  reason?: string;
}
interface LogLine {
  container: string;
  group: string;
  stream?: string;
  command: string;
}

/** The lines a human reads. */
export function renderDescription(name: string, d: CloudInstance): string {
  const m = d.metadata;
  const out = [`${name}: ${d.status} (${d.rawStatus})${d.instanceType ? ` ${d.instanceType}` : ''}${d.region ? ` ${d.region}` : ''}${d.pricePerHour !== undefined ? ` $${d.pricePerHour.toFixed(4)}/h` : ''}`, `  id ${d.id}`];
  if (typeof m.priceNote === 'string') out.push(`  price: ${m.priceNote}`);
  if (d.gpuCount) out.push(`  GPUs requested: ${d.gpuCount}`);
  for (const k of ['createdAt', 'startedAt', 'stoppedAt'] as const) if (typeof m[k] === 'string') out.push(`  ${k}: ${m[k]}`);
  if (typeof m.stoppedReason === 'string' && m.stoppedReason) out.push(`  stopped: ${m.stoppedReason}${typeof m.stopCode === 'string' ? ` (${m.stopCode})` : ''}`);
  for (const c of (Array.isArray(m.containers) ? m.containers : []) as ContainerLine[]) {
    out.push(`  container ${c.name ?? '?'}: ${c.lastStatus ?? '?'}${c.exitCode !== undefined ? `, exit ${c.exitCode}` : ''}${c.reason ? ` (${c.reason})` : ''}`);
  }
  const logs = (Array.isArray(m.logs) ? m.logs : []) as LogLine[];
  for (const l of logs) out.push(`  logs of ${l.container}: CloudWatch ${l.group}${l.stream ? ` / ${l.stream}` : ''} — ${l.command}`);
  if (!logs.length && typeof m.logsNote === 'string') out.push(`  logs: ${m.logsNote}`);
  return out.join('\n');
}

export async function describeCloud(engine: Engine, args: string[], json: boolean): Promise<string> {
  if (args.length !== 1) throw new UsageError('`tether cloud describe NAME|ID [--json]`');
  const which = args[0]!;
  let v: { name: string; provider: string; id: string | null };
  try {
    v = pickCloudView((await engine.cloud.status()).instances, which);
  } catch (err) {
    // Ended in the ledger (a job that finished, a task terminated): the provider may still know it (ECS: about an hour).
    const rec = engine.ledger
      .read()
      .ended.filter((r) => r.kind === 'cloud' && r.remote?.instanceId && (r.id === which || r.remote.instanceId === which || r.plugin === which))
      .pop();
    if (!rec) throw err;
    v = { name: rec.plugin, provider: rec.remote!.provider, id: rec.remote!.instanceId! };
  }
  if (!v.id) throw new UsageError(`${v.name} has no instance id yet`, 'Wait until the launch is confirmed (`tether status`).');
  const p = engine.cloud.provider(v.provider);
  const d = await p.describe(v.id);
  if (!d) throw new TetherError(`${p.title} no longer knows ${v.id}`, { remedy: 'It is gone; see `tether status` and `tether cost`.' });
  return json ? JSON.stringify(d, null, 2) : renderDescription(v.name, d);
}
