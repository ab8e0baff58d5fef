// mocha's spec reporter, plus a summary of the skipped tests and why (the reasons given to
// test/helpers/skip.ts's skipBecause). With TETHER_SKIP_SUMMARY=FILE it also appends one JSON
// line per skipped test to FILE (scripts/test.mjs prints them in the suite's summary). With
// CI=true, mocha's forbid-pending turns every skip into a failure; they are listed here too.
'use strict';
const fs = require('fs');
const Mocha = require('mocha');
const { EVENT_RUN_END, EVENT_TEST_PENDING, EVENT_TEST_FAIL } = Mocha.Runner.constants;

function reasonOf(test) {
  const reasons = globalThis.__tetherSkipReasons;
  for (let r = test; r; r = r.parent) {
    const why = reasons && reasons.get(r);
    if (why) return why;
  }
  return 'no reason given (it.skip / this.skip() without skipBecause)';
}

class TetherSpec extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on(EVENT_TEST_PENDING, (t) => skipped.push({ title: t.fullTitle(), file: t.file, reason: reasonOf(t), forbidden: false }));
    runner.on(EVENT_TEST_FAIL, (t, err) => {
      if (err && err.message === 'Pending test forbidden') skipped.push({ title: t.fullTitle(), file: t.file, reason: reasonOf(t), forbidden: true });
    });
    runner.once(EVENT_RUN_END, () => {
      if (process.env.TETHER_SKIP_SUMMARY) {
        for (const s of skipped) fs.appendFileSync(process.env.TETHER_SKIP_SUMMARY, JSON.stringify(s) + '\n');
      }
      if (!skipped.length) return;
      const forbidden = skipped.some((s) => s.forbidden);
      const byReason = new Map();
      for (const s of skipped) byReason.set(s.reason, [...(byReason.get(s.reason) || []), s.title]);
      const lines = [`  ${skipped.length} skipped${forbidden ? ' (failures: with CI=true no test may be skipped)' : ''}:`];
      for (const [reason, titles] of byReason) {
        lines.push(`    ${titles.length} × ${reason}`);
        for (const t of titles.slice(0, 5)) lines.push(`        - ${t}`);
        if (titles.length > 5) lines.push(`        - … and ${titles.length - 5} more`);
      }
      console.log(`\n${lines.join('\n')}\n`);
    });
  }
}

module.exports = TetherSpec;
