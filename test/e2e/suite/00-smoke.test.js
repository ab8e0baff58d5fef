'use strict';
const assert = require('assert');
const vscode = require('vscode');

describe('smoke: Tether inside real VS Code', () => {
  it('is installed as tether-dev.tether and activates', async () => {
    const ext = vscode.extensions.getExtension('tether-dev.tether');
    assert.ok(ext, 'extension tether-dev.tether not found');
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
  });

  it('runs in the VS Code this harness pins', () => {
    assert.match(vscode.version, /^1\.\d+\.\d+/);
    assert.ok(vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders.length > 0, 'no workspace folder open');
  });
});
