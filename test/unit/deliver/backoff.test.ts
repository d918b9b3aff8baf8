import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BACKOFF_BASE_MILLIS,
  BACKOFF_CAP_MILLIS,
  backoffKey,
  backoffMillis,
  backoffPath,
  backoffUntil,
  backoffVerdict,
  nextBackoff,
  readBackoff,
  writeBackoff,
} from '../../../src/client/deliver/backoff';

const T0 = new Date('2026-05-11T03:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('backoff schedule', () => {
  it('doubles from the base with each failure in a row, up to the cap', () => {
    expect([1, 2, 3, 4].map(backoffMillis)).toEqual([15_000, 30_000, 60_000, 120_000]);
    expect(backoffMillis(50)).toBe(BACKOFF_CAP_MILLIS);
    expect(backoffMillis(0)).toBe(BACKOFF_BASE_MILLIS);
  });

  it('network errors, 5xx and a wrong endpoint or token count; a success forgets; the rest leaves it alone', () => {
    for (const b of ['unreachable', 'server-busy', 'unexpected-answer', 'token-revoked', 'unauthorized'] as const) {
      expect(backoffVerdict(b, 0)).toBe('failure');
    }
    for (const b of ['deadline', 'clock-skew', 'registration-failed', 'forbidden', 'locked', 'error'] as const) expect(backoffVerdict(b, 0)).toBe('neutral');
    expect(backoffVerdict(null, 0)).toBe('success');
    expect(backoffVerdict('server-busy', 3)).toBe('success');
  });

  it('per endpoint: one failing endpoint does not hold back another; success resets', () => {
    let table = nextBackoff({}, 'a', 'failure', T0);
    table = nextBackoff(table, 'a', 'failure', at(15_000));
    table = nextBackoff(table, 'b', 'failure', T0);
    expect(table.a).toEqual({ failures: 2, notBefore: '2026-05-11T03:00:45Z' });
    expect(backoffUntil(table, 'a', at(44_000))).toMatchObject({ failures: 2 });
    expect(backoffUntil(table, 'a', at(45_000))).toBeNull();
    expect(backoffUntil(table, 'b', at(15_000))).toBeNull();
    expect(backoffUntil(table, 'c', T0)).toBeNull();
    table = nextBackoff(table, 'a', 'success', at(50_000));
    expect(table.a).toBeUndefined();
    expect(nextBackoff(table, 'b', 'neutral', T0)).toBe(table);
  });

  it('a clock set back never parks delivery beyond the cap', () => {
    const table = { a: { failures: 3, notBefore: '2026-05-12T03:00:00Z' } };
    expect(backoffUntil(table, 'a', T0)?.until).toEqual(at(BACKOFF_CAP_MILLIS));
  });

  it('the key names the endpoint and a short hash of the token, never the token', () => {
    const key = backoffKey('https://usage.example.org/report', 'RT-secret');
    expect(key).toMatch(/^https:\/\/usage\.example\.org\/report [0-9a-f]{12}$/);
    expect(key).not.toContain('RT-secret');
    expect(backoffKey('https://usage.example.org/report', 'other')).not.toBe(key);
  });

  it('persists; a damaged file reads as no backoff', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccflux-backoff-'));
    try {
      const table = nextBackoff({}, 'a', 'failure', T0);
      await writeBackoff({ dir }, table);
      expect(await readBackoff({ dir })).toEqual(table);
      for (const text of ['{', '[]', '{"a":{"failures":"x"}}', '{"a":null}']) {
        await writeFile(backoffPath({ dir }), text);
        expect(await readBackoff({ dir })).toEqual({});
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
