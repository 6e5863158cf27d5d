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
    if (!ws.url().endsWith('/api/trace/ws')) return;
    ws.on('framereceived', (f) => frames.push({ dir: 'in', data: f.payload.toString() }));
    ws.on('framesent', (f) => frames.push({ dir: 'out', data: f.payload.toString() }));
  });
  return frames;
}

async function metric(page, name) {
  return Number(await page.locator(`[data-testid=metric][data-name="${name}"]`).getAttribute('data-value'));
}

/** Waits until the run has finished and every arrow has landed. */
async function waitForRunToFinish(page) {
  await expect(page.getByTestId('run')).toBeEnabled();
  await expect(page.locator('[data-testid=message].in-flight')).toHaveCount(0);
}

module.exports = { drawnMessages, recordRequests, recordTraceSocket, metric, waitForRunToFinish };
