// Multiplexing against the real server: the proxy's connection lanes (one HTTP/2 connection with
// stream ids vs a pool of HTTP/1.1 connections), and the browser's own six-connection queue over
// HTTP/1.1 vs everything at once over HTTP/2 (the TLS listener, when scripts/e2e.sh started one).
const { test, expect } = require('@playwright/test');
const { drawnMessages, metric, waitForRunToFinish } = require('./helpers');

async function lifelines(page) {
  return page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
}

test('proxy over HTTP/2: every item is a stream of one connection lane', async ({ page }) => {
  const item = 1000;
  await page.goto(`/demo/multiplexing?side=proxy&via=h2&n=8&item_ms=${item}`);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('8 items over 1 connection');

  expect(await lifelines(page)).toEqual(['browser', 'server', 'conn-1']);
  const drawn = await drawnMessages(page);
  const forwarded = drawn.filter((m) => m.kind === 'request' && m.from === 'server' && m.to === 'conn-1');
  expect(forwarded.length).toBe(8);
  expect(forwarded.every((m) => m.transport === 'h2')).toBe(true);
  const streams = forwarded.map((m) => Number(/stream (\d+)/.exec(m.label)[1])).sort((a, b) => a - b);
  expect(streams).toEqual([1, 3, 5, 7, 9, 11, 13, 15]);
  expect(drawn.filter((m) => m.kind === 'response' && m.from === 'conn-1').length).toBe(8);
  expect(drawn.filter((m) => m.kind === 'connect').length).toBe(1);
  expect(await metric(page, 'upstream-connections')).toBe(1);
  expect(await metric(page, 'upstream-concurrent')).toBe(8);
  // All eight overlap: about one item's time, not eight. (One long item against a relative
  // cut: eight one after another would take 8 s; 300 ms items under a 600 ms absolute cut left
  // a loaded machine too little room for the connect and the scheduling.)
  expect(await metric(page, 'forward-ms')).toBeLessThan(2 * item);
  await page.screenshot({ path: 'output/multiplexing-h2.png', fullPage: true });
});

test('proxy over a pool of two HTTP/1.1 connections: two lanes, items wait in waves', async ({ page }) => {
  await page.goto('/demo/multiplexing?side=proxy&via=h1&pool=2&n=6&item_ms=300');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  expect(await lifelines(page)).toEqual(['browser', 'server', 'conn-1', 'conn-2']);
  const drawn = await drawnMessages(page);
  for (const lane of ['conn-1', 'conn-2']) {
    const onLane = drawn.filter((m) => m.kind === 'request' && m.to === lane);
    expect(onLane.length).toBe(3);
    expect(onLane.every((m) => m.transport === 'http/1.1' && !/stream/.test(m.label))).toBe(true);
  }
  expect(drawn.some((m) => m.kind === 'note' && /wait for a free one/.test(m.label))).toBe(true);
  // Items 3-6 waited a whole item's time for a connection (the first two only for the connect).
  const waited = drawn.map((m) => /waited (\d+) ms for a connection/.exec(m.label)).filter(Boolean).map((w) => Number(w[1]));
  expect(waited.filter((w) => w > 200).length).toBe(4);
  expect(await metric(page, 'upstream-connections')).toBe(2);
  expect(await metric(page, 'upstream-concurrent')).toBe(2);
  expect(await metric(page, 'forward-ms')).toBeGreaterThan(850);
  await page.screenshot({ path: 'output/multiplexing-h1.png', fullPage: true });
});

test('a bad pool size is the server\'s named 422, shown as such', async ({ page }) => {
  await page.goto('/demo/multiplexing?side=proxy&via=h1&pool=99&n=4&item_ms=10');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('422');
  await expect(page.getByTestId('status')).toContainText('pool');
});

test('browser over HTTP/1.1: all sent at once, the server holds six at a time, the rest stall', async ({ page }) => {
  const slow = [];
  page.on('request', (r) => r.url().includes('/api/mux/slow') && slow.push(r));
  await page.goto('/demo/multiplexing?side=browser&n=10&slow_ms=800');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('held at most 6');

  // Sent at once, received in two waves: six after ~800 ms, four after ~1600 ms. The seventh
  // cannot start before one of the first six has finished, and the server then holds it for
  // another 800 ms, so it finishes at least that long after the first one: a causal bound that
  // does not depend on how busy the machine is (an absolute 1400 ms cut did, and CI missed it
  // by 19 ms). The times are the browser's own (its network timing), not when this test
  // process got round to hearing of each request.
  expect(slow.length).toBe(10);
  for (const r of slow) await (await r.response()).finished();
  const sent = slow.map((r) => r.timing().startTime);
  const finished = slow.map((r) => r.timing().startTime + r.timing().responseEnd);
  expect(Math.max(...sent) - Math.min(...sent)).toBeLessThan(300);
  const after = finished.map((t) => t - Math.min(...sent)).sort((a, b) => a - b);
  expect(after[0]).toBeGreaterThan(700);
  expect(after[6] - after[0]).toBeGreaterThan(700);

  expect(await metric(page, 'server-max-in-flight')).toBe(6);
  expect(await metric(page, 'h2-requests')).toBe(0);
  const drawn = await drawnMessages(page);
  const requests = drawn.filter((m) => m.kind === 'request' && m.from === 'browser');
  expect(requests.length).toBe(10);
  expect(requests.every((m) => m.transport === 'http/1.1')).toBe(true);
  expect(await metric(page, 'connections')).toBeLessThanOrEqual(6);
  // The four that waited for a connection show it in the table and the waterfall.
  const rows = page.locator('[data-testid=results] tbody tr');
  await expect(rows).toHaveCount(10);
  expect(await page.locator('[data-testid=results] tr[data-protocol="http/1.1"]').count()).toBe(10);
  const stalled = await page.locator('[data-testid=waterfall-row]').evaluateAll((rows) =>
    rows.filter((r) => [...r.querySelectorAll('[data-phase]')].some((p) =>
      ['stalled', 'queued'].includes(p.dataset.phase) && Number(p.getAttribute('width')) > 20)).length);
  expect(stalled).toBeGreaterThanOrEqual(4);
  await page.screenshot({ path: 'output/multiplexing-browser-h1.png', fullPage: true });
});

test('browser over HTTP/2 (TLS listener): all requests overlap on one connection', async ({ browser }) => {
  test.skip(!process.env.TLS_URL, 'no TLS listener (scripts/e2e.sh starts one)');
  const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: process.env.TLS_URL });
  const page = await context.newPage();
  await page.goto('/demo/multiplexing?side=browser&n=10&slow_ms=800');
  await expect(page.getByTestId('protocol-hint')).toContainText('HTTP/2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('held at most 10');
  expect(await metric(page, 'server-max-in-flight')).toBe(10);
  expect(await metric(page, 'h2-requests')).toBe(10);
  expect(await metric(page, 'connections')).toBe(1);
  const entries = await page.evaluate(() =>
    performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/mux/slow'))
      .map((e) => ({ protocol: e.nextHopProtocol, requestStart: e.requestStart, responseStart: e.responseStart })));
  expect(entries.map((e) => e.protocol)).toEqual(Array(10).fill('h2'));
  // No request waited for another's answer: the browser had sent every one before the first
  // answer began to arrive (its own clock; over HTTP/1.1 the seventh goes only after an answer).
  // An ordering, not an absolute cut on how long the burst took.
  const lastSent = Math.max(...entries.map((e) => e.requestStart));
  const firstAnswer = Math.min(...entries.map((e) => e.responseStart));
  expect(lastSent).toBeGreaterThan(0);
  expect(lastSent).toBeLessThan(firstAnswer);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'response' && m.to === 'browser').every((m) => m.transport === 'h2')).toBe(true);
  await page.screenshot({ path: 'output/multiplexing-browser-h2.png', fullPage: true });
  await context.close();
});
