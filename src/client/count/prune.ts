/**
 * Ledger pruning: drops the entries no session can need again, so a device's ledger (and its
 * per-turn cost) stays bounded after years of use. docs/DESIGN.md "Ledger pruning".
 *
 * An entry belongs to a session: its `s` (the session that first counted it), or the id inside a
 * `turns:<id>` key. What a session's entries are for: a re-read of its files (rewritten file,
 * lost state) and a copy of them (`--fork-session`, older `--resume`) count nothing twice, and
 * its cost-state accounting (`cs:`/`al:`/`bg:`/`base:`) goes on where it stopped when it is
 * resumed. So they are kept while the session can still be read, resumed or copied:
 *
 *   - **retired** sessions lose their entries: a v1 state that is closed, has an empty outbox, is
 *     not named in `outbox.pending`, whose main transcript is gone (Claude Code deletes
 *     transcripts after `cleanupPeriodDays`, 30 by default) and no `<id>.jsonl` is in any folder
 *     of `projects/` (a moved project), and that no kept session names as a parent (a fork that
 *     copied its lines). Their state files go at the end of a cycle;
 *   - every other session with a state file (open, transcript still there, legacy or unreadable
 *     state) keeps everything, however old: a session can be resumed as long as its file exists;
 *   - entries of sessions with no state file at all (a state deleted by hand; ledgers written
 *     before states existed) are kept for ORPHAN_HORIZON_DAYS after they were last raised (`t`;
 *     an entry without `t` is stamped with the day it is first seen here).
 *
 * Work is bounded per run: SHARDS_PER_RUN shards, the next ones on the next run, one cycle over
 * all 256 at most every PRUNE_INTERVAL_DAYS, the first a day after the first run (which has
 * nothing old to drop). Progress lives in `ledger/prune.json`. The caller
 * holds the state lock and has committed its turn (nothing staged).
 */
import { mkdir, readdir, stat, unlink } from '../local/fs';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, readTextIfExists, writeFileAtomic } from '../local/fsx';
import type { Logger } from '../local/log';
import { isSafeSessionId, type StatePaths } from '../local/paths';
import { dayNumber, Ledger, type LedgerEntry } from './ledger';
import { PENDING_OUTBOX_FILE } from './collect';
import { listSessionIds, peekSessionState, type SessionState, SettledStates } from './session-state';

/** Entries of a session with no state file are kept this long after they were last raised. */
export const ORPHAN_HORIZON_DAYS = 180;
/** A pruning cycle over all shards starts at most this often. */
export const PRUNE_INTERVAL_DAYS = 1;
/** Shards looked at per run (of 256): a cycle spreads over 8 runs (each well under a second on a busy machine: the state lock is held). */
export const SHARDS_PER_RUN = 32;
const SHARD_COUNT = 256;
const PROGRESS_FILE = 'prune.json';

export interface PruneDeps {
  paths: StatePaths;
  now: () => Date;
  log: Logger;
}

interface Progress {
  /** Day the current cycle started. */
  day: number;
  /** Next shard index (0..256; 256: cycle done). */
  next: number;
  /** Sessions judged retired so far in this cycle (their state files go when it ends). */
  retired: string[];
}

/** The session an entry belongs to, or null when it names none. */
export function entrySession(e: LedgerEntry): string | null {
  if (e.s !== undefined) return e.s;
  return e.k.startsWith('turns:') ? e.k.slice('turns:'.length) : null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    // Only a clear "not there" retires a session; EACCES and the like keep it.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** What judging needs of a state. */
interface StateView {
  sessionId: string;
  closed: boolean;
  outboxEmpty: boolean;
  transcriptPath: string;
  parents: string[];
}

/** Closed, nothing left to apply, and its main transcript is gone: it can never be read again. */
async function isRetirable(state: StateView, pending: ReadonlySet<string>): Promise<boolean> {
  if (!state.closed || !state.outboxEmpty || pending.has(state.sessionId) || state.transcriptPath === '') return false;
  return !(await exists(state.transcriptPath));
}

/** A state as judging sees it: from catch-up's index when settled and unchanged, else read. */
async function viewOf(paths: StatePaths, settled: SettledStates, id: string): Promise<StateView | null> {
  const info = (await settled.isSettled(id)) ? settled.info(id) : undefined;
  if (info !== undefined) return { sessionId: id, closed: true, outboxEmpty: true, ...info };
  let state: SessionState | null = null;
  try {
    state = await peekSessionState(paths, id);
  } catch {
    return null; // unreadable: kept
  }
  if (state === null) return null;
  return { sessionId: id, closed: state.closed, outboxEmpty: state.outbox.length === 0, transcriptPath: state.transcriptPath, parents: state.parents ?? [] };
}

export interface Liveness {
  /** Sessions with a state file that keep their entries. */
  kept: Set<string>;
  /** Sessions whose entries go. */
  retired: Set<string>;
}

/** Judges every session with a state file (see the file comment). */
export async function judgeSessions(paths: StatePaths): Promise<Liveness> {
  const pendingText = (await readTextIfExists(join(paths.dir, PENDING_OUTBOX_FILE))) ?? '';
  const pending = new Set(pendingText.split('\n'));
  const kept = new Set<string>();
  const candidates: StateView[] = [];
  const parents = new Set<string>();
  const settled = await SettledStates.load(paths);
  for (const id of await listSessionIds(paths)) {
    const state = await viewOf(paths, settled, id);
    if (state !== null && (await isRetirable(state, pending))) candidates.push(state);
    else {
      kept.add(id);
      for (const p of state?.parents ?? []) parents.add(p);
    }
  }
  const retired = new Set<string>();
  const elsewhere = candidates.length > 0 ? await transcriptIdsOnDisk(paths) : new Set<string>();
  for (const state of candidates) {
    if (parents.has(state.sessionId) || elsewhere.has(state.sessionId)) kept.add(state.sessionId);
    else retired.add(state.sessionId);
  }
  return { kept, retired };
}

/**
 * Session ids with a main transcript anywhere under `<data_dir>/projects/*\/` (a project folder
 * moved or renamed: resuming from there reads the file from 0 under a new path, and only the
 * ledger keeps that from counting it twice). One readdir per project folder.
 */
async function transcriptIdsOnDisk(paths: StatePaths): Promise<Set<string>> {
  const ids = new Set<string>();
  const projects = join(paths.dataDir, 'projects');
  let folders: string[];
  try {
    folders = await readdir(projects);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ids;
    throw err; // unreadable: retire nothing this run
  }
  for (const folder of folders) {
    let names: string[] = [];
    try {
      names = await readdir(join(projects, folder));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTDIR' && code !== 'ENOENT') throw err;
    }
    for (const name of names) if (name.endsWith('.jsonl')) ids.add(name.slice(0, -'.jsonl'.length));
  }
  return ids;
}

/** What happens to one entry: kept as is, stamped with today, or dropped. */
export function decideEntry(e: LedgerEntry, liveness: Liveness, today: number): LedgerEntry | null {
  const session = entrySession(e);
  if (session !== null && liveness.retired.has(session)) return null;
  if (session !== null && liveness.kept.has(session)) return e;
  if (e.t === undefined) return { ...e, t: today };
  return today - e.t > ORPHAN_HORIZON_DAYS ? null : e;
}

function parseProgress(text: string | null): Progress | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<Progress>;
    if (!Number.isSafeInteger(v.day) || !Number.isSafeInteger(v.next) || !Array.isArray(v.retired)) return null;
    const next = Math.min(Math.max(v.next as number, 0), SHARD_COUNT);
    return { day: v.day as number, next, retired: v.retired.filter((id): id is string => typeof id === 'string' && isSafeSessionId(id)) };
  } catch {
    return null;
  }
}

export interface PruneResult {
  shards: number;
  dropped: number;
  statesRemoved: number;
}

/**
 * Runs the next slice of the pruning cycle when one is due (`force`: now, whatever the interval,
 * and every remaining shard). Returns what it did; never throws for a damaged progress file.
 */
export async function pruneLedger(deps: PruneDeps, opts: { force?: boolean; shardsPerRun?: number } = {}): Promise<PruneResult> {
  const result: PruneResult = { shards: 0, dropped: 0, statesRemoved: 0 };
  const progressPath = join(deps.paths.ledgerDir, PROGRESS_FILE);
  const today = dayNumber(deps.now());
  const text = await readTextIfExists(progressPath);
  let progress = parseProgress(text);
  if (text === null && opts.force !== true) {
    // A data dir's first run (often the first read of a long session, the heaviest run there is)
    // has nothing old to drop: the first cycle starts a day later.
    await mkdir(deps.paths.ledgerDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writeFileAtomic(progressPath, `${JSON.stringify({ day: today, next: SHARD_COUNT, retired: [] })}\n`);
    return result;
  }
  if (progress === null || (progress.next >= SHARD_COUNT && (opts.force === true || today - progress.day >= PRUNE_INTERVAL_DAYS))) {
    progress = { day: today, next: 0, retired: [] };
  }
  if (progress.next >= SHARD_COUNT) return result;
  const liveness = await judgeSessions(deps.paths);
  const ledger = new Ledger(deps.paths.ledgerDir, deps.log, deps.now);
  const end = opts.force === true ? SHARD_COUNT : Math.min(progress.next + (opts.shardsPerRun ?? SHARDS_PER_RUN), SHARD_COUNT);
  for (let i = progress.next; i < end; i++) {
    const id = i.toString(16).padStart(2, '0');
    const { dropped } = await ledger.rewriteShard(id, (e) => decideEntry(e, liveness, today));
    result.dropped += dropped;
    result.shards++;
  }
  // A session retired in every slice of the cycle has no entries left: its state file can go.
  const retiredSoFar = progress.next === 0 ? [...liveness.retired] : progress.retired.filter((id) => liveness.retired.has(id));
  progress = { day: progress.day, next: end, retired: retiredSoFar };
  if (end >= SHARD_COUNT) {
    for (const id of retiredSoFar) {
      try {
        await unlink(deps.paths.sessionOffset(id));
        result.statesRemoved++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    progress.retired = [];
  }
  await mkdir(deps.paths.ledgerDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await writeFileAtomic(progressPath, `${JSON.stringify(progress)}\n`);
  if (result.dropped > 0 || result.statesRemoved > 0) {
    deps.log.activity(`ledger pruned: ${result.dropped} entr(ies) dropped from ${result.shards} shard(s), ${result.statesRemoved} retired session state(s) removed`);
  }
  return result;
}
