import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, fakePublicKey, startAdmin } from './harness';

let h: Harness;
let session: { cookie: string; csrf: string };
beforeEach(async () => {
  h = await startAdmin();
  session = await h.login();
});
afterEach(async () => {
  await h.close();
});

/** Posts a form as the page `back` sends it; the answer redirects back there, and that page is returned. */
async function submit(path: string, fields: Record<string, string>, back = path.startsWith('/admin/keys') ? '/admin/?view=keys' : '/admin/?view=users'): Promise<string> {
  const res = await h.post(path, { confirm: 'yes', ...fields, csrf_token: session.csrf, back }, { cookie: session.cookie });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe(back);
  return (await h.get(back, { cookie: session.cookie })).body;
}

function shownToken(html: string): string | null {
  return /Refresh token<code>(ccf_rt_[A-Za-z0-9_-]{43})<\/code>/.exec(html)?.[1] ?? null;
}

describe('admin mutations', () => {
  it('provisions a user, shows the token once with the endpoint, and the token works', async () => {
    const page = await submit('/admin/users', { email: 'Bob@Example.org', division: 'Platform', days: '30' });
    const token = shownToken(page);
    expect(token).not.toBeNull();
    expect(page).toContain(`Endpoint<code>${h.url}</code>`);
    const auth = await h.store.authenticateRefreshToken(token!);
    expect(auth?.email).toBe('bob@example.org');
    const [user] = await h.store.listUsers();
    expect(user).toMatchObject({ email: 'bob@example.org', division: 'Platform', revoked_at: null });
    expect(Date.parse(user!.token_expires_at!) - h.nowMillis()).toBe(30 * 24 * 3600 * 1000);
    // Shown once: the next page load no longer has it.
    const again = (await h.get('/admin/?view=users', { cookie: session.cookie })).body;
    expect(shownToken(again)).toBeNull();
    expect(again).not.toContain(token!);
    expect(again).toContain('bob@example.org');
  });

  it('uses the forwarded scheme for the endpoint behind a TLS proxy', async () => {
    const res = await h.post(
      '/admin/users',
      { email: 'carol@example.org', csrf_token: session.csrf },
      { cookie: session.cookie, headers: { 'x-forwarded-proto': 'https' } },
    );
    expect(res.status).toBe(303);
    // Without a `back` field: to the overview, which shows the flash too.
    expect(res.headers.get('location')).toBe('/admin/');
    const page = (await h.get('/admin/', { cookie: session.cookie, headers: { 'x-forwarded-proto': 'https' } })).body;
    expect(page).toContain(`Endpoint<code>https://127.0.0.1:`);
    expect(page).toContain('COOKIE_SECURE is off');
  });

  it('refuses a duplicate or invalid user with a message and no change', async () => {
    await h.store.createUser('dup@example.org');
    const dup = await submit('/admin/users', { email: 'dup@example.org' });
    expect(dup).toContain('already exists');
    expect(shownToken(dup)).toBeNull();
    const bad = await submit('/admin/users', { email: 'not-an-email' });
    expect(bad).toContain('valid email');
    const days = await submit('/admin/users', { email: 'd@example.org', days: '0' });
    expect(days).toContain('Days valid');
    expect((await h.store.listUsers()).map((u) => u.email)).toEqual(['dup@example.org']);
  });

  it('revokes a user: their tokens stop working', async () => {
    const { refreshToken } = await h.store.createUser('eve@example.org');
    const page = await submit('/admin/users/revoke', { email: 'eve@example.org' });
    expect(page).toContain('Revoked eve@example.org');
    expect((await h.store.authenticateRefreshToken(refreshToken))).toBeNull();
    expect((await h.store.listUsers())[0]!.revoked_at).not.toBeNull();
    expect(page).toContain('status-revoked');
    const missing = await submit('/admin/users/revoke', { email: 'nobody@example.org' });
    expect(missing).toContain('No such user');
  });

  it('asks for confirmation before revoking a user or a key, and changes nothing until then', async () => {
    const { refreshToken } = await h.store.createUser('ivy@example.org');
    await h.store.registerKey((await h.store.authenticateRefreshToken(refreshToken))!, fakePublicKey('ivy-1'), 'ivy-laptop');
    const ask = await h.post('/admin/users/revoke', { email: 'ivy@example.org', csrf_token: session.csrf }, { cookie: session.cookie });
    expect(ask.status).toBe(200);
    expect(ask.body).toContain('Revoke user?');
    expect(ask.body).toContain('<input type="hidden" name="confirm" value="yes">');
    expect(ask.body).toContain(`name="csrf_token" value="${session.csrf}"`);
    expect(ask.body).toContain('<a href="/admin/">Cancel</a>');
    // From a table page, the confirmation carries that page along, and Cancel returns to it.
    const fromPage = await h.post('/admin/users/revoke', { email: 'ivy@example.org', csrf_token: session.csrf, back: '/admin/?view=users&users.page=2' }, { cookie: session.cookie });
    expect(fromPage.body).toContain('<input type="hidden" name="back" value="/admin/?view=users&amp;users.page=2">');
    expect(fromPage.body).toContain('<a href="/admin/?view=users&amp;users.page=2">Cancel</a>');
    // A `back` that leaves the dashboard is ignored.
    const away = await h.post('/admin/users/revoke', { email: 'nobody@example.org', confirm: 'yes', csrf_token: session.csrf, back: '//evil.example/admin/' }, { cookie: session.cookie });
    expect(away.headers.get('location')).toBe('/admin/');
    const askKey = await h.post('/admin/keys/revoke', { public_key: fakePublicKey('ivy-1'), csrf_token: session.csrf }, { cookie: session.cookie });
    expect(askKey.body).toContain('Revoke device key?');
    expect((await h.store.authenticateRefreshToken(refreshToken))?.email).toBe('ivy@example.org');
    expect((await h.store.listKeys())[0]!.revoked_at).toBeNull();
    // The confirmation form posts the same fields plus confirm=yes; that revokes.
    await submit('/admin/users/revoke', { email: 'ivy@example.org' });
    expect(await h.store.authenticateRefreshToken(refreshToken)).toBeNull();
  });

  it('shows a revoked user\'s keys as revoked and does not count them active', async () => {
    const { refreshToken } = await h.store.createUser('jo@example.org');
    await h.store.registerKey((await h.store.authenticateRefreshToken(refreshToken))!, fakePublicKey('jo-1'), 'jo-laptop');
    const before = await h.get('/admin/', { cookie: session.cookie });
    expect(before.body).toMatch(/<b>1<\/b><span>active device keys<\/span>/);
    const overview = await submit('/admin/users/revoke', { email: 'jo@example.org' }, '/admin/');
    expect(overview).toMatch(/<b>0<\/b><span>active device keys<\/span>/);
    const page = (await h.get('/admin/?view=keys', { cookie: session.cookie })).body;
    expect(page).toContain('0 active, 1 revoked');
    expect(page).toMatch(/jo-laptop.*?<span class="status-revoked">user revoked<\/span>/s);
  });

  it('reissues a token: the old one dies, the new one is shown once and works', async () => {
    const { refreshToken: old } = await h.store.createUser('fay@example.org');
    const page = await submit('/admin/users/reissue', { email: 'fay@example.org' });
    const fresh = shownToken(page);
    expect(fresh).not.toBeNull();
    expect(fresh).not.toBe(old);
    expect(page).toContain('reissued');
    expect((await h.store.authenticateRefreshToken(old))).toBeNull();
    expect((await h.store.authenticateRefreshToken(fresh!))?.email).toBe('fay@example.org');
    await h.store.revokeUser('fay@example.org');
    const refused = await submit('/admin/users/reissue', { email: 'fay@example.org' });
    expect(refused).toContain('revoked');
    expect(shownToken(refused)).toBeNull();
  });

  it('re-enables a revoked user by provisioning again', async () => {
    await h.store.createUser('gus@example.org');
    await h.store.revokeUser('gus@example.org');
    const page = await submit('/admin/users', { email: 'gus@example.org' });
    expect((await h.store.authenticateRefreshToken(shownToken(page)!))?.email).toBe('gus@example.org');
  });

  it('revokes a device key', async () => {
    const { refreshToken } = await h.store.createUser('hal@example.org');
    const auth = (await h.store.authenticateRefreshToken(refreshToken))!;
    await h.store.registerKey(auth, fakePublicKey('hal-1'), 'hal-laptop');
    await h.store.registerKey(auth, fakePublicKey('hal-2'), 'hal-desktop');
    const before = (await h.get('/admin/?view=keys', { cookie: session.cookie })).body;
    expect(before.match(/action="\/admin\/keys\/revoke"/g)).toHaveLength(2);
    const page = await submit('/admin/keys/revoke', { public_key: fakePublicKey('hal-1') });
    expect(page).toContain('Revoked 1 device key.');
    const keys = Object.fromEntries((await h.store.listKeys()).map((k) => [k.device_id, k.revoked_at]));
    expect(keys['hal-laptop']).not.toBeNull();
    expect(keys['hal-desktop']).toBeNull();
    expect(page.match(/action="\/admin\/keys\/revoke"/g)).toHaveLength(1);
    const unknown = await submit('/admin/keys/revoke', { public_key: fakePublicKey('nobody') });
    expect(unknown).toContain('No such device key');
  });
});
