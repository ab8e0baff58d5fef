// Types of what the TypeScript tests use from system-packages.mjs.
export interface SystemPackage { pkg: string; why: string; files?: string[]; dpkg?: boolean }
export const SYSTEM_PACKAGES: SystemPackage[];
export function missingPackages(wanted: string[], probes?: { exists?: (f: string) => boolean; installed?: (p: string) => boolean }): string[];
export function aptInstallCommand(pkgs: string[]): string;
export function dpkgInstalled(pkg: string, env?: NodeJS.ProcessEnv): boolean;
export function ensureSystemPackages(wanted?: string[], o?: { log?: (...a: unknown[]) => void; root?: string; isRoot?: boolean; dryRun?: boolean; env?: NodeJS.ProcessEnv }): string[];
