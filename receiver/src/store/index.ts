/** The store: one interface (`types.ts`), a SQLite and a PostgreSQL backend; `openStore` picks one. */
import type { ReceiverConfig } from '../config';
import { openDatabase } from '../db/open';
import { PostgresStore } from './postgres';
import { SqliteStore } from './sqlite';
import type { Store, StoreOptions } from './types';

export * from './rules';
export * from './types';
export { PostgresStore } from './postgres';
export { SqliteStore } from './sqlite';

/** Opens (creating and migrating) the configured database: PostgreSQL when DATABASE_URL is set,
 * else the SQLite file at DATABASE_PATH. */
export async function openStore(
  config: Pick<ReceiverConfig, 'databasePath' | 'databaseUrl' | 'databasePoolMax' | 'accessTokenExpirySecs' | 'refreshTokenRollingDays'>,
  now: () => Date,
): Promise<Store> {
  const options: StoreOptions = {
    accessTokenExpirySecs: config.accessTokenExpirySecs,
    refreshTokenRollingDays: config.refreshTokenRollingDays,
  };
  if (config.databaseUrl !== undefined) {
    return PostgresStore.open(config.databaseUrl, now, { ...options, poolMax: config.databasePoolMax });
  }
  return new SqliteStore(openDatabase(config.databasePath), now, options);
}
