/** Organisation summary tiles, and the value per seat this month. */
import { esc } from '../esc';
import type { SeatValue, Summary } from '../queries';
import { cacheHitRate, dollars, money, num, tileNum } from './format';

function tile(value: string, label: string, title?: string): string {
  return `<div class="tile"${title ? ` title="${esc(title)}"` : ''}><b>${value}</b><span>${esc(label)}</span></div>`;
}

export function renderSummary(s: Summary, rangeLabel: string, seat: SeatValue, seatPriceUsd: number | null): string {
  const perSeat = seat.activeSeats > 0 ? seat.cost.usd / seat.activeSeats : 0;
  const seatTiles =
    tile(money({ ...seat.cost, usd: perSeat }), `API-equivalent value per seat, ${seat.month} so far`) +
    (seatPriceUsd === null ? '' : tile(dollars(seatPriceUsd), 'seat price (SEAT_PRICE_USD)'));
  return (
    `<section id="summary"><h2>Organisation, ${esc(rangeLabel)}</h2><div class="tiles">` +
    tile(`${num(s.activeUsers)}<small> / ${num(s.users)}</small>`, 'active users / provisioned') +
    tile(num(s.reportingUsers), 'users reporting') +
    tile(num(s.activeDevices), 'active device keys') +
    tile(num(s.sessions), 'sessions') +
    tile(num(s.turns), 'turns') +
    tile(money(s.cost), 'cost at API list prices') +
    tile(tileNum(s.input), 'input tokens', s.input.toLocaleString('en-US')) +
    tile(tileNum(s.output), 'output tokens', s.output.toLocaleString('en-US')) +
    tile(tileNum(s.cacheRead), 'cache read tokens', s.cacheRead.toLocaleString('en-US')) +
    tile(tileNum(s.cacheWrite), 'cache write tokens', s.cacheWrite.toLocaleString('en-US')) +
    tile(cacheHitRate(s), 'cache hit rate') +
    seatTiles +
    `</div><p class="note">Cache hit rate: cache reads as a share of all prompt tokens (input + cache read + cache write). ` +
    `Value per seat: this calendar month's (UTC) API-equivalent cost over ${num(seat.activeSeats)} active seats` +
    `${seatPriceUsd === null ? ' (set SEAT_PRICE_USD to compare with what a seat costs)' : ''}. Active device keys exclude keys of revoked users.</p></section>`
  );
}
