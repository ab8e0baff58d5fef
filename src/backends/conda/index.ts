/** The conda backend: a local process tree run inside a conda environment (see conda.ts). */
import type { PluginSpec } from '../../core/config';
import type { BackendFactory, DeclaredPlugin } from '../backend';
import { LocalBackend, localActions } from '../local';
import { CondaPlugin } from './conda';

class CondaBackend extends LocalBackend {
  override plugin(spec: PluginSpec): DeclaredPlugin {
    return new CondaPlugin(spec, this.deps());
  }
}

export const condaBackend: BackendFactory = {
  kind: 'conda',
  // Its runs are local process trees: their records are the local backend's.
  recordKinds: ['local'],
  owns: (spec) => !!spec.conda,
  actions: localActions,
  create: (ctx) => new CondaBackend(ctx),
};
