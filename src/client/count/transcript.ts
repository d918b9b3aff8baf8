/**
 * Incremental reader of one JSONL transcript. From a cursor it reads the new bytes in chunks and
 * hands out complete lines only: the cursor moves to just after the last `\n`, so a half-written
 * last line (Claude Code writes asynchronously) is read again, whole, next time. Memory is bounded
 * by the chunk size plus the longest line kept (lines over `maxLineBytes` are skipped).
 *
 * A file that shrank below the cursor, whose inode changed, or whose first bytes no longer hash to
 * the cursor's `headHash` was rewritten (compaction, resume): it is re-read from 0 and the ledger
 * keeps groups from being reported twice.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
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

/**
 * Reads the complete lines after `cursor` (from 0 when undefined) and calls `onLine` with each,
 * decoded as UTF-8 (invalid bytes become U+FFFD), without its `\n` (nor a trailing `\r`).
 * A missing file yields no lines and a null cursor; it is not an error.
 */
export async function readNewLines(
  path: string,
  cursor: FileCursor | undefined,
  onLine: (line: string) => void,
  options: ReadOptions = {},
): Promise<ReadResult> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const result: ReadResult = { cursor: null, restarted: false, lines: 0, bytes: 0, skippedLongLines: 0 };
  let handle: FileHandle;
  try {
    // Regular files only, opened without blocking (a FIFO must not stall the worker): safe-files.ts.
    const opened = await openRegularFile(path);
    if (opened === null) {
      options.log?.error(`transcript is not a regular file, skipped: ${path}`);
      return result;
    }
    handle = opened;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return result;
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      options.log?.error(`transcript is not a regular file, skipped: ${path}`);
      return result;
    }
    let start = cursor?.offset ?? 0;
    if (cursor !== undefined && start > 0) {
      const rewritten = st.size < start || st.ino !== cursor.ino || (await headHash(handle, start)) !== cursor.headHash;
      if (rewritten) {
        options.log?.activity(`transcript rewritten, re-reading from the start: ${path}`);
        result.restarted = true;
        start = 0;
      }
    }

    // The current line: pieces of earlier chunks not yet ended by a `\n`.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let skipping = false; // inside a line longer than maxLineBytes
    let position = start;
    let consumed = start; // just after the last `\n` seen
    const chunk = Buffer.alloc(chunkBytes);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunkBytes, position);
      if (bytesRead === 0) break;
      let lineStart = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, lineStart);
        if (nl === -1 || nl >= bytesRead) break;
        if (skipping) {
          skipping = false;
        } else if (pendingBytes + (nl - lineStart) > maxLineBytes) {
          result.skippedLongLines++;
        } else {
          const piece = chunk.subarray(lineStart, nl);
          const bytes = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece], pendingBytes + piece.length);
          let end = bytes.length;
          if (end > 0 && bytes[end - 1] === 0x0d) end--;
          result.lines++;
          onLine(bytes.toString('utf8', 0, end));
        }
        pending = [];
        pendingBytes = 0;
        consumed = position + nl + 1;
        lineStart = nl + 1;
      }
      if (lineStart < bytesRead && !skipping) {
        const restBytes = bytesRead - lineStart;
        if (pendingBytes + restBytes > maxLineBytes) {
          // Too long to ever hand out: drop what we hold and skip to the next `\n`.
          skipping = true;
          result.skippedLongLines++;
          pending = [];
          pendingBytes = 0;
        } else {
          // Copy: `chunk` is reused for the next read.
          pending.push(Buffer.from(chunk.subarray(lineStart, bytesRead)));
          pendingBytes += restBytes;
        }
      }
      position += bytesRead;
    }
    if (result.skippedLongLines > 0) {
      options.log?.error(`skipped ${result.skippedLongLines} line(s) over ${maxLineBytes} bytes in ${path}`);
    }
    result.bytes = consumed - start;
    const size = Math.max(position, st.size);
    const previousHash = cursor?.headHash;
    const hash =
      !result.restarted && cursor !== undefined && previousHash !== undefined && cursor.offset >= HEAD_HASH_BYTES
        ? previousHash
        : await headHash(handle, consumed);
    result.cursor = { offset: consumed, size, ino: st.ino, headHash: hash };
    return result;
  } finally {
    await handle.close();
  }
}
