// The timing waterfall lists each HTTP exchange with the browser's Resource Timing phases and the
// server's Server-Timing phases; a long quiet stretch in the diagram is folded and marked.
const { test, expect } = require('@playwright/test');
const { recordRequests, waitForRunToFinish } = require('./helpers');

test('one waterfall row per request, with browser and server phases, selecting its exchange', async ({ page }) => {
  const sent = recordRequests(page, '/api/echo');
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('120');
  await page.getByTestId('param-repeat').fill('3');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const rows = page.locator('[data-testid=waterfall-row]');
  await expect(rows).toHaveCount(sent.length);
  expect(sent.length).toBe(3);
  const labels = await rows.evaluateAll((els) => els.map((e) => e.dataset.label));
  expect(labels.map((l) => new URL(l.split(' ')[1], 'http://x').searchParams.get('rid')))
    .toEqual(sent.map((s) => new URL(s.pathAndQuery, 'http://x').searchParams.get('rid')));
  for (const row of await rows.all()) {
    const phases = await row.locator('[data-phase]').evaluateAll((els) => els.map((e) => e.dataset.phase));
    expect(phases).toContain('waiting for first byte');
    expect(phases).toContain('server process');
    // The row spans the whole exchange: at least the server's 120 ms of work.
    expect(Number(await row.getAttribute('data-total-us'))).toBeGreaterThan(120_000);
  }
  await rows.nth(1).click();
  await expect(page.getByTestId('inspector')).toContainText(sent[1].pathAndQuery.split('?')[0]);
  await expect(page.locator('[data-testid=message].selected')).toHaveCount(1);
});

test('a held long poll folds into a marked gap when time is to scale, and not when compact', async ({ page }) => {
  await page.goto('/demo/long-polling?steps=1&step_ms=3000&timeout_ms=10000');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const fold = page.getByTestId('fold');
  await expect(fold).toHaveCount(1);
  expect(Number(await fold.getAttribute('data-quiet-us'))).toBeGreaterThan(2_500_000);
  await expect(fold).toContainText('quiet, folded');
  // The folded diagram is short enough to read without scrolling at 720 px.
  const height = Number(await page.getByTestId('sequence-diagram').getAttribute('height'));
  expect(height).toBeLessThan(600);
  await page.getByTestId('time-to-scale').uncheck();
  await expect(fold).toHaveCount(0);
});
