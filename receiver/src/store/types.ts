/**
 * The receiver's one storage interface. Every route, command and view goes through it; two
 * backends implement it with the same semantics (`store/contract.test` runs one suite on both):
 *
 * - `sqlite.ts`   — better-sqlite3, the embedded default (`DATABASE_PATH`). Each method runs its
 *                   statements synchronously inside one transaction and returns a settled promise,
 *                   so no other request interleaves with it on the single connection.
 * - `postgres.ts` — `pg` with a pool (`DATABASE_URL=postgres://…`), for several instances on one
 *                   database. Each method is one transaction on one pooled client.
 *
 * Everything an instance needs to answer a request lives in the database (token hashes, device
 * keys, rate-limit windows, admin sessions), so any instance can answer any request.
 *
 * Adding a store method: add it here, implement it in both backends with parameters only (never
 * interpolate a value into SQL), and cover it in `receiver/test/store-contract.test.ts`.
 * Adding a migration: append to `MIGRATIONS` in `db/schema.ts` (SQLite) and the same number to
 * `PG_MIGRATIONS` in `db/schema-postgres.ts`; never edit a shipped one (see those files).
 */
import type { ReportBody } from '../../../src/protocol/wire';
import type { ViewFilter } from '../admin/filters';
import type { DashboardData, FilterParams, GroupRow, LoadOptions, MetricTotals, RawEventRow, SessionRow } from '../admin/queries';
import type { PriceBook } from '../prices/cost';

/** Defaults match SPEC §3; the server passes its configuration. */
export interface StoreOptions {
  refreshTokenRollingDays?: number;
  accessTokenExpirySecs?: number;
}

export interface UserRow {
  email: string;
  division: string;
  created_at: string;
  revoked_at: string | null;
  /** Non-secret identifier of the current refresh token (`usage_events.user_token`); null if none. */
  token_ref: string | null;
  token_expires_at: string | null;
  token_last_used_at: string | null;
  active_keys: number;
}

export interface KeyRow {
  id: number;
  user_email: string;
  device_id: string;
  public_key: string;
  registered_at: string;
  last_seen_at: string | null;
  revoked_at: string | null;
}

/** Who a valid token belongs to. */
export interface AuthContext {
  userId: number;
  email: string;
  refreshTokenId: number;
  tokenRef: string;
  /** The user's registration of the public key `authenticateAccessToken` was asked about, read in
   * the same statement as the token (null: no such registration); absent when not asked. */
  deviceKey?: { publicKey: string; key: DeviceKey | null };
}

export interface DeviceKey {
  id: number;
  device_id: string;
  revoked_at: string | null;
}

export type RegisterKeyOutcome = 'registered' | 'exists' | 'revoked' | 'limit';

export interface LimitDecision {
  allowed: boolean;
  /** Seconds until a request would be allowed again (for `Retry-After`); 0 when allowed. */
  retryAfterSecs: number;
}

export interface InsertOptions {
  deviceId: string;
  signed: boolean;
  /** The verified signing key: its last_seen_at is set in the same transaction. */
  deviceKeyId?: number;
}

/** Who did something in the audit log: a dashboard session, a bearer script, the CLI, or nobody
 * yet (a failed login). */
export type AuditActor = 'session' | 'bearer' | 'cli' | 'anonymous';

export const AUDIT_ACTIONS = [
  'login.success',
  'login.failure',
  'logout',
  'user.provision',
  'user.import',
  'user.revoke',
  'user.reissue',
  'user.division',
  'key.revoke',
  'budget.set',
  'budget.delete',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  actor: AuditActor;
  /** Client address, or `cli`. */
  source: string;
  action: AuditAction;
  /** Email, public key or budget scope acted on; '' when none. */
  target: string;
  /** What changed, never a secret (no token, no form body). */
  detail?: Record<string, unknown>;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: AuditActor;
  source: string;
  action: AuditAction;
  target: string;
  /** JSON text of `detail`. */
  detail: string;
}

export type BudgetScope = 'org' | 'division' | 'user';
export type BudgetUnit = 'usd' | 'tokens';

export interface Budget {
  id: number;
  scope: BudgetScope;
  /** Division name or email; '' for the organisation. */
  subject: string;
  unit: BudgetUnit;
  monthlyLimit: number;
  createdAt: string;
  updatedAt: string;
}

export interface BudgetAlertRow {
  id: number;
  budgetId: number;
  scope: BudgetScope;
  subject: string;
  unit: BudgetUnit;
  month: string;
  threshold: number;
  crossedAt: string;
  spent: number;
  monthlyLimit: number;
  deliveredAt: string | null;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

/** One dashboard page: its filter, and (LoadOptions) the sections it shows and its table pages. */
export interface DashboardView extends LoadOptions {
  filter?: ViewFilter;
}

/** An admin session as stored: the id only as its SHA-256, the flash sealed (admin/sessions.ts). */
export interface SessionRecord {
  idHash: string;
  csrfToken: string;
  createdMs: number;
  lastSeenMs: number;
  flash: string | null;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  // users
  /** Provisions a user and returns their refresh token (the only time it is ever available).
   * A revoked user with the same email is re-enabled with a fresh token. */
  createUser(email: string, opts?: { division?: string; days?: number }): Promise<{ refreshToken: string }>;
  listUsers(): Promise<UserRow[]>;
  /** Moves a user to another division; false when it already was there. `not-found` if unknown. */
  setDivision(email: string, division: string): Promise<boolean>;
  /** Revokes the user, every refresh token and every access token of theirs. Idempotent. */
  revokeUser(email: string): Promise<void>;
  /** Revokes the user's refresh tokens (and their access tokens) and issues a new one. */
  reissueToken(email: string, opts?: { days?: number }): Promise<{ refreshToken: string }>;

  // device keys
  listKeys(): Promise<KeyRow[]>;
  /** Revokes one (user, key) registration: `email`'s, or the key's only one (`ambiguous` when
   * several users registered it). 1 when revoked now, 0 when it already was; `not-found`. */
  revokeKey(publicKey: string, email?: string): Promise<number>;
  registerKey(auth: AuthContext, publicKey: string, deviceId: string): Promise<RegisterKeyOutcome>;
  /** The key as registered to this user; another user's registration of it does not count. */
  findDeviceKey(userId: number, publicKey: string): Promise<DeviceKey | undefined>;

  // tokens
  /** The owner of a refresh token that is known, unexpired and not revoked; null otherwise. */
  authenticateRefreshToken(token: string): Promise<AuthContext | null>;
  /** Issues an access token and rolls the refresh token's expiry forward (never backward). */
  issueAccessToken(auth: AuthContext): Promise<{ accessToken: string; expiresAt: Date }>;
  /** The owner of a live access token whose user and refresh token are not revoked; else null.
   * With `publicKey`, also that user's registration of it (`deviceKey`), read in the same query:
   * a signed report then needs no second lookup, and revocation is still read on every request. */
  authenticateAccessToken(token: string, publicKey?: string): Promise<AuthContext | null>;
  purgeExpiredAccessTokens(): Promise<number>;
  /**
   * Deletes at most `maxRows` raw usage rows received before `receivedBefore` (`YYYY-MM-DD HH:MM:SS`
   * UTC), oldest first, in one short statement; rollups are kept. Several instances may run it at
   * once (RETENTION_DAYS, receiver/src/retention.ts). Returns how many rows it deleted.
   */
  purgeUsageEvents(receivedBefore: string, maxRows: number): Promise<number>;
  countActiveAccessTokens(): Promise<number>;

  // usage
  /** One row per model, idempotent on (user, session_id, turn_index, model): a retried or replayed
   * report inserts nothing. Returns how many rows were new. */
  insertReport(auth: AuthContext, report: ReportBody, opts: InsertOptions): Promise<{ inserted: number }>;
  /** What one dashboard page shows, as of `now` (range, filters, `sections`, table pages; every
   * section of the last 30 days unfiltered at shipped prices by default). SQL in `admin/queries.ts`. */
  dashboard(now: Date, view?: DashboardView): Promise<DashboardData>;
  /** The user × model × UTC day groups of a filter (exports call it one day at a time); with
   * `prices`, user × model per price period (budgets: the same cost from far fewer rows). */
  usageGroups(filter: FilterParams, opts?: { prices?: PriceBook }): Promise<GroupRow[]>;
  /** Raw usage rows of a filter with id > `after`, by id, at most `limit` (keyset paging). */
  rawEvents(filter: FilterParams, after: number, limit: number): Promise<RawEventRow[]>;
  /** All-time usage totals for /metrics (per model × division; per user × model when asked). */
  usageMetrics(prices: PriceBook | undefined, perUser: boolean): Promise<MetricTotals>;
  /** One user's sessions in a range (the user page), newest first, bounded. */
  userSessions(filter: FilterParams, prices?: PriceBook): Promise<SessionRow[]>;

  // shared limits (one counter for every instance; method and error bound in rules.ts / docs)
  /** Counts one event for `key` when it is within `limit` per `windowSecs`; a refused one is not counted. */
  limitHit(key: string, limit: number, windowSecs: number): Promise<LimitDecision>;
  /** The same decision without counting anything (e.g. "may this address try to log in?"). */
  limitCheck(key: string, limit: number, windowSecs: number): Promise<LimitDecision>;

  // admin sessions (shared by every instance)
  /** Stores a new session; first drops expired ones, then the least recently used beyond `maxSessions - 1`. */
  sessionPut(
    s: Omit<SessionRecord, 'flash'>,
    bounds: { maxSessions: number; idleBeforeMs: number; createdBeforeMs: number },
  ): Promise<void>;
  sessionGet(idHash: string): Promise<SessionRecord | undefined>;
  sessionTouch(idHash: string, lastSeenMs: number): Promise<void>;
  sessionSetFlash(idHash: string, flash: string | null): Promise<void>;
  sessionDelete(idHash: string): Promise<void>;

  // audit log (admin actions; bounded reads, newest first)
  recordAudit(entry: AuditEntry): Promise<void>;
  listAudit(query: { fromIso?: string; toIso?: string; limit: number; offset: number }): Promise<AuditRow[]>;

  // budgets and their 80 %/100 % alerts (one row per budget, month and threshold)
  listBudgets(): Promise<Budget[]>;
  /** Creates or replaces the budget of (scope, subject); returns it and the one it replaced. */
  setBudget(b: { scope: BudgetScope; subject: string; unit: BudgetUnit; monthlyLimit: number }): Promise<{ budget: Budget; previous: Budget | null }>;
  deleteBudget(id: number): Promise<Budget | null>;
  /** Records a crossing unless it is already recorded for that month; true when it is new. */
  recordBudgetAlert(a: { budgetId: number; month: string; threshold: number; spent: number; monthlyLimit: number; crossedAt: string }): Promise<boolean>;
  listBudgetAlerts(limit: number): Promise<BudgetAlertRow[]>;
  /** Undelivered alerts due for a (re)try at `nowIso`, oldest first. */
  dueBudgetAlerts(nowIso: string, maxAttempts: number, limit: number): Promise<BudgetAlertRow[]>;
  markBudgetAlert(id: number, outcome: { deliveredAt: string | null; attempts: number; nextAttemptAt: string | null; lastError: string | null }): Promise<void>;

  /** Throws when the database cannot answer a query that reads a table page. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
