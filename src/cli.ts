/**
 * `tether`: the command line over the same core as the extension, so everything the tree
 * shows can be scripted. Exit codes: 0 success, 1 operation failed, 2 bad usage or bad config.
 */
import { parseArgs } from 'node:util';
import { ExitCode, TetherError, UsageError, describeError } from './core/errors';
import type { Logger } from './core/logger';
import { accountKindOf, accountsFromEnv, createProviders } from './fleet/cloudAccounts';
import { azureFlagEnv } from './backends/cloud/azure/descriptor';
import { CLOUD_PROVIDERS, providerDescriptor } from './backends/cloud/registry';
import { loadSshConfigParser } from './backends/ssh/hosts';
import { checkLambdaSshKey, type LambdaCloudProvider } from './backends/cloud/lambda/lambda';
import { cloudRunTypeFromFlags } from './backends/cloud/cloudrun/pricing';
import { costCsv, costReport } from './fleet/costReport';
import { notOursMessage, pickCloudRecord, pickCloudView, shutdownEffectOf, type CloudView } from './fleet/cloud';
import { Engine, asTetherError, type HostStatus, type PluginStatus, type StatusReport } from './workspace/engine';
import { formatBytes, formatCpu } from './core/format';
import { fleetCommand } from './cli/fleet';
import { describeCloud } from './cli/describe';
import { describeLeader, readLeader } from './fleet/leader';
import { policyWarnings, readPolicy } from './fleet/policy';
import { hardCapRefusalFromLedger } from './fleet/spend';

const HELP = `tether — keep every process your tools start on a leash

Usage: tether <command> [options]

Commands:
  status [--json]        Declared plugins, their process trees (local and on SSH hosts), hosts, orphans
  start NAME             Start a plugin declared in .vscode/tether.json (on its "host" if it has one)
  stop NAME              Stop a plugin's whole process tree (SIGTERM, grace, SIGKILL)
  restart NAME           Stop, then start
  down --all             Stop every running plugin of the workspace
  pids NAME              Every managed PID of a plugin, descendants included
  orphans [--kill]       List (or stop) running resources nobody owns any more
  ledger repair          Move a damaged ledger aside and rebuild it from running processes
  cloud types PROVIDER   Instance types with $/h and regions with capacity
  cloud launch PROVIDER TYPE [--region R] [--name N] [--ssh-key K] [--image I]
                         (Lambda Cloud needs --ssh-key: exactly one of your account's SSH keys)
                         Cloud Run jobs: --image, --project P, TYPE like 4vcpu-16gib / l4-4vcpu-16gib,
                         or provision with --cpu N --memory GiB [--gpu l4] instead of --type
  cloud describe NAME|ID [--json]   What the provider says now: state, containers, exit codes, logs (ECS)
  cloud terminate NAME|ID [--unmanaged]
  cloud stop NAME|ID [--unmanaged]   Power off, keep the disk (RunPod, Vast.ai, EC2; the disk keeps billing)
  cloud prices PROVIDER [--region R]
                         Refresh a provider's dated price catalogue (EC2: the AWS Price List API),
                         saved in the state folder
  cost [--since DATE] [--json|--csv]
                         What every cloud resource cost, by its provider's billing rule
  provision --provider ${CLOUD_PROVIDERS.map((d) => [d.kind, ...d.aliases].reduce((a, b) => (b.length < a.length ? b : a))).join('|')} --type T [--region R] [--name N] [--ssh-key K] [--image I] [--cluster C] [--time-limit HOURS] [--deadman MINUTES] --yes
                         GCP: --project P --zone Z (else GOOGLE_CLOUD_PROJECT / gcloud config); a type
                         ending in :spot launches a Spot VM (g2-standard-4:spot)
                         Azure: --subscription S --resource-group G (else AZURE_SUBSCRIPTION_ID, TETHER_AZURE_RESOURCE_GROUP)
                         (ecs: --type fargate-1vcpu-2gb, ec2-4vcpu-16gb-1gpu…, --image needed; --cluster or TETHER_ECS_CLUSTER)
  terminate ID|NAME [--unmanaged]
                         Names are unique among this ledger's instances (no --name: the type, then
                         TYPE-2, TYPE-3…); a name several instances carry is refused: pass the id
  deadman NAME|ID --minutes N | --disarm
                         A dead man's switch on an instance: it shuts itself down after N minutes
                         without Tether (any \`tether status\` or VS Code window pushes it forward)
                         Providers: ${CLOUD_PROVIDERS.map((d) => `${d.kind} (${d.configHelp})`).join(',\n                           ')}
  budget set|list|rm, autostop set|show|off, limit default HOURS
                         Budgets, idle autostop, the default time limit (\`tether budget --help\`)
  watch [--interval S] [--once] [--install|--uninstall]
                         Enforce them with no editor open (\`tether watch --help\`)

Options:
  --workspace DIR        Workspace folder (default: current folder)
  --state-dir DIR        Ledger folder (default: $TETHER_STATE_DIR or the user data folder)
  --grace SECONDS        Grace period between SIGTERM and SIGKILL (stop, down, orphans --kill)
  --json                 Machine-readable output (status, pids, orphans)
  -h, --help             This help
  -v, --version          Version

Remote plugins ("host" in tether.json) connect with your ~/.ssh/config, ~/.ssh/known_hosts
and ssh-agent; an unknown host key is refused (connect once with ssh, or accept it in VS Code).

Exit codes: 0 success, 1 operation failed, 2 bad usage or bad config.`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stderrLogger = (io: Io, verbose: boolean): Logger => ({
  trace: () => undefined,
  debug: (m) => verbose && io.err(`debug: ${m}`),
  info: (m) => verbose && io.err(m),
  warn: (m) => io.err(`warning: ${m}`),
  error: (m) => io.err(`error: ${m instanceof Error ? m.message : m}`),
});

export async function main(argv: string[], io: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') }): Promise<number> {
  // The ssh_config parser (a chunk: hosts resolve with it where there is no ssh binary, and it settles
  // what `ssh -G` cannot say): loaded before any command needs it.
  await loadSshConfigParser();
  const fleet = await fleetCommand(argv, io); // budget, autostop, limit, watch (src/cli/)
  if (fleet !== undefined) return fleet;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        workspace: { type: 'string' },
        'state-dir': { type: 'string' },
        grace: { type: 'string' },
        json: { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        kill: { type: 'boolean', default: false },
        region: { type: 'string' },
        name: { type: 'string' },
        'ssh-key': { type: 'string' },
        image: { type: 'string' },
        cpu: { type: 'string' },
        memory: { type: 'string' },
        gpu: { type: 'string' },
        cluster: { type: 'string' },
        'time-limit': { type: 'string' },
        deadman: { type: 'string' },
        minutes: { type: 'string' },
        disarm: { type: 'boolean' },
        unmanaged: { type: 'boolean', default: false },
        provider: { type: 'string' },
        project: { type: 'string' },
        zone: { type: 'string' },
        subscription: { type: 'string' },
        'resource-group': { type: 'string' },
        type: { type: 'string' },
        yes: { type: 'boolean', default: false },
        since: { type: 'string' },
        csv: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (err) {
    io.err(`tether: ${(err as Error).message} — run \`tether --help\` for usage.`);
    return ExitCode.USAGE;
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    io.out(HELP);
    return ExitCode.OK;
  }
  if (o.version) {
    io.out(VERSION);
    return ExitCode.OK;
  }
  const [cmd, ...rest] = positionals;
  let engine: Engine | undefined;
  try {
    const graceMs = parseGrace(o.grace);
    const log = stderrLogger(io, o.verbose);
    // GCP's --project / --zone reach its account as TETHER_GCP_PROJECT / TETHER_GCP_ZONE (gcp/descriptor.ts); Cloud Run reads the same project (cloudrun/descriptor.ts).
    // --cluster: the ECS cluster of this run (TETHER_ECS_CLUSTER, which also enables ECS).
    const cloudAccounts = accountsFromEnv({ ...process.env, ...azureFlagEnv(o, positionals), ...(o.project ? { TETHER_GCP_PROJECT: o.project } : {}), ...(o.zone ? { TETHER_GCP_ZONE: o.zone } : {}), ...(o.cluster ? { TETHER_ECS_CLUSTER: o.cluster } : {}) });
    engine = new Engine({
      workspace: o.workspace ?? process.cwd(),
      ownerKind: 'cli',
      log,
      cloudProviders: () => createProviders(cloudAccounts, log, engine!.ledger.stateDir),
      ...(o['state-dir'] ? { stateDir: o['state-dir'] } : {}),
      ...(graceMs === undefined ? {} : { graceMs }),
    });
    /** Launches one instance with the --name/--region/--ssh-key/--image options and prints it. */
    /** Without --name: the type, made unique with -2, -3…; a --name already in use is refused (CloudManager.provision). */
    /** A launch that would cross a hard-cap budget is refused (exit 2) before anything is asked or written; --yes does not override it. */
    const refuseOverHardCap = (provider: string, instanceType: string, pricePerHour: number | undefined): void => {
      const refusal = hardCapRefusalFromLedger(engine!.ledger, readPolicy(engine!.ledger.stateDir).budgets, provider, instanceType, pricePerHour);
      if (refusal) throw refusal;
    };
    const launchCloud = async (provider: string, instanceType: string, known: { pricePerHour: number; gpuCount: number; gpuType?: string } | undefined, price: (v: CloudView) => string): Promise<number> => {
      refuseOverHardCap(provider, instanceType, known?.pricePerHour);
      const timeLimitHours = o['time-limit'] === undefined ? readPolicy(engine!.ledger.stateDir).defaultTimeLimitHours || undefined : Number(o['time-limit']);
      if (timeLimitHours !== undefined && !(timeLimitHours > 0)) throw new UsageError(`--time-limit must be a number of hours above 0, got "${o['time-limit']}"`);
      const deadmanMinutes = o.deadman === undefined ? undefined : Number(o.deadman);
      if (deadmanMinutes !== undefined && !(deadmanMinutes > 0)) throw new UsageError(`--deadman must be a number of minutes above 0, got "${o.deadman}"`);
      // Lambda launches with exactly one SSH key of the account: checked before any ledger intent.
      if (provider === 'lambda_labs') await checkLambdaSshKey(engine!.cloud.provider(provider) as LambdaCloudProvider, o['ssh-key']);
      const v = await engine!.cloud.provision(provider, {
        ...(o.name === undefined ? {} : { name: o.name }),
        instanceType,
        ...(known === undefined ? {} : { pricePerHour: known.pricePerHour, gpuCount: known.gpuCount, ...(known.gpuType ? { gpuType: known.gpuType } : {}) }),
        ...(o.region || o.zone ? { region: o.region ?? o.zone } : {}),
        ...(o['ssh-key'] ? { sshKeyName: o['ssh-key'] } : {}),
        ...(o.image ? { image: o.image } : {}),
        ...(timeLimitHours ? { timeLimitHours } : {}),
        ...(deadmanMinutes ? { deadmanMinutes } : {}),
      });
      io.out(o.json ? JSON.stringify(v, null, 2) : `launched ${v.name}: ${v.providerTitle} ${v.id ?? '(id pending)'} ${v.instanceType ?? ''} ${v.region ?? ''} at ${price(v)} (${v.status})`);
      return ExitCode.OK;
    };
    const terminateCloud = async (which: string): Promise<number> => {
      const st = await engine!.cloud.status();
      const v = pickCloudView(st.instances, which);
      if (!v.managed && !o.unmanaged) {
        throw new UsageError(notOursMessage(v), 'Add --unmanaged to terminate it anyway (you pick it by hand).');
      }
      await engine!.cloud.terminate(v, { picked: o.unmanaged });
      io.out(`terminated ${v.name} (${v.providerTitle} ${v.id ?? ''}); it cost $${v.costSoFar.toFixed(2)}`);
      return ExitCode.OK;
    };
    const needName = (): string => {
      if (rest.length !== 1) throw new UsageError(`\`tether ${cmd}\` needs exactly one plugin name`);
      return rest[0]!;
    };
    switch (cmd) {
      case 'status': {
        // Any Tether run keeps the dead man's switches pushed (and arms requested ones).
        for (const e of await engine.deadman.tend()) log.info(`dead man's switch of ${e.name}: ${e.event} (${e.detail})`);
        const report = await engine.status();
        const leader = readLeader(engine.ledger.stateDir);
        io.out(o.json ? JSON.stringify({ ...report, policyLeader: leader ?? null }, null, 2) : `${renderStatus(report)}\n${describeLeader(leader)}`);
        // Budgets that are not enforced (a damaged policy file, settings the migration skipped) are said, never hidden.
        for (const w of policyWarnings(engine.ledger.stateDir)) io.err(`tether: warning: ${w}`);
        return report.configError ? ExitCode.USAGE : ExitCode.OK;
      }
      case 'start': {
        const name = needName();
        const rec = await engine.start(name);
        io.out(`started ${name}: pid ${rec.processes[0]?.pid ?? '?'}${rec.host ? ` on ${rec.host}` : ''} (log ${rec.logPath})`);
        return ExitCode.OK;
      }
      case 'stop': {
        const name = needName();
        const report = await engine.stop(name, graceMs);
        io.out(
          report
            ? `stopped ${name}: ${report.processes.length} process(es), ${report.terminated} on SIGTERM, ${report.killed} on SIGKILL, 0 left`
            : `${name} was not running`,
        );
        return ExitCode.OK;
      }
      case 'restart': {
        const name = needName();
        const rec = await engine.restart(name);
        io.out(`restarted ${name}: pid ${rec.processes[0]?.pid ?? '?'}${rec.host ? ` on ${rec.host}` : ''}`);
        return ExitCode.OK;
      }
      case 'down': {
        if (!o.all) throw new UsageError('`tether down` stops everything of the workspace: confirm with --all');
        const { stopped, errors } = await engine.down(graceMs);
        io.out(stopped.length ? `stopped: ${stopped.join(', ')}` : 'nothing was running');
        for (const e of errors) io.err(`tether: ${e.oneLine()}`);
        return errors.length ? ExitCode.FAILED : ExitCode.OK;
      }
      case 'pids': {
        const pids = await engine.pids(needName());
        io.out(o.json ? JSON.stringify(pids) : pids.join('\n'));
        return ExitCode.OK;
      }
      case 'orphans': {
        if (o.kill) {
          const { killed, errors } = await engine.killOrphans(graceMs ?? 2000);
          io.out(killed.length ? `stopped orphans: ${killed.join(', ')}` : 'no orphans');
          for (const e of errors) io.err(`tether: ${e.oneLine()}`);
          return errors.length ? ExitCode.FAILED : ExitCode.OK;
        }
        const orphans = await engine.orphans();
        if (o.json) io.out(JSON.stringify(orphans, null, 2));
        else io.out(orphans.length ? orphans.map((p) => `${p.name}${p.host ? `@${p.host}` : ''}\t${p.processes.map((x) => x.pid).join(',')}\t${p.orphanReason}`).join('\n') : 'no orphans');
        return ExitCode.OK;
      }
      case 'cost': {
        let since: number | undefined;
        if (o.since !== undefined) {
          since = Date.parse(o.since);
          if (!Number.isFinite(since)) throw new UsageError(`--since must be a date (e.g. 2026-11-01), got "${o.since}"`);
        }
        const report = costReport(engine.ledger, since);
        if (o.json) io.out(JSON.stringify(report, null, 2));
        else if (o.csv) process.stdout.write(costCsv(report));
        else {
          for (const l of report.lines) {
            io.out(`${l.name.padEnd(22)} ${l.provider.padEnd(12)} ${(l.instanceType ?? '').padEnd(16)} $${l.pricePerHour.toFixed(2)}/h  $${l.cost.toFixed(2)}${l.endedAt ? '' : '  (running)'}`);
          }
          io.out(`total $${report.total.toFixed(2)}${report.since ? ` since ${report.since}` : ''}`);
        }
        return ExitCode.OK;
      }
      case 'provision': {
        const kind = o.provider ? accountKindOf(o.provider) : undefined;
        if (kind === 'cloud_run' && !o.type) {
          try {
            o.type = cloudRunTypeFromFlags(o);
          } catch (err) {
            throw new UsageError((err as Error).message);
          }
        }
        if (!kind || !o.type) throw new UsageError('`tether provision --provider lambda|runpod|vast|aws --type T [--region R] [--name N] [--ssh-key K] [--time-limit HOURS] --yes`');
        // A size outside the listed catalogue that the provider still knows (ECS: EC2-launched and GPU task sizes); a bad one says why.
        const resolve = (engine.cloud.provider(kind) as { instanceType?: (name: string) => Promise<Awaited<ReturnType<Engine['cloud']['catalogue']>>[number]> }).instanceType;
        const type =
          (await engine.cloud.catalogue(kind)).find((t) => t.name === o.type) ??
          (resolve ? await resolve(o.type).catch((e: unknown) => Promise.reject(e instanceof TetherError ? new UsageError(e.message, e.remedy) : e)) : undefined);
        if (!type) throw new UsageError(`${kind} has no instance type "${o.type}"`, `See \`tether cloud types ${kind}\`.`);
        const price = `$${type.pricePerHour.toFixed(2)}/h ($${(type.pricePerHour * 24).toFixed(2)}/day)`;
        refuseOverHardCap(kind, o.type, type.pricePerHour);
        if (!o.yes) throw new UsageError(`this launches ${o.type}${o.region ? ` in ${o.region}` : ''} at ${price} until you terminate it`, 'Add --yes to confirm.');
        return await launchCloud(kind, o.type, type, () => price);
      }
      case 'deadman': {
        if (rest.length !== 1 || (!o.disarm && o.minutes === undefined)) throw new UsageError('`tether deadman NAME|ID --minutes N` or `tether deadman NAME|ID --disarm`');
        const rec = pickCloudRecord(engine.ledger.read().resources, rest[0]!);
        if (o.disarm) {
          io.out(`${rec.plugin}: ${await engine.deadman.disarm(rec.id)}`);
          return ExitCode.OK;
        }
        const minutes = Number(o.minutes);
        if (!(minutes > 0)) throw new UsageError(`--minutes must be a number above 0, got "${o.minutes}"`);
        await engine.deadman.request(rec.id, minutes);
        const ev = await engine.deadman.tend();
        const mine = ev.find((e) => e.ledgerId === rec.id);
        const effect = shutdownEffectOf(rec.remote!.provider, rec.remote!.metadata.shutdownBehavior);
        io.out(
          `${rec.plugin}: dead man's switch ${mine?.event === 'armed' ? 'armed' : mine?.event === 'error' ? `requested; not armed yet: ${mine.detail}` : 'requested (armed once the instance answers over SSH)'}: ` +
            `${minutes} min without Tether and it shuts down.${effect ? `\n${effect.text}` : ''}`,
        );
        return mine?.event === 'error' ? ExitCode.FAILED : ExitCode.OK;
      }
      case 'terminate': {
        if (rest.length !== 1) throw new UsageError('`tether terminate ID|NAME [--unmanaged]`');
        return await terminateCloud(rest[0]!);
      }
      case 'cloud': {
        const [sub, ...args] = rest;
        if (sub === 'describe') {
          io.out(await describeCloud(engine, args, o.json));
          return ExitCode.OK;
        }
        if (sub === 'types') {
          if (args.length !== 1) throw new UsageError('`tether cloud types PROVIDER` needs a provider (lambda_labs, runpod, vast_ai, aws)');
          const types = await engine.cloud.catalogue(accountKindOf(args[0]!) ?? args[0]!);
          if (o.json) io.out(JSON.stringify(types, null, 2));
          else for (const t of types) io.out(`${t.name.padEnd(28)} ${`${t.gpuCount}× ${t.gpuType ?? '-'}`.padEnd(26)} $${t.pricePerHour.toFixed(2)}/h  ${t.regionsWithCapacity?.join(', ') ?? ''}`);
          return ExitCode.OK;
        }
        if (sub === 'prices') {
          const d = args.length === 1 ? providerDescriptor(accountKindOf(args[0]!) ?? args[0]!) : undefined;
          if (!d) throw new UsageError('`tether cloud prices PROVIDER [--region R]` needs one provider');
          if (!d.refreshPrices) throw new UsageError(`${d.title} quotes its own prices: it has no price catalogue to refresh`);
          const r = await d.refreshPrices(cloudAccounts[d.kind], { log, stateDir: engine.ledger.stateDir, env: process.env, ...(o.region ? { region: o.region } : {}) });
          if (o.json) io.out(JSON.stringify(r.catalogue, null, 2));
          else {
            for (const line of r.lines) io.out(line);
            io.out(r.summary);
          }
          return ExitCode.OK;
        }
        if (sub === 'launch') {
          if (args.length !== 2) throw new UsageError('`tether cloud launch PROVIDER TYPE [--region R] [--name N] [--ssh-key K] [--image I]`');
          const [providerName, instanceType] = args as [string, string];
          return await launchCloud(accountKindOf(providerName) ?? providerName, instanceType, undefined, (v) => `$${v.pricePerHour.toFixed(2)}/h`);
        }
        if (sub === 'stop') {
          if (args.length !== 1) throw new UsageError('`tether cloud stop NAME|ID [--unmanaged]`');
          const st = await engine.cloud.status();
          const v = pickCloudView(st.instances, args[0]!);
          if (!v.managed && !o.unmanaged) throw new UsageError(notOursMessage(v), 'Add --unmanaged to stop it anyway.');
          await engine.cloud.stop(v, { picked: true });
          io.out(`stopping ${v.name} (${v.providerTitle} ${v.id}): compute billing stops; its disk keeps billing until terminated`);
          return ExitCode.OK;
        }
        if (sub === 'terminate') {
          if (args.length !== 1) throw new UsageError('`tether cloud terminate NAME|ID [--unmanaged]`');
          return await terminateCloud(args[0]!);
        }
        throw new UsageError(`unknown cloud command "${sub ?? ''}"`, 'Use `tether cloud types|launch|stop|terminate|prices`.');
      }
      case 'ledger': {
        if (rest[0] !== 'repair') throw new UsageError('unknown ledger command', 'Use `tether ledger repair`.');
        try {
          engine.ledger.read();
          io.out(`${engine.ledger.file} is intact; nothing to repair`);
          return ExitCode.OK;
        } catch (err) {
          if (!(err instanceof TetherError) || err.name !== 'LedgerCorruptError') throw err;
        }
        const aside = await engine.ledger.moveAside();
        const kept = await engine.ledger.restoreFrom(aside); // cloud, SSH and money records: no process scan finds them
        await engine.reconcile();
        const n = engine.ledger.read().resources.length;
        io.out(`moved the damaged ledger to ${aside}; rebuilt from running processes: ${n} resource(s) found${kept.carried ? `; ${kept.carried} cloud, SSH, container or cost record(s) carried over from the ${kept.from === 'backup' ? 'previous version (ledger.json.bak)' : 'damaged file'}` : ''}`);
        return ExitCode.OK;
      }
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    const e = asTetherError(err);
    io.err(`tether: ${describeError(e)}`);
    return e.exitCode;
  } finally {
    // SSH connections are kept alive for reuse: close them so the CLI exits at once.
    engine?.dispose();
  }
}

function parseGrace(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--grace must be a number of seconds >= 0, got "${v}"`);
  return n * 1000;
}

function renderPlugin(p: PluginStatus): string[] {
  const head = `${p.name.padEnd(20)} ${p.state.padEnd(8)} ${p.processes.length ? `${p.processes.length} process(es)` : ''}${p.host ? `  on ${p.host}` : ''}${p.orphanReason ? `  (orphan: ${p.orphanReason})` : ''}`;
  const lines = [head];
  const c = p.container;
  if (c) {
    const stats = c.memoryBytes !== undefined ? ` cpu ${formatCpu(c.cpuPercent)} mem ${formatBytes(c.memoryBytes)}` : '';
    lines.push(`  container ${c.name} (${c.id.slice(0, 12)}) ${c.image} ${c.state}${c.ports.length ? ` ports ${c.ports.join(', ')}` : ''}${stats}`);
  }
  if (p.problem) lines.push(`  problem: ${p.problem}`);
  for (const x of p.processes) {
    lines.push(`  pid ${String(x.pid).padEnd(8)} ppid ${String(x.ppid).padEnd(8)} ${formatCpu(x.cpuPercent).padStart(6)} ${formatBytes(x.rssBytes).padStart(9)}  ${x.escaped ? '[escaped] ' : ''}${x.command}`);
  }
  if (p.lastExit && !p.processes.length) lines.push(`  last exit: code ${p.lastExit.code ?? '-'}${p.lastExit.signal ? `, signal ${p.lastExit.signal}` : ''} at ${p.lastExit.at}`);
  return lines;
}

function renderHost(h: HostStatus): string[] {
  const lines = [
    `${h.host}${h.target && h.target !== h.host ? ` (${h.target})` : ''}  ${h.state}${h.cloud ? `  cloud instance ${h.cloud.name}` : ''}${h.plugins.length ? `  plugins: ${h.plugins.join(', ')}` : ''}`,
  ];
  if (h.error) lines.push(`  error: ${h.error}${h.retryAt ? ` (next attempt from ${h.retryAt})` : ''}`);
  for (const g of h.gpus ?? []) {
    const mem = g.memoryUsedMiB !== null && g.memoryTotalMiB !== null ? `  ${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB` : '';
    lines.push(`  gpu ${g.index} ${g.name}${g.utilizationPercent !== null ? `  ${g.utilizationPercent}%` : ''}${mem}`);
  }
  return lines;
}

export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  if (!r.configured) out.push(`no ${r.configFile} (see the README, "Configuration")`);
  if (r.configError) out.push(`config error: ${r.configError}`);
  for (const p of r.plugins) out.push(...renderPlugin(p));
  const foreign = r.orphans.filter((o) => !r.plugins.includes(o));
  if (foreign.length) {
    out.push('', 'orphans from other workspaces:');
    for (const p of foreign) out.push(...renderPlugin(p).map((l) => `  ${l}`));
  }
  if (r.hosts.length) {
    out.push('', 'hosts:');
    for (const h of r.hosts) out.push(...renderHost(h).map((l) => `  ${l}`));
  }
  if (r.cloud.instances.length || r.cloud.errors.length) {
    out.push('', 'cloud:');
    for (const i of r.cloud.instances) {
      out.push(
        `  ${i.name.padEnd(20)} ${i.providerTitle} ${i.id ?? '-'} ${i.status}${i.gpuCount ? ` ${i.gpuType ?? 'GPU'}×${i.gpuCount}` : ''} ${i.region ?? ''} $${i.pricePerHour.toFixed(2)}/h $${i.costSoFar.toFixed(2)} so far${i.managed ? '' : i.elsewhere ? ' (unmanaged: Tether-launched elsewhere)' : ' (unmanaged)'}${i.deadman ? ` dead-man ${i.deadman.minutes}m ${i.deadman.state}` : ''}${i.problem && i.managed ? ` — ${i.problem}` : ''}`,
      );
    }
    for (const e of r.cloud.errors) out.push(`  ${e.provider}: ${e.message}`);
  }
  if (r.closedWhileBilling) out.push('', `! ${r.closedWhileBilling.message}`);
  out.push('', `${r.totals.running} running · ${r.totals.processes} process(es) · $${r.totals.costPerHour.toFixed(2)}/h · $${r.totals.costSoFar.toFixed(2)} so far`);
  return out.join('\n');
}

declare const __TETHER_VERSION__: string | undefined;
const VERSION = typeof __TETHER_VERSION__ === 'string' ? __TETHER_VERSION__ : 'dev';
