/**
 * Admin sessions kept in the database (`Store.session*`), so a session made on one instance works
 * on every other one behind the load balancer. The same rules as the in-memory `SessionStore`:
 * random id in the cookie, server-side idle and absolute expiry, at most `maxSessions`.
 *
 * The database holds only the SHA-256 of the id (a stolen dump cannot log in) and the flash
 * message sealed with AES-256-GCM under a key derived from the id (a flash can carry a newly
 * issued refresh token; only the cookie's holder can read it back).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Store } from '../store';
import { type AuthLimits, randomToken, type Session } from './auth';
import type { Flash } from './render';

type SessionBackend = Pick<Store, 'sessionPut' | 'sessionGet' | 'sessionTouch' | 'sessionSetFlash' | 'sessionDelete'>;

function idHash(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

function flashKey(id: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(id, 'utf8'), Buffer.alloc(0), 'ccflux admin flash', 32));
}

export function sealFlash(id: string, flash: Flash): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', flashKey(id), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(flash), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function openFlash(id: string, sealed: string): Flash | null {
  try {
    const raw = Buffer.from(sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', flashKey(id), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as Flash;
  } catch {
    return null;
  }
}

export class SharedSessions {
  constructor(
    private readonly store: SessionBackend,
    private readonly limits: AuthLimits,
  ) {}

  async create(nowMillis: number): Promise<{ id: string; session: Session }> {
    const id = randomToken();
    const session: Session = { csrfToken: randomToken(), createdMillis: nowMillis, lastSeenMillis: nowMillis, flash: null };
    await this.store.sessionPut(
      { idHash: idHash(id), csrfToken: session.csrfToken, createdMs: nowMillis, lastSeenMs: nowMillis },
      { maxSessions: this.limits.maxSessions, idleBeforeMs: nowMillis - this.limits.sessionIdleMillis, createdBeforeMs: nowMillis - this.limits.sessionMaxMillis },
    );
    return { id, session };
  }

  /** The live session for a cookie value, refreshed; an expired one is removed. */
  async get(id: string, nowMillis: number): Promise<Session | null> {
    const key = idHash(id);
    const row = await this.store.sessionGet(key);
    if (row === undefined) return null;
    if (nowMillis - row.lastSeenMs >= this.limits.sessionIdleMillis || nowMillis - row.createdMs >= this.limits.sessionMaxMillis) {
      await this.store.sessionDelete(key);
      return null;
    }
    await this.store.sessionTouch(key, nowMillis);
    return {
      csrfToken: row.csrfToken,
      createdMillis: row.createdMs,
      lastSeenMillis: nowMillis,
      flash: row.flash === null ? null : openFlash(id, row.flash),
    };
  }

  async setFlash(id: string, flash: Flash | null): Promise<void> {
    await this.store.sessionSetFlash(idHash(id), flash === null ? null : sealFlash(id, flash));
  }

  async delete(id: string): Promise<void> {
    await this.store.sessionDelete(idHash(id));
  }
}
