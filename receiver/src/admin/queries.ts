/**
 * Read-only queries behind the dashboard views, exports and usage metrics. All SQL is in the `SQL`
 * object below, built only from constant fragments, with values passed as named parameters
 * (`@from`, `@to`, `@user`, `@model`, `@division`); nothing from a request is ever put into SQL
 * text. The store runs them through a `SqlReader` (SQLite: prepared once per database; PostgreSQL:
 * `store/pg-dialect.ts` translates the few SQLite spellings). Mutations go through the Store.
 *
 * Every usage query takes the same filter (date range, user, division, model). Token counters are
 * grouped by user × model × UTC day, which is also the grain prices apply at (a price row is per
 * model and day), so costs are exact sums of priced groups and the same rows feed every table.
 * Substr on the ISO timestamp gives the UTC day in both SQLite and PostgreSQL.
 */
import { PriceBook, addCost, emptyTotal } from '../prices/cost';
import { SHIPPED_PRICES } from '../prices/table';
import type { CostTotal } from '../prices/types';
import { type ViewFilter, daysOf, parseFilter } from './filters';
import { type WindowEvent, computeWindows, type UserWindows } from './windows';

export const REPORT_DAYS = 30;
const MAX_LIST_ROWS = 20_000;
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
  events: EventRow[];
  eventsPage: number;
  keys: KeyRow[];
  users: UserRow[];
  seatValue: SeatValue;
  /** Options for the filter form. */
  divisions: string[];
  models: string[];
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

// TOTAL, not SUM: SQLite's integer SUM fails the whole query ("integer overflow") once a total
// passes 2^63, so one hostile row would make every view answer 500. TOTAL adds in floating point,
// never fails, and is exact far beyond any real total (2^53 tokens).
const TOKEN_SUMS = `
  TOTAL(e.input_tokens) AS input,
  TOTAL(e.output_tokens) AS output,
  TOTAL(e.cache_read_tokens) AS cacheRead,
  TOTAL(e.cache_write_tokens) AS cacheWrite`;

// The schema-v2 split columns may not exist yet; both variants are constants, chosen at prepare.
const SPLIT_SUMS = `
  TOTAL(COALESCE(e.cache_write_5m_tokens, 0)) AS cw5m,
  TOTAL(COALESCE(e.cache_write_1h_tokens, 0)) AS cw1h,
  TOTAL(CASE WHEN e.cache_write_5m_tokens IS NULL OR e.cache_write_1h_tokens IS NULL THEN e.cache_write_tokens ELSE 0 END) AS unsplit,
  TOTAL(COALESCE(e.web_search_requests, 0)) AS webSearch`;
const NO_SPLIT_SUMS = `0 AS cw5m, 0 AS cw1h, TOTAL(e.cache_write_tokens) AS unsplit, 0 AS webSearch`;

// turn_index is an integer, so `session || '/' || turn` is unique per (session, turn).
const TURN_KEY = `e.session_id || '/' || e.turn_index`;

const groupsSql = (split: string) => `
  SELECT e.user_email AS user, COALESCE(MAX(u.division), '') AS division, e.model AS model,
    substr(e.timestamp_utc, 1, 10) AS day, ${TOKEN_SUMS}, ${split}, COUNT(DISTINCT ${TURN_KEY}) AS turns
  ${FROM_FILTERED}
  GROUP BY e.user_email, e.model, substr(e.timestamp_utc, 1, 10)
  ORDER BY day, user, model`;

const SQL = {
  groupsSplit: groupsSql(SPLIT_SUMS),
  groupsNoSplit: groupsSql(NO_SPLIT_SUMS),
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS activeUsers FROM users`,
  activeDevices: `SELECT COUNT(*) AS n FROM device_keys k JOIN users u ON u.id = k.user_id
    WHERE k.revoked_at IS NULL AND u.revoked_at IS NULL`,
  summary: `SELECT COUNT(DISTINCT e.user_email) AS reportingUsers, COUNT(DISTINCT e.session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns ${FROM_FILTERED}`,
  distinctByUser: `SELECT e.user_email AS key, COUNT(DISTINCT e.session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(e.timestamp_utc) AS lastSeen ${FROM_FILTERED}
    GROUP BY e.user_email`,
  distinctByModel: `SELECT e.model AS key, COUNT(DISTINCT e.user_email) AS users, COUNT(DISTINCT e.session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(e.timestamp_utc) AS lastSeen ${FROM_FILTERED}
    GROUP BY e.model`,
  distinctByDivision: `SELECT COALESCE(u.division, '') AS key, COUNT(DISTINCT e.user_email) AS users,
      COUNT(DISTINCT e.session_id) AS sessions, COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(e.timestamp_utc) AS lastSeen
    ${FROM_FILTERED}
    GROUP BY COALESCE(u.division, '')`,
  windowEvents: `SELECT e.user_email AS user, e.timestamp_utc AS ts, ${TURN_KEY} AS turnKey,
      e.input_tokens + e.output_tokens + e.cache_read_tokens + e.cache_write_tokens AS tokens
    ${FROM_FILTERED}`,
  events: `SELECT e.received_at AS receivedAt, e.timestamp_utc AS timestampUtc, e.user_email AS userEmail,
      e.reported_email AS reportedEmail, e.device_id AS deviceId, e.session_id AS sessionId, e.turn_index AS turnIndex,
      e.model AS model, e.input_tokens AS input, e.output_tokens AS output, e.cache_read_tokens AS cacheRead,
      e.cache_write_tokens AS cacheWrite, e.signed AS signed, e.plugin_version AS pluginVersion
    ${FROM_FILTERED}
    ORDER BY e.id DESC LIMIT @limit OFFSET @offset`,
  sessions: `SELECT e.session_id AS sessionId, MIN(e.timestamp_utc) AS firstAt, MAX(e.timestamp_utc) AS lastAt,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, GROUP_CONCAT(DISTINCT e.model) AS models, ${TOKEN_SUMS}
    ${FROM_FILTERED}
    GROUP BY e.session_id ORDER BY lastAt DESC LIMIT ${USER_SESSIONS}`,
  sessionGroups: `SELECT e.session_id AS sessionId, e.model AS model, substr(e.timestamp_utc, 1, 10) AS day, ${TOKEN_SUMS}
    ${FROM_FILTERED}
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
  users: `SELECT u.email AS email, u.division AS division, u.created_at AS createdAt, u.revoked_at AS revokedAt,
      (SELECT MAX(t.expires_at) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS tokenExpiresAt,
      (SELECT MAX(t.last_used_at) FROM user_tokens t WHERE t.user_id = u.id) AS tokenLastUsedAt,
      (SELECT COUNT(*) FROM device_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND u.revoked_at IS NULL) AS devices,
      (SELECT MAX(e.received_at) FROM usage_events e WHERE e.user_id = u.id) AS lastReportAt,
      (SELECT MAX(e.timestamp_utc) FROM usage_events e WHERE e.user_id = u.id) AS lastUsageAt
    FROM users u ORDER BY u.revoked_at IS NOT NULL, u.email
    LIMIT ${MAX_LIST_ROWS}`,
  divisions: `SELECT DISTINCT division AS v FROM users WHERE division <> '' ORDER BY division LIMIT 1000`,
  models: `SELECT DISTINCT model AS v FROM usage_events WHERE timestamp_utc >= @from ORDER BY model LIMIT 1000`,
  columns: `SELECT name FROM pragma_table_info('usage_events')`,
  // /metrics: all-time totals per model × division × UTC day (the day picks the price), and per user.
  metricTotals: `SELECT e.model AS model, COALESCE(u.division, '') AS division, substr(e.timestamp_utc, 1, 10) AS day,
      '' AS user, ${TOKEN_SUMS}, 0 AS cw5m, 0 AS cw1h, COALESCE(SUM(e.cache_write_tokens), 0) AS unsplit, 0 AS webSearch, 0 AS turns
    FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
    GROUP BY e.model, COALESCE(u.division, ''), substr(e.timestamp_utc, 1, 10)`,
  metricUserTotals: `SELECT e.user_email AS user, e.model AS model, ${TOKEN_SUMS}
    FROM usage_events e GROUP BY e.user_email, e.model`,
} as const;

/** Runs one SQL text of `SQL` with named parameters (`@name`); resolves with plain rows. */
export interface SqlReader {
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
  load(now: Date, filter?: ViewFilter, opts?: { eventsPage?: number; prices?: PriceBook }): Promise<DashboardData>;
  /** The user × model × day groups of a filter. */
  groups(filter: FilterParams): Promise<GroupRow[]>;
  /** One page of raw usage rows of a filter, by id after `after` (keyset paging for exports). */
  rawEvents(filter: FilterParams, after: number, limit: number): Promise<RawEventRow[]>;
  sessions(filter: FilterParams, prices?: PriceBook): Promise<SessionRow[]>;
  /** All-time usage totals for /metrics: per model × division (tokens, cost), and per user × model. */
  metricTotals(prices: PriceBook | undefined, perUser: boolean): Promise<MetricTotals>;
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

interface Distinct {
  key: string;
  users?: number;
  sessions: number;
  turns: number;
  lastSeen: string | null;
}

function bucket(map: Map<string, UsageRow>, key: string): UsageRow {
  let row = map.get(key);
  if (row === undefined) {
    row = { key, users: 1, sessions: 0, turns: 0, lastSeen: null, ...zeroTokens(), cost: emptyTotal(), label: null };
    map.set(key, row);
  }
  return row;
}

function withDistinct(map: Map<string, UsageRow>, distinct: Distinct[]): UsageRow[] {
  for (const d of distinct) {
    const row = bucket(map, d.key);
    row.sessions = d.sessions;
    row.turns = d.turns;
    row.lastSeen = d.lastSeen;
    if (d.users !== undefined) row.users = d.users;
  }
  return [...map.values()].sort((a, b) => b.cost.usd - a.cost.usd || total(b) - total(a) || a.key.localeCompare(b.key));
}

function total(t: TokenTotals): number {
  return t.input + t.output + t.cacheRead + t.cacheWrite;
}

const SHIPPED_BOOK = new PriceBook(SHIPPED_PRICES);

/** One piece: the dashboard's SQL, one prepared statement per entry — a flat table that reads best in one place. */
export function createQueries(db: SqlReader): AdminQueries {
  let hasSplit: boolean | null = null;
  const all = async <T>(key: keyof typeof SQL, params?: Record<string, unknown>): Promise<T[]> =>
    (await db.all(SQL[key], params)) as T[];
  const one = async <T>(key: keyof typeof SQL, params?: Record<string, unknown>): Promise<T> => (await all<T>(key, params))[0]!;
  const groups = async (p: FilterParams): Promise<GroupRow[]> => {
    if (hasSplit === null) {
      const columns = new Set((await all<{ name: string }>('columns')).map((c) => c.name));
      hasSplit = ['cache_write_5m_tokens', 'cache_write_1h_tokens', 'web_search_requests'].every((c) => columns.has(c));
    }
    return all<GroupRow>(hasSplit ? 'groupsSplit' : 'groupsNoSplit', { ...p });
  };

  const monthValue = async (book: PriceBook, nowMillis: number): Promise<SeatValue> => {
    const now = new Date(nowMillis);
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const cost = emptyTotal();
    for (const g of await groups({ from: isoSeconds(monthStart), to: isoSeconds(nowMillis + 1000), user: null, model: null, division: null })) {
      priceGroup(book, g, cost);
    }
    const counts = await one<{ activeUsers: number }>('userCounts');
    return { month: now.toISOString().slice(0, 7), cost, activeSeats: counts.activeUsers };
  };

  return {
    groups,
    rawEvents(p, after, limit) {
      return all<RawEventRow>('rawEvents', { ...p, after, limit });
    },
    async metricTotals(prices, perUser) {
      const book = prices ?? SHIPPED_BOOK;
      const series = new Map<string, MetricSeries>();
      for (const g of await all<GroupRow>('metricTotals')) {
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
        byUserModel: perUser ? await all<TokenTotals & { user: string; model: string }>('metricUserTotals') : [],
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

      const summaryTokens = zeroTokens();
      const summaryCost = emptyTotal();
      const byUser = new Map<string, UsageRow>();
      const byModel = new Map<string, UsageRow>();
      const byDivision = new Map<string, UsageRow>();
      const byDay = new Map<string, DayRow & { cost: CostTotal }>();
      for (const g of await groups(p)) {
        const cost = priceGroup(book, g, emptyTotal());
        const parts: [Map<string, UsageRow>, string][] = [
          [byUser, g.user],
          [byModel, g.model],
          [byDivision, g.division],
        ];
        for (const [map, key] of parts) {
          const row = bucket(map, key);
          addTokens(row, g);
          mergeCost(row.cost, cost);
        }
        bucket(byUser, g.user).label = g.division;
        addTokens(summaryTokens, g);
        mergeCost(summaryCost, cost);
        let d = byDay.get(g.day);
        if (d === undefined) {
          d = { day: g.day, ...zeroTokens(), cost: emptyTotal() };
          byDay.set(g.day, d);
        }
        addTokens(d, g);
        mergeCost(d.cost, cost);
      }
      for (const row of byModel.values()) row.label = book.family(row.key)?.family ?? null;

      const counts = await one<{ users: number; activeUsers: number }>('userCounts');
      const devices = await one<{ n: number }>('activeDevices');
      const distinct = await one<{ reportingUsers: number; sessions: number; turns: number }>('summary', { ...p });
      const windowEvents: WindowEvent[] = [];
      for (const row of await all<{ user: string; ts: string; turnKey: string; tokens: number }>('windowEvents', { ...p })) {
        windowEvents.push({ user: row.user, atMillis: Date.parse(row.ts), turnKey: row.turnKey, tokens: row.tokens });
      }
      const eventsPage = Math.min(Math.max(1, loadOpts.eventsPage ?? 1), MAX_EVENT_PAGES);
      const events = (
        await all<Omit<EventRow, 'signed'> & { signed: number }>('events', { ...p, limit: EVENTS_PAGE, offset: (eventsPage - 1) * EVENTS_PAGE })
      ).map((e) => ({ ...e, signed: e.signed !== 0 }));
      const days = daysOf(filter).map((day) => byDay.get(day) ?? { day, ...zeroTokens(), cost: emptyTotal() });
      return {
        generatedAt: isoSeconds(nowMillis),
        sinceUtc: filter.fromIso,
        filter,
        pricesSource: book.table.source,
        summary: { ...summaryTokens, ...distinct, users: counts.users, activeUsers: counts.activeUsers, activeDevices: devices.n, cost: summaryCost },
        byUser: withDistinct(byUser, await all<Distinct>('distinctByUser', { ...p })),
        byModel: withDistinct(byModel, await all<Distinct>('distinctByModel', { ...p })),
        byDivision: withDistinct(byDivision, await all<Distinct>('distinctByDivision', { ...p })),
        days,
        windows: computeWindows(windowEvents, nowMillis),
        events,
        eventsPage,
        keys: await all<KeyRow>('keys'),
        users: await all<UserRow>('users'),
        seatValue: await monthValue(book, nowMillis),
        divisions: (await all<{ v: string }>('divisions')).map((r) => r.v),
        models: (await all<{ v: string }>('models', { from: isoSeconds(nowMillis - 90 * 24 * 3600 * 1000) })).map((r) => r.v),
      };
    },
  };
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
