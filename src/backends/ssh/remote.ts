/**
 * The remote side, as POSIX sh scripts sent over one SSH exec channel each, and parsers for
 * what they print. Scripts go to `/bin/sh -s` on stdin, so the user's login shell (bash, zsh,
 * fish...) never parses them; every value inside is single-quoted by {@link shQuote}.
 *
 * Three scripts, one round trip each:
 * - start: launches `nohup setsid CMD ARGS` detached (all three streams redirected, so the
 *   channel closes at once) under a small `sh` that records the command's exit code in
 *   `~/.cache/tether/exit/<id>` when it ends on its own, prints the PID and its /proc stat line
 *   (start time = field 22), waits the startup check and says whether the root still runs.
 * - poll: for every tracked resource of a host, walks /proc/PID/task/TID/children from the
 *   identity-checked roots plus every process carrying the resource's marker (setsid escapees),
 *   printing each process's stat line and command line; then the GPUs (nvidia-smi) if present.
 * - stop: the same discovery, then identity-safe SIGTERM, the grace period (re-discovering
 *   processes forked meanwhile), SIGKILL for the survivors, a final check, and a report.
 */
import { parseStat, isGoneState, CLOCK_TICKS_PER_SECOND, type ProcessIdentity } from '../../core/procfs';
import { MARKER_ENV } from '../../core/processTracker';
import { TetherError, ExitCode } from '../../core/errors';

/** Quotes one word for a POSIX shell: `'` … `'`, with each `'` written as `'\''`. */
export function shQuote(s: string): string {
  if (s.includes('\0')) {
    throw new TetherError('A value for a remote command contains a NUL byte', {
      remedy: 'Remove the NUL character from the plugin name, command, arguments or environment.',
      exitCode: ExitCode.USAGE,
    });
  }
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;

function assertId(id: string): void {
  if (!SAFE_ID.test(id)) throw new Error(`invalid resource id ${JSON.stringify(id)}`);
}

/**
 * The root of every remote plugin: runs the command (argv after `$0`), then records its exit code
 * (atomically) where polls find it. Killed by Tether's stop, it records nothing.
 */
export const EXIT_WRAPPER = `"$@"; c=$?; { printf '%s\\n' "$c" > "$TETHER_EXIT_FILE.tmp" && mv -f "$TETHER_EXIT_FILE.tmp" "$TETHER_EXIT_FILE"; } 2>/dev/null; exit $c`;
/** `$0` of the wrapper: how its command line is recognised. */
export const EXIT_WRAPPER_NAME = 'tether-run';
/** Where exit codes are kept on the host (one file per ledger id; pruned after 7 days). */
const EXIT_DIR = '"$HOME/.cache/tether/exit"';

/** True for the command line of the exit-code wrapper (it is shown as Tether's, not the plugin's). */
export function isExitWrapper(command: string | undefined): boolean {
  return !!command && command.includes(` ${EXIT_WRAPPER_NAME} `) && command.startsWith('/bin/sh -c ');
}

/**
 * `rd PID`: reads /proc/PID/stat into S (the line), STATE, PG (process group, field 5) and ST
 * (start time, field 22); fails, with ST empty, when the process is gone or a zombie. Identity is
 * PID plus ST in every remote script (polls, stops, the dead man's switch).
 */
export const RD_FUNCTION = [
  'rd() {',
  '  S=; ST=; PG=; STATE=',
  '  { read -r S < "/proc/$1/stat"; } 2>/dev/null',
  '  [ -n "$S" ] || return 1',
  '  _r=${S##*") "}',
  '  set -f; set -- $_r; set +f',
  '  STATE=$1',
  '  case $STATE in Z|X|x) return 1;; esac',
  '  PG=$3; ST=${20}',
  '  [ -n "$ST" ]',
  '}',
].join('\n');

/** Shared shell functions: `rd` (above) and the marker sweep. */
const PRELUDE = String.raw`
${RD_FUNCTION}
# MKL: " pid:start:id ..." for processes carrying a marker (start = field 22 of its stat: a PID
# alone names nobody). grepm FILES... adds the markers found in them.
MKL=
grepm() {
  _o=$(grep -azsH '^${MARKER_ENV}=' "$@" 2>/dev/null | tr '\0' '\n')
  _m=
  _ifs=$IFS; IFS='
'
  set -f
  for _l in $_o; do
    case $_l in /proc/*/environ:${MARKER_ENV}=*) ;; *) continue;; esac
    _x=${'${'}_l#/proc/}; _x=${'${'}_x%%/*}
    _v=${'${'}_l#*:${MARKER_ENV}=}
    case $_x in ''|*[!0-9]*) continue;; esac
    case $_v in ''|*[!A-Za-z0-9._-]*) continue;; esac
    _m="$_m $_x:$_v"
  done
  set +f
  IFS=$_ifs
  for _l in $_m; do rd "${'${'}_l%%:*}" && MKL="$MKL ${'${'}_l%%:*}:$ST:${'${'}_l#*:}"; done
}
sweep() { MKL=; grepm /proc/[0-9]*/environ; }
# marked ID: sets MKD to " pid:start ..." for processes carrying ID as their marker
marked() {
  MKD=
  for _e in $MKL; do [ "${'${'}_e##*:}" = "$1" ] && MKD="$MKD ${'${'}_e%:*}"; done
}
# walk ID "pid:start ...": every live process of the listed identities ("*" = any start time)
# and their descendants; calls "emit ID PID" with S and ST set.
walk() {
  _id=$1; _q=; _seen=' '
  for _k in $2; do
    _p=${'${'}_k%%:*}; _s=${'${'}_k#*:}
    if rd "$_p" && { [ "$_s" = '*' ] || [ "$ST" = "$_s" ]; }; then _q="$_q $_p"; fi
  done
  while [ -n "$_q" ]; do
    set -f; set -- $_q; set +f
    _p=$1; shift; _q="$*"
    case $_seen in *" $_p "*) continue;; esac
    _seen="$_seen$_p "
    rd "$_p" || continue
    emit "$_id" "$_p"
    for _f in /proc/$_p/task/*/children; do
      _c=; { read -r _c < "$_f"; } 2>/dev/null
      [ -n "$_c" ] && _q="$_q $_c"
    done
  done
}
`.replace(/\$\{'\$\{'\}/g, '${');

export interface RemoteStartSpec {
  /** Ledger id; also the marker value. */
  id: string;
  plugin: string;
  command: string;
  args: readonly string[];
  /** Absolute, or relative to the remote home folder. */
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  /** Seconds the root must survive to count as started. */
  startupCheckSeconds?: number;
  /** Extra marker variables (e.g. TETHER_PLUGIN). */
  markers?: Readonly<Record<string, string>>;
}

/** Log file of a remote resource: `$HOME/.cache/tether/logs/<plugin>-<id>.log` (plugin name sanitised). */
export function remoteLogName(plugin: string, id: string): string {
  return `${plugin.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}-${id}.log`;
}

/** The start script (feed to `/bin/sh -s`). */
export function buildStartScript(spec: RemoteStartSpec): string {
  assertId(spec.id);
  if (!spec.command || spec.command.startsWith('-')) {
    throw new TetherError(`${spec.plugin}: invalid command ${JSON.stringify(spec.command)}`, {
      remedy: 'Set "command" to a program name or path (it may not start with "-").',
      exitCode: ExitCode.USAGE,
    });
  }
  const env: Array<[string, string]> = [...Object.entries(spec.env ?? {}), ...Object.entries(spec.markers ?? {}), [MARKER_ENV, spec.id]];
  for (const [k] of env) {
    if (!ENV_NAME.test(k)) {
      throw new TetherError(`${spec.plugin}: invalid environment variable name ${JSON.stringify(k)}`, {
        remedy: 'Environment variable names are letters, digits and _ and do not start with a digit.',
        exitCode: ExitCode.USAGE,
      });
    }
  }
  const assigns = env.map(([k, v]) => `${k}=${shQuote(v)}`).join(' ');
  const argv = [spec.command, ...spec.args].map(shQuote).join(' ');
  const display = [spec.command, ...spec.args].join(' ').replace(/[\r\n]/g, ' ');
  const cwd = spec.cwd && spec.cwd !== '.' ? spec.cwd : undefined;
  const check = Math.max(0, spec.startupCheckSeconds ?? 0.4);
  return `${PRELUDE}
L="$HOME/.cache/tether/logs"
mkdir -p "$L" || { echo "TETHER_ERR log cannot create $L"; exit 0; }
LOG="$L"/${shQuote(remoteLogName(spec.plugin, spec.id))}
cd "$HOME" 2>/dev/null
${cwd ? `cd -- ${shQuote(cwd)} 2>/dev/null || { echo "TETHER_ERR cwd"; exit 0; }` : ''}
printf '\\n--- %s tether: starting %s (cwd %s)\\n' ${shQuote(new Date().toISOString())} ${shQuote(display)} "$PWD" >> "$LOG"
E=${EXIT_DIR}
mkdir -p "$E" 2>/dev/null && find "$E" -type f -mtime +7 -exec rm -f {} + 2>/dev/null
EF="$E"/${shQuote(spec.id)}
rm -f "$EF"
${assigns} TETHER_EXIT_FILE="$EF" nohup setsid /bin/sh -c ${shQuote(EXIT_WRAPPER)} ${EXIT_WRAPPER_NAME} ${argv} >> "$LOG" 2>&1 < /dev/null &
P=$!
S=; { read -r S < "/proc/$P/stat"; } 2>/dev/null
printf 'TETHER_STARTED %s\\n%s\\nTETHER_LOG %s\\n' "$P" "$S" "$LOG"
${check > 0 ? `sleep ${check} 2>/dev/null || sleep 1` : ''}
if rd "$P"; then echo TETHER_ALIVE; else wait "$P"; echo "TETHER_EXIT $?"; tail -n 5 "$LOG" 2>/dev/null | sed 's/^/TETHER_TAIL /'; fi
`;
}

export interface RemoteStartResult {
  pid: number;
  startTime: number;
  logPath: string;
  alive: boolean;
  exitCode?: number;
  tail: string[];
}

export class RemoteStartError extends TetherError {}

export function parseStartOutput(plugin: string, out: string): RemoteStartResult {
  const lines = out.split('\n');
  const err = lines.find((l) => l.startsWith('TETHER_ERR '));
  if (err) {
    const what = err.slice('TETHER_ERR '.length);
    throw new RemoteStartError(
      what === 'cwd' ? `${plugin}: the remote working folder does not exist` : `${plugin}: ${what}`,
      { remedy: what === 'cwd' ? 'Fix "cwd" (absolute, or relative to the remote home folder).' : 'Check disk space and permissions of ~/.cache on the host.' },
    );
  }
  const i = lines.findIndex((l) => l.startsWith('TETHER_STARTED '));
  if (i < 0) throw new RemoteStartError(`${plugin}: the remote start script printed nothing usable: ${out.slice(0, 200)}`, { remedy: 'Check that /bin/sh, nohup and setsid exist on the host.' });
  const pid = Number(lines[i]!.split(' ')[1]);
  const st = parseStat(lines[i + 1] ?? '');
  const logLine = lines.find((l) => l.startsWith('TETHER_LOG '));
  const exitLine = lines.find((l) => l.startsWith('TETHER_EXIT '));
  return {
    pid,
    startTime: st && st.pid === pid ? st.startTime : 0,
    logPath: logLine ? logLine.slice('TETHER_LOG '.length) : '',
    alive: lines.includes('TETHER_ALIVE'),
    ...(exitLine ? { exitCode: Number(exitLine.split(' ')[1]) } : {}),
    tail: lines.filter((l) => l.startsWith('TETHER_TAIL ')).map((l) => l.slice('TETHER_TAIL '.length)),
  };
}

/** One tracked resource in a poll or stop: its id and the identities known to belong to it. */
export interface RemoteTracked {
  id: string;
  known: readonly ProcessIdentity[];
  /**
   * When the record was made (ms since the epoch, this machine's clock). Identities are ticks since
   * the host's boot: those of a record made before the host's current boot are ignored (a stranger
   * may hold such a PID with the same tick count), allowing {@link BOOT_SKEW_S} of clock skew.
   */
  createdAtMs?: number;
}

/** Clock skew tolerated between this machine and a host when telling a record's boot from the host's current one. */
export const BOOT_SKEW_S = 300;

/**
 * Shell: sets BT to the host's boot time (epoch s), then K to \`known\`, or to nothing when the
 * record was made before that boot.
 */
function knownSinceBoot(r: RemoteTracked): string {
  const known = r.known.map((p) => `${p.pid | 0}:${p.startTime | 0}`).join(' ');
  const since = r.createdAtMs !== undefined && Number.isFinite(r.createdAtMs) ? Math.floor(r.createdAtMs / 1000) : undefined;
  return `K='${known}'${since === undefined ? '' : `; [ -n "$BT" ] && [ $((${since} + ${BOOT_SKEW_S})) -lt "$BT" ] && K=`}`;
}

/** Shell: BT = the host's boot time (epoch s, btime of /proc/stat), or empty. */
const READ_BOOT = `BT=; while read -r _k _v; do [ "$_k" = btime ] && { BT=$_v; break; }; done < /proc/stat
case $BT in ''|*[!0-9]*) BT=;; esac`;

/** The poll script: every tracked tree, then the GPUs. `knownCmd` identities skip re-reading their command line. */
/**
 * What the previous poll of a host saw of the markers: the host's last allocated PID when it
 * started (/proc/sys/kernel/ns_last_pid) and every marker found. The next poll then reads the
 * environment only of PIDs allocated since (usually none): the same scheme as the local tracker.
 */
export interface MarkerSweepState {
  lastPid: number;
  /** Each marked process by PID *and* start time: a cached marker counts only while the same process holds the PID. */
  markers: Array<{ pid: number; startTime: number; id: string }>;
}

/** Largest PID range read incrementally; beyond it (or after a wrap-around) all of /proc is swept. */
const INCREMENTAL_MAX = 512;

export function buildPollScript(
  resources: readonly RemoteTracked[],
  knownCmd: readonly ProcessIdentity[] = [],
  sweepState?: MarkerSweepState,
): string {
  for (const r of resources) assertId(r.id);
  const prevMarkers = (sweepState?.markers ?? []).filter((m) => SAFE_ID.test(m.id)).map((m) => `${m.pid | 0}:${m.startTime | 0}:${m.id}`).join(' ');
  const kc = ` ${knownCmd.map((p) => `${p.pid | 0}:${p.startTime | 0}`).join(' ')} `;
  const body = resources
    .map((r) => `${knownSinceBoot(r)}; marked ${shQuote(r.id)}; walk ${shQuote(r.id)} "$K $MKD"`)
    .join('\n');
  return `${PRELUDE}
export LC_ALL=C
KC=${shQuote(kc)}
emit() {
  case $KC in
    *" $2:$ST "*) _c='=';;
    *) _c=$(tr '\\000\\n\\r' '   ' < "/proc/$2/cmdline" 2>/dev/null);;
  esac
  printf 'P %s\\n%s\\n%s\\n' "$1" "$S" "$_c"
}
${READ_BOOT}
[ -n "$BT" ] && echo "B $BT"
PREV=${sweepState ? sweepState.lastPid | 0 : "''"}
PM=${shQuote(prevMarkers)}
# Not \`read\`: dash and busybox read byte by byte, and a sysctl file answers a read at an offset
# with nothing, so \`read\` would give only the first digit.
NOW=$(cat /proc/sys/kernel/ns_last_pid 2>/dev/null)
case $NOW in ''|*[!0-9]*) NOW=;; esac
if [ -n "$PREV" ] && [ -n "$NOW" ] && [ "$NOW" -ge "$PREV" ] && [ $((NOW - PREV)) -le ${INCREMENTAL_MAX} ]; then
  for _e in $PM; do
    _p=${'${'}_e%%:*}; _s=${'${'}_e#*:}; _s=${'${'}_s%%:*}
    [ "$_p" -gt "$PREV" ] && [ "$_p" -le "$NOW" ] && continue
    # Kept only while the same process holds the PID: the counter may have gone all the way round.
    rd "$_p" && [ "$ST" = "$_s" ] && MKL="$MKL $_e"
  done
  _files=; _p=$((PREV + 1))
  while [ "$_p" -le "$NOW" ]; do
    [ "$_p" != "$$" ] && [ "$_p" != "$PPID" ] && [ -r "/proc/$_p/environ" ] && _files="$_files /proc/$_p/environ"
    _p=$((_p + 1))
  done
  [ -n "$_files" ] && grepm $_files
  echo "SWEEP incremental"
else
  sweep
  echo "SWEEP full"
fi
${body}
${resources.map((r) => `[ -r ${EXIT_DIR}/${shQuote(r.id)} ] && { _c=; read -r _c < ${EXIT_DIR}/${shQuote(r.id)}; echo "C ${r.id} $_c"; }`).join('\n')}
[ -n "$NOW" ] && echo "N $NOW"
for _e in $MKL; do echo "M $_e"; done
if command -v nvidia-smi >/dev/null 2>&1; then
  _g=$(nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits < /dev/null 2>&1)
  printf 'G %s\\n%s\\nGEND\\n' "$?" "$_g"
else
  echo GNONE
fi
echo END
`;
}

export interface RemoteProcStat {
  pid: number;
  ppid: number;
  startTime: number;
  state: string;
  comm: string;
  cpuTicks: number;
  rssBytes: number;
  /** Undefined when the poll was told the command was already known. */
  command?: string;
}

export interface GpuInfo {
  index: number;
  name: string;
  utilizationPercent: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

export interface PollOutput {
  /** Boot time of the host in ms since the epoch. */
  bootTimeMs: number;
  byId: Map<string, RemoteProcStat[]>;
  /** Undefined: no nvidia-smi on the host. */
  gpus?: GpuInfo[];
  /** nvidia-smi exists but failed (its message). */
  gpuError?: string;
  /** For the next poll's incremental marker sweep (undefined: the host has no ns_last_pid). */
  sweepState?: MarkerSweepState;
  /** Whether this poll swept all of /proc or only the PIDs new since the last poll. */
  sweep?: 'full' | 'incremental';
  /** Exit codes recorded by the wrapper of resources whose command ended on its own. */
  exits: Map<string, number>;
  complete: boolean;
}

function num(s: string | undefined): number | null {
  if (s === undefined) return null;
  const n = Number(s.trim());
  return s.trim() === '' || !Number.isFinite(n) ? null : n;
}

/** Parses `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(',').map((x) => x.trim());
    if (f.length < 5) continue;
    // The name may contain commas; the last three fields are numeric.
    const index = Number(f[0]);
    if (!Number.isInteger(index)) continue;
    const tail = f.slice(-3);
    const name = f.slice(1, -3).join(', ');
    out.push({ index, name, utilizationPercent: num(tail[0]), memoryUsedMiB: num(tail[1]), memoryTotalMiB: num(tail[2]) });
  }
  return out;
}

export function parsePollOutput(out: string): PollOutput {
  const lines = out.split('\n');
  const byId = new Map<string, RemoteProcStat[]>();
  let bootTimeMs = 0;
  let gpus: GpuInfo[] | undefined;
  let gpuError: string | undefined;
  let complete = false;
  let lastPid: number | undefined;
  let sweep: 'full' | 'incremental' | undefined;
  const markers: MarkerSweepState['markers'] = [];
  const exits = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('P ')) {
      const id = l.slice(2);
      const st = parseStat(lines[i + 1] ?? '');
      const cmd = lines[i + 2] ?? '';
      i += 2;
      if (!st || isGoneState(st.state)) continue;
      const list = byId.get(id) ?? [];
      if (!byId.has(id)) byId.set(id, list);
      if (list.some((p) => p.pid === st.pid)) continue;
      list.push({
        pid: st.pid,
        ppid: st.ppid,
        startTime: st.startTime,
        state: st.state,
        comm: st.comm,
        cpuTicks: st.cpuTicks,
        rssBytes: st.rssBytes,
        ...(cmd === '=' ? {} : { command: cmd.trim() || `[${st.comm}]` }),
      });
    } else if (l.startsWith('C ')) {
      const m = /^C (\S+) (\d+)$/.exec(l);
      if (m) exits.set(m[1]!, Number(m[2]));
    } else if (l.startsWith('B ')) {
      bootTimeMs = Number(l.slice(2)) * 1000;
    } else if (l.startsWith('G ')) {
      const code = Number(l.slice(2));
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== 'GEND'; i++) body.push(lines[i]!);
      if (code === 0) gpus = parseNvidiaSmi(body.join('\n'));
      else gpuError = body.join(' ').trim() || `nvidia-smi exited with code ${code}`;
    } else if (l.startsWith('N ')) {
      lastPid = Number(l.slice(2));
    } else if (l.startsWith('M ')) {
      const m = /^M (\d+):(\d+):([A-Za-z0-9._-]+)$/.exec(l);
      if (m) markers.push({ pid: Number(m[1]), startTime: Number(m[2]), id: m[3]! });
    } else if (l === 'SWEEP full' || l === 'SWEEP incremental') {
      sweep = l === 'SWEEP full' ? 'full' : 'incremental';
    } else if (l === 'END') {
      complete = true;
    }
  }
  return {
    bootTimeMs,
    byId,
    ...(gpus ? { gpus } : {}),
    ...(gpuError !== undefined ? { gpuError } : {}),
    ...(lastPid !== undefined && Number.isInteger(lastPid) ? { sweepState: { lastPid, markers } } : {}),
    ...(sweep ? { sweep } : {}),
    exits,
    complete,
  };
}

/** The stop script for one resource. */
export function buildStopScript(resource: RemoteTracked, graceMs: number): string {
  assertId(resource.id);
  const ticks = Math.max(0, Math.ceil(graceMs / 100));
  const id = shQuote(resource.id);
  return `${PRELUDE}
export LC_ALL=C
${READ_BOOT}
${knownSinceBoot(resource)}
ALL=' '
emit() { case $ALL in *" $2:$ST "*) ;; *) ALL="$ALL$2:$ST ";; esac; }
collect() { sweep; marked ${id}; walk ${id} "$K $MKD"; }
TERMED=' '; KILLED=' '; DENIED=' '
# sig SIGNAL LISTVAR: signal each identity of ALL not yet in LISTVAR that is still the same process
sig() {
  for _k in $ALL; do
    eval "_done=\\$$2"
    case $_done in *" $_k "*) continue;; esac
    _p=${'${'}_k%%:*}; _s=${'${'}_k#*:}
    rd "$_p" && [ "$ST" = "$_s" ] || continue
    if kill -"$1" "$_p" 2>/dev/null; then eval "$2=\\"\\$$2\\$_k \\""; else
      rd "$_p" && [ "$ST" = "$_s" ] && DENIED="$DENIED$_k "
    fi
  done
}
alive() {
  LIVE=
  for _k in $ALL; do _p=${'${'}_k%%:*}; _s=${'${'}_k#*:}; rd "$_p" && [ "$ST" = "$_s" ] && LIVE="$LIVE $_k"; done
}
nap() { sleep "$1" 2>/dev/null || sleep 1; }
collect
sig TERM TERMED
_i=0
while :; do
  collect; sig TERM TERMED; alive
  [ -z "$LIVE" ] && break
  [ $_i -ge ${ticks} ] && break
  nap 0.1; _i=$((_i+1))
done
if [ -n "$LIVE" ]; then
  _i=0
  while :; do
    collect; sig KILL KILLED; alive
    [ -z "$LIVE" ] && break
    [ $_i -ge 40 ] && break
    nap 0.05; _i=$((_i+1))
  done
fi
alive
for _k in $ALL; do
  case " $LIVE " in *" $_k "*)
    case $DENIED in *" $_k "*) echo "X $_k denied";; *) echo "X $_k left";; esac; continue;;
  esac
  case $KILLED in *" $_k "*) echo "X $_k kill";; *) echo "X $_k term";; esac
done
echo END
`.replace(/\$\{'\$\{'\}/g, '${');
}

export interface RemoteStopReport {
  processes: ProcessIdentity[];
  terminated: number;
  killed: number;
  survivors: ProcessIdentity[];
  denied: ProcessIdentity[];
}

export function parseStopOutput(out: string): RemoteStopReport & { complete: boolean } {
  const r: RemoteStopReport & { complete: boolean } = { processes: [], terminated: 0, killed: 0, survivors: [], denied: [], complete: false };
  for (const l of out.split('\n')) {
    if (l === 'END') r.complete = true;
    const m = /^X (\d+):(\d+) (term|kill|left|denied)$/.exec(l);
    if (!m) continue;
    const id = { pid: Number(m[1]), startTime: Number(m[2]) };
    r.processes.push(id);
    if (m[3] === 'term') r.terminated++;
    else if (m[3] === 'kill') r.killed++;
    else {
      r.survivors.push(id);
      if (m[3] === 'denied') r.denied.push(id);
    }
  }
  return r;
}

/** Wall-clock start of a remote process from its start ticks and the host's boot time. */
export function remoteStartDate(bootTimeMs: number, startTicks: number): Date {
  return new Date(bootTimeMs + (startTicks * 1000) / CLOCK_TICKS_PER_SECOND);
}
