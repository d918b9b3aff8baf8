import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../src/ratelimit';
import { Clock } from './support';

describe('RateLimiter', () => {
  it('allows the limit per minute, then refuses with Retry-After', () => {
    const clock = new Clock(Date.parse('2026-05-11T03:00:00.000Z'));
    const limiter = new RateLimiter({ limitPerMinute: 3, now: clock.now });
    expect([1, 2, 3].map(() => limiter.hit('a').allowed)).toEqual([true, true, true]);
    const refused = limiter.hit('a');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSecs).toBe(60);
    // Another key has its own budget.
    expect(limiter.hit('b').allowed).toBe(true);
  });

  it('slides: the previous minute weighs less as time passes', () => {
    const clock = new Clock(Date.parse('2026-05-11T03:00:00.000Z'));
    const limiter = new RateLimiter({ limitPerMinute: 4, now: clock.now });
    for (let i = 0; i < 4; i++) expect(limiter.hit('a').allowed).toBe(true);
    clock.advance(60_000); // new window: previous count 4 weighs fully
    expect(limiter.hit('a').allowed).toBe(false);
    clock.advance(30_000); // half way: 4 * 0.5 = 2 → two more allowed
    expect(limiter.hit('a').allowed).toBe(true);
    expect(limiter.hit('a').allowed).toBe(true);
    expect(limiter.hit('a').allowed).toBe(false);
    clock.advance(120_000); // two windows later: everything forgotten
    for (let i = 0; i < 4; i++) expect(limiter.hit('a').allowed).toBe(true);
  });

  it('does not count refused requests', () => {
    const clock = new Clock();
    const limiter = new RateLimiter({ limitPerMinute: 1, now: clock.now });
    expect(limiter.hit('a').allowed).toBe(true);
    for (let i = 0; i < 100; i++) expect(limiter.hit('a').allowed).toBe(false);
    clock.advance(120_000);
    expect(limiter.hit('a').allowed).toBe(true);
  });

  it('keeps memory bounded when keys are sprayed, evicting the least recently used', () => {
    const clock = new Clock();
    const limiter = new RateLimiter({ limitPerMinute: 1, now: clock.now, maxEntries: 1000 });
    expect(limiter.hit('busy').allowed).toBe(true);
    for (let i = 0; i < 50_000; i++) {
      limiter.hit(`random-${i}`);
      if (i % 500 === 0) expect(limiter.hit('busy').allowed).toBe(false); // stays recent, keeps its count
    }
    expect(limiter.size).toBeLessThanOrEqual(1000);
  });
});
