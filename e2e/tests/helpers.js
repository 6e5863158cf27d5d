// Shared by the browser tests: what the page drew, and what the browser really sent.
const { expect } = require('@playwright/test');

/** Every drawn message as plain data. */
async function drawnMessages(page) {
  return page.locator('[data-testid=message]').evaluateAll((els) =>
    els.map((el) => ({
      kind: el.dataset.kind,
      from: el.dataset.from,
      to: el.dataset.to,
      transport: el.dataset.transport,
      label: el.dataset.label,
      inFlight: el.classList.contains('in-flight'),
    })),
  );
}

/** Records every request the page makes whose path starts with `prefix`. */
function recordRequests(page, prefix) {
  const seen = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname.startsWith(prefix)) seen.push({ method: req.method(), pathAndQuery: url.pathname + url.search, req });
  });
  return seen;
}

/** Records the trace WebSocket's frames. */
function recordTraceSocket(page) {
  const frames = [];
  page.on('websocket', (ws) => {
    if (new URL(ws.url()).pathname !== '/api/trace/ws') return;
    ws.on('framereceived', (f) => frames.push({ dir: 'in', data: f.payload.toString() }));
    ws.on('framesent', (f) => frames.push({ dir: 'out', data: f.payload.toString() }));
  });
  return frames;
}

async function metric(page, name) {
  return Number(await page.locator(`[data-testid=metric][data-name="${name}"]`).getAttribute('data-value'));
}

/** Waits until the diagrams' message counts have stayed the same for `quietMs`: the server's
 * half of a run comes over the trace WebSocket and can still be arriving after the run's last
 * HTTP answer (a hop inside the server, the cluster stopped at the end), so a test that counts
 * server-only messages right after the run could read too few. */
async function waitForTraceToSettle(page, quietMs = 300) {
  const diagrams = page.locator('[data-testid=sequence-diagram]');
  let last;
  let since = 0;
  await expect.poll(async () => {
    const now = (await diagrams.evaluateAll((els) => els.map((e) => e.getAttribute('data-total-messages')))).join(',');
    if (now !== last) {
      last = now;
      since = Date.now();
      return false;
    }
    return Date.now() - since >= quietMs;
  }, { message: `the drawn trace stops growing for ${quietMs} ms`, intervals: [50] }).toBe(true);
}

/** Waits until the run has finished, every arrow has landed and the server's trace records have
 * stopped arriving. */
async function waitForRunToFinish(page) {
  await expect(page.getByTestId('run')).toBeEnabled();
  await expect(page.locator('[data-testid=message].in-flight')).toHaveCount(0);
  await waitForTraceToSettle(page);
  await expect(page.locator('[data-testid=message].in-flight')).toHaveCount(0);
}

module.exports = { drawnMessages, recordRequests, recordTraceSocket, metric, waitForRunToFinish, waitForTraceToSettle };
