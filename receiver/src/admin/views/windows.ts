/** Claude Code's 5-hour windows per user: peak and current. */
import { esc } from '../esc';
import { MAIN_WINDOW_DAYS, MAIN_WINDOW_USERS } from '../queries';
import type { UserWindows } from '../windows';
import { meter } from './chart';
import { num, whenIn } from './format';
import { type Column, type TableContext, dataTable } from './table';
import { userLink } from './usage';

export function renderWindows(ctx: TableContext, rows: readonly UserWindows[], tz: string, fromIso?: string): string {
  const intro =
    `<p class="note">Claude Code limits usage per 5-hour window (opened by a user's first message, ` +
    `start floored to the hour). The peak window shows who runs close to ` +
    `their seat's limit; the current window shows who is busy now. Tokens: input + output + cache read + cache write.` +
    (fromIso === undefined ? '' : ` Windows since ${whenIn(fromIso, tz)} (at most the range's last ${MAIN_WINDOW_DAYS} days) for the ${MAIN_WINDOW_USERS} users with the most tokens in that time; a user's page shows the whole range.`) +
    `</p>`;
  const maxPeak = Math.max(0, ...rows.map((r) => r.peak.tokens));
  const at = (ms: number) => whenIn(new Date(ms).toISOString(), tz);
  const cols: Column<UserWindows>[] = [
    { key: 'user', label: 'User', sort: (r) => r.user, search: (r) => r.user, cell: (r) => userLink(ctx, r.user) },
    { key: 'peak', label: 'Peak tokens', numeric: true, sort: (r) => r.peak.tokens, cell: (r) => num(r.peak.tokens) },
    { key: 'peakTurns', label: 'Peak turns', numeric: true, sort: (r) => r.peak.turns, cell: (r) => num(r.peak.turns) },
    { key: 'peakStart', label: 'Peak window start', sort: (r) => r.peak.startMillis, cell: (r) => at(r.peak.startMillis) },
    { key: 'current', label: 'Current tokens', numeric: true, sort: (r) => r.current?.tokens ?? -1, cell: (r) => (r.current ? num(r.current.tokens) : esc('—')) },
    { key: 'currentTurns', label: 'Current turns', numeric: true, cell: (r) => (r.current ? num(r.current.turns) : esc('—')) },
    { key: 'resets', label: 'Current resets', cell: (r) => (r.current ? at(r.current.endMillis) : esc('—')) },
    { key: 'windows', label: 'Windows', numeric: true, sort: (r) => r.windows, cell: (r) => num(r.windows) },
    { key: 'meter', label: 'Peak (light) / current (dark)', cell: (r) => meter(r.peak.tokens, maxPeak, r.current ? r.current.tokens : null) },
  ];
  return `<section id="windows"><h2>5-hour windows</h2>${intro}${dataTable(ctx, 'windows', rows, cols, { empty: 'No usage in this range.', searchLabel: 'Search users' })}</section>`;
}
