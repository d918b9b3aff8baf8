/**
 * One error class for the receiver with stable string codes. Callers (CLI, dashboard, tests) match
 * on `code`, never on message text. Messages never contain a secret.
 */
export const RECEIVER_ERROR_CODES = [
  /** A user with that email exists and is not revoked. */
  'exists',
  /** No user or key matched. */
  'not-found',
  /** Several records match and the caller must say which (a key registered by several users). */
  'ambiguous',
  /** The operation needs an active user, and this one is revoked. */
  'revoked',
  /** An argument is malformed (email, division, days). */
  'invalid',
  /** The configuration (environment) is unusable. */
  'config',
  /** The database file cannot be opened or is newer than this receiver. */
  'database',
] as const;
export type ReceiverErrorCode = (typeof RECEIVER_ERROR_CODES)[number];

export class ReceiverError extends Error {
  readonly code: ReceiverErrorCode;

  constructor(code: ReceiverErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReceiverError';
    this.code = code;
  }
}

export function isReceiverError(err: unknown, code?: ReceiverErrorCode): err is ReceiverError {
  return err instanceof ReceiverError && (code === undefined || err.code === code);
}
