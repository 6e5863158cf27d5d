// The queue demo against the real server, on each engine: the browser publishes the jobs (one
// POST each); the diagram draws exactly the hops the server recorded (deliveries, acks, polls,
// the killed consumer); every job is acked once on each lane; the killed consumer's job goes to
// the other consumer, marked redelivered; the metrics measured from the diagram agree with the
// server's report. RabbitMQ runs when `make test` gave the backend a broker (scripts/e2e.sh
// passes PATTERNSCOPE_TEST_AMQP as --amqp-url); without it that test is skipped, loudly.
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

const JOBS = 8;
const jobOf = (label) => {
  const m = /job #(\d+)/.exec(label);
  return m ? Number(m[1]) : null;
};
const inner = (m) => ['queue', 'puller'].includes(m.from) || m.from.startsWith('consumer-');
const key = (m) => `${m.kind} ${m.from}→${m.to} ${m.label}`;

for (const engine of ['embedded', 'rabbitmq']) {
  test(`queue on ${engine}: pushed within prefetch, acked once, the dead consumer's job redelivered, pull polls counted`, async ({ page }) => {
    if (engine === 'rabbitmq' && !process.env.PATTERNSCOPE_TEST_AMQP) {
      console.log('!!! SKIPPED: PATTERNSCOPE_TEST_AMQP is not set, so the RabbitMQ queue test did not run (make e2e starts a private RabbitMQ).');
      test.skip(true, 'no RabbitMQ given');
    }
    const sent = recordRequests(page, '/api/queue/');
    // Jobs come 150 ms apart, slower than the puller works (120 ms): it finds the queue empty
    // between them, so empty polls are certain, not a race.
    await page.goto(`/demo/queue?engine=${engine}&jobs=${JOBS}&gap_ms=150&consumers=2&prefetch=2&work_ms=120&slow=0&kill=1&poll_ms=100`);
    // The engine is offered (the option is enabled once the page has asked /api/queue/info).
    const option = page.locator(`[data-testid=param-engine] option[value=${engine}]`);
    await expect.poll(() => option.evaluate((o) => o.disabled)).toBe(false);
    await expect(option).toHaveText(engine === 'rabbitmq' ? 'RabbitMQ' : /embedded/);
    await page.getByTestId('run').click();
    await waitForRunToFinish(page);
    await expect(page.getByTestId('status')).toContainText(`${JOBS} jobs: pushed`);

    // What the browser really sent: the run's spec, one POST per job, the report, the stop.
    const start = sent.find((s) => s.method === 'POST' && s.pathAndQuery.startsWith('/api/queue/run'));
    expect(JSON.parse(start.req.postData()).engine).toBe(engine);
    expect((await start.req.response()).status()).toBe(201);
    const publishes = sent.filter((s) => s.method === 'POST' && s.pathAndQuery.startsWith('/api/queue/publish'));
    expect(publishes.length).toBe(JOBS);
    for (const p of publishes) expect((await p.req.response()).status()).toBe(202);
    const waited = sent.find((s) => s.pathAndQuery.startsWith('/api/queue/report'));
    expect((await (await waited.req.response()).json()).done).toBe(true);
    // The stop answers the final counts (the consumers and the puller have ended).
    const stops = sent.filter((s) => s.method === 'DELETE');
    expect(stops.length).toBe(1);
    const report = await (await stops[0].req.response()).json();
    expect(report.engine).toBe(engine);
    expect(report.done).toBe(true);

    const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
    expect(actors).toEqual(['browser', 'server', 'queue', 'consumer-1', 'consumer-2', 'puller']);

    // The diagram draws exactly what the server recorded inside itself.
    const run = new URL(start.req.url()).searchParams.get('run');
    const serverTrace = await (await page.request.get(`/api/trace/${run}`)).json();
    const drawn = await drawnMessages(page);
    const serverHops = serverTrace.filter(inner).map(key).sort();
    expect(drawn.filter(inner).map(key).sort()).toEqual(serverHops);
    expect(drawn.filter((m) => m.kind === 'publish' && m.to === 'queue').length).toBe(JOBS);

    // Each job acked exactly once by the consumers and once by the puller.
    const acks = (from) => drawn.filter((m) => m.kind === 'response' && from(m.from) && m.label.startsWith('ack ')).map((m) => jobOf(m.label)).sort((a, b) => a - b);
    const all = Array.from({ length: JOBS }, (_, i) => i + 1);
    expect(acks((f) => f.startsWith('consumer-'))).toEqual(all);
    expect(acks((f) => f === 'puller')).toEqual(all);

    // consumer-1 died mid-job; that job went to consumer-2, marked redelivered, and was acked there.
    const killed = drawn.find((m) => m.kind === 'close' && m.from === 'consumer-1');
    expect(killed.label).toMatch(/^killed mid job #\d+/);
    const lost = jobOf(killed.label);
    const again = drawn.filter((m) => m.kind === 'deliver' && m.label.includes('redelivered'));
    expect(again.some((m) => m.to === 'consumer-2' && jobOf(m.label) === lost)).toBe(true);
    expect(drawn.some((m) => m.from === 'consumer-2' && m.label.startsWith(`ack job #${lost} `))).toBe(true);
    expect(drawn.filter((m) => m.kind === 'connect' && m.from.startsWith('consumer-')).map((m) => m.label)).toEqual(['basic.consume (prefetch 2)', 'basic.consume (prefetch 2)']);

    // The metrics (measured from the diagram) against the drawn hops and the server's report.
    const polls = drawn.filter((m) => m.kind === 'request' && m.from === 'puller').length;
    const empty = drawn.filter((m) => m.kind === 'response' && m.to === 'puller' && m.label === 'get-empty').length;
    expect(empty).toBeGreaterThanOrEqual(1);
    expect(polls).toBe(empty + JOBS);
    expect(await metric(page, 'published')).toBe(JOBS);
    expect(await metric(page, 'pull-polls')).toBe(polls);
    expect(await metric(page, 'empty-polls')).toBe(empty);
    expect(report.pull.requests).toBe(polls);
    expect(report.pull.empty_polls).toBe(empty);
    expect(await metric(page, 'push-acks')).toBe(JOBS);
    expect(await metric(page, 'pull-acks')).toBe(JOBS);
    expect(await metric(page, 'push-deliveries')).toBe(report.push.deliveries);
    expect(await metric(page, 'redelivered')).toBe(report.push.redelivered);
    expect(report.push.redelivered).toBeGreaterThanOrEqual(1);
    expect(await metric(page, 'push-requests')).toBe(2);
    expect(await metric(page, 'acks-consumer-1')).toBe(1);
    expect(await metric(page, 'acks-consumer-2')).toBe(JOBS - 1);
    expect(await metric(page, 'push-latency')).toBeGreaterThan(0);
    expect(await metric(page, 'pull-latency')).toBeGreaterThan(0);

    // The server's report is on the page.
    const table = page.getByTestId('queue-report');
    await expect(table).toHaveAttribute('data-engine', engine);
    await expect(table).toHaveAttribute('data-done', 'true');
    await expect(table.locator('[data-name="empty polls"] [data-lane=pull]')).toHaveText(String(report.pull.empty_polls));

    // The inspector shows the broker's frame of a delivery: its fields and the message.
    await page.locator('[data-testid=message][data-kind=deliver]').first().click();
    const inspector = page.getByTestId('inspector');
    await expect(inspector).toContainText('basic.deliver');
    await expect(inspector).toContainText('delivery-tag');
    await expect(inspector).toContainText(engine === 'rabbitmq' ? '.fanout' : '(the embedded queue)');
    await page.screenshot({ path: `output/queue-${engine}.png`, fullPage: true });
  });
}

test('an engine the server does not offer is refused with a clear 422', async ({ page }) => {
  await page.goto('/demo/queue');
  const info = await (await page.request.get('/api/queue/info')).json();
  test.skip(info.engines.includes('rabbitmq'), 'this server offers RabbitMQ');
  const answer = await page.request.post('/api/queue/run?run=e2e-noengine&rid=1', {
    data: { engine: 'rabbitmq', consumers: 2, prefetch: 1, work_ms: 10, poll_ms: 100 },
  });
  expect(answer.status()).toBe(422);
  expect((await answer.json()).error).toContain('--amqp-url');
  const option = page.locator('[data-testid=param-engine] option[value=rabbitmq]');
  await expect(option).toHaveText('RabbitMQ (start the server with --amqp-url)');
  expect(await option.evaluate((o) => o.disabled)).toBe(true);
});
