/**
 * SQLite backend (better-sqlite3, the embedded default). Prepared statements only (no value is
 * ever interpolated into SQL). Each method runs synchronously, inside one `BEGIN IMMEDIATE`
 * transaction where it writes, and returns a settled promise: nothing else runs on the
 * connection in between, which is what makes the async interface safe over one connection. The
 * ingest writes (insertReport, limitHit) are the exception: they run in the next group commit
 * (group-commit.ts), one transaction for all that arrived in one turn of the event loop, each in
 * its own savepoint, and settle after its COMMIT.
 *
 * Tokens are stored as SHA-256 hex digests; the plaintext is returned once, at issue, and never
 * again. Timestamps are `Date.toISOString()` strings so that SQL compares them as text correctly,
 * except `usage_events.received_at`, which keeps the Rust version's `YYYY-MM-DD HH:MM:SS` (UTC) so
 * that SQL written for it (`received_at >= datetime('now', '-1 hour')`) still selects the same rows.
 */
import type { Statement } from 'better-sqlite3';
import type { ReportBody } from '../../../src/protocol/wire';
import { type AdminQueries, createQueries, type FilterParams } from '../admin/queries';
import type { PriceBook } from '../prices/cost';
import type { Db } from '../db/open';
import { ReceiverError } from '../errors';
import { ORG_COLUMNS, ORG_SHARDS, ROLLUP_COLUMNS } from '../db/schema';
import { GroupCommit } from './group-commit';
import { KnownRows, sessionKey, sessionModelKey } from './known-rows';
import { CUM_COLUMNS, type RollupDelta, rollupDeltas, rollupKeys } from './rollup';
import { digestsEqual, generateToken, generateTokenRef, hashToken, looksLikeRustToken, looksLikeToken, type TokenKind } from '../tokens';
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
import { type ClosableSqlReader, openSqlReader, type SqliteReaderOptions } from './sqlite-reader';
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

interface RefreshLookupRow {
  id: number;
  user_id: number;
  token_hash: string;
  token_ref: string;
  expires_at: string;
  revoked_at: string | null;
  email: string;
  user_revoked_at: string | null;
}

interface AccessLookupRow {
  token_hash: string;
  expires_at: string;
  refresh_token_id: number;
  user_id: number;
  email: string;
  user_revoked_at: string | null;
  refresh_revoked_at: string | null;
  token_ref: string;
  /** With a public key asked about: the user's registration of it (all null: none). */
  key_id?: number | null;
  key_device_id?: string | null;
  key_revoked_at?: string | null;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly db: Db;
  private readonly now: () => Date;
  private readonly rollingDays: number;
  private readonly accessTtlSecs: number;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  /** Reports and rate-limit counts share one transaction per turn of the event loop. */
  private readonly writes: GroupCommit;
  /** Session-set rows that committed transactions wrote or found: their no-op inserts are skipped. */
  private readonly known = new KnownRows();
  private queries: AdminQueries | undefined;
  private reader: ClosableSqlReader | undefined;
  private readonly readerOptions: SqliteReaderOptions;
  /** The database was taken over from the Rust receiver (db/rust-import.ts): its tokens still work. */
  private readonly rustTokens: boolean;

  constructor(db: Db, now: () => Date, options: StoreOptions & { reader?: SqliteReaderOptions } = {}) {
    this.db = db;
    this.readerOptions = options.reader ?? {};
    this.now = now;
    this.rollingDays = options.refreshTokenRollingDays ?? 90;
    this.accessTtlSecs = options.accessTokenExpirySecs ?? 28_800;
    this.stmts = prepareStatements(db);
    this.writes = new GroupCommit(db);
    this.rustTokens = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rust_import'").get() !== undefined;
  }

  /** Shape check before any lookup; Rust-issued shapes only in a database that imported them. */
  private tokenShapeOk(kind: TokenKind, token: string): boolean {
    return looksLikeToken(kind, token) || (this.rustTokens && looksLikeRustToken(kind, token));
  }

  private nowIso(): string {
    return this.now().toISOString();
  }

  // ---- users ---------------------------------------------------------------------------------

  /**
   * Provisions a user and returns their refresh token (the only time it is ever available).
   * A revoked user with the same email is re-enabled with a fresh token.
   */
  async createUser(email: string, opts: { division?: string; days?: number } = {}): Promise<{ refreshToken: string }> {
    const address = normalizeEmail(email);
    const division = checkDivision(opts.division);
    const days = checkDays(opts.days, this.rollingDays);
    return this.db
      .transaction(() => {
        const now = this.nowIso();
        const existing = this.stmts.userByEmail.get(address) as
          | { id: number; division: string; revoked_at: string | null }
          | undefined;
        let userId: number;
        if (existing === undefined) {
          userId = Number(this.stmts.insertUser.run(address, division ?? '', now).lastInsertRowid);
        } else if (existing.revoked_at === null) {
          throw new ReceiverError('exists', `user ${address} already exists (use reissue for a new token)`);
        } else {
          userId = existing.id;
          this.stmts.reenableUser.run(division ?? existing.division, userId);
        }
        return { refreshToken: this.issueRefreshToken(userId, days) };
      })
      .immediate();
  }

  async listUsers(): Promise<UserRow[]> {
    return this.stmts.listUsers.all() as UserRow[];
  }

  /** Revokes the user, every refresh token and every access token of theirs. Idempotent. */
  async setDivision(email: string, division: string): Promise<boolean> {
    const address = normalizeEmail(email);
    const value = checkDivision(division) ?? '';
    return this.db
      .transaction(() => {
        const user = this.requireUser(address);
        if (user.division === value) return false;
        this.stmts.setDivision.run(value, user.id);
        return true;
      })
      .immediate();
  }

  async revokeUser(email: string): Promise<void> {
    const address = normalizeEmail(email);
    this.db
      .transaction(() => {
        const user = this.requireUser(address);
        const now = this.nowIso();
        this.stmts.revokeUser.run(now, user.id);
        this.stmts.revokeRefreshTokensOfUser.run(now, user.id);
        this.stmts.deleteAccessTokensOfUser.run(user.id);
      })
      .immediate();
  }

  /** Revokes the user's refresh tokens (and their access tokens) and issues a new one. */
  async reissueToken(email: string, opts: { days?: number } = {}): Promise<{ refreshToken: string }> {
    const address = normalizeEmail(email);
    const days = checkDays(opts.days, this.rollingDays);
    return this.db
      .transaction(() => {
        const user = this.requireUser(address);
        if (user.revoked_at !== null) {
          throw new ReceiverError('revoked', `user ${address} is revoked (use users add to enable it again)`);
        }
        this.stmts.revokeRefreshTokensOfUser.run(this.nowIso(), user.id);
        this.stmts.deleteAccessTokensOfUser.run(user.id);
        return { refreshToken: this.issueRefreshToken(user.id, days) };
      })
      .immediate();
  }

  private requireUser(address: string): { id: number; division: string; revoked_at: string | null } {
    const user = this.stmts.userByEmail.get(address) as
      | { id: number; division: string; revoked_at: string | null }
      | undefined;
    if (user === undefined) throw new ReceiverError('not-found', `no user ${address}`);
    return user;
  }

  private issueRefreshToken(userId: number, days: number): string {
    const token = generateToken('refresh');
    const now = this.now();
    const expires = new Date(now.getTime() + days * DAY_MS);
    this.stmts.insertRefreshToken.run(userId, hashToken(token), generateTokenRef(), now.toISOString(), expires.toISOString());
    return token;
  }

  // ---- device keys ---------------------------------------------------------------------------

  async listKeys(): Promise<KeyRow[]> {
    return this.stmts.listKeys.all() as KeyRow[];
  }

  /**
   * Revokes one (user, key) registration: the user's, when `email` is given; otherwise the key's
   * only registration (`ambiguous` when several users registered the same public key, so that
   * revoking one user's device can never silence another's). Returns 1, or 0 when it was already
   * revoked; `not-found` when there is no such registration.
   */
  async revokeKey(publicKey: string, email?: string): Promise<number> {
    const address = email === undefined ? undefined : normalizeEmail(email);
    return this.db
      .transaction(() => {
        const rows = this.stmts.registrationsOfKey.all(publicKey) as { id: number; email: string; revoked_at: string | null }[];
        const target = pickRegistration(rows, address);
        if (target.revoked_at !== null) return 0;
        return this.stmts.revokeKeyById.run(this.nowIso(), target.id).changes;
      })
      .immediate();
  }

  async registerKey(auth: AuthContext, publicKey: string, deviceId: string): Promise<RegisterKeyOutcome> {
    return this.db
      .transaction((): RegisterKeyOutcome => {
        const existing = this.stmts.keyOfUser.get(auth.userId, publicKey) as DeviceKey | undefined;
        if (existing) return existing.revoked_at === null ? 'exists' : 'revoked';
        const active = this.stmts.countActiveKeysOfUser.get(auth.userId) as { n: number };
        if (active.n >= MAX_ACTIVE_KEYS_PER_USER) return 'limit';
        this.stmts.insertKey.run(auth.userId, publicKey, deviceId, this.nowIso());
        return 'registered';
      })
      .immediate();
  }

  async findDeviceKey(userId: number, publicKey: string): Promise<DeviceKey | undefined> {
    return this.stmts.keyOfUser.get(userId, publicKey) as DeviceKey | undefined;
  }

  // ---- tokens --------------------------------------------------------------------------------

  /** The owner of a refresh token that is known, unexpired and not revoked; null otherwise. */
  async authenticateRefreshToken(token: string): Promise<AuthContext | null> {
    if (!this.tokenShapeOk('refresh', token)) return null;
    const hash = hashToken(token);
    const row = this.stmts.refreshByHash.get(hash) as RefreshLookupRow | undefined;
    if (row === undefined || !digestsEqual(row.token_hash, hash)) return null;
    if (row.revoked_at !== null || row.user_revoked_at !== null || row.expires_at <= this.nowIso()) return null;
    return { userId: row.user_id, email: row.email, refreshTokenId: row.id, tokenRef: row.token_ref };
  }

  /**
   * Issues an access token for an authenticated refresh token and rolls the refresh token's
   * expiry forward (never backward: a token provisioned for longer keeps its date).
   */
  async issueAccessToken(auth: AuthContext): Promise<{ accessToken: string; expiresAt: Date }> {
    const token = generateToken('access');
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.accessTtlSecs * 1000);
    const rolled = new Date(now.getTime() + this.rollingDays * DAY_MS);
    this.db
      .transaction(() => {
        this.stmts.insertAccessToken.run(
          hashToken(token),
          auth.refreshTokenId,
          auth.userId,
          now.toISOString(),
          expiresAt.toISOString(),
        );
        this.stmts.rollRefreshToken.run(rolled.toISOString(), now.toISOString(), auth.refreshTokenId);
        this.stmts.pruneAccessTokens.run(auth.refreshTokenId, auth.refreshTokenId, MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN);
      })
      .immediate();
    return { accessToken: token, expiresAt };
  }

  /** The owner of an access token that is known, unexpired, and whose user and refresh token
   * are not revoked; null otherwise. */
  async authenticateAccessToken(token: string, publicKey?: string): Promise<AuthContext | null> {
    if (!this.tokenShapeOk('access', token)) return null;
    const hash = hashToken(token);
    const row = (publicKey === undefined ? this.stmts.accessByHash.get(hash) : this.stmts.accessByHashWithKey.get(publicKey, hash)) as
      | AccessLookupRow
      | undefined;
    if (row === undefined || !digestsEqual(row.token_hash, hash)) return null;
    if (row.user_revoked_at !== null || row.refresh_revoked_at !== null || row.expires_at <= this.nowIso()) return null;
    const auth: AuthContext = { userId: row.user_id, email: row.email, refreshTokenId: row.refresh_token_id, tokenRef: row.token_ref };
    if (publicKey !== undefined) auth.deviceKey = { publicKey, key: keyOfRow(row) };
    return auth;
  }

  /** Also drops rate-limit windows nobody can consult any more. */
  async purgeExpiredAccessTokens(): Promise<number> {
    this.stmts.purgeLimits.run(this.now().getTime());
    return this.stmts.purgeAccessTokens.run(this.nowIso()).changes;
  }

  async purgeUsageEvents(receivedBefore: string, maxRows: number): Promise<number> {
    return this.stmts.purgeUsage.run(receivedBefore, maxRows).changes;
  }

  async countActiveAccessTokens(): Promise<number> {
    return (this.stmts.countActiveAccessTokens.get(this.nowIso()) as { n: number }).n;
  }

  // ---- usage ---------------------------------------------------------------------------------

  /**
   * Stores one row per model, idempotent on (user, session_id, turn_index, model): a retried or replayed
   * report inserts nothing. Returns how many rows were new. The rollups (store/rollup.ts) get what
   * the new rows add, and `deviceKeyId`, the verified signing key, its last_seen_at, all in one
   * savepoint of the group commit (store/group-commit.ts): settled only after its COMMIT.
   */
  async insertReport(auth: AuthContext, report: ReportBody, opts: InsertOptions): Promise<{ inserted: number }> {
    const now = this.now();
    // The promise settles after COMMIT: only then are the session-set rows it touched known to exist.
    const { inserted, touched } = await this.writes.run(() => this.writeReport(auth, report, opts, now));
    this.known.addCommitted(touched);
    return { inserted };
  }

  /** insertReport's statements; the caller holds the transaction. `touched`: the session-set rows
   * that exist once it commits. */
  private writeReport(auth: AuthContext, report: ReportBody, opts: InsertOptions, now: Date): { inserted: number; touched: string[] } {
    const s = this.stmts;
    const known = this.known;
    const touched: string[] = [];
    const session = sessionKey(auth.userId, report.session_id);
    const receivedAt = sqliteTimestamp(now);
    const { day, hour } = rollupKeys(report);
    let inserted = 0;
    const turnSeen = s.turnSeen.get(auth.userId, report.session_id, report.turn_index) !== undefined;
    let sessionNew = false;
    for (const d of rollupDeltas(report)) {
      // Positional, in the statement's column order: named parameters cost a lookup each.
      const changes = s.insertUsage.run(
        auth.email,
        auth.tokenRef,
        opts.deviceId,
        report.session_id,
        report.turn_index,
        report.timestamp_utc,
        // A Rust device leaves it out when it has none; '' means the same.
        report.session_start_utc || null,
        d.model,
        d.input,
        d.output,
        d.cache_read,
        d.cache_write,
        report.plugin_version,
        report.schema_version,
        receivedAt,
        auth.userId,
        report.user_email,
        opts.signed ? 1 : 0,
        d.cw5mRaw,
        d.cw1hRaw,
        d.webSearchRaw,
      ).changes;
      if (changes === 0) continue;
      const first = inserted === 0;
      if (first) {
        // A session row that a committed transaction wrote or found is there: its insert would change nothing.
        sessionNew = !known.has(session) && s.insertSession.run(auth.userId, report.session_id, day).changes === 1;
        touched.push(session);
      }
      const sessionModel = sessionModelKey(auth.userId, report.session_id, d.model);
      touched.push(sessionModel);
      addRollups(s, {
        user_id: auth.userId,
        model: d.model,
        input: d.input,
        output: d.output,
        cache_read: d.cache_read,
        cache_write: d.cache_write,
        cw5m: d.cw5m,
        cw1h: d.cw1h,
        unsplit: d.unsplit,
        web_search: d.web_search,
        turns: first && !turnSeen ? 1 : 0,
        sessions: first && sessionNew ? 1 : 0,
        model_sessions: known.has(sessionModel) ? 0 : s.insertSessionModel.run(auth.userId, report.session_id, d.model).changes,
        last_at: report.timestamp_utc,
        shard: auth.userId % ORG_SHARDS,
      }, day, hour, receivedAt);
      inserted += changes;
    }
    if (opts.deviceKeyId !== undefined) s.touchKey.run(now.toISOString(), opts.deviceKeyId);
    return { inserted, touched };
  }

  async dashboard(now: Date, view: DashboardView = {}) {
    return this.adminQueries().load(now, view.filter, view);
  }

  async usageMetrics(prices: PriceBook | undefined, perUser: boolean) {
    return this.adminQueries().metricTotals(prices, perUser);
  }

  async usageGroups(filter: FilterParams, opts?: { prices?: PriceBook }) {
    return this.adminQueries().groups(filter, opts);
  }

  async rawEvents(filter: FilterParams, after: number, limit: number) {
    return this.adminQueries().rawEvents(filter, after, limit);
  }

  async userSessions(filter: FilterParams, prices?: PriceBook) {
    return this.adminQueries().sessions(filter, prices);
  }

  /** The dashboard's SQL, off the event loop for a file database (sqlite-reader.ts). */
  private adminQueries(): AdminQueries {
    if (this.queries === undefined) {
      this.reader = openSqlReader(this.db, this.readerOptions);
      this.queries = createQueries(this.reader);
    }
    return this.queries;
  }

  // ---- shared limits -------------------------------------------------------------------------

  /** Counts in the group commit: a count is a write (one statement), and it shares the reports' COMMIT. */
  async limitHit(key: string, limit: number, windowSecs: number): Promise<LimitDecision> {
    return this.writes.run(() => this.limit(key, limit, windowSecs, true), true);
  }

  async limitCheck(key: string, limit: number, windowSecs: number): Promise<LimitDecision> {
    return this.limit(key, limit, windowSecs, false);
  }

  /** One fixed-window row per (key, window start); see `limitCap` for the weighting. */
  private limit(key: string, limit: number, windowSecs: number, count: boolean): LimitDecision {
    const nowMs = this.now().getTime();
    const windowMs = windowSecs * 1000;
    const start = nowMs - (nowMs % windowMs);
    const previous = (this.stmts.limitCount.get(key, start - windowMs) as { n: number } | undefined)?.n ?? 0;
    const cap = limitCap(limit, previous, (nowMs - start) / windowMs);
    if (count && cap >= 1) {
      // One row inserted or counted up: allowed. None (the WHERE refused the update): at the cap.
      if (this.stmts.limitHit.run(key, start, start + 2 * windowMs, cap).changes === 1) return { allowed: true, retryAfterSecs: 0 };
    }
    const current = (this.stmts.limitCount.get(key, start) as { n: number } | undefined)?.n ?? 0;
    if (!count && current < cap) return { allowed: true, retryAfterSecs: 0 };
    return { allowed: false, retryAfterSecs: limitRetryAfter(limit, current, previous, nowMs, start, windowMs) };
  }

  // ---- admin sessions ------------------------------------------------------------------------

  async sessionPut(
    s: Omit<SessionRecord, 'flash'>,
    bounds: { maxSessions: number; idleBeforeMs: number; createdBeforeMs: number },
  ): Promise<void> {
    this.db
      .transaction(() => {
        this.stmts.sessionPurge.run(bounds.idleBeforeMs, bounds.createdBeforeMs);
        this.stmts.sessionEvict.run(Math.max(0, bounds.maxSessions - 1));
        this.stmts.sessionInsert.run(s.idHash, s.csrfToken, s.createdMs, s.lastSeenMs);
      })
      .immediate();
  }

  async sessionGet(idHash: string): Promise<SessionRecord | undefined> {
    return this.stmts.sessionGet.get(idHash) as SessionRecord | undefined;
  }

  async sessionTouch(idHash: string, lastSeenMs: number): Promise<void> {
    this.stmts.sessionTouch.run(lastSeenMs, idHash);
  }

  async sessionSetFlash(idHash: string, flash: string | null): Promise<void> {
    this.stmts.sessionFlash.run(flash, idHash);
  }

  async sessionDelete(idHash: string): Promise<void> {
    this.stmts.sessionDelete.run(idHash);
  }

  // ---- audit log -----------------------------------------------------------------------------

  async recordAudit(entry: AuditEntry): Promise<void> {
    this.stmts.insertAudit.run(this.nowIso(), entry.actor, entry.source, entry.action, entry.target, entry.detail === undefined ? '' : JSON.stringify(entry.detail));
  }

  async listAudit(q: { fromIso?: string; toIso?: string; limit: number; offset: number }): Promise<AuditRow[]> {
    return this.stmts.listAudit.all({ from: q.fromIso ?? null, to: q.toIso ?? null, limit: q.limit, offset: q.offset }) as AuditRow[];
  }

  // ---- budgets -------------------------------------------------------------------------------

  async listBudgets(): Promise<Budget[]> {
    return this.stmts.listBudgets.all() as Budget[];
  }

  async setBudget(b: { scope: BudgetScope; subject: string; unit: BudgetUnit; monthlyLimit: number }) {
    return this.db
      .transaction(() => {
        const previous = (this.stmts.budgetByScope.get(b.scope, b.subject) as Budget | undefined) ?? null;
        const now = this.nowIso();
        this.stmts.upsertBudget.run(b.scope, b.subject, b.unit, b.monthlyLimit, now, now);
        const budget = this.stmts.budgetByScope.get(b.scope, b.subject) as Budget;
        // A new limit or unit starts the month's alerts afresh: crossings of the old one no longer apply.
        if (previous !== null && (previous.monthlyLimit !== b.monthlyLimit || previous.unit !== b.unit)) this.stmts.clearBudgetAlerts.run(budget.id);
        return { budget, previous };
      })
      .immediate();
  }

  async deleteBudget(id: number): Promise<Budget | null> {
    return this.db
      .transaction(() => {
        const budget = (this.stmts.budgetById.get(id) as Budget | undefined) ?? null;
        if (budget !== null) {
          this.stmts.clearBudgetAlerts.run(id);
          this.stmts.deleteBudget.run(id);
        }
        return budget;
      })
      .immediate();
  }

  async recordBudgetAlert(a: { budgetId: number; month: string; threshold: number; spent: number; monthlyLimit: number; crossedAt: string }): Promise<boolean> {
    return this.stmts.insertBudgetAlert.run(a.budgetId, a.month, a.threshold, a.crossedAt, a.spent, a.monthlyLimit).changes === 1;
  }

  async listBudgetAlerts(limit: number): Promise<BudgetAlertRow[]> {
    return this.stmts.listBudgetAlerts.all(limit) as BudgetAlertRow[];
  }

  async dueBudgetAlerts(nowIso: string, maxAttempts: number, limit: number): Promise<BudgetAlertRow[]> {
    return this.stmts.dueBudgetAlerts.all(maxAttempts, nowIso, limit) as BudgetAlertRow[];
  }

  async markBudgetAlert(id: number, o: { deliveredAt: string | null; attempts: number; nextAttemptAt: string | null; lastError: string | null }): Promise<void> {
    this.stmts.markBudgetAlert.run(o.deliveredAt, o.attempts, o.nextAttemptAt, o.lastError, id);
  }

  /** Throws when the database cannot answer a query that reads a table page. */
  async ping(): Promise<void> {
    this.stmts.ping.get();
  }

  async close(): Promise<void> {
    // Writes still waiting for their group commit are committed (and answered) first.
    if (this.db.open) this.writes.flush(true);
    await this.reader?.close();
    if (this.db.open) this.db.close();
  }
}

type Statements = ReturnType<typeof prepareStatements>;

/** What one inserted raw row adds to the rollups (store/rollup.ts), with its keys. */
interface RollupRow extends Omit<RollupDelta, 'cw5mRaw' | 'cw1hRaw' | 'webSearchRaw'> {
  user_id: number;
  turns: number;
  sessions: number;
  model_sessions: number;
  last_at: string;
  shard: number;
}

/**
 * Adds one inserted raw row to the rollups. The running sums: an UPDATE adds it to its hour's row;
 * only when that hour has none yet does a second statement start it from the previous hour's
 * sums (and record the user × model pair, a no-op unless it is new); a late report also grows
 * every later hour. Parameters are positional (a named one costs a property lookup each), in
 * the order the SQL below lists them.
 */
function addRollups(s: Statements, row: RollupRow, day: string, hour: string, receivedAt: string): void {
  const sums = [row.input, row.output, row.cache_read, row.cache_write, row.cw5m, row.cw1h, row.unsplit, row.web_search];
  const counts = [row.turns, row.sessions, row.model_sessions];
  s.upsertDaily.run(row.user_id, day, row.model, ...sums, ...counts, row.last_at);
  s.upsertHourly.run(row.user_id, hour, row.model, ...sums, ...counts, row.last_at);
  if (s.cumAdd.run(...sums, ...counts, row.last_at, receivedAt, row.user_id, row.model, hour).changes === 0) {
    s.cumStart.run({ ...row, bucket: hour, received: receivedAt });
    s.insertUserModel.run(row.user_id, row.model);
  }
  s.cumLater.run(...sums, ...counts, receivedAt, row.user_id, row.model, hour);
  // The shared org row last, as on PostgreSQL (store/rollup.ts).
  s.upsertOrg.run(day, row.model, row.shard, ...sums);
}

/** Adds one inserted row to its rollup bucket: (user_id, day or hour, model, the 8 sums, turns,
 * sessions, model_sessions, last_at), positional. */
function rollupUpsert(table: 'usage_daily' | 'usage_hourly', key: 'day' | 'hour'): string {
  return `
    INSERT INTO ${table} (user_id, ${key}, model, ${ROLLUP_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
    ON CONFLICT (${key}, user_id, model) DO UPDATE SET
      input = input + excluded.input, output = output + excluded.output, cache_read = cache_read + excluded.cache_read,
      cache_write = cache_write + excluded.cache_write, cw5m = cw5m + excluded.cw5m, cw1h = cw1h + excluded.cw1h,
      unsplit = unsplit + excluded.unsplit, web_search = web_search + excluded.web_search, model_turns = model_turns + 1,
      turns = turns + excluded.turns, sessions = sessions + excluded.sessions,
      model_sessions = model_sessions + excluded.model_sessions, last_at = max(last_at, excluded.last_at)`;
}

/** `c = c + ?` for every running-sum column but model_turns (+ 1): the 8 sums, turns, sessions, model_sessions. */
const CUM_ADD = CUM_COLUMNS.map((c) => (c === 'model_turns' ? `${c} = ${c} + 1` : `${c} = ${c} + ?`)).join(', ');

const BUDGET_ALERT_SELECT = `
  SELECT a.id, a.budget_id AS budgetId, b.scope, b.subject, b.unit, a.month, a.threshold, a.crossed_at AS crossedAt,
    a.spent, a.monthly_limit AS monthlyLimit, a.delivered_at AS deliveredAt, a.attempts, a.next_attempt_at AS nextAttemptAt,
    a.last_error AS lastError
  FROM budget_alerts a JOIN budgets b ON b.id = a.budget_id`;

/** One piece: the backend's SQL, one prepared statement per entry — a flat table that reads best in one place. */
function prepareStatements(db: Db) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    userByEmail: p('SELECT id, division, revoked_at FROM users WHERE email = ?'),
    insertUser: p('INSERT INTO users (email, division, created_at) VALUES (?, ?, ?)'),
    reenableUser: p('UPDATE users SET revoked_at = NULL, division = ? WHERE id = ?'),
    setDivision: p('UPDATE users SET division = ? WHERE id = ?'),
    insertAudit: p('INSERT INTO audit_log (at, actor, source, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)'),
    listAudit: p(`
      SELECT id, at, actor, source, action, target, detail FROM audit_log
      WHERE (@from IS NULL OR at >= @from) AND (@to IS NULL OR at < @to)
      ORDER BY id DESC LIMIT @limit OFFSET @offset`),
    listBudgets: p(`
      SELECT id, scope, subject, unit, monthly_limit AS monthlyLimit, created_at AS createdAt, updated_at AS updatedAt
      FROM budgets ORDER BY CASE scope WHEN 'org' THEN 0 WHEN 'division' THEN 1 ELSE 2 END, subject`),
    budgetByScope: p(`
      SELECT id, scope, subject, unit, monthly_limit AS monthlyLimit, created_at AS createdAt, updated_at AS updatedAt
      FROM budgets WHERE scope = ? AND subject = ?`),
    budgetById: p(`
      SELECT id, scope, subject, unit, monthly_limit AS monthlyLimit, created_at AS createdAt, updated_at AS updatedAt
      FROM budgets WHERE id = ?`),
    upsertBudget: p(`
      INSERT INTO budgets (scope, subject, unit, monthly_limit, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (scope, subject) DO UPDATE SET unit = excluded.unit, monthly_limit = excluded.monthly_limit, updated_at = excluded.updated_at`),
    deleteBudget: p('DELETE FROM budgets WHERE id = ?'),
    clearBudgetAlerts: p('DELETE FROM budget_alerts WHERE budget_id = ?'),
    insertBudgetAlert: p(`
      INSERT INTO budget_alerts (budget_id, month, threshold, crossed_at, spent, monthly_limit) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (budget_id, month, threshold) DO NOTHING`),
    listBudgetAlerts: p(`${BUDGET_ALERT_SELECT} ORDER BY a.id DESC LIMIT ?`),
    dueBudgetAlerts: p(`${BUDGET_ALERT_SELECT}
      WHERE a.delivered_at IS NULL AND a.attempts < ? AND (a.next_attempt_at IS NULL OR a.next_attempt_at <= ?)
      ORDER BY a.id LIMIT ?`),
    markBudgetAlert: p('UPDATE budget_alerts SET delivered_at = ?, attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?'),
    revokeUser: p('UPDATE users SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?'),
    listUsers: p(`
      SELECT u.email, u.division, u.created_at, u.revoked_at,
             rt.token_ref, rt.expires_at AS token_expires_at, rt.last_used_at AS token_last_used_at,
             (SELECT count(*) FROM device_keys dk WHERE dk.user_id = u.id AND dk.revoked_at IS NULL) AS active_keys
      FROM users u
      LEFT JOIN user_tokens rt ON rt.id = (
        SELECT id FROM user_tokens WHERE user_id = u.id AND revoked_at IS NULL ORDER BY id DESC LIMIT 1)
      ORDER BY u.email`),
    insertRefreshToken: p(
      'INSERT INTO user_tokens (user_id, token_hash, token_ref, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
    ),
    revokeRefreshTokensOfUser: p('UPDATE user_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL'),
    deleteAccessTokensOfUser: p('DELETE FROM access_tokens WHERE user_id = ?'),
    refreshByHash: p(`
      SELECT rt.id, rt.user_id, rt.token_hash, rt.token_ref, rt.expires_at, rt.revoked_at,
             u.email, u.revoked_at AS user_revoked_at
      FROM user_tokens rt JOIN users u ON u.id = rt.user_id
      WHERE rt.token_hash = ?`),
    rollRefreshToken: p('UPDATE user_tokens SET expires_at = max(expires_at, ?), last_used_at = ? WHERE id = ?'),
    insertAccessToken: p(
      'INSERT INTO access_tokens (token_hash, refresh_token_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
    ),
    pruneAccessTokens: p(`
      DELETE FROM access_tokens WHERE refresh_token_id = ? AND rowid NOT IN (
        SELECT rowid FROM access_tokens WHERE refresh_token_id = ? ORDER BY rowid DESC LIMIT ?)`),
    accessByHash: p(`
      SELECT at.token_hash, at.expires_at, at.refresh_token_id, at.user_id,
             u.email, u.revoked_at AS user_revoked_at, rt.revoked_at AS refresh_revoked_at, rt.token_ref
      FROM access_tokens at
      JOIN users u ON u.id = at.user_id
      JOIN user_tokens rt ON rt.id = at.refresh_token_id
      WHERE at.token_hash = ?`),
    // The same, with the user's registration of a public key (the signed report's), in one query.
    accessByHashWithKey: p(`
      SELECT at.token_hash, at.expires_at, at.refresh_token_id, at.user_id,
             u.email, u.revoked_at AS user_revoked_at, rt.revoked_at AS refresh_revoked_at, rt.token_ref,
             dk.id AS key_id, dk.device_id AS key_device_id, dk.revoked_at AS key_revoked_at
      FROM access_tokens at
      JOIN users u ON u.id = at.user_id
      JOIN user_tokens rt ON rt.id = at.refresh_token_id
      LEFT JOIN device_keys dk ON dk.user_id = at.user_id AND dk.public_key = ?
      WHERE at.token_hash = ?`),
    purgeAccessTokens: p('DELETE FROM access_tokens WHERE expires_at <= ?'),
    purgeLimits: p('DELETE FROM limit_windows WHERE expires_ms <= ?'),
    purgeUsage: p('DELETE FROM usage_events WHERE id IN (SELECT id FROM usage_events WHERE received_at < ? ORDER BY received_at LIMIT ?)'),
    sessionPurge: p('DELETE FROM admin_sessions WHERE last_seen_ms <= ? OR created_ms <= ?'),
    sessionEvict: p(`DELETE FROM admin_sessions WHERE id_hash NOT IN (
      SELECT id_hash FROM admin_sessions ORDER BY touch_seq DESC LIMIT ?)`),
    sessionInsert: p(`INSERT INTO admin_sessions (id_hash, csrf_token, created_ms, last_seen_ms, touch_seq) VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(touch_seq), 0) + 1 FROM admin_sessions))`),
    sessionGet: p('SELECT id_hash AS "idHash", csrf_token AS "csrfToken", created_ms AS "createdMs", last_seen_ms AS "lastSeenMs", flash FROM admin_sessions WHERE id_hash = ?'),
    sessionTouch: p(`UPDATE admin_sessions SET last_seen_ms = ?, touch_seq = (SELECT COALESCE(MAX(touch_seq), 0) + 1 FROM admin_sessions) WHERE id_hash = ?`),
    sessionFlash: p('UPDATE admin_sessions SET flash = ? WHERE id_hash = ?'),
    sessionDelete: p('DELETE FROM admin_sessions WHERE id_hash = ?'),
    limitCount: p('SELECT count AS n FROM limit_windows WHERE key = ? AND window_start = ?'),
    // Counts only while under the cap: a refused request leaves the row as it was (0 changes).
    limitHit: p(`
      INSERT INTO limit_windows (key, window_start, expires_ms, count) VALUES (?, ?, ?, 1)
      ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 WHERE count < ?`),
    countActiveAccessTokens: p('SELECT count(*) AS n FROM access_tokens WHERE expires_at > ?'),
    listKeys: p(`
      SELECT dk.id, u.email AS user_email, dk.device_id, dk.public_key, dk.registered_at, dk.last_seen_at, dk.revoked_at
      FROM device_keys dk JOIN users u ON u.id = dk.user_id
      ORDER BY dk.registered_at, dk.id`),
    registrationsOfKey: p(
      'SELECT dk.id, u.email, dk.revoked_at FROM device_keys dk JOIN users u ON u.id = dk.user_id WHERE dk.public_key = ? ORDER BY dk.id',
    ),
    revokeKeyById: p('UPDATE device_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    countActiveKeysOfUser: p('SELECT count(*) AS n FROM device_keys WHERE user_id = ? AND revoked_at IS NULL'),
    insertKey: p('INSERT INTO device_keys (user_id, public_key, device_id, registered_at) VALUES (?, ?, ?, ?)'),
    keyOfUser: p('SELECT id, device_id, revoked_at FROM device_keys WHERE user_id = ? AND public_key = ?'),
    touchKey: p('UPDATE device_keys SET last_seen_at = ? WHERE id = ?'),
    insertUsage: p(`
      INSERT OR IGNORE INTO usage_events (
        user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
        received_at, user_id, reported_email, signed, cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests)
      VALUES (${Array.from({ length: 21 }, () => '?').join(', ')})`),
    turnSeen: p('SELECT 1 FROM usage_events WHERE user_id = ? AND session_id = ? AND turn_index = ? LIMIT 1'),
    insertSession: p('INSERT INTO usage_sessions (user_id, session_id, first_day) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    insertSessionModel: p('INSERT INTO usage_session_models (user_id, session_id, model) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    upsertDaily: p(rollupUpsert('usage_daily', 'day')),
    upsertHourly: p(rollupUpsert('usage_hourly', 'hour')),
    upsertOrg: p(`
      INSERT INTO usage_org_daily (day, model, shard, ${ORG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (day, model, shard) DO UPDATE SET ${ORG_COLUMNS.split(', ').map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`),
    insertUserModel: p('INSERT INTO usage_user_models (user_id, model) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    // The running sums of the row's hour grow by it (no row yet: cumStart).
    // last_received: the pair's latest row always holds its latest received_at (migration 10).
    cumAdd: p(`UPDATE usage_cum SET ${CUM_ADD}, last_at = max(last_at, ?), last_received = max(IFNULL(last_received, ''), ?)
      WHERE user_id = ? AND model = ? AND hour = ?`),
    // A late report: every later hour's running sums grow by it too (usually no row).
    cumLater: p(`UPDATE usage_cum SET ${CUM_ADD}, last_received = max(IFNULL(last_received, ''), ?) WHERE user_id = ? AND model = ? AND hour > ?`),
    // A new hour starts from the previous hour's running sums (none: zero).
    cumStart: p(`
      INSERT INTO usage_cum (user_id, model, hour, ${ROLLUP_COLUMNS}, last_received)
      SELECT @user_id, @model, @bucket, ${CUM_COLUMNS.map((c) => `${c === 'model_turns' ? '1' : `@${c}`} + COALESCE(p.${c}, 0)`).join(', ')}, @last_at, @received
      FROM (SELECT 1) one
      LEFT JOIN (SELECT * FROM usage_cum WHERE user_id = @user_id AND model = @model AND hour < @bucket ORDER BY hour DESC LIMIT 1) p ON true`),
    ping: p('SELECT count(*) AS n FROM (SELECT 1 FROM users LIMIT 1)'),
  };
}
