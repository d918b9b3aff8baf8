/** Usage and cost by user, by model and by division, and the daily chart. */
import { esc } from '../esc';
import { hrefWith } from '../filters';
import type { DayRow, UsageRow } from '../queries';
import { dailyChart } from './chart';
import { cacheHitRate, money, num, total, whenIn } from './format';
import { type Column, type TableContext, dataTable } from './table';

function tokenColumns(): Column<UsageRow>[] {
  return [
    { key: 'sessions', label: 'Sessions', numeric: true, sort: (r) => r.sessions, cell: (r) => num(r.sessions) },
    { key: 'turns', label: 'Turns', numeric: true, sort: (r) => r.turns, cell: (r) => num(r.turns) },
    { key: 'input', label: 'Input', numeric: true, sort: (r) => r.input, cell: (r) => num(r.input) },
    { key: 'output', label: 'Output', numeric: true, sort: (r) => r.output, cell: (r) => num(r.output) },
    { key: 'cacheRead', label: 'Cache read', numeric: true, sort: (r) => r.cacheRead, cell: (r) => num(r.cacheRead) },
    { key: 'cacheWrite', label: 'Cache write', numeric: true, sort: (r) => r.cacheWrite, cell: (r) => num(r.cacheWrite) },
    { key: 'total', label: 'Total', numeric: true, sort: (r) => total(r), cell: (r) => num(total(r)) },
    { key: 'hit', label: 'Cache hit', numeric: true, cell: (r) => cacheHitRate(r) },
    { key: 'cost', label: 'Cost (API list)', numeric: true, sort: (r) => r.cost.usd, cell: (r) => money(r.cost) },
  ];
}

export function userLink(ctx: TableContext, email: string): string {
  if (!ctx.interactive) return `<span class="mono">${esc(email)}</span>`;
  const keep = new URLSearchParams();
  for (const k of ['range', 'from', 'to', 'tz']) {
    const v = ctx.params.get(k);
    if (v !== null) keep.set(k, v);
  }
  keep.set('email', email);
  return `<a class="mono" href="${esc(`/admin/user?${keep.toString()}`)}">${esc(email)}</a>`;
}

function filterLink(ctx: TableContext, name: 'model' | 'division', value: string, label: string): string {
  if (!ctx.interactive) return esc(label);
  return `<a href="${esc(hrefWith(ctx.path, ctx.params, { [name]: value }))}" title="${esc(`filter by this ${name}`)}">${esc(label)}</a>`;
}

export function byUserTable(ctx: TableContext, rows: readonly UsageRow[], tz: string, opts: { fixed?: boolean } = {}): string {
  const cols: Column<UsageRow>[] = [
    { key: 'user', label: 'User', sort: (r) => r.key, search: (r) => `${r.key} ${r.label ?? ''}`, cell: (r) => userLink(ctx, r.key) },
    { key: 'division', label: 'Division', sort: (r) => r.label ?? '', cell: (r) => (r.label ? filterLink(ctx, 'division', r.label, r.label) : '') },
    ...tokenColumns(),
    { key: 'last', label: 'Last turn', sort: (r) => r.lastSeen, cell: (r) => whenIn(r.lastSeen, tz) },
  ];
  return dataTable(ctx, 'byuser', rows, cols, { empty: 'No usage reported in this range.', searchLabel: 'Search users or divisions', ...opts });
}

export function byModelTable(ctx: TableContext, rows: readonly UsageRow[], tz: string): string {
  const cols: Column<UsageRow>[] = [
    { key: 'model', label: 'Model', sort: (r) => r.key, search: (r) => r.key, cell: (r) => `<span class="mono">${filterLink(ctx, 'model', r.key, r.key)}</span>` },
    { key: 'family', label: 'Price family', sort: (r) => r.label ?? '', cell: (r) => (r.label === null ? `<span class="unpriced">unpriced</span>` : esc(r.label)) },
    { key: 'users', label: 'Users', numeric: true, sort: (r) => r.users, cell: (r) => num(r.users) },
    ...tokenColumns(),
    { key: 'last', label: 'Last turn', sort: (r) => r.lastSeen, cell: (r) => whenIn(r.lastSeen, tz) },
  ];
  return dataTable(ctx, 'bymodel', rows, cols, { empty: 'No usage reported in this range.', searchLabel: 'Search models' });
}

export function byDivisionTable(ctx: TableContext, rows: readonly UsageRow[], seats: ReadonlyMap<string, number>): string {
  const cols: Column<UsageRow>[] = [
    { key: 'division', label: 'Division', sort: (r) => r.key, search: (r) => r.key, cell: (r) => (r.key === '' ? esc('(none)') : filterLink(ctx, 'division', r.key, r.key)) },
    { key: 'seats', label: 'Seats', numeric: true, sort: (r) => seats.get(r.key) ?? 0, cell: (r) => num(seats.get(r.key) ?? 0) },
    { key: 'users', label: 'Users reporting', numeric: true, sort: (r) => r.users, cell: (r) => num(r.users) },
    ...tokenColumns(),
    {
      key: 'perSeat',
      label: 'Cost per reporting user',
      numeric: true,
      sort: (r) => (r.users > 0 ? r.cost.usd / r.users : 0),
      cell: (r) => money({ ...r.cost, usd: r.users > 0 ? r.cost.usd / r.users : 0 }),
    },
  ];
  return dataTable(ctx, 'bydiv', rows, cols, { empty: 'No usage reported in this range.', searchLabel: 'Search divisions' });
}

const COST_NOTE =
  `<p class="note">Cost is the API-equivalent value at list prices (price table: see docs/admin.md). ` +
  `<b>~</b> marks an estimate: cache writes without the 5-minute/1-hour split are priced as 5-minute writes. ` +
  `"unpriced" marks models without a price; their tokens are never counted as $0.</p>`;

/** The overview's usage: the daily chart, the top users (linking to the full table), by model and by division. */
export function renderUsage(
  ctx: TableContext,
  data: { byUser: readonly UsageRow[]; byModel: readonly UsageRow[]; byDivision: readonly UsageRow[]; days: readonly DayRow[] },
  opts: { tz: string; seats: ReadonlyMap<string, number>; top?: { rows: number; href: string } },
): string {
  const top = opts.top;
  const byUser =
    top === undefined
      ? byUserTable(ctx, data.byUser, opts.tz)
      : byUserTable(ctx, data.byUser.slice(0, top.rows), opts.tz, { fixed: true }) +
        (data.byUser.length > 0
          ? `<p class="note"><a href="${esc(top.href)}">${esc(`All ${data.byUser.length.toLocaleString('en-US')} users by usage →`)}</a> (search, sort and pages)</p>`
          : '');
  return (
    `<section id="usage"><h2>Usage and cost</h2>` +
    `<h3>Tokens per day</h3>${dailyChart(data.days)}` +
    `<h3 id="byuser">${top === undefined ? 'By user' : `Top ${top.rows} users by cost`}</h3>${byUser}` +
    `<h3 id="bymodel">By model</h3>${byModelTable(ctx, data.byModel, opts.tz)}` +
    `<h3 id="bydiv">By division</h3>${byDivisionTable(ctx, data.byDivision, opts.seats)}` +
    `${COST_NOTE}</section>`
  );
}

/** The usage-by-user page: every user of the range, searched, sorted and paged. */
export function renderByUser(ctx: TableContext, rows: readonly UsageRow[], tz: string): string {
  return `<section id="byuser"><h2>Usage by user</h2>${byUserTable(ctx, rows, tz)}${COST_NOTE}</section>`;
}
