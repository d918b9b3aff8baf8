/**
 * The durable queue of report bodies awaiting delivery, oldest first, behind a small store
 * interface with two implementations that pass one contract test (test/unit/queue.test.ts):
 * `pending_reports.jsonl` on disk (the Rust version's format: one body per line) and an in-memory
 * one for tests.
 *
 * Concurrency: the fs store's mutations (append, removeFirst, remove) read, modify and atomically
 * rewrite the file; across processes that is only safe while the caller holds the state lock
 * (`withLock(paths.stateLock, …)`). `list` and `size` read without it (a rewrite is a rename, so a
 * reader sees the old or the new file, never half of one).
 *
 * Nothing is dropped silently: a line that is not a valid report is moved to
 * `rejected_reports.jsonl` (with a log line) by the next mutation; a full queue drops its oldest
 * entries (beyond DEFAULT_QUEUE_MAX_BYTES) with a logged count.
 */
import { stat } from '../local/fs';
import { formatTimestamp, type ReportBody, validateReport } from '../../protocol/wire';
import { appendDurable, readTextIfExists, writeFileAtomic } from '../local/fsx';
import { type Logger, nullLogger } from '../local/log';
import type { StatePaths } from '../local/paths';

/**
 * The queue is bounded by size, not by count: 10 MiB holds 20,000+ ordinary reports (a one-model
 * report is ~350 bytes, a three-model one ~700), more than a week offline at 100 turns a day
 * many times over. Beyond it the oldest are dropped with a logged count; crossing
 * `QUEUE_WARN_FRACTION` of it is logged once on the way up.
 */
export const DEFAULT_QUEUE_MAX_BYTES = 10 * 1024 * 1024;
export const QUEUE_WARN_FRACTION = 0.8;
/** The receiver refuses bodies over 64 KiB; a longer line cannot be a report we wrote. */
export const MAX_QUEUE_LINE_BYTES = 64 * 1024;
/** rejected_reports.jsonl keeps its newer half when it grows past this. */
export const REJECTED_CAP_BYTES = 1024 * 1024;
/** How much of an unreadable line is kept in rejected_reports.jsonl. */
const REJECTED_LINE_EXCERPT_CHARS = 4096;

/** A report's identity in the queue (the receiver is idempotent on it, per model). */
export type QueueKey = Pick<ReportBody, 'session_id' | 'turn_index'>;

export interface QueueStore {
  /** Every queued report, oldest first. */
  list(): Promise<ReportBody[]>;
  /** Adds at the end; a no-op when the same (session_id, turn_index) is already queued. Drops the oldest beyond the bound. */
  append(report: ReportBody): Promise<void>;
  /** Removes the `n` oldest (all of them when `n` ≥ size). */
  removeFirst(n: number): Promise<void>;
  /**
   * Removes the entries with these keys, wherever they are. The deliverer uses this rather than
   * `removeFirst` so that an entry dropped meanwhile by a full queue cannot make it remove an
   * undelivered neighbour.
   */
  remove(keys: readonly QueueKey[]): Promise<void>;
  size(): Promise<number>;
}

export function sameReport(a: QueueKey, b: QueueKey): boolean {
  return a.session_id === b.session_id && a.turn_index === b.turn_index;
}

export interface QueueBounds {
  /** Total bytes of `pending_reports.jsonl` (default DEFAULT_QUEUE_MAX_BYTES). */
  maxBytes?: number;
  /** An extra bound by count (tests); none by default. */
  maxEntries?: number;
}

const lineBytes = (report: ReportBody) => Buffer.byteLength(JSON.stringify(report)) + 1;

function appendBounded(reports: ReportBody[], report: ReportBody, bounds: QueueBounds, log: Logger): ReportBody[] | null {
  if (reports.some((queued) => sameReport(queued, report))) return null;
  const next = [...reports, report];
  const maxBytes = Math.max(1, bounds.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES);
  const sizes = next.map(lineBytes);
  let total = sizes.reduce((a, b) => a + b, 0);
  const before = total - (sizes[sizes.length - 1] as number);
  let excess = Math.max(0, next.length - Math.max(1, bounds.maxEntries ?? Number.POSITIVE_INFINITY));
  for (let i = 0; i < excess; i++) total -= sizes[i] as number;
  // The newest report always stays: it is the one whose offsets have just moved.
  while (total > maxBytes && excess < next.length - 1) total -= sizes[excess++] as number;
  const warnAt = maxBytes * QUEUE_WARN_FRACTION;
  if (excess === 0 && before < warnAt && total >= warnAt) {
    log.error(
      `report queue at ${Math.round((total / maxBytes) * 100)}% of its ${formatBytes(maxBytes)} bound (${next.length} reports): deliveries are not getting through; the oldest are dropped beyond the bound`,
    );
  }
  if (excess === 0) return next;
  log.error(`report queue full (${formatBytes(maxBytes)}${bounds.maxEntries ? ` or ${bounds.maxEntries} entries` : ''}): dropped the ${excess} oldest report(s) undelivered`);
  return next.slice(excess);
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB` : `${Math.round(bytes / 1024)} KB`;
}

function removeKeys(reports: ReportBody[], keys: readonly QueueKey[]): ReportBody[] {
  return reports.filter((queued) => !keys.some((key) => sameReport(queued, key)));
}

interface ParsedQueue {
  reports: ReportBody[];
  /** Raw lines that are not valid reports. */
  unreadable: string[];
}

/** Splits a queue file into valid reports and unreadable lines. Pure. */
export function parseQueueText(text: string): ParsedQueue {
  const reports: ReportBody[] = [];
  const unreadable: string[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') continue;
    if (Buffer.byteLength(line) > MAX_QUEUE_LINE_BYTES) {
      unreadable.push(line);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      unreadable.push(line);
      continue;
    }
    const valid = validateReport(parsed);
    if (valid.ok) reports.push(valid.value);
    else unreadable.push(line);
  }
  return { reports, unreadable };
}

/** Whether a queued line has this report's (session_id, turn_index); parses only lines naming the session. */
function holdsReport(text: string, key: QueueKey): boolean {
  const needle = `"session_id":${JSON.stringify(key.session_id)}`;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    try {
      const queued = JSON.parse(text.slice(start, end === -1 ? undefined : end)) as Partial<QueueKey>;
      if (queued.session_id === key.session_id && queued.turn_index === key.turn_index) return true;
    } catch {
      // an unreadable line is no duplicate; the next rewrite moves it to rejected_reports.jsonl
    }
  }
  return false;
}

function serialize(reports: readonly ReportBody[]): string {
  return reports.map((report) => `${JSON.stringify(report)}\n`).join('');
}

export interface FsQueueOptions extends QueueBounds {
  log: Logger;
  now?: () => Date;
}

/** `pending_reports.jsonl`. Callers of append/removeFirst/remove hold the state lock (see top). */
export function createFsQueue(paths: Pick<StatePaths, 'queue' | 'rejected'>, options: FsQueueOptions): QueueStore {
  const log = options.log;
  const bounds: QueueBounds = { maxBytes: options.maxBytes, maxEntries: options.maxEntries };
  const now = options.now ?? (() => new Date());

  const read = async (): Promise<ParsedQueue> => parseQueueText((await readTextIfExists(paths.queue)) ?? '');

  /** Rewrites the queue as `reports`; unreadable lines go to the rejected file first, so a crash between the two duplicates them rather than losing them. */
  const rewrite = async (parsed: ParsedQueue, reports: ReportBody[] | null): Promise<void> => {
    if (parsed.unreadable.length > 0) {
      const at = formatTimestamp(now());
      const lines = parsed.unreadable.map(
        (line) =>
          `${JSON.stringify({
            rejected_at: at,
            reason: 'unreadable queue line',
            line: line.slice(0, REJECTED_LINE_EXCERPT_CHARS),
            line_bytes: Buffer.byteLength(line),
          })}\n`,
      );
      await appendDurable(paths.rejected, lines.join(''));
      log.error(`report queue: moved ${parsed.unreadable.length} unreadable line(s) to rejected_reports.jsonl`);
      await capRejected(paths, log);
    }
    if (reports !== null || parsed.unreadable.length > 0) {
      await writeFileAtomic(paths.queue, serialize(reports ?? parsed.reports));
    }
  };

  return {
    list: async () => (await read()).reports,
    size: async () => (await read()).reports.length,
    append: async (report) => {
      // Fast path, the usual case even with a long backlog: far from the bound and not queued yet,
      // the line is appended (fsync) instead of the file rewritten. Only lines of the same session
      // are parsed for the duplicate check.
      const text = (await readTextIfExists(paths.queue)) ?? '';
      const line = `${JSON.stringify(report)}\n`;
      const maxBytes = bounds.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
      const roomy = Buffer.byteLength(text) + Buffer.byteLength(line) < maxBytes * QUEUE_WARN_FRACTION;
      if (bounds.maxEntries === undefined && roomy && (text === '' || text.endsWith('\n')) && !holdsReport(text, report)) {
        await appendDurable(paths.queue, line);
        return;
      }
      const parsed = parseQueueText(text);
      await rewrite(parsed, appendBounded(parsed.reports, report, bounds, log));
    },
    removeFirst: async (n) => {
      const parsed = await read();
      const count = Math.max(0, Math.min(Math.floor(n), parsed.reports.length));
      await rewrite(parsed, count === 0 ? null : parsed.reports.slice(count));
    },
    remove: async (keys) => {
      const parsed = await read();
      const kept = removeKeys(parsed.reports, keys);
      await rewrite(parsed, kept.length === parsed.reports.length ? null : kept);
    },
  };
}

/** The same contract in memory (tests; callers that must not touch the disk). Stores copies. */
export function createMemoryQueue(options: QueueBounds & { log?: Logger; initial?: readonly ReportBody[] } = {}): QueueStore {
  const log = options.log ?? nullLogger;
  const bounds: QueueBounds = { maxBytes: options.maxBytes, maxEntries: options.maxEntries };
  let reports: ReportBody[] = (options.initial ?? []).map((report) => structuredClone(report));
  return {
    list: async () => reports.map((report) => structuredClone(report)),
    size: async () => reports.length,
    append: async (report) => {
      reports = appendBounded(reports, structuredClone(report), bounds, log) ?? reports;
    },
    removeFirst: async (n) => {
      reports = reports.slice(Math.max(0, Math.floor(n)));
    },
    remove: async (keys) => {
      reports = removeKeys(reports, keys);
    },
  };
}

/**
 * Appends a report the receiver can never accept (400/413) to `rejected_reports.jsonl`, durably,
 * as `{"rejected_at","reason","report"}`. Callers hold the state lock and remove the report from
 * the queue afterwards (a crash in between duplicates it here, never loses it).
 */
export async function moveToRejected(
  paths: Pick<StatePaths, 'rejected'>,
  report: ReportBody,
  reason: string,
  options: { now?: Date; log?: Logger } = {},
): Promise<void> {
  const entry = { rejected_at: formatTimestamp(options.now ?? new Date()), reason, report };
  await appendDurable(paths.rejected, `${JSON.stringify(entry)}\n`);
  await capRejected(paths, options.log ?? nullLogger);
}

async function capRejected(paths: Pick<StatePaths, 'rejected'>, log: Logger): Promise<void> {
  const size = (await stat(paths.rejected)).size;
  if (size <= REJECTED_CAP_BYTES) return;
  const text = (await readTextIfExists(paths.rejected)) ?? '';
  const keepFrom = text.indexOf('\n', text.length - Math.floor(REJECTED_CAP_BYTES / 2));
  const kept = keepFrom === -1 ? '' : text.slice(keepFrom + 1);
  const dropped = text.slice(0, text.length - kept.length).split('\n').filter(Boolean).length;
  await writeFileAtomic(paths.rejected, kept);
  log.error(`rejected_reports.jsonl over ${REJECTED_CAP_BYTES} bytes: dropped its ${dropped} oldest entr(ies)`);
}
