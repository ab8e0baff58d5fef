/**
 * The Docker backend: a declared image run as a container labelled with the ledger's marker
 * (docker.ts); its host process tree is shown below it, and only this ledger's containers are
 * ever stopped. Its code (backend.ts, docker.ts, dockerode) loads on first use.
 */
import { commonActions, type ActionId, type PluginStatus } from '../backend';
import { lazyBackend } from '../lazy';

/** What the user can do with one of its resources now. */
export function dockerActions(s: PluginStatus): ActionId[] {
  const running = s.container?.state === 'running';
  const out = commonActions(s, s.processes.length > 0 || running);
  if (s.ledgerId || s.logPath) out.push('logs');
  if (running) out.push('shell');
  return out;
}

export const dockerBackend = lazyBackend(
  {
    kind: 'docker',
    recordKinds: ['docker'],
    owns: (spec) => !!spec.docker,
    actions: dockerActions,
  },
  async () => {
    const { DockerBackend } = await import('./backend');
    return (ctx) => new DockerBackend(ctx);
  },
);
