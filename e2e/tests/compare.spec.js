// The four notification patterns at once: each lane's diagram draws exactly its own traffic,
// and the table's measured figures rank them the way the traffic says they should.
const { test, expect } = require('@playwright/test');
const { waitForTraceToSettle } = require('./helpers');

const LANES = ['short-polling', 'long-polling', 'sse', 'websocket'];

test('four identical jobs, four patterns: the table measures what each lane really did', async ({ page }) => {
  const requests = [];
  page.on('request', (r) => r.url().includes('/api/jobs') && requests.push(r));
  const sockets = [];
  page.on('websocket', (ws) => ws.url().includes('/api/push/ws') && sockets.push(ws.url()));
  await page.goto('/demo/compare');
  // Eight steps 600 ms apart against a poll every 250 ms: each step lands 100 ms further into
  // the poll cycle than the one before, so the polled lane's waits spread over the whole cycle
  // and its median is about half a cycle (with steps a whole number of cycles apart, the updates
  // could all land just before a poll and tie with the pushed ones). Half a cycle is well above
  // what a busy main thread adds to any lane: four diagrams animating at once delay a handler
  // by up to about 60 ms on a loaded test machine. And 4.8 s of polling makes more requests than
  // the long polls' nine even when a loaded machine stretches each poll's cycle to 430 ms.
  await page.getByTestId('param-steps').fill('8');
  await page.getByTestId('param-step-ms').fill('600');
  await page.getByTestId('param-interval').fill('250');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('run')).toBeEnabled({ timeout: 20_000 });
  for (const lane of LANES) {
    await expect(page.locator(`[data-lane=${lane}] [data-testid=job-progress]`)).toHaveAttribute('value', '8');
  }
  const metric = async (lane, name) =>
    Number(await page.locator(`[data-testid=metric][data-name="${lane}:${name}"]`).getAttribute('data-value'));

  for (const lane of LANES) {
    // The lane's run id, from its first drawn request; then what the browser really sent for it.
    const first = await page.locator(`[data-lane=${lane}] [data-testid=message][data-kind=request][data-from=browser]`).first().getAttribute('data-label');
    const run = new URL('http://x' + first.split(' ')[1]).searchParams.get('run');
    const sent = requests.filter((r) => new URL(r.url()).searchParams.get('run') === run);
    const upgrades = sockets.filter((u) => new URL(u).searchParams.get('run') === run);
    const drawn = await page.locator(`[data-lane=${lane}] [data-testid=message][data-kind=request][data-from=browser]`).count();
    expect(drawn).toBe(sent.length + upgrades.length);
    expect(await metric(lane, 'requests')).toBe(drawn);
  }
  // Polling pays in requests; streams and sockets need two (the submit and one connection).
  expect(await metric('short-polling', 'requests')).toBeGreaterThan(await metric('long-polling', 'requests'));
  expect(await metric('long-polling', 'requests')).toBe(9); // submit + one wait per step
  expect(await metric('sse', 'requests')).toBe(2);
  expect(await metric('websocket', 'requests')).toBe(2);
  expect(await metric('short-polling', 'empty-polls')).toBeGreaterThan(0);
  expect(await metric('long-polling', 'empty-polls')).toBe(0);
  // Pushed updates arrive sooner than polled ones. Every lane's median goes in the message, so
  // a failure shows the whole table.
  const p50 = {};
  for (const lane of LANES) p50[lane] = await metric(lane, 'latency-notify-p50');
  for (const lane of ['sse', 'websocket', 'long-polling']) {
    expect(p50[lane], `update → page p50 (ms) by lane: ${JSON.stringify(p50)}`).toBeLessThan(p50['short-polling']);
  }
  for (const lane of LANES) expect(await metric(lane, 'bytes-down')).toBeGreaterThan(0);
  await page.screenshot({ path: 'output/compare.png', fullPage: true });
});

test('each lane has its own playback and export: pausing one leaves the others live', async ({ page }) => {
  await page.goto('/demo/compare');
  await page.getByTestId('param-steps').fill('2');
  await page.getByTestId('param-step-ms').fill('150');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('run')).toBeEnabled({ timeout: 20_000 });
  // The lanes' server-side records may still be arriving: count once they have stopped.
  await waitForTraceToSettle(page);
  const lane = (name) => page.locator(`[data-lane=${name}]`);
  const drawn = (name) => lane(name).locator('[data-testid=message]');
  const sseAll = await drawn('sse').count();
  const wsAll = await drawn('websocket').count();
  await lane('sse').getByTestId('scrub').fill('0');
  await expect(drawn('sse')).toHaveCount(0);
  await expect(drawn('websocket')).toHaveCount(wsAll);
  await lane('sse').getByTestId('pause').click();
  await expect(drawn('sse')).toHaveCount(sseAll);
  const [file] = await Promise.all([page.waitForEvent('download'), lane('websocket').getByTestId('export-json').click()]);
  expect(file.suggestedFilename()).toBe('patternscope-compare-websocket.json');
});
