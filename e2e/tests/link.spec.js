// Network conditions per run: the "Link" control shapes every byte of a run in the server, so
// the real traffic (Resource Timing), the drawn exchanges and the comparison's measured
// latencies all move with the link, and the link travels in a share link and an export.
const { test, expect } = require('@playwright/test');
const { recordRequests, waitForRunToFinish, waitForTraceToSettle } = require('./helpers');

test('a run over 3G (300 ms round trip): every exchange takes at least 300 ms, really and as drawn', async ({ page }) => {
  const sent = recordRequests(page, '/api/echo');
  // A share link carries the link: the control starts on it.
  await page.goto('/demo/request-response?link=3g');
  await expect(page.getByTestId('param-link')).toHaveValue('3g');
  await expect(page.getByTestId('link-note')).toBeVisible();
  await expect(page.getByTestId('link-note')).toContainText('The server adds this delay');
  await page.getByTestId('param-repeat').fill('3');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('200 OK');

  // Every request of the run named the link, and the browser waited at least the round trip.
  expect(sent.length).toBe(3);
  for (const s of sent) expect(new URL('http://x' + s.pathAndQuery).searchParams.get('link')).toBe('3g');
  const durations = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/echo')).map((e) => e.duration));
  expect(durations.length).toBe(3);
  for (const ms of durations) expect(ms).toBeGreaterThanOrEqual(300);

  // The drawn exchanges are as long: the waterfall's totals, from the merged trace.
  await waitForTraceToSettle(page);
  const rows = page.getByTestId('waterfall-row');
  await expect(rows).toHaveCount(3);
  for (const us of await rows.evaluateAll((els) => els.map((e) => Number(e.dataset.totalUs)))) {
    expect(us).toBeGreaterThanOrEqual(300_000);
  }
  await expect(page.getByTestId('shaped')).toHaveAttribute('data-link', '3g');
  await expect(page.getByTestId('shaped')).toContainText('300 ms round trip');
  await page.screenshot({ path: 'output/link-3g.png', fullPage: true });

  // The exported trace carries the link; imported on a page with no link, it says it again.
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  const file = JSON.parse(require('fs').readFileSync(await json.path(), 'utf8'));
  expect(file.link).toBe('3g');
  await page.goto('/demo/request-response');
  await expect(page.getByTestId('param-link')).toHaveValue('local');
  await expect(page.getByTestId('link-note')).toBeHidden();
  await expect(page.getByTestId('shaped')).toHaveCount(0);
  await page.getByTestId('import-json').setInputFiles(await json.path());
  await expect(page.getByTestId('shaped')).toHaveAttribute('data-link', '3g');
});

test('the control changes the link of the next run, and WebSocket frames wait for it too', async ({ page }) => {
  const sockets = [];
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/api/push/ws')) return;
    const frames = [];
    sockets.push({ url: ws.url(), frames });
    ws.on('framesent', () => frames.push({ dir: 'out', at: Date.now() }));
    ws.on('framereceived', () => frames.push({ dir: 'in', at: Date.now() }));
  });
  await page.goto('/demo/push?steps=2&step_ms=100&clients=0');
  await page.getByTestId('param-link').selectOption('satellite');
  // The choice is in the page's URL, so "Copy link" carries it.
  await expect(page).toHaveURL(/[?&]link=satellite/);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  expect(sockets.length).toBe(1);
  expect(new URL(sockets[0].url).searchParams.get('link')).toBe('satellite');
  // The follow frame goes up, the first progress comes back: at least the 600 ms round trip.
  const out = sockets[0].frames.find((f) => f.dir === 'out');
  const back = sockets[0].frames.find((f) => f.dir === 'in' && f.at >= out.at);
  expect(back.at - out.at).toBeGreaterThanOrEqual(590);
  await expect(page.getByTestId('shaped')).toHaveAttribute('data-link', 'satellite');
});

test('the comparison runs all four patterns over one link: each extra round trip shows in the latencies', async ({ page }) => {
  test.setTimeout(90_000);
  const LANES = ['short-polling', 'long-polling', 'sse', 'websocket'];
  const runCompare = async (link) => {
    await page.goto(`/demo/compare?link=${link}`);
    await expect(page.getByTestId('param-link')).toHaveValue(link);
    await page.getByTestId('param-steps').fill('6');
    await page.getByTestId('param-step-ms').fill('400');
    await page.getByTestId('param-interval').fill('100');
    await page.getByTestId('run').click();
    await expect(page.getByTestId('run')).toBeEnabled({ timeout: 40_000 });
    for (const lane of LANES) {
      await expect(page.locator(`[data-lane=${lane}] [data-testid=job-progress]`)).toHaveAttribute('value', '6');
    }
    await waitForTraceToSettle(page);
    const figures = {};
    for (const lane of LANES) {
      const value = async (name) =>
        Number(await page.locator(`[data-testid=metric][data-name="${lane}:${name}"]`).getAttribute('data-value'));
      figures[lane] = { p50: await value('latency-notify-p50'), requests: await value('requests') };
    }
    return figures;
  };
  const local = await runCompare('local');
  const slow = await runCompare('3g');
  await page.screenshot({ path: 'output/compare-3g.png', fullPage: true });
  for (const lane of LANES) {
    // Every update crosses the link at least once on its way down: half the round trip.
    expect(slow[lane].p50, `${lane} p50 over 3G`).toBeGreaterThanOrEqual(150);
    expect(slow[lane].p50, `${lane} p50 over 3G vs local`).toBeGreaterThan(local[lane].p50);
  }
  // Pushed over an open stream or socket, an update pays one way; a short poll pays the wait for
  // the next poll, and each poll is a whole round trip, so it polls less often and lags more.
  for (const lane of ['sse', 'websocket']) {
    expect(slow[lane].p50).toBeLessThan(slow['short-polling'].p50);
  }
  expect(slow['short-polling'].requests).toBeLessThan(local['short-polling'].requests);
});
