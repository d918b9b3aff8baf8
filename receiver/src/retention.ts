/**
 * RETENTION_DAYS: raw `usage_events` rows are purged once they are old enough; the rollups the
 * views read (usage_daily, usage_hourly) are kept. Raw rows are what makes a resent report
 * harmless (the per-user idempotency key), so a report whose turn is older than the horizon is
 * acknowledged without being counted: its rows may be gone, and counting it again would add it to
 * the rollups twice. The route decides by the turn's time (`isExpiredTurn`); the purge deletes by
 * the time a row was received, RETENTION_MARGIN_DAYS later, and that margin is what makes the two
 * agree: a turn is at most a day ahead of the clock it was received by (checkTurnTime), and the
 * rest covers clocks of instances that disagree by up to a day. So every purged row belongs to a
 * turn the route already refuses to count.
 *
 * The purge deletes in small batches, each its own short statement, yielding between batches so
 * nothing waits long behind it; on PostgreSQL concurrent instances skip each other's locked rows,
 * so several purging at once share the work and never wait on one another.
 */
import { parseTimestamp } from '../../src/protocol/wire';
import { DAY_MS, sqliteTimestamp } from './store/rules';
import type { Store } from './store/types';

export const RETENTION_MARGIN_DAYS = 2;
/** Rows per purge batch: one short transaction each. */
export const PURGE_BATCH_ROWS = 1_000;
/** Batches per purge run (the timer's next run continues). */
const MAX_BATCHES_PER_RUN = 1_000;

/** True when the turn at `timestampUtc` lies before the retention horizon: acknowledge, do not count. */
export function isExpiredTurn(timestampUtc: string, now: Date, retentionDays: number | null): boolean {
  if (retentionDays === null) return false;
  const at = parseTimestamp(timestampUtc);
  return at !== null && at.getTime() < now.getTime() - retentionDays * DAY_MS;
}

/** Raw rows received before this (`YYYY-MM-DD HH:MM:SS`, like `received_at`) may be purged. */
export function purgeCutoff(now: Date, retentionDays: number): string {
  return sqliteTimestamp(new Date(now.getTime() - (retentionDays + RETENTION_MARGIN_DAYS) * DAY_MS));
}

/** Purges raw rows past the horizon, batch by batch; resolves with how many were deleted. */
export async function purgeRawRows(
  store: Pick<Store, 'purgeUsageEvents'>,
  now: Date,
  retentionDays: number,
  batchRows = PURGE_BATCH_ROWS,
): Promise<number> {
  const cutoff = purgeCutoff(now, retentionDays);
  let total = 0;
  for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch++) {
    const deleted = await store.purgeUsageEvents(cutoff, batchRows);
    total += deleted;
    if (deleted < batchRows) break;
    // Let requests in between batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return total;
}
