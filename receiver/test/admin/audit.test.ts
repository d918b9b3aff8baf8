import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, routeName } from '../../src/log';
import { parseCsv } from '../../src/csv';
import { ADMIN_TOKEN, type Harness, fakePublicKey, seedUsage, startAdmin, usage } from './harness';

const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('audit log', () => {
  it('records every admin action with time, source address and what changed, and shows and exports it', async () => {
    const log = capture();
    h = await startAdmin({ logger: createLogger('info', log.stream) });
    await h.post('/admin/login', { token: 'wrong-wrong-wrong-wrong' });
    await h.get('/admin/', { headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    const { cookie, csrf } = await h.login();
    await h.post('/admin/users', { email: 'Ana@example.org', division: 'Research', days: '30', csrf_token: csrf }, { cookie });
    await h.post('/admin/users/reissue', { email: 'ana@example.org', csrf_token: csrf }, { cookie });
    const { refreshToken } = await h.store.createUser('bob@example.org');
    await h.store.registerKey((await h.store.authenticateRefreshToken(refreshToken))!, fakePublicKey('bob'), 'bob-laptop');
    await h.post('/admin/keys/revoke', { public_key: fakePublicKey('bob'), csrf_token: csrf, confirm: 'yes' }, { cookie });
    await h.post('/admin/users/revoke', { email: 'bob@example.org', csrf_token: csrf }, { cookie }); // asks first: not done
    await h.post('/admin/users/revoke', { email: 'bob@example.org', csrf_token: csrf, confirm: 'yes' }, { cookie });

    const rows = await h.store.listAudit({ limit: 100, offset: 0 });
    expect(rows.map((r) => r.action).reverse()).toEqual(['login.failure', 'login.failure', 'login.success', 'user.provision', 'user.reissue', 'key.revoke', 'user.revoke']);
    expect(rows.every((r) => r.source === '127.0.0.1' && r.at === '2026-05-11T12:00:00.000Z')).toBe(true);
    const provision = rows.find((r) => r.action === 'user.provision')!;
    expect(provision).toMatchObject({ actor: 'session', target: 'ana@example.org' });
    expect(JSON.parse(provision.detail)).toEqual({ division: 'Research', days: 30 });
    expect(JSON.parse(rows.find((r) => r.action === 'key.revoke')!.detail)).toEqual({ registrations: 1 });
    expect(JSON.parse(rows[rows.length - 2]!.detail)).toEqual({ via: 'bearer' });

    // Logout is recorded too; nothing secret is stored or logged.
    await h.post('/admin/logout', { csrf_token: csrf }, { cookie });
    const all = JSON.stringify(await h.store.listAudit({ limit: 100, offset: 0 })) + JSON.stringify(log.lines());
    for (const secret of [ADMIN_TOKEN, csrf, cookie.split('=')[1]!, refreshToken, 'wrong-wrong-wrong-wrong']) expect(all).not.toContain(secret);
    expect(log.lines().filter((l) => l.msg === 'admin action').map((l) => l.action)).toContain('logout');

    expect((await h.get('/admin/', { headers: bearer })).body).not.toContain('<section id="audit">');
    const page = (await h.get('/admin/?view=audit', { headers: bearer })).body;
    expect(page).toMatch(/<section id="audit">.*<td class="mono">user\.provision<\/td><td>session<\/td><td class="mono">127\.0\.0\.1<\/td><td class="mono">ana@example\.org<\/td><td>division: Research, days: 30<\/td>/s);
    const csv = await h.get('/admin/export/audit.csv', { headers: bearer });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const parsed = parseCsv(csv.body);
    expect(parsed[0]).toEqual(['id', 'at', 'actor', 'source', 'action', 'target', 'detail']);
    expect(parsed.slice(1).map((r) => r[4])).toContain('logout');
  });
});

describe('request log', () => {
  it('names fixed routes only, never a query string, token or body', () => {
    expect(routeName('/report')).toBe('/report');
    expect(routeName('/admin/')).toBe('/admin/');
    expect(routeName('/admin/export/usage.csv')).toBe('/admin/export/usage.csv');
    expect(routeName('/admin/../../etc/passwd')).toBe('/admin/*');
    expect(routeName('/wp-login.php')).toBe('other');
    expect(routeName(null)).toBe('invalid');
  });
});

describe('exports', () => {
  it('streams usage per user × model × day with cost, and raw rows, as CSV and JSON for the range and filters', async () => {
    h = await startAdmin();
    await seedUsage(h.store, 'ann@example.org', { models: { 'claude-opus-5-5': usage(1_000_000, 100_000, 1_000_000, 200_000), 'mystery-model': usage(5, 5) } }, { division: 'Research' });
    await seedUsage(h.store, 'bob@example.org', { session_id: 'b1', timestamp_utc: '2026-05-09T10:00:00Z', models: { 'claude-fable-5-1': usage(100_000, 10_000) } }, { division: 'Sales' });
    const csv = await h.get('/admin/export/usage.csv?range=7d', { headers: bearer });
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="ccflux-usage-2026-05-04_2026-05-11.csv"');
    const rows = parseCsv(csv.body);
    expect(rows[0]!.slice(0, 5)).toEqual(['day', 'user_email', 'division', 'model', 'price_family']);
    const col = (name: string) => rows[0]!.indexOf(name);
    const byModel = Object.fromEntries(rows.slice(1).map((r) => [r[col('model')]!, r]));
    expect(byModel['claude-opus-5-5']![col('cost_usd')]).toBe('7.2');
    expect(byModel['claude-opus-5-5']![col('cost_estimated')]).toBe('true');
    expect(byModel['claude-opus-5-5']![col('cache_write_5m_tokens')]).toBe('');
    expect(byModel['claude-fable-5-1']).toEqual(expect.arrayContaining(['2026-05-09', 'bob@example.org', 'Sales', 'Claude Fable 5.1', '1.5', 'false']));
    expect(byModel['mystery-model']![col('cost_usd')]).toBe('');
    expect(rows).toHaveLength(4);

    const json = await h.get('/admin/export/usage.json?range=7d&division=Sales', { headers: bearer });
    expect(json.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const list = JSON.parse(json.body) as Record<string, unknown>[];
    expect(list).toEqual([expect.objectContaining({ day: '2026-05-09', user_email: 'bob@example.org', cost_usd: 1.5, cost_estimated: false, cache_write_5m_tokens: 0 })]);

    const events = JSON.parse((await h.get('/admin/export/events.json?range=custom&from=2026-05-11&to=2026-05-11', { headers: bearer })).body) as Record<string, unknown>[];
    expect(events.map((e) => e.model).sort()).toEqual(['claude-opus-5-5', 'mystery-model']);
    expect(events[0]).toMatchObject({ user_email: 'ann@example.org', division: 'Research', signed: true });
    expect(JSON.parse((await h.get('/admin/export/events.json?user=nobody@example.org', { headers: bearer })).body)).toEqual([]);
    expect((await h.get('/admin/export/usage.csv')).status).toBe(303);
  });

  it('pages raw rows by id so a big export never holds the database', async () => {
    h = await startAdmin();
    const { refreshToken } = await h.store.createUser('big@example.org');
    const auth = (await h.store.authenticateRefreshToken(refreshToken))!;
    // 4,500 raw rows from 225 reports of 20 models each: one store call per report, so the test
    // does not spend a minute in round trips on a loaded PostgreSQL.
    const models = Object.fromEntries(Array.from({ length: 20 }, (_, m) => [`claude-sonnet-5-${m}`, usage(1, 1)]));
    for (let i = 0; i < 225; i++) {
      await h.store.insertReport(
        auth,
        { schema_version: 1, session_id: `s${Math.floor(i / 100)}`, user_email: 'big@example.org', turn_index: i % 100, timestamp_utc: '2026-05-11T10:00:00Z', session_start_utc: '2026-05-11T09:00:00Z', models, plugin_version: '0.1.0' },
        { deviceId: 'd', signed: false },
      );
    }
    const csv = await h.get('/admin/export/events.csv', { headers: bearer });
    const rows = parseCsv(csv.body);
    expect(rows).toHaveLength(4501);
    expect(new Set(rows.slice(1).map((r) => r[0])).size).toBe(4500);
  });
});

describe('budgets on the dashboard', () => {
  it('sets, shows burn and forecast, replaces and deletes a budget, each change audited', async () => {
    h = await startAdmin();
    // Opus 5.5: 1M input = $4 this month (11 May 12:00 = 10.5 of 31 days).
    await seedUsage(h.store, 'ann@example.org', { models: { 'claude-opus-5-5': usage(1_000_000, 0) } }, { division: 'Research' });
    const { cookie, csrf } = await h.login();
    const back = '/admin/?view=budgets';
    const bad = await h.post('/admin/budgets', { scope: 'division', subject: '', unit: 'usd', limit: '5', csrf_token: csrf, back }, { cookie });
    expect(bad.status).toBe(303);
    // Back to the page the form came from, with the flash.
    expect(bad.headers.get('location')).toBe(back);
    expect((await h.get(back, { cookie })).body).toContain('A division budget needs the division name.');
    await h.post('/admin/budgets', { scope: 'division', subject: 'Research', unit: 'usd', limit: '5', csrf_token: csrf, back }, { cookie });
    let page = (await h.get(back, { cookie })).body;
    expect(page).toContain('name="back" value="/admin/?view=budgets"');
    expect(page).toContain('Budget saved: Research, 5 USD a month.');
    expect(page).toMatch(/<td>Division Research<\/td><td class="n">\$5\.00<\/td><td class="n">\$4\.00<\/td><td class="n">80\.0%<\/td>/);
    expect(page).toContain('<span class="budget-warning">warning</span>');
    expect(page).toMatch(/<td class="n">\$11\.8\d<\/td><td><span class="budget-warning">/); // forecast $4 / (10.5/31)
    await h.post('/admin/budgets', { scope: 'division', subject: 'Research', unit: 'usd', limit: '4', csrf_token: csrf }, { cookie });
    // The overview shows the burn too (no forms), linking to the budgets page.
    const overview = (await h.get('/admin/', { cookie })).body;
    expect(overview).toContain('<span class="budget-over">over</span>');
    expect(overview).not.toContain('action="/admin/budgets');
    expect(overview).toContain('<a href="/admin/?view=budgets">Budgets and alerts →</a>');
    page = (await h.get(back, { cookie })).body;
    expect(page).toContain('<span class="budget-over">over</span>');
    const id = /name="id" value="(\d+)"/.exec(page)![1]!;
    await h.post('/admin/budgets/delete', { id, csrf_token: csrf }, { cookie });
    expect((await h.get(back, { cookie })).body).toContain('No budgets set.');
    const actions = (await h.store.listAudit({ limit: 10, offset: 0 })).filter((r) => r.action.startsWith('budget.'));
    expect(actions.map((r) => [r.action, r.target, JSON.parse(r.detail)])).toEqual([
      ['budget.delete', 'division:Research', { unit: 'usd', monthly_limit: 4 }],
      ['budget.set', 'division:Research', { unit: 'usd', monthly_limit: 4, previous_unit: 'usd', previous_limit: 5 }],
      ['budget.set', 'division:Research', { unit: 'usd', monthly_limit: 5 }],
    ]);
  });
});
