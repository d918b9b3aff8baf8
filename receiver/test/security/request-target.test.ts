/**
 * Issue 16 row 1: the receiver routes on the raw request target and refuses targets that URL
 * parsing would read differently from a proxy (`//host/admin/`, backslashes, absolute-form, dot
 * segments), so a proxy's `location /admin` allow-list cannot be bypassed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { originFormTarget } from '../../src/http';
import { startInProcess, type TestReceiver } from '../support';
import { get, rawStatus } from './raw';

const ADMIN_TOKEN = 'a'.repeat(32);
let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('originFormTarget', () => {
  it('accepts origin-form targets and keeps the raw path', () => {
    expect(originFormTarget('/report')?.path).toBe('/report');
    expect(originFormTarget('/admin/?export=csv')?.path).toBe('/admin/');
    expect(originFormTarget('/admin/?export=csv')?.url.searchParams.get('export')).toBe('csv');
    expect(originFormTarget('/health?x=//y')?.path).toBe('/health');
    expect(originFormTarget('/a//b')?.path).toBe('/a//b');
  });

  it.each([
    ['protocol-relative', '//x/admin/'],
    ['protocol-relative metrics', '//x/metrics'],
    ['backslash host', '/\\x/admin/'],
    ['backslash inside', '/admin\\login'],
    ['absolute-form', 'http://receiver.test/admin/'],
    ['asterisk-form', '*'],
    ['empty', ''],
    ['no leading slash', 'admin/'],
    ['dot segment', '/x/../admin/'],
    ['dot segment at end', '/admin/..'],
    ['single dot', '/./admin/'],
    ['fragment', '/report#x'],
    ['escaped by URL parsing', '/adm"in/'],
  ])('refuses %s (%s)', (_name, target) => {
    expect(originFormTarget(target)).toBeNull();
  });

  it('refuses a missing target', () => {
    expect(originFormTarget(undefined)).toBeNull();
  });
});

describe('the server routes on the raw path only', () => {
  it('answers 400 to targets that URL parsing would turn into /admin/ or /metrics', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    const auth = `Authorization: Bearer ${ADMIN_TOKEN}\r\n`;
    const withAuth = (target: string) => get(target).replace('Connection: close\r\n', `Connection: close\r\n${auth}`);
    expect(await rawStatus(t.port, withAuth('/admin/'))).toBe('200');
    for (const target of ['//x/admin/', '/\\x/admin/', '//x/metrics', 'http://x/admin/', '/x/../admin/', '/./metrics']) {
      expect(await rawStatus(t.port, withAuth(target)), target).toBe('400');
    }
  });

  it('still answers known paths with a query string, and 404 for paths it does not know', async () => {
    t = await startInProcess();
    expect(await rawStatus(t.port, get('/health?probe=1'))).toBe('200');
    expect(await rawStatus(t.port, get('/x/health'))).toBe('404');
    expect(await rawStatus(t.port, get('/%68ealth'))).toBe('404');
  });
});
