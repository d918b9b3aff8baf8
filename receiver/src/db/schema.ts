/**
 * SQLite schema, migrated forward by version (`PRAGMA user_version`). Migration N turns a
 * version N-1 database into version N; a new database runs them all. Never edit a shipped
 * migration: add the next one, and the same number to `PG_MIGRATIONS` in `schema-postgres.ts`
 * (same tables, columns and meaning; types in PostgreSQL's spelling). Migration 1 is the v0.1.0
 * schema, shipped: `receiver/test/migrations.test.ts` upgrades a database made by it.
 *
 * Secrets are never stored: refresh and access tokens only as SHA-256 hex (`token_hash`).
 * `usage_events` keeps the Rust version's columns so existing SQL keeps working; `user_token`
 * holds `user_tokens.token_ref`, a non-secret identifier, never the token. Since migration 3 the
 * name `refresh_tokens` is a read-only view in the Rust version's shape (see docs/migrating-from-rust.md).
 */
/** `usage_org_daily` is per day × model × (user id mod ORG_SHARDS): see store/rollup.ts. */
export const ORG_SHARDS = 16;
export const ORG_COLUMNS = 'input, output, cache_read, cache_write, cw5m, cw1h, unsplit, web_search';
export const ROLLUP_COLUMNS =
  'input, output, cache_read, cache_write, cw5m, cw1h, unsplit, web_search, model_turns, turns, sessions, model_sessions, last_at';
const ROLLUP_SUMS = `TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_read_tokens), TOTAL(cache_write_tokens),
    TOTAL(COALESCE(cache_write_5m_tokens, 0)), TOTAL(COALESCE(cache_write_1h_tokens, 0)),
    TOTAL(CASE WHEN cache_write_5m_tokens IS NULL OR cache_write_1h_tokens IS NULL THEN cache_write_tokens ELSE 0 END),
    TOTAL(COALESCE(web_search_requests, 0)), COUNT(*), SUM(new_turn), SUM(new_session), SUM(new_model_session), MAX(ts)`;

/**
 * Migration 9's backfill, the same text on both backends: a raw row is the first of its turn,
 * session, or session × model when no row of that key has a smaller id (that is the order
 * insertReport meets them in), and the rollups are those flags and the token columns summed;
 * `usage_cum` holds the hourly sums running from each user × model's first hour.
 */
export const ROLLUP_BACKFILL = `
  CREATE TEMP TABLE rollup_src AS
  SELECT user_id, session_id, model, timestamp_utc AS ts,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests,
    CASE WHEN ROW_NUMBER() OVER (PARTITION BY user_id, session_id, turn_index ORDER BY id) = 1 THEN 1 ELSE 0 END AS new_turn,
    CASE WHEN ROW_NUMBER() OVER (PARTITION BY user_id, session_id ORDER BY id) = 1 THEN 1 ELSE 0 END AS new_session,
    CASE WHEN ROW_NUMBER() OVER (PARTITION BY user_id, session_id, model ORDER BY id) = 1 THEN 1 ELSE 0 END AS new_model_session
  FROM usage_events WHERE user_id IS NOT NULL;

  INSERT INTO usage_sessions (user_id, session_id, first_day)
    SELECT user_id, session_id, substr(ts, 1, 10) FROM rollup_src WHERE new_session = 1;
  INSERT INTO usage_session_models (user_id, session_id, model)
    SELECT user_id, session_id, model FROM rollup_src WHERE new_model_session = 1;
  INSERT INTO usage_daily (user_id, day, model, ${ROLLUP_COLUMNS})
    SELECT user_id, substr(ts, 1, 10), model, ${ROLLUP_SUMS} FROM rollup_src GROUP BY user_id, substr(ts, 1, 10), model;
  INSERT INTO usage_hourly (user_id, hour, model, ${ROLLUP_COLUMNS})
    SELECT user_id, substr(ts, 1, 13), model, ${ROLLUP_SUMS} FROM rollup_src GROUP BY user_id, substr(ts, 1, 13), model;
  DROP TABLE rollup_src;
  INSERT INTO usage_user_models (user_id, model) SELECT DISTINCT user_id, model FROM usage_hourly;
  INSERT INTO usage_cum (user_id, model, hour, ${ROLLUP_COLUMNS})
    SELECT user_id, model, hour, SUM(input) OVER w, SUM(output) OVER w, SUM(cache_read) OVER w, SUM(cache_write) OVER w,
      SUM(cw5m) OVER w, SUM(cw1h) OVER w, SUM(unsplit) OVER w, SUM(web_search) OVER w, SUM(model_turns) OVER w,
      SUM(turns) OVER w, SUM(sessions) OVER w, SUM(model_sessions) OVER w, last_at
    FROM usage_hourly WINDOW w AS (PARTITION BY user_id, model ORDER BY hour ROWS UNBOUNDED PRECEDING);
  INSERT INTO usage_org_daily (day, model, shard, ${ORG_COLUMNS})
    SELECT day, model, user_id % ${ORG_SHARDS}, SUM(input), SUM(output), SUM(cache_read), SUM(cache_write), SUM(cw5m), SUM(cw1h),
      SUM(unsplit), SUM(web_search)
    FROM usage_daily GROUP BY day, model, user_id % ${ORG_SHARDS};
`;

/**
 * Migration 10's backfill, the same text on both backends (and `migrate --from sqlite:` runs it
 * after ROLLUP_BACKFILL): each user × model's latest `usage_cum` row gets the latest
 * `received_at` of that pair's raw rows. insertReport keeps it so: every report of the pair
 * writes that row anyway (its own hour's, or every later hour's for a late report).
 */
export const LAST_RECEIVED_BACKFILL = `
  UPDATE usage_cum SET last_received = r.last_received
  FROM (SELECT user_id, model, MAX(received_at) AS last_received FROM usage_events WHERE user_id IS NOT NULL GROUP BY user_id, model) AS r
  WHERE usage_cum.user_id = r.user_id AND usage_cum.model = r.model
    AND usage_cum.hour = (SELECT MAX(c.hour) FROM usage_cum c WHERE c.user_id = r.user_id AND c.model = r.model);
`;

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    division    TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
  );

  CREATE TABLE refresh_tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    token_hash    TEXT NOT NULL UNIQUE,
    token_ref     TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
  );
  CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

  CREATE TABLE access_tokens (
    token_hash        TEXT PRIMARY KEY,
    refresh_token_id  INTEGER NOT NULL REFERENCES refresh_tokens(id),
    user_id           INTEGER NOT NULL REFERENCES users(id),
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL
  );
  CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
  CREATE INDEX access_tokens_refresh ON access_tokens(refresh_token_id);

  CREATE TABLE device_keys (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id),
    public_key     TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    registered_at  TEXT NOT NULL,
    last_seen_at   TEXT,
    revoked_at     TEXT,
    UNIQUE (user_id, public_key)
  );
  CREATE INDEX device_keys_key ON device_keys(public_key);

  CREATE TABLE usage_events (
    id                  INTEGER PRIMARY KEY,
    user_email          TEXT NOT NULL,
    user_token          TEXT NOT NULL,
    device_id           TEXT NOT NULL DEFAULT '',
    session_id          TEXT NOT NULL,
    turn_index          INTEGER NOT NULL,
    timestamp_utc       TEXT NOT NULL,
    session_start_utc   TEXT NOT NULL,
    model               TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    plugin_version      TEXT NOT NULL,
    schema_version      INTEGER NOT NULL,
    received_at         TEXT NOT NULL,
    user_id             INTEGER REFERENCES users(id),
    reported_email      TEXT NOT NULL DEFAULT '',
    signed              INTEGER NOT NULL DEFAULT 0,
    UNIQUE (session_id, turn_index, model)
  );
  CREATE INDEX usage_events_user_time ON usage_events(user_id, timestamp_utc);
  CREATE INDEX usage_events_time ON usage_events(timestamp_utc);
  `,
  // 2: shared rate-limit windows (store/rules.ts limitCap), so every instance enforces one budget
  `
  CREATE TABLE limit_windows (
    key           TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
  ) WITHOUT ROWID;
  CREATE INDEX limit_windows_expiry ON limit_windows(expires_ms);
  `,
  // 3: Rust compatibility. `refresh_tokens` becomes a view in the Rust version's shape over our
  // table, now `user_tokens`; `received_at` takes the Rust (SQLite CURRENT_TIMESTAMP) text form so
  // `received_at >= datetime('now', '-1 hour')` selects what it did there; `session_start_utc` and
  // `plugin_version` may be NULL (Rust devices leave the session start out when they have none).
  // SQLite cannot drop NOT NULL in place: usage_events is rebuilt with the same ids.
  `
  ALTER TABLE refresh_tokens RENAME TO user_tokens;
  DROP INDEX refresh_tokens_user;
  CREATE INDEX user_tokens_user ON user_tokens(user_id);

  CREATE TABLE usage_events_v2 (
    id                  INTEGER PRIMARY KEY,
    user_email          TEXT NOT NULL,
    user_token          TEXT NOT NULL,
    device_id           TEXT NOT NULL DEFAULT '',
    session_id          TEXT NOT NULL,
    turn_index          INTEGER NOT NULL,
    timestamp_utc       TEXT NOT NULL,
    session_start_utc   TEXT,
    model               TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    plugin_version      TEXT,
    schema_version      INTEGER NOT NULL,
    received_at         TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    user_id             INTEGER REFERENCES users(id),
    reported_email      TEXT NOT NULL DEFAULT '',
    signed              INTEGER NOT NULL DEFAULT 0,
    UNIQUE (session_id, turn_index, model)
  );
  INSERT INTO usage_events_v2 (
    id, user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
    received_at, user_id, reported_email, signed)
  SELECT
    id, user_email, user_token, device_id, session_id, turn_index, timestamp_utc, NULLIF(session_start_utc, ''), model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
    COALESCE(strftime('%Y-%m-%d %H:%M:%S', received_at), received_at), user_id, reported_email, signed
  FROM usage_events;
  DROP TABLE usage_events;
  ALTER TABLE usage_events_v2 RENAME TO usage_events;
  CREATE INDEX usage_events_user_time ON usage_events(user_id, timestamp_utc);
  CREATE INDEX usage_events_time ON usage_events(timestamp_utc);
  CREATE INDEX usage_events_received ON usage_events(received_at);

  CREATE VIEW refresh_tokens AS
    SELECT t.token_ref AS token,
           u.email AS email,
           NULLIF(u.division, '') AS division,
           strftime('%Y-%m-%d %H:%M:%S', t.expires_at) AS expires_at,
           CASE WHEN t.revoked_at IS NULL AND u.revoked_at IS NULL THEN 0 ELSE 1 END AS revoked,
           strftime('%Y-%m-%d %H:%M:%S', t.created_at) AS created_at
    FROM user_tokens t JOIN users u ON u.id = t.user_id;
  `,
  // 4: idempotency per user (issue 16). The key was (session_id, turn_index, model) across all
  // users, so whoever sent a session id first swallowed everyone else's rows with it; it becomes
  // (user_id, session_id, turn_index, model). SQLite cannot change a table constraint in place: the
  // table is rebuilt with the same columns and ids.
  `
  CREATE TABLE usage_events_v4 (
    id                  INTEGER PRIMARY KEY,
    user_email          TEXT NOT NULL,
    user_token          TEXT NOT NULL,
    device_id           TEXT NOT NULL DEFAULT '',
    session_id          TEXT NOT NULL,
    turn_index          INTEGER NOT NULL,
    timestamp_utc       TEXT NOT NULL,
    session_start_utc   TEXT,
    model               TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    plugin_version      TEXT,
    schema_version      INTEGER NOT NULL,
    received_at         TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    user_id             INTEGER REFERENCES users(id),
    reported_email      TEXT NOT NULL DEFAULT '',
    signed              INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, session_id, turn_index, model)
  );
  INSERT INTO usage_events_v4 SELECT
    id, user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
    received_at, user_id, reported_email, signed
  FROM usage_events;
  DROP TABLE usage_events;
  ALTER TABLE usage_events_v4 RENAME TO usage_events;
  CREATE INDEX usage_events_user_time ON usage_events(user_id, timestamp_utc);
  CREATE INDEX usage_events_time ON usage_events(timestamp_utc);
  CREATE INDEX usage_events_received ON usage_events(received_at);
  `,
  // 5: the Rust version's revocation, `UPDATE refresh_tokens SET revoked = 1 WHERE email = '…'`,
  // keeps working on the view: it revokes those tokens (their access tokens stop with them, since
  // an access token is valid only while its refresh token is). Un-revoking is not possible this way.
  `
  CREATE TRIGGER refresh_tokens_revoke INSTEAD OF UPDATE OF revoked ON refresh_tokens
  WHEN NEW.revoked <> 0 AND OLD.revoked = 0
  BEGIN
    UPDATE user_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE token_ref = OLD.token AND revoked_at IS NULL;
  END;
  `,
  // 6: schema_version 2 cost detail per model: the split of cache_write_tokens by cache TTL and
  // server web searches. NULL for reports of schema_version 1 (their devices did not know).
  `
  ALTER TABLE usage_events ADD COLUMN cache_write_5m_tokens INTEGER;
  ALTER TABLE usage_events ADD COLUMN cache_write_1h_tokens INTEGER;
  ALTER TABLE usage_events ADD COLUMN web_search_requests INTEGER;
  `,
  // 7: admin audit log; monthly budgets and the 80 %/100 % crossings recorded once per month, with
  // their webhook delivery state (admin/budgets.ts, admin/alerts.ts)
  `
  CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    source  TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX audit_log_at ON audit_log(at);

  CREATE TABLE budgets (
    id             INTEGER PRIMARY KEY,
    scope          TEXT NOT NULL CHECK (scope IN ('org', 'division', 'user')),
    subject        TEXT NOT NULL DEFAULT '',
    unit           TEXT NOT NULL CHECK (unit IN ('usd', 'tokens')),
    monthly_limit  REAL NOT NULL CHECK (monthly_limit > 0),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (scope, subject)
  );

  CREATE TABLE budget_alerts (
    id               INTEGER PRIMARY KEY,
    budget_id        INTEGER NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    month            TEXT NOT NULL,
    threshold        INTEGER NOT NULL,
    crossed_at       TEXT NOT NULL,
    spent            REAL NOT NULL,
    monthly_limit    REAL NOT NULL,
    delivered_at     TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT,
    UNIQUE (budget_id, month, threshold)
  );
  CREATE INDEX budget_alerts_pending ON budget_alerts(delivered_at, next_attempt_at);
  `,
  // 8: admin sessions in the database (admin/sessions.ts), so any instance can serve any admin
  `
  CREATE TABLE admin_sessions (
    id_hash       TEXT PRIMARY KEY,
    csrf_token    TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    flash         TEXT,
    -- Use order (least recently used goes first), unambiguous where two uses share a millisecond.
    touch_seq     INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX admin_sessions_seen ON admin_sessions(last_seen_ms);
  `,
  // 9: rollups for the views (issues 11, 13), maintained by insertReport in the same transaction
  // as the raw rows (store/rollup.ts says what each counter means) and backfilled here from the
  // rows already stored, so an upgraded database shows the same figures. The day (hour) leads the
  // key: a view reads a range of days as one run of the table; one user's rows by the user index. Token sums are REAL, like
  // the views' TOTAL: a hostile counter can push a sum past 2^63 but never fails an insert or a
  // view. `usage_events(user_id, received_at)` makes the users table's "last report" an index seek.
  `
  CREATE INDEX usage_events_user_received ON usage_events(user_id, received_at);

  CREATE TABLE usage_sessions (
    user_id     INTEGER NOT NULL,
    session_id  TEXT NOT NULL,
    first_day   TEXT NOT NULL,
    PRIMARY KEY (user_id, session_id)
  ) WITHOUT ROWID;

  CREATE TABLE usage_session_models (
    user_id     INTEGER NOT NULL,
    session_id  TEXT NOT NULL,
    model       TEXT NOT NULL,
    PRIMARY KEY (user_id, session_id, model)
  ) WITHOUT ROWID;

  CREATE TABLE usage_daily (
    user_id         INTEGER NOT NULL,
    day             TEXT NOT NULL,
    model           TEXT NOT NULL,
    input           REAL NOT NULL,
    output          REAL NOT NULL,
    cache_read      REAL NOT NULL,
    cache_write     REAL NOT NULL,
    cw5m            REAL NOT NULL,
    cw1h            REAL NOT NULL,
    unsplit         REAL NOT NULL,
    web_search      REAL NOT NULL,
    model_turns     INTEGER NOT NULL,
    turns           INTEGER NOT NULL,
    sessions        INTEGER NOT NULL,
    model_sessions  INTEGER NOT NULL,
    last_at         TEXT NOT NULL,
    PRIMARY KEY (day, user_id, model)
  ) WITHOUT ROWID;
  CREATE INDEX usage_daily_user ON usage_daily(user_id, day);
  CREATE INDEX usage_daily_model_day ON usage_daily(model, day);

  CREATE TABLE usage_hourly (
    user_id         INTEGER NOT NULL,
    hour            TEXT NOT NULL,
    model           TEXT NOT NULL,
    input           REAL NOT NULL,
    output          REAL NOT NULL,
    cache_read      REAL NOT NULL,
    cache_write     REAL NOT NULL,
    cw5m            REAL NOT NULL,
    cw1h            REAL NOT NULL,
    unsplit         REAL NOT NULL,
    web_search      REAL NOT NULL,
    model_turns     INTEGER NOT NULL,
    turns           INTEGER NOT NULL,
    sessions        INTEGER NOT NULL,
    model_sessions  INTEGER NOT NULL,
    last_at         TEXT NOT NULL,
    PRIMARY KEY (hour, user_id, model)
  ) WITHOUT ROWID;
  CREATE INDEX usage_hourly_user ON usage_hourly(user_id, hour);

  CREATE TABLE usage_user_models (
    user_id  INTEGER NOT NULL,
    model    TEXT NOT NULL,
    PRIMARY KEY (user_id, model)
  ) WITHOUT ROWID;

  CREATE TABLE usage_cum (
    user_id         INTEGER NOT NULL,
    model           TEXT NOT NULL,
    hour            TEXT NOT NULL,
    input           REAL NOT NULL,
    output          REAL NOT NULL,
    cache_read      REAL NOT NULL,
    cache_write     REAL NOT NULL,
    cw5m            REAL NOT NULL,
    cw1h            REAL NOT NULL,
    unsplit         REAL NOT NULL,
    web_search      REAL NOT NULL,
    model_turns     INTEGER NOT NULL,
    turns           INTEGER NOT NULL,
    sessions        INTEGER NOT NULL,
    model_sessions  INTEGER NOT NULL,
    last_at         TEXT NOT NULL,
    PRIMARY KEY (user_id, model, hour)
  ) WITHOUT ROWID;

  CREATE TABLE usage_org_daily (
    day          TEXT NOT NULL,
    model        TEXT NOT NULL,
    shard        INTEGER NOT NULL,
    input        REAL NOT NULL,
    output       REAL NOT NULL,
    cache_read   REAL NOT NULL,
    cache_write  REAL NOT NULL,
    cw5m         REAL NOT NULL,
    cw1h         REAL NOT NULL,
    unsplit      REAL NOT NULL,
    web_search   REAL NOT NULL,
    PRIMARY KEY (day, model, shard)
  ) WITHOUT ROWID;

  ${ROLLUP_BACKFILL}
  `,
  // 10: a user's last report (the users page) from the rollups instead of an index: the latest
  // `usage_cum` row of each of the user's models holds the latest `received_at` of its raw rows
  // (LAST_RECEIVED_BACKFILL). The index `usage_events(user_id, received_at)` it replaces was one
  // more b-tree page written per user in every ingest commit, for that one view column.
  `
  ALTER TABLE usage_cum ADD COLUMN last_received TEXT;
  ${LAST_RECEIVED_BACKFILL}
  DROP INDEX usage_events_user_received;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
