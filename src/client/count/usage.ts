/**
 * Counting core, pure: one transcript line in, zero or more usage records out, plus the field-wise
 * merge and delta arithmetic the ledger relies on. No I/O, no clock, never throws.
 *
 * Rules (docs/DESIGN.md "Counting", claude-code-formats.md §1-3):
 * - only `type: "assistant"` lines with an object `message.usage` count; everything else (user lines
 *   with `toolUseResult.usage`, summaries, system lines) is ignored without being parsed when it does
 *   not even contain the substring `"usage"`;
 * - one API response is written as several lines sharing a group key; the group counts once with the
 *   field-wise maximum of its lines (early lines carry placeholder `output_tokens`);
 * - cache writes are one number with two views: max(flat, sum of the ephemeral breakdown);
 * - `usage.iterations[]` entries of type `advisor_message` are billed to their own model and are not
 *   part of the top-level usage: each is its own pseudo-group `<key>#adv<i>`;
 * - `<synthetic>` lines are local notices, not a model: excluded, but reported to the caller when
 *   they carry non-zero usage so that it can be logged.
 */
import { createHash } from 'node:crypto';
import { DETAIL_FIELDS, type DetailField, type ModelUsage, TOKEN_FIELDS } from '../../protocol/wire';
import { LineValues, ScanSpec } from './json-scan';
import { OWN_BUFFER } from './transcript';

export const SYNTHETIC_MODEL = '<synthetic>';
/** Model name used when an assistant line with usage names no model: its tokens are still billed. */
export const UNKNOWN_MODEL = 'unknown';
/** The raw text every line with a usage object holds (its key, unescaped). */
export const USAGE_MARKER = '"usage"';
/**
 * Raw-byte markers of the lines counting needs, for the transcript reader's `LineMatcher`: a line
 * can only matter if it holds every marker of one rule. An assistant line with usage holds
 * `"usage"` and `"assistant"` (its type) unescaped, since JSON escapes quotes inside strings; a
 * `cost-state` line (claude-code-formats.md §8.3) holds its type. Lines a rule lets through are
 * still parsed and checked in full; a new kind of line to count is one more rule here.
 */
export const CANDIDATE_LINE_RULES: readonly (readonly string[])[] = [[USAGE_MARKER, '"assistant"'], ['"cost-state"']];
/** The bit of CANDIDATE_LINE_RULES' usage rule in the reader's rule mask (ALL_RULES, -1, sets every bit). */
export const USAGE_RULE_BIT = 1 << 0;
/** The bit of CANDIDATE_LINE_RULES' `"cost-state"` rule in the reader's rule mask: a line without it is no cost-state line. */
export const COST_STATE_RULE_BIT = 1 << 1;

/** Ids longer than this are replaced by a hash so that one odd line cannot bloat the ledger. */
const MAX_ID_CHARS = 200;

export interface UsageRecord {
  /** Group key: `m:<message.id>|r:<requestId>`, `m:<id>|s:<sessionId>`, `u:<uuid>` or `h:<sha256>`. */
  key: string;
  /** The replay family: `message.id` (advisor pseudo-groups: `<id>#adv<i>`); null without an id. */
  messageId: string | null;
  sidechain: boolean;
  model: string;
  /** The line's `timestamp` as written (validated later), or null. */
  timestamp: string | null;
  usage: ModelUsage;
}

export interface LineParse {
  records: UsageRecord[];
  /** The line looked like usage (prefilter hit) but was not valid JSON. */
  malformed: boolean;
  /** Usage of a `<synthetic>` line when any counter is non-zero (it is excluded from records). */
  syntheticUsage: ModelUsage | null;
  /**
   * The line's `requestSessionId` when it names another session than the line's own `sessionId`:
   * a `--fork-session` copy names the session it was copied from (claude-code-formats.md §8.3).
   */
  copiedFrom: string | null;
}

const EMPTY: LineParse = Object.freeze({ records: [], malformed: false, syntheticUsage: null, copiedFrom: null }) as LineParse;

/**
 * Every counter the device keeps per model: the wire's four plus the schema-v2 detail. Inside the
 * device a detail field is present only when non-zero (absent reads as 0); report bodies carry all.
 */
export const USAGE_FIELDS = [...TOKEN_FIELDS, ...DETAIL_FIELDS] as const;

export function zeroUsage(): ModelUsage {
  return { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}

/** Sets the detail fields of `out` that are non-zero in `detail`. */
function withDetail(out: ModelUsage, detail: Partial<Record<DetailField, number>>): ModelUsage {
  for (const f of DETAIL_FIELDS) {
    const v = detail[f] ?? 0;
    if (v > 0) out[f] = v;
  }
  return out;
}

export function isZeroUsage(u: ModelUsage): boolean {
  return USAGE_FIELDS.every((f) => (u[f] ?? 0) === 0);
}

/** `op` field by field into `out`: a new usage, or `a` itself for the in-place forms (addTo, raiseTo). */
function combine(a: ModelUsage, b: ModelUsage, op: (x: number, y: number) => number, out = zeroUsage()): ModelUsage {
  for (const f of TOKEN_FIELDS) out[f] = op(a[f], b[f]);
  // As withDetail, without an object in between (a first read of a long session combines 100k+ times).
  for (const f of DETAIL_FIELDS) {
    const v = op(a[f] ?? 0, b[f] ?? 0);
    if (v > 0) out[f] = v;
  }
  return out;
}

/** Every counter equal (absent detail reads as 0). */
export function sameUsage(a: ModelUsage, b: ModelUsage): boolean {
  for (const f of USAGE_FIELDS) if ((a[f] ?? 0) !== (b[f] ?? 0)) return false;
  return true;
}

/** The cache-write split does not exceed the cache writes (deltaOver over zero leaves such a usage as it is). */
function splitWithinWrites(u: ModelUsage): boolean {
  const c5 = u.cache_write_5m_tokens ?? 0;
  return c5 <= u.cache_write_tokens && (u.cache_write_1h_tokens ?? 0) <= u.cache_write_tokens - c5;
}

/** Field-wise maximum. */
export function maxUsage(a: ModelUsage, b: ModelUsage): ModelUsage {
  return combine(a, b, Math.max);
}

/** `target` becomes maxUsage(target, b), in place (for a caller that owns `target`). */
export function raiseTo(target: ModelUsage, b: ModelUsage): void {
  combine(target, b, Math.max, target);
}

/**
 * What is still to report for a group: field-wise `max(value, base) - base` (never negative). The
 * cache-write split never exceeds the cache writes it splits: a base from before the split was
 * recorded (an older ledger) would otherwise report the split of writes already reported.
 */
export function deltaOver(value: ModelUsage, base: ModelUsage): ModelUsage {
  const d = combine(value, base, (x, y) => Math.max(x - y, 0));
  const c5 = Math.min(d.cache_write_5m_tokens ?? 0, d.cache_write_tokens);
  const c1 = Math.min(d.cache_write_1h_tokens ?? 0, d.cache_write_tokens - c5);
  delete d.cache_write_5m_tokens;
  delete d.cache_write_1h_tokens;
  return withDetail(d, { cache_write_5m_tokens: c5, cache_write_1h_tokens: c1 });
}

const saturating = (a: number, b: number) => Math.min(a + b, Number.MAX_SAFE_INTEGER);

/** Field-wise sum, saturating at MAX_SAFE_INTEGER so a report always stays valid on the wire. */
export function addUsage(a: ModelUsage, b: ModelUsage): ModelUsage {
  return combine(a, b, saturating);
}

/** `target` becomes addUsage(target, b), in place (for a caller that owns `target`). */
export function addTo(target: ModelUsage, b: ModelUsage): void {
  combine(target, b, saturating, target);
}

/** A token counter: a non-negative safe integer, anything else (missing, null, -1, 1.5, "7") is 0. */
export function count(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `max(cache_creation_input_tokens, sum of cache_creation.ephemeral_*_input_tokens)`: never both added. */
export function cacheWriteTokens(usage: Record<string, unknown>): number {
  const flat = count(usage.cache_creation_input_tokens);
  let breakdown = 0;
  const detail = usage.cache_creation;
  if (isObject(detail)) {
    for (const [name, value] of Object.entries(detail)) {
      if (name.startsWith('ephemeral_') && name.endsWith('_input_tokens')) breakdown = saturating(breakdown, count(value));
    }
  }
  return Math.max(flat, breakdown);
}

/**
 * The wire counters from an API usage object (top-level or one iteration): the four of v1, the
 * cache-write split from `cache_creation.ephemeral_5m/1h_input_tokens` and web searches from
 * `server_tool_use.web_search_requests`.
 */
export function extractUsage(usage: Record<string, unknown>): ModelUsage {
  const detail = isObject(usage.cache_creation) ? usage.cache_creation : {};
  const tools = isObject(usage.server_tool_use) ? usage.server_tool_use : {};
  const out: ModelUsage = {
    input_tokens: count(usage.input_tokens),
    output_tokens: count(usage.output_tokens),
    cache_read_tokens: count(usage.cache_read_input_tokens),
    cache_write_tokens: cacheWriteTokens(usage),
  };
  return withDetail(out, {
    cache_write_5m_tokens: count(detail.ephemeral_5m_input_tokens),
    cache_write_1h_tokens: count(detail.ephemeral_1h_input_tokens),
    web_search_requests: count(tools.web_search_requests),
  });
}

function idString(v: unknown): string | null {
  if (typeof v !== 'string' || v.length === 0) return null;
  return v.length > MAX_ID_CHARS ? `sha256:${sha256(v)}` : v;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function modelName(v: unknown): string {
  return typeof v === 'string' && v.length > 0 ? v : UNKNOWN_MODEL;
}

/**
 * Parses one transcript line (without its `\n`). `sessionId` is the hook's session, the fallback
 * for the group key when neither `requestId` nor the line's own `sessionId` is there.
 * `holdsUsageMarker`: the caller's raw-byte filter already found `"usage"` in the line.
 */
export function parseUsageLine(line: string, sessionId: string, holdsUsageMarker = false): LineParse {
  // Cheap prefilter: most lines (user prompts, tool results, snapshots) never need JSON.parse.
  if (!holdsUsageMarker && !line.includes(USAGE_MARKER)) return EMPTY;
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return { records: [], malformed: true, syntheticUsage: null, copiedFrom: null };
  }
  if (!isObject(entry) || entry.type !== 'assistant') return EMPTY;
  const message = entry.message;
  if (!isObject(message) || !isObject(message.usage)) return EMPTY;
  return recordsOf(
    {
      usage: extractUsage(message.usage),
      iterations: message.usage.iterations,
      model: message.model,
      messageId: message.id,
      requestId: entry.requestId,
      sessionId: () => entry.sessionId,
      uuid: () => entry.uuid,
      sidechain: entry.isSidechain === true,
      timestamp: entry.timestamp,
      requestSessionId: entry.requestSessionId,
    },
    sessionId,
    () => line,
  );
}

/**
 * What counting reads of an assistant line whose `message.usage` is an object, each value as
 * JSON.parse gives it (a non-string where a string is expected may be any non-string: it is only
 * ever asked "is it a string"). The values read only now and then are functions, so the byte
 * path decodes them only then.
 */
interface AssistantLine {
  usage: ModelUsage;
  /** `usage.iterations`: advisor calls are their own records. */
  iterations: unknown;
  model: unknown;
  messageId: unknown;
  requestId: unknown;
  /** Read for a key without requestId, and for a fork's copy (requestSessionId set). */
  sessionId: () => unknown;
  /** Read for a line without a message id. */
  uuid: () => unknown;
  sidechain: boolean;
  timestamp: unknown;
  requestSessionId: unknown;
}

/** The keys of an assistant line that counting reads, for the byte scanner (json-scan.ts). */
const LINE_KEYS = ['type', 'message', 'requestId', 'sessionId', 'uuid', 'isSidechain', 'timestamp', 'requestSessionId'] as const;
const MESSAGE_KEYS = ['usage', 'model', 'id'] as const;
const SLOT = {
  type: LINE_KEYS.indexOf('type'),
  message: LINE_KEYS.indexOf('message'),
  requestId: LINE_KEYS.indexOf('requestId'),
  sessionId: LINE_KEYS.indexOf('sessionId'),
  uuid: LINE_KEYS.indexOf('uuid'),
  isSidechain: LINE_KEYS.indexOf('isSidechain'),
  timestamp: LINE_KEYS.indexOf('timestamp'),
  requestSessionId: LINE_KEYS.indexOf('requestSessionId'),
  usage: LINE_KEYS.length + MESSAGE_KEYS.indexOf('usage'),
  model: LINE_KEYS.length + MESSAGE_KEYS.indexOf('model'),
  id: LINE_KEYS.length + MESSAGE_KEYS.indexOf('id'),
} as const;
/**
 * The scanners, made at the first line read rather than at start-up: a command that reads no
 * transcript (`status`, `doctor`) does not build their tables.
 */
let lineScanner: LineValues | undefined;
let usageScanner: LineValues | undefined;
const ASSISTANT = Buffer.from('assistant', 'latin1');

/**
 * parseUsageLine of the line `bytes[start, end)` (UTF-8, without its `\n`), which the reader's
 * filter found holding `"usage"`: the same answer, without parsing the line's content.
 * json-scan.ts validates the line and finds the few values counting reads; only the usage object
 * is parsed. A line the scanner leaves to JSON.parse (not JSON, or unusual) is decoded and parsed
 * whole, as before.
 */
export function parseUsageBytes(bytes: Buffer, start: number, end: number, sessionId: string): LineParse {
  return new UsageLineParser(sessionId).parse(bytes, start, end, OWN_BUFFER);
}

/**
 * The values an assistant line's records are made of, besides the hook's session id and the
 * timestamp: two lines with the same text for each have the same records (but their timestamps).
 * `uuid` is not among them: a record keyed by it (no message id) is never taken from another line.
 */
const RECORD_SLOTS = [SLOT.usage, SLOT.model, SLOT.id, SLOT.requestId, SLOT.sessionId, SLOT.isSidechain, SLOT.requestSessionId];

/**
 * parseUsageBytes for the lines of one read, in order. One API response is written as one line
 * per content block, consecutive, with the same ids, model and usage (claude-code-formats.md
 * §2.1: 1.4–2.5 lines per response): a line whose values for RECORD_SLOTS are byte for byte
 * those of the last line parsed, still in the same buffer, has that line's records (with its own
 * timestamp), so they are not decoded and built again. The line itself is still scanned whole
 * (a malformed one is never taken for its neighbour).
 */
export class UsageLineParser {
  /** The last line's answer, when it had records keyed by a message id; null otherwise. */
  private last: LineParse | null = null;
  private lastChunk = OWN_BUFFER;
  private readonly lastSpans: Int32Array;

  constructor(private readonly sessionId: string) {
    lineScanner ??= new LineValues(new ScanSpec(LINE_KEYS, { message: MESSAGE_KEYS }));
    this.lastSpans = lineScanner.spec.newSpans();
  }

  /**
   * The line `bytes[start, end)`; `chunk` as the reader hands it out (OnLineBytes): a line of the
   * same chunk as the last one parsed lies in the same, unchanged buffer.
   */
  parse(bytes: Buffer, start: number, end: number, chunk: number): LineParse {
    const line = lineScanner as LineValues;
    if (!line.scan(bytes, start, end)) {
      this.last = null;
      return parseUsageLine(bytes.toString('utf8', start, end), this.sessionId, true);
    }
    // An escaped spelling of "assistant" is "assistant" too: decoded only then.
    if (!line.isString(SLOT.type, ASSISTANT) && line.string(SLOT.type) !== 'assistant') return EMPTY;
    if (!line.isObject(SLOT.message) || !line.isObject(SLOT.usage)) return EMPTY;
    const last = this.last;
    if (last !== null && chunk !== OWN_BUFFER && chunk === this.lastChunk && this.sameRecords(line)) {
      if (line.sameText(SLOT.timestamp, this.lastSpans)) return last;
      return this.remember(restamped(last, line.string(SLOT.timestamp)), line, chunk);
    }
    return this.remember(scannedRecords(line, bytes, start, end, this.sessionId), line, chunk);
  }

  private sameRecords(line: LineValues): boolean {
    for (const slot of RECORD_SLOTS) if (!line.sameText(slot, this.lastSpans)) return false;
    return true;
  }

  private remember(parsed: LineParse, line: LineValues, chunk: number): LineParse {
    const first = parsed.records[0];
    if (first === undefined || first.messageId === null) {
      this.last = null;
      return parsed;
    }
    this.last = parsed;
    this.lastChunk = chunk;
    line.saveSpans(this.lastSpans);
    return parsed;
  }
}

/** A line's records as another line's, with this line's timestamp. */
function restamped(parse: LineParse, value: unknown): LineParse {
  const timestamp = typeof value === 'string' ? value : null;
  const records = parse.records.map((r): UsageRecord => ({ key: r.key, messageId: r.messageId, sidechain: r.sidechain, model: r.model, timestamp, usage: r.usage }));
  return { records, malformed: false, syntheticUsage: null, copiedFrom: parse.copiedFrom };
}

/** The records of a line the scanner accepted as an assistant line with a usage object. */
function scannedRecords(line: LineValues, bytes: Buffer, start: number, end: number, sessionId: string): LineParse {
  const { usage, iterations } = usageOfBytes(bytes, line.startOf(SLOT.usage), line.endOf(SLOT.usage));
  return recordsOf(
    {
      usage,
      iterations,
      model: line.string(SLOT.model),
      messageId: line.string(SLOT.id),
      requestId: line.string(SLOT.requestId),
      sessionId: () => line.string(SLOT.sessionId),
      uuid: () => line.string(SLOT.uuid),
      sidechain: line.isTrue(SLOT.isSidechain),
      timestamp: line.string(SLOT.timestamp),
      requestSessionId: line.string(SLOT.requestSessionId),
    },
    sessionId,
    () => bytes.toString('utf8', start, end),
  );
}

/** The usage counters extractUsage reads, for a second scan of the usage object's bytes. */
const USAGE_KEYS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens', 'cache_creation', 'server_tool_use', 'iterations'] as const;
const USAGE_NESTED_KEYS = {
  cache_creation: ['ephemeral_5m_input_tokens', 'ephemeral_1h_input_tokens'],
  server_tool_use: ['web_search_requests'],
} as const;
const U = {
  input: USAGE_KEYS.indexOf('input_tokens'),
  output: USAGE_KEYS.indexOf('output_tokens'),
  cacheRead: USAGE_KEYS.indexOf('cache_read_input_tokens'),
  cacheCreation: USAGE_KEYS.indexOf('cache_creation_input_tokens'),
  detail: USAGE_KEYS.indexOf('cache_creation'),
  tools: USAGE_KEYS.indexOf('server_tool_use'),
  iterations: USAGE_KEYS.indexOf('iterations'),
  // The nested names' slots follow the top-level ones, in USAGE_NESTED_KEYS' order.
  c5: USAGE_KEYS.length,
  c1: USAGE_KEYS.length + 1,
  webSearch: USAGE_KEYS.length + 2,
} as const;

/**
 * extractUsage (and `iterations`) of the usage object `bytes[from, to)`, which the line's scan
 * validated, read from its bytes. Parsed after all when it holds what only the parsed object
 * answers simply: `iterations` (advisor calls), or a cache-write breakdown with more keys than
 * the two cacheWriteTokens sums today (it sums every `ephemeral_*_input_tokens`).
 */
function usageOfBytes(bytes: Buffer, from: number, to: number): { usage: ModelUsage; iterations: unknown } {
  usageScanner ??= new LineValues(new ScanSpec(USAGE_KEYS, USAGE_NESTED_KEYS));
  const v = usageScanner;
  if (!v.scan(bytes, from, to) || v.has(U.iterations) || (v.isObject(U.detail) && v.hasOtherKeys(U.detail))) {
    const parsed = JSON.parse(bytes.toString('utf8', from, to)) as Record<string, unknown>;
    return { usage: extractUsage(parsed), iterations: parsed.iterations };
  }
  // Nested names are only looked for inside an object value: absent otherwise, so 0, as extractUsage reads them.
  const c5 = count(v.number(U.c5));
  const c1 = count(v.number(U.c1));
  const usage: ModelUsage = {
    input_tokens: count(v.number(U.input)),
    output_tokens: count(v.number(U.output)),
    cache_read_tokens: count(v.number(U.cacheRead)),
    cache_write_tokens: Math.max(count(v.number(U.cacheCreation)), saturating(c5, c1)),
  };
  return { usage: withDetail(usage, { cache_write_5m_tokens: c5, cache_write_1h_tokens: c1, web_search_requests: count(v.number(U.webSearch)) }), iterations: undefined };
}

/** The records of an assistant line (`text`: the line, for the rare key made from its hash). */
function recordsOf(line: AssistantLine, sessionId: string, text: () => string): LineParse {
  const { usage } = line;
  const model = modelName(line.model);
  if (model === SYNTHETIC_MODEL) {
    return { records: [], malformed: false, syntheticUsage: isZeroUsage(usage) ? null : usage, copiedFrom: null };
  }

  const messageId = idString(line.messageId);
  const requestId = idString(line.requestId);
  let key: string;
  if (messageId !== null) {
    key = requestId !== null ? `m:${messageId}|r:${requestId}` : `m:${messageId}|s:${idString(line.sessionId()) ?? sessionId}`;
  } else {
    const uuid = idString(line.uuid());
    key = uuid !== null ? `u:${uuid}` : `h:${sha256(text())}`;
  }
  const { sidechain } = line;
  const timestamp = typeof line.timestamp === 'string' ? line.timestamp : null;

  const records: UsageRecord[] = [{ key, messageId, sidechain, model, timestamp, usage }];
  const { iterations } = line;
  if (Array.isArray(iterations)) {
    iterations.forEach((iteration: unknown, i: number) => {
      if (!isObject(iteration) || iteration.type !== 'advisor_message') return;
      const advisorModel = modelName(iteration.model);
      if (advisorModel === SYNTHETIC_MODEL) return;
      records.push({
        key: `${key}#adv${i}`,
        messageId: messageId === null ? null : `${messageId}#adv${i}`,
        sidechain,
        model: advisorModel,
        timestamp,
        usage: extractUsage(iteration),
      });
    });
  }
  return { records, malformed: false, syntheticUsage: null, copiedFrom: copiedFromOf(line) };
}

/** `requestSessionId` when it differs from the line's `sessionId` (a fork's copy); null otherwise. */
function copiedFromOf(line: AssistantLine): string | null {
  const origin = line.requestSessionId;
  if (typeof origin !== 'string' || origin.length === 0 || origin.length > MAX_ID_CHARS) return null;
  return origin === line.sessionId() ? null : origin;
}

/**
 * The `timestamp` of any entry, for `session_start_utc`. Null when the line has none; the caller
 * validates the value.
 */
export function lineTimestamp(line: string): string | null {
  if (!line.includes('"timestamp"')) return null;
  try {
    const entry: unknown = JSON.parse(line);
    return isObject(entry) && typeof entry.timestamp === 'string' ? entry.timestamp : null;
  } catch {
    return null;
  }
}

/** One group within a run: all lines of one key merged. */
export interface GroupTotal {
  key: string;
  messageId: string | null;
  /** True only when every line of the group was a sidechain line. */
  sidechain: boolean;
  model: string;
  usage: ModelUsage;
  /** Latest valid timestamp among the group's lines, in ms since the epoch; null when none. */
  lastTimestampMs: number | null;
}

/** Per groups map, the group mergeRecord touched last (only ever one of that map's own values). */
const lastMerged = new WeakMap<Map<string, GroupTotal>, GroupTotal>();

/** Folds one record into a run's groups (insertion order = first appearance). */
export function mergeRecord(groups: Map<string, GroupTotal>, record: UsageRecord, timestampMs: number | null): void {
  // The lines of one response follow each other (one per content block): the group merged last
  // is checked before the map, whose lookup hashes the key afresh (a first read: 80k+ lines).
  const last = lastMerged.get(groups);
  const existing = last !== undefined && last.key === record.key ? last : groups.get(record.key);
  if (existing === undefined) {
    const group: GroupTotal = {
      key: record.key,
      messageId: record.messageId,
      sidechain: record.sidechain,
      model: record.model,
      usage: record.usage,
      lastTimestampMs: timestampMs,
    };
    groups.set(record.key, group);
    lastMerged.set(groups, group);
    return;
  }
  lastMerged.set(groups, existing);
  if (!sameUsage(existing.usage, record.usage)) existing.usage = maxUsage(existing.usage, record.usage);
  existing.sidechain = existing.sidechain && record.sidechain;
  if (existing.messageId === null) existing.messageId = record.messageId;
  if (timestampMs !== null && (existing.lastTimestampMs === null || timestampMs > existing.lastTimestampMs)) {
    existing.lastTimestampMs = timestampMs;
  }
}

/** What the ledger knows about a key: the maximum reported so far (see ledger.ts). */
export interface CountedEntry {
  key: string;
  messageId: string | null;
  sidechain: boolean;
  usage: ModelUsage;
  /** The session that first counted it, when known. */
  sessionId?: string;
}

export type GroupDecision =
  | { kind: 'replay' }
  | { kind: 'count'; delta: ModelUsage; /** the new ledger value for the key */ record: ModelUsage };

/**
 * Decides what a group adds, given what was already counted under its own key (`own`) and under
 * other keys of the same message id (`sameMessage`, which excludes `own`).
 *
 * - A sidechain group whose message id was already counted under another key is a replay (/btw
 *   sidechains replay parent messages under a new requestId): it adds nothing.
 * - A non-sidechain group whose message id was counted first from a sidechain line (the replay was
 *   read before its parent) is credited with what that sidechain line already reported, so the
 *   message counts once whatever order the files are read in. Only the first non-sidechain key of a
 *   message gets that credit.
 * - Otherwise the delta over `own`. The recorded value includes the credit, so the ledger value of a
 *   key is always the total reported for it.
 */
export function decideGroup(group: GroupTotal, own: CountedEntry | undefined, sameMessage: readonly CountedEntry[]): GroupDecision {
  // Nothing counted before (every group of a first read): the group's usage is both the record
  // and the delta, as the general path below computes it, without its four new objects per group.
  if (own === undefined && sameMessage.length === 0 && splitWithinWrites(group.usage)) {
    return { kind: 'count', delta: group.usage, record: group.usage };
  }
  let base = own?.usage ?? zeroUsage();
  if (group.messageId !== null && sameMessage.length > 0) {
    if (group.sidechain) return { kind: 'replay' };
    const otherParents = sameMessage.some((e) => !e.sidechain);
    if (!otherParents) {
      for (const e of sameMessage) base = maxUsage(base, e.usage);
    }
  }
  const record = maxUsage(group.usage, base);
  return { kind: 'count', delta: deltaOver(record, base), record };
}
