/** Users: provision, revoke, reissue. */
import { esc } from '../esc';
import type { UserRow } from '../queries';
import { type RenderMode, csrfField } from './layout';
import { num, when } from './format';

export function userStatus(u: UserRow, nowIso: string): 'active' | 'revoked' | 'expired' {
  if (u.revokedAt !== null) return 'revoked';
  const expires = u.tokenExpiresAt === null ? Number.NaN : Date.parse(u.tokenExpiresAt);
  if (!(expires > Date.parse(nowIso))) return 'expired';
  return 'active';
}

function provisionForm(csrfToken: string): string {
  return (
    `<h3>Provision a user</h3><form class="row" method="post" action="/admin/users">${csrfField(csrfToken)}` +
    `<label>Email<input type="email" name="email" required maxlength="255" autocomplete="off"></label>` +
    `<label>Division<input type="text" name="division" maxlength="255" autocomplete="off"></label>` +
    `<label>Days valid<input type="number" name="days" min="1" max="3650" placeholder="default"></label>` +
    `<button type="submit">Provision</button></form>` +
    `<p class="note">The new refresh token is shown once, with the endpoint the user configures. ` +
    `Each exchange extends its expiry (rolling); "days valid" sets the first expiry. Reissuing revokes the old token.</p>`
  );
}

export function renderUsers(rows: readonly UserRow[], mode: RenderMode, nowIso: string): string {
  const withActions = mode.kind === 'session';
  const form = mode.kind === 'session' ? provisionForm(mode.csrfToken) : '';
  const body = rows
    .map((u) => {
      const status = userStatus(u, nowIso);
      let actions = '';
      if (mode.kind === 'session') {
        const hidden = `${csrfField(mode.csrfToken)}<input type="hidden" name="email" value="${esc(u.email)}">`;
        actions =
          u.revokedAt === null
            ? `<td><form class="inline" method="post" action="/admin/users/reissue">${hidden}<button type="submit">Reissue token</button></form> ` +
              `<form class="inline" method="post" action="/admin/users/revoke">${hidden}<button class="danger" type="submit">Revoke</button></form></td>`
            : `<td class="note">${esc('Provision again to re-enable')}</td>`;
      }
      return (
        `<tr><td class="mono">${esc(u.email)}</td><td>${esc(u.division)}</td><td>${when(u.createdAt)}</td>` +
        `<td><span class="status-${esc(status)}">${esc(status)}</span></td><td>${when(u.tokenExpiresAt)}</td>` +
        `<td>${when(u.tokenLastUsedAt)}</td><td class="n">${num(u.devices)}</td><td>${when(u.lastReportAt)}</td>${actions}</tr>`
      );
    })
    .join('');
  const table =
    rows.length === 0
      ? `<p class="note">No users provisioned yet.</p>`
      : `<div class="scroll"><table><thead><tr><th>Email</th><th>Division</th><th>Created</th><th>Status</th>` +
        `<th>Token expires</th><th>Token last used</th><th class="n">Devices</th><th>Last report</th>${withActions ? '<th></th>' : ''}` +
        `</tr></thead><tbody>${body}</tbody></table></div>`;
  return `<section id="users"><h2>Users</h2>${form}${table}</section>`;
}
