/**
 * The /admin/ dashboard. The server calls the handler for every path that is `/admin` or under
 * `/admin/` (docs/DESIGN.md). Reads come from `queries.ts`; every mutation goes through the Store.
 *
 * Auth: a login form creates a session in the database (admin/sessions.ts; random id in an `HttpOnly; SameSite=Strict`
 * cookie, `Secure` with COOKIE_SECURE) carrying its own CSRF token, required on every POST.
 * `Authorization: Bearer <ADMIN_TOKEN>` gives scripts read-only access: without a session there
 * is no CSRF token, so bearer requests cannot mutate. Failed logins and failed bearer attempts
 * share one per-address limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReceiverConfig } from '../config';
import { type Logger, silentLogger } from '../log';
import { PriceBook } from '../prices/cost';
import { SHIPPED_PRICES } from '../prices/table';
import type { AuditAction, AuditActor } from '../store';
import type { Store } from '../store';
import { secretsEqual } from '../tokens';
import { clientAddress as addressOf } from '../client-address';
import { type AuthLimits, DEFAULT_AUTH_LIMITS, LoginLimiter, type Session } from './auth';
import { SharedSessions } from './sessions';
import { parseBudget, parseDays, parseEmail, parseId, parseProvision, parsePublicKey } from './forms';
import {
  clearedSessionCookie,
  publicEndpoint,
  readForm,
  readSessionCookie,
  redirect,
  sendHtml,
  sendText,
  sessionCookie,
  setSecurityHeaders,
} from './http';
import { type ExportFormat, type ExportKind, drainingWriter, exportFileName, streamExport } from './export';
import { parseFilter } from './filters';
import { budgetStatuses } from './budgets';
import { AUDIT_PAGE } from './views/audit';
import { type Flash, type RenderMode, renderConfirm, renderDashboard, renderLogin, renderMessage, renderUserPage, waitText } from './render';
import { backTo, sectionsOf, tableOptions, viewOf } from './pages';
import { MAX_LIST_ROWS } from './queries';

/** Form bodies are a few short fields; anything bigger is not ours. */
export const MAX_FORM_BYTES = 8 * 1024;
/** Below this the token is guessable enough to warn about (the guide says `openssl rand -hex 32`). */
const MIN_ADMIN_TOKEN_CHARS = 32;

/** The Store methods the dashboard mutates through. */
export type AdminStore = Pick<
  Store,
  | 'createUser'
  | 'revokeUser'
  | 'reissueToken'
  | 'revokeKey'
  | 'dashboard'
  | 'userSessions'
  | 'recordAudit'
  | 'listAudit'
  | 'listBudgets'
  | 'setBudget'
  | 'deleteBudget'
  | 'listBudgetAlerts'
  | 'usageGroups'
  | 'rawEvents'
  | 'sessionPut'
  | 'sessionGet'
  | 'sessionTouch'
  | 'sessionSetFlash'
  | 'sessionDelete'
  | 'limitHit'
  | 'limitCheck'
>;

export interface AdminDeps {
  /** `adminToken` (ADMIN_TOKEN: unset disables the dashboard, 404) and `cookieSecure` (COOKIE_SECURE). */
  config: Pick<ReceiverConfig, 'adminToken' | 'cookieSecure'> & Partial<Pick<ReceiverConfig, 'seatPriceUsd' | 'displayTimeZone' | 'alertWebhookUrl' | 'trustProxy'>>;
  store: AdminStore;
  /** Prices for the cost columns; the shipped table when omitted. */
  prices?: PriceBook;
  now: () => Date;
  /** Accepted for the server's convenience; unused. */
  metrics?: unknown;
  /** Event log for admin actions (the audit log itself is in the database). */
  logger?: Logger;
  /** Called after a budget is set or deleted (the server runs a budget check). */
  onBudgetChange?: () => void;
  /** Tests shorten these. */
  limits?: Partial<AuthLimits>;
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

type Auth = { kind: 'none' } | { kind: 'bearer' } | { kind: 'session'; id: string; session: Session };

const POST_ROUTES = [
  '/admin/logout',
  '/admin/users',
  '/admin/users/revoke',
  '/admin/users/reissue',
  '/admin/keys/revoke',
  '/admin/budgets',
  '/admin/budgets/delete',
] as const;
type PostRoute = (typeof POST_ROUTES)[number];

function isPostRoute(path: string): path is PostRoute {
  return (POST_ROUTES as readonly string[]).includes(path);
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

const SHIPPED_BOOK = new PriceBook(SHIPPED_PRICES);

function pageParam(params: URLSearchParams, name: string): number {
  const n = Number(params.get(name) ?? '1');
  return Number.isSafeInteger(n) && n >= 1 && n <= 100_000 ? n : 1;
}

/** Revokes ask once more on a page of their own; null when the form already says confirm=yes. */
function confirmation(route: PostRoute, form: URLSearchParams, csrfToken: string): string | null {
  if (form.get('confirm') === 'yes') return null;
  if (route === '/admin/users/revoke') {
    const email = parseEmail(form);
    if (!email.ok) return null;
    return renderConfirm({
      title: 'Revoke user?',
      text: `${email.value} will be revoked: their refresh and access tokens stop working at once and their devices stop reporting. Provisioning them again issues a new token.`,
      action: route,
      fields: { csrf_token: csrfToken, email: email.value, back: backTo(form.get('back')) },
      button: `Revoke ${email.value}`,
      cancelHref: backTo(form.get('back')),
    });
  }
  if (route === '/admin/keys/revoke') {
    const key = parsePublicKey(form);
    if (!key.ok) return null;
    const owner = parseEmail(form);
    const whose = owner.ok ? ` of ${owner.value}` : '';
    return renderConfirm({
      title: 'Revoke device key?',
      text: `The device${whose} with key ${key.value} will be refused (403 key-revoked) and goes silent. This cannot be undone for this key.`,
      action: route,
      fields: { csrf_token: csrfToken, public_key: key.value, ...(owner.ok ? { email: owner.value } : {}), back: backTo(form.get('back')) },
      button: 'Revoke the key',
      cancelHref: backTo(form.get('back')),
    });
  }
  return null;
}

/** What every piece of the handler shares: built once per handler by `adminContext`. */
interface AdminContext {
  deps: AdminDeps;
  limits: AuthLimits;
  sessions: SharedSessions;
  limiter: LoginLimiter;
  prices: PriceBook | undefined;
  logger: Logger;
  defaultTz: string;
  seatPriceUsd: number | null;
  adminToken: string;
  secure: boolean;
  /** The client behind a proxy named by TRUST_PROXY, else the socket's address (client-address.ts). */
  clientAddress: (req: IncomingMessage) => string;
  /** Every admin action goes to the audit log (time, source address, what changed) and the event log. */
  audit: (req: IncomingMessage, actor: AuditActor, action: AuditAction, target: string, detail?: Record<string, unknown>) => Promise<void>;
}

function adminContext(deps: AdminDeps): AdminContext {
  const limits: AuthLimits = { ...DEFAULT_AUTH_LIMITS, ...deps.limits };
  const logger = deps.logger ?? silentLogger;
  const clientAddress = (req: IncomingMessage): string => addressOf(req, deps.config.trustProxy ?? []);
  const audit = async (req: IncomingMessage, actor: AuditActor, action: AuditAction, target: string, detail?: Record<string, unknown>): Promise<void> => {
    const source = clientAddress(req);
    logger.info({ msg: 'admin action', action, actor, source, target });
    await deps.store.recordAudit({ actor, source, action, target, ...(detail === undefined ? {} : { detail }) });
  };
  return {
    deps,
    limits,
    // In the database: a session made on one instance works on all of them (admin/sessions.ts).
    sessions: new SharedSessions(deps.store, limits),
    limiter: new LoginLimiter(deps.store, limits),
    prices: deps.prices,
    logger,
    defaultTz: deps.config.displayTimeZone ?? 'UTC',
    seatPriceUsd: deps.config.seatPriceUsd ?? null,
    adminToken: deps.config.adminToken ?? '',
    secure: deps.config.cookieSecure === true,
    clientAddress,
    audit,
  };
}

function tooMany(res: ServerResponse, retryMillis: number, html: boolean): void {
  const headers = { 'retry-after': String(Math.ceil(retryMillis / 1000)) };
  const wait = waitText(retryMillis);
  if (html) sendHtml(res, 429, renderLogin({ error: `Too many failed attempts from your address. Try again in ${wait}.` }), headers);
  else sendText(res, 429, `too many failed attempts; retry in ${wait}`, headers);
}

function warnings(ctx: AdminContext, req: IncomingMessage): string[] {
  const out: string[] = [];
  if (ctx.adminToken.length < MIN_ADMIN_TOKEN_CHARS) out.push('ADMIN_TOKEN is short. Generate one with: openssl rand -hex 32');
  const proto = req.headers['x-forwarded-proto'];
  if (!ctx.secure && typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https') {
    out.push('This page is served over HTTPS but COOKIE_SECURE is off: set COOKIE_SECURE=1.');
  }
  return out;
}

// ---- views (GET/HEAD, any auth but none) ----

type View = (ctx: AdminContext, req: IncomingMessage, res: ServerResponse, url: URL, auth: Auth) => Promise<void>;

/** One dashboard page (pages.ts): reads only the sections it shows; `?export` is the whole snapshot. */
async function showDashboard(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, url: URL, auth: Auth): Promise<void> {
  const { deps, prices, seatPriceUsd } = ctx;
  const now = deps.now();
  const params = url.searchParams;
  const filter = parseFilter(params, now.getTime(), ctx.defaultTz);
  const snapshot = params.has('export');
  const view = viewOf(params);
  const tables = tableOptions(params, now.getTime(), snapshot);
  const data = await deps.store.dashboard(now, { filter, eventsPage: pageParam(params, 'events.page'), prices, ...tables, ...(snapshot ? {} : { sections: sectionsOf(view) }) });
  const auditPage = pageParam(params, 'audit.page');
  const audit = snapshot || view === 'audit' ? await deps.store.listAudit({ fromIso: filter.fromIso, toIso: filter.toIso, limit: AUDIT_PAGE, offset: (auditPage - 1) * AUDIT_PAGE }) : [];
  const budgets =
    data.seatValue === null
      ? undefined
      : {
          statuses: await budgetStatuses(deps.store, prices ?? SHIPPED_BOOK, now.getTime(), data.seatValue.spend),
          alerts: snapshot || view === 'budgets' ? await deps.store.listBudgetAlerts(20) : [],
          webhook: deps.config.alertWebhookUrl !== undefined,
        };
  const common = { view, seatPriceUsd, audit, auditPage, ...(budgets === undefined ? {} : { budgets }) };
  if (snapshot) {
    const html = renderDashboard(data, { mode: { kind: 'export' }, ...common });
    sendHtml(res, 200, html, { 'content-disposition': `attachment; filename="ccflux-usage-${data.generatedAt.slice(0, 10)}.html"` });
    return;
  }
  const flash = await takeFlash(ctx, auth);
  sendHtml(res, 200, renderDashboard(data, { mode: modeOf(auth, url), flash, warnings: warnings(ctx, req), params, ...common }));
}

/** The session's flash, shown once: cleared as it is read. */
async function takeFlash(ctx: AdminContext, auth: Auth): Promise<Flash | null> {
  if (auth.kind !== 'session') return null;
  const flash = auth.session.flash;
  if (flash !== null) await ctx.sessions.setFlash(auth.id, null);
  return flash;
}

/** Forms for a session (carrying the page to come back to after a mutation), none for a bearer. */
function modeOf(auth: Auth, url: URL): RenderMode {
  return auth.kind === 'session' ? { kind: 'session', csrfToken: auth.session.csrfToken, back: `${url.pathname}${url.search}` } : { kind: 'readonly' };
}

async function exportFile(ctx: AdminContext, res: ServerResponse, url: URL, kind: ExportKind, format: ExportFormat): Promise<void> {
  const filter = parseFilter(url.searchParams, ctx.deps.now().getTime(), ctx.defaultTz);
  res.writeHead(200, {
    'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
    'content-disposition': `attachment; filename="${exportFileName(kind, format, filter)}"`,
  });
  try {
    const count = await streamExport(ctx.deps.store, kind, format, filter, ctx.prices ?? SHIPPED_BOOK, drainingWriter(res));
    ctx.logger.info({ msg: 'export', kind, format, rows: count });
    res.end();
  } catch (err) {
    ctx.logger.warn({ msg: 'export stopped', kind, format, error: (err as Error).message });
    res.destroy();
  }
}

async function showUser(ctx: AdminContext, res: ServerResponse, url: URL, auth: Auth): Promise<void> {
  const { deps, prices } = ctx;
  const now = deps.now();
  const params = url.searchParams;
  const email = (params.get('email') ?? '').trim().toLowerCase();
  if (email === '' || email.length > 255) {
    sendHtml(res, 400, renderMessage('No user', 'The link names no user.', { href: '/admin/', label: 'Back to the dashboard' }));
    return;
  }
  const view = new URLSearchParams(params);
  view.set('user', email);
  const filter = parseFilter(view, now.getTime(), ctx.defaultTz);
  const one = { q: '', sort: null, dir: 'desc' as const, page: 1, pageSize: MAX_LIST_ROWS, email };
  const data = await deps.store.dashboard(now, { filter, prices, sections: ['totals', 'chart', 'windows', 'users', 'keys'], usersTable: one, keysTable: one });
  const sessions = await deps.store.userSessions({ from: filter.fromIso, to: filter.toIso, user: email, model: filter.model, division: null }, prices);
  const flash = await takeFlash(ctx, auth);
  sendHtml(res, 200, renderUserPage(email, data, sessions, { mode: modeOf(auth, url), flash, params }));
}

const VIEWS = new Map<string, View>([
  ['/admin/', showDashboard],
  ['/admin/user', (ctx, _req, res, url, auth) => showUser(ctx, res, url, auth)],
]);

/** The view a read path shows, or null when it is no view. */
function viewFor(path: string): View | null {
  const view = VIEWS.get(path);
  if (view !== undefined) return view;
  const exportMatch = /^\/admin\/export\/(usage|events|audit)\.(csv|json)$/.exec(path);
  if (exportMatch === null) return null;
  return (ctx, _req, res, url) => exportFile(ctx, res, url, exportMatch[1] as ExportKind, exportMatch[2] as ExportFormat);
}

// ---- auth: login form, bearer header, session cookie ----

async function login(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, nowMillis: number, current: Auth): Promise<void> {
  const address = ctx.clientAddress(req);
  // Checked before reading the guess: a limited address learns nothing, right or wrong.
  const wait = await ctx.limiter.retryAfterMillis(address);
  if (wait > 0) return tooMany(res, wait, true);
  const body = await readForm(req, MAX_FORM_BYTES);
  if (body.kind === 'too-large') return sendText(res, 413, 'form too large', { connection: 'close' });
  if (body.kind === 'unsupported-type') return sendText(res, 415, 'expected a form');
  const token = body.form.get('token') ?? '';
  if (!secretsEqual(token, ctx.adminToken)) {
    await ctx.limiter.recordFailure(address);
    await ctx.audit(req, 'anonymous', 'login.failure', '', { via: 'form' });
    return sendHtml(res, 401, renderLogin({ error: 'Wrong admin token.' }));
  }
  // A fresh id on every login: a session id planted before login is never promoted.
  if (current.kind === 'session') await ctx.sessions.delete(current.id);
  const { id } = await ctx.sessions.create(nowMillis);
  await ctx.audit(req, 'session', 'login.success', '', { via: 'form' });
  redirect(res, 303, '/admin/', { 'set-cookie': sessionCookie(id, { maxAgeSeconds: Math.floor(ctx.limits.sessionMaxMillis / 1000), secure: ctx.secure }) });
}

async function loginRoute(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, nowMillis: number, auth: Auth): Promise<void> {
  const method = req.method ?? 'GET';
  if (method === 'POST') return login(ctx, req, res, nowMillis, auth);
  if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, 'method not allowed', { allow: 'GET, HEAD, POST' });
  if (auth.kind !== 'none') return redirect(res, 303, '/admin/');
  return sendHtml(res, 200, renderLogin());
}

/** Who is asking; null when the answer (429 or 401 for a bad bearer token) has been sent. */
async function authenticate(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, nowMillis: number): Promise<Auth | null> {
  const authorization = req.headers.authorization;
  if (authorization === undefined) {
    const id = readSessionCookie(req);
    const session = id === null ? null : await ctx.sessions.get(id, nowMillis);
    return id !== null && session !== null ? { kind: 'session', id, session } : { kind: 'none' };
  }
  const address = ctx.clientAddress(req);
  const wait = await ctx.limiter.retryAfterMillis(address);
  if (wait > 0) {
    tooMany(res, wait, false);
    return null;
  }
  const m = /^Bearer +(\S+) *$/i.exec(authorization);
  if (m === null || !secretsEqual(m[1]!, ctx.adminToken)) {
    await ctx.limiter.recordFailure(address);
    await ctx.audit(req, 'anonymous', 'login.failure', '', { via: 'bearer' });
    sendText(res, 401, 'invalid admin token', { 'www-authenticate': 'Bearer realm="ccflux-admin"' });
    return null;
  }
  return { kind: 'bearer' };
}

// ---- mutations (POST with a session and its CSRF token) ----

type MutationRoute = Exclude<PostRoute, '/admin/logout'>;
type Mutation = (ctx: AdminContext, form: URLSearchParams, req: IncomingMessage) => Promise<Flash>;

async function provisionUser(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const p = parseProvision(form);
  if (!p.ok) return { kind: 'error', text: p.error };
  const opts: { division?: string; days?: number } = {};
  if (p.value.division !== '') opts.division = p.value.division;
  if (p.value.days !== undefined) opts.days = p.value.days;
  const { refreshToken } = await ctx.deps.store.createUser(p.value.email, opts);
  await ctx.audit(req, 'session', 'user.provision', p.value.email.toLowerCase(), { division: p.value.division, ...(p.value.days === undefined ? {} : { days: p.value.days }) });
  return { kind: 'token', action: 'provisioned', email: p.value.email, refreshToken, endpoint: publicEndpoint(req, ctx.secure) };
}

async function reissueUser(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const email = parseEmail(form);
  if (!email.ok) return { kind: 'error', text: email.error };
  const days = parseDays(form);
  if (!days.ok) return { kind: 'error', text: days.error };
  const { refreshToken } = await ctx.deps.store.reissueToken(email.value, days.value === undefined ? {} : { days: days.value });
  await ctx.audit(req, 'session', 'user.reissue', email.value.toLowerCase(), days.value === undefined ? undefined : { days: days.value });
  return { kind: 'token', action: 'reissued', email: email.value, refreshToken, endpoint: publicEndpoint(req, ctx.secure) };
}

async function revokeUser(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const email = parseEmail(form);
  if (!email.ok) return { kind: 'error', text: email.error };
  await ctx.deps.store.revokeUser(email.value);
  await ctx.audit(req, 'session', 'user.revoke', email.value.toLowerCase());
  return { kind: 'ok', text: `Revoked ${email.value}: their tokens no longer work.` };
}

async function setBudget(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const b = parseBudget(form);
  if (!b.ok) return { kind: 'error', text: b.error };
  const { budget, previous } = await ctx.deps.store.setBudget(b.value);
  await ctx.audit(req, 'session', 'budget.set', `${budget.scope}:${budget.subject}`, {
    unit: budget.unit,
    monthly_limit: budget.monthlyLimit,
    ...(previous === null ? {} : { previous_unit: previous.unit, previous_limit: previous.monthlyLimit }),
  });
  ctx.deps.onBudgetChange?.();
  return { kind: 'ok', text: `Budget saved: ${budget.scope === 'org' ? 'the organisation' : budget.subject}, ${budget.monthlyLimit} ${budget.unit === 'usd' ? 'USD' : 'tokens'} a month.` };
}

async function deleteBudget(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const id = parseId(form);
  if (!id.ok) return { kind: 'error', text: id.error };
  const gone = await ctx.deps.store.deleteBudget(id.value);
  if (gone === null) return { kind: 'error', text: 'No such budget.' };
  await ctx.audit(req, 'session', 'budget.delete', `${gone.scope}:${gone.subject}`, { unit: gone.unit, monthly_limit: gone.monthlyLimit });
  return { kind: 'ok', text: 'Budget deleted.' };
}

async function revokeKey(ctx: AdminContext, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  const key = parsePublicKey(form);
  if (!key.ok) return { kind: 'error', text: key.error };
  // The row's user: revocation applies to that one registration, never to every user of the key.
  const owner = parseEmail(form);
  const n = await ctx.deps.store.revokeKey(key.value, owner.ok ? owner.value : undefined);
  await ctx.audit(req, 'session', 'key.revoke', key.value, { registrations: n, ...(owner.ok ? { user: owner.value.toLowerCase() } : {}) });
  return { kind: 'ok', text: `Revoked ${n} device key${n === 1 ? '' : 's'}. The device stops reporting.` };
}

const MUTATIONS: Record<MutationRoute, Mutation> = {
  '/admin/users': provisionUser,
  '/admin/users/reissue': reissueUser,
  '/admin/users/revoke': revokeUser,
  '/admin/budgets': setBudget,
  '/admin/budgets/delete': deleteBudget,
  '/admin/keys/revoke': revokeKey,
};

/** Runs one mutation; answers with the flash to show on the dashboard. */
async function mutate(ctx: AdminContext, route: MutationRoute, form: URLSearchParams, req: IncomingMessage): Promise<Flash> {
  try {
    return await MUTATIONS[route](ctx, form, req);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'exists') return { kind: 'error', text: 'A user with that email already exists.' };
    if (code === 'ambiguous') return { kind: 'error', text: 'Several users registered that key: revoke it from its row in Device keys.' };
    if (code === 'not-found') return { kind: 'error', text: route === '/admin/keys/revoke' ? 'No such device key.' : 'No such user.' };
    if (code === 'revoked') return { kind: 'error', text: 'That user is revoked. Provision them again to issue a new token.' };
    if (code === 'invalid') return { kind: 'error', text: 'Invalid input: check the email, division and days.' };
    throw err;
  }
}

function formExpired(ctx: AdminContext, res: ServerResponse): void {
  sendHtml(
    res,
    403,
    renderMessage(
      'Form expired',
      `The form was not accepted: it came from an older page or another session (missing or invalid CSRF token). ` +
        `A session ends after ${waitText(ctx.limits.sessionIdleMillis)} without use and at the latest ${waitText(ctx.limits.sessionMaxMillis)} after login. ` +
        `Nothing was changed. Open the dashboard again and repeat the action.`,
      { href: '/admin/', label: 'Back to the dashboard' },
    ),
  );
}

async function post(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, route: PostRoute, auth: Auth): Promise<void> {
  if (auth.kind === 'bearer') return sendText(res, 403, 'bearer access is read-only; log in through the form to change anything');
  if (auth.kind !== 'session') return sendText(res, 403, 'not logged in');
  const body = await readForm(req, MAX_FORM_BYTES);
  if (body.kind === 'too-large') return sendText(res, 413, 'form too large', { connection: 'close' });
  if (body.kind === 'unsupported-type') return sendText(res, 415, 'expected a form');
  if (!secretsEqual(body.form.get('csrf_token') ?? '', auth.session.csrfToken)) return formExpired(ctx, res);
  const confirm = confirmation(route, body.form, auth.session.csrfToken);
  if (confirm !== null) return sendHtml(res, 200, confirm);
  if (route === '/admin/logout') {
    await ctx.sessions.delete(auth.id);
    await ctx.audit(req, 'session', 'logout', '');
    return redirect(res, 303, '/admin/login', { 'set-cookie': clearedSessionCookie(ctx.secure) });
  }
  await ctx.sessions.setFlash(auth.id, await mutate(ctx, route, body.form, req));
  // Back to the page the form was on (its table page and filters), shown with the flash.
  redirect(res, 303, backTo(body.form.get('back')));
}

// ---- dispatch ----

/** Sends one authenticated request to its view, the login page, or a mutation; 404 otherwise. */
async function route(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, url: URL, auth: Auth, nowMillis: number): Promise<void> {
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const isRead = method === 'GET' || method === 'HEAD';
  const view = viewFor(path);
  if (view !== null) {
    if (!isRead) return sendText(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    if (auth.kind === 'none') return redirect(res, 303, '/admin/login');
    return view(ctx, req, res, url, auth);
  }
  if (path === '/admin/login') return loginRoute(ctx, req, res, nowMillis, auth);
  if (isPostRoute(path)) {
    if (method !== 'POST') return sendText(res, 405, 'method not allowed', { allow: 'POST' });
    return post(ctx, req, res, path, auth);
  }
  sendText(res, 404, 'not found');
}

export function createAdminHandler(deps: AdminDeps): AdminHandler {
  const ctx = adminContext(deps);
  return async (req, res, url) => {
    setSecurityHeaders(res);
    if (ctx.adminToken === '') {
      sendHtml(res, 404, renderMessage('Admin dashboard disabled', 'Set ADMIN_TOKEN on the receiver to enable the admin dashboard.'));
      return;
    }
    if (url.pathname === '/admin') return redirect(res, 308, `/admin/${url.search}`);
    const method = req.method ?? 'GET';
    const nowMillis = deps.now().getTime();

    // A cross-site POST is refused whatever it carries (SameSite already keeps the cookie off it).
    if (method === 'POST' && req.headers['sec-fetch-site'] === 'cross-site') return sendText(res, 403, 'cross-site request refused');

    const auth = await authenticate(ctx, req, res, nowMillis);
    if (auth === null) return;
    return route(ctx, req, res, url, auth, nowMillis);
  };
}
