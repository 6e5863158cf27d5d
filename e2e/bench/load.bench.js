// First visit on a slow link (issue 19, `make bench-load`, not part of `make test`): a demo
// page opened in Debian's Chromium with a cold cache over an emulated link (DevTools-protocol
// network conditions), against the release server over HTTPS (HTTP/2; Chromium asks for brotli
// only over HTTPS, as a served class is). Three cold runs per link, the median reported; then
// the same page again in the same context (cached). Measures what the page downloads (every
// response's encoded bytes, headers included, as the network saw them) and the time from
// navigation start to a usable Run button (attached, enabled, the page's WebAssembly running).
// Section "First visit" of bench/RESULTS.md.
const crypto = require('crypto');
const os = require('os');
const tls = require('tls');
const { test, expect, chromium } = require('@playwright/test');
const { writeSection } = require('./measure');

const PAGE = process.env.LOAD_PAGE || '/demo/request-response';
const RUNS = Number(process.env.LOAD_RUNS || 3);
const LINKS = [
  // Chrome's "Fast 3G" upload rate beside the download rate and round trip.
  { name: '1.6 Mbit/s, 150 ms', down: 1.6e6, up: 0.75e6, rttMs: 150, floorMs: 2500 },
  { name: '10 Mbit/s, 40 ms', down: 10e6, up: 5e6, rttMs: 40, floorMs: 800 },
];
const FLOOR_KIB = 400;
const CACHED_FLOOR_MS = 400;

/** The base64 SHA-256 of the TLS server's public key (SubjectPublicKeyInfo), for Chromium's
 * --ignore-certificate-errors-spki-list: the server's self-signed certificate is then trusted as
 * a real one is. (With a certificate error instead, Chromium caches nothing, and a second visit
 * would measure a first one again.) */
function spkiHash(base) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const { raw } = socket.getPeerCertificate();
      socket.end();
      const spki = new crypto.X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
      resolve(crypto.createHash('sha256').update(spki).digest('base64'));
    });
    socket.on('error', reject);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

/** Records performance.now() when the Run button is first usable, from the page's own clock. */
const MARK_USABLE = () => {
  const seen = () => {
    const run = document.querySelector('[data-testid=run]');
    if (run && !run.disabled && !window.__usableAt) window.__usableAt = performance.now();
    return window.__usableAt;
  };
  new MutationObserver(seen).observe(document, { subtree: true, childList: true, attributes: true });
};

/** One visit of PAGE in `context` over `link`: bytes and time to a usable Run button. */
async function visit(context, link) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: link.rttMs,
    downloadThroughput: link.down / 8,
    uploadThroughput: link.up / 8,
  });
  const bytes = new Map();
  const urls = new Map();
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.loadingFinished', (e) => bytes.set(e.requestId, e.encodedDataLength));
  await page.addInitScript(MARK_USABLE);
  await page.goto(PAGE);
  await expect(page.getByTestId('run')).toBeEnabled({ timeout: 60_000 });
  const usableMs = await page.evaluate(() => window.__usableAt);
  // Whatever was still arriving for the first paint (a font, an icon) counts too.
  await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => {});
  const files = [...bytes].map(([id, b]) => ({ url: urls.get(id), bytes: b }));
  await page.close();
  return { usableMs, bytes: files.reduce((s, f) => s + f.bytes, 0), files };
}

test('first visit and second visit of a demo page on emulated links', async ({}, testInfo) => {
  test.setTimeout(600_000);
  const base = process.env.TLS_URL;
  test.skip(!base, 'no TLS listener (scripts/e2e.sh starts one)');
  const launch = testInfo.project.use.launchOptions || {};
  const browser = await chromium.launch({
    ...launch,
    args: [...(launch.args || []), `--ignore-certificate-errors-spki-list=${await spkiHash(base)}`],
  });
  const before = load();
  const rows = [];
  let largest = [];
  for (const link of LINKS) {
    const cold = [];
    const warm = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ baseURL: base });
      const first = await visit(context, link);
      cold.push(first);
      warm.push(await visit(context, link));
      await context.close();
    }
    largest = cold[0].files.sort((a, b) => b.bytes - a.bytes);
    rows.push({ link, cold, warm });
  }
  await browser.close();
  const after = load();
  const kib = (b) => (b / 1024).toFixed(1);
  const ms = (x) => `${Math.round(x)} ms`;
  const table = rows.map(({ link, cold, warm }) => {
    const c = median(cold.map((r) => r.usableMs));
    const w = median(warm.map((r) => r.usableMs));
    const b = median(cold.map((r) => r.bytes));
    return `| ${link.name} | ${kib(b)} KiB | ${cold.map((r) => ms(r.usableMs)).join(', ')} | **${ms(c)}** (floor ${link.floorMs} ms: ${c <= link.floorMs ? 'holds' : 'does not hold'}) | ${warm.map((r) => ms(r.usableMs)).join(', ')} | **${ms(w)}** (floor ${CACHED_FLOOR_MS} ms: ${w <= CACHED_FLOOR_MS ? 'holds' : 'does not hold'}) | ${kib(median(warm.map((r) => r.bytes)))} KiB |`;
  });
  const firstBytes = median(rows[0].cold.map((r) => r.bytes));
  const files = largest
    .slice(0, 8)
    .map((f) => `| ${new URL(f.url).pathname} | ${f.bytes} |`)
    .join('\n');
  writeSection('load', `
## First visit: a demo page on emulated links (cold and cached)

Command: \`make bench-load\` (the release backend and page, \`e2e/bench/load.bench.js\` in Debian's Chromium through Playwright over HTTPS/HTTP/2, DevTools-protocol network conditions); ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; 2 cores; load average (1/5/15 min) ${before} before, ${after} after. Page: \`${PAGE}\`. Usable: the Run button attached and enabled (the page's WebAssembly running), timed on the page's clock from navigation start. Bytes: every response's encoded length with its headers (\`Network.loadingFinished\`), up to network idle. Cold: a fresh browser context; cached: the same page again in that context. ${RUNS} runs each, median in bold.

| link | bytes, cold (median) | usable, cold runs | cold median | usable, cached runs | cached median | bytes, cached |
| --- | --- | --- | --- | --- | --- | --- |
${table.join('\n')}

- Bytes a first visit downloads ≤ ${FLOOR_KIB} KiB: ${kib(firstBytes)} KiB: ${firstBytes <= FLOOR_KIB * 1024 ? 'holds' : '**does not hold**'}

Largest responses of one cold visit (encoded bytes, headers included):

| path | bytes |
| --- | --- |
${files}
`);
});
