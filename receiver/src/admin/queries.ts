/**
 * Read-only queries behind the dashboard views. Prepared statements only, prepared once per
 * database on first use; every list is bounded. Mutations go through the Store, never here.
 */
import type { Database, Statement } from 'better-sqlite3';
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
  COALESCE(SUM(cache_read_tokens), 0) AS cacheRead,
  COALESCE(SUM(cache_write_tokens), 0) AS cacheWrite`;

// turn_index is an integer, so `session || '/' || turn` is unique per (session, turn).
const TURN_KEY = `session_id || '/' || turn_index`;

const SQL = {
  userCounts: `SELECT COUNT(*) AS users, COALESCE(SUM(revoked_at IS NULL), 0) AS activeUsers FROM users`,
  activeDevices: `SELECT COUNT(*) AS n FROM device_keys WHERE revoked_at IS NULL`,
  summary: `SELECT COUNT(DISTINCT user_email) AS reportingUsers, COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?`,
  byUser: `SELECT user_email AS key, 1 AS users, COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(timestamp_utc) AS lastSeen, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?
    GROUP BY user_email
    ORDER BY SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) DESC, user_email
    LIMIT ${MAX_USAGE_ROWS}`,
  byModel: `SELECT model AS key, COUNT(DISTINCT user_email) AS users, COUNT(DISTINCT session_id) AS sessions,
      COUNT(DISTINCT ${TURN_KEY}) AS turns, MAX(timestamp_utc) AS lastSeen, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ?
    GROUP BY model
    ORDER BY SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) DESC, model
    LIMIT ${MAX_USAGE_ROWS}`,
  days: `SELECT date(timestamp_utc) AS day, ${TOKEN_SUMS}
    FROM usage_events WHERE timestamp_utc >= ? AND date(timestamp_utc) IS NOT NULL
    GROUP BY day ORDER BY day`,
  windowEvents: `SELECT user_email AS user, timestamp_utc AS ts, ${TURN_KEY} AS turnKey,
      input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM usage_events WHERE timestamp_utc >= ?`,
  events: `SELECT received_at AS receivedAt, timestamp_utc AS timestampUtc, user_email AS userEmail,
      reported_email AS reportedEmail, device_id AS deviceId, session_id AS sessionId, turn_index AS turnIndex,
      model, input_tokens AS input, output_tokens AS output, cache_read_tokens AS cacheRead,
      cache_write_tokens AS cacheWrite, signed, plugin_version AS pluginVersion
    FROM usage_events ORDER BY id DESC LIMIT ${RECENT_EVENTS}`,
  keys: `SELECT u.email AS email, k.public_key AS publicKey, k.device_id AS deviceId, k.registered_at AS registeredAt,
      k.last_seen_at AS lastSeenAt, k.revoked_at AS revokedAt
    FROM device_keys k JOIN users u ON u.id = k.user_id
    ORDER BY k.revoked_at IS NOT NULL, u.email, k.registered_at
    LIMIT ${MAX_LIST_ROWS}`,
  users: `SELECT u.email AS email, u.division AS division, u.created_at AS createdAt, u.revoked_at AS revokedAt,
      (SELECT MAX(t.expires_at) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS tokenExpiresAt,
      (SELECT MAX(t.last_used_at) FROM user_tokens t WHERE t.user_id = u.id) AS tokenLastUsedAt,
      (SELECT COUNT(*) FROM device_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS devices,
      (SELECT MAX(e.received_at) FROM usage_events e WHERE e.user_id = u.id) AS lastReportAt
    FROM users u ORDER BY u.revoked_at IS NOT NULL, u.email
    LIMIT ${MAX_LIST_ROWS}`,
} as const;

type Statements = { -readonly [K in keyof typeof SQL]: Statement };

/** `2026-05-11T03:00:00Z`, the form reports use, so string comparison orders correctly. */
function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export interface AdminQueries {
  load(now: Date): DashboardData;
}

export function createQueries(db: Database): AdminQueries {
  let stmts: Statements | null = null;
  const prepared = (): Statements => {
    if (stmts === null) {
      const s: Partial<Statements> = {};
      for (const key of Object.keys(SQL) as (keyof typeof SQL)[]) s[key] = db.prepare(SQL[key]);
      stmts = s as Statements;
    }
    return stmts;
  };

  return {
    load(now) {
      const s = prepared();
      const nowMillis = now.getTime();
      const sinceUtc = isoSeconds(nowMillis - REPORT_DAYS * DAY_MILLIS);
      const counts = s.userCounts.get() as { users: number; activeUsers: number };
      const devices = s.activeDevices.get() as { n: number };
      const usage = s.summary.get(sinceUtc) as Omit<Summary, 'users' | 'activeUsers' | 'activeDevices'>;
      const windowEvents: WindowEvent[] = [];
      for (const row of s.windowEvents.iterate(sinceUtc) as Iterable<{ user: string; ts: string; turnKey: string; tokens: number }>) {
        windowEvents.push({ user: row.user, atMillis: Date.parse(row.ts), turnKey: row.turnKey, tokens: row.tokens });
      }
      const events = (s.events.all() as (Omit<EventRow, 'signed'> & { signed: number })[]).map((e) => ({ ...e, signed: e.signed !== 0 }));
      return {
        generatedAt: isoSeconds(nowMillis),
        sinceUtc,
        summary: { ...usage, users: counts.users, activeUsers: counts.activeUsers, activeDevices: devices.n },
        byUser: s.byUser.all(sinceUtc) as UsageRow[],
        byModel: s.byModel.all(sinceUtc) as UsageRow[],
        days: fillDays(s.days.all(sinceUtc) as DayRow[], nowMillis),
        windows: computeWindows(windowEvents, nowMillis),
        events,
        keys: s.keys.all() as KeyRow[],
        users: s.users.all() as UserRow[],
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
