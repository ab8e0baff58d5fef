/**
 * A Kubernetes plugin's declaration, checked before any ledger intent is written, and what Tether
 * derives from it: the Job's name (deterministic from the ledger record, so a retry after a crash
 * finds the Job instead of creating a second), its labels (the ledger's marker), its body, and
 * the Pod's requests that its price is computed from. No client library here (it loads lazily).
 */
import { ExitCode, TetherError } from '../../core/errors';

/** `"kubernetes": {…}` of a plugin in `.vscode/tether.json`. */
export interface KubernetesSpec {
  /** kubeconfig context (default: the kubeconfig's current-context). */
  context?: string;
  /** Namespace (default: the context's namespace, else "default"). */
  namespace?: string;
  image: string;
  /** The container's entrypoint (default: the image's). */
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Whole GPUs per Pod (`nvidia.com/gpu`, or `gpuResource`). */
  gpus?: number;
  /** The extended resource name of a GPU. Default `nvidia.com/gpu`. */
  gpuResource?: string;
  /** Requests and limits per Pod as Kubernetes spells them (`cpu`, `memory`, …). */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Retries of a failed Pod (Job backoffLimit). Default 0: a failed run is not silently rerun. */
  backoffLimit?: number;
  /** Extra labels of the Job and its Pods. */
  labels?: Record<string, string>;
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
}

/** Label keys of Tether's marker. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_RECORD = 'tether.dev/record';
export const LABEL_LEDGER = 'tether.dev/ledger';
export const ANNOTATION_PLUGIN = 'tether.dev/plugin';
export const DEFAULT_GPU_RESOURCE = 'nvidia.com/gpu';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** resource.Quantity (k8s.io/apimachinery/pkg/api/resource). */
export const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

/** A resource.Quantity as a number of base units (cores, bytes, devices); NaN when malformed. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  const s = m[2] ?? '';
  const bin: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  const dec: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  if (s in bin) return n * bin[s]!;
  if (s in dec) return n * dec[s]!;
  return n * 10 ** Number(s.slice(1));
}

/** Why a label key is refused by the API server, or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : ['', key];
  if (slash >= 0 && (!prefix || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return 'its prefix must be a DNS subdomain (lower case letters, digits, "-" and ".")';
  if (!name || name.length > 63 || !QUALIFIED_NAME.test(name)) return 'its name must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit';
  return undefined;
}

/** Why a label value is refused by the API server, or undefined. */
export function labelValueProblem(v: string): string | undefined {
  if (v === '') return undefined;
  return v.length > 63 || !QUALIFIED_NAME.test(v) ? 'a label value must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit' : undefined;
}

/**
 * Every problem of a declaration the API server (or Tether) would refuse, as [JSON pointer under
 * the spec, message]: checked at config load, before any ledger intent.
 */
export function kubernetesSpecProblems(k: KubernetesSpec): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!k.image || !k.image.trim()) out.push(['/image', 'an image is required']);
  else if (/\s/.test(k.image)) out.push(['/image', 'an image reference holds no whitespace']);
  if (k.namespace !== undefined && (k.namespace.length > 63 || !DNS1123_LABEL.test(k.namespace))) {
    out.push(['/namespace', `"${k.namespace}" is not a namespace name: at most 63 lower case letters, digits and "-", starting and ending with a letter or digit`]);
  }
  if (k.gpus !== undefined && (!Number.isInteger(k.gpus) || k.gpus < 0)) out.push(['/gpus', 'GPUs are whole devices: an integer >= 0']);
  if (k.gpuResource !== undefined && (!k.gpuResource.includes('/') || labelKeyProblem(k.gpuResource))) out.push(['/gpuResource', 'an extended resource name such as "nvidia.com/gpu" or "amd.com/gpu"']);
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, q] of Object.entries(k.resources?.[kind] ?? {})) {
      const at = `/resources/${kind}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!QUANTITY.test(String(q))) out.push([at, `"${q}" is not a Kubernetes quantity (e.g. "4", "500m", "16Gi")`]);
      else if (parseQuantity(String(q)) < 0) out.push([at, 'must be >= 0']);
      if (labelKeyProblem(name)) out.push([at, `"${name}" is not a resource name`]);
    }
  }
  const gpuRes = k.gpuResource ?? DEFAULT_GPU_RESOURCE;
  if (k.gpus !== undefined && (k.resources?.requests?.[gpuRes] !== undefined || k.resources?.limits?.[gpuRes] !== undefined)) {
    out.push(['/gpus', `give the GPUs once: "gpus" or resources "${gpuRes}", not both`]);
  }
  for (const [name, q] of Object.entries(k.resources?.requests ?? {})) {
    const lim = k.resources?.limits?.[name];
    if (lim !== undefined && QUANTITY.test(String(q)) && QUANTITY.test(String(lim)) && parseQuantity(q) > parseQuantity(lim)) {
      out.push([`/resources/requests/${name}`, `the request ${q} is above the limit ${lim}`]);
    }
  }
  for (const [key, v] of Object.entries(k.labels ?? {})) {
    const at = `/labels/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const p = labelKeyProblem(key) ?? labelValueProblem(String(v));
    if (p) out.push([at, p]);
    if (key === LABEL_RECORD || key === LABEL_LEDGER || key === LABEL_MANAGED_BY) out.push([at, `"${key}" is Tether's own marker label`]);
  }
  for (const [key, v] of Object.entries(k.nodeSelector ?? {})) {
    const p = labelKeyProblem(key) ?? labelValueProblem(String(v));
    if (p) out.push([`/nodeSelector/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, p]);
  }
  if (k.serviceAccountName !== undefined && (k.serviceAccountName.length > 253 || !DNS1123_SUBDOMAIN.test(k.serviceAccountName))) out.push(['/serviceAccountName', 'not a service account name']);
  for (const [name] of Object.entries(k.env ?? {})) if (!name || name.includes('=')) out.push([`/env/${name}`, 'invalid environment variable name']);
  if (k.backoffLimit !== undefined && (!Number.isInteger(k.backoffLimit) || k.backoffLimit < 0)) out.push(['/backoffLimit', 'an integer >= 0']);
  return out;
}

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
