/**
 * Per-session progress: `<session_id>.offset` (JSON, 0600, written atomically; with a long outbox,
 * a JSON first line and the outbox's ledger lines after it: `stateText`). See docs/DESIGN.md
 * "Commit protocol": the atomic rename of this file is the commit point of a turn.
 *
 * Reading never throws on content: a garbage or wrong-typed file is logged and replaced by a fresh
 * state that re-reads every file from 0 (the ledger turns that into deltas, so nothing is counted
 * twice) and continues turn numbering far above anything used before (see `recoveredTurnIndex`), so
 * the receiver's idempotency on (session_id, turn_index, model) cannot swallow a new report.
 * Files of the Rust version (JSON `{"line","turn","session_start","closed"}`, or a bare number in
 * early builds) are converted without reporting again what it reported (`takeOverRustProgress`).
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from '../local/fs';
import { join } from 'node:path';
import type { ReportBody } from '../../protocol/wire';
import { formatTimestamp, parseTimestamp, validateReport } from '../../protocol/wire';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import { entriesByShard, type LedgerEntry, type OutboxLines, parseLedgerLine, shardLines, toLedgerEntry } from './ledger';
import type { Logger } from '../local/log';
import { isSafeSessionId, type StatePaths } from '../local/paths';
import { CHUNK_BYTES, EMPTY_HEAD_HASH, type FileCursor, HEAD_HASH_BYTES, MAX_LINE_BYTES } from './transcript';
import { openRegularFile } from './safe-files';
import { type GroupTotal, isZeroUsage, lineTimestamp, mergeRecord, parseUsageLine } from './usage';

type FileHandle = import('../local/fs').FileHandle;

export const SESSION_STATE_VERSION = 1;
const OFFSET_SUFFIX = '.offset';

/** A committed report (null when a commit only moved ledger values) and its ledger entries. */
export interface OutboxEntry {
  report: ReportBody | null;
  ledger: LedgerEntry[];
}

export interface SessionState {
  version: 1;
  sessionId: string;
  /** The main transcript. */
  transcriptPath: string;
  /** turn_index of the next report. */
  nextTurnIndex: number;
  /** First timestamp seen in the main transcript ('' until one is seen). */
  sessionStartUtc: string;
  /** SessionEnd seen (only a hint for catch-up: a closed session is still collected when asked). */
  closed: boolean;
  /** Key: absolute path. */
  files: Record<string, FileCursor>;
  /** Committed but not yet applied to queue + ledger. */
  outbox: OutboxEntry[];
  updatedAt: string;
  /**
   * Sessions whose counted lines this session's files repeat (a fork's parent): their ledger
   * entries are kept while this session is (prune.ts). Absent when none.
   */
  parents?: string[];
}

/** Parents remembered per session state (bounded: a hostile transcript cannot bloat the state). */
export const MAX_PARENTS = 32;

export type StateStatus = 'ok' | 'missing' | 'corrupt' | 'legacy';

export function freshSessionState(sessionId: string, transcriptPath: string, now: Date, nextTurnIndex = 0): SessionState {
  return {
    version: SESSION_STATE_VERSION,
    sessionId,
    transcriptPath,
    nextTurnIndex,
    sessionStartUtc: '',
    closed: false,
    files: {},
    outbox: [],
    updatedAt: now.toISOString(),
  };
}

/**
 * The turn index a recovered (corrupt) state continues from: the current Unix time in seconds.
 * A session's turn count stays far below it, so it cannot collide with a turn already delivered.
 */
export function recoveredTurnIndex(now: Date): number {
  return Math.max(Math.floor(now.getTime() / 1000), 0);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseCursor(v: unknown): FileCursor | null {
  if (!isObject(v)) return null;
  const { offset, size, ino, headHash } = v;
  if (!isCount(offset) || !isCount(size) || !isCount(ino) || typeof headHash !== 'string') return null;
  return { offset, size, ino, headHash };
}

function parseOutboxEntry(v: unknown, trailing: TrailingLines): OutboxEntry | null {
  if (!isObject(v)) return null;
  let report: ReportBody | null = null;
  if (v.report !== null) {
    const checked = validateReport(v.report);
    if (!checked.ok) return null;
    report = checked.value;
  }
  const ledger: LedgerEntry[] = [];
  if (Array.isArray(v.ledger)) {
    for (const item of v.ledger) {
      const entry = parseLedgerLine(JSON.stringify(item));
      if (entry === null) return null;
      ledger.push(entry);
    }
  } else if (isCount(v.ledgerLines)) {
    for (let n = 0; n < v.ledgerLines; n++) {
      const entry = trailing.next();
      if (entry === null) return null;
      ledger.push(entry);
    }
  } else {
    return null;
  }
  return { report, ledger };
}

/**
 * The ledger lines that follow a state file's first line (stateText's form for a long outbox),
 * read one after another; null past the last one or at a line that is not a ledger entry.
 */
class TrailingLines {
  constructor(
    private readonly text: string,
    private at: number,
  ) {}

  next(): LedgerEntry | null {
    if (this.at >= this.text.length) return null;
    let end = this.text.indexOf('\n', this.at);
    if (end === -1) end = this.text.length;
    const entry = parseLedgerLine(this.text.slice(this.at, end));
    this.at = end + 1;
    return entry;
  }

  /** Whether every line was read (a file with more lines than its outbox names is not one stateText wrote). */
  get done(): boolean {
    return this.at >= this.text.length;
  }
}

function parseParents(v: unknown): { parents?: string[] } {
  if (!Array.isArray(v)) return {};
  const parents = v.filter((id): id is string => typeof id === 'string' && isSafeSessionId(id)).slice(0, MAX_PARENTS);
  return parents.length > 0 ? { parents } : {};
}

/**
 * Validates a parsed state file; null when any field has the wrong type. `text` and `from`: the
 * file's text and where the ledger lines after its first line start (stateText's form for a long
 * outbox: an outbox item there names how many of them are its `ledger`). Pure.
 */
export function parseSessionState(input: unknown, sessionId: string, text = '', from = 0): SessionState | null {
  if (!isObject(input)) return null;
  const s = input;
  if (s.version !== SESSION_STATE_VERSION || s.sessionId !== sessionId) return null;
  if (typeof s.transcriptPath !== 'string' || !isCount(s.nextTurnIndex)) return null;
  if (typeof s.sessionStartUtc !== 'string' || typeof s.closed !== 'boolean') return null;
  if (!isObject(s.files) || !Array.isArray(s.outbox)) return null;
  const files: Record<string, FileCursor> = {};
  for (const [path, value] of Object.entries(s.files)) {
    const cursor = parseCursor(value);
    if (cursor === null) return null;
    Object.defineProperty(files, path, { value: cursor, enumerable: true, writable: true, configurable: true });
  }
  const outbox: OutboxEntry[] = [];
  const trailing = new TrailingLines(text, from);
  for (const item of s.outbox) {
    const entry = parseOutboxEntry(item, trailing);
    if (entry === null) return null;
    outbox.push(entry);
  }
  if (!trailing.done) return null;
  return {
    version: SESSION_STATE_VERSION,
    sessionId,
    transcriptPath: s.transcriptPath,
    nextTurnIndex: s.nextTurnIndex,
    sessionStartUtc: s.sessionStartUtc,
    closed: s.closed,
    files,
    outbox,
    updatedAt: typeof s.updatedAt === 'string' ? s.updatedAt : '',
    ...parseParents(s.parents),
  };
}

export interface ReadStateOptions {
  log: Logger;
  now: () => Date;
  /** The main transcript from the hook input: needed to convert a legacy (Rust) file. */
  transcriptPath?: string;
}

export interface LoadedState {
  state: SessionState;
  status: StateStatus;
}

/**
 * Reads `<session_id>.offset`. Missing → fresh state (turn 0). Corrupt → logged, fresh state with
 * turn numbering from `recoveredTurnIndex` (or the file's own `nextTurnIndex` when that one field is
 * still readable, whichever is larger). A Rust file → converted (see `takeOverRustProgress`).
 * I/O errors other than ENOENT are thrown (the caller logs them and retries next hook).
 */
export async function readSessionState(paths: StatePaths, sessionId: string, options: ReadStateOptions): Promise<LoadedState> {
  const now = options.now();
  const text = await readTextIfExists(paths.sessionOffset(sessionId));
  const transcriptPath = options.transcriptPath ?? '';
  if (text === null) return { state: freshSessionState(sessionId, transcriptPath, now), status: 'missing' };
  if (/^\s*\d+\s*$/.test(text)) {
    const legacy = Number(text.trim());
    if (Number.isSafeInteger(legacy) && transcriptPath !== '') {
      const state = await convertLegacyOffset(sessionId, transcriptPath, legacy, now);
      options.log.activity(`session ${sessionId}: converted legacy offset file (${legacy})`);
      return { state, status: 'legacy' };
    }
  }
  const { parsed, state } = parseStateText(text, sessionId);
  if (state !== null) return { state, status: 'ok' };
  const rust = parseRustOffset(parsed);
  if (rust !== null && transcriptPath !== '') {
    const progress = { lines: rust.line };
    const taken = await takeOverRustProgress(sessionId, transcriptPath, progress, rust, now);
    options.log.activity(`session ${sessionId}: took over the Rust version's progress (${rust.line} line(s), next turn ${rust.turn})`);
    return { state: taken, status: 'legacy' };
  }
  const salvagedTurn = isObject(parsed) && isCount(parsed.nextTurnIndex) ? parsed.nextTurnIndex : 0;
  const salvagedPath = isObject(parsed) && typeof parsed.transcriptPath === 'string' ? parsed.transcriptPath : transcriptPath;
  options.log.error(`session ${sessionId}: state file unreadable, starting over (the ledger prevents double counting)`);
  const turn = Math.max(recoveredTurnIndex(now), salvagedTurn);
  return { state: freshSessionState(sessionId, transcriptPath || salvagedPath, now, turn), status: 'corrupt' };
}

/**
 * Writes the state atomically (stateText: a long outbox's ledger lists are put in shard order, in
 * place). `lines`, when given, learns where the file holds each shard's ledger lines.
 */
export async function writeSessionState(paths: StatePaths, state: SessionState, lines?: OutboxLines): Promise<void> {
  await writeFileAtomic(paths.sessionOffset(state.sessionId), stateText(state, lines));
}

/**
 * An outbox ledger list longer than this is written as ledger lines after the state's first line,
 * in pieces of at most this many entries (~12 KB, below V8's large-object size: a written piece is
 * young garbage the next scavenge frees).
 */
const OUTBOX_PIECE_ENTRIES = 64;

/**
 * The state file's text, in pieces. A short outbox: `JSON.stringify(state)` and a newline. A long
 * one (a first read of a long session commits 40k+ entries): the state's JSON with each outbox
 * item's `ledger` replaced by `ledgerLines`, its length, then every item's entries as the ledger
 * lines a shard holds (`shardLines`), shard after shard, so that applying the outbox copies those
 * bytes into the shards instead of serialising the entries a second time. Each long list is put
 * in that order in place (entries of one shard keep their order, all a ledger append depends
 * on), and `lines` learns where each shard's lines are. Pieces stay small: as one string (and the
 * buffer written from it) the entries were the worker's peak memory.
 */
export function* stateText(state: SessionState, lines?: OutboxLines): Generator<string> {
  if (!state.outbox.some((item) => item.ledger.length > OUTBOX_PIECE_ENTRIES)) {
    yield `${JSON.stringify(state)}\n`;
    return;
  }
  const shards = state.outbox.map((item) => entriesByShard(item.ledger));
  state.outbox.forEach((item, i) => {
    item.ledger = [...(shards[i] as Map<string, LedgerEntry[]>).values()].flat();
  });
  const outbox = state.outbox.map((item) => ({ report: item.report, ledgerLines: item.ledger.length }));
  const head = `${JSON.stringify({ ...state, outbox })}\n`;
  yield head;
  let offset = Buffer.byteLength(head);
  for (const itemShards of shards) {
    for (const [shard, list] of itemShards) {
      for (let from = 0; from < list.length; from += OUTBOX_PIECE_ENTRIES) {
        const text = shardLines(list.slice(from, from + OUTBOX_PIECE_ENTRIES));
        yield text;
        const bytes = Buffer.byteLength(text);
        lines?.add(shard, offset, bytes);
        offset += bytes;
      }
    }
  }
}

/** Session ids that have a state file (any status), sorted. */
export async function listSessionIds(paths: StatePaths): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(paths.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith(OFFSET_SUFFIX))
    .map((n) => n.slice(0, -OFFSET_SUFFIX.length))
    .filter((id) => isSafeSessionId(id))
    .sort();
}

/** Parses a state file without logging or converting: null when missing, legacy or not valid v1. */
export async function peekSessionState(paths: StatePaths, sessionId: string): Promise<SessionState | null> {
  const text = await readTextIfExists(paths.sessionOffset(sessionId));
  return text === null ? null : parseStateText(text, sessionId).state;
}

/**
 * A state file's text parsed (`parsed`: its JSON, undefined when it is not JSON) and validated
 * (`state`, null when it is not a valid v1 state): one JSON value, or (stateText's form for a long
 * outbox) a JSON first line followed by the outbox's ledger lines.
 */
function parseStateText(text: string, sessionId: string): { parsed: unknown; state: SessionState | null } {
  try {
    const parsed: unknown = JSON.parse(text);
    return { parsed, state: parseSessionState(parsed, sessionId) };
  } catch {
    // Not one JSON value: a first line and ledger lines, or garbage.
  }
  const newline = text.indexOf('\n');
  if (newline === -1) return { parsed: undefined, state: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(0, newline));
  } catch {
    return { parsed: undefined, state: null };
  }
  return { parsed, state: parseSessionState(parsed, sessionId, text, newline + 1) };
}

/**
 * Where the session's committed cursor stands in one of its files (`peekSessionState`: no lock,
 * the file is only ever replaced whole). No readable state or no cursor for the file yet is offset
 * 0 in any file: nothing of it committed. The settle before a read uses it (hook/settle.ts).
 */
export async function readCommittedCursor(paths: StatePaths, sessionId: string, path: string): Promise<{ offset: number; ino: number | null }> {
  const cursor = (await peekSessionState(paths, sessionId).catch(() => null))?.files[path];
  return cursor === undefined ? { offset: 0, ino: null } : { offset: cursor.offset, ino: cursor.ino };
}

/** Every readable (v1) session state of the data dir, sorted by session id. */
export async function readAllSessionStates(paths: StatePaths): Promise<SessionState[]> {
  const states: SessionState[] = [];
  for (const id of await listSessionIds(paths)) {
    try {
      const state = await peekSessionState(paths, id);
      if (state !== null) states.push(state);
    } catch {
      // unreadable (EACCES): skipped here, its own hook reports the error
    }
  }
  return states;
}

/**
 * Sessions the Rust version left open (its JSON `.offset`, `closed` false), with their main
 * transcript found under `<data_dir>/projects/*\/<session_id>.jsonl` (its state names no path).
 * Sorted by session id; sessions without a transcript on disk are left out.
 */
export async function listOpenRustSessions(
  paths: StatePaths,
  /** State files known to be none of these (catch-up's SettledStates). */
  skip: (sessionId: string) => boolean = () => false,
): Promise<Array<{ sessionId: string; transcriptPath: string }>> {
  const found: Array<{ sessionId: string; transcriptPath: string }> = [];
  let projects: string[] | null = null;
  for (const id of await listSessionIds(paths)) {
    if (skip(id)) continue;
    let rust: RustOffset | null = null;
    try {
      const text = await readTextIfExists(paths.sessionOffset(id));
      rust = text === null ? null : parseRustOffset(JSON.parse(text));
    } catch {
      continue; // not JSON (or unreadable): its own hook deals with it
    }
    if (rust === null || rust.closed) continue;
    projects ??= await readdir(join(paths.dataDir, 'projects')).catch(() => []);
    for (const project of projects) {
      const candidate = join(paths.dataDir, 'projects', project, `${id}.jsonl`);
      if (await isRegularFile(candidate)) {
        found.push({ sessionId: id, transcriptPath: candidate });
        break;
      }
    }
  }
  return found;
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A state file's identity: an atomic write always makes a new inode, so a match means unchanged. */
type FileStamp = [ino: number, size: number, mtimeMs: number];
/** A settled state as the index keeps it: its file's identity, transcript path and parents. */
interface SettledState {
  s: FileStamp;
  p: string;
  a?: string[];
}

/**
 * The state files catch-up found closed with nothing left to apply, by their identity then: an
 * unchanged one need not be read again (a data dir keeps a month of closed sessions, whose
 * states a turn would otherwise read one by one, twice). Any write of a state changes its
 * identity, so a reopened or rewritten session is read again. Pruning takes what it needs of them
 * (transcript path, parents) from here too. `catch-up-settled.json`, a cache: lost or damaged,
 * everything is read once more.
 */
export class SettledStates {
  private changed = false;

  private constructor(
    private readonly paths: StatePaths,
    private readonly entries: Map<string, SettledState>,
  ) {}

  private static file(paths: StatePaths): string {
    return join(paths.dir, 'catch-up-settled.json');
  }

  static async load(paths: StatePaths): Promise<SettledStates> {
    const entries = new Map<string, SettledState>();
    try {
      const v: unknown = JSON.parse((await readTextIfExists(SettledStates.file(paths))) ?? '{}');
      if (isObject(v)) {
        for (const [id, e] of Object.entries(v)) {
          if (!isObject(e) || typeof e.p !== 'string' || !Array.isArray(e.s) || e.s.length !== 3 || !e.s.every((n) => typeof n === 'number')) continue;
          const parents = Array.isArray(e.a) ? e.a.filter((x): x is string => typeof x === 'string') : [];
          entries.set(id, { s: e.s as FileStamp, p: e.p, ...(parents.length > 0 ? { a: parents } : {}) });
        }
      }
    } catch {
      // damaged: a cache, start empty
    }
    return new SettledStates(paths, entries);
  }

  private async stampOf(sessionId: string): Promise<FileStamp | null> {
    try {
      const st = await stat(this.paths.sessionOffset(sessionId));
      return [st.ino, st.size, Math.floor(st.mtimeMs)];
    } catch {
      return null;
    }
  }

  /** True when the state file is the one found settled (one stat). */
  async isSettled(sessionId: string): Promise<boolean> {
    const known = this.entries.get(sessionId)?.s;
    if (known === undefined) return false;
    const now = await this.stampOf(sessionId);
    if (now !== null && now[0] === known[0] && now[1] === known[1] && now[2] === known[2]) return true;
    this.entries.delete(sessionId);
    this.changed = true;
    return false;
  }

  /** Synchronous check for what `isSettled` said this run. */
  has(sessionId: string): boolean {
    return this.entries.has(sessionId);
  }

  /** What pruning needs of a settled (closed, nothing to apply) state: its transcript and parents. */
  info(sessionId: string): { transcriptPath: string; parents: string[] } | undefined {
    const e = this.entries.get(sessionId);
    return e === undefined ? undefined : { transcriptPath: e.p, parents: e.a ?? [] };
  }

  /** Records a closed state with an empty outbox as its file is now (call after its last write). */
  async note(state: SessionState): Promise<void> {
    const stamp = await this.stampOf(state.sessionId);
    if (stamp === null) return;
    this.entries.set(state.sessionId, { s: stamp, p: state.transcriptPath, ...(state.parents ? { a: state.parents } : {}) });
    this.changed = true;
  }

  /** Forgets the state files not in `sessionIds` (removed). */
  retain(sessionIds: readonly string[]): void {
    const present = new Set(sessionIds);
    for (const id of this.entries.keys()) {
      if (!present.has(id)) {
        this.entries.delete(id);
        this.changed = true;
      }
    }
  }

  /** Writes the index when it changed. */
  async save(): Promise<void> {
    if (!this.changed) return;
    await writeFileAtomic(SettledStates.file(this.paths), `${JSON.stringify(Object.fromEntries(this.entries))}\n`);
  }
}

/** Sessions left open (no SessionEnd seen) with a known main transcript: candidates for catch-up. */
export async function listOpenSessions(paths: StatePaths): Promise<SessionState[]> {
  return (await readAllSessionStates(paths)).filter((s) => !s.closed && s.transcriptPath !== '');
}

/**
 * The Rust version's `.offset`: `{"line": N, "turn": T, "session_start": "…", "closed": false}` —
 * N lines of the main transcript reported (or queued), T the next turn index. Null when the value
 * is not one (our own state has `version`; `closed` was added late, so it may be missing).
 */
export interface RustOffset {
  line: number;
  turn: number;
  sessionStart: string;
  closed: boolean;
}

export function parseRustOffset(input: unknown): RustOffset | null {
  if (!isObject(input) || 'version' in input) return null;
  const { line, turn, session_start, closed } = input;
  if (!isCount(line) || !isCount(turn)) return null;
  if (session_start !== undefined && typeof session_start !== 'string') return null;
  if (closed !== undefined && typeof closed !== 'boolean') return null;
  return { line, turn, sessionStart: session_start ?? '', closed: closed ?? false };
}

/** Where the Rust version stopped: a number of lines (JSON `.offset`, bare-number line count) or bytes. */
type RustProgress = { lines: number } | { bytes: number };

interface PrefixScan {
  /** Just after the last complete line of the prefix. */
  offset: number;
  lines: number;
  groups: Map<string, GroupTotal>;
  /** First valid timestamp of the prefix, as our state keeps it ('' when none). */
  firstTimestamp: string;
}

/**
 * Reads the complete lines of the prefix the Rust version already reported and folds their usage
 * into groups, as a turn would. Lines over MAX_LINE_BYTES count as lines but are not parsed.
 */
async function scanReportedPrefix(handle: FileHandle, size: number, progress: RustProgress, sessionId: string): Promise<PrefixScan> {
  const scan: PrefixScan = { offset: 0, lines: 0, groups: new Map(), firstTimestamp: '' };
  const maxLines = 'lines' in progress ? progress.lines : Number.POSITIVE_INFINITY;
  const limitBytes = 'bytes' in progress ? Math.min(progress.bytes, size) : size;
  const chunk = Buffer.alloc(CHUNK_BYTES);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = 0;
  while (position < limitBytes && scan.lines < maxLines) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, limitBytes - position), position);
    if (bytesRead === 0) break;
    let from = 0;
    while (scan.lines < maxLines) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl === -1 || nl >= bytesRead) break;
      if (pendingBytes + (nl - from) <= MAX_LINE_BYTES) {
        const line = Buffer.concat([...pending, chunk.subarray(from, nl)]).toString('utf8').replace(/\r$/, '');
        for (const record of parseUsageLine(line, sessionId).records) mergeRecord(scan.groups, record, null);
        if (scan.firstTimestamp === '') {
          const ts = parseTimestamp(lineTimestamp(line) ?? '');
          if (ts !== null) scan.firstTimestamp = formatTimestamp(ts);
        }
      }
      pending = [];
      pendingBytes = 0;
      scan.lines++;
      scan.offset = position + nl + 1;
      from = nl + 1;
    }
    if (from < bytesRead && scan.lines < maxLines) {
      if (pendingBytes + (bytesRead - from) <= MAX_LINE_BYTES) pending.push(Buffer.from(chunk.subarray(from, bytesRead)));
      pendingBytes += bytesRead - from;
    }
    position += bytesRead;
  }
  return scan;
}

/**
 * Takes over a session the Rust version was reporting. Everything before its stopping point was
 * reported (or sits in its queue, which we deliver as it is): the cursor starts there, and what
 * those lines held goes into the ledger (as an outbox entry without a report, applied before the
 * next count), so a later line of a message begun there counts only as the difference.
 * `nextTurnIndex` is the Rust `turn` when known; for a bare number (no turn recorded) the line
 * count, which no turn index of the Rust version can exceed (each turn wrote at least one line).
 */
export async function takeOverRustProgress(
  sessionId: string,
  transcriptPath: string,
  progress: RustProgress,
  rust: { turn?: number; sessionStart?: string; closed?: boolean },
  now: Date,
): Promise<SessionState> {
  const state = freshSessionState(sessionId, transcriptPath, now, rust.turn ?? 0);
  state.closed = rust.closed ?? false;
  if (rust.sessionStart !== undefined && parseTimestamp(rust.sessionStart) !== null) state.sessionStartUtc = rust.sessionStart;
  let handle: FileHandle;
  try {
    const opened = await openRegularFile(transcriptPath);
    if (opened === null) return state;
    handle = opened;
  } catch {
    return state; // no transcript: nothing to skip
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return state;
    const scan = await scanReportedPrefix(handle, st.size, progress, sessionId);
    const head = Buffer.alloc(Math.min(scan.offset, HEAD_HASH_BYTES));
    if (head.length > 0) await handle.read(head, 0, head.length, 0);
    const headHash = head.length === 0 ? EMPTY_HEAD_HASH : createHash('sha256').update(head).digest('hex');
    // size = offset: the bytes after it have not been read yet.
    state.files[transcriptPath] = { offset: scan.offset, size: scan.offset, ino: st.ino, headHash };
    if (state.sessionStartUtc === '') state.sessionStartUtc = scan.firstTimestamp;
    if (rust.turn === undefined) state.nextTurnIndex = 'lines' in progress ? Math.max(scan.lines, progress.lines) : scan.lines;
    const ledger = [...scan.groups.values()]
      .filter((g) => !isZeroUsage(g.usage))
      .map((g) => toLedgerEntry(g.key, g.messageId, g.sidechain, g.model, g.usage, sessionId));
    if (ledger.length > 0) state.outbox = [{ report: null, ledger }];
    return state;
  } finally {
    await handle.close();
  }
}

/**
 * Converts a bare-number `.offset` (early Rust builds) for the main transcript: a byte offset when
 * it is ≤ the size and sits just after a `\n` (or is 0), else a count of lines.
 */
export async function convertLegacyOffset(sessionId: string, transcriptPath: string, legacy: number, now: Date): Promise<SessionState> {
  let progress: RustProgress = { lines: legacy };
  try {
    const handle = await openRegularFile(transcriptPath);
    if (handle === null) throw new Error('not a regular file');
    try {
      const st = await handle.stat();
      if (legacy === 0) progress = { bytes: 0 };
      else if (st.isFile() && legacy <= st.size) {
        const b = Buffer.alloc(1);
        await handle.read(b, 0, 1, legacy - 1);
        if (b[0] === 0x0a) progress = { bytes: legacy };
      }
    } finally {
      await handle.close();
    }
  } catch {
    // no transcript: takeOverRustProgress finds nothing to skip
  }
  return takeOverRustProgress(sessionId, transcriptPath, progress, {}, now);
}
