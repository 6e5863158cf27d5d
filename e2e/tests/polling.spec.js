// Short and long polling against the real server: the requests the browser really made, and
// the diagram drawing exactly those.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

async function runJob(page, slug, params) {
  await page.goto(`/demo/${slug}`);
  for (const [id, value] of Object.entries(params)) await page.getByTestId(id).fill(String(value));
  const sent = recordRequests(page, '/api/jobs');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');
  await expect(page.getByTestId('job-progress')).toHaveAttribute('value', String(params['param-steps']));
  return sent;
}

function pathsOf(sent, pattern) {
  return sent.filter((s) => pattern.test(s.pathAndQuery.split('?')[0]));
}

test('short polling asks again and again; the diagram draws every poll and counts the empty ones', async ({ page }) => {
  const sent = await runJob(page, 'short-polling', { 'param-steps': 3, 'param-step-ms': 300, 'param-interval': 100 });
  expect(sent[0].method).toBe('POST');
  expect((await sent[0].req.response()).status()).toBe(202);
  const polls = pathsOf(sent, /^\/api\/jobs\/[^/]+$/);
  expect(polls.length).toBeGreaterThanOrEqual(6); // ~900 ms of work at one poll per 100 ms
  const drawn = await drawnMessages(page);
  const drawnRequests = drawn.filter((m) => m.kind === 'request' && m.from === 'browser');
  expect(drawnRequests.map((m) => m.label)).toEqual(sent.map((s) => `${s.method} ${s.pathAndQuery}`));
  expect(drawn.filter((m) => m.kind === 'response' && m.to === 'browser').length).toBe(sent.length);
  // The worker is a lifeline of its own: the server hands it the job, it reports each step.
  expect(drawn.filter((m) => m.from === 'server' && m.to === 'worker').length).toBe(1);
  expect(drawn.filter((m) => m.from === 'worker' && m.kind === 'event').map((m) => m.label)).toEqual(['progress 1/3', 'progress 2/3']);
  expect(await metric(page, 'polls')).toBe(polls.length);
  const empty = await metric(page, 'empty-polls');
  expect(empty).toBeGreaterThanOrEqual(polls.length - 3 - 1);
  expect(await metric(page, 'requests')).toBe(sent.length);
});

test('long polling makes fewer, held requests, each answered when the job changes', { tag: '@proxy' }, async ({ page }) => {
  const step = 400;
  const sent = await runJob(page, 'long-polling', { 'param-steps': 3, 'param-step-ms': step, 'param-timeout': 5000 });
  const waits = pathsOf(sent, /^\/api\/jobs\/[^/]+\/wait$/);
  expect(waits.length).toBe(3); // one per change: no empty answers
  // Held by the server until the next step landed. A causal bound on the browser's own clock:
  // the job cannot start before the browser sent the POST, and step i + 1 lands (i + 1) steps
  // after that, so the answer to wait i cannot come earlier, however late the wait was sent.
  // (Its own wait, a cut on each wait's time, shrank when a loaded machine sent it late.)
  const post = sent[0];
  expect(post.method).toBe('POST');
  await (await post.req.response()).finished();
  const posted = post.req.timing().startTime;
  for (const [i, w] of waits.entries()) {
    const response = await w.req.response();
    expect(response.status()).toBe(200);
    await response.finished();
    const answered = w.req.timing().startTime + w.req.timing().responseStart;
    // (5 ms for the rounding of the browser's timestamps.)
    expect(answered - posted, `wait ${i}`).toBeGreaterThanOrEqual((i + 1) * step - 5);
  }
  expect(waits.map((w) => new URL('http://x' + w.pathAndQuery).searchParams.get('after'))).toEqual(['0', '1', '2']);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'request' && m.from === 'browser').map((m) => m.label))
    .toEqual(sent.map((s) => `${s.method} ${s.pathAndQuery}`));
  expect(await metric(page, 'polls')).toBe(3);
  expect(await metric(page, 'empty-polls')).toBe(0);
  // The held time is drawn as a tall activation on the server.
  const heights = await page.locator('[data-testid=activation].busy rect:first-child').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('height'))));
  expect(Math.max(...heights)).toBeGreaterThan(60);
});

test('a long poll that times out is answered unchanged, and the client asks again', async ({ page }) => {
  // One 2.5 s step against 500 ms waits: the first two waits time out (the third is sent long
  // before the step lands, even on a loaded machine; 1.2 s left it 200 ms of slack).
  const sent = await runJob(page, 'long-polling', { 'param-steps': 1, 'param-step-ms': 2500, 'param-timeout': 500 });
  const waits = pathsOf(sent, /\/wait$/);
  expect(waits.length).toBeGreaterThanOrEqual(3);
  const first = await (await waits[0].req.response()).json();
  expect(first.changed).toBe(false);
  expect(await metric(page, 'empty-polls')).toBe(waits.length - 1);
});

test('out-of-range job parameters are refused by name and shown', async ({ page }) => {
  await page.goto('/demo/short-polling');
  await page.getByTestId('param-steps').fill('500');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('422 steps must be between 1 and 50');
  await expect(page.locator('[data-testid=message][data-kind=response]')).toHaveAttribute('data-label', /^422 /);
});
