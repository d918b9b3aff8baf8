/** The range and filter form at the top of every view: a plain GET form, no script needed. */
import { esc } from '../esc';
import { RANGE_PRESETS, type ViewFilter, hrefWith } from '../filters';
import type { TableContext } from './table';
import { hiddenParams } from './table';

const PRESET_LABELS: Record<string, string> = { '24h': '24 h', '7d': '7 days', '30d': '30 days', '90d': '90 days', custom: 'Custom' };
const FORM_FIELDS = new Set(['range', 'from', 'to', 'user', 'division', 'model', 'tz']);

function options(values: readonly string[], selected: string | null, any: string): string {
  return (
    `<option value="">${esc(any)}</option>` +
    values.map((v) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(v)}</option>`).join('')
  );
}

export function filterBar(ctx: TableContext, f: ViewFilter, choices: { divisions: readonly string[]; models: readonly string[] }): string {
  if (!ctx.interactive) {
    const parts = [`${f.fromIso} to ${f.toIso}`];
    if (f.user) parts.push(`user ${f.user}`);
    if (f.division) parts.push(`division ${f.division}`);
    if (f.model) parts.push(`model ${f.model}`);
    return `<p class="note">Range and filters: ${esc(parts.join(', '))}.</p>`;
  }
  const presets = [...RANGE_PRESETS, 'custom' as const]
    .map((r) => {
      const href = hrefWith(ctx.path, ctx.params, { range: r === '30d' ? null : r, from: r === 'custom' ? f.fromDay : null, to: r === 'custom' ? f.toDay : null });
      return r === f.range ? `<b>${esc(PRESET_LABELS[r]!)}</b>` : `<a href="${esc(href)}">${esc(PRESET_LABELS[r]!)}</a>`;
    })
    .join(' ');
  const problems = f.problems.map((p) => `<p class="warn">${esc(p)}</p>`).join('');
  return (
    `<section id="filters"><div class="presets">Range: ${presets}</div>` +
    `<form class="row" method="get" action="${esc(ctx.path)}">` +
    hiddenParams(ctx.params, (k) => FORM_FIELDS.has(k) || k.endsWith('.page')) +
    `<label>Range<select name="range">${[...RANGE_PRESETS, 'custom']
      .map((r) => `<option value="${esc(r)}"${r === f.range ? ' selected' : ''}>${esc(PRESET_LABELS[r]!)}</option>`)
      .join('')}</select></label>` +
    `<label>From (UTC)<input type="date" name="from" value="${esc(f.fromDay)}"></label>` +
    `<label>To (UTC)<input type="date" name="to" value="${esc(f.toDay)}"></label>` +
    `<label>User<input type="text" name="user" value="${esc(f.user ?? '')}" maxlength="255" placeholder="email"></label>` +
    `<label>Division<select name="division">${options(choices.divisions, f.division, 'all divisions')}</select></label>` +
    `<label>Model<select name="model">${options(choices.models, f.model, 'all models')}</select></label>` +
    `<label>Time zone<input type="text" name="tz" value="${esc(f.tz)}" maxlength="64" placeholder="UTC"></label>` +
    `<button type="submit">Apply</button></form>` +
    `<p class="note">From/To apply when Range is Custom. Times shown in ${esc(f.tz)}; days are UTC days.</p>${problems}</section>`
  );
}
