import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_LIMITS, SessionStore } from '../../src/admin/auth';
import { ADMIN_TOKEN, type Harness, cookiePair, csrfOf, startAdmin } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function expectSecurityHeaders(headers: Headers): void {
  const csp = headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("form-action 'self'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).not.toContain('script-src');
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  expect(headers.get('referrer-policy')).toBe('no-referrer');
  expect(headers.get('x-frame-options')).toBe('DENY');
  expect(headers.get('cache-control')).toBe('no-store');
}

describe('admin auth', () => {
  it('answers 404 with a "disabled" page when ADMIN_TOKEN is unset', async () => {
    h = await startAdmin({ adminToken: undefined });
    for (const path of ['/admin/', '/admin/login']) {
      const res = await h.get(path);
      expect(res.status).toBe(404);
      expect(res.body).toContain('disabled');
    }
    const login = await h.post('/admin/login', { token: '' });
    expect(login.status).toBe(404);
    expect(login.cookies).toEqual([]);
  });

  it('redirects /admin to /admin/ and anonymous visitors to the login form', async () => {
    h = await startAdmin();
    const bare = await h.get('/admin?export');
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/admin/?export');
    const root = await h.get('/admin/');
    expect(root.status).toBe(303);
    expect(root.headers.get('location')).toBe('/admin/login');
    expectSecurityHeaders(root.headers);
    const form = await h.get('/admin/login');
    expect(form.status).toBe(200);
    expect(form.body).toContain('<form method="post" action="/admin/login">');
    expect(form.body).not.toContain(ADMIN_TOKEN);
    expectSecurityHeaders(form.headers);
    expect((await h.get('/admin/nope')).status).toBe(404);
    expect((await h.get('/admin/users')).status).toBe(405);
  });

  it('allows exactly the inline stylesheet through its CSP hash, and no script at all', async () => {
    h = await startAdmin();
    const page = await h.get('/admin/login');
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.body)![1]!;
    const hash = createHash('sha256').update(style, 'utf8').digest('base64');
    expect(page.headers.get('content-security-policy')).toContain(`style-src 'sha256-${hash}'`);
    expect(page.body).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
  });

  it('rejects a wrong token without a cookie and logs in with the right one', async () => {
    h = await startAdmin();
    const wrong = await h.post('/admin/login', { token: `${ADMIN_TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.cookies).toEqual([]);
    expect(wrong.body).toContain('Wrong admin token');
    const empty = await h.post('/admin/login', {});
    expect(empty.status).toBe(401);

    const ok = await h.post('/admin/login', { token: ADMIN_TOKEN });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/');
    expectSecurityHeaders(ok.headers);
    const page = await h.get('/admin/', { cookie: cookiePair(ok.cookies[0]!) });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Organisation, last 30 days');
    expectSecurityHeaders(page.headers);
  });

  it('sets HttpOnly; SameSite=Strict; Path=/admin and no Secure by default', async () => {
    h = await startAdmin();
    const res = await h.post('/admin/login', { token: ADMIN_TOKEN });
    expect(res.cookies).toHaveLength(1);
    const parts = res.cookies[0]!.split(';').map((p) => p.trim());
    expect(parts).toContain('HttpOnly');
    expect(parts).toContain('SameSite=Strict');
    expect(parts).toContain('Path=/admin');
    expect(parts.map((p) => p.toLowerCase())).not.toContain('secure');
  });

  it('adds ; Secure with COOKIE_SECURE, on login and on logout', async () => {
    h = await startAdmin({ cookieSecure: true });
    const res = await h.post('/admin/login', { token: ADMIN_TOKEN });
    const parts = res.cookies[0]!.split(';').map((p) => p.trim());
    expect(parts).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/admin', 'Secure']));
    const cookie = cookiePair(res.cookies[0]!);
    const csrf = csrfOf((await h.get('/admin/', { cookie })).body);
    const out = await h.post('/admin/logout', { csrf_token: csrf }, { cookie });
    expect(out.cookies[0]).toMatch(/Max-Age=0/);
    expect(out.cookies[0]).toMatch(/; Secure$/);
  });

  it('keeps the admin token out of the cookie and the CSRF token; both are random per session', async () => {
    h = await startAdmin();
    const a = await h.login();
    const b = await h.login();
    for (const s of [a, b]) {
      const value = s.cookie.split('=')[1]!;
      expect(value).not.toContain(ADMIN_TOKEN);
      expect(s.csrf).not.toContain(ADMIN_TOKEN);
      expect(ADMIN_TOKEN).not.toContain(value);
      expect(ADMIN_TOKEN).not.toContain(s.csrf);
      expect(s.csrf).not.toBe(value);
      expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    expect(a.cookie).not.toBe(b.cookie);
    expect(a.csrf).not.toBe(b.csrf);
    const page = await h.get('/admin/', { cookie: a.cookie });
    expect(page.body).not.toContain(ADMIN_TOKEN);
    expect(page.body).not.toContain(a.cookie.split('=')[1]!);
  });

  it('ignores unknown or forged session cookies', async () => {
    h = await startAdmin();
    const res = await h.get('/admin/', { cookie: `ccflux_admin=${ADMIN_TOKEN}` });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin/login');
  });

  it('logout ends the session server-side', async () => {
    h = await startAdmin();
    const { cookie, csrf } = await h.login();
    const out = await h.post('/admin/logout', { csrf_token: csrf }, { cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/admin/login');
    expect(out.cookies[0]).toMatch(/^ccflux_admin=; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=0/);
    // The old cookie value, replayed, no longer works.
    const after = await h.get('/admin/', { cookie });
    expect(after.status).toBe(303);
  });

  it('expires sessions after the idle timeout and the absolute lifetime', async () => {
    h = await startAdmin({ limits: { sessionIdleMillis: 60_000, sessionMaxMillis: 150_000 } });
    const { cookie } = await h.login();
    h.advance(59_000);
    expect((await h.get('/admin/', { cookie })).status).toBe(200);
    h.advance(59_000);
    expect((await h.get('/admin/', { cookie })).status).toBe(200);
    h.advance(40_000); // 158 s after login: past the absolute lifetime though never idle a minute
    expect((await h.get('/admin/', { cookie })).status).toBe(303);

    const second = await h.login();
    h.advance(61_000);
    expect((await h.get('/admin/', { cookie: second.cookie })).status).toBe(303);
  });

  it('keeps at most maxSessions sessions, dropping the least recently used', async () => {
    h = await startAdmin({ limits: { maxSessions: 2 } });
    const a = await h.login();
    const b = await h.login();
    expect((await h.get('/admin/', { cookie: a.cookie })).status).toBe(200); // a is now the most recent
    const c = await h.login();
    expect((await h.get('/admin/', { cookie: b.cookie })).status).toBe(303);
    expect((await h.get('/admin/', { cookie: a.cookie })).status).toBe(200);
    expect((await h.get('/admin/', { cookie: c.cookie })).status).toBe(200);
  });

  it('accepts Authorization: Bearer <ADMIN_TOKEN> for read-only access', async () => {
    h = await startAdmin();
    const ok = await h.get('/admin/', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('Organisation, last 30 days');
    expect(ok.body).not.toContain('method="post"');
    expect(ok.cookies).toEqual([]);
    const wrong = await h.get('/admin/', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
    const basic = await h.get('/admin/', { headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    const post = await h.post('/admin/users', { email: 'x@example.org' }, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(post.status).toBe(403);
    expect((await h.store.listUsers())).toEqual([]);
  });
});

describe('auth state (pure)', () => {
  const limits = { ...DEFAULT_AUTH_LIMITS, maxLoginFailures: 2, loginWindowMillis: 1000 };

  it('keeps sessions under a digest of their id, never the id itself', async () => {
    const sessions = new SessionStore(limits);
    const { id, session } = sessions.create(0);
    expect(sessions.get(id, 1)).toBe(session);
    expect(JSON.stringify([...(sessions as unknown as { sessions: Map<string, unknown> }).sessions.keys()])).not.toContain(id);
    sessions.delete(id);
    expect(sessions.get(id, 2)).toBeNull();
    expect(sessions.size).toBe(0);
  });
});
