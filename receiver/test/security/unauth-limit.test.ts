/**
 * Issue 16: requests without a valid token have a rate limit of their own, per client address (in
 * the database, so every instance spends one budget): past UNAUTH_RATE_LIMIT_PER_MINUTE failures
 * a minute the answer is 429 with Retry-After instead of 401. Valid tokens are never held back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/open';
import { createReceiver } from '../../src/server';
import { PostgresStore, SqliteStore, type Store } from '../../src/store';
import { postFrom } from '../admin/harness';
import { bearer, makeReport, ON_POSTGRES, provision, send, startInProcess, type TestReceiver } from '../support';

let t: TestReceiver | undefined;
const extra: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of extra.splice(0)) await close();
  await t?.close();
  t = undefined;
});

const badToken = (url: string, from: string) => postFrom(url, from, '/token', {}, bearer('ccflux_rt_not-a-real-token'));

describe('rate limit for unauthenticated requests', () => {
  it('answers 429 past the budget for that address only, across instances, and lets valid tokens through', async () => {
    t = await startInProcess({ env: { UNAUTH_RATE_LIMIT_PER_MINUTE: '3' } });
    const { accessToken } = await provision(t, 'dev@example.org');
    for (let i = 0; i < 3; i++) expect((await badToken(t.url, '127.0.0.1')).status).toBe(401);
    const limited = await badToken(t.url, '127.0.0.1');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // A report with no token at all counts against the same budget.
    expect((await send(`${t.url}/report`, { body: JSON.stringify(makeReport()) })).status).toBe(429);
    expect(t.receiver.metrics.get('ccflux_unauthenticated_limited_total')).toBe(2);

    // The valid device on that address is not held back.
    expect((await send(`${t.url}/report`, { headers: bearer(accessToken), body: JSON.stringify(makeReport()) })).status).toBe(200);
    // Another address has its own budget.
    expect((await badToken(t.url, '127.0.0.2')).status).toBe(401);

    // A second instance on the same database refuses the first address too.
    const store: Store = ON_POSTGRES
      ? await PostgresStore.open(t.dbPath, t.clock.now, { poolMax: 2 })
      : new SqliteStore(openDatabase(t.dbPath, { notice: () => {} }), t.clock.now);
    extra.push(() => store.close());
    const second = createReceiver({ config: t.config, store, now: t.clock.now });
    extra.unshift(() => second.close());
    const { port } = await second.listen();
    expect((await badToken(`http://127.0.0.1:${port}`, '127.0.0.1')).status).toBe(429);

    // The window passes.
    t.clock.advance(2 * 60 * 1000);
    expect((await badToken(t.url, '127.0.0.1')).status).toBe(401);
  });
});
