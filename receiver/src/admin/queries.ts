/**
 * Read-only queries behind the dashboard views, exports and usage metrics. All SQL is in the `SQL`
 * object below, built only from constant fragments, with values passed as named parameters
 * (`@from`, `@to`, `@user`, `@model`, `@division`); nothing from a request is ever put into SQL
 * text. The store runs them through a `SqlReader` (SQLite: prepared once per database; PostgreSQL:
 * `store/pg-dialect.ts` translates the few SQLite spellings). Mutations go through the Store.
 *
 * Every usage query takes the same filter (date range, user, division, model) and reads the
 * rollups of migration 9 (store/rollup.ts), never raw rows: whole days from `usage_daily`, the
 * partial first and last day of a range from `usage_hourly` (ranges are read to the whole hour:
 * `rollupSpan`). So a view's cost grows with users × days shown, not with stored rows. Prices are
 * per model and day and linear in each column, so the views sum each user × model over every
 * stretch of hours without a price change (`hourPeriods`, usually one) and price those sums:
 * the same dollars as pricing every day. Raw `usage_events` is read only for the paged events
 * table, a user's sessions and the raw export, each bounded by a user or a LIMIT and an index.
 *
 * Sessions and turns: a turn counts once, in the hour of its first stored row; a session counts
 * in the range where it started (its first stored row) — "sessions started in range". Filtered
 * by model, turns are the turns that used the model and sessions those that first used it then.
 */
import { PriceBook, addCost, emptyTotal } from '../prices/cost';
import { SHIPPED_PRICES } from '../prices/table';
import type { CostTotal } from '../prices/types';
import { type ViewFilter, daysOf, parseFilter } from './filters';
import { type HourBucket, type UserWindows, windowsFromHours } from './windows';

export const REPORT_DAYS = 30;
/** The most rows one table query returns (an exported snapshot prints every row up to this). */
export const MAX_LIST_ROWS = 20_000;
export const EVENTS_PAGE = 50;
const MAX_EVENT_PAGES = 1000;
const USER_SESSIONS = 200;

export interface TokenTotals {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

export interface Summary extends TokenTotals {
  users: number;
  activeUsers: number;
  reportingUsers: number;
  sessions: number;
  turns: number;
  /** Keys not revoked whose user is not revoked either. */
  activeDevices: number;
  cost: CostTotal;
}

export interface UsageRow extends TokenTotals {
  key: string;
  users: number;
  sessions: number;
  turns: number;
  lastSeen: string | null;
  cost: CostTotal;
  /** By user: the user's division. By model: the price family, null when unpriced. */
  label: string | null;
}

export interface DayRow extends TokenTotals {
  day: string;
  cost?: CostTotal;
}

export interface EventRow {
  receivedAt: string;
  timestampUtc: string;
  userEmail: string;
  reportedEmail: string;
  deviceId: string;
  sessionId: string;
  turnIndex: number;
  model: string;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  signed: boolean;
  pluginVersion: string;
}

export interface KeyRow {
  email: string;
  publicKey: string;
  deviceId: string;
  registeredAt: string;
  lastSeenAt: string | null;
  revokedAt: string | null;
  /** Set when the key's user is revoked: the key is shown revoked too. */
  userRevokedAt: string | null;
}

export interface UserRow {
  email: string;
  division: string;
  createdAt: string;
  revokedAt: string | null;
  tokenExpiresAt: string | null;
  tokenLastUsedAt: string | null;
  devices: number;
  lastReportAt: string | null;
  /** Time of the user's latest turn (device clock), any range. */
  lastUsageAt: string | null;
}

export interface SessionRow extends TokenTotals {
  sessionId: string;
  firstAt: string;
  lastAt: string;
  turns: number;
  models: string;
  cost: CostTotal;
}

export interface RawEventRow {
  id: number;
  timestamp_utc: string;
  received_at: string;
  user_email: string;
  division: string;
  device_id: string;
  session_id: string;
  turn_index: number;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  signed: number;
  plugin_version: string | null;
  schema_version: number;
}

export interface MetricSeries extends TokenTotals {
  model: string;
  division: string;
  /** USD at list prices; null when the model has no price. */
  costUsd: number | null;
}

export interface MetricTotals {
  byModelDivision: MetricSeries[];
  byUserModel: (TokenTotals & { user: string; model: string })[];
}

export interface SeatValue {
  month: string;
  cost: CostTotal;
  activeSeats: number;
  /** The month's unfiltered filter and its spend per user, per division and in all, for budgets
   * to reuse when they cover the same hours (`sameHours`) instead of reading them again. */
  spend: { filter: FilterParams } & SpendTotals;
}

/** Dollars at list prices (unpriced models add none) and tokens. */
export interface Pot {
  usd: number;
  tokens: number;
}

export interface SpendTotals {
  org: Pot;
  division: Map<string, Pot>;
  user: Map<string, Pot>;
}

export interface DashboardData {
  generatedAt: string;
  sinceUtc: string;
  filter: ViewFilter;
  pricesSource: string;
  summary: Summary;
  byUser: UsageRow[];
  byModel: UsageRow[];
  byDivision: UsageRow[];
  days: DayRow[];
  windows: UserWindows[];
  /** Where the windows start: the range's start on a user's page, at most MAIN_WINDOW_DAYS back on the main page. */
  windowsFromIso: string;
  events: EventRow[];
  eventsPage: number;
  /** The page of device keys asked for (`keysTable`), with the match count and all-keys counts. */
  keys: KeyRow[];
  keysPage: PageInfo;
  keyCounts: { total: number; active: number };
  /** The page of users asked for (`usersTable`), paged, sorted and searched in SQL. */
  users: UserRow[];
  usersPage: PageInfo;
  /** The page of inactive seats (`inactiveTable`): active users with no turn since its cutoff. */
  inactive: UserRow[];
  inactivePage: PageInfo;
  /** Active (not revoked) users per division. */
  divisionSeats: Record<string, number>;
  /** This month's value per seat; null when the `month` section was not asked for. */
  seatValue: SeatValue | null;
  /** Options for the filter form. */
  divisions: string[];
  models: string[];
}

/**
 * What one dashboard page reads. Each view asks only for the sections it shows (admin/pages.ts);
 * without `sections` everything is read (the exported snapshot, tests).
 */
export const DASHBOARD_SECTIONS = ['totals', 'chart', 'month', 'windows', 'events', 'users', 'keys', 'inactive', 'seats'] as const;
export type DashboardSection = (typeof DASHBOARD_SECTIONS)[number];

/** One table page asked of SQL: search text (lower case), a sort key of the table's, direction, page. */
export interface TableQuery {
  q: string;
  sort: string | null;
  dir: 'asc' | 'desc';
  page: number;
  pageSize: number;
  /** Only this user's rows (a user's page). */
  email?: string;
}

/** Where a SQL-paged table is: its page (clamped to the last one), the rows matching, the page size. */
export interface PageInfo {
  page: number;
  total: number;
  pageSize: number;
}

export interface LoadOptions {
  eventsPage?: number;
  prices?: PriceBook;
  sections?: readonly DashboardSection[];
  usersTable?: TableQuery;
  keysTable?: TableQuery;
  /** Inactive seats: no turn since `before` (ISO). */
  inactiveTable?: TableQuery & { before: string };
}

/** One user × model × day group: the grain of costs, rollups and the usage export. */
export interface GroupRow extends TokenTotals {
  user: string;
  division: string;
  model: string;
  day: string;
  cw5m: number;
  cw1h: number;
  /** Cache writes of rows without the 5m/1h split (priced as 5-minute, an estimate). */
  unsplit: number;
  webSearch: number;
  turns: number;
}

const FROM_FILTERED = `
  FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
  WHERE e.timestamp_utc >= @from AND e.timestamp_utc < @to
    AND (@user IS NULL OR e.user_email = @user)
    AND (@model IS NULL OR e.model = @model)
    AND (@division IS NULL OR u.division = @division)`;

/** One user's raw rows of a range, through the (user_id, timestamp_utc) index. */
const FROM_USER = `
  FROM usage_events e
  WHERE e.user_id = (SELECT id FROM users WHERE email = @user)
    AND e.timestamp_utc >= @from AND e.timestamp_utc < @to
    AND (@model IS NULL OR e.model = @model)`;

// TOTAL, not SUM: SQLite's integer SUM fails the whole query ("integer overflow") once a total
// passes 2^63, so one hostile row would make every view answer 500. TOTAL adds in floating point,
// never fails, and is exact far beyond any real total (2^53 tokens).
const TOKEN_SUMS = `
  TOTAL(e.input_tokens) AS input,
  TOTAL(e.output_tokens) AS output,
  TOTAL(e.cache_read_tokens) AS cacheRead,
  TOTAL(e.cache_write_tokens) AS cacheWrite`;

// turn_index is an integer, so `session || '/' || turn` is unique per (session, turn).
const TURN_KEY = `e.session_id || '/' || e.turn_index`;

const ROLLUP_COLS = `r.user_id, r.model, r.input, r.output, r.cache_read, r.cache_write, r.cw5m, r.cw1h, r.unsplit,
  r.web_search, r.model_turns, r.turns, r.sessions, r.model_sessions, r.last_at`;
// The filters inside each part, so each reads only its run of days (hours). With a user, each
// part reads through the (user_id, day|hour) index instead: the `…User` texts below.
const ROLLUP_WHERE = `
      AND (@model IS NULL OR r.model = @model)
      AND (@division IS NULL OR r.user_id IN (SELECT id FROM users WHERE division = @division))`;
const ROLLUP_WHERE_USER = `
      AND r.user_id = (SELECT id FROM users WHERE email = @user)
      AND (@model IS NULL OR r.model = @model)
      AND (@division IS NULL OR r.user_id IN (SELECT id FROM users WHERE division = @division))`;

/** The rollup rows of a span (`RollupSpan`): whole days, and the hours of a partial first and last day. */
const fromRollups = (where: string) => `
  FROM (
    SELECT ${ROLLUP_COLS}, r.day AS day FROM usage_daily r
    WHERE r.day >= @dayFrom AND r.day < @dayTo ${where}
    UNION ALL
    SELECT ${ROLLUP_COLS}, substr(r.hour, 1, 10) AS day FROM usage_hourly r
    WHERE ((r.hour >= @headFrom AND r.hour < @headTo) OR (r.hour >= @tailFrom AND r.hour < @tailTo)) ${where}
  ) r JOIN users u ON u.id = r.user_id`;

const ROLLUP_SUMS = `
  TOTAL(r.input) AS input, TOTAL(r.output) AS output, TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite,
  TOTAL(r.cw5m) AS cw5m, TOTAL(r.cw1h) AS cw1h, TOTAL(r.unsplit) AS unsplit, TOTAL(r.web_search) AS webSearch`;

const groupsSql = (where: string) => `SELECT u.email AS user, u.division AS division, r.model AS model, r.day AS day,
      ${ROLLUP_SUMS}, TOTAL(r.model_turns) AS turns
    ${fromRollups(where)}
    GROUP BY u.id, u.email, u.division, r.model, r.day
    ORDER BY day, user, model`;
const dayTotalsSql = (where: string) => `SELECT r.day AS day, r.model AS model, ${ROLLUP_SUMS}
    ${fromRollups(where)}
    GROUP BY r.day, r.model`;

const CUM = (c: string, alias: string) => `hi.${c} - COALESCE(lo.${c}, 0) AS ${alias}`;
/** The last hour before `bound` with a running sum of the pair `k`: one index seek. */
const lastHour = (bound: string) =>
  `(SELECT MAX(x.hour) FROM usage_cum x WHERE x.user_id = k.user_id AND x.model = k.model AND x.hour < ${bound})`;

// ---- the users, inactive seats and device keys tables: searched, sorted and paged in SQL ----
// Search: @pattern is a LIKE pattern of the lower-cased text (`likePattern`); @email one user (a
// user's page, or the user filter) and @division the division filter: the tabs keep the filters.
const USER_MATCH = `(@email IS NULL OR u.email = @email) AND (@division IS NULL OR u.division = @division)
    AND (@pattern IS NULL OR lower(u.email || ' ' || u.division) LIKE @pattern ESCAPE '\\')`;
// Each MAX is one seek in an index on (user_id, …).
const LAST_USAGE = `(SELECT MAX(e.timestamp_utc) FROM usage_events e WHERE e.user_id = u.id)`;
// No turn since @before: one seek in usage_events(user_id, timestamp_utc) per user.
const INACTIVE = `u.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.user_id = u.id AND e.timestamp_utc >= @before)`;
// The latest received_at of each of the user's models, on that pair's latest running-sum row
// (migration 10; kept by insertReport): one seek per user × model, so pagedSql reads it for the
// page's rows only, unless the page is sorted by it.
const lastReport = (userId: string) => `(SELECT MAX((SELECT c.last_received FROM usage_cum c WHERE c.user_id = m.user_id AND c.model = m.model
      ORDER BY c.hour DESC LIMIT 1)) FROM usage_user_models m WHERE m.user_id = ${userId})`;
const USER_COLS = `u.email AS email, u.division AS division, u.created_at AS createdAt, u.revoked_at AS revokedAt,
      (SELECT MAX(t.expires_at) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS tokenExpiresAt,
      (SELECT MAX(t.last_used_at) FROM user_tokens t WHERE t.user_id = u.id) AS tokenLastUsedAt,
      (SELECT COUNT(*) FROM device_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND u.revoked_at IS NULL) AS devices,
      ${LAST_USAGE} AS lastUsageAt`;
const KEY_MATCH = `(@email IS NULL OR u.email = @email) AND (@division IS NULL OR u.division = @division)
    AND (@pattern IS NULL OR lower(u.email || ' ' || k.device_id) LIKE @pattern ESCAPE '\\')`;
const KEY_COLS = `u.email AS email, k.public_key AS publicKey, k.device_id AS deviceId, k.registered_at AS registeredAt,
      k.last_seen_at AS lastSeenAt, k.revoked_at AS revokedAt, u.revoked_at AS userRevokedAt`;

/** Sortable columns of each table (the view's column keys) as the output columns they order by. */
export const USER_SORTS: Record<string, readonly string[]> = {
  email: ['email'],
  division: ['division'],
  created: ['createdAt'],
  // active (latest expiry), then expired, then revoked: the order of the status names.
  status: ['(revokedAt IS NOT NULL)', '-tokenExpiresAt'],
  expires: ['tokenExpiresAt'],
  used: ['tokenLastUsedAt'],
  devices: ['devices'],
  report: ['lastReportAt'],
};
export const INACTIVE_SORTS: Record<string, readonly string[]> = {
  email: ['email'],
  division: ['division'],
  created: ['createdAt'],
  last: ['lastUsageAt'],
  devices: ['devices'],
};
export const KEY_SORTS: Record<string, readonly string[]> = {
  user: ['email'],
  device: ['deviceId'],
  registered: ['registeredAt'],
  seen: ['lastSeenAt'],
  // active, revoked, user revoked: the order of the status names.
  status: ['(CASE WHEN revokedAt IS NOT NULL THEN 1 WHEN userRevokedAt IS NOT NULL THEN 2 ELSE 0 END)'],
};

/** ORDER BY text from constant fragments only: NULLs last either way, then a stable tie-break. */
function orderBy(parts: readonly string[], dir: 'asc' | 'desc', tieBreak: string): string {
  const flip = (d: 'asc' | 'desc') => (d === 'asc' ? 'desc' : 'asc');
  const terms = parts.map((p) => {
    const col = p.startsWith('-') ? p.slice(1) : p;
    const d = p.startsWith('-') ? flip(dir) : dir;
    return col.startsWith('(') ? `${col} ${d.toUpperCase()}` : `(${col} IS NULL), ${col} ${d.toUpperCase()}`;
  });
  return `${terms.join(', ')}, ${tieBreak}`;
}

type PagedTable = 'users' | 'inactive' | 'keys';
const pagedCache = new Map<string, string>();
/** The page query of a table for one sort (a fixed set of texts, built once each). */
function pagedSql(table: PagedTable, sort: string | null, dir: 'asc' | 'desc'): string {
  const key = `${table} ${sort ?? ''} ${dir}`;
  let sql = pagedCache.get(key);
  if (sql !== undefined) return sql;
  const sorts = table === 'keys' ? KEY_SORTS : table === 'users' ? USER_SORTS : INACTIVE_SORTS;
  const parts = sort === null ? undefined : sorts[sort];
  if (table === 'keys') {
    const order = parts === undefined ? '(revokedAt IS NOT NULL OR userRevokedAt IS NOT NULL), email, registeredAt, publicKey' : orderBy(parts, dir, 'email, registeredAt, publicKey');
    sql = `SELECT * FROM (SELECT ${KEY_COLS} FROM device_keys k JOIN users u ON u.id = k.user_id WHERE ${KEY_MATCH}) x
    ORDER BY ${order} LIMIT @limit OFFSET @offset`;
  } else {
    const order = parts === undefined ? '(revokedAt IS NOT NULL), email' : orderBy(parts, dir, 'email');
    const where = table === 'inactive' ? `${USER_MATCH} AND ${INACTIVE}` : USER_MATCH;
    sql = parts?.includes('lastReportAt')
      ? `SELECT * FROM (SELECT ${USER_COLS}, ${lastReport('u.id')} AS lastReportAt FROM users u WHERE ${where}) x
    ORDER BY ${order} LIMIT @limit OFFSET @offset`
      : `SELECT p.*, ${lastReport('(SELECT id FROM users WHERE email = p.email)')} AS lastReportAt FROM (
      SELECT * FROM (SELECT ${USER_COLS} FROM users u WHERE ${where}) x ORDER BY ${order} LIMIT @limit OFFSET @offset) p
    ORDER BY ${order}`;
  }
  pagedCache.set(key, sql);
  return sql;
}

/** A LIKE pattern matching `q` anywhere (with `\` escaping), or null for no search. */
export function likePattern(q: string): string | null {
  return q === '' ? null : `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * A period's prices as one JSON parameter, `[[model, input, output, cacheRead, cacheWrite5m,
 * cacheWrite1h, webSearchPer1k], …]` per priced model (`priceParam`), read as rows.
 */
const PRICE_ROWS = {
  sqlite: `SELECT j.value ->> 0 AS p_model, j.value ->> 1 AS p_in, j.value ->> 2 AS p_out, j.value ->> 3 AS p_read,
      j.value ->> 4 AS p_w5, j.value ->> 5 AS p_w1, j.value ->> 6 AS p_ws FROM json_each(@prices) j`,
  postgres: `SELECT j.value ->> 0 AS p_model, CAST(j.value ->> 1 AS float8) AS p_in, CAST(j.value ->> 2 AS float8) AS p_out,
      CAST(j.value ->> 3 AS float8) AS p_read, CAST(j.value ->> 4 AS float8) AS p_w5, CAST(j.value ->> 5 AS float8) AS p_w1,
      CAST(j.value ->> 6 AS float8) AS p_ws FROM json_array_elements(CAST(@prices AS json)) AS j(value)`,
};
const GROUP_SUMS = `TOTAL(input) AS input, TOTAL(output) AS output, TOTAL(cacheRead) AS cacheRead, TOTAL(cacheWrite) AS cacheWrite,
      TOTAL(usd) AS usd, TOTAL(unpriced) AS unpriced, MAX(est) AS est, MAX(lastSeen) AS lastSeen`;

/**
 * The pairs of `pairs` (one price period) priced in SQL and summed per user, per model, per
 * division and in all: ~1,000 rows back instead of one per user × model, and nothing to add up
 * on the receiver's event loop. The price arithmetic is `priceUsage`'s, column by column (a split
 * that does not explain the whole cache write prices the rest as 5-minute writes, and marks the
 * cost estimated, as do writes sent without a split); an unpriced model adds its tokens to
 * `unpriced`, never dollars. With `@byModel` = 1 (a model filter) sessions and turns per user and
 * division are those that used the model. Column names are the pairs' own, unqualified, so the
 * PostgreSQL translation quotes them (store/pg-dialect.ts).
 */
function usageSql(pairs: string, dialect: 'sqlite' | 'postgres'): string {
  const write5m = 'CASE WHEN cw5m + unsplit > cacheWrite - cw1h THEN cw5m + unsplit ELSE cacheWrite - cw1h END';
  return `WITH pr AS MATERIALIZED (${PRICE_ROWS[dialect]}),
    pc AS MATERIALIZED (
      SELECT user AS g_user, division AS g_division, model AS g_model, input, output, cacheRead, cacheWrite, lastSeen,
        CASE WHEN @byModel = 1 THEN modelSessions ELSE sessions END AS s,
        CASE WHEN @byModel = 1 THEN modelTurns ELSE userTurns END AS n,
        modelSessions AS ms, modelTurns AS mt,
        CASE WHEN p_model IS NULL THEN NULL ELSE
          (input * p_in + output * p_out + cacheRead * p_read + (${write5m}) * p_w5 + cw1h * p_w1) / 1000000.0 + webSearch * p_ws / 1000.0
        END AS usd,
        CASE WHEN p_model IS NOT NULL AND (unsplit > 0 OR cw5m + unsplit + cw1h <> cacheWrite) THEN 1 ELSE 0 END AS est,
        CASE WHEN p_model IS NULL THEN input + output + cacheRead + cacheWrite ELSE 0 END AS unpriced
      FROM (${pairs}) t LEFT JOIN pr ON pr.p_model = t.model
    )${USAGE_GROUPS[dialect]}`;
}

/**
 * `usageSql`'s groups of the priced pairs `pc`. SQLite: per user and per model (a pair is one
 * user × model, so a model's users are its rows), divisions and the whole summed from the ~1,000
 * user rows, as a user is in one division: each pass over the pairs (a sort of ~5,000 rows) costs
 * ~10 ms there (docs/bench.md, "SQLite views, session 6"). PostgreSQL keeps its four passes, as
 * measured in session 4.
 */
const USAGE_GROUPS = {
  sqlite: `,
    pu AS MATERIALIZED (
      SELECT g_user, MAX(g_division) AS g_division, TOTAL(s) AS s, TOTAL(n) AS n, ${GROUP_SUMS} FROM pc GROUP BY g_user
    )
    SELECT 'u' AS grp, g_user AS grpKey, g_division AS label, 1 AS users, s AS sessions, n AS turns,
        input, output, cacheRead, cacheWrite, usd, unpriced, est, lastSeen FROM pu
    UNION ALL SELECT 'm', g_model, NULL, COUNT(*), TOTAL(ms), TOTAL(mt), ${GROUP_SUMS} FROM pc GROUP BY g_model
    UNION ALL SELECT 'd', g_division, NULL, COUNT(*), TOTAL(s), TOTAL(n), ${GROUP_SUMS} FROM pu GROUP BY g_division
    UNION ALL SELECT 's', '', NULL, COUNT(*), TOTAL(s), TOTAL(n), ${GROUP_SUMS} FROM pu`,
  postgres: `
    SELECT 'u' AS grp, g_user AS grpKey, MAX(g_division) AS label, 1 AS users, TOTAL(s) AS sessions, TOTAL(n) AS turns, ${GROUP_SUMS}
      FROM pc GROUP BY g_user
    UNION ALL SELECT 'm', g_model, NULL, COUNT(DISTINCT g_user), TOTAL(ms), TOTAL(mt), ${GROUP_SUMS} FROM pc GROUP BY g_model
    UNION ALL SELECT 'd', g_division, NULL, COUNT(DISTINCT g_user), TOTAL(s), TOTAL(n), ${GROUP_SUMS} FROM pc GROUP BY g_division
    UNION ALL SELECT 's', '', NULL, COUNT(DISTINCT g_user), TOTAL(s), TOTAL(n), ${GROUP_SUMS} FROM pc`,
};

// The views' grain: user × model over one price period [@from, @to) of hours, as the
// difference of two running sums (usage_cum), whatever the number of days: per pair two seeks
// for the hours, two for the rows. CROSS JOIN keeps that order in SQLite (pairs outside); the
// pairs carry email and division, so no join follows that PostgreSQL could misplan.
const totalsSql = (share: string) => `WITH b AS MATERIALIZED (
      SELECT k.user_id, k.model, u.email, u.division, ${lastHour('@to')} AS hi_hour, ${lastHour('@from')} AS lo_hour
      FROM usage_user_models k JOIN users u ON u.id = k.user_id
      WHERE (@model IS NULL OR k.model = @model)
        AND (@user IS NULL OR u.email = @user)
        AND (@division IS NULL OR u.division = @division)${share}
    )
    SELECT b.email AS user, b.division AS division, b.model AS model,
      ${CUM('input', 'input')}, ${CUM('output', 'output')}, ${CUM('cache_read', 'cacheRead')}, ${CUM('cache_write', 'cacheWrite')},
      ${CUM('cw5m', 'cw5m')}, ${CUM('cw1h', 'cw1h')}, ${CUM('unsplit', 'unsplit')}, ${CUM('web_search', 'webSearch')},
      ${CUM('model_turns', 'modelTurns')}, ${CUM('turns', 'userTurns')}, ${CUM('sessions', 'sessions')},
      ${CUM('model_sessions', 'modelSessions')}, hi.last_at AS lastSeen
    FROM b CROSS JOIN usage_cum hi
    LEFT JOIN usage_cum lo ON lo.user_id = b.user_id AND lo.model = b.model AND lo.hour = b.lo_hour
    WHERE b.hi_hour >= @from AND hi.user_id = b.user_id AND hi.model = b.model AND hi.hour = b.hi_hour`;
/** One share of the users (`user_id % @shards = @shard`): see `usageTotals`. */
const SHARE = '\n        AND k.user_id % @shards = @shard';
const TOTALS_SQL = totalsSql('');
// The same rows for a short period (SHORT_PERIOD_HOURS), summed from its hours in usage_hourly:
// a few rows per active pair instead of two seeks for every pair there is.
const TOTALS_HOURS_SQL = `SELECT u.email AS user, u.division AS division, r.model AS model, ${ROLLUP_SUMS},
      TOTAL(r.model_turns) AS modelTurns, TOTAL(r.turns) AS userTurns, TOTAL(r.sessions) AS sessions,
      TOTAL(r.model_sessions) AS modelSessions, MAX(r.last_at) AS lastSeen
    FROM usage_hourly r JOIN users u ON u.id = r.user_id
    WHERE r.hour >= @from AND r.hour < @to
      AND (@model IS NULL OR r.model = @model)
      AND (@user IS NULL OR u.email = @user)
      AND (@division IS NULL OR u.division = @division)
    GROUP BY u.id, u.email, u.division, r.model`;
const TOTALS_HOURS_SHARE_SQL = TOTALS_HOURS_SQL.replace('\n    GROUP BY u.id,', '\n      AND r.user_id % @shards = @shard\n    GROUP BY u.id,');

const SQL = {
  totals: TOTALS_SQL,
  // The same pairs priced and summed per user, model and division, and in all (`usageSql`), for
  // one share of the users.
  usage: usageSql(totalsSql(SHARE), 'sqlite'),
  usageHours: usageSql(TOTALS_HOURS_SHARE_SQL, 'sqlite'),
  // The models there are, to price a period's pairs (`priceParam`).
  pairModels: `SELECT DISTINCT model AS v FROM usage_user_models`,
  totalsHours: TOTALS_HOURS_SQL,
  // The usage export's and budgets' grain: user × model × UTC day; turns = turns using the model.
  groups: groupsSql(ROLLUP_WHERE),
  groupsUser: groupsSql(ROLLUP_WHERE_USER),
  dayTotals: dayTotalsSql(ROLLUP_WHERE),
  // The daily chart of everyone: whole days from the org shards, a partial first/last day by the hour.
  dayTotalsOrg: `SELECT r.day AS day, r.model AS model, ${ROLLUP_SUMS}
    FROM (
      SELECT o.day AS day, o.model, o.input, o.output, o.cache_read, o.cache_write, o.cw5m, o.cw1h, o.unsplit, o.web_search
      FROM usage_org_daily o WHERE o.day >= @dayFrom AND o.day < @dayTo AND (@model IS NULL OR o.model = @model)
      UNION ALL
      SELECT substr(h.hour, 1, 10) AS day, h.model, h.input, h.output, h.cache_read, h.cache_write, h.cw5m, h.cw1h, h.unsplit, h.web_search
      FROM usage_hourly h
      WHERE ((h.hour >= @headFrom AND h.hour < @headTo) OR (h.hour >= @tailFrom AND h.hour < @tailTo))
        AND (@model IS NULL OR h.model = @model)
    ) r
    GROUP BY r.day, r.model`,
  dayTotalsUser: dayTotalsSql(ROLLUP_WHERE_USER),
  // The users with the most tokens in a span (the windows page shows theirs), summed from the rollups.
  heaviestUsers: `SELECT u.email AS user, TOTAL(r.input + r.output + r.cache_read + r.cache_write) AS tokens
    ${fromRollups(ROLLUP_WHERE)}
    GROUP BY u.id, u.email ORDER BY tokens DESC, u.email LIMIT @limit`,
  // The hourly buckets of a list of users (@users: a JSON array of emails), in one statement:
  // per user one seek by email and one index range in usage_hourly(user_id, hour).
  windowHours: `SELECT u.email AS user, r.hour AS hour,
      TOTAL(r.input + r.output + r.cache_read + r.cache_write) AS tokens,
      TOTAL(CASE WHEN @model IS NULL THEN r.turns ELSE r.model_turns END) AS turns
    FROM json_each(@users) j CROSS JOIN users u CROSS JOIN usage_hourly r
    WHERE u.email = j.value AND r.user_id = u.id AND r.hour >= @headFrom AND r.hour < @tailTo
      AND (@model IS NULL OR r.model = @model)
      AND (@division IS NULL OR u.division = @division)
    GROUP BY u.id, u.email, r.hour`,
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS activeUsers FROM users`,
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
  divisionSeats: `SELECT division AS v, COUNT(*) AS n FROM users WHERE revoked_at IS NULL GROUP BY division`,
  keyCounts: `SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN k.revoked_at IS NULL AND u.revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS active
    FROM device_keys k JOIN users u ON u.id = k.user_id`,
  keysCount: `SELECT COUNT(*) AS n FROM device_keys k JOIN users u ON u.id = k.user_id WHERE ${KEY_MATCH}`,
  usersCount: `SELECT COUNT(*) AS n FROM users u WHERE ${USER_MATCH}`,
  inactiveCount: `SELECT COUNT(*) AS n FROM users u WHERE ${USER_MATCH} AND ${INACTIVE}`,
  divisions: `SELECT DISTINCT division AS v FROM users WHERE division <> '' ORDER BY division LIMIT 1000`,
  // The models used since @day: each step one seek in usage_daily(model, day), however many rows.
  models: `WITH RECURSIVE m(v) AS (
      SELECT MIN(model) FROM usage_daily
      UNION ALL
      SELECT (SELECT MIN(d.model) FROM usage_daily d WHERE d.model > m.v) FROM m WHERE m.v IS NOT NULL
    )
    SELECT v FROM m WHERE v IS NOT NULL AND EXISTS (SELECT 1 FROM usage_daily d WHERE d.model = m.v AND d.day >= @day)
    ORDER BY v LIMIT 1000`,
} as const;

// Per pair two seeks, each straight to its row (LATERAL … ORDER BY hour DESC LIMIT 1): half the
// index descents of SQLite's form, which finds each hour with MAX and then seeks its row.
const PG_TOTALS_SQL = `SELECT u.email AS user, u.division AS division, k.model AS model,
      ${CUM('input', 'input')}, ${CUM('output', 'output')}, ${CUM('cache_read', 'cacheRead')}, ${CUM('cache_write', 'cacheWrite')},
      ${CUM('cw5m', 'cw5m')}, ${CUM('cw1h', 'cw1h')}, ${CUM('unsplit', 'unsplit')}, ${CUM('web_search', 'webSearch')},
      ${CUM('model_turns', 'modelTurns')}, ${CUM('turns', 'userTurns')}, ${CUM('sessions', 'sessions')},
      ${CUM('model_sessions', 'modelSessions')}, hi.last_at AS lastSeen
    FROM usage_user_models k JOIN users u ON u.id = k.user_id
    CROSS JOIN LATERAL (
      SELECT * FROM usage_cum c WHERE c.user_id = k.user_id AND c.model = k.model AND c.hour < @to ORDER BY c.hour DESC LIMIT 1
    ) hi
    LEFT JOIN LATERAL (
      SELECT * FROM usage_cum c WHERE c.user_id = k.user_id AND c.model = k.model AND c.hour < @from ORDER BY c.hour DESC LIMIT 1
    ) lo ON TRUE
    WHERE hi.hour >= @from
      AND (@model IS NULL OR k.model = @model)
      AND (@user IS NULL OR u.email = @user)
      AND (@division IS NULL OR u.division = @division)`;

/**
 * PostgreSQL's texts where its planner wants another form than SQLite's, with the same columns and
 * rows; a reader whose `dialect` is 'postgres' runs these instead (store/pg-dialect.ts).
 */
const PG_SQL: Partial<Record<keyof typeof SQL, string>> = {
  totals: PG_TOTALS_SQL,
  // One share of the users (`user_id % @shards = @shard`) per statement: see USAGE_SHARDS.
  usage: usageSql(`${PG_TOTALS_SQL}\n      AND k.user_id % @shards = @shard`, 'postgres'),
  usageHours: usageSql(TOTALS_HOURS_SHARE_SQL, 'postgres'),
};

/**
 * A database runs one statement on one core: the range's totals (the heaviest read of a page) go
 * out as this many statements on PostgreSQL, each for a share of the users, on as many pooled
 * connections, and their rows are merged (`aggregateGroups`: users are disjoint, so sums and
 * distinct-user counts add up). On SQLite as many as the reader has threads (`parallel`).
 */
export const USAGE_SHARDS = 2;

/**
 * Which rollup rows a range reads: whole UTC days `[dayFrom, dayTo)` from usage_daily, and the
 * hours `[headFrom, headTo)` and `[tailFrom, tailTo)` of a partial first and last day from
 * usage_hourly. The range is widened to whole hours (a preset starting 13:27 reads from 13:00).
 */
export interface RollupSpan {
  dayFrom: string;
  dayTo: string;
  headFrom: string;
  headTo: string;
  tailFrom: string;
  tailTo: string;
}

const HOUR_MS = 3600 * 1000;
/** Up to this many hours (the 7-day preset and the first week of a month) a period's totals are
 * summed from usage_hourly (`totalsHours`); longer ones are the difference of two running sums. */
const SHORT_PERIOD_HOURS = 8 * 24;
const DAY_MS = 24 * HOUR_MS;
/** Whether a period's totals are summed from its hours rather than read as two running sums. */
const isShortPeriod = (p: { from: string; to: string }) =>
  (Date.parse(`${p.to}:00:00Z`) - Date.parse(`${p.from}:00:00Z`)) / HOUR_MS <= SHORT_PERIOD_HOURS;
const hourKey = (ms: number) => new Date(ms).toISOString().slice(0, 13);
const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function rollupSpan(fromIso: string, toIso: string): RollupSpan {
  const fromMs = Math.floor(Date.parse(fromIso) / HOUR_MS) * HOUR_MS;
  const toMs = Math.max(fromMs, Math.ceil(Date.parse(toIso) / HOUR_MS) * HOUR_MS);
  const firstDay = Math.ceil(fromMs / DAY_MS) * DAY_MS;
  const lastDayEnd = Math.floor(toMs / DAY_MS) * DAY_MS;
  if (firstDay > lastDayEnd) {
    // Within one day: hours only.
    return { dayFrom: '', dayTo: '', headFrom: hourKey(fromMs), headTo: hourKey(toMs), tailFrom: '', tailTo: '' };
  }
  return {
    dayFrom: dayKey(firstDay),
    dayTo: dayKey(lastDayEnd),
    headFrom: hourKey(fromMs),
    headTo: hourKey(firstDay),
    tailFrom: hourKey(lastDayEnd),
    tailTo: hourKey(toMs),
  };
}

/**
 * The hours `[from, to)` of a range (widened to whole hours, like `rollupSpan`), cut at every
 * price change date inside it; `day` is each part's first day, whose prices apply to all of it.
 * A family's first row is no change: before its date that row applies too (`PriceBook.priceOn`),
 * so a range across it stays one part (one statement instead of two for 90 days of the shipped table).
 */
export function hourPeriods(fromIso: string, toIso: string, book: PriceBook): { day: string; from: string; to: string }[] {
  const fromMs = Math.floor(Date.parse(fromIso) / HOUR_MS) * HOUR_MS;
  const toMs = Math.max(fromMs, Math.ceil(Date.parse(toIso) / HOUR_MS) * HOUR_MS);
  const from = hourKey(fromMs);
  const to = hourKey(toMs);
  const cuts = new Set<string>();
  for (const family of book.table.families) {
    for (const p of family.prices.slice(1)) if (`${p.from}T00` > from && `${p.from}T00` < to) cuts.add(`${p.from}T00`);
  }
  const bounds = [from, ...[...cuts].sort(), to];
  const out: { day: string; from: string; to: string }[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) out.push({ day: bounds[i]!.slice(0, 10), from: bounds[i]!, to: bounds[i + 1]! });
  return out;
}

/** Runs one SQL text of `SQL` with named parameters (`@name`); resolves with plain rows. */
export interface SqlReader {
  /** 'postgres': run a statement's `PG_SQL` text where it has one. */
  readonly dialect?: 'postgres';
  /** How many statements run at once (SQLite's reader threads); 1 when absent. */
  readonly parallel?: number;
  all(sql: string, params?: Record<string, unknown>): Promise<Record<string, unknown>[]>;
}

/** Named parameters of the shared filter. */
export interface FilterParams {
  from: string;
  to: string;
  user: string | null;
  model: string | null;
  division: string | null;
}

export function filterParams(f: Pick<ViewFilter, 'fromIso' | 'toIso' | 'user' | 'model' | 'division'>): FilterParams {
  return { from: f.fromIso, to: f.toIso, user: f.user, model: f.model, division: f.division };
}

function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export interface AdminQueries {
  /** Everything the dashboard shows; `filter` defaults to the last 30 days, unfiltered. */
  load(now: Date, filter?: ViewFilter, opts?: LoadOptions): Promise<DashboardData>;
  /** The user × model × day groups of a filter; with `prices`, user × model per price period
   * instead (each row's day the period's first: the same cost, far fewer rows). */
  groups(filter: FilterParams, opts?: { prices?: PriceBook }): Promise<GroupRow[]>;
  /** One page of raw usage rows of a filter, by id after `after` (keyset paging for exports). */
  rawEvents(filter: FilterParams, after: number, limit: number): Promise<RawEventRow[]>;
  sessions(filter: FilterParams, prices?: PriceBook): Promise<SessionRow[]>;
  /** All-time usage totals for /metrics: per model × division (tokens, cost), and per user × model. */
  metricTotals(prices: PriceBook | undefined, perUser: boolean): Promise<MetricTotals>;
}

/** Totals as `groups` with prices returns them: turns are the turns using the model. */
function pricedGroups(rows: readonly TotalRow[]): GroupRow[] {
  return rows.map((t) => ({ ...t, turns: t.modelTurns }));
}

/** Whether two filters read the same hours (ranges widened to whole hours) with the same filters. */
export function sameHours(a: FilterParams, b: FilterParams, book: PriceBook): boolean {
  return (
    a.user === b.user &&
    a.model === b.model &&
    a.division === b.division &&
    JSON.stringify(hourPeriods(a.from, a.to, book)) === JSON.stringify(hourPeriods(b.from, b.to, book))
  );
}

/** Adds a priced group to a total; `unsplit` writes make the figure an estimate. */
export function priceGroup(book: PriceBook, g: GroupRow, total: CostTotal): CostTotal {
  const cost = book.cost({
    model: g.model,
    day: g.day,
    input: g.input,
    output: g.output,
    cacheRead: g.cacheRead,
    cacheWrite: g.cacheWrite,
    cacheWrite5m: g.cw5m + g.unsplit,
    cacheWrite1h: g.cw1h,
    webSearchRequests: g.webSearch,
  });
  if (cost.usd !== null && g.unsplit > 0) cost.estimated = true;
  return addCost(total, cost, g);
}

function zeroTokens(): TokenTotals {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
}

function addTokens(into: TokenTotals, t: TokenTotals): void {
  into.input += t.input;
  into.output += t.output;
  into.cacheRead += t.cacheRead;
  into.cacheWrite += t.cacheWrite;
}

/** One user × model over one price period, with the rollups' counts. */
export interface TotalRow extends GroupRow {
  modelTurns: number;
  userTurns: number;
  sessions: number;
  modelSessions: number;
  lastSeen: string | null;
}

/** A by-user / by-model / by-division row, with the distinct users it has seen so far. */
interface Bucket extends UsageRow {
  seen: Set<string>;
}

function bucket(map: Map<string, Bucket>, key: string): Bucket {
  let row = map.get(key);
  if (row === undefined) {
    row = { key, users: 0, sessions: 0, turns: 0, lastSeen: null, ...zeroTokens(), cost: emptyTotal(), label: null, seen: new Set() };
    map.set(key, row);
  }
  return row;
}

/** Adds one priced total row to a bucket; `sessions` and `turns` as the bucket counts them. */
function addTo(row: Bucket, t: TotalRow, cost: CostTotal, sessions: number, turns: number): void {
  addTokens(row, t);
  mergeCost(row.cost, cost);
  row.seen.add(t.user);
  row.users = row.seen.size;
  row.sessions += sessions;
  row.turns += turns;
  if (t.lastSeen !== null && (row.lastSeen === null || t.lastSeen > row.lastSeen)) row.lastSeen = t.lastSeen;
}

/** Dearest first, then most tokens, then by name. */
function byCost(a: UsageRow, b: UsageRow): number {
  return b.cost.usd - a.cost.usd || total(b) - total(a) || a.key.localeCompare(b.key);
}

function sorted(map: Map<string, Bucket>): UsageRow[] {
  return [...map.values()].map(({ seen: _seen, ...row }) => row).sort(byCost);
}

function total(t: TokenTotals): number {
  return t.input + t.output + t.cacheRead + t.cacheWrite;
}

const SHIPPED_BOOK = new PriceBook(SHIPPED_PRICES);
/** The main page's 5-hour windows cover at most the last this many days of the range (a user's page: all of it). */
export const MAIN_WINDOW_DAYS = 7;
/** …and the heaviest this many users of those days. */
export const MAIN_WINDOW_USERS = 100;

/** One piece: the dashboard's SQL, one prepared statement per entry — a flat table that reads best in one place. */
export function createQueries(db: SqlReader): AdminQueries {
  const all = async <T>(key: keyof typeof SQL, params?: Record<string, unknown>): Promise<T[]> =>
    (await db.all((db.dialect === 'postgres' ? PG_SQL[key] : undefined) ?? SQL[key], params)) as T[];
  const one = async <T>(key: keyof typeof SQL, params?: Record<string, unknown>): Promise<T> => (await all<T>(key, params))[0]!;
  const filterOnly = (p: FilterParams) => ({ user: p.user, model: p.model, division: p.division });

  /** Rows of `key` for every price period of a filter, each row's `day` the period's first day. */
  /** The text of a rollup query for a filter: through the user index when it names a user. */
  const forUser = (p: { user: string | null }, key: 'groups' | 'dayTotals') =>
    p.user === null ? key : (`${key}User` as const);
  /**
   * User × model totals of a filter, one row per price period (each row's day its first). With
   * `memo` (one per dashboard request), a period read once is not read again: the range and the
   * month of the seat value share their totals when they cover the same hours.
   */
  const totals = async (p: FilterParams, book: PriceBook, memo?: Map<string, Promise<TotalRow[]>>): Promise<TotalRow[]> => {
    // Every period's statement is sent before the first answer is awaited (PostgreSQL runs them at once).
    const periods = hourPeriods(p.from, p.to, book);
    const parts = periods.map((period) => {
      const params = { ...filterOnly(p), from: period.from, to: period.to };
      const key = JSON.stringify(params);
      let rows = memo?.get(key);
      if (rows === undefined) {
        rows = all<TotalRow>(isShortPeriod(period) ? 'totalsHours' : 'totals', params);
        memo?.set(key, rows);
      }
      return rows;
    });
    const out: TotalRow[] = [];
    // Each period's rows are its own (memo shares the promise, not the rows' days): set in place.
    for (const [i, rows] of (await Promise.all(parts)).entries()) {
      for (const row of rows) {
        row.day = periods[i]!.day;
        out.push(row);
      }
    }
    return out;
  };

  /**
   * The range's totals per user, model and division and in all. One price period (the usual
   * case) is priced and summed by SQL (`usageSql`); a range across a price change is summed here
   * from its user × model totals, period by period.
   */
  const usageTotals = async (p: FilterParams, book: PriceBook, byModel: boolean, memo: Map<string, Promise<TotalRow[]>>): Promise<Aggregate> => {
    const periods = hourPeriods(p.from, p.to, book);
    const period = periods[0];
    if (periods.length !== 1 || period === undefined) return aggregate(await totals(p, book, memo), book, byModel);
    const models = (await all<{ v: string }>('pairModels')).map((r) => r.v);
    const params = { ...filterOnly(p), from: period.from, to: period.to, byModel: byModel ? 1 : 0, prices: priceParam(book, models, period.day) };
    const key = isShortPeriod(period) ? 'usageHours' : 'usage';
    const shards = db.dialect === 'postgres' ? USAGE_SHARDS : Math.max(1, db.parallel ?? 1);
    const shares = Array.from({ length: shards }, (_, shard) => all<UsageGroupRow>(key, { ...params, shards, shard }));
    return aggregateGroups((await Promise.all(shares)).flat(), book);
  };

  const groups = async (p: FilterParams, opts: { prices?: PriceBook } = {}): Promise<GroupRow[]> => {
    if (opts.prices !== undefined) return pricedGroups(await totals(p, opts.prices));
    return all<GroupRow>(forUser(p, 'groups'), { ...filterOnly(p), ...rollupSpan(p.from, p.to) });
  };

  /** This month's value per seat; its statements go out at once, the seat count is awaited last
   * (`counts`, awaited by the page too, so its failure is never unhandled). */
  const monthValue = async (book: PriceBook, nowMillis: number, memo: Map<string, Promise<TotalRow[]>>, counts: Promise<{ activeUsers: number }>): Promise<SeatValue> => {
    const now = new Date(nowMillis);
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const month = { from: isoSeconds(monthStart), to: isoSeconds(nowMillis + 1000), user: null, model: null, division: null };
    const sums = await usageTotals(month, book, false, memo);
    const pot = (r: UsageRow): Pot => ({ usd: r.cost.usd, tokens: total(r) });
    const spend = {
      filter: month,
      org: { usd: sums.summary.cost.usd, tokens: total(sums.summary) },
      division: new Map(sums.byDivision.map((r) => [r.key, pot(r)])),
      user: new Map(sums.byUser.map((r) => [r.key, pot(r)])),
    };
    return { month: now.toISOString().slice(0, 7), cost: sums.summary.cost, activeSeats: (await counts).activeUsers, spend };
  };

  /**
   * 5-hour windows from hourly buckets. A user's page: their whole range. The windows page: the
   * MAIN_WINDOW_USERS users with the most tokens over the range's last MAIN_WINDOW_DAYS days, in
   * those days (two statements: the heaviest users summed by SQL from the rollups, then their
   * hours, one index range per user, so the cost stays bounded with 1,000 users).
   */
  const windows = async (filter: ViewFilter, nowMillis: number): Promise<{ fromIso: string; rows: UserWindows[] }> => {
    const span = rollupSpan(filter.fromIso, filter.toIso);
    let fromIso = filter.fromIso;
    if (filter.user === null) {
      const recent = isoSeconds(Date.parse(filter.toIso) - MAIN_WINDOW_DAYS * DAY_MS);
      if (recent > fromIso) fromIso = recent;
    }
    const base = { ...filterOnly(filterParams(filter)), headFrom: rollupSpan(fromIso, filter.toIso).headFrom, tailTo: span.tailTo !== '' ? span.tailTo : span.headTo };
    const heaviest =
      filter.user === null
        ? (await all<{ user: string }>('heaviestUsers', { ...filterOnly(filterParams(filter)), ...rollupSpan(fromIso, filter.toIso), limit: MAIN_WINDOW_USERS })).map((r) => r.user)
        : [filter.user];
    const buckets: HourBucket[] = [];
    for (const b of await all<{ user: string; hour: string; tokens: number; turns: number }>('windowHours', { ...base, users: JSON.stringify(heaviest) })) {
      buckets.push({ user: b.user, hourMillis: Date.parse(`${b.hour}:00:00Z`), tokens: b.tokens, turns: b.turns });
    }
    return { fromIso: `${base.headFrom}:00:00Z`, rows: windowsFromHours(buckets, nowMillis) };
  };

  /** One page of a SQL-paged table: the match count first, so a page past the end shows the last. */
  const tablePage = async <T>(table: PagedTable, f: ViewFilter, q: (TableQuery & { before?: string }) | undefined): Promise<{ rows: T[]; info: PageInfo }> => {
    const t: TableQuery & { before?: string } = q ?? defaultTable();
    const params = { email: t.email ?? f.user, division: f.division, pattern: likePattern(t.q), before: t.before ?? null };
    const count = await one<{ n: number }>(table === 'keys' ? 'keysCount' : table === 'users' ? 'usersCount' : 'inactiveCount', params);
    const totalRows = Number(count.n);
    const size = Math.max(1, Math.min(t.pageSize, MAX_LIST_ROWS));
    const page = Math.max(1, Math.min(t.page, Math.ceil(totalRows / size)));
    const rows = (await db.all(pagedSql(table, t.sort, t.dir), { ...params, limit: size, offset: (page - 1) * size })) as T[];
    return { rows, info: { page, total: totalRows, pageSize: size } };
  };

  /** The daily chart's rows: the organisation's sharded table when nobody is singled out. */
  const chartDays = async (p: FilterParams, book: PriceBook): Promise<Map<string, DayRow & { cost: CostTotal }>> => {
    const byDay = new Map<string, DayRow & { cost: CostTotal }>();
    const chart = p.user === null && p.division === null ? 'dayTotalsOrg' : forUser(p, 'dayTotals');
    for (const g of await all<GroupRow>(chart, { ...filterOnly(p), ...rollupSpan(p.from, p.to) })) {
      let d = byDay.get(g.day);
      if (d === undefined) {
        d = { day: g.day, ...zeroTokens(), cost: emptyTotal() };
        byDay.set(g.day, d);
      }
      addTokens(d, g);
      priceGroup(book, g, d.cost);
    }
    return byDay;
  };
  return {
    groups,
    rawEvents(p, after, limit) {
      return all<RawEventRow>('rawEvents', { ...p, after, limit });
    },
    async metricTotals(prices, perUser) {
      const book = prices ?? SHIPPED_BOOK;
      const series = new Map<string, MetricSeries>();
      const perUserModel = new Map<string, TokenTotals & { user: string; model: string }>();
      const allTime = { from: '2000-01-01T00:00:00Z', to: '9999-12-31T00:00:00Z', user: null, model: null, division: null };
      for (const g of await totals(allTime, book)) {
        if (perUser) {
          const k = `${g.user}\u0000${g.model}`;
          const u = perUserModel.get(k) ?? { user: g.user, model: g.model, ...zeroTokens() };
          addTokens(u, g);
          perUserModel.set(k, u);
        }
        const key = `${g.model}\u0000${g.division}`;
        let m = series.get(key);
        if (m === undefined) {
          m = { model: g.model, division: g.division, ...zeroTokens(), costUsd: book.family(g.model) === null ? null : 0 };
          series.set(key, m);
        }
        addTokens(m, g);
        const cost = priceGroup(book, g, emptyTotal());
        if (m.costUsd !== null) m.costUsd += cost.usd;
      }
      return {
        byModelDivision: [...series.values()],
        byUserModel: [...perUserModel.values()],
      };
    },
    async sessions(p, prices) {
      const book = prices ?? SHIPPED_BOOK;
      const rows = await all<Omit<SessionRow, 'cost'>>('sessions', { ...p });
      const costs = new Map<string, CostTotal>();
      for (const g of await all<GroupRow & { sessionId: string }>('sessionGroups', { ...p })) {
        let c = costs.get(g.sessionId);
        if (c === undefined) {
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
      const want = new Set<DashboardSection>(loadOpts.sections ?? DASHBOARD_SECTIONS);
      const memo = new Map<string, Promise<TotalRow[]>>();
      const none = <T>(value: T): Promise<T> => Promise.resolve(value);
      // Every statement is sent at once and the answers awaited together (PostgreSQL runs them on
      // several pooled connections, SQLite's reader threads two at a time without waiting for this
      // thread): a page costs about its slowest statement, not their sum.
      const usageRows = want.has('totals') ? usageTotals(p, book, filter.model !== null, memo) : none(emptyAggregate());
      const countRow = one<{ users: number; activeUsers: number }>('userCounts');
      const eventsPage = Math.min(Math.max(1, loadOpts.eventsPage ?? 1), MAX_EVENT_PAGES);
      const eventRows = want.has('events')
        ? all<Omit<EventRow, 'signed'> & { signed: number }>('events', { ...p, limit: EVENTS_PAGE, offset: (eventsPage - 1) * EVENTS_PAGE }).then((rows) => rows.map((e) => ({ ...e, signed: e.signed !== 0 })))
        : none<EventRow[]>([]);
      const inactiveTable = loadOpts.inactiveTable ?? { ...defaultTable(), before: isoSeconds(nowMillis - REPORT_DAYS * DAY_MS) };
      const [usage, byDay, counts, keyRow, win, events, users, inactive, keys, seats, seatValue, divisions, models] = await Promise.all([
        usageRows,
        want.has('chart') ? chartDays(p, book) : none(new Map<string, DayRow & { cost: CostTotal }>()),
        countRow,
        one<{ total: number; active: number }>('keyCounts'),
        want.has('windows') ? windows(filter, nowMillis) : none({ fromIso: filter.fromIso, rows: [] as UserWindows[] }),
        eventRows,
        want.has('users') ? tablePage<UserRow>('users', filter, loadOpts.usersTable) : none(emptyPage<UserRow>()),
        want.has('inactive') ? tablePage<UserRow>('inactive', filter, inactiveTable) : none(emptyPage<UserRow>()),
        want.has('keys') ? tablePage<KeyRow>('keys', filter, loadOpts.keysTable) : none(emptyPage<KeyRow>()),
        want.has('seats') ? all<{ v: string; n: number }>('divisionSeats') : none([]),
        want.has('month') ? monthValue(book, nowMillis, memo, countRow) : none(null),
        all<{ v: string }>('divisions'),
        all<{ v: string }>('models', { day: dayKey(nowMillis - 90 * DAY_MS) }),
      ]);
      const keyCounts = { total: Number(keyRow.total), active: Number(keyRow.active) };
      return {
        generatedAt: isoSeconds(nowMillis),
        sinceUtc: filter.fromIso,
        filter,
        pricesSource: book.table.source,
        summary: { ...usage.summary, users: counts.users, activeUsers: counts.activeUsers, activeDevices: keyCounts.active },
        byUser: usage.byUser,
        byModel: usage.byModel,
        byDivision: usage.byDivision,
        days: want.has('chart') ? daysOf(filter).map((day) => byDay.get(day) ?? { day, ...zeroTokens(), cost: emptyTotal() }) : [],
        windows: win.rows,
        windowsFromIso: win.fromIso,
        events,
        eventsPage,
        keys: keys.rows,
        keysPage: keys.info,
        keyCounts,
        users: users.rows,
        usersPage: users.info,
        inactive: inactive.rows,
        inactivePage: inactive.info,
        divisionSeats: Object.fromEntries(seats.map((r) => [r.v, Number(r.n)])),
        seatValue,
        divisions: divisions.map((r) => r.v),
        models: models.map((r) => r.v),
      };
    },
  };
}

function defaultTable(): TableQuery {
  return { q: '', sort: null, dir: 'desc', page: 1, pageSize: MAX_LIST_ROWS };
}

function emptyPage<T>(): { rows: T[]; info: PageInfo } {
  return { rows: [], info: { page: 1, total: 0, pageSize: 0 } };
}

export interface Aggregate {
  summary: Omit<Summary, 'users' | 'activeUsers' | 'activeDevices'>;
  byUser: UsageRow[];
  byModel: UsageRow[];
  byDivision: UsageRow[];
}

function emptyAggregate(): Aggregate {
  return { summary: { ...zeroTokens(), reportingUsers: 0, sessions: 0, turns: 0, cost: emptyTotal() }, byUser: [], byModel: [], byDivision: [] };
}

/** Rows summed between two turns of the event loop: `/health` and `/report` answer in between. */
const ROWS_PER_SLICE = 500;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The range's user × model totals summed per user, model and division, and for the tiles. */
export async function aggregate(rows: readonly TotalRow[], book: PriceBook, byModelFilter: boolean): Promise<Aggregate> {
  const summaryTokens = zeroTokens();
  const summaryCost = emptyTotal();
  const summaryCounts = { sessions: 0, turns: 0 };
  const reporting = new Set<string>();
  const byUser = new Map<string, Bucket>();
  const byModel = new Map<string, Bucket>();
  const byDivision = new Map<string, Bucket>();
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && i % ROWS_PER_SLICE === 0) await nextTurn();
    const t = rows[i]!;
    const cost = priceGroup(book, t, emptyTotal());
    // Per user and division, a session or turn counts once; per model, once per model.
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
  return {
    summary: { ...summaryTokens, reportingUsers: reporting.size, ...summaryCounts, cost: summaryCost },
    byUser: sorted(byUser),
    byModel: sorted(byModel),
    byDivision: sorted(byDivision),
  };
}

/** A row of `usageSql`: one user ('u'), model ('m'), division ('d') or all of them ('s'). */
interface UsageGroupRow extends TokenTotals {
  grp: 'u' | 'm' | 'd' | 's';
  grpKey: string;
  label: string | null;
  users: number | string;
  sessions: number;
  turns: number;
  usd: number;
  unpriced: number;
  est: number | string | null;
  lastSeen: string | null;
}

/** The prices of `day` for each priced model of `models`, as `usageSql` reads them. */
export function priceParam(book: PriceBook, models: readonly string[], day: string): string {
  const rows: (string | number)[][] = [];
  for (const model of models) {
    const p = book.priceOn(model, day);
    if (p !== null) rows.push([model, p.input, p.output, p.cacheRead, p.cacheWrite5m, p.cacheWrite1h, p.webSearchPer1k]);
  }
  return JSON.stringify(rows);
}

/** Two rows of one group from disjoint shares of the users, as one. */
function mergeGroupRows(a: UsageGroupRow, b: UsageGroupRow): UsageGroupRow {
  return {
    ...a,
    users: Number(a.users) + Number(b.users),
    sessions: a.sessions + b.sessions,
    turns: a.turns + b.turns,
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
    usd: a.usd + b.usd,
    unpriced: a.unpriced + b.unpriced,
    est: Math.max(Number(a.est ?? 0), Number(b.est ?? 0)),
    lastSeen: a.lastSeen === null || (b.lastSeen !== null && b.lastSeen > a.lastSeen) ? b.lastSeen : a.lastSeen,
    label: a.label ?? b.label,
  };
}

/**
 * `usageSql`'s rows (of one statement, or of several for disjoint shares of the users, merged
 * per group) as the dashboard's summary and tables, sorted as `aggregate` sorts them.
 */
function aggregateGroups(parts: readonly UsageGroupRow[], book: PriceBook): Aggregate {
  const merged = new Map<string, UsageGroupRow>();
  for (const r of parts) {
    const id = `${r.grp}\u0000${r.grpKey}`;
    const seen = merged.get(id);
    merged.set(id, seen === undefined ? r : mergeGroupRows(seen, r));
  }
  const out = emptyAggregate();
  for (const r of merged.values()) {
    const cost: CostTotal = { usd: r.usd, unpricedTokens: r.unpriced, estimated: Number(r.est) === 1 };
    const tokens = { input: r.input, output: r.output, cacheRead: r.cacheRead, cacheWrite: r.cacheWrite };
    if (r.grp === 's') {
      out.summary = { ...tokens, reportingUsers: Number(r.users), sessions: r.sessions, turns: r.turns, cost };
      continue;
    }
    const label = r.grp === 'u' ? r.label : r.grp === 'm' ? (book.family(r.grpKey)?.family ?? null) : null;
    const row: UsageRow = { key: r.grpKey, users: Number(r.users), sessions: r.sessions, turns: r.turns, lastSeen: r.lastSeen, ...tokens, cost, label };
    (r.grp === 'u' ? out.byUser : r.grp === 'm' ? out.byModel : out.byDivision).push(row);
  }
  for (const list of [out.byUser, out.byModel, out.byDivision]) list.sort(byCost);
  return out;
}

function mergeCost(into: CostTotal, c: CostTotal): void {
  into.usd += c.usd;
  into.unpricedTokens += c.unpricedTokens;
  if (c.estimated) into.estimated = true;
}

/** One row per UTC day of the last REPORT_DAYS days, zeros where nothing was used. */
export function fillDays(rows: readonly DayRow[], nowMillis: number): DayRow[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const out: DayRow[] = [];
  for (let i = REPORT_DAYS - 1; i >= 0; i--) {
    const day = new Date(nowMillis - i * 24 * 3600 * 1000).toISOString().slice(0, 10);
    out.push(byDay.get(day) ?? { day, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });
  }
  return out;
}
