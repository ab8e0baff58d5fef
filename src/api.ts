/**
 * Tether's public API: what `vscode.extensions.getExtension('tether-dev.tether').activate()`
 * returns. Other extensions register plugins that implement the lifecycle-aware and/or
 * cloud-aware protocol; Tether then shows them in its tree and status bar, watches their
 * process trees, and includes them in "Clean up everything".
 *
 * Types only (no `vscode` import), so another extension can copy or import this file.
 */
import type { CloudAwarePlugin, LifecycleAwarePlugin } from './core/protocols';

export type {
  CloudAwarePlugin,
  LifecycleAwarePlugin,
  RemoteResourceInfo,
} from './core/protocols';
export { CloudProviderType, PluginExecutionMode } from './core/protocols';

/** How a registered plugin is shown. */
export interface RegisterOptions {
  /** Unique among the plugins your extension registers; shown in the tree. */
  name: string;
  title?: string;
  description?: string;
}

/** Anything with a `dispose()`: `vscode.Disposable` satisfies it. */
export interface TetherDisposable {
  dispose(): void;
}

export interface TetherApi {
  /** Version of this API. */
  readonly apiVersion: 1;
  /**
   * Registers a plugin. It must implement at least one of the two protocols (checked
   * structurally, as `isLifecycleAware` / `isCloudAware` do). Dispose the result to unregister;
   * unregistering does not stop anything.
   * @throws TypeError if the object implements neither protocol or the name is taken.
   */
  registerPlugin(plugin: LifecycleAwarePlugin | CloudAwarePlugin, options: RegisterOptions): TetherDisposable;
  /** Names of the currently registered plugins. */
  registeredPlugins(): string[];
  /** Polls now and resolves when the tree and status bar show the result. */
  refresh(): Promise<void>;
}
