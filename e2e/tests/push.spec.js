// Push over WebSocket against the real server: the upgrade, the job's progress pushed as frames,
// a chat room of simulated clients each on its own socket, and the diagram drawing exactly that.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, waitForRunToFinish } = require('./helpers');

test('one socket carries every update; each chat client has its own socket and lifeline', { tag: '@proxy' }, async ({ page }) => {
  const sockets = [];
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/api/push/ws')) return;
    const entry = { url: ws.url(), sent: [], received: [] };
    ws.on('framesent', (f) => entry.sent.push(JSON.parse(f.payload.toString())));
    ws.on('framereceived', (f) => entry.received.push(JSON.parse(f.payload.toString())));
    sockets.push(entry);
  });
  await page.goto('/demo/push');
  await page.getByTestId('param-steps').fill('3');
  // The socket follows the job once open: it gets version 0 only if it opens within the first
  // step. Behind nginx (e2e-proxy) a WebSocket needs a TLS connection of its own (nginx does not
  // take WebSockets over HTTP/2), which took over 200 ms once; with a core kept busy beside the
  // tests, submitting and opening took over a second once.
  await page.getByTestId('param-step-ms').fill('1500');
  await page.getByTestId('param-clients').fill('2');
  const room = `room-${Date.now()}`;
  await page.getByTestId('param-room').fill(room);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');

  // Three real sockets: the page's own, and one per chat client. (In name order: the chat
  // clients' sockets open at once, and behind nginx Playwright has reported them either way.)
  const as = (s) => new URL(s.url).searchParams.get('as');
  sockets.sort((x, y) => as(x).localeCompare(as(y)));
  expect(sockets.map(as)).toEqual(['browser', 'client-1', 'client-2']);
  const [own, c1, c2] = sockets;
  expect(own.sent).toEqual([{ type: 'follow', job: expect.any(String) }]);
  expect(own.received.map((f) => f.update.version)).toEqual([0, 1, 2, 3]);
  expect(c1.sent.map((f) => f.type)).toEqual(['join', 'say']);
  for (const c of [c1, c2]) {
    const chat = c.received.filter((f) => f.type === 'chat').map((f) => f.text).sort();
    expect(chat).toEqual(['hello from client-1', 'hello from client-2']);
  }

  // The diagram: every frame each socket really carried, on the right lifelines.
  const drawn = await drawnMessages(page);
  const lifelines = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(lifelines).toEqual(['browser', 'client-1', 'client-2', 'server', 'worker']);
  const upgrades = drawn.filter((m) => m.kind === 'response' && m.label.startsWith('101 Switching Protocols'));
  // The two chat clients' upgrades come back at the same moment: drawn in either order.
  expect(upgrades.map((m) => m.to).sort()).toEqual(['browser', 'client-1', 'client-2']);
  // Pings and pongs (every 3 s) are drawn too, but Playwright reports data frames only.
  const data = drawn.filter((m) => m.kind === 'push' && m.label !== 'ping' && m.label !== 'pong');
  const pushedTo = (who) => data.filter((m) => m.from === 'server' && m.to === who);
  expect(pushedTo('browser').map((m) => m.label)).toEqual(own.received.map((f) => `progress ${f.update.version}/3`));
  expect(pushedTo('client-1').length).toBe(c1.received.length);
  expect(pushedTo('client-2').length).toBe(c2.received.length);
  for (const m of drawn.filter((m) => m.kind === 'push')) {
    expect(m.transport).toBe('websocket');
    expect(m.inFlight).toBe(false);
  }
  expect(data.filter((m) => m.to === 'server').length).toBe(own.sent.length + c1.sent.length + c2.sent.length);
  await expect(page.getByTestId('chat-log')).toContainText('client-2 ← client-1: hello from client-1');
  await page.screenshot({ path: 'output/push.png', fullPage: true });
});

test('another tab joining the same room hears the chat', async ({ page, context }) => {
  const room = `shared-${Date.now()}`;
  const other = await context.newPage();
  await other.goto('/demo/push');
  await other.getByTestId('param-room').fill(room);
  await other.getByTestId('param-clients').fill('1');
  // A long run (50 × 400 ms = 20 s): everything the second tab does must happen while this one
  // is still going, and the stop at the end says it was (a 6 s run could end first on a loaded
  // machine). Stopped explicitly, it costs only the time the test needs.
  await other.getByTestId('param-steps').fill('50');
  await other.getByTestId('param-step-ms').fill('400');
  await other.getByTestId('run').click();
  await expect(other.getByTestId('chat-log')).toContainText('client-1 ← client-1: hello from client-1');

  await page.goto('/demo/push');
  await page.getByTestId('param-room').fill(room);
  await page.getByTestId('param-clients').fill('1');
  await page.getByTestId('param-steps').fill('2');
  await page.getByTestId('param-step-ms').fill('100');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  // The first tab's client heard the second tab's client join and speak.
  await expect(other.getByTestId('chat-log')).toContainText('client-1 joined');
  await expect(other.getByTestId('chat-log')).toContainText('hello from client-1');
  const lines = await other.getByTestId('chat-log').locator('li').allInnerTexts();
  expect(lines.filter((l) => l.includes('hello from client-1')).length).toBeGreaterThanOrEqual(2);
  // The first tab's run is still going (its client was there to hear all that): stop it.
  await expect(other.getByTestId('stop')).toBeEnabled({ timeout: 1000 });
  await other.getByTestId('stop').click();
});

test('over the TLS listener (HTTP/2) the push socket still opens and carries every update', async ({ browser }) => {
  test.skip(!process.env.TLS_URL, 'no TLS listener (scripts/e2e.sh starts one)');
  const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: process.env.TLS_URL });
  const page = await context.newPage();
  const received = [];
  page.on('websocket', (ws) => {
    if (ws.url().includes('/api/push/ws')) ws.on('framereceived', (f) => received.push(JSON.parse(f.payload.toString())));
  });
  await page.goto('/demo/push?steps=2&step_ms=150&clients=0');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('Done');
  // Every step arrived over the socket (the snapshot sent on follow may race Playwright's listener).
  const versions = received.filter((f) => f.type === 'progress').map((f) => f.update.version);
  expect(versions.filter((v) => v > 0)).toEqual([1, 2]);
  // The server's half of the trace arrived too: it saw the upgrade.
  await expect(page.locator('[data-testid=message][data-kind=connect], [data-testid=message][data-label*="101"]').first()).toBeVisible();
  await context.close();
});

test('a room name the server refuses ends the run with its reason instead of waiting forever', async ({ page }) => {
  const frames = [];
  page.on('websocket', (ws) => {
    const as = new URL(ws.url()).searchParams.get('as') || '';
    if (as.startsWith('client-')) ws.on('framereceived', (f) => frames.push({ as, frame: JSON.parse(f.payload.toString()) }));
  });
  await page.goto('/demo/push');
  await page.getByTestId('param-room').fill('room <b>');
  await page.getByTestId('run').click();
  await expect(page.getByTestId('status')).toContainText('The server refused client-');
  await expect(page.getByTestId('status')).toContainText('1 to 40 letters, digits, spaces, - or _');
  await expect(page.getByTestId('run')).toBeEnabled();
  // The reason shown is the one the server sent on that client's socket (the first refused
  // ends the run and closes the others, which may or may not have heard theirs by then).
  const refused = frames.filter((f) => f.frame.type === 'error');
  expect(refused.length).toBeGreaterThanOrEqual(1);
  const shown = (await page.getByTestId('status').textContent()).match(/refused (client-\d+)/)[1];
  expect(refused.map((f) => f.as)).toContain(shown);
  for (const f of refused) expect(f.frame.error).toBe('room and name: 1 to 40 letters, digits, spaces, - or _');
});

test('with no room named, each run chats in its own room: another tab at the same time hears nothing', async ({ page, context }) => {
  // Every chat client's join frame, by page.
  const joins = { first: [], second: [] };
  const watch = (p, into) => p.on('websocket', (ws) => {
    if (!ws.url().includes('/api/push/ws')) return;
    const run = new URL(ws.url()).searchParams.get('run');
    ws.on('framesent', (f) => {
      const frame = JSON.parse(f.payload.toString());
      if (frame.type === 'join') into.push({ run, room: frame.room });
    });
  });
  const other = await context.newPage();
  watch(other, joins.first);
  watch(page, joins.second);
  await other.goto('/demo/push');
  await other.getByTestId('param-clients').fill('1');
  // Long enough that the second tab's whole run happens while this one is still going.
  await other.getByTestId('param-steps').fill('50');
  await other.getByTestId('param-step-ms').fill('400');
  await other.getByTestId('run').click();
  await expect(other.getByTestId('chat-log')).toContainText('client-1 ← client-1: hello from client-1');

  await page.goto('/demo/push');
  await page.getByTestId('param-clients').fill('1');
  await page.getByTestId('param-steps').fill('2');
  await page.getByTestId('param-step-ms').fill('100');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('chat-log')).toContainText('client-1 ← client-1: hello from client-1');

  // Both joined with no room name, on sockets of two different runs.
  expect(joins.first).toEqual([{ run: expect.any(String), room: '' }]);
  expect(joins.second).toEqual([{ run: expect.any(String), room: '' }]);
  expect(joins.first[0].run).not.toBe(joins.second[0].run);
  // The first tab, still running, heard only its own client: no second join, no second hello.
  await expect(other.getByTestId('stop')).toBeEnabled({ timeout: 1000 });
  const lines = await other.getByTestId('chat-log').locator('li').allInnerTexts();
  expect(lines.filter((l) => l.includes('joined')).length).toBe(1);
  expect(lines.filter((l) => l.includes('hello from client-1')).length).toBe(1);
  await other.getByTestId('stop').click();
});
