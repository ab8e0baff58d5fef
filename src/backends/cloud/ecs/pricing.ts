/**
 * What an ECS task costs, without the SDK: the billing rule and the Fargate price catalogue
 * (shipped, dated: fargate-prices.json; refreshed per region by fargatePricing.ts).
 *
 * Fargate ("AWS Fargate Pricing", https://aws.amazon.com/fargate/pricing/): a task is billed
 * for its requested vCPU and memory (GB), per second with a one-minute minimum, "from the time
 * you start to download your container image until the Amazon ECS Task … terminates". ECS has
 * no charge of its own (https://aws.amazon.com/ecs/pricing/).
 *
 * A task launched on EC2 container instances is billed through those instances (EC2's per-second
 * rule, see the EC2 provider), not per task: Tether prices the task itself at $0 and says so —
 * the instance, when Tether launched it, carries its own price.
 */
import { ecsSizeName, fargateSizes, parseEcsSize, type EcsArch, type EcsSize } from './sizes';
import shipped from './fargate-prices.json';

export interface FargateRates {
  /** USD per vCPU-hour. */
  vcpuHour: number;
  /** USD per GB-hour of memory. */
  gbHour: number;
}

export interface FargatePriceCatalogue {
  asOf: string;
  source: string;
  currency: string;
  terms?: string;
  refresh?: string;
  note?: string;
  /** region → CPU architecture → rates. */
  regions: Record<string, Partial<Record<EcsArch, FargateRates>>>;
}

export const FARGATE_SHIPPED_CATALOGUE: FargatePriceCatalogue = shipped as FargatePriceCatalogue;

export { ECS_BILLING } from './billing';

/** USD/h of a Fargate size in a region, or NaN when the catalogue has no rate for it. EC2-launched: 0. */
export function ecsPricePerHour(size: EcsSize, region: string, catalogue: FargatePriceCatalogue = FARGATE_SHIPPED_CATALOGUE): number {
  if (size.launchType === 'EC2') return 0;
  const r = catalogue.regions[region]?.[size.arch];
  if (!r || !Number.isFinite(r.vcpuHour) || !Number.isFinite(r.gbHour)) return NaN;
  // Rounded to a tenth of a micro-dollar: the sum of two products must not print as 0.05000000000000001.
  return Math.round(((size.cpu / 1024) * r.vcpuHour + (size.memoryMiB / 1024) * r.gbHour) * 1e7) / 1e7;
}

export interface EcsTypeEntry {
  name: string;
  description: string;
  gpuCount: number;
  vcpus: number;
  memoryGiB: number;
  pricePerHour: number;
}

/** What a size is, in words, with its price or why it has none. */
export function describeEcsSize(size: EcsSize, region: string, catalogue: FargatePriceCatalogue = FARGATE_SHIPPED_CATALOGUE): EcsTypeEntry {
  const price = ecsPricePerHour(size, region, catalogue);
  const hw = `${size.cpu / 1024} vCPU, ${size.memoryMiB / 1024} GB${size.gpus ? `, ${size.gpus} GPU` : ''}, ${size.arch === 'ARM64' ? 'ARM64 (Graviton)' : 'x86_64'}`;
  const note =
    size.launchType === 'EC2'
      ? 'EC2 launch type: billed by the EC2 container instance it runs on, not per task ($0 here)'
      : Number.isNaN(price)
        ? `no price: Tether's Fargate catalogue (as of ${catalogue.asOf}) has no ${size.arch} rates for ${region}; see ${catalogue.source}`
        : `Fargate on-demand Linux, per second, 1-minute minimum; rates as of ${catalogue.asOf}`;
  return { name: ecsSizeName(size), description: `${size.launchType === 'FARGATE' ? 'Fargate' : 'EC2'} task: ${hw}; ${note}`, gpuCount: size.gpus, vcpus: size.cpu / 1024, memoryGiB: size.memoryMiB / 1024, pricePerHour: price };
}

/** The catalogue Tether offers: every Fargate size (x86_64 and ARM64) with its price in `region`. */
export function fargateCatalogue(region: string, catalogue: FargatePriceCatalogue = FARGATE_SHIPPED_CATALOGUE): EcsTypeEntry[] {
  return fargateSizes().map((s) => describeEcsSize(s, region, catalogue));
}

/** The entry of any valid size name (EC2 sizes and GPUs included), or a TetherError saying why it is not one. */
export function ecsTypeEntry(name: string, region: string, catalogue: FargatePriceCatalogue = FARGATE_SHIPPED_CATALOGUE): EcsTypeEntry {
  return describeEcsSize(parseEcsSize(name), region, catalogue);
}
