// ../../../tmp/ccflux-r1/prof.ts
import Database2 from "better-sqlite3";
import { existsSync } from "node:fs";

// receiver/src/db/schema.ts
var ROLLUP_COLUMNS = "input, output, cache_read, cache_write, cw5m, cw1h, unsplit, web_search, model_turns, turns, sessions, model_sessions, last_at";
var ROLLUP_SUMS = `TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_read_tokens), TOTAL(cache_write_tokens),
    TOTAL(COALESCE(cache_write_5m_tokens, 0)), TOTAL(COALESCE(cache_write_1h_tokens, 0)),
    TOTAL(CASE WHEN cache_write_5m_tokens IS NULL OR cache_write_1h_tokens IS NULL THEN cache_write_tokens ELSE 0 END),
    TOTAL(COALESCE(web_search_requests, 0)), COUNT(*), SUM(new_turn), SUM(new_session), SUM(new_model_session), MAX(ts)`;
var ROLLUP_BACKFILL = `
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
`;
var MIGRATIONS = [
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

  ${ROLLUP_BACKFILL}
  `
];
var SCHEMA_VERSION = MIGRATIONS.length;

// receiver/src/db/open.ts
import { closeSync as closeSync2, constants as constants2, openSync as openSync2 } from "node:fs";
import Database from "better-sqlite3";

// receiver/src/errors.ts
var ReceiverError = class extends Error {
  code;
  constructor(code, message, options2 = {}) {
    super(message, options2.cause === void 0 ? void 0 : { cause: options2.cause });
    this.name = "ReceiverError";
    this.code = code;
  }
};

// receiver/src/db/rust-import.ts
import { closeSync, constants, openSync } from "node:fs";

// receiver/src/tokens.ts
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
function hashToken(token) {
  return createHash("sha256").update(token, "utf8").digest("hex");
}
function generateTokenRef() {
  return `ref_${randomBytes(8).toString("hex")}`;
}

// receiver/src/db/rust-import.ts
var RENAME_ASIDE = {
  refresh_tokens: "ALTER TABLE refresh_tokens RENAME TO rust_refresh_tokens",
  access_tokens: "ALTER TABLE access_tokens RENAME TO rust_access_tokens",
  device_keys: "ALTER TABLE device_keys RENAME TO rust_device_keys",
  usage_events: "ALTER TABLE usage_events RENAME TO rust_usage_events",
  // Legacy static tokens: never accepted by the Rust receiver; plaintext, so not carried over (the backup keeps them).
  user_tokens: "ALTER TABLE user_tokens RENAME TO rust_user_tokens"
};
var DROP_RUST_TABLES = `
  DROP TABLE IF EXISTS rust_access_tokens; DROP TABLE IF EXISTS rust_refresh_tokens; DROP TABLE IF EXISTS rust_device_keys;
  DROP TABLE IF EXISTS rust_usage_events; DROP TABLE IF EXISTS rust_user_tokens;`;
function columnsOf(db2, table) {
  return new Set(db2.prepare("SELECT name FROM pragma_table_info(?)").all(table).map((c) => c.name));
}
function isRustDatabase(db2) {
  if (db2.pragma("user_version", { simple: true }) !== 0) return false;
  const refresh = columnsOf(db2, "refresh_tokens");
  return refresh.has("token") && refresh.has("email") && columnsOf(db2, "usage_events").has("user_token");
}
function isoFromRust(value, fallback) {
  if (typeof value !== "string" || value === "") return fallback;
  const text2 = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value) ? `${value.replace(" ", "T")}Z` : value;
  const ms = Date.parse(text2);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : fallback;
}
function backupPathFor(path2, now) {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${path2}.rust-backup-${stamp}`;
}
function writeBackup(db2, path2, now) {
  const backup = backupPathFor(path2, now);
  try {
    closeSync(openSync(backup, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 384));
  } catch (err) {
    throw new ReceiverError("database", `cannot create backup ${backup}: ${err.message}`, { cause: err });
  }
  db2.prepare("VACUUM INTO ?").run(backup);
  return backup;
}
function importRustDatabase(db2, path2, now) {
  const backupPath = writeBackup(db2, path2, now);
  db2.pragma("foreign_keys = OFF");
  db2.pragma("secure_delete = ON");
  const summary = db2.transaction(() => {
    for (const [table, rename] of Object.entries(RENAME_ASIDE)) if (columnsOf(db2, table).size > 0) db2.exec(rename);
    for (const sql of MIGRATIONS) db2.exec(sql);
    db2.pragma(`user_version = ${MIGRATIONS.length}`);
    const counts = copyRows(db2, now);
    db2.exec(DROP_RUST_TABLES);
    db2.exec(`CREATE TABLE rust_import (imported_at TEXT NOT NULL, backup_path TEXT NOT NULL,
      users INTEGER NOT NULL, tokens INTEGER NOT NULL, device_keys INTEGER NOT NULL, usage_events INTEGER NOT NULL)`);
    db2.prepare("INSERT INTO rust_import VALUES (?, ?, ?, ?, ?, ?)").run(
      now.toISOString(),
      backupPath,
      counts.users,
      counts.tokens,
      counts.keys,
      counts.events
    );
    return { backupPath, ...counts };
  }).immediate();
  db2.exec("VACUUM");
  db2.pragma("wal_checkpoint(TRUNCATE)");
  db2.pragma("secure_delete = OFF");
  return summary;
}
var lowerEmail = (email) => String(email ?? "").trim().toLowerCase();
function copyRows(db2, now) {
  const nowIso = now.toISOString();
  const has = (table) => columnsOf(db2, `rust_${table}`).size > 0;
  const refresh = has("refresh_tokens") ? db2.prepare("SELECT token, email, division, expires_at, revoked, created_at FROM rust_refresh_tokens ORDER BY created_at, rowid").all() : [];
  const emails = new Set(refresh.map((r) => lowerEmail(r.email)));
  if (has("device_keys")) for (const r of db2.prepare("SELECT DISTINCT email FROM rust_device_keys").all()) emails.add(lowerEmail(r.email));
  for (const r of db2.prepare("SELECT DISTINCT user_email FROM rust_usage_events").all()) emails.add(lowerEmail(r.user_email));
  emails.delete("");
  const userIds = /* @__PURE__ */ new Map();
  const insertUser = db2.prepare("INSERT INTO users (email, division, created_at, revoked_at) VALUES (?, ?, ?, ?)");
  for (const email of [...emails].sort()) {
    const tokens = refresh.filter((r) => lowerEmail(r.email) === email);
    const division = [...tokens].reverse().find((r) => r.division)?.division ?? "";
    const created = tokens.length > 0 ? isoFromRust(tokens[0].created_at, nowIso) : nowIso;
    const revoked = tokens.length > 0 && tokens.every((r) => r.revoked) ? nowIso : null;
    userIds.set(email, Number(insertUser.run(email, division, created, revoked).lastInsertRowid));
  }
  const refs = /* @__PURE__ */ new Map();
  const insertToken = db2.prepare(
    "INSERT INTO user_tokens (user_id, token_hash, token_ref, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)"
  );
  for (const r of refresh) {
    if (refs.has(r.token)) continue;
    const userId = userIds.get(lowerEmail(r.email));
    const ref = generateTokenRef();
    const id = Number(
      insertToken.run(userId, hashToken(r.token), ref, isoFromRust(r.created_at, nowIso), isoFromRust(r.expires_at, nowIso), r.revoked ? nowIso : null).lastInsertRowid
    );
    refs.set(r.token, { ref, id, userId });
  }
  db2.exec("CREATE TEMP TABLE rust_token_map (token TEXT PRIMARY KEY, ref TEXT NOT NULL)");
  const mapToken = db2.prepare("INSERT INTO rust_token_map (token, ref) VALUES (?, ?)");
  for (const [token, { ref }] of refs) mapToken.run(token, ref);
  for (const { user_token } of db2.prepare("SELECT DISTINCT user_token FROM rust_usage_events").all()) {
    if (!refs.has(user_token)) {
      const ref = generateTokenRef();
      refs.set(user_token, { ref });
      mapToken.run(user_token, ref);
    }
  }
  const accessTokens = copyAccessTokens(db2, refs, nowIso);
  const keys = copyDeviceKeys(db2, userIds, nowIso);
  const events = copyUsage(db2, userIds);
  db2.exec("DROP TABLE temp.rust_token_map");
  return { users: userIds.size, tokens: refresh.length, accessTokens, keys, events };
}
function copyAccessTokens(db2, refs, nowIso) {
  if (columnsOf(db2, "rust_access_tokens").size === 0) return 0;
  const insert = db2.prepare("INSERT OR IGNORE INTO access_tokens (token_hash, refresh_token_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)");
  let n = 0;
  for (const r of db2.prepare("SELECT token, refresh_token, expires_at, created_at FROM rust_access_tokens").all()) {
    const owner = refs.get(r.refresh_token);
    const expires = isoFromRust(r.expires_at, nowIso);
    if (owner?.id === void 0 || owner.userId === void 0 || expires <= nowIso) continue;
    n += insert.run(hashToken(r.token), owner.id, owner.userId, isoFromRust(r.created_at, nowIso), expires).changes;
  }
  return n;
}
function copyDeviceKeys(db2, userIds, nowIso) {
  if (columnsOf(db2, "rust_device_keys").size === 0) return 0;
  const insert = db2.prepare(
    "INSERT OR IGNORE INTO device_keys (user_id, public_key, device_id, registered_at, last_seen_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)"
  );
  let n = 0;
  for (const r of db2.prepare("SELECT public_key, email, device_id, registered_at, last_seen_at, revoked FROM rust_device_keys").all()) {
    const userId = userIds.get(lowerEmail(r.email));
    if (userId === void 0) continue;
    const lastSeen = r.last_seen_at ? isoFromRust(r.last_seen_at, nowIso) : null;
    n += insert.run(userId, r.public_key, r.device_id ?? "", isoFromRust(r.registered_at, nowIso), lastSeen, r.revoked ? nowIso : null).changes;
  }
  return n;
}
function copyUsage(db2, userIds) {
  db2.exec("CREATE TEMP TABLE rust_user_map (email TEXT PRIMARY KEY, user_id INTEGER NOT NULL)");
  const map = db2.prepare("INSERT INTO rust_user_map (email, user_id) VALUES (?, ?)");
  for (const [email, id] of userIds) map.run(email, id);
  if (!columnsOf(db2, "rust_usage_events").has("device_id")) db2.exec("ALTER TABLE rust_usage_events ADD COLUMN device_id TEXT NOT NULL DEFAULT ''");
  const { changes } = db2.prepare(
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
      ORDER BY e.id`
  ).run();
  db2.exec("DROP TABLE temp.rust_user_map");
  return changes;
}

// receiver/src/db/open.ts
var BUSY_TIMEOUT_MILLIS = 5e3;
function openDatabase(path2, options2 = {}) {
  if (!options2.readonly && path2 !== ":memory:") createPrivateFile(path2);
  let db2;
  try {
    db2 = new Database(path2, { readonly: options2.readonly === true, fileMustExist: options2.readonly === true });
  } catch (err) {
    throw new ReceiverError("database", `cannot open database ${path2}: ${err.message}`, { cause: err });
  }
  try {
    db2.pragma(`busy_timeout = ${BUSY_TIMEOUT_MILLIS}`);
    if (!options2.readonly) {
      db2.pragma("journal_mode = WAL");
      db2.pragma("synchronous = NORMAL");
      if (path2 !== ":memory:" && isRustDatabase(db2)) {
        const r = importRustDatabase(db2, path2, (options2.now ?? (() => /* @__PURE__ */ new Date()))());
        const notice = options2.notice ?? ((m) => process.stderr.write(`${m}
`));
        notice(
          `took over a Rust ccflux receiver database: ${r.users} user(s), ${r.tokens} refresh token(s) (now hashed), ${r.keys} device key(s), ${r.events} usage row(s); backup at ${r.backupPath}`
        );
      }
      migrate(db2);
    }
    db2.pragma("foreign_keys = ON");
  } catch (err) {
    db2.close();
    if (err instanceof ReceiverError) throw err;
    throw new ReceiverError("database", `cannot use database ${path2}: ${err.message}`, { cause: err });
  }
  return db2;
}
function createPrivateFile(path2) {
  try {
    closeSync2(openSync2(path2, constants2.O_CREAT | constants2.O_EXCL | constants2.O_WRONLY, 384));
  } catch (err) {
    if (err.code === "EEXIST") return;
    throw new ReceiverError("database", `cannot create database ${path2}: ${err.message}`, { cause: err });
  }
}
function migrate(db2) {
  const current = db2.pragma("user_version", { simple: true });
  if (current > SCHEMA_VERSION) {
    throw new ReceiverError(
      "database",
      `database schema version ${current} is newer than this receiver's (${SCHEMA_VERSION}); upgrade ccflux-receiver`
    );
  }
  for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
    const sql = MIGRATIONS[version - 1];
    db2.transaction(() => {
      db2.exec(sql);
      db2.pragma(`user_version = ${version}`);
    }).immediate();
  }
}

// receiver/src/prices/cost.ts
var PER_MILLION = 1e6;
var PER_THOUSAND = 1e3;
function normalizeModelId(model) {
  let id = model.trim().toLowerCase();
  id = id.replace(/\[[^\]]*\]$/, "");
  id = id.replace(/^(?:[a-z]{2,4}\.)?anthropic\./, "");
  id = id.replace(/@.*$/, "");
  id = id.replace(/-v\d+(?::\d+)?$/, "");
  id = id.replace(/-latest$/, "");
  id = id.replace(/-\d{8}$/, "");
  return id;
}
var PriceBook = class {
  constructor(table) {
    this.table = table;
    for (const family of table.families) for (const id of family.ids) this.byId.set(id, family);
  }
  table;
  byId = /* @__PURE__ */ new Map();
  memo = /* @__PURE__ */ new Map();
  family(model) {
    let hit = this.memo.get(model);
    if (hit === void 0) {
      hit = this.byId.get(normalizeModelId(model)) ?? null;
      if (this.memo.size < 1e4) this.memo.set(model, hit);
    }
    return hit;
  }
  /** The row in force on `day`; before the first row's date the first row applies. */
  priceOn(model, day2) {
    const family = this.family(model);
    if (family === null || family.prices.length === 0) return null;
    let row = family.prices[0];
    for (const p of family.prices) if (p.from <= day2) row = p;
    return row;
  }
  cost(u) {
    const p = this.priceOn(u.model, u.day);
    if (p === null) return { usd: null, estimated: false };
    return priceUsage(p, u);
  }
};
function priceUsage(p, u) {
  let write5m = u.cacheWrite;
  let write1h = 0;
  let estimated = true;
  if (u.cacheWrite5m !== null && u.cacheWrite1h !== null) {
    write1h = u.cacheWrite1h;
    write5m = Math.max(u.cacheWrite5m, u.cacheWrite - u.cacheWrite1h);
    estimated = u.cacheWrite5m + u.cacheWrite1h !== u.cacheWrite;
  } else if (u.cacheWrite === 0) {
    estimated = false;
  }
  const tokensUsd = (u.input * p.input + u.output * p.output + u.cacheRead * p.cacheRead + write5m * p.cacheWrite5m + write1h * p.cacheWrite1h) / PER_MILLION;
  const searchUsd = (u.webSearchRequests ?? 0) * p.webSearchPer1k / PER_THOUSAND;
  return { usd: tokensUsd + searchUsd, estimated };
}
function emptyTotal() {
  return { usd: 0, unpricedTokens: 0, estimated: false };
}
function addCost(total3, cost, u) {
  if (cost.usd === null) total3.unpricedTokens += u.input + u.output + u.cacheRead + u.cacheWrite;
  else total3.usd += cost.usd;
  if (cost.estimated) total3.estimated = true;
  return total3;
}

// receiver/src/prices/table.ts
var WEB_SEARCH_PER_1K = 10;
var SHIPPED_PRICES = {
  source: "shipped",
  families: [
    {
      family: "Claude Fable 5.1",
      ids: ["claude-fable-5-1"],
      prices: [{ from: "2026-09-01", input: 10, output: 50, cacheWrite5m: 12.5, cacheWrite1h: 20, cacheRead: 0.25, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Fable 5",
      ids: ["claude-fable-5", "claude-mythos-5"],
      prices: [{ from: "2026-06-09", input: 10, output: 50, cacheWrite5m: 12.5, cacheWrite1h: 20, cacheRead: 1, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Opus 5.5",
      ids: ["claude-opus-5-5"],
      prices: [{ from: "2026-09-22", input: 4, output: 20, cacheWrite5m: 5, cacheWrite1h: 8, cacheRead: 0.2, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Opus 4.5 to 5",
      ids: ["claude-opus-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5"],
      prices: [{ from: "2025-11-24", input: 5, output: 25, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Opus 4 and 4.1",
      ids: ["claude-opus-4-1", "claude-opus-4"],
      prices: [{ from: "2025-05-22", input: 15, output: 75, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Sonnet 5 and 5.5",
      ids: ["claude-sonnet-5-5", "claude-sonnet-5"],
      prices: [{ from: "2026-01-01", input: 2, output: 10, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.2, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Sonnet 4 to 4.6",
      ids: ["claude-sonnet-4-6", "claude-sonnet-4-5", "claude-sonnet-4", "claude-3-7-sonnet"],
      prices: [{ from: "2025-02-24", input: 3, output: 15, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Haiku 4.5",
      ids: ["claude-haiku-4-5"],
      prices: [{ from: "2025-10-15", input: 1, output: 5, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, webSearchPer1k: WEB_SEARCH_PER_1K }]
    },
    {
      family: "Claude Haiku 3.5",
      ids: ["claude-3-5-haiku"],
      prices: [{ from: "2024-11-04", input: 0.8, output: 4, cacheWrite5m: 1, cacheWrite1h: 1.6, cacheRead: 0.08, webSearchPer1k: WEB_SEARCH_PER_1K }]
    }
  ]
};

// receiver/src/admin/filters.ts
var RANGE_PRESETS = ["24h", "7d", "30d", "90d"];
var PRESET_MILLIS = {
  "24h": 24 * 3600 * 1e3,
  "7d": 7 * 24 * 3600 * 1e3,
  "30d": 30 * 24 * 3600 * 1e3,
  "90d": 90 * 24 * 3600 * 1e3
};
var DAY_MILLIS = 24 * 3600 * 1e3;
var FUTURE_SLACK_MILLIS = 15 * 60 * 1e3;
var MAX_RANGE_DAYS = 400;
var PAGE_SIZE = 50;
var MAX_FILTER_CHARS = 255;
function isoSeconds(ms) {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
function day(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}
function parseDay(value) {
  if (value === null || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return null;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isNaN(ms) || day(ms) !== value ? null : ms;
}
function validTimeZone(tz) {
  if (tz.length === 0 || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
function text(params, name) {
  const v = (params.get(name) ?? "").trim();
  if (v === "" || v.length > MAX_FILTER_CHARS || /[\x00-\x1f\x7f]/.test(v)) return null;
  return v;
}
function parseFilter(params, nowMillis, defaultTz = "UTC") {
  const problems = [];
  let range = "30d";
  const raw = params.get("range");
  if (raw === "custom" || RANGE_PRESETS.includes(raw ?? "")) range = raw;
  else if (raw !== null && raw !== "") problems.push("Unknown range; showing the last 30 days.");
  let fromMs = nowMillis - PRESET_MILLIS["30d"];
  let toMs = nowMillis;
  if (range === "custom") {
    const from = parseDay(params.get("from"));
    const to = parseDay(params.get("to"));
    if (from === null || to === null || to < from) {
      problems.push("A custom range needs from and to dates (YYYY-MM-DD, from before to); showing the last 30 days.");
      range = "30d";
    } else if ((to - from) / DAY_MILLIS + 1 > MAX_RANGE_DAYS) {
      problems.push(`A custom range spans at most ${MAX_RANGE_DAYS} days; showing the last 30 days.`);
      range = "30d";
    } else {
      fromMs = from;
      toMs = to + DAY_MILLIS;
    }
  } else {
    fromMs = nowMillis - PRESET_MILLIS[range];
  }
  const lastDayMs = range === "custom" ? toMs - 1 : nowMillis;
  if (range !== "custom") toMs = nowMillis + FUTURE_SLACK_MILLIS;
  let tz = defaultTz;
  const rawTz = params.get("tz");
  if (rawTz !== null && rawTz !== "") {
    if (validTimeZone(rawTz)) tz = rawTz;
    else problems.push("Unknown time zone; showing times in UTC.");
  }
  return {
    range,
    fromIso: isoSeconds(fromMs),
    toIso: isoSeconds(toMs),
    fromDay: day(fromMs),
    toDay: day(lastDayMs),
    user: text(params, "user")?.toLowerCase() ?? null,
    division: text(params, "division"),
    model: text(params, "model"),
    tz,
    problems
  };
}
function daysOf(f) {
  const out = [];
  const end = Date.parse(`${f.toDay}T00:00:00Z`);
  for (let ms = Date.parse(`${f.fromDay}T00:00:00Z`); ms <= end; ms += DAY_MILLIS) out.push(day(ms));
  return out;
}
function parseTable(params, id, columns) {
  const sort = params.get(`${id}.sort`);
  const page = Number(params.get(`${id}.page`) ?? "1");
  return {
    q: (text(params, `${id}.q`) ?? "").toLowerCase(),
    sort: sort !== null && columns.includes(sort) ? sort : null,
    dir: params.get(`${id}.dir`) === "asc" ? "asc" : "desc",
    page: Number.isSafeInteger(page) && page >= 1 && page <= 1e6 ? page : 1
  };
}
function hrefWith(path2, params, changes) {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "") next.delete(k);
    else next.set(k, v);
  }
  const qs = next.toString();
  return qs === "" ? path2 : `${path2}?${qs}`;
}
function parseStamp(value) {
  return Date.parse(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?$/.test(value) ? `${value.replace(" ", "T")}Z` : value);
}
function formatInZone(iso, tz) {
  if (iso === null || iso === void 0 || iso === "") return "\u2014";
  const ms = parseStamp(iso);
  if (Number.isNaN(ms)) return iso;
  if (tz === "UTC") return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")}Z`;
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short"
  }).formatToParts(new Date(ms));
  const get = (t) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")} ${get("timeZoneName")}`;
}

// receiver/src/admin/windows.ts
var WINDOW_MILLIS = 5 * 60 * 60 * 1e3;
var HOUR_MILLIS = 60 * 60 * 1e3;
var RECENT_WINDOWS = 20;
function close(w) {
  return { startMillis: w.startMillis, endMillis: w.endMillis, tokens: w.tokens, turns: w.turns + w.turnKeys.size };
}
function windowsFromHours(buckets, nowMillis) {
  return computeWindows(
    buckets.map((b) => ({ user: b.user, atMillis: b.hourMillis, turnKey: null, turns: b.turns, tokens: b.tokens })),
    nowMillis
  );
}
function computeWindows(events, nowMillis) {
  const byUser = /* @__PURE__ */ new Map();
  for (const e of events) {
    if (!Number.isFinite(e.atMillis)) continue;
    let list = byUser.get(e.user);
    if (list === void 0) {
      list = [];
      byUser.set(e.user, list);
    }
    list.push(e);
  }
  const result = [];
  for (const [user, list] of byUser) {
    list.sort((a, b) => a.atMillis - b.atMillis);
    const windows = [];
    let open = null;
    for (const e of list) {
      if (open === null || e.atMillis >= open.endMillis) {
        if (open !== null) windows.push(close(open));
        const startMillis = Math.floor(e.atMillis / HOUR_MILLIS) * HOUR_MILLIS;
        open = { startMillis, endMillis: startMillis + WINDOW_MILLIS, tokens: 0, turns: 0, turnKeys: /* @__PURE__ */ new Set() };
      }
      open.tokens += e.tokens;
      if (e.turnKey === null) open.turns += e.turns ?? 0;
      else open.turnKeys.add(e.turnKey);
    }
    if (open === null) continue;
    windows.push(close(open));
    let peak = windows[0];
    for (const w of windows) if (w.tokens > peak.tokens) peak = w;
    const last = windows[windows.length - 1];
    const current = nowMillis >= last.startMillis && nowMillis < last.endMillis ? last : null;
    result.push({ user, windows: windows.length, peak, current, recent: windows.slice(-RECENT_WINDOWS).reverse() });
  }
  result.sort((a, b) => b.peak.tokens - a.peak.tokens || a.user.localeCompare(b.user));
  return result;
}

// receiver/src/admin/queries.ts
var MAX_LIST_ROWS = 2e4;
var EVENTS_PAGE = 50;
var MAX_EVENT_PAGES = 1e3;
var USER_SESSIONS = 200;
var FROM_FILTERED = `
  FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
  WHERE e.timestamp_utc >= @from AND e.timestamp_utc < @to
    AND (@user IS NULL OR e.user_email = @user)
    AND (@model IS NULL OR e.model = @model)
    AND (@division IS NULL OR u.division = @division)`;
var FROM_USER = `
  FROM usage_events e
  WHERE e.user_id = (SELECT id FROM users WHERE email = @user)
    AND e.timestamp_utc >= @from AND e.timestamp_utc < @to
    AND (@model IS NULL OR e.model = @model)`;
var TOKEN_SUMS = `
  TOTAL(e.input_tokens) AS input,
  TOTAL(e.output_tokens) AS output,
  TOTAL(e.cache_read_tokens) AS cacheRead,
  TOTAL(e.cache_write_tokens) AS cacheWrite`;
var TURN_KEY = `e.session_id || '/' || e.turn_index`;
var ROLLUP_COLS = `r.user_id, r.model, r.input, r.output, r.cache_read, r.cache_write, r.cw5m, r.cw1h, r.unsplit,
  r.web_search, r.model_turns, r.turns, r.sessions, r.model_sessions, r.last_at`;
var ROLLUP_WHERE = `
      AND (@model IS NULL OR r.model = @model)
      AND (@division IS NULL OR r.user_id IN (SELECT id FROM users WHERE division = @division))`;
var ROLLUP_WHERE_USER = `
      AND r.user_id = (SELECT id FROM users WHERE email = @user)
      AND (@model IS NULL OR r.model = @model)
      AND (@division IS NULL OR r.user_id IN (SELECT id FROM users WHERE division = @division))`;
var fromRollups = (where) => `
  FROM (
    SELECT ${ROLLUP_COLS}, r.day AS day FROM usage_daily r
    WHERE r.day >= @dayFrom AND r.day < @dayTo ${where}
    UNION ALL
    SELECT ${ROLLUP_COLS}, substr(r.hour, 1, 10) AS day FROM usage_hourly r
    WHERE ((r.hour >= @headFrom AND r.hour < @headTo) OR (r.hour >= @tailFrom AND r.hour < @tailTo)) ${where}
  ) r JOIN users u ON u.id = r.user_id`;
var ROLLUP_SUMS2 = `
  TOTAL(r.input) AS input, TOTAL(r.output) AS output, TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite,
  TOTAL(r.cw5m) AS cw5m, TOTAL(r.cw1h) AS cw1h, TOTAL(r.unsplit) AS unsplit, TOTAL(r.web_search) AS webSearch`;
var ROLLUP_COUNTS = `
  TOTAL(r.model_turns) AS modelTurns, TOTAL(r.turns) AS userTurns, TOTAL(r.sessions) AS sessions,
  TOTAL(r.model_sessions) AS modelSessions, MAX(r.last_at) AS lastSeen`;
var groupsSql = (where) => `SELECT u.email AS user, u.division AS division, r.model AS model, r.day AS day,
      ${ROLLUP_SUMS2}, TOTAL(r.model_turns) AS turns
    ${fromRollups(where)}
    GROUP BY u.id, u.email, u.division, r.model, r.day
    ORDER BY day, user, model`;
var totalsSql = (where) => `SELECT u.email AS user, u.division AS division, r.model AS model, ${ROLLUP_SUMS2}, ${ROLLUP_COUNTS}
    ${fromRollups(where)}
    GROUP BY u.id, u.email, u.division, r.model`;
var dayTotalsSql = (where) => `SELECT r.day AS day, r.model AS model, ${ROLLUP_SUMS2}
    ${fromRollups(where)}
    GROUP BY r.day, r.model`;
var windowHoursSql = (where) => `SELECT u.email AS user, r.hour AS hour,
      TOTAL(r.input + r.output + r.cache_read + r.cache_write) AS tokens,
      TOTAL(CASE WHEN @model IS NULL THEN r.turns ELSE r.model_turns END) AS turns
    FROM usage_hourly r JOIN users u ON u.id = r.user_id
    WHERE r.hour >= @headFrom AND r.hour < @tailTo ${where}
    GROUP BY u.id, u.email, r.hour`;
var SQL = {
  // The usage export's and budgets' grain: user × model × UTC day; turns = turns using the model.
  groups: groupsSql(ROLLUP_WHERE),
  groupsUser: groupsSql(ROLLUP_WHERE_USER),
  // The views' grain: user × model over one price period.
  totals: totalsSql(ROLLUP_WHERE),
  totalsUser: totalsSql(ROLLUP_WHERE_USER),
  dayTotals: dayTotalsSql(ROLLUP_WHERE),
  dayTotalsUser: dayTotalsSql(ROLLUP_WHERE_USER),
  windowHours: windowHoursSql(ROLLUP_WHERE),
  windowHoursUser: windowHoursSql(ROLLUP_WHERE_USER),
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS activeUsers FROM users`,
  activeDevices: `SELECT COUNT(*) AS n FROM device_keys k JOIN users u ON u.id = k.user_id
    WHERE k.revoked_at IS NULL AND u.revoked_at IS NULL`,
  events: `SELECT e.received_at AS receivedAt, e.timestamp_utc AS timestampUtc, e.user_email AS userEmail,
      e.reported_email AS reportedEmail, e.device_id AS deviceId, e.session_id AS sessionId, e.turn_index AS turnIndex,
      e.model AS model, e.input_tokens AS input, e.output_tokens AS output, e.cache_read_tokens AS cacheRead,
      e.cache_write_tokens AS cacheWrite, e.signed AS signed, e.plugin_version AS pluginVersion
    ${FROM_FILTERED}
    ORDER BY e.timestamp_utc DESC, e.id DESC LIMIT @limit OFFSET @offset`,
  sessions: `SELECT e.session_id AS sessionId, MIN(e.timestamp_utc) AS firstAt, MAX(e.timestamp_utc) AS lastAt,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, GROUP_CONCAT(DISTINCT e.model) AS models, ${TOKEN_SUMS}
    ${FROM_USER}
    GROUP BY e.session_id ORDER BY lastAt DESC LIMIT ${USER_SESSIONS}`,
  sessionGroups: `SELECT e.session_id AS sessionId, e.model AS model, substr(e.timestamp_utc, 1, 10) AS day, ${TOKEN_SUMS}
    ${FROM_USER}
    GROUP BY e.session_id, e.model, substr(e.timestamp_utc, 1, 10)`,
  rawEvents: `SELECT e.id, e.timestamp_utc, e.received_at, e.user_email, COALESCE(u.division, '') AS division, e.device_id,
      e.session_id, e.turn_index, e.model, e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens,
      e.signed, e.plugin_version, e.schema_version
    ${FROM_FILTERED}
      AND e.id > @after
    ORDER BY e.id LIMIT @limit`,
  keys: `SELECT u.email AS email, k.public_key AS publicKey, k.device_id AS deviceId, k.registered_at AS registeredAt,
      k.last_seen_at AS lastSeenAt, k.revoked_at AS revokedAt, u.revoked_at AS userRevokedAt
    FROM device_keys k JOIN users u ON u.id = k.user_id
    ORDER BY (k.revoked_at IS NOT NULL OR u.revoked_at IS NOT NULL), u.email, k.registered_at
    LIMIT ${MAX_LIST_ROWS}`,
  // Each MAX is one seek in an index on (user_id, …).
  users: `SELECT u.email AS email, u.division AS division, u.created_at AS createdAt, u.revoked_at AS revokedAt,
      (SELECT MAX(t.expires_at) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS tokenExpiresAt,
      (SELECT MAX(t.last_used_at) FROM user_tokens t WHERE t.user_id = u.id) AS tokenLastUsedAt,
      (SELECT COUNT(*) FROM device_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND u.revoked_at IS NULL) AS devices,
      (SELECT MAX(e.received_at) FROM usage_events e WHERE e.user_id = u.id) AS lastReportAt,
      (SELECT MAX(e.timestamp_utc) FROM usage_events e WHERE e.user_id = u.id) AS lastUsageAt
    FROM users u ORDER BY u.revoked_at IS NOT NULL, u.email
    LIMIT ${MAX_LIST_ROWS}`,
  divisions: `SELECT DISTINCT division AS v FROM users WHERE division <> '' ORDER BY division LIMIT 1000`,
  // The models used since @day: each step one seek in usage_daily(model, day), however many rows.
  models: `WITH RECURSIVE m(v) AS (
      SELECT MIN(model) FROM usage_daily
      UNION ALL
      SELECT (SELECT MIN(d.model) FROM usage_daily d WHERE d.model > m.v) FROM m WHERE m.v IS NOT NULL
    )
    SELECT v FROM m WHERE v IS NOT NULL AND EXISTS (SELECT 1 FROM usage_daily d WHERE d.model = m.v AND d.day >= @day)
    ORDER BY v LIMIT 1000`,
  // /metrics: all-time totals per model × division over one price period, and per user × model.
  metricTotals: `SELECT r.model AS model, u.division AS division, '' AS user, ${ROLLUP_SUMS2}, 0 AS turns
    ${fromRollups(ROLLUP_WHERE)}
    GROUP BY r.model, u.division`,
  metricUserTotals: `SELECT u.email AS user, r.model AS model, TOTAL(r.input) AS input, TOTAL(r.output) AS output,
      TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite
    FROM usage_daily r JOIN users u ON u.id = r.user_id GROUP BY u.id, u.email, r.model`
};
var HOUR_MS = 3600 * 1e3;
var DAY_MS = 24 * HOUR_MS;
var hourKey = (ms) => new Date(ms).toISOString().slice(0, 13);
var dayKey = (ms) => new Date(ms).toISOString().slice(0, 10);
function rollupSpan(fromIso, toIso) {
  const fromMs = Math.floor(Date.parse(fromIso) / HOUR_MS) * HOUR_MS;
  const toMs = Math.max(fromMs, Math.ceil(Date.parse(toIso) / HOUR_MS) * HOUR_MS);
  const firstDay = Math.ceil(fromMs / DAY_MS) * DAY_MS;
  const lastDayEnd = Math.floor(toMs / DAY_MS) * DAY_MS;
  if (firstDay > lastDayEnd) {
    return { dayFrom: "", dayTo: "", headFrom: hourKey(fromMs), headTo: hourKey(toMs), tailFrom: "", tailTo: "" };
  }
  return {
    dayFrom: dayKey(firstDay),
    dayTo: dayKey(lastDayEnd),
    headFrom: hourKey(fromMs),
    headTo: hourKey(firstDay),
    tailFrom: hourKey(lastDayEnd),
    tailTo: hourKey(toMs)
  };
}
function pricePeriods(span, book) {
  const hours = [span.headFrom, span.tailFrom].filter((h) => h !== "");
  const first = [span.dayFrom, ...hours.map((h) => h.slice(0, 10))].filter((d) => d !== "").sort()[0];
  if (first === void 0) return [];
  const dates = /* @__PURE__ */ new Set();
  for (const family of book.table.families) for (const p of family.prices) if (p.from > first) dates.add(p.from);
  const bounds = [first, ...[...dates].sort(), "9999-12-31"];
  const periods = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i];
    const end = bounds[i + 1];
    const inPeriod = (hour) => hour !== "" && hour.slice(0, 10) >= start && hour.slice(0, 10) < end;
    const dayFrom = [span.dayFrom, start].sort()[1];
    const dayTo = [span.dayTo, end].sort()[0];
    const days = span.dayFrom !== "" && dayFrom < dayTo;
    const head = inPeriod(span.headFrom);
    const tail = inPeriod(span.tailFrom);
    if (!days && !head && !tail) continue;
    periods.push({
      day: start,
      span: {
        dayFrom: days ? dayFrom : "",
        dayTo: days ? dayTo : "",
        headFrom: head ? span.headFrom : "",
        headTo: head ? span.headTo : "",
        tailFrom: tail ? span.tailFrom : "",
        tailTo: tail ? span.tailTo : ""
      }
    });
  }
  return periods;
}
function filterParams(f) {
  return { from: f.fromIso, to: f.toIso, user: f.user, model: f.model, division: f.division };
}
function isoSeconds2(ms) {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
function priceGroup(book, g, total3) {
  const cost = book.cost({
    model: g.model,
    day: g.day,
    input: g.input,
    output: g.output,
    cacheRead: g.cacheRead,
    cacheWrite: g.cacheWrite,
    cacheWrite5m: g.cw5m + g.unsplit,
    cacheWrite1h: g.cw1h,
    webSearchRequests: g.webSearch
  });
  if (cost.usd !== null && g.unsplit > 0) cost.estimated = true;
  return addCost(total3, cost, g);
}
function zeroTokens() {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
}
function addTokens(into, t) {
  into.input += t.input;
  into.output += t.output;
  into.cacheRead += t.cacheRead;
  into.cacheWrite += t.cacheWrite;
}
function bucket(map, key) {
  let row = map.get(key);
  if (row === void 0) {
    row = { key, users: 0, sessions: 0, turns: 0, lastSeen: null, ...zeroTokens(), cost: emptyTotal(), label: null, seen: /* @__PURE__ */ new Set() };
    map.set(key, row);
  }
  return row;
}
function addTo(row, t, cost, sessions, turns) {
  addTokens(row, t);
  mergeCost(row.cost, cost);
  row.seen.add(t.user);
  row.users = row.seen.size;
  row.sessions += sessions;
  row.turns += turns;
  if (t.lastSeen !== null && (row.lastSeen === null || t.lastSeen > row.lastSeen)) row.lastSeen = t.lastSeen;
}
function sorted(map) {
  return [...map.values()].map(({ seen: _seen, ...row }) => row).sort((a, b) => b.cost.usd - a.cost.usd || total(b) - total(a) || a.key.localeCompare(b.key));
}
function total(t) {
  return t.input + t.output + t.cacheRead + t.cacheWrite;
}
var SHIPPED_BOOK = new PriceBook(SHIPPED_PRICES);
var MAIN_WINDOW_DAYS = 7;
function createQueries(db2) {
  const all = async (key, params) => await db2.all(SQL[key], params);
  const one = async (key, params) => (await all(key, params))[0];
  const filterOnly = (p) => ({ user: p.user, model: p.model, division: p.division });
  const forUser = (p, key) => p.user === null ? key : `${key}User`;
  const perPeriod = async (key, p, book) => {
    const out = [];
    for (const period of pricePeriods(rollupSpan(p.from, p.to), book)) {
      for (const row of await all(key, { ...filterOnly(p), ...period.span })) {
        row.day = period.day;
        out.push(row);
      }
    }
    return out;
  };
  const groups = async (p, opts = {}) => {
    if (opts.prices !== void 0) {
      return (await perPeriod(forUser(p, "totals"), p, opts.prices)).map((t) => ({ ...t, turns: t.modelTurns }));
    }
    return all(forUser(p, "groups"), { ...filterOnly(p), ...rollupSpan(p.from, p.to) });
  };
  const monthValue = async (book, nowMillis) => {
    const now = new Date(nowMillis);
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const cost = emptyTotal();
    const month = { from: isoSeconds2(monthStart), to: isoSeconds2(nowMillis + 1e3), user: null, model: null, division: null };
    for (const g of await groups(month, { prices: book })) priceGroup(book, g, cost);
    const counts = await one("userCounts");
    return { month: now.toISOString().slice(0, 7), cost, activeSeats: counts.activeUsers };
  };
  const windows = async (filter, nowMillis) => {
    const span = rollupSpan(filter.fromIso, filter.toIso);
    let fromIso = filter.fromIso;
    if (filter.user === null) {
      const recent = isoSeconds2(Date.parse(filter.toIso) - MAIN_WINDOW_DAYS * DAY_MS);
      if (recent > fromIso) fromIso = recent;
    }
    const params = { ...filterOnly(filterParams(filter)), headFrom: rollupSpan(fromIso, filter.toIso).headFrom, tailTo: span.tailTo !== "" ? span.tailTo : span.headTo };
    const buckets = (await all(forUser(filter, "windowHours"), params)).map((b) => ({
      user: b.user,
      hourMillis: Date.parse(`${b.hour}:00:00Z`),
      tokens: b.tokens,
      turns: b.turns
    }));
    return { fromIso: `${params.headFrom}:00:00Z`, rows: windowsFromHours(buckets, nowMillis) };
  };
  return {
    groups,
    rawEvents(p, after, limit) {
      return all("rawEvents", { ...p, after, limit });
    },
    async metricTotals(prices, perUser) {
      const book = prices ?? SHIPPED_BOOK;
      const series = /* @__PURE__ */ new Map();
      const allTime = { from: "0001-01-01T00:00:00Z", to: "9999-12-31T00:00:00Z", user: null, model: null, division: null };
      for (const g of await perPeriod("metricTotals", allTime, book)) {
        const key = `${g.model}\0${g.division}`;
        let m = series.get(key);
        if (m === void 0) {
          m = { model: g.model, division: g.division, ...zeroTokens(), costUsd: book.family(g.model) === null ? null : 0 };
          series.set(key, m);
        }
        addTokens(m, g);
        const cost = priceGroup(book, g, emptyTotal());
        if (m.costUsd !== null) m.costUsd += cost.usd;
      }
      return {
        byModelDivision: [...series.values()],
        byUserModel: perUser ? await all("metricUserTotals") : []
      };
    },
    async sessions(p, prices) {
      const book = prices ?? SHIPPED_BOOK;
      const rows = await all("sessions", { ...p });
      const costs = /* @__PURE__ */ new Map();
      for (const g of await all("sessionGroups", { ...p })) {
        let c = costs.get(g.sessionId);
        if (c === void 0) {
          c = emptyTotal();
          costs.set(g.sessionId, c);
        }
        priceGroup(book, { ...g, cw5m: 0, cw1h: 0, unsplit: g.cacheWrite, webSearch: 0 }, c);
      }
      return rows.map((r) => ({ ...r, cost: costs.get(r.sessionId) ?? emptyTotal() }));
    },
    async load(now, filterArg, loadOpts = {}) {
      const nowMillis = now.getTime();
      const book = loadOpts.prices ?? SHIPPED_BOOK;
      const filter = filterArg ?? parseFilter(new URLSearchParams(), nowMillis);
      const p = filterParams(filter);
      const byModelFilter = filter.model !== null;
      const summaryTokens = zeroTokens();
      const summaryCost = emptyTotal();
      const summaryCounts = { sessions: 0, turns: 0 };
      const reporting = /* @__PURE__ */ new Set();
      const byUser = /* @__PURE__ */ new Map();
      const byModel = /* @__PURE__ */ new Map();
      const byDivision = /* @__PURE__ */ new Map();
      for (const t of await perPeriod(forUser(p, "totals"), p, book)) {
        const cost = priceGroup(book, t, emptyTotal());
        const sessions = byModelFilter ? t.modelSessions : t.sessions;
        const turns = byModelFilter ? t.modelTurns : t.userTurns;
        const user = bucket(byUser, t.user);
        addTo(user, t, cost, sessions, turns);
        user.label = t.division;
        addTo(bucket(byModel, t.model), t, cost, t.modelSessions, t.modelTurns);
        addTo(bucket(byDivision, t.division), t, cost, sessions, turns);
        addTokens(summaryTokens, t);
        mergeCost(summaryCost, cost);
        summaryCounts.sessions += sessions;
        summaryCounts.turns += turns;
        reporting.add(t.user);
      }
      for (const row of byModel.values()) row.label = book.family(row.key)?.family ?? null;
      const byDay = /* @__PURE__ */ new Map();
      for (const g of await all(forUser(p, "dayTotals"), { ...filterOnly(p), ...rollupSpan(p.from, p.to) })) {
        let d = byDay.get(g.day);
        if (d === void 0) {
          d = { day: g.day, ...zeroTokens(), cost: emptyTotal() };
          byDay.set(g.day, d);
        }
        addTokens(d, g);
        priceGroup(book, g, d.cost);
      }
      const counts = await one("userCounts");
      const devices = await one("activeDevices");
      const win = await windows(filter, nowMillis);
      const eventsPage = Math.min(Math.max(1, loadOpts.eventsPage ?? 1), MAX_EVENT_PAGES);
      const events = (await all("events", { ...p, limit: EVENTS_PAGE, offset: (eventsPage - 1) * EVENTS_PAGE })).map((e) => ({ ...e, signed: e.signed !== 0 }));
      const days = daysOf(filter).map((day2) => byDay.get(day2) ?? { day: day2, ...zeroTokens(), cost: emptyTotal() });
      return {
        generatedAt: isoSeconds2(nowMillis),
        sinceUtc: filter.fromIso,
        filter,
        pricesSource: book.table.source,
        summary: {
          ...summaryTokens,
          reportingUsers: reporting.size,
          ...summaryCounts,
          users: counts.users,
          activeUsers: counts.activeUsers,
          activeDevices: devices.n,
          cost: summaryCost
        },
        byUser: sorted(byUser),
        byModel: sorted(byModel),
        byDivision: sorted(byDivision),
        days,
        windows: win.rows,
        windowsFromIso: win.fromIso,
        events,
        eventsPage,
        keys: await all("keys"),
        users: await all("users"),
        seatValue: await monthValue(book, nowMillis),
        divisions: (await all("divisions")).map((r) => r.v),
        models: (await all("models", { day: dayKey(nowMillis - 90 * DAY_MS) })).map((r) => r.v)
      };
    }
  };
}
function mergeCost(into, c) {
  into.usd += c.usd;
  into.unpricedTokens += c.unpricedTokens;
  if (c.estimated) into.estimated = true;
}

// receiver/src/admin/esc.ts
var ENTITIES = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;"
};
function esc(value) {
  const text2 = value === null || value === void 0 ? "" : String(value);
  return text2.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}

// receiver/src/admin/style.ts
import { createHash as createHash2 } from "node:crypto";
var CSS = `
:root{color-scheme:light;--fg:#1d2430;--muted:#5b6576;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--accent:#2f5bd3;--bad:#b42318;--ok:#067647}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#1d2430;color:#fff}
header h1{font-size:16px;margin:0;font-weight:600}
header nav{display:flex;gap:14px;flex:1;flex-wrap:wrap}
header a{color:#c9d6ff;text-decoration:none}
header form{margin:0}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:15px;margin:0 0 10px}
h3{font-size:13px;margin:14px 0 6px;color:var(--muted)}
.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.tile b{display:block;font-size:20px;font-weight:600}
.tile span{color:var(--muted);font-size:12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;overflow-wrap:break-word}
.status-active{color:var(--ok);font-weight:600}
.status-revoked,.status-expired{color:var(--bad);font-weight:600}
.flash{border-radius:6px;padding:10px 14px;margin:16px 0}
.flash.ok{background:#ecfdf3;border:1px solid #abefc6}
.flash.error{background:#fef3f2;border:1px solid #fecdca}
.secret{background:#fffaeb;border:1px solid #fedf89;border-radius:6px;padding:10px 14px;margin:16px 0}
.secret code{display:block;font-size:14px;padding:6px 0;user-select:all}
form.inline{display:inline;margin:0}
form.row{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:8px 0}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
input[type=text],input[type=email],input[type=number],input[type=password]{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px;min-width:120px}
button{font:inherit;padding:5px 12px;border-radius:5px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.danger{border-color:var(--bad);background:#fff;color:var(--bad)}
button.plain{border-color:#8da2d8;background:transparent;color:#fff}
.login{max-width:380px;margin:12vh auto}
.login input{width:100%}
.error-text{color:var(--bad)}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin:4px 0}
svg{max-width:100%;height:auto}
svg.chart{width:100%}
svg text{font:11px system-ui,sans-serif;fill:#5b6576}
.warn{background:#fffaeb;border:1px solid #fedf89;border-radius:6px;padding:8px 12px}
.tile b{overflow-wrap:anywhere;font-size:clamp(14px,1.6vw,20px)}
.unpriced{color:var(--muted);font-style:italic}
.pager{display:flex;gap:14px;align-items:center;font-size:13px;color:var(--muted)}
.presets{font-size:13px;margin-bottom:6px}.presets a,.presets b{margin-right:10px}
th a{color:inherit;text-decoration:none}th a:hover{text-decoration:underline}
select,input[type=date],input[type=search]{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px}
form.search{margin:4px 0}
.budget-over{color:var(--bad);font-weight:600}.budget-warning,.budget-on-course-to-exceed{color:#b54708;font-weight:600}.budget-ok{color:var(--ok)}
`;
var CSS_HASH = `'sha256-${createHash2("sha256").update(CSS, "utf8").digest("base64")}'`;
var CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${CSS_HASH}`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'"
].join("; ");
var EXPORT_CONTENT_SECURITY_POLICY = ["default-src 'none'", `style-src ${CSS_HASH}`, "base-uri 'none'", "form-action 'none'"].join("; ");

// receiver/src/admin/views/layout.ts
function csrfField(csrfToken) {
  return `<input type="hidden" name="csrf_token" value="${esc(csrfToken)}">`;
}
var SECTIONS = [
  ["summary", "Summary"],
  ["budgets", "Budgets"],
  ["usage", "Usage"],
  ["inactive", "Inactive seats"],
  ["windows", "5-hour windows"],
  ["events", "Recent events"],
  ["keys", "Device keys"],
  ["users", "Users"],
  ["audit", "Audit log"]
];
function documentShell(title, body, opts = {}) {
  const csp = opts.exportMeta ? `<meta http-equiv="Content-Security-Policy" content="${esc(EXPORT_CONTENT_SECURITY_POLICY)}">` : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${csp}<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer"><meta name="robots" content="noindex"><title>${esc(title)}</title><style>${CSS}</style></head><body>${body}</body></html>`;
}
function header(mode, params = new URLSearchParams()) {
  const nav = SECTIONS.map(([id, label]) => `<a href="#${esc(id)}">${esc(label)}</a>`).join("");
  let actions = "";
  if (mode.kind !== "export") {
    const q2 = new URLSearchParams();
    for (const k of ["range", "from", "to", "user", "division", "model", "tz"]) {
      const v = params.get(k);
      if (v !== null && v !== "") q2.set(k, v);
    }
    const snapshot = new URLSearchParams(q2);
    snapshot.set("export", "");
    actions += `<a href="${esc(`/admin/?${snapshot.toString()}`)}">${esc("Export snapshot")}</a>`;
  }
  if (mode.kind === "session") {
    actions += `<form method="post" action="/admin/logout">${csrfField(mode.csrfToken)}<button class="plain" type="submit">Log out</button></form>`;
  }
  return `<header><h1>ccflux admin</h1><nav>${nav}</nav>${actions}</header>`;
}

// receiver/src/admin/views/format.ts
var GROUPED = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
function num(n) {
  return esc(GROUPED.format(n ?? 0));
}
function compact(n) {
  const abs = Math.abs(n);
  const [div, unit] = abs >= 1e9 ? [1e9, "B"] : abs >= 1e6 ? [1e6, "M"] : abs >= 1e3 ? [1e3, "k"] : [1, ""];
  const value = n / div;
  const digits = Number.isInteger(value) || Math.abs(value) >= 100 ? 0 : 1;
  return esc(`${value.toFixed(digits).replace(/\.0$/, "")}${unit}`);
}
function percent(part, whole) {
  return esc(whole > 0 ? `${(part / whole * 100).toFixed(1)}%` : "\u2014");
}
function cacheHitRate(t) {
  return percent(t.cacheRead, t.input + t.cacheRead + t.cacheWrite);
}
function when(value) {
  if (value === null || value === void 0 || value === "") return esc("\u2014");
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z?$/.exec(value);
  return esc(m ? `${m[1]} ${m[2]}Z` : value);
}
function total2(t) {
  return t.input + t.output + t.cacheRead + t.cacheWrite;
}
var USD = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
function dollars(usd) {
  return esc(USD.format(usd));
}
function money(c) {
  if (c.usd === 0 && c.unpricedTokens > 0) return `<span class="unpriced" title="no price for this model">unpriced</span>`;
  const base = `${c.estimated ? "~" : ""}${USD.format(c.usd)}`;
  const rest = c.unpricedTokens > 0 ? ` <span class="unpriced" title="${esc(`${GROUPED.format(c.unpricedTokens)} tokens of models without a price`)}">+ unpriced</span>` : "";
  return `${esc(base)}${rest}`;
}
function whenIn(value, tz) {
  if (tz === "UTC") return when(value);
  if (value === null || value === void 0 || value === "") return esc("\u2014");
  if (Number.isNaN(parseStamp(value))) return esc(value);
  return esc(formatInZone(value, tz));
}
function tileNum(n) {
  return Math.abs(n) >= 1e8 ? compact(n) : num(n);
}

// receiver/src/admin/views/budgets.ts
function amount(unit, v) {
  return unit === "usd" ? dollars(v) : `${num(v)} tokens`;
}
function bar(percent2) {
  const w = 160;
  const fill = Math.min(w, percent2 / 100 * w);
  const colour = percent2 >= 100 ? "#b42318" : percent2 >= 80 ? "#f79009" : "#2f5bd3";
  return `<svg width="${w}" height="12" viewBox="0 0 ${w} 12" aria-hidden="true"><rect x="0" y="0" width="${w}" height="12" fill="#eef1f6"/><rect x="0" y="0" width="${fill.toFixed(1)}" height="12" fill="${colour}"/><line x1="${(w * 0.8).toFixed(1)}" x2="${(w * 0.8).toFixed(1)}" y1="0" y2="12" stroke="#5b6576"/></svg>`;
}
function setForm(csrf) {
  return `<h3>Set a monthly budget</h3><form class="row" method="post" action="/admin/budgets">${csrfField(csrf)}<label>For<select name="scope"><option value="org">the organisation</option><option value="division">a division</option><option value="user">a user</option></select></label><label>Division or email<input type="text" name="subject" maxlength="255" placeholder="empty for the organisation"></label><label>Unit<select name="unit"><option value="usd">US dollars (list price)</option><option value="tokens">tokens</option></select></label><label>Monthly limit<input type="number" name="limit" min="1" step="any" required></label><button type="submit">Save budget</button></form><p class="note">Setting a budget again for the same organisation, division or user replaces it. Crossing 80 % and 100 % in a month is recorded once and, with <code>ALERT_WEBHOOK_URL</code> set, posted to it (Slack-compatible).</p>`;
}
function renderBudgets(statuses, alerts, mode, opts) {
  const rows = statuses.map((s) => {
    const b = s.budget;
    const who = b.scope === "org" ? "Organisation" : `${b.scope === "division" ? "Division" : "User"} ${b.subject}`;
    const state = s.percent >= 100 ? "over" : s.percent >= 80 ? "warning" : s.forecast >= b.monthlyLimit ? "on course to exceed" : "ok";
    const del = mode.kind === "session" ? `<td><form class="inline" method="post" action="/admin/budgets/delete">${csrfField(mode.csrfToken)}<input type="hidden" name="id" value="${esc(String(b.id))}"><button class="danger" type="submit">Delete</button></form></td>` : "";
    return `<tr><td>${esc(who)}</td><td class="n">${amount(b.unit, b.monthlyLimit)}</td><td class="n">${amount(b.unit, s.spent)}</td><td class="n">${esc(`${s.percent.toFixed(1)}%`)}</td><td>${bar(s.percent)}</td><td class="n">${amount(b.unit, s.forecast)}</td><td><span class="budget-${esc(state.replaceAll(" ", "-"))}">${esc(state)}</span></td>${del}</tr>`;
  }).join("");
  const table = statuses.length === 0 ? `<p class="note">No budgets set.</p>` : `<div class="scroll"><table data-table="budgets"><thead><tr><th>Budget</th><th class="n">Monthly limit</th><th class="n">Spent in ${esc(opts.month)}</th><th class="n">Used</th><th>Burn (line at 80 %)</th><th class="n">Forecast for the month</th><th>Status</th>${mode.kind === "session" ? "<th></th>" : ""}</tr></thead><tbody>${rows}</tbody></table></div>`;
  const alertRows = alerts.map((a) => {
    const who = a.scope === "org" ? "Organisation" : a.subject;
    const delivery = a.deliveredAt !== null ? `sent ${whenIn(a.deliveredAt, opts.tz)}` : !opts.webhook ? esc("recorded (no ALERT_WEBHOOK_URL)") : a.nextAttemptAt === null && a.attempts > 0 ? esc(`gave up after ${a.attempts} attempts: ${a.lastError ?? ""}`) : esc(a.attempts === 0 ? "pending" : `retrying (${a.attempts} attempts, last: ${a.lastError ?? ""})`);
    return `<tr><td>${whenIn(a.crossedAt, opts.tz)}</td><td>${esc(who)}</td><td class="n">${esc(`${a.threshold}%`)}</td><td class="n">${amount(a.unit, a.spent)}</td><td>${delivery}</td></tr>`;
  }).join("");
  const alertTable = alerts.length === 0 ? "" : `<h3>Recent alerts</h3><div class="scroll"><table data-table="alerts"><thead><tr><th>Crossed</th><th>Budget</th><th class="n">Threshold</th><th class="n">Spent then</th><th>Webhook</th></tr></thead><tbody>${alertRows}</tbody></table></div>`;
  return `<section id="budgets"><h2>Budgets, ${esc(opts.month)}</h2>${table}${alertTable}${mode.kind === "session" ? setForm(mode.csrfToken) : ""}</section>`;
}

// receiver/src/admin/views/audit.ts
var AUDIT_PAGE = 50;
function detailText(detail) {
  if (detail === "") return "";
  try {
    const value = JSON.parse(detail);
    return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ");
  } catch {
    return detail;
  }
}
function renderAudit(ctx, rows, page, tz) {
  const head = '<h2>Audit log</h2><p class="note">Every admin action in the range: logins (also failed ones), logouts, provisioning, revocations, reissues, key revocations and budget changes, from the dashboard and the CLI.</p>';
  const download = ctx.interactive ? `<p class="note"><a href="${esc(hrefWith("/admin/export/audit.csv", ctx.params, {}))}">Download the audit log (CSV)</a></p>` : "";
  if (rows.length === 0 && page === 1) return `<section id="audit">${head}<p class="note">No admin actions in this range.</p>${download}</section>`;
  const body = rows.map(
    (r) => `<tr><td>${whenIn(r.at, tz)}</td><td class="mono">${esc(r.action)}</td><td>${esc(r.actor)}</td><td class="mono">${esc(r.source)}</td><td class="mono">${esc(r.target)}</td><td>${esc(detailText(r.detail))}</td></tr>`
  ).join("");
  let pager = "";
  if (ctx.interactive) {
    const link = (p) => esc(`${hrefWith(ctx.path, ctx.params, { "audit.page": p === 1 ? null : String(p) })}#audit`);
    const prev = page > 1 ? `<a rel="prev" href="${link(page - 1)}">\u2190 Newer</a>` : "";
    const next = rows.length === AUDIT_PAGE ? `<a rel="next" href="${link(page + 1)}">Older \u2192</a>` : "";
    pager = `<p class="pager">${prev} <span>Page ${num(page)}</span> ${next}</p>`;
  }
  return `<section id="audit">${head}<div class="scroll"><table data-table="audit"><thead><tr><th>Time</th><th>Action</th><th>By</th><th>Source address</th><th>Target</th><th>What changed</th></tr></thead><tbody>${body}</tbody></table></div>${pager}${download}</section>`;
}
function exportLinks(ctx) {
  if (!ctx.interactive) return "";
  const link = (path2, label) => `<a href="${esc(hrefWith(path2, ctx.params, {}))}">${esc(label)}</a>`;
  return `<p class="note exports">Download this range and filter: ${link("/admin/export/usage.csv", "usage per user, model and day (CSV)")} \xB7 ${link("/admin/export/usage.json", "JSON")} \xB7 ${link("/admin/export/events.csv", "raw usage rows (CSV)")} \xB7 ${link("/admin/export/events.json", "JSON")}</p>`;
}

// receiver/src/admin/views/chart.ts
var SERIES = [
  { key: "input", label: "Input", colour: "#2f5bd3" },
  { key: "output", label: "Output", colour: "#7a5af8" },
  { key: "cacheWrite", label: "Cache write", colour: "#f79009" },
  { key: "cacheRead", label: "Cache read", colour: "#98a2b3" }
];
var WIDTH = 1180;
var HEIGHT = 240;
var LEFT = 52;
var RIGHT = 8;
var TOP = 10;
var BOTTOM = 26;
var GRID_LINES = 4;
function fmt(n) {
  return esc(Number.isFinite(n) ? n.toFixed(1).replace(/\.0$/, "") : "0");
}
function axisMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}
function legend() {
  const items = SERIES.map(
    (s) => `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${esc(s.colour)}"/></svg> ${esc(s.label)}</span>`
  );
  return `<div class="legend">${items.join("")}</div>`;
}
function dailyChart(days) {
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const totals = days.map((d) => d.input + d.output + d.cacheRead + d.cacheWrite);
  const peak = Math.max(0, ...totals);
  const max = peak === 0 ? GRID_LINES : axisMax(peak);
  const labelEvery = Math.max(1, Math.ceil(days.length / 12));
  const slot = days.length > 0 ? plotW / days.length : plotW;
  const barW = Math.max(1, slot * 0.72);
  const parts = [];
  for (let g = 0; g <= GRID_LINES; g++) {
    const value = max / GRID_LINES * g;
    const y = TOP + plotH - plotH * g / GRID_LINES;
    parts.push(`<line x1="${fmt(LEFT)}" x2="${fmt(WIDTH - RIGHT)}" y1="${fmt(y)}" y2="${fmt(y)}" stroke="#e4e7ec"/>`);
    parts.push(`<text x="${fmt(LEFT - 6)}" y="${fmt(y + 4)}" text-anchor="end">${compact(value)}</text>`);
  }
  days.forEach((d, i) => {
    const x = LEFT + i * slot + (slot - barW) / 2;
    let y = TOP + plotH;
    const rects = [];
    for (const s of SERIES) {
      const h = d[s.key] / max * plotH;
      if (h <= 0) continue;
      y -= h;
      rects.push(`<rect x="${fmt(x)}" y="${fmt(y)}" width="${fmt(barW)}" height="${fmt(h)}" fill="${esc(s.colour)}"/>`);
    }
    const tip = `${d.day}: ${SERIES.map((s) => `${s.label.toLowerCase()} ${d[s.key].toLocaleString("en-US")}`).join(", ")}`;
    parts.push(`<g><title>${esc(tip)}</title>${rects.join("")}<rect x="${fmt(x)}" y="${fmt(TOP)}" width="${fmt(barW)}" height="${fmt(plotH)}" fill="transparent"/></g>`);
    if (i % labelEvery === 0 || i === days.length - 1) {
      parts.push(`<text x="${fmt(x + barW / 2)}" y="${fmt(HEIGHT - 8)}" text-anchor="middle">${esc(d.day.slice(5))}</text>`);
    }
  });
  const sum = totals.reduce((a, b) => a + b, 0);
  if (sum === 0) {
    parts.push(`<text x="${fmt(LEFT + plotW / 2)}" y="${fmt(TOP + plotH / 2)}" text-anchor="middle">No usage in this range</text>`);
  }
  return `<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${esc(`Tokens per day, ${days.length} days, ${sum.toLocaleString("en-US")} in total`)}">${parts.join("")}</svg>${legend()}<p class="note">${num(sum)} tokens over ${num(days.length)} days (UTC).</p>`;
}
function meter(value, max, current) {
  const w = 160;
  const h = 12;
  const scale = max > 0 ? w / max : 0;
  const cur = current !== null && current > 0 ? `<rect x="0" y="3" width="${fmt(Math.min(w, current * scale))}" height="6" fill="#2f5bd3"/>` : "";
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true"><rect x="0" y="0" width="${w}" height="${h}" fill="#eef1f6"/><rect x="0" y="0" width="${fmt(Math.min(w, value * scale))}" height="${h}" fill="#b2c3f0"/>${cur}</svg>`;
}

// receiver/src/admin/views/events.ts
function renderEvents(ctx, rows, page, pageSize, tz) {
  const title = "<h2>Recent events</h2>";
  if (rows.length === 0 && page === 1) return `<section id="events">${title}<p class="note">No reports in this range.</p></section>`;
  const body = rows.map(
    (e) => `<tr><td>${whenIn(e.receivedAt, tz)}</td><td>${whenIn(e.timestampUtc, tz)}</td><td class="mono">${esc(e.userEmail)}</td><td class="mono">${esc(e.deviceId)}</td><td class="mono">${esc(e.sessionId)}</td><td class="n">${num(e.turnIndex)}</td><td class="mono">${esc(e.model)}</td><td class="n">${num(e.input)}</td><td class="n">${num(e.output)}</td><td class="n">${num(e.cacheRead)}</td><td class="n">${num(e.cacheWrite)}</td><td>${esc(e.signed ? "yes" : "no")}</td><td class="mono">${esc(e.pluginVersion)}</td></tr>`
  ).join("");
  let pager = "";
  if (ctx.interactive) {
    const link = (p) => esc(`${hrefWith(ctx.path, ctx.params, { "events.page": p === 1 ? null : String(p) })}#events`);
    const prev = page > 1 ? `<a rel="prev" href="${link(page - 1)}">\u2190 Newer</a>` : "";
    const next = rows.length === pageSize ? `<a rel="next" href="${link(page + 1)}">Older \u2192</a>` : "";
    pager = `<p class="pager">${prev} <span>Page ${num(page)}</span> ${next}</p>`;
  }
  return `<section id="events">${title}<p class="note">Rows received in the range, one per turn and model, newest first.</p><div class="scroll"><table data-table="events"><thead><tr><th>Received</th><th>Turn time</th><th>User</th><th>Device</th><th>Session</th><th class="n">Turn</th><th>Model</th><th class="n">Input</th><th class="n">Output</th><th class="n">Cache read</th><th class="n">Cache write</th><th>Signed</th><th>Plugin</th></tr></thead><tbody>${body}</tbody></table></div>${pager}</section>`;
}

// receiver/src/admin/views/table.ts
function hiddenParams(params, drop) {
  let out = "";
  for (const [k, v] of params) if (!drop(k)) out += `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`;
  return out;
}
function compare(a, b) {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}
function dataTable(ctx, id, rows, columns, opts) {
  const sortable = columns.filter((c) => c.sort !== void 0).map((c) => c.key);
  const state = parseTable(ctx.params, id, sortable);
  let list = rows;
  const searchable = columns.filter((c) => c.search !== void 0);
  if (ctx.interactive && state.q !== "" && searchable.length > 0) {
    list = list.filter((r) => searchable.some((c) => c.search(r).toLowerCase().includes(state.q)));
  }
  const sortCol = columns.find((c) => c.key === state.sort);
  if (ctx.interactive && sortCol?.sort !== void 0) {
    const key = sortCol.sort;
    const sign = state.dir === "asc" ? 1 : -1;
    list = [...list].sort((a, b) => sign * compare(key(a), key(b)));
  }
  const size = opts.pageSize ?? PAGE_SIZE;
  const pages = Math.max(1, Math.ceil(list.length / size));
  const page = Math.min(state.page, pages);
  const shown = ctx.interactive ? list.slice((page - 1) * size, page * size) : list;
  const link = (changes) => esc(`${hrefWith(ctx.path, ctx.params, changes)}#${id}`);
  const head = columns.map((c) => {
    const cls = c.numeric ? ' class="n"' : "";
    if (!ctx.interactive || c.sort === void 0) return `<th${cls}>${esc(c.label)}</th>`;
    const active = state.sort === c.key;
    const next = active && state.dir === "desc" ? "asc" : "desc";
    const arrow = active ? state.dir === "desc" ? " \u25BC" : " \u25B2" : "";
    const label = `${c.label}${arrow}`;
    return `<th${cls}${active ? ` aria-sort="${state.dir === "desc" ? "descending" : "ascending"}"` : ""}><a href="${link({ [`${id}.sort`]: c.key, [`${id}.dir`]: next, [`${id}.page`]: null })}">${esc(label)}</a></th>`;
  }).join("");
  const body = shown.map((r) => `<tr>${columns.map((c) => `<td${c.numeric ? ' class="n"' : ""}>${c.cell(r)}</td>`).join("")}</tr>`).join("");
  let search = "";
  if (ctx.interactive && searchable.length > 0) {
    search = `<form class="row search" method="get" action="${esc(`${ctx.path}#${id}`)}">` + hiddenParams(ctx.params, (k) => k === `${id}.q` || k === `${id}.page`) + `<label>${esc(opts.searchLabel ?? "Search")}<input type="search" name="${esc(`${id}.q`)}" value="${esc(state.q)}" maxlength="255"></label><button type="submit">Search</button></form>`;
  }
  let pager = "";
  if (ctx.interactive && list.length > 0) {
    const first = (page - 1) * size + 1;
    const last = Math.min(page * size, list.length);
    const prev = page > 1 ? `<a rel="prev" href="${link({ [`${id}.page`]: String(page - 1) })}">\u2190 Previous</a>` : "";
    const nextLink = page < pages ? `<a rel="next" href="${link({ [`${id}.page`]: String(page + 1) })}">Next \u2192</a>` : "";
    pager = `<p class="pager">${prev} <span>Rows ${num(first)}\u2013${num(last)} of ${num(list.length)}</span> ${nextLink}</p>`;
  }
  if (list.length === 0) {
    const text2 = rows.length === 0 ? opts.empty : "No rows match the search.";
    return `${search}<p class="note">${esc(text2)}</p>`;
  }
  return `${search}<div class="scroll"><table data-table="${esc(id)}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>${pager}`;
}

// receiver/src/admin/views/filterbar.ts
var PRESET_LABELS = { "24h": "24 h", "7d": "7 days", "30d": "30 days", "90d": "90 days", custom: "Custom" };
var FORM_FIELDS = /* @__PURE__ */ new Set(["range", "from", "to", "user", "division", "model", "tz"]);
function options(values, selected, any) {
  return `<option value="">${esc(any)}</option>` + values.map((v) => `<option value="${esc(v)}"${v === selected ? " selected" : ""}>${esc(v)}</option>`).join("");
}
function filterBar(ctx, f, choices) {
  if (!ctx.interactive) {
    const parts = [`${f.fromIso} to ${f.toIso}`];
    if (f.user) parts.push(`user ${f.user}`);
    if (f.division) parts.push(`division ${f.division}`);
    if (f.model) parts.push(`model ${f.model}`);
    return `<p class="note">Range and filters: ${esc(parts.join(", "))}.</p>`;
  }
  const presets = [...RANGE_PRESETS, "custom"].map((r) => {
    const href = hrefWith(ctx.path, ctx.params, { range: r === "30d" ? null : r, from: r === "custom" ? f.fromDay : null, to: r === "custom" ? f.toDay : null });
    return r === f.range ? `<b>${esc(PRESET_LABELS[r])}</b>` : `<a href="${esc(href)}">${esc(PRESET_LABELS[r])}</a>`;
  }).join(" ");
  const problems = f.problems.map((p) => `<p class="warn">${esc(p)}</p>`).join("");
  return `<section id="filters"><div class="presets">Range: ${presets}</div><form class="row" method="get" action="${esc(ctx.path)}">` + hiddenParams(ctx.params, (k) => FORM_FIELDS.has(k) || k.endsWith(".page")) + `<label>Range<select name="range">${[...RANGE_PRESETS, "custom"].map((r) => `<option value="${esc(r)}"${r === f.range ? " selected" : ""}>${esc(PRESET_LABELS[r])}</option>`).join("")}</select></label><label>From (UTC)<input type="date" name="from" value="${esc(f.fromDay)}"></label><label>To (UTC)<input type="date" name="to" value="${esc(f.toDay)}"></label><label>User<input type="text" name="user" value="${esc(f.user ?? "")}" maxlength="255" placeholder="email"></label><label>Division<select name="division">${options(choices.divisions, f.division, "all divisions")}</select></label><label>Model<select name="model">${options(choices.models, f.model, "all models")}</select></label><label>Time zone<input type="text" name="tz" value="${esc(f.tz)}" maxlength="64" placeholder="UTC"></label><button type="submit">Apply</button></form><p class="note">From/To apply when Range is Custom. Times shown in ${esc(f.tz)}; days are UTC days.</p>${problems}</section>`;
}

// receiver/src/admin/views/keys.ts
function keyStatus(k) {
  if (k.revokedAt !== null) return "revoked";
  if (k.userRevokedAt !== null) return "user revoked";
  return "active";
}
function renderKeys(ctx, rows, mode, tz) {
  const active = rows.filter((k) => keyStatus(k) === "active").length;
  const intro = `<p class="note">${num(active)} active, ${num(rows.length - active)} revoked (a revoked user's keys count as revoked). Check that every user's devices appear here before setting <code>REQUIRE_SIGNATURES=1</code>. A revoked device stops reporting and goes silent.</p>`;
  const cols = [
    { key: "user", label: "User", sort: (k) => k.email, search: (k) => `${k.email} ${k.deviceId}`, cell: (k) => `<span class="mono">${esc(k.email)}</span>` },
    { key: "device", label: "Device", sort: (k) => k.deviceId, cell: (k) => `<span class="mono">${esc(k.deviceId)}</span>` },
    { key: "key", label: "Public key", cell: (k) => `<span class="mono">${esc(k.publicKey)}</span>` },
    { key: "registered", label: "Registered", sort: (k) => k.registeredAt, cell: (k) => whenIn(k.registeredAt, tz) },
    { key: "seen", label: "Last seen", sort: (k) => k.lastSeenAt, cell: (k) => whenIn(k.lastSeenAt, tz) },
    {
      key: "status",
      label: "Status",
      sort: (k) => keyStatus(k),
      cell: (k) => {
        const s = keyStatus(k);
        const at = k.revokedAt ?? k.userRevokedAt;
        return `<span class="status-${s === "active" ? "active" : "revoked"}">${esc(s)}</span>${at ? ` ${whenIn(at, tz)}` : ""}`;
      }
    }
  ];
  if (mode.kind === "session") {
    const csrf = mode.csrfToken;
    cols.push({
      key: "action",
      label: "",
      cell: (k) => k.revokedAt === null ? `<form class="inline" method="post" action="/admin/keys/revoke">${csrfField(csrf)}<input type="hidden" name="public_key" value="${esc(k.publicKey)}"><input type="hidden" name="email" value="${esc(k.email)}"><button class="danger" type="submit">Revoke</button></form>` : ""
    });
  }
  return `<section id="keys"><h2>Device keys</h2>${intro}${dataTable(ctx, "keys", rows, cols, { empty: "No device keys registered yet.", searchLabel: "Search users or devices" })}</section>`;
}

// receiver/src/admin/views/usage.ts
function tokenColumns() {
  return [
    { key: "sessions", label: "Sessions", numeric: true, sort: (r) => r.sessions, cell: (r) => num(r.sessions) },
    { key: "turns", label: "Turns", numeric: true, sort: (r) => r.turns, cell: (r) => num(r.turns) },
    { key: "input", label: "Input", numeric: true, sort: (r) => r.input, cell: (r) => num(r.input) },
    { key: "output", label: "Output", numeric: true, sort: (r) => r.output, cell: (r) => num(r.output) },
    { key: "cacheRead", label: "Cache read", numeric: true, sort: (r) => r.cacheRead, cell: (r) => num(r.cacheRead) },
    { key: "cacheWrite", label: "Cache write", numeric: true, sort: (r) => r.cacheWrite, cell: (r) => num(r.cacheWrite) },
    { key: "total", label: "Total", numeric: true, sort: (r) => total2(r), cell: (r) => num(total2(r)) },
    { key: "hit", label: "Cache hit", numeric: true, cell: (r) => cacheHitRate(r) },
    { key: "cost", label: "Cost (API list)", numeric: true, sort: (r) => r.cost.usd, cell: (r) => money(r.cost) }
  ];
}
function userLink(ctx, email) {
  if (!ctx.interactive) return `<span class="mono">${esc(email)}</span>`;
  const keep = new URLSearchParams();
  for (const k of ["range", "from", "to", "tz"]) {
    const v = ctx.params.get(k);
    if (v !== null) keep.set(k, v);
  }
  keep.set("email", email);
  return `<a class="mono" href="${esc(`/admin/user?${keep.toString()}`)}">${esc(email)}</a>`;
}
function filterLink(ctx, name, value, label) {
  if (!ctx.interactive) return esc(label);
  return `<a href="${esc(hrefWith(ctx.path, ctx.params, { [name]: value }))}" title="${esc(`filter by this ${name}`)}">${esc(label)}</a>`;
}
function byUserTable(ctx, rows, tz) {
  const cols = [
    { key: "user", label: "User", sort: (r) => r.key, search: (r) => `${r.key} ${r.label ?? ""}`, cell: (r) => userLink(ctx, r.key) },
    { key: "division", label: "Division", sort: (r) => r.label ?? "", cell: (r) => r.label ? filterLink(ctx, "division", r.label, r.label) : "" },
    ...tokenColumns(),
    { key: "last", label: "Last turn", sort: (r) => r.lastSeen, cell: (r) => whenIn(r.lastSeen, tz) }
  ];
  return dataTable(ctx, "byuser", rows, cols, { empty: "No usage reported in this range.", searchLabel: "Search users or divisions" });
}
function byModelTable(ctx, rows, tz) {
  const cols = [
    { key: "model", label: "Model", sort: (r) => r.key, search: (r) => r.key, cell: (r) => `<span class="mono">${filterLink(ctx, "model", r.key, r.key)}</span>` },
    { key: "family", label: "Price family", sort: (r) => r.label ?? "", cell: (r) => r.label === null ? `<span class="unpriced">unpriced</span>` : esc(r.label) },
    { key: "users", label: "Users", numeric: true, sort: (r) => r.users, cell: (r) => num(r.users) },
    ...tokenColumns(),
    { key: "last", label: "Last turn", sort: (r) => r.lastSeen, cell: (r) => whenIn(r.lastSeen, tz) }
  ];
  return dataTable(ctx, "bymodel", rows, cols, { empty: "No usage reported in this range.", searchLabel: "Search models" });
}
function byDivisionTable(ctx, rows, seats) {
  const cols = [
    { key: "division", label: "Division", sort: (r) => r.key, search: (r) => r.key, cell: (r) => r.key === "" ? esc("(none)") : filterLink(ctx, "division", r.key, r.key) },
    { key: "seats", label: "Seats", numeric: true, sort: (r) => seats.get(r.key) ?? 0, cell: (r) => num(seats.get(r.key) ?? 0) },
    { key: "users", label: "Users reporting", numeric: true, sort: (r) => r.users, cell: (r) => num(r.users) },
    ...tokenColumns(),
    {
      key: "perSeat",
      label: "Cost per reporting user",
      numeric: true,
      sort: (r) => r.users > 0 ? r.cost.usd / r.users : 0,
      cell: (r) => money({ ...r.cost, usd: r.users > 0 ? r.cost.usd / r.users : 0 })
    }
  ];
  return dataTable(ctx, "bydiv", rows, cols, { empty: "No usage reported in this range.", searchLabel: "Search divisions" });
}
function renderUsage(ctx, data, opts) {
  return `<section id="usage"><h2>Usage and cost</h2><h3>Tokens per day</h3>${dailyChart(data.days)}<h3 id="byuser">By user</h3>${byUserTable(ctx, data.byUser, opts.tz)}<h3 id="bymodel">By model</h3>${byModelTable(ctx, data.byModel, opts.tz)}<h3 id="bydiv">By division</h3>${byDivisionTable(ctx, data.byDivision, opts.seats)}<p class="note">Cost is the API-equivalent value at list prices (price table: see docs/admin.md). <b>~</b> marks an estimate: cache writes without the 5-minute/1-hour split are priced as 5-minute writes. "unpriced" marks models without a price; their tokens are never counted as $0.</p></section>`;
}

// receiver/src/admin/views/seats.ts
var INACTIVE_DAYS_DEFAULT = 30;
var DAY_MILLIS2 = 24 * 3600 * 1e3;
function inactiveDays(params) {
  const n = Number(params.get("inactive") ?? INACTIVE_DAYS_DEFAULT);
  return Number.isSafeInteger(n) && n >= 1 && n <= 3650 ? n : INACTIVE_DAYS_DEFAULT;
}
function inactiveSeats(users, nowMillis, days) {
  const cutoff = nowMillis - days * DAY_MILLIS2;
  return users.filter((u) => u.revokedAt === null && (u.lastUsageAt === null || !(Date.parse(u.lastUsageAt) >= cutoff)));
}
function renderInactive(ctx, users, nowMillis, tz) {
  const days = inactiveDays(ctx.params);
  const rows = inactiveSeats(users, nowMillis, days);
  const cols = [
    { key: "email", label: "User", sort: (r) => r.email, search: (r) => `${r.email} ${r.division}`, cell: (r) => userLink(ctx, r.email) },
    { key: "division", label: "Division", sort: (r) => r.division, cell: (r) => esc(r.division) },
    { key: "created", label: "Provisioned", sort: (r) => r.createdAt, cell: (r) => whenIn(r.createdAt, tz) },
    { key: "last", label: "Last turn", sort: (r) => r.lastUsageAt, cell: (r) => r.lastUsageAt === null ? esc("never") : whenIn(r.lastUsageAt, tz) },
    { key: "devices", label: "Devices", numeric: true, sort: (r) => r.devices, cell: (r) => esc(String(r.devices)) }
  ];
  const form = ctx.interactive ? `<form class="row" method="get" action="${esc(`${ctx.path}#inactive`)}">` + [...ctx.params].filter(([k]) => k !== "inactive" && k !== "inactive.page").map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join("") + `<label>No usage for (days)<input type="number" name="inactive" min="1" max="3650" value="${esc(String(days))}"></label><button type="submit">Show</button></form>` : "";
  return `<section id="inactive"><h2>Inactive seats</h2><p class="note">${esc(String(rows.length))} active users with no turn in the last ${esc(String(days))} days (any model, any range): candidates to reclaim.</p>${form}` + dataTable(ctx, "inactive", rows, cols, { empty: "Every active user reported usage in this period.", searchLabel: "Search users" }) + `</section>`;
}

// receiver/src/admin/views/summary.ts
function tile(value, label, title) {
  return `<div class="tile"${title ? ` title="${esc(title)}"` : ""}><b>${value}</b><span>${esc(label)}</span></div>`;
}
function renderSummary(s, rangeLabel2, seat, seatPriceUsd) {
  const perSeat = seat.activeSeats > 0 ? seat.cost.usd / seat.activeSeats : 0;
  const seatTiles = tile(money({ ...seat.cost, usd: perSeat }), `API-equivalent value per seat, ${seat.month} so far`) + (seatPriceUsd === null ? "" : tile(dollars(seatPriceUsd), "seat price (SEAT_PRICE_USD)"));
  return `<section id="summary"><h2>Organisation, ${esc(rangeLabel2)}</h2><div class="tiles">` + tile(`${num(s.activeUsers)}<small> / ${num(s.users)}</small>`, "active users / provisioned") + tile(num(s.reportingUsers), "users reporting") + tile(num(s.activeDevices), "active device keys") + tile(num(s.sessions), "sessions") + tile(num(s.turns), "turns") + tile(money(s.cost), "cost at API list prices") + tile(tileNum(s.input), "input tokens", s.input.toLocaleString("en-US")) + tile(tileNum(s.output), "output tokens", s.output.toLocaleString("en-US")) + tile(tileNum(s.cacheRead), "cache read tokens", s.cacheRead.toLocaleString("en-US")) + tile(tileNum(s.cacheWrite), "cache write tokens", s.cacheWrite.toLocaleString("en-US")) + tile(cacheHitRate(s), "cache hit rate") + seatTiles + `</div><p class="note">Cache hit rate: cache reads as a share of all prompt tokens (input + cache read + cache write). Value per seat: this calendar month's (UTC) API-equivalent cost over ${num(seat.activeSeats)} active seats${seatPriceUsd === null ? " (set SEAT_PRICE_USD to compare with what a seat costs)" : ""}. Active device keys exclude keys of revoked users.</p></section>`;
}

// receiver/src/admin/views/users.ts
function userStatus(u, nowIso) {
  if (u.revokedAt !== null) return "revoked";
  const expires = u.tokenExpiresAt === null ? Number.NaN : Date.parse(u.tokenExpiresAt);
  if (!(expires > Date.parse(nowIso))) return "expired";
  return "active";
}
function provisionForm(csrfToken) {
  return `<h3>Provision a user</h3><form class="row" method="post" action="/admin/users">${csrfField(csrfToken)}<label>Email<input type="email" name="email" required maxlength="255" autocomplete="off"></label><label>Division<input type="text" name="division" maxlength="255" autocomplete="off"></label><label>Days valid<input type="number" name="days" min="1" max="3650" placeholder="default"></label><button type="submit">Provision</button></form><p class="note">The new refresh token is shown once, with the endpoint the user configures. Each exchange extends its expiry (rolling); "days valid" sets the first expiry. Reissuing revokes the old token. For many users at once: <code>ccflux-receiver users import users.csv</code> (docs/admin.md).</p>`;
}
function renderUsers(ctx, rows, mode, nowIso, tz) {
  const cols = [
    { key: "email", label: "Email", sort: (u) => u.email, search: (u) => `${u.email} ${u.division}`, cell: (u) => userLink(ctx, u.email) },
    { key: "division", label: "Division", sort: (u) => u.division, cell: (u) => esc(u.division) },
    { key: "created", label: "Created", sort: (u) => u.createdAt, cell: (u) => whenIn(u.createdAt, tz) },
    { key: "status", label: "Status", sort: (u) => userStatus(u, nowIso), cell: (u) => `<span class="status-${esc(userStatus(u, nowIso))}">${esc(userStatus(u, nowIso))}</span>` },
    { key: "expires", label: "Token expires", sort: (u) => u.tokenExpiresAt, cell: (u) => whenIn(u.tokenExpiresAt, tz) },
    { key: "used", label: "Token last used", sort: (u) => u.tokenLastUsedAt, cell: (u) => whenIn(u.tokenLastUsedAt, tz) },
    { key: "devices", label: "Devices", numeric: true, sort: (u) => u.devices, cell: (u) => num(u.devices) },
    { key: "report", label: "Last report", sort: (u) => u.lastReportAt, cell: (u) => whenIn(u.lastReportAt, tz) }
  ];
  if (mode.kind === "session") {
    const csrf = mode.csrfToken;
    cols.push({
      key: "actions",
      label: "",
      cell: (u) => {
        const hidden = `${csrfField(csrf)}<input type="hidden" name="email" value="${esc(u.email)}">`;
        return u.revokedAt === null ? `<form class="inline" method="post" action="/admin/users/reissue">${hidden}<button type="submit">Reissue token</button></form> <form class="inline" method="post" action="/admin/users/revoke">${hidden}<button class="danger" type="submit">Revoke</button></form>` : `<span class="note">${esc("Provision again to re-enable")}</span>`;
      }
    });
  }
  const form = mode.kind === "session" ? provisionForm(mode.csrfToken) : "";
  return `<section id="users"><h2>Users</h2>${form}${dataTable(ctx, "users", rows, cols, { empty: "No users provisioned yet.", searchLabel: "Search users or divisions" })}</section>`;
}

// receiver/src/admin/views/windows.ts
function renderWindows(ctx, rows, tz, fromIso) {
  const intro = `<p class="note">Claude Code limits usage per 5-hour window (opened by a user's first message, start floored to the hour). The peak window shows who runs close to their seat's limit; the current window shows who is busy now. Tokens: input + output + cache read + cache write.` + (fromIso === void 0 ? "" : ` Windows since ${whenIn(fromIso, tz)} (at most the last ${MAIN_WINDOW_DAYS} days of the range; a user's page shows the whole range).`) + `</p>`;
  const maxPeak = Math.max(0, ...rows.map((r) => r.peak.tokens));
  const at = (ms) => whenIn(new Date(ms).toISOString(), tz);
  const cols = [
    { key: "user", label: "User", sort: (r) => r.user, search: (r) => r.user, cell: (r) => userLink(ctx, r.user) },
    { key: "peak", label: "Peak tokens", numeric: true, sort: (r) => r.peak.tokens, cell: (r) => num(r.peak.tokens) },
    { key: "peakTurns", label: "Peak turns", numeric: true, sort: (r) => r.peak.turns, cell: (r) => num(r.peak.turns) },
    { key: "peakStart", label: "Peak window start", sort: (r) => r.peak.startMillis, cell: (r) => at(r.peak.startMillis) },
    { key: "current", label: "Current tokens", numeric: true, sort: (r) => r.current?.tokens ?? -1, cell: (r) => r.current ? num(r.current.tokens) : esc("\u2014") },
    { key: "currentTurns", label: "Current turns", numeric: true, cell: (r) => r.current ? num(r.current.turns) : esc("\u2014") },
    { key: "resets", label: "Current resets", cell: (r) => r.current ? at(r.current.endMillis) : esc("\u2014") },
    { key: "windows", label: "Windows", numeric: true, sort: (r) => r.windows, cell: (r) => num(r.windows) },
    { key: "meter", label: "Peak (light) / current (dark)", cell: (r) => meter(r.peak.tokens, maxPeak, r.current ? r.current.tokens : null) }
  ];
  return `<section id="windows"><h2>5-hour windows</h2>${intro}${dataTable(ctx, "windows", rows, cols, { empty: "No usage in this range.", searchLabel: "Search users" })}</section>`;
}

// receiver/src/admin/render.ts
function renderFlash(flash) {
  if (flash === null) return "";
  if (flash.kind !== "token") return `<div class="flash ${esc(flash.kind)}" role="status">${esc(flash.text)}</div>`;
  const endpoint = flash.endpoint ?? "https://<this receiver>";
  return `<div class="secret" role="status"><h2>Refresh token ${esc(flash.action)} for ${esc(flash.email)}</h2><p>Shown once: it is stored only as a hash. Send both values to the user over a private channel.</p><p>Endpoint<code>${esc(endpoint)}</code>Refresh token<code>${esc(flash.refreshToken)}</code></p><p class="note">In Claude Code: <code>/plugin</code> \u2192 ccflux \u2192 configure, and enter them as "ccflux receiver endpoint" and "ccflux refresh token". Outside the plugin options: run <code>ccflux login</code>.</p></div>`;
}
function rangeLabel(data) {
  const f = data.filter;
  const names = { "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days" };
  return names[f.range] ?? `${f.fromDay} to ${f.toDay}`;
}
function tableContext(mode, params, path2) {
  return { path: path2, params: params ?? new URLSearchParams(), interactive: mode.kind !== "export" };
}
function seatsByDivision(data) {
  const seats = /* @__PURE__ */ new Map();
  for (const u of data.users) if (u.revokedAt === null) seats.set(u.division, (seats.get(u.division) ?? 0) + 1);
  return seats;
}
function renderDashboard(data, opts) {
  const { mode } = opts;
  const ctx = tableContext(mode, opts.params, "/admin/");
  const tz = data.filter.tz;
  const warnings = mode.kind === "export" ? [] : opts.warnings ?? [];
  const warn = warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join("");
  const snapshot = mode.kind === "export" ? `<p class="note">Read-only snapshot generated ${esc(data.generatedAt)}. Usage since ${esc(data.sinceUtc)}.</p>` : `<p class="note">Generated ${whenIn(data.generatedAt, tz)}. Usage from ${esc(data.filter.fromIso)} to ${esc(data.filter.toIso)} (UTC). Prices: ${esc(data.pricesSource)}.</p>`;
  const body = header(mode, ctx.params) + `<main>${snapshot}${warn}${renderFlash(opts.flash ?? null)}` + filterBar(ctx, data.filter, data) + exportLinks(ctx) + renderSummary(data.summary, rangeLabel(data), data.seatValue, opts.seatPriceUsd ?? null) + (opts.budgets === void 0 ? "" : renderBudgets(opts.budgets.statuses, opts.budgets.alerts, mode, { month: data.seatValue.month, tz, webhook: opts.budgets.webhook })) + renderUsage(ctx, data, { tz, seats: seatsByDivision(data) }) + renderInactive(ctx, data.users, Date.parse(data.generatedAt), tz) + renderWindows(ctx, data.windows, tz, data.windowsFromIso) + renderEvents(ctx, data.events, data.eventsPage, EVENTS_PAGE, tz) + renderKeys(ctx, data.keys, mode, tz) + renderUsers(ctx, data.users, mode, data.generatedAt, tz) + renderAudit(ctx, opts.audit ?? [], opts.auditPage ?? 1, tz) + `</main>`;
  const title = mode.kind === "export" ? `ccflux usage snapshot ${data.generatedAt}` : "ccflux admin";
  return documentShell(title, body, { exportMeta: mode.kind === "export" });
}

// ../../../tmp/ccflux-r1/prof.ts
var path = process.argv[2] ?? "/tmp/ccflux-r1/org.db";
var END = Date.parse("2026-05-11T12:00:00Z");
var MODELS = ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5", "claude-opus-5-5"];
if (!existsSync(path)) {
  const db2 = new Database2(path);
  for (const sql of MIGRATIONS.slice(0, 8)) db2.exec(sql);
  db2.pragma("user_version = 8");
  let s = 1;
  const r = () => (s = s * 1664525 + 1013904223 >>> 0) / 2 ** 32;
  const addUser = db2.prepare("INSERT INTO users (id, email, division, created_at) VALUES (?, ?, ?, '2026-01-01T00:00:00.000Z')");
  const ins = db2.prepare(`INSERT OR IGNORE INTO usage_events (user_email, user_token, device_id, session_id, turn_index,
      timestamp_utc, session_start_utc, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version,
      schema_version, received_at, user_id, reported_email, signed, cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests)
      VALUES (?, 'ref', 'd', ?, ?, ?, NULL, ?, ?, ?, ?, ?, '0.1.0', 1, ?, ?, ?, 0, NULL, NULL, NULL)`);
  db2.transaction(() => {
    for (let u = 1; u <= 1e3; u++) {
      const email = `user${u}@example.org`;
      addUser.run(u, email, `Div${u % 10}`);
      for (let d = 90; d >= 0; d--) {
        if (r() < 0.3) continue;
        const n = Math.floor(r() * 6) + 1;
        const session = `s-${u}-${d}`;
        for (let t = 0; t < n; t++) {
          const ts = new Date(END - d * 864e5 - 8 * 36e5 + t * 6e5 + Math.floor(r() * 300) * 1e3).toISOString().slice(0, 19) + "Z";
          const models = r() < 0.4 ? [MODELS[u % 4], "claude-haiku-4-5"] : [MODELS[u % 4]];
          for (const m of models) ins.run(email, session, t, ts, m, 1e3, 200, 3e4, 500, ts.replace("T", " ").slice(0, 19), u, email);
        }
      }
    }
  })();
  db2.close();
}
var t0 = performance.now();
var db = openDatabase(path, { notice: () => {
}, now: () => new Date(END) });
console.log("open (+migrate)", (performance.now() - t0).toFixed(0), "ms", db.prepare("SELECT count(*) n FROM usage_events").get(), db.prepare("SELECT count(*) n FROM usage_daily").get(), db.prepare("SELECT count(*) n FROM usage_hourly").get());
var times = /* @__PURE__ */ new Map();
var cache = /* @__PURE__ */ new Map();
var q = createQueries({
  async all(sql, params) {
    let st = cache.get(sql);
    if (!st) {
      st = db.prepare(sql);
      cache.set(sql, st);
    }
    const a = performance.now();
    const rows = params === void 0 ? st.all() : st.all(params);
    const k = sql.replace(/\s+/g, " ").slice(0, 60);
    times.set(k, (times.get(k) ?? 0) + performance.now() - a);
    return rows;
  }
});
for (const range of process.argv.slice(3).length ? process.argv.slice(3) : ["24h", "7d", "30d", "90d"]) {
  for (let i = 0; i < 3; i++) {
    times.clear();
    const a = performance.now();
    const data = await q.load(new Date(END), parseFilter(new URLSearchParams(range.includes("=") ? range : `range=${range}`), END));
    const b = performance.now();
    const html = renderDashboard(data, { mode: { kind: "readonly" } });
    const c = performance.now();
    if (i === 2) {
      console.log(`${range}: load ${(b - a).toFixed(0)} ms, render ${(c - b).toFixed(0)} ms, ${Math.round(html.length / 1024)} KB`);
      for (const [k, v] of [...times].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(`   ${v.toFixed(1).padStart(7)}  ${k}`);
    }
  }
}
