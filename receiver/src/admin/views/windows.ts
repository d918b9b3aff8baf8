/** Claude Code's 5-hour windows per user: peak and current. */
import type { UserWindows } from '../windows';
import { meter } from './chart';
import { num, whenMillis } from './format';
import { esc } from '../esc';

export function renderWindows(rows: readonly UserWindows[], periodDays: number): string {
  const intro =
    `<p class="note">Claude Code limits usage per 5-hour window (opened by a user's first message, ` +
    `start floored to the hour). The peak window over the last ${num(periodDays)} days shows who runs close to ` +
    `their seat's limit; the current window shows who is busy now. Tokens: input + output + cache read + cache write.</p>`;
  if (rows.length === 0) return `<section id="windows"><h2>5-hour windows</h2>${intro}<p class="note">No usage in this period.</p></section>`;
  const maxPeak = Math.max(...rows.map((r) => r.peak.tokens));
  const body = rows
    .map((r) => {
      const cur = r.current;
      return (
        `<tr><td class="mono">${esc(r.user)}</td>` +
        `<td class="n">${num(r.peak.tokens)}</td><td class="n">${num(r.peak.turns)}</td><td>${whenMillis(r.peak.startMillis)}</td>` +
        `<td class="n">${cur ? num(cur.tokens) : esc('—')}</td><td class="n">${cur ? num(cur.turns) : esc('—')}</td>` +
        `<td>${cur ? whenMillis(cur.endMillis) : esc('—')}</td><td class="n">${num(r.windows)}</td>` +
        `<td>${meter(r.peak.tokens, maxPeak, cur ? cur.tokens : null)}</td></tr>`
      );
    })
    .join('');
  return (
    `<section id="windows"><h2>5-hour windows</h2>${intro}<div class="scroll"><table><thead><tr><th>User</th>` +
    `<th class="n">Peak tokens</th><th class="n">Peak turns</th><th>Peak window start</th>` +
    `<th class="n">Current tokens</th><th class="n">Current turns</th><th>Current resets</th><th class="n">Windows</th>` +
    `<th>Peak (light) / current (dark)</th></tr></thead><tbody>${body}</tbody></table></div></section>`
  );
}
