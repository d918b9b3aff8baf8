import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { alertPayload, retryDelayMillis } from '../src/admin/alerts';
import { budgetStatuses, evaluateBudgets, monthSpend } from '../src/admin/budgets';
import { PriceBook } from '../src/prices/cost';
import { SHIPPED_PRICES } from '../src/prices/table';
import { Clock, makeReport, postReport, provision, startInProcess, type TestReceiver } from './support';

/** A webhook on loopback that records bodies and answers with the queued statuses (then 200). */
async function webhook(statuses: number[] = []): Promise<{ url: string; bodies: Record<string, unknown>[]; close(): Promise<void> }> {
  const bodies: Record<string, unknown>[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      text += c;
    });
    req.on('end', () => {
      bodies.push(JSON.parse(text) as Record<string, unknown>);
      res.statusCode = statuses.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const book = new PriceBook(SHIPPED_PRICES);
let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('budgets (pure)', () => {
  it('sums this month by org, division and user and forecasts at the month-to-date rate', () => {
    const now = Date.parse('2026-05-11T00:00:00Z'); // 10 of 31 days elapsed
    const g = { day: '2026-05-10', model: 'claude-opus-5-5', input: 1_000_000, output: 0, cacheRead: 0, cacheWrite: 0, cw5m: 0, cw1h: 0, unsplit: 0, webSearch: 0, turns: 1 };
    const spend = monthSpend([{ ...g, user: 'a@x.org', division: 'R' }, { ...g, user: 'b@x.org', division: 'S' }], book, now);
    expect(spend.org).toEqual({ usd: 8, tokens: 2_000_000 });
    const [org, div, user] = evaluateBudgets(
      [
        { id: 1, scope: 'org', subject: '', unit: 'usd', monthlyLimit: 10, createdAt: '', updatedAt: '' },
        { id: 2, scope: 'division', subject: 'R', unit: 'tokens', monthlyLimit: 1_000_000, createdAt: '', updatedAt: '' },
        { id: 3, scope: 'user', subject: 'nobody@x.org', unit: 'usd', monthlyLimit: 5, createdAt: '', updatedAt: '' },
      ],
      spend,
    );
    expect(org).toMatchObject({ spent: 8, percent: 80, crossed: [80] });
    expect(org!.forecast).toBeCloseTo(8 * 3.1, 6);
    expect(div).toMatchObject({ spent: 1_000_000, percent: 100, crossed: [80, 100] });
    expect(user).toMatchObject({ spent: 0, crossed: [] });
  });

  it("reuse the dashboard's month totals when they cover the same hours, and read the store otherwise", async () => {
    const now = Date.parse('2026-05-11T10:20:00Z');
    const g = { user: 'a@x.org', division: 'R', day: '2026-05-01', model: 'claude-opus-5-5', input: 1_000_000, output: 0, cacheRead: 0, cacheWrite: 0, cw5m: 0, cw1h: 0, unsplit: 0, webSearch: 0, turns: 1 };
    const budget = { id: 1, scope: 'org' as const, subject: '', unit: 'tokens' as const, monthlyLimit: 10_000_000, createdAt: '', updatedAt: '' };
    const reads: string[] = [];
    const store = {
      listBudgets: async () => [budget],
      usageGroups: async (f: { to: string }) => {
        reads.push(f.to);
        return [{ ...g, input: 2_000_000 }];
      },
    };
    const month = (to: string) => ({
      filter: { from: '2026-05-01T00:00:00Z', to, user: null, model: null, division: null },
      org: { usd: 5, tokens: g.input },
      division: new Map([['R', { usd: 5, tokens: g.input }]]),
      user: new Map([['a@x.org', { usd: 5, tokens: g.input }]]),
    });
    const [shared] = await budgetStatuses(store, book, now, month('2026-05-11T10:20:01Z'));
    expect(shared!.spent).toBe(1_000_000);
    expect(reads).toEqual([]);
    // 10:50 + 15 minutes slack reaches into the next hour: the seat value's month does not cover it.
    const [read] = await budgetStatuses(store, book, now + 30 * 60_000, month('2026-05-11T10:50:01Z'));
    expect(read!.spent).toBe(2_000_000);
    expect(reads).toEqual(['2026-05-11T11:05:00Z']);
  });

  it('backs off from one minute doubling to an hour, and says it in Slack text', () => {
    expect([1, 2, 3, 7, 8, 20].map(retryDelayMillis)).toEqual([60_000, 120_000, 240_000, 3_600_000, 3_600_000, 3_600_000]);
    const p = alertPayload({ id: 1, budgetId: 1, scope: 'division', subject: 'Research', unit: 'usd', month: '2026-05', threshold: 80, crossedAt: 'x', spent: 80.5, monthlyLimit: 100, deliveredAt: null, attempts: 0, nextAttemptAt: null, lastError: null });
    expect(p.text).toBe('ccflux: division Research has used 80% of its 2026-05 budget: $80.50 of $100.00.');
  });
});

describe('budget alerts over HTTP', () => {
  it('records 80 % and 100 % once each, POSTs each once, retries a failure with backoff, never blocking ingest', async () => {
    const hook = await webhook([500]);
    try {
      const clock = new Clock(Date.parse('2026-05-11T03:00:00.000Z'));
      t = await startInProcess({ clock, env: { ALERT_WEBHOOK_URL: hook.url } });
      const { budget } = await t.store.setBudget({ scope: 'org', subject: '', unit: 'tokens', monthlyLimit: 30_000 });
      const u = await provision(t, 'ann@example.org');
      // makeReport: 14,200 + 1,800 + 9,400 = 25,400 tokens = 84.7 % of 30,000.
      expect((await postReport(t, u.accessToken, makeReport())).status).toBe(200);
      await t.receiver.checkBudgets();
      let alerts = await t.store.listBudgetAlerts(10);
      expect(alerts.map((a) => [a.threshold, a.attempts, a.lastError])).toEqual([[80, 1, 'HTTP 500']]);
      expect(hook.bodies).toHaveLength(1);
      // Not due yet: no second POST; crossing not recorded twice.
      await t.receiver.checkBudgets();
      expect(hook.bodies).toHaveLength(1);
      clock.advance(61_000);
      await t.receiver.checkBudgets();
      alerts = await t.store.listBudgetAlerts(10);
      expect(alerts[0]).toMatchObject({ threshold: 80, attempts: 2, lastError: null });
      expect(alerts[0]!.deliveredAt).not.toBeNull();
      expect(hook.bodies).toHaveLength(2);
      expect(hook.bodies[1]).toMatchObject({ threshold_percent: 80, scope: 'org', unit: 'tokens', month: '2026-05', monthly_limit: 30_000, spent: 25_400 });
      expect(String(hook.bodies[1]!.text)).toContain('has used 80% of its 2026-05 budget: 25,400 tokens of 30,000 tokens');

      // The next turn takes it over 100 %: one new alert, sent once.
      expect((await postReport(t, u.accessToken, makeReport({ turn_index: 1 }))).status).toBe(200);
      await t.receiver.checkBudgets();
      await t.receiver.checkBudgets();
      expect(hook.bodies.map((b) => b.threshold_percent)).toEqual([80, 80, 100]);
      expect((await t.store.listBudgetAlerts(10)).map((a) => a.threshold)).toEqual([100, 80]);
      expect(budget.id).toBeGreaterThan(0);
    } finally {
      await hook.close();
    }
  });

  it('a dead webhook does not slow ingest down', async () => {
    // A webhook that never answers: the request times out in the background.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      t = await startInProcess({ env: { ALERT_WEBHOOK_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/` } });
      await t.store.setBudget({ scope: 'org', subject: '', unit: 'tokens', monthlyLimit: 1 });
      const u = await provision(t, 'bo@example.org');
      const round = t.receiver.checkBudgets();
      // While the round waits on the webhook, reports are still answered at once.
      for (let i = 0; i < 3; i++) expect((await postReport(t, u.accessToken, makeReport({ turn_index: i }))).status).toBe(200);
      void round;
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
