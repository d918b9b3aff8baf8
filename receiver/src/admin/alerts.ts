/**
 * Budget alerts to ALERT_WEBHOOK_URL: Slack-compatible JSON (`{"text": …}` plus the fields as
 * data), POSTed once per crossing, retried with exponential backoff (1 min doubling to 1 h, at
 * most MAX_ATTEMPTS), state kept in the database so a restart neither loses nor repeats one.
 * Runs on its own timer, so a slow or dead webhook never delays ingest or the dashboard.
 */
import type { Logger } from '../log';
import type { PriceBook } from '../prices/cost';
import type { BudgetAlertRow, Store } from '../store';
import { recordCrossings } from './budgets';

export const MAX_ATTEMPTS = 10;
export const FIRST_RETRY_MILLIS = 60_000;
export const MAX_RETRY_MILLIS = 3_600_000;
export const CHECK_INTERVAL_MILLIS = 60_000;
const REQUEST_TIMEOUT_MILLIS = 5_000;
const BATCH = 20;

export function retryDelayMillis(attempts: number): number {
  return Math.min(MAX_RETRY_MILLIS, FIRST_RETRY_MILLIS * 2 ** Math.max(0, attempts - 1));
}

function amount(unit: string, value: number): string {
  return unit === 'usd' ? `$${value.toFixed(2)}` : `${Math.round(value).toLocaleString('en-US')} tokens`;
}

/** The webhook body for one alert (Slack reads `text`; other receivers can use the fields). */
export function alertPayload(a: BudgetAlertRow): Record<string, unknown> {
  const who = a.scope === 'org' ? 'the organisation' : a.scope === 'division' ? `division ${a.subject}` : a.subject;
  const verb = a.threshold >= 100 ? 'has used its whole' : `has used ${a.threshold}% of its`;
  return {
    text: `ccflux: ${who} ${verb} ${a.month} budget: ${amount(a.unit, a.spent)} of ${amount(a.unit, a.monthlyLimit)}.`,
    scope: a.scope,
    subject: a.subject,
    unit: a.unit,
    month: a.month,
    threshold_percent: a.threshold,
    spent: Math.round(a.spent * 1e6) / 1e6,
    monthly_limit: a.monthlyLimit,
    crossed_at: a.crossedAt,
  };
}

export type Poster = (url: string, body: string) => Promise<{ ok: boolean; status: number }>;

export const fetchPoster: Poster = async (url, body) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    redirect: 'error',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MILLIS),
  });
  await res.arrayBuffer().catch(() => undefined);
  return { ok: res.ok, status: res.status };
};

export type AlertStore = Pick<Store, 'listBudgets' | 'usageGroups' | 'recordBudgetAlert' | 'dueBudgetAlerts' | 'markBudgetAlert'>;

/** Sends every due alert once; failures are rescheduled. Never throws. */
export async function deliverDue(store: AlertStore, url: string | undefined, nowMillis: number, post: Poster, logger: Logger): Promise<number> {
  if (url === undefined) return 0;
  const due = await store.dueBudgetAlerts(new Date(nowMillis).toISOString(), MAX_ATTEMPTS, BATCH);
  let sent = 0;
  for (const a of due) {
    const attempts = a.attempts + 1;
    let error: string | null = null;
    try {
      const r = await post(url, JSON.stringify(alertPayload(a)));
      if (!r.ok) error = `HTTP ${r.status}`;
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? 'timed out' : 'request failed';
    }
    if (error === null) {
      sent++;
      await store.markBudgetAlert(a.id, { deliveredAt: new Date(nowMillis).toISOString(), attempts, nextAttemptAt: null, lastError: null });
      logger.info({ msg: 'budget alert sent', scope: a.scope, threshold: a.threshold, month: a.month });
    } else {
      const next = attempts >= MAX_ATTEMPTS ? null : new Date(nowMillis + retryDelayMillis(attempts)).toISOString();
      await store.markBudgetAlert(a.id, { deliveredAt: null, attempts, nextAttemptAt: next, lastError: error });
      logger.warn({ msg: 'budget alert not delivered', scope: a.scope, threshold: a.threshold, attempts, error, gave_up: next === null });
    }
  }
  return sent;
}

/** One round: record new crossings, then deliver what is due. Never throws. */
export async function checkBudgets(deps: { store: AlertStore; prices: PriceBook; url: string | undefined; now: () => Date; post?: Poster; logger: Logger }): Promise<void> {
  const nowMillis = deps.now().getTime();
  try {
    const added = await recordCrossings(deps.store, deps.prices, nowMillis);
    if (added > 0) deps.logger.info({ msg: 'budget thresholds crossed', count: added });
    await deliverDue(deps.store, deps.url, nowMillis, deps.post ?? fetchPoster, deps.logger);
  } catch (err) {
    deps.logger.error({ msg: 'budget check failed', error: (err as Error).message });
  }
}

/** Starts the periodic check (unref'd timer, one round at a time); returns a stop function. */
export function startBudgetMonitor(deps: Parameters<typeof checkBudgets>[0], intervalMillis = CHECK_INTERVAL_MILLIS): { stop(): Promise<void>; runNow(): Promise<void> } {
  let running: Promise<void> | null = null;
  const run = () => {
    running ??= checkBudgets(deps).finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void run(), intervalMillis);
  timer.unref();
  return {
    runNow: run,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
