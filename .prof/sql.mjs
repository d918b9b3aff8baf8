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
  priceOn(model, day) {
    const family = this.family(model);
    if (family === null || family.prices.length === 0) return null;
    let row = family.prices[0];
    for (const p of family.prices) if (p.from <= day) row = p;
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
var PRESET_MILLIS = {
  "24h": 24 * 3600 * 1e3,
  "7d": 7 * 24 * 3600 * 1e3,
  "30d": 30 * 24 * 3600 * 1e3,
  "90d": 90 * 24 * 3600 * 1e3
};
var DAY_MILLIS = 24 * 3600 * 1e3;
var FUTURE_SLACK_MILLIS = 15 * 60 * 1e3;

// receiver/src/admin/windows.ts
var WINDOW_MILLIS = 5 * 60 * 60 * 1e3;
var HOUR_MILLIS = 60 * 60 * 1e3;

// receiver/src/admin/queries.ts
var MAX_LIST_ROWS = 2e4;
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
      AND (@user IS NULL OR r.user_id = (SELECT id FROM users WHERE email = @user))
      AND (@division IS NULL OR r.user_id IN (SELECT id FROM users WHERE division = @division))`;
var FROM_ROLLUPS = `
  FROM (
    SELECT ${ROLLUP_COLS}, r.day AS day FROM usage_daily r
    WHERE r.day >= @dayFrom AND r.day < @dayTo ${ROLLUP_WHERE}
    UNION ALL
    SELECT ${ROLLUP_COLS}, substr(r.hour, 1, 10) AS day FROM usage_hourly r
    WHERE ((r.hour >= @headFrom AND r.hour < @headTo) OR (r.hour >= @tailFrom AND r.hour < @tailTo)) ${ROLLUP_WHERE}
  ) r JOIN users u ON u.id = r.user_id`;
var ROLLUP_SUMS = `
  TOTAL(r.input) AS input, TOTAL(r.output) AS output, TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite,
  TOTAL(r.cw5m) AS cw5m, TOTAL(r.cw1h) AS cw1h, TOTAL(r.unsplit) AS unsplit, TOTAL(r.web_search) AS webSearch`;
var ROLLUP_COUNTS = `
  TOTAL(r.model_turns) AS modelTurns, TOTAL(r.turns) AS userTurns, TOTAL(r.sessions) AS sessions,
  TOTAL(r.model_sessions) AS modelSessions, MAX(r.last_at) AS lastSeen`;
var SQL = {
  // The usage export's and budgets' grain: user × model × UTC day; turns = turns using the model.
  groups: `SELECT u.email AS user, u.division AS division, r.model AS model, r.day AS day, ${ROLLUP_SUMS},
      TOTAL(r.model_turns) AS turns
    ${FROM_ROLLUPS}
    GROUP BY u.id, u.email, u.division, r.model, r.day
    ORDER BY day, user, model`,
  // The views' grain: user × model over one price period.
  totals: `SELECT u.email AS user, u.division AS division, r.model AS model, ${ROLLUP_SUMS}, ${ROLLUP_COUNTS}
    ${FROM_ROLLUPS}
    GROUP BY u.id, u.email, u.division, r.model`,
  dayTotals: `SELECT r.day AS day, r.model AS model, ${ROLLUP_SUMS}
    ${FROM_ROLLUPS}
    GROUP BY r.day, r.model`,
  windowHours: `SELECT u.email AS user, r.hour AS hour,
      TOTAL(r.input + r.output + r.cache_read + r.cache_write) AS tokens,
      TOTAL(CASE WHEN @model IS NULL THEN r.turns ELSE r.model_turns END) AS turns
    FROM usage_hourly r JOIN users u ON u.id = r.user_id
    WHERE r.hour >= @headFrom AND r.hour < @tailTo ${ROLLUP_WHERE}
    GROUP BY u.id, u.email, r.hour`,
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS activeUsers FROM users`,
  activeDevices: `SELECT COUNT(*) AS n FROM device_keys k JOIN users u ON u.id = k.user_id
    WHERE k.revoked_at IS NULL AND u.revoked_at IS NULL`,
  events: `SELECT e.received_at AS receivedAt, e.timestamp_utc AS timestampUtc, e.user_email AS userEmail,
      e.reported_email AS reportedEmail, e.device_id AS deviceId, e.session_id AS sessionId, e.turn_index AS turnIndex,
      e.model AS model, e.input_tokens AS input, e.output_tokens AS output, e.cache_read_tokens AS cacheRead,
      e.cache_write_tokens AS cacheWrite, e.signed AS signed, e.plugin_version AS pluginVersion
    ${FROM_FILTERED}
    ORDER BY e.id DESC LIMIT @limit OFFSET @offset`,
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
  metricTotals: `SELECT r.model AS model, u.division AS division, '' AS user, ${ROLLUP_SUMS}, 0 AS turns
    ${FROM_ROLLUPS}
    GROUP BY r.model, u.division`,
  metricUserTotals: `SELECT u.email AS user, r.model AS model, TOTAL(r.input) AS input, TOTAL(r.output) AS output,
      TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite
    FROM usage_daily r JOIN users u ON u.id = r.user_id GROUP BY u.id, u.email, r.model`
};
var SQL_FOR_TESTS = SQL;
var HOUR_MS = 3600 * 1e3;
var DAY_MS = 24 * HOUR_MS;
var SHIPPED_BOOK = new PriceBook(SHIPPED_PRICES);

// .prof/sql.ts
console.log(SQL_FOR_TESTS[process.argv[2]]);
