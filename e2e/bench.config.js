// Page benchmarks (`make bench-page`, not part of `make test`): the browser-test settings, but
// the benches in ./bench, one at a time, with room for a 20-second stream.
const base = require('./playwright.config.js');

module.exports = {
  ...base,
  testDir: './bench',
  testMatch: '*.bench.js',
  // The first-visit bench has its own target and config (`make bench-load`, load.config.js).
  testIgnore: 'load.bench.js',
  outputDir: './output/bench-results',
  timeout: 180_000,
};
