/**
 * Takes over a database the Rust receiver left (its `schema.sql`: `refresh_tokens`,
 * `access_tokens`, `device_keys`, `usage_events`, legacy `user_tokens`, `tier_hints`; no
 * `user_version`), in place:
 *
 *   1. a backup beside it, `<file>.rust-backup-<UTC time>` (0600, `VACUUM INTO`: a consistent copy
 *      even while the WAL holds pages);
 *   2. one transaction: the Rust tables are renamed aside, our migrations create the schema, and
 *      the rows are copied — users (one per email, lower-cased), refresh and access tokens as
 *      SHA-256 digests with a fresh non-secret `token_ref` each, device keys, every usage row with
 *      its id (`user_token`, which held the plaintext refresh token, becomes that token's ref).
 *      The Rust tables are dropped; `tier_hints` stays as it was;
 *   3. `secure_delete` while dropping, then VACUUM and a WAL checkpoint, so no plaintext token is
 *      left in free pages of the file.
 * Devices keep their configured refresh tokens and cached access tokens: the store accepts the
 * Rust token shapes for as long as `rust_import` says tokens were imported.
 *
 * Timestamps: Rust wrote SQLite `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339; ours are ISO strings.
 */
import { closeSync, constants, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { ReceiverError } from '../errors';
import { generateTokenRef, hashToken } from '../tokens';
import { LAST_RECEIVED_BACKFILL, MIGRATIONS, ROLLUP_BACKFILL } from './schema';

type Db = Database.Database;

/** Marker table written by the import: its presence lets the store accept Rust-shaped tokens. */
export const RUST_IMPORT_TABLE = 'rust_import';

/** The Rust tables, moved out of the way of ours (same names) before our migrations run. */
const RENAME_ASIDE: Record<string, string> = {
  refresh_tokens: 'ALTER TABLE refresh_tokens RENAME TO rust_refresh_tokens',
  access_tokens: 'ALTER TABLE access_tokens RENAME TO rust_access_tokens',
  device_keys: 'ALTER TABLE device_keys RENAME TO rust_device_keys',
  usage_events: 'ALTER TABLE usage_events RENAME TO rust_usage_events',
  // Legacy static tokens: never accepted by the Rust receiver; plaintext, so not carried over (the backup keeps them).
  user_tokens: 'ALTER TABLE user_tokens RENAME TO rust_user_tokens',
};
const DROP_RUST_TABLES = `
  DROP TABLE IF EXISTS rust_access_tokens; DROP TABLE IF EXISTS rust_refresh_tokens; DROP TABLE IF EXISTS rust_device_keys;
  DROP TABLE IF EXISTS rust_usage_events; DROP TABLE IF EXISTS rust_user_tokens;`;

export interface RustImportSummary {
  backupPath: string;
  users: number;
  tokens: number;
  accessTokens: number;
  keys: number;
  events: number;
}

function columnsOf(db: Db, table: string): Set<string> {
  return new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[]).map((c) => c.name));
}

/** True for a database in the Rust receiver's layout that we have not migrated (user_version 0). */
export function isRustDatabase(db: Db): boolean {
  if ((db.pragma('user_version', { simple: true }) as number) !== 0) return false;
  const refresh = columnsOf(db, 'refresh_tokens');
  return refresh.has('token') && refresh.has('email') && columnsOf(db, 'usage_events').has('user_token');
}

/** Rust text time (`2026-05-11 03:00:00`, UTC) or RFC 3339 → ISO; `fallback` when unparseable. */
export function isoFromRust(value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value === '') return fallback;
  const text = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value) ? `${value.replace(' ', 'T')}Z` : value;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : fallback;
}

function backupPathFor(path: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${path}.rust-backup-${stamp}`;
}

/** Writes the backup (owner-only from the first byte; VACUUM INTO fills the empty file). */
function writeBackup(db: Db, path: string, now: Date): string {
  const backup = backupPathFor(path, now);
  try {
    closeSync(openSync(backup, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch (err) {
    throw new ReceiverError('database', `cannot create backup ${backup}: ${(err as Error).message}`, { cause: err });
  }
  db.prepare('VACUUM INTO ?').run(backup);
  return backup;
}

/**
 * Imports a Rust receiver database in place (see the file comment). The caller checked
 * `isRustDatabase`; `path` is the database file, the backup goes beside it.
 */
export function importRustDatabase(db: Db, path: string, now: Date): RustImportSummary {
  const backupPath = writeBackup(db, path, now);
  db.pragma('foreign_keys = OFF');
  db.pragma('secure_delete = ON');
  const summary = db.transaction(() => {
    for (const [table, rename] of Object.entries(RENAME_ASIDE)) if (columnsOf(db, table).size > 0) db.exec(rename);
    // Our schema from nothing, as a new database gets it (migration 1 creates the same names).
    for (const sql of MIGRATIONS) db.exec(sql);
    // user_version takes no bound parameter; MIGRATIONS.length is a constant, never input.
    db.pragma(`user_version = ${MIGRATIONS.length}`);
    const counts = copyRows(db, now);
    // The migrations above ran on empty tables: the rollups every view reads come from the rows
    // just copied, with the backfills of migrations 9 and 10.
    db.exec(ROLLUP_BACKFILL);
    db.exec(LAST_RECEIVED_BACKFILL);
    db.exec(DROP_RUST_TABLES);
    db.exec(`CREATE TABLE rust_import (imported_at TEXT NOT NULL, backup_path TEXT NOT NULL,
      users INTEGER NOT NULL, tokens INTEGER NOT NULL, device_keys INTEGER NOT NULL, usage_events INTEGER NOT NULL)`);
    db.prepare('INSERT INTO rust_import VALUES (?, ?, ?, ?, ?, ?)').run(
      now.toISOString(),
      backupPath,
      counts.users,
      counts.tokens,
      counts.keys,
      counts.events,
    );
    return { backupPath, ...counts };
  }).immediate();
  db.exec('VACUUM');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('secure_delete = OFF');
  return summary;
}

const lowerEmail = (email: unknown): string => String(email ?? '').trim().toLowerCase();

interface RustRefreshRow {
  token: string;
  email: string;
  division: string | null;
  expires_at: string | null;
  revoked: number | null;
  created_at: string | null;
}

/** Copies users, tokens, keys and usage rows from the renamed Rust tables into ours. */
function copyRows(db: Db, now: Date): Omit<RustImportSummary, 'backupPath'> {
  const nowIso = now.toISOString();
  const has = (table: string) => columnsOf(db, `rust_${table}`).size > 0;
  const refresh = has('refresh_tokens')
    ? (db.prepare('SELECT token, email, division, expires_at, revoked, created_at FROM rust_refresh_tokens ORDER BY created_at, rowid').all() as RustRefreshRow[])
    : [];

  // Users: every email that holds a token, a key or usage rows.
  const emails = new Set<string>(refresh.map((r) => lowerEmail(r.email)));
  if (has('device_keys')) for (const r of db.prepare('SELECT DISTINCT email FROM rust_device_keys').all() as { email: string }[]) emails.add(lowerEmail(r.email));
  for (const r of db.prepare('SELECT DISTINCT user_email FROM rust_usage_events').all() as { user_email: string }[]) emails.add(lowerEmail(r.user_email));
  emails.delete('');
  const userIds = new Map<string, number>();
  const insertUser = db.prepare('INSERT INTO users (email, division, created_at, revoked_at) VALUES (?, ?, ?, ?)');
  for (const email of [...emails].sort()) {
    const tokens = refresh.filter((r) => lowerEmail(r.email) === email);
    const division = [...tokens].reverse().find((r) => r.division)?.division ?? '';
    const created = tokens.length > 0 ? isoFromRust(tokens[0]!.created_at, nowIso) : nowIso;
    // A user whose every token was revoked was revoked (the Rust way: UPDATE … SET revoked = 1 WHERE email).
    const revoked = tokens.length > 0 && tokens.every((r) => r.revoked) ? nowIso : null;
    userIds.set(email, Number(insertUser.run(email, division, created, revoked).lastInsertRowid));
  }

  // Refresh tokens, hashed; each plaintext value (also those only left in usage rows) gets a ref.
  const refs = new Map<string, { ref: string; id?: number; userId?: number }>();
  const insertToken = db.prepare(
    'INSERT INTO user_tokens (user_id, token_hash, token_ref, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  for (const r of refresh) {
    if (refs.has(r.token)) continue;
    const userId = userIds.get(lowerEmail(r.email))!;
    const ref = generateTokenRef();
    const id = Number(
      insertToken.run(userId, hashToken(r.token), ref, isoFromRust(r.created_at, nowIso), isoFromRust(r.expires_at, nowIso), r.revoked ? nowIso : null)
        .lastInsertRowid,
    );
    refs.set(r.token, { ref, id, userId });
  }
  db.exec('CREATE TEMP TABLE rust_token_map (token TEXT PRIMARY KEY, ref TEXT NOT NULL)');
  const mapToken = db.prepare('INSERT INTO rust_token_map (token, ref) VALUES (?, ?)');
  for (const [token, { ref }] of refs) mapToken.run(token, ref);
  for (const { user_token } of db.prepare('SELECT DISTINCT user_token FROM rust_usage_events').all() as { user_token: string }[]) {
    if (!refs.has(user_token)) {
      const ref = generateTokenRef();
      refs.set(user_token, { ref });
      mapToken.run(user_token, ref);
    }
  }

  const accessTokens = copyAccessTokens(db, refs, nowIso);
  const keys = copyDeviceKeys(db, userIds, nowIso);
  const events = copyUsage(db, userIds);
  db.exec('DROP TABLE temp.rust_token_map');
  return { users: userIds.size, tokens: refresh.length, accessTokens, keys, events };
}

/** Unexpired access tokens, hashed, so devices keep their cached token until it expires. */
function copyAccessTokens(db: Db, refs: Map<string, { id?: number; userId?: number }>, nowIso: string): number {
  if (columnsOf(db, 'rust_access_tokens').size === 0) return 0;
  const insert = db.prepare('INSERT OR IGNORE INTO access_tokens (token_hash, refresh_token_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)');
  let n = 0;
  for (const r of db.prepare('SELECT token, refresh_token, expires_at, created_at FROM rust_access_tokens').all() as {
    token: string;
    refresh_token: string;
    expires_at: string;
    created_at: string | null;
  }[]) {
    const owner = refs.get(r.refresh_token);
    const expires = isoFromRust(r.expires_at, nowIso);
    if (owner?.id === undefined || owner.userId === undefined || expires <= nowIso) continue;
    n += insert.run(hashToken(r.token), owner.id, owner.userId, isoFromRust(r.created_at, nowIso), expires).changes;
  }
  return n;
}

function copyDeviceKeys(db: Db, userIds: Map<string, number>, nowIso: string): number {
  if (columnsOf(db, 'rust_device_keys').size === 0) return 0;
  const insert = db.prepare(
    'INSERT OR IGNORE INTO device_keys (user_id, public_key, device_id, registered_at, last_seen_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  let n = 0;
  for (const r of db.prepare('SELECT public_key, email, device_id, registered_at, last_seen_at, revoked FROM rust_device_keys').all() as {
    public_key: string;
    email: string;
    device_id: string | null;
    registered_at: string | null;
    last_seen_at: string | null;
    revoked: number | null;
  }[]) {
    const userId = userIds.get(lowerEmail(r.email));
    if (userId === undefined) continue;
    const lastSeen = r.last_seen_at ? isoFromRust(r.last_seen_at, nowIso) : null;
    n += insert.run(userId, r.public_key, r.device_id ?? '', isoFromRust(r.registered_at, nowIso), lastSeen, r.revoked ? nowIso : null).changes;
  }
  return n;
}

/**
 * Every usage row, ids kept. `received_at` stays in the Rust text form (ours too since migration
 * 3); `signed` is 1 where the Rust receiver stored a device id, which it took from a verified key.
 */
function copyUsage(db: Db, userIds: Map<string, number>): number {
  db.exec('CREATE TEMP TABLE rust_user_map (email TEXT PRIMARY KEY, user_id INTEGER NOT NULL)');
  const map = db.prepare('INSERT INTO rust_user_map (email, user_id) VALUES (?, ?)');
  for (const [email, id] of userIds) map.run(email, id);
  // Rust databases from before its device_id column lack it.
  if (!columnsOf(db, 'rust_usage_events').has('device_id')) db.exec("ALTER TABLE rust_usage_events ADD COLUMN device_id TEXT NOT NULL DEFAULT ''");
  const { changes } = db
    .prepare(
      `INSERT INTO usage_events (
        id, user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
        received_at, user_id, reported_email, signed)
      SELECT e.id, e.user_email, m.ref, COALESCE(e.device_id, ''), e.session_id, e.turn_index, e.timestamp_utc,
        NULLIF(e.session_start_utc, ''), e.model,
        COALESCE(e.input_tokens, 0), COALESCE(e.output_tokens, 0), COALESCE(e.cache_read_tokens, 0), COALESCE(e.cache_write_tokens, 0),
        e.plugin_version, COALESCE(e.schema_version, 1),
        COALESCE(strftime('%Y-%m-%d %H:%M:%S', e.received_at), e.received_at, strftime('%Y-%m-%d %H:%M:%S', 'now')),
        u.user_id, e.user_email, CASE WHEN COALESCE(e.device_id, '') <> '' THEN 1 ELSE 0 END
      FROM rust_usage_events e
      JOIN temp.rust_token_map m ON m.token = e.user_token
      LEFT JOIN temp.rust_user_map u ON u.email = lower(trim(e.user_email))
      ORDER BY e.id`,
    )
    .run();
  db.exec('DROP TABLE temp.rust_user_map');
  return changes;
}
