/**
 * The ccflux wire protocol: the one definition that both the device (`src/client`) and the
 * receiver (`receiver/src`) import, so the two cannot drift.
 *
 * Pure: no I/O, no clock (callers pass `Date`s), no dependencies beyond `node:crypto` types.
 */

/** The lowest schema_version a receiver accepts; later versions only add fields. */
export const SCHEMA_VERSION = 1;
/** What this device sends: 2 adds the optional per-model DETAIL_FIELDS. */
export const DEVICE_SCHEMA_VERSION = 2;

/** Paths beside the report URL. */
export const PATHS = {
  token: '/token',
  registerKey: '/register-key',
  report: '/report',
  /** Batch delivery (see BATCH below); a receiver without it answers 404. */
  reports: '/reports',
  health: '/health',
  metrics: '/metrics',
} as const;

export const HEADERS = {
  timestamp: 'x-ccflux-timestamp',
  signature: 'x-ccflux-signature',
  error: 'x-ccflux-error',
} as const;

/** Values of the `X-CCFLUX-Error` header on 403 answers to `/report`. */
export const ERROR_CODES = [
  'signature-required',
  'timestamp-missing',
  'timestamp-stale',
  'signature-invalid',
  'key-not-registered',
  'key-revoked',
] as const;
export type WireErrorCode = (typeof ERROR_CODES)[number];

/** Field limits from the security guide, enforced before any database or crypto work. */
export const LIMITS = {
  publicKeyChars: 64,
  deviceIdChars: 255,
  sessionIdMinChars: 1,
  sessionIdChars: 64,
  timestampChars: 64,
  pluginVersionChars: 64,
  modelNameMinChars: 1,
  modelNameChars: 128,
  maxModels: 20,
  /** An email is informational; bound it like a device id. */
  userEmailChars: 255,
} as const;

/**
 * Bounds that keep stored data sane (SPEC §3). A counter above MAX_TOKEN_COUNT, or a report whose
 * counters add up to more than MAX_REPORT_TOKENS, is no real turn (the largest real ones are below
 * 10^9): it is refused with 400. Both keep any SUM over stored rows far from 64-bit overflow.
 */
export const MAX_TOKEN_COUNT = 10_000_000_000;
export const MAX_REPORT_TOKENS = 100_000_000_000;
/** `timestamp_utc` must be RFC 3339 and no later than this past the receiver clock… */
export const TURN_TIME_MAX_AHEAD_MS = 24 * 3600 * 1000;
/** …and no earlier than this before it. */
export const TURN_TIME_MAX_AGE_MS = 5 * 366 * 24 * 3600 * 1000;

/** Characters a model name may hold; any other code point is replaced by `_`. */
const MODEL_NAME_OUTSIDE = /[^A-Za-z0-9._:@/+\-[\]]/gu;

/** Signed timestamps must be within this distance of the receiver clock. */
export const TIMESTAMP_WINDOW_MS = 5 * 60 * 1000;
/** The device refreshes its access token when it has less than this left. */
export const ACCESS_TOKEN_REFRESH_MARGIN_MS = 5 * 60 * 1000;

export const TOKEN_FIELDS = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens'] as const;
export type TokenField = (typeof TOKEN_FIELDS)[number];
/**
 * schema_version 2, optional per model: the split of `cache_write_tokens` by cache TTL (5-minute
 * writes bill 1.25× input, 1-hour writes 2×) and server web searches (billed per request). Absent
 * (old devices) means unknown, not zero: the receiver stores NULL.
 */
export const DETAIL_FIELDS = ['cache_write_5m_tokens', 'cache_write_1h_tokens', 'web_search_requests'] as const;
export type DetailField = (typeof DETAIL_FIELDS)[number];
export type ModelUsage = Record<TokenField, number> & Partial<Record<DetailField, number>>;

/**
 * The report body. A receiver reads the known keys and ignores any other, at the top level and
 * inside each model (SPEC "Compatibility both ways": a newer device must not be refused). The Rust
 * device leaves `session_start_utc` out when it has none; both it and `plugin_version` may be null.
 */
export interface ReportBody {
  schema_version: number;
  session_id: string;
  user_email: string;
  turn_index: number;
  timestamp_utc: string;
  session_start_utc: string | null;
  models: Record<string, ModelUsage>;
  plugin_version: string | null;
}

const REQUIRED_REPORT_KEYS = ['schema_version', 'session_id', 'user_email', 'turn_index', 'timestamp_utc', 'models'] as const;

export interface RegisterKeyBody {
  public_key: string;
  device_id: string;
}

export interface TokenResponse {
  access_token: string;
  expires_at: string;
  token_type: 'Bearer';
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A token counter: a non-negative integer no larger than MAX_TOKEN_COUNT. */
export function isTokenCount(v: unknown): v is number {
  return isCount(v) && v <= MAX_TOKEN_COUNT;
}

/**
 * A model name as stored and sent: every code point outside `A-Z a-z 0-9 . _ : @ / + - [ ]`
 * replaced by `_` (so the name is well-formed ASCII whatever the transcript held), then cut to
 * LIMITS.modelNameChars; empty stays empty (callers decide what an empty name means).
 */
export function cleanModelName(name: string): string {
  return name.replace(MODEL_NAME_OUTSIDE, '_').slice(0, LIMITS.modelNameChars);
}

/** Lone surrogates become U+FFFD, control characters too: the text is valid Unicode to print and store. */
export function wellFormedText(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD');
}

/** At most `maxUnits` UTF-16 units (the wire's length unit), cut between code points, never inside one. */
export function truncateCodePoints(text: string, maxUnits: number): string {
  if (text.length <= maxUnits) return text;
  let end = maxUnits;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

/**
 * Null when `timestamp_utc` lies within the sane bounds of the receiver clock `now`
 * (TURN_TIME_MAX_AGE_MS before it to TURN_TIME_MAX_AHEAD_MS after it); the error otherwise.
 * Not part of validateReport, which takes no clock.
 */
export function checkTurnTime(timestampUtc: string, now: Date): string | null {
  const at = parseTimestamp(timestampUtc);
  if (at === null) return 'timestamp_utc must be an RFC 3339 time';
  const offset = at.getTime() - now.getTime();
  if (offset > TURN_TIME_MAX_AHEAD_MS) return 'timestamp_utc is more than a day ahead of the receiver clock';
  if (-offset > TURN_TIME_MAX_AGE_MS) return 'timestamp_utc is more than 5 years before the receiver clock';
  return null;
}

function boundedString(v: unknown, min: number, max: number): v is string {
  return typeof v === 'string' && v.length >= min && v.length <= max;
}

function optionalString(v: unknown, max: number): v is string | null | undefined {
  return v === undefined || v === null || boundedString(v, 0, max);
}

/**
 * Validates a parsed report body: types and the security guide's limits for every known field
 * present; unknown keys are ignored and left out of the value returned (only known fields are ever
 * stored or sent on). Any `schema_version` ≥ 1: later versions only add fields.
 * Returns a short, fixed error text (never echoes the input).
 */
export function validateReport(input: unknown): Validation<ReportBody> {
  if (!isPlainObject(input)) return { ok: false, error: 'body must be a JSON object' };
  for (const key of REQUIRED_REPORT_KEYS) {
    if (!Object.hasOwn(input, key)) return { ok: false, error: `missing field ${key}` };
  }
  const b = input;
  if (!isCount(b.schema_version) || b.schema_version < SCHEMA_VERSION) return { ok: false, error: 'unsupported schema_version' };
  if (!boundedString(b.session_id, LIMITS.sessionIdMinChars, LIMITS.sessionIdChars)) {
    return { ok: false, error: 'session_id must be 1-64 characters' };
  }
  if (!boundedString(b.user_email, 0, LIMITS.userEmailChars)) return { ok: false, error: 'user_email too long' };
  if (!isCount(b.turn_index)) return { ok: false, error: 'turn_index must be a non-negative integer' };
  if (!boundedString(b.timestamp_utc, 0, LIMITS.timestampChars)) return { ok: false, error: 'timestamp_utc too long' };
  if (parseTimestamp(b.timestamp_utc) === null) return { ok: false, error: 'timestamp_utc must be an RFC 3339 time' };
  if (!optionalString(b.session_start_utc, LIMITS.timestampChars)) return { ok: false, error: 'session_start_utc too long' };
  if (!optionalString(b.plugin_version, LIMITS.pluginVersionChars)) return { ok: false, error: 'plugin_version too long' };
  if (!isPlainObject(b.models)) return { ok: false, error: 'models must be an object' };
  const names = Object.keys(b.models);
  if (names.length > LIMITS.maxModels) return { ok: false, error: 'too many models' };
  const models: Record<string, ModelUsage> = {};
  let reportTokens = 0;
  for (const rawName of names) {
    if (rawName.length < LIMITS.modelNameMinChars || rawName.length > LIMITS.modelNameChars) {
      return { ok: false, error: 'model name must be 1-128 characters' };
    }
    const usage = b.models[rawName];
    if (!isPlainObject(usage)) return { ok: false, error: 'model usage must be an object' };
    // Names that become equal once cleaned are one model: their counts add up.
    const name = cleanModelName(rawName);
    const known = Object.hasOwn(models, name) ? models[name]! : ({} as ModelUsage);
    for (const field of TOKEN_FIELDS) {
      const value = usage[field];
      if (!isCount(value)) return { ok: false, error: 'token counts must be non-negative integers' };
      if (!isTokenCount(value)) return { ok: false, error: `token counts must be at most ${MAX_TOKEN_COUNT}` };
      known[field] = (known[field] ?? 0) + value;
      if (known[field] > MAX_TOKEN_COUNT) return { ok: false, error: `token counts must be at most ${MAX_TOKEN_COUNT}` };
      reportTokens += value;
    }
    for (const field of DETAIL_FIELDS) {
      const value = usage[field];
      if (value === undefined || value === null) continue;
      if (!isCount(value)) return { ok: false, error: 'token counts must be non-negative integers' };
      known[field] = (known[field] ?? 0) + value;
      if (known[field] > MAX_TOKEN_COUNT) return { ok: false, error: `token counts must be at most ${MAX_TOKEN_COUNT}` };
    }
    // defineProperty: a model named `__proto__` stays an own key, not the prototype.
    Object.defineProperty(models, name, { value: known, enumerable: true, writable: true, configurable: true });
  }
  if (reportTokens > MAX_REPORT_TOKENS) {
    return { ok: false, error: `token counts of one report must add up to at most ${MAX_REPORT_TOKENS}` };
  }
  return {
    ok: true,
    value: {
      schema_version: b.schema_version,
      session_id: b.session_id,
      user_email: b.user_email,
      turn_index: b.turn_index,
      timestamp_utc: b.timestamp_utc,
      session_start_utc: b.session_start_utc ?? null,
      models,
      plugin_version: b.plugin_version ?? null,
    },
  };
}

export function validateRegisterKey(input: unknown): Validation<RegisterKeyBody> {
  if (!isPlainObject(input)) return { ok: false, error: 'body must be a JSON object' };
  const { public_key, device_id } = input;
  if (typeof public_key !== 'string' || public_key.length === 0) return { ok: false, error: 'public_key required' };
  if (public_key.length > LIMITS.publicKeyChars) return { ok: false, error: 'public_key too long' };
  if (typeof device_id !== 'string') return { ok: false, error: 'device_id required' };
  if (device_id.length > LIMITS.deviceIdChars) return { ok: false, error: 'device_id too long' };
  if (decodePublicKey(public_key) === null) return { ok: false, error: 'public_key must be base64 of 32 bytes' };
  return { ok: true, value: { public_key, device_id } };
}

/** Base64 of exactly 32 bytes, canonical encoding only; null otherwise. */
export function decodePublicKey(b64: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) return null;
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== b64) return null;
  return raw;
}

/** `2026-05-11T03:00:00Z`: UTC, whole seconds, `Z`. */
export function formatTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 timestamp; null when it is not one (a day the month does not have included:
 * `Date.parse` would roll 2026-02-30 over to March). */
export function parseTimestamp(value: string): Date | null {
  if (value.length > LIMITS.timestampChars) return null;
  const match = TIMESTAMP_RE.exec(value);
  if (match === null) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

/**
 * `parseTimestamp(value)?.getTime() ?? null`, faster for the form Claude Code writes on every line
 * (`2026-05-11T04:00:00.000Z`) when its day is the day of the last such value: the day is then
 * known valid and only the time's digits are read (a first read of a long session: one distinct
 * timestamp per line, 180k+). Anything else takes parseTimestamp's path.
 */
export function timestampMillis(value: string): number | null {
  const time = value.length === 24 && value.charCodeAt(23) === 0x5a ? timeOfDayMillis(value) : -1;
  if (time !== -1 && value.startsWith(lastDay.prefix)) return lastDay.ms + time;
  const date = parseTimestamp(value);
  if (date === null) return null;
  if (time !== -1) lastDay = { prefix: value.slice(0, 11), ms: date.getTime() - time };
  return date.getTime();
}

/** The day (`YYYY-MM-DDT`, validated) of the last canonical timestamp timestampMillis parsed, and its midnight. */
let lastDay = { prefix: 'none', ms: 0 };

/** `HH:MM:SS.mmm` at value[11, 23) in ms since midnight; -1 when it is not that form with hours < 24, minutes and seconds < 60. */
function timeOfDayMillis(value: string): number {
  if (value.charCodeAt(13) !== 0x3a || value.charCodeAt(16) !== 0x3a || value.charCodeAt(19) !== 0x2e) return -1;
  const h = digitAt(value, 11) * 10 + digitAt(value, 12);
  const m = digitAt(value, 14) * 10 + digitAt(value, 15);
  const s = digitAt(value, 17) * 10 + digitAt(value, 18);
  const ms = digitAt(value, 20) * 100 + digitAt(value, 21) * 10 + digitAt(value, 22);
  if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59 || ms < 0) return -1;
  return ((h * 60 + m) * 60 + s) * 1000 + ms;
}

/** The decimal digit at value[at]; -1000 for any other character, so a number it is part of is negative. */
function digitAt(value: string, at: number): number {
  const d = value.charCodeAt(at) - 0x30;
  return d >= 0 && d <= 9 ? d : -1000;
}

/** The signed message: the exact body bytes, a `\n` byte, then the timestamp header value. */
export function signingMessage(body: Buffer | string, timestamp: string): Buffer {
  const bodyBytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([bodyBytes, Buffer.from(`\n${timestamp}`, 'utf8')]);
}

/** `ed25519 <base64 signature> <base64 public key>` */
export function formatSignatureHeader(signature: Buffer, publicKey: Buffer): string {
  return `ed25519 ${signature.toString('base64')} ${publicKey.toString('base64')}`;
}

export function parseSignatureHeader(value: string): { signature: Buffer; publicKey: string } | null {
  if (value.length > 200) return null;
  const parts = value.split(' ');
  if (parts.length !== 3 || parts[0] !== 'ed25519') return null;
  const [, sigB64, keyB64] = parts as [string, string, string];
  if (!/^[A-Za-z0-9+/]{86}==$/.test(sigB64)) return null;
  const signature = Buffer.from(sigB64, 'base64');
  if (signature.length !== 64) return null;
  if (decodePublicKey(keyB64) === null) return null;
  return { signature, publicKey: keyB64 };
}

/** True when `timestamp` is within the replay window of `now`. */
export function timestampFresh(timestamp: Date, now: Date): boolean {
  return Math.abs(now.getTime() - timestamp.getTime()) <= TIMESTAMP_WINDOW_MS;
}

/**
 * Resolves the configured endpoint (a base URL, or a report URL ending in `/report`) into the
 * three URLs the device uses. `/token` and `/register-key` sit beside `/report`.
 */
export function endpointUrls(endpoint: string): { base: string; token: string; registerKey: string; report: string; reports: string } {
  const url = new URL(endpoint);
  let path = url.pathname.replace(/\/+$/, '');
  if (path.endsWith(PATHS.report)) path = path.slice(0, -PATHS.report.length);
  const base = `${url.origin}${path}`;
  return {
    base,
    token: `${base}${PATHS.token}`,
    registerKey: `${base}${PATHS.registerKey}`,
    report: `${base}${PATHS.report}`,
    reports: `${base}${PATHS.reports}`,
  };
}

/**
 * Reduces a server-supplied value to printable ASCII, at most 64 characters, before it is logged.
 */
export function sanitizeServerValue(value: unknown, maxChars = 64): string {
  const text = typeof value === 'string' ? value : String(value ?? '');
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, maxChars);
}

// --- batch delivery: POST <base>/reports ---------------------------------------------------------
//
// Request: `{"reports":[{"body":"<one report's exact JSON text>","timestamp":"<X-CCFLUX-Timestamp>",
// "signature":"<X-CCFLUX-Signature>"}, …]}` — each item is what one `POST /report` would carry:
// its signature covers its own body bytes (UTF-8 of `body`), `\n`, its timestamp, so every report
// keeps its own signature and its own idempotency key (session_id, turn_index, model).
// Answer 200: `{"status":"ok","results":[{"status":200,"stored":n} | {"status":400,"error":"…"} |
// {"status":413,"error":"…"} | {"status":403,"error":"<X-CCFLUX-Error code>"}, …]}`, one per item
// in order, each meaning what that status means from `/report`. Anything that is not about one
// report (401, 415, 429, 5xx, a malformed batch: 400/413) answers the whole request as `/report`
// would. A batch costs `batchRateUnits(n)` of the per-token rate limit.

export const BATCH = {
  /** Reports per request at most. */
  maxReports: 100,
  /** The whole request body at most (each item's `body` is still held to the receiver's BODY_LIMIT_KB). */
  maxBodyBytes: 1024 * 1024,
  /** One unit of the per-token rate limit buys this many reports. */
  reportsPerRateUnit: 50,
} as const;

export interface BatchItem {
  body: string;
  timestamp?: string;
  signature?: string;
}

export type BatchResult = { status: 200; stored: number } | { status: 400 | 403 | 413; error: string };

/** Rate-limit units a batch of `n` reports costs: one per started 50 (a single report costs 1, as on `/report`). */
export function batchRateUnits(n: number): number {
  return Math.max(1, Math.ceil(n / BATCH.reportsPerRateUnit));
}

/** The shape of a batch request (not its reports: each is checked like a `/report` body). */
export function validateBatchRequest(input: unknown): Validation<BatchItem[]> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { ok: false, error: 'body must be {"reports":[…]}' };
  const list = (input as Record<string, unknown>).reports;
  if (!Array.isArray(list) || list.length === 0) return { ok: false, error: '"reports" must be a non-empty array' };
  if (list.length > BATCH.maxReports) return { ok: false, error: `at most ${BATCH.maxReports} reports per batch` };
  const items: BatchItem[] = [];
  for (const [i, raw] of list.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: `reports[${i}] must be an object` };
    const { body, timestamp, signature } = raw as Record<string, unknown>;
    if (typeof body !== 'string') return { ok: false, error: `reports[${i}].body must be a string` };
    if (timestamp !== undefined && typeof timestamp !== 'string') return { ok: false, error: `reports[${i}].timestamp must be a string` };
    if (signature !== undefined && typeof signature !== 'string') return { ok: false, error: `reports[${i}].signature must be a string` };
    const item: BatchItem = { body };
    if (timestamp !== undefined) item.timestamp = timestamp as string;
    if (signature !== undefined) item.signature = signature as string;
    items.push(item);
  }
  return { ok: true, value: items };
}

/** The per-report results of a batch answer, or null when it is not one for `count` reports. */
export function parseBatchAnswer(input: unknown, count: number): BatchResult[] | null {
  if (typeof input !== 'object' || input === null) return null;
  const results = (input as Record<string, unknown>).results;
  if (!Array.isArray(results) || results.length !== count) return null;
  const out: BatchResult[] = [];
  for (const raw of results) {
    if (typeof raw !== 'object' || raw === null) return null;
    const { status, stored, error } = raw as Record<string, unknown>;
    if (status === 200) out.push({ status: 200, stored: typeof stored === 'number' ? stored : 0 });
    else if (status === 400 || status === 403 || status === 413) out.push({ status, error: typeof error === 'string' ? error : '' });
    else return null;
  }
  return out;
}
