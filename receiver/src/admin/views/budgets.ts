/** Budgets: this month's burn and forecast per budget, the form to set one, recent alerts. */
import { esc } from '../esc';
import type { BudgetAlertRow } from '../../store';
import type { BudgetStatus } from '../budgets';
import { type RenderMode, formFields } from './layout';
import { dollars, num, whenIn } from './format';

function amount(unit: string, v: number): string {
  return unit === 'usd' ? dollars(v) : `${num(v)} tokens`;
}

function bar(percent: number): string {
  const w = 160;
  const fill = Math.min(w, (percent / 100) * w);
  const colour = percent >= 100 ? '#b42318' : percent >= 80 ? '#f79009' : '#2f5bd3';
  return (
    `<svg width="${w}" height="12" viewBox="0 0 ${w} 12" aria-hidden="true"><rect x="0" y="0" width="${w}" height="12" fill="#eef1f6"/>` +
    `<rect x="0" y="0" width="${fill.toFixed(1)}" height="12" fill="${colour}"/><line x1="${(w * 0.8).toFixed(1)}" x2="${(w * 0.8).toFixed(1)}" y1="0" y2="12" stroke="#5b6576"/></svg>`
  );
}

function setForm(mode: RenderMode): string {
  return (
    `<h3>Set a monthly budget</h3><form class="row" method="post" action="/admin/budgets">${formFields(mode)}` +
    `<label>For<select name="scope"><option value="org">the organisation</option><option value="division">a division</option><option value="user">a user</option></select></label>` +
    `<label>Division or email<input type="text" name="subject" maxlength="255" placeholder="empty for the organisation"></label>` +
    `<label>Unit<select name="unit"><option value="usd">US dollars (list price)</option><option value="tokens">tokens</option></select></label>` +
    `<label>Monthly limit<input type="number" name="limit" min="1" step="any" required></label>` +
    `<button type="submit">Save budget</button></form>` +
    `<p class="note">Setting a budget again for the same organisation, division or user replaces it. Crossing 80 % and 100 % in a ` +
    `month is recorded once and, with <code>ALERT_WEBHOOK_URL</code> set, posted to it (Slack-compatible).</p>`
  );
}

/** The budgets page; with `summaryHref` (the overview) only the burn table and a link to that page. */
export function renderBudgets(statuses: readonly BudgetStatus[], alerts: readonly BudgetAlertRow[], mode: RenderMode, opts: { month: string; tz: string; webhook: boolean; summaryHref?: string }): string {
  const rows = statuses
    .map((s) => {
      const b = s.budget;
      const who = b.scope === 'org' ? 'Organisation' : `${b.scope === 'division' ? 'Division' : 'User'} ${b.subject}`;
      const state = s.percent >= 100 ? 'over' : s.percent >= 80 ? 'warning' : s.forecast >= b.monthlyLimit ? 'on course to exceed' : 'ok';
      const del =
        mode.kind === 'session'
          ? `<td><form class="inline" method="post" action="/admin/budgets/delete">${formFields(mode)}<input type="hidden" name="id" value="${esc(String(b.id))}"><button class="danger" type="submit">Delete</button></form></td>`
          : '';
      return (
        `<tr><td>${esc(who)}</td><td class="n">${amount(b.unit, b.monthlyLimit)}</td><td class="n">${amount(b.unit, s.spent)}</td>` +
        `<td class="n">${esc(`${s.percent.toFixed(1)}%`)}</td><td>${bar(s.percent)}</td><td class="n">${amount(b.unit, s.forecast)}</td>` +
        `<td><span class="budget-${esc(state.replaceAll(' ', '-'))}">${esc(state)}</span></td>${del}</tr>`
      );
    })
    .join('');
  const table =
    statuses.length === 0
      ? `<p class="note">No budgets set.</p>`
      : `<div class="scroll"><table data-table="budgets"><thead><tr><th>Budget</th><th class="n">Monthly limit</th><th class="n">Spent in ${esc(opts.month)}</th>` +
        `<th class="n">Used</th><th>Burn (line at 80 %)</th><th class="n">Forecast for the month</th><th>Status</th>${mode.kind === 'session' ? '<th></th>' : ''}</tr></thead><tbody>${rows}</tbody></table></div>`;
  const alertRows = alerts
    .map((a) => {
      const who = a.scope === 'org' ? 'Organisation' : a.subject;
      const delivery = a.deliveredAt !== null ? `sent ${whenIn(a.deliveredAt, opts.tz)}` : !opts.webhook ? esc('recorded (no ALERT_WEBHOOK_URL)') : a.nextAttemptAt === null && a.attempts > 0 ? esc(`gave up after ${a.attempts} attempts: ${a.lastError ?? ''}`) : esc(a.attempts === 0 ? 'pending' : `retrying (${a.attempts} attempts, last: ${a.lastError ?? ''})`);
      return `<tr><td>${whenIn(a.crossedAt, opts.tz)}</td><td>${esc(who)}</td><td class="n">${esc(`${a.threshold}%`)}</td><td class="n">${amount(a.unit, a.spent)}</td><td>${delivery}</td></tr>`;
    })
    .join('');
  const alertTable =
    alerts.length === 0
      ? ''
      : `<h3>Recent alerts</h3><div class="scroll"><table data-table="alerts"><thead><tr><th>Crossed</th><th>Budget</th><th class="n">Threshold</th><th class="n">Spent then</th><th>Webhook</th></tr></thead><tbody>${alertRows}</tbody></table></div>`;
  if (opts.summaryHref !== undefined) {
    const link = `<p class="note"><a href="${esc(opts.summaryHref)}">${esc(statuses.length === 0 ? 'Set a budget →' : 'Budgets and alerts →')}</a></p>`;
    return `<section id="budgets"><h2>Budgets, ${esc(opts.month)}</h2>${table}${link}</section>`;
  }
  return `<section id="budgets"><h2>Budgets, ${esc(opts.month)}</h2>${table}${alertTable}${mode.kind === 'session' ? setForm(mode) : ''}</section>`;
}
