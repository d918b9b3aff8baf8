/**
 * Server-rendered SVG charts: no script, no external resource. Colours are presentation
 * attributes (CSP governs `style` attributes, not these). Tooltips are `<title>` elements.
 */
import { esc } from '../esc';
import type { DayRow } from '../queries';
import { compact, num } from './format';

export const SERIES = [
  { key: 'input', label: 'Input', colour: '#2f5bd3' },
  { key: 'output', label: 'Output', colour: '#7a5af8' },
  { key: 'cacheWrite', label: 'Cache write', colour: '#f79009' },
  { key: 'cacheRead', label: 'Cache read', colour: '#98a2b3' },
] as const;

const WIDTH = 1180;
const HEIGHT = 240;
const LEFT = 52;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 26;
const GRID_LINES = 4;

function fmt(n: number): string {
  return esc(Number.isFinite(n) ? n.toFixed(1).replace(/\.0$/, '') : '0');
}

/** Nice upper bound for the axis: 1, 2 or 5 times a power of ten. */
export function axisMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export function legend(): string {
  const items = SERIES.map(
    (s) =>
      `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${esc(s.colour)}"/></svg> ${esc(s.label)}</span>`,
  );
  return `<div class="legend">${items.join('')}</div>`;
}

/** Stacked daily bars of the four token counters. */
export function dailyChart(days: readonly DayRow[]): string {
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const totals = days.map((d) => d.input + d.output + d.cacheRead + d.cacheWrite);
  const peak = Math.max(0, ...totals);
  // An empty range still gets a whole-number axis (0 to 4), not 0, 0.25, ... rounded to "0".
  const max = peak === 0 ? GRID_LINES : axisMax(peak);
  const labelEvery = Math.max(1, Math.ceil(days.length / 12));
  const slot = days.length > 0 ? plotW / days.length : plotW;
  const barW = Math.max(1, slot * 0.72);
  const parts: string[] = [];
  for (let g = 0; g <= GRID_LINES; g++) {
    const value = (max / GRID_LINES) * g;
    const y = TOP + plotH - (plotH * g) / GRID_LINES;
    parts.push(`<line x1="${fmt(LEFT)}" x2="${fmt(WIDTH - RIGHT)}" y1="${fmt(y)}" y2="${fmt(y)}" stroke="#e4e7ec"/>`);
    parts.push(`<text x="${fmt(LEFT - 6)}" y="${fmt(y + 4)}" text-anchor="end">${compact(value)}</text>`);
  }
  days.forEach((d, i) => {
    const x = LEFT + i * slot + (slot - barW) / 2;
    let y = TOP + plotH;
    const rects: string[] = [];
    for (const s of SERIES) {
      const h = (d[s.key] / max) * plotH;
      if (h <= 0) continue;
      y -= h;
      rects.push(`<rect x="${fmt(x)}" y="${fmt(y)}" width="${fmt(barW)}" height="${fmt(h)}" fill="${esc(s.colour)}"/>`);
    }
    const tip = `${d.day}: ${SERIES.map((s) => `${s.label.toLowerCase()} ${d[s.key].toLocaleString('en-US')}`).join(', ')}`;
    parts.push(`<g><title>${esc(tip)}</title>${rects.join('')}<rect x="${fmt(x)}" y="${fmt(TOP)}" width="${fmt(barW)}" height="${fmt(plotH)}" fill="transparent"/></g>`);
    if (i % labelEvery === 0 || i === days.length - 1) {
      parts.push(`<text x="${fmt(x + barW / 2)}" y="${fmt(HEIGHT - 8)}" text-anchor="middle">${esc(d.day.slice(5))}</text>`);
    }
  });
  const sum = totals.reduce((a, b) => a + b, 0);
  if (sum === 0) {
    parts.push(`<text x="${fmt(LEFT + plotW / 2)}" y="${fmt(TOP + plotH / 2)}" text-anchor="middle">No usage in this range</text>`);
  }
  return (
    `<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" ` +
    `aria-label="${esc(`Tokens per day, ${days.length} days, ${sum.toLocaleString('en-US')} in total`)}">` +
    `${parts.join('')}</svg>${legend()}<p class="note">${num(sum)} tokens over ${num(days.length)} days (UTC).</p>`
  );
}

/** A small horizontal bar: `value` of `max`, with an optional marker for `current`. */
export function meter(value: number, max: number, current: number | null): string {
  const w = 160;
  const h = 12;
  const scale = max > 0 ? w / max : 0;
  const cur = current !== null && current > 0 ? `<rect x="0" y="3" width="${fmt(Math.min(w, current * scale))}" height="6" fill="#2f5bd3"/>` : '';
  return (
    `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true">` +
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#eef1f6"/>` +
    `<rect x="0" y="0" width="${fmt(Math.min(w, value * scale))}" height="${h}" fill="#b2c3f0"/>${cur}</svg>`
  );
}
