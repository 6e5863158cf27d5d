// Pub/sub across the two instances behind nginx (scripts/e2e-proxy.sh): a subscriber whose run
// the proxy put on one instance hears a message published by a page whose run is on the other,
// through the shared Redis; both runs complete, each with its whole server trace.
const { test, expect } = require('@playwright/test');
const { watchRuns } = require('../tests/run-check');

/** A new page in `context` running the pub/sub demo in `room` with one WebSocket subscriber:
 * the page, what it heard, its run's watcher, and the instance the proxy put the run on. */
async function subscribedPage(context, room) {
  const page = await context.newPage();
  const runs = watchRuns(page);
  const heard = [];
  page.on('websocket', (ws) => {
    if (ws.url().includes('/api/pubsub/ws')) ws.on('framereceived', (f) => heard.push(JSON.parse(f.payload.toString())));
  });
  await page.goto(`/demo/pubsub?room=${room}&subscribers=0`);
  await page.getByTestId('run').click();
  await page.getByTestId('add-subscriber').click();
  await expect(page.locator('[data-testid=subscriber][data-name=client-1]')).toContainText('subscribed to news');
  expect(runs.runs().length).toBe(1);
  const instance = await runs.instanceOf(runs.runs()[0]);
  expect(['a', 'b']).toContain(instance);
  return { page, heard, runs, instance };
}

test('a publish on one instance reaches a subscriber on the other', { tag: '@proxy' }, async ({ browser }) => {
  const room = `across-${Date.now()}`;
  const context = await browser.newContext();
  const a = await subscribedPage(context, room);
  // The proxy hashes each run's id: open pages until one lands on the other instance (each try
  // has an even chance; 16 misses in a row would mean the runs are not spread at all).
  let b;
  const tried = [];
  for (let i = 0; i < 16; i++) {
    const candidate = await subscribedPage(context, room);
    tried.push(candidate.instance);
    if (candidate.instance !== a.instance) {
      b = candidate;
      break;
    }
    await candidate.page.close();
  }
  expect(b, `a run on the instance other than ${a.instance} (runs landed on: ${tried.join(', ')})`).toBeTruthy();

  const published = b.page.waitForResponse((r) => new URL(r.url()).pathname === '/api/pubsub/publish');
  await b.page.getByTestId('publish').click();
  const answer = await published;
  expect(answer.status()).toBe(202);
  expect(answer.headers()['x-instance']).toBe(b.instance);
  expect((await answer.json()).instance).toBe(b.instance);
  await expect(b.page.getByTestId('status')).toContainText('Published news');

  // A's subscriber got it from A's instance, taken by B's.
  await expect(a.page.locator('[data-testid=subscriber][data-name=client-1]')).toHaveAttribute('data-received', '1');
  const delivery = a.heard.find((f) => f.type === 'message').delivery;
  expect([delivery.topic, delivery.published_by, delivery.delivered_by]).toEqual(['news', b.instance, a.instance]);
  await expect(a.page.locator('[data-testid=message][data-kind=deliver][data-to=client-1]')).toHaveCount(1);
  // B's own subscriber too, from B's instance.
  await expect(b.page.locator('[data-testid=subscriber][data-name=client-1]')).toHaveAttribute('data-received', '1');
  expect(b.heard.find((f) => f.type === 'message').delivery.delivered_by).toBe(b.instance);

  await a.runs.assertComplete();
  await b.runs.assertComplete();
  await context.close();
});
