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

describe('architecture', () => {
  const root = path.resolve(__dirname, '..', '..');
  for (const layer of ['src/core', 'src/plugins', 'src/engine', 'src/fleet', 'src/cli']) {
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
  it('the import check itself catches every form of importing vscode', () => {
    for (const s of ["import * as vscode from 'vscode';", 'const v = require("vscode")', "await import('vscode')", "import 'vscode';"]) {
      assert.ok(IMPORTS_VSCODE.test(s), s);
    }
    assert.ok(!IMPORTS_VSCODE.test("import x from 'vscode-jsonrpc';"));
    for (const s of ["import { TetherModel } from '../ui/model';", 'const m = require("../../ui/model")', "import type { Snapshot } from '../ui/model';", "await import('../ui')"]) {
      assert.ok(IMPORTS_UI.test(s), s);
    }
    assert.ok(!IMPORTS_UI.test("import { x } from '../engine/ui-helpers';"));
  });
});
