/**
 * The workspace file `.vscode/tether.json`: which plugins a user declares.
 *
 * Parsed as JSON with comments (like every `.vscode/*.json`), validated against a JSON Schema
 * with Ajv, and every problem reported with its JSON path and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { ConfigError, type ConfigProblem } from './errors';
import { kubernetesSpecProblems, type KubernetesSpec } from './kubernetesSpec';
import schema from './tether.schema.json';
// Ajv's validator of the schema, compiled ahead of time (scripts/gen-config-validator.mjs): Ajv itself is not bundled.
import { validate as generatedValidate } from './configValidator.generated';

export const CONFIG_RELATIVE_PATH = path.join('.vscode', 'tether.json');

/** One plugin as the user declares it. */
export interface PluginSpec {
  name: string;
  command: string;
  args: string[];
  /** Relative to the workspace folder. */
  cwd: string;
  env: Record<string, string>;
  title?: string;
  description?: string;
  healthUrl?: string;
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  stopGraceSeconds?: number;
  /** Run as a Docker container (see src/backends/docker/docker.ts). `command` is then '' unless it overrides the image's command. */
  docker?: { image: string; ports?: string[]; env?: Record<string, string>; volumes?: string[] };
  /** Run `command` inside this conda environment (see src/backends/conda/conda.ts). */
  conda?: string;
  /** Run on this SSH host (alias from ~/.ssh/config or user@host:port; see src/backends/ssh/). */
  host?: string;
  /** Run as a Kubernetes Job (see src/backends/kubernetes/). `command` is then ''. */
  kubernetes?: KubernetesSpec;
}

export interface TetherConfig {
  plugins: PluginSpec[];
  /** Extra SSH hosts to watch (state, GPUs) without a plugin on them. */
  hosts: string[];
}

export { schema as configSchema };

const validate = generatedValidate as ValidateFunction<{ plugins: Array<Partial<PluginSpec> & { name: string }>; hosts?: string[] }>;

export function configPath(workspace: string): string {
  return path.join(workspace, CONFIG_RELATIVE_PATH);
}

/**
 * Why a host spec is refused, or undefined when it is acceptable. A spec is handed to the `ssh`
 * binary (always after `--`), so one starting with "-" (read as an option, e.g.
 * `-oProxyCommand=./x.sh`), or holding whitespace, control characters, quotes or shell
 * characters, is never accepted. The config schema (media/tether.schema.json) holds the same rule.
 */
export function hostSpecProblem(spec: string): string | undefined {
  if (!spec) return 'it is empty';
  if (spec.startsWith('-')) return 'it starts with "-", so ssh would read it as an option';
  if (/[\u0000-\u001f\u007f]/.test(spec)) return 'it holds a control character';
  if (/\s/.test(spec)) return 'it holds whitespace';
  if (/['"`$\\;|&<>(){}]/.test(spec)) return 'it holds a quote or shell character';
  const at = spec.lastIndexOf('@');
  if (at >= 0 && spec.slice(at + 1).startsWith('-')) return 'its host part starts with "-", so ssh would read it as an option';
  return undefined;
}

/** Reads the workspace's config; undefined when the file does not exist. */
export function loadConfig(workspace: string): TetherConfig | undefined {
  const file = configPath(workspace);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  return parseConfig(text, file);
}

/** Parses and validates the text of a config file; throws {@link ConfigError} listing every problem. */
export function parseConfig(text: string, file: string): TetherConfig {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length || !tree) {
    const problems = errors.map((e) => ({
      path: '',
      message: `JSON syntax: ${printParseErrorCode(e.error)}`,
      ...lineCol(text, e.offset),
    }));
    throw new ConfigError(file, problems.length ? problems : [{ path: '', message: 'the file is empty' }]);
  }
  const value = nodeValue(tree);
  if (!validate(value)) {
    throw new ConfigError(file, collapseAnyOf(validate.errors ?? []).map((e) => schemaProblem(e, tree, text)));
  }
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  value.plugins.forEach((p, i) => {
    const prev = seen.get(p.name);
    if (prev !== undefined) {
      problems.push(locate(`/plugins/${i}/name`, `duplicate plugin name "${p.name}" (also /plugins/${prev})`, tree, text));
    }
    seen.set(p.name, i);
    if (p.host !== undefined) {
      for (const other of ['docker', 'conda'] as const) {
        if (p[other] !== undefined) {
          problems.push(locate(`/plugins/${i}/host`, `"host" cannot be combined with "${other}" (remote plugins run a command on the SSH host)`, tree, text));
        }
      }
    }
    if (p.kubernetes !== undefined) {
      for (const other of ['docker', 'conda', 'host', 'command', 'args'] as const) {
        if (p[other] !== undefined) {
          const why = other === 'command' || other === 'args' ? `(a Kubernetes plugin's command goes in "kubernetes": {"command": […], "args": […]})` : '(a Kubernetes plugin runs as a Job on its cluster)';
          problems.push(locate(`/plugins/${i}/${other}`, `"${other}" cannot be combined with "kubernetes" ${why}`, tree, text));
        }
      }
      for (const [at, message] of kubernetesSpecProblems(p.kubernetes)) problems.push(locate(`/plugins/${i}/kubernetes${at}`, message, tree, text));
    }
    // What the process launchers refuse, refused here: before any ledger intent is written.
    problems.push(...launchProblems(p, i).map(([at, message]) => locate(at, message, tree, text)));
  });
  if (problems.length) throw new ConfigError(file, problems);
  return {
    plugins: value.plugins.map((p) => ({
      ...p,
      command: p.command ?? '',
      args: p.args ?? [],
      cwd: p.cwd ?? '.',
      env: p.env ?? {},
    })),
    hosts: value.hosts ?? [],
  };
}

/** Environment variable names the remote start script accepts (see src/backends/ssh/remote.ts). */
const REMOTE_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Values the schema lets through but a launcher refuses: a NUL byte anywhere in what becomes a
 * process argument or environment entry (no OS can pass one), "=" in an environment name, and for
 * remote plugins an environment name the shell cannot assign or a command that starts with "-".
 */
function launchProblems(p: Partial<PluginSpec>, i: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const nul = (at: string, v: unknown) => {
    if (typeof v === 'string' && v.includes('\0')) out.push([at, 'contains a NUL byte, which no process argument or environment value can hold']);
  };
  nul(`/plugins/${i}/command`, p.command);
  nul(`/plugins/${i}/cwd`, p.cwd);
  nul(`/plugins/${i}/conda`, p.conda);
  (p.args ?? []).forEach((a, j) => nul(`/plugins/${i}/args/${j}`, a));
  const envs: Array<[string, Record<string, string> | undefined]> = [
    [`/plugins/${i}/env`, p.env],
    [`/plugins/${i}/docker/env`, p.docker?.env],
  ];
  for (const [base, env] of envs) {
    for (const [k, v] of Object.entries(env ?? {})) {
      const at = `${base}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (k.includes('\0') || k.includes('=') || k === '') out.push([at, `invalid environment variable name ${JSON.stringify(k)} (empty, or holds "=" or a NUL byte)`]);
      else if (p.host !== undefined && !REMOTE_ENV_NAME.test(k)) {
        out.push([at, `invalid environment variable name ${JSON.stringify(k)} for a remote plugin: letters, digits and _, not starting with a digit`]);
      }
      nul(at, v);
    }
  }
  if (p.host !== undefined && p.docker === undefined && (!p.command || p.command.startsWith('-'))) {
    out.push([`/plugins/${i}/command`, 'a remote plugin needs a command that does not start with "-"']);
  }
  return out;
}

function nodeValue(n: Node): unknown {
  switch (n.type) {
    case 'object':
      return Object.fromEntries((n.children ?? []).map((prop) => [prop.children![0]!.value, nodeValue(prop.children![1]!)]));
    case 'array':
      return (n.children ?? []).map(nodeValue);
    default:
      return n.value;
  }
}

/** One "missing" problem for an anyOf of `required`s (command or docker) instead of one per branch plus the anyOf. */
function collapseAnyOf(errors: ErrorObject[]): ErrorObject[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const branch = (e: ErrorObject) => anyOfs.find((a) => e.keyword === 'required' && e.instancePath === a.instancePath && e.schemaPath.startsWith(`${a.schemaPath}/`));
  return errors.flatMap((e) => {
    if (branch(e)) return [];
    if (e.keyword !== 'anyOf') return [e];
    const names = errors.filter((x) => branch(x) === e).map((x) => `"${String((x.params as { missingProperty: string }).missingProperty)}"`);
    // One problem, named after the first branch ("command"; the schema's description names "docker").
    return names[0] ? [{ ...e, message: `missing required property ${names[0]}` }] : [e];
  });
}

function schemaProblem(e: ErrorObject, tree: Node, text: string): ConfigProblem {
  let at = e.instancePath;
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    at = `${at}/${extra}`;
    message = `unknown property "${extra}"`;
  } else if (e.keyword === 'required') {
    message = `missing required property "${String((e.params as { missingProperty: string }).missingProperty)}"`;
  } else if (e.keyword === 'pattern' && at.endsWith('/name')) {
    message = 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-" (at most 64)';
  } else if (e.keyword === 'pattern' && (at.endsWith('/host') || /^\/hosts\/\d+$/.test(at))) {
    const segs = at.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const value = findNodeAtLocation(tree, segs)?.value;
    const why = typeof value === 'string' ? hostSpecProblem(value) : undefined;
    message = `must be an alias from ~/.ssh/config or user@host:port (no leading "-", spaces, control characters, quotes or shell characters)${why ? `: ${why}` : ''}`;
  }
  return locate(at, message, tree, text);
}

function locate(pointer: string, message: string, tree: Node, text: string): ConfigProblem {
  const segs = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  let node = findNodeAtLocation(tree, segs);
  // For an unknown property, point at its key.
  if (!node && segs.length) node = findNodeAtLocation(tree, segs.slice(0, -1));
  const offset = node?.parent?.type === 'property' ? node.parent.offset : node?.offset;
  return { path: pointer, message, ...(offset === undefined ? {} : lineCol(text, offset)) };
}

function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** A commented example config, written by "Create tether.json" in the welcome view. */
export const EXAMPLE_CONFIG = `// Tether: the processes this workspace starts. Each plugin is one command whose whole
// process tree Tether tracks, shows, and cleans up. Schema: see the Tether README.
{
  "plugins": [
    {
      // A unique name: letters, digits, ".", "_" and "-".
      "name": "web",
      // The program and its arguments (no shell involved).
      "command": "python3",
      "args": ["-m", "http.server", "8000", "--bind", "127.0.0.1"],
      // Working folder, relative to the workspace.
      "cwd": ".",
      // Extra environment variables.
      "env": {},
      // Optional: a URL that answers when the plugin is healthy.
      "healthUrl": "http://127.0.0.1:8000/",
      // Optional: seconds between SIGTERM and SIGKILL when stopping (default 5).
      "stopGraceSeconds": 5
    }
  ]
}
`;
