/**
 * Opens the PostgreSQL pool (`DATABASE_URL`) and migrates it forward under an advisory lock.
 *
 * TLS comes from the URL as libpq spells it: `?sslmode=require` (encrypt), `verify-ca` /
 * `verify-full` (check the server against `sslrootcert=/path/ca.pem`), `sslcert`/`sslkey` for a
 * client certificate. The password (in the URL or `PGPASSWORD`) is never printed: `redactUrl`
 * is what configuration lines and error messages show.
 */
import pg from 'pg';
import { ReceiverError } from '../errors';
import { redactUrl } from './url';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from './schema-postgres';

/** A constant key for `pg_advisory_lock`: "ccflux" in ASCII. */
const MIGRATION_LOCK_KEY = 0x636366_6c7578;
export const DEFAULT_POOL_MAX = 10;

// int8 (count(*), BIGINT columns, SUM over INTEGER) and numeric (SUM over BIGINT) as JS numbers:
// token counts stay far below 2^53, and the same code then reads both backends.
const INT8 = 20;
const NUMERIC = 1700;
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 || oid === NUMERIC) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export function createPool(url: string, options: { max?: number } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? DEFAULT_POOL_MAX,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    types,
    application_name: 'ccflux-receiver',
  });
  // An idle client losing its connection (server restart) must not crash the process: the pool
  // drops it and the next query opens a new one.
  pool.on('error', () => {});
  return pool;
}

/** Schema version of the database; 0 when it has no ccflux tables yet. */
export async function schemaVersion(client: pg.ClientBase): Promise<number> {
  const exists = await client.query("SELECT to_regclass('ccflux_schema') IS NOT NULL AS present");
  if (exists.rows[0]?.present !== true) return 0;
  const row = await client.query('SELECT max(version) AS v FROM ccflux_schema');
  return Number(row.rows[0]?.v ?? 0);
}

/**
 * Applies every migration past the database's version, each in its own transaction, holding a
 * session advisory lock so that instances starting at once migrate one after the other (the
 * later ones find nothing to do). Returns the versions applied.
 */
export async function migratePostgres(pool: pg.Pool, url: string): Promise<number[]> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new ReceiverError('database', `cannot connect to ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const current = await schemaVersion(client);
      // Created only when missing: a runtime role without CREATE can start on a migrated database.
      if (current === 0) await client.query('CREATE TABLE IF NOT EXISTS ccflux_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
      if (current > PG_SCHEMA_VERSION) {
        throw new ReceiverError(
          'database',
          `database schema version ${current} is newer than this receiver's (${PG_SCHEMA_VERSION}); upgrade ccflux-receiver`,
        );
      }
      for (let version = current + 1; version <= PG_SCHEMA_VERSION; version++) {
        await client.query('BEGIN');
        try {
          await client.query(PG_MIGRATIONS[version - 1]!);
          await client.query('INSERT INTO ccflux_schema (version, applied_at) VALUES ($1, $2)', [version, new Date().toISOString()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new ReceiverError('database', `migration ${version} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(version);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } catch (err) {
    if (err instanceof ReceiverError) throw err;
    throw new ReceiverError('database', `cannot migrate ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  } finally {
    client.release();
  }
  return applied;
}
