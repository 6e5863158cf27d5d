// Export a finished run as JSON and Mermaid, reload, import the JSON: the same diagram comes
// back without a single request to the server.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const { drawnMessages, waitForRunToFinish } = require('./helpers');

test('a run exported as JSON imports back into the same diagram, offline', async ({ page }) => {
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('120');
  await page.getByTestId('param-repeat').fill('2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const before = await drawnMessages(page);
  expect(before.length).toBe(4);

  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  expect(json.suggestedFilename()).toBe('patternscope-request-response.json');
  const saved = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
  expect(saved.version).toBe(1);
  expect(saved.browser.length).toBe(4);
  expect(saved.server.length).toBe(4);

  const [mermaid] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-mermaid').click()]);
  const text = fs.readFileSync(await mermaid.path(), 'utf8');
  expect(text.split('\n')[0]).toBe('sequenceDiagram');
  expect(text).toContain('participant p0 as browser');
  expect(text).toMatch(/p0->>p1: POST \/api\/echo/);
  expect(text).toMatch(/p1-->>p0: 200 OK/);

  await page.reload();
  await expect(page.locator('[data-testid=message]')).toHaveCount(0);
  const sentAfterImport = [];
  page.on('request', (r) => r.url().includes('/api/echo') && sentAfterImport.push(r.url()));
  await page.getByTestId('import-json').setInputFiles(await json.path());
  await expect(page.locator('[data-testid=message]')).toHaveCount(4);
  expect(await drawnMessages(page)).toEqual(before);
  expect(sentAfterImport).toEqual([]);

  // A file that is not a trace is refused with a message, and the diagram stays.
  const bogus = test.info().outputPath('bogus.json');
  fs.writeFileSync(bogus, '{"hello": 1}');
  await page.getByTestId('import-json').setInputFiles(bogus);
  await expect(page.locator('.import-error')).toContainText('not a Patternscope trace');
  await expect(page.locator('[data-testid=message]')).toHaveCount(4);
});
