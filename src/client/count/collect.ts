/**
 * Per-turn collection: the session's transcripts past their cursors → counted deltas → one committed
 * report. Implements docs/DESIGN.md "Commit protocol"; the caller holds the state lock.
 *
 *   1. apply every committed-but-unapplied outbox of the data dir (named in `outbox.pending`), so
 *      the ledger is complete before anything is counted: a resumed copy of a session that crashed
 *      mid-commit must find that session's groups;
 *   2. read the new complete lines of every file of the session (main transcript first), fold them
 *      into groups and decide each group's delta against the ledger and the run's own view;
 *   3. commit: write the session state (new cursors, next turn index, outbox = reports + ledger
 *      entries) atomically — the rename is the commit point;
 *   4. apply the outbox: queue (which dedupes by (session_id, turn_index)), then ledger (max-merge,
 *      idempotent), then clear it.
 * A crash before 3 re-reads the same bytes next time; a crash after 3 is finished by step 1 of the
 * next run, whichever session it is for.
 */
import { type FileHandle, readdir, stat, unlink } from '../local/fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkTurnTime, formatTimestamp, parseTimestamp, timestampMillis, type ModelUsage, type ReportBody } from '../../protocol/wire';
import { VERSION } from '../../version';
import { describeError } from '../local/errors';
import { appendDurable, readTextIfExists } from '../local/fsx';
import { Ledger, type LedgerEntry, OutboxLines, shardOf, shardOfEntry, toLedgerEntry } from './ledger';
import type { Logger } from '../local/log';
import { isSafeSessionId, type StatePaths } from '../local/paths';
import { foldTotals, type ModelTotals, parseCostStateBytes, parseCostStateLine, reconcileCostState } from './cost-state';
import { buildReports } from './report';
import {
  type LoadedState,
  type OutboxEntry,
  listOpenRustSessions,
  MAX_PARENTS,
  peekSessionState,
  listSessionIds,
  readSessionState,
  SettledStates,
  recoveredTurnIndex,
  type SessionState,
  writeSessionState,
} from './session-state';
import { isUnder, openRegularFile, projectsDirOf } from './safe-files';
import { ALL_RULES, type FileCursor, LineMatcher, type OnLineBytes, readNewLineBytes } from './transcript';
import {
  addTo,
  addUsage,
  CANDIDATE_LINE_RULES,
  COST_STATE_RULE_BIT,
  type CountedEntry,
  decideGroup,
  type GroupTotal,
  isZeroUsage,
  type LineParse,
  lineTimestamp,
  mergeRecord,
  parseUsageLine,
  USAGE_MARKER,
  USAGE_RULE_BIT,
  UsageLineParser,
  zeroUsage,
} from './usage';

/** The turn's last transcript time, or now when there is none or the receiver would refuse it
 * (a transcript line dated far in the future or past). */
function turnTime(lastTimestampMs: number | null, now: Date): string {
  if (lastTimestampMs === null) return formatTimestamp(now);
  const text = formatTimestamp(new Date(lastTimestampMs));
  return checkTurnTime(text, now) === null ? text : formatTimestamp(now);
}

/** Names the sessions whose state holds a committed outbox not yet applied (one id a line). */
export const PENDING_OUTBOX_FILE = 'outbox.pending';
/** A session left open (no SessionEnd) whose files have not changed for this long is closed. */
export const IDLE_CLOSE_MILLIS = 7 * 24 * 60 * 60 * 1000;
/** Subagent folders deeper than this are not searched (workflow agents sit two levels down). */
const MAX_SUBAGENT_DEPTH = 6;
/** Bound on the files of one session (a runaway folder must not make every turn slow). */
const MAX_SESSION_FILES = 5000;
/** Legacy sibling `agent-*.jsonl` modified this long before the session started are not ours. */
const LEGACY_MTIME_SLACK_MILLIS = 60 * 60 * 1000;
const LEGACY_HEAD_BYTES = 4096;
const DEFAULT_MAX_CATCH_UP_SESSIONS = 10;

export interface QueueAppender {
  /** Appends durably; dedupes by (session_id, turn_index). */
  append(report: ReportBody): Promise<void>;
}

export interface CollectDeps {
  paths: StatePaths;
  now: () => Date;
  log: Logger;
  queue: QueueAppender;
  userEmail: string;
  pluginVersion?: string;
}

export interface CollectRequest {
  sessionId: string;
  transcriptPath: string;
  agentTranscriptPath?: string;
  /** SessionEnd: mark the session closed after collecting. */
  closing?: boolean;
}

export interface CollectResult {
  /** The turn's report (the first one when the turn had to be split), or null when nothing new. */
  report: ReportBody | null;
  reports: ReportBody[];
}

function pendingPath(paths: StatePaths): string {
  return join(paths.dir, PENDING_OUTBOX_FILE);
}

/**
 * Step 4: queue, then ledger, then an empty outbox. Idempotent (a crash anywhere is redone).
 * `written`: where the state file this run just committed holds the outbox's ledger lines.
 */
async function applyOutbox(deps: CollectDeps, state: SessionState, ledger: Ledger, written?: OutboxLines): Promise<void> {
  if (state.outbox.length === 0) return;
  for (const item of state.outbox) if (item.report !== null) await deps.queue.append(item.report);
  await ledger.append(outboxEntries(state), written);
  state.outbox = [];
  state.updatedAt = deps.now().toISOString();
  await writeSessionState(deps.paths, state);
}

function outboxEntries(state: SessionState): LedgerEntry[] {
  if (state.outbox.length === 1) return (state.outbox[0] as OutboxEntry).ledger;
  const entries: LedgerEntry[] = [];
  // Not push(...item.ledger): a turn that brings the whole history of a long session holds
  // 100k+ entries, past V8's argument limit ("Maximum call stack size exceeded").
  for (const item of state.outbox) for (const entry of item.ledger) entries.push(entry);
  return entries;
}

/** Step 1: finishes every commit a crashed run left behind, in any session of the data dir. */
async function applyPendingOutboxes(deps: CollectDeps, ledger: Ledger): Promise<void> {
  const text = await readTextIfExists(pendingPath(deps.paths));
  if (text === null) return;
  const ids = new Set(text.split('\n').filter((id) => isSafeSessionId(id)));
  for (const id of ids) {
    const state = await peekSessionState(deps.paths, id);
    if (state !== null && state.outbox.length > 0) {
      deps.log.activity(`session ${id}: finishing a commit left by an earlier run`);
      await applyOutbox(deps, state, ledger);
    }
  }
  await unlinkIfExists(pendingPath(deps.paths));
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function walkSubagents(dir: string, depth: number, out: string[]): Promise<void> {
  if (depth > MAX_SUBAGENT_DEPTH || out.length >= MAX_SESSION_FILES) return;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walkSubagents(path, depth + 1, out);
    else if (entry.isFile() && isAgentTranscriptName(entry.name)) out.push(path);
    if (out.length >= MAX_SESSION_FILES) return;
  }
}

/** `agent-*.jsonl`; `journal.jsonl` and `*.meta.json` are not transcripts. */
function isAgentTranscriptName(name: string): boolean {
  return name.startsWith('agent-') && name.endsWith('.jsonl');
}

/** The `sessionId` on the first line of a legacy sibling agent file, or null. */
async function headSessionId(path: string): Promise<string | null> {
  let handle: FileHandle | undefined;
  try {
    handle = (await openRegularFile(path)) ?? undefined;
    if (handle === undefined) return null;
    const buf = Buffer.alloc(LEGACY_HEAD_BYTES);
    const { bytesRead } = await handle.read(buf, 0, LEGACY_HEAD_BYTES, 0);
    const text = buf.toString('utf8', 0, bytesRead);
    const firstLine = text.split('\n', 1)[0] ?? '';
    const match = /"sessionId"\s*:\s*"([^"\\]{1,200})"/.exec(firstLine);
    return match?.[1] ?? null;
  } catch {
    return null;
  } finally {
    await handle?.close();
  }
}

/**
 * The files of a session: the main transcript first, then, sorted by path, every
 * `<session>/subagents/**\/agent-*.jsonl`, legacy sibling `agent-*.jsonl` whose first line carries
 * our sessionId, the SubagentStop `agent_transcript_path`, and any file tracked before.
 */
export async function listSessionFiles(state: SessionState, req: CollectRequest): Promise<string[]> {
  const main = resolve(req.transcriptPath);
  const others = new Set<string>(Object.keys(state.files));
  const sessionDir = main.endsWith('.jsonl') ? main.slice(0, -'.jsonl'.length) : `${main}.d`;
  const found: string[] = [];
  await walkSubagents(join(sessionDir, 'subagents'), 0, found);
  for (const f of found) others.add(f);

  const projectDir = dirname(main);
  let siblings: string[] = [];
  try {
    siblings = (await readdir(projectDir)).filter(isAgentTranscriptName);
  } catch {
    // no project dir yet
  }
  const startMs = state.sessionStartUtc ? (parseTimestamp(state.sessionStartUtc)?.getTime() ?? null) : null;
  for (const name of siblings) {
    const path = join(projectDir, name);
    if (others.has(path)) continue;
    if (startMs !== null) {
      try {
        if ((await stat(path)).mtimeMs < startMs - LEGACY_MTIME_SLACK_MILLIS) continue;
      } catch {
        continue;
      }
    }
    if ((await headSessionId(path)) === state.sessionId) others.add(path);
  }

  if (req.agentTranscriptPath?.endsWith('.jsonl')) others.add(resolve(req.agentTranscriptPath));
  others.delete(main);
  // Nothing outside the data dir's projects/ is read: not an agent path pointing elsewhere, not a
  // symlink leading out, not a file tracked before this rule (safe-files.ts).
  const projects = projectsDirOf(main);
  const inside: string[] = [];
  for (const path of [...others].sort()) {
    if (inside.length >= MAX_SESSION_FILES) break;
    if (await isUnder(projects, path)) inside.push(path);
  }
  return [main, ...inside];
}

/** True when a file has bytes its cursor has not seen (or was replaced). */
async function fileChanged(path: string, cursor: FileCursor | undefined): Promise<boolean | null> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    if (cursor === undefined) return st.size > 0;
    return st.size !== cursor.size || st.ino !== cursor.ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return false;
  }
}

interface CountResult {
  deltas: Map<string, ModelUsage>;
  entries: LedgerEntry[];
  lastTimestampMs: number | null;
  replays: number;
  /** Some group was first counted by this very session (seen again after a lost state). */
  ownGroupsSeen: boolean;
  /** Sessions that first counted groups this run's files repeat (a fork's parent). */
  copiedFrom: Set<string>;
}

/**
 * A session's turn high-water mark lives in the ledger, not only in its `.offset` file: the ledger
 * survives a lost or corrupt state, and its lines are max-merged, so the mark only ever rises.
 * `i` holds the next free turn index. No usage key starts with `turns:` (they are `m:`, `u:`, `h:`).
 */
const turnMarkKey = (sessionId: string) => `turns:${sessionId}`;

function turnMarkEntry(sessionId: string, nextTurnIndex: number): LedgerEntry {
  const usage = { input_tokens: nextTurnIndex, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
  return toLedgerEntry(turnMarkKey(sessionId), null, false, '', usage);
}

async function turnMark(ledger: Ledger, sessionId: string): Promise<number> {
  const key = turnMarkKey(sessionId);
  await ledger.load([shardOf(key)]);
  return ledger.get(key, null)?.usage.input_tokens ?? 0;
}

/** Step 2b: each group once, in order of first appearance, against ledger + the run's own view. */
async function countGroups(groups: Map<string, GroupTotal>, ledger: Ledger, sessionId: string): Promise<CountResult> {
  await ledger.load([...groups.values()].map((g) => shardOfEntry(g)));
  const result: CountResult = {
    deltas: new Map(),
    entries: [],
    lastTimestampMs: null,
    replays: 0,
    ownGroupsSeen: false,
    copiedFrom: new Set(),
  };
  for (const group of groups.values()) {
    const own = ledger.get(group.key, group.messageId);
    if (own?.sessionId === sessionId) result.ownGroupsSeen = true;
    else if (own?.sessionId !== undefined) result.copiedFrom.add(own.sessionId);
    const same = group.messageId === null ? [] : ledger.sameMessage(group.messageId, group.key);
    const decision = decideGroup(group, own, same);
    if (decision.kind === 'replay') {
      result.replays++;
      continue;
    }
    if (needsRecord(own, group, decision.record)) {
      const sidechain = group.sidechain && (own?.sidechain ?? true);
      const entry = toLedgerEntry(group.key, group.messageId ?? own?.messageId ?? null, sidechain, group.model, decision.record, own?.sessionId ?? sessionId);
      ledger.stage(entry);
      result.entries.push(entry);
    }
    if (!isZeroUsage(decision.delta)) {
      // In place: the run owns its per-model totals (the delta may be the group's own usage).
      const total = result.deltas.get(group.model);
      if (total === undefined) result.deltas.set(group.model, addUsage(zeroUsage(), decision.delta));
      else addTo(total, decision.delta);
      const ts = group.lastTimestampMs;
      if (ts !== null && (result.lastTimestampMs === null || ts > result.lastTimestampMs)) result.lastTimestampMs = ts;
    }
  }
  return result;
}

/**
 * Notes the sessions this one's files copy (remembered from earlier runs, found in the ledger, or
 * named by the copies' `requestSessionId`), so pruning keeps their entries while this session
 * lives and a fork's cost-state base is taken from them whichever run first reads a cost-state
 * line (the Stop worker may read the copies before Claude Code writes the fork's first one).
 */
function rememberParents(state: SessionState, ...found: ReadonlySet<string>[]): Set<string> {
  const parents = new Set(state.parents ?? []);
  for (const ids of found) {
    for (const id of ids) if (id !== state.sessionId && isSafeSessionId(id) && parents.size < MAX_PARENTS) parents.add(id);
  }
  if (parents.size > 0) state.parents = [...parents];
  return parents;
}

/** How many fork generations a run collects first (a fork of a fork of …); a cycle stops at once. */
const MAX_PARENT_DEPTH = 4;

/**
 * Collects the sessions a fork's copies name before the fork is counted, so the copies are the
 * parent's (replays here) and the parent's totals are in the ledger when the fork's cost-state
 * base is decided — whether or not the parent's own worker has run yet (detached workers of
 * consecutive sessions run in any order under load). A parent is looked for where its state says,
 * else beside the fork's transcript; a parent that cannot be found or read is left alone (then
 * the fork counts the copies, and its base is what the ledger knows).
 */
async function collectParentsFirst(deps: CollectDeps, main: string, parents: ReadonlySet<string>, ledger: Ledger, visiting: ReadonlySet<string>): Promise<void> {
  if (visiting.size > MAX_PARENT_DEPTH) return;
  for (const parent of parents) {
    if (visiting.has(parent)) continue;
    try {
      const known = (await peekSessionState(deps.paths, parent))?.transcriptPath;
      const transcriptPath = known || join(dirname(main), `${parent}.jsonl`);
      if (!(await isUnder(projectsDirOf(main), transcriptPath))) continue;
      if ((await fileChanged(transcriptPath, undefined)) !== true) continue;
      await collectWith(deps, { sessionId: parent, transcriptPath }, ledger, new Set([...visiting, parent]));
    } catch (err) {
      // Entries a failed run staged stay in this run's view; the parent's cursors did not move, so
      // its next run counts the same lines to the same values: nothing is lost or doubled.
      deps.log.error(`session ${parent}: collecting the parent of a fork first failed: ${describeError(err)}`);
    }
  }
}

/** Adds what `cost-state` holds beyond the assistant lines (cost-state.ts) to the run's deltas. */
async function addBackground(ledger: Ledger, sessionId: string, counted: CountResult, costState: ModelTotals | null, parents: ReadonlySet<string>): Promise<void> {
  const { background, entries } = await reconcileCostState(ledger, {
    sessionId,
    lineDeltas: counted.deltas,
    costState,
    copiedFrom: parents,
  });
  for (const e of entries) counted.entries.push(e);
  for (const [model, usage] of background) counted.deltas.set(model, addUsage(counted.deltas.get(model) ?? zeroUsage(), usage));
}

function needsRecord(own: CountedEntry | undefined, group: GroupTotal, record: ModelUsage): boolean {
  if (own === undefined) return !isZeroUsage(record);
  const u = own.usage;
  return (
    record.input_tokens > u.input_tokens ||
    record.output_tokens > u.output_tokens ||
    record.cache_read_tokens > u.cache_read_tokens ||
    record.cache_write_tokens > u.cache_write_tokens ||
    (record.cache_write_5m_tokens ?? 0) > (u.cache_write_5m_tokens ?? 0) ||
    (record.cache_write_1h_tokens ?? 0) > (u.cache_write_1h_tokens ?? 0) ||
    (record.web_search_requests ?? 0) > (u.web_search_requests ?? 0) ||
    (own.sidechain && !group.sidechain) ||
    (own.messageId === null && group.messageId !== null)
  );
}

/** The last timestamp parsed: the lines of one response, and often of a turn, share it. */
let lastTimestamp: { text: string; ms: number | null } = { text: '', ms: null };

function timestampMs(value: string | null): number | null {
  if (value === null) return null;
  if (value !== lastTimestamp.text) lastTimestamp = { text: value, ms: timestampMillis(value) };
  return lastTimestamp.ms;
}

function sameState(a: SessionState, b: SessionState): boolean {
  return JSON.stringify({ ...a, updatedAt: '' }) === JSON.stringify({ ...b, updatedAt: '' });
}

/** What step 2a gathered from the new lines of a session's files. */
interface TurnReads {
  groups: Map<string, GroupTotal>;
  /** How many groups there were, once `groups` is emptied after counting. */
  groupCount: number;
  costState: ModelTotals | null;
  /** Sessions this run's lines say they were copied from (`requestSessionId` of a fork's copies). */
  forkedFrom: Set<string>;
  malformed: number;
  synthetic: number;
  lines: number;
  bytes: number;
}

const USAGE_MARKER_BYTES = Buffer.from(USAGE_MARKER, 'latin1');

/**
 * Step 2a for one line: cost-state totals (main transcript only), else usage records folded into
 * groups; notes the session's first timestamp (then the matcher may filter again). A line the
 * matcher filtered is read from its bytes (usage.ts, cost-state.ts: no string for the line, no
 * parse of its content); until the first timestamp every line comes (ALL_RULES) and is decoded.
 */
function lineFolder(reads: TurnReads, state: SessionState, sessionId: string, isMain: boolean, matcher: LineMatcher): OnLineBytes {
  const foldCostState = (totals: ModelTotals) => {
    reads.costState ??= new Map();
    foldTotals(reads.costState, totals);
  };
  const foldUsage = (parsed: LineParse) => {
    if (parsed.malformed) reads.malformed++;
    if (parsed.syntheticUsage !== null) reads.synthetic++;
    const origin = parsed.copiedFrom;
    if (origin !== null && origin !== sessionId && isSafeSessionId(origin) && reads.forkedFrom.size < MAX_PARENTS) reads.forkedFrom.add(origin);
    for (const record of parsed.records) mergeRecord(reads.groups, record, timestampMs(record.timestamp));
  };
  const foldText = (line: string) => {
    if (isMain) {
      const totals = parseCostStateLine(line);
      if (totals !== null) return foldCostState(totals);
    }
    foldUsage(parseUsageLine(line, sessionId));
    if (isMain && state.sessionStartUtc === '') {
      const ts = parseTimestamp(lineTimestamp(line) ?? '');
      if (ts !== null) {
        state.sessionStartUtc = formatTimestamp(ts);
        matcher.everything = false;
      }
    }
  };
  const usageLines = new UsageLineParser(sessionId);
  /** The answer folded last: a line with the same answer (a response's next content block) adds nothing to the groups. */
  let folded: LineParse | null = null;
  return (bytes: Buffer, start: number, end: number, rules: number, chunk: number) => {
    if (rules === ALL_RULES) return foldText(bytes.toString('utf8', start, end));
    // A line the reader found without the cost-state marker cannot be one: no parse for it.
    if (isMain && (rules & COST_STATE_RULE_BIT) !== 0) {
      const totals = parseCostStateBytes(bytes, start, end);
      if (totals !== null) return foldCostState(totals);
    }
    // The usage rule wants `"assistant"` too; a line let through by another rule is still looked
    // at when it holds `"usage"` (an escaped spelling of its type), as the text path does.
    if ((rules & USAGE_RULE_BIT) !== 0 || bytes.subarray(start, end).indexOf(USAGE_MARKER_BYTES) !== -1) {
      const parsed = usageLines.parse(bytes, start, end, chunk);
      if (parsed !== folded) {
        folded = parsed;
        return foldUsage(parsed);
      }
      // Merging the same records again changes no group (max, and, first id): only the count of
      // `<synthetic>` lines moves, as foldUsage would move it.
      if (parsed.syntheticUsage !== null) reads.synthetic++;
    }
  };
}

/** Step 2a for one file: its new lines past the cursor, and its new cursor into `state`. */
async function readSessionFile(
  deps: CollectDeps,
  sessionId: string,
  previous: SessionState,
  state: SessionState,
  path: string,
  reads: TurnReads,
): Promise<void> {
  const isMain = path === state.transcriptPath;
  const cursor = previous.files[path];
  if (cursor !== undefined && (await fileChanged(path, cursor)) === false) {
    state.files[path] = cursor;
    return;
  }
  // Until the session's first timestamp is known every line of the main transcript is looked at.
  const matcher = new LineMatcher(CANDIDATE_LINE_RULES);
  matcher.everything = isMain && state.sessionStartUtc === '';
  const onLine = lineFolder(reads, state, sessionId, isMain, matcher);
  try {
    const read = await readNewLineBytes(path, cursor, onLine, { log: deps.log, matcher });
    reads.lines += read.lines;
    reads.bytes += read.bytes;
    if (read.cursor !== null) state.files[path] = read.cursor;
  } catch (err) {
    // One unreadable file (EACCES, EIO) must not block the others; its cursor stays put.
    deps.log.error(`cannot read ${basename(path)}: ${describeError(err)}`);
    if (cursor !== undefined) state.files[path] = cursor;
  }
}

/** Step 2a: the new lines of every file of the session, in order, folded into groups. */
async function readSessionFiles(
  deps: CollectDeps,
  sessionId: string,
  previous: SessionState,
  state: SessionState,
  files: string[],
): Promise<TurnReads> {
  const reads: TurnReads = { groups: new Map(), groupCount: 0, costState: null, forkedFrom: new Set(), malformed: 0, synthetic: 0, lines: 0, bytes: 0 };
  for (const path of files) await readSessionFile(deps, sessionId, previous, state, path, reads);
  if (reads.malformed > 0) deps.log.activity(`session ${sessionId}: skipped ${reads.malformed} malformed usage line(s)`);
  if (reads.synthetic > 0) deps.log.error(`session ${sessionId}: ${reads.synthetic} <synthetic> line(s) with non-zero usage not counted`);
  return reads;
}

/** The turn's first index: the state's next one, never a reused one (see "Commit protocol"). */
async function firstTurnIndex(
  deps: CollectDeps,
  sessionId: string,
  previous: SessionState,
  counted: CountResult,
  ledger: Ledger,
  now: Date,
): Promise<number> {
  let turnIndex = previous.nextTurnIndex;
  if (Object.keys(previous.files).length === 0 && counted.ownGroupsSeen) {
    // This state has read nothing, yet the ledger holds groups this session counted: an earlier
    // state of it was lost (deleted file, pruned). Its turn indexes may already be at the
    // receiver, which would swallow a reused one: continue far above them.
    turnIndex = Math.max(turnIndex, recoveredTurnIndex(now));
    deps.log.error(`session ${sessionId}: earlier state lost, turn numbering continues at ${turnIndex}`);
  }
  // Never below the session's high-water mark: a state lost or corrupted twice (the second
  // recovery numbering from a clock the session has run ahead of) must not reuse an index.
  const mark = await turnMark(ledger, sessionId);
  if (mark > turnIndex) {
    if (previous.nextTurnIndex !== 0 || Object.keys(previous.files).length > 0) {
      deps.log.error(`session ${sessionId}: turn numbering was behind its high-water mark, continues at ${mark}`);
    }
    turnIndex = mark;
  }
  return turnIndex;
}

/** Step 2c: the turn's reports, and the state to commit (next turn index, outbox) around them. */
function prepareCommit(
  deps: CollectDeps,
  req: CollectRequest,
  previous: SessionState,
  state: SessionState,
  counted: CountResult,
  turnIndex: number,
  now: Date,
): ReportBody[] {
  const timestampUtc = turnTime(counted.lastTimestampMs, now);
  if (state.sessionStartUtc === '' && counted.deltas.size > 0) state.sessionStartUtc = timestampUtc;
  const reports = buildReports({
    sessionId: req.sessionId,
    turnIndex,
    userEmail: deps.userEmail,
    timestampUtc,
    sessionStartUtc: state.sessionStartUtc,
    models: counted.deltas,
    pluginVersion: deps.pluginVersion ?? VERSION,
    log: deps.log,
  });
  if (reports.length > 0) counted.entries.push(turnMarkEntry(req.sessionId, turnIndex + reports.length));
  const outbox: OutboxEntry[] = reports.map((report, i) => ({ report, ledger: i === 0 ? counted.entries : [] }));
  if (outbox.length === 0 && counted.entries.length > 0) outbox.push({ report: null, ledger: counted.entries });
  state.nextTurnIndex = turnIndex + reports.length;
  state.closed = previous.closed || req.closing === true;
  state.outbox = outbox;
  state.updatedAt = now.toISOString();
  return reports;
}

function logTurn(log: Logger, sessionId: string, reads: TurnReads, fileCount: number, counted: CountResult, reports: ReportBody[]): void {
  if (reads.lines === 0 && counted.replays === 0) return;
  log.activity(
    `session ${sessionId}: ${reads.lines} line(s), ${reads.bytes} byte(s) from ${fileCount} file(s); ${reads.groupCount} group(s)` +
      (counted.replays > 0 ? `, ${counted.replays} replay(s) skipped` : '') +
      (reports.length > 0 ? `; turn ${reports.map((r) => r.turn_index).join(',')} committed` : ''),
  );
}

/** Steps 3 and 4: marker, state (the commit point), outbox applied, marker gone; else the state alone when it changed. */
async function commitTurn(deps: CollectDeps, sessionId: string, loaded: LoadedState, state: SessionState, ledger: Ledger): Promise<void> {
  const { paths } = deps;
  if (state.outbox.length > 0) {
    // The marker first: once the state (the commit point) exists, some run will find it.
    await appendDurable(pendingPath(paths), `${sessionId}\n`);
    // Stamped before they are written: the state's ledger lines are then the shards' lines.
    ledger.stamp(outboxEntries(state));
    const written = new OutboxLines(paths.sessionOffset(sessionId));
    await writeSessionState(paths, state, written);
    await applyOutbox(deps, state, ledger, written);
    await unlinkIfExists(pendingPath(paths));
  } else if (loaded.status !== 'ok' || !sameState(loaded.state, state)) {
    await writeSessionState(paths, state);
  }
}

/** From this size a main transcript read from the start commits entries to (nearly) every ledger shard. */
const PREPARE_SHARDS_MIN_BYTES = 8 * 1024 * 1024;

/**
 * A first read of a long main transcript (installing the plugin beside months of history) commits
 * entries to every ledger shard: their files are created while it reads (Ledger.prepareShards).
 */
async function prepareLedgerForFirstRead(ledger: Ledger, previous: SessionState, main: string): Promise<void> {
  if (previous.files[main] !== undefined) return;
  const size = await stat(main).then(
    (st) => st.size,
    () => 0,
  );
  if (size >= PREPARE_SHARDS_MIN_BYTES) ledger.prepareShards();
}

async function collectWith(deps: CollectDeps, req: CollectRequest, ledger: Ledger, visiting: ReadonlySet<string> = new Set([req.sessionId])): Promise<CollectResult> {
  const main = resolve(req.transcriptPath);
  const loaded: LoadedState = await readSessionState(deps.paths, req.sessionId, { log: deps.log, now: deps.now, transcriptPath: main });
  const previous = loaded.state;
  if (previous.outbox.length > 0) await applyOutbox(deps, previous, ledger);

  const state: SessionState = { ...previous, transcriptPath: main, files: {}, outbox: [] };
  const files = await listSessionFiles(previous, req);
  await prepareLedgerForFirstRead(ledger, previous, main);
  try {
    return await readCountCommit(deps, req, ledger, visiting, loaded, state, files);
  } finally {
    await ledger.releasePrepared();
  }
}

/** collectWith from the reads on (steps 2–4). */
async function readCountCommit(
  deps: CollectDeps,
  req: CollectRequest,
  ledger: Ledger,
  visiting: ReadonlySet<string>,
  loaded: LoadedState,
  state: SessionState,
  files: string[],
): Promise<CollectResult> {
  const previous = loaded.state;
  const main = state.transcriptPath;
  const reads = await readSessionFiles(deps, req.sessionId, previous, state, files);
  if (reads.forkedFrom.size > 0) await collectParentsFirst(deps, main, reads.forkedFrom, ledger, visiting);
  const counted = await countGroups(reads.groups, ledger, req.sessionId);
  // Counted: the groups are not needed past here, and a first read of a long session holds 100k+
  // of them; freed before the commit serialises its entries (the run's peak memory).
  reads.groupCount = reads.groups.size;
  reads.groups = new Map();
  const parents = rememberParents(state, counted.copiedFrom, reads.forkedFrom);
  await addBackground(ledger, req.sessionId, counted, reads.costState, parents);
  const now = deps.now();
  const turnIndex = await firstTurnIndex(deps, req.sessionId, previous, counted, ledger, now);
  const reports = prepareCommit(deps, req, previous, state, counted, turnIndex, now);
  logTurn(deps.log, req.sessionId, reads, files.length, counted, reports);
  await commitTurn(deps, req.sessionId, loaded, state, ledger);
  return { report: reports[0] ?? null, reports };
}

/**
 * Collects one turn of a session (Stop, SubagentStop, SessionEnd). The caller holds the state lock.
 * Throws only on I/O failures of the state dir (the caller logs; the next hook retries).
 */
export async function collectSession(deps: CollectDeps, req: CollectRequest): Promise<CollectResult> {
  const ledger = new Ledger(deps.paths.ledgerDir, deps.log, deps.now);
  await applyPendingOutboxes(deps, ledger);
  return collectWith(deps, req, ledger);
}

/**
 * SessionStart: creates the session's state when missing (a converted or recovered one when the
 * file is legacy or corrupt) and reopens a closed one (a resumed session keeps its id). Reads no
 * transcript.
 */
export async function ensureSessionState(deps: CollectDeps, req: CollectRequest): Promise<void> {
  const main = resolve(req.transcriptPath);
  const { state, status } = await readSessionState(deps.paths, req.sessionId, {
    log: deps.log,
    now: deps.now,
    transcriptPath: main,
  });
  if (status === 'ok' && !state.closed && state.transcriptPath === main) return;
  state.closed = false;
  state.transcriptPath = main;
  state.updatedAt = deps.now().toISOString();
  await writeSessionState(deps.paths, state);
}

/**
 * Finishes leftover outboxes, then collects sessions left open (no SessionEnd: a crash, a kill)
 * whose files grew, at most `maxSessions` of them per call. Closes sessions whose main transcript
 * vanished and sessions idle for IDLE_CLOSE_MILLIS. Returns the number of sessions collected.
 * The caller holds the state lock.
 */
export async function catchUpOpenSessions(
  deps: CollectDeps,
  opts: { exceptSessionId?: string; maxSessions?: number } = {},
): Promise<number> {
  const maxSessions = opts.maxSessions ?? DEFAULT_MAX_CATCH_UP_SESSIONS;
  let ledger = new Ledger(deps.paths.ledgerDir, deps.log, deps.now);
  await applyPendingOutboxes(deps, ledger);
  let collected = 0;
  const settled = await SettledStates.load(deps.paths);
  // Every readable state, closed ones too: a leftover outbox must reach the queue whatever the
  // session's status (legacy and corrupt states wait for their own session's hook). A state
  // found settled before and unchanged since is not read again.
  const ids = await listSessionIds(deps.paths);
  settled.retain(ids);
  for (const id of ids) {
    if (id === opts.exceptSessionId || (await settled.isSettled(id))) continue;
    let state: SessionState | null;
    try {
      state = await peekSessionState(deps.paths, id);
    } catch {
      continue; // unreadable (EACCES): its own hook reports the error
    }
    if (state === null) continue;
    try {
      if (await catchUpOne(deps, state, ledger, collected < maxSessions)) collected++;
      if (state.closed && state.outbox.length === 0) await settled.note(state);
    } catch (err) {
      deps.log.error(`catch-up of session ${id} failed: ${describeError(err)}`);
      // The failed run may have staged entries it never committed: start from disk again.
      ledger = new Ledger(deps.paths.ledgerDir, deps.log, deps.now);
    }
  }
  // Sessions the Rust version left open (a crash, or still running when the plugin was replaced):
  // taken over (which counts nothing it reported) and collected like any other.
  for (const rust of await listOpenRustSessions(deps.paths, (id) => settled.has(id))) {
    if (collected >= maxSessions) break;
    if (rust.sessionId === opts.exceptSessionId) continue;
    try {
      await collectWith(deps, { sessionId: rust.sessionId, transcriptPath: rust.transcriptPath }, ledger);
      collected++;
    } catch (err) {
      deps.log.error(`catch-up of session ${rust.sessionId} failed: ${describeError(err)}`);
      ledger = new Ledger(deps.paths.ledgerDir, deps.log, deps.now);
    }
  }
  await settled.save();
  return collected;
}

/**
 * Catch-up of one session's state: applies a leftover outbox; closes it when its transcript is
 * gone or idle; collects it when its files grew and `mayCollect`. True when it collected.
 */
async function catchUpOne(deps: CollectDeps, state: SessionState, ledger: Ledger, mayCollect: boolean): Promise<boolean> {
  const id = state.sessionId;
  if (state.outbox.length > 0) await applyOutbox(deps, state, ledger);
  if (state.closed || state.transcriptPath === '') return false;
  let mainStat: Awaited<ReturnType<typeof stat>>;
  try {
    mainStat = await stat(state.transcriptPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    state.closed = true;
    state.updatedAt = deps.now().toISOString();
    await writeSessionState(deps.paths, state);
    deps.log.activity(`session ${id}: transcript gone, closed`);
    return false;
  }
  if (!mayCollect) return false;
  const req: CollectRequest = { sessionId: id, transcriptPath: state.transcriptPath };
  let grew = false;
  for (const path of await listSessionFiles(state, req)) {
    if ((await fileChanged(path, state.files[path])) === true) {
      grew = true;
      break;
    }
  }
  if (grew) {
    await collectWith(deps, req, ledger);
    return true;
  }
  if (deps.now().getTime() - mainStat.mtimeMs > IDLE_CLOSE_MILLIS) {
    state.closed = true;
    state.updatedAt = deps.now().toISOString();
    await writeSessionState(deps.paths, state);
    deps.log.activity(`session ${id}: idle, closed`);
  }
  return false;
}
