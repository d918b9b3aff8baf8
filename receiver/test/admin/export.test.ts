import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CSS_HASH } from '../../src/admin/style';
import { ADMIN_TOKEN, type Harness, fakePublicKey, seedUsage, startAdmin, usage } from './harness';

let h: Harness;
let userToken: string;
beforeEach(async () => {
  h = await startAdmin();
  userToken = await seedUsage(h.store, 'ann@example.org', { models: { 'claude-sonnet-4-6': usage(1000, 200, 5000, 300) } }, { division: 'Research' });
  await h.store.registerKey((await h.store.authenticateRefreshToken(userToken))!, fakePublicKey('ann'), 'ann-laptop');
});
afterEach(async () => {
  await h.close();
});

describe('GET /admin/?export', () => {
  it('is a self-contained, read-only snapshot without secrets or forms', async () => {
    const { cookie, csrf } = await h.login();
    const res = await h.get('/admin/?export', { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="ccflux-usage-2026-05-11.html"');
    const html = res.body;
    expect(html).toContain('ann@example.org');
    expect(html).toContain('claude-sonnet-4-6');
    expect(html).toContain('ann-laptop');
    expect(html).toContain('Read-only snapshot generated 2026-05-11T12:00:00Z');
    for (const secret of [ADMIN_TOKEN, csrf, cookie.split('=')[1]!, userToken]) expect(html).not.toContain(secret);
    expect(html).not.toMatch(/<form|<input|<button|csrf|ccf_rt_|ccf_at_|ref_[0-9a-f]{16}/i);
    // No link back to the live dashboard, no external resource of any kind.
    expect(html).not.toContain('/admin/');
    expect(html).not.toMatch(/(?:href|src)="(?!#)/);
    // Its own CSP travels with it, for when it is opened from disk.
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src ${CSS_HASH.replaceAll("'", '&#39;')}`);
  });

  it('needs authentication like the dashboard', async () => {
    expect((await h.get('/admin/?export')).status).toBe(303);
    const bearer = await h.get('/admin/?export', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(bearer.status).toBe(200);
    expect(bearer.body).not.toContain('<form');
  });
});
