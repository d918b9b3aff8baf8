/**
 * The hook worker: what `ccflux init|report-turn|session-end --foreground` does once the hook
 * JSON is in hand. It runs detached from Claude Code (see plugin/scripts/ccflux-hook.sh), so it
 * may take its time, but it never throws and never prints: every problem goes to the logs.
 *
 *   hook input → data dir → state lock { collect this session, catch up the others } → deliver
 *
 * Collection happens under the state lock; delivery outside it, under the deliver lock that
 * `runDelivery` takes itself (one delivering process per data dir; a busy one is skipped, and
 * the holder re-checks the queue after releasing). A worker that was skipped waits for the
 * holder to go and looks again, in case the holder was killed before its re-check.
 */
import { readdir, realpath, stat } from '../local/fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { readUserEmailCached } from '../local/account';
import { catchUpOpenSessions, collectSession, ensureSessionState } from '../count/collect';
import { readCommittedCursor } from '../count/session-state';
import { pruneLedger } from '../count/prune';
import { isUnder } from '../count/safe-files';
import { DELIVER_LOCK_OPTIONS, runDelivery, STATE_LOCK_OPTIONS } from '../deliver/drain';
import { describeError } from '../local/errors';
import { ensurePrivateDir, waitForLockHolder, withLock } from '../local/fsx';
import { ensureSigningKey, isRevoked } from '../deliver/keys';
import { createLogger, type Logger } from '../local/log';
import { dataDirFromTranscript, dataDirOfPluginRoot, defaultDataDir, isSafeSessionId, type StatePaths, statePaths } from '../local/paths';
import { createFsQueue, type QueueStore } from '../deliver/queue';
import { type CommittedCursor, probeFile, type SettleDeps, waitForSettle } from './settle';
import { sweepOrphans } from './sweep';
import { createTransport } from '../deliver/transport';

export type HookEvent = 'init' | 'report-turn' | 'session-end';

/** Whole worker budget, collection included; delivery gets what is left (at least the minimum). */
const WORKER_BUDGET_MILLIS = 75_000;
const MIN_DELIVERY_MILLIS = 5_000;
const DELIVER_LOCK_STALE_MILLIS = DELIVER_LOCK_OPTIONS.staleMillis ?? 30_000;
/** Hook JSON fields are paths and ids; anything longer is not what Claude Code sends. */
const MAX_PATH_CHARS = 4096;

export interface HookDeps {
  env: NodeJS.ProcessEnv;
  home: string;
  now: () => Date;
  /** Defaults to the data dir's activity/errors logs. */
  log?: Logger;
  /** Settle-before-read timing (settle.ts); tests pass a fake clock. */
  settle?: SettleDeps;
}

export interface HookInput {
  sessionId: string;
  /** Null when Claude Code did not send one (then the transcript is searched for). */
  transcriptPath: string | null;
  /** SubagentStop only. */
  agentTranscriptPath: string | null;
}

export type HookOutcome =
  | { status: 'done'; dataDir: string }
  | { status: 'invalid-input'; reason: string }
  | { status: 'no-transcript' }
  | { status: 'other-data-dir'; dataDir: string; pluginDataDir: string }
  | { status: 'revoked'; dataDir: string }
  | { status: 'failed'; dataDir: string | null; reason: string };

function optionalPath(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_PATH_CHARS && !value.includes('\0')
    ? value
    : null;
}

/** Picks the fields ccflux uses out of Claude Code's hook JSON; nothing else is kept. */
export function parseHookInput(input: unknown): { ok: true; value: HookInput } | { ok: false; reason: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, reason: 'hook input is not a JSON object' };
  }
  const record = input as Record<string, unknown>;
  if (!isSafeSessionId(record.session_id)) return { ok: false, reason: 'hook input has no usable session_id' };
  return {
    ok: true,
    value: {
      sessionId: record.session_id,
      transcriptPath: optionalPath(record.transcript_path),
      agentTranscriptPath: optionalPath(record.agent_transcript_path),
    },
  };
}

/**
 * Parses hook JSON text. Claude Code's input can carry a large `last_assistant_message`; when the
 * text is not valid JSON as a whole (cut short, say) the few fields we use are still picked out.
 */
export function parseHookText(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.length === 0) return null;
  try {
    return JSON.parse(trimmed);
  } catch {
    const fields: Record<string, string> = {};
    for (const key of ['session_id', 'transcript_path', 'agent_transcript_path']) {
      const match = new RegExp(`"${key}"\\s*:\\s*("(?:[^"\\\\]|\\\\.)*")`).exec(trimmed);
      if (!match?.[1]) continue;
      try {
        fields[key] = JSON.parse(match[1]) as string;
      } catch {
        // an unparseable string is as good as absent
      }
    }
    return Object.keys(fields).length > 0 ? fields : null;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** True for `<data_dir>/projects/<project>/<session>.jsonl`, the only shape we derive a data dir from. */
function looksLikeMainTranscript(path: string): boolean {
  const absolute = resolve(path);
  return absolute.endsWith('.jsonl') && basename(dirname(dirname(absolute))) === 'projects';
}

/** `<data_dir>/projects/*\/<session_id>.jsonl`, for hooks that sent no (or a stale) transcript path. */
async function findTranscript(dataDirs: string[], sessionId: string): Promise<string | null> {
  for (const dataDir of dataDirs) {
    const projects = join(dataDir, 'projects');
    let entries: string[];
    try {
      entries = await readdir(projects);
    } catch {
      continue;
    }
    for (const project of entries) {
      const candidate = join(projects, project, `${sessionId}.jsonl`);
      if (await isFile(candidate)) return candidate;
    }
  }
  return null;
}

/**
 * The main transcript to work on. SessionStart often fires before the transcript exists, so for
 * `init` a well-formed path is taken as it is; for the others a path that is missing on disk
 * (known Claude Code bugs after resume or EnterWorktree) is searched for by session id.
 */
async function resolveTranscript(event: HookEvent, input: HookInput, deps: HookDeps): Promise<string | null> {
  const given = input.transcriptPath && looksLikeMainTranscript(input.transcriptPath) ? resolve(input.transcriptPath) : null;
  if (given && (event === 'init' || (await isFile(given)))) return given;
  const candidates = [...new Set([given ? dataDirFromTranscript(given) : null, defaultDataDir(deps.env, deps.home)])];
  const found = await findTranscript(
    candidates.filter((d): d is string => d !== null),
    input.sessionId,
  );
  return found ?? given;
}

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/** Logs to the default data dir's ccflux folder when one already exists (never creates it). */
async function logWithoutDataDir(deps: HookDeps, message: string): Promise<void> {
  if (deps.log) {
    deps.log.error(message);
    await deps.log.flush();
    return;
  }
  const paths = statePaths(defaultDataDir(deps.env, deps.home));
  if (!(await isDirectory(paths.dir))) return;
  const log = createLogger(paths, deps.now);
  log.error(message);
  await log.flush();
}

/**
 * Stop/SubagentStop: waits (bounded, settle.ts) for the turn's final lines to reach the disk, so
 * this turn's report holds its own final response. Measured on the real clock: the wait is wall
 * time of the detached worker, whatever clock the reports use.
 */
async function settleBeforeReading(path: string, deps: HookDeps, log: Logger, cursor: () => Promise<CommittedCursor>): Promise<void> {
  try {
    const settle = deps.settle ?? { ...REAL_SETTLE, probe: (p: string) => probeFile(p, cursor) };
    const settled = await waitForSettle(path, settle);
    log.activity(`transcript settled after ${Math.round(settled.waitedMillis)} ms (${settled.reason})`);
  } catch (err) {
    log.error(`waiting for the transcript to settle failed, reading now: ${describeError(err)}`);
  }
}

const REAL_SETTLE: SettleDeps = {
  // process.hrtime, not performance.now(): the `performance` global loads perf_hooks (~1 ms) on first use.
  now: () => {
    const [seconds, nanos] = process.hrtime();
    return seconds * 1_000 + nanos / 1e6;
  },
  sleep: (millis) => new Promise((resolve) => setTimeout(resolve, millis)),
  probe: probeFile,
};

/** What the steps of one hook share; `log` and `dataDir` are filled in as soon as they are known. */
interface HookRun {
  event: HookEvent;
  deps: HookDeps;
  log: Logger | undefined;
  dataDir: string | null;
}

/** The hook's session, its main transcript and the data dir that holds it. */
interface Located {
  hook: HookInput;
  transcriptPath: string;
  dataDir: string;
}

/** A located hook whose state dir exists, with its logger and the agent transcript it may read. */
interface Workplace extends Located {
  paths: StatePaths;
  logger: Logger;
  agentTranscriptPath: string | undefined;
}

/** Runs one hook's work to the end. Never throws; the outcome is for tests and the activity log. */
export async function runHook(event: HookEvent, input: unknown, deps: HookDeps): Promise<HookOutcome> {
  const startedMillis = deps.now().getTime();
  const run: HookRun = { event, deps, log: deps.log, dataDir: null };
  try {
    const located = await locateHook(run, input);
    if ('status' in located) return located;
    const place = await openStateDir(run, located);
    if ('status' in place) return place;
    const stopped = await prepareDevice(run, place);
    if (stopped) return stopped;
    const queue = createFsQueue(place.paths, { log: place.logger });
    await collectUnderStateLock(run, place, queue);
    await deliverWithinBudget(run, place, queue, startedMillis);
    return { status: 'done', dataDir: place.dataDir };
  } catch (err) {
    const reason = describeError(err);
    if (run.log) run.log.error(`${event}: ${reason}`);
    else await logWithoutDataDir(deps, `${event}: ${reason}`);
    return { status: 'failed', dataDir: run.dataDir, reason };
  } finally {
    await run.log?.flush();
  }
}

/** Hook input → transcript → data dir, or the outcome of a hook that stops before any of it. */
async function locateHook(run: HookRun, input: unknown): Promise<Located | HookOutcome> {
  const { event, deps } = run;
  const parsed = parseHookInput(input);
  if (!parsed.ok) {
    await logWithoutDataDir(deps, `${event}: ${parsed.reason}; hook skipped`);
    return { status: 'invalid-input', reason: parsed.reason };
  }
  const hook = parsed.value;
  const transcriptPath = await resolveTranscript(event, hook, deps);
  if (!transcriptPath) {
    await logWithoutDataDir(deps, `${event}: session ${hook.sessionId}: no transcript path and none found; hook skipped`);
    return { status: 'no-transcript' };
  }
  const dataDir = dataDirFromTranscript(transcriptPath);
  run.dataDir = dataDir;
  if (!(await isDirectory(dataDir))) {
    await logWithoutDataDir(deps, `${event}: session ${hook.sessionId}: the transcript's data dir does not exist; hook skipped`);
    return { status: 'no-transcript' };
  }

  // A plugin installed in one data dir must not report another data dir's sessions (a user
  // running two Claude Code profiles with the plugin enabled in only one of them).
  const pluginRoot = deps.env.CLAUDE_PLUGIN_ROOT;
  const pluginDataDir = pluginRoot ? dataDirOfPluginRoot(pluginRoot) : null;
  if (pluginDataDir !== null && (await canonical(pluginDataDir)) !== (await canonical(dataDir))) {
    return { status: 'other-data-dir', dataDir, pluginDataDir };
  }
  return { hook, transcriptPath, dataDir };
}

/** Creates the data dir's ccflux folder and its logger, then checks the transcripts stay inside projects/. */
async function openStateDir(run: HookRun, located: Located): Promise<Workplace | HookOutcome> {
  const { event } = run;
  const { hook, transcriptPath, dataDir } = located;
  const paths = statePaths(dataDir);
  await ensurePrivateDir(paths.dir);
  const logger = run.log ?? createLogger(paths, run.deps.now);
  run.log = logger;

  // Only files whose real path is under this data dir's projects/ are read (issue 16): not a
  // transcript reached through a symlink leading out, not an agent transcript elsewhere.
  const projects = join(dataDir, 'projects');
  if (!(await isUnder(projects, transcriptPath))) {
    logger.error(`${event}: session ${hook.sessionId}: the transcript resolves outside the data dir's projects/; hook skipped`);
    return { status: 'no-transcript' };
  }
  let agentTranscriptPath: string | undefined;
  if (hook.agentTranscriptPath) {
    if (await isUnder(projects, hook.agentTranscriptPath)) agentTranscriptPath = resolve(hook.agentTranscriptPath);
    else logger.error(`${event}: session ${hook.sessionId}: agent_transcript_path is outside the data dir's projects/; not read`);
  }
  return { ...located, paths, logger, agentTranscriptPath };
}

/** Sweeps leftovers, stops a revoked device, makes sure a signing key exists; an outcome only when revoked. */
async function prepareDevice(run: HookRun, place: Workplace): Promise<HookOutcome | null> {
  const { event, deps } = run;
  const { paths, logger, dataDir } = place;
  if (event !== 'report-turn') {
    // Once per session start and end, not every turn: leftovers of killed processes.
    // File ages are measured on the clock that stamped the files, never on the report clock
    // (`deps.now`, which tests offset): a spool younger than the threshold is a live hook's.
    await sweepOrphans({ tmpDir: tmpdir(), stateDir: paths.dir, now: () => new Date(), log: logger });
  }

  // A revoked device stays silent: no collection (offsets stay put), nothing queued, no network.
  if (await isRevoked(paths)) {
    if (event === 'init') {
      logger.activity('this device key was revoked by the receiver; not reporting (see README "Troubleshooting")');
    }
    return { status: 'revoked', dataDir };
  }

  try {
    await ensureSigningKey(paths, { log: logger, now: deps.now });
  } catch (err) {
    // Collection does not need the key; delivery will try again and log its own line.
    logger.error(`${event}: cannot create the signing key: ${describeError(err)}`);
  }
  return null;
}

/** Collects this session (and catches up the others) under the state lock; failures are logged. */
async function collectUnderStateLock(run: HookRun, place: Workplace, queue: QueueStore): Promise<void> {
  const { event, deps } = run;
  const { paths, logger, hook, transcriptPath, agentTranscriptPath } = place;
  // `.claude.json` also holds project history (megabytes): only reports need the email, and they
  // take it from a cache that a changed account file invalidates.
  const userEmail = event === 'init' ? '' : await readUserEmailCached(paths.accountCache, { env: deps.env, home: deps.home });
  const collectDeps = { paths, now: deps.now, log: logger, queue, userEmail };
  if (event === 'report-turn') {
    // Asked again at each probe whose tail closes the turn: a worker of the previous turn may commit while this one waits.
    const cursor = () => readCommittedCursor(paths, hook.sessionId, agentTranscriptPath ?? transcriptPath);
    await settleBeforeReading(hook.agentTranscriptPath ?? transcriptPath, deps, logger, cursor);
  }
  try {
    // Waits up to 10 s for another hook's short critical section; if it cannot, the transcript
    // still holds everything and the next hook of this data dir collects it.
    await withLock(paths.stateLock, STATE_LOCK_OPTIONS, async () => {
      if (event === 'init') {
        await ensureSessionState(collectDeps, { sessionId: hook.sessionId, transcriptPath });
        return;
      }
      await collectSession(collectDeps, {
        sessionId: hook.sessionId,
        transcriptPath,
        ...(agentTranscriptPath ? { agentTranscriptPath } : {}),
        closing: event === 'session-end',
      });
      try {
        await catchUpOpenSessions(collectDeps, { exceptSessionId: hook.sessionId });
      } catch (err) {
        logger.error(`${event}: catching up other sessions failed: ${describeError(err)}`);
      }
      try {
        // After the turn's commit (nothing staged): a bounded slice, at most one cycle a day.
        await pruneLedger(collectDeps);
      } catch (err) {
        logger.error(`${event}: pruning the ledger failed: ${describeError(err)}`);
      }
    });
  } catch (err) {
    logger.error(`${event}: session ${hook.sessionId}: collection failed: ${describeError(err)}`);
  }
}

/** Delivers the queue within what is left of the worker budget; failures are logged. */
async function deliverWithinBudget(run: HookRun, place: Workplace, queue: QueueStore, startedMillis: number): Promise<void> {
  const { event, deps } = run;
  const { paths, logger } = place;
  const elapsedMillis = deps.now().getTime() - startedMillis;
  const deadlineMillis = Math.max(WORKER_BUDGET_MILLIS - elapsedMillis, MIN_DELIVERY_MILLIS);
  // Lock waits run on the wall clock (`deps.now` may be offset in tests).
  const deliverBy = Date.now() + deadlineMillis;
  const transport = createTransport({ env: deps.env });
  try {
    const deliverDeps = { paths, env: deps.env, now: deps.now, log: logger, queue, transport };
    let delivery = await runDelivery(deliverDeps, { deadlineMillis, respectBackoff: true });
    // Another process delivers. A live holder re-checks the queue before it lets go; one that is
    // killed first does not, so wait (within the budget) until it has gone, then look again:
    // a report made at the last hook before a crash is delivered now, not at the next turn.
    while (delivery.skipped && (await waitForLockHolder(paths.deliverLock, { staleMillis: DELIVER_LOCK_STALE_MILLIS, deadlineAt: deliverBy }))) {
      const left = deliverBy - Date.now();
      if (left < 1000) break;
      delivery = await runDelivery(deliverDeps, { deadlineMillis: left, respectBackoff: true });
    }
  } catch (err) {
    logger.error(`${event}: delivery failed: ${describeError(err)}`);
  } finally {
    // Idle keep-alive sockets would hold this process open for seconds after its work is done.
    await transport.close();
  }
}
