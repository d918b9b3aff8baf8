/**
 * The dashboard in a real browser (Debian's chromium via playwright-core) against the real
 * receiver: log in, provision a user, deliver a signed report over HTTP with the new token, see it
 * appear, revoke the device, and check the device is then refused. Screenshots go to
 * test/artifacts/ (git-ignored). Skips when /usr/bin/chromium is absent; CI installs it.
 *
 * `CCFLUX_DOCS_SCREENSHOT=1` also regenerates docs/admin-dashboard.png from seeded demo data.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSignatureHeader, formatTimestamp, type ReportBody, signingMessage } from '../../../src/protocol/wire';
import { parseConfig } from '../../src/config';
import { type Db, openDatabase } from '../../src/db/open';
import { SqliteStore } from '../../src/store';
import { createReceiver, type Receiver } from '../../src/server';
import { ADMIN_TOKEN, seedDemo, startAdmin } from './harness';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const DOCS_SCREENSHOT = join(ROOT, 'docs', 'admin-dashboard.png');

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** What the plugin does on a device, reduced to HTTP: exchange, register, sign, report. */
class Device {
  private readonly privateKey: KeyObject;
  readonly publicKey: string;
  private accessToken = '';

  constructor(
    private readonly base: string,
    private readonly refreshToken: string,
    readonly deviceId: string,
  ) {
    const pair = generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
  }

  async enrol(): Promise<void> {
    const token = await fetch(`${this.base}/token`, { method: 'POST', headers: { authorization: `Bearer ${this.refreshToken}` } });
    expect(token.status).toBe(200);
    this.accessToken = ((await token.json()) as { access_token: string }).access_token;
    const reg = await fetch(`${this.base}/register-key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ public_key: this.publicKey, device_id: this.deviceId }),
    });
    expect(reg.status).toBe(200);
  }

  async report(body: ReportBody): Promise<Response> {
    const text = JSON.stringify(body);
    const timestamp = formatTimestamp(new Date());
    const signature = sign(null, signingMessage(text, timestamp), this.privateKey);
    return fetch(`${this.base}/report`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.accessToken}`,
        'content-type': 'application/json',
        'x-ccflux-timestamp': timestamp,
        'x-ccflux-signature': formatSignatureHeader(signature, Buffer.from(this.publicKey, 'base64')),
      },
      body: text,
    });
  }
}

function report(sessionId: string, turn: number, models: ReportBody['models']): ReportBody {
  const now = formatTimestamp(new Date());
  return {
    schema_version: 1,
    session_id: sessionId,
    user_email: 'ann@example.org',
    turn_index: turn,
    timestamp_utc: now,
    session_start_utc: now,
    models,
    plugin_version: '0.1.0',
  };
}

/** Collects dialogs (an XSS payload firing), CSP violations and script errors. */
function watch(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    // The refused login's 401 is logged as a failed resource load; that one is expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return { problems };
}

describe('admin dashboard in chromium', () => {
  let browser: Browser | undefined;
  let receiver: Receiver | undefined;
  let db: Db | undefined;
  let dir = '';
  let base = '';

  beforeAll(async () => {
    if (!HAS_CHROMIUM) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'ccflux-admin-browser-'));
    const parsed = parseConfig({ DATABASE_PATH: join(dir, 'receiver.db'), LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN });
    if (!parsed.ok) throw new Error(parsed.errors.join('; '));
    db = openDatabase(parsed.config.databasePath);
    receiver = createReceiver({ config: parsed.config, store: new SqliteStore(db, () => new Date()) });
    const address = await receiver.listen();
    base = `http://127.0.0.1:${address.port}`;
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!HAS_CHROMIUM)('logs in, provisions a user, shows their report, revokes their device', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const { problems } = watch(page);

    // Anonymous: redirected to the login form; a wrong token is refused.
    await page.goto(`${base}/admin/`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name=token]', 'wrong-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('[role=alert]')).toContain('Wrong admin token');
    await page.screenshot({ path: join(ARTIFACTS, 'admin-login.png') });

    await page.fill('input[name=token]', ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('#summary');
    expect(new URL(page.url()).pathname).toBe('/admin/');
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'ccflux_admin', path: '/admin', httpOnly: true, sameSite: 'Strict', secure: false });
    expect(await page.evaluate('document.cookie')).toBe(''); // HttpOnly: not visible to script

    // The Users tab: a GET page of its own; provisioning comes back to it.
    await page.click('header nav a:text-is("Users")');
    expect(new URL(page.url()).searchParams.get('view')).toBe('users');
    expect(await page.getAttribute('header nav a:text-is("Users")', 'aria-current')).toBe('page');
    // Provision: the token is shown once, with the endpoint.
    await page.fill('#users input[name=email]', 'ann@example.org');
    await page.fill('#users input[name=division]', 'Research');
    await page.fill('#users input[name=days]', '30');
    await page.click('#users button:has-text("Provision")');
    await page.waitForSelector('.secret');
    expect(new URL(page.url()).searchParams.get('view')).toBe('users');
    const secret = (await page.textContent('.secret')) ?? '';
    const refreshToken = /ccf_rt_[A-Za-z0-9_-]{43}/.exec(secret)?.[0];
    expect(refreshToken).toBeDefined();
    expect(secret).toContain(base);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-provisioned.png') });

    // The user's device enrols and delivers a signed report with the new token.
    const laptop = new Device(base, refreshToken!, 'ann-laptop');
    await laptop.enrol();
    const hostile = new Device(base, refreshToken!, '<img src=x onerror=alert("device")>');
    await hostile.enrol();
    const first = await laptop.report(report('3f2a9c1e-browser', 0, { 'claude-sonnet-4-6': { input_tokens: 14200, output_tokens: 1800, cache_read_tokens: 9400, cache_write_tokens: 0 } }));
    expect(first.status).toBe(200);
    const evil = await hostile.report(report(`"><script>alert('sid')</script>`, 0, { '<script>alert("model")</script>': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 } }));
    expect(evil.status).toBe(200);

    await page.goto(`${base}/admin/?view=users`);
    expect(await page.locator('.secret').count()).toBe(0); // shown once only
    await page.click('header nav a:text-is("Events")');
    const events = (await page.textContent('#events')) ?? '';
    expect(events).toContain('ann@example.org');
    expect(events).toContain('claude-sonnet-4-6');
    expect(events).toContain('14,200');
    // The receiver stores model names with only safe characters (wire.ts), so it arrives defused.
    expect(events).toContain('_script_alert__model___/script_');
    expect(await page.locator('#events script').count()).toBe(0);
    await page.click('header nav a:text-is("Device keys")');
    expect(await page.locator('#keys img').count()).toBe(0);
    const keyRow = page.locator('#keys tr', { hasText: 'ann-laptop' });
    expect(await keyRow.textContent()).toContain('active');
    await page.screenshot({ path: join(ARTIFACTS, 'admin-report.png'), fullPage: true });

    // Revoke the laptop's key: the dashboard says so, and the receiver refuses its next report.
    await keyRow.locator('button:has-text("Revoke")').click();
    // A confirmation page first: nothing is revoked until it is confirmed.
    await page.waitForSelector('h2:has-text("Revoke device key?")');
    await page.click('button:has-text("Revoke the key")');
    await page.waitForSelector('.flash.ok');
    // Back on the device keys page it came from, with the flash.
    expect(new URL(page.url()).searchParams.get('view')).toBe('keys');
    expect(await page.textContent('.flash.ok')).toContain('Revoked 1 device key');
    expect(await page.locator('#keys tr', { hasText: 'ann-laptop' }).textContent()).toContain('revoked');
    const refused = await laptop.report(report('3f2a9c1e-browser', 1, { 'claude-sonnet-4-6': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 } }));
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-ccflux-error')).toBe('key-revoked');
    await page.screenshot({ path: join(ARTIFACTS, 'admin-revoked.png'), fullPage: true });

    // Log out: the session is gone.
    await page.click('header button:has-text("Log out")');
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.goto(`${base}/admin/`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');

    expect(problems).toEqual([]);
    await context.close();
  });

  it.skipIf(!HAS_CHROMIUM || process.env.CCFLUX_DOCS_SCREENSHOT !== '1')('regenerates docs/admin-dashboard.png', async () => {
    const h = await startAdmin();
    try {
      await seedDemo(h);
      const context = await browser!.newContext({ viewport: { width: 1280, height: 1400 } });
      const page = await context.newPage();
      const { problems } = watch(page);
      await page.goto(`${h.url}/admin/login`);
      await page.fill('input[name=token]', ADMIN_TOKEN);
      await page.click('button[type=submit]');
      await page.waitForSelector('#summary');
      await page.screenshot({ path: DOCS_SCREENSHOT });
      expect(statSync(DOCS_SCREENSHOT).size).toBeLessThan(300 * 1024);
      expect(problems).toEqual([]);
      await context.close();
    } finally {
      await h.close();
    }
  });
});

