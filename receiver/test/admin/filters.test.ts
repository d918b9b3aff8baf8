import { describe, expect, it } from 'vitest';
import { formatInZone, hrefWith, parseFilter, parseTable } from '../../src/admin/filters';
import { dailyChart } from '../../src/admin/views/chart';
import { ADMIN_TOKEN, type Harness, START, seedUsage, startAdmin, usage } from './harness';

const NOW = Date.parse('2026-05-11T12:00:00Z');
const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('filters from the URL (pure)', () => {
  it('reads presets, a custom range and the filters, and falls back with a message', () => {
    expect(parseFilter(new URLSearchParams(''), NOW)).toMatchObject({ range: '30d', fromIso: '2026-04-11T12:00:00Z', toIso: '2026-05-11T12:15:00Z', tz: 'UTC', problems: [] });
    expect(parseFilter(new URLSearchParams('range=24h'), NOW).fromIso).toBe('2026-05-10T12:00:00Z');
    expect(parseFilter(new URLSearchParams('range=7d'), NOW).fromDay).toBe('2026-05-04');
    expect(parseFilter(new URLSearchParams('range=90d'), NOW).fromIso).toBe('2026-02-10T12:00:00Z');
    const custom = parseFilter(new URLSearchParams('range=custom&from=2026-03-01&to=2026-03-31&user=Ann@Example.org&division=R%26D&model=opus&tz=Europe/Paris'), NOW);
    expect(custom).toMatchObject({ range: 'custom', fromIso: '2026-03-01T00:00:00Z', toIso: '2026-04-01T00:00:00Z', fromDay: '2026-03-01', toDay: '2026-03-31' });
    expect(custom).toMatchObject({ user: 'ann@example.org', division: 'R&D', model: 'opus', tz: 'Europe/Paris' });
    const bad = parseFilter(new URLSearchParams('range=custom&from=2026-03-31&to=2026-03-01&tz=Mars/Olympus'), NOW);
    expect(bad.range).toBe('30d');
    expect(bad.tz).toBe('UTC');
    expect(bad.problems).toHaveLength(2);
    expect(parseFilter(new URLSearchParams('range=custom&from=2020-01-01&to=2026-01-01'), NOW).problems[0]).toContain('at most');
  });

  it('reads table state and rewrites one parameter keeping the rest', () => {
    const p = new URLSearchParams('range=7d&byuser.sort=cost&byuser.dir=asc&byuser.page=3&byuser.q=Ann');
    expect(parseTable(p, 'byuser', ['cost', 'user'])).toEqual({ q: 'ann', sort: 'cost', dir: 'asc', page: 3 });
    expect(parseTable(p, 'byuser', ['user']).sort).toBeNull();
    expect(parseTable(new URLSearchParams('x.page=-2'), 'x', []).page).toBe(1);
    expect(hrefWith('/admin/', p, { 'byuser.page': null, model: 'a b' })).toBe('/admin/?range=7d&byuser.sort=cost&byuser.dir=asc&byuser.q=Ann&model=a+b');
  });

  it('shows times in the display zone', () => {
    expect(formatInZone('2026-05-11T10:00:00Z', 'UTC')).toBe('2026-05-11 10:00Z');
    expect(formatInZone('2026-05-11T10:00:00Z', 'Europe/Paris')).toBe('2026-05-11 12:00 GMT+2');
    expect(formatInZone('2026-01-11T10:00:00Z', 'America/New_York')).toBe('2026-01-11 05:00 EST');
  });

  it('fits big numbers in their tiles, exact figure as the tooltip', async () => {
    const { tileNum } = await import('../../src/admin/views/format');
    expect([99_999_999, 126_819_491, 4_200_000_000].map(tileNum)).toEqual(['99,999,999', '127M', '4.2B']);
  });

  it('draws an empty chart with a whole-number axis and says so', () => {
    const svg = dailyChart([{ day: '2026-05-11', input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }]);
    const labels = [...svg.matchAll(/text-anchor="end">([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(['0', '1', '2', '3', '4']);
    expect(svg).toContain('No usage in this range');
  });
});

describe('dashboard views over HTTP', () => {
  let h: Harness;
  const get = async (path: string) => (await h.get(path, { headers: bearer })).body;

  async function seed(): Promise<void> {
    h = await startAdmin();
    // Priced: claude-opus-5-5 (4 / 20 / 5 / 8 / 0.20 per MTok). 1M input + 100k output + 1M read + 200k write (as 5m)
    // = 4 + 2 + 0.2 + 1 = $7.20, an estimate (no split).
    await seedUsage(h.store, 'ann@example.org', { models: { 'claude-opus-5-5': usage(1_000_000, 100_000, 1_000_000, 200_000) } }, { division: 'Research' });
    // Fable 5.1 (10 / 50 / 12.5 / 20 / 0.25): 100k in + 10k out = 1 + 0.5 = $1.50
    await seedUsage(h.store, 'bob@example.org', { session_id: 'b1', models: { 'claude-fable-5-1': usage(100_000, 10_000) } }, { division: 'Sales' });
    // Unknown model: unpriced, never $0.
    await seedUsage(h.store, 'cyd@example.org', { session_id: 'c1', timestamp_utc: '2026-05-01T08:00:00Z', models: { 'mystery-model': usage(5, 5) } }, { division: 'Sales' });
    await h.store.createUser('dee@example.org', { division: 'Sales' });
  }

  it('prices each user, model and division, and marks estimates and unpriced models', async () => {
    await seed();
    try {
      const page = await get('/admin/');
      expect(page).toMatch(/<b>~\$8\.70 <span class="unpriced"[^>]*>\+ unpriced<\/span><\/b><span>cost at API list prices<\/span>/);
      expect(page).toMatch(/ann@example.org<\/a><\/td>.*?<td class="n">~\$7\.20<\/td>/s);
      expect(page).toMatch(/bob@example.org<\/a><\/td>.*?<td class="n">\$1\.50<\/td>/s);
      expect(page).toMatch(/mystery-model<\/a><\/span><\/td><td><span class="unpriced">unpriced<\/span>/);
      expect(page).toMatch(/cyd@example.org<\/a><\/td>(?:(?!<\/tr>).)*<span class="unpriced" title="no price for this model">unpriced<\/span>/s);
      // Sales: bob $1.50 + cyd unpriced, 3 seats, 2 reporting.
      expect(page).toMatch(/>Sales<\/a><\/td><td class="n">3<\/td><td class="n">2<\/td>/);
      // Value per seat this month: $8.70 over 4 active seats.
      expect(page).toMatch(/<b>~\$2\.18 <span[^>]*>\+ unpriced<\/span><\/b><span>API-equivalent value per seat, 2026-05 so far<\/span>/);
      // Inactive seats (their own page): dee never reported; cyd's last turn was 10 days ago (inside 30, outside 7).
      expect(page).not.toContain('<section id="inactive">');
      const seats = await get('/admin/?view=inactive');
      expect(seats).toMatch(/<section id="inactive">.*dee@example.org.*<\/section>/s);
      expect(seats).not.toMatch(/<section id="inactive">(?:(?!<\/section>).)*cyd@example.org/s);
      // An old link (no view) still lands on the table it names.
      const week = await get('/admin/?inactive=7');
      expect(week).toMatch(/<section id="inactive">(?:(?!<\/section>).)*cyd@example.org/s);
    } finally {
      await h.close();
    }
  });

  it('prices schema-v2 rows exactly from the 5m/1h split and web searches', async () => {
    h = await startAdmin();
    try {
      // Opus 5.5: 1M 5m writes ($5) + 1M 1h writes ($8) + 100 searches ($1) = $14, exact (no "~").
      await seedUsage(h.store, 'v2@example.org', {
        schema_version: 2,
        models: { 'claude-opus-5-5': { ...usage(0, 0, 0, 2_000_000), cache_write_5m_tokens: 1_000_000, cache_write_1h_tokens: 1_000_000, web_search_requests: 100 } },
      });
      // A v1 row of the same user: 1M writes priced as 5m ($5), an estimate.
      await seedUsage(h.store, 'v1@example.org', { session_id: 'old', models: { 'claude-opus-5-5': usage(0, 0, 0, 1_000_000) } });
      const page = await get('/admin/');
      expect(page).toMatch(/v2@example.org<\/a><\/td>(?:(?!<\/tr>).)*<td class="n">\$14\.00<\/td>/s);
      expect(page).toMatch(/v1@example.org<\/a><\/td>(?:(?!<\/tr>).)*<td class="n">~\$5\.00<\/td>/s);
      expect(page).toMatch(/<b>~\$19\.00<\/b><span>cost at API list prices/);
    } finally {
      await h.close();
    }
  });

  it('filters by range, user, division and model through the URL', async () => {
    await seed();
    try {
      const day = await get('/admin/?range=24h');
      expect(day).not.toContain('mystery-model</a>');
      expect(day).toContain('<b>24 h</b>');
      const custom = await get('/admin/?range=custom&from=2026-05-01&to=2026-05-01');
      expect(custom).toContain('mystery-model</a>');
      expect(custom.slice(custom.indexOf('id="byuser"'), custom.indexOf('id="bymodel"'))).not.toContain('ann@example.org');
      const sales = await get('/admin/?division=Sales');
      expect(sales).toMatch(/<option value="Sales" selected>/);
      expect(sales).toMatch(/<b>\$1\.50 <span/);
      const model = await get('/admin/?model=claude-fable-5-1');
      expect(model).toMatch(/<b>\$1\.50<\/b><span>cost at API list prices/);
      const user = await get('/admin/?user=ANN@example.org');
      expect(user).toMatch(/<b>~\$7\.20<\/b><span>cost at API list prices/);
      expect(user).toContain('value="ann@example.org"');
    } finally {
      await h.close();
    }
  });

  it('pages, sorts and searches a table of 120 users without JavaScript', async () => {
    h = await startAdmin();
    try {
      for (let i = 0; i < 120; i++) {
        const n = String(i).padStart(3, '0');
        await seedUsage(h.store, `u${n}@example.org`, { session_id: `s${n}`, models: { 'claude-sonnet-5': usage(1000 + i, 0) } });
      }
      // The overview lists the top users and links to the full table, which pages.
      const overview = await get('/admin/');
      expect(overview).toContain('Top 10 users by cost');
      expect(overview).not.toContain('u109@example.org');
      expect(overview).toContain('href="/admin/?view=usage">All 120 users by usage →</a>');
      const first = await get('/admin/?view=usage');
      expect(first).toContain('Rows 1–50 of 120');
      // Default order: cost, highest first.
      expect(first.indexOf('u119@example.org')).toBeLessThan(first.indexOf('u118@example.org'));
      const third = await get('/admin/?byuser.page=3');
      expect(third).toContain('Rows 101–120 of 120');
      const asc = await get('/admin/?byuser.sort=user&byuser.dir=asc');
      expect(asc).toMatch(/aria-sort="ascending"/);
      const byUser = asc.slice(asc.indexOf('id="byuser"'), asc.indexOf('id="bymodel"'));
      expect(byUser.indexOf('u000@')).toBeLessThan(byUser.indexOf('u001@'));
      expect(byUser).not.toContain('u050@');
      const next = /<a rel="next" href="([^"]+)"/.exec(byUser)![1]!.replaceAll('&amp;', '&');
      expect(next).toBe('/admin/?byuser.sort=user&byuser.dir=asc&byuser.page=2#byuser');
      const search = await get('/admin/?byuser.q=U07');
      const found = search.slice(search.indexOf('id="byuser"'), search.indexOf('id="bymodel"'));
      expect(found).toContain('Rows 1–10 of 10');
      expect(found).toContain('name="byuser.q" value="u07"');
      expect(first.length).toBeLessThan(300 * 1024);
    } finally {
      await h.close();
    }
  });

  it("shows a user's page: models, sessions, devices, trend and windows", async () => {
    await seed();
    try {
      const page = await get('/admin/user?email=ann@example.org&tz=Europe/Paris');
      expect(page).toContain('<h2>ann@example.org</h2>');
      expect(page).toContain('Division Research');
      expect(page).toContain('claude-opus-5-5</a>');
      expect(page).toContain('<span class="mono">sess-1</span>');
      expect(page).toMatch(/<section id="uwindows">.*2026-05-11 12:00 GMT\+2/s);
      expect(page).toContain('<section id="trend">');
      expect(page).not.toContain('bob@example.org');
      expect((await h.get('/admin/user?email=ann@example.org')).status).toBe(303);
    } finally {
      await h.close();
    }
  });

  it('says how long to wait on 429 and links back from an expired form', async () => {
    h = await startAdmin({ limits: { maxLoginFailures: 1 } });
    try {
      await h.post('/admin/login', { token: 'wrong-wrong-wrong-wrong' });
      const limited = await h.post('/admin/login', { token: ADMIN_TOKEN });
      expect(limited.status).toBe(429);
      expect(limited.body).toContain('Try again in 15 minutes.');
      expect(limited.body).toContain('action="/admin/login"');
      h.advance(15 * 60 * 1000 - 30_000);
      expect((await h.post('/admin/login', { token: ADMIN_TOKEN })).body).toContain('Try again in 30 seconds.');
      // The counters are 15-minute windows with the previous one weighted (docs/deploy.md): at the
      // boundary the old failure still weighs fully, a moment later it no longer fills the budget.
      h.advance(30_001);
      const { cookie } = await h.login();
      const expired = await h.post('/admin/users', { email: 'x@example.org', csrf_token: 'stale' }, { cookie });
      expect(expired.status).toBe(403);
      expect(expired.body).toContain('A session ends after 60 minutes without use');
      expect(expired.body).toContain('<a href="/admin/">Back to the dashboard</a>');
      void START;
    } finally {
      await h.close();
    }
  });
});
