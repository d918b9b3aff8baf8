/** The audit log: every admin action with time, source address and what changed, newest first. */
import { esc } from '../esc';
import { hrefWith } from '../filters';
import type { AuditRow } from '../../store';
import { num, whenIn } from './format';
import type { TableContext } from './table';

export const AUDIT_PAGE = 50;

function detailText(detail: string): string {
  if (detail === '') return '';
  try {
    const value = JSON.parse(detail) as Record<string, unknown>;
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(', ');
  } catch {
    return detail;
  }
}

export function renderAudit(ctx: TableContext, rows: readonly AuditRow[], page: number, tz: string): string {
  const head = '<h2>Audit log</h2><p class="note">Every admin action in the range: logins (also failed ones), logouts, provisioning, revocations, reissues, key revocations and budget changes, from the dashboard and the CLI.</p>';
  const download = ctx.interactive ? `<p class="note"><a href="${esc(hrefWith('/admin/export/audit.csv', ctx.params, {}))}">Download the audit log (CSV)</a></p>` : '';
  if (rows.length === 0 && page === 1) return `<section id="audit">${head}<p class="note">No admin actions in this range.</p>${download}</section>`;
  const body = rows
    .map(
      (r) =>
        `<tr><td>${whenIn(r.at, tz)}</td><td class="mono">${esc(r.action)}</td><td>${esc(r.actor)}</td><td class="mono">${esc(r.source)}</td>` +
        `<td class="mono">${esc(r.target)}</td><td>${esc(detailText(r.detail))}</td></tr>`,
    )
    .join('');
  let pager = '';
  if (ctx.interactive) {
    const link = (p: number) => esc(`${hrefWith(ctx.path, ctx.params, { 'audit.page': p === 1 ? null : String(p) })}#audit`);
    const prev = page > 1 ? `<a rel="prev" href="${link(page - 1)}">← Newer</a>` : '';
    const next = rows.length === AUDIT_PAGE ? `<a rel="next" href="${link(page + 1)}">Older →</a>` : '';
    pager = `<p class="pager">${prev} <span>Page ${num(page)}</span> ${next}</p>`;
  }
  return (
    `<section id="audit">${head}<div class="scroll"><table data-table="audit"><thead><tr><th>Time</th><th>Action</th><th>By</th>` +
    `<th>Source address</th><th>Target</th><th>What changed</th></tr></thead><tbody>${body}</tbody></table></div>${pager}${download}</section>`
  );
}

/** Links to the CSV/JSON exports of the current view (range and filters). */
export function exportLinks(ctx: TableContext): string {
  if (!ctx.interactive) return '';
  const link = (path: string, label: string) => `<a href="${esc(hrefWith(path, ctx.params, {}))}">${esc(label)}</a>`;
  return (
    `<p class="note exports">Download this range and filter: ` +
    `${link('/admin/export/usage.csv', 'usage per user, model and day (CSV)')} · ${link('/admin/export/usage.json', 'JSON')} · ` +
    `${link('/admin/export/events.csv', 'raw usage rows (CSV)')} · ${link('/admin/export/events.json', 'JSON')}</p>`
  );
}
