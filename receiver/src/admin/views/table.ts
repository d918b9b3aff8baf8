/**
 * One table renderer for every list on the dashboard: search, sort and pages, all as plain links
 * and GET forms in the URL (`<id>.q`, `<id>.sort`, `<id>.dir`, `<id>.page`), so it works without
 * JavaScript and a view can be bookmarked. In an exported snapshot there are no links or forms:
 * every row is printed. Rows arrive already bounded by their query.
 */
import { esc } from '../esc';
import { PAGE_SIZE, type TableState, hrefWith, parseTable } from '../filters';
import { num } from './format';

export interface Column<T> {
  key: string;
  label: string;
  numeric?: boolean;
  /** Sort key; omitted means the column is not sortable. */
  sort?: (row: T) => number | string | null;
  /** Included in the table's text search. */
  search?: (row: T) => string;
  /** Escaped HTML of the cell. */
  cell: (row: T) => string;
}

export interface TableContext {
  /** Path the links point at, e.g. `/admin/`. */
  path: string;
  params: URLSearchParams;
  /** False in an exported snapshot: no links, no forms, every row. */
  interactive: boolean;
}

/** Hidden inputs carrying the current query, minus `drop`, into a GET form. */
export function hiddenParams(params: URLSearchParams, drop: (name: string) => boolean): string {
  let out = '';
  for (const [k, v] of params) if (!drop(k)) out += `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`;
  return out;
}

function compare(a: number | string | null, b: number | string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b));
}

/** A page of rows already searched, sorted and paged by SQL (`PageInfo` from the query). */
export interface PagedRows<T> {
  rows: readonly T[];
  page: number;
  total: number;
  pageSize: number;
}

function headerRow<T>(ctx: TableContext, id: string, columns: readonly Column<T>[], state: TableState): string {
  const link = (changes: Record<string, string | null>) => esc(`${hrefWith(ctx.path, ctx.params, changes)}#${id}`);
  return columns
    .map((c) => {
      const cls = c.numeric ? ' class="n"' : '';
      if (!ctx.interactive || c.sort === undefined) return `<th${cls}>${esc(c.label)}</th>`;
      const active = state.sort === c.key;
      const next = active && state.dir === 'desc' ? 'asc' : 'desc';
      const arrow = active ? (state.dir === 'desc' ? ' ▼' : ' ▲') : '';
      const label = `${c.label}${arrow}`;
      return `<th${cls}${active ? ` aria-sort="${state.dir === 'desc' ? 'descending' : 'ascending'}"` : ''}><a href="${link({ [`${id}.sort`]: c.key, [`${id}.dir`]: next, [`${id}.page`]: null })}">${esc(label)}</a></th>`;
    })
    .join('');
}

function searchForm(ctx: TableContext, id: string, state: TableState, label: string | undefined): string {
  return (
    `<form class="row search" method="get" action="${esc(`${ctx.path}#${id}`)}">` +
    hiddenParams(ctx.params, (k) => k === `${id}.q` || k === `${id}.page`) +
    `<label>${esc(label ?? 'Search')}<input type="search" name="${esc(`${id}.q`)}" value="${esc(state.q)}" maxlength="255"></label>` +
    `<button type="submit">Search</button></form>`
  );
}

function pagerOf(ctx: TableContext, id: string, page: number, size: number, count: number): string {
  const pages = Math.max(1, Math.ceil(count / size));
  const link = (changes: Record<string, string | null>) => esc(`${hrefWith(ctx.path, ctx.params, changes)}#${id}`);
  const first = (page - 1) * size + 1;
  const last = Math.min(page * size, count);
  const prev = page > 1 ? `<a rel="prev" href="${link({ [`${id}.page`]: String(page - 1) })}">← Previous</a>` : '';
  const nextLink = page < pages ? `<a rel="next" href="${link({ [`${id}.page`]: String(page + 1) })}">Next →</a>` : '';
  return `<p class="pager">${prev} <span>Rows ${num(first)}–${num(last)} of ${num(count)}</span> ${nextLink}</p>`;
}

/**
 * A table from all its rows (searched, sorted and paged here; fine for rows a query already
 * aggregated, such as usage by user), or from one SQL page (`paged`: users, device keys).
 * Only the rows shown are rendered.
 */
export function dataTable<T>(
  ctx: TableContext,
  id: string,
  rows: readonly T[] | PagedRows<T>,
  columns: readonly Column<T>[],
  opts: { empty: string; pageSize?: number; searchLabel?: string; /** Rows only: no search, sort or pages (the overview's top users). */ fixed?: boolean },
): string {
  const live = ctx.interactive && opts.fixed !== true;
  const sortable = columns.filter((c) => c.sort !== undefined).map((c) => c.key);
  const state = parseTable(ctx.params, id, sortable);
  const searchable = columns.filter((c) => c.search !== undefined);
  let shown: readonly T[];
  let count: number;
  let page: number;
  let size: number;
  if (!Array.isArray(rows)) {
    const paged = rows as PagedRows<T>;
    ({ rows: shown, total: count, page, pageSize: size } = paged);
  } else {
    let list = rows as T[];
    if (live && state.q !== '' && searchable.length > 0) {
      list = list.filter((r) => searchable.some((c) => c.search!(r).toLowerCase().includes(state.q)));
    }
    const sortCol = columns.find((c) => c.key === state.sort);
    if (live && sortCol?.sort !== undefined) {
      const key = sortCol.sort;
      const sign = state.dir === 'asc' ? 1 : -1;
      list = [...list].sort((a, b) => sign * compare(key(a), key(b)));
    }
    size = opts.pageSize ?? PAGE_SIZE;
    count = list.length;
    page = Math.min(state.page, Math.max(1, Math.ceil(count / size)));
    shown = live ? list.slice((page - 1) * size, page * size) : list;
  }
  const search = live && searchable.length > 0 ? searchForm(ctx, id, state, opts.searchLabel) : '';
  if (count === 0) return `${search}<p class="note">${esc(state.q !== '' && live ? 'No rows match the search.' : opts.empty)}</p>`;
  const body = shown.map((r) => `<tr>${columns.map((c) => `<td${c.numeric ? ' class="n"' : ''}>${c.cell(r)}</td>`).join('')}</tr>`).join('');
  const pager = live ? pagerOf(ctx, id, page, size, count) : '';
  return `${search}<div class="scroll"><table data-table="${esc(id)}"><thead><tr>${headerRow({ ...ctx, interactive: live }, id, columns, state)}</tr></thead><tbody>${body}</tbody></table></div>${pager}`;
}
