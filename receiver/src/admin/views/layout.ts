/** The page shell: document head with the hashed stylesheet, header navigation, main content. */
import { esc } from '../esc';
import { type ViewName, VIEWS, VIEW_LABELS, viewHref } from '../pages';
import { CSS, EXPORT_CONTENT_SECURITY_POLICY } from '../style';

export type RenderMode =
  /** Logged in through the form: forms carry the session's CSRF token. */
  | { kind: 'session'; csrfToken: string; back?: string }
  /** `Authorization: Bearer`: read-only, no forms. */
  | { kind: 'readonly' }
  /** `?export`: a self-contained snapshot, no forms, no links back to actions. */
  | { kind: 'export' };

export function csrfField(csrfToken: string): string {
  return `<input type="hidden" name="csrf_token" value="${esc(csrfToken)}">`;
}

/** A mutation form's hidden fields: the CSRF token and the page to come back to (`back`). */
export function formFields(mode: RenderMode): string {
  if (mode.kind !== 'session') return '';
  return csrfField(mode.csrfToken) + (mode.back === undefined ? '' : `<input type="hidden" name="back" value="${esc(mode.back)}">`);
}

/** The sections of an exported snapshot, which holds every one on one page. */
const SNAPSHOT_SECTIONS: readonly [string, string][] = [
  ['summary', 'Summary'],
  ['budgets', 'Budgets'],
  ['usage', 'Usage'],
  ['inactive', 'Inactive seats'],
  ['windows', '5-hour windows'],
  ['events', 'Recent events'],
  ['keys', 'Device keys'],
  ['users', 'Users'],
  ['audit', 'Audit log'],
];

export function documentShell(title: string, body: string, opts: { exportMeta?: boolean } = {}): string {
  const csp = opts.exportMeta ? `<meta http-equiv="Content-Security-Policy" content="${esc(EXPORT_CONTENT_SECURITY_POLICY)}">` : '';
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8">${csp}` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">` +
    `<title>${esc(title)}</title><style>${CSS}</style></head><body>${body}</body></html>`
  );
}

/** The header: a tab per dashboard page (carrying the range and filters), snapshot, log out. */
export function header(mode: RenderMode, params: URLSearchParams = new URLSearchParams(), current: ViewName | null = null): string {
  const nav =
    mode.kind === 'export'
      ? SNAPSHOT_SECTIONS.map(([id, label]) => `<a href="#${esc(id)}">${esc(label)}</a>`).join('')
      : VIEWS.map((v) => `<a href="${esc(viewHref(v, params))}"${v === current ? ' aria-current="page"' : ''}>${esc(VIEW_LABELS[v])}</a>`).join('');
  let actions = '';
  if (mode.kind !== 'export') {
    const snapshot = new URLSearchParams(new URL(viewHref('overview', params), 'http://x').search);
    snapshot.set('export', '');
    actions += `<a href="${esc(`/admin/?${snapshot.toString()}`)}">${esc('Export snapshot')}</a>`;
  }
  if (mode.kind === 'session') {
    actions += `<form method="post" action="/admin/logout">${csrfField(mode.csrfToken)}<button class="plain" type="submit">Log out</button></form>`;
  }
  return `<header><h1>ccflux admin</h1><nav>${nav}</nav>${actions}</header>`;
}
