/**
 * ECS task sizes as Tether "instance types", parsed and validated without the SDK (so a bad size
 * is refused before any ledger intent, and the catalogue loads without a network call).
 *
 * Scheme: `<launch>-<vCPU>vcpu-<GB>gb[-<N>gpu][-arm64]`, e.g. `fargate-1vcpu-2gb`,
 * `fargate-0.25vcpu-0.5gb`, `fargate-4vcpu-8gb-arm64`, `ec2-4vcpu-16gb-1gpu`.
 * - `launch`: `fargate` (launchType FARGATE) or `ec2` (launchType EC2, on the cluster's container instances);
 * - vCPU and GB are the *task-level* `cpu` (×1024 units) and `memory` (×1024 MiB) of the task definition;
 * - `gpu`: a GPU `resourceRequirements` on the container (EC2 launch type only: Fargate has no GPUs);
 * - `arm64`: `runtimePlatform.cpuArchitecture` ARM64 (default X86_64).
 *
 * Fargate accepts only these task CPU / memory pairs (Linux), "Task CPU and memory",
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size :
 *   256 (.25 vCPU): 512, 1024, 2048 MiB
 *   512 (.5 vCPU): 1024–4096 in 1024 steps
 *   1024 (1 vCPU): 2048–8192 in 1024 steps
 *   2048 (2 vCPU): 4096–16384 in 1024 steps
 *   4096 (4 vCPU): 8192–30720 in 1024 steps
 *   8192 (8 vCPU): 16384–61440 in 4096 steps (platform 1.4.0 or later)
 *   16384 (16 vCPU): 32768–122880 in 8192 steps (platform 1.4.0 or later)
 * EC2-launched tasks: task-level CPU 128–196608 units (0.125–192 vCPU) and at least 128 MiB
 * (RegisterTaskDefinition `cpu` / `memory`,
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html).
 */
import { TetherError } from '../../../core/errors';

export type EcsLaunchType = 'FARGATE' | 'EC2';
export type EcsArch = 'X86_64' | 'ARM64';

export interface EcsSize {
  launchType: EcsLaunchType;
  /** CPU units (1024 = 1 vCPU), as the task definition's `cpu`. */
  cpu: number;
  /** MiB, as the task definition's `memory`. */
  memoryMiB: number;
  gpus: number;
  arch: EcsArch;
}

/** Fargate's allowed memory (MiB) per task CPU (units), Linux. */
export const FARGATE_MEMORY: ReadonlyMap<number, readonly number[]> = new Map([
  [256, [512, 1024, 2048]],
  [512, steps(1024, 4096, 1024)],
  [1024, steps(2048, 8192, 1024)],
  [2048, steps(4096, 16384, 1024)],
  [4096, steps(8192, 30720, 1024)],
  [8192, steps(16384, 61440, 4096)],
  [16384, steps(32768, 122880, 8192)],
]);

function steps(from: number, to: number, by: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += by) out.push(v);
  return out;
}

const SIZE = /^(fargate|ec2)-(\d+(?:\.\d+)?)vcpu-(\d+(?:\.\d+)?)gb(?:-(\d+)gpu)?(?:-(arm64))?$/;

/** `1`, `0.25`, `0.5` — the shortest decimal spelling. */
function num(n: number): string {
  return String(Number(n.toFixed(3)));
}

/** The type name of a size (the inverse of {@link parseEcsSize}). */
export function ecsSizeName(s: EcsSize): string {
  return `${s.launchType === 'FARGATE' ? 'fargate' : 'ec2'}-${num(s.cpu / 1024)}vcpu-${num(s.memoryMiB / 1024)}gb${s.gpus ? `-${s.gpus}gpu` : ''}${s.arch === 'ARM64' ? '-arm64' : ''}`;
}

const SCHEME_REMEDY =
  'Name an ECS task size as <launch>-<vCPU>vcpu-<GB>gb[-<N>gpu][-arm64]: e.g. fargate-1vcpu-2gb, fargate-0.25vcpu-0.5gb, fargate-4vcpu-8gb-arm64, ec2-4vcpu-16gb-1gpu (`tether cloud types ecs` lists the Fargate sizes).';

/** Fargate's allowed memory for a CPU, in words ("2–8 GB in 1 GB steps"). */
function fargateMemoryWords(cpu: number): string {
  const m = FARGATE_MEMORY.get(cpu)!;
  if (m.length <= 3) return m.map((x) => `${num(x / 1024)} GB`).join(', ');
  return `${num(m[0]! / 1024)}–${num(m[m.length - 1]! / 1024)} GB in ${num((m[1]! - m[0]!) / 1024)} GB steps`;
}

/**
 * Parses and validates a task size; throws a TetherError with the allowed values otherwise.
 * Fargate: only the CPU / memory pairs Fargate accepts, and no GPU.
 */
export function parseEcsSize(name: string): EcsSize {
  const m = SIZE.exec(name.trim());
  if (!m) throw new TetherError(`"${name}" is not an ECS task size`, { remedy: SCHEME_REMEDY });
  const launchType: EcsLaunchType = m[1] === 'fargate' ? 'FARGATE' : 'EC2';
  const cpu = Math.round(Number(m[2]) * 1024);
  const memoryMiB = Math.round(Number(m[3]) * 1024);
  const gpus = m[4] === undefined ? 0 : Number(m[4]);
  const arch: EcsArch = m[5] === 'arm64' ? 'ARM64' : 'X86_64';
  if (Math.abs(cpu - Number(m[2]) * 1024) > 1e-6 || Math.abs(memoryMiB - Number(m[3]) * 1024) > 1e-6) {
    throw new TetherError(`"${name}": vCPU and GB must be whole multiples of 1/1024 (CPU units and MiB)`, { remedy: SCHEME_REMEDY });
  }
  if (launchType === 'FARGATE') {
    if (gpus > 0) throw new TetherError(`"${name}": Fargate has no GPUs`, { remedy: 'Run GPU tasks on the EC2 launch type with GPU container instances in the cluster (ec2-<vCPU>vcpu-<GB>gb-<N>gpu).' });
    const allowed = FARGATE_MEMORY.get(cpu);
    if (!allowed) {
      throw new TetherError(`"${name}": Fargate offers ${[...FARGATE_MEMORY.keys()].map((c) => num(c / 1024)).join(', ')} vCPU, not ${num(cpu / 1024)}`, { remedy: SCHEME_REMEDY });
    }
    if (!allowed.includes(memoryMiB)) {
      throw new TetherError(`"${name}": Fargate runs ${num(cpu / 1024)} vCPU with ${fargateMemoryWords(cpu)}, not ${num(memoryMiB / 1024)} GB`, { remedy: SCHEME_REMEDY });
    }
  } else {
    if (cpu < 128 || cpu > 196608) throw new TetherError(`"${name}": an EC2-launched task takes 0.125–192 vCPU`, { remedy: SCHEME_REMEDY });
    if (memoryMiB < 128) throw new TetherError(`"${name}": a task needs at least 0.125 GB of memory`, { remedy: SCHEME_REMEDY });
    if (gpus > 64) throw new TetherError(`"${name}": ${gpus} GPUs is more than any container instance has`, { remedy: SCHEME_REMEDY });
  }
  return { launchType, cpu, memoryMiB, gpus, arch };
}

/** Every Fargate size (both architectures), smallest first. */
export function fargateSizes(): EcsSize[] {
  const out: EcsSize[] = [];
  for (const arch of ['X86_64', 'ARM64'] as const) for (const [cpu, mems] of FARGATE_MEMORY) for (const memoryMiB of mems) out.push({ launchType: 'FARGATE', cpu, memoryMiB, gpus: 0, arch });
  return out;
}
