/**
 * What an answer from the receiver means to the device (SPEC "What each answer means to the
 * device"), as one pure function of the transport result. The deliverer acts on the returned
 * `Action`; it never looks at a status code itself.
 *
 * Every server-supplied value that can reach a log (`X-CCFLUX-Error`, a body excerpt, the `Date`
 * header) is reduced by `sanitizeServerValue` here, so callers can log `detail` as it is.
 */
import { HEADERS, sanitizeServerValue } from '../../protocol/wire';
import type { TransportResult } from './transport';

/** Which endpoint answered: the same status means different things at each. */
export type AnswerContext = 'report' | 'register' | 'token';

/** Why delivery stops for now (everything stays queued). */
export type StopReason = 'unreachable' | 'server-busy' | 'unexpected-answer';

export type Action =
  /** 200 (report, token, register), 409 (register: already registered). */
  | { kind: 'delivered' }
  /** 400/413 to a report: it can never be accepted; move it to rejected_reports.jsonl. */
  | { kind: 'reject'; detail: string }
  /** 401 from /report or /register-key: discard the access token, exchange once more, retry. */
  | { kind: 'refresh-token' }
  /** 401 from /token: the refresh token is unknown, expired or revoked. */
  | { kind: 'token-revoked' }
  /** 403 key-revoked: write key_revoked, clear the queue, go silent. */
  | { kind: 'revoked' }
  /** 403 key-not-registered: forget key_registered, keep the report, register again. */
  | { kind: 'forget-registration' }
  /** 403 timestamp-stale: keep the report; `skewMillis` > 0 means the device clock is ahead. */
  | { kind: 'clock-skew'; skewMillis: number | null; detail: string }
  /** Other 403 (signature-invalid, …): log, keep the report for the next attempt. */
  | { kind: 'keep'; code: string; detail: string }
  /**
   * 429, 5xx, timeout, connection error, 3xx, anything unexpected: stop, keep everything.
   * `retryAfterMillis`: the server said when to come back (429/503 `Retry-After`, capped).
   */
  | { kind: 'stop'; reason: StopReason; detail: string; retryAfterMillis?: number };

const BODY_EXCERPT_CHARS = 64;

/**
 * @param now the device clock, used only to compute the skew for `timestamp-stale` from the
 *   server's `Date` header.
 */
export function classify(result: TransportResult, context: AnswerContext, now?: Date): Action {
  if (result.kind === 'network-error') {
    // OpenSSL's own words for "an http server answered a TLS hello" mean nothing to a user.
    if (/wrong[ _]version[ _]number|ERR_SSL_WRONG_VERSION|packet length too long|http request/i.test(`${result.code} ${result.message}`)) {
      return {
        kind: 'stop',
        reason: 'unreachable',
        detail: 'TLS handshake failed: the endpoint answers plain http, not https (check the scheme and port in the endpoint URL with IT)',
      };
    }
    return {
      kind: 'stop',
      reason: 'unreachable',
      detail: `network error ${sanitizeServerValue(result.code)}: ${sanitizeServerValue(result.message, 200)}`,
    };
  }
  const { status } = result;

  if (status === 200) return { kind: 'delivered' };
  if (status === 409 && context === 'register') return { kind: 'delivered' };
  if (status === 429 || status === 503) {
    const retryAfterMillis = parseRetryAfter(result.headers['retry-after'], now);
    const detail = status === 429 ? 'HTTP 429 (rate limited)' : 'HTTP 503';
    return retryAfterMillis === null
      ? { kind: 'stop', reason: 'server-busy', detail }
      : { kind: 'stop', reason: 'server-busy', detail, retryAfterMillis };
  }
  if (status >= 500 && status <= 599) return { kind: 'stop', reason: 'server-busy', detail: `HTTP ${status}` };

  if (status === 401) {
    return context === 'token' ? { kind: 'token-revoked' } : { kind: 'refresh-token' };
  }

  if ((status === 400 || status === 413) && context === 'report') {
    const excerpt = bodyExcerpt(result.body);
    return { kind: 'reject', detail: excerpt ? `HTTP ${status}: ${excerpt}` : `HTTP ${status}` };
  }

  if (status === 403 && context !== 'token') {
    const code = sanitizeServerValue(result.headers[HEADERS.error] ?? '').trim();
    if (code === 'key-revoked') return { kind: 'revoked' };
    if (code === 'key-not-registered' && context === 'report') return { kind: 'forget-registration' };
    if (code === 'timestamp-stale') {
      const skewMillis = skewFromDateHeader(result.headers.date, now);
      return { kind: 'clock-skew', skewMillis, detail: describeSkew(skewMillis) };
    }
    return { kind: 'keep', code: code || 'forbidden', detail: `HTTP 403 ${code || '(no X-CCFLUX-Error)'}` };
  }

  const location = result.headers.location;
  const detail =
    status >= 300 && status < 400 && location
      ? `HTTP ${status} redirect to ${sanitizeServerValue(location)} (redirects are not followed)`
      : `unexpected HTTP ${status}`;
  return { kind: 'stop', reason: 'unexpected-answer', detail };
}

/** A `Retry-After` longer than this is not waited for in-process: the next hook tries again. */
export const MAX_RETRY_AFTER_MILLIS = 120_000;

/** `Retry-After` as ms from now (delta-seconds or an HTTP date), capped; null when absent or unusable. */
export function parseRetryAfter(value: string | undefined, now: Date | undefined): number | null {
  if (!value || value.length > 64) return null;
  let millis: number;
  if (/^\d{1,9}$/.test(value.trim())) millis = Number(value.trim()) * 1000;
  else {
    const at = Date.parse(value);
    if (!Number.isFinite(at) || !now) return null;
    millis = at - now.getTime();
  }
  if (!Number.isFinite(millis) || millis > MAX_RETRY_AFTER_MILLIS) return null;
  return Math.max(0, millis);
}

/** Device clock minus server clock in ms, from the server's `Date` header; null when unknown. */
export function skewFromDateHeader(dateHeader: string | undefined, now: Date | undefined): number | null {
  if (!dateHeader || !now || dateHeader.length > 64) return null;
  const serverMillis = Date.parse(dateHeader);
  if (!Number.isFinite(serverMillis)) return null;
  return now.getTime() - serverMillis;
}

export function describeSkew(skewMillis: number | null): string {
  if (skewMillis === null) return 'the receiver says the signed timestamp is stale (clock skew; the receiver sent no usable Date header)';
  const direction = skewMillis >= 0 ? 'ahead of' : 'behind';
  return `the device clock is ${formatDuration(Math.abs(skewMillis))} ${direction} the receiver's (signed timestamps must be within 5 minutes; fix the system clock)`;
}

function formatDuration(millis: number): string {
  const totalSeconds = Math.round(millis / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m${String(seconds).padStart(2, '0')}s`;
  return `${seconds}s`;
}

function bodyExcerpt(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat === '' ? '' : sanitizeServerValue(flat, BODY_EXCERPT_CHARS);
}
