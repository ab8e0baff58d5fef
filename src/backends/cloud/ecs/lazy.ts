/**
 * What the ECS descriptor does on first use, kept out of the main bundle (a chunk with the
 * client): making the provider with the newest Fargate catalogue, and refreshing the catalogue.
 */
import { ExitCode, TetherError } from '../../../core/errors';
import type { Logger } from '../../../core/logger';
import type { PriceRefresh } from '../registry';
import type { CloudProvider } from '../provider';
import type { EcsAccount } from './descriptor';
import { EcsProvider } from './ecs';
import { loadUserFargateCatalogue, newestFargateCatalogue, refreshFargateCatalogue } from './fargatePricing';
import { FARGATE_SHIPPED_CATALOGUE } from './pricing';

export function loadEcs(a: EcsAccount, { log, stateDir }: { log: Logger; stateDir?: string }): CloudProvider {
  const user = stateDir ? loadUserFargateCatalogue(stateDir, log) : undefined;
  return new EcsProvider({ ...a, log, ...(user ? { catalogue: newestFargateCatalogue(FARGATE_SHIPPED_CATALOGUE, user) } : {}) });
}

export async function refreshEcsPrices(a: EcsAccount | undefined, { log, stateDir, env, region }: { log: Logger; stateDir: string; env: NodeJS.ProcessEnv; region?: string }): Promise<PriceRefresh> {
  const r = region ?? a?.region ?? env.TETHER_ECS_REGION ?? env.TETHER_AWS_REGION ?? env.AWS_REGION;
  if (!r) throw new TetherError('no AWS region for the Fargate prices', { remedy: 'Pass --region R or set TETHER_ECS_REGION / TETHER_AWS_REGION.', exitCode: ExitCode.USAGE });
  const endpoint = env.TETHER_AWS_PRICING_API_URL;
  const { catalogue, file } = await refreshFargateCatalogue(stateDir, { region: r, ...(endpoint ? { endpoint } : {}), ...(a?.credentials ? { credentials: a.credentials } : {}), log });
  const rates = catalogue.regions[r] ?? {};
  return {
    catalogue,
    lines: Object.entries(rates).map(([arch, x]) => `${arch.padEnd(7)} $${x!.vcpuHour} per vCPU-hour, $${x!.gbHour} per GB-hour`),
    summary: `Fargate on-demand Linux rates for ${r} as of ${catalogue.asOf}, saved to ${file}`,
  };
}
