/**
 * One table renderer for every list on the dashboard: search, sort and pages, all as plain links
 * and GET forms in the URL (`<id>.q`, `<id>.sort`, `<id>.dir`, `<id>.page`), so it works without
 * JavaScript and a view can be bookmarked. In an exported snapshot there are no links or forms:
 * every row is printed. Rows arrive already bounded by their query.
 */
import { esc } from '../esc';
import { PAGE_SIZE, hrefWith, parseTable } from '../filters';
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

export function dataTable<T>(
  ctx: TableContext,
  id: string,
  rows: readonly T[],
  columns: readonly Column<T>[],
  opts: { empty: string; pageSize?: number; searchLabel?: string },
): string {
  const sortable = columns.filter((c) => c.sort !== undefined).map((c) => c.key);
  const state = parseTable(ctx.params, id, sortable);
  let list = rows as T[];
  const searchable = columns.filter((c) => c.search !== undefined);
  if (ctx.interactive && state.q !== '' && searchable.length > 0) {
    list = list.filter((r) => searchable.some((c) => c.search!(r).toLowerCase().includes(state.q)));
  }
  const sortCol = columns.find((c) => c.key === state.sort);
  if (ctx.interactive && sortCol?.sort !== undefined) {
    const key = sortCol.sort;
    const sign = state.dir === 'asc' ? 1 : -1;
    list = [...list].sort((a, b) => sign * compare(key(a), key(b)));
  }
  const size = opts.pageSize ?? PAGE_SIZE;
  const pages = Math.max(1, Math.ceil(list.length / size));
  const page = Math.min(state.page, pages);
  const shown = ctx.interactive ? list.slice((page - 1) * size, page * size) : list;

  const link = (changes: Record<string, string | null>) => esc(`${hrefWith(ctx.path, ctx.params, changes)}#${id}`);
  const head = columns
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
  const body = shown.map((r) => `<tr>${columns.map((c) => `<td${c.numeric ? ' class="n"' : ''}>${c.cell(r)}</td>`).join('')}</tr>`).join('');

  let search = '';
  if (ctx.interactive && searchable.length > 0) {
    search =
      `<form class="row search" method="get" action="${esc(`${ctx.path}#${id}`)}">` +
      hiddenParams(ctx.params, (k) => k === `${id}.q` || k === `${id}.page`) +
      `<label>${esc(opts.searchLabel ?? 'Search')}<input type="search" name="${esc(`${id}.q`)}" value="${esc(state.q)}" maxlength="255"></label>` +
      `<button type="submit">Search</button></form>`;
  }
  let pager = '';
  if (ctx.interactive && list.length > 0) {
    const first = (page - 1) * size + 1;
    const last = Math.min(page * size, list.length);
    const prev = page > 1 ? `<a rel="prev" href="${link({ [`${id}.page`]: String(page - 1) })}">← Previous</a>` : '';
    const nextLink = page < pages ? `<a rel="next" href="${link({ [`${id}.page`]: String(page + 1) })}">Next →</a>` : '';
    pager = `<p class="pager">${prev} <span>Rows ${num(first)}–${num(last)} of ${num(list.length)}</span> ${nextLink}</p>`;
  }
  if (list.length === 0) {
    const text = rows.length === 0 ? opts.empty : 'No rows match the search.';
    return `${search}<p class="note">${esc(text)}</p>`;
  }
  return `${search}<div class="scroll"><table data-table="${esc(id)}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>${pager}`;
}
