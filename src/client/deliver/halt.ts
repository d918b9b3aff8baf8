/**
 * Why a drain stopped, and the exception that stops it. Pure: no I/O.
 */
export type StoppedBecause =
  | null
  /** Nothing configured (one activity line says how to configure). */
  | 'no-credentials'
  /** Configured but unusable (corrupt config.json, http:// endpoint, …). */
  | 'config-invalid'
  /** The device key is revoked (marker present, or the receiver just said so). */
  | 'revoked'
  /** `/token` answered 401: the refresh token is expired or revoked. */
  | 'token-revoked'
  | 'unreachable'
  /** 429 or 5xx. */
  | 'server-busy'
  /** 3xx, 404, a 200 without a token, … */
  | 'unexpected-answer'
  | 'clock-skew'
  | 'deadline'
  | 'registration-failed'
  /** A 401 again right after a fresh exchange. */
  | 'unauthorized'
  /** 403 signature-invalid or another 403 code: the report is kept. */
  | 'forbidden'
  /** The state lock could not be taken in time. */
  | 'locked'
  /** The endpoint failed lately; its backoff interval has not passed (hook runs only). */
  | 'backoff'
  /** Anything unexpected (I/O); logged. */
  | 'error';

export type LogLevel = 'silent' | 'activity' | 'error';

/** Ends a drain early. `failure` counts in consecutiveFailures and becomes lastError. */
export class Halt {
  constructor(
    readonly because: Exclude<StoppedBecause, null>,
    readonly message: string,
    readonly level: LogLevel,
    readonly failure: boolean,
  ) {}
}

/** The halt for a transport-level or unexpected failure of one request. */
export function haltFor(
  reason: 'unreachable' | 'server-busy' | 'unexpected-answer' | 'registration-failed',
  message: string,
  unexpected: Exclude<StoppedBecause, null> = 'unexpected-answer',
): Halt {
  if (reason === 'unreachable') return new Halt('unreachable', `receiver unreachable — ${message}`, 'activity', true);
  if (reason === 'server-busy') return new Halt('server-busy', `receiver busy — ${message}`, 'activity', true);
  return new Halt(reason === 'registration-failed' ? 'registration-failed' : unexpected, message, 'error', true);
}
