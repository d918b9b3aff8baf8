/** The most recent usage rows in the range, newest first, paged in SQL (`events.page`). */
import { esc } from '../esc';
import { hrefWith } from '../filters';
import type { EventRow } from '../queries';
import { num, whenIn } from './format';
import type { TableContext } from './table';

export function renderEvents(ctx: TableContext, rows: readonly EventRow[], page: number, pageSize: number, tz: string): string {
  const title = '<h2>Recent events</h2>';
  if (rows.length === 0 && page === 1) return `<section id="events">${title}<p class="note">No reports in this range.</p></section>`;
  const body = rows
    .map(
      (e) =>
        `<tr><td>${whenIn(e.receivedAt, tz)}</td><td>${whenIn(e.timestampUtc, tz)}</td><td class="mono">${esc(e.userEmail)}</td>` +
        `<td class="mono">${esc(e.deviceId)}</td><td class="mono">${esc(e.sessionId)}</td><td class="n">${num(e.turnIndex)}</td>` +
        `<td class="mono">${esc(e.model)}</td><td class="n">${num(e.input)}</td><td class="n">${num(e.output)}</td>` +
        `<td class="n">${num(e.cacheRead)}</td><td class="n">${num(e.cacheWrite)}</td><td>${esc(e.signed ? 'yes' : 'no')}</td>` +
        `<td class="mono">${esc(e.pluginVersion)}</td></tr>`,
    )
    .join('');
  let pager = '';
  if (ctx.interactive) {
    const link = (p: number) => esc(`${hrefWith(ctx.path, ctx.params, { 'events.page': p === 1 ? null : String(p) })}#events`);
    const prev = page > 1 ? `<a rel="prev" href="${link(page - 1)}">← Newer</a>` : '';
    const next = rows.length === pageSize ? `<a rel="next" href="${link(page + 1)}">Older →</a>` : '';
    pager = `<p class="pager">${prev} <span>Page ${num(page)}</span> ${next}</p>`;
  }
  return (
    `<section id="events">${title}<p class="note">Rows received in the range, one per turn and model, newest first.</p>` +
    `<div class="scroll"><table data-table="events"><thead><tr><th>Received</th><th>Turn time</th><th>User</th><th>Device</th><th>Session</th>` +
    `<th class="n">Turn</th><th>Model</th><th class="n">Input</th><th class="n">Output</th><th class="n">Cache read</th>` +
    `<th class="n">Cache write</th><th>Signed</th><th>Plugin</th></tr></thead><tbody>${body}</tbody></table></div>${pager}</section>`
  );
}
