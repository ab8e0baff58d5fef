/**
 * A Kubernetes plugin's declaration (`"kubernetes": {…}` in `.vscode/tether.json`) and the rules
 * the API server would apply to it, checked when the config is loaded: before any ledger intent.
 * The backend (src/backends/kubernetes/) builds the Job from it.
 */

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
export function kubernetesSpecProblems(spec: KubernetesSpec): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  // Types first (the JSON schema only names the fields, to keep the bundled validator small);
  // a field of the wrong type is left out of the checks below.
  const x = { ...spec } as unknown as Record<string, unknown>;
  const isStr = (v: unknown) => typeof v === 'string';
  const isStrList = (v: unknown) => Array.isArray(v) && v.every(isStr);
  const isStrMap = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(isStr);
  const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  const want: Record<string, [(v: unknown) => boolean, string]> = {
    context: [isStr, 'a string'],
    namespace: [isStr, 'a string'],
    image: [isStr, 'a string'],
    gpuResource: [isStr, 'a string'],
    serviceAccountName: [isStr, 'a string'],
    command: [isStrList, 'an array of strings'],
    args: [isStrList, 'an array of strings'],
    env: [isStrMap, 'an object of strings'],
    labels: [isStrMap, 'an object of strings'],
    nodeSelector: [isStrMap, 'an object of strings'],
    gpus: [isCount, 'a whole number of GPUs >= 0'],
    backoffLimit: [isCount, 'an integer >= 0'],
    resources: [(v) => !!v && typeof v === 'object' && !Array.isArray(v) && Object.entries(v).every(([kk, m]) => (kk === 'requests' || kk === 'limits') && isStrMap(m)), '{"requests": {NAME: QUANTITY}, "limits": {NAME: QUANTITY}} with quantities as strings'],
  };
  for (const [key, [ok, what]] of Object.entries(want)) {
    if (x[key] !== undefined && !ok(x[key])) {
      out.push([`/${key}`, `must be ${what}`]);
      delete x[key];
    }
  }
  const k = x as unknown as KubernetesSpec;
  if (typeof k.image !== 'string' && out.some(([at]) => at === '/image')) k.image = 'x';
  if (k.context !== undefined && !k.context.trim()) out.push(['/context', 'a context name (as `kubectl config get-contexts` lists it), or leave it out for the current context']);
  if (!k.image || !k.image.trim()) out.push(['/image', 'an image is required']);
  else if (/\s/.test(k.image)) out.push(['/image', 'an image reference holds no whitespace']);
  if (k.namespace !== undefined && (k.namespace.length > 63 || !DNS1123_LABEL.test(k.namespace))) {
    out.push(['/namespace', `"${k.namespace}" is not a namespace name: at most 63 lower case letters, digits and "-", starting and ending with a letter or digit`]);
  }
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
  return out;
}
