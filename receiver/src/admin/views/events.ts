/** The most recent usage events, newest first. */
import { esc } from '../esc';
import type { EventRow } from '../queries';
import { num, when } from './format';

export function renderEvents(rows: readonly EventRow[]): string {
  if (rows.length === 0) return `<section id="events"><h2>Recent events</h2><p class="note">No reports received yet.</p></section>`;
  const body = rows
    .map(
      (e) =>
        `<tr><td>${when(e.receivedAt)}</td><td>${when(e.timestampUtc)}</td><td class="mono">${esc(e.userEmail)}</td>` +
        `<td class="mono">${esc(e.deviceId)}</td><td class="mono">${esc(e.sessionId)}</td><td class="n">${num(e.turnIndex)}</td>` +
        `<td class="mono">${esc(e.model)}</td><td class="n">${num(e.input)}</td><td class="n">${num(e.output)}</td>` +
        `<td class="n">${num(e.cacheRead)}</td><td class="n">${num(e.cacheWrite)}</td><td>${esc(e.signed ? 'yes' : 'no')}</td>` +
        `<td class="mono">${esc(e.pluginVersion)}</td></tr>`,
    )
    .join('');
  return (
    `<section id="events"><h2>Recent events</h2><p class="note">The last ${num(rows.length)} rows received, one per turn and model.</p>` +
    `<div class="scroll"><table><thead><tr><th>Received</th><th>Turn time</th><th>User</th><th>Device</th><th>Session</th>` +
    `<th class="n">Turn</th><th>Model</th><th class="n">Input</th><th class="n">Output</th><th class="n">Cache read</th>` +
    `<th class="n">Cache write</th><th>Signed</th><th>Plugin</th></tr></thead><tbody>${body}</tbody></table></div></section>`
  );
}
