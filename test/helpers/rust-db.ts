/**
 * A database as the Rust ccflux receiver leaves it: its tables and columns (from its schema.sql,
 * written out here from the format), WAL mode as sqlx opens it, and rows written the way its SQL
 * writes them (`datetime('now', …)` text times, RFC 3339 access-token expiries, the plaintext refresh
 * token in `usage_events.user_token`). Used to prove that ours takes such a database over.
 */
import Database from 'better-sqlite3';

const RUST_SCHEMA = `
CREATE TABLE IF NOT EXISTS user_tokens (
  token TEXT PRIMARY KEY, email TEXT NOT NULL, division TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, revoked INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token TEXT PRIMARY KEY, email TEXT NOT NULL, division TEXT, expires_at TIMESTAMP NOT NULL,
  revoked INTEGER DEFAULT 0, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS access_tokens (
  token TEXT PRIMARY KEY, refresh_token TEXT NOT NULL REFERENCES refresh_tokens(token), email TEXT NOT NULL,
  expires_at TIMESTAMP NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE INDEX IF NOT EXISTS idx_access_refresh ON access_tokens(refresh_token);
CREATE INDEX IF NOT EXISTS idx_access_expires ON access_tokens(expires_at);
CREATE TABLE IF NOT EXISTS device_keys (
  public_key TEXT PRIMARY KEY, email TEXT NOT NULL, device_id TEXT,
  registered_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, last_seen_at TIMESTAMP, revoked INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS idx_device_keys_email ON device_keys(email);
CREATE TABLE IF NOT EXISTS usage_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  user_email TEXT NOT NULL, user_token TEXT NOT NULL, device_id TEXT NOT NULL DEFAULT '',
  session_id TEXT NOT NULL, turn_index INTEGER NOT NULL, timestamp_utc TIMESTAMP NOT NULL,
  session_start_utc TIMESTAMP, model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  plugin_version TEXT, schema_version INTEGER NOT NULL DEFAULT 1,
  UNIQUE(session_id, turn_index, model));
CREATE INDEX IF NOT EXISTS idx_usage_user ON usage_events(user_email);
CREATE INDEX IF NOT EXISTS idx_usage_session ON usage_events(session_id);
CREATE INDEX IF NOT EXISTS idx_usage_time ON usage_events(timestamp_utc);
CREATE TABLE IF NOT EXISTS tier_hints (
  email TEXT PRIMARY KEY, tier_label TEXT NOT NULL DEFAULT 'unknown', peak_tokens INTEGER,
  method TEXT NOT NULL DEFAULT 'inferred', window_count INTEGER NOT NULL DEFAULT 0,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
`;

export interface RustUser {
  email: string;
  division?: string;
  /** The refresh token IT inserted (plaintext, as the Rust receiver keeps it). */
  refreshToken: string;
  revoked?: boolean;
  /** A live access token the Rust receiver issued (32 hex), cached by the device. */
  accessToken?: string;
}

export interface RustKey {
  email: string;
  publicKey: string;
  deviceId: string;
  revoked?: boolean;
}

export interface RustUsageRow {
  email: string;
  refreshToken: string;
  deviceId?: string;
  sessionId: string;
  turnIndex: number;
  timestampUtc: string;
  sessionStartUtc?: string | null;
  model: string;
  usage: [number, number, number, number];
  pluginVersion?: string;
  /** SQL expression for received_at; default CURRENT_TIMESTAMP (the column default). */
  receivedAtSql?: string;
}

export function rfc3339In(seconds: number): string {
  // chrono's to_rfc3339(): nanoseconds and +00:00
  return new Date(Date.now() + seconds * 1000).toISOString().replace('Z', '000000+00:00');
}

/** Creates `path` as the Rust receiver would have it after serving these users. */
export function buildRustDatabase(path: string, data: { users: RustUser[]; keys?: RustKey[]; usage?: RustUsageRow[] }): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(RUST_SCHEMA);
    const refresh = db.prepare(
      "INSERT INTO refresh_tokens (token, email, division, expires_at, revoked) VALUES (?, ?, NULLIF(?, ''), datetime('now', '+365 days'), ?)",
    );
    const access = db.prepare('INSERT INTO access_tokens (token, refresh_token, email, expires_at) VALUES (?, ?, ?, ?)');
    for (const u of data.users) {
      refresh.run(u.refreshToken, u.email, u.division ?? '', u.revoked ? 1 : 0);
      if (u.accessToken) access.run(u.accessToken, u.refreshToken, u.email, rfc3339In(8 * 3600));
    }
    // An expired one too: the Rust receiver purges them only every so often.
    if (data.users[0]) access.run('0'.repeat(32), data.users[0].refreshToken, data.users[0].email, rfc3339In(-3600));
    db.prepare("INSERT INTO user_tokens (token, email, division) VALUES ('legacy-static-token-0001', 'old@example.org', 'ops')").run();
    db.prepare("INSERT INTO tier_hints (email, tier_label, peak_tokens) VALUES ('ana@example.org', 'max-5x', 123456)").run();
    const key = db.prepare("INSERT INTO device_keys (public_key, email, device_id, last_seen_at, revoked) VALUES (?, ?, ?, datetime('now'), ?)");
    for (const k of data.keys ?? []) key.run(k.publicKey, k.email, k.deviceId, k.revoked ? 1 : 0);
    for (const r of data.usage ?? []) {
      const receivedAt = r.receivedAtSql ?? 'CURRENT_TIMESTAMP';
      db.prepare(
        `INSERT OR IGNORE INTO usage_events
          (received_at, user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
           input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version)
         VALUES (${receivedAt}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
      ).run(
        r.email,
        r.refreshToken,
        r.deviceId ?? '',
        r.sessionId,
        r.turnIndex,
        r.timestampUtc,
        r.sessionStartUtc === undefined ? r.timestampUtc : r.sessionStartUtc,
        r.model,
        ...r.usage,
        r.pluginVersion ?? '0.4.2',
      );
    }
  } finally {
    db.close();
  }
}
