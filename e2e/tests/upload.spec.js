// Whole vs chunked upload: chunks go at the offsets the server acknowledged; an interrupted
// upload resumes from what the server says it holds; the server's SHA-256 matches the page's.
// `test` from fixtures: the tests tagged @proxy also run behind nginx (proxy.config.js).
const { test, expect } = require('./fixtures');
const { drawnMessages, recordRequests, waitForRunToFinish } = require('./helpers');

const offsetOf = (r) => Number(new URL(r.pathAndQuery, 'http://x').searchParams.get('offset'));

test('a chunked upload interrupted midway resumes from the server\'s offset and the checksum matches', { tag: '@proxy' }, async ({ page }) => {
  const sent = recordRequests(page, '/api/uploads');
  const answers = [];
  page.on('response', async (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/uploads') && r.request().method() === 'GET') {
      answers.push(await r.json());
    }
  });
  // 16 chunks a little over 300 ms apart: once three are acknowledged, the upload still has
  // about 4 s to go, so the interrupt lands midway even when this process notices late (it
  // looks every 50 ms, not at the default's growing intervals of up to a second).
  await page.goto('/demo/upload?source=generate&size_kb=512&mode=chunked&chunk_kb=32&delay_ms=300');
  await page.getByTestId('run').click();
  const progress = page.getByTestId('upload-progress');
  await expect.poll(async () => Number(await progress.getAttribute('value')), { timeout: 10_000, intervals: [50] })
    .toBeGreaterThanOrEqual(3 * 32 * 1024);
  await page.getByTestId('interrupt').click();
  await expect(page.getByTestId('status')).toContainText('Interrupted');
  const before = sent.filter((r) => r.method === 'PUT').length;
  await page.getByTestId('resume').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('SHA-256 matches');

  // Announce, chunks, one GET to learn where to resume, more chunks.
  expect(sent[0].method).toBe('POST');
  const puts = sent.filter((r) => r.method === 'PUT');
  const resumeAt = answers[0].received;
  expect(puts.length).toBeGreaterThan(before);
  expect(offsetOf(puts[before])).toBe(resumeAt);
  expect(resumeAt % (32 * 1024)).toBe(0);
  // Chunks after the resume continue where each acknowledgement left off.
  const after = puts.slice(before).map(offsetOf);
  after.forEach((o, i) => expect(o).toBe(resumeAt + i * 32 * 1024));
  expect(resumeAt + after.length * 32 * 1024).toBeGreaterThanOrEqual(512 * 1024 - 768);

  // The diagram drew every PUT the browser sent (the cut-off one included) and the GET.
  const drawn = await drawnMessages(page);
  const drawnPuts = drawn.filter((m) => m.kind === 'request' && m.label.startsWith('PUT /api/uploads/'));
  expect(drawnPuts.length).toBe(puts.length);
  expect(drawn.some((m) => m.kind === 'request' && m.label.startsWith('GET /api/uploads/'))).toBe(true);
  await page.screenshot({ path: 'output/upload.png', fullPage: true });
});

test('a whole upload is one request carrying every byte, checked by the server', { tag: '@proxy' }, async ({ page }) => {
  const sent = recordRequests(page, '/api/uploads');
  await page.goto('/demo/upload?source=generate&size_kb=300&mode=whole');
  await page.getByTestId('run').click();
  await waitForRunToFinish(page);
  await expect(page.getByTestId('status')).toContainText('SHA-256 matches');
  expect(sent.map((r) => r.method)).toEqual(['POST']);
  const body = sent[0].req.postDataBuffer();
  expect(body.length).toBeGreaterThan(299 * 1024);
  expect(body.subarray(0, 2).toString()).toBe('BM');
  const response = await sent[0].req.response();
  expect((await response.json()).sha256_matches).toBe(true);
  const requests = (await drawnMessages(page)).filter((m) => m.kind === 'request' && m.from === 'browser');
  expect(requests.map((m) => m.label.split('?')[0])).toEqual(['POST /api/uploads/whole']);

  // The page's own work (hashing the file) went on no wire: the inspector says so and shows the
  // whole hash the arrow cuts short, the same one the server compared against.
  const hashing = page.locator('[data-testid=message][data-kind=work][data-from=browser]').first();
  await hashing.locator('text.label').click();
  const inspector = page.getByTestId('inspector');
  await expect(inspector).toContainText('browser → browser inside the process: nothing on the wire');
  const sha = (await inspector.getByTestId('anatomy').first().textContent()).match(/[0-9a-f]{64}/)[0];
  const expected = require('crypto').createHash('sha256').update(body).digest('hex');
  expect(sha).toBe(expected);
});
