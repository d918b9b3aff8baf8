/** Device keys: what to check before turning on REQUIRE_SIGNATURES. */
import { esc } from '../esc';
import type { KeyRow } from '../queries';
import { type RenderMode, formFields } from './layout';
import { num, whenIn } from './format';
import { type Column, type PagedRows, type TableContext, dataTable } from './table';

/** A key is revoked when it is, or when its user is (the user's tokens no longer work). */
export function keyStatus(k: KeyRow): 'active' | 'revoked' | 'user revoked' {
  if (k.revokedAt !== null) return 'revoked';
  if (k.userRevokedAt !== null) return 'user revoked';
  return 'active';
}

export function renderKeys(ctx: TableContext, rows: PagedRows<KeyRow>, counts: { total: number; active: number }, mode: RenderMode, tz: string): string {
  const intro =
    `<p class="note">${num(counts.active)} active, ${num(counts.total - counts.active)} revoked (a revoked user's keys count as revoked). Check that every user's devices appear here ` +
    `before setting <code>REQUIRE_SIGNATURES=1</code>. A revoked device stops reporting and goes silent.</p>`;
  const cols: Column<KeyRow>[] = [
    { key: 'user', label: 'User', sort: (k) => k.email, search: (k) => `${k.email} ${k.deviceId}`, cell: (k) => `<span class="mono">${esc(k.email)}</span>` },
    { key: 'device', label: 'Device', sort: (k) => k.deviceId, cell: (k) => `<span class="mono">${esc(k.deviceId)}</span>` },
    { key: 'key', label: 'Public key', cell: (k) => `<span class="mono">${esc(k.publicKey)}</span>` },
    { key: 'registered', label: 'Registered', sort: (k) => k.registeredAt, cell: (k) => whenIn(k.registeredAt, tz) },
    { key: 'seen', label: 'Last seen', sort: (k) => k.lastSeenAt, cell: (k) => whenIn(k.lastSeenAt, tz) },
    {
      key: 'status',
      label: 'Status',
      sort: (k) => keyStatus(k),
      cell: (k) => {
        const s = keyStatus(k);
        const at = k.revokedAt ?? k.userRevokedAt;
        return `<span class="status-${s === 'active' ? 'active' : 'revoked'}">${esc(s)}</span>${at ? ` ${whenIn(at, tz)}` : ''}`;
      },
    },
  ];
  if (mode.kind === 'session') {
    cols.push({
      key: 'action',
      label: '',
      cell: (k) =>
        k.revokedAt === null
          ? `<form class="inline" method="post" action="/admin/keys/revoke">${formFields(mode)}` +
            `<input type="hidden" name="public_key" value="${esc(k.publicKey)}">` +
            `<input type="hidden" name="email" value="${esc(k.email)}">` +
            `<button class="danger" type="submit">Revoke</button></form>`
          : '',
    });
  }
  return `<section id="keys"><h2>Device keys</h2>${intro}${dataTable(ctx, 'keys', rows, cols, { empty: 'No device keys registered yet.', searchLabel: 'Search users or devices' })}</section>`;
}
