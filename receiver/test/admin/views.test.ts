import { describe, expect, it } from 'vitest';
import { MAIN_WINDOW_USERS, fillDays } from '../../src/admin/queries';
import { axisMax, dailyChart } from '../../src/admin/views/chart';
import { WINDOW_MILLIS, computeWindows } from '../../src/admin/windows';
import { ADMIN_TOKEN, type Harness, addReport, seedUsage, startAdmin, usage } from './harness';

const H = 3600 * 1000;
const T0 = Date.parse('2026-05-11T08:00:00Z');

describe('5-hour windows (pure)', () => {
  it('opens a window at the hour of the first turn and a new one after five hours', async () => {
    const events = [
      { user: 'a', atMillis: T0 + 0.5 * H, turnKey: 's/0', tokens: 100 },
      { user: 'a', atMillis: T0 + 4.9 * H, turnKey: 's/1', tokens: 50 },
      { user: 'a', atMillis: T0 + 4.9 * H, turnKey: 's/1', tokens: 5 }, // second model, same turn
      { user: 'a', atMillis: T0 + 5 * H, turnKey: 's/2', tokens: 500 }, // window ended exactly at 13:00
      { user: 'b', atMillis: T0, turnKey: 't/0', tokens: 10 },
      { user: 'b', atMillis: Number.NaN, turnKey: 't/1', tokens: 10_000 },
    ];
    const [a, b] = computeWindows(events, T0 + 6 * H);
    expect(a).toMatchObject({ user: 'a', windows: 2, peak: { startMillis: T0 + 5 * H, tokens: 500, turns: 1 } });
    expect(a!.current).toEqual({ startMillis: T0 + 5 * H, endMillis: T0 + 5 * H + WINDOW_MILLIS, tokens: 500, turns: 1 });
    expect(b).toMatchObject({ user: 'b', windows: 1, peak: { tokens: 10 }, current: null });
  });

  it('reports the earlier window as peak when it was bigger, and turns per distinct turn', async () => {
    const events = [
      { user: 'a', atMillis: T0, turnKey: 's/0', tokens: 900 },
      { user: 'a', atMillis: T0 + H, turnKey: 's/0', tokens: 100 },
      { user: 'a', atMillis: T0 + 2 * H, turnKey: 's/1', tokens: 1 },
      { user: 'a', atMillis: T0 + 24 * H, turnKey: 's/2', tokens: 3 },
    ];
    const [a] = computeWindows(events, T0 + 24.5 * H);
    expect(a!.peak).toEqual({ startMillis: T0, endMillis: T0 + 5 * H, tokens: 1001, turns: 2 });
    expect(a!.current?.tokens).toBe(3);
  });
});

describe('charts (pure)', () => {
  it('rounds the axis up to 1, 2 or 5 times a power of ten', async () => {
    expect([0, 1, 3, 12, 180, 2001, 7_000_000].map(axisMax)).toEqual([1, 1, 5, 20, 200, 5000, 10_000_000]);
  });

  it('draws one bar group per day with a tooltip, and fills missing days with zeros', async () => {
    const days = fillDays([{ day: '2026-05-10', input: 10, output: 5, cacheRead: 100, cacheWrite: 0 }], Date.parse('2026-05-11T12:00:00Z'));
    expect(days).toHaveLength(30);
    expect(days[0]!.day).toBe('2026-04-12');
    expect(days[29]!.day).toBe('2026-05-11');
    const svg = dailyChart(days);
    expect(svg.match(/<g><title>/g)).toHaveLength(30);
    expect(svg).toContain('<title>2026-05-10: input 10, output 5, cache write 0, cache read 100</title>');
    expect(svg).toContain('115 tokens over 30 days');
  });
});

describe('dashboard figures', () => {
  let h: Harness;
  it('sums usage by user, by model and per day over the last 30 days', async () => {
    h = await startAdmin();
    try {
      const t = await seedUsage(h.store, 'ann@example.org', { models: { opus: usage(100, 10, 1000, 50), sonnet: usage(20, 2) } });
      await addReport(h.store, t, { turn_index: 1, timestamp_utc: '2026-05-11T11:00:00Z', models: { opus: usage(1, 1, 1, 1) } });
      await addReport(h.store, t, { session_id: 'old', timestamp_utc: '2026-03-01T00:00:00Z', models: { opus: usage(1e6, 0) } });
      await seedUsage(h.store, 'bob@example.org', { session_id: 'b1', models: { sonnet: usage(5, 5) } });
      const page = (await h.get('/admin/', { headers: { authorization: 'Bearer a3f1c9e07b5d4e2f8a6c1b0d9e7f5a3c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f' } })).body;
      const tile = (label: string) => new RegExp(`<b>([^<]*)(?:<small>[^<]*</small>)?</b><span>${label}</span>`).exec(page)?.[1];
      expect(tile('sessions')).toBe('2');
      expect(tile('turns')).toBe('3');
      expect(tile('input tokens')).toBe('126');
      expect(tile('output tokens')).toBe('18');
      expect(tile('cache read tokens')).toBe('1,001');
      expect(tile('cache write tokens')).toBe('51');
      expect(tile('cache hit rate')).toBe(`${((1001 / (126 + 1001 + 51)) * 100).toFixed(1)}%`);
      expect(tile('users reporting')).toBe('2');
      // By model: opus (ann only) first, old March usage excluded.
      expect(page).toMatch(/>opus<\/a><\/span><\/td><td><span class="unpriced">unpriced<\/span><\/td><td class="n">1<\/td><td class="n">1<\/td><td class="n">2<\/td><td class="n">101<\/td>/);
      expect(page).toMatch(/>ann@example.org<\/a><\/td><td><\/td><td class="n">1<\/td><td class="n">2<\/td><td class="n">121<\/td>/);
      // The events list (its own page) follows the range too: the March turn appears with 90 days.
      const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const events = (await h.get('/admin/?view=events', { headers: bearer })).body;
      expect(events).toContain('<section id="events">');
      expect(events).not.toContain('<td class="n">1,000,000</td>');
      const wide = (await h.get('/admin/?view=events&range=90d', { headers: bearer })).body;
      expect(wide).toContain('<td class="n">1,000,000</td>');
      // Ann's peak 5-hour window holds both of today's turns.
      const windows = (await h.get('/admin/?view=windows', { headers: bearer })).body;
      expect(windows).toMatch(/>ann@example.org<\/a><\/td><td class="n">1,186<\/td><td class="n">2<\/td><td>2026-05-11 10:00Z<\/td>/);
    } finally {
      await h.close();
    }
  });
});

describe('the 5-hour windows page', () => {
  it('shows the users with the most tokens in the last 7 days, chosen by SQL', async () => {
    const h = await startAdmin();
    try {
      // 101 users inside the last 7 days (u100 the heaviest, u000 the lightest) and one far heavier user 20 days ago.
      for (let i = 0; i <= MAIN_WINDOW_USERS; i++) {
        const n = String(i).padStart(3, '0');
        await seedUsage(h.store, `u${n}@example.org`, { session_id: `s${n}`, timestamp_utc: '2026-05-11T09:00:00Z', models: { opus: usage(1000 + i, 0) } });
      }
      await seedUsage(h.store, 'old@example.org', { session_id: 'old', timestamp_utc: '2026-04-21T09:00:00Z', models: { opus: usage(1e9, 0) } });
      const get = async (q: string) => (await h.get(`/admin/?view=windows${q}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;
      const page = await get('');
      expect(page).toContain('u100@example.org');
      expect(page).toContain(`Rows 1–50 of ${MAIN_WINDOW_USERS}`);
      expect(await get('&windows.q=u001')).toContain('Rows 1–1 of 1');
      expect(await get('&windows.q=u000')).toContain('No rows match the search.');
      expect(await get('&windows.q=old')).toContain('No rows match the search.');
    } finally {
      await h.close();
    }
  });
});
