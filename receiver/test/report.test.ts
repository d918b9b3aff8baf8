import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReportBody } from '../../src/protocol/wire';
import {
  bearer,
  makeDevice,
  makeReport,
  postReport,
  provision,
  registerKey,
  send,
  startInProcess,
  type TestReceiver,
  usageRows,
} from './support';

const MINUTE_MS = 60_000;

function errorCode(answer: { headers: Record<string, unknown> }): unknown {
  return answer.headers['x-ccflux-error'];
}

describe('POST /report', () => {
  let t: TestReceiver;
  let access: string;

  beforeEach(async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
    access = (await provision(t, 'ana@example.org')).accessToken;
  });
  afterEach(async () => {
    await t.close();
  });

  describe('storage', () => {
    it('accepts an unsigned report when signatures are not required, attributing it to the token', async () => {
      const answer = await postReport(t, access, makeReport());
      expect(answer.status).toBe(200);
      const [row] = (await (await usageRows(t)));
      const user = (await t.store.listUsers())[0]!;
      expect(row).toMatchObject({
        user_email: 'ana@example.org',
        reported_email: 'laptop-user@example.org',
        user_token: user.token_ref,
        device_id: '',
        signed: 0,
        model: 'claude-sonnet-4-6',
        input_tokens: 14200,
        output_tokens: 1800,
        cache_read_tokens: 9400,
        cache_write_tokens: 0,
        timestamp_utc: '2026-05-11T02:59:00Z',
        session_start_utc: '2026-05-11T02:30:00Z',
      });
    });

    it('stores one row per model and counts a retried report once', async () => {
      const report = makeReport({
        models: {
          'claude-sonnet-4-6': { input_tokens: 10, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
          'claude-haiku-4-5': { input_tokens: 20, output_tokens: 2, cache_read_tokens: 0, cache_write_tokens: 0 },
        },
      });
      expect((await postReport(t, access, report)).json).toEqual({ status: 'ok', stored: 2 });
      const retry = await postReport(t, access, report);
      expect(retry.status).toBe(200);
      expect(retry.json).toEqual({ status: 'ok', stored: 0 });
      expect((await (await usageRows(t)))).toHaveLength(2);
      expect(t.receiver.metrics.get('ccflux_reports_accepted_total')).toBe(2);
      expect(t.receiver.metrics.get('ccflux_reports_duplicate_total')).toBe(1);
    });

    it('schema_version 2: stores the cache-write split and web searches; absent means 0; NULL for version 1', async () => {
      const v2 = makeReport({
        schema_version: 2,
        turn_index: 0,
        models: {
          'claude-opus-5-5': {
            input_tokens: 4,
            output_tokens: 212,
            cache_read_tokens: 51_000,
            cache_write_tokens: 1_200,
            cache_write_5m_tokens: 300,
            cache_write_1h_tokens: 900,
            web_search_requests: 2,
          },
          'claude-haiku-5-5': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
        },
      });
      expect((await postReport(t, access, v2)).status).toBe(200);
      expect((await postReport(t, access, makeReport({ turn_index: 1 }))).status).toBe(200);
      const pick = (r: Record<string, unknown>) => [r.model, r.cache_write_5m_tokens, r.cache_write_1h_tokens, r.web_search_requests];
      expect((await usageRows(t)).map(pick).sort()).toEqual([
        ['claude-haiku-5-5', 0, 0, 0],
        ['claude-opus-5-5', 300, 900, 2],
        ['claude-sonnet-4-6', null, null, null],
      ]);
      const bad = makeReport({
        schema_version: 2,
        turn_index: 2,
        models: { m: { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, web_search_requests: -1 } },
      });
      expect((await postReport(t, access, bad)).status).toBe(400);
    });

    it('accepts a report with no models and stores nothing', async () => {
      const answer = await postReport(t, access, makeReport({ models: {} }));
      expect(answer.status).toBe(200);
      expect((await (await usageRows(t)))).toHaveLength(0);
    });
  });

  describe('signatures', () => {
    it('accepts a signed report from a registered key, records the device and last_seen_at', async () => {
      const device = makeDevice();
      expect((await registerKey(t, access, device, 'ana-laptop')).status).toBe(200);
      t.clock.advance(MINUTE_MS);
      const answer = await postReport(t, access, makeReport(), device);
      expect(answer.status).toBe(200);
      expect((await (await usageRows(t)))[0]).toMatchObject({ device_id: 'ana-laptop', signed: 1 });
      expect((await t.store.listKeys())[0]!.last_seen_at).toBe(t.clock.now().toISOString());
    });

    it('answers a replay of the same signed request within the window with 200, counting it once', async () => {
      const device = makeDevice();
      await registerKey(t, access, device);
      const body = JSON.stringify(makeReport());
      const headers = { ...bearer(access), 'content-type': 'application/json', ...device.sign(body, t.clock.now()) };
      const first = await send(`${t.url}/report`, { headers, body });
      t.clock.advance(4 * MINUTE_MS);
      const replay = await send(`${t.url}/report`, { headers, body });
      expect([first.status, replay.status]).toEqual([200, 200]);
      expect((await (await usageRows(t)))).toHaveLength(1);
      // Past the window, the same request is refused.
      t.clock.advance(2 * MINUTE_MS);
      const late = await send(`${t.url}/report`, { headers, body });
      expect(late.status).toBe(403);
      expect(errorCode(late)).toBe('timestamp-stale');
    });

    it('requires a signature when REQUIRE_SIGNATURES is on', async () => {
      await t.close();
      t = await startInProcess({ env: { REQUIRE_SIGNATURES: '1' } });
      access = (await provision(t, 'ana@example.org')).accessToken;
      const unsigned = await postReport(t, access, makeReport());
      expect(unsigned.status).toBe(403);
      expect(errorCode(unsigned)).toBe('signature-required');
      expect(unsigned.json).toEqual({ error: 'signature-required' });
      const device = makeDevice();
      await registerKey(t, access, device);
      expect((await postReport(t, access, makeReport(), device)).status).toBe(200);
      expect(t.receiver.metrics.get('ccflux_reports_sig_rejected_total')).toBe(1);
    });

    it('answers timestamp-missing without a timestamp header or with a malformed one', async () => {
      const device = makeDevice();
      await registerKey(t, access, device);
      const body = JSON.stringify(makeReport());
      const signed = device.sign(body, t.clock.now());
      const base = { ...bearer(access), 'x-ccflux-signature': signed['x-ccflux-signature']! };
      const missing = await send(`${t.url}/report`, { headers: base, body });
      expect(missing.status).toBe(403);
      expect(errorCode(missing)).toBe('timestamp-missing');
      const malformed = await send(`${t.url}/report`, { headers: { ...base, 'x-ccflux-timestamp': 'yesterday' }, body });
      expect(errorCode(malformed)).toBe('timestamp-missing');
    });

    it.each([
      ['5 minutes ahead', 5 * MINUTE_MS, 200],
      ['5 minutes behind', -5 * MINUTE_MS, 200],
      ['5 minutes 1 second ahead', 5 * MINUTE_MS + 1000, 403],
      ['5 minutes 1 second behind', -(5 * MINUTE_MS + 1000), 403],
    ])('timestamp %s → %i', async (_label, offsetMs, status) => {
      const device = makeDevice();
      await registerKey(t, access, device);
      const body = JSON.stringify(makeReport());
      const headers = { ...bearer(access), ...device.sign(body, new Date(t.clock.ms + offsetMs)) };
      const answer = await send(`${t.url}/report`, { headers, body });
      expect(answer.status).toBe(status);
      if (status === 403) expect(errorCode(answer)).toBe('timestamp-stale');
    });

    it('answers signature-invalid for a tampered body, a wrong signature or a malformed header', async () => {
      const device = makeDevice();
      await registerKey(t, access, device);
      const body = JSON.stringify(makeReport());
      const signed = device.sign(body, t.clock.now());
      const tampered = JSON.stringify(makeReport({ turn_index: 1 }));
      const a = await send(`${t.url}/report`, { headers: { ...bearer(access), ...signed }, body: tampered });
      expect(a.status).toBe(403);
      expect(errorCode(a)).toBe('signature-invalid');

      // Signed over a different timestamp than the one sent.
      const other = device.sign(body, new Date(t.clock.ms - 1000));
      const b = await send(`${t.url}/report`, {
        headers: { ...bearer(access), 'x-ccflux-timestamp': signed['x-ccflux-timestamp']!, 'x-ccflux-signature': other['x-ccflux-signature']! },
        body,
      });
      expect(errorCode(b)).toBe('signature-invalid');

      for (const header of ['', 'ed25519', `rsa ${signed['x-ccflux-signature']!.slice(8)}`, 'ed25519 AAAA AAAA']) {
        const c = await send(`${t.url}/report`, {
          headers: { ...bearer(access), 'x-ccflux-timestamp': signed['x-ccflux-timestamp']!, 'x-ccflux-signature': header },
          body,
        });
        expect(c.status).toBe(403);
        expect(errorCode(c)).toBe('signature-invalid');
      }
      expect((await (await usageRows(t)))).toHaveLength(0);
    });

    it('answers key-not-registered for an unknown key and for a key registered by another user', async () => {
      const unknown = makeDevice();
      const a = await postReport(t, access, makeReport(), unknown);
      expect(a.status).toBe(403);
      expect(errorCode(a)).toBe('key-not-registered');

      const bob = await provision(t, 'bob@example.org');
      const bobsDevice = makeDevice();
      expect((await registerKey(t, bob.accessToken, bobsDevice)).status).toBe(200);
      // Ana's token with Bob's correctly signed request: the key is not Ana's.
      const b = await postReport(t, access, makeReport(), bobsDevice);
      expect(b.status).toBe(403);
      expect(errorCode(b)).toBe('key-not-registered');
      expect((await postReport(t, bob.accessToken, makeReport(), bobsDevice)).status).toBe(200);
      expect((await (await usageRows(t))).map((r) => r.user_email)).toEqual(['bob@example.org']);
    });

    it('answers key-revoked once the key is revoked', async () => {
      const device = makeDevice();
      await registerKey(t, access, device);
      expect((await postReport(t, access, makeReport(), device)).status).toBe(200);
      await t.store.revokeKey(device.publicKey);
      const answer = await postReport(t, access, makeReport({ turn_index: 1 }), device);
      expect(answer.status).toBe(403);
      expect(errorCode(answer)).toBe('key-revoked');
      expect((await (await usageRows(t)))).toHaveLength(1);
    });
  });

  describe('authentication', () => {
    it.each([
      ['no Authorization header', {}],
      ['an unknown token', bearer(`ccf_at_${'A'.repeat(43)}`)],
      ['a malformed header', { authorization: 'Basic abc' }],
      ['garbage', bearer('x'.repeat(400))],
    ])('answers 401 for %s', async (_label, headers) => {
      const answer = await send(`${t.url}/report`, { headers, body: JSON.stringify(makeReport()) });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(t.receiver.metrics.get('ccflux_reports_auth_rejected_total')).toBe(1);
    });

    it('answers 401 for a refresh token, an expired access token, a revoked user, and after reissue', async () => {
      const bob = await provision(t, 'bob@example.org');
      expect((await postReport(t, bob.refreshToken, makeReport())).status).toBe(401);

      const carol = await provision(t, 'carol@example.org');
      await t.store.revokeUser('carol@example.org');
      expect((await postReport(t, carol.accessToken, makeReport())).status).toBe(401);

      const dave = await provision(t, 'dave@example.org');
      await t.store.reissueToken('dave@example.org');
      expect((await postReport(t, dave.accessToken, makeReport())).status).toBe(401);

      t.clock.advance(t.config.accessTokenExpirySecs * 1000);
      expect((await postReport(t, access, makeReport())).status).toBe(401);
    });
  });

  describe('check order', () => {
    const tooBig = (limit: number) => `{"pad":"${'x'.repeat(limit)}"}`;

    it('401 before 429 before 413 before 400 before 403', async () => {
      await t.close();
      t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '2', REQUIRE_SIGNATURES: 'true', BODY_LIMIT_KB: '1' } });
      const { refreshToken, accessToken } = await provision(t, 'ana@example.org'); // uses 1 of 2
      const big = tooBig(2048);

      // Bad token with an oversized body: 401.
      expect((await send(`${t.url}/report`, { headers: bearer('nope'), body: big })).status).toBe(401);
      // Invalid JSON with a signature from an unregistered key: 400 (no key lookup yet).
      const device = makeDevice();
      const bad = await send(`${t.url}/report`, {
        headers: { ...bearer(accessToken), ...device.sign('{', t.clock.now()) },
        body: '{',
      });
      expect(bad.status).toBe(400);
      // Budget spent: an oversized, unsigned body gets 429, not 413 or 403.
      const limited = await send(`${t.url}/report`, { headers: bearer(accessToken), body: big });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // /token shares the budget.
      expect((await send(`${t.url}/token`, { headers: bearer(refreshToken) })).status).toBe(429);

      t.clock.advance(3 * MINUTE_MS);
      // Oversized and not JSON: 413.
      expect((await send(`${t.url}/report`, { headers: bearer(accessToken), body: big })).status).toBe(413);
      // Valid shape, no signature, signatures required: 403.
      const unsigned = await postReport(t, accessToken, makeReport());
      expect(unsigned.status).toBe(403);
      expect(t.receiver.metrics.get('ccflux_reports_rate_limited_total')).toBe(2);
    });

    it('never reaches the key lookup for an invalid body (400 beats key-not-registered)', async () => {
      const device = makeDevice();
      const answer = await postReport(t, access, makeReport({ session_id: '' }), device);
      expect(answer.status).toBe(400);
    });
  });

  describe('body limit', () => {
    it('accepts a body of exactly BODY_LIMIT_KB and refuses one byte more (413)', async () => {
      const limit = t.config.bodyLimitBytes;
      const json = JSON.stringify(makeReport());
      const exact = json + ' '.repeat(limit - json.length);
      expect(Buffer.byteLength(exact)).toBe(limit);
      expect((await postReport(t, access, exact)).status).toBe(200);
      const over = `${exact} `;
      const answer = await postReport(t, access, over);
      expect(answer.status).toBe(413);
      expect(t.receiver.metrics.get('ccflux_reports_rejected_total')).toBe(1);
    });

    it('refuses a chunked body that grows past the limit while streaming', async () => {
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      const answer = await send(`${t.url}/report`, {
        headers: { ...bearer(access), 'transfer-encoding': 'chunked' },
        chunks: [Buffer.from('{'), chunk, chunk, chunk, chunk, chunk],
      });
      expect(answer.status).toBe(413);
    });

    it('refuses a declared Content-Length over the limit before reading the body', async () => {
      // Declares 10 MB, sends a few bytes, waits: the answer must come without the body.
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          `${t.url}/report`,
          { method: 'POST', headers: { ...bearer(access), 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) }, agent: false },
          (res) => {
            resolve(res.statusCode ?? 0);
            res.resume();
            req.destroy();
          },
        );
        req.on('error', reject);
        req.write('{"a":');
      });
      expect(status).toBe(413);
    });

    it('still answers the server after an early answer (connection state is clean)', async () => {
      const big = JSON.stringify({ pad: 'x'.repeat(200 * 1024) });
      expect((await postReport(t, access, big)).status).toBe(413);
      expect((await postReport(t, access, makeReport())).status).toBe(200);
    });
  });

  describe('field limits (security guide table)', () => {
    const ok = 200;
    const bad = 400;
    const models = (n: number) =>
      Object.fromEntries(
        Array.from({ length: n }, (_, i) => [
          `model-${i}`,
          { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
        ]),
      );
    const usage = { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 };
    const cases: [string, Partial<ReportBody>, number][] = [
      ['session_id of 1', { session_id: 's' }, ok],
      ['session_id of 64', { session_id: 's'.repeat(64) }, ok],
      ['session_id of 0', { session_id: '' }, bad],
      ['session_id of 65', { session_id: 's'.repeat(65) }, bad],
      ['timestamp_utc of 64 that is no time', { timestamp_utc: 't'.repeat(64) }, bad],
      ['timestamp_utc with offset and nanoseconds', { timestamp_utc: '2026-05-11T04:59:00.123456789+02:00' }, ok],
      ['timestamp_utc of 65', { timestamp_utc: 't'.repeat(65) }, bad],
      ['session_start_utc of 64', { session_start_utc: 't'.repeat(64) }, ok],
      ['session_start_utc of 65', { session_start_utc: 't'.repeat(65) }, bad],
      ['plugin_version of 64', { plugin_version: 'v'.repeat(64) }, ok],
      ['plugin_version of 65', { plugin_version: 'v'.repeat(65) }, bad],
      ['model name of 1', { models: { m: usage } }, ok],
      ['model name of 128', { models: { ['m'.repeat(128)]: usage } }, ok],
      ['model name of 0', { models: { '': usage } }, bad],
      ['model name of 129', { models: { ['m'.repeat(129)]: usage } }, bad],
      ['19 models', { models: models(19) }, ok],
      ['20 models', { models: models(20) }, ok],
      ['21 models', { models: models(21) }, bad],
      ['a negative count', { models: { m: { ...usage, input_tokens: -1 } } }, bad],
      ['a fractional count', { models: { m: { ...usage, output_tokens: 1.5 } } }, bad],
      ['a string count', { models: { m: { ...usage, output_tokens: '1' as unknown as number } } }, bad],
      ['a missing count', { models: { m: { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0 } as never } }, bad],
      ['a negative turn_index', { turn_index: -1 }, bad],
      ['schema_version 2 (later versions only add fields)', { schema_version: 2 }, ok],
      ['schema_version 0', { schema_version: 0 }, bad],
      ['a fractional schema_version', { schema_version: 1.5 }, bad],
    ];
    it.each(cases)('%s → %i', async (_label, overrides, status) => {
      const answer = await postReport(t, access, makeReport(overrides));
      expect(answer.status).toBe(status);
      if (status === bad) expect((await (await usageRows(t)))).toHaveLength(0);
    });

    it.each([
      ['not JSON', 'hello'],
      ['a JSON array', '[]'],
      ['a missing key', JSON.stringify({ ...makeReport(), timestamp_utc: undefined })],
      ['deep nesting', `${'['.repeat(20_000)}${']'.repeat(20_000)}`],
      ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1')],
      ['__proto__ key', '{"__proto__":{"x":1}}'],
      ['a lone surrogate in session_id', JSON.stringify(makeReport()).replace('"session_id":"', '"session_id":"\\ud800')],
    ])('answers 400 (never 5xx) for %s', async (_label, body) => {
      const answer = await postReport(t, access, body);
      expect(answer.status).toBe(400);
      expect((await (await usageRows(t)))).toHaveLength(0);
    });

    it('accepts well-formed non-ASCII text, surrogate pairs included', async () => {
      const answer = await postReport(t, access, makeReport({ session_id: 'sé-😀', plugin_version: 'β' }));
      expect(answer.status).toBe(200);
      expect((await (await usageRows(t)))[0]).toMatchObject({ session_id: 'sé-😀', plugin_version: 'β' });
    });
  });
});
