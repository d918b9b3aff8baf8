/**
 * Test harness: the admin handler mounted on a real http server on port 0, over a fresh SQLite
 * file migrated by the receiver's own `openDatabase`, with the real Store and a controllable clock.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTimestamp, type ReportBody } from '../../../src/protocol/wire';
import { type AuthLimits, DEFAULT_AUTH_LIMITS } from '../../src/admin/auth';
import { createAdminHandler } from '../../src/admin/index';
import type { Logger } from '../../src/log';
import type { Db } from '../../src/db/open';
import type { Store } from '../../src/store';
import { BACKEND, freshStore } from '../support';

export const ADMIN_TOKEN = 'a3f1c9e07b5d4e2f8a6c1b0d9e7f5a3c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f';
export const START = Date.parse('2026-05-11T12:00:00Z');

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  cookies: string[];
}

export interface Harness {
  url: string;
  db: Db;
  store: Store;
  advance(ms: number): void;
  nowMillis(): number;
  get(path: string, opts?: { cookie?: string; headers?: Record<string, string> }): Promise<Answer>;
  post(path: string, fields: Record<string, string>, opts?: { cookie?: string; headers?: Record<string, string> }): Promise<Answer>;
  /** Logs in through the form; returns the cookie pair (`name=value`) and the page's CSRF token. */
  login(): Promise<{ cookie: string; csrf: string }>;
  close(): Promise<void>;
}

export function cookiePair(setCookie: string): string {
  return setCookie.split(';')[0]!;
}

export function csrfOf(html: string): string {
  const m = /name="csrf_token" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no csrf token on the page');
  return m[1]!;
}

async function answer(res: Response): Promise<Answer> {
  return { status: res.status, headers: res.headers, body: await res.text(), cookies: res.headers.getSetCookie() };
}

export async function startAdmin(
  opts: { adminToken?: string | undefined; cookieSecure?: boolean; limits?: Partial<AuthLimits>; logger?: Logger } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'ccflux-admin-'));
  let now = START;
  const clock = () => new Date(now);
  const fresh = await freshStore(BACKEND, clock);
  const { store } = fresh;
  const db = fresh.db as Db;
  const handler = createAdminHandler({
    config: { adminToken: 'adminToken' in opts ? opts.adminToken : ADMIN_TOKEN, cookieSecure: opts.cookieSecure === true },
    store,
    now: clock,
    limits: { ...DEFAULT_AUTH_LIMITS, ...opts.limits },
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) {
      handler(req, res, url).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const h: Harness = {
    url: base,
    db,
    store,
    advance(ms) {
      now += ms;
    },
    nowMillis: () => now,
    async get(path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.cookie) headers.cookie = o.cookie;
      return answer(await fetch(base + path, { redirect: 'manual', headers }));
    },
    async post(path, fields, o = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...o.headers };
      if (o.cookie) headers.cookie = o.cookie;
      return answer(await fetch(base + path, { method: 'POST', redirect: 'manual', headers, body: new URLSearchParams(fields).toString() }));
    },
    async login() {
      const res = await h.post('/admin/login', { token: ADMIN_TOKEN });
      if (res.status !== 303 || res.cookies.length !== 1) throw new Error(`login failed: ${res.status}`);
      const cookie = cookiePair(res.cookies[0]!);
      const page = await h.get('/admin/', { cookie });
      return { cookie, csrf: csrfOf(page.body) };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fresh.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A raw request from a chosen loopback source address (fetch cannot pick one). */
export function postFrom(
  base: string,
  localAddress: string,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Provisions a user and stores one report for them through the Store, as /report would. */
export async function seedUsage(
  store: Store,
  email: string,
  report: Partial<ReportBody> & { models: ReportBody['models'] },
  opts: { deviceId?: string; signed?: boolean; division?: string } = {},
): Promise<string> {
  const { refreshToken } = await store.createUser(email, opts.division === undefined ? {} : { division: opts.division });
  await addReport(store, refreshToken, report, opts);
  return refreshToken;
}

export async function addReport(
  store: Store,
  refreshToken: string,
  report: Partial<ReportBody> & { models: ReportBody['models'] },
  opts: { deviceId?: string; signed?: boolean } = {},
): Promise<void> {
  const auth = await store.authenticateRefreshToken(refreshToken);
  if (auth === null) throw new Error('token does not authenticate');
  const body: ReportBody = {
    schema_version: 1,
    session_id: 'sess-1',
    user_email: auth.email,
    turn_index: 0,
    timestamp_utc: '2026-05-11T10:00:00Z',
    session_start_utc: '2026-05-11T09:55:00Z',
    plugin_version: '0.1.0',
    ...report,
  };
  await store.insertReport(auth, body, { deviceId: opts.deviceId ?? 'laptop-1', signed: opts.signed ?? true });
}

export function usage(input: number, output: number, cacheRead = 0, cacheWrite = 0): ReportBody['models'][string] {
  return { input_tokens: input, output_tokens: output, cache_read_tokens: cacheRead, cache_write_tokens: cacheWrite };
}

/** A valid-looking base64 Ed25519 public key derived from a label. */
export function fakePublicKey(label: string): string {
  return createHash('sha256').update(label).digest('base64');
}

/** Thirty days of plausible usage for a small team, deterministic. */
export async function seedDemo(h: { store: Store; nowMillis(): number }): Promise<void> {
  const people = [
    ['maria.lopez@example.org', 'Platform', 1.6],
    ['dev.patel@example.org', 'Platform', 1.1],
    ['sam.okafor@example.org', 'Data', 0.8],
    ['lea.martin@example.org', 'Research', 0.55],
    ['tom.berg@example.org', 'Support', 0.25],
  ] as const;
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const now = h.nowMillis();
  for (const [email, division, weight] of people) {
    const { refreshToken } = await h.store.createUser(email, { division });
    const auth = (await h.store.authenticateRefreshToken(refreshToken))!;
    const host = `${email.split('.')[0]}-mbp`;
    await h.store.registerKey(auth, fakePublicKey(email), host);
    for (let day = 29; day >= 0; day--) {
      const date = new Date(now - day * 86_400_000);
      if (date.getUTCDay() === 0 || date.getUTCDay() === 6) continue;
      const sessions = Math.round(weight * (1 + rand() * 3));
      for (let s = 0; s < sessions; s++) {
        const turns = 3 + Math.floor(rand() * 12 * weight);
        const startHour = 8 + Math.floor(rand() * 9);
        const sessionId = `${day}-${s}-${email.length}-${Math.floor(rand() * 1e6)}`;
        for (let t = 0; t < turns; t++) {
          const at = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate(), startHour, t * 4);
          if (at > now) break;
          const opus = rand() < 0.3 * weight;
          const models: ReportBody['models'] = {
            [opus ? 'claude-opus-4-6' : 'claude-sonnet-4-6']: {
              input_tokens: Math.floor(800 + rand() * 4000),
              output_tokens: Math.floor(300 + rand() * 2500),
              cache_read_tokens: Math.floor(20_000 + rand() * 90_000),
              cache_write_tokens: Math.floor(rand() * 6000),
            },
          };
          if (rand() < 0.4) {
            models['claude-haiku-4-5'] = { input_tokens: Math.floor(200 + rand() * 900), output_tokens: Math.floor(50 + rand() * 300), cache_read_tokens: 0, cache_write_tokens: 0 };
          }
          const ts = formatTimestamp(new Date(at));
          await h.store.insertReport(
            auth,
            { schema_version: 1, session_id: sessionId, user_email: email, turn_index: t, timestamp_utc: ts, session_start_utc: ts, models, plugin_version: '0.1.0' },
            { deviceId: host, signed: true },
          );
        }
      }
    }
  }
}
