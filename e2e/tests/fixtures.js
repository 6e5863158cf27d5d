// The `test` the specs that also run behind the proxy use (`make test`'s e2e-proxy,
// proxy.config.js): the same as Playwright's, except that with CHECK_RUNS set, every run the
// `page` made is checked complete after the test (tests/run-check.js).
const base = require('@playwright/test');
const { watchRuns } = require('./run-check');

const test = base.test.extend({
  page: async ({ page }, use) => {
    const runs = process.env.CHECK_RUNS ? watchRuns(page) : null;
    await use(page);
    if (runs) await runs.assertComplete();
  },
});

module.exports = { test, expect: base.expect };
