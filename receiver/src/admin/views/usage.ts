/** Usage by user and by model, and the daily chart. */
import { esc } from '../esc';
import type { DayRow, UsageRow } from '../queries';
import { dailyChart } from './chart';
import { cacheHitRate, num, total, when } from './format';

function usageTable(rows: readonly UsageRow[], keyLabel: string, withUsers: boolean): string {
  if (rows.length === 0) return `<p class="note">No usage reported in this period.</p>`;
  const head =
    `<tr><th>${esc(keyLabel)}</th>${withUsers ? '<th class="n">Users</th>' : ''}<th class="n">Sessions</th><th class="n">Turns</th>` +
    `<th class="n">Input</th><th class="n">Output</th><th class="n">Cache read</th><th class="n">Cache write</th>` +
    `<th class="n">Total</th><th class="n">Cache hit</th><th>Last turn</th></tr>`;
  const body = rows
    .map(
      (r) =>
        `<tr><td class="mono">${esc(r.key)}</td>${withUsers ? `<td class="n">${num(r.users)}</td>` : ''}` +
        `<td class="n">${num(r.sessions)}</td><td class="n">${num(r.turns)}</td>` +
        `<td class="n">${num(r.input)}</td><td class="n">${num(r.output)}</td><td class="n">${num(r.cacheRead)}</td>` +
        `<td class="n">${num(r.cacheWrite)}</td><td class="n">${num(total(r))}</td><td class="n">${cacheHitRate(r)}</td>` +
        `<td>${when(r.lastSeen)}</td></tr>`,
    )
    .join('');
  return `<div class="scroll"><table><thead>${head}</thead><tbody>${body}</tbody></table></div>`;
}

export function renderUsage(data: { byUser: readonly UsageRow[]; byModel: readonly UsageRow[]; days: readonly DayRow[] }, periodDays: number): string {
  return (
    `<section id="usage"><h2>Usage, last ${num(periodDays)} days</h2>` +
    `<h3>Tokens per day</h3>${dailyChart(data.days)}` +
    `<h3>By user</h3>${usageTable(data.byUser, 'User', false)}` +
    `<h3>By model</h3>${usageTable(data.byModel, 'Model', true)}</section>`
  );
}
