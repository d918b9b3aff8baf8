/**
 * Issue 16 row 6: slow clients are cut at the documented 10 s (headers) and 30 s (whole request),
 * within a second, and connections are capped overall and per address. The file takes about 40 s;
 * the bounds are the documented contract (Node's default check interval let them run 30 s over).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MILLIS, REQUEST_TIMEOUT_MILLIS } from '../../src/server';
import { startInProcess, type TestReceiver } from '../support';
import { get, type HeldConnection, hold, rawStatus } from './raw';

const TOLERANCE_MILLIS = 1_000;
let t: TestReceiver | undefined;
const held: HeldConnection[] = [];
afterEach(async () => {
  for (const c of held.splice(0)) c.socket.destroy();
  await t?.close();
  t = undefined;
});

describe('slow clients', () => {
  it('cuts slow headers at 10 s (±1 s)', async () => {
    expect(HEADERS_TIMEOUT_MILLIS).toBe(10_000);
    expect(REQUEST_TIMEOUT_MILLIS).toBe(30_000);
    t = await startInProcess();
    const headers = await hold(t.port, 'GET /health HTTP/1.1\r\nHost: x\r\n');
    held.push(headers);
    // Keep both alive with a byte every few seconds: only the timeouts may end them.
    const drip = setInterval(() => {
      if (!headers.socket.destroyed) headers.socket.write('X-Slow: 1\r\n');
    }, 2_000);
    try {
      const headersClosed = await headers.closedAfter;
      expect(headersClosed).toBeLessThanOrEqual(HEADERS_TIMEOUT_MILLIS + TOLERANCE_MILLIS);
      expect(headersClosed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MILLIS - TOLERANCE_MILLIS);
    } finally {
      clearInterval(drip);
    }
  }, 45_000);

  it('cuts a slow body on an authenticated request at 30 s (±1 s)', async () => {
    t = await startInProcess();
    const { refreshToken } = await t.store.createUser('slow@example.org');
    const exchange = await fetch(`${t.url}/token`, { method: 'POST', headers: { authorization: `Bearer ${refreshToken}` } });
    const { access_token } = (await exchange.json()) as { access_token: string };
    const body = await hold(
      t.port,
      `POST /report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${access_token}\r\nContent-Length: 1000\r\n\r\n{`,
    );
    held.push(body);
    const drip = setInterval(() => {
      if (!body.socket.destroyed) body.socket.write(' ');
    }, 2_000);
    try {
      const closed = await body.closedAfter;
      expect(closed).toBeLessThanOrEqual(REQUEST_TIMEOUT_MILLIS + TOLERANCE_MILLIS);
      expect(closed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MILLIS - TOLERANCE_MILLIS);
    } finally {
      clearInterval(drip);
    }
  }, 45_000);
});

describe('connection caps', () => {
  it('answers 503 past MAX_CONNECTIONS_PER_ADDRESS and serves again once connections close', async () => {
    t = await startInProcess({ env: { MAX_CONNECTIONS_PER_ADDRESS: '4' } });
    for (let i = 0; i < 4; i++) held.push(await hold(t.port, 'GET /health HTTP/1.1\r\n'));
    expect(await rawStatus(t.port, get('/health'))).toBe('503');
    for (const c of held.splice(0)) c.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await rawStatus(t.port, get('/health'))).toBe('200');
  });

  it('closes connections past MAX_CONNECTIONS without serving them', async () => {
    t = await startInProcess({ env: { MAX_CONNECTIONS: '3' } });
    for (let i = 0; i < 3; i++) held.push(await hold(t.port, 'GET /health HTTP/1.1\r\n'));
    expect(await rawStatus(t.port, get('/health'))).toBe('');
    expect(t.receiver.server.maxConnections).toBe(3);
  });

  it('has documented defaults', async () => {
    t = await startInProcess();
    expect(t.config.maxConnections).toBe(1024);
    expect(t.config.maxConnectionsPerAddress).toBe(64);
  });
});
