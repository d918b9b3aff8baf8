import { describe, expect, it } from 'vitest';
import { KnownRows, sessionKey, sessionModelKey } from '../src/store/known-rows';

describe('KnownRows (the session-set rows a committed transaction wrote or found)', () => {
  it('holds at most its bound, forgetting the oldest keys first', () => {
    const known = new KnownRows(3);
    known.addCommitted(['a', 'b']);
    known.addCommitted(['c', 'd']);
    expect(known.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((k) => known.has(k))).toEqual([false, true, true, true]);
  });

  it('keys never collide, whatever the session id and model hold', () => {
    expect(sessionModelKey(1, 'a:b', 'c')).not.toBe(sessionModelKey(1, 'a', ':bc'));
    expect(sessionModelKey(1, 'ab', 'c')).not.toBe(sessionModelKey(1, 'a', 'bc'));
    expect(sessionKey(12, '3')).not.toBe(sessionKey(1, '23'));
    expect(sessionModelKey(1, 'x', '')).not.toBe(sessionKey(1, 'x'));
  });
});
