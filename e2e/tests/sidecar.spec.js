// The sidecar against the real server: browser → server → sidecar → app, the retries it made,
// the headers it added (inspector), and the requests its rate limit refused.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

test('the sidecar retries the app\'s failures and the inspector shows the headers it added', { tag: '@proxy' }, async ({ page }) => {
  const sent = recordRequests(page, '/api/sidecar/orders/');
  await page.goto('/demo/sidecar?requests=3&fail_percent=50&rate_per_s=0&gap_ms=0');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('3 answered, 0 refused by the rate limit, 0 failed');
  expect(sent.length).toBe(3);
  for (const s of sent) {
    const response = await s.req.response();
    expect(response.status()).toBe(200);
    expect(response.headers()['x-request-id']).toMatch(/^[0-9a-f]{16}$/);
  }

  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors).toEqual(['browser', 'server', 'sidecar', 'app']);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'request' && m.from === 'server' && m.to === 'sidecar').length).toBe(3);
  const toApp = drawn.filter((m) => m.kind === 'request' && m.from === 'sidecar' && m.to === 'app');
  const retries = toApp.filter((m) => m.label.includes('(retry 1)'));
  expect(retries.length).toBeGreaterThanOrEqual(1);
  expect(drawn.filter((m) => m.kind === 'response' && m.from === 'app' && m.label.startsWith('500')).length).toBe(retries.length);
  expect(await metric(page, 'retries')).toBe(retries.length);

  await page.locator('[data-testid=message][data-kind=request][data-from=sidecar]').first().click();
  const inspector = page.getByTestId('inspector');
  await expect(inspector).toContainText(/x-request-id: [0-9a-f]{16}/);
  await expect(inspector).toContainText(/traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-01/);
  await page.screenshot({ path: 'output/sidecar.png', fullPage: true });
});

test('over the rate limit the sidecar answers 429 without calling the app', async ({ page }) => {
  const sent = recordRequests(page, '/api/sidecar/orders/');
  // One a second (a bucket of one): five back-to-back requests would have to take 3 s for
  // fewer than two to be refused (at 2/s, a loaded machine taking 1 s for them got one 429).
  await page.goto('/demo/sidecar?requests=5&fail_percent=0&rate_per_s=1&gap_ms=0');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const statuses = [];
  for (const s of sent) statuses.push((await s.req.response()).status());
  expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'request' && m.to === 'app').length).toBe(statuses.filter((s) => s === 200).length);
  expect(await metric(page, 'rate-limited')).toBe(statuses.filter((s) => s === 429).length);
  expect(drawn.filter((m) => m.kind === 'note' && m.from === 'sidecar' && m.label.startsWith('429: over 1/s')).length).toBeGreaterThanOrEqual(2);
});
