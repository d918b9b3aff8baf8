/**
 * Incremental reader of one JSONL transcript. From a cursor it reads the new bytes in fixed-size
 * chunks and hands out complete lines only: the cursor moves to just after the last `\n`, so a
 * half-written last line (Claude Code writes asynchronously) is read again, whole, next time.
 * Memory is bounded by the chunk size plus the longest line kept (lines over `maxLineBytes` are
 * skipped). Lines are cut on the byte 0x0a, which never occurs inside a multi-byte UTF-8
 * character, and a line spanning chunks is joined before it is decoded.
 *
 * Most lines of a transcript are not usage (prompts, tool results, attachments, whole request
 * blobs). A `LineMatcher` looks for marker bytes in the raw chunk and only lines holding all the
 * markers of one of its rules are decoded and handed out; the others are counted and skipped
 * without ever becoming a string.
 *
 * A file that shrank below the cursor, whose inode changed, or whose first bytes no longer hash to
 * the cursor's `headHash` was rewritten (compaction, resume): it is re-read from 0 and the ledger
 * keeps groups from being reported twice.
 */
import { createHash } from 'node:crypto';
import { readSync, type Stats } from 'node:fs';
import type { FileHandle } from '../local/fs';
import type { Logger } from '../local/log';
import { openRegularFile } from './safe-files';

export const CHUNK_BYTES = 1024 * 1024;
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
export const HEAD_HASH_BYTES = 4096;

export interface FileCursor {
  /** Bytes consumed: always just after a `\n` (or 0). */
  offset: number;
  /** File size when last read. */
  size: number;
  ino: number;
  /** sha256 (hex) of the first min(offset, 4096) bytes. */
  headHash: string;
}

export interface ReadResult {
  /** The new cursor; null when the file does not exist (or is not a regular file). */
  cursor: FileCursor | null;
  /** The file was rewritten and re-read from 0. */
  restarted: boolean;
  lines: number;
  /** Bytes of complete lines consumed in this read. */
  bytes: number;
  skippedLongLines: number;
}

export interface ReadOptions {
  log?: Logger;
  chunkBytes?: number;
  maxLineBytes?: number;
  /** Only lines it accepts reach `onLine` (all lines do when absent). */
  matcher?: LineMatcher;
}

/**
 * Called with each line handed out and the rules it matched (a bit mask, bit r for the matcher's
 * rule r; every bit set when there is no matcher or it lets everything through).
 */
export type OnLine = (line: string, rules: number) => void;

/**
 * OnLine for a caller that reads the raw bytes: the line is `bytes[start, end)` (UTF-8, without
 * its `\n` nor a trailing `\r`). `chunk` numbers the read's chunks: the lines of one chunk share
 * `bytes`, unchanged from the chunk's first line to its last, and an earlier line of the same
 * chunk may be looked at again while a later one is handed out. `bytes` is otherwise only valid
 * during the call (the reader reuses it for the next chunk). A line that spanned chunks comes in
 * a buffer of its own, with `chunk` OWN_BUFFER.
 */
export type OnLineBytes = (bytes: Buffer, start: number, end: number, rules: number, chunk: number) => void;

/** OnLineBytes' `chunk` for a line in a buffer of its own. */
export const OWN_BUFFER = -1;

/** Every bit set: the line was not filtered (no matcher, or `everything`). */
export const ALL_RULES = -1;

/**
 * Which raw lines are worth decoding: a line matches when it contains every marker of at least
 * one rule (markers are plain byte strings without `\n`). `everything` turns the filter off, for
 * as long as the caller needs to see every line.
 *
 * A marker's next occurrence in the current chunk is searched once and remembered, and searches
 * only move forward, so a marker costs at most one pass over a chunk however many lines it holds;
 * a rule's first marker is looked for in every line, the others only in lines holding it. A
 * search looks for the marker's *anchor* (`anchorOf`), a tail of it that starts with a byte rare
 * in transcripts, and then checks the bytes before it: `indexOf` stops at each occurrence of the
 * pattern's first byte, and a leading `"` (every JSON string has two) made the scan for `"usage"`
 * several times slower than for `usage"`.
 */
export class LineMatcher {
  everything = false;
  /** Per rule, its markers. */
  private readonly rules: Marker[][];
  /**
   * Per rule and marker: where its anchor next occurs in the chunk at or after the last search
   * (searches only move forward, so each marker costs at most one pass over a chunk, whatever
   * its lines hold).
   */
  private readonly next: number[][];
  private chunk: Buffer | null = null;
  private limit = 0;

  constructor(rules: readonly (readonly string[])[]) {
    this.rules = rules.map((rule) => rule.map(toMarker));
    this.next = this.rules.map((rule) => rule.map(() => -1));
  }

  /** A new chunk's bytes are `buf[0, length)`: forget positions found in the old one. */
  startChunk(buf: Buffer, length: number): void {
    this.chunk = buf;
    this.limit = length;
    for (const row of this.next) row.fill(-1);
  }

  /**
   * The rules the line `chunk[start, end)` (of the chunk given to startChunk) matches, as a bit
   * mask (bit r: rule r); 0 when none. Every rule is tested, so the caller knows which parser a
   * line needs (a rule's cached search makes the test of a line far from its marker cheap).
   */
  rulesInChunk(start: number, end: number): number {
    if (this.everything) return ALL_RULES;
    const chunk = this.chunk;
    if (chunk === null) return 0;
    let mask = 0;
    for (let r = 0; r < this.rules.length; r++) {
      const rule = this.rules[r] as Marker[];
      const next = this.next[r] as number[];
      // The first marker is looked for in every line; the others only in a line holding it.
      let all = true;
      for (let m = 0; m < rule.length && all; m++) all = this.holdsInChunk(chunk, start, end, rule[m] as Marker, next, m);
      if (all) mask |= 1 << r;
    }
    return mask;
  }

  /** Whether `chunk[start, end)` holds the whole marker; `next[m]` remembers where its anchor next occurs. */
  private holdsInChunk(chunk: Buffer, start: number, end: number, marker: Marker, next: number[], m: number): boolean {
    let search = start + marker.offset;
    for (;;) {
      let at = next[m] as number;
      if (at < search) {
        at = chunk.indexOf(marker.anchor, search);
        // Bytes past `limit` are left over from an earlier read: never a match.
        if (at === -1 || at + marker.anchor.length > this.limit) at = Number.POSITIVE_INFINITY;
        next[m] = at;
      }
      if (at + marker.anchor.length > end) return false;
      if (hasPrefixAt(chunk, at, start, marker)) return true;
      search = at + 1;
    }
  }

  /** The rules a line held in its own buffer (one that spanned chunks) matches, as for rulesInChunk. */
  rulesInBytes(line: Buffer): number {
    if (this.everything) return ALL_RULES;
    let mask = 0;
    this.rules.forEach((rule, r) => {
      if (rule.every((marker) => line.indexOf(marker.bytes) !== -1)) mask |= 1 << r;
    });
    return mask;
  }
}

/** A marker, and the tail of it (`anchor`, from byte `offset` on) that searches look for. */
interface Marker {
  bytes: Buffer;
  anchor: Buffer;
  offset: number;
}

function toMarker(text: string): Marker {
  const bytes = Buffer.from(text, 'utf8');
  const anchor = Buffer.from(anchorOf(text), 'utf8');
  return { bytes, anchor, offset: bytes.length - anchor.length };
}

/** Whether the anchor found at `at` is preceded by the rest of its marker, inside the line starting at `lineStart`. */
function hasPrefixAt(buf: Buffer, at: number, lineStart: number, m: Marker): boolean {
  const from = at - m.offset;
  if (from < lineStart) return false;
  for (let k = 0; k < m.offset; k++) if (buf[from + k] !== m.bytes[k]) return false;
  return true;
}

/**
 * The tail of `marker` a forward scan looks for: the longest one (at least 5 bytes, or the whole
 * marker when shorter) starting at the byte least frequent in transcript text, by a fixed ranking
 * — punctuation other than `"` first, then letters rare in English, then `"`. `"usage"` → `usage"`,
 * `"cost-state"` → `-state"`. Any tail serves: a line holding the marker holds every tail of it.
 */
export function anchorOf(marker: string): string {
  const rank = (c: string): number => {
    if (c === '"') return 100;
    if (/[0-9 ]/.test(c)) return 50;
    const letter = 'etaoinsrhldcumfpgwybvkxjqz'.indexOf(c.toLowerCase());
    return letter === -1 ? -1 : 26 - letter;
  };
  let best = 0;
  for (let i = 1; i + 5 <= marker.length; i++) if (rank(marker[i] as string) < rank(marker[best] as string)) best = i;
  return marker.slice(best);
}

export const EMPTY_HEAD_HASH = createHash('sha256').digest('hex');

async function readAt(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

async function headHash(handle: FileHandle, offset: number): Promise<string> {
  const n = Math.min(offset, HEAD_HASH_BYTES);
  if (n === 0) return EMPTY_HEAD_HASH;
  return createHash('sha256').update(await readAt(handle, n, 0)).digest('hex');
}

/** Opens `path` for reading, or null when it is missing or not a regular file (logged). */
async function openTranscript(path: string, log: Logger | undefined): Promise<FileHandle | null> {
  try {
    // Regular files only, opened without blocking (a FIFO must not stall the worker): safe-files.ts.
    const opened = await openRegularFile(path);
    if (opened === null) log?.error(`transcript is not a regular file, skipped: ${path}`);
    return opened;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Where to read from: the cursor's offset, or 0 when the file was rewritten since (noted in `result`). */
async function startOffset(
  handle: FileHandle,
  st: Stats,
  cursor: FileCursor | undefined,
  path: string,
  log: Logger | undefined,
  result: ReadResult,
): Promise<number> {
  const start = cursor?.offset ?? 0;
  if (cursor !== undefined && start > 0) {
    const rewritten = st.size < start || st.ino !== cursor.ino || (await headHash(handle, start)) !== cursor.headHash;
    if (rewritten) {
      log?.activity(`transcript rewritten, re-reading from the start: ${path}`);
      result.restarted = true;
      return 0;
    }
  }
  return start;
}

/** Hands out `bytes[from, to)` without a trailing `\r`. */
function emitLine(onLine: OnLineBytes, bytes: Buffer, from: number, to: number, rules: number, chunk: number): void {
  let end = to;
  if (end > from && bytes[end - 1] === 0x0d) end--;
  onLine(bytes, from, end, rules, chunk);
}

/**
 * Cuts consecutive chunks into lines and hands out the complete ones the matcher accepts; the
 * unfinished last line of a chunk is kept (copied) until a later chunk ends it.
 */
class LineSplitter {
  /** The current line: pieces of earlier chunks not yet ended by a `\n`. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside a line longer than maxLineBytes. */
  private skipping = false;
  /** The number of the chunk being cut (OnLineBytes' `chunk`). */
  private chunkNumber = 0;

  constructor(
    /** Just after the last `\n` seen. */
    public consumed: number,
    private readonly onLine: OnLineBytes,
    private readonly matcher: LineMatcher | undefined,
    private readonly maxLineBytes: number,
    private readonly result: ReadResult,
  ) {}

  /** The chunk's bytes are `chunk[0, bytesRead)`, read at file offset `position`. */
  feed(chunk: Buffer, bytesRead: number, position: number): void {
    this.matcher?.startChunk(chunk, bytesRead);
    this.chunkNumber++;
    const lineStart = this.completeLines(chunk, bytesRead, position);
    if (lineStart < bytesRead && !this.skipping) this.keepRest(chunk, lineStart, bytesRead);
  }

  /** The lines the chunk ends; returns where the unfinished rest starts. The hot loop: all locals. */
  private completeLines(chunk: Buffer, bytesRead: number, position: number): number {
    const { onLine, matcher, maxLineBytes, result, chunkNumber } = this;
    let { pending, pendingBytes, skipping, consumed } = this;
    let lineStart = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, lineStart);
      if (nl === -1 || nl >= bytesRead) break;
      if (skipping) {
        skipping = false;
      } else if (pendingBytes + (nl - lineStart) > maxLineBytes) {
        result.skippedLongLines++;
      } else if (pendingBytes === 0) {
        result.lines++;
        const rules = matcher === undefined ? ALL_RULES : matcher.rulesInChunk(lineStart, nl);
        if (rules !== 0) emitLine(onLine, chunk, lineStart, nl, rules, chunkNumber);
      } else {
        const bytes = Buffer.concat([...pending, chunk.subarray(lineStart, nl)], pendingBytes + (nl - lineStart));
        result.lines++;
        const rules = matcher === undefined ? ALL_RULES : matcher.rulesInBytes(bytes);
        if (rules !== 0) emitLine(onLine, bytes, 0, bytes.length, rules, OWN_BUFFER);
      }
      pending = [];
      pendingBytes = 0;
      consumed = position + nl + 1;
      lineStart = nl + 1;
    }
    this.pending = pending;
    this.pendingBytes = pendingBytes;
    this.skipping = skipping;
    this.consumed = consumed;
    return lineStart;
  }

  /** Holds `chunk[lineStart, bytesRead)`, the start of a line a later chunk ends. */
  private keepRest(chunk: Buffer, lineStart: number, bytesRead: number): void {
    const restBytes = bytesRead - lineStart;
    if (this.pendingBytes + restBytes > this.maxLineBytes) {
      // Too long to ever hand out: drop what we hold and skip to the next `\n`.
      this.skipping = true;
      this.result.skippedLongLines++;
      this.pending = [];
      this.pendingBytes = 0;
    } else {
      // Copy: `chunk` is reused for the next read.
      this.pending.push(Buffer.from(chunk.subarray(lineStart, bytesRead)));
      this.pendingBytes += restBytes;
    }
  }
}

/** Reads from `start` to the end of the file in chunks; returns the offset reached. */
function readChunks(handle: FileHandle, start: number, chunkBytes: number, splitter: LineSplitter): number {
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let position = start;
  for (;;) {
    // A synchronous read of the next chunk: the worker has nothing else to do meanwhile, and a
    // page-cache read is far cheaper than a round trip through libuv's thread pool (which a
    // busy machine can leave waiting; half a cold read's time in a profile).
    const bytesRead = readSync(handle.fd, chunk, 0, chunkBytes, position);
    if (bytesRead === 0) break;
    splitter.feed(chunk, bytesRead, position);
    position += bytesRead;
  }
  return position;
}

/** The cursor after a read that consumed up to `consumed` and reached `position`. */
async function nextCursor(
  handle: FileHandle,
  st: Stats,
  cursor: FileCursor | undefined,
  restarted: boolean,
  consumed: number,
  position: number,
): Promise<FileCursor> {
  const size = Math.max(position, st.size);
  const previousHash = cursor?.headHash;
  const hash =
    !restarted && cursor !== undefined && previousHash !== undefined && cursor.offset >= HEAD_HASH_BYTES
      ? previousHash
      : await headHash(handle, consumed);
  return { offset: consumed, size, ino: st.ino, headHash: hash };
}

/**
 * Reads the complete lines after `cursor` (from 0 when undefined) and calls `onLine` with each,
 * decoded as UTF-8 (invalid bytes become U+FFFD), without its `\n` (nor a trailing `\r`), and the
 * matcher's rules it matched. A missing file yields no lines and a null cursor; it is not an error.
 */
export function readNewLines(path: string, cursor: FileCursor | undefined, onLine: OnLine, options: ReadOptions = {}): Promise<ReadResult> {
  return readNewLineBytes(path, cursor, (bytes, start, end, rules) => onLine(bytes.toString('utf8', start, end), rules), options);
}

/** readNewLines handing out each line's raw bytes (OnLineBytes): no string for a line the caller need not decode. */
export async function readNewLineBytes(
  path: string,
  cursor: FileCursor | undefined,
  onLine: OnLineBytes,
  options: ReadOptions = {},
): Promise<ReadResult> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const result: ReadResult = { cursor: null, restarted: false, lines: 0, bytes: 0, skippedLongLines: 0 };
  const handle = await openTranscript(path, options.log);
  if (handle === null) return result;
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      options.log?.error(`transcript is not a regular file, skipped: ${path}`);
      return result;
    }
    const start = await startOffset(handle, st, cursor, path, options.log, result);
    const splitter = new LineSplitter(start, onLine, options.matcher, maxLineBytes, result);
    const position = readChunks(handle, start, chunkBytes, splitter);
    if (result.skippedLongLines > 0) {
      options.log?.error(`skipped ${result.skippedLongLines} line(s) over ${maxLineBytes} bytes in ${path}`);
    }
    result.bytes = splitter.consumed - start;
    result.cursor = await nextCursor(handle, st, cursor, result.restarted, splitter.consumed, position);
    return result;
  } finally {
    await handle.close();
  }
}
