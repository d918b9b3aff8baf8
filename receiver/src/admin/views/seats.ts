/** Inactive seats: provisioned, not revoked, no turn in the last N days (seats to reclaim). */
import { esc } from '../esc';
import type { UserRow } from '../queries';
import { whenIn } from './format';
import { type Column, type PagedRows, type TableContext, dataTable } from './table';
import { userLink } from './usage';

export const INACTIVE_DAYS_DEFAULT = 30;

export function inactiveDays(params: URLSearchParams): number {
  const n = Number(params.get('inactive') ?? INACTIVE_DAYS_DEFAULT);
  return Number.isSafeInteger(n) && n >= 1 && n <= 3650 ? n : INACTIVE_DAYS_DEFAULT;
}

/** One SQL page of inactive seats (no turn in the last `inactive` days, queries.ts). */
export function renderInactive(ctx: TableContext, rows: PagedRows<UserRow>, tz: string): string {
  const days = inactiveDays(ctx.params);
  const cols: Column<UserRow>[] = [
    { key: 'email', label: 'User', sort: (r) => r.email, search: (r) => `${r.email} ${r.division}`, cell: (r) => userLink(ctx, r.email) },
    { key: 'division', label: 'Division', sort: (r) => r.division, cell: (r) => esc(r.division) },
    { key: 'created', label: 'Provisioned', sort: (r) => r.createdAt, cell: (r) => whenIn(r.createdAt, tz) },
    { key: 'last', label: 'Last turn', sort: (r) => r.lastUsageAt, cell: (r) => (r.lastUsageAt === null ? esc('never') : whenIn(r.lastUsageAt, tz)) },
    { key: 'devices', label: 'Devices', numeric: true, sort: (r) => r.devices, cell: (r) => esc(String(r.devices)) },
  ];
  const form = ctx.interactive
    ? `<form class="row" method="get" action="${esc(`${ctx.path}#inactive`)}">` +
      [...ctx.params].filter(([k]) => k !== 'inactive' && k !== 'inactive.page').map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('') +
      `<label>No usage for (days)<input type="number" name="inactive" min="1" max="3650" value="${esc(String(days))}"></label><button type="submit">Show</button></form>`
    : '';
  return (
    `<section id="inactive"><h2>Inactive seats</h2><p class="note">${esc(String(rows.total))} active users with no turn in the last ${esc(String(days))} days ` +
    `(any model, any range): candidates to reclaim.</p>${form}` +
    dataTable(ctx, 'inactive', rows, cols, { empty: 'Every active user reported usage in this period.', searchLabel: 'Search users' }) +
    `</section>`
  );
}
