// The smoke set behind nginx (scripts/e2e-proxy.sh): the tests tagged @proxy (in tests/ and
// proxy/), against https://127.0.0.1:PORT (nginx with a self-signed certificate, in front of two instances
// sharing a private Redis). CHECK_RUNS makes each of them also prove its runs complete, with
// their whole server trace, on whichever instance the proxy picked (tests/run-check.js).
const { defineConfig } = require('@playwright/test');
const base = require('./playwright.config');

process.env.CHECK_RUNS = '1';

module.exports = defineConfig({
  ...base,
  // The tagged tests of tests/ and the proxy's own (two instances) in proxy/.
  testDir: '.',
  testMatch: /\/e2e\/(tests|proxy)\/[^/]+\.spec\.js$/,
  grep: /@proxy/,
  use: { ...base.use, ignoreHTTPSErrors: true },
});
