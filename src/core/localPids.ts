/**
 * Which processes on this machine a plugin registered through the API manages.
 *
 * A plugin reports PIDs, but a PID only names a local process when the plugin runs here: a
 * `remote_ssh`, cloud or `kubernetes` plugin reports PIDs of another machine (Tether's own
 * RemoteSshPlugin does), and the local process that happens to hold the same number is a
 * stranger. Only the local execution modes ({@link isLocalMode}) are mapped; any other mode,
 * including one Tether does not know, maps to nothing.
 */
import { descendantsOf, identify, selfAndAncestors, type ProcessIdentity } from './procfs';
import { isLocalMode, type LifecycleAwarePlugin, type PluginExecutionMode } from './protocols';

/** True when the plugin's PIDs are this machine's. */
export function pidsAreLocal(plugin: LifecycleAwarePlugin): boolean {
  return isLocalMode(plugin.getExecutionMode() as PluginExecutionMode);
}

/**
 * The PIDs a plugin reports that may name its processes: positive integers (not strings such as
 * "self", which /proc resolves to Tether itself), neither Tether's own process nor one of its
 * ancestors (whose trees hold Tether) nor PID 1.
 */
export function acceptablePluginPids(reported: unknown): number[] {
  if (!Array.isArray(reported)) return [];
  // Tether's own process and its ancestors (a naive in_process plugin returns process.pid: its
  // tree would hold the extension host and everything above it), and PID 1.
  const forbidden = new Set([1, ...selfAndAncestors().map((p) => p.pid)]);
  return [...new Set(reported.filter((p): p is number => typeof p === 'number' && Number.isSafeInteger(p) && p > 1 && !forbidden.has(p)))];
}

/** The live local processes (PID + start time) a plugin manages; [] unless it runs in a local mode. */
export function localManagedIdentities(plugin: LifecycleAwarePlugin): ProcessIdentity[] {
  if (!pidsAreLocal(plugin)) return [];
  const roots = acceptablePluginPids(plugin.getChildPids());
  // The roots' descendants never include Tether: none of the roots is one of its ancestors.
  return [...roots, ...descendantsOf(roots).filter((p) => p !== process.pid)]
    .map(identify)
    .filter((x): x is ProcessIdentity => !!x);
}
