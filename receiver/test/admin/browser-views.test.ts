/**
 * The IT views in a real browser (Debian's chromium via playwright-core) against the real
 * receiver: date range presets, filters, pagination, a CSV export download, a budget whose alert
 * reaches a webhook on loopback, and the audit log. Skips when /usr/bin/chromium is absent.
 *
 * `CCFLUX_DOCS_SCREENSHOT=1` also refreshes the screenshots in docs/ (each under 300 KB).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { type Db, openDatabase } from '../../src/db/open';
import { createReceiver, type Receiver } from '../../src/server';
import { SqliteStore } from '../../src/store';
import { ADMIN_TOKEN, seedDemo } from './harness';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const DOCS = join(ROOT, 'docs');
const SHOTS = process.env.CCFLUX_DOCS_SCREENSHOT === '1';

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage });
  if (SHOTS) {
    const file = join(DOCS, name);
    await page.screenshot({ path: file, fullPage });
    expect(statSync(file).size).toBeLessThan(300 * 1024);
  }
}

describe('IT views in chromium', () => {
  let browser: Browser | undefined;
  let receiver: Receiver | undefined;
  let db: Db | undefined;
  let hook: Server | undefined;
  const hookBodies: Record<string, unknown>[] = [];
  let dir = '';
  let base = '';

  beforeAll(async () => {
    if (!HAS_CHROMIUM) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'ccflux-admin-views-'));
    hook = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c.toString('utf8');
      });
      req.on('end', () => {
        hookBodies.push(JSON.parse(text) as Record<string, unknown>);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook!.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/slack`;
    const parsed = parseConfig({ DATABASE_PATH: join(dir, 'receiver.db'), LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN, ALERT_WEBHOOK_URL: hookUrl, SEAT_PRICE_USD: '30' });
    if (!parsed.ok) throw new Error(parsed.errors.join('; '));
    db = openDatabase(parsed.config.databasePath);
    const store = new SqliteStore(db, () => new Date());
    await seedDemo({ store, nowMillis: () => Date.now() });
    for (let i = 0; i < 60; i++) await store.createUser(`seat${String(i).padStart(2, '0')}@example.org`, { division: 'Sales' });
    receiver = createReceiver({ config: parsed.config, store, budgetCheckMillis: 3_600_000 });
    base = `http://127.0.0.1:${(await receiver.listen()).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    db?.close();
    hook?.closeAllConnections();
    hook?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!HAS_CHROMIUM)('date range, filters, pagination, export download, budget alert and audit view', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 1400 }, acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => {
      problems.push(`dialog ${d.message()}`);
      void d.dismiss();
    });

    await page.goto(`${base}/admin/login`);
    await page.fill('input[name=token]', ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('#summary');
    await shot(page, 'admin-dashboard.png');

    // Date range preset: a link, bookmarkable.
    await page.click('.presets a:has-text("7 days")');
    expect(new URL(page.url()).searchParams.get('range')).toBe('7d');
    expect(await page.textContent('#summary h2')).toBe('Organisation, last 7 days');

    // Filters through the plain GET form.
    await page.selectOption('#filters select[name=division]', 'Platform');
    await page.click('#filters button:has-text("Apply")');
    expect(new URL(page.url()).searchParams.get('division')).toBe('Platform');
    const users = await page.locator('[data-table=byuser] tbody tr td:first-child').allTextContents();
    expect(users.sort()).toEqual(['dev.patel@example.org', 'maria.lopez@example.org']);
    expect(await page.locator('#filters select[name=division]').inputValue()).toBe('Platform');

    // A user's page from the table.
    await page.click('[data-table=byuser] a:has-text("maria.lopez@example.org")');
    await page.waitForSelector('#sessions');
    expect(await page.textContent('#user h2')).toBe('maria.lopez@example.org');
    await shot(page, 'admin-user.png');
    await page.goBack();

    // Tabs keep the range and filters: the Users tab shows the division's users.
    await page.click('header nav a:text-is("Users")');
    const tab = new URL(page.url()).searchParams;
    expect([tab.get('view'), tab.get('range'), tab.get('division')]).toEqual(['users', '7d', 'Platform']);
    expect(await page.textContent('#users .pager')).toContain('Rows 1–2 of 2');
    await page.click('header nav a:text-is("Usage by user")');
    expect(new URL(page.url()).searchParams.get('division')).toBe('Platform');
    expect((await page.locator('[data-table=byuser] tbody tr').count())).toBe(2);

    // Pagination of the users table (65 seats, paged in SQL): the next page, by link; a search.
    await page.goto(`${base}/admin/?view=users`);
    await shot(page, 'admin-users.png');
    expect(await page.textContent('#users .pager')).toContain('Rows 1–50 of 65');
    await page.click('#users a[rel=next]');
    expect(await page.textContent('#users .pager')).toContain('Rows 51–65 of 65');
    expect(new URL(page.url()).searchParams.get('users.page')).toBe('2');
    await page.fill('#users input[name="users.q"]', 'seat0');
    await page.click('#users button:has-text("Search")');
    expect(await page.textContent('#users .pager')).toContain('Rows 1–10 of 10');
    await page.click('#users th a:has-text("Email")');
    const sorted = await page.locator('[data-table=users] tbody tr td:first-child').allTextContents();
    expect(sorted[0]).toBe('seat09@example.org');
    await page.goto(`${base}/admin/`);

    // Export download: usage per user × model × day as CSV.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('.exports a:has-text("usage per user, model and day (CSV)")')]);
    expect(download.suggestedFilename()).toMatch(/^ccflux-usage-\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8').split('\r\n');
    expect(csv[0]).toMatch(/^day,user_email,division,model,price_family,/);
    expect(csv.length).toBeGreaterThan(20);

    // Budget: a tiny org budget is over at once; the check posts the alerts to the webhook.
    await page.click('header nav a:text-is("Budgets")');
    await page.selectOption('#budgets select[name=scope]', 'org');
    await page.selectOption('#budgets select[name=unit]', 'usd');
    await page.fill('#budgets input[name=limit]', '1');
    await page.click('#budgets button:has-text("Save budget")');
    await page.waitForSelector('.flash.ok');
    expect(await page.textContent('[data-table=budgets]')).toContain('over');
    await receiver!.checkBudgets();
    expect(hookBodies.map((b) => b.threshold_percent).sort()).toEqual([100, 80]);
    expect(String(hookBodies[0]!.text)).toContain('ccflux: the organisation has used');
    await page.reload();
    const alerts = await page.textContent('[data-table=alerts]');
    expect(alerts).toContain('sent');
    await shot(page, 'admin-budgets.png');

    // Audit view: the login and the budget change, with the source address.
    await page.click('header nav a:text-is("Audit log")');
    const audit = await page.textContent('#audit');
    expect(audit).toContain('login.success');
    expect(audit).toContain('budget.set');
    expect(audit).toContain('127.0.0.1');
    expect(problems).toEqual([]);
    await context.close();
  });
});
