// The page is cut into a main module and one WebAssembly chunk per page (scripts/split-wasm.sh,
// frontend/src/demos/chunks.rs): a first visit fetches the main module, its own page's chunk and
// the trace view's, never another demo's; the server names the page's chunk in a `Link` preload
// header; moving to another demo fetches that demo's chunk then, and it runs.
const { test, expect } = require('@playwright/test');
const { waitForRunToFinish } = require('./helpers');

/** Every .wasm file the page fetches, by name without its hash. */
function recordWasm(page) {
  const names = [];
  page.on('request', (r) => {
    const file = new URL(r.url()).pathname.slice(1);
    if (file.endsWith('.wasm')) names.push(file.replace(/_\d+-[0-9a-f]{16}\.wasm$/, '').replace(/-[0-9a-f]{16}_bg\.wasm$/, '_bg'));
  });
  return names;
}

test('a first visit fetches its own demo\'s chunk and no other; the next demo\'s comes when opened', async ({ page }) => {
  const wasm = recordWasm(page);
  const response = await page.goto('/demo/sse?steps=2&step_ms=50');
  await expect(page.getByTestId('run')).toBeEnabled();
  await expect(page.getByTestId('sequence-diagram')).toBeVisible();
  expect(wasm.sort()).toEqual(['frontend_bg', 'split_sse_page', 'split_trace_view']);
  // The page named its chunk for preloading, and only its own.
  const link = (await response.allHeaders()).link || '';
  expect(link).toMatch(/^<\/split_sse_page_\d+-[0-9a-f]{16}\.wasm>; rel=preload; as=fetch; crossorigin$/);

  // Through the index to another demo, in the same page: its chunk now, and it runs.
  await page.getByRole('link', { name: '← All patterns' }).click();
  await page.locator('[data-slug=request-response] a').click();
  await expect(page.getByTestId('run')).toBeEnabled();
  expect(wasm.filter((w) => w === 'split_request_response_page')).toHaveLength(1);
  expect(wasm.filter((w) => w === 'split_trace_view' || w === 'frontend_bg')).toHaveLength(2);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.locator('[data-testid=message][data-kind=request]')).not.toHaveCount(0);
});

test('a page is drawn as soon as its chunk is in, not after the requests it makes on loading', async ({ page }) => {
  // The queue page asks which engines the server offers; its answer held back 3 s must not hold
  // the page (or its Run button) in the route's loading placeholder.
  let answered = false;
  await page.route('**/api/queue/info', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    answered = true;
    await route.continue();
  });
  await page.goto('/demo/queue');
  await expect(page.getByTestId('run')).toBeEnabled({ timeout: 2000 });
  expect(answered).toBe(false);
  await expect(page.getByTestId('page-loading')).toHaveCount(0);
});
