// Security headers and no HTML from user text: every page loads and runs under the server's
// Content-Security-Policy without a single violation, and markup typed into any text field
// (found in the DOM, so new fields are covered), sent to the server and shown back, never runs.
const { test, expect } = require('@playwright/test');
const { waitForRunToFinish } = require('./helpers');

const SLUGS = ['request-response', 'upload', 'sync-async', 'short-polling', 'long-polling', 'sse', 'push',
  'pubsub', 'queue', 'multiplexing', 'stateful-stateless', 'sidecar', 'rest-graphql', 'protocols', 'compare'];

/** Every text field a person can type into, visible and enabled. */
const TEXT_FIELDS = [
  'input:not([type])', 'input[type=text]', 'input[type=search]', 'input[type=url]', 'input[type=email]',
  'textarea', '[contenteditable]:not([contenteditable=false])',
].join(', ');

/** Buttons that send what the page holds to the server once a run is going. */
const SENDERS = ['add-subscriber', 'publish', 'ticker-start'];

const PROBE = 'xssprobe';
const PAYLOADS = [
  `<img src=x onerror="window.__xss=1" alt=${PROBE}>`,
  `<script>window.__xss=2/*${PROBE}*/</script>`,
];

/** Collects CSP violations (the DOM event, before any page script runs) and console CSP errors. */
async function watchCsp(page) {
  const console = [];
  page.on('console', (m) => {
    if (/content security policy|refused to (load|execute|apply|connect|compile|evaluate)/i.test(m.text())) {
      console.push(m.text());
    }
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI} ${e.sample}`));
  });
  return async () => [...console, ...(await page.evaluate(() => window.__csp))];
}

/** What markup injection would leave behind: the flag, an <img src=x>, a <script> we did not ship. */
async function injected(page) {
  return page.evaluate(() => ({
    xss: window.__xss,
    images: document.querySelectorAll('img[src="x"]').length,
    scripts: [...document.scripts].filter((s) => s.textContent.includes('__xss')).length,
  }));
}

async function openDemo(page, slug) {
  await page.goto(`/demo/${slug}`);
  await expect(page.getByTestId('run')).toBeEnabled();
}

test('the index lists exactly the pages checked here', async ({ page }) => {
  await page.goto('/');
  // The list is drawn by the app after the WebAssembly loads: wait for it before reading it.
  await expect(page.locator('[data-testid=pattern-list] li')).toHaveCount(SLUGS.length);
  const slugs = await page.locator('[data-testid=pattern-list] li').evaluateAll((els) => els.map((e) => e.dataset.slug));
  expect(slugs).toEqual(SLUGS);
});

test('every response carries the security headers; the policy allows no inline code', async ({ request }) => {
  const index = await request.get('/');
  const html = await index.text();
  const asset = html.match(/href="(\/[^"]+\.css)"/)[1];
  for (const path of ['/', '/demo/push', asset, '/api/health', '/api/no-such-endpoint', '/api/jobs/nope']) {
    const response = await request.get(path);
    const headers = response.headers();
    const csp = headers['content-security-policy'];
    expect(csp, path).toBeTruthy();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("'wasm-unsafe-eval'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain("'unsafe-eval'");
    expect(csp).toMatch(/script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/]{43}='/);
    expect(headers['x-content-type-options'], path).toBe('nosniff');
    expect(headers['referrer-policy'], path).toBe('no-referrer');
    expect(headers['x-frame-options'], path).toBe('DENY');
  }
});

test('the index and every demo page load under the policy without a violation', async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto('/');
  await expect(page.locator('[data-testid=pattern-list] li')).toHaveCount(SLUGS.length);
  expect(await violations()).toEqual([]);
  for (const slug of SLUGS) {
    await openDemo(page, slug);
    // Something was drawn by the page's own code (the wasm started and styled the page).
    await expect(page.getByTestId('sequence-diagram').first()).toBeVisible();
    expect(await violations(), slug).toEqual([]);
  }
  await page.goto('/har');
  await expect(page.getByTestId('har-file')).toBeAttached();
  expect(await violations(), 'har').toEqual([]);
});

test('demos run under the policy: fetch, event stream, WebSockets, the inspector', async ({ page }) => {
  const violations = await watchCsp(page);
  await openDemo(page, 'request-response');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await page.locator('[data-testid=message][data-kind=response]').first().click();
  await expect(page.getByTestId('inspector')).toBeVisible();
  expect(await violations(), 'request-response').toEqual([]);

  await openDemo(page, 'sse');
  await page.getByTestId('param-steps').fill('3');
  await page.getByTestId('param-step-ms').fill('100');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.locator('[data-testid=message][data-kind=event]').first()).toBeVisible();
  expect(await violations(), 'sse').toEqual([]);

  await openDemo(page, 'push');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.locator('[data-testid=message][data-transport=websocket]').first()).toBeVisible();
  expect(await violations(), 'push').toEqual([]);
});

/** Fills every text field with `payload` (checking boxes first, which may reveal more fields). */
async function fillEverything(page, payload) {
  for (const box of await page.locator('input[type=checkbox]:visible:not(:checked):not(:disabled)').all()) {
    await box.check().catch(() => {});
  }
  const fields = page.locator(TEXT_FIELDS).filter({ visible: true });
  const filled = [];
  for (const field of await fields.all()) {
    if (await field.isDisabled()) continue;
    const type = await field.getAttribute('type');
    // The diagram's find box filters what is drawn: fill it last, after looking at the run.
    if (type === 'search') continue;
    const editable = await field.getAttribute('contenteditable');
    if (editable !== null) await field.evaluate((el, text) => { el.textContent = text; }, payload);
    else await field.fill(payload);
    filled.push((await field.getAttribute('data-testid')) || (await field.evaluate((el) => el.outerHTML.slice(0, 60))));
  }
  return filled;
}

for (const slug of SLUGS) {
  test(`${slug}: markup typed into any text field is shown as text, never run`, async ({ page }) => {
    test.setTimeout(120_000);
    const violations = await watchCsp(page);
    const reflectedOn = [];
    for (const payload of PAYLOADS) {
      await openDemo(page, slug);
      const filled = await fillEverything(page, payload);
      // Send it: run, use what sends once the run is going, then look at every exchange.
      await page.getByTestId('run').click();
      for (const id of SENDERS) {
        const button = page.getByTestId(id);
        if (await button.isVisible() && await button.isEnabled()) await button.click({ timeout: 2000 }).catch(() => {});
      }
      // Most runs end by themselves within a few seconds; pub/sub (and push with markup for a
      // room) go on until stopped: stop those after a while instead of waiting out a long cut.
      await expect(page.getByTestId('run')).toBeEnabled({ timeout: 8_000 }).catch(async () => {
        const stop = page.getByTestId('stop');
        if (await stop.isEnabled()) await stop.click({ timeout: 2000 }).catch(() => {});
      });
      const messages = page.locator('[data-testid=message]');
      const count = Math.min(await messages.count(), 12);
      for (let i = 0; i < count; i++) {
        await messages.nth(i).click({ force: true }).catch(() => {});
      }
      // The text came back from the server somewhere: a label, the inspector, a status line.
      const reflected = await page.evaluate((probe) =>
        document.body.textContent.includes(probe)
        || [...document.querySelectorAll('[data-label]')].some((e) => e.dataset.label.includes(probe)), PROBE);
      if (filled.length > 0 && reflected) reflectedOn.push(payload);
      expect(await injected(page), `${slug} shown back with ${payload}`).toEqual({ xss: undefined, images: 0, scripts: 0 });
      // The diagram's find box last, then the page again from its link (settings live there).
      for (const search of await page.locator('input[type=search]:visible').all()) await search.fill(payload);
      expect(await injected(page), `${slug} after run with ${payload}`).toEqual({ xss: undefined, images: 0, scripts: 0 });
      await page.reload();
      await expect(page.getByTestId('run')).toBeVisible();
      expect(await injected(page), `${slug} reloaded with ${payload}`).toEqual({ xss: undefined, images: 0, scripts: 0 });
      // Had markup been inserted, the policy would have refused its handler and said so.
      expect(await violations(), slug).toEqual([]);
      test.info().annotations.push({ type: 'fields', description: `${slug}: ${filled.join(', ') || '(none but find)'}` });
    }
    test.info().annotations.push({ type: 'reflected', description: `${slug}: ${reflectedOn.length} of ${PAYLOADS.length}` });
  });
}

test('text fields that reach the server come back as text on the pages that have them', async ({ page }) => {
  // The round trip the loop above relies on, checked where it must happen: the request body is
  // echoed, the room and user names and topics come back in labels, statuses or errors.
  const expectations = { 'request-response': 'body-input', push: 'param-room', pubsub: 'param-room', 'stateful-stateless': 'param-user' };
  for (const [slug, field] of Object.entries(expectations)) {
    await openDemo(page, slug);
    await fillEverything(page, PAYLOADS[0]);
    await expect(page.getByTestId(field)).toHaveValue(PAYLOADS[0]);
    await page.getByTestId('run').click();
    for (const id of SENDERS) {
      const button = page.getByTestId(id);
      if (await button.isVisible() && await button.isEnabled()) await button.click({ timeout: 2000 }).catch(() => {});
    }
    const messages = page.locator('[data-testid=message]');
    await expect(messages.first()).toBeVisible();
    await expect.poll(async () => {
      const n = Math.min(await messages.count(), 12);
      // Each click bounded: a live diagram re-renders its rows, and a click on one that went
      // away must not use up the whole wait.
      for (let i = 0; i < n; i++) await messages.nth(i).click({ force: true, timeout: 1_000 }).catch(() => {});
      return page.evaluate((probe) => document.body.textContent.includes(probe)
        || [...document.querySelectorAll('[data-label]')].some((e) => e.dataset.label.includes(probe)), PROBE);
    }, { message: `${slug}: the typed text comes back`, timeout: 20_000 }).toBe(true);
    expect(await injected(page), slug).toEqual({ xss: undefined, images: 0, scripts: 0 });
    // The run may end between the check and the click: then there is nothing to stop.
    const stop = page.getByTestId('stop');
    if (await stop.isEnabled()) await stop.click({ timeout: 2000 }).catch(() => {});
  }
});

test('a crafted trace file with markup in every text field imports, inspects and exports as text', async ({ page }) => {
  // A trace file is input too: a learner may import one a stranger shared. Take a real run's
  // export and put markup into every free-text field of every record (the same text for the
  // same original, so requests still pair with their responses and lifelines stay lifelines).
  const fs = require('fs');
  const violations = await watchCsp(page);
  await openDemo(page, 'request-response');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  const drawn = await page.locator('[data-testid=message]').count();
  expect(drawn).toBeGreaterThanOrEqual(2);
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  const saved = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
  const TEXT_KEYS = new Set(['run', 'request_id', 'from', 'to', 'label', 'start_line', 'body', 'name', 'value']);
  const crafts = new Map();
  let changed = 0;
  const craft = (node) => {
    if (Array.isArray(node)) return node.forEach(craft);
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === 'string' && TEXT_KEYS.has(key)) {
        if (!crafts.has(value)) crafts.set(value, `${value} ${PAYLOADS[crafts.size % 2]}`);
        node[key] = crafts.get(value);
        changed++;
      } else craft(value);
    }
  };
  craft(saved.browser);
  craft(saved.server);
  expect(changed).toBeGreaterThan(40);
  const crafted = test.info().outputPath('crafted.json');
  fs.writeFileSync(crafted, JSON.stringify(saved));

  await page.reload();
  await expect(page.getByTestId('run')).toBeEnabled();
  await page.getByTestId('import-json').setInputFiles(crafted);
  const messages = page.locator('[data-testid=message]');
  await expect(messages).toHaveCount(drawn);
  // Shown, as text: on the lifelines, the labels and in the inspector's headers and body.
  await expect(page.getByTestId('sequence-diagram').first()).toContainText(PROBE);
  for (let i = 0; i < drawn; i++) {
    await messages.nth(i).click({ force: true });
    await expect(page.getByTestId('inspector')).toContainText(PROBE);
    expect(await injected(page), `inspecting message ${i}`).toEqual({ xss: undefined, images: 0, scripts: 0 });
  }

  // The exports a reader opens elsewhere carry it as text too: the SVG parses to no element or
  // handler we did not write, and the Mermaid text has no markup Mermaid would render as HTML.
  const [svg] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-svg').click()]);
  const svgText = fs.readFileSync(await svg.path(), 'utf8');
  expect(svgText).toContain(PROBE);
  expect(await violations(), 'after the SVG export').toEqual([]);
  // Parsed in a blank page of its own: the app's policy (rightly) refuses the file's <style>.
  const blank = await page.context().newPage();
  const parsed = await blank.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const all = [...doc.querySelectorAll('*')];
    return {
      error: doc.querySelector('parsererror') !== null,
      foreign: all.filter((e) => ['img', 'script', 'foreignObject', 'iframe'].includes(e.localName)).length,
      handlers: all.filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    };
  }, svgText);
  expect(parsed).toEqual({ error: false, foreign: 0, handlers: 0 });
  await blank.close();
  const [mermaid] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-mermaid').click()]);
  const mermaidText = fs.readFileSync(await mermaid.path(), 'utf8');
  expect(mermaidText).toContain(PROBE);
  expect(mermaidText).not.toMatch(/<img|<script/i);

  expect(await injected(page)).toEqual({ xss: undefined, images: 0, scripts: 0 });
  expect(await violations()).toEqual([]);
});
