/**
 * The usage rollups (migration 9) that the dashboard, exports, budgets and /metrics read instead
 * of raw `usage_events`. Both backends maintain them in insertReport, in the same transaction as
 * the raw rows, from the rows actually inserted (a duplicate adds nothing), and migration 9
 * backfills them with the same definitions:
 *
 * - `usage_daily(user_id, day, model)` and `usage_hourly(user_id, hour, model)`: the token columns
 *   summed (floating point, like the views' TOTAL), `cw5m`/`cw1h` the schema-v2 split and
 *   `unsplit` the cache writes of rows without it, `web_search`, `model_turns` (raw rows = turns
 *   that used the model), `last_at` (latest turn time). Day is the UTC day of `timestamp_utc`,
 *   hour its first 13 characters (`YYYY-MM-DDTHH`).
 * - `turns`: turns (session, turn index) counted once, on the bucket of their first stored row;
 *   `sessions`: sessions counted once, on the bucket of their first stored row ("sessions started
 *   in range" in the views); `model_sessions`: sessions counted once per model, on the bucket
 *   where they first used it. "First" is the smallest id, which is the order insertReport stores
 *   a report's models in (sorted), so all three add up across days and hours.
 * - `usage_cum(user_id, model, hour)`: the same sums running from the user × model's first hour
 *   up to and including that hour, so any range's totals are two index seeks per user × model
 *   (`usage_user_models` lists the pairs): the views' cost does not grow with the days shown.
 *   A late report (an hour before the pair's latest) adds itself to every later hour too. Sums
 *   are floating point: a difference is exact while the pair's all-time total stays under 2^53.
 *   `last_received` (migration 10): so every report of the pair writes its latest row, which
 *   therefore holds the pair's latest `received_at` (the users page's "last report").
 * - `usage_org_daily(day, model, shard)`: the token sums of all users, for the daily chart, split
 *   over `user_id % ORG_SHARDS` rows so that reports of different users rarely wait on one row
 *   (the only rows several users add to; always one shard's rows, in model order).
 * - `usage_sessions(user_id, session_id)` and `usage_session_models(user_id, session_id, model)`:
 *   the "seen before" sets behind `sessions` and `model_sessions`; a turn is new when no raw row
 *   of (user, session, turn) existed before the insert (the per-user idempotency index answers).
 *
 * Every rollup row but the org shards belongs to one user. On PostgreSQL insertReport first takes a transaction
 * advisory lock on the user, so two reports of one user are applied one after the other (each
 * sees the other's rows: "seen before" is exact) and reports of different users never touch the
 * same per-user row. The org shard rows are the only shared ones: each report adds to one shard's
 * rows in model order, after its per-user rows, so two reports never wait on each other in a
 * cycle — no deadlock, unlike counters shared by every instance and updated in any order.
 */
import type { ModelUsage, ReportBody } from '../../../src/protocol/wire';

/** The summed rollup columns (all but `last_at`), in ROLLUP_COLUMNS order. */
export const CUM_COLUMNS = [
  'input',
  'output',
  'cache_read',
  'cache_write',
  'cw5m',
  'cw1h',
  'unsplit',
  'web_search',
  'model_turns',
  'turns',
  'sessions',
  'model_sessions',
] as const;
import { detailColumns } from './rules';

/** The rollup values one inserted raw row adds. */
export interface RollupDelta {
  model: string;
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
  cw5m: number;
  cw1h: number;
  unsplit: number;
  web_search: number;
  cw5mRaw: number | null;
  cw1hRaw: number | null;
  webSearchRaw: number | null;
}

/** Bucket keys of a report: every model of one report shares its turn's timestamp. */
export function rollupKeys(report: Pick<ReportBody, 'timestamp_utc'>): { day: string; hour: string } {
  return { day: report.timestamp_utc.slice(0, 10), hour: report.timestamp_utc.slice(0, 13) };
}

/** A report's models in the order they are stored (sorted: ids then follow model order). */
export function rollupDeltas(report: ReportBody): RollupDelta[] {
  return Object.keys(report.models)
    .sort()
    .map((model) => {
      const usage = report.models[model] as ModelUsage;
      const d = detailColumns(report.schema_version, usage);
      const split = d.cache_write_5m_tokens !== null && d.cache_write_1h_tokens !== null;
      return {
        model,
        input: usage.input_tokens,
        output: usage.output_tokens,
        cache_read: usage.cache_read_tokens,
        cache_write: usage.cache_write_tokens,
        cw5m: d.cache_write_5m_tokens ?? 0,
        cw1h: d.cache_write_1h_tokens ?? 0,
        unsplit: split ? 0 : usage.cache_write_tokens,
        web_search: d.web_search_requests ?? 0,
        cw5mRaw: d.cache_write_5m_tokens,
        cw1hRaw: d.cache_write_1h_tokens,
        webSearchRaw: d.web_search_requests,
      };
    });
}
