// A HAR file recorded by Chromium (through Playwright's recordHar) of real traffic, imported on
// /har: every entry drawn as a request and its answer from its origin's lifeline, one for one;
// the waterfall's phases from the file; credentials hidden until shown; filters; a broken file
// refused with a message.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const { drawnMessages, waitForRunToFinish } = require('./helpers');

/** Records a HAR of `visit(page)` in a context of its own; returns the file's path and JSON. */
async function recordHar(browser, baseURL, name, visit) {
  const path = test.info().outputPath(`${name}.har`);
  const context = await browser.newContext({ baseURL, recordHar: { path, content: 'embed' } });
  const page = await context.newPage();
  await visit(page);
  await context.close();
  return { path, har: JSON.parse(fs.readFileSync(path, 'utf8')) };
}

test('a HAR Chromium recorded of a demo imports with one request and answer per entry', async ({ browser, page, baseURL }) => {
  const { path, har } = await recordHar(browser, baseURL, 'sse-demo', async (p) => {
    await p.goto('/demo/request-response?repeat=2&process_ms=20');
    await p.getByTestId('run').click();
    await waitForRunToFinish(p);
    await p.goto('/demo/sse?steps=3&step_ms=100');
    await p.getByTestId('run').click();
    await waitForRunToFinish(p);
  });
  const entries = har.log.entries;
  expect(entries.length).toBeGreaterThan(8);
  expect(entries.some((e) => e.request.url.includes('/api/echo'))).toBe(true);
  expect(entries.some((e) => e.request.url.includes('/api/jobs/'))).toBe(true);

  await page.goto('/har');
  await page.getByTestId('har-file').setInputFiles(path);
  await expect(page.getByTestId('status')).toContainText(`${entries.length} of ${entries.length} entries drawn`);
  const drawn = await drawnMessages(page);
  const requests = drawn.filter((m) => m.kind === 'request' && m.from === 'browser');
  const answers = drawn.filter((m) => m.kind === 'response' && m.to === 'browser');
  const answered = entries.filter((e) => e.response.status > 0);
  expect(requests.length).toBe(entries.length);
  expect(answers.length).toBe(answered.length);
  // One for one: each entry's method and URL is a drawn request, to its origin's lifeline.
  const labels = requests.map((m) => m.label).sort();
  const pathOf = (url) => { const u = new URL(url); return u.pathname + u.search; };
  expect(labels).toEqual(entries.map((e) => `${e.request.method} ${pathOf(e.request.url)}`).sort());
  const origin = new URL(baseURL).origin;
  expect(requests.every((m) => m.to === origin)).toBe(true);
  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors).toEqual(['browser', origin]);
  // Statuses as the file has them.
  expect(answers.map((m) => m.label.split(' ')[0]).sort()).toEqual(answered.map((e) => String(e.response.status)).sort());

  // The waterfall shows the file's phases; the inspector the file's headers.
  await expect(page.getByTestId('waterfall-row')).toHaveCount(entries.filter((e) => e.response.status > 0 && !e.request.url.startsWith('ws')).length);
  await expect(page.locator('[data-testid=waterfall] rect[data-phase=wait]').first()).toBeAttached();
  await page.locator('[data-testid=message][data-kind=request][data-label*="/api/echo"]').first().click();
  await expect(page.getByTestId('inspector')).toContainText('POST /api/echo');
  await page.screenshot({ path: 'output/har.png', fullPage: true });
});

test('a HAR of two origins draws two lifelines; filters and the credentials switch redraw it', async ({ browser, page, baseURL }) => {
  const other = baseURL.replace('127.0.0.1', 'localhost');
  const { path, har } = await recordHar(browser, baseURL, 'two-origins', async (p) => {
    await p.goto('/');
    await p.goto(`${other}/demo/request-response`);
    await p.getByTestId('run').click();
    await waitForRunToFinish(p);
  });
  const origins = [...new Set(har.log.entries.map((e) => new URL(e.request.url).origin))];
  expect(origins.length).toBe(2);

  await page.goto('/har');
  await page.getByTestId('har-file').setInputFiles(path);
  const total = har.log.entries.length;
  await expect(page.getByTestId('status')).toContainText(`${total} of ${total} entries drawn, from 2 origins`);
  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors.slice(1).sort()).toEqual(origins.sort());

  // Only the second origin.
  await page.getByTestId('filter-origin').selectOption(new URL(other).origin);
  const fromOther = har.log.entries.filter((e) => new URL(e.request.url).origin === new URL(other).origin).length;
  await expect(page.getByTestId('status')).toContainText(`${fromOther} of ${total} entries drawn`);
  // The status is written before the diagram's next frame redraws the filtered trace.
  await expect.poll(async () => (await drawnMessages(page)).filter((m) => m.kind === 'request').length)
    .toBe(fromOther);
  // Only failures (none here).
  await page.getByTestId('filter-origin').selectOption('');
  await page.getByTestId('filter-status').selectOption('5xx');
  await expect(page.getByTestId('status')).toContainText(`0 of ${total} entries drawn`);
  await page.getByTestId('filter-status').selectOption('');
});

test('credentials are hidden unless shown, and a file that is not a HAR is refused', async ({ page }) => {
  const har = {
    log: {
      version: '1.2',
      creator: { name: 'test', version: '1' },
      entries: [{
        startedDateTime: '2026-12-06T10:00:00.000Z',
        time: 30,
        request: { method: 'GET', url: 'https://api.example.org/me', httpVersion: 'HTTP/1.1', headers: [{ name: 'Authorization', value: 'Bearer s3cret' }, { name: 'Cookie', value: 'sid=abc123' }], headersSize: 100, bodySize: 0 },
        response: { status: 200, statusText: 'OK', httpVersion: 'HTTP/1.1', headers: [{ name: 'Set-Cookie', value: 'sid=xyz789' }], content: { size: 2, mimeType: 'application/json', text: '{}' }, headersSize: 90, bodySize: 2 },
        timings: { blocked: 1, dns: 5, connect: 10, ssl: 6, send: 1, wait: 10, receive: 3 },
      }],
    },
  };
  const path = test.info().outputPath('secret.har');
  fs.writeFileSync(path, JSON.stringify(har));
  await page.goto('/har');
  await page.getByTestId('har-file').setInputFiles(path);
  await expect(page.getByTestId('status')).toContainText('1 of 1 entries drawn');
  await page.locator('[data-testid=message][data-kind=request]').click();
  const inspector = page.getByTestId('inspector');
  await expect(inspector).toContainText('Authorization: (hidden');
  await expect(inspector).not.toContainText('s3cret');
  await page.getByTestId('show-credentials').check();
  await expect(page.locator('[data-testid=message][data-kind=request]')).toHaveCount(1);
  await page.locator('[data-testid=message][data-kind=request]').click();
  await expect(page.getByTestId('inspector')).toContainText('Bearer s3cret');

  const bogus = test.info().outputPath('bogus.har');
  fs.writeFileSync(bogus, '{"log": {"pages": []}}');
  await page.getByTestId('har-file').setInputFiles(bogus);
  await expect(page.getByTestId('har-error')).toContainText('not a HAR file: it has no log.entries list');
});
