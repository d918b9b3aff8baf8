import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, postFrom, startAdmin } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('admin login rate limit', () => {
  it('blocks an address after maxLoginFailures failures, even with the right token, until the window passes', async () => {
    h = await startAdmin({ limits: { maxLoginFailures: 3, loginWindowMillis: 60_000 } });
    for (let i = 0; i < 3; i++) expect((await h.post('/admin/login', { token: `guess-${i}` })).status).toBe(401);
    const blocked = await h.post('/admin/login', { token: ADMIN_TOKEN });
    expect(blocked.status).toBe(429);
    expect(blocked.cookies).toEqual([]);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // Bearer guesses from the same address are refused too.
    expect((await h.get('/admin/', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(429);

    h.advance(60_001);
    expect((await h.post('/admin/login', { token: ADMIN_TOKEN })).status).toBe(303);
  });

  it('counts failed bearer attempts against the same limit', async () => {
    h = await startAdmin({ limits: { maxLoginFailures: 2 } });
    for (let i = 0; i < 2; i++) {
      expect((await h.get('/admin/', { headers: { authorization: `Bearer guess-${i}` } })).status).toBe(401);
    }
    expect((await h.post('/admin/login', { token: ADMIN_TOKEN })).status).toBe(429);
  });

  it('limits per client address: another address may still log in', async () => {
    h = await startAdmin({ limits: { maxLoginFailures: 2 } });
    for (let i = 0; i < 2; i++) expect((await postFrom(h.url, '127.0.0.1', '/admin/login', { token: 'wrong' })).status).toBe(401);
    expect((await postFrom(h.url, '127.0.0.1', '/admin/login', { token: ADMIN_TOKEN })).status).toBe(429);
    const other = await postFrom(h.url, '127.0.0.2', '/admin/login', { token: ADMIN_TOKEN });
    expect(other.status).toBe(303);
    expect(other.headers['set-cookie']).toHaveLength(1);
  });

  it('does not count successful logins', async () => {
    h = await startAdmin({ limits: { maxLoginFailures: 2 } });
    for (let i = 0; i < 5; i++) expect((await h.post('/admin/login', { token: ADMIN_TOKEN })).status).toBe(303);
  });
});
