/**
 * Receiver configuration from the environment (SPEC §3). Pure: takes an env record, returns either
 * a complete config or every problem found, so `serve` can report them all at once.
 */
import { isIP } from 'node:net';
import { parseTrustProxy } from './client-address';
import { isPostgresUrl, redactUrl } from './db/url';

export interface ReceiverConfig {
  databasePath: string;
  /** DATABASE_URL: `postgres://…` selects PostgreSQL instead of the SQLite file. Its password is never printed. */
  databaseUrl: string | undefined;
  /** DATABASE_POOL_MAX: connections per instance to PostgreSQL. */
  databasePoolMax: number;
  listenHost: string;
  listenPort: number;
  accessTokenExpirySecs: number;
  refreshTokenRollingDays: number;
  rateLimitPerMinute: number;
  bodyLimitKb: number;
  /** `bodyLimitKb * 1024`, the byte limit the server enforces. */
  bodyLimitBytes: number;
  requireSignatures: boolean;
  /** `/register-key` must carry a proof of possession (the request signed by the key). */
  requireKeyProof: boolean;
  /** Enables `/admin/` when set. Never printed. */
  adminToken: string | undefined;
  cookieSecure: boolean;
  /** PRICES_FILE: JSON price table overriding the shipped one by model id (docs/admin.md). */
  pricesFile: string | undefined;
  /** SEAT_PRICE_USD: what a seat costs a month, shown next to the API-equivalent value. */
  seatPriceUsd: number | null;
  /** DISPLAY_TIME_ZONE: IANA zone the dashboard shows times in (default UTC; `?tz=` overrides). */
  displayTimeZone: string;
  /** LOG_LEVEL: pino level of the JSON request/event log on stderr (default info; `silent` for none). */
  logLevel: LogLevel;
  /** METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <it>`. Never printed. */
  metricsToken: string | undefined;
  /** METRICS_PER_USER: also export usage series per user (one series per user × model). */
  metricsPerUser: boolean;
  /** ALERT_WEBHOOK_URL: budget alerts are POSTed here (Slack-compatible JSON). */
  alertWebhookUrl: string | undefined;
  /** PUBLIC_URL: the endpoint users' devices are configured with, printed by provisioning. */
  publicUrl: string | undefined;
  /** Open connections accepted at once; more are closed by Node as they arrive. */
  maxConnections: number;
  /** Open connections accepted from one remote address; more get 503 and are closed. */
  maxConnectionsPerAddress: number;
  /** Proxies whose `X-Forwarded-For` names the client (limiters count that address); empty: none. */
  trustProxy: string[];
  /** UNAUTH_RATE_LIMIT_PER_MINUTE: bad or missing tokens answered 401 per client address before 429. */
  unauthRateLimitPerMinute: number;
  /** RETENTION_DAYS: raw usage rows older than this are purged (rollups stay); null: keep everything. */
  retentionDays: number | null;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type ConfigResult = { ok: true; config: ReceiverConfig } | { ok: false; errors: string[] };

export const CONFIG_DEFAULTS = {
  DATABASE_PATH: 'ccflux.db',
  LISTEN_ADDR: '127.0.0.1:8080',
  ACCESS_TOKEN_EXPIRY_SECS: 28_800,
  REFRESH_TOKEN_ROLLING_DAYS: 90,
  RATE_LIMIT_PER_MINUTE: 30,
  BODY_LIMIT_KB: 64,
  DATABASE_POOL_MAX: 10,
  MAX_CONNECTIONS: 1024,
  MAX_CONNECTIONS_PER_ADDRESS: 64,
  UNAUTH_RATE_LIMIT_PER_MINUTE: 60,
} as const;

/** Bounds that keep a typo from producing a dangerous or useless server. */
const BOUNDS = {
  accessTokenExpirySecs: { min: 1, max: 30 * 24 * 3600 },
  refreshTokenRollingDays: { min: 1, max: 3650 },
  rateLimitPerMinute: { min: 1, max: 1_000_000 },
  bodyLimitKb: { min: 1, max: 10_240 },
  databasePoolMax: { min: 1, max: 1000 },
  maxConnections: { min: 1, max: 1_000_000 },
  maxConnectionsPerAddress: { min: 1, max: 1_000_000 },
  unauthRateLimitPerMinute: { min: 1, max: 1_000_000 },
} as const;

/** A shorter ADMIN_TOKEN is refused: it guards every user's usage data. */
export const ADMIN_TOKEN_MIN_CHARS = 16;

const TRUE_VALUES = ['1', 'true', 'yes', 'on'];
const FALSE_VALUES = ['', '0', 'false', 'no', 'off'];

type Env = Record<string, string | undefined>;

/** Shows an operator's value in an error message without letting control bytes through. */
function show(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 64 ? `${clean.slice(0, 64)}...` : clean);
}

function parseInteger(env: Env, name: keyof typeof CONFIG_DEFAULTS, min: number, max: number, errors: string[]): number {
  const raw = env[name];
  const fallback = CONFIG_DEFAULTS[name] as number;
  if (raw === undefined || raw.trim() === '') return fallback;
  const text = raw.trim();
  if (!/^\d+$/.test(text)) {
    errors.push(`${name} must be a whole number between ${min} and ${max} (got ${show(raw)})`);
    return fallback;
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    errors.push(`${name} must be between ${min} and ${max} (got ${show(raw)})`);
    return fallback;
  }
  return value;
}

function parseBoolean(env: Env, name: string, errors: string[]): boolean {
  const raw = env[name];
  if (raw === undefined) return false;
  const text = raw.trim().toLowerCase();
  if (TRUE_VALUES.includes(text)) return true;
  if (FALSE_VALUES.includes(text)) return false;
  errors.push(`${name} must be 1/true or 0/false (got ${show(raw)})`);
  return false;
}

/**
 * `host:port`, `[ipv6]:port`. The host is an IP address or a hostname; the port 0-65535
 * (0 picks a free port, for tests).
 */
export function parseListenAddr(value: string): { host: string; port: number } | null {
  const text = value.trim();
  const match = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const host = match[1]!;
  const port = Number(match[2]);
  if (port > 65_535) return null;
  const bracketed = text.startsWith('[');
  if (bracketed && isIP(host) !== 6) return null;
  if (!bracketed && isIP(host) === 0) {
    // A hostname: dot-separated labels, no leading or trailing hyphen, not all digits.
    const labels = host.split('.');
    const labelOk = (l: string) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l);
    if (host.length > 253 || !labels.every(labelOk) || /^[\d.]+$/.test(host)) return null;
  }
  return { host, port };
}

function parseConnectionLimits(
  env: Env,
  errors: string[],
): { maxConnections: number; maxConnectionsPerAddress: number; trustProxy: string[]; unauthRateLimitPerMinute: number } {
  const { maxConnections: all, maxConnectionsPerAddress: one, unauthRateLimitPerMinute: unauth } = BOUNDS;
  const trustProxy = parseTrustProxy(env.TRUST_PROXY);
  if (trustProxy === null) {
    errors.push(`TRUST_PROXY must be the proxy's IP address (or several, comma-separated), e.g. 127.0.0.1 (got ${show(env.TRUST_PROXY ?? '')})`);
  }
  return {
    maxConnections: parseInteger(env, 'MAX_CONNECTIONS', all.min, all.max, errors),
    maxConnectionsPerAddress: parseInteger(env, 'MAX_CONNECTIONS_PER_ADDRESS', one.min, one.max, errors),
    unauthRateLimitPerMinute: parseInteger(env, 'UNAUTH_RATE_LIMIT_PER_MINUTE', unauth.min, unauth.max, errors),
    trustProxy: trustProxy ?? [],
  };
}

/** Fewer days would purge raw rows devices may still be resending (a laptop offline for weeks). */
export const MIN_RETENTION_DAYS = 30;
const MAX_RETENTION_DAYS = 36_500;

/** RETENTION_DAYS: unset or empty keeps every raw row (the default). */
function parseRetention(env: Env, errors: string[]): number | null {
  const raw = env.RETENTION_DAYS;
  if (raw === undefined || raw.trim() === '') return null;
  const days = /^\d{1,6}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (Number.isSafeInteger(days) && days >= MIN_RETENTION_DAYS && days <= MAX_RETENTION_DAYS) return days;
  errors.push(
    `RETENTION_DAYS must be a whole number of days from ${MIN_RETENTION_DAYS} to ${MAX_RETENTION_DAYS} (got ${show(raw)}); unset it to keep every raw row`,
  );
  return null;
}

/** One piece: every environment variable in one flat list, in the order docs/receiver.md gives them. */
export function parseConfig(env: Env): ConfigResult {
  const errors: string[] = [];

  const rawPath = env.DATABASE_PATH;
  let databasePath: string = CONFIG_DEFAULTS.DATABASE_PATH;
  if (rawPath !== undefined && rawPath.trim() !== '') {
    if (rawPath.includes('\0')) errors.push('DATABASE_PATH must not contain a NUL byte');
    else databasePath = rawPath;
  }

  let databaseUrl: string | undefined;
  const rawUrl = env.DATABASE_URL;
  if (rawUrl !== undefined && rawUrl.trim() !== '') {
    // The value is not echoed: it may carry a password.
    if (!isPostgresUrl(rawUrl.trim())) errors.push('DATABASE_URL must start with postgres:// or postgresql:// (unset it to use DATABASE_PATH)');
    else databaseUrl = rawUrl.trim();
  }
  const databasePoolMax = parseInteger(env, 'DATABASE_POOL_MAX', BOUNDS.databasePoolMax.min, BOUNDS.databasePoolMax.max, errors);

  const rawAddr = env.LISTEN_ADDR;
  let listen = parseListenAddr(CONFIG_DEFAULTS.LISTEN_ADDR)!;
  if (rawAddr !== undefined && rawAddr.trim() !== '') {
    const parsed = parseListenAddr(rawAddr);
    if (parsed) listen = parsed;
    else errors.push(`LISTEN_ADDR must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (got ${show(rawAddr)})`);
  }

  const accessTokenExpirySecs = parseInteger(
    env,
    'ACCESS_TOKEN_EXPIRY_SECS',
    BOUNDS.accessTokenExpirySecs.min,
    BOUNDS.accessTokenExpirySecs.max,
    errors,
  );
  const refreshTokenRollingDays = parseInteger(
    env,
    'REFRESH_TOKEN_ROLLING_DAYS',
    BOUNDS.refreshTokenRollingDays.min,
    BOUNDS.refreshTokenRollingDays.max,
    errors,
  );
  const rateLimitPerMinute = parseInteger(
    env,
    'RATE_LIMIT_PER_MINUTE',
    BOUNDS.rateLimitPerMinute.min,
    BOUNDS.rateLimitPerMinute.max,
    errors,
  );
  const bodyLimitKb = parseInteger(env, 'BODY_LIMIT_KB', BOUNDS.bodyLimitKb.min, BOUNDS.bodyLimitKb.max, errors);
  const { maxConnections, maxConnectionsPerAddress, trustProxy, unauthRateLimitPerMinute } = parseConnectionLimits(env, errors);
  const requireSignatures = parseBoolean(env, 'REQUIRE_SIGNATURES', errors);
  const requireKeyProof = parseBoolean(env, 'REQUIRE_KEY_PROOF', errors);
  const cookieSecure = parseBoolean(env, 'COOKIE_SECURE', errors);

  let adminToken: string | undefined;
  const rawAdmin = env.ADMIN_TOKEN;
  if (rawAdmin !== undefined && rawAdmin !== '') {
    // The value itself is never echoed: it is a secret even when it is wrong.
    if (rawAdmin.trim() !== rawAdmin || /[^\x21-\x7e]/.test(rawAdmin)) {
      errors.push('ADMIN_TOKEN must be printable ASCII without spaces (generate one with: openssl rand -hex 32)');
    } else if (rawAdmin.length < ADMIN_TOKEN_MIN_CHARS) {
      errors.push(
        `ADMIN_TOKEN must be at least ${ADMIN_TOKEN_MIN_CHARS} characters (generate one with: openssl rand -hex 32)`,
      );
    } else {
      adminToken = rawAdmin;
    }
  }

  const pricesFile = env.PRICES_FILE === undefined || env.PRICES_FILE.trim() === '' ? undefined : env.PRICES_FILE;

  let seatPriceUsd: number | null = null;
  const rawSeat = env.SEAT_PRICE_USD;
  if (rawSeat !== undefined && rawSeat.trim() !== '') {
    const value = Number(rawSeat.trim());
    if (!/^\d+(?:\.\d{1,4})?$/.test(rawSeat.trim()) || !(value >= 0 && value <= 1_000_000)) {
      errors.push(`SEAT_PRICE_USD must be a dollar amount such as 25 or 30.50 (got ${show(rawSeat)})`);
    } else {
      seatPriceUsd = value;
    }
  }

  let displayTimeZone = 'UTC';
  const rawTz = env.DISPLAY_TIME_ZONE;
  if (rawTz !== undefined && rawTz.trim() !== '') {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: rawTz.trim() });
      displayTimeZone = rawTz.trim();
    } catch {
      errors.push(`DISPLAY_TIME_ZONE must be an IANA time zone such as Europe/Paris or UTC (got ${show(rawTz)})`);
    }
  }

  let logLevel: LogLevel = 'info';
  const rawLevel = env.LOG_LEVEL;
  if (rawLevel !== undefined && rawLevel.trim() !== '') {
    const level = rawLevel.trim().toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(level)) logLevel = level as LogLevel;
    else errors.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${show(rawLevel)})`);
  }

  let metricsToken: string | undefined;
  const rawMetrics = env.METRICS_TOKEN;
  if (rawMetrics !== undefined && rawMetrics !== '') {
    if (rawMetrics.trim() !== rawMetrics || /[^\x21-\x7e]/.test(rawMetrics) || rawMetrics.length < ADMIN_TOKEN_MIN_CHARS) {
      errors.push(`METRICS_TOKEN must be at least ${ADMIN_TOKEN_MIN_CHARS} printable characters without spaces (generate one with: openssl rand -hex 32)`);
    } else {
      metricsToken = rawMetrics;
    }
  }
  const metricsPerUser = parseBoolean(env, 'METRICS_PER_USER', errors);

  let alertWebhookUrl: string | undefined;
  const rawHook = env.ALERT_WEBHOOK_URL;
  if (rawHook !== undefined && rawHook.trim() !== '') {
    let url: URL | null = null;
    try {
      url = new URL(rawHook.trim());
    } catch {
      url = null;
    }
    const loopback = url !== null && /^(?:127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(url.hostname);
    if (url === null || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
      errors.push('ALERT_WEBHOOK_URL must be an https:// URL (http:// only to a loopback address)');
    } else {
      alertWebhookUrl = url.toString();
    }
  }

  let publicUrl: string | undefined;
  const rawPublic = env.PUBLIC_URL;
  if (rawPublic !== undefined && rawPublic.trim() !== '') {
    let url: URL | null = null;
    try {
      url = new URL(rawPublic.trim());
    } catch {
      url = null;
    }
    const loopback = url !== null && /^(?:127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(url.hostname);
    if (url === null || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) || url.search !== '' || url.username !== '') {
      errors.push(`PUBLIC_URL must be the https:// address devices use, e.g. https://ccflux.example.org (got ${show(rawPublic)})`);
    } else {
      publicUrl = url.toString().replace(/\/$/, '');
    }
  }

  const retentionDays = parseRetention(env, errors);

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: {
      databasePath,
      databaseUrl,
      databasePoolMax,
      listenHost: listen.host,
      listenPort: listen.port,
      accessTokenExpirySecs,
      refreshTokenRollingDays,
      rateLimitPerMinute,
      bodyLimitKb,
      bodyLimitBytes: bodyLimitKb * 1024,
      requireSignatures,
      requireKeyProof,
      adminToken,
      cookieSecure,
      pricesFile,
      seatPriceUsd,
      displayTimeZone,
      logLevel,
      metricsToken,
      metricsPerUser,
      alertWebhookUrl,
      publicUrl,
      maxConnections,
      maxConnectionsPerAddress,
      trustProxy,
      unauthRateLimitPerMinute,
      retentionDays,
    },
  };
}

/** The resolved configuration as `NAME=value` lines, secrets masked. */
export function describeConfig(config: ReceiverConfig): string[] {
  return [
    config.databaseUrl === undefined ? `DATABASE_PATH=${config.databasePath}` : `DATABASE_URL=${redactUrl(config.databaseUrl)}`,
    ...(config.databaseUrl === undefined ? [] : [`DATABASE_POOL_MAX=${config.databasePoolMax}`]),
    `LISTEN_ADDR=${formatHostPort(config.listenHost, config.listenPort)}`,
    `ACCESS_TOKEN_EXPIRY_SECS=${config.accessTokenExpirySecs}`,
    `REFRESH_TOKEN_ROLLING_DAYS=${config.refreshTokenRollingDays}`,
    `RATE_LIMIT_PER_MINUTE=${config.rateLimitPerMinute}`,
    `BODY_LIMIT_KB=${config.bodyLimitKb}`,
    `REQUIRE_SIGNATURES=${config.requireSignatures ? 'on' : 'off'}`,
    `REQUIRE_KEY_PROOF=${config.requireKeyProof ? 'on' : 'off'}`,
    `ADMIN_TOKEN=${config.adminToken === undefined ? 'unset (dashboard disabled)' : '******** (set, dashboard enabled)'}`,
    `COOKIE_SECURE=${config.cookieSecure ? 'on' : 'off'}`,
    `PRICES_FILE=${config.pricesFile ?? 'unset (shipped prices)'}`,
    `SEAT_PRICE_USD=${config.seatPriceUsd ?? 'unset'}`,
    `DISPLAY_TIME_ZONE=${config.displayTimeZone}`,
    `LOG_LEVEL=${config.logLevel}`,
    `METRICS_TOKEN=${config.metricsToken === undefined ? 'unset (/metrics open)' : '******** (set)'}`,
    `METRICS_PER_USER=${config.metricsPerUser ? 'on' : 'off'}`,
    `ALERT_WEBHOOK_URL=${config.alertWebhookUrl === undefined ? 'unset' : 'set'}`,
    `PUBLIC_URL=${config.publicUrl ?? 'unset'}`,
    `MAX_CONNECTIONS=${config.maxConnections}`,
    `MAX_CONNECTIONS_PER_ADDRESS=${config.maxConnectionsPerAddress}`,
    `TRUST_PROXY=${config.trustProxy.length === 0 ? 'off' : config.trustProxy.join(',')}`,
    `UNAUTH_RATE_LIMIT_PER_MINUTE=${config.unauthRateLimitPerMinute}`,
    `RETENTION_DAYS=${config.retentionDays ?? 'unset (raw rows kept for ever)'}`,
  ];
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
