/**
 * Settle before reading. Claude Code runs Stop hooks before the turn's final lines are on disk: in
 * interactive sessions the final response lands ~100-170 ms after the hook starts, written together
 * with the `system` line `stop_hook_summary` (then `turn_duration`) once the hooks finish
 * (claude-code-formats.md §8.4). A worker that read at once would report the final response one
 * hook late, and a session killed right after its last Stop would hold it until that profile next
 * runs Claude Code. So on Stop/SubagentStop the detached worker waits, bounded, until the turn's
 * closing line follows its last assistant and user lines (bookkeeping lines such as `last-prompt` and
 * `cost-state` may come after it), then reads. Only lines past the session's committed cursor count:
 * the previous turn's `turn_duration` lands after that turn's worker has read its
 * `stop_hook_summary`, and when a quick turn's lines are not on disk yet at its Stop, that old
 * closing line is the file's last and would close a turn that has not been written (seen on the
 * real client: the turn was then reported by nobody). A transcript that has never had a closing line
 * (older versions, subagent files, a session's first turn) is taken as settled once it has stopped
 * growing for SETTLE_QUIET_MILLIS. Claude Code does not wait for this: the hook has already returned.
 *
 * `settleDecision` is pure; `waitForSettle` polls through injected `now`, `sleep` and `probe`.
 */
import { constants } from 'node:fs';
import { open } from '../local/fs';

/** The longest a worker waits before reading anyway. */
export const SETTLE_MAX_MILLIS = 2_000;
/** A transcript that has not grown for this long is taken as settled (versions without the closing line). */
export const SETTLE_QUIET_MILLIS = 300;
export const SETTLE_POLL_MILLIS = 25;
/** Bytes read from the end of the file to find its last line and earlier closing lines. */
const TAIL_BYTES = 64 * 1024;

/** The system lines Claude Code writes after the Stop hooks, behind the turn's final response. */
const CLOSING_LINE = /"type"\s*:\s*"system"[^\n]*"subtype"\s*:\s*"(?:stop_hook_summary|turn_duration)"|"subtype"\s*:\s*"(?:stop_hook_summary|turn_duration)"[^\n]*"type"\s*:\s*"system"/;

export interface Probe {
  /** File size; null when the file does not exist. */
  size: number;
  /** A closing line follows the turn's last assistant or user line (see `closesTurn`). */
  closed: boolean;
  /** A closing line appears somewhere in the tail: this Claude Code writes them, so wait for one. */
  closingSeen: boolean;
}

export type SettleReason = 'closing-line' | 'quiet' | 'bound' | 'no-file';

export interface SettleState {
  startedAt: number;
  /** Size last seen and when it last changed. */
  lastSize: number | null;
  changedAt: number;
}

/** What one probe means: done (and why) or keep waiting. Pure. */
export function settleDecision(state: SettleState, probe: Probe | null, now: number): SettleReason | null {
  if (probe === null) return 'no-file';
  if (probe.closed) return 'closing-line';
  if (state.lastSize !== probe.size) {
    state.lastSize = probe.size;
    state.changedAt = now;
  }
  if (now - state.startedAt >= SETTLE_MAX_MILLIS) return 'bound';
  if (!probe.closingSeen && now - state.changedAt >= SETTLE_QUIET_MILLIS) return 'quiet';
  return null;
}

export interface SettleDeps {
  now: () => number;
  sleep: (millis: number) => Promise<void>;
  probe: (path: string) => Promise<Probe | null>;
}

/** Waits until `path` settles (see the file comment); returns why and how long it took. */
export async function waitForSettle(path: string, deps: SettleDeps): Promise<{ reason: SettleReason; waitedMillis: number }> {
  const startedAt = deps.now();
  const state: SettleState = { startedAt, lastSize: null, changedAt: startedAt };
  for (;;) {
    const now = deps.now();
    const reason = settleDecision(state, await deps.probe(path), now);
    if (reason !== null) return { reason, waitedMillis: now - startedAt };
    await deps.sleep(SETTLE_POLL_MILLIS);
  }
}

/** True when any complete line of the text is a closing line. */
export function hasClosingLine(tail: string): boolean {
  return tail.split('\n').some((line, i, all) => i < all.length - 1 && CLOSING_LINE.test(line));
}

/** Lines of a turn's conversation: what a closing line must come after to close the turn. */
const MESSAGE_LINE = /"type"\s*:\s*"(?:assistant|user)"/;

/**
 * True when the turn is closed: a closing line comes after every assistant and user line in the
 * text. Claude Code may write bookkeeping after it (`last-prompt`, `cost-state` in `-p` runs), so
 * the closing line need not be the last line; a later assistant or user line reopens the turn.
 * With `needsMessage`, the text must also hold a message line of the turn (the text is what was
 * written past the committed cursor: a closing line alone there is the previous turn's).
 */
export function closesTurn(tail: string, needsMessage = false): boolean {
  let lastClosing = -1;
  let lastMessage = -1;
  const lines = tail.split('\n');
  // The part after the final '\n' is not a complete line yet.
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i] as string;
    if (CLOSING_LINE.test(line)) lastClosing = i;
    else if (MESSAGE_LINE.test(line)) lastMessage = i;
  }
  if (needsMessage && lastMessage < 0) return false;
  return lastClosing >= 0 && lastClosing > lastMessage;
}

/**
 * Where the session's committed cursor stands in a file: its byte offset and the file's inode
 * (null: any file; no cursor yet is offset 0, nothing of the file committed).
 */
export interface CommittedCursor {
  offset: number;
  ino: number | null;
}

/** True when the text's last complete line (the one before its final `\n`) is a closing line. */
export function endsWithClosingLine(tail: string): boolean {
  if (!tail.endsWith('\n')) return false;
  const body = tail.slice(0, -1);
  const last = body.slice(body.lastIndexOf('\n') + 1);
  return CLOSING_LINE.test(last);
}

/**
 * Size and closing-line check of a real file, reading only its last few KB. With the committed
 * cursor of the same file (same inode, within its size), only what lies past it can close the
 * turn, and must hold one of its message lines; past the tail's reach, all of the tail is new.
 * The cursor is asked for only when the tail would close the turn (a wait's other polls need none).
 */
export async function probeFile(path: string, cursorOf?: () => Promise<CommittedCursor>): Promise<Probe | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // Without blocking: a FIFO where the transcript should be would hold this process (file calls are synchronous, local/fs.ts).
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return null;
    const { size, ino } = st;
    const length = Math.min(size, TAIL_BYTES);
    const buf = Buffer.alloc(length);
    if (length > 0) await handle.read(buf, 0, length, size - length);
    const tail = buf.toString('utf8');
    let closed = closesTurn(tail);
    const cursor = closed && cursorOf !== undefined ? await cursorOf() : undefined;
    if (cursor !== undefined && (cursor.ino === null || cursor.ino === ino) && cursor.offset <= size) {
      closed = closesTurn(buf.subarray(Math.max(0, cursor.offset - (size - length))).toString('utf8'), true);
    }
    return { size, closed, closingSeen: closed || hasClosingLine(tail) };
  } finally {
    await handle.close();
  }
}
