/**
 * Copies a SQLite receiver's data into an empty, migrated PostgreSQL database (`migrate --from
 * sqlite:… --to postgres://…`). Tables go parents first, ids kept (identities accept explicit
 * values and are moved past the copied maximum), in batches of one multi-row INSERT each, all in
 * one transaction: a failed copy leaves the target empty. Columns are those both sides have, so
 * a migration that both backends carry copies without a change here.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { LAST_RECEIVED_BACKFILL, ROLLUP_BACKFILL } from '../db/schema';
import { ReceiverError } from '../errors';

/** Parents before children (foreign keys). Derived tables (rollups) are rebuilt on the target, not copied. */
export const COPIED_TABLES = ['users', 'user_tokens', 'access_tokens', 'device_keys', 'usage_events'] as const;
const BATCH_ROWS = 500;

export async function copySqliteToPostgres(
  source: Database.Database,
  pool: pg.Pool,
  progress: (table: string, done: number, total: number) => void,
): Promise<Record<string, number>> {
  const client = await pool.connect();
  const counts: Record<string, number> = {};
  try {
    await client.query('BEGIN');
    const existing = await client.query('SELECT count(*) AS n FROM users');
    if (Number(existing.rows[0].n) > 0) {
      throw new ReceiverError('invalid', 'the target database already has users; copy only into an empty database');
    }
    for (const table of COPIED_TABLES) {
      const sourceColumns = (source.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
      const target = await client.query('SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()', [table]);
      const targetColumns = new Set(target.rows.map((r: { column_name: string }) => r.column_name));
      const columns = sourceColumns.filter((c) => targetColumns.has(c));
      const total = (source.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      // Identifiers come from the schemas (PRAGMA / information_schema), never from input.
      const select = source.prepare(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM ${table} ORDER BY rowid`).raw(true);
      let batch: unknown[][] = [];
      let done = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        const values: unknown[] = [];
        const tuples = batch.map((row) => `(${row.map((v) => `$${values.push(v)}`).join(', ')})`);
        await client.query(`INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${tuples.join(', ')}`, values);
        done += batch.length;
        batch = [];
        progress(table, done, total);
      };
      for (const row of select.iterate() as Iterable<unknown[]>) {
        batch.push(row);
        if (batch.length >= BATCH_ROWS) await flush();
      }
      await flush();
      if (targetColumns.has('id')) {
        await client.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`);
      }
      counts[table] = done;
    }
    // The rollups are derived: rebuilt from the copied rows with migrations 9 and 10's own backfills.
    await client.query(ROLLUP_BACKFILL);
    await client.query(LAST_RECEIVED_BACKFILL);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
  // A fresh copy has no planner statistics and an empty visibility map: until autovacuum came by,
  // the first views would plan blind and visit the heap on every index-only lookup.
  // Only this schema's tables (names from the catalog): the database may hold other schemas.
  const tables = await pool.query('SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename');
  await pool.query(`VACUUM (ANALYZE) ${tables.rows.map((r: { tablename: string }) => `"${r.tablename}"`).join(', ')}`);
  return counts;
}
