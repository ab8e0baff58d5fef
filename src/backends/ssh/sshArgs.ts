/**
 * Command lines for the `ssh` binary. Every one ends its options with `--` before the host, so a
 * host spelled like an option (`-oProxyCommand=./x.sh`) is a host name to ssh, never an option
 * that runs a local program (host specs starting with "-" are also refused earlier, by the
 * config schema and parseHostSpec).
 */
import { parseHostSpec } from './hosts';

/** ssh's argv for a destination: `[-p PORT] -- [user@]host`, whatever the host looks like. */
export function sshArgv(dest: { user?: string; host: string; port?: number }): string[] {
  return [...(dest.port !== undefined ? ['-p', String(dest.port)] : []), '--', `${dest.user !== undefined ? `${dest.user}@` : ''}${dest.host}`];
}

/**
 * ssh's argv for a Tether host spec: "user@host:port" becomes `-p PORT -- user@host`, an alias
 * `-- alias`. An invalid spec (one starting with "-" included) is refused with a HostSpecError.
 */
export function sshArgsForHost(spec: string): string[] {
  return sshArgv(parseHostSpec(spec));
}
