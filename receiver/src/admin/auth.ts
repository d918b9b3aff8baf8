/**
 * Admin authentication state, all in memory and bounded: sessions (random ids, server-side
 * expiry, one CSRF token each) and the per-address login limiter. Secrets are compared with
 * `secretsEqual` (tokens.ts: SHA-256 of both sides, then `timingSafeEqual`).
 * The session id and the CSRF token are random and unrelated to the admin token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { addressGroup } from '../client-address';
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
  loginWindowMillis: number;
  /** Addresses tracked by the limiter; the oldest entry is dropped beyond this. */
  maxTrackedAddresses: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  sessionIdleMillis: 60 * 60 * 1000,
  sessionMaxMillis: 12 * 60 * 60 * 1000,
  maxSessions: 64,
  maxLoginFailures: 5,
  maxLoginFailuresOverall: 50,
  loginWindowMillis: 15 * 60 * 1000,
  maxTrackedAddresses: 10_000,
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

/** Counted under this key besides the address group: the overall budget. */
const OVERALL = '*';

/**
 * Sliding window of failed login times per client address group (`addressGroup`: IPv6 by /64) and
 * overall. A caller passes the address `clientAddress` found (TRUST_PROXY decides whether that is
 * the proxy's or the client's behind it).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limits: AuthLimits) {}

  /** Milliseconds until this address may try again; 0 when it may try now. */
  retryAfterMillis(address: string, nowMillis: number): number {
    return Math.max(
      this.wait(addressGroup(address), this.limits.maxLoginFailures, nowMillis),
      this.wait(OVERALL, this.limits.maxLoginFailuresOverall, nowMillis),
    );
  }

  recordFailure(address: string, nowMillis: number): void {
    this.record(addressGroup(address), this.limits.maxLoginFailures, nowMillis);
    this.record(OVERALL, this.limits.maxLoginFailuresOverall, nowMillis);
  }

  private wait(key: string, max: number, nowMillis: number): number {
    const times = this.recent(key, nowMillis);
    if (times.length < max) return 0;
    const oldest = times[times.length - max]!;
    return Math.max(1, oldest + this.limits.loginWindowMillis - nowMillis);
  }

  private record(key: string, max: number, nowMillis: number): void {
    const times = this.recent(key, nowMillis);
    times.push(nowMillis);
    // Only the newest `max` matter for the decision.
    if (times.length > max) times.splice(0, times.length - max);
    this.failures.delete(key);
    this.failures.set(key, times);
    while (this.failures.size > this.limits.maxTrackedAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined || oldest === OVERALL) break;
      this.failures.delete(oldest);
    }
  }

  private recent(key: string, nowMillis: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => nowMillis - t < this.limits.loginWindowMillis);
    if (times.length === 0) this.failures.delete(key);
    else this.failures.set(key, times);
    return times;
  }
}
