// REST vs GraphQL against the real server: the REST calls the page really made and the one
// GraphQL POST, the resolvers' loads drawn on the db lifeline (per item, or batched), the cost
// table measured from that traffic, and the same screen filled both ways.
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

async function run(page, query) {
  await page.goto(`/demo/rest-graphql?${query}`);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');
}

async function serverTrace(page, sent) {
  const runId = new URL(sent[0].req.url()).searchParams.get('run');
  const response = await page.request.get(`/api/trace/${runId}`);
  expect(response.status()).toBe(200);
  return response.json();
}

test('one GraphQL query fills the screen that takes REST a dozen calls in three round trips', async ({ page }) => {
  const rest = recordRequests(page, '/api/rest/');
  const graphql = recordRequests(page, '/api/graphql');
  await run(page, 'lanes=both&user=7&posts=5&batch=false');

  // What the browser sent: REST GETs, every one answered 200, and one GraphQL POST.
  expect(rest.length).toBeGreaterThan(10);
  for (const s of rest) {
    expect(s.method).toBe('GET');
    expect((await s.req.response()).status()).toBe(200);
  }
  expect(graphql.length).toBe(1);
  expect(graphql[0].method).toBe('POST');
  const body = graphql[0].req.postDataJSON();
  expect(body.query).toContain('commenters { name }');
  expect(body.variables).toEqual({ user: 7, posts: 5 });
  expect((await graphql[0].req.response()).status()).toBe(200);

  // The diagram: one arrow per request the browser made, and the server's loads on `db`.
  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors).toEqual(['browser', 'server', 'db']);
  const drawn = await drawnMessages(page);
  const drawnRequests = drawn.filter((m) => m.kind === 'request' && m.from === 'browser');
  expect(drawnRequests.filter((m) => m.label.includes('/api/rest/')).length).toBe(rest.length);
  expect(drawnRequests.filter((m) => m.label.includes('/api/graphql')).length).toBe(1);
  const loads = drawn.filter((m) => m.kind === 'request' && m.to === 'db');
  const answers = drawn.filter((m) => m.kind === 'response' && m.from === 'db');
  expect(answers.length).toBe(loads.length);
  const trace = await serverTrace(page, rest);
  expect(trace.filter((m) => m.kind === 'request' && m.to === 'db').length).toBe(loads.length);

  // The cost table, against that traffic.
  expect(await metric(page, 'rest-requests')).toBe(rest.length);
  expect(await metric(page, 'graphql-requests')).toBe(1);
  expect(await metric(page, 'rest-round-trips')).toBe(3);
  expect(await metric(page, 'graphql-round-trips')).toBe(1);
  expect(await metric(page, 'rest-loads')).toBe(rest.length);
  expect(await metric(page, 'rest-loads') + await metric(page, 'graphql-loads')).toBe(loads.length);
  const shown = await metric(page, 'rest-fields-shown');
  expect(await metric(page, 'graphql-fields-shown')).toBe(shown);
  expect(await metric(page, 'graphql-fields-fetched')).toBe(shown);
  expect(await metric(page, 'rest-fields-fetched')).toBeGreaterThan(3 * shown);
  expect(await metric(page, 'rest-bytes-down')).toBeGreaterThan(await metric(page, 'graphql-bytes-down'));
  // Unbatched, the resolvers loaded per post and per commenter: more loads than REST made calls.
  expect(await metric(page, 'graphql-loads')).toBeGreaterThan(rest.length);

  // Both lanes filled the same screen.
  const screens = page.getByTestId('screen');
  await expect(screens).toHaveCount(2);
  const restPosts = await screens.nth(0).getByTestId('screen-post').allInnerTexts();
  expect(restPosts.length).toBe(5);
  expect(await screens.nth(1).getByTestId('screen-post').allInnerTexts()).toEqual(restPosts);

  // A REST answer carries fields the screen never shows.
  await page.locator('[data-testid=message][data-kind=response][data-from=server][data-to=browser]').first().click();
  await expect(page.getByTestId('inspector')).toContainText(/"(email|likes)"/);
  await page.screenshot({ path: 'output/rest-graphql.png', fullPage: true });
});

test('batched resolvers load each level once', { tag: '@proxy' }, async ({ page }) => {
  const graphql = recordRequests(page, '/api/graphql');
  await run(page, 'lanes=graphql&user=3&posts=5&batch=true');
  expect(graphql.length).toBe(1);
  expect(new URL(graphql[0].req.url()).searchParams.get('batch')).toBe('true');
  const drawn = await drawnMessages(page);
  const loads = drawn.filter((m) => m.kind === 'request' && m.to === 'db').map((m) => m.label);
  expect(loads.length).toBe(4);
  expect(loads[0]).toBe('load user 3');
  expect(loads[1]).toBe('load the newest 5 posts of user 3');
  expect(loads[2]).toMatch(/^load comments of posts \d+, \d+, \d+, \d+, \d+$/);
  expect(loads[3]).toMatch(/^load users \d+/);
  expect(await metric(page, 'graphql-loads')).toBe(4);
  const trace = await serverTrace(page, graphql);
  expect(trace.filter((m) => m.kind === 'request' && m.to === 'db').map((m) => m.label)).toEqual(loads);
});

test('over a 3G link (300 ms round trip) REST pays once per round trip in a row, GraphQL once', async ({ page }) => {
  const rest = recordRequests(page, '/api/rest/');
  await run(page, 'lanes=both&user=12&posts=3&link=3g&batch=true');
  for (const s of rest) expect(new URL(s.req.url()).searchParams.get('link')).toBe('3g');
  const restMs = await metric(page, 'rest-screen-ms');
  const graphqlMs = await metric(page, 'graphql-screen-ms');
  expect(await metric(page, 'rest-round-trips')).toBe(3);
  expect(restMs).toBeGreaterThanOrEqual(900);
  expect(graphqlMs).toBeGreaterThanOrEqual(300);
  expect(graphqlMs).toBeLessThan(restMs - 300);
});

test('a user that does not exist is a 404 the page reports', async ({ page }) => {
  await page.goto('/demo/rest-graphql?lanes=rest&user=99&posts=5');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('status')).toContainText('REST failed: 404 no user 99');
  const drawn = await drawnMessages(page);
  expect(drawn.some((m) => m.kind === 'response' && m.label.startsWith('404'))).toBe(true);
});

test('an exported run imports back with the same diagram and the same cost table, offline', async ({ page }) => {
  await run(page, 'lanes=both&user=5&posts=3&batch=true');
  const before = await drawnMessages(page);
  const costs = await page.getByTestId('lane-costs').innerText();
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  expect(json.suggestedFilename()).toBe('patternscope-rest-graphql.json');

  await page.reload();
  await expect(page.locator('[data-testid=message]')).toHaveCount(0);
  const sent = [];
  page.on('request', (r) => r.url().includes('/api/') && !r.url().includes('/api/trace/ws') && sent.push(r.url()));
  await page.getByTestId('import-json').setInputFiles(await json.path());
  await expect(page.locator('[data-testid=message]')).toHaveCount(before.length);
  expect(await drawnMessages(page)).toEqual(before);
  // The table is measured from the trace, so the imported run shows the same figures.
  await expect.poll(() => page.getByTestId('lane-costs').innerText()).toBe(costs);
  expect(sent).toEqual([]);
});
