/**
 * CSV and JSON exports of usage (user × model × UTC day, with cost), raw usage rows, and the audit
 * log, for any range and filter. Streamed in bounded chunks (one day of groups, or 2,000 raw rows,
 * at a time) through `write`, which the caller makes wait for the sink to drain: memory stays
 * constant for a year of 1,000 users, and the database is never held across an await.
 * Shared by the dashboard (`/admin/export/...`) and `ccflux-receiver export`.
 */
import { csvLine } from '../csv';
import type { PriceBook } from '../prices/cost';
import { emptyTotal } from '../prices/cost';
import type { Store } from '../store';
import { type ViewFilter, daysOf } from './filters';
import { type FilterParams, filterParams, priceGroup } from './queries';

export const EXPORT_KINDS = ['usage', 'events', 'audit'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];
export type ExportFormat = 'csv' | 'json';

const RAW_PAGE = 2000;
const AUDIT_PAGE = 1000;

const COLUMNS: Record<ExportKind, readonly string[]> = {
  usage: [
    'day',
    'user_email',
    'division',
    'model',
    'price_family',
    'turns',
    'input_tokens',
    'output_tokens',
    'cache_read_tokens',
    'cache_write_tokens',
    'cache_write_5m_tokens',
    'cache_write_1h_tokens',
    'web_search_requests',
    'cost_usd',
    'cost_estimated',
  ],
  events: [
    'id',
    'timestamp_utc',
    'received_at',
    'user_email',
    'division',
    'device_id',
    'session_id',
    'turn_index',
    'model',
    'input_tokens',
    'output_tokens',
    'cache_read_tokens',
    'cache_write_tokens',
    'signed',
    'plugin_version',
    'schema_version',
  ],
  audit: ['id', 'at', 'actor', 'source', 'action', 'target', 'detail'],
};

export type ExportStore = Pick<Store, 'usageGroups' | 'rawEvents' | 'listAudit'>;

/** Records of one export, in order, a bounded chunk at a time. */
async function* records(store: ExportStore, kind: ExportKind, filter: ViewFilter, prices: PriceBook): AsyncGenerator<Record<string, unknown>[]> {
  const p: FilterParams = filterParams(filter);
  if (kind === 'usage') {
    for (const day of daysOf(filter)) {
      // One UTC day at a time, clipped to the range.
      const from = `${day}T00:00:00Z` > p.from ? `${day}T00:00:00Z` : p.from;
      const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().replace('.000Z', 'Z');
      // biome-ignore lint/complexity/useMathMinMax: ISO timestamps compared as text, not numbers
      const to = next < p.to ? next : p.to;
      const groups = await store.usageGroups({ ...p, from, to });
      if (groups.length === 0) continue;
      yield groups.map((g) => {
        const cost = priceGroup(prices, g, emptyTotal());
        const priced = cost.unpricedTokens === 0;
        return {
          day: g.day,
          user_email: g.user,
          division: g.division,
          model: g.model,
          price_family: prices.family(g.model)?.family ?? '',
          turns: g.turns,
          input_tokens: g.input,
          output_tokens: g.output,
          cache_read_tokens: g.cacheRead,
          cache_write_tokens: g.cacheWrite,
          cache_write_5m_tokens: g.unsplit > 0 ? null : g.cw5m,
          cache_write_1h_tokens: g.unsplit > 0 ? null : g.cw1h,
          web_search_requests: g.webSearch,
          cost_usd: priced ? Math.round(cost.usd * 1e6) / 1e6 : null,
          cost_estimated: priced ? cost.estimated : null,
        };
      });
    }
    return;
  }
  if (kind === 'events') {
    let after = 0;
    for (;;) {
      const rows = await store.rawEvents(p, after, RAW_PAGE);
      if (rows.length === 0) return;
      yield rows.map((r) => ({ ...r, signed: r.signed !== 0 }));
      after = rows[rows.length - 1]!.id;
      if (rows.length < RAW_PAGE) return;
    }
  }
  for (let offset = 0; ; offset += AUDIT_PAGE) {
    const rows = await store.listAudit({ fromIso: filter.fromIso, toIso: filter.toIso, limit: AUDIT_PAGE, offset });
    if (rows.length === 0) return;
    yield rows as unknown as Record<string, unknown>[];
    if (rows.length < AUDIT_PAGE) return;
  }
}

/** Writes the whole export through `write` (which waits for drain); returns the record count. */
export async function streamExport(
  store: ExportStore,
  kind: ExportKind,
  format: ExportFormat,
  filter: ViewFilter,
  prices: PriceBook,
  write: (chunk: string) => Promise<void>,
): Promise<number> {
  const columns = COLUMNS[kind];
  let count = 0;
  if (format === 'csv') await write(csvLine(columns));
  else await write('[');
  for await (const chunk of records(store, kind, filter, prices)) {
    let text = '';
    for (const r of chunk) {
      if (format === 'csv') text += csvLine(columns.map((c) => r[c]));
      else text += `${count === 0 ? '\n' : ',\n'}${JSON.stringify(Object.fromEntries(columns.map((c) => [c, r[c] ?? null])))}`;
      count++;
    }
    await write(text);
  }
  if (format === 'json') await write(count === 0 ? ']\n' : '\n]\n');
  return count;
}

/** `ccflux-usage-2026-04-11_2026-05-11.csv` */
export function exportFileName(kind: ExportKind, format: ExportFormat, filter: ViewFilter): string {
  const name = kind === 'usage' ? 'usage' : kind === 'events' ? 'usage-events' : 'audit';
  return `ccflux-${name}-${filter.fromDay}_${filter.toDay}.${format}`;
}

/** A `write` for a Node stream that resolves once the stream can take more. */
export function drainingWriter(stream: NodeJS.WritableStream): (chunk: string) => Promise<void> {
  return (chunk) =>
    new Promise((resolve, reject) => {
      if (chunk === '') return resolve();
      const ok = stream.write(chunk, (err) => {
        if (err) reject(err);
      });
      if (ok) return resolve();
      // A client that goes away never drains: stop the export instead of waiting forever.
      const onDrain = () => {
        stream.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        stream.off('drain', onDrain);
        reject(new Error('export stream closed'));
      };
      stream.once('drain', onDrain);
      stream.once('close', onClose);
    });
}
