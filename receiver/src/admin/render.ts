/**
 * Pure render functions: dashboard data + mode in, an HTML string out. Every value is escaped
 * by `esc()` in the view that prints it; nothing here touches the request, the clock or the db.
 */
import { esc } from './esc';
import type { DashboardData } from './queries';
import { REPORT_DAYS } from './queries';
import { renderEvents } from './views/events';
import { renderKeys } from './views/keys';
import { type RenderMode, documentShell, header } from './views/layout';
import { renderSummary } from './views/summary';
import { renderUsage } from './views/usage';
import { renderUsers } from './views/users';
import { renderWindows } from './views/windows';

export type { RenderMode } from './views/layout';
export { renderLogin, renderMessage } from './views/login';

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
}

export function renderDashboard(data: DashboardData, opts: DashboardOptions): string {
  const { mode } = opts;
  const warnings = mode.kind === 'export' ? [] : (opts.warnings ?? []);
  const warn = warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('');
  const snapshot =
    mode.kind === 'export'
      ? `<p class="note">Read-only snapshot generated ${esc(data.generatedAt)}. Usage since ${esc(data.sinceUtc)}.</p>`
      : `<p class="note">Generated ${esc(data.generatedAt)}. Usage since ${esc(data.sinceUtc)} (UTC).</p>`;
  const body =
    header(mode) +
    `<main>${snapshot}${warn}${renderFlash(opts.flash ?? null)}` +
    renderSummary(data.summary, REPORT_DAYS) +
    renderUsage(data, REPORT_DAYS) +
    renderWindows(data.windows, REPORT_DAYS) +
    renderEvents(data.events) +
    renderKeys(data.keys, mode) +
    renderUsers(data.users, mode, data.generatedAt) +
    `</main>`;
  const title = mode.kind === 'export' ? `ccflux usage snapshot ${data.generatedAt}` : 'ccflux admin';
  return documentShell(title, body, { exportMeta: mode.kind === 'export' });
}
