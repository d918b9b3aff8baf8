/**
 * The token model: the configured refresh token is exchanged at `POST <base>/token` for a short
 * lived access token, cached in `token_cache.json` (0600) and reused until it is within 5 minutes
 * of expiry. The refresh token goes to `/token` only, and to no log.
 *
 * The expiry maths (`needsRefresh`, `parseTokenResponse`) is pure; `getAccessToken` is the shell.
 *
 * Two bounds on what the server says, so a wrong clock on either side cannot hurt:
 * - an `expires_at` already (almost) past by our clock is used now and cached for a minute, so a
 *   device whose clock runs ahead does not exchange before every report;
 * - a cached token is never trusted for more than 24 h: each exchange also extends the receiver's
 *   rolling refresh-token expiry, which a year-long access token would let lapse.
 *
 * The cache also records `bound_to`, a one-way digest of the endpoint and refresh token it came
 * from: after the credentials change (another user, another receiver), an old access token is
 * never sent. A cache without it (the Rust version's) is accepted.
 */
import { createHash } from 'node:crypto';
import { unlink } from '../local/fs';
import { ACCESS_TOKEN_REFRESH_MARGIN_MS, endpointUrls, formatTimestamp, parseTimestamp } from '../../protocol/wire';
import { VERSION } from '../../version';
import { classify, type StopReason } from './answer';
import { isUsableToken } from '../local/credentials';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import type { Logger } from '../local/log';
import type { StatePaths } from '../local/paths';
import type { Transport } from './transport';

export interface AccessTokenCache {
  access_token: string;
  /** RFC 3339. */
  expires_at: string;
}

/** Exact wording from the SPEC: the one line a user sees when their refresh token stops working. */
export const REFRESH_TOKEN_REVOKED_MESSAGE = 'refresh token expired or revoked — contact your IT admin';

/** Re-exchange at least this often, whatever the server's expiry (keeps the rolling refresh token alive). */
export const MAX_ACCESS_TOKEN_TRUST_MILLIS = 24 * 60 * 60 * 1000;
/** An expiry beyond this is not a real one. */
const ABSURD_EXPIRY_MILLIS = 366 * 24 * 60 * 60 * 1000;
/** A token the server calls (nearly) expired is still reused this long before the next exchange. */
const MIN_ACCESS_TOKEN_REUSE_MILLIS = 60 * 1000;
const MAX_CACHE_BYTES = 16 * 1024;

/** True when the cached access token cannot be used: missing, malformed, or within 5 min of expiry. */
export function needsRefresh(cache: AccessTokenCache | null, now: Date): boolean {
  if (cache === null || typeof cache.access_token !== 'string' || !isUsableToken(cache.access_token)) return true;
  if (typeof cache.expires_at !== 'string') return true;
  const expires = parseTimestamp(cache.expires_at);
  if (expires === null) return true;
  const leftMillis = expires.getTime() - now.getTime();
  // Far beyond what an exchange caches: written by a skewed clock (ours jumped back) or by hand.
  if (leftMillis > MAX_ACCESS_TOKEN_TRUST_MILLIS + ACCESS_TOKEN_REFRESH_MARGIN_MS) return true;
  return leftMillis <= ACCESS_TOKEN_REFRESH_MARGIN_MS;
}

/**
 * Parses a `/token` 200 body into what we cache. Null for anything that is not a usable answer
 * (not JSON, missing or unusable token, unparseable or absurd expiry). The cached expiry is
 * clamped to [now + margin + 1 min, now + 24 h] (see the file comment).
 */
export function parseTokenResponse(body: string, now: Date): AccessTokenCache | null {
  if (body.length > MAX_CACHE_BYTES) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { access_token, expires_at, token_type } = parsed as Record<string, unknown>;
  if (typeof access_token !== 'string' || !isUsableToken(access_token)) return null;
  if (token_type !== undefined && (typeof token_type !== 'string' || token_type.toLowerCase() !== 'bearer')) return null;
  if (typeof expires_at !== 'string') return null;
  const expires = parseTimestamp(expires_at);
  if (expires === null) return null;
  const nowMillis = now.getTime();
  if (Math.abs(expires.getTime() - nowMillis) > ABSURD_EXPIRY_MILLIS) return null;
  const earliest = nowMillis + ACCESS_TOKEN_REFRESH_MARGIN_MS + MIN_ACCESS_TOKEN_REUSE_MILLIS;
  const latest = nowMillis + MAX_ACCESS_TOKEN_TRUST_MILLIS;
  const clamped = Math.min(Math.max(expires.getTime(), earliest), latest);
  // Rounded down to whole seconds: never later than what the server said (unless raised above).
  return { access_token, expires_at: formatTimestamp(new Date(clamped)) };
}

/** Shape check of a cache file's content; null when unusable. */
export function parseTokenCache(text: string): (AccessTokenCache & { bound_to?: string }) | null {
  if (text.length > MAX_CACHE_BYTES) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { access_token, expires_at, bound_to } = parsed as Record<string, unknown>;
  if (typeof access_token !== 'string' || typeof expires_at !== 'string') return null;
  if (bound_to !== undefined && typeof bound_to !== 'string') return null;
  return { access_token, expires_at, ...(typeof bound_to === 'string' ? { bound_to } : {}) };
}

/** One-way, non-secret name of (endpoint, refresh token) for the cache's `bound_to`. */
export function credentialBinding(credentials: { endpoint: string; token: string }): string {
  let base = credentials.endpoint;
  try {
    base = endpointUrls(credentials.endpoint).base;
  } catch {
    // An invalid endpoint never gets a cache anyway; bind to the raw text.
  }
  return createHash('sha256').update(`ccflux token cache\n${base}\n${credentials.token}`).digest('hex').slice(0, 32);
}

export type UnavailableReason = StopReason;

export type ExchangeResult =
  | { kind: 'ok'; cache: AccessTokenCache }
  /** `/token` answered 401. */
  | { kind: 'revoked' }
  /** `status`: the HTTP status when there was an answer, null for a network error. */
  | { kind: 'unavailable'; reason: UnavailableReason; detail: string; status: number | null };

/**
 * One exchange at `POST <base>/token` (bearer refresh token, empty body). No files, no log:
 * `ccflux login` uses it to prove a token before saving it.
 */
export async function exchangeToken(
  deps: { transport: Transport; now: () => Date },
  args: { endpoint: string; refreshToken: string; timeoutMillis?: number },
): Promise<ExchangeResult> {
  const result = await deps.transport.post(endpointUrls(args.endpoint).token, {
    headers: { authorization: `Bearer ${args.refreshToken}`, 'user-agent': `ccflux/${VERSION}` },
    body: '',
    ...(args.timeoutMillis === undefined ? {} : { timeoutMillis: args.timeoutMillis }),
  });
  const action = classify(result, 'token', deps.now());
  const status = result.kind === 'response' ? result.status : null;
  switch (action.kind) {
    case 'delivered': {
      const cache = result.kind === 'response' ? parseTokenResponse(result.body, deps.now()) : null;
      if (cache === null) {
        return { kind: 'unavailable', reason: 'unexpected-answer', detail: 'HTTP 200 without a usable access token', status };
      }
      return { kind: 'ok', cache };
    }
    case 'token-revoked':
      return { kind: 'revoked' };
    case 'stop':
      return { kind: 'unavailable', reason: action.reason, detail: action.detail, status };
    default:
      return { kind: 'unavailable', reason: 'unexpected-answer', detail: `unexpected answer (${action.kind})`, status };
  }
}

export interface AuthDeps {
  paths: Pick<StatePaths, 'tokenCache'>;
  transport: Transport;
  now: () => Date;
  log: Logger;
  credentials: { endpoint: string; token: string };
  /** Caps the exchange request (the caller's remaining budget). */
  timeoutMillis?: number;
}

export type AccessTokenResult =
  | { kind: 'ok'; token: string }
  /** The refresh token was refused (already logged with the SPEC's wording). */
  | { kind: 'revoked' }
  | { kind: 'unavailable'; reason: UnavailableReason; detail: string };

/**
 * A usable access token: the cached one unless it needs refreshing (or `forceRefresh`, after a
 * 401 from /report or /register-key), else a fresh exchange, cached 0600. A corrupt cache is
 * discarded.
 */
export async function getAccessToken(deps: AuthDeps, options: { forceRefresh?: boolean } = {}): Promise<AccessTokenResult> {
  const binding = credentialBinding(deps.credentials);
  if (!options.forceRefresh) {
    const cached = await readTokenCache(deps);
    if (cached && (cached.bound_to === undefined || cached.bound_to === binding) && !needsRefresh(cached, deps.now())) {
      return { kind: 'ok', token: cached.access_token };
    }
  }

  const result = await exchangeToken(deps, {
    endpoint: deps.credentials.endpoint,
    refreshToken: deps.credentials.token,
    ...(deps.timeoutMillis === undefined ? {} : { timeoutMillis: deps.timeoutMillis }),
  });
  if (result.kind === 'revoked') {
    await clearTokenCache(deps.paths);
    deps.log.error(REFRESH_TOKEN_REVOKED_MESSAGE);
    return { kind: 'revoked' };
  }
  if (result.kind === 'unavailable') return { kind: 'unavailable', reason: result.reason, detail: result.detail };
  try {
    await saveTokenCache(deps.paths, result.cache, deps.credentials);
  } catch (err) {
    // The token is good for this run; the next one exchanges again.
    deps.log.error(`cannot write the token cache: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return { kind: 'ok', token: result.cache.access_token };
}

async function readTokenCache(deps: AuthDeps): Promise<(AccessTokenCache & { bound_to?: string }) | null> {
  let text: string | null;
  try {
    text = await readTextIfExists(deps.paths.tokenCache);
  } catch {
    return null;
  }
  if (text === null) return null;
  const cache = parseTokenCache(text);
  if (cache === null) {
    deps.log.activity('token cache was unreadable: discarded; exchanging the refresh token again');
    await clearTokenCache(deps.paths);
  }
  return cache;
}

/** Writes the cache (0600, atomic). `ccflux login` primes it with the access token it just proved. */
export async function saveTokenCache(
  paths: Pick<StatePaths, 'tokenCache'>,
  cache: AccessTokenCache,
  credentials: { endpoint: string; token: string },
): Promise<void> {
  const content = { access_token: cache.access_token, expires_at: cache.expires_at, bound_to: credentialBinding(credentials) };
  await writeFileAtomic(paths.tokenCache, `${JSON.stringify(content)}\n`);
}

export async function clearTokenCache(paths: Pick<StatePaths, 'tokenCache'>): Promise<void> {
  await unlink(paths.tokenCache).catch(() => {});
}
