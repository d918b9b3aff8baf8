/** Issue 16 hardening: JSON endpoints take `Content-Type: application/json` only (415 otherwise). */
import { afterEach, describe, expect, it } from 'vitest';
import { bearer, makeDevice, makeReport, provision, send, startInProcess, type TestReceiver, usageRows } from '../support';

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('Content-Type on JSON endpoints', () => {
  it.each(['', 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data; boundary=x'])(
    '/report and /register-key answer 415 to %j, store nothing',
    async (contentType) => {
      t = await startInProcess();
      const { accessToken } = await provision(t, 'ana@example.org');
      const headers = { ...bearer(accessToken), 'content-type': contentType };
      const report = await send(`${t.url}/report`, { headers, body: JSON.stringify(makeReport()) });
      expect(report.status).toBe(415);
      expect(report.json).toEqual({ error: 'Content-Type must be application/json' });
      const key = await send(`${t.url}/register-key`, {
        headers,
        body: JSON.stringify({ public_key: makeDevice().publicKey, device_id: 'd' }),
      });
      expect(key.status).toBe(415);
      expect((await usageRows(t))).toEqual([]);
      expect(await t.store.listKeys()).toEqual([]);
    },
  );

  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON'])('accepts %j', async (contentType) => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'ana@example.org');
    const answer = await send(`${t.url}/report`, {
      headers: { ...bearer(accessToken), 'content-type': contentType },
      body: JSON.stringify(makeReport()),
    });
    expect(answer.status).toBe(200);
  });

  it('checks the token first: 401 before 415', async () => {
    t = await startInProcess();
    const answer = await send(`${t.url}/report`, { headers: { ...bearer('nope'), 'content-type': 'text/plain' }, body: '{}' });
    expect(answer.status).toBe(401);
  });
});
