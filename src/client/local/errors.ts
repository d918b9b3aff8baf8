/**
 * One error base class with stable string codes (undici's `lib/core/errors.js` pattern).
 * Callers and tests match on `code`, never on message text. Messages never contain a secret.
 */
export const ERROR_CODES = {
  CONFIG_MISSING: 'CCFLUX_ERR_CONFIG_MISSING',
  CONFIG_INVALID: 'CCFLUX_ERR_CONFIG_INVALID',
  INSECURE_ENDPOINT: 'CCFLUX_ERR_INSECURE_ENDPOINT',
  TOKEN_REVOKED: 'CCFLUX_ERR_TOKEN_REVOKED',
  TOKEN_EXCHANGE: 'CCFLUX_ERR_TOKEN_EXCHANGE',
  KEY_REVOKED: 'CCFLUX_ERR_KEY_REVOKED',
  KEY_REGISTRATION: 'CCFLUX_ERR_KEY_REGISTRATION',
  NETWORK: 'CCFLUX_ERR_NETWORK',
  STATE_CORRUPT: 'CCFLUX_ERR_STATE_CORRUPT',
  LOCKED: 'CCFLUX_ERR_LOCKED',
  USAGE: 'CCFLUX_ERR_USAGE',
  TOKEN_IN_ARGV: 'CCFLUX_ERR_TOKEN_IN_ARGV',
  NOT_A_TERMINAL: 'CCFLUX_ERR_NOT_A_TERMINAL',
  IO: 'CCFLUX_ERR_IO',
  CHECKSUM: 'CCFLUX_ERR_CHECKSUM',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class CcfluxError extends Error {
  readonly code: ErrorCode;
  /** One line telling the user what to do about it. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CcfluxError';
    this.code = code;
    this.hint = options.hint;
  }
}

export function isCcfluxError(err: unknown, code?: ErrorCode): err is CcfluxError {
  return err instanceof CcfluxError && (code === undefined || err.code === code);
}

/** A short description of any thrown value that is safe to log (no stack, no secrets we put there). */
export function describeError(err: unknown): string {
  if (err instanceof CcfluxError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
