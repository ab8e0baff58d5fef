/**
 * The Kubernetes backend's registration: a declared `"kubernetes": {…}` plugin runs as a Job
 * (kubernetesBackend.ts, jobs.ts). Its code loads on first use, as a chunk of its own
 * (src/backends/lazy.ts), and `@kubernetes/client-node` only on its first call to a cluster.
 */
import { lazyBackend } from '../lazy';
import { kubernetesActions } from './actions';

export const kubernetesBackend = lazyBackend(
  {
    kind: 'kubernetes',
    recordKinds: ['kubernetes'],
    owns: (spec) => !!spec.kubernetes,
    actions: kubernetesActions,
  },
  async () => {
    const { KubernetesBackend } = await import('./kubernetesBackend');
    return (ctx) => new KubernetesBackend(ctx);
  },
);
