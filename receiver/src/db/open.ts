/**
 * Opens the receiver's SQLite file: created 0600 on first start, WAL, foreign keys on, and migrated
 * forward to the newest schema version.
 */
import { closeSync, constants, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ReceiverError } from '../errors';
import { importRustDatabase, isRustDatabase } from './rust-import';
import { MIGRATIONS, SCHEMA_VERSION } from './schema';

export type Db = Database.Database;

/** A writer waits this long for another writer (the CLI while `serve` runs) before failing. */
const BUSY_TIMEOUT_MILLIS = 5_000;

export interface OpenOptions {
  readonly?: boolean;
  /** One line for the operator (a Rust database taken over); default: stderr. */
  notice?: (message: string) => void;
  now?: () => Date;
}

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  if (!options.readonly && path !== ':memory:') createPrivateFile(path);
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
  } catch (err) {
    throw new ReceiverError('database', `cannot open database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MILLIS}`);
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      // WAL with synchronous=NORMAL is durable across application crashes, and loses at most the
      // last transactions on power loss; the device re-sends anything not acknowledged.
      db.pragma('synchronous = NORMAL');
      if (path !== ':memory:' && isRustDatabase(db)) {
        const r = importRustDatabase(db, path, (options.now ?? (() => new Date()))());
        const notice = options.notice ?? ((m: string) => process.stderr.write(`${m}\n`));
        notice(
          `took over a Rust ccflux receiver database: ${r.users} user(s), ${r.tokens} refresh token(s) (now hashed), ` +
            `${r.keys} device key(s), ${r.events} usage row(s); backup at ${r.backupPath}`,
        );
      }
      migrate(db);
    }
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db.close();
    if (err instanceof ReceiverError) throw err;
    throw new ReceiverError('database', `cannot use database ${path}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}

/** The database holds usage data: create it owner-only from the first byte (SQLite's -wal and
 * -shm files take the same mode). An existing file is left as it is. */
function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new ReceiverError('database', `cannot create database ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs every migration past the file's `user_version`, each in its own transaction. */
export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new ReceiverError(
      'database',
      `database schema version ${current} is newer than this receiver's (${SCHEMA_VERSION}); upgrade ccflux-receiver`,
    );
  }
  for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
    const sql = MIGRATIONS[version - 1]!;
    db.transaction(() => {
      db.exec(sql);
      // user_version takes no bound parameter; `version` is a loop integer, never input.
      db.pragma(`user_version = ${version}`);
    }).immediate();
  }
}
