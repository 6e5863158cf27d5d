// A thousand-message trace is windowed: only the messages near the visible part of the diagram
// are in the DOM, yet scrolling reaches every one, selecting and the waterfall still work, the
// playhead is brought into view, and Export SVG still holds every message.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const { waitForRunToFinish } = require('./helpers');

const COPIES = 250;

/** Whether `locator`'s element is inside the visible part of the diagram's scroll box (the box
 * itself may reach below the page's viewport, so Playwright's toBeInViewport does not say). */
function inBox(locator) {
  return locator.evaluate((el) => {
    const box = el.closest('.diagram-scroll').getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  });
}

/** A real run's saved trace, repeated `copies` times one after another: every copy with its own
 * sequence numbers, request ids (also in the URLs) and times on both observers' clocks. */
function repeated(saved, copies) {
  const all = [...saved.browser, ...saved.server];
  const times = all.flatMap((m) => [m.sent_us, m.recv_us]).filter((t) => t !== undefined);
  const period = Math.max(...times) - Math.min(...times) + 5_000;
  const rids = [...new Set(all.map((m) => m.request_id).filter(Boolean))];
  const copy = (m, k) => {
    let text = JSON.stringify(m);
    for (const rid of rids) {
      text = text
        .split(`"request_id":"${rid}"`).join(`"request_id":"${rid}_${k}"`)
        .replace(new RegExp(`rid=${rid}(?![\\w-])`, 'g'), `rid=${rid}_${k}`);
    }
    const c = JSON.parse(text);
    c.seq = m.seq + k * 1_000;
    for (const f of ['sent_us', 'recv_us']) if (c[f] !== undefined) c[f] += k * period;
    for (const p of (c.detail && c.detail.phases) || []) p.start_us += k * period;
    return c;
  };
  const list = (records) => Array.from({ length: copies }, (_, k) => records.map((m) => copy(m, k))).flat();
  return { ...saved, browser: list(saved.browser), server: list(saved.server) };
}

test('a 1,000-message trace: a bounded window in the DOM, every message reachable and exported', async ({ page }) => {
  await page.goto('/demo/request-response');
  await page.getByTestId('param-process-ms').fill('20');
  await page.getByTestId('param-repeat').fill('2');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  const saved = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
  expect(saved.browser.length).toBe(4);
  const big = repeated(saved, COPIES);
  const file = test.info().outputPath('large.json');
  fs.writeFileSync(file, JSON.stringify(big));
  const lastRid = saved.browser.filter((m) => m.kind === 'response').at(-1).request_id;

  await page.reload();
  await page.getByTestId('import-json').setInputFiles(file);
  const diagram = page.getByTestId('sequence-diagram');
  await expect(diagram).toHaveAttribute('data-total-messages', String(4 * COPIES));
  const messages = page.locator('[data-testid=message]');
  await expect(messages.first()).toBeAttached();
  // The window fills in over a frame or two after the first message is there.
  await expect.poll(() => messages.count()).toBeGreaterThan(10);
  const drawnAtTop = await messages.count();
  expect(drawnAtTop).toBeLessThan(200);

  // What is drawn covers what is seen, with no gap at either edge, wherever it is scrolled.
  const scroller = page.locator('.diagram-scroll');
  const covered = () =>
    scroller.evaluate((box) => {
      const seen = box.getBoundingClientRect();
      const rects = [...box.querySelectorAll('[data-testid=message]')].map((m) => m.getBoundingClientRect());
      return {
        count: rects.length,
        above: Math.min(...rects.map((r) => r.top)) <= seen.top,
        below: Math.max(...rects.map((r) => r.bottom)) >= seen.bottom,
      };
    });
  await scroller.evaluate((box) => (box.scrollTop = box.scrollHeight / 2));
  await expect.poll(covered).toMatchObject({ above: true, below: true });
  expect((await covered()).count).toBeLessThan(200);

  // The end: the last message is drawn and visible, the first is not in the DOM any more.
  await scroller.evaluate((box) => (box.scrollTop = box.scrollHeight));
  const last = page.locator(`[data-testid=message][data-kind=response][data-label*="rid=${lastRid}_${COPIES - 1}"]`);
  await expect(last).toHaveCount(1);
  await expect.poll(() => inBox(last)).toBe(true);
  const firstCopyDrawn = await messages.evaluateAll((els) => els.filter((e) => /_0(&|$)/.test(e.dataset.label)).length);
  expect(firstCopyDrawn).toBe(0);
  expect(await messages.count()).toBeLessThan(200);

  // Selected, it is shown in the inspector.
  await last.click();
  await expect(page.locator('[data-testid=message].selected')).toHaveCount(1);
  await expect(page.getByTestId('inspector')).toContainText(`rid=${lastRid}_${COPIES - 1}`);

  // A waterfall row far above selects its exchange and the diagram scrolls to it.
  await page.locator('[data-testid=waterfall-row]').first().click();
  const first = page.locator('[data-testid=message].selected');
  await expect(first).toHaveCount(1);
  await expect.poll(() => inBox(first)).toBe(true);
  expect(await scroller.evaluate((box) => box.scrollTop)).toBeLessThan(1_000);

  // Stepping the playhead back brings the moment stepped to into view (the end, here).
  await page.getByTestId('pause').click();
  await page.getByTestId('step-back').click();
  await expect(page.locator('[data-testid=message].in-flight')).toHaveCount(1);
  await expect.poll(() => inBox(page.locator('[data-testid=message].in-flight'))).toBe(true);
  await page.getByTestId('pause').click();

  // Export SVG draws the whole diagram, not the window.
  const [svg] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-svg').click()]);
  const text = fs.readFileSync(await svg.path(), 'utf8');
  expect(text.match(/data-testid="message"/g).length).toBe(4 * COPIES);
  expect(text).toContain(`rid=${lastRid}_0`);
  expect(text).toContain(`rid=${lastRid}_${COPIES - 1}`);
  // And the page still has only its window.
  expect(await messages.count()).toBeLessThan(200);
});
