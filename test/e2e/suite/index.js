// Tests entry for the real VS Code extension host (the `exports.run()` contract of
// @vscode/test-electron). Loaded by code-server's smoke-test driver, see scripts/harness.mjs.
// Runs every test/e2e/suite/**/*.test.js (plain JS, `require('vscode')` available) with the
// mocha from the extension repo's node_modules. Env: TETHER_E2E_GREP filters test titles.
'use strict';
const fs = require('fs');
const path = require('path');

function findTests(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...findTests(p));
    else if (ent.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

function loadMocha() {
  // Resolve from the repo root (../../..), i.e. the extension's own node_modules.
  const repoRoot = path.resolve(__dirname, '..', '..', '..');
  return require(require.resolve('mocha', { paths: [repoRoot] }));
}

exports.run = function run() {
  const Mocha = loadMocha();
  const mocha = new Mocha({
    ui: 'bdd',
    color: false,
    timeout: Number(process.env.TETHER_E2E_TIMEOUT || 120000), // generous: no bet on the machine's speed
    reporter: 'spec',
    // With CI=true a skipped in-host test is a failure, as in the mocha tiers (.mocharc.cjs).
    forbidPending: !!process.env.CI && !/^(0|false|no)$/i.test(process.env.CI),
  });
  if (process.env.TETHER_E2E_GREP) mocha.grep(process.env.TETHER_E2E_GREP);
  for (const f of findTests(__dirname)) {
    delete require.cache[f];
    mocha.addFile(f);
  }
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        if (failures > 0) reject(new Error(`${failures} in-host test(s) failed`));
        else resolve();
      });
      // Skipped tests reach `npm test`'s summary (scripts/test.mjs) like the mocha tiers' do.
      runner.on('pending', (t) => {
        if (process.env.TETHER_SKIP_SUMMARY) {
          fs.appendFileSync(process.env.TETHER_SKIP_SUMMARY, JSON.stringify({ title: `e2e in-host: ${t.fullTitle()}`, reason: 'skipped in the real VS Code extension host' }) + '\n');
        }
      });
    } catch (e) {
      reject(e);
    }
  });
};
