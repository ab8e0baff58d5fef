// A root hook (loaded by .mocharc.cjs): no mocha timeout in the tiers is shorter than
// TETHER_TEST_TIMEOUT_FLOOR_MS (default 120 s). Suites set their timeouts for a quiet machine;
// on a loaded 2-core machine shared with other jobs, a passing test may take many times longer.
// A test that really hangs still fails, only later. (Product timeouts are not touched.)
'use strict';
const FLOOR = Number(process.env.TETHER_TEST_TIMEOUT_FLOOR_MS || 120000);

function raise(r) {
  const t = r.timeout();
  if (t !== 0 && t < FLOOR) r.timeout(FLOOR);
}

function walk(suite) {
  raise(suite);
  for (const h of [...suite._beforeAll, ...suite._beforeEach, ...suite._afterEach, ...suite._afterAll]) raise(h);
  for (const t of suite.tests) raise(t);
  for (const s of suite.suites) walk(s);
}

exports.mochaHooks = {
  beforeAll() {
    let root = this.test.parent;
    while (root.parent) root = root.parent;
    walk(root);
  },
};
