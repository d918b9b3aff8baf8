/**
 * Hostile or broken receiver answers: a fault proxy in front of the real receiver answers part of
 * the session with a huge body, an endless body, garbage JSON from /token, an `expires_at` in the
 * past or far in the future, control characters (and an over-long value) in `X-CCFLUX-Error` and
 * `Date`, and redirects to another host or from https down to http (the proxy then serves HTTPS
 * with a test certificate, trusted through CCFLUX_CA_CERT). Then it turns healthy.
 *
 * Workers run as the wrapper runs them (`--foreground`), so the test holds their exit status and
 * output: nothing crashes (exit 0, nothing printed, done within its deadline), nothing leaks (no
 * refresh or access token in any log or state file but the token cache), nothing server-sent is
 * logged raw (no control characters, no value over 64 characters), no redirect is followed, and
 * the receiver ends with the exact totals.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, sessionSums } from '../helpers/env';
import { type FaultAction, type FaultPlan, type FaultProxy, passThrough, startFaultProxy, type UpstreamAnswer } from '../helpers/fault-proxy';
import { mulberry32 } from '../helpers/gen-transcript';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { allStateText, applyAppend, CLI_EVENT, type Device, hookInput, lossFigure, makeDevice, readLog, scenario, settle, startWorker } from './device';
import { FAULT_SEED, reliability } from './support';

const TLS_DIR = fileURLToPath(new URL('./tls', import.meta.url));
/** Hooks answered by the hostile plan before the receiver turns healthy. */
const HOSTILE_HOOKS = 4;
/** A worker must be done well within this, whatever the answers (its own request deadline is 5 s). */
const WORKER_BOUND_MILLIS = 30_000;
const CASE_TIMEOUT_MILLIS = 90_000;
/** Control characters other than \t and \n, and DEL: must never reach a log. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

let receiver: RunningReceiver;
let token: string;
let catcher: Server;
let catcherPort = 0;
let caught = 0;
const accessTokens = new Set<string>();

beforeAll(async () => {
  receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  token = await receiver.addUser('alice@example.org');
  // Where redirects point: it must never see a request (bound to 127.0.0.2: "another host").
  catcher = createServer((req, res) => {
    caught++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"access_token":"caught","expires_at":"2099-01-01T00:00:00Z","token_type":"Bearer"}');
  });
  await new Promise<void>((resolve) => catcher.listen(0, '127.0.0.2', resolve));
  catcherPort = (catcher.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => catcher?.close(() => resolve()));
  await receiver?.stop();
  await cleanupTempDirs();
});

const pathOf = (path: string) => new URL(path, 'http://x').pathname;

/** Forwards everything, recording every access token the receiver hands out (to look for it in logs later). */
function recordTokens(answer: UpstreamAnswer): UpstreamAnswer {
  try {
    const body = JSON.parse(answer.body.toString()) as { access_token?: unknown };
    if (typeof body.access_token === 'string') accessTokens.add(body.access_token);
  } catch {
    // not a token answer
  }
  return answer;
}

const healthy: FaultPlan = () => ({ kind: 'forward', rewrite: recordTokens });

/** `plan` for requests to `path`, healthy forwarding for the rest. */
function on(path: string, action: (random: () => number) => FaultAction): FaultPlan {
  return (req, random) => (pathOf(req.path) === path ? action(random) : { kind: 'forward', rewrite: recordTokens });
}

function rewriteExpiry(expiresAt: string): FaultPlan {
  return on('/token', () => ({
    kind: 'forward',
    rewrite: (answer) => {
      recordTokens(answer);
      const body = JSON.parse(answer.body.toString()) as Record<string, unknown>;
      body.expires_at = expiresAt;
      return { ...answer, body: Buffer.from(JSON.stringify(body)) };
    },
  }));
}

function raw403(errorValue: string, extraHeaders = ''): FaultAction {
  return {
    kind: 'raw',
    data: Buffer.from(
      `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nX-CCFLUX-Error: ${errorValue}\r\n${extraHeaders}Content-Length: 2\r\nConnection: close\r\n\r\n{}`,
      'latin1',
    ),
  };
}

interface Case {
  name: string;
  plan: () => FaultPlan;
  tls?: boolean;
}

const LONG = 'A'.repeat(500);
const HOUR_MILLIS = 3_600_000;
const isoIn = (millis: number) => new Date(Date.now() + millis).toISOString().replace(/\.\d+Z$/, 'Z');
/** The real receiver's answer (it stored the report), padded with 8 MiB of whitespace. */
const padded: FaultAction = {
  kind: 'forward',
  rewrite: (answer) => ({ ...answer, body: Buffer.concat([answer.body, Buffer.alloc(8 * 1024 * 1024, 0x20)]) }),
};
const CASES: Case[] = [
  { name: '/token: 200 with an 8 MiB body', plan: () => on('/token', () => ({ kind: 'respond', status: 200, headers: { 'content-type': 'application/json' }, body: `{"access_token":"${'x'.repeat(8 * 1024 * 1024)}","expires_at":"2099-01-01T00:00:00Z"}` })) },
  { name: '/report: the real 200 padded to 8 MiB', plan: () => on('/report', () => padded) },
  { name: '/token: endless body', plan: () => on('/token', () => ({ kind: 'respond', status: 200, endless: true })) },
  { name: '/report: 503 with an endless body', plan: () => on('/report', () => ({ kind: 'respond', status: 503, endless: true })) },
  { name: '/token: not JSON', plan: () => on('/token', () => ({ kind: 'respond', status: 200, headers: { 'content-type': 'application/json' }, body: '<html>\u001b[31mhello</html>' })) },
  { name: '/token: JSON of the wrong shape', plan: () => on('/token', (r) => ({ kind: 'respond', status: 200, body: ['[]', 'null', '{"access_token":123,"expires_at":"2099-01-01T00:00:00Z"}', '{"access_token":"ok"}', '{"access_token":"a\\u001b[2Jb\\nc","expires_at":"2099-01-01T00:00:00Z"}'][Math.floor(r() * 5)] as string })) },
  { name: '/token: expires_at an hour in the past', plan: () => rewriteExpiry(isoIn(-HOUR_MILLIS)) },
  { name: '/token: expires_at in 2001', plan: () => rewriteExpiry('2001-01-01T00:00:00Z') },
  { name: '/token: expires_at in 300 days', plan: () => rewriteExpiry(isoIn(300 * 24 * HOUR_MILLIS)) },
  { name: '/token: expires_at in 9999', plan: () => rewriteExpiry('9999-12-31T23:59:59Z') },
  { name: '/token: expires_at not a time', plan: () => rewriteExpiry('\u001b]0;pwned\u0007tomorrow') },
  // Control bytes in a header: the HTTP parser refuses the whole answer (a network error).
  { name: '/report: 403 with control characters in X-CCFLUX-Error', plan: () => on('/report', () => raw403(`signature-invalid\x1b[2J\x07\x7f${LONG}`)) },
  // Bytes 0x80-0xff are legal in a header value: they reach the classifier, which must reduce them.
  { name: '/report: 403 with 0x80-0xff bytes and 500 chars in X-CCFLUX-Error', plan: () => on('/report', () => raw403(`signature-invalid\xff\xfe\x9b[2J${LONG}`)) },
  { name: '/report: 403 key-revoked followed by 0x9b', plan: () => on('/report', () => raw403('key-revoked\x9b0m')) },
  { name: '/report: 403 timestamp-stale with a hostile Date', plan: () => on('/report', () => raw403('timestamp-stale', `Date: \x9b31m${LONG}\r\n`)) },
  { name: '/report: 401 with an over-long WWW-Authenticate', plan: () => on('/report', () => ({ kind: 'raw', data: Buffer.from(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer ${LONG}\xff\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'latin1') })) },
  { name: '/token: redirect to another host', plan: () => on('/token', () => ({ kind: 'status', status: 307, headers: { location: `http://127.0.0.2:${catcherPort}/token` } })) },
  { name: '/report: redirect to another host', plan: () => on('/report', () => ({ kind: 'status', status: 308, headers: { location: `http://127.0.0.2:${catcherPort}/report` } })) },
  { name: 'https endpoint: /token redirects to http', tls: true, plan: () => on('/token', () => ({ kind: 'status', status: 302, headers: { location: `http://127.0.0.1:${catcherPort}/token` } })) },
  { name: 'https endpoint: /report redirects to http', tls: true, plan: () => on('/report', () => ({ kind: 'status', status: 301, headers: { location: `http://127.0.0.1:${catcherPort}/report` } })) },
];

describe('hostile or broken receiver answers', () => {
  for (const [n, c] of CASES.entries()) {
    it(
      c.name,
      async () => {
        const proxy: FaultProxy = await startFaultProxy({
          targetPort: receiver.port,
          seed: FAULT_SEED + 60 + n,
          plan: c.plan(),
          ...(c.tls ? { tls: { key: readFileSync(join(TLS_DIR, 'key.pem')), cert: readFileSync(join(TLS_DIR, 'cert.pem')) } } : {}),
        });
        try {
          const device: Device = await makeDevice({
            endpoint: proxy.url,
            token,
            extra: c.tls ? { CCFLUX_ALLOW_HTTP: undefined, CCFLUX_CA_CERT: join(TLS_DIR, 'cert.pem') } : {},
          });
          const s = scenario(FAULT_SEED * 10_000 + n, 1, { turns: 2, resumeProbability: 0 }, mulberry32(FAULT_SEED + n));
          const caughtBefore = caught;
          let hooks = 0;
          let hostileLogs = '';
          let hostileRequests = 0;
          let tokenRequests = 0;
          const t0Case = performance.now();
          let slowest = 0;
          const outputs: string[] = [];
          for (const event of s.events) {
            if ('append' in event) {
              await applyAppend(device, event);
              continue;
            }
            if (!('hook' in event)) continue;
            if (hooks++ === HOSTILE_HOOKS) {
              proxy.setPlan(healthy);
              proxy.dropConnections();
              hostileLogs = `${await readLog(device, 'activity.log')}\n${await readLog(device, 'errors.log')}`;
              hostileRequests = proxy.counts().total ?? 0;
              tokenRequests = proxy.paths()['/token'] ?? 0;
            }
            const worker = startWorker(device, CLI_EVENT[event.hook.event], hookInput(device, event));
            const t0 = performance.now();
            const result = await worker.exited;
            slowest = Math.max(slowest, performance.now() - t0);
            if (result.code !== 0 || result.stdout !== '' || result.stderr !== '') outputs.push(`exit ${result.code ?? result.signal}: ${(result.stdout + result.stderr).slice(0, 300)}`);
          }
          proxy.setPlan(passThrough);
          const t1Case = performance.now();
          await settle(device, s.sessions, { timeoutMillis: 60_000 });
          const settleMillis = performance.now() - t1Case;

          const logs = `${await readLog(device, 'activity.log')}\n${await readLog(device, 'errors.log')}`;
          const state = await allStateText(device);
          const leakedAccess = [...accessTokens].filter((t) => state.includes(t));
          const rawLines = logs.split('\n').filter((line) => CONTROL.test(line) || line.includes('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
          const got = sessionSums(receiver, s.sessions);
          const hint = hostileLogs
            .split('\n')
            .filter((l) => /error|refus|unexpected|redirect|token/i.test(l))
            .slice(-1)[0]
            ?.replace(/^\S+\s+/, '')
            .slice(0, 110);
          reliability(
            `hostile ${c.name}`,
            `${hostileRequests} hostile-phase requests (${tokenRequests} to /token) in ${Math.round(t1Case - t0Case)} ms + settle ${Math.round(settleMillis)} ms; crashes = ${outputs.length}, slowest worker ${Math.round(slowest)} ms, tokens in logs/state = ${leakedAccess.length + (state.includes(token) ? 1 : 0)}, raw log lines = ${rawLines.length}, redirects followed = ${caught - caughtBefore}; ${lossFigure(s.expected, got)}; logged: "${hint ?? ''}"`,
          );

          expect(outputs).toEqual([]);
          expect(slowest).toBeLessThan(WORKER_BOUND_MILLIS);
          expect(state).not.toContain(token);
          expect(leakedAccess).toEqual([]);
          expect(rawLines).toEqual([]);
          expect(caught - caughtBefore).toBe(0);
          expect(got).toEqual(s.expected);
        } finally {
          await proxy.stop();
        }
      },
      CASE_TIMEOUT_MILLIS,
    );
  }
});
