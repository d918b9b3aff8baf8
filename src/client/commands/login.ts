/**
 * `ccflux login`, the logic: prove a refresh token against the receiver with a real exchange,
 * register the device key, and only then replace the stored credentials. Data in, data out: the
 * outside world (network, key file, config file) comes in as `LoginPorts`, so this is tested with
 * plain values and the command file wires the real modules.
 *
 * Order matters: nothing on disk changes until the exchange has succeeded, so a mistyped token
 * never replaces a working config.
 */
import type { ExchangeResult } from '../deliver/auth';
import type { RegisterResult } from '../deliver/drain';
import { isUsableToken, MAX_TOKEN_CHARS } from '../local/credentials';
import { CcfluxError, ERROR_CODES } from '../local/errors';

export interface LoginPorts {
  /** One real `POST /token` (auth.ts `exchangeToken`). */
  exchangeToken(endpoint: string, refreshToken: string): Promise<ExchangeResult>;
  /** Creates the signing key if missing; returns its public half (base64) and fingerprint. */
  ensureSigningKey(): Promise<{ publicKey: string; fingerprint: string }>;
  /** One `POST /register-key` (deliver.ts `registerDeviceKey`). */
  registerKey(endpoint: string, accessToken: string, publicKey: string): Promise<RegisterResult>;
  /** Writes `config.json` (0600, atomic) and primes the token cache with the proven access token. */
  saveCredentials(endpoint: string, refreshToken: string, access: { access_token: string; expires_at: string }): Promise<void>;
  /** Records the registration outcome: `key_registered` written when registered, forgotten otherwise. */
  recordRegistration(publicKey: string, registered: boolean): Promise<void>;
}

export interface LoginInput {
  /** Already validated by the credentials module (https, no userinfo, no query). */
  endpoint: string;
  refreshToken: string;
  configPath: string;
  /** An existing config is being replaced. */
  replacing: boolean;
}

export interface LoginOutcome {
  endpoint: string;
  configPath: string;
  replaced: boolean;
  accessTokenExpiresAt: string;
  key: { fingerprint: string; registered: boolean; revoked: boolean; problem: string | null };
}

const TOKEN_ARGV_HINT =
  'run `ccflux login` and paste the token at the hidden prompt, or pipe it: `ccflux login --token-stdin < token.txt`';

/**
 * Refuses a token given on the command line (a positional argument or `--token`): other local
 * users can read a process's argv, and it lands in shell history. The message never repeats it.
 */
export function refuseTokenInArgv(args: readonly string[], options: Record<string, unknown>): void {
  // Unknown options reach us too (the command lets them through) so that commander never echoes
  // `--tokn=<secret>` in its own error: only the option's name is repeated, never a value.
  const unknown = args.find((arg) => arg.startsWith('-'));
  if (unknown !== undefined) {
    const name = unknown.split('=')[0] ?? '';
    const shown = /^--?[A-Za-z][A-Za-z0-9-]{0,40}$/.test(name) ? `unknown option ${name}` : 'an unknown option';
    throw new CcfluxError(ERROR_CODES.USAGE, `${shown}; nothing was changed`, {
      hint: 'see `ccflux login --help`; the token is never given on the command line (use the prompt or --token-stdin)',
    });
  }
  const viaOption = ['token', 'refreshToken', 'apiToken'].some((key) => options[key] !== undefined);
  if (args.length > 0 || viaOption) {
    throw new CcfluxError(
      ERROR_CODES.TOKEN_IN_ARGV,
      'a refresh token is never accepted on the command line (other users can read it in the process list, and it stays in your shell history); nothing was changed',
      { hint: `${TOKEN_ARGV_HINT} — if you already typed it in a shared shell, ask IT to reissue it` },
    );
  }
}

/** Rejects what cannot be a token (empty, spaces inside, control characters, too long). */
export function checkTokenShape(token: string): string {
  const trimmed = token.trim();
  if (trimmed === '') {
    throw new CcfluxError(ERROR_CODES.USAGE, 'no refresh token was given; nothing was changed', {
      hint: 'paste the refresh token IT gave you at the prompt, or pipe it with --token-stdin',
    });
  }
  if (!isUsableToken(trimmed)) {
    throw new CcfluxError(
      ERROR_CODES.USAGE,
      `that does not look like a refresh token (spaces, control characters or longer than ${MAX_TOKEN_CHARS} characters); nothing was changed`,
      { hint: 'copy the token again exactly as IT sent it: one line, no spaces' },
    );
  }
  return trimmed;
}

/** The error `ccflux login` shows when the exchange did not prove the token. */
export function exchangeFailure(outcome: Exclude<ExchangeResult, { kind: 'ok' }>, endpoint: string): CcfluxError {
  if (outcome.kind === 'revoked') {
    return new CcfluxError(
      ERROR_CODES.TOKEN_REVOKED,
      `the receiver at ${endpoint} refused this refresh token (unknown, revoked or expired); existing settings were kept`,
      { hint: 'check you pasted the whole token; if it is right, ask your IT admin to reissue it' },
    );
  }
  if (outcome.reason === 'unreachable') {
    return new CcfluxError(ERROR_CODES.NETWORK, `could not reach the receiver at ${endpoint} (${outcome.detail}); existing settings were kept`, {
      hint: 'check the endpoint URL and your network (VPN; proxy: HTTPS_PROXY; internal CA: CCFLUX_CA_CERT=<pem file>)',
    });
  }
  const status = outcome.status ?? 0;
  const hint =
    status === 404 || (status >= 300 && status < 400)
      ? 'this URL is not a ccflux receiver: use its base URL (https://host) or its /report URL, as IT gave it'
      : status === 429
        ? 'the receiver is rate limiting this token: wait a minute and try again'
        : outcome.reason === 'server-busy'
          ? 'the receiver is having trouble: try again in a few minutes'
          : 'check the endpoint URL; if it is right, send IT the output of `ccflux doctor`';
  return new CcfluxError(
    outcome.reason === 'server-busy' ? ERROR_CODES.NETWORK : ERROR_CODES.TOKEN_EXCHANGE,
    `the token exchange with ${endpoint} failed (${outcome.detail}); existing settings were kept`,
    { hint },
  );
}

export async function performLogin(input: LoginInput, ports: LoginPorts): Promise<LoginOutcome> {
  const refreshToken = checkTokenShape(input.refreshToken);
  const exchanged = await ports.exchangeToken(input.endpoint, refreshToken);
  if (exchanged.kind !== 'ok') throw exchangeFailure(exchanged, input.endpoint);

  const key = await ports.ensureSigningKey();
  let registration: RegisterResult;
  try {
    registration = await ports.registerKey(input.endpoint, exchanged.cache.access_token, key.publicKey);
  } catch (err) {
    registration = { kind: 'failed', reason: 'registration-failed', detail: err instanceof Error ? err.message : String(err) };
  }

  // The token is proven: only now do the new credentials replace the old ones.
  await ports.saveCredentials(input.endpoint, refreshToken, exchanged.cache);
  const registered = registration.kind === 'registered';
  await ports.recordRegistration(key.publicKey, registered);

  return {
    endpoint: input.endpoint,
    configPath: input.configPath,
    replaced: input.replacing,
    accessTokenExpiresAt: exchanged.cache.expires_at,
    key: {
      fingerprint: key.fingerprint,
      registered,
      revoked: registration.kind === 'revoked',
      problem: registrationProblem(registration),
    },
  };
}

function registrationProblem(result: RegisterResult): string | null {
  switch (result.kind) {
    case 'registered':
      return null;
    case 'revoked':
      return 'the receiver has revoked this device key';
    case 'refresh-token':
      return 'the receiver refused the access token it had just issued (401)';
    case 'clock-skew':
    case 'failed':
      return result.detail;
  }
}

/** What `ccflux login` prints: one line, plus one more when the key could not be registered. */
export function loginSummary(outcome: LoginOutcome, shownConfigPath: string): string {
  const verb = outcome.replaced ? 'replaced the credentials in' : 'saved the credentials to';
  const key = outcome.key.registered
    ? `device key ${outcome.key.fingerprint} registered`
    : `device key ${outcome.key.fingerprint} NOT registered`;
  const first = `Logged in to ${outcome.endpoint}: token verified, ${key}, ${verb} ${shownConfigPath}.`;
  if (outcome.key.registered) return first;
  const next = outcome.key.revoked
    ? 'The receiver has revoked this device key: ask IT, then run `ccflux logout --forget-key` and `ccflux login` to start with a new key.'
    : `Key registration failed (${outcome.key.problem ?? 'unknown reason'}); it is retried on every turn — check with \`ccflux doctor\`.`;
  return `${first}\n${next}`;
}
