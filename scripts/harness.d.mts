// Types of what the TypeScript tests use from harness.mjs.
export function cleanNpmEnv(o?: { env?: NodeJS.ProcessEnv | Record<string, string | undefined>; pathFirst?: string[]; config?: Record<string, string> }): Record<string, string>;
export function npmInstall(prefix: string, spec: string, o?: { pathFirst?: string[]; config?: Record<string, string>; log?: (...a: unknown[]) => void }): Promise<void>;
export function buildFreshness(repo?: string): { fresh: boolean; stale?: string };
export function cacheRoot(): string;
export const BUILD_INPUTS: string[];
export const REPO_ROOT: string;
export function dependenciesState(repo?: string): { install: boolean; why?: string };
export function stampDependencies(repo?: string): void;
