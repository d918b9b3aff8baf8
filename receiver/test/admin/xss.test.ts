import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { esc } from '../../src/admin/esc';
import { VIEWS } from '../../src/admin/pages';
import { ADMIN_TOKEN, type Harness, addReport, fakePublicKey, startAdmin, usage } from './harness';

const HOSTILE = {
  email: '<script>alert(1)</script>@x.org',
  email2: `"'><svg/onload=alert(2)>@evil.org`,
  email3: 'javascript:alert(document.cookie)//@x.org',
  division: `</td><script>alert('div')</script>`,
  deviceId: `<img src=x onerror=alert("device")>`,
  deviceId2: 'javascript:alert(1)',
  model: `</td><script>alert("model")</script>`,
  model2: `" onmouseover="alert('m')`,
  sessionId: `"><script>alert('sid')</script>`,
  pluginVersion: `<iframe src="javascript:alert(1)">`,
  reportedEmail: `<a href="javascript:alert(1)">x</a>`,
  timestamp: '<b>2026</b>',
} as const;

let h: Harness;
beforeEach(async () => {
  h = await startAdmin();
  const t1 = (await h.store.createUser(HOSTILE.email, { division: HOSTILE.division })).refreshToken;
  const t2 = (await h.store.createUser(HOSTILE.email2)).refreshToken;
  await h.store.createUser(HOSTILE.email3);
  const a1 = (await h.store.authenticateRefreshToken(t1))!;
  await h.store.registerKey(a1, fakePublicKey('k1'), HOSTILE.deviceId);
  await h.store.registerKey((await h.store.authenticateRefreshToken(t2))!, fakePublicKey('k2'), HOSTILE.deviceId2);
  await addReport(
    h.store,
    t1,
    {
      session_id: HOSTILE.sessionId,
      user_email: HOSTILE.reportedEmail,
      plugin_version: HOSTILE.pluginVersion,
      models: { [HOSTILE.model]: usage(100, 20, 300, 5), [HOSTILE.model2]: usage(1, 2) },
    },
    { deviceId: HOSTILE.deviceId },
  );
  await addReport(h.store, t2, { session_id: HOSTILE.sessionId, turn_index: 1, timestamp_utc: HOSTILE.timestamp, models: { [HOSTILE.model]: usage(7, 7) } }, { deviceId: HOSTILE.deviceId2 });
});
afterEach(async () => {
  await h.close();
});

/** The page holds every hostile value only in escaped form, and nothing executable. */
function expectInert(html: string, opts: { forms: boolean }): void {
  for (const [name, value] of Object.entries(HOSTILE)) {
    if (name.startsWith('email')) expect(html.includes(esc(value.toLowerCase())), name).toBe(true);
    // Values without a character to escape (javascript:… as plain text) are inert as they are.
    if (esc(value) !== value) expect(html.includes(value), name).toBe(false);
  }
  for (const name of ['division', 'deviceId', 'deviceId2', 'model', 'model2', 'sessionId', 'pluginVersion'] as const) {
    expect(html.includes(esc(HOSTILE[name])), name).toBe(true);
  }
  expect(html).not.toMatch(/<script|<iframe|<img|<svg\/|<a href="(?!#|\/admin\/)/i);
  // Every tag is one of ours, with only our attributes, every value double-quoted, every URL ours.
  const allowedTags = ['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'h3', 'nav', 'a', 'main', 'section', 'div', 'b', 'span', 'small', 'p', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'svg', 'rect', 'line', 'text', 'g', 'code', 'form', 'input', 'button', 'label', 'select', 'option'];
  const allowedAttributes = ['lang', 'charset', 'name', 'content', 'http-equiv', 'href', 'id', 'class', 'role', 'method', 'action', 'type', 'value', 'required', 'maxlength', 'min', 'max', 'placeholder', 'autocomplete', 'autofocus', 'viewbox', 'width', 'height', 'aria-label', 'aria-hidden', 'x', 'y', 'x1', 'x2', 'y1', 'y2', 'fill', 'stroke', 'text-anchor', 'rel', 'aria-sort', 'aria-current', 'data-table', 'selected', 'title', 'step'];
  for (const m of html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    expect(allowedTags, m[0]).toContain(m[1]!.toLowerCase());
    const rest = m[2]!.replace(/\/$/, '');
    const attrs = [...rest.matchAll(/\s([a-zA-Z0-9:-]+)(?:="([^"]*)")?/g)];
    expect(attrs.map((a) => a[0]).join(''), m[0]).toBe(rest);
    for (const a of attrs) {
      expect(allowedAttributes, m[0]).toContain(a[1]!.toLowerCase());
      // URL-bearing attributes only ever hold our own fixed URLs.
      // (query strings are URL-encoded by URLSearchParams, then HTML-escaped)
      if (a[1] === 'href') expect(a[2], m[0]).toMatch(/^(#[a-z]+|\/admin\/(?:[a-z]*|export\/[a-z]+\.(?:csv|json))(\?[A-Za-z0-9%&;=._~+-]*)?(#[a-z]+)?)$/);
      if (a[1] === 'action') expect(a[2], m[0]).toMatch(/^\/admin\/[a-z/]*(#[a-z]+)?$/);
    }
  }
  // Read-only views keep their GET forms (filters, search) but no form that changes anything.
  if (!opts.forms) expect(html).not.toContain('method="post"');
}

describe('admin XSS', () => {
  it('renders hostile emails, device ids, models, session ids and versions inert (logged in)', async () => {
    const { cookie } = await h.login();
    // Every page, taken together, shows every hostile value (escaped).
    let all = '';
    for (const view of VIEWS) {
      const page = await h.get(`/admin/?view=${view}`, { cookie });
      expect(page.status).toBe(200);
      all += page.body;
    }
    expectInert(all, { forms: true });
    // Hidden form fields carry the escaped value inside a double-quoted attribute.
    const users = await h.get('/admin/?view=users', { cookie });
    expect(users.body).toContain(`name="email" value="${esc(HOSTILE.email2.toLowerCase())}"`);
  });

  it('renders them inert read-only (bearer) and in the export', async () => {
    const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
    let all = '';
    for (const view of VIEWS) all += (await h.get(`/admin/?view=${view}`, { headers: bearer })).body;
    expectInert(all, { forms: false });
    expectInert((await h.get('/admin/?export', { headers: bearer })).body, { forms: false });
  });

  it('escapes a hostile email in the provisioning message', async () => {
    const { cookie, csrf } = await h.login();
    const email = `<script>alert('new')</script>@y.org`;
    await h.post('/admin/users', { email, division: HOSTILE.division, csrf_token: csrf }, { cookie });
    const page = (await h.get('/admin/', { cookie })).body;
    expect(page).toContain(`for ${esc(email)}</h2>`);
    expect(page).not.toContain(email);
    expect(page).not.toMatch(/<script/i);
  });

  it('esc() encodes exactly & < > " \'', () => {
    expect(esc(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
    expect(esc('plain text, ümlauts / javascript:')).toBe('plain text, ümlauts / javascript:');
    expect(esc(null)).toBe('');
    expect(esc(undefined)).toBe('');
    expect(esc(42)).toBe('42');
  });
});
