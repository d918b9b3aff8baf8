/**
 * A dashboard load sends its statements at once (on PostgreSQL they run on several pooled
 * connections) and shows exactly what the same statements give when they run one at a time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseFilter } from '../src/admin/filters';
import { createPool, DEFAULT_POOL_MAX } from '../src/db/postgres';
import { createQueries, type SqlReader } from '../src/admin/queries';
import { PostgresStore, type SqliteStore } from '../src/store';
import { pgReader, VIEW_STATEMENTS, viewSlots } from '../src/store/pg-dialect';
import { inlineReader } from '../src/store/sqlite-reader';
import { BACKEND, Clock, freshStore, makeReport, ON_POSTGRES } from './support';

const MODELS = ['claude-sonnet-4-6', 'claude-opus-4-6', 'claude-haiku-4-5-20251001'];

describe(`dashboard reads (${BACKEND})`, () => {
  const disposers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('go out together and show what the same reads give one at a time', async () => {
    const clock = new Clock(Date.parse('2026-05-20T12:00:00Z'));
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const store = fresh.store;
    for (const [u, email] of ['ana@example.org', 'ben@example.org', 'cy@example.org'].entries()) {
      const { refreshToken } = await store.createUser(email, { division: u === 2 ? 'Ops' : 'Research' });
      const auth = (await store.authenticateRefreshToken(refreshToken))!;
      // Twelve days of turns, so that 24 h and 7 d read hours and 30 d and 90 d running sums.
      for (let turn = 0; turn < 24; turn++) {
        const at = new Date(Date.parse('2026-05-08T09:00:00Z') + turn * 12 * 3600_000 + u * 600_000).toISOString().replace('.000', '');
        const models = Object.fromEntries(
          MODELS.slice(0, 1 + ((turn + u) % 3)).map((m, i) => [m, { input_tokens: 100 * (turn + 1) + i, output_tokens: 10 * u + i, cache_read_tokens: 1000 + turn, cache_write_tokens: 50 * i }]),
        );
        await store.insertReport(auth, makeReport({ session_id: `s-${u}-${Math.floor(turn / 5)}`, turn_index: turn, timestamp_utc: at, models }), { deviceId: 'd', signed: false });
      }
    }
    const base: SqlReader = store instanceof PostgresStore ? pgReader(store.pool) : inlineReader((store as SqliteStore).db);
    const dialect = base.dialect === undefined ? {} : { dialect: base.dialect };
    let inFlight = 0;
    let peak = 0;
    const counting: SqlReader = {
      ...dialect,
      async all(sql, params) {
        peak = Math.max(peak, ++inFlight);
        try {
          return await base.all(sql, params);
        } finally {
          inFlight--;
        }
      },
    };
    let queue: Promise<unknown> = Promise.resolve();
    const oneAtATime: SqlReader = {
      ...dialect,
      all(sql, params) {
        const next = queue.then(() => base.all(sql, params));
        queue = next.catch(() => {});
        return next;
      },
    };
    const now = clock.now();
    for (const qs of ['range=24h', 'range=7d', '', 'range=90d', 'range=30d&user=ben@example.org', 'range=30d&division=Ops&model=claude-opus-4-6']) {
      const filter = parseFilter(new URLSearchParams(qs), now.getTime());
      const together = await createQueries(counting).load(now, filter);
      expect(together.summary.turns, qs).toBeGreaterThan(0);
      expect(together, qs).toEqual(await createQueries(oneAtATime).load(now, filter));
    }
    // Without the reads going out together, one would be in flight at a time.
    expect(peak).toBeGreaterThan(5);
  });

  it.skipIf(!ON_POSTGRES)('leave half the pool to /health and ingest while a page reads', async () => {
    const fresh = await freshStore(BACKEND, new Clock().now);
    disposers.push(() => fresh.dispose());
    const store = fresh.store as PostgresStore;
    const reader = pgReader(store.pool, viewSlots(store.pool.options.max));
    let finished = 0;
    const reads = Array.from({ length: 4 }, () => reader.all('SELECT pg_sleep(1) AS slept').then(() => finished++));
    // With every connection taken by the reads, the ping would wait for the first of them.
    await new Promise((resolve) => setImmediate(resolve)); // the reads have asked the pool
    await store.ping();
    expect(finished).toBe(0);
    await Promise.all(reads);
    expect(finished).toBe(4);
  });

  it.skipIf(!ON_POSTGRES)('run at most VIEW_STATEMENTS at once however large the pool', async () => {
    const fresh = await freshStore(BACKEND, new Clock().now);
    disposers.push(() => fresh.dispose());
    const store = fresh.store as PostgresStore;
    // The receiver's default pool (the test stores' is smaller).
    const pool = createPool(String(store.pool.options.connectionString));
    disposers.push(() => pool.end());
    expect(pool.options.max).toBe(DEFAULT_POOL_MAX);
    expect(viewSlots(pool.options.max)).toBe(VIEW_STATEMENTS);
    expect(viewSlots(2)).toBe(1);
    const reader = pgReader(pool, viewSlots(pool.options.max));
    // A page's worth of statements at once; the database itself says how many run together.
    const reads = Array.from({ length: 8 }, () => reader.all("SELECT pg_sleep(0.3) AS slept, 'view-slot-probe' AS tag"));
    let peak = 0;
    let settled = false;
    const all = Promise.all(reads).finally(() => {
      settled = true;
    });
    while (!settled) {
      const { rows } = await store.pool.query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%view-slot-probe%' AND pid <> pg_backend_pid()",
      );
      peak = Math.max(peak, Number(rows[0]?.n));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await all;
    expect(peak).toBe(VIEW_STATEMENTS);
  });
});
