/**
 * Issue 16 hardening: the admin login limiter has a per-address and an overall budget, groups
 * IPv6 by /64, and behind a proxy named by TRUST_PROXY counts the client that proxy saw (so one
 * user's wrong guesses, or a device pointed at the dashboard, no longer lock every admin out).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { addressGroup, clientAddress, parseTrustProxy } from '../../src/client-address';
import { parseConfig } from '../../src/config';
import { postFrom } from '../admin/harness';
import { openDatabase } from '../../src/db/open';
import { createReceiver } from '../../src/server';
import { PostgresStore, SqliteStore, type Store } from '../../src/store';
import { ON_POSTGRES, sqlRows, startInProcess, type TestReceiver } from '../support';

const ADMIN_TOKEN = 'e'.repeat(32);
let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const login = (from: string, token: string, headers: Record<string, string> = {}) =>
  postFrom(t!.url, from, '/admin/login', { token }, headers).then((a) => a.status);

describe('address helpers', () => {
  it('groups IPv6 by /64 and keeps IPv4 whole', () => {
    expect(addressGroup('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
    expect(addressGroup('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(addressGroup('10.0.0.7')).toBe('10.0.0.7');
  });

  it('takes X-Forwarded-For only from a trusted proxy, and only its last entry', () => {
    const req = (remote: string, xff?: string) =>
      ({ socket: { remoteAddress: remote }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as never;
    expect(clientAddress(req('127.0.0.1', '10.9.9.9'), [])).toBe('127.0.0.1');
    expect(clientAddress(req('127.0.0.1', '6.6.6.6, 10.0.0.1'), ['127.0.0.1'])).toBe('10.0.0.1');
    expect(clientAddress(req('::ffff:127.0.0.1', '10.0.0.1'), ['127.0.0.1'])).toBe('10.0.0.1');
    expect(clientAddress(req('127.0.0.1', 'not-an-ip'), ['127.0.0.1'])).toBe('127.0.0.1');
    expect(clientAddress(req('10.0.0.9', '10.0.0.1'), ['127.0.0.1'])).toBe('10.0.0.9');
  });

  it('TRUST_PROXY is off by default and must name IP addresses', () => {
    expect(parseTrustProxy(undefined)).toEqual([]);
    expect(parseTrustProxy('127.0.0.1, ::1')).toEqual(['127.0.0.1', '::1']);
    expect(parseTrustProxy('nginx')).toBeNull();
    const bad = parseConfig({ TRUST_PROXY: 'proxy.local' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.join('\n')).toContain('TRUST_PROXY');
    const off = parseConfig({});
    expect(off.ok && off.config.trustProxy).toEqual([]);
  });
});

describe('login limiter', () => {
  it('has an overall budget: 40 addresses guessing 5 times each get 429 long before 200 guesses', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    const statuses: number[] = [];
    for (let guess = 0; guess < 5; guess++) {
      for (let a = 1; a <= 40; a++) statuses.push(await login(`127.0.1.${a}`, `wrong-${a}-${guess}`));
    }
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(50);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(150);
  });

  it('behind a trusted proxy, one client guessing wrong does not lock out another', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN, TRUST_PROXY: '127.0.0.1' } });
    for (let i = 0; i < 5; i++) expect(await login('127.0.0.1', 'wrong', { 'x-forwarded-for': '10.0.0.1' })).toBe(401);
    expect(await login('127.0.0.1', ADMIN_TOKEN, { 'x-forwarded-for': '10.0.0.1' })).toBe(429);
    expect(await login('127.0.0.1', ADMIN_TOKEN, { 'x-forwarded-for': '10.0.0.2' })).toBe(303);
  });

  it('without TRUST_PROXY a forged X-Forwarded-For buys no fresh budget', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    for (let i = 0; i < 5; i++) expect(await login('127.0.0.1', 'wrong', { 'x-forwarded-for': `10.0.0.${i}` })).toBe(401);
    expect(await login('127.0.0.1', 'wrong', { 'x-forwarded-for': '10.0.0.99' })).toBe(429);
  });

  it('counts an IPv6 /64 as one address', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN, TRUST_PROXY: '127.0.0.1' } });
    for (let i = 0; i < 5; i++) expect(await login('127.0.0.1', 'wrong', { 'x-forwarded-for': `2001:db8:1:2::${i + 1}` })).toBe(401);
    expect(await login('127.0.0.1', ADMIN_TOKEN, { 'x-forwarded-for': '2001:db8:1:2:ffff::9' })).toBe(429);
    expect(await login('127.0.0.1', ADMIN_TOKEN, { 'x-forwarded-for': '2001:db8:1:3::1' })).toBe(303);
  });

  it('two instances on one database spend one budget (the counters are rows in limit_windows)', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    // A second receiver over the same database, as behind a load balancer.
    const store: Store = ON_POSTGRES
      ? await PostgresStore.open(t.dbPath, t.clock.now, { poolMax: 2 })
      : new SqliteStore(openDatabase(t.dbPath, { notice: () => {} }), t.clock.now);
    const second = createReceiver({ config: t.config, store, now: t.clock.now });
    const { port } = await second.listen();
    const other = `http://127.0.0.1:${port}`;
    try {
      const at = (url: string, token: string) => postFrom(url, '127.0.0.7', '/admin/login', { token }).then((a) => a.status);
      for (let i = 0; i < 3; i++) expect(await at(t.url, `wrong-a${i}`)).toBe(401);
      for (let i = 0; i < 2; i++) expect(await at(other, `wrong-b${i}`)).toBe(401);
      // 5 failures in all: the address is refused on both, even with the right token.
      expect(await at(t.url, ADMIN_TOKEN)).toBe(429);
      expect(await at(other, ADMIN_TOKEN)).toBe(429);
      // Another address still gets in through either.
      expect(await postFrom(other, '127.0.0.8', '/admin/login', { token: ADMIN_TOKEN }).then((a) => a.status)).toBe(303);
      const rows = await sqlRows(t.store, "SELECT key, count FROM limit_windows WHERE key LIKE 'login:%' ORDER BY key");
      expect(rows.map((r) => [r.key, Number(r.count)])).toEqual([['login:*', 5], ['login:127.0.0.7', 5]]);
      // The window passes for both instances at once.
      t.clock.advance(2 * 15 * 60 * 1000);
      expect(await at(other, ADMIN_TOKEN)).toBe(303);
    } finally {
      await second.close();
      await store.close();
    }
  });
});
