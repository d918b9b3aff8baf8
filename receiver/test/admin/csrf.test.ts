import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Harness, fakePublicKey, startAdmin } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startAdmin();
});
afterEach(async () => {
  await h.close();
});

/** Every mutating route with fields that would succeed given a valid CSRF token. */
function mutations(): [string, Record<string, string>][] {
  return [
    ['/admin/users', { email: 'new@example.org', division: 'R&D', days: '30' }],
    ['/admin/users/revoke', { email: 'alice@example.org' }],
    ['/admin/users/reissue', { email: 'alice@example.org' }],
    ['/admin/keys/revoke', { public_key: fakePublicKey('alice-laptop') }],
    ['/admin/logout', {}],
  ];
}

async function seed(): Promise<string> {
  const { refreshToken } = await h.store.createUser('alice@example.org');
  const auth = (await h.store.authenticateRefreshToken(refreshToken))!;
  expect((await h.store.registerKey(auth, fakePublicKey('alice-laptop'), 'alice-laptop'))).toBe('registered');
  return refreshToken;
}

/** Nothing changed: alice active with her token, key active, no new user, session alive. */
async function expectNoEffect(refreshToken: string, cookie: string): Promise<void> {
  const users = await h.store.listUsers();
  expect(users.map((u) => [u.email, u.revoked_at])).toEqual([['alice@example.org', null]]);
  expect((await h.store.authenticateRefreshToken(refreshToken))).not.toBeNull();
  expect((await h.store.listKeys()).map((k) => k.revoked_at)).toEqual([null]);
  expect((await h.get('/admin/', { cookie })).status).toBe(200);
}

describe('admin CSRF', () => {
  it('rejects every mutation without a CSRF token', async () => {
    const token = await seed();
    const { cookie } = await h.login();
    for (const [path, fields] of mutations()) {
      const res = await h.post(path, fields, { cookie });
      expect(res.status, path).toBe(403);
      expect(res.body).toContain('CSRF');
    }
    await expectNoEffect(token, cookie);
  });

  it('rejects a wrong CSRF token, an empty one, and the admin token itself', async () => {
    const token = await seed();
    const { cookie, csrf } = await h.login();
    const wrongs = [`${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}`, '', 'x'.repeat(5000), csrf.slice(0, 10)];
    for (const [path, fields] of mutations()) {
      for (const wrong of wrongs) {
        const res = await h.post(path, { ...fields, csrf_token: wrong }, { cookie });
        expect(res.status, `${path} ${wrong.length}`).toBe(403);
      }
    }
    await expectNoEffect(token, cookie);
  });

  it("rejects another session's CSRF token", async () => {
    const token = await seed();
    const mine = await h.login();
    const theirs = await h.login();
    for (const [path, fields] of mutations()) {
      const res = await h.post(path, { ...fields, csrf_token: theirs.csrf }, { cookie: mine.cookie });
      expect(res.status, path).toBe(403);
    }
    await expectNoEffect(token, mine.cookie);
    await expectNoEffect(token, theirs.cookie);
  });

  it('rejects a CSRF token without its session, and cross-site posts even with both', async () => {
    const token = await seed();
    const { cookie, csrf } = await h.login();
    for (const [path, fields] of mutations()) {
      expect((await h.post(path, { ...fields, csrf_token: csrf })).status, path).toBe(403);
      const cross = await h.post(path, { ...fields, csrf_token: csrf }, { cookie, headers: { 'sec-fetch-site': 'cross-site' } });
      expect(cross.status, path).toBe(403);
    }
    await expectNoEffect(token, cookie);
  });

  it('accepts the right token (the control case)', async () => {
    await seed();
    const { cookie, csrf } = await h.login();
    const res = await h.post('/admin/keys/revoke', { public_key: fakePublicKey('alice-laptop'), csrf_token: csrf, confirm: 'yes' }, { cookie });
    expect(res.status).toBe(303);
    expect((await h.store.listKeys())[0]!.revoked_at).not.toBeNull();
  });

  it('refuses non-form bodies and oversized forms', async () => {
    await seed();
    const { cookie, csrf } = await h.login();
    const json = await fetch(`${h.url}/admin/users`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'json@example.org', csrf_token: csrf }),
    });
    expect(json.status).toBe(415);
    const big = await h.post('/admin/users', { email: 'big@example.org', csrf_token: csrf, pad: 'x'.repeat(20_000) }, { cookie });
    expect(big.status).toBe(413);
    expect((await h.store.listUsers()).map((u) => u.email)).toEqual(['alice@example.org']);
  });
});
