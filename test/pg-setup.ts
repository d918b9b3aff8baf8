/**
 * vitest globalSetup: one real PostgreSQL server for the whole run (test/helpers/postgres.ts),
 * its admin URL in CCFLUX_TEST_PG_URL for the workers. Without the binaries, nothing starts and
 * the PostgreSQL variants of the tests skip with the reason.
 */
import { postgresAvailable, startPostgres } from './helpers/postgres';

export default async function setup(): Promise<() => Promise<void>> {
  if (process.env.CCFLUX_TEST_PG_URL !== undefined || !postgresAvailable()) return async () => {};
  const server = await startPostgres();
  process.env.CCFLUX_TEST_PG_URL = server.adminUrl;
  return () => server.stop();
}
