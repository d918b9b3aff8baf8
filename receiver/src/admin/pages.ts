/**
 * The dashboard's pages: one GET URL each, `/admin/?view=<name>` (the overview without `view`),
 * shown as tabs in the header. Each page reads only the sections it shows (`sectionsOf`), so a
 * page's cost is that of its own tables, and the users and device keys tables are searched,
 * sorted and paged in SQL. Range and filters (FILTER_PARAMS) stay in the URL and follow every tab;
 * a table's own state (`users.page`, `keys.sort`, …) stays on its tab. Pure: params in, values out.
 */
import { PAGE_SIZE, parseTable } from './filters';
import { type DashboardSection, INACTIVE_SORTS, KEY_SORTS, type LoadOptions, MAX_LIST_ROWS, type TableQuery, USER_SORTS } from './queries';
import { inactiveDays } from './views/seats';

export const VIEWS = ['overview', 'usage', 'users', 'keys', 'inactive', 'windows', 'events', 'audit', 'budgets'] as const;
export type ViewName = (typeof VIEWS)[number];

/** Tab labels, in header order. */
export const VIEW_LABELS: Record<ViewName, string> = {
  overview: 'Overview',
  usage: 'Usage by user',
  users: 'Users',
  keys: 'Device keys',
  inactive: 'Inactive seats',
  windows: '5-hour windows',
  events: 'Events',
  audit: 'Audit log',
  budgets: 'Budgets',
};

/** The URL parameters every tab keeps: the range and the filters. */
export const FILTER_PARAMS = ['range', 'from', 'to', 'user', 'division', 'model', 'tz'] as const;

/** Table parameter prefixes of each page: an old link such as `/admin/?users.page=10` lands on its table. */
const TABLE_OF: readonly [string, ViewName][] = [
  ['users.', 'users'],
  ['keys.', 'keys'],
  ['audit.', 'audit'],
  ['events.', 'events'],
  ['byuser.', 'usage'],
  ['windows.', 'windows'],
  ['inactive', 'inactive'],
];

const SECTIONS: Record<ViewName, readonly DashboardSection[]> = {
  overview: ['totals', 'chart', 'month', 'seats'],
  usage: ['totals'],
  users: ['users'],
  keys: ['keys'],
  inactive: ['inactive'],
  windows: ['windows'],
  events: ['events'],
  audit: [],
  budgets: ['month'],
};

/** The page a dashboard URL shows: `view`, else the table its parameters name, else the overview. */
export function viewOf(params: URLSearchParams): ViewName {
  const v = params.get('view');
  if (v !== null && (VIEWS as readonly string[]).includes(v)) return v as ViewName;
  for (const k of params.keys()) {
    const hit = TABLE_OF.find(([prefix]) => k.startsWith(prefix));
    if (hit !== undefined) return hit[1];
  }
  return 'overview';
}

export function sectionsOf(view: ViewName): readonly DashboardSection[] {
  return SECTIONS[view];
}

/** The link to a tab: its name and the current range and filters, nothing else. */
export function viewHref(view: ViewName, params: URLSearchParams): string {
  const q = new URLSearchParams();
  if (view !== 'overview') q.set('view', view);
  for (const k of FILTER_PARAMS) {
    const v = params.get(k);
    if (v !== null && v !== '') q.set(k, v);
  }
  const qs = q.toString();
  return qs === '' ? '/admin/' : `/admin/?${qs}`;
}

function tableQuery(params: URLSearchParams, id: string, sorts: Record<string, readonly string[]>, every: boolean): TableQuery {
  if (every) return { q: '', sort: null, dir: 'desc', page: 1, pageSize: MAX_LIST_ROWS };
  const t = parseTable(params, id, Object.keys(sorts));
  return { q: t.q, sort: t.sort, dir: t.dir, page: t.page, pageSize: PAGE_SIZE };
}

/** The SQL table pages of a request: the page, sort and search of each table in the URL; `every`
 * row instead for an exported snapshot. */
export function tableOptions(params: URLSearchParams, nowMillis: number, every = false): Pick<LoadOptions, 'usersTable' | 'keysTable' | 'inactiveTable'> {
  const before = new Date(nowMillis - inactiveDays(params) * 24 * 3600 * 1000).toISOString();
  return {
    usersTable: tableQuery(params, 'users', USER_SORTS, every),
    keysTable: tableQuery(params, 'keys', KEY_SORTS, every),
    inactiveTable: { ...tableQuery(params, 'inactive', INACTIVE_SORTS, every), before: `${before.slice(0, 19)}Z` },
  };
}

/**
 * Where a mutation sends the browser back to: the page its form came from (a `back` field), when
 * that is a dashboard page; else the overview. Only `/admin/` and `/admin/user` with a query.
 */
export function backTo(value: string | null): string {
  if (value === null || value.length > 2000) return '/admin/';
  try {
    const u = new URL(value, 'http://x');
    if (u.origin !== 'http://x' || (u.pathname !== '/admin/' && u.pathname !== '/admin/user')) return '/admin/';
    return `${u.pathname}${u.search}`;
  } catch {
    return '/admin/';
  }
}
