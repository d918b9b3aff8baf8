/** Organisation summary tiles. */
import { esc } from '../esc';
import type { Summary } from '../queries';
import { cacheHitRate, num } from './format';

function tile(value: string, label: string): string {
  return `<div class="tile"><b>${value}</b><span>${esc(label)}</span></div>`;
}

export function renderSummary(s: Summary, days: number): string {
  return (
    `<section id="summary"><h2>Organisation, last ${num(days)} days</h2><div class="tiles">` +
    tile(`${num(s.activeUsers)}<small> / ${num(s.users)}</small>`, 'active users / provisioned') +
    tile(num(s.reportingUsers), 'users reporting') +
    tile(num(s.activeDevices), 'active device keys') +
    tile(num(s.sessions), 'sessions') +
    tile(num(s.turns), 'turns') +
    tile(num(s.input), 'input tokens') +
    tile(num(s.output), 'output tokens') +
    tile(num(s.cacheRead), 'cache read tokens') +
    tile(num(s.cacheWrite), 'cache write tokens') +
    tile(cacheHitRate(s), 'cache hit rate') +
    `</div><p class="note">Cache hit rate: cache reads as a share of all prompt tokens (input + cache read + cache write).</p></section>`
  );
}
