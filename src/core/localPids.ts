/**
 * Which processes on this machine a plugin registered through the API manages.
 *
 * A plugin reports PIDs, but a PID only names a local process when the plugin runs here: a
 * `remote_ssh`, cloud or `kubernetes` plugin reports PIDs of another machine (Tether's own
 * RemoteSshPlugin does), and the local process that happens to hold the same number is a
 * stranger. Only the local execution modes ({@link isLocalMode}) are mapped; any other mode,
 * including one Tether does not know, maps to nothing.
 */
import { identify, type ProcessIdentity } from './procfs';
import { getAllManagedPids, isLocalMode, type LifecycleAwarePlugin, type PluginExecutionMode } from './protocols';

/** True when the plugin's PIDs are this machine's. */
export function pidsAreLocal(plugin: LifecycleAwarePlugin): boolean {
  return isLocalMode(plugin.getExecutionMode() as PluginExecutionMode);
}

/** The live local processes (PID + start time) a plugin manages; [] unless it runs in a local mode. */
export function localManagedIdentities(plugin: LifecycleAwarePlugin): ProcessIdentity[] {
  if (!pidsAreLocal(plugin)) return [];
  return getAllManagedPids(plugin)
    .map(identify)
    .filter((x): x is ProcessIdentity => !!x);
}
