/**
 * `tether k8s …`: Kubernetes Jobs from the shell — the per-cluster price table, what runs on a
 * context (Tether's Jobs, another ledger's, unmanaged ones, with their Pods), logs, stop (always
 * with Background propagation) and reconcile. The cluster comes from the kubeconfig alone
 * (KUBECONFIG, as kubectl reads it).
 */
import * as os from 'node:os';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { ExitCode, UsageError } from '../core/errors';
import { Ledger, defaultStateDir } from '../core/ledger';
import { KubernetesJobs, type JobView } from '../backends/kubernetes/jobs';
import { readPrices, setPrices, PRICES_FILE } from '../backends/kubernetes/prices';
import type { Io } from './policy';

export const K8S_HELP = `Kubernetes Jobs (the cluster comes from your kubeconfig: KUBECONFIG, as kubectl reads it):

  k8s prices set CONTEXT --gpu-hour USD --cpu-hour USD --gib-hour USD
                         Set what a cluster costs (Kubernetes reports no price): a Pod is priced
                         from its requests, GPUs × gpu-hour + CPUs × cpu-hour + GiB × gib-hour
  k8s prices [list] [--json] | k8s prices rm CONTEXT
  k8s ls [--context C] [--namespace NS]… [--json]
                         Jobs on a context with their Pods: Tether's, another ledger's, unmanaged
  k8s logs ID [--tail N] [--follow]
  k8s stop ID            Stop a Job Tether started (propagationPolicy Background: its Pods go too)
  k8s stop --unmanaged NS/NAME [--context C]
                         Stop a Job Tether did not start (only when you name it)
  k8s reconcile [--context C] [--grace-minutes M]
                         After a crash: close intents with no Job, adopt Jobs with this ledger's marker`;

const OPTIONS = {
  'state-dir': { type: 'string' },
  workspace: { type: 'string' },
  json: { type: 'boolean', default: false },
  context: { type: 'string' },
  namespace: { type: 'string', multiple: true },
  'gpu-hour': { type: 'string' },
  'cpu-hour': { type: 'string' },
  'gib-hour': { type: 'string' },
  tail: { type: 'string' },
  follow: { type: 'boolean', default: false },
  unmanaged: { type: 'string' },
  'grace-minutes': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const REMEDY = 'Run `tether k8s --help` for usage.';
const usd = (n: number | undefined) => (n === undefined ? '—' : `$${n.toFixed(n < 1 ? 4 : 2)}`);

function price(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number of USD >= 0${v === undefined ? ' (it is required)' : `, got "${v}"`}`, REMEDY);
  return n;
}

function describe(v: JobView): string {
  const head = `${v.namespace}/${v.name}  ${v.state}${v.recordId ? `  record ${v.recordId.slice(0, 8)}` : ''}${v.plugin ? `  (${v.plugin})` : ''}${v.pricePerHour !== undefined ? `  ${usd(v.pricePerHour)}/h` : ''}`;
  const pods = v.pods.map((p) => `    pod ${p.name}  ${p.terminating ? 'Terminating' : p.phase}  node ${p.node ?? '—'}  restarts ${p.restarts}${p.gpus ? `  ${p.gpus} GPU` : ''}${p.orphaned ? '  (orphaned)' : ''}`);
  return [head, ...pods].join('\n');
}

/** Runs `tether k8s …`. */
export async function runK8sCommand(argv: string[], io: Io): Promise<number> {
  const { values: o, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [, sub, ...rest] = positionals;
  if (o.help || !sub) {
    io.out(K8S_HELP);
    return sub || o.help ? ExitCode.OK : ExitCode.USAGE;
  }
  const stateDir = o['state-dir'] ?? defaultStateDir();
  const jobs = () => new KubernetesJobs({ ledger: new Ledger(stateDir), owner: { kind: 'cli', pid: process.pid, startTime: 0, host: os.hostname() }, log: (l) => io.err(`tether: ${l}`) });
  switch (sub) {
    case 'prices': {
      const [action = 'list', context] = rest;
      if (action === 'set') {
        if (!context) throw new UsageError('k8s prices set needs a kubeconfig context name', REMEDY);
        const p = { gpuHour: price(o['gpu-hour'], '--gpu-hour'), cpuHour: price(o['cpu-hour'], '--cpu-hour'), gibHour: price(o['gib-hour'], '--gib-hour') };
        await setPrices(stateDir, context, p);
        io.out(`prices of "${context}": ${usd(p.gpuHour)}/GPU-h, ${usd(p.cpuHour)}/CPU-h, ${usd(p.gibHour)}/GiB-h (${PRICES_FILE} in ${stateDir})`);
        return ExitCode.OK;
      }
      if (action === 'rm') {
        if (!context) throw new UsageError('k8s prices rm needs a kubeconfig context name', REMEDY);
        await setPrices(stateDir, context, undefined);
        io.out(`removed the prices of "${context}"`);
        return ExitCode.OK;
      }
      if (action !== 'list') throw new UsageError(`unknown k8s prices action "${action}"`, REMEDY);
      const all = readPrices(stateDir);
      if (o.json) io.out(JSON.stringify(all, null, 2));
      else if (!Object.keys(all).length) io.out('no cluster prices set (Kubernetes Jobs are costed at $0): tether k8s prices set CONTEXT --gpu-hour X --cpu-hour Y --gib-hour Z');
      else for (const [c, p] of Object.entries(all)) io.out(`${c}: ${usd(p.gpuHour)}/GPU-h, ${usd(p.cpuHour)}/CPU-h, ${usd(p.gibHour)}/GiB-h`);
      return ExitCode.OK;
    }
    case 'ls': {
      const views = await jobs().list({ ...(o.context ? { context: o.context } : {}), ...(o.namespace?.length ? { namespaces: o.namespace } : {}) });
      if (o.json) {
        io.out(JSON.stringify(views, null, 2));
        return ExitCode.OK;
      }
      const groups: Array<[string, JobView[]]> = [
        ["Tether's (this ledger)", views.filter((v) => v.origin === 'this')],
        ['Tether-launched elsewhere (another ledger; never touched here)', views.filter((v) => v.origin === 'elsewhere')],
        ['Unmanaged (no Tether label; touched only with stop --unmanaged)', views.filter((v) => v.origin === undefined)],
      ];
      for (const [title, vs] of groups) {
        io.out(`${title}: ${vs.length}`);
        for (const v of vs) io.out(describe(v).replace(/^/gm, '  '));
      }
      return ExitCode.OK;
    }
    case 'logs': {
      const id = rest[0];
      if (!id) throw new UsageError('k8s logs needs a record id (tether k8s ls shows them)', REMEDY);
      const k = jobs();
      if (o.follow) {
        // Followed until the container ends (the stream ends) or Ctrl-C.
        const through = new PassThrough();
        through.on('data', (d: Buffer) => io.out(d.toString('utf8').replace(/\n$/, '')));
        const ac = await k.followLogs(id, through);
        await new Promise<void>((resolve) => {
          through.on('end', resolve);
          through.on('finish', resolve);
          ac.signal.addEventListener('abort', () => resolve());
          process.once('SIGINT', () => (ac.abort(), resolve()));
        });
        return ExitCode.OK;
      }
      const tail = o.tail === undefined ? undefined : Number(o.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail <= 0)) throw new UsageError(`--tail must be a whole number above 0, got "${o.tail}"`, REMEDY);
      io.out((await k.logs(id, tail ? { tail } : {})).replace(/\n$/, ''));
      return ExitCode.OK;
    }
    case 'stop': {
      const k = jobs();
      if (o.unmanaged) {
        const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(o.unmanaged);
        if (!m) throw new UsageError(`--unmanaged takes NAMESPACE/NAME, got "${o.unmanaged}"`, REMEDY);
        const views = await k.list({ ...(o.context ? { context: o.context } : {}), namespaces: [m[1]!] });
        const v = views.find((x) => x.namespace === m[1] && x.name === m[2]);
        if (!v) throw new UsageError(`no job ${o.unmanaged} on this context`, 'Check the name with `tether k8s ls`.');
        if (v.origin !== undefined) throw new UsageError(`${o.unmanaged} carries Tether's marker: stop it by its record (tether k8s stop ID)${v.origin === 'elsewhere' ? ' from the ledger that launched it' : ''}`, REMEDY);
        await k.stopUnmanaged({ ...(o.context ? { context: o.context } : {}), namespace: v.namespace, name: v.name, uid: v.uid });
        io.out(`deleted job ${o.unmanaged} (propagationPolicy Background: its ${v.pods.length} pod(s) go with it)`);
        return ExitCode.OK;
      }
      const id = rest[0];
      if (!id) throw new UsageError('k8s stop needs a record id (tether k8s ls shows them) or --unmanaged NS/NAME', REMEDY);
      const ledger = new Ledger(stateDir);
      const rec = ledger.read().resources.find((r) => r.kind === 'kubernetes' && (r.id === id || r.id.startsWith(id)));
      if (!rec) throw new UsageError(`no open Kubernetes record ${id}`, 'List them with `tether k8s ls`.');
      const r = await k.stop(rec.id);
      io.out(`stopped ${r.job}${r.deletedPods.length ? ` and ${r.deletedPods.length} orphaned pod(s)` : ''}${r.remaining.length ? `; still terminating: ${r.remaining.join(', ')}` : ''}`);
      return r.remaining.length ? ExitCode.FAILED : ExitCode.OK;
    }
    case 'reconcile': {
      const grace = o['grace-minutes'] === undefined ? undefined : Number(o['grace-minutes']);
      if (grace !== undefined && (!Number.isFinite(grace) || grace < 0)) throw new UsageError(`--grace-minutes must be a number >= 0, got "${o['grace-minutes']}"`, REMEDY);
      const r = await jobs().reconcile({ ...(o.context ? { context: o.context } : {}), ...(grace !== undefined ? { graceMs: grace * 60_000 } : {}), ...(o.namespace?.length ? { namespaces: o.namespace } : {}) });
      io.out(o.json ? JSON.stringify(r, null, 2) : `adopted ${r.adopted.length}, completed ${r.completed.length}, closed intents ${r.failedIntents.length}, elsewhere ${r.elsewhere.length}, unmanaged ${r.unmanaged.length}`);
      return ExitCode.OK;
    }
    default:
      throw new UsageError(`unknown k8s command "${sub}"`, REMEDY);
  }
}
