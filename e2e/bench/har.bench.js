// The HAR page's floor (issue 18): a 50 MB file of 20,000 entries loads on /har without
// freezing the page. The file is made here in Chrome's shape (each entry a request with its
// headers and a 2 KB JSON answer), picked with the file input, and timed in Debian's Chromium:
// from the pick to every entry drawn, and the page's longest frame (requestAnimationFrame gap)
// meanwhile. Section "HAR import" of bench/RESULTS.md. Run by `make bench-page`.
const fs = require('fs');
const os = require('os');
const { test, expect } = require('@playwright/test');
const { startFrameCounter, stopFrameCounter, frameStats, writeSection } = require('./measure');

const ENTRIES = Number(process.env.HAR_ENTRIES || 20_000);
const FLOOR_BYTES = 50 * 1000 * 1000;

function entry(i) {
  const at = new Date(Date.UTC(2026, 11, 6, 10, 0, 0) + i * 15).toISOString();
  const body = JSON.stringify({ id: i, items: Array.from({ length: 44 }, (_, k) => ({ sku: `sku-${i}-${k}`, qty: k })) });
  return {
    startedDateTime: at,
    time: 12,
    request: {
      method: 'GET', url: `https://api${i % 3}.example.org/orders/${i}?page=${i % 7}`, httpVersion: 'h2',
      headers: [{ name: 'accept', value: 'application/json' }, { name: 'user-agent', value: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0' }],
      queryString: [], cookies: [], headersSize: -1, bodySize: 0,
    },
    response: {
      status: i % 50 === 0 ? 404 : 200, statusText: '', httpVersion: 'h2',
      headers: [{ name: 'content-type', value: 'application/json' }, { name: 'cache-control', value: 'no-store' }],
      cookies: [], content: { size: body.length, mimeType: 'application/json', text: body },
      redirectURL: '', headersSize: -1, bodySize: body.length, _transferSize: body.length + 120,
    },
    cache: {},
    timings: { blocked: 1.2, dns: -1, ssl: -1, connect: -1, send: 0.1, wait: 8.5, receive: 2.2 },
    _resourceType: 'fetch',
  };
}

test('a 50 MB HAR of 20,000 entries loads without freezing the page', async ({ page }) => {
  const file = `${os.tmpdir()}/patternscope-bench-20000.har`;
  const har = { log: { version: '1.2', creator: { name: 'WebInspector', version: '537.36' }, pages: [], entries: [] } };
  for (let i = 0; i < ENTRIES; i++) har.log.entries.push(entry(i));
  fs.writeFileSync(file, JSON.stringify(har));
  const bytes = fs.statSync(file).size;
  if (ENTRIES === 20_000) expect(bytes).toBeGreaterThan(FLOOR_BYTES * 0.95);

  await page.goto('/har');
  await expect(page.getByTestId('har-file')).toBeAttached();
  await startFrameCounter(page);
  const t0 = Date.now();
  await page.getByTestId('har-file').setInputFiles(file);
  await expect(page.getByTestId('status')).toContainText(`${ENTRIES} of ${ENTRIES} entries drawn`, { timeout: 170_000 });
  await expect.poll(async () => Number(await page.getByTestId('sequence-diagram').getAttribute('data-total-messages')), { timeout: 60_000 }).toBe(2 * ENTRIES);
  const loaded = Date.now() - t0;
  const frames = frameStats((await stopFrameCounter(page)).frames);
  const load = os.loadavg()[0].toFixed(2);
  writeSection('har', `
## HAR import

Command: \`make bench-page\` (\`e2e/bench/har.bench.js\`), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${load}.
A HAR of ${ENTRIES.toLocaleString('en')} entries, ${(bytes / 1e6).toFixed(1)} MB (each a GET with a 2 KB JSON answer, three origins), picked on \`/har\`.

| what | measured | floor |
|---|---|---|
| pick → all ${ENTRIES.toLocaleString('en')} entries drawn (${2 * ENTRIES} messages) | ${(loaded / 1000).toFixed(1)} s | — |
| longest frame while loading (page frozen at most) | ${frames.longest.toFixed(0)} ms | "without freezing" |
| frames per second while loading (mean / worst second) | ${frames.mean.toFixed(0)} / ${frames.worst} | — |
`);
  console.log(`HAR ${bytes} bytes: loaded in ${loaded} ms, longest frame ${frames.longest.toFixed(0)} ms, mean ${frames.mean.toFixed(0)} fps, worst second ${frames.worst}`);
});
