// A HAR built the way Chrome DevTools' "Save all as HAR" builds it: from the DevTools protocol's
// Network (and Page) events of real traffic, WebSocket frames and event-stream messages included
// (issue 18). Playwright's recordHar writes no WebSocket messages, so here a CDP session records
// the events, chrome-har's harFromMessages makes the HTTP entries, and the parts chrome-har 1.3.1
// leaves out (it ignores every Network.webSocket* and Network.eventSourceMessageReceived event,
// lib/ignoredEvents.js) are added as DevTools writes them: an entry per WebSocket with status 101,
// its ws:// URL, `_resourceType: "websocket"` and `_webSocketMessages` ({type, time in epoch
// seconds, opcode, data}); `_eventSourceMessages` ({time, eventName, eventId, data}) on the stream's
// entry. Imported on /har, every entry is one request and (when answered) one response, every
// WebSocket message one frame and every event-stream message one event, one for one.
const fs = require('fs');
const { test, expect } = require('@playwright/test');
const { drawnMessages, waitForRunToFinish } = require('./helpers');

/** The events chrome-har's harFromMessages reads (index.js's switch), and the WebSocket and
 * event-stream events DevTools' own HAR is built from. */
const EVENTS = [
  // chrome-har makes its pages from these; without Page events it writes no entries at all.
  'Page.frameStartedLoading',
  'Page.frameRequestedNavigation',
  'Page.navigatedWithinDocument',
  'Page.frameAttached',
  'Page.domContentEventFired',
  'Page.loadEventFired',
  'Network.requestWillBeSent',
  'Network.requestWillBeSentExtraInfo',
  'Network.requestServedFromCache',
  'Network.responseReceived',
  'Network.responseReceivedExtraInfo',
  'Network.dataReceived',
  'Network.loadingFinished',
  'Network.loadingFailed',
  'Network.resourceChangedPriority',
  'Network.webSocketCreated',
  'Network.webSocketWillSendHandshakeRequest',
  'Network.webSocketHandshakeResponseReceived',
  'Network.webSocketFrameSent',
  'Network.webSocketFrameReceived',
  'Network.webSocketClosed',
  'Network.eventSourceMessageReceived',
];

/** The DevTools-protocol events (`{method, params}`, in the order they came) of `visit(page)`,
 * in a context of its own, with the cache off (DevTools' "Disable cache"): every response then
 * has its timing, so chrome-har computes no NaN phase. */
async function recordCdp(browser, baseURL, visit) {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  const cdp = await page.context().newCDPSession(page);
  const events = [];
  for (const method of EVENTS) cdp.on(method, (params) => events.push({ method, params }));
  await cdp.send('Page.enable');
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await visit(page);
  const seen = events.slice();
  await context.close();
  return seen;
}

const pairs = (headers) => Object.entries(headers || {}).map(([name, value]) => ({ name, value: String(value) }));

/** What chrome-har leaves out, added as DevTools' HAR writer (front_end/models/har/Log.ts)
 * writes it. Times are pseudo wall times: the request's wallTime plus the monotonic time since
 * its timestamp, in seconds, as DevTools' NetworkRequest.pseudoWallTime gives them. */
function addSocketsAndStreams(har, events) {
  const entries = har.log.entries;
  const clock = new Map(); // requestId → { wallTime, timestamp }
  const sockets = new Map();
  for (const { method, params } of events) {
    const id = params.requestId;
    switch (method) {
      case 'Network.requestWillBeSent':
        if (!clock.has(id)) clock.set(id, { wallTime: params.wallTime, timestamp: params.timestamp });
        break;
      case 'Network.webSocketCreated':
        sockets.set(id, { url: params.url, frames: [] });
        break;
      case 'Network.webSocketWillSendHandshakeRequest':
        clock.set(id, { wallTime: params.wallTime, timestamp: params.timestamp });
        if (sockets.has(id)) sockets.get(id).requestHeaders = params.request.headers;
        break;
      case 'Network.webSocketHandshakeResponseReceived':
        if (sockets.has(id)) Object.assign(sockets.get(id), { response: params.response, answeredAt: params.timestamp });
        break;
      case 'Network.webSocketFrameSent':
      case 'Network.webSocketFrameReceived':
        if (sockets.has(id)) {
          sockets.get(id).frames.push({
            type: method === 'Network.webSocketFrameSent' ? 'send' : 'receive',
            at: params.timestamp,
            opcode: params.response.opcode,
            data: params.response.payloadData,
          });
        }
        break;
      case 'Network.eventSourceMessageReceived': {
        const entry = entries.find((e) => e._requestId === id);
        const c = clock.get(id);
        if (entry && c) {
          (entry._eventSourceMessages ||= []).push({
            time: c.wallTime + (params.timestamp - c.timestamp),
            eventName: params.eventName,
            eventId: params.eventId,
            data: params.data,
          });
        }
        break;
      }
    }
  }
  for (const [id, s] of sockets) {
    const c = clock.get(id);
    if (!c) continue; // never sent its handshake
    const wall = (at) => c.wallTime + (at - c.timestamp);
    const messages = s.frames.map((f) => ({ type: f.type, time: wall(f.at), opcode: f.opcode, data: f.data }));
    const existing = entries.find((e) => e._requestId === id);
    if (existing) {
      existing._webSocketMessages = messages;
      continue;
    }
    const waitMs = s.response ? (s.answeredAt - c.timestamp) * 1000 : 0;
    entries.push({
      startedDateTime: new Date(c.wallTime * 1000).toISOString(),
      time: waitMs,
      request: {
        method: 'GET', url: s.url, httpVersion: 'HTTP/1.1', headers: pairs(s.requestHeaders),
        queryString: [], cookies: [], headersSize: -1, bodySize: 0,
      },
      response: {
        status: s.response ? s.response.status : 0,
        statusText: s.response ? s.response.statusText : '',
        httpVersion: 'HTTP/1.1', headers: pairs(s.response && s.response.headers), cookies: [],
        content: { size: 0, mimeType: 'x-unknown' }, redirectURL: '', headersSize: -1, bodySize: -1, _transferSize: 0,
      },
      cache: {},
      timings: { blocked: -1, dns: -1, ssl: -1, connect: -1, send: 0, wait: waitMs, receive: 0 },
      _requestId: id,
      _resourceType: 'websocket',
      _webSocketMessages: messages,
    });
  }
  return har;
}

// How model/har.rs labels what it draws.
const short = (text) => {
  const chars = [...text.replace(/\n/g, ' ')];
  return chars.length > 40 ? `${chars.slice(0, 40).join('')}…` : chars.join('');
};
const OPCODES = { 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
const frameLabel = (f) => `${OPCODES[f.opcode] || 'frame'} ${short(f.data)}`;
const eventLabel = (m) => `${m.eventName || 'message'} id=${m.eventId} ${short(m.data)}`;
// model/har.rs's origin(): scheme and host, a socket's ws:// (wss://) read as http:// (https://),
// so a page and its socket to one server share a lifeline.
const originOf = (url) => {
  const [scheme, rest] = url.split('://');
  const web = { ws: 'http', wss: 'https' }[scheme.toLowerCase()] || scheme;
  return `${web}://${rest.split(/[/?#]/)[0]}`;
};
const pathOf = (url) => { const u = new URL(url); return u.pathname + u.search; };

test('a HAR built from DevTools-protocol events imports with one request, answer, frame and event per entry and message', async ({ browser, page, baseURL }) => {
  const events = await recordCdp(browser, baseURL, async (p) => {
    await p.goto('/demo/push?steps=2&step_ms=500&clients=0');
    await p.getByTestId('run').click();
    await waitForRunToFinish(p);
    await p.goto('/demo/sse?steps=3&step_ms=100');
    await p.getByTestId('run').click();
    await waitForRunToFinish(p);
  });
  const { harFromMessages } = await import('chrome-har');
  const har = addSocketsAndStreams(harFromMessages(events), events);
  const path = test.info().outputPath('cdp.har');
  fs.writeFileSync(path, JSON.stringify(har));

  const entries = har.log.entries;
  const sockets = entries.filter((e) => e._resourceType === 'websocket');
  const streams = entries.filter((e) => e._resourceType === 'eventsource');
  const frames = sockets.flatMap((e) => (e._webSocketMessages || []).map((f) => ({ ...f, site: originOf(e.request.url) })));
  const sse = streams.flatMap((e) => (e._eventSourceMessages || []).map((m) => ({ ...m, site: originOf(e.request.url) })));
  // The traffic is there: the push socket's frames both ways, the stream's events.
  expect(entries.some((e) => e.request.url.includes('/api/jobs'))).toBe(true);
  expect(sockets.some((e) => e.request.url.includes('/api/push/ws') && e.response.status === 101)).toBe(true);
  expect(frames.some((f) => f.type === 'send')).toBe(true);
  expect(frames.some((f) => f.type === 'receive')).toBe(true);
  expect(streams.length, 'chrome-har kept the event stream\'s entry').toBeGreaterThan(0);
  expect(sse.length).toBeGreaterThanOrEqual(3);
  // Every number a number: chrome-har writes NaN (null in JSON) for a phase it cannot compute.
  expect(JSON.stringify(entries.map((e) => [e.time, e.timings]))).not.toContain('null');
  const answered = entries.filter((e) => e.response.status > 0);
  // Small enough to be drawn whole (model/window.rs DRAWN_WHOLE_UP_TO), so every message is in the DOM.
  expect(entries.length + answered.length + frames.length + sse.length).toBeLessThanOrEqual(300);

  await page.goto('/har');
  await page.getByTestId('har-file').setInputFiles(path);
  await expect(page.getByTestId('har-error')).toHaveText('');
  await expect(page.getByTestId('status')).toContainText(`${entries.length} of ${entries.length} entries drawn`);
  await expect(page.locator('[data-testid=message].in-flight')).toHaveCount(0);
  const drawn = await drawnMessages(page);

  // One request per entry, to its origin's lifeline; one answer per answered entry.
  const requests = drawn.filter((m) => m.kind === 'request' && m.from === 'browser');
  const answers = drawn.filter((m) => m.kind === 'response' && m.to === 'browser');
  expect(requests.length).toBe(entries.length);
  expect(answers.length).toBe(answered.length);
  expect(requests.map((m) => m.label).sort()).toEqual(entries.map((e) => `${e.request.method} ${pathOf(e.request.url)}`).sort());
  expect(requests.map((m) => m.to).sort()).toEqual(entries.map((e) => originOf(e.request.url)).sort());
  expect(answers.map((m) => m.label.split(' ')[0]).sort()).toEqual(answered.map((e) => String(e.response.status)).sort());
  expect(answers.filter((m) => m.label.startsWith('101')).length).toBe(sockets.filter((e) => e.response.status === 101).length);

  // One frame per _webSocketMessages item: its direction, its connection's lifeline, its label.
  const drawnFrames = drawn.filter((m) => m.transport === 'websocket' && m.kind === 'push');
  expect(drawnFrames.length).toBe(frames.length);
  const sent = frames.filter((f) => f.type === 'send');
  const received = frames.filter((f) => f.type === 'receive');
  const framesFrom = drawnFrames.filter((m) => m.from === 'browser');
  const framesTo = drawnFrames.filter((m) => m.to === 'browser');
  expect(framesFrom.map((m) => `${m.to} ${m.label}`).sort()).toEqual(sent.map((f) => `${f.site} ${frameLabel(f)}`).sort());
  expect(framesTo.map((m) => `${m.from} ${m.label}`).sort()).toEqual(received.map((f) => `${f.site} ${frameLabel(f)}`).sort());

  // One event per _eventSourceMessages item, from its stream's origin.
  const drawnEvents = drawn.filter((m) => m.transport === 'sse' && m.kind === 'event');
  expect(drawnEvents.length).toBe(sse.length);
  expect(drawnEvents.map((m) => `${m.from} ${m.label}`).sort()).toEqual(sse.map((m) => `${m.site} ${eventLabel(m)}`).sort());
  expect(drawnEvents.every((m) => m.to === 'browser')).toBe(true);

  // Nothing else drawn but the notes the converter adds (undated or unanswered entries).
  const others = drawn.length - requests.length - answers.length - drawnFrames.length - drawnEvents.length;
  expect(drawn.filter((m) => m.kind === 'note').length).toBe(others);
  await page.screenshot({ path: 'output/har-cdp.png', fullPage: true });
});
