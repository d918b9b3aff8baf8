/**
 * PostgreSQL backend (`pg` with a pool). Same semantics as `sqlite.ts`, statement for statement;
 * every method that writes runs in one transaction on one pooled client. Parameters only.
 *
 * Concurrency: ingest is `INSERT … ON CONFLICT DO NOTHING` (append-only, idempotent), so many
 * instances never update the same event row. Single-row upserts (rate-limit windows, key
 * last_seen) take one row lock each and never two in different orders, so they cannot deadlock.
 */
import type pg from 'pg';
import type { ReportBody } from '../../../src/protocol/wire';
import { type AdminQueries, createQueries, type DashboardData, type FilterParams, type GroupRow, type MetricTotals, type RawEventRow, type SessionRow } from '../admin/queries';
import type { PriceBook } from '../prices/cost';
import { pgReader, translate, viewSlots } from './pg-dialect';
import { CUM_COLUMNS, type RollupDelta, rollupDeltas, rollupKeys } from './rollup';
import { createPool, migratePostgres } from '../db/postgres';
import { ORG_COLUMNS, ORG_SHARDS, ROLLUP_COLUMNS } from '../db/schema';
import { ReceiverError } from '../errors';
import { digestsEqual, generateToken, generateTokenRef, hashToken, looksLikeToken } from '../tokens';
import {
  checkDays,
  checkDivision,
  DAY_MS,
  keyOfRow,
  limitCap,
  limitRetryAfter,
  MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN,
  MAX_ACTIVE_KEYS_PER_USER,
  normalizeEmail,
  pickRegistration,
  sqliteTimestamp,
} from './rules';
import type {
  AuditEntry,
  AuditRow,
  AuthContext,
  Budget,
  BudgetAlertRow,
  BudgetScope,
  BudgetUnit,
  DashboardView,
  DeviceKey,
  InsertOptions,
  KeyRow,
  LimitDecision,
  RegisterKeyOutcome,
  SessionRecord,
  Store,
  StoreOptions,
  UserRow,
} from './types';

type Q = Pick<pg.ClientBase, 'query'>;

const BUDGET_SELECT = `SELECT id, scope, subject, unit, monthly_limit AS monthlyLimit, created_at AS createdAt, updated_at AS updatedAt
  FROM budgets`;
const BUDGET_ALERT_SELECT = `
  SELECT a.id, a.budget_id AS budgetId, b.scope, b.subject, b.unit, a.month, a.threshold, a.crossed_at AS crossedAt,
    a.spent, a.monthly_limit AS monthlyLimit, a.delivered_at AS deliveredAt, a.attempts, a.next_attempt_at AS nextAttemptAt,
    a.last_error AS lastError
  FROM budget_alerts a JOIN budgets b ON b.id = a.budget_id`;

/** camelCase aliases quoted for PostgreSQL (no parameters in the text). */
function translateSimple(sql: string): string {
  return translate(sql).text;
}

interface UserIdRow {
  id: number;
  division: string;
  revoked_at: string | null;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly now: () => Date;
  private readonly rollingDays: number;
  private readonly accessTtlSecs: number;
  private queries: AdminQueries | undefined;

  constructor(pool: pg.Pool, now: () => Date, options: StoreOptions = {}) {
    this.pool = pool;
    this.now = now;
    this.rollingDays = options.refreshTokenRollingDays ?? 90;
    this.accessTtlSecs = options.accessTokenExpirySecs ?? 28_800;
  }

  /** Connects, migrates (under the advisory lock) and returns the store. */
  static async open(url: string, now: () => Date, options: StoreOptions & { poolMax?: number } = {}): Promise<PostgresStore> {
    const pool = createPool(url, options.poolMax === undefined ? {} : { max: options.poolMax });
    try {
      await migratePostgres(pool, url);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PostgresStore(pool, now, options);
  }

  private nowIso(): string {
    return this.now().toISOString();
  }

  private async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }

  /** Runs `body` in one transaction on one client; rolls back on any error. */
  private async tx<T>(body: (q: Q) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  // ---- users ---------------------------------------------------------------------------------

  async createUser(email: string, opts: { division?: string; days?: number } = {}): Promise<{ refreshToken: string }> {
    const address = normalizeEmail(email);
    const division = checkDivision(opts.division);
    const days = checkDays(opts.days, this.rollingDays);
    return this.tx(async (q) => {
      const now = this.nowIso();
      // Serialises two creations of the same address (the second sees the first's row).
      await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [address]);
      const existing = (await q.query('SELECT id, division, revoked_at FROM users WHERE email = $1', [address])).rows[0] as
        | UserIdRow
        | undefined;
      let userId: number;
      if (existing === undefined) {
        const r = await q.query('INSERT INTO users (email, division, created_at) VALUES ($1, $2, $3) RETURNING id', [
          address,
          division ?? '',
          now,
        ]);
        userId = Number(r.rows[0].id);
      } else if (existing.revoked_at === null) {
        throw new ReceiverError('exists', `user ${address} already exists (use reissue for a new token)`);
      } else {
        userId = Number(existing.id);
        await q.query('UPDATE users SET revoked_at = NULL, division = $1 WHERE id = $2', [division ?? existing.division, userId]);
      }
      return { refreshToken: await this.issueRefreshToken(q, userId, days) };
    });
  }

  async listUsers(): Promise<UserRow[]> {
    return this.rows<UserRow>(`
      SELECT u.email, u.division, u.created_at, u.revoked_at,
             rt.token_ref, rt.expires_at AS token_expires_at, rt.last_used_at AS token_last_used_at,
             (SELECT count(*) FROM device_keys dk WHERE dk.user_id = u.id AND dk.revoked_at IS NULL) AS active_keys
      FROM users u
      LEFT JOIN user_tokens rt ON rt.id = (
        SELECT id FROM user_tokens WHERE user_id = u.id AND revoked_at IS NULL ORDER BY id DESC LIMIT 1)
      ORDER BY u.email`);
  }

  async setDivision(email: string, division: string): Promise<boolean> {
    const address = normalizeEmail(email);
    const value = checkDivision(division) ?? '';
    return this.tx(async (q) => {
      const user = await this.requireUser(q, address);
      if (user.division === value) return false;
      await q.query('UPDATE users SET division = $1 WHERE id = $2', [value, user.id]);
      return true;
    });
  }

  async revokeUser(email: string): Promise<void> {
    const address = normalizeEmail(email);
    await this.tx(async (q) => {
      const user = await this.requireUser(q, address);
      const now = this.nowIso();
      await q.query('UPDATE users SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2', [now, user.id]);
      await q.query('UPDATE user_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL', [now, user.id]);
      await q.query('DELETE FROM access_tokens WHERE user_id = $1', [user.id]);
    });
  }

  async reissueToken(email: string, opts: { days?: number } = {}): Promise<{ refreshToken: string }> {
    const address = normalizeEmail(email);
    const days = checkDays(opts.days, this.rollingDays);
    return this.tx(async (q) => {
      const user = await this.requireUser(q, address);
      if (user.revoked_at !== null) {
        throw new ReceiverError('revoked', `user ${address} is revoked (use users add to enable it again)`);
      }
      await q.query('UPDATE user_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL', [this.nowIso(), user.id]);
      await q.query('DELETE FROM access_tokens WHERE user_id = $1', [user.id]);
      return { refreshToken: await this.issueRefreshToken(q, user.id, days) };
    });
  }

  private async requireUser(q: Q, address: string): Promise<UserIdRow> {
    const user = (await q.query('SELECT id, division, revoked_at FROM users WHERE email = $1 FOR UPDATE', [address])).rows[0] as
      | UserIdRow
      | undefined;
    if (user === undefined) throw new ReceiverError('not-found', `no user ${address}`);
    return { ...user, id: Number(user.id) };
  }

  private async issueRefreshToken(q: Q, userId: number, days: number): Promise<string> {
    const token = generateToken('refresh');
    const now = this.now();
    const expires = new Date(now.getTime() + days * DAY_MS);
    await q.query(
      'INSERT INTO user_tokens (user_id, token_hash, token_ref, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [userId, hashToken(token), generateTokenRef(), now.toISOString(), expires.toISOString()],
    );
    return token;
  }

  // ---- device keys ---------------------------------------------------------------------------

  async listKeys(): Promise<KeyRow[]> {
    return this.rows<KeyRow>(`
      SELECT dk.id, u.email AS user_email, dk.device_id, dk.public_key, dk.registered_at, dk.last_seen_at, dk.revoked_at
      FROM device_keys dk JOIN users u ON u.id = dk.user_id
      ORDER BY dk.registered_at, dk.id`);
  }

  async revokeKey(publicKey: string, email?: string): Promise<number> {
    const address = email === undefined ? undefined : normalizeEmail(email);
    return this.tx(async (q) => {
      const rows = (
        await q.query(
          'SELECT dk.id, u.email, dk.revoked_at FROM device_keys dk JOIN users u ON u.id = dk.user_id WHERE dk.public_key = $1 ORDER BY dk.id',
          [publicKey],
        )
      ).rows as { id: number; email: string; revoked_at: string | null }[];
      const target = pickRegistration(rows, address);
      if (target.revoked_at !== null) return 0;
      const r = await q.query('UPDATE device_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [this.nowIso(), target.id]);
      return r.rowCount ?? 0;
    });
  }

  async registerKey(auth: AuthContext, publicKey: string, deviceId: string): Promise<RegisterKeyOutcome> {
    return this.tx(async (q) => {
      // One registration at a time per user: the active-key count cannot be raced past the cap.
      await q.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [auth.userId]);
      const existing = (await q.query('SELECT revoked_at FROM device_keys WHERE user_id = $1 AND public_key = $2', [auth.userId, publicKey]))
        .rows[0] as { revoked_at: string | null } | undefined;
      if (existing) return existing.revoked_at === null ? 'exists' : 'revoked';
      const active = (await q.query('SELECT count(*) AS n FROM device_keys WHERE user_id = $1 AND revoked_at IS NULL', [auth.userId]))
        .rows[0] as { n: number };
      if (active.n >= MAX_ACTIVE_KEYS_PER_USER) return 'limit';
      await q.query('INSERT INTO device_keys (user_id, public_key, device_id, registered_at) VALUES ($1, $2, $3, $4)', [
        auth.userId,
        publicKey,
        deviceId,
        this.nowIso(),
      ]);
      return 'registered';
    });
  }

  async findDeviceKey(userId: number, publicKey: string): Promise<DeviceKey | undefined> {
    const [row] = await this.rows<DeviceKey>('SELECT id, device_id, revoked_at FROM device_keys WHERE user_id = $1 AND public_key = $2', [
      userId,
      publicKey,
    ]);
    return row;
  }

  // ---- tokens --------------------------------------------------------------------------------

  async authenticateRefreshToken(token: string): Promise<AuthContext | null> {
    if (!looksLikeToken('refresh', token)) return null;
    const hash = hashToken(token);
    const [row] = await this.rows<{
      id: number;
      user_id: number;
      token_hash: string;
      token_ref: string;
      expires_at: string;
      revoked_at: string | null;
      email: string;
      user_revoked_at: string | null;
    }>(
      `SELECT rt.id, rt.user_id, rt.token_hash, rt.token_ref, rt.expires_at, rt.revoked_at,
              u.email, u.revoked_at AS user_revoked_at
       FROM user_tokens rt JOIN users u ON u.id = rt.user_id
       WHERE rt.token_hash = $1`,
      [hash],
    );
    if (row === undefined || !digestsEqual(row.token_hash, hash)) return null;
    if (row.revoked_at !== null || row.user_revoked_at !== null || row.expires_at <= this.nowIso()) return null;
    return { userId: row.user_id, email: row.email, refreshTokenId: row.id, tokenRef: row.token_ref };
  }

  async issueAccessToken(auth: AuthContext): Promise<{ accessToken: string; expiresAt: Date }> {
    const token = generateToken('access');
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.accessTtlSecs * 1000);
    const rolled = new Date(now.getTime() + this.rollingDays * DAY_MS);
    await this.tx(async (q) => {
      await q.query(
        'INSERT INTO access_tokens (token_hash, refresh_token_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
        [hashToken(token), auth.refreshTokenId, auth.userId, now.toISOString(), expiresAt.toISOString()],
      );
      await q.query('UPDATE user_tokens SET expires_at = GREATEST(expires_at, $1), last_used_at = $2 WHERE id = $3', [
        rolled.toISOString(),
        now.toISOString(),
        auth.refreshTokenId,
      ]);
      await q.query(
        `DELETE FROM access_tokens WHERE refresh_token_id = $1 AND id NOT IN (
           SELECT id FROM access_tokens WHERE refresh_token_id = $1 ORDER BY id DESC LIMIT $2)`,
        [auth.refreshTokenId, MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN],
      );
    });
    return { accessToken: token, expiresAt };
  }

  async authenticateAccessToken(token: string, publicKey?: string): Promise<AuthContext | null> {
    if (!looksLikeToken('access', token)) return null;
    const hash = hashToken(token);
    const [row] = await this.rows<{
      token_hash: string;
      expires_at: string;
      refresh_token_id: number;
      user_id: number;
      email: string;
      user_revoked_at: string | null;
      refresh_revoked_at: string | null;
      token_ref: string;
      key_id: number | null;
      key_device_id: string | null;
      key_revoked_at: string | null;
    }>(
      // With a public key: the user's registration of it in the same query (one round trip).
      `SELECT at.token_hash, at.expires_at, at.refresh_token_id, at.user_id,
              u.email, u.revoked_at AS user_revoked_at, rt.revoked_at AS refresh_revoked_at, rt.token_ref,
              dk.id AS key_id, dk.device_id AS key_device_id, dk.revoked_at AS key_revoked_at
       FROM access_tokens at
       JOIN users u ON u.id = at.user_id
       JOIN user_tokens rt ON rt.id = at.refresh_token_id
       LEFT JOIN device_keys dk ON $2::text IS NOT NULL AND dk.user_id = at.user_id AND dk.public_key = $2::text
       WHERE at.token_hash = $1`,
      [hash, publicKey ?? null],
    );
    if (row === undefined || !digestsEqual(row.token_hash, hash)) return null;
    if (row.user_revoked_at !== null || row.refresh_revoked_at !== null || row.expires_at <= this.nowIso()) return null;
    const auth: AuthContext = { userId: row.user_id, email: row.email, refreshTokenId: row.refresh_token_id, tokenRef: row.token_ref };
    if (publicKey !== undefined) auth.deviceKey = { publicKey, key: keyOfRow(row) };
    return auth;
  }

  async purgeExpiredAccessTokens(): Promise<number> {
    await this.pool.query('DELETE FROM limit_windows WHERE expires_ms <= $1', [this.now().getTime()]);
    return (await this.pool.query('DELETE FROM access_tokens WHERE expires_at <= $1', [this.nowIso()])).rowCount ?? 0;
  }

  /** SKIP LOCKED: instances purging at once take different rows and never wait on each other. */
  async purgeUsageEvents(receivedBefore: string, maxRows: number): Promise<number> {
    const sql = `DELETE FROM usage_events WHERE id IN (
      SELECT id FROM usage_events WHERE received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    return (await this.pool.query(sql, [receivedBefore, maxRows])).rowCount ?? 0;
  }

  async countActiveAccessTokens(): Promise<number> {
    return (await this.rows<{ n: number }>('SELECT count(*) AS n FROM access_tokens WHERE expires_at > $1', [this.nowIso()]))[0]!.n;
  }

  // ---- usage ---------------------------------------------------------------------------------

  /**
   * One statement per report after the user's lock (store/rollup.ts): the raw rows, then from the
   * rows it actually inserted (RETURNING) the "seen before" sets, the rollups and the key's
   * last_seen_at. Arrays carry the models (sorted), so the round trips do not grow with them.
   */
  async insertReport(auth: AuthContext, report: ReportBody, opts: InsertOptions): Promise<{ inserted: number }> {
    const now = this.now();
    // The Rust version's form (see sqlite.ts); key last_seen_at stays ISO.
    const receivedAt = sqliteTimestamp(now);
    const { day, hour } = rollupKeys(report);
    const deltas = rollupDeltas(report);
    const column = <K extends keyof RollupDelta>(k: K) => deltas.map((d) => d[k]);
    return this.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1, $2)', [USER_LOCK_CLASS, auth.userId % 2_147_483_647]);
      // Named: each pooled connection parses and plans the statement once.
      const r = await q.query({ name: 'ccflux_insert_report', text: INSERT_REPORT_SQL, values: [
        auth.email,
        auth.tokenRef,
        opts.deviceId,
        report.session_id,
        report.turn_index,
        report.timestamp_utc,
        report.session_start_utc || null,
        report.plugin_version,
        report.schema_version,
        receivedAt,
        auth.userId,
        report.user_email,
        opts.signed ? 1 : 0,
        day,
        hour,
        opts.deviceKeyId ?? null,
        now.toISOString(),
        column('model'),
        column('input'),
        column('output'),
        column('cache_read'),
        column('cache_write'),
        column('cw5mRaw'),
        column('cw1hRaw'),
        column('webSearchRaw'),
      ] });
      return { inserted: Number(r.rows[0].inserted) };
    });
  }

  async dashboard(now: Date, view: DashboardView = {}): Promise<DashboardData> {
    return this.adminQueries().load(now, view.filter, view);
  }

  async userSessions(filter: FilterParams, prices?: PriceBook): Promise<SessionRow[]> {
    return this.adminQueries().sessions(filter, prices);
  }

  async usageMetrics(prices: PriceBook | undefined, perUser: boolean): Promise<MetricTotals> {
    return this.adminQueries().metricTotals(prices, perUser);
  }

  async usageGroups(filter: FilterParams, opts?: { prices?: PriceBook }): Promise<GroupRow[]> {
    return this.adminQueries().groups(filter, opts);
  }

  async rawEvents(filter: FilterParams, after: number, limit: number): Promise<RawEventRow[]> {
    return this.adminQueries().rawEvents(filter, after, limit);
  }

  /** The dashboard's reads, made on first use; view reads hold at most half the pool (viewSlots). */
  private adminQueries(): AdminQueries {
    this.queries ??= createQueries(pgReader(this.pool, viewSlots(this.pool.options.max)));
    return this.queries;
  }

  /** Named-parameter SQL (`@name`, camelCase aliases) as the SQLite backend writes it. */
  private async named<T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return (await pgReader(this.pool).all(sql, params)) as T[];
  }

  // ---- audit log -----------------------------------------------------------------------------

  async recordAudit(entry: AuditEntry): Promise<void> {
    await this.pool.query('INSERT INTO audit_log (at, actor, source, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
      this.nowIso(),
      entry.actor,
      entry.source,
      entry.action,
      entry.target,
      entry.detail === undefined ? '' : JSON.stringify(entry.detail),
    ]);
  }

  async listAudit(q: { fromIso?: string; toIso?: string; limit: number; offset: number }): Promise<AuditRow[]> {
    return this.named<AuditRow>(
      `SELECT id, at, actor, source, action, target, detail FROM audit_log
       WHERE (@from IS NULL OR at >= @from) AND (@to IS NULL OR at < @to)
       ORDER BY id DESC LIMIT @limit OFFSET @offset`,
      { from: q.fromIso ?? null, to: q.toIso ?? null, limit: q.limit, offset: q.offset },
    );
  }

  // ---- budgets -------------------------------------------------------------------------------

  async listBudgets(): Promise<Budget[]> {
    return this.named<Budget>(`${BUDGET_SELECT} ORDER BY CASE scope WHEN 'org' THEN 0 WHEN 'division' THEN 1 ELSE 2 END, subject`);
  }

  async setBudget(b: { scope: BudgetScope; subject: string; unit: BudgetUnit; monthlyLimit: number }) {
    return this.tx(async (q) => {
      const byScope = async () =>
        ((await q.query(`${translateSimple(BUDGET_SELECT)} WHERE scope = $1 AND subject = $2`, [b.scope, b.subject])).rows[0] as Budget | undefined) ??
        null;
      const previous = await byScope();
      const now = this.nowIso();
      await q.query(
        `INSERT INTO budgets (scope, subject, unit, monthly_limit, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, subject) DO UPDATE SET unit = excluded.unit, monthly_limit = excluded.monthly_limit, updated_at = excluded.updated_at`,
        [b.scope, b.subject, b.unit, b.monthlyLimit, now, now],
      );
      const budget = (await byScope())!;
      if (previous !== null && (previous.monthlyLimit !== b.monthlyLimit || previous.unit !== b.unit)) {
        await q.query('DELETE FROM budget_alerts WHERE budget_id = $1', [budget.id]);
      }
      return { budget, previous };
    });
  }

  async deleteBudget(id: number): Promise<Budget | null> {
    return this.tx(async (q) => {
      const budget = ((await q.query(`${translateSimple(BUDGET_SELECT)} WHERE id = $1`, [id])).rows[0] as Budget | undefined) ?? null;
      if (budget !== null) {
        await q.query('DELETE FROM budget_alerts WHERE budget_id = $1', [id]);
        await q.query('DELETE FROM budgets WHERE id = $1', [id]);
      }
      return budget;
    });
  }

  async recordBudgetAlert(a: { budgetId: number; month: string; threshold: number; spent: number; monthlyLimit: number; crossedAt: string }): Promise<boolean> {
    const r = await this.pool.query(
      `INSERT INTO budget_alerts (budget_id, month, threshold, crossed_at, spent, monthly_limit) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (budget_id, month, threshold) DO NOTHING`,
      [a.budgetId, a.month, a.threshold, a.crossedAt, a.spent, a.monthlyLimit],
    );
    return r.rowCount === 1;
  }

  async listBudgetAlerts(limit: number): Promise<BudgetAlertRow[]> {
    return this.named<BudgetAlertRow>(`${BUDGET_ALERT_SELECT} ORDER BY a.id DESC LIMIT @limit`, { limit });
  }

  async dueBudgetAlerts(nowIso: string, maxAttempts: number, limit: number): Promise<BudgetAlertRow[]> {
    return this.named<BudgetAlertRow>(
      `${BUDGET_ALERT_SELECT}
       WHERE a.delivered_at IS NULL AND a.attempts < @max AND (a.next_attempt_at IS NULL OR a.next_attempt_at <= @now)
       ORDER BY a.id LIMIT @limit`,
      { max: maxAttempts, now: nowIso, limit },
    );
  }

  async markBudgetAlert(id: number, o: { deliveredAt: string | null; attempts: number; nextAttemptAt: string | null; lastError: string | null }): Promise<void> {
    await this.pool.query('UPDATE budget_alerts SET delivered_at = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $5', [
      o.deliveredAt,
      o.attempts,
      o.nextAttemptAt,
      o.lastError,
      id,
    ]);
  }

  // ---- shared limits -------------------------------------------------------------------------

  async limitHit(key: string, limit: number, windowSecs: number): Promise<LimitDecision> {
    return this.limit(key, limit, windowSecs, true);
  }

  async limitCheck(key: string, limit: number, windowSecs: number): Promise<LimitDecision> {
    return this.limit(key, limit, windowSecs, false);
  }

  private async limit(key: string, limit: number, windowSecs: number, count: boolean): Promise<LimitDecision> {
    const nowMs = this.now().getTime();
    const windowMs = windowSecs * 1000;
    const start = nowMs - (nowMs % windowMs);
    if (count) return this.limitCount(key, limit, nowMs, start, windowMs);
    const counts = await this.rows<{ window_start: number; count: number }>(
      'SELECT window_start, count FROM limit_windows WHERE key = $1 AND window_start IN ($2, $3)',
      [key, start - windowMs, start],
    );
    const previous = counts.find((r) => r.window_start === start - windowMs)?.count ?? 0;
    const current = counts.find((r) => r.window_start === start)?.count ?? 0;
    const cap = limitCap(limit, previous, (nowMs - start) / windowMs);
    if (current < cap) return { allowed: true, retryAfterSecs: 0 };
    return { allowed: false, retryAfterSecs: limitRetryAfter(limit, current, previous, nowMs, start, windowMs) };
  }

  /**
   * A counted hit in one statement, one round trip: the previous window's count and the capped
   * upsert (one row lock: concurrent instances count exactly; a refused request, where the WHERE
   * fails, leaves the count as it was). The cap is `limitCap`'s arithmetic, in float8 as in
   * JavaScript: ceil(limit − previous × (1 − elapsed)), the factor computed here. Only a refusal
   * reads the current count again, for Retry-After.
   */
  private async limitCount(key: string, limit: number, nowMs: number, start: number, windowMs: number): Promise<LimitDecision> {
    const remaining = 1 - (nowMs - start) / windowMs;
    const [row] = await this.rows<{ previous: number; counted: number }>(
      `WITH prev AS (
         SELECT COALESCE((SELECT count FROM limit_windows WHERE key = $1 AND window_start = $5), 0) AS n
       ), hit AS (
         INSERT INTO limit_windows (key, window_start, expires_ms, count)
         SELECT $1, $2, $3, 1 FROM prev WHERE ceil($4::float8 - prev.n * $6::float8) >= 1
         ON CONFLICT (key, window_start) DO UPDATE SET count = limit_windows.count + 1
           WHERE limit_windows.count < (SELECT ceil($4::float8 - prev.n * $6::float8) FROM prev)
         RETURNING 1
       )
       SELECT (SELECT n FROM prev) AS previous, (SELECT count(*) FROM hit) AS counted`,
      [key, start, start + 2 * windowMs, limit, start - windowMs, remaining],
    );
    const previous = Number(row?.previous ?? 0);
    if (Number(row?.counted ?? 0) > 0) return { allowed: true, retryAfterSecs: 0 };
    const cap = limitCap(limit, previous, (nowMs - start) / windowMs);
    const [now] = await this.rows<{ count: number }>('SELECT count FROM limit_windows WHERE key = $1 AND window_start = $2', [key, start]);
    const current = Math.max(Number(now?.count ?? 0), cap);
    return { allowed: false, retryAfterSecs: limitRetryAfter(limit, current, previous, nowMs, start, windowMs) };
  }

  // ---- admin sessions ------------------------------------------------------------------------

  async sessionPut(
    s: Omit<SessionRecord, 'flash'>,
    bounds: { maxSessions: number; idleBeforeMs: number; createdBeforeMs: number },
  ): Promise<void> {
    await this.tx(async (q) => {
      await q.query('DELETE FROM admin_sessions WHERE last_seen_ms <= $1 OR created_ms <= $2', [bounds.idleBeforeMs, bounds.createdBeforeMs]);
      await q.query(
        'DELETE FROM admin_sessions WHERE id_hash NOT IN (SELECT id_hash FROM admin_sessions ORDER BY touch_seq DESC LIMIT $1)',
        [Math.max(0, bounds.maxSessions - 1)],
      );
      await q.query(`INSERT INTO admin_sessions (id_hash, csrf_token, created_ms, last_seen_ms, touch_seq) VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(touch_seq), 0) + 1 FROM admin_sessions))`, [
        s.idHash,
        s.csrfToken,
        s.createdMs,
        s.lastSeenMs,
      ]);
    });
  }

  async sessionGet(idHash: string): Promise<SessionRecord | undefined> {
    return (await this.rows<SessionRecord>('SELECT id_hash AS "idHash", csrf_token AS "csrfToken", created_ms AS "createdMs", last_seen_ms AS "lastSeenMs", flash FROM admin_sessions WHERE id_hash = $1', [idHash]))[0];
  }

  async sessionTouch(idHash: string, lastSeenMs: number): Promise<void> {
    await this.pool.query(`UPDATE admin_sessions SET last_seen_ms = GREATEST(last_seen_ms, $1), touch_seq = (SELECT COALESCE(MAX(touch_seq), 0) + 1 FROM admin_sessions) WHERE id_hash = $2`, [lastSeenMs, idHash]);
  }

  async sessionSetFlash(idHash: string, flash: string | null): Promise<void> {
    await this.pool.query('UPDATE admin_sessions SET flash = $1 WHERE id_hash = $2', [flash, idHash]);
  }

  async sessionDelete(idHash: string): Promise<void> {
    await this.pool.query('DELETE FROM admin_sessions WHERE id_hash = $1', [idHash]);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT count(*) AS n FROM (SELECT 1 FROM users LIMIT 1) AS one');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export { createPool };

/** First key of insertReport's per-user transaction lock (the second is the user id). */
const USER_LOCK_CLASS = 0x63636678;

const ROLLUP_SET = (t: string) => `
    input = ${t}.input + excluded.input, output = ${t}.output + excluded.output,
    cache_read = ${t}.cache_read + excluded.cache_read, cache_write = ${t}.cache_write + excluded.cache_write,
    cw5m = ${t}.cw5m + excluded.cw5m, cw1h = ${t}.cw1h + excluded.cw1h, unsplit = ${t}.unsplit + excluded.unsplit,
    web_search = ${t}.web_search + excluded.web_search, model_turns = ${t}.model_turns + 1,
    turns = ${t}.turns + excluded.turns, sessions = ${t}.sessions + excluded.sessions,
    model_sessions = ${t}.model_sessions + excluded.model_sessions, last_at = GREATEST(${t}.last_at, excluded.last_at)`;

/**
 * insertReport's statement. Every CTE reads the snapshot from before the statement, so `seen` is
 * "a row of this turn existed before this report". Rows go in model order; `first` is the
 * report's first inserted row, which carries the turn and the session when they are new.
 */
const INSERT_REPORT_SQL = `
  WITH seen AS (
    SELECT EXISTS (SELECT 1 FROM usage_events WHERE user_id = $11 AND session_id = $4 AND turn_index = $5) AS turn
  ), src AS (
    SELECT * FROM unnest($18::text[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[], $25::bigint[])
      AS s(model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cw5m, cw1h, web_search)
  ), ins AS (
    INSERT INTO usage_events (
      user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
      received_at, user_id, reported_email, signed, cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests)
    SELECT $1, $2, $3, $4, $5, $6, $7, s.model, s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens,
      $8, $9, $10, $11, $12, $13, s.cw5m, s.cw1h, s.web_search
    FROM src s ORDER BY s.model
    ON CONFLICT (user_id, session_id, turn_index, model) DO NOTHING
    RETURNING id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
      cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests
  ), sess AS (
    INSERT INTO usage_sessions (user_id, session_id, first_day) SELECT $11, $4, $14 WHERE EXISTS (SELECT 1 FROM ins)
    ON CONFLICT DO NOTHING RETURNING 1 AS fresh
  ), sm AS (
    INSERT INTO usage_session_models (user_id, session_id, model) SELECT $11, $4, i.model FROM ins i ORDER BY i.model
    ON CONFLICT DO NOTHING RETURNING model
  ), vals AS (
    SELECT i.model, i.input_tokens::float8 AS input, i.output_tokens::float8 AS output, i.cache_read_tokens::float8 AS cache_read,
      i.cache_write_tokens::float8 AS cache_write, COALESCE(i.cache_write_5m_tokens, 0)::float8 AS cw5m,
      COALESCE(i.cache_write_1h_tokens, 0)::float8 AS cw1h,
      (CASE WHEN i.cache_write_5m_tokens IS NULL OR i.cache_write_1h_tokens IS NULL THEN i.cache_write_tokens ELSE 0 END)::float8 AS unsplit,
      COALESCE(i.web_search_requests, 0)::float8 AS web_search,
      CASE WHEN i.id = (SELECT min(id) FROM ins) AND NOT (SELECT turn FROM seen) THEN 1 ELSE 0 END AS turns,
      CASE WHEN i.id = (SELECT min(id) FROM ins) AND EXISTS (SELECT 1 FROM sess) THEN 1 ELSE 0 END AS sessions,
      CASE WHEN sm.model IS NULL THEN 0 ELSE 1 END AS model_sessions
    FROM ins i LEFT JOIN sm ON sm.model = i.model
  ), daily AS (
    INSERT INTO usage_daily (user_id, day, model, ${ROLLUP_COLUMNS})
    SELECT $11, $14, v.model, v.input, v.output, v.cache_read, v.cache_write, v.cw5m, v.cw1h, v.unsplit, v.web_search,
      1, v.turns, v.sessions, v.model_sessions, $6 FROM vals v ORDER BY v.model
    ON CONFLICT (day, user_id, model) DO UPDATE SET ${ROLLUP_SET('usage_daily')}
  ), hourly AS (
    INSERT INTO usage_hourly (user_id, hour, model, ${ROLLUP_COLUMNS})
    SELECT $11, $15, v.model, v.input, v.output, v.cache_read, v.cache_write, v.cw5m, v.cw1h, v.unsplit, v.web_search,
      1, v.turns, v.sessions, v.model_sessions, $6 FROM vals v ORDER BY v.model
    ON CONFLICT (hour, user_id, model) DO UPDATE SET ${ROLLUP_SET('usage_hourly')}
  ), um AS (
    INSERT INTO usage_user_models (user_id, model) SELECT $11, v.model FROM vals v ORDER BY v.model ON CONFLICT DO NOTHING
  ), cum AS (
    INSERT INTO usage_cum (user_id, model, hour, ${ROLLUP_COLUMNS}, last_received)
    SELECT $11, v.model, $15, ${CUM_COLUMNS.map((c) => `${c === 'model_turns' ? '1' : `v.${c}`} + COALESCE(p.${c}, 0)`).join(', ')}, $6, $10
    FROM vals v
    LEFT JOIN usage_cum cur ON cur.user_id = $11 AND cur.model = v.model AND cur.hour = $15
    LEFT JOIN LATERAL (
      SELECT * FROM usage_cum c WHERE c.user_id = $11 AND c.model = v.model AND c.hour < $15 ORDER BY c.hour DESC LIMIT 1
    ) p ON cur.hour IS NULL
    ORDER BY v.model
    ON CONFLICT (user_id, model, hour) DO UPDATE SET
      ${CUM_COLUMNS.map((c) => `${c} = usage_cum.${c} + excluded.${c}`).join(', ')}, last_at = GREATEST(usage_cum.last_at, excluded.last_at),
      last_received = GREATEST(usage_cum.last_received, excluded.last_received)
  ), later AS (
    UPDATE usage_cum c SET ${CUM_COLUMNS.map((col) => `${col} = c.${col} + ${col === 'model_turns' ? '1' : `v.${col}`}`).join(', ')},
      last_received = GREATEST(c.last_received, $10)
    FROM vals v WHERE c.user_id = $11 AND c.model = v.model AND c.hour > $15
  ), org AS (
    INSERT INTO usage_org_daily (day, model, shard, ${ORG_COLUMNS})
    SELECT $14, v.model, ($11::bigint % ${ORG_SHARDS})::int, v.input, v.output, v.cache_read, v.cache_write, v.cw5m, v.cw1h, v.unsplit, v.web_search
    FROM vals v ORDER BY v.model
    ON CONFLICT (day, model, shard) DO UPDATE SET ${ORG_COLUMNS.split(', ').map((c) => `${c} = usage_org_daily.${c} + excluded.${c}`).join(', ')}
  ), touch AS (
    UPDATE device_keys SET last_seen_at = $17 WHERE id = $16::bigint
  )
  SELECT count(*) AS inserted FROM ins`;
