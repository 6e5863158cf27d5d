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

test('the diagram exports as a standalone SVG file with every message and its own style', async ({ page }) => {
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('60');
  await page.getByTestId('param-repeat').fill('2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const [svg] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-svg').click()]);
  expect(svg.suggestedFilename()).toBe('patternscope-request-response.svg');
  const text = fs.readFileSync(await svg.path(), 'utf8');
  expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg')).toBe(true);
  expect(text).toContain('xmlns="http://www.w3.org/2000/svg"');
  expect(text).toContain('.message .line');
  expect(text.match(/data-testid="message"/g).length).toBe(4);

  // Opened on its own (no page stylesheet), it is a valid SVG that draws the same arrows.
  const alone = await page.context().newPage();
  await alone.goto('about:blank');
  const drawn = await alone.evaluate((markup) => {
    const doc = new DOMParser().parseFromString(markup, 'image/svg+xml');
    if (doc.querySelector('parsererror')) return { error: doc.querySelector('parsererror').textContent };
    const kinds = [...doc.querySelectorAll('[data-testid=message]')].map((m) => m.dataset.kind);
    return { root: doc.documentElement.localName, kinds, style: doc.querySelector('style') !== null };
  }, text);
  expect(drawn).toEqual({ root: 'svg', kinds: ['request', 'response', 'request', 'response'], style: true });
  await alone.close();
});
