/**
 * The shared rate-limit counter (`Store.limitHit` / `limitCheck`): fixed windows in the database,
 * the previous window weighted by how much of it the sliding window still covers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limitCap, type Store } from '../src/store';
import { BACKEND, Clock, freshStore, sqlRows } from './support';

describe(`shared rate limit (${BACKEND})`, () => {
  let fresh: Awaited<ReturnType<typeof freshStore>>;
  let clock: Clock;
  let store: Store;
  beforeEach(async () => {
    clock = new Clock(Date.parse('2026-05-11T03:00:00.000Z'));
    fresh = await freshStore(BACKEND, clock.now);
    store = fresh.store;
  });
  afterEach(async () => {
    await fresh.dispose();
  });

  const hit = async (key: string, limit: number) => (await store.limitHit(key, limit, 60)).allowed;

  it('allows the limit per window, then refuses with Retry-After', async () => {
    expect([await hit('a', 3), await hit('a', 3), await hit('a', 3)]).toEqual([true, true, true]);
    const refused = await store.limitHit('a', 3, 60);
    expect(refused).toEqual({ allowed: false, retryAfterSecs: 60 });
    // Another key has its own budget.
    expect(await hit('b', 3)).toBe(true);
  });

  it('slides: the previous window weighs less as time passes', async () => {
    for (let i = 0; i < 4; i++) expect(await hit('a', 4)).toBe(true);
    clock.advance(60_000); // new window: previous count 4 weighs fully
    expect(await hit('a', 4)).toBe(false);
    clock.advance(30_000); // half way: 4 * 0.5 = 2 → two more allowed
    expect(await hit('a', 4)).toBe(true);
    expect(await hit('a', 4)).toBe(true);
    expect(await hit('a', 4)).toBe(false);
    clock.advance(120_000); // two windows later: everything forgotten
    for (let i = 0; i < 4; i++) expect(await hit('a', 4)).toBe(true);
  });

  it('does not count refused requests; limitCheck counts nothing', async () => {
    expect(await hit('a', 1)).toBe(true);
    for (let i = 0; i < 20; i++) expect(await hit('a', 1)).toBe(false);
    expect((await store.limitCheck('a', 1, 60)).allowed).toBe(false);
    expect((await store.limitCheck('b', 1, 60)).allowed).toBe(true);
    expect((await store.limitCheck('b', 1, 60)).allowed).toBe(true);
    clock.advance(120_000);
    expect(await hit('a', 1)).toBe(true);
  });

  it('counts exactly under concurrent hits (one budget for every caller)', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, () => store.limitHit('shared', 25, 60)));
    expect(results.filter((r) => r.allowed)).toHaveLength(25);
  });

  it('lets through exactly what limitCap allows at any point of the window, however the count is done', async () => {
    // 3:00:00 starts a window; 7 of limit 9 used in it, then the next window at fractions of its minute.
    for (const [i, elapsed] of [0.02, 0.1, 0.25, 1 / 3, 0.5, 0.61, 0.77, 0.9, 0.999].entries()) {
      clock.ms = Date.parse('2026-05-11T03:00:00.000Z') + i * 180_000;
      for (let n = 0; n < 7; n++) expect(await hit(`f${i}`, 9)).toBe(true);
      clock.ms += 60_000 + Math.round(elapsed * 60_000);
      let allowed = 0;
      while (await hit(`f${i}`, 9)) allowed++;
      const f = (clock.ms % 60_000) / 60_000;
      expect([elapsed, allowed]).toEqual([elapsed, Math.max(0, limitCap(9, 7, f))]);
    }
  });

  it('purges windows nobody can consult any more', async () => {
    for (let i = 0; i < 50; i++) await hit(`k${i}`, 1);
    const count = async () => (await sqlRows(store, 'SELECT count(*) AS n FROM limit_windows'))[0]!.n;
    expect(await count()).toBe(50);
    clock.advance(180_000);
    await store.purgeExpiredAccessTokens();
    expect(await count()).toBe(0);
  });
});
