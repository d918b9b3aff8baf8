/** Users: provision, revoke, reissue. */
import { esc } from '../esc';
import type { UserRow } from '../queries';
import { type RenderMode, formFields } from './layout';
import { num, whenIn } from './format';
import { type Column, type PagedRows, type TableContext, dataTable } from './table';
import { userLink } from './usage';

export function userStatus(u: UserRow, nowIso: string): 'active' | 'revoked' | 'expired' {
  if (u.revokedAt !== null) return 'revoked';
  const expires = u.tokenExpiresAt === null ? Number.NaN : Date.parse(u.tokenExpiresAt);
  if (!(expires > Date.parse(nowIso))) return 'expired';
  return 'active';
}

function provisionForm(mode: RenderMode): string {
  return (
    `<h3>Provision a user</h3><form class="row" method="post" action="/admin/users">${formFields(mode)}` +
    `<label>Email<input type="email" name="email" required maxlength="255" autocomplete="off"></label>` +
    `<label>Division<input type="text" name="division" maxlength="255" autocomplete="off"></label>` +
    `<label>Days valid<input type="number" name="days" min="1" max="3650" placeholder="default"></label>` +
    `<button type="submit">Provision</button></form>` +
    `<p class="note">The new refresh token is shown once, with the endpoint the user configures. ` +
    `Each exchange extends its expiry (rolling); "days valid" sets the first expiry. Reissuing revokes the old token. ` +
    `For many users at once: <code>ccflux-receiver users import users.csv</code> (docs/admin.md).</p>`
  );
}

export function renderUsers(ctx: TableContext, rows: PagedRows<UserRow>, mode: RenderMode, nowIso: string, tz: string): string {
  const cols: Column<UserRow>[] = [
    { key: 'email', label: 'Email', sort: (u) => u.email, search: (u) => `${u.email} ${u.division}`, cell: (u) => userLink(ctx, u.email) },
    { key: 'division', label: 'Division', sort: (u) => u.division, cell: (u) => esc(u.division) },
    { key: 'created', label: 'Created', sort: (u) => u.createdAt, cell: (u) => whenIn(u.createdAt, tz) },
    { key: 'status', label: 'Status', sort: (u) => userStatus(u, nowIso), cell: (u) => `<span class="status-${esc(userStatus(u, nowIso))}">${esc(userStatus(u, nowIso))}</span>` },
    { key: 'expires', label: 'Token expires', sort: (u) => u.tokenExpiresAt, cell: (u) => whenIn(u.tokenExpiresAt, tz) },
    { key: 'used', label: 'Token last used', sort: (u) => u.tokenLastUsedAt, cell: (u) => whenIn(u.tokenLastUsedAt, tz) },
    { key: 'devices', label: 'Devices', numeric: true, sort: (u) => u.devices, cell: (u) => num(u.devices) },
    { key: 'report', label: 'Last report', sort: (u) => u.lastReportAt, cell: (u) => whenIn(u.lastReportAt, tz) },
  ];
  if (mode.kind === 'session') {
    cols.push({
      key: 'actions',
      label: '',
      cell: (u) => {
        const hidden = `${formFields(mode)}<input type="hidden" name="email" value="${esc(u.email)}">`;
        return u.revokedAt === null
          ? `<form class="inline" method="post" action="/admin/users/reissue">${hidden}<button type="submit">Reissue token</button></form> ` +
              `<form class="inline" method="post" action="/admin/users/revoke">${hidden}<button class="danger" type="submit">Revoke</button></form>`
          : `<span class="note">${esc('Provision again to re-enable')}</span>`;
      },
    });
  }
  const form = mode.kind === 'session' ? provisionForm(mode) : '';
  return `<section id="users"><h2>Users</h2>${form}${dataTable(ctx, 'users', rows, cols, { empty: 'No users provisioned yet.', searchLabel: 'Search users or divisions' })}</section>`;
}
