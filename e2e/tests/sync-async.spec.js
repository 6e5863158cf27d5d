// Sync vs async against the real server: what the browser sent when, what the server's
// Server-Timing says about queueing, and the diagram drawing exactly those calls.
const { test, expect } = require('@playwright/test');
const { drawnMessages, waitForRunToFinish } = require('./helpers');

async function run(page, { handler, client, calls = 4, ms = 400 }) {
  await page.goto('/demo/sync-async');
  await page.getByTestId('param-requests').fill(String(calls));
  await page.getByTestId('param-work-ms').fill(String(ms));
  await page.getByTestId('param-handler').selectOption(handler);
  await page.getByTestId('param-client').selectOption(client);
  const events = [];
  page.on('request', (r) => r.url().includes('/api/work/') && events.push({ type: 'sent', r }));
  page.on('requestfinished', (r) => r.url().includes('/api/work/') && events.push({ type: 'done', r }));
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');
  const queued = [];
  for (const e of events.filter((e) => e.type === 'done')) {
    const timing = (await e.r.response()).headers()['server-timing'];
    queued.push(Number(/queued;dur=([\d.]+)/.exec(timing)[1]));
  }
  return { events, queued: queued.sort((a, b) => a - b) };
}

test('blocking handler, asynchronous client: all sent at once, served in waves of two', async ({ page }) => {
  // One second of work each: the two that wait for a thread wait about that long, however
  // spread out the four arrive (with 400 ms of work, 100 ms of spread broke 100/300 ms cuts).
  const ms = 1000;
  const { events, queued } = await run(page, { handler: 'blocking', client: 'concurrent', ms });
  // Every call left before any answer came back.
  expect(events.slice(0, 4).map((e) => e.type)).toEqual(['sent', 'sent', 'sent', 'sent']);
  expect(queued[0]).toBeLessThan(ms / 4);
  expect(queued[1]).toBeLessThan(ms / 4);
  expect(queued[2]).toBeGreaterThan(ms / 2);
  expect(queued[3]).toBeGreaterThan(ms / 2);

  const drawn = await drawnMessages(page);
  const sent = events.filter((e) => e.type === 'sent').map((e) => { const u = new URL(e.r.url()); return `GET ${u.pathname}${u.search}`; });
  expect(drawn.filter((m) => m.kind === 'request' && m.from === 'browser').map((m) => m.label).sort()).toEqual(sent.sort());
  expect(drawn.filter((m) => m.kind === 'response' && m.to === 'browser').length).toBe(4);
  // The pool is a lifeline: each call was handed to one of its threads.
  expect(drawn.filter((m) => m.from === 'server' && m.to === 'pool').length).toBe(4);
  // The asynchronous client kept working while it waited.
  expect(drawn.filter((m) => m.kind === 'work' && m.from === 'browser').length).toBeGreaterThanOrEqual(3);
  await expect(page.locator('[data-testid=activation].busy rect.phase-queued')).toHaveCount(4);
  await page.screenshot({ path: 'output/sync-async.png', fullPage: true });
});

test('async handler: the same calls overlap instead of queueing', async ({ page }) => {
  const { queued } = await run(page, { handler: 'async', client: 'concurrent' });
  expect(queued.every((q) => q < 20)).toBe(true);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.to === 'pool').length).toBe(0);
});

test('synchronous client: each call waits for the answer to the one before', async ({ page }) => {
  const { events } = await run(page, { handler: 'async', client: 'sequential', calls: 3, ms: 100 });
  expect(events.map((e) => e.type)).toEqual(['sent', 'done', 'sent', 'done', 'sent', 'done']);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'work').length).toBe(0);
});

test('more calls than the demo makes: the field and the link say how many ran', async ({ page }) => {
  await page.goto('/demo/sync-async?calls=20&work_ms=50&handler=async');
  const sent = [];
  page.on('request', (r) => r.url().includes('/api/work/') && sent.push(r.url()));
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');
  expect(sent).toHaveLength(12);
  await expect(page.getByTestId('param-requests')).toHaveValue('12');
  expect(new URL(page.url()).searchParams.get('calls')).toBe('12');
});
