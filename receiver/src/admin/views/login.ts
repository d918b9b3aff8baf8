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

export function renderMessage(title: string, text: string, link?: { href: string; label: string }): string {
  const back = link ? `<p><a href="${esc(link.href)}">${esc(link.label)}</a></p>` : '';
  return documentShell(`ccflux admin — ${title}`, `<main><section class="login"><h2>${esc(title)}</h2><p>${esc(text)}</p>${back}</section></main>`);
}

/** "Try again in 14 minutes" / "in 40 seconds": how long, in words a person reads at a glance. */
export function waitText(millis: number): string {
  const secs = Math.max(1, Math.ceil(millis / 1000));
  if (secs < 90) return `${secs} second${secs === 1 ? '' : 's'}`;
  const mins = Math.ceil(secs / 60);
  return `${mins} minute${mins === 1 ? '' : 's'}`;
}

/** The confirmation step of a destructive action: the same fields again, plus confirm=yes. */
export function renderConfirm(opts: { title: string; text: string; action: string; fields: Record<string, string>; button: string; cancelHref?: string }): string {
  const hidden = Object.entries(opts.fields)
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('');
  return documentShell(
    `ccflux admin — ${opts.title}`,
    `<main><section class="login confirm"><h2>${esc(opts.title)}</h2><p>${esc(opts.text)}</p>` +
      `<form method="post" action="${esc(opts.action)}">${hidden}<input type="hidden" name="confirm" value="yes">` +
      `<p><button class="danger" type="submit">${esc(opts.button)}</button> <a href="${esc(opts.cancelHref ?? '/admin/')}">Cancel</a></p></form></section></main>`,
  );
}
