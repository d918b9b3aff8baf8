/**
 * Everything the receiver keeps, over better-sqlite3 prepared statements only (no value is ever
 * interpolated into SQL). Used by the HTTP routes, the CLI and the admin dashboard.
 *
 * Tokens are stored as SHA-256 hex digests; the plaintext is returned once, at issue, and never
 * again. Timestamps are `Date.toISOString()` strings so that SQL compares them as text correctly,
 * except `usage_events.received_at`, which keeps the Rust version's `YYYY-MM-DD HH:MM:SS` (UTC) so
 * that SQL written for it (`received_at >= datetime('now', '-1 hour')`) still selects the same rows.
 */
import type { Statement } from 'better-sqlite3';
import type { ReportBody } from '../../src/protocol/wire';
import type { Db } from './db/open';
import { ReceiverError } from './errors';
import { digestsEqual, generateToken, generateTokenRef, hashToken, looksLikeToken } from './tokens';

/** Defaults match SPEC §3; the server passes its configuration. */
export interface StoreOptions {
  refreshTokenRollingDays?: number;
  accessTokenExpirySecs?: number;
}

/** Live access tokens kept per refresh token; older ones are dropped at the next exchange. */
export const MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN = 20;
/** Active device keys per user; a leaked access token cannot fill the table. */
export const MAX_ACTIVE_KEYS_PER_USER = 100;
export const EMAIL_MAX_CHARS = 255;
export const DIVISION_MAX_CHARS = 255;
export const DAYS_MAX = 3650;

const DAY_MS = 24 * 3600 * 1000;

/** `2026-12-01 08:45:32`: SQLite's CURRENT_TIMESTAMP form (UTC), as the Rust version stores `received_at`. */
export function sqliteTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
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
}

export interface DeviceKey {
  id: number;
  device_id: string;
  revoked_at: string | null;
}

export type RegisterKeyOutcome = 'registered' | 'exists' | 'revoked' | 'limit';

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
}

/** Lower-cased, trimmed; throws `invalid` for anything that is not plausibly an email address. */
export function normalizeEmail(email: string): string {
  const value = String(email).trim().toLowerCase();
  if (
    value.length < 3 ||
    value.length > EMAIL_MAX_CHARS ||
    !/^[^\s@]+@[^\s@]+$/.test(value) ||
    /[\x00-\x1f\x7f]/.test(value)
  ) {
    throw new ReceiverError('invalid', `not a valid email address (1-${EMAIL_MAX_CHARS} characters, one @)`);
  }
  return value;
}

function checkDivision(division: string | undefined): string | undefined {
  if (division === undefined) return undefined;
  const value = String(division).trim();
  if (value.length > DIVISION_MAX_CHARS || /[\x00-\x1f\x7f]/.test(value)) {
    throw new ReceiverError('invalid', `division must be at most ${DIVISION_MAX_CHARS} printable characters`);
  }
  return value;
}

function checkDays(days: number | undefined, fallback: number): number {
  if (days === undefined) return fallback;
  if (!Number.isSafeInteger(days) || days < 1 || days > DAYS_MAX) {
    throw new ReceiverError('invalid', `days must be a whole number from 1 to ${DAYS_MAX}`);
  }
  return days;
}

export class Store {
  readonly db: Db;
  private readonly now: () => Date;
  private readonly rollingDays: number;
  private readonly accessTtlSecs: number;
  private readonly stmts: ReturnType<typeof prepareStatements>;

  constructor(db: Db, now: () => Date, options: StoreOptions = {}) {
    this.db = db;
    this.now = now;
    this.rollingDays = options.refreshTokenRollingDays ?? 90;
    this.accessTtlSecs = options.accessTokenExpirySecs ?? 28_800;
    this.stmts = prepareStatements(db);
  }

  private nowIso(): string {
    return this.now().toISOString();
  }

  // ---- users ---------------------------------------------------------------------------------

  /**
   * Provisions a user and returns their refresh token (the only time it is ever available).
   * A revoked user with the same email is re-enabled with a fresh token.
   */
  createUser(email: string, opts: { division?: string; days?: number } = {}): { refreshToken: string } {
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

  listUsers(): UserRow[] {
    return this.stmts.listUsers.all() as UserRow[];
  }

  /** Revokes the user, every refresh token and every access token of theirs. Idempotent. */
  revokeUser(email: string): void {
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
  reissueToken(email: string, opts: { days?: number } = {}): { refreshToken: string } {
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

  listKeys(): KeyRow[] {
    return this.stmts.listKeys.all() as KeyRow[];
  }

  /**
   * Revokes a public key for every user it is registered to; returns how many registrations
   * changed (0 when all were already revoked). `not-found` when the key was never registered.
   */
  revokeKey(publicKey: string): number {
    return this.db
      .transaction(() => {
        const known = this.stmts.countKey.get(publicKey) as { n: number };
        if (known.n === 0) throw new ReceiverError('not-found', 'no device key with that public key');
        return this.stmts.revokeKey.run(this.nowIso(), publicKey).changes;
      })
      .immediate();
  }

  registerKey(auth: AuthContext, publicKey: string, deviceId: string): RegisterKeyOutcome {
    return this.db
      .transaction((): RegisterKeyOutcome => {
        const existing = this.findDeviceKey(auth.userId, publicKey);
        if (existing) return existing.revoked_at === null ? 'exists' : 'revoked';
        const active = this.stmts.countActiveKeysOfUser.get(auth.userId) as { n: number };
        if (active.n >= MAX_ACTIVE_KEYS_PER_USER) return 'limit';
        this.stmts.insertKey.run(auth.userId, publicKey, deviceId, this.nowIso());
        return 'registered';
      })
      .immediate();
  }

  /** The key as registered to this user; another user's registration of it does not count. */
  findDeviceKey(userId: number, publicKey: string): DeviceKey | undefined {
    return this.stmts.keyOfUser.get(userId, publicKey) as DeviceKey | undefined;
  }

  touchDeviceKey(id: number): void {
    this.stmts.touchKey.run(this.nowIso(), id);
  }

  // ---- tokens --------------------------------------------------------------------------------

  /** The owner of a refresh token that is known, unexpired and not revoked; null otherwise. */
  authenticateRefreshToken(token: string): AuthContext | null {
    if (!looksLikeToken('refresh', token)) return null;
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
  issueAccessToken(auth: AuthContext): { accessToken: string; expiresAt: Date } {
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
  authenticateAccessToken(token: string): AuthContext | null {
    if (!looksLikeToken('access', token)) return null;
    const hash = hashToken(token);
    const row = this.stmts.accessByHash.get(hash) as AccessLookupRow | undefined;
    if (row === undefined || !digestsEqual(row.token_hash, hash)) return null;
    if (row.user_revoked_at !== null || row.refresh_revoked_at !== null || row.expires_at <= this.nowIso()) return null;
    return { userId: row.user_id, email: row.email, refreshTokenId: row.refresh_token_id, tokenRef: row.token_ref };
  }

  purgeExpiredAccessTokens(): number {
    return this.stmts.purgeAccessTokens.run(this.nowIso()).changes;
  }

  countActiveAccessTokens(): number {
    return (this.stmts.countActiveAccessTokens.get(this.nowIso()) as { n: number }).n;
  }

  // ---- usage ---------------------------------------------------------------------------------

  /**
   * Stores one row per model, idempotent on (session_id, turn_index, model): a retried or replayed
   * report inserts nothing. Returns how many rows were new. `deviceKeyId`, the verified signing
   * key, gets its last_seen_at in the same transaction (one commit per report).
   */
  insertReport(
    auth: AuthContext,
    report: ReportBody,
    opts: { deviceId: string; signed: boolean; deviceKeyId?: number },
  ): { inserted: number } {
    const now = this.now();
    const receivedAt = sqliteTimestamp(now);
    return this.db
      .transaction(() => {
        let inserted = 0;
        for (const [model, usage] of Object.entries(report.models)) {
          inserted += this.stmts.insertUsage.run({
            user_email: auth.email,
            user_token: auth.tokenRef,
            device_id: opts.deviceId,
            session_id: report.session_id,
            turn_index: report.turn_index,
            timestamp_utc: report.timestamp_utc,
            // A Rust device leaves it out when it has none; '' means the same.
            session_start_utc: report.session_start_utc || null,
            model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            plugin_version: report.plugin_version,
            schema_version: report.schema_version,
            received_at: receivedAt,
            user_id: auth.userId,
            reported_email: report.user_email,
            signed: opts.signed ? 1 : 0,
          }).changes;
        }
        if (opts.deviceKeyId !== undefined) this.stmts.touchKey.run(now.toISOString(), opts.deviceKeyId);
        return { inserted };
      })
      .immediate();
  }

  /** Throws when the database cannot answer a query that reads a table page. */
  ping(): void {
    this.stmts.ping.get();
  }
}

function prepareStatements(db: Db) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    userByEmail: p('SELECT id, division, revoked_at FROM users WHERE email = ?'),
    insertUser: p('INSERT INTO users (email, division, created_at) VALUES (?, ?, ?)'),
    reenableUser: p('UPDATE users SET revoked_at = NULL, division = ? WHERE id = ?'),
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
    purgeAccessTokens: p('DELETE FROM access_tokens WHERE expires_at <= ?'),
    countActiveAccessTokens: p('SELECT count(*) AS n FROM access_tokens WHERE expires_at > ?'),
    listKeys: p(`
      SELECT dk.id, u.email AS user_email, dk.device_id, dk.public_key, dk.registered_at, dk.last_seen_at, dk.revoked_at
      FROM device_keys dk JOIN users u ON u.id = dk.user_id
      ORDER BY dk.registered_at, dk.id`),
    countKey: p('SELECT count(*) AS n FROM device_keys WHERE public_key = ?'),
    revokeKey: p('UPDATE device_keys SET revoked_at = ? WHERE public_key = ? AND revoked_at IS NULL'),
    countActiveKeysOfUser: p('SELECT count(*) AS n FROM device_keys WHERE user_id = ? AND revoked_at IS NULL'),
    insertKey: p('INSERT INTO device_keys (user_id, public_key, device_id, registered_at) VALUES (?, ?, ?, ?)'),
    keyOfUser: p('SELECT id, device_id, revoked_at FROM device_keys WHERE user_id = ? AND public_key = ?'),
    touchKey: p('UPDATE device_keys SET last_seen_at = ? WHERE id = ?'),
    insertUsage: p(`
      INSERT OR IGNORE INTO usage_events (
        user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version,
        received_at, user_id, reported_email, signed)
      VALUES (
        @user_email, @user_token, @device_id, @session_id, @turn_index, @timestamp_utc, @session_start_utc, @model,
        @input_tokens, @output_tokens, @cache_read_tokens, @cache_write_tokens, @plugin_version, @schema_version,
        @received_at, @user_id, @reported_email, @signed)`),
    ping: p('SELECT count(*) AS n FROM (SELECT 1 FROM users LIMIT 1)'),
  };
}
