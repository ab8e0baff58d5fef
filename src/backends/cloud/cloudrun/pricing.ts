/**
 * What a Cloud Run job execution costs, without any call (Cloud Run's API quotes no price): the
 * shapes Tether offers, their limits, a dated price table and the billing rule.
 *
 * Billing (https://cloud.google.com/run/pricing): "Cloud Run charges you only for the resources
 * you use, rounded up to the nearest 100 millisecond"; jobs are always billed like instance-based
 * services — every task instance is billed for its whole life, from start to shutdown, by
 * vCPU-seconds, GiB-seconds and (with a GPU) GPU-seconds; there is no per-request fee. An
 * execution that waits for resources (no task started) bills nothing; one that has ended bills
 * nothing (a job with no running execution costs nothing). The monthly free tier (billing
 * account wide) is not deducted: Tether shows the price before it.
 *
 * Limits (run/v2 proto k8s.min.proto ResourceRequirements: "The only supported values for CPU
 * are '1', '2', '4', and '8'", "The only supported 'nvidia.com/gpu' value is '1'"; CPU-to-memory
 * table of https://cloud.google.com/run/docs/configuring/jobs/cpu: 1 vCPU up to 4 GiB, 2 up to
 * 8 GiB, 4: 2–16 GiB, 8: 4–32 GiB; an L4 GPU needs at least 4 vCPU and 16 GiB,
 * https://cloud.google.com/run/docs/configuring/jobs/gpu).
 */

/** The shipped price table: Tier 1 prices for jobs, in USD. */
export const CLOUD_RUN_PRICES = {
  asOf: '2026-12-01',
  source: 'https://cloud.google.com/run/pricing',
  /** "Services with CPU always allocated / Jobs", Tier 1: $0.00001800 / vCPU-second, $0.00000200 / GiB-second. */
  vcpuSecond: 0.000018,
  gibSecond: 0.000002,
  /** NVIDIA L4, Tier 1, without zonal redundancy (the setting Tether launches GPU jobs with): $0.0001867 / GPU-second. */
  gpuSecond: { 'nvidia-l4': 0.0001867 } as Record<string, number>,
  /** Regions these prices hold for (Cloud Run's pricing Tier 1). Other regions are priced higher (Tier 2): not shipped, refused. */
  tier1Regions: ['us-central1', 'us-east1', 'us-east4', 'us-west1', 'europe-west1', 'europe-west4', 'europe-north1', 'asia-east1', 'asia-northeast1'],
  /** Tier 1 regions offering each GPU to jobs (https://cloud.google.com/run/docs/configuring/jobs/gpu). */
  gpuRegions: { 'nvidia-l4': ['us-central1', 'us-east4', 'europe-west1', 'europe-west4'] } as Record<string, string[]>,
};

export { CLOUD_RUN_BILLING, CLOUD_RUN_TITLE } from './billing';

/** One task instance: vCPUs, memory and an optional GPU. */
export interface CloudRunShape {
  cpu: number;
  memoryGiB: number;
  gpu?: 'nvidia-l4';
}

const TYPE = /^(?:(l4)-)?(\d+)vcpu-(\d+)gib$/;

/** `4vcpu-16gib`, `l4-4vcpu-16gib`. */
export function cloudRunTypeName(s: CloudRunShape): string {
  return `${s.gpu ? 'l4-' : ''}${s.cpu}vcpu-${s.memoryGiB}gib`;
}

/** The shape a type name stands for, or undefined when it is not one. */
export function parseCloudRunType(name: string): CloudRunShape | undefined {
  const m = TYPE.exec(name.trim().toLowerCase());
  if (!m) return undefined;
  return { cpu: Number(m[2]), memoryGiB: Number(m[3]), ...(m[1] ? { gpu: 'nvidia-l4' as const } : {}) };
}

const MEMORY_RANGE: Record<number, [number, number]> = { 1: [1, 4], 2: [1, 8], 4: [2, 16], 8: [4, 32] };

/** Why Cloud Run would refuse this shape, or undefined. */
export function shapeProblem(s: CloudRunShape): string | undefined {
  const range = MEMORY_RANGE[s.cpu];
  if (!range) return `Cloud Run jobs take 1, 2, 4 or 8 vCPU, not ${s.cpu}`;
  if (s.memoryGiB < range[0] || s.memoryGiB > range[1]) return `${s.cpu} vCPU take ${range[0]} to ${range[1]} GiB of memory, not ${s.memoryGiB}`;
  if (s.gpu && (s.cpu < 4 || s.memoryGiB < 16)) return 'an L4 GPU needs at least 4 vCPU and 16 GiB of memory';
  return undefined;
}

/**
 * The shapes the catalogue lists: each CPU count with memory in powers of two within its range,
 * and the L4 GPU shapes (`cloud launch` also takes any other valid `NvcpuMgib` name).
 */
export const CLOUD_RUN_SHAPES: CloudRunShape[] = [
  ...[1, 2, 4, 8].flatMap((cpu) => [1, 2, 4, 8, 16, 32].filter((m) => m >= MEMORY_RANGE[cpu]![0] && m <= MEMORY_RANGE[cpu]![1]).map((memoryGiB) => ({ cpu, memoryGiB }))),
  { cpu: 4, memoryGiB: 16, gpu: 'nvidia-l4' },
  { cpu: 8, memoryGiB: 16, gpu: 'nvidia-l4' },
  { cpu: 8, memoryGiB: 32, gpu: 'nvidia-l4' },
];

/** The type name `--cpu N --memory M[Gi] [--gpu l4]` stand for, or undefined when neither is given (a bad value: a usage error). */
export function cloudRunTypeFromFlags(f: { cpu?: string; memory?: string; gpu?: string }): string | undefined {
  if (f.cpu === undefined && f.memory === undefined && f.gpu === undefined) return undefined;
  const gpu = f.gpu === undefined ? undefined : f.gpu.trim().toLowerCase();
  if (gpu !== undefined && !['l4', 'nvidia-l4', '1'].includes(gpu)) throw new RangeError(`--gpu takes l4 (Cloud Run jobs offer one NVIDIA L4 per task), not "${f.gpu}"`);
  const cpu = f.cpu === undefined ? (gpu ? 4 : 1) : Number(f.cpu);
  const mem = f.memory === undefined ? (gpu ? 16 : 2) : parseMemoryGiB(/^\d+(\.\d+)?$/.test(f.memory.trim()) ? `${f.memory.trim()}Gi` : f.memory.trim());
  if (!Number.isInteger(cpu) || cpu <= 0) throw new RangeError(`--cpu must be a whole number of vCPU (1, 2, 4 or 8), not "${f.cpu}"`);
  if (mem === undefined || !Number.isInteger(mem) || mem <= 0) throw new RangeError(`--memory must be whole GiB (e.g. 16 or 16Gi), not "${f.memory}"`);
  return cloudRunTypeName({ cpu, memoryGiB: mem, ...(gpu ? { gpu: 'nvidia-l4' as const } : {}) });
}

/** USD per hour of one task instance of this shape in a region, or undefined when no price is shipped for the region. */
export function shapePricePerHour(s: CloudRunShape, region: string | undefined): number | undefined {
  if (region !== undefined && !CLOUD_RUN_PRICES.tier1Regions.includes(region)) return undefined;
  const gpu = s.gpu ? CLOUD_RUN_PRICES.gpuSecond[s.gpu] : 0;
  if (gpu === undefined) return undefined;
  return Math.round((s.cpu * CLOUD_RUN_PRICES.vcpuSecond + s.memoryGiB * CLOUD_RUN_PRICES.gibSecond + gpu) * 3600 * 1e6) / 1e6;
}

/** The regions a shape can run in at a shipped price. */
export function shapeRegions(s: CloudRunShape): string[] {
  return s.gpu ? (CLOUD_RUN_PRICES.gpuRegions[s.gpu] ?? []) : [...CLOUD_RUN_PRICES.tier1Regions];
}

/** Parses Kubernetes-style quantities as Cloud Run writes them: memory "512Mi", "16Gi", "2G"; CPU "1", "4", "1000m". */
export function parseMemoryGiB(q: string | undefined): number | undefined {
  if (!q) return undefined;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const f: Record<string, number> = { Ki: 2 ** -20, Mi: 2 ** -10, Gi: 1, Ti: 2 ** 10, k: 1e3 / 2 ** 30, M: 1e6 / 2 ** 30, G: 1e9 / 2 ** 30, T: 1e12 / 2 ** 30 };
  return m[2] ? n * f[m[2]]! : n / 2 ** 30;
}

export function parseCpu(q: string | undefined): number | undefined {
  if (!q) return undefined;
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(q.trim());
  if (!m) return undefined;
  return m[2] ? Number(m[1]) / 1000 : Number(m[1]);
}
