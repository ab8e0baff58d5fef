/**
 * A dead man's switch for a remote host (a rented cloud instance), over SSH.
 *
 * Tether watches idle instances only while the editor runs. To close that gap it arms a timer
 * ON the instance: a small POSIX `sh` watcher, started detached (`nohup setsid`, all three
 * streams redirected, so it outlives the SSH session and the connection), that runs an action
 * (by default an OS shutdown) once nobody has pushed its heartbeat for `timeoutSec`. Tether
 * pushes the heartbeat (one `touch`, one round trip) while it is alive; when the laptop is
 * closed, the pushes stop and the instance ends itself.
 *
 * State on the host, in `~/.tether/deadman/<id>/` (id = Tether's ledger id, a safe charset):
 * - `heartbeat`: its modification time is the last push;
 * - `timeout`, `every`: seconds (the watcher re-reads `timeout` on every check);
 * - `action`: the command, run with `sh -c` when the switch fires;
 * - `pid`, `start`: the watcher's PID and its start time (field 22 of /proc/PID/stat, written
 *   by the watcher itself), so a later disarm or re-arm never signals a stranger that reused
 *   the PID;
 * - `fired`: the host's clock (epoch seconds) when the switch fired; `log`: what happened;
 * - `watch.sh`: the watcher script.
 *
 * The watcher checks every `checkEverySec`: the host's clock (`date +%s%N`, else `date +%s`)
 * against the heartbeat's mtime (`stat -c %.3Y`, else `stat -c %Y`, `date -r` or perl), both of
 * the host's own clock, so the laptop's clock never matters. It fires once the silence reaches
 * `timeoutSec`: never earlier (a whole-second mtime counts as the end of its second), and at
 * most `checkEverySec` (+ < 1 s where only whole seconds are available) later. It exits by
 * itself, without firing, when its state folder is removed or its `pid` file names another
 * process (disarmed or replaced). Needs Linux (/proc), `sh`, `date`, `touch`.
 *
 * What a shutdown does to the bill differs per provider: see {@link selfShutdownEffect}.
 *
 * This layer knows nothing of the editor.
 */
import { ExitCode, TetherError } from '../../core/errors';
import type { ExecOptions, ExecResult } from './connection';
import { RD_FUNCTION, shQuote } from './remote';

/** What the switch needs of a connection: {@link SshConnection.exec} (an SshConnection fits). */
export interface DeadmanConnection {
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
}

export interface ArmOptions {
  /** Tether's ledger id of the instance: letters, digits, `.`, `_`, `-` (not starting with `.`), at most 128. */
  id: string;
  /** Seconds without a push after which the action runs (whole seconds, at least 1). */
  timeoutSec: number;
  /** Shell command run on the host (with `sh -c`) when the switch fires; see {@link defaultShutdownAction}. */
  action: string;
  /** How often the watcher looks; default min(30, timeoutSec / 4), at least 1. */
  checkEverySec?: number;
}

export interface ArmResult {
  /** The watcher's PID on the host and its start time (clock ticks since boot). */
  pid: number;
  startTime: number;
  /** When it was armed, by the host's clock. */
  armedAt: Date;
  /** A previous watcher of the same id that this arm stopped (identity-checked). */
  replacedPid?: number;
}

export interface PushResult {
  /** The state exists on the host (false: never armed, or disarmed). */
  armed: boolean;
  /** The heartbeat was touched. */
  pushed: boolean;
  /** The recorded watcher still runs (same PID and start time). */
  alive: boolean;
  fired?: { at: Date };
}

export interface DeadmanStatus {
  armed: boolean;
  alive: boolean;
  /** Seconds since the last push, by the host's clock (undefined when not armed). */
  lastPushAgeSec?: number;
  timeoutSec?: number;
  checkEverySec?: number;
  pid?: number;
  startTime?: number;
  fired?: { at: Date };
}

export type DisarmOutcome =
  /** Nothing was armed under this id: nothing to do. */
  | 'not-armed'
  /** The watcher (PID and start time checked) was stopped. */
  | 'stopped'
  /** The recorded watcher had already exited (e.g. after firing, or after a reboot). */
  | 'already-exited'
  /** The recorded PID now belongs to another process (start time differs): NOT signalled. */
  | 'pid-mismatch'
  /** No PID was recorded. */
  | 'no-pid'
  /** The watcher ignored TERM and KILL (should not happen); its state is removed, so it exits at its next check. */
  | 'survived';

export interface DisarmResult {
  wasArmed: boolean;
  outcome: DisarmOutcome;
  /** Whether a signal was sent to the recorded PID. */
  signalled: boolean;
  pid?: number;
  /** The state folder is gone. */
  removed: boolean;
  /** One sentence for a log or the UI. */
  reason: string;
}

export class DeadmanError extends TetherError {}

const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Refuses an id that is not a plain file name (before any remote command runs). */
export function assertDeadmanId(id: string): void {
  if (typeof id !== 'string' || !SAFE_ID.test(id)) {
    throw new DeadmanError(`Invalid dead man's switch id ${JSON.stringify(id)}`, {
      remedy: 'Use the ledger id of the instance: letters, digits, ".", "_" and "-", not starting with ".", at most 128 characters.',
      exitCode: ExitCode.USAGE,
    });
  }
}

/** The state folder on the host, relative to the remote home folder. */
export function deadmanDir(id: string): string {
  assertDeadmanId(id);
  return `.tether/deadman/${id}`;
}

function wholeSeconds(what: string, v: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
    throw new DeadmanError(`Invalid ${what} ${String(v)} for the dead man's switch`, {
      remedy: `Give ${what} as a number of seconds greater than 0 and at most ${max}.`,
      exitCode: ExitCode.USAGE,
    });
  }
  return Math.max(1, Math.ceil(v));
}

const MAX_TIMEOUT_SEC = 366 * 24 * 3600;

/** The effective check period: the given one (whole seconds, at least 1), else min(30, timeout / 4), at least 1. */
export function resolveCheckEvery(timeoutSec: number, checkEverySec?: number): number {
  const t = wholeSeconds('timeoutSec', timeoutSec, MAX_TIMEOUT_SEC);
  if (checkEverySec !== undefined) return wholeSeconds('checkEverySec', checkEverySec, MAX_TIMEOUT_SEC);
  return Math.max(1, Math.floor(Math.min(30, t / 4)));
}

/** Shell `${` written as `@{` inside String.raw templates (where `${` would interpolate). */
const sh = (s: string): string => s.replace(/@\{/g, '${');

/**
 * Shared shell functions.
 * - `rd PID`: remote.ts's {@link RD_FUNCTION} (ST start time, PG process group; fails when gone or a zombie).
 * - `mtms FILE`: prints FILE's modification time in epoch ms (stat -c %.3Y, else whole seconds from
 *   stat -c %Y, date -r or perl, counted as the end of that second).
 * - `nowms`: the time in epoch ms (`date +%s%N`, else whole seconds).
 * - `num NAME`: reads a whole number from "$D/NAME" into _v.
 */
const FUNCTIONS = sh(String.raw`
${RD_FUNCTION}
# mtms FILE: FILE's modification time in epoch ms. Whole-second sources (no sub-second stat)
# count as the END of that second, so the switch may fire late by < 1 s but never early.
mtms() {
  _m=$(stat -c %.3Y "$1" 2>/dev/null)
  case $_m in
    [0-9]*.[0-9][0-9][0-9]) _m=@{_m%.*}@{_m#*.}
      case $_m in *[!0-9]*) ;; *) echo "$_m"; return 0;; esac;;
  esac
  _m=$(stat -c %Y "$1" 2>/dev/null)
  case $_m in ''|*[!0-9]*) _m=$(date -r "$1" +%s 2>/dev/null);; esac
  case $_m in ''|*[!0-9]*) _m=$(perl -e 'my @s = stat($ARGV[0]); print $s[9] if @s' "$1" 2>/dev/null);; esac
  case $_m in ''|*[!0-9]*) return 1;; esac
  echo $((_m * 1000 + 999))
}
# nowms: the time in epoch ms (whole seconds where date has no %N: then it errs late, never early).
nowms() {
  _n=$(date +%s%N 2>/dev/null)
  case $_n in ''|*[!0-9]*) ;; *) if [ @{#_n} -ge 19 ]; then echo "@{_n%??????}"; return 0; fi;; esac
  _n=$(date +%s 2>/dev/null)
  case $_n in ''|*[!0-9]*) return 1;; esac
  echo $((_n * 1000))
}
num() {
  _v=; { read -r _v < "$D/$1"; } 2>/dev/null
  case $_v in ''|*[!0-9]*) return 1;; esac
}
`);

/** The watcher, run as `sh watch.sh STATE_DIR`. */
export const WATCHER_SCRIPT = sh(String.raw`# Tether dead man's switch: runs the action (by default a shutdown) once nobody has
# touched "$1/heartbeat" for "$1/timeout" seconds. Remove "$1" to disarm.
D=$1
export LC_ALL=C
cd / 2>/dev/null
${FUNCTIONS}
log() { printf '%s watcher %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" "$$" "$*" 2>/dev/null >> "$D/log"; }
SP=
trap 'if [ -n "$SP" ]; then kill "$SP" 2>/dev/null; fi; log "stopped by a signal"; exit 0' TERM INT
rd "$$" || { log "cannot read /proc/$$/stat"; exit 1; }
printf '%s\n' "$ST" > "$D/start.new" && mv -f "$D/start.new" "$D/start" || exit 1
printf '%s\n' "$$" > "$D/pid.new" && mv -f "$D/pid.new" "$D/pid" || exit 1
A=$(cat "$D/action") || { log "no action file"; exit 1; }
num timeout || { log "no timeout file"; exit 1; }
T=$_v
E=30; num every && E=$_v
LAST=
log "armed: timeout $T s, checking every $E s"
while :; do
  [ -d "$D" ] || exit 0
  _p=; { read -r _p < "$D/pid"; } 2>/dev/null
  if [ "$_p" != "$$" ]; then log "replaced or disarmed (pid file: @{_p:-none}): exiting"; exit 0; fi
  num timeout && T=$_v
  NOW=$(nowms) || NOW=
  M=$(mtms "$D/heartbeat") && LAST=$M
  if [ -n "$NOW" ] && [ -n "$LAST" ] && [ $((NOW - LAST)) -ge $((T * 1000)) ] && [ -d "$D" ]; then
    printf '%s\n' "$((NOW / 1000))" > "$D/fired"
    log "no heartbeat for $((NOW - LAST)) ms (timeout $T s): running the action"
    sh -c "$A" < /dev/null >> "$D/log" 2>&1
    log "the action exited with status $?"
    exit 0
  fi
  sleep "$E" &
  SP=$!
  wait "$SP"
  SP=
done
`);

/** Start of every control script: the state folder and the identity helpers. */
function prelude(id: string): string {
  assertDeadmanId(id);
  return sh(String.raw`export LC_ALL=C
umask 077
D="$HOME/.tether/deadman/"${shQuote(id)}
${FUNCTIONS}
nap() { sleep 0.05 2>/dev/null || sleep 1; }
# mine: P, ST0 = the recorded PID and start time (PG0 = its process group); true when that PID
# still runs with that start time, i.e. it is our watcher and not a stranger that reused the PID.
mine() {
  P=; ST0=; PG0=
  { read -r P < "$D/pid"; } 2>/dev/null
  { read -r ST0 < "$D/start"; } 2>/dev/null
  case $P in ''|*[!0-9]*) P=; return 1;; esac
  rd "$P" || return 1
  PG0=$PG
  [ -n "$ST0" ] && [ "$ST" = "$ST0" ]
}
same() { rd "$P" && [ "$ST" = "$ST0" ]; }
# stopw: after mine succeeded, TERM the watcher (its whole group when it leads one, so its sleep
# goes too), wait up to 2 s, then KILL; true when it is gone.
stopw() {
  if [ "$PG0" = "$P" ]; then kill -s TERM -- "-$P" 2>/dev/null || kill -s TERM "$P" 2>/dev/null
  else kill -s TERM "$P" 2>/dev/null; fi
  _i=0
  while same; do
    if [ $_i -ge 40 ]; then
      same && kill -s KILL "$P" 2>/dev/null
      [ "$PG0" = "$P" ] && kill -s KILL -- "-$P" 2>/dev/null
      nap
      break
    fi
    nap
    _i=$((_i + 1))
  done
  ! same
}
`);
}

export interface ArmScriptOptions {
  id: string;
  timeoutSec: number;
  checkEverySec: number;
  action: string;
}

/** The arm script (for `/bin/sh -s`). Values must already be validated whole seconds. */
export function buildArmScript(o: ArmScriptOptions): string {
  return `${prelude(o.id)}
A=${shQuote(o.action)}
W=${shQuote(WATCHER_SCRIPT)}
T=${o.timeoutSec | 0}
E=${o.checkEverySec | 0}
${sh(String.raw`NOW=$(date +%s 2>/dev/null)
case $NOW in ''|*[!0-9]*) echo "ERR date +%s does not print the time in seconds on this host"; echo END; exit 0;; esac
[ -r "/proc/$$/stat" ] || { echo "ERR no /proc on this host (the watcher needs Linux)"; echo END; exit 0; }
mkdir -p "$D" || { echo "ERR cannot create $D"; echo END; exit 0; }
if mine; then
  if stopw; then echo "REPLACED $P"; else echo "STUCK $P"; fi
elif [ -n "$P" ]; then
  echo "STALE $P"
fi
rm -f "$D/pid" "$D/start" "$D/fired"
touch "$D/heartbeat" || { echo "ERR cannot write $D/heartbeat"; echo END; exit 0; }
mtms "$D/heartbeat" > /dev/null || { echo "ERR cannot read file times on this host (no stat -c, date -r or perl)"; echo END; exit 0; }
{ printf '%s\n' "$T" > "$D/timeout" && printf '%s\n' "$E" > "$D/every" && printf '%s' "$A" > "$D/action" &&
  printf '%s' "$W" > "$D/watch.new" && mv -f "$D/watch.new" "$D/watch.sh"; } || { echo "ERR cannot write the state in $D"; echo END; exit 0; }
printf '%s tether: arming (timeout %s s, checking every %s s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$T" "$E" >> "$D/log"
if command -v setsid > /dev/null 2>&1; then
  nohup setsid /bin/sh "$D/watch.sh" "$D" < /dev/null >> "$D/log" 2>&1 &
else
  nohup /bin/sh "$D/watch.sh" "$D" < /dev/null >> "$D/log" 2>&1 &
fi
_i=0
while [ ! -s "$D/pid" ] && [ $_i -lt 100 ]; do nap; _i=$((_i + 1)); done
if mine; then
  echo "OK $P $ST0 $NOW"
else
  echo "ERR the watcher did not start"
  tail -n 5 "$D/log" 2>/dev/null | sed 's/^/TAIL /'
fi
echo END
`)}`;
}

const FIRED = sh(String.raw`F=; { read -r F < "$D/fired"; } 2>/dev/null
case $F in ''|*[!0-9]*) ;; *) echo "FIRED $F";; esac
`);

export function buildPushScript(id: string): string {
  return `${prelude(id)}
${sh(String.raw`if [ -f "$D/timeout" ]; then
  touch "$D/heartbeat" 2>/dev/null && echo PUSHED
  mine && echo ALIVE
`)}${FIRED}else
  echo NONE
fi
echo END
`;
}

export function buildStatusScript(id: string): string {
  return `${prelude(id)}
${sh(String.raw`if [ -f "$D/timeout" ]; then
  echo ARMED
  if mine; then echo "ALIVE $P $ST0"; elif [ -n "$P" ]; then echo "DEAD $P $ST0"; fi
  NOW=$(nowms) && M=$(mtms "$D/heartbeat") && echo "AGEMS $((NOW - M))"
  num timeout && echo "TIMEOUT $_v"
  num every && echo "EVERY $_v"
`)}${FIRED}fi
echo END
`;
}

export function buildDisarmScript(id: string): string {
  return `${prelude(id)}
${sh(String.raw`if [ ! -d "$D" ]; then echo "R none"; echo END; exit 0; fi
if mine; then
  if stopw; then echo "R stopped $P $ST0"; else echo "R survived $P $ST0"; fi
elif [ -n "$P" ]; then
  if [ -n "$ST" ]; then echo "R mismatch $P $ST0 $ST"; else echo "R gone $P $ST0"; fi
else
  echo "R nopid"
fi
rm -rf "$D" && echo REMOVED
echo END
`)}`;
}

async function run(conn: DeadmanConnection, what: string, id: string, script: string, timeoutMs: number): Promise<string[]> {
  const res = await conn.exec('/bin/sh -s', { stdin: script, timeoutMs });
  const lines = res.stdout.split('\n');
  if (res.code !== 0 || !lines.includes('END')) {
    throw new DeadmanError(
      `Dead man's switch ${id}: the ${what} script failed (exit ${res.code ?? res.signal ?? '?'}): ${(res.stderr || res.stdout).trim().slice(0, 300)}`,
      { remedy: 'Check that the host runs Linux with /bin/sh, date and touch, and that the home folder is writable.' },
    );
  }
  return lines;
}

function firedOf(lines: string[]): { at: Date } | undefined {
  const l = lines.find((x) => x.startsWith('FIRED '));
  return l ? { at: new Date(Number(l.slice(6)) * 1000) } : undefined;
}

/**
 * Arms (or re-arms: the previous watcher of the same id is stopped after checking its PID and
 * start time) a watcher on the host that runs `action` once nobody pushed for `timeoutSec`.
 */
export async function armDeadman(conn: DeadmanConnection, opts: ArmOptions): Promise<ArmResult> {
  assertDeadmanId(opts.id);
  const timeoutSec = wholeSeconds('timeoutSec', opts.timeoutSec, MAX_TIMEOUT_SEC);
  const checkEverySec = resolveCheckEvery(timeoutSec, opts.checkEverySec);
  if (typeof opts.action !== 'string' || !opts.action.trim()) {
    throw new DeadmanError(`Dead man's switch ${opts.id}: no action`, {
      remedy: 'Give the command to run when the switch fires, e.g. defaultShutdownAction().',
      exitCode: ExitCode.USAGE,
    });
  }
  const script = buildArmScript({ id: opts.id, timeoutSec, checkEverySec, action: opts.action });
  const lines = await run(conn, 'arm', opts.id, script, 20_000);
  const err = lines.find((l) => l.startsWith('ERR '));
  const ok = /^OK (\d+) (\d+) (\d+)$/.exec(lines.find((l) => l.startsWith('OK ')) ?? '');
  if (err || !ok) {
    const tail = lines.filter((l) => l.startsWith('TAIL ')).map((l) => l.slice(5));
    throw new DeadmanError(`Dead man's switch ${opts.id}: ${err ? err.slice(4) : 'the arm script printed nothing usable'}${tail.length ? ` (log: ${tail.join(' | ')})` : ''}`, {
      remedy: 'Check that the host runs Linux with /bin/sh, date, touch and setsid, and that ~/.tether is writable.',
    });
  }
  const replaced = /^REPLACED (\d+)$/.exec(lines.find((l) => l.startsWith('REPLACED ')) ?? '');
  return {
    pid: Number(ok[1]),
    startTime: Number(ok[2]),
    armedAt: new Date(Number(ok[3]) * 1000),
    ...(replaced ? { replacedPid: Number(replaced[1]) } : {}),
  };
}

/** Pushes the heartbeat (one round trip) and says whether the watcher still runs and whether it fired. */
export async function pushDeadman(conn: DeadmanConnection, id: string): Promise<PushResult> {
  const lines = await run(conn, 'push', id, buildPushScript(id), 10_000);
  const fired = firedOf(lines);
  return {
    armed: !lines.includes('NONE'),
    pushed: lines.includes('PUSHED'),
    alive: lines.includes('ALIVE'),
    ...(fired ? { fired } : {}),
  };
}

export async function deadmanStatus(conn: DeadmanConnection, id: string): Promise<DeadmanStatus> {
  const lines = await run(conn, 'status', id, buildStatusScript(id), 10_000);
  const val = (k: string): number | undefined => {
    const l = lines.find((x) => x.startsWith(`${k} `));
    const n = l === undefined ? NaN : Number(l.slice(k.length + 1));
    return Number.isFinite(n) ? n : undefined;
  };
  const who = /^(ALIVE|DEAD) (\d+) (\d*)$/.exec(lines.find((l) => /^(ALIVE|DEAD) /.test(l)) ?? '');
  const fired = firedOf(lines);
  const ageMs = val('AGEMS');
  const age = ageMs === undefined ? undefined : Math.max(0, ageMs) / 1000;
  const timeoutSec = val('TIMEOUT');
  const checkEverySec = val('EVERY');
  return {
    armed: lines.includes('ARMED'),
    alive: who?.[1] === 'ALIVE',
    ...(age !== undefined ? { lastPushAgeSec: age } : {}),
    ...(timeoutSec !== undefined ? { timeoutSec } : {}),
    ...(checkEverySec !== undefined ? { checkEverySec } : {}),
    ...(who ? { pid: Number(who[2]) } : {}),
    ...(who && who[3] ? { startTime: Number(who[3]) } : {}),
    ...(fired ? { fired } : {}),
  };
}

/** Stops the watcher (only if its PID still has the recorded start time) and removes the state. Idempotent. */
export async function disarmDeadman(conn: DeadmanConnection, id: string): Promise<DisarmResult> {
  const lines = await run(conn, 'disarm', id, buildDisarmScript(id), 15_000);
  const removed = lines.includes('REMOVED');
  const r = /^R (\S+)(?: (\d+))?(?: (\d*))?(?: (\d+))?$/.exec(lines.find((l) => l.startsWith('R ')) ?? '');
  const kind = r?.[1] ?? '';
  const pid = r?.[2] !== undefined ? Number(r[2]) : undefined;
  const withPid = pid !== undefined ? { pid } : {};
  switch (kind) {
    case 'none':
      return { wasArmed: false, outcome: 'not-armed', signalled: false, removed: true, reason: `Nothing is armed under ${id}.` };
    case 'stopped':
      return { wasArmed: true, outcome: 'stopped', signalled: true, ...withPid, removed, reason: `Stopped the watcher (PID ${pid}, start time checked) and removed its state.` };
    case 'survived':
      return {
        wasArmed: true,
        outcome: 'survived',
        signalled: true,
        ...withPid,
        removed,
        reason: `The watcher (PID ${pid}) did not stop on TERM/KILL; its state is removed, so it exits at its next check without firing.`,
      };
    case 'gone':
      return { wasArmed: true, outcome: 'already-exited', signalled: false, ...withPid, removed, reason: `The watcher (PID ${pid}) had already exited; removed its state.` };
    case 'mismatch':
      return {
        wasArmed: true,
        outcome: 'pid-mismatch',
        signalled: false,
        ...withPid,
        removed,
        reason:
          `PID ${pid} is not the watcher: it started at tick ${r?.[4] ?? '?'}, the watcher was recorded at tick ${r?.[3] || '?'} ` +
          '(the PID was reused, or the record was altered), so it was not signalled. The state is removed; a watcher still running under another PID exits at its next check without firing.',
      };
    case 'nopid':
      return { wasArmed: true, outcome: 'no-pid', signalled: false, removed, reason: 'No watcher PID was recorded; removed the state.' };
    default:
      throw new DeadmanError(`Dead man's switch ${id}: the disarm script printed nothing usable`, {
        remedy: 'Check ~/.tether/deadman on the host by hand.',
      });
  }
}

/**
 * Powers the machine off: with passwordless sudo (the default user of cloud GPU images) or as
 * root; `poweroff` for systems without `shutdown` (BusyBox).
 */
export function defaultShutdownAction(): string {
  return 'sudo -n shutdown -h now || shutdown -h now || sudo -n poweroff || poweroff';
}

export type ShutdownProvider = 'lambda' | 'runpod' | 'vast' | 'aws';

export interface SelfShutdownEffect {
  provider: ShutdownProvider;
  /** True only when an OS shutdown ends ALL billing of the instance. */
  endsBilling: boolean;
  /** One paragraph for the UI. */
  text: string;
  /** Where the facts come from. */
  docs: string[];
}

/**
 * What an OS-level shutdown from inside the instance does to the bill, per provider. The one
 * place these facts live; each entry cites its source.
 */
const EFFECTS: Record<Exclude<ShutdownProvider, 'aws'> | 'aws-stop' | 'aws-terminate', Omit<SelfShutdownEffect, 'provider'>> = {
  // InstanceInitiatedShutdownBehavior ("stop" by default; "terminate" makes an OS shutdown
  // terminate the instance):
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
  // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html
  'aws-terminate': {
    endsBilling: true,
    text:
      'AWS EC2: this instance was launched with InstanceInitiatedShutdownBehavior "terminate", so a shutdown from inside terminates it and its billing ends. ' +
      'Its root EBS volume is deleted with it (DeleteOnTermination, the default for the root volume); other volumes kept on termination keep billing until deleted.',
    docs: [
      'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html',
      'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html',
    ],
  },
  // Stopped instances: no instance-usage charges, attached EBS volumes are still charged:
  // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Stop_Start.html
  'aws-stop': {
    endsBilling: false,
    text:
      'AWS EC2: with the default InstanceInitiatedShutdownBehavior "stop", a shutdown from inside only STOPS the instance: compute billing stops, ' +
      'but its EBS volumes (and any Elastic IP) keep billing until the instance is terminated. Launch with InstanceInitiatedShutdownBehavior "terminate" ' +
      'for the switch to end all billing, or let Tether terminate it through the API.',
    docs: [
      'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Stop_Start.html',
      'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html',
    ],
  },
  // "Billing begins the moment you launch an instance ... and ends the moment you terminate the
  // instance": https://docs.lambda.ai/public-cloud/billing
  lambda: {
    endsBilling: false,
    text:
      'Lambda Cloud: a shutdown from inside does NOT terminate the instance, and Lambda bills an instance from launch until it is terminated ' +
      '(through the API or the console), so the switch powers the machine off but does not end the bill. Keep Tether\'s budget and idle guards on, ' +
      'and terminate the instance through Tether or the Lambda console.',
    docs: ['https://docs.lambda.ai/public-cloud/billing'],
  },
  // Volume disk: "Retained until Pod deleted", billed also while stopped; stopping a Pod releases
  // the GPU: https://docs.runpod.io/pods/storage/types , https://docs.runpod.io/pods/manage-pods
  runpod: {
    endsBilling: false,
    text:
      'RunPod: a pod is a container. A shutdown inside it usually cannot power anything off; at best the container exits and the pod stops ' +
      '(GPU billing stops), and it may simply be restarted. A stopped pod still pays for its volume disk until the pod is terminated. ' +
      'Only terminating the pod (Tether, the API or the console) ends its billing.',
    docs: ['https://docs.runpod.io/pods/storage/types', 'https://docs.runpod.io/pods/manage-pods'],
  },
  // "You are still charged storage costs for stopped instances, so it is important to destroy
  // instances when you are done using them": https://docs.vast.ai/billing-help
  vast: {
    endsBilling: false,
    text:
      'Vast.ai: an instance is a container on a rented machine. Stopping it from inside does not destroy it: at best it ends up stopped, ' +
      'which ends the GPU rental charge, but a stopped instance keeps paying for its storage until it is destroyed (Tether, the API or the console).',
    docs: ['https://docs.vast.ai/billing-help', 'https://docs.vast.ai/cli/reference/stop-instance'],
  },
};

/**
 * What an OS-level shutdown (the switch's default action) does to the bill on a provider.
 * For AWS, pass how the instance was launched (`InstanceInitiatedShutdownBehavior`; EC2's
 * default is "stop").
 */
export function selfShutdownEffect(provider: ShutdownProvider, opts: { awsShutdownBehavior?: 'stop' | 'terminate' } = {}): SelfShutdownEffect {
  const key = provider === 'aws' ? (opts.awsShutdownBehavior === 'terminate' ? 'aws-terminate' : 'aws-stop') : provider;
  const e = EFFECTS[key];
  if (!e) {
    throw new DeadmanError(`Unknown provider ${JSON.stringify(provider)}`, { remedy: 'Use lambda, runpod, vast or aws.', exitCode: ExitCode.USAGE });
  }
  return { provider, ...e, docs: [...e.docs] };
}
