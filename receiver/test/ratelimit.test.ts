/**
 * The shared rate-limit counter (`Store.limitHit` / `limitCheck`): fixed windows in the database,
 * the previous window weighted by how much of it the sliding window still covers.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/open';
import { SqliteStore, type Store } from '../src/store';
import { Clock, tempDir } from './support';

describe('shared rate limit (SQLite)', () => {
  let dir: ReturnType<typeof tempDir>;
  let clock: Clock;
  let store: Store;
  beforeEach(() => {
    dir = tempDir();
    clock = new Clock(Date.parse('2026-05-11T03:00:00.000Z'));
    store = new SqliteStore(openDatabase(join(dir.dir, 'ccflux.db')), clock.now);
  });
  afterEach(async () => {
    await store.close();
    dir.cleanup();
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

  it('purges windows nobody can consult any more', async () => {
    for (let i = 0; i < 50; i++) await hit(`k${i}`, 1);
    const db = (store as SqliteStore).db;
    expect((db.prepare('SELECT count(*) AS n FROM limit_windows').get() as { n: number }).n).toBe(50);
    clock.advance(180_000);
    await store.purgeExpiredAccessTokens();
    expect((db.prepare('SELECT count(*) AS n FROM limit_windows').get() as { n: number }).n).toBe(0);
  });
});
