/**
 * Token formats and hashing. Tokens are 32 random bytes, base64url, behind a `ccf_xx_` prefix that
 * the device's log redaction recognises. Only their SHA-256 digests are ever stored; comparisons of
 * digests in memory are constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const REFRESH_TOKEN_PREFIX = 'ccf_rt_';
export const ACCESS_TOKEN_PREFIX = 'ccf_at_';
const TOKEN_RANDOM_BYTES = 32;
/** 32 bytes in unpadded base64url. */
const TOKEN_BODY_CHARS = 43;
const TOKEN_BODY_RE = /^[A-Za-z0-9_-]{43}$/;

export type TokenKind = 'refresh' | 'access';

function prefixOf(kind: TokenKind): string {
  return kind === 'refresh' ? REFRESH_TOKEN_PREFIX : ACCESS_TOKEN_PREFIX;
}

export function generateToken(kind: TokenKind): string {
  const body = randomBytes(TOKEN_RANDOM_BYTES).toString('base64url');
  return `${prefixOf(kind)}${body}`;
}

/** A cheap shape check, so malformed bearer values never reach the database. */
export function looksLikeToken(kind: TokenKind, value: string): boolean {
  const prefix = prefixOf(kind);
  return (
    value.length === prefix.length + TOKEN_BODY_CHARS &&
    value.startsWith(prefix) &&
    TOKEN_BODY_RE.test(value.slice(prefix.length))
  );
}

/**
 * The shapes of tokens a Rust receiver issued, accepted only by a database that imported them
 * (`rust_import`): its access tokens are 32 lower-case hex (a UUID without dashes); refresh tokens
 * were written by IT by hand (`rtok_…`, `openssl rand -hex 32`), so any 8-256 printable characters.
 */
export function looksLikeRustToken(kind: TokenKind, value: string): boolean {
  if (kind === 'access') return /^[0-9a-f]{32}$/.test(value);
  return /^[\x21-\x7e]{8,256}$/.test(value) && !value.startsWith(ACCESS_TOKEN_PREFIX);
}

/** SHA-256 hex: what the database holds instead of the token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time equality of two hex digests of the same algorithm. */
export function digestsEqual(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/** Constant-time equality of two secrets of any length: compares their SHA-256 digests. */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** A non-secret identifier of a refresh token, stored in `usage_events.user_token`. */
export function generateTokenRef(): string {
  return `ref_${randomBytes(8).toString('hex')}`;
}

/** The token from an `Authorization: Bearer <token>` header; null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length > 512) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match ? match[1]! : null;
}
