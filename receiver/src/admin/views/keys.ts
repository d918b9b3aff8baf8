/** Device keys: what to check before turning on REQUIRE_SIGNATURES. */
import { esc } from '../esc';
import type { KeyRow } from '../queries';
import { type RenderMode, csrfField } from './layout';
import { num, when } from './format';

export function renderKeys(rows: readonly KeyRow[], mode: RenderMode): string {
  const active = rows.filter((k) => k.revokedAt === null).length;
  const intro =
    `<p class="note">${num(active)} active, ${num(rows.length - active)} revoked. Check that every user's devices appear here ` +
    `before setting <code>REQUIRE_SIGNATURES=1</code>. A revoked device stops reporting and goes silent.</p>`;
  if (rows.length === 0) return `<section id="keys"><h2>Device keys</h2>${intro}</section>`;
  const withActions = mode.kind === 'session';
  const body = rows
    .map((k) => {
      const status = k.revokedAt === null ? 'active' : 'revoked';
      let action = '';
      if (withActions) {
        action =
          k.revokedAt === null && mode.kind === 'session'
            ? `<td><form class="inline" method="post" action="/admin/keys/revoke">${csrfField(mode.csrfToken)}` +
              `<input type="hidden" name="public_key" value="${esc(k.publicKey)}">` +
              `<button class="danger" type="submit">Revoke</button></form></td>`
            : '<td></td>';
      }
      return (
        `<tr><td class="mono">${esc(k.email)}</td><td class="mono">${esc(k.deviceId)}</td><td class="mono">${esc(k.publicKey)}</td>` +
        `<td>${when(k.registeredAt)}</td><td>${when(k.lastSeenAt)}</td>` +
        `<td><span class="status-${esc(status)}">${esc(status)}</span>${k.revokedAt ? ` ${when(k.revokedAt)}` : ''}</td>${action}</tr>`
      );
    })
    .join('');
  return (
    `<section id="keys"><h2>Device keys</h2>${intro}<div class="scroll"><table><thead><tr><th>User</th><th>Device</th>` +
    `<th>Public key</th><th>Registered</th><th>Last seen</th><th>Status</th>${withActions ? '<th></th>' : ''}</tr></thead>` +
    `<tbody>${body}</tbody></table></div></section>`
  );
}
