// Proves a page's runs complete behind a proxy balancing several instances: everything a run
// sent went to one instance, that instance recorded every request and socket of it, and the
// page's trace socket brought the page the run's whole server trace.
const { expect } = require('@playwright/test');

const runOf = (url) => {
  const params = new URL(url).searchParams;
  return params.get('run') || params.get('watch');
};

/** Starts watching what `page` sends; `assertComplete()` (after the test's runs finished) checks
 * every run seen. `instanceOf(run)` says which instance holds a run. */
function watchRuns(page) {
  // run → { rids: Set, instances: Set, frames: [{ socket, seqs: Set }] }
  const runs = new Map();
  const entry = (run) => {
    if (!runs.has(run)) runs.set(run, { rids: new Set(), instances: new Set(), traceSockets: [] });
    return runs.get(run);
  };
  page.on('request', (req) => {
    const url = new URL(req.url());
    const run = url.searchParams.get('run');
    if (run && url.searchParams.get('rid') !== 'leave') entry(run).rids.add(url.searchParams.get('rid'));
  });
  page.on('response', (res) => {
    const run = new URL(res.url()).searchParams.get('run');
    const instance = res.headers()['x-instance'];
    if (run && instance) entry(run).instances.add(instance);
  });
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    if (url.pathname === '/api/trace/ws') {
      const run = url.searchParams.get('watch');
      if (!run) return;
      const socket = { ws, seqs: new Set() };
      entry(run).traceSockets.push(socket);
      ws.on('framereceived', (f) => {
        const msg = JSON.parse(f.payload.toString());
        if (msg.type === 'message' && msg.run === run) socket.seqs.add(msg.seq);
      });
      return;
    }
    const run = url.searchParams.get('run');
    if (run) entry(run).rids.add(url.searchParams.get('rid'));
  });

  async function serverTrace(run) {
    const response = await page.request.get(`/api/trace/${run}`);
    expect(response.status(), `GET /api/trace/${run}`).toBe(200);
    return { instance: response.headers()['x-instance'], trace: await response.json() };
  }

  return {
    runs: () => [...runs.keys()],
    instanceOf: async (run) => (await serverTrace(run)).instance,
    async assertComplete() {
      expect(runs.size, 'the test made at least one run').toBeGreaterThan(0);
      for (const [run, seen] of runs) {
        const { instance, trace } = await serverTrace(run);
        // Every answer of the run came from the instance that holds its trace.
        expect([...seen.instances], `instances that answered run ${run}`).toEqual(seen.instances.size ? [instance] : []);
        // That instance recorded the arrival of every request and socket the browser opened.
        const arrived = new Set(trace.filter((m) => m.kind === 'request').map((m) => m.request_id));
        for (const rid of seen.rids) {
          expect(arrived.has(rid) || [...arrived].some((a) => a.startsWith(`${rid}-r`)), `run ${run}: request ${rid} recorded by instance ${instance}`).toBe(true);
        }
        // The page's trace socket for the run (the last one, if it is still open) brought every
        // message the server recorded.
        const socket = seen.traceSockets.at(-1);
        expect(socket, `run ${run} was watched over a trace socket naming it`).toBeTruthy();
        if (socket.ws.isClosed()) continue;
        await expect.poll(async () => {
          const { trace: now } = await serverTrace(run);
          return now.filter((m) => !socket.seqs.has(m.seq)).map((m) => `${m.seq} ${m.label}`);
        }, { message: `run ${run}: the page received the whole server trace from ${instance}` }).toEqual([]);
      }
    },
  };
}

module.exports = { watchRuns, runOf };
