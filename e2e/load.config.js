// The first-visit bench (`make bench-load`, not part of `make test`): the page benchmarks'
// settings, only load.bench.js.
const bench = require('./bench.config.js');

module.exports = {
  ...bench,
  testMatch: 'load.bench.js',
  testIgnore: undefined,
  timeout: 600_000,
};
