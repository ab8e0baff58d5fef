/**
 * The layers, as imports: ui → fleet / workspace → backends → core (an arrow may skip a layer,
 * never point up). `src/core` knows nothing of VS Code; nothing below `src/ui` imports vscode or
 * `src/ui`; a backend folder (`src/backends/<name>/`) imports only core, the shared backend files
 * (`src/backends/*.ts`) and, for a cloud provider, the shared cloud files (`src/backends/cloud/*.ts`)
 * — never another backend; `src/ui` reaches backends only through their shared interface, so it
 * cannot branch on a backend's own classes.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : /\.(ts|js|json)$/.test(e.name) ? [p] : [];
  });
}

const IMPORTS_VSCODE = /(?:from\s+['"]vscode['"]|require\(\s*['"]vscode['"]\s*\)|import\(\s*['"]vscode['"]\s*\)|import\s+['"]vscode['"])/;

/** An import of src/ui from a sibling layer (src/fleet/x.ts → '../ui/...'), any form. */
const IMPORTS_UI = /(?:from\s+|require\(\s*|import\(\s*|import\s+)['"](?:\.\.\/)+ui(?:\/|['"])/;

/** Every relative module a file imports (static, dynamic, require, export-from, side-effect). */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*|\bimport\s+)['"](\.\.?\/[^'"]+)['"]/g;
  for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

type Layer = 'core' | 'backends' | 'fleet' | 'workspace' | 'cli' | 'ui' | 'webview' | 'entry';

/** The layer of a file under src/ (repo-relative, forward slashes). */
function layerOf(rel: string): Layer {
  const [, top] = rel.split('/');
  if (top === 'core' || top === 'backends' || top === 'fleet' || top === 'workspace' || top === 'cli' || top === 'ui' || top === 'webview') return top;
  return 'entry'; // extension.ts, cli.ts, cliEntry.ts, api.ts: wiring
}

/** Which layers each layer may import. */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  core: ['core'],
  backends: ['core', 'backends'],
  fleet: ['core', 'backends', 'fleet', 'workspace'],
  workspace: ['core', 'backends', 'fleet', 'workspace'],
  cli: ['core', 'backends', 'fleet', 'workspace', 'cli', 'entry'],
  ui: ['core', 'backends', 'fleet', 'workspace', 'ui', 'entry'],
  webview: ['webview'],
  entry: ['core', 'backends', 'fleet', 'workspace', 'cli', 'ui', 'entry'],
};

/** The backend folder of a file under src/backends ('' for the shared files at its top). */
function backendOf(rel: string): string {
  const parts = rel.split('/');
  return parts.length > 3 ? parts[2]! : '';
}

/**
 * Cross-layer problems of one import, or undefined when it is allowed. `from` and `to` are
 * repo-relative paths of the importing file and the imported module (without extension).
 */
export function importProblem(from: string, to: string): string | undefined {
  if (!to.startsWith('src/')) return undefined;
  const a = layerOf(from);
  const b = layerOf(to);
  if (!ALLOWED[a].includes(b)) return `${a} must not import ${b}`;
  if (a === 'backends' && b === 'backends') {
    const fa = backendOf(from);
    const fb = backendOf(to);
    // Shared files at src/backends/*.ts are for everyone; a backend folder keeps to itself.
    if (fb && fa !== fb && !(fa === 'conda' && fb === 'local')) return `backend "${fa || '(shared)'}" must not import backend "${fb}"`;
    // Cloud providers (src/backends/cloud/<provider>/) may use the shared cloud files, not each other.
    const pa = from.split('/');
    const pb = to.split('/');
    if (fa === 'cloud' && fb === 'cloud' && pa.length > 4 && pb.length > 4 && pa[3] !== pb[3]) return `cloud provider "${pa[3]}" must not import cloud provider "${pb[3]}"`;
  }
  return undefined;
}

describe('architecture', () => {
  const root = path.resolve(__dirname, '..', '..');
  const rel = (f: string) => path.relative(root, f).split(path.sep).join('/');
  for (const layer of ['src/core', 'src/backends', 'src/fleet', 'src/workspace', 'src/cli']) {
    it(`${layer} does not import vscode`, () => {
      const offenders = filesUnder(path.join(root, layer)).filter((f) => IMPORTS_VSCODE.test(fs.readFileSync(f, 'utf8')));
      assert.deepEqual(offenders, []);
    });
  }
  it('src/fleet (the per-user layer: policy tick, leader lease, policy file) does not import src/ui', () => {
    const fleet = path.join(root, 'src/fleet');
    assert.ok(fs.existsSync(fleet), 'src/fleet exists');
    const offenders = filesUnder(fleet).filter((f) => IMPORTS_UI.test(fs.readFileSync(f, 'utf8')));
    assert.deepEqual(offenders, []);
  });
  it('every import points down the layers: ui → fleet/workspace → backends → core, and a backend keeps to its own folder', () => {
    const problems: string[] = [];
    for (const f of filesUnder(path.join(root, 'src')).filter((x) => x.endsWith('.ts'))) {
      for (const spec of relativeImports(fs.readFileSync(f, 'utf8'))) {
        const to = rel(path.resolve(path.dirname(f), spec)).replace(/\.(ts|json)$/, '');
        const p = importProblem(rel(f), to);
        if (p) problems.push(`${rel(f)} → ${spec}: ${p}`);
      }
    }
    assert.deepEqual(problems, []);
  });
  it('src/ui reaches backends only through their shared interface (no backend folder, so no instanceof/kind checks on a backend class)', () => {
    const problems: string[] = [];
    for (const f of filesUnder(path.join(root, 'src/ui'))) {
      for (const spec of relativeImports(fs.readFileSync(f, 'utf8'))) {
        const to = rel(path.resolve(path.dirname(f), spec));
        if (to.startsWith('src/backends/') && to.split('/').length > 3) problems.push(`${rel(f)} → ${spec}`);
      }
    }
    assert.deepEqual(problems, UI_BACKEND_IMPORTS_LEFT);
  });
  it('src/ui never asks what kind of backend a resource runs on', () => {
    const kinds = ['local', 'conda', 'docker', 'ssh', 'kubernetes'].join('|');
    const re = new RegExp(`\\.kind\\s*[!=]==\\s*['"](?:${kinds})['"]|['"](?:${kinds})['"]\\s*[!=]==\\s*[\\w.]*\\.kind\\b`);
    const offenders = filesUnder(path.join(root, 'src/ui')).flatMap((f) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (re.test(line) ? [`${rel(f)}:${i + 1}: ${line.trim()}`] : [])),
    );
    assert.deepEqual(offenders, []);
    assert.ok(re.test("if (s.kind === 'docker') x();") && re.test("'ssh' !== status.kind") && !re.test("n.kind === 'plugin'"), 'the check itself');
  });
  it('the import checks catch what they are meant to catch', () => {
    for (const s of ["import * as vscode from 'vscode';", 'const v = require("vscode")', "await import('vscode')", "import 'vscode';"]) {
      assert.ok(IMPORTS_VSCODE.test(s), s);
    }
    assert.ok(!IMPORTS_VSCODE.test("import x from 'vscode-jsonrpc';"));
    for (const s of ["import { TetherModel } from '../ui/model';", 'const m = require("../../ui/model")', "import type { Snapshot } from '../ui/model';", "await import('../ui')"]) {
      assert.ok(IMPORTS_UI.test(s), s);
    }
    assert.ok(!IMPORTS_UI.test("import { x } from '../fleet/ui-helpers';"));
    assert.deepEqual(relativeImports("import a from './a';\nexport { b } from '../b';\nconst c = await import('./c');\nrequire('../d');\nimport './e';\nimport x from 'lib';"), ['./a', '../b', './c', '../d', './e']);
    assert.match(importProblem('src/core/ledger.ts', 'src/fleet/cloud')!, /core must not import fleet/);
    assert.match(importProblem('src/backends/docker/docker.ts', 'src/workspace/engine')!, /backends must not import workspace/);
    assert.match(importProblem('src/backends/docker/docker.ts', 'src/backends/cloud/marker')!, /backend "docker" must not import backend "cloud"/);
    assert.match(importProblem('src/backends/cloud/gcp/gcp.ts', 'src/backends/cloud/aws/aws')!, /cloud provider "gcp" must not import cloud provider "aws"/);
    assert.match(importProblem('src/fleet/cloud.ts', 'src/ui/model')!, /fleet must not import ui/);
    assert.match(importProblem('src/workspace/engine.ts', 'src/cli/watch')!, /workspace must not import cli/);
    assert.equal(importProblem('src/backends/cloud/gcp/gcp.ts', 'src/backends/cloud/provider'), undefined);
    assert.equal(importProblem('src/backends/docker/docker.ts', 'src/backends/backend'), undefined);
    assert.equal(importProblem('src/ui/model.ts', 'src/fleet/cloud'), undefined);
  });
});

/**
 * Imports from src/ui into a backend's own folder that remain (each one is a place the UI still
 * knows a backend). The list only shrinks: a new one fails this test.
 */
const UI_BACKEND_IMPORTS_LEFT: string[] = [
  // The provisioning wizard's Lambda SSH-key step (Lambda launches need exactly one account key).
  'src/ui/lambdaSshKey.ts → ../backends/cloud/lambda/lambda',
  'src/ui/lambdaSshKey.ts → ../backends/cloud/lambda/lambda',
  'src/ui/lambdaSshKey.ts → ../backends/cloud/lambda/lambda',
];
