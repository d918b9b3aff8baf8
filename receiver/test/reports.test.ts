/**
 * `POST /reports`: a batch of signed reports, each with its own signature and idempotency key,
 * answered per report; the batch costs `batchRateUnits(n)` of the per-token rate limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH, batchRateUnits, type BatchItem, parseBatchAnswer } from '../../src/protocol/wire';
import { bearer, type Device, makeDevice, makeReport, provision, registerKey, send, startInProcess, type TestReceiver, usageRows } from './support';

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

function item(device: Device | null, at: Date, turn: number, overrides: Record<string, unknown> = {}): BatchItem {
  const body = JSON.stringify(makeReport({ turn_index: turn, ...overrides }));
  if (!device) return { body };
  const headers = device.sign(body, at);
  return { body, timestamp: headers['x-ccflux-timestamp'] as string, signature: headers['x-ccflux-signature'] as string };
}

function postBatch(rx: TestReceiver, access: string, items: BatchItem[] | unknown) {
  return send(`${rx.url}/reports`, { headers: { ...bearer(access), 'content-type': 'application/json' }, body: JSON.stringify({ reports: items }) });
}

describe('POST /reports', () => {
  it('stores every report of a batch, answers per report, and is idempotent per report', async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '1000', REQUIRE_SIGNATURES: '1' } });
    const { accessToken } = await provision(t, 'ana@example.org');
    const device = makeDevice();
    expect((await registerKey(t, accessToken, device)).status).toBe(200);
    const now = t.clock.now();
    const items = [item(device, now, 0), item(device, now, 1), item(null, now, 2), item(device, now, 3, { models: 'nope' })];
    // A report whose signature belongs to another body is refused on its own.
    items.push({ ...item(device, now, 4), body: JSON.stringify(makeReport({ turn_index: 5 })) });
    const answer = await postBatch(t, accessToken, items);
    expect(answer.status).toBe(200);
    const results = parseBatchAnswer(answer.json, items.length);
    expect(results?.map((r) => r.status)).toEqual([200, 200, 403, 400, 403]);
    expect(results?.[2]).toEqual({ status: 403, error: 'signature-required' });
    expect(results?.[4]).toEqual({ status: 403, error: 'signature-invalid' });
    expect((await (await usageRows(t))).map((r) => r.turn_index)).toEqual([0, 1]);
    // Sent again: answered 200 each, nothing stored twice.
    const again = parseBatchAnswer((await postBatch(t, accessToken, items.slice(0, 2))).json, 2);
    expect(again).toEqual([{ status: 200, stored: 0 }, { status: 200, stored: 0 }]);
    expect((await (await usageRows(t)))).toHaveLength(2);
  });

  it('a batch counts batchRateUnits(n) against the per-token limit', async () => {
    expect([1, 50, 51, 100].map(batchRateUnits)).toEqual([1, 1, 2, 2]);
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '5' } });
    const { accessToken } = await provision(t, 'ben@example.org'); // 1 unit
    const now = t.clock.now();
    const batch = (from: number) => Array.from({ length: BATCH.maxReports }, (_, i) => item(null, now, from + i));
    expect((await postBatch(t, accessToken, batch(0))).status).toBe(200); // 2 units → 3
    expect((await postBatch(t, accessToken, batch(100))).status).toBe(200); // 2 units → 5
    const refused = await postBatch(t, accessToken, batch(200));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(new Set((await (await usageRows(t))).map((r) => r.turn_index)).size).toBe(200);
  });

  it('refuses a malformed or oversized batch as a whole, and an unknown token with 401', async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
    const { accessToken } = await provision(t, 'cy@example.org');
    expect((await postBatch(t, accessToken, [])).status).toBe(400);
    expect((await postBatch(t, accessToken, [{ body: 7 }])).status).toBe(400);
    const tooMany = Array.from({ length: BATCH.maxReports + 1 }, (_, i) => item(null, t!.clock.now(), i));
    expect((await postBatch(t, accessToken, tooMany)).status).toBe(400);
    expect((await postBatch(t, 'nope', [item(null, t.clock.now(), 0)])).status).toBe(401);
    const huge = [{ body: 'x'.repeat(70 * 1024) }];
    const answer = await postBatch(t, accessToken, huge);
    expect(parseBatchAnswer(answer.json, 1)?.[0]?.status).toBe(413);
    expect((await (await usageRows(t)))).toHaveLength(0);
  });
});
