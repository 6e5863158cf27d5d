// Accessibility: axe-core finds no serious or critical violations on the index and on every
// built demo page, before and after a run.
const { test, expect } = require('@playwright/test');
const { default: AxeBuilder } = require('@axe-core/playwright');

async function serious(page) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

test('the index has no serious accessibility violations', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('pattern-list')).toBeVisible();
  expect(await serious(page)).toEqual([]);
});

test('every built demo page has no serious accessibility violations, before and after a run', async ({ page }) => {
  test.setTimeout(120_000);
  await page.goto('/');
  await expect(page.locator('[data-testid=pattern-list] li').first()).toBeVisible();
  const built = await page.locator('[data-testid=pattern-list] li:not(:has(.badge)) a').evaluateAll((as) =>
    as.map((a) => a.getAttribute('href')));
  expect(built.length).toBeGreaterThanOrEqual(7);
  for (const path of built) {
    await page.goto(path);
    await expect(page.getByTestId('run')).toBeVisible();
    expect({ path, violations: await serious(page) }).toEqual({ path, violations: [] });
    await page.getByTestId('run').click();
    await expect(page.locator('[data-testid=message]').first()).toBeVisible();
    const stop = page.getByTestId('stop');
    // The run may end between the check and the click: then there is nothing to stop.
    if (await stop.isEnabled()) await stop.click({ timeout: 2000 }).catch(() => {});
    await expect(page.getByTestId('run')).toBeEnabled();
    expect({ path, after: 'run', violations: await serious(page) }).toEqual({ path, after: 'run', violations: [] });
  }
});

test('on a phone-sized screen in dark mode, a run stays usable: controls wrap, the diagram scrolls', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
  const page = await context.newPage();
  await page.goto('/demo/sse');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('run')).toBeEnabled({ timeout: 20_000 });
  // Nothing but the diagram's own scroll box is wider than the screen.
  const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(pageWidth).toBeLessThanOrEqual(390);
  const scroller = page.locator('.diagram-scroll');
  expect(await scroller.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
  expect(await serious(page)).toEqual([]);
  await context.close();
});
