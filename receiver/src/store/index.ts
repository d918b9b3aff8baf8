/** The store: one interface (`types.ts`), a SQLite and a PostgreSQL backend; `openStore` picks one. */
import type { ReceiverConfig } from '../config';
import { openDatabase } from '../db/open';
import { SqliteStore } from './sqlite';
import type { Store, StoreOptions } from './types';

export * from './rules';
export * from './types';
export { SqliteStore } from './sqlite';

/** Opens (creating and migrating) the configured database. */
export async function openStore(
  config: Pick<ReceiverConfig, 'databasePath' | 'accessTokenExpirySecs' | 'refreshTokenRollingDays'>,
  now: () => Date,
): Promise<Store> {
  const options: StoreOptions = {
    accessTokenExpirySecs: config.accessTokenExpirySecs,
    refreshTokenRollingDays: config.refreshTokenRollingDays,
  };
  return new SqliteStore(openDatabase(config.databasePath), now, options);
}
