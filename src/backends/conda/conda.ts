/**
 * Conda environments: a subprocess plugin that names `"conda": "<env>"` runs its command inside
 * that environment through `conda run -n ENV --no-capture-output CMD ARGS...` (or
 * `micromamba run -n ENV CMD ARGS...` / `mamba run ...`, whichever the user has; configurable).
 * The resulting process tree (conda's wrapper and everything under it) is tracked and cleaned
 * like any subprocess's: {@link CondaPlugin} is a {@link SubprocessPlugin} with a wrapped command.
 */
import * as path from 'node:path';
import type { PluginSpec } from '../../core/config';
import { ExitCode, TetherError } from '../../core/errors';
import { PluginExecutionMode } from '../../core/protocols';
import { SubprocessPlugin, type SubprocessDeps } from '../local/subprocess';
import { findOnPath } from '../../core/executables';

export type CondaFlavor = 'conda' | 'micromamba' | 'mamba';

export interface CondaTool {
  /** Absolute path of the executable. */
  path: string;
  flavor: CondaFlavor;
}

export interface CondaOptions {
  /**
   * The executable to use: a name looked up on PATH or a path (e.g. the VS Code setting, or
   * `TETHER_CONDA_EXE`). Default: `$CONDA_EXE`, then conda, `$MAMBA_EXE`, micromamba, mamba on PATH.
   */
  executable?: string;
  /** Environment to look in (PATH, CONDA_EXE, MAMBA_EXE, TETHER_CONDA_EXE). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Skip the "does the environment exist" check (`<tool> env list --json`) before starting. */
  skipEnvCheck?: boolean;
}

export class CondaNotFoundError extends TetherError {}
export class CondaEnvNotFoundError extends TetherError {}

/** The names Tether looks for, in order, when nothing is configured. */
export const CONDA_CANDIDATES: readonly CondaFlavor[] = ['conda', 'micromamba', 'mamba'];

/** conda, micromamba or mamba, from the executable's name (conda when unsure: same CLI). */
export function flavorOf(executable: string): CondaFlavor {
  const base = path.basename(executable).replace(/\.exe$/i, '');
  if (/micromamba/.test(base)) return 'micromamba';
  if (/^mamba/.test(base)) return 'mamba';
  return 'conda';
}

/** What {@link findCondaTool} looks for, in order, as one can print it. */
export function condaSearchOrder(opts: CondaOptions = {}): string[] {
  const env = opts.env ?? process.env;
  const explicit = opts.executable || env.TETHER_CONDA_EXE;
  if (explicit) return [explicit];
  return [
    ...(env.CONDA_EXE ? [`$CONDA_EXE (${env.CONDA_EXE})`] : []),
    'conda on PATH',
    ...(env.MAMBA_EXE ? [`$MAMBA_EXE (${env.MAMBA_EXE})`] : []),
    'micromamba on PATH',
    'mamba on PATH',
  ];
}

/**
 * Finds the conda-like executable to run environments with. Throws {@link CondaNotFoundError}
 * naming everything it looked for.
 */
export function findCondaTool(opts: CondaOptions = {}, what = 'conda'): CondaTool {
  const env = opts.env ?? process.env;
  const explicit = opts.executable || env.TETHER_CONDA_EXE;
  if (explicit) {
    const p = findOnPath(explicit, env);
    if (p) return { path: p, flavor: flavorOf(p) };
    throw new CondaNotFoundError(`${what}: the configured conda executable "${explicit}" was not found${explicit.includes('/') ? '' : ` on PATH (${env.PATH ?? ''})`}`, {
      remedy: 'Fix the configured path (the tether.condaExecutable setting or TETHER_CONDA_EXE), or clear it to use conda or micromamba from PATH.',
      exitCode: ExitCode.USAGE,
    });
  }
  const tries: Array<string | undefined> = [env.CONDA_EXE, 'conda', env.MAMBA_EXE, 'micromamba', 'mamba'];
  for (const t of tries) {
    if (!t) continue;
    const p = findOnPath(t, env);
    if (p) return { path: p, flavor: flavorOf(p) };
  }
  throw new CondaNotFoundError(
    `${what}: neither conda nor micromamba was found (looked for ${condaSearchOrder(opts).join(', ')}; PATH=${env.PATH ?? ''})`,
    {
      remedy:
        'Install Miniforge (conda) or micromamba and put it on PATH (or set the tether.condaExecutable setting / TETHER_CONDA_EXE to its path), or remove "conda" from the plugin in .vscode/tether.json.',
      exitCode: ExitCode.USAGE,
    },
  );
}

/**
 * The command line that runs `command args` inside an environment. An env containing "/" is
 * taken as a prefix (`-p`). micromamba's `run` does not capture output, so it gets no
 * `--no-capture-output`.
 */
export function condaRunCommand(tool: CondaTool, envName: string, command: string, args: readonly string[]): { command: string; args: string[] } {
  const target = envName.includes('/') ? ['-p', envName] : ['-n', envName];
  const flags = tool.flavor === 'micromamba' ? [] : ['--no-capture-output'];
  return { command: tool.path, args: ['run', ...target, ...flags, command, ...args] };
}

/** The plugin spec with its command wrapped for its conda env (unchanged without `conda`). */
export function wrapCondaSpec(spec: PluginSpec, tool: CondaTool): PluginSpec {
  if (!spec.conda) return spec;
  const { command, args } = condaRunCommand(tool, spec.conda, spec.command, spec.args);
  return { ...spec, command, args };
}

/** Names and prefixes of the environments the tool knows (`env list --json`). */
export async function listCondaEnvs(tool: CondaTool, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const { execa } = await import('execa');
  const r = await execa(tool.path, ['env', 'list', '--json'], { env, extendEnv: false, reject: false, timeout: 30_000 });
  if (r.exitCode !== 0) {
    throw new TetherError(`${tool.path} env list --json failed (exit ${r.exitCode}): ${(r.stderr || r.stdout || '').toString().trim().split('\n').slice(-2).join(' ')}`, {
      remedy: `Run "${tool.path} env list" in a terminal to see what is wrong with the ${tool.flavor} installation.`,
    });
  }
  const parsed = JSON.parse(String(r.stdout)) as { envs?: string[] };
  return parsed.envs ?? [];
}

/** True when `name` (an env name, "base", or a prefix path) is among the listed env prefixes. */
export function envExists(name: string, prefixes: readonly string[]): boolean {
  if (name.includes('/')) return prefixes.some((p) => path.resolve(p) === path.resolve(name));
  if (name === 'base' || name === 'root') return prefixes.length > 0;
  return prefixes.some((p) => path.basename(p) === name);
}

/** A subprocess plugin whose command runs inside a conda environment. */
export class CondaPlugin extends SubprocessPlugin {
  private tool: CondaTool | undefined;

  constructor(
    spec: PluginSpec,
    deps: SubprocessDeps,
    private readonly condaOptions: CondaOptions = {},
  ) {
    if (!spec.conda) throw new TypeError(`plugin ${spec.name} names no conda environment`);
    // The plugin owns a copy of the spec: start() fills in the wrapped command.
    super({ ...spec, args: [...spec.args] }, deps);
    this.declared = spec;
    this.metadata.executionMode = PluginExecutionMode.CONDA_ENV;
    this.metadata.condaEnvName = spec.conda;
  }

  /** The spec as declared (before wrapping). */
  readonly declared: PluginSpec;

  get condaEnv(): string {
    return this.declared.conda!;
  }

  override getExecutionMode(): PluginExecutionMode {
    return PluginExecutionMode.CONDA_ENV;
  }

  override getManagedResources(): Record<string, unknown> {
    return {
      ...super.getManagedResources(),
      conda_env: this.condaEnv,
      conda_executable: this.tool?.path ?? null,
      command: [this.declared.command, ...this.declared.args].join(' '),
    };
  }

  /** Finds conda/micromamba, checks the env exists, then starts the wrapped command. */
  override async start() {
    const env = this.condaOptions.env ?? process.env;
    const tool = findCondaTool(this.condaOptions, this.declared.name);
    if (!this.condaOptions.skipEnvCheck) {
      const envs = await listCondaEnvs(tool, env);
      if (!envExists(this.condaEnv, envs)) {
        const names = envs.map((p) => path.basename(p));
        throw new CondaEnvNotFoundError(
          `${this.declared.name}: conda environment "${this.condaEnv}" was not found by ${tool.path} (it knows: ${names.join(', ') || 'none'})`,
          {
            remedy: `Create it (${tool.flavor} create -n ${this.condaEnv} ...) or fix "conda" of the plugin in .vscode/tether.json.`,
            exitCode: ExitCode.USAGE,
          },
        );
      }
    }
    this.tool = tool;
    const wrapped = wrapCondaSpec(this.declared, tool);
    this.spec.command = wrapped.command;
    this.spec.args = wrapped.args;
    return super.start();
  }
}
