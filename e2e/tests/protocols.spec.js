// Request/response beyond HTTP against the real server: the browser's one request, the DNS
// datagrams the server's resolver exchanged over UDP (ids pairing query and answer; a lost one
// and its retry), and PostgreSQL's wire messages, each checked against what the server reports
// (the lookup's answer and the run's server trace). With POSTGRES_LANE set (scripts/e2e.sh
// under scripts/with-postgres.sh, as `make e2e` runs it) the SQL lane talks to a real
// PostgreSQL; without it, the test checks the lane says how to enable it and sends nothing.
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, metric, waitForRunToFinish } = require('./helpers');

const postgres = !!process.env.POSTGRES_LANE;

/** Runs the demo once with `query` and returns the server's report and what was drawn. */
async function runLookup(page, query) {
  const sent = recordRequests(page, '/api/protocols/lookup');
  await page.goto(`/demo/protocols?${query}`);
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  expect(sent.length).toBe(1);
  const response = await sent[0].req.response();
  expect(response.status()).toBe(200);
  const run = new URL(sent[0].req.url()).searchParams.get('run');
  return { sent: sent[0], report: await response.json(), drawn: await drawnMessages(page), run };
}

const udp = (drawn) => drawn.filter((m) => m.transport === 'udp');
const tcp = (drawn) => drawn.filter((m) => m.transport === 'tcp');
const hex = (id) => `#${id.toString(16).padStart(4, '0')}`;

test('one request asks a DNS server over UDP and PostgreSQL over its wire protocol', async ({ page }) => {
  const { sent, report, drawn, run } = await runLookup(page, 'name=db&type=A&drop_first=false');
  expect(sent.pathAndQuery).toContain('/api/protocols/lookup?name=db&type=A&drop_first=false');

  const actors = await page.locator('[data-testid=lifeline]').evaluateAll((els) => els.map((e) => e.dataset.actor));
  expect(actors).toEqual(['browser', 'server', 'dns', 'postgres']);
  // The browser's own request and its answer.
  expect(drawn.filter((m) => m.kind === 'request' && m.from === 'browser' && m.to === 'server'
    && m.label.includes('/api/protocols/lookup?name=db')).length).toBe(1);
  expect(drawn.filter((m) => m.kind === 'response' && m.from === 'server' && m.to === 'browser').length).toBe(1);

  // DNS: one query and its answer, as the server reports them, paired by the message id.
  expect(report.dns.answers).toEqual(['192.0.2.12']);
  const datagrams = report.dns.datagrams;
  expect(datagrams.map((d) => d.direction)).toEqual(['request', 'response']);
  expect(datagrams[1].id).toBe(datagrams[0].id);
  const dns = udp(drawn);
  expect(dns.map((m) => [m.kind, m.from, m.to, m.label])).toEqual([
    ['request', 'server', 'dns', datagrams[0].label],
    ['response', 'dns', 'server', datagrams[1].label],
  ]);
  expect(dns[0].label).toContain(`query ${hex(datagrams[0].id)} A db.patternscope.test.`);
  expect(dns[1].label).toContain(`answer ${hex(datagrams[0].id)} NOERROR`);
  expect(await metric(page, 'dns-datagrams')).toBe(2);
  expect(await metric(page, 'dns-lost')).toBe(0);
  await expect(page.getByTestId('dns-answer')).toContainText('192.0.2.12');

  await page.locator('[data-testid=message][data-kind=response][data-from=dns]').click();
  const inspector = page.getByTestId('inspector');
  await expect(inspector).toContainText('ANSWER SECTION');
  await expect(inspector).toContainText('192.0.2.12');
  await expect(inspector).toContainText(`id: ${datagrams[0].id}`);

  const wire = tcp(drawn);
  if (!postgres) {
    await expect(page.getByTestId('sql-off')).toContainText('--postgres-url');
    expect(report.sql.enabled).toBe(false);
    expect(wire).toEqual([]);
    expect(drawn.filter((m) => m.kind === 'note' && m.label.includes('--postgres-url')).length).toBe(1);
    return;
  }

  // PostgreSQL: every message the relay saw, in order, each drawn between server and postgres.
  expect(report.sql.error).toBeNull();
  expect(report.sql.rows).toEqual([{ name: 'db', port: 5432, owner: 'data team', note: 'PostgreSQL: orders and accounts' }]);
  const names = report.sql.messages.map((m) => m.name);
  expect(wire.map((m) => m.label.split(' ')[0])).toEqual(names);
  for (const [i, m] of wire.entries()) {
    const { direction, name } = report.sql.messages[i];
    const kind = name === 'Terminate' ? 'close' : direction;
    expect([m.kind, m.from, m.to]).toEqual(direction === 'request' ? [kind, 'server', 'postgres'] : [kind, 'postgres', 'server']);
  }
  expect(names.slice(0, 2)).toEqual(['StartupMessage', 'AuthenticationOk']);
  // A dozen ParameterStatus at start-up, one arrow per read that brought them (`ParameterStatus ×13`).
  const statuses = report.sql.messages.filter((m) => m.name === 'ParameterStatus');
  expect(statuses.reduce((n, m) => n + m.count, 0)).toBeGreaterThanOrEqual(10);
  for (const [i, m] of report.sql.messages.entries()) {
    if (m.count > 1) expect(wire[i].label).toBe(`${m.name} ×${m.count}`);
  }
  const parse = names.indexOf('Parse');
  expect(names.slice(parse)).toEqual([
    'Parse', 'Describe', 'Sync', 'ParseComplete', 'ParameterDescription', 'RowDescription', 'ReadyForQuery',
    'Bind', 'Execute', 'Sync', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery', 'Terminate',
  ]);
  // The page drew exactly what the server recorded for the run.
  const trace = await (await page.request.get(`/api/trace/${run}`)).json();
  expect(trace.filter((m) => m.transport === 'tcp').map((m) => m.label)).toEqual(wire.map((m) => m.label));
  expect(wire.find((m) => m.label.startsWith('Bind')).label).toContain('$1="db"');
  expect(wire.find((m) => m.label.startsWith('DataRow')).label).toContain('= 5432');
  expect(await metric(page, 'pg-sent')).toBe(report.sql.messages.filter((m) => m.direction === 'request').length);
  await expect(page.getByTestId('sql-rows')).toContainText('data team');

  await page.locator('[data-testid=message][data-transport=tcp][data-label^="Parse "]').click();
  await expect(inspector).toContainText('WHERE name = $1');
  await expect(inspector).toContainText(/Parse \('P'\), \d+ bytes/);
  await page.screenshot({ path: 'output/protocols.png', fullPage: true });
});

test('a lost DNS datagram: the resolver waits its timeout and asks again', async ({ page }) => {
  const { report, drawn, run } = await runLookup(page, 'name=api&type=TXT&drop_first=true');
  const datagrams = report.dns.datagrams;
  expect(datagrams.map((d) => [d.direction, d.dropped])).toEqual([
    ['request', true], ['request', false], ['response', false],
  ]);
  expect(datagrams[2].id).toBe(datagrams[1].id);
  expect(report.dns.elapsed_ms).toBeGreaterThanOrEqual(400);
  expect(report.dns.answers[0]).toContain('the JSON API behind the pages');

  const dns = udp(drawn);
  expect(dns.map((m) => [m.kind, m.from, m.to])).toEqual([
    ['note', 'server', 'server'], ['request', 'server', 'dns'], ['response', 'dns', 'server'],
  ]);
  expect(dns[0].label).toContain(`lost: ${datagrams[0].label}`);
  expect(dns[1].label).toBe(datagrams[1].label);
  expect(dns[2].label).toBe(datagrams[2].label);
  expect(await metric(page, 'dns-lost')).toBe(1);
  expect(await metric(page, 'dns-datagrams')).toBe(2);
  // The retry left a timeout after the loss, on the server's own clock.
  const trace = await (await page.request.get(`/api/trace/${run}`)).json();
  const [lost, retry] = trace.filter((m) => m.transport === 'udp');
  expect(retry.sent_us - lost.sent_us).toBeGreaterThanOrEqual(350000);
  await page.screenshot({ path: 'output/protocols-drop.png', fullPage: true });
});
