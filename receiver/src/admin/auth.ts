/**
 * Admin authentication state: sessions (random ids, server-side expiry, one CSRF token each; the
 * in-memory `SessionStore`, the receiver itself keeps them in the database, admin/sessions.ts) and
 * the login limiter (in the database). Secrets are compared with
 * `secretsEqual` (tokens.ts: SHA-256 of both sides, then `timingSafeEqual`).
 * The session id and the CSRF token are random and unrelated to the admin token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { addressGroup } from '../client-address';
import type { Store } from '../store/types';
import type { Flash } from './render';

export interface AuthLimits {
  /** A session ends this long after it was last used. */
  sessionIdleMillis: number;
  /** …and at the latest this long after login. */
  sessionMaxMillis: number;
  /** The oldest session is dropped when a login would exceed this. */
  maxSessions: number;
  /** Failed logins (form or bearer) allowed per client address (IPv6: per /64) within `loginWindowMillis`. */
  maxLoginFailures: number;
  /** …and from all addresses together: many addresses guessing a little each are stopped too. */
  maxLoginFailuresOverall: number;
  /** The limiter's window (whole seconds: it counts in `limit_windows`). */
  loginWindowMillis: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  sessionIdleMillis: 60 * 60 * 1000,
  sessionMaxMillis: 12 * 60 * 60 * 1000,
  maxSessions: 64,
  maxLoginFailures: 5,
  maxLoginFailuresOverall: 50,
  loginWindowMillis: 15 * 60 * 1000,
};

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

export interface Session {
  csrfToken: string;
  createdMillis: number;
  lastSeenMillis: number;
  flash: Flash | null;
}

/**
 * Sessions keyed by the SHA-256 of their id: the map never holds a usable cookie value, and the
 * lookup's timing depends on a digest, not on the secret.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly limits: AuthLimits) {}

  get size(): number {
    return this.sessions.size;
  }

  create(nowMillis: number): { id: string; session: Session } {
    this.purge(nowMillis);
    while (this.sessions.size >= this.limits.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomToken();
    const session: Session = { csrfToken: randomToken(), createdMillis: nowMillis, lastSeenMillis: nowMillis, flash: null };
    this.sessions.set(this.key(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, refreshed; expired ones are removed. */
  get(id: string, nowMillis: number): Session | null {
    const key = this.key(id);
    const session = this.sessions.get(key);
    if (session === undefined) return null;
    if (this.expired(session, nowMillis)) {
      this.sessions.delete(key);
      return null;
    }
    session.lastSeenMillis = nowMillis;
    // Re-insert so Map order stays least-recently-used first (eviction takes the first key).
    this.sessions.delete(key);
    this.sessions.set(key, session);
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(this.key(id));
  }

  private key(id: string): string {
    return digest(id).toString('hex');
  }

  private expired(s: Session, nowMillis: number): boolean {
    return nowMillis - s.lastSeenMillis >= this.limits.sessionIdleMillis || nowMillis - s.createdMillis >= this.limits.sessionMaxMillis;
  }

  private purge(nowMillis: number): void {
    for (const [key, s] of this.sessions) if (this.expired(s, nowMillis)) this.sessions.delete(key);
  }
}

/** Key prefix of the login limiter's rows in `limit_windows` (the per-token limiter uses `rt:`). */
const KEY_PREFIX = 'login:';
/** Counted under this key besides the address group: the overall budget. */
const OVERALL = `${KEY_PREFIX}*`;

/**
 * Failed logins (form or bearer) per client address group (`addressGroup`: IPv6 by /64) and
 * overall, counted in the database (`Store.limitHit`: fixed windows in `limit_windows`, the
 * previous window weighted), so every instance behind a load balancer spends one budget. A caller
 * passes the address `clientAddress` found (TRUST_PROXY decides whether that is the proxy's or the
 * client's behind it). Only failures count: `retryAfterMillis` peeks (`limitCheck`) before a guess
 * is read, `recordFailure` counts one after it proved wrong. Method and error bound: docs/deploy.md.
 */
export class LoginLimiter {
  private readonly windowSecs: number;

  constructor(
    private readonly store: Pick<Store, 'limitHit' | 'limitCheck'>,
    private readonly limits: AuthLimits,
  ) {
    this.windowSecs = Math.max(1, Math.ceil(limits.loginWindowMillis / 1000));
  }

  /** Milliseconds until this address may try again; 0 when it may try now. */
  async retryAfterMillis(address: string): Promise<number> {
    const [own, overall] = await Promise.all([
      this.store.limitCheck(KEY_PREFIX + addressGroup(address), this.limits.maxLoginFailures, this.windowSecs),
      this.store.limitCheck(OVERALL, this.limits.maxLoginFailuresOverall, this.windowSecs),
    ]);
    return 1000 * Math.max(own.allowed ? 0 : own.retryAfterSecs, overall.allowed ? 0 : overall.retryAfterSecs);
  }

  async recordFailure(address: string): Promise<void> {
    await this.store.limitHit(KEY_PREFIX + addressGroup(address), this.limits.maxLoginFailures, this.windowSecs);
    await this.store.limitHit(OVERALL, this.limits.maxLoginFailuresOverall, this.windowSecs);
  }
}
