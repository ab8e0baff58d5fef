// mocha's configuration. With CI=true a skipped (pending) test is a failure: a green CI must
// mean that every tier ran. Outside CI the reporter lists the skipped tests and why.
'use strict';
const ci = !!process.env.CI && !/^(0|false|no)$/i.test(process.env.CI);

module.exports = {
  'node-option': ['import=tsx'],
  extension: ['ts'],
  reporter: './test/helpers/reporter.cjs',
  // No mocha timeout below 120 s (test/helpers/timeouts.cjs): nothing bets on the machine's speed.
  require: ['./test/helpers/timeouts.cjs'],
  timeout: 20000,
  'forbid-pending': ci,
};
