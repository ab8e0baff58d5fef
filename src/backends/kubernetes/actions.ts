import { commonActions, type ActionId, type PluginStatus } from '../backend';

/** What the user can do with a Kubernetes plugin now (no client needed: the tree asks it synchronously). */
export function kubernetesActions(s: PluginStatus): ActionId[] {
  const live = s.state === 'running' || s.state === 'starting' || s.state === 'stopping' || s.state === 'orphan';
  const out = commonActions(s, live);
  if (s.ledgerId) out.push('logs');
  return out;
}
