/** Login and "disabled" pages. */
import { esc } from '../esc';
import { documentShell } from './layout';

export function renderLogin(opts: { error?: string } = {}): string {
  const error = opts.error ? `<p class="error-text" role="alert">${esc(opts.error)}</p>` : '';
  return documentShell(
    'ccflux admin — log in',
    `<main><section class="login"><h2>ccflux admin</h2>${error}` +
      `<form method="post" action="/admin/login">` +
      `<label>Admin token<input type="password" name="token" autocomplete="off" required autofocus></label>` +
      `<p><button type="submit">Log in</button></p></form>` +
      `<p class="note">The token is the receiver's <code>ADMIN_TOKEN</code>. Scripts may send it as ` +
      `<code>Authorization: Bearer …</code> for read-only access.</p></section></main>`,
  );
}

export function renderMessage(title: string, text: string): string {
  return documentShell(`ccflux admin — ${title}`, `<main><section class="login"><h2>${esc(title)}</h2><p>${esc(text)}</p></section></main>`);
}
