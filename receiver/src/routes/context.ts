/**
 * What every route gets, and the checks that several routes share, in the order SPEC §3 fixes:
 * bearer token (401) → rate limit (429) → body size (413). Each helper answers the request itself
 * when the check fails and returns null; the route stops there.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { addressGroup, clientAddress } from '../client-address';
import type { ReceiverConfig } from '../config';
import { answerEarly, isJsonContentType, readBody, sendError } from '../http';
import type { Metrics } from '../metrics';
import type { Output } from '../output';
import type { PriceBook } from '../prices/cost';
import type { AuthContext, Store } from '../store';
import { bearerToken } from '../tokens';

export interface RouteDeps {
  config: ReceiverConfig;
  store: Store;
  metrics: Metrics;
  now: () => Date;
  output: Output;
  /** Prices for the usage cost series on /metrics; shipped prices when omitted. */
  prices?: PriceBook;
}

export type Route = (req: IncomingMessage, res: ServerResponse, deps: RouteDeps) => Promise<void>;

const UNAUTHORIZED_HEADERS = { 'www-authenticate': 'Bearer' };

/**
 * Authenticates the bearer token as `kind`; answers 401 (and returns null) when it does not — or
 * 429 once the client's address (`addressGroup`: IPv6 by /64; the client behind a TRUST_PROXY) has
 * had UNAUTH_RATE_LIMIT_PER_MINUTE such answers this minute. Only failures are counted (in the
 * database, one budget for every instance), so a valid token never waits for a bad one.
 */
export async function authenticate(
  req: IncomingMessage,
  res: ServerResponse,
  deps: RouteDeps,
  kind: 'access' | 'refresh',
  /** An access token's user's registration of this key is read in the same query (`auth.deviceKey`). */
  publicKey?: string,
): Promise<AuthContext | null> {
  const token = bearerToken(req.headers.authorization);
  const auth =
    token === null
      ? null
      : kind === 'access'
        ? await deps.store.authenticateAccessToken(token, publicKey)
        : await deps.store.authenticateRefreshToken(token);
  if (auth === null) {
    const group = addressGroup(clientAddress(req, deps.config.trustProxy));
    const budget = await deps.store.limitHit(`unauth:${group}`, deps.config.unauthRateLimitPerMinute, RATE_WINDOW_SECS);
    if (!budget.allowed) {
      deps.metrics.inc('ccflux_unauthenticated_limited_total');
      answerEarly(req, res, () =>
        sendError(res, 429, 'too many requests without a valid token; retry later', { 'retry-after': String(budget.retryAfterSecs) }),
      );
      return null;
    }
    const message =
      kind === 'access' ? 'access token missing, unknown, expired or revoked' : 'refresh token unknown, expired or revoked';
    answerEarly(req, res, () => sendError(res, 401, message, UNAUTHORIZED_HEADERS));
  }
  return auth;
}

/** The per-token budget's window. */
export const RATE_WINDOW_SECS = 60;

/**
 * One budget per refresh token, shared by `/token`, `/register-key` and `/report` (an access token
 * counts against the refresh token it came from, so minting more access tokens buys nothing).
 * The counter is in the database, so several instances enforce one budget.
 */
export async function rateLimit(req: IncomingMessage, res: ServerResponse, deps: RouteDeps, auth: AuthContext): Promise<boolean> {
  const decision = await deps.store.limitHit(`rt:${auth.refreshTokenId}`, deps.config.rateLimitPerMinute, RATE_WINDOW_SECS);
  if (decision.allowed) return true;
  deps.metrics.inc('ccflux_reports_rate_limited_total');
  answerEarly(req, res, () =>
    sendError(res, 429, 'rate limit exceeded', { 'retry-after': String(decision.retryAfterSecs) }),
  );
  return false;
}

/** JSON endpoints take `Content-Type: application/json` only; anything else is answered 415. */
export function requireJsonBody(req: IncomingMessage, res: ServerResponse): boolean {
  if (isJsonContentType(req.headers['content-type'])) return true;
  answerEarly(req, res, () => sendError(res, 415, 'Content-Type must be application/json'));
  return false;
}

/** Reads the body within the configured limit; answers 413 (or nothing, if the client left). */
export async function boundedBody(req: IncomingMessage, res: ServerResponse, deps: RouteDeps): Promise<Buffer | null> {
  const result = await readBody(req, deps.config.bodyLimitBytes);
  if (result.ok) return result.body;
  if (result.reason === 'too-large') {
    answerEarly(req, res, () => sendError(res, 413, `body larger than ${deps.config.bodyLimitKb} KB`));
  } else {
    res.destroy();
  }
  return null;
}
