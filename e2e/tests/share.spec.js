// A demo's settings live in its URL: a shared link opens the same demo with the same settings.
const { test, expect } = require('@playwright/test');
const { recordRequests, waitForRunToFinish } = require('./helpers');

test('parameters come from the link and go back into it', async ({ page }) => {
  await page.goto('/demo/request-response?format=xml&items=7&process_ms=33&repeat=2');
  await expect(page.getByTestId('param-format')).toHaveValue('xml');
  await expect(page.getByTestId('param-items')).toHaveValue('7');
  await expect(page.getByTestId('param-process-ms')).toHaveValue('33');
  await expect(page.getByTestId('param-repeat')).toHaveValue('2');

  const sent = recordRequests(page, '/api/echo');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  expect(sent.length).toBe(2);
  for (const s of sent) {
    expect(s.pathAndQuery).toContain('process_ms=33');
    expect(s.req.headers()['content-type']).toBe('application/xml');
  }

  // A change goes into the address, so "copy link" copies the settings as they are now.
  await page.getByTestId('param-process-ms').fill('44');
  await expect(page).toHaveURL(/process_ms=44/);
  await page.getByTestId('copy-link').click();
  await expect(page.getByTestId('copy-link')).toHaveText('Link copied');

  // The job demos keep theirs in the link too.
  await page.goto('/demo/short-polling?steps=3&step_ms=120&interval_ms=90');
  await expect(page.getByTestId('param-steps')).toHaveValue('3');
  await expect(page.getByTestId('param-step-ms')).toHaveValue('120');
  await expect(page.getByTestId('param-interval')).toHaveValue('90');
});
