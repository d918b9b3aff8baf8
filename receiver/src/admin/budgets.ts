/**
 * Monthly budgets (tokens or list-price dollars, per user, division or the organisation): this
 * month's burn, a straight-line forecast to the month's end, and the 80 % / 100 % crossings.
 * `evaluateBudgets` is pure; `BudgetMonitor` runs it on a timer next to the server (never in the
 * ingest path), records each crossing once per month, and hands new ones to the webhook sender.
 */
import type { PriceBook } from '../prices/cost';
import { emptyTotal } from '../prices/cost';
import type { Budget, Store } from '../store';
import { type FilterParams, type GroupRow, type Pot, type SpendTotals, priceGroup, sameHours } from './queries';

export const THRESHOLDS = [80, 100] as const;
const SLACK_MILLIS = 15 * 60 * 1000;

export interface MonthSpend {
  month: string;
  /** Fraction of the month elapsed, (0, 1]. */
  elapsed: number;
  org: Pot;
  division: Map<string, Pot>;
  user: Map<string, Pot>;
}

export interface BudgetStatus {
  budget: Budget;
  spent: number;
  percent: number;
  /** Spend at the month's end if it goes on at this month's rate so far. */
  forecast: number;
  /** Thresholds reached this month (80, 100). */
  crossed: number[];
}

export function monthBounds(nowMillis: number): { month: string; startMillis: number; endMillis: number } {
  const now = new Date(nowMillis);
  const startMillis = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const endMillis = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return { month: now.toISOString().slice(0, 7), startMillis, endMillis };
}

/** Sums a month's priced groups by org, division and user. Pure. */
/** The month of `nowMillis` and how much of it has passed, (0, 1]. */
function monthSoFar(nowMillis: number): Pick<MonthSpend, 'month' | 'elapsed'> {
  const { month, startMillis, endMillis } = monthBounds(nowMillis);
  return { month, elapsed: Math.min(1, Math.max(1 / (24 * 31), (nowMillis - startMillis) / (endMillis - startMillis))) };
}

export function monthSpend(groups: Iterable<GroupRow>, prices: PriceBook, nowMillis: number): MonthSpend {
  const spend: MonthSpend = { ...monthSoFar(nowMillis), org: { usd: 0, tokens: 0 }, division: new Map(), user: new Map() };
  const add = (map: Map<string, { usd: number; tokens: number }>, key: string, usd: number, tokens: number) => {
    const v = map.get(key) ?? { usd: 0, tokens: 0 };
    v.usd += usd;
    v.tokens += tokens;
    map.set(key, v);
  };
  for (const g of groups) {
    const usd = priceGroup(prices, g, emptyTotal()).usd;
    const tokens = g.input + g.output + g.cacheRead + g.cacheWrite;
    spend.org.usd += usd;
    spend.org.tokens += tokens;
    add(spend.division, g.division, usd, tokens);
    add(spend.user, g.user, usd, tokens);
  }
  return spend;
}

export function evaluateBudgets(budgets: readonly Budget[], spend: MonthSpend): BudgetStatus[] {
  return budgets.map((budget) => {
    const pot = budget.scope === 'org' ? spend.org : (budget.scope === 'division' ? spend.division : spend.user).get(budget.subject);
    const spent = pot === undefined ? 0 : budget.unit === 'usd' ? pot.usd : pot.tokens;
    const percent = (spent / budget.monthlyLimit) * 100;
    return { budget, spent, percent, forecast: spent / spend.elapsed, crossed: THRESHOLDS.filter((t) => percent >= t) };
  });
}

export type BudgetStore = Pick<Store, 'listBudgets' | 'usageGroups' | 'recordBudgetAlert'>;

/**
 * This month's budget statuses, read from the store; `known` (the dashboard's month groups,
 * priced with the same book) is used instead when it covers the same hours.
 */
export async function budgetStatuses(
  store: Pick<Store, 'listBudgets' | 'usageGroups'>,
  prices: PriceBook,
  nowMillis: number,
  known?: { filter: FilterParams } & SpendTotals,
): Promise<BudgetStatus[]> {
  const budgets = await store.listBudgets();
  if (budgets.length === 0) return [];
  const { startMillis } = monthBounds(nowMillis);
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  const month = { from: iso(startMillis), to: iso(nowMillis + SLACK_MILLIS), user: null, model: null, division: null };
  const spend =
    known !== undefined && sameHours(known.filter, month, prices)
      ? { ...monthSoFar(nowMillis), org: known.org, division: known.division, user: known.user }
      : monthSpend(await store.usageGroups(month, { prices }), prices, nowMillis);
  return evaluateBudgets(budgets, spend);
}

/** Records this month's crossings (each once: the store's unique key); returns how many are new. */
export async function recordCrossings(store: BudgetStore, prices: PriceBook, nowMillis: number): Promise<number> {
  const statuses = await budgetStatuses(store, prices, nowMillis);
  const { month } = monthBounds(nowMillis);
  let added = 0;
  for (const s of statuses) {
    for (const threshold of s.crossed) {
      const fresh = await store.recordBudgetAlert({
        budgetId: s.budget.id,
        month,
        threshold,
        spent: s.spent,
        monthlyLimit: s.budget.monthlyLimit,
        crossedAt: new Date(nowMillis).toISOString(),
      });
      if (fresh) added++;
    }
  }
  return added;
}
