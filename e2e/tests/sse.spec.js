// Server-Sent Events against the real server: one event-stream request carries every update;
// a server-side drop is followed by the browser's reconnect with Last-Event-ID and no loss.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, waitForRunToFinish } = require('./helpers');

async function serverTrace(page, sent) {
  const run = new URL('http://x' + sent[0].pathAndQuery).searchParams.get('run');
  const response = await page.request.get(`/api/trace/${run}`);
  expect(response.status()).toBe(200);
  return response.json();
}

test('one event stream carries every update, and the diagram draws exactly the events sent', { tag: '@proxy' }, async ({ page }) => {
  await page.goto('/demo/sse');
  await page.getByTestId('param-steps').fill('4');
  await page.getByTestId('param-step-ms').fill('200');
  const sent = recordRequests(page, '/api/jobs');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');

  const streams = sent.filter((s) => s.pathAndQuery.includes('/events'));
  expect(streams.length).toBe(1);
  expect(streams[0].req.headers()['accept']).toBe('text/event-stream');
  const response = await streams[0].req.response();
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type']).toBe('text/event-stream');

  const drawn = await drawnMessages(page);
  const events = drawn.filter((m) => m.kind === 'event' && m.to === 'browser');
  expect(events.map((m) => m.label)).toEqual(['event: progress id: 1', 'event: progress id: 2', 'event: progress id: 3', 'event: done id: 4']);
  for (const e of events) expect([e.transport, e.inFlight]).toEqual(['sse', false]);

  // The server's own record of what it sent matches what was drawn.
  const trace = await serverTrace(page, sent);
  expect(trace.filter((m) => m.kind === 'event' && m.to === 'browser').map((m) => m.label)).toEqual(events.map((e) => e.label));
  await page.screenshot({ path: 'output/sse.png', fullPage: true });
});

test('dropping the connection mid-job: the browser reconnects with Last-Event-ID and nothing is lost or repeated', { tag: '@proxy' }, async ({ page }) => {
  await page.goto('/demo/sse');
  await page.getByTestId('param-steps').fill('8');
  await page.getByTestId('param-step-ms').fill('300');
  const sent = recordRequests(page, '/api/jobs');
  await page.getByTestId('run').click();
  const delivered = page.locator('[data-testid=message][data-kind=event][data-to=browser]');
  await expect.poll(() => delivered.count()).toBeGreaterThanOrEqual(2);
  await page.getByTestId('drop-connection').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');

  const streams = sent.filter((s) => s.pathAndQuery.includes('/events'));
  expect(streams.length).toBe(2);
  const lastId = Number((await streams[1].req.allHeaders())['last-event-id']);
  expect(lastId).toBeGreaterThanOrEqual(2);
  const drawn = await drawnMessages(page);
  const ids = drawn.filter((m) => m.kind === 'event' && m.to === 'browser').map((m) => Number(m.label.split('id: ')[1]));
  expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  // The reconnect is drawn: a note that the stream was lost, then a second request.
  expect(drawn.filter((m) => m.kind === 'note').map((m) => m.label)).toContainEqual(`stream lost after id ${lastId}: reconnecting`);
  expect(drawn.filter((m) => m.kind === 'request' && m.label.includes('/events')).length).toBe(2);
  await page.screenshot({ path: 'output/sse-reconnect.png', fullPage: true });
});
