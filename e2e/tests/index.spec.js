// The app shell: the index lists every pattern, unbuilt ones say so, deep links survive reloads.
const { test, expect } = require('@playwright/test');

const SLUGS = ['request-response', 'upload', 'sync-async', 'short-polling', 'long-polling', 'sse', 'push',
  'pubsub', 'queue', 'multiplexing', 'stateful-stateless', 'sidecar', 'rest-graphql', 'protocols', 'compare'];

test('the index lists every pattern with a sentence, and unbuilt ones as not built yet', async ({ page }) => {
  await page.goto('/');
  const items = page.locator('[data-testid=pattern-list] li');
  await expect(items).toHaveCount(SLUGS.length);
  expect(await items.evaluateAll((els) => els.map((e) => e.dataset.slug))).toEqual(SLUGS);
  for (const li of await items.all()) {
    expect((await li.locator('p').innerText()).length).toBeGreaterThan(20);
  }
  await expect(page.locator('li[data-slug=request-response] .badge')).toHaveCount(0);
  // Every badge says the same thing; the routes below check each one means it.
  for (const badge of await page.locator('[data-testid=pattern-list] .badge').all()) {
    await expect(badge).toHaveText('not built yet');
  }
});

test('a deep link to a demo works after a reload, and an unbuilt demo offers nothing to run', async ({ page }) => {
  const response = await page.goto('/demo/request-response');
  expect(response.status()).toBe(200);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Request / response');
  await page.reload();
  await expect(page.getByTestId('run')).toBeVisible();
  await expect(page.getByTestId('sequence-diagram')).toBeVisible();

  // Each pattern's route matches its badge: a built demo has something to run, an unbuilt one
  // says so and offers nothing.
  await page.goto('/');
  await expect(page.locator('[data-testid=pattern-list] li')).toHaveCount(SLUGS.length);
  const unbuilt = await page.locator('[data-testid=pattern-list] li:has(.badge)').evaluateAll((els) =>
    els.map((e) => e.dataset.slug));
  for (const slug of SLUGS) {
    await page.goto(`/demo/${slug}`);
    if (unbuilt.includes(slug)) {
      await expect(page.getByTestId('not-built')).toBeVisible();
      await expect(page.getByTestId('run')).toHaveCount(0);
      await expect(page.getByTestId('sequence-diagram')).toHaveCount(0);
    } else {
      await expect(page.getByTestId('run')).toBeVisible();
      await expect(page.getByTestId('sequence-diagram').first()).toBeVisible();
    }
  }
});

test('following a link from the index opens the demo', async ({ page }) => {
  await page.goto('/');
  await page.locator('li[data-slug=request-response] a').click();
  await expect(page).toHaveURL(/\/demo\/request-response(\?|$)/);
  await expect(page.getByTestId('run')).toBeVisible();
});
