/**
 * Launches one Kubernetes plugin in its own process (for the crash tests: TETHER_TEST_CRASH_AT
 * kills it at a step of the launch). Reads TETHER_STATE_DIR, KUBECONFIG and K8S_LAUNCH
 * (`{"plugin": NAME, "spec": {…}}`); prints the record as JSON.
 */
import * as os from 'node:os';
import { Ledger, defaultStateDir } from '../../src/core/ledger';
import { KubernetesJobs } from '../../src/backends/kubernetes/jobs';

void (async () => {
  const { plugin, spec } = JSON.parse(process.env.K8S_LAUNCH ?? '{}');
  const ledger = new Ledger(defaultStateDir());
  const k = new KubernetesJobs({ ledger, owner: { kind: 'cli', pid: process.pid, startTime: 0, host: os.hostname() } });
  const rec = await k.start(plugin, spec);
  process.stdout.write(JSON.stringify(rec));
})().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
