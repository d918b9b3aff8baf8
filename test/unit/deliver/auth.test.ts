import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AccessTokenCache,
  credentialBinding,
  exchangeToken,
  getAccessToken,
  MAX_ACCESS_TOKEN_TRUST_MILLIS,
  needsRefresh,
  parseTokenResponse,
  REFRESH_TOKEN_REVOKED_MESSAGE,
  saveTokenCache,
} from '../../../src/client/deliver/auth';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import type { Transport, TransportResult } from '../../../src/client/deliver/transport';

const NOW = new Date('2026-05-11T03:00:00Z');
const at = (offsetMillis: number) => new Date(NOW.getTime() + offsetMillis).toISOString();
const MIN = 60_000;
const HOUR = 60 * MIN;
const REFRESH = 'ccf_rt_REFRESHsecretVALUE000000000001';
const ACCESS = 'ccf_at_ACCESSsecretVALUE0000000000001';
const ENDPOINT = 'https://usage.example.org/report';

describe('needsRefresh (pure)', () => {
  const cache = (expires_at: string, access_token = ACCESS): AccessTokenCache => ({ access_token, expires_at });

  it('missing or malformed cache needs a refresh', () => {
    expect(needsRefresh(null, NOW)).toBe(true);
    expect(needsRefresh(cache('not a date'), NOW)).toBe(true);
    expect(needsRefresh(cache(''), NOW)).toBe(true);
    expect(needsRefresh(cache(at(HOUR), ''), NOW)).toBe(true);
    expect(needsRefresh(cache(at(HOUR), 'has space'), NOW)).toBe(true);
    expect(needsRefresh({ access_token: 5, expires_at: at(HOUR) } as unknown as AccessTokenCache, NOW)).toBe(true);
  });

  it('reuses until within 5 minutes of expiry', () => {
    expect(needsRefresh(cache(at(8 * HOUR)), NOW)).toBe(false);
    expect(needsRefresh(cache(at(5 * MIN + 1000)), NOW)).toBe(false);
    expect(needsRefresh(cache(at(5 * MIN)), NOW)).toBe(true);
    expect(needsRefresh(cache(at(4 * MIN)), NOW)).toBe(true);
    expect(needsRefresh(cache(at(-HOUR)), NOW)).toBe(true);
  });

  it('accepts RFC 3339 offsets and fractional seconds', () => {
    expect(needsRefresh(cache('2026-05-11T05:00:00+02:00'), NOW)).toBe(true); // = 03:00Z, expired
    expect(needsRefresh(cache('2026-05-11T11:00:00.123456+02:00'), NOW)).toBe(false);
  });

  it('a cache claiming far more than 24 h (clock jumped back, hand edit) is not trusted', () => {
    expect(needsRefresh(cache(at(MAX_ACCESS_TOKEN_TRUST_MILLIS)), NOW)).toBe(false);
    expect(needsRefresh(cache(at(3 * 24 * HOUR)), NOW)).toBe(true);
    expect(needsRefresh(cache(at(400 * 24 * HOUR)), NOW)).toBe(true);
  });
});

describe('parseTokenResponse (pure)', () => {
  const body = (fields: Record<string, unknown>) => JSON.stringify(fields);

  it('takes a normal answer as is (whole seconds)', () => {
    expect(parseTokenResponse(body({ access_token: ACCESS, expires_at: at(8 * HOUR), token_type: 'Bearer' }), NOW)).toEqual({
      access_token: ACCESS,
      expires_at: '2026-05-11T11:00:00Z',
    });
    expect(parseTokenResponse(body({ access_token: ACCESS, expires_at: '2026-05-11T11:00:00.999Z' }), NOW)?.expires_at).toBe(
      '2026-05-11T11:00:00Z',
    );
  });

  it.each([
    ['not JSON', 'oops'],
    ['HTML', '<html>proxy login</html>'],
    ['array', '[]'],
    ['null', 'null'],
    ['no token', body({ expires_at: at(HOUR) })],
    ['empty token', body({ access_token: '', expires_at: at(HOUR) })],
    ['token with newline', body({ access_token: 'a\nb', expires_at: at(HOUR) })],
    ['huge token', body({ access_token: 'a'.repeat(5000), expires_at: at(HOUR) })],
    ['no expiry', body({ access_token: ACCESS })],
    ['expiry not RFC 3339', body({ access_token: ACCESS, expires_at: 'tomorrow' })],
    ['numeric expiry', body({ access_token: ACCESS, expires_at: 1778500000 })],
    ['wrong token type', body({ access_token: ACCESS, expires_at: at(HOUR), token_type: 'MAC' })],
    ['absurd future', body({ access_token: ACCESS, expires_at: '2099-01-01T00:00:00Z' })],
    ['absurd past', body({ access_token: ACCESS, expires_at: '1970-01-01T00:00:00Z' })],
    ['too big', 'x'.repeat(20_000)],
  ])('garbage (%s) → null', (_name, text) => {
    expect(parseTokenResponse(text, NOW)).toBeNull();
  });

  it('an expiry already past by our clock is used now and reused for a minute, not exchanged every report', () => {
    const parsed = parseTokenResponse(body({ access_token: ACCESS, expires_at: at(-2 * HOUR) }), NOW);
    expect(parsed).not.toBeNull();
    expect(needsRefresh(parsed, NOW)).toBe(false);
    expect(needsRefresh(parsed, new Date(NOW.getTime() + 61_000))).toBe(true);
  });

  it('a long expiry (within a year) is trusted for 24 h at most', () => {
    const parsed = parseTokenResponse(body({ access_token: ACCESS, expires_at: at(30 * 24 * HOUR) }), NOW);
    expect(parsed?.expires_at).toBe(at(24 * HOUR).replace('.000Z', 'Z'));
    expect(needsRefresh(parsed, new Date(NOW.getTime() + 23 * HOUR))).toBe(false);
    expect(needsRefresh(parsed, new Date(NOW.getTime() + 24 * HOUR - 4 * MIN))).toBe(true);
  });
});

// --- the shell, against a scripted transport ------------------------------------------------

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: string;
}

function scriptedTransport(answers: TransportResult[]): Transport & { sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    post: async (url, init) => {
      sent.push({ url, headers: init.headers ?? {}, body: String(init.body) });
      const next = answers.shift();
      if (!next) throw new Error('unexpected request');
      return next;
    },
    get: async () => {
      throw new Error('unexpected GET');
    },
    close: async () => {},
  };
}

const ok = (fields: Record<string, unknown>): TransportResult => ({
  kind: 'response',
  status: 200,
  headers: {},
  body: JSON.stringify(fields),
  truncated: false,
});
const status = (code: number): TransportResult => ({ kind: 'response', status: code, headers: {}, body: '', truncated: false });

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let root: string;
let paths: StatePaths;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-auth-'));
  paths = statePaths(root);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function deps(transport: Transport, log = memoryLog(), now = () => NOW) {
  return { paths, transport, now, log, credentials: { endpoint: ENDPOINT, token: REFRESH } };
}

describe('exchangeToken', () => {
  it('POSTs <base>/token with the refresh token as bearer and an empty body', async () => {
    const transport = scriptedTransport([ok({ access_token: ACCESS, expires_at: at(8 * HOUR), token_type: 'Bearer' })]);
    const result = await exchangeToken({ transport, now: () => NOW }, { endpoint: ENDPOINT, refreshToken: REFRESH });
    expect(result).toEqual({ kind: 'ok', cache: { access_token: ACCESS, expires_at: '2026-05-11T11:00:00Z' } });
    expect(transport.sent).toHaveLength(1);
    expect(transport.sent[0]!.url).toBe('https://usage.example.org/token');
    expect(transport.sent[0]!.headers.authorization).toBe(`Bearer ${REFRESH}`);
    expect(transport.sent[0]!.body).toBe('');
  });

  it('maps 401, 5xx, network errors and a useless 200', async () => {
    const ex = (answer: TransportResult) =>
      exchangeToken({ transport: scriptedTransport([answer]), now: () => NOW }, { endpoint: ENDPOINT, refreshToken: REFRESH });
    expect(await ex(status(401))).toEqual({ kind: 'revoked' });
    expect(await ex(status(503))).toMatchObject({ kind: 'unavailable', reason: 'server-busy', status: 503 });
    expect(await ex(status(429))).toMatchObject({ kind: 'unavailable', reason: 'server-busy' });
    expect(await ex({ kind: 'network-error', code: 'ECONNREFUSED', message: 'refused' })).toMatchObject({
      kind: 'unavailable',
      reason: 'unreachable',
      status: null,
    });
    expect(await ex(ok({ nope: true }))).toMatchObject({ kind: 'unavailable', reason: 'unexpected-answer' });
    expect(await ex(status(302))).toMatchObject({ kind: 'unavailable', reason: 'unexpected-answer' });
  });
});

describe('getAccessToken', () => {
  it('exchanges, caches 0600, then reuses the cache without the network', async () => {
    const transport = scriptedTransport([ok({ access_token: ACCESS, expires_at: at(8 * HOUR), token_type: 'Bearer' })]);
    expect(await getAccessToken(deps(transport))).toEqual({ kind: 'ok', token: ACCESS });
    expect((await stat(paths.tokenCache)).mode & 0o777).toBe(0o600);
    const cached = JSON.parse(await readFile(paths.tokenCache, 'utf8'));
    expect(cached).toMatchObject({ access_token: ACCESS, expires_at: '2026-05-11T11:00:00Z' });
    expect(JSON.stringify(cached)).not.toContain(REFRESH);
    expect(await getAccessToken(deps(transport))).toEqual({ kind: 'ok', token: ACCESS });
    expect(transport.sent).toHaveLength(1);
  });

  it('refreshes when the cache is within 5 minutes of expiry (injected clock)', async () => {
    const second = 'ccf_at_SECONDaccess000000000000000002';
    const transport = scriptedTransport([
      ok({ access_token: ACCESS, expires_at: at(HOUR) }),
      ok({ access_token: second, expires_at: at(9 * HOUR) }),
    ]);
    let now = NOW;
    const d = deps(transport, memoryLog(), () => now);
    expect(await getAccessToken(d)).toEqual({ kind: 'ok', token: ACCESS });
    now = new Date(NOW.getTime() + 54 * MIN);
    expect(await getAccessToken(d)).toEqual({ kind: 'ok', token: ACCESS });
    now = new Date(NOW.getTime() + 56 * MIN);
    expect(await getAccessToken(d)).toEqual({ kind: 'ok', token: second });
    expect(transport.sent).toHaveLength(2);
  });

  it('forceRefresh exchanges even with a good cache', async () => {
    await saveTokenCache(paths, { access_token: ACCESS, expires_at: at(8 * HOUR) }, { endpoint: ENDPOINT, token: REFRESH });
    const fresh = 'ccf_at_FRESHaccess00000000000000000003';
    const transport = scriptedTransport([ok({ access_token: fresh, expires_at: at(8 * HOUR) })]);
    expect(await getAccessToken(deps(transport), { forceRefresh: true })).toEqual({ kind: 'ok', token: fresh });
  });

  it('a Rust-written cache (no bound_to) is used', async () => {
    await writeFile(paths.tokenCache, JSON.stringify({ access_token: ACCESS, expires_at: at(8 * HOUR) }), { mode: 0o600 });
    const transport = scriptedTransport([]);
    expect(await getAccessToken(deps(transport))).toEqual({ kind: 'ok', token: ACCESS });
  });

  it('a cache from other credentials (another endpoint or token) is not sent', async () => {
    await saveTokenCache(paths, { access_token: ACCESS, expires_at: at(8 * HOUR) }, { endpoint: 'https://old.example', token: REFRESH });
    const fresh = 'ccf_at_FRESHaccess00000000000000000004';
    const transport = scriptedTransport([ok({ access_token: fresh, expires_at: at(8 * HOUR) })]);
    expect(await getAccessToken(deps(transport))).toEqual({ kind: 'ok', token: fresh });
    expect(credentialBinding({ endpoint: ENDPOINT, token: REFRESH })).toBe(
      credentialBinding({ endpoint: 'https://usage.example.org/', token: REFRESH }),
    );
  });

  it('a corrupt cache is discarded (logged) and replaced', async () => {
    await writeFile(paths.tokenCache, '{"access_token": "trunc', { mode: 0o600 });
    const log = memoryLog();
    const transport = scriptedTransport([ok({ access_token: ACCESS, expires_at: at(8 * HOUR) })]);
    expect(await getAccessToken(deps(transport, log))).toEqual({ kind: 'ok', token: ACCESS });
    expect(log.lines.some((l) => l.includes('token cache was unreadable'))).toBe(true);
    expect(JSON.parse(await readFile(paths.tokenCache, 'utf8')).access_token).toBe(ACCESS);
  });

  it('/token 401 logs exactly the SPEC line, clears the cache, never logs the refresh token', async () => {
    await saveTokenCache(paths, { access_token: ACCESS, expires_at: at(HOUR) }, { endpoint: ENDPOINT, token: REFRESH });
    const log = memoryLog();
    const transport = scriptedTransport([status(401)]);
    expect(await getAccessToken(deps(transport, log), { forceRefresh: true })).toEqual({ kind: 'revoked' });
    expect(log.lines).toEqual([`error ${REFRESH_TOKEN_REVOKED_MESSAGE}`]);
    expect(REFRESH_TOKEN_REVOKED_MESSAGE).toBe('refresh token expired or revoked — contact your IT admin');
    await expect(stat(paths.tokenCache)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('unavailable keeps the cache and logs nothing itself', async () => {
    const log = memoryLog();
    const transport = scriptedTransport([{ kind: 'network-error', code: 'ECONNREFUSED', message: 'refused' }]);
    expect(await getAccessToken(deps(transport, log))).toMatchObject({ kind: 'unavailable', reason: 'unreachable' });
    expect(log.lines).toEqual([]);
  });
});
