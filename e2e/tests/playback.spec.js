// Pause, step, scrub and replay redraw the run as it was at each moment; the keyboard drives it.
const { test, expect } = require('@playwright/test');
const { waitForRunToFinish } = require('./helpers');

test('pause, step back and forth, scrub and replay show the run as it was', async ({ page }) => {
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('150');
  await page.getByTestId('param-repeat').fill('2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const messages = page.locator('[data-testid=message]');
  const inFlight = page.locator('[data-testid=message].in-flight');
  await expect(messages).toHaveCount(4);

  await page.getByTestId('pause').click();
  await expect(page.getByTestId('pause')).toHaveAttribute('aria-pressed', 'true');
  // Back to the last arrival, then to the moment the last answer left: drawn in flight.
  await page.getByTestId('step-back').click();
  await page.getByTestId('step-back').click();
  await expect(messages).toHaveCount(4);
  await expect(inFlight).toHaveCount(1);
  // The inspector tells the answer is on its way at this moment (the run itself has ended).
  await inFlight.locator('text.label').click();
  await expect(page.getByTestId('inspector')).toContainText('still travelling');
  await expect(page.getByTestId('inspector')).not.toContainText('never received');
  // One more: before the server answered the second request at all.
  await page.getByTestId('step-back').click();
  await expect(messages).toHaveCount(3);

  // The keyboard steps forward again.
  await page.getByTestId('step-forward').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await expect(messages).toHaveCount(4);
  await expect(inFlight).toHaveCount(0);

  // Scrubbed to the start: nothing had happened yet.
  await page.getByTestId('scrub').fill('0');
  await expect(messages).toHaveCount(0);
  await expect(page.getByTestId('playback-time')).toHaveText('0 ms');

  // Space goes back to live.
  await page.getByTestId('step-forward').focus();
  await page.keyboard.press(' ');
  await expect(page.getByTestId('pause')).toHaveAttribute('aria-pressed', 'false');
  await expect(messages).toHaveCount(4);

  // Replay at a quarter speed: starts from nothing and ends back live with everything drawn.
  // (At 4x this ~320 ms run replays in ~80 ms, which a loaded CI machine can finish before
  // the first check sees it; slowed down, the partial drawing lasts over a second.)
  await page.getByTestId('speed').selectOption('0.25');
  await page.getByTestId('replay').click();
  await expect(messages).not.toHaveCount(4);
  await expect(page.getByTestId('pause')).toHaveAttribute('aria-pressed', 'false', { timeout: 10000 });
  await expect(messages).toHaveCount(4);
});

test('filter by kind and find by text', async ({ page }) => {
  await page.goto('/demo/short-polling?steps=2&step_ms=150&interval_ms=60');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const all = await page.locator('[data-testid=message]').count();
  await page.getByTestId('filter-kind').selectOption('response');
  // The diagram is laid out once per animation frame: wait for the filter to apply.
  const responses = page.locator('[data-testid=message]');
  await expect.poll(() => responses.evaluateAll((els) => els.length > 0 && els.every((e) => e.dataset.kind === 'response'))).toBe(true);
  await page.getByTestId('filter-kind').selectOption('');
  await page.getByTestId('filter-text').fill('worker');
  const hops = page.locator('[data-testid=message]');
  await expect.poll(() => hops.evaluateAll((els) => els.length >= 2 && els.every((e) => e.dataset.from === 'worker' || e.dataset.to === 'worker'))).toBe(true);
  expect(await hops.count()).toBeGreaterThanOrEqual(2);
  await page.getByTestId('filter-text').fill('');
  await expect(page.locator('[data-testid=message]')).toHaveCount(all);
});

test('with reduced motion, arrows do not animate and replay moves message by message', async ({ page }) => {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('100');
  await page.getByTestId('param-repeat').fill('2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const animations = await page.locator('[data-testid=message] .draw').evaluateAll((els) =>
    els.map((e) => getComputedStyle(e).animationName));
  expect(animations.every((a) => a === 'none')).toBe(true);

  // The page itself notes when the shown moment changes (its own clock, however busy this
  // test process is), from the replay's start to its return to live.
  await page.getByTestId('playback-time').evaluate((el) => {
    window.__moments = [];
    const note = () => {
      const text = el.textContent;
      const last = window.__moments.at(-1);
      if (!last || last.text !== text) window.__moments.push({ text, at: performance.now() });
    };
    new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.getByTestId('replay').click();
  await expect(page.getByTestId('pause')).toHaveAttribute('aria-pressed', 'true');
  // It still reaches the end and goes back to live.
  await expect(page.getByTestId('pause')).toHaveAttribute('aria-pressed', 'false', { timeout: 15_000 });
  await expect(page.locator('[data-testid=message]')).toHaveCount(4);
  // Each moment is held (about 0.7 s), not swept through in 50 ms ticks: every gap between two
  // changes is long (but the last, the jump back to live, whose timing is not the replay's).
  const moments = await page.evaluate(() => window.__moments);
  expect(moments[0].text).toBe('0 ms');
  const gaps = moments.slice(1, -1).map((m, i) => Math.round(m.at - moments[i].at));
  expect(gaps.length, JSON.stringify(moments)).toBeGreaterThanOrEqual(3);
  for (const gap of gaps) expect(gap, JSON.stringify(moments)).toBeGreaterThanOrEqual(500);
});

test('a live run longer than the diagram box is followed to its end, until the reader scrolls away', async ({ page }) => {
  await page.goto('/demo/sse');
  // Long enough (50 × 250 ms) to still be going when the checks are done; stopped at the end.
  await page.getByTestId('param-steps').fill('50');
  await page.getByTestId('param-step-ms').fill('250');
  await page.getByTestId('run').click();
  const box = page.locator('.diagram-scroll');
  // Where the newest drawn message is, in the box's own visible coordinates.
  const endInView = () => box.evaluate((div) => {
    const seen = div.getBoundingClientRect();
    const ends = [...div.querySelectorAll('[data-testid=message]')].map((m) => m.getBoundingClientRect().bottom);
    const end = Math.max(...ends);
    return { scrolled: div.scrollTop, tall: div.scrollHeight > div.clientHeight + 100, inView: end >= seen.top && end <= seen.bottom };
  });
  // The run grows past the box, and the box keeps its end in view (well past the first screen,
  // so scrolling back to the top is a real move away from the end).
  await expect.poll(async () => { const e = await endInView(); return e.tall && e.scrolled > 150 && e.inView; },
    { message: 'the box follows the live end', timeout: 15_000 }).toBe(true);
  await expect(page.getByTestId('stop')).toBeEnabled();
  // Scrolled down, the lifelines' names stay pinned at the top of the box.
  const pinned = page.locator('.lifeline-heads svg');
  await expect(pinned).toBeVisible();
  expect(await pinned.locator('text').allTextContents()).toEqual(
    await page.locator('[data-testid=lifeline]').evaluateAll((ls) => ls.map((l) => l.dataset.actor)));
  const [headTop, boxTop] = await Promise.all([pinned.evaluate((e) => e.getBoundingClientRect().top), box.evaluate((e) => e.getBoundingClientRect().top)]);
  expect(Math.abs(headTop - boxTop)).toBeLessThan(3);
  // The reader scrolls back to the start: the box stays there while the run goes on.
  await box.evaluate((div) => { div.scrollTop = 0; });
  const before = await page.locator('[data-testid=message]').count();
  await expect.poll(() => page.locator('[data-testid=message]').count()).toBeGreaterThan(before + 2);
  expect((await endInView()).scrolled).toBe(0);
  // At the top, the drawing's own heads are in sight: the pinned copy steps aside.
  await expect(pinned).toBeHidden();
  // Done: stop the run rather than wait it out (it may just have ended by itself). A stopped
  // stream may leave an event the server sent but the page never read drawn in flight, so this
  // waits for the run to be over, not for every arrow to land.
  await page.getByTestId('stop').click({ timeout: 2000 }).catch(() => {});
  await expect(page.getByTestId('run')).toBeEnabled();
});
