// Stateful vs stateless against the real server: the in-memory session really fails on the
// other instance (401, with the reason drawn), the signed token really survives a restart.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

test('in-memory sessions: the other instance refuses with a 401 and says why', async ({ page }) => {
  const sent = recordRequests(page, '/api/lb/');
  await page.goto('/demo/stateful-stateless?mode=memory&sticky=off&requests=4&gap_ms=50&restart_after=0');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('2 request(s) accepted, 2 refused with 401');

  // What the browser really sent, and what came back.
  const profiles = sent.filter((s) => s.pathAndQuery.startsWith('/api/lb/profile'));
  expect(profiles.length).toBe(4);
  const statuses = [];
  for (const s of profiles) statuses.push((await s.req.response()).status());
  expect(statuses).toEqual([401, 200, 401, 200]);

  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors).toEqual(['browser', 'server', 'lb', 'instance-a', 'instance-b']);
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'request' && m.from === 'browser' && m.label.startsWith('GET /api/lb/profile')).length).toBe(4);
  expect(drawn.filter((m) => m.from === 'lb' && m.to === 'instance-b' && m.transport === 'http/1.1').length).toBe(2);
  expect(drawn.filter((m) => m.kind === 'response' && m.from === 'instance-b' && m.label.startsWith('401')).length).toBe(2);
  const notes = drawn.filter((m) => m.kind === 'note' && m.from === 'instance-b');
  expect(notes.length).toBe(2);
  expect(notes[0].label).toMatch(/^401: no session s-[0-9a-f]+ in instance-b's memory/);
  expect(await metric(page, 'refused-401')).toBe(2);
  expect(await metric(page, 'served-a')).toBe(3);

  // The refusal's body is in the inspector.
  await page.locator('[data-testid=message][data-kind=response][data-from=instance-b]').first().click();
  await expect(page.getByTestId('inspector')).toContainText('a session lives only in the instance that created it');
  await page.screenshot({ path: 'output/stateful-stateless.png', fullPage: true });
});

test('a signed token is accepted by both instances, even after instance A restarts', { tag: '@proxy' }, async ({ page }) => {
  await page.goto('/demo/stateful-stateless?mode=token&sticky=off&requests=4&gap_ms=50&restart_after=2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('4 request(s) accepted, 0 refused');
  const drawn = await drawnMessages(page);
  expect(drawn.filter((m) => m.kind === 'close' && m.to === 'instance-a' && m.label.startsWith('restart instance-a')).length).toBe(1);
  expect(drawn.filter((m) => m.kind === 'connect' && m.to === 'instance-a' && /starts again on :\d+/.test(m.label)).length).toBe(1);
  expect(await metric(page, 'served-a')).toBe(3);
  expect(await metric(page, 'served-b')).toBe(2);
  expect(await metric(page, 'refused-401')).toBe(0);
  // The run's cluster was stopped when it ended.
  expect(drawn.filter((m) => m.kind === 'close' && m.label === 'stop lb').length).toBe(1);
});
