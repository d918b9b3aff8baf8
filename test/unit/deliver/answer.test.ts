import { describe, expect, it } from 'vitest';
import { type Action, type AnswerContext, classify, describeSkew, parseRetryAfter, skewFromDateHeader } from '../../../src/client/deliver/answer';
import type { TransportResult } from '../../../src/client/deliver/transport';

const NOW = new Date('2026-05-11T03:00:00Z');

function response(status: number, headers: Record<string, string> = {}, body = ''): TransportResult {
  return { kind: 'response', status, headers, body, truncated: false };
}

function forbidden(code: string, extra: Record<string, string> = {}): TransportResult {
  return response(403, { 'x-ccflux-error': code, ...extra });
}

const kind = (result: TransportResult, context: AnswerContext): Action['kind'] => classify(result, context, NOW).kind;

describe('classify: /report (the SPEC answer table)', () => {
  it.each([
    [200, 'delivered'],
    [400, 'reject'],
    [413, 'reject'],
    [401, 'refresh-token'],
    [429, 'stop'],
    [500, 'stop'],
    [502, 'stop'],
    [503, 'stop'],
    [504, 'stop'],
    [599, 'stop'],
    [301, 'stop'],
    [302, 'stop'],
    [307, 'stop'],
    [308, 'stop'],
    [201, 'stop'],
    [204, 'stop'],
    [404, 'stop'],
    [405, 'stop'],
    [409, 'stop'],
    [418, 'stop'],
    [100, 'stop'],
  ] as const)('%i → %s', (status, expected) => {
    expect(kind(response(status), 'report')).toBe(expected);
  });

  it('403 key-revoked → revoked', () => {
    expect(kind(forbidden('key-revoked'), 'report')).toBe('revoked');
  });
  it('403 key-not-registered → forget-registration', () => {
    expect(kind(forbidden('key-not-registered'), 'report')).toBe('forget-registration');
  });
  it.each(['signature-invalid', 'signature-required', 'timestamp-missing', 'something-new', ''])('403 %j → keep', (code) => {
    const action = classify(forbidden(code), 'report', NOW);
    expect(action.kind).toBe('keep');
    if (action.kind === 'keep') expect(action.code).toBe(code || 'forbidden');
  });
  it('403 without the header → keep', () => {
    expect(kind(response(403), 'report')).toBe('keep');
  });

  it('429 and 5xx are server-busy, network errors unreachable, 3xx unexpected', () => {
    expect(classify(response(429), 'report', NOW)).toMatchObject({ kind: 'stop', reason: 'server-busy' });
    expect(classify(response(503), 'report', NOW)).toMatchObject({ kind: 'stop', reason: 'server-busy' });
    expect(classify({ kind: 'network-error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'report', NOW)).toMatchObject({
      kind: 'stop',
      reason: 'unreachable',
    });
    expect(classify({ kind: 'network-error', code: 'timeout', message: 'x' }, 'report', NOW)).toMatchObject({
      kind: 'stop',
      reason: 'unreachable',
    });
    expect(classify(response(302, { location: 'https://elsewhere.example/report' }), 'report', NOW)).toMatchObject({
      kind: 'stop',
      reason: 'unexpected-answer',
    });
  });

  it('400 detail carries a sanitised excerpt of the body', () => {
    const action = classify(response(400, {}, `{"error":"session_id must be 1-64 characters\u0007${'x'.repeat(200)}"}`), 'report', NOW);
    expect(action.kind).toBe('reject');
    if (action.kind !== 'reject') return;
    expect(action.detail.startsWith('HTTP 400: {"error":"session_id must be')).toBe(true);
    expect(action.detail).not.toContain('\u0007');
    expect(action.detail.length).toBeLessThanOrEqual('HTTP 400: '.length + 64);
  });
});

describe('classify: /register-key', () => {
  it.each([
    [200, 'delivered'],
    [409, 'delivered'],
    [401, 'refresh-token'],
    [400, 'stop'],
    [413, 'stop'],
    [429, 'stop'],
    [500, 'stop'],
    [302, 'stop'],
    [404, 'stop'],
  ] as const)('%i → %s', (status, expected) => {
    expect(kind(response(status), 'register')).toBe(expected);
  });
  it('403 key-revoked → revoked; other 403 → keep (registration failed)', () => {
    expect(kind(forbidden('key-revoked'), 'register')).toBe('revoked');
    expect(kind(forbidden('key-not-registered'), 'register')).toBe('keep');
    expect(kind(forbidden('timestamp-stale'), 'register')).toBe('clock-skew');
  });
});

describe('classify: /token', () => {
  it.each([
    [200, 'delivered'],
    [401, 'token-revoked'],
    [400, 'stop'],
    [403, 'stop'],
    [409, 'stop'],
    [413, 'stop'],
    [429, 'stop'],
    [500, 'stop'],
    [503, 'stop'],
    [301, 'stop'],
  ] as const)('%i → %s', (status, expected) => {
    expect(kind(response(status), 'token')).toBe(expected);
  });
  it('a network error at /token is unreachable', () => {
    expect(classify({ kind: 'network-error', code: 'ENOTFOUND', message: 'getaddrinfo' }, 'token', NOW)).toMatchObject({
      kind: 'stop',
      reason: 'unreachable',
    });
  });
});

describe('clock skew (403 timestamp-stale)', () => {
  it('computes the skew from the server Date header: device ahead', () => {
    const action = classify(forbidden('timestamp-stale', { date: 'Mon, 11 May 2026 02:50:00 GMT' }), 'report', NOW);
    expect(action).toMatchObject({ kind: 'clock-skew', skewMillis: 10 * 60 * 1000 });
    if (action.kind === 'clock-skew') expect(action.detail).toContain('10m00s ahead of');
  });
  it('device behind', () => {
    const action = classify(forbidden('timestamp-stale', { date: 'Mon, 11 May 2026 05:30:00 GMT' }), 'report', NOW);
    expect(action).toMatchObject({ kind: 'clock-skew', skewMillis: -(2.5 * 3600 * 1000) });
    if (action.kind === 'clock-skew') expect(action.detail).toContain('2h30m behind');
  });
  it('no or garbage Date header → skew unknown, still clock-skew', () => {
    expect(classify(forbidden('timestamp-stale'), 'report', NOW)).toMatchObject({ kind: 'clock-skew', skewMillis: null });
    expect(classify(forbidden('timestamp-stale', { date: 'yesterday-ish' }), 'report', NOW)).toMatchObject({
      kind: 'clock-skew',
      skewMillis: null,
    });
    expect(classify(forbidden('timestamp-stale', { date: 'Mon, 11 May 2026 02:50:00 GMT' }), 'report')).toMatchObject({
      kind: 'clock-skew',
      skewMillis: null,
    });
  });
  it('skew helpers', () => {
    expect(skewFromDateHeader('Mon, 11 May 2026 03:00:05 GMT', NOW)).toBe(-5000);
    expect(skewFromDateHeader('x'.repeat(100), NOW)).toBeNull();
    expect(describeSkew(42_000)).toContain('42s ahead of');
    expect(describeSkew(null)).toContain('no usable Date header');
  });
});

describe('server values are sanitised before they can reach a log', () => {
  it('X-CCFLUX-Error with control characters and excess length', () => {
    const nasty = `signature-invalid\r\nInjected: yes\u001b[31m${'A'.repeat(200)}`;
    const action = classify(forbidden(nasty), 'report', NOW);
    expect(action.kind).toBe('keep');
    if (action.kind !== 'keep') return;
    expect(action.code).toMatch(/^[\x20-\x7e]*$/);
    expect(action.code.length).toBeLessThanOrEqual(64);
    expect(action.detail).not.toMatch(/[\r\n\u001b]/);
  });
  it('a control character cannot forge key-revoked', () => {
    expect(kind(forbidden('key-revoked\u0000'), 'report')).toBe('keep');
  });
  it('a redirect location is sanitised', () => {
    const action = classify(response(302, { location: `https://x.example/\n${'p'.repeat(300)}` }), 'report', NOW);
    expect(action.kind).toBe('stop');
    if (action.kind === 'stop') {
      expect(action.detail).not.toContain('\n');
      expect(action.detail.length).toBeLessThan(160);
    }
  });
  it('network error messages are bounded and printable', () => {
    const action = classify({ kind: 'network-error', code: 'E\nX', message: `boom\u0000${'m'.repeat(500)}` }, 'report', NOW);
    if (action.kind !== 'stop') throw new Error('expected stop');
    expect(action.detail).toMatch(/^[\x20-\x7e]*$/);
    expect(action.detail.length).toBeLessThan(300);
  });
});

describe('Retry-After', () => {
  it('429/503 carry the wait the server asked for, in ms, capped', () => {
    const busy = (status: number, retryAfter: string) =>
      classify({ kind: 'response', status, headers: { 'retry-after': retryAfter }, body: '', truncated: false }, 'report', NOW);
    expect(busy(429, '12')).toMatchObject({ kind: 'stop', reason: 'server-busy', retryAfterMillis: 12_000 });
    expect(busy(503, '0')).toMatchObject({ kind: 'stop', retryAfterMillis: 0 });
    expect(busy(429, '100000')).not.toHaveProperty('retryAfterMillis');
    expect(busy(429, 'soon\u0007')).not.toHaveProperty('retryAfterMillis');
    expect(parseRetryAfter(new Date(NOW.getTime() + 30_000).toUTCString(), NOW)).toBe(30_000);
    expect(parseRetryAfter(undefined, NOW)).toBeNull();
  });
});
