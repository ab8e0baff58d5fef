/**
 * A Kubernetes plugin's declaration, checked before any ledger intent is written, and what Tether
 * derives from it: the Job's name (deterministic from the ledger record, so a retry after a crash
 * finds the Job instead of creating a second), its labels (the ledger's marker), its body, and
 * the Pod's requests that its price is computed from. No client library here (it loads lazily).
 */
import { ExitCode, TetherError } from '../../core/errors';

export {
  ANNOTATION_PLUGIN,
  DEFAULT_GPU_RESOURCE,
  LABEL_LEDGER,
  LABEL_MANAGED_BY,
  LABEL_RECORD,
  QUANTITY,
  kubernetesSpecProblems,
  labelKeyProblem,
  labelValueProblem,
  parseQuantity,
  type KubernetesSpec,
} from '../../core/kubernetesSpec';
import { ANNOTATION_PLUGIN, DEFAULT_GPU_RESOURCE, LABEL_LEDGER, LABEL_MANAGED_BY, LABEL_RECORD, kubernetesSpecProblems, parseQuantity, type KubernetesSpec } from '../../core/kubernetesSpec';

/** Throws a clear error naming every problem of the declaration. */
export function assertKubernetesSpec(plugin: string, k: KubernetesSpec): void {
  const p = kubernetesSpecProblems(k);
  if (p.length) {
    throw new TetherError(`plugin "${plugin}": ${p.map(([at, m]) => `kubernetes${at}: ${m}`).join('; ')}`, { remedy: 'Fix "kubernetes" in .vscode/tether.json; nothing was started.', exitCode: ExitCode.USAGE });
  }
}

/**
 * The Job's name for a ledger record: `tether-<record 8><ledger 8>-<plugin>` cut to 52 characters
 * (a Pod adds "-xxxxx", and a Job's name is a label value: at most 63), a DNS-1123 label.
 */
export function jobNameFor(recordId: string, ledger: string, plugin: string): string {
  const slug = plugin.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'job';
  const head = `tether-${recordId.slice(0, 8).toLowerCase()}${ledger}`;
  return `${head}-${slug}`.slice(0, 52).replace(/-+$/, '');
}

/** What a Pod asks for, in units a price table uses. */
export interface PodRequests {
  gpus: number;
  cpus: number;
  memoryGiB: number;
}

/** The per-Pod requests of a declaration (a limit without a request counts as the request, as the API defaults it). */
export function requestsOf(k: KubernetesSpec): PodRequests {
  const req = { ...(k.resources?.limits ?? {}), ...(k.resources?.requests ?? {}) };
  const gpuRes = k.gpuResource ?? DEFAULT_GPU_RESOURCE;
  const gpus = k.gpus ?? (req[gpuRes] !== undefined ? parseQuantity(req[gpuRes]!) : 0);
  return { gpus, cpus: req.cpu !== undefined ? parseQuantity(req.cpu) : 0, memoryGiB: req.memory !== undefined ? parseQuantity(req.memory) / 2 ** 30 : 0 };
}

/** The requests of a Pod object as the API returns it (every container; a limit stands for a missing request). */
export function requestsOfPod(pod: { spec?: { containers?: Array<{ resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> } }> } }, gpuResource = DEFAULT_GPU_RESOURCE): PodRequests {
  const sum: PodRequests = { gpus: 0, cpus: 0, memoryGiB: 0 };
  for (const c of pod.spec?.containers ?? []) {
    const r = { ...(c.resources?.limits ?? {}), ...(c.resources?.requests ?? {}) } as Record<string, string | number>;
    if (r[gpuResource] !== undefined) sum.gpus += parseQuantity(r[gpuResource]!) || 0;
    if (r.cpu !== undefined) sum.cpus += parseQuantity(r.cpu) || 0;
    if (r.memory !== undefined) sum.memoryGiB += (parseQuantity(r.memory) || 0) / 2 ** 30;
  }
  return sum;
}

/** "1 GPU, 4 CPU, 16 GiB" */
export function describeRequests(r: PodRequests): string {
  const n = (x: number) => String(Math.round(x * 1000) / 1000);
  return [r.gpus ? `${n(r.gpus)} GPU` : '', r.cpus ? `${n(r.cpus)} CPU` : '', r.memoryGiB ? `${n(r.memoryGiB)} GiB` : ''].filter(Boolean).join(', ') || 'no requests';
}

/** The Job Tether creates for a record (batch/v1), labelled with the ledger's marker. */
export function jobBody(o: { name: string; namespace: string; plugin: string; recordId: string; ledger: string; spec: KubernetesSpec }): Record<string, unknown> {
  const k = o.spec;
  const marker = { [LABEL_MANAGED_BY]: 'tether', [LABEL_RECORD]: o.recordId, [LABEL_LEDGER]: o.ledger };
  const labels = { ...(k.labels ?? {}), ...marker };
  const gpuRes = k.gpuResource ?? DEFAULT_GPU_RESOURCE;
  const limits: Record<string, string> = { ...(k.resources?.limits ?? {}) };
  const requests: Record<string, string> = { ...(k.resources?.requests ?? {}) };
  if (k.gpus) {
    // Extended resources are not overcommitted: the limit is required and the request equals it.
    limits[gpuRes] = String(k.gpus);
    requests[gpuRes] = String(k.gpus);
  }
  const resources = { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: o.name, namespace: o.namespace, labels, annotations: { [ANNOTATION_PLUGIN]: o.plugin } },
    spec: {
      backoffLimit: k.backoffLimit ?? 0,
      template: {
        metadata: { labels, annotations: { [ANNOTATION_PLUGIN]: o.plugin } },
        spec: {
          restartPolicy: 'Never',
          ...(k.serviceAccountName ? { serviceAccountName: k.serviceAccountName } : {}),
          ...(k.nodeSelector ? { nodeSelector: k.nodeSelector } : {}),
          containers: [
            {
              name: 'main',
              image: k.image,
              ...(k.command ? { command: k.command } : {}),
              ...(k.args ? { args: k.args } : {}),
              ...(k.env && Object.keys(k.env).length ? { env: Object.entries(k.env).map(([name, value]) => ({ name, value })) } : {}),
              ...(Object.keys(resources).length ? { resources } : {}),
            },
          ],
        },
      },
    },
  };
}
