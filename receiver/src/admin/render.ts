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
import { renderKeys } from './views/keys';
import { type RenderMode, documentShell, header } from './views/layout';
import { renderInactive } from './views/seats';
import { renderSummary } from './views/summary';
import { type Column, type TableContext, dataTable } from './views/table';
import { byModelTable, renderUsage } from './views/usage';
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

function seatsByDivision(data: DashboardData): Map<string, number> {
  const seats = new Map<string, number>();
  for (const u of data.users) if (u.revokedAt === null) seats.set(u.division, (seats.get(u.division) ?? 0) + 1);
  return seats;
}

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
  const body =
    header(mode, ctx.params) +
    `<main>${snapshot}${warn}${renderFlash(opts.flash ?? null)}` +
    filterBar(ctx, data.filter, data) +
    exportLinks(ctx) +
    renderSummary(data.summary, rangeLabel(data), data.seatValue, opts.seatPriceUsd ?? null) +
    (opts.budgets === undefined ? '' : renderBudgets(opts.budgets.statuses, opts.budgets.alerts, mode, { month: data.seatValue.month, tz, webhook: opts.budgets.webhook })) +
    renderUsage(ctx, data, { tz, seats: seatsByDivision(data) }) +
    renderInactive(ctx, data.users, Date.parse(data.generatedAt), tz) +
    renderWindows(ctx, data.windows, tz, data.windowsFromIso) +
    renderEvents(ctx, data.events, data.eventsPage, EVENTS_PAGE, tz) +
    renderKeys(ctx, data.keys, mode, tz) +
    renderUsers(ctx, data.users, mode, data.generatedAt, tz) +
    renderAudit(ctx, opts.audit ?? [], opts.auditPage ?? 1, tz) +
    `</main>`;
  const title = mode.kind === 'export' ? `ccflux usage snapshot ${data.generatedAt}` : 'ccflux admin';
  return documentShell(title, body, { exportMeta: mode.kind === 'export' });
}

/** One user's page: totals, models, daily trend, 5-hour windows, sessions and devices. */
export function renderUserPage(email: string, data: DashboardData, sessions: readonly SessionRow[], opts: DashboardOptions): string {
  const ctx = tableContext(opts.mode, opts.params, '/admin/user');
  const tz = data.filter.tz;
  const user = data.users.find((u) => u.email === email);
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
  const keys = data.keys.filter((k) => k.email === email);
  const body =
    header(opts.mode, ctx.params) +
    `<main><p class="note"><a href="/admin/">← Dashboard</a></p>` +
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
    renderKeys(ctx, keys, opts.mode, tz) +
    `</main>`;
  return documentShell(`ccflux admin — ${email}`, body);
}
