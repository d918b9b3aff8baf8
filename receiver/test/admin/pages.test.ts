/** The dashboard's pages as URLs (admin/pages.ts): which page a link opens, tab links, where a form comes back to. */
import { describe, expect, it } from 'vitest';
import { backTo, sectionsOf, tableOptions, viewHref, viewOf, VIEWS } from '../../src/admin/pages';

const q = (s: string) => new URLSearchParams(s);

describe('dashboard pages (pure)', () => {
  it('opens the page a link names, or the table its old parameters name, else the overview', () => {
    expect(viewOf(q('view=keys&users.page=3'))).toBe('keys');
    expect(viewOf(q('users.page=10'))).toBe('users');
    expect(viewOf(q('range=90d&byuser.sort=cost'))).toBe('usage');
    expect(viewOf(q('inactive=60'))).toBe('inactive');
    expect(viewOf(q('audit.page=2'))).toBe('audit');
    expect(viewOf(q('events.page=2'))).toBe('events');
    expect(viewOf(q('view=nonsense&range=7d'))).toBe('overview');
    expect(viewOf(q(''))).toBe('overview');
  });

  it('links each tab with the range and filters only', () => {
    const params = q('view=users&users.page=4&range=custom&from=2026-05-01&to=2026-05-10&division=R%26D&model=m&user=a@x.org&tz=Europe/Paris&keys.q=z');
    expect(viewHref('keys', params)).toBe('/admin/?view=keys&range=custom&from=2026-05-01&to=2026-05-10&user=a%40x.org&division=R%26D&model=m&tz=Europe%2FParis');
    expect(viewHref('overview', q('users.page=2'))).toBe('/admin/');
    // Every page reads something different; the audit page reads no dashboard section at all.
    expect(new Set(VIEWS.map((v) => sectionsOf(v).join(','))).size).toBe(VIEWS.length);
    expect(sectionsOf('audit')).toEqual([]);
    expect(sectionsOf('users')).toEqual(['users']);
  });

  it('reads the SQL table pages from the URL, and every row for a snapshot', () => {
    const now = Date.parse('2026-05-11T12:00:00Z');
    const t = tableOptions(q('users.page=3&users.sort=devices&users.dir=asc&users.q=Ana&keys.sort=nope&inactive=7'), now);
    expect(t.usersTable).toEqual({ q: 'ana', sort: 'devices', dir: 'asc', page: 3, pageSize: 50 });
    expect(t.keysTable).toMatchObject({ sort: null, page: 1 });
    expect(t.inactiveTable?.before).toBe('2026-05-04T12:00:00Z');
    expect(tableOptions(q('users.page=3'), now, true).usersTable).toMatchObject({ page: 1, pageSize: 20_000, q: '' });
  });

  it('comes back only to a dashboard page', () => {
    expect(backTo('/admin/?view=users&users.page=2')).toBe('/admin/?view=users&users.page=2');
    expect(backTo('/admin/user?email=a%40x.org')).toBe('/admin/user?email=a%40x.org');
    for (const bad of [null, '', '//evil.example/admin/', 'https://evil.example/admin/', '/admin/users', '/admin/../x', 'javascript:alert(1)', `/admin/?${'a'.repeat(3000)}`]) {
      expect(backTo(bad)).toBe('/admin/');
    }
  });
});
