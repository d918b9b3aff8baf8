/**
 * Read-only queries behind the dashboard views, in SQL both backends run (SQLite and PostgreSQL:
 * `?` placeholders, quoted camelCase aliases, no dialect functions); the store passes a reader.
 * Parameters only; every list is bounded. Mutations go through the Store, never here.
 */
import { type WindowEvent, computeWindows, type UserWindows } from './windows';

export const REPORT_DAYS = 30;
const DAY_MILLIS = 24 * 60 * 60 * 1000;
const MAX_USAGE_ROWS = 500;
const MAX_LIST_ROWS = 5000;
const RECENT_EVENTS = 50;

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
  activeDevices: number;
}

export interface UsageRow extends TokenTotals {
  key: string;
  users: number;
  sessions: number;
  turns: number;
  lastSeen: string | null;
}

export interface DayRow extends TokenTotals {
  day: string;
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
}

export interface DashboardData {
  generatedAt: string;
  sinceUtc: string;
  summary: Summary;
  byUser: UsageRow[];
  byModel: UsageRow[];
  days: DayRow[];
  windows: UserWindows[];
  events: EventRow[];
  keys: KeyRow[];
  users: UserRow[];
}

const TOKEN_SUMS = `
  COALESCE(SUM(input_tokens), 0) AS input,
  COALESCE(SUM(output_tokens), 0) AS output,
  COALESCE(SUM(cache_read_tokens), 0) AS "cacheRead",
  COALESCE(SUM(cache_write_tokens), 0) AS "cacheWrite"`;

// turn_index is an integer, so `session || '/' || turn` is unique per (session, turn).
const TURN_KEY = `session_id || '/' || turn_index`;

const SQL = {
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), 0) AS "activeUsers" FROM users`,
  activeDevices: `SELECT COUNT(*) AS n FROM device_keys WHERE revoked_at IS NULL`,
  summary: `SELECT COUNT(DISTINCT user_email) AS "reportingUsers", COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?`,
  byUser: `SELECT user_email AS key, 1 AS users, COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(timestamp_utc) AS "lastSeen", ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?
    GROUP BY user_email
    ORDER BY SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) DESC, user_email
    LIMIT ${MAX_USAGE_ROWS}`,
  byModel: `SELECT model AS key, COUNT(DISTINCT user_email) AS users, COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(timestamp_utc) AS "lastSeen", ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?
    GROUP BY model
    ORDER BY SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) DESC, model
    LIMIT ${MAX_USAGE_ROWS}`,
  days: `SELECT substr(timestamp_utc, 1, 10) AS day, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?
    GROUP BY substr(timestamp_utc, 1, 10) ORDER BY day`,
  windowEvents: `SELECT user_email AS "user", timestamp_utc AS ts, ${TURN_KEY} AS "turnKey",
      input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM usage_events WHERE timestamp_utc >= ?`,
  events: `SELECT received_at AS "receivedAt", timestamp_utc AS "timestampUtc", user_email AS "userEmail",
      reported_email AS "reportedEmail", device_id AS "deviceId", session_id AS "sessionId", turn_index AS "turnIndex",
      model, input_tokens AS input, output_tokens AS output, cache_read_tokens AS "cacheRead",
      cache_write_tokens AS "cacheWrite", signed, plugin_version AS "pluginVersion"
    FROM usage_events ORDER BY id DESC LIMIT ${RECENT_EVENTS}`,
  keys: `SELECT u.email AS email, k.public_key AS "publicKey", k.device_id AS "deviceId", k.registered_at AS "registeredAt",
      k.last_seen_at AS "lastSeenAt", k.revoked_at AS "revokedAt"
    FROM device_keys k JOIN users u ON u.id = k.user_id
    ORDER BY k.revoked_at IS NOT NULL, u.email, k.registered_at
    LIMIT ${MAX_LIST_ROWS}`,
  users: `SELECT u.email AS email, u.division AS division, u.created_at AS "createdAt", u.revoked_at AS "revokedAt",
      (SELECT MAX(t.expires_at) FROM refresh_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS "tokenExpiresAt",
      (SELECT MAX(t.last_used_at) FROM refresh_tokens t WHERE t.user_id = u.id) AS "tokenLastUsedAt",
      (SELECT COUNT(*) FROM device_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS devices,
      (SELECT MAX(e.received_at) FROM usage_events e WHERE e.user_id = u.id) AS "lastReportAt"
    FROM users u ORDER BY u.revoked_at IS NOT NULL, u.email
    LIMIT ${MAX_LIST_ROWS}`,
} as const;

/** Runs one of the SQL texts above with its parameters; resolves with plain row objects. */
export type SqlReader = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

/** `2026-05-11T03:00:00Z`, the form reports use, so string comparison orders correctly. */
function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export interface AdminQueries {
  load(now: Date): Promise<DashboardData>;
}

export function createQueries(read: SqlReader): AdminQueries {
  const all = async <T>(key: keyof typeof SQL, params: unknown[] = []): Promise<T[]> => (await read(SQL[key], params)) as T[];
  const one = async <T>(key: keyof typeof SQL, params: unknown[] = []): Promise<T> => (await all<T>(key, params))[0]!;

  return {
    async load(now) {
      const nowMillis = now.getTime();
      const sinceUtc = isoSeconds(nowMillis - REPORT_DAYS * DAY_MILLIS);
      const counts = await one<{ users: number; activeUsers: number }>('userCounts');
      const devices = await one<{ n: number }>('activeDevices');
      const usage = await one<Omit<Summary, 'users' | 'activeUsers' | 'activeDevices'>>('summary', [sinceUtc]);
      const windowRows = await all<{ user: string; ts: string; turnKey: string; tokens: number }>('windowEvents', [sinceUtc]);
      const windowEvents: WindowEvent[] = windowRows.map((row) => ({
        user: row.user,
        atMillis: Date.parse(row.ts),
        turnKey: row.turnKey,
        tokens: row.tokens,
      }));
      const events = (await all<Omit<EventRow, 'signed'> & { signed: number }>('events')).map((e) => ({ ...e, signed: e.signed !== 0 }));
      return {
        generatedAt: isoSeconds(nowMillis),
        sinceUtc,
        summary: { ...usage, users: counts.users, activeUsers: counts.activeUsers, activeDevices: devices.n },
        byUser: await all<UsageRow>('byUser', [sinceUtc]),
        byModel: await all<UsageRow>('byModel', [sinceUtc]),
        days: fillDays(await all<DayRow>('days', [sinceUtc]), nowMillis),
        windows: computeWindows(windowEvents, nowMillis),
        events,
        keys: await all<KeyRow>('keys'),
        users: await all<UserRow>('users'),
      };
    },
  };
}

/** One row per UTC day of the report period, zeros where nothing was used. */
export function fillDays(rows: readonly DayRow[], nowMillis: number): DayRow[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const out: DayRow[] = [];
  for (let i = REPORT_DAYS - 1; i >= 0; i--) {
    const day = new Date(nowMillis - i * DAY_MILLIS).toISOString().slice(0, 10);
    out.push(byDay.get(day) ?? { day, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });
  }
  return out;
}
