/**
 * Pure render functions: dashboard data + mode in, an HTML string out. Every value is escaped
 * by `esc()` in the view that prints it; nothing here touches the request, the clock or the db.
 */
import type { AuditRow, BudgetAlertRow } from '../store';
import type { BudgetStatus } from './budgets';
import { renderBudgets } from './views/budgets';
import { esc } from './esc';
import { exportLinks, renderAudit } from './views/audit';
import type { DashboardData, SessionRow } from './queries';
import { dailyChart } from './views/chart';
import { renderEvents } from './views/events';
import { filterBar } from './views/filterbar';
import { money, num, whenIn } from './views/format';
import { keyStatus, renderKeys } from './views/keys';
import { type RenderMode, documentShell, header } from './views/layout';
import { renderInactive } from './views/seats';
import { renderSummary } from './views/summary';
import { type Column, type TableContext, dataTable } from './views/table';
import { byModelTable, renderByUser, renderUsage } from './views/usage';
import { type ViewName, VIEW_LABELS, viewHref } from './pages';
import { renderUsers } from './views/users';
import { renderWindows } from './views/windows';
import { EVENTS_PAGE } from './queries';

export type { RenderMode } from './views/layout';
export { renderConfirm, renderLogin, renderMessage, waitText } from './views/login';

/** Shown once on the page after a POST, then forgotten. */
export type Flash =
  | { kind: 'ok' | 'error'; text: string }
  | { kind: 'token'; action: 'provisioned' | 'reissued'; email: string; refreshToken: string; endpoint: string | null };

function renderFlash(flash: Flash | null): string {
  if (flash === null) return '';
  if (flash.kind !== 'token') return `<div class="flash ${esc(flash.kind)}" role="status">${esc(flash.text)}</div>`;
  const endpoint = flash.endpoint ?? 'https://<this receiver>';
  return (
    `<div class="secret" role="status"><h2>Refresh token ${esc(flash.action)} for ${esc(flash.email)}</h2>` +
    `<p>Shown once: it is stored only as a hash. Send both values to the user over a private channel.</p>` +
    `<p>Endpoint<code>${esc(endpoint)}</code>Refresh token<code>${esc(flash.refreshToken)}</code></p>` +
    `<p class="note">In Claude Code: <code>/plugin</code> → ccflux → configure, and enter them as ` +
    `"ccflux receiver endpoint" and "ccflux refresh token". Outside the plugin options: run <code>ccflux login</code>.</p></div>`
  );
}

export interface DashboardOptions {
  mode: RenderMode;
  /** The page shown; an exported snapshot shows every section. */
  view?: ViewName;
  flash?: Flash | null;
  /** Shown to a logged-in admin only. */
  warnings?: readonly string[];
  /** The request's query (filters, table state); empty for the defaults. */
  params?: URLSearchParams;
  seatPriceUsd?: number | null;
  audit?: readonly AuditRow[];
  auditPage?: number;
  budgets?: { statuses: readonly BudgetStatus[]; alerts: readonly BudgetAlertRow[]; webhook: boolean };
}

export function rangeLabel(data: Pick<DashboardData, 'filter'>): string {
  const f = data.filter;
  const names: Record<string, string> = { '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days', '90d': 'last 90 days' };
  return names[f.range] ?? `${f.fromDay} to ${f.toDay}`;
}

function tableContext(mode: RenderMode, params: URLSearchParams | undefined, path: string): TableContext {
  return { path, params: params ?? new URLSearchParams(), interactive: mode.kind !== 'export' };
}

/** How many users the overview lists before linking to the full table. */
export const OVERVIEW_TOP_USERS = 10;

type Section = (data: DashboardData, opts: DashboardOptions, ctx: TableContext) => string;

const summary: Section = (data, opts) => (data.seatValue === null ? '' : renderSummary(data.summary, rangeLabel(data), data.seatValue, opts.seatPriceUsd ?? null));
const budgets =
  (summaryHref?: string): Section =>
  (data, opts) => {
    if (opts.budgets === undefined || data.seatValue === null) return '';
    const mode = summaryHref === undefined ? opts.mode : { kind: 'readonly' as const };
    return renderBudgets(opts.budgets.statuses, opts.budgets.alerts, mode, { month: data.seatValue.month, tz: data.filter.tz, webhook: opts.budgets.webhook, ...(summaryHref === undefined ? {} : { summaryHref }) });
  };
const seats = (data: DashboardData) => new Map(Object.entries(data.divisionSeats));
const usage =
  (top: boolean): Section =>
  (data, _opts, ctx) =>
    renderUsage(ctx, data, { tz: data.filter.tz, seats: seats(data), ...(top ? { top: { rows: OVERVIEW_TOP_USERS, href: viewHref('usage', ctx.params) } } : {}) });
const byUser: Section = (data, _opts, ctx) => renderByUser(ctx, data.byUser, data.filter.tz);
const inactive: Section = (data, _opts, ctx) => renderInactive(ctx, { rows: data.inactive, ...data.inactivePage }, data.filter.tz);
const windows: Section = (data, _opts, ctx) => renderWindows(ctx, data.windows, data.filter.tz, data.windowsFromIso);
const events: Section = (data, _opts, ctx) => renderEvents(ctx, data.events, data.eventsPage, EVENTS_PAGE, data.filter.tz);
const keys: Section = (data, opts, ctx) => renderKeys(ctx, { rows: data.keys, ...data.keysPage }, data.keyCounts, opts.mode, data.filter.tz);
const users: Section = (data, opts, ctx) => renderUsers(ctx, { rows: data.users, ...data.usersPage }, opts.mode, data.generatedAt, data.filter.tz);
const audit: Section = (_data, opts, ctx) => renderAudit(ctx, opts.audit ?? [], opts.auditPage ?? 1, _data.filter.tz);

/** What each page renders, top to bottom; `undefined` (a snapshot) renders every section. */
const PAGE_SECTIONS: Record<ViewName | 'snapshot', readonly Section[]> = {
  overview: [summary, budgets('/admin/?view=budgets'), usage(true)],
  usage: [byUser],
  users: [users],
  keys: [keys],
  inactive: [inactive],
  windows: [windows],
  events: [events],
  audit: [audit],
  budgets: [budgets()],
  snapshot: [summary, budgets(), usage(false), inactive, windows, events, keys, users, audit],
};

export function renderDashboard(data: DashboardData, opts: DashboardOptions): string {
  const { mode } = opts;
  const ctx = tableContext(mode, opts.params, '/admin/');
  const tz = data.filter.tz;
  const warnings = mode.kind === 'export' ? [] : (opts.warnings ?? []);
  const warn = warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('');
  const snapshot =
    mode.kind === 'export'
      ? `<p class="note">Read-only snapshot generated ${esc(data.generatedAt)}. Usage since ${esc(data.sinceUtc)}.</p>`
      : `<p class="note">Generated ${whenIn(data.generatedAt, tz)}. Usage from ${esc(data.filter.fromIso)} to ${esc(data.filter.toIso)} (UTC). Prices: ${esc(data.pricesSource)}.</p>`;
  const view = mode.kind === 'export' ? 'snapshot' : (opts.view ?? 'overview');
  const body =
    header(mode, ctx.params, view === 'snapshot' ? null : view) +
    `<main>${snapshot}${warn}${renderFlash(opts.flash ?? null)}` +
    filterBar(ctx, data.filter, data) +
    exportLinks(ctx) +
    PAGE_SECTIONS[view].map((section) => section(data, opts, ctx)).join('') +
    `</main>`;
  const title = mode.kind === 'export' ? `ccflux usage snapshot ${data.generatedAt}` : view === 'overview' || view === 'snapshot' ? 'ccflux admin' : `ccflux admin — ${VIEW_LABELS[view]}`;
  return documentShell(title, body, { exportMeta: mode.kind === 'export' });
}

/** One user's page: totals, models, daily trend, 5-hour windows, sessions and devices. */
export function renderUserPage(email: string, data: DashboardData, sessions: readonly SessionRow[], opts: DashboardOptions): string {
  const ctx = tableContext(opts.mode, opts.params, '/admin/user');
  const tz = data.filter.tz;
  const user = data.users.find((u) => u.email === email);
  const flash = renderFlash(opts.flash ?? null);
  const s = data.summary;
  const win = data.windows.find((w) => w.user === email);
  const windowRows = win?.recent ?? [];
  const sessionCols: Column<SessionRow>[] = [
    { key: 'session', label: 'Session', sort: (r) => r.sessionId, search: (r) => `${r.sessionId} ${r.models}`, cell: (r) => `<span class="mono">${esc(r.sessionId)}</span>` },
    { key: 'first', label: 'First turn', sort: (r) => r.firstAt, cell: (r) => whenIn(r.firstAt, tz) },
    { key: 'last', label: 'Last turn', sort: (r) => r.lastAt, cell: (r) => whenIn(r.lastAt, tz) },
    { key: 'turns', label: 'Turns', numeric: true, sort: (r) => r.turns, cell: (r) => num(r.turns) },
    { key: 'models', label: 'Models', cell: (r) => `<span class="mono">${esc(r.models)}</span>` },
    { key: 'tokens', label: 'Tokens', numeric: true, sort: (r) => r.input + r.output + r.cacheRead + r.cacheWrite, cell: (r) => num(r.input + r.output + r.cacheRead + r.cacheWrite) },
    { key: 'cost', label: 'Cost', numeric: true, sort: (r) => r.cost.usd, cell: (r) => money(r.cost) },
  ];
  const windowList = windowRows
    .map((w) => `<tr><td>${whenIn(new Date(w.startMillis).toISOString(), tz)}</td><td>${whenIn(new Date(w.endMillis).toISOString(), tz)}</td><td class="n">${num(w.tokens)}</td><td class="n">${num(w.turns)}</td></tr>`)
    .join('');
  const body =
    header(opts.mode, ctx.params) +
    `<main><p class="note"><a href="${esc(viewHref('overview', ctx.params))}">← Dashboard</a></p>${flash}` +
    `<section id="user"><h2>${esc(email)}</h2>` +
    (user === undefined
      ? `<p class="warn">No such user.</p>`
      : `<p class="note">Division ${esc(user.division || '(none)')} · provisioned ${whenIn(user.createdAt, tz)} · ${esc(user.revokedAt ? 'revoked' : 'active')} · last turn ${whenIn(user.lastUsageAt, tz)}</p>`) +
    `<div class="tiles"><div class="tile"><b>${money(s.cost)}</b><span>cost, ${esc(rangeLabel(data))}</span></div>` +
    `<div class="tile"><b>${num(s.sessions)}</b><span>sessions</span></div><div class="tile"><b>${num(s.turns)}</b><span>turns</span></div>` +
    `<div class="tile"><b>${num(s.input + s.output + s.cacheRead + s.cacheWrite)}</b><span>tokens</span></div></div></section>` +
    filterBar(ctx, data.filter, data) +
    `<section id="trend"><h2>Daily trend</h2>${dailyChart(data.days)}</section>` +
    `<section id="models"><h2>Models</h2>${byModelTable(ctx, data.byModel, tz)}</section>` +
    `<section id="uwindows"><h2>5-hour windows</h2>` +
    (windowList === ''
      ? `<p class="note">No usage in this range.</p>`
      : `<p class="note">Latest ${num(windowRows.length)} of ${num(win?.windows ?? 0)} windows; peak ${num(win?.peak.tokens ?? 0)} tokens.</p>` +
        `<div class="scroll"><table><thead><tr><th>Start</th><th>End</th><th class="n">Tokens</th><th class="n">Turns</th></tr></thead><tbody>${windowList}</tbody></table></div>`) +
    `</section>` +
    `<section id="sessions"><h2>Sessions</h2>${dataTable(ctx, 'sessions', sessions, sessionCols, { empty: 'No sessions in this range.', searchLabel: 'Search sessions or models' })}</section>` +
    renderKeys(ctx, { rows: data.keys, ...data.keysPage }, { total: data.keys.length, active: data.keys.filter((k) => keyStatus(k) === 'active').length }, opts.mode, tz) +
    `</main>`;
  return documentShell(`ccflux admin — ${email}`, body);
}
