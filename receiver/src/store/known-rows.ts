/**
 * Keys of rows the SQLite store knows exist because a transaction that wrote them, or found them
 * already there, has COMMITTED: the session sets (`usage_sessions`, `usage_session_models`,
 * store/rollup.ts), whose rows are never updated or deleted. Their `INSERT … ON CONFLICT DO
 * NOTHING` is then a no-op, and insertReport skips it. Filled only after COMMIT, so a write that
 * was rolled back leaves nothing here; bounded (the oldest keys go first; forgetting one only
 * costs its statement again). A row another process inserts is simply not known yet.
 */
export const KNOWN_ROWS_MAX = 50_000;

export class KnownRows {
  private readonly keys = new Set<string>();

  constructor(private readonly max = KNOWN_ROWS_MAX) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Called once the transaction that wrote or found these rows has committed. */
  addCommitted(keys: readonly string[]): void {
    for (const key of keys) this.keys.add(key);
    if (this.keys.size <= this.max) return;
    let excess = this.keys.size - this.max;
    for (const key of this.keys) {
      if (excess-- <= 0) break;
      this.keys.delete(key);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}

/** A user's session, unambiguous whatever the session id holds (its length goes first). */
export function sessionKey(userId: number, sessionId: string): string {
  return `s${userId}:${sessionId.length}:${sessionId}`;
}

/** A user's session × model (another first letter: never equal to a session's key). */
export function sessionModelKey(userId: number, sessionId: string, model: string): string {
  return `m${userId}:${sessionId.length}:${sessionId}${model}`;
}
