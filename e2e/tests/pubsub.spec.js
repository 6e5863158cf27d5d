// Publish/subscribe against the real server: three subscribers on their own connections (two
// WebSockets, one event stream), one publish, and the diagram drawing publisher → broker →
// three deliveries that the connections really carried.
const { test, expect } = require('@playwright/test');
const { drawnMessages } = require('./helpers');

/** Every arrow label's text and box; those written (not empty); and the pairs of written labels
 * that cover each other (a pixel of touching is not covering). */
async function labelBoxes(page) {
  const all = await page.locator('[data-testid=message] text.label').evaluateAll((els) =>
    els.map((e) => { const r = e.getBoundingClientRect(); return { text: e.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom }; }));
  const boxes = all.filter((b) => b.text !== '');
  const covered = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) covered.push([a.text, b.text]);
    }
  }
  return { all, boxes, covered };
}

test('one publish is delivered by the broker to three subscribers, each on its own connection', async ({ page }) => {
  const sockets = [];
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/api/pubsub/ws')) return;
    const entry = { as: new URL(ws.url()).searchParams.get('as'), received: [] };
    ws.on('framereceived', (f) => entry.received.push(JSON.parse(f.payload.toString())));
    sockets.push(entry);
  });
  const streams = [];
  page.on('response', (r) => {
    if (r.url().includes('/api/pubsub/events')) streams.push(r);
  });
  await page.goto('/demo/pubsub');
  await page.getByTestId('param-subscribers').fill('0');
  await page.getByTestId('run').click();
  for (const transport of ['websocket', 'sse', 'websocket']) {
    await page.getByTestId('subscriber-transport').selectOption(transport);
    await page.getByTestId('add-subscriber').click();
  }
  const subs = page.getByTestId('subscriber');
  await expect(subs).toHaveCount(3);
  await expect(page.locator('[data-testid=subscriber][data-name=client-1]')).toContainText('subscribed to news');
  await expect(page.locator('[data-testid=subscriber][data-name=client-3]')).toContainText('subscribed to news');
  await expect(page.locator('[data-testid=subscriber][data-name=client-2]')).toContainText('listening to news');
  await page.getByTestId('publish').click();
  await expect(page.getByTestId('status')).toContainText('Published news #1');
  for (const name of ['client-1', 'client-2', 'client-3']) {
    await expect(page.locator(`[data-testid=subscriber][data-name=${name}]`)).toHaveAttribute('data-received', '1');
  }

  // What the connections really carried.
  expect(sockets.map((s) => s.as)).toEqual(['client-1', 'client-3']);
  for (const s of sockets) {
    const messages = s.received.filter((f) => f.type === 'message');
    expect(messages.map((f) => [f.delivery.topic, f.delivery.seq, f.delivery.text.startsWith('message 1')])).toEqual([['news', 1, true]]);
  }
  expect(streams.length).toBe(1);
  expect(streams[0].headers()['content-type']).toBe('text/event-stream');
  expect(new URL(streams[0].url()).searchParams.get('as')).toBe('client-2');

  // The diagram: publisher → server → broker, then broker → each subscriber.
  await expect(page.locator('[data-testid=message][data-kind=deliver]')).toHaveCount(3);
  const drawn = await drawnMessages(page);
  const publishes = drawn.filter((m) => m.kind === 'publish');
  expect(publishes.map((m) => [m.from, m.to, m.label])).toEqual([['server', 'broker', 'publish news #1']]);
  expect(drawn.some((m) => m.kind === 'request' && m.from === 'browser' && m.label.startsWith('POST /api/pubsub/publish'))).toBe(true);
  const delivers = drawn.filter((m) => m.kind === 'deliver');
  expect(delivers.map((m) => [m.from, m.to, m.transport]).sort()).toEqual([
    ['broker', 'client-1', 'websocket'],
    ['broker', 'client-2', 'sse'],
    ['broker', 'client-3', 'websocket'],
  ]);
  for (const d of delivers) expect(d.label).toMatch(/^deliver news #1 via /);
  const lifelines = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(lifelines).toEqual(expect.arrayContaining(['browser', 'server', 'broker', 'client-1', 'client-2', 'client-3']));
  await page.screenshot({ path: 'output/pubsub.png', fullPage: true });
  await page.getByTestId('stop').click();
});

test('a late joiner misses earlier messages; a slow subscriber is dropped with a reason', async ({ page }) => {
  await page.goto('/demo/pubsub');
  await page.getByTestId('param-subscribers').fill('1');
  await page.getByTestId('param-slow-ms').fill('5000');
  await page.getByTestId('run').click();
  await expect(page.locator('[data-testid=subscriber][data-name=client-1]')).toContainText('subscribed to news');
  await page.getByTestId('publish').click();
  await expect(page.getByTestId('status')).toContainText('#1');
  // A late joiner, then a slow one.
  await page.getByTestId('add-subscriber').click();
  await expect(page.locator('[data-testid=subscriber][data-name=client-2]')).toContainText('subscribed to news (0 replayed)');
  await page.getByTestId('subscriber-slow').check();
  await page.getByTestId('add-subscriber').click();
  await expect(page.locator('[data-testid=subscriber][data-name=client-3]')).toContainText('subscribed');
  for (let n = 0; n < 20; n++) await page.getByTestId('publish').click();
  await expect(page.locator('[data-testid=subscriber][data-name=client-3]')).toContainText('dropped: 1008 too slow');
  await expect(page.locator('[data-testid=subscriber][data-name=client-1]')).toHaveAttribute('data-received', '21');
  await expect(page.locator('[data-testid=subscriber][data-name=client-2]')).toHaveAttribute('data-received', '20');
  await expect(page.locator('[data-testid=message][data-kind=note]').filter({ hasText: 'drops client-3' }).or(
    page.locator('[data-testid=message][data-kind=note][data-label*="drops client-3"]'))).not.toHaveCount(0);
  await page.screenshot({ path: 'output/pubsub-slow.png', fullPage: true });
  await page.getByTestId('stop').click();
});

test('a named room joins two tabs: a publish in one reaches the other tab\'s subscriber', async ({ browser }) => {
  const room = `class-${Date.now()}`;
  const context = await browser.newContext();
  const [a, b] = [await context.newPage(), await context.newPage()];
  const heardByA = [];
  a.on('websocket', (ws) => {
    if (ws.url().includes('/api/pubsub/ws')) {
      ws.on('framereceived', (f) => heardByA.push(JSON.parse(f.payload.toString())));
    }
  });
  for (const page of [a, b]) {
    await page.goto(`/demo/pubsub?room=${room}&subscribers=0`);
    await page.getByTestId('run').click();
  }
  await a.getByTestId('add-subscriber').click();
  await expect(a.locator('[data-testid=subscriber][data-name=client-1]')).toContainText('subscribed to news');
  await b.getByTestId('publish').click();
  await expect(b.getByTestId('status')).toContainText('Published news');
  await expect(a.locator('[data-testid=subscriber][data-name=client-1]')).toHaveAttribute('data-received', '1');
  const message = heardByA.find((f) => f.type === 'message');
  expect(message.delivery.topic).toBe('news');
  // Tab A's diagram draws the delivery to its own subscriber; tab B's run drew none (it has no subscriber).
  await expect(a.locator('[data-testid=message][data-kind=deliver][data-to=client-1]')).toHaveCount(1);
  await expect(b.locator('[data-testid=message][data-kind=deliver]')).toHaveCount(0);
  await context.close();
});

test('subscribers connecting at once: their crossing arrows keep their labels apart', async ({ page }) => {
  // Three clients open their connections within a few milliseconds: their requests cross on
  // the way to the server, and every label at its arrow's middle would cover another.
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await page.goto('/demo/pubsub');
  await page.getByTestId('run').click();
  await expect(page.locator('[data-testid=subscriber][data-received]')).toHaveCount(3);
  await expect(page.locator('[data-testid=message][data-kind=response]')).toHaveCount(3);
  // Labels are placed once per animation frame after the messages are drawn: look until the
  // layout has caught up (at least six labels, none covering another), not at one instant. A
  // label with no room anywhere, even shortened, is written as a mark ('…') or, with no room for
  // that, left off (its tooltip keeps it): at most one may be, in a crowd the real timings
  // happened to make. Marks must not cover anything either.
  await expect.poll(async () => {
    const { all, boxes, covered } = await labelBoxes(page);
    const readable = boxes.filter((b) => b.text !== '…');
    return { enough: readable.length >= 6, leftOff: all.length - readable.length <= 1, covered };
  }, { message: 'six or more labels, at most one marked or left off, none covering another' }).toEqual({ enough: true, leftOff: true, covered: [] });
  await page.getByTestId('stop').click();
  await expect(page.getByTestId('status')).toHaveText(/^Stopped/);
});

test('a crowd with no room: labels are shortened or marked, never written over another, and whole in the tooltip and inspector', async ({ page }, testInfo) => {
  // Eight deliveries leaving the broker at the same instant, each with a long label: their
  // arrows lie on top of each other near the broker, so not every label fits, even shortened.
  // An imported trace, so the crowd is the same on every run. It has server records only, on
  // the server's clock, and no clock hint: the file's first record is drawn at the run's start,
  // not shifted by the importing page's own clock.
  const label = (k) => `news: the broker hands message ${k} to its subscriber`;
  const server = Array.from({ length: 8 }, (_, i) => ({
    run: 'crowd', seq: i + 1, observer: 'server', request_id: `d${i + 1}`, from: 'broker', to: `client-${i + 1}`,
    kind: 'push', transport: 'websocket', sent_us: 86_400_000_000, recv_us: 86_400_000_400, label: label(i + 1), bytes: 60,
  }));
  const file = testInfo.outputPath('crowd.json');
  require('fs').writeFileSync(file, JSON.stringify({ version: 1, demo: 'pubsub', browser: [], server }));
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await page.goto('/demo/pubsub');
  await page.getByTestId('import-json').setInputFiles(file);
  const messages = page.locator('[data-testid=message]');
  await expect(messages).toHaveCount(8);
  // Drawn at the top of the time axis, under the lifelines' heads, with nothing folded before.
  const headsBottom = await page.locator('[data-testid=sequence-diagram] .actor-box').first()
    .evaluate((e) => e.getBoundingClientRect().bottom);
  const tops = await messages.evaluateAll((els) => els.map((e) => e.querySelector('path.line').getBoundingClientRect().top));
  expect(Math.min(...tops)).toBeGreaterThan(headsBottom);
  await expect(page.getByTestId('fold')).toHaveCount(0);
  // Every arrow keeps its whole label in its tooltip, however little of it is written.
  for (let k = 1; k <= 8; k++) {
    await expect(page.locator(`[data-testid=message][data-label="${label(k)}"] > title`)).toHaveText(label(k));
  }
  await expect.poll(async () => {
    const { all, boxes, covered } = await labelBoxes(page);
    return { labels: all.length, marks: boxes.filter((b) => b.text === '…').length > 0, covered };
  }, { message: 'eight labels, some only marked, none covering another' }).toEqual({ labels: 8, marks: true, covered: [] });
  // A marked arrow opens in the inspector with its whole label.
  const marked = messages.filter({ has: page.locator('text.label.mark') }).first();
  const full = await marked.getAttribute('data-label');
  await marked.dispatchEvent('click');
  await expect(page.getByTestId('inspector')).toContainText(full);
});

test('six subscribers: the lifelines keep their width and the diagram scrolls sideways', async ({ page }) => {
  await page.goto('/demo/pubsub?subscribers=6');
  await page.getByTestId('run').click();
  await expect(page.locator('[data-testid=subscriber][data-received]')).toHaveCount(6);
  // Nine lifelines (browser, server, broker, six clients): their heads side by side, none
  // covering the next, all at the size of a three-subscriber run's.
  const heads = await page.locator('[data-testid=sequence-diagram] .actor-box').evaluateAll((els) =>
    els.map((e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, width: r.width }; }));
  expect(heads).toHaveLength(9);
  for (let i = 1; i < heads.length; i++) expect(heads[i].left).toBeGreaterThan(heads[i - 1].right);
  expect(Math.min(...heads.map((h) => h.width))).toBeGreaterThan(100);
  const box = page.locator('.diagram-scroll').first();
  expect(await box.evaluate((e) => e.scrollWidth > e.clientWidth)).toBe(true);
  await page.getByTestId('stop').click();
});
