import { describe, expect, it } from 'vitest';
import { parseTimestamp, timestampMillis } from '../../../src/protocol/wire';
import { mulberry32 } from '../../helpers/gen-transcript';

/** What timestampMillis must answer for every value: parseTimestamp's time. */
const slow = (value: string) => parseTimestamp(value)?.getTime() ?? null;

describe('timestampMillis', () => {
  it('answers as parseTimestamp for the canonical form, on the day parsed last and on others', () => {
    const values = [
      '2026-05-11T04:00:00.000Z',
      '2026-05-11T04:00:00.001Z',
      '2026-05-11T23:59:59.999Z',
      '2026-05-11T00:00:00.000Z',
      '2026-05-12T00:00:00.000Z',
      '2026-05-11T12:34:56.789Z',
      '2028-02-29T10:00:00.000Z',
      '2024-12-31T23:59:59.999Z',
    ];
    for (const v of values) expect(timestampMillis(v), v).toBe(slow(v));
    // The same values again: now mostly on a day seen last.
    for (const v of values) expect(timestampMillis(v), v).toBe(slow(v));
  });

  it('leaves what is not a valid time of day to parseTimestamp, also on the day parsed last', () => {
    const day = '2026-05-11T';
    expect(timestampMillis(`${day}04:00:00.000Z`)).toBe(slow(`${day}04:00:00.000Z`));
    const odd = [
      '24:00:00.000Z',
      '23:60:00.000Z',
      '23:59:60.000Z',
      '2a:00:00.000Z',
      '04:00:00,000Z',
      '04-00:00.000Z',
      '04:00:00.0a0Z',
      '04:00:00.000z',
      '04:00:00.000+',
      '04:00:00.00Z',
      '04:00:00Z',
      '04:00:00.0000Z',
      '04:00:00.000+01:00',
      '99:99:99.999Z',
      '-1:00:00.000Z',
      ' 4:00:00.000Z',
    ];
    for (const t of odd) expect(timestampMillis(day + t), t).toBe(slow(day + t));
    for (const v of ['2026-02-30T04:00:00.000Z', '2026-13-01T04:00:00.000Z', '', 'not a time', '2026-05-11T04:00:00.000Z\n']) {
      expect(timestampMillis(v), v).toBe(slow(v));
    }
  });

  it('agrees with parseTimestamp on random values near the canonical form (seeded)', () => {
    const rnd = mulberry32(20261202);
    const pick = (chars: string) => chars[Math.floor(rnd() * chars.length)] as string;
    const valid = ['2026-05-11T04:00:00.000Z', '2026-05-11T23:59:59.999Z', '2026-01-31T13:07:42.512Z', '2025-12-31T00:00:00.000Z'];
    for (let n = 0; n < 20_000; n++) {
      const base = valid[Math.floor(rnd() * valid.length)] as string;
      const chars = [...base];
      // Mostly one or two changed characters of the time; sometimes the day.
      const changes = Math.floor(rnd() * 3);
      for (let c = 0; c < changes; c++) {
        const at = rnd() < 0.8 ? 11 + Math.floor(rnd() * 13) : Math.floor(rnd() * 11);
        chars[at] = pick('0123456789:.-TZz+ 9');
      }
      const v = chars.join('');
      expect(timestampMillis(v), v).toBe(slow(v));
    }
  });
});
