/**
 * Validation and limits shared by every store backend (pure): the same input is refused with the
 * same `invalid` error whichever database is behind the receiver.
 */
import type { ModelUsage } from '../../../src/protocol/wire';
import { ReceiverError } from '../errors';
import type { DeviceKey } from './types';

/**
 * The schema-v2 cost-detail columns of one usage row: the reported value; absent in a
 * schema_version ≥ 2 report means 0 (the device sends only non-zero detail); NULL for
 * schema_version 1, whose devices did not know.
 */
export function detailColumns(
  schemaVersion: number,
  usage: ModelUsage,
): { cache_write_5m_tokens: number | null; cache_write_1h_tokens: number | null; web_search_requests: number | null } {
  const known = schemaVersion >= 2 ? 0 : null;
  return {
    cache_write_5m_tokens: usage.cache_write_5m_tokens ?? known,
    cache_write_1h_tokens: usage.cache_write_1h_tokens ?? known,
    web_search_requests: usage.web_search_requests ?? known,
  };
}

/** Live access tokens kept per refresh token; older ones are dropped at the next exchange. */
export const MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN = 20;
/** Active device keys per user; a leaked access token cannot fill the table. */
export const MAX_ACTIVE_KEYS_PER_USER = 100;
export const EMAIL_MAX_CHARS = 255;
export const DIVISION_MAX_CHARS = 255;
export const DAYS_MAX = 3650;

export const DAY_MS = 24 * 3600 * 1000;

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

export function checkDivision(division: string | undefined): string | undefined {
  if (division === undefined) return undefined;
  const value = String(division).trim();
  if (value.length > DIVISION_MAX_CHARS || /[\x00-\x1f\x7f]/.test(value)) {
    throw new ReceiverError('invalid', `division must be at most ${DIVISION_MAX_CHARS} printable characters`);
  }
  return value;
}

export function checkDays(days: number | undefined, fallback: number): number {
  if (days === undefined) return fallback;
  if (!Number.isSafeInteger(days) || days < 1 || days > DAYS_MAX) {
    throw new ReceiverError('invalid', `days must be a whole number from 1 to ${DAYS_MAX}`);
  }
  return days;
}

/**
 * The shared counter's decision (see `Store.limitHit`). Fixed windows of `windowSecs` aligned to
 * the epoch; the previous window's count is weighted by the share of it still inside the sliding
 * window, so the estimate has no 2x burst at a boundary. Returns the highest `current` count that
 * may still take one more request.
 */
export function limitCap(limit: number, previous: number, elapsedFraction: number): number {
  return Math.ceil(limit - previous * (1 - elapsedFraction));
}

/** Seconds until the weighted count drops by one (at least 1). */
export function limitRetryAfter(
  limit: number,
  current: number,
  previous: number,
  nowMs: number,
  windowStartMs: number,
  windowMs: number,
): number {
  const windowEnd = windowStartMs + windowMs;
  if (current + 1 > limit || previous === 0) return Math.max(1, Math.ceil((windowEnd - nowMs) / 1000));
  // previous * (1 - (t - start)/W) <= limit - 1 - current  =>  t >= start + W * (1 - room/previous)
  const room = limit - 1 - current;
  const t = windowStartMs + windowMs * (1 - room / previous);
  return Math.max(1, Math.ceil((Math.min(t, windowEnd) - nowMs) / 1000));
}

/** `2026-12-01 08:45:32`: SQLite's CURRENT_TIMESTAMP form (UTC), as the Rust version stores
 * `usage_events.received_at`; SQL written for it compares against `datetime('now', …)`. */
export function sqliteTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * The one registration `revokeKey` acts on: the user's (by normalized email) when given, else the
 * key's only one. Throws `not-found`, or `ambiguous` when several users registered the key.
 */
export function pickRegistration<R extends { email: string }>(rows: readonly R[], email: string | undefined): R {
  const matching = email === undefined ? rows : rows.filter((r) => r.email === email);
  if (matching.length === 0) {
    throw new ReceiverError('not-found', email === undefined ? 'no device key with that public key' : `no such key registered to ${email}`);
  }
  if (matching.length > 1) {
    throw new ReceiverError(
      'ambiguous',
      `that public key is registered to ${matching.length} users (${matching.map((r) => r.email).join(', ')}); name the user whose device to revoke`,
    );
  }
  return matching[0]!;
}

/** The device key columns of an access-token lookup (`authenticateAccessToken` with a public
 * key), or null when the user has no registration of that key. */
export function keyOfRow(row: { key_id?: number | string | null; key_device_id?: string | null; key_revoked_at?: string | null }): DeviceKey | null {
  if (row.key_id === undefined || row.key_id === null) return null;
  return { id: Number(row.key_id), device_id: row.key_device_id ?? '', revoked_at: row.key_revoked_at ?? null };
}
