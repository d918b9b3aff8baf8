/**
 * `ccflux flush`: delivers the queue now, oldest first, under the same deliver lock as the hooks,
 * stopping at the first answer that says wait (network down, 429/5xx, clock skew, …). Shows a
 * progress bar on a terminal, plain lines otherwise, and ends with delivered / still queued /
 * rejected.
 */
import { formatTimestamp } from '../../protocol/wire';
import { CONFIGURE_HINT, loadCredentials, validateEndpoint } from '../../client/local/credentials';
import { displayPath } from '../../client/local/data-dirs';
import {
  type DeliverDeps,
  type DeliverProgress,
  type DeliverySummary,
  type DeliveryStatus,
  readDeliveryStatus,
  type RunDeliveryResult,
  runDelivery,
  type StoppedBecause,
} from '../../client/deliver/drain';
import { CcfluxError, ERROR_CODES } from '../../client/local/errors';
import { isRevoked } from '../../client/deliver/keys';
import { createLogger } from '../../client/local/log';
import { type StatePaths, statePaths } from '../../client/local/paths';
import { createFsQueue } from '../../client/deliver/queue';
import { readStoredOptions } from '../../client/local/plugin-store';
import { createTransport } from '../../client/deliver/transport';
import { createProgress, type Progress, progressMode } from '../progress';
import { errorJson, forEachDataDir, onlyOutcome, READ_DIR_HELP, readTargets, sections, worstExit } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

/**
 * Long enough for a full queue at the receiver's default rate limit (30 a minute, 50 reports to a
 * unit: ~1,500 reports a minute); a dead network stops at once, and Ctrl-C stops any time with
 * nothing lost (every queue change is atomic).
 */
const FLUSH_BUDGET_MILLIS = 30 * 60_000;
const TICK_MILLIS = 1000;
/** How long to wait for a background worker that holds the deliver lock. */
const LOCK_WAIT_MILLIS = 5_000;
const LOCK_RETRY_MILLIS = 200;

export const EXIT_BY_STOP: Record<Exclude<StoppedBecause, null>, number> = {
  'no-credentials': EXIT.config,
  'config-invalid': EXIT.config,
  revoked: EXIT.auth,
  'token-revoked': EXIT.auth,
  unauthorized: EXIT.auth,
  unreachable: EXIT.network,
  'server-busy': EXIT.network,
  'unexpected-answer': EXIT.failure,
  'clock-skew': EXIT.failure,
  deadline: EXIT.failure,
  'registration-failed': EXIT.failure,
  forbidden: EXIT.failure,
  locked: EXIT.failure,
  backoff: EXIT.network,
  error: EXIT.failure,
};

export const STOP_WORDS: Record<Exclude<StoppedBecause, null>, string> = {
  'no-credentials': 'no receiver is configured',
  'config-invalid': 'the configuration is not usable',
  revoked: 'the receiver revoked this device key',
  'token-revoked': 'the refresh token is expired or revoked — contact your IT admin',
  unauthorized: 'the receiver refused a fresh access token',
  unreachable: 'the receiver is unreachable',
  'server-busy': 'the receiver is busy or rate limiting (429/5xx)',
  'unexpected-answer': 'the receiver gave an unexpected answer',
  'clock-skew': "this computer's clock is off",
  deadline: 'the time budget ran out',
  'registration-failed': 'the device key could not be registered',
  forbidden: 'the receiver refused a report (403)',
  locked: 'the state lock stayed busy',
  backoff: 'the receiver failed lately and is being left alone for a while',
  error: 'an unexpected error',
};

/** Why there is nothing to deliver with, and what happens next (the plugin options may be out of reach). */
async function noCredentialsError(dataDir: string): Promise<CcfluxError> {
  const stored = await readStoredOptions(dataDir);
  if (stored.kind === 'keychain') {
    return new CcfluxError(
      ERROR_CODES.CONFIG_MISSING,
      `the plugin options of ${stored.pluginId} are in the macOS keychain, which only Claude Code's hooks can read; nothing was sent from this shell`,
      { hint: 'the queue is delivered after the next turn in Claude Code; `ccflux status` shows what the last delivery run used' },
    );
  }
  if (stored.kind === 'unset') {
    return new CcfluxError(ERROR_CODES.CONFIG_MISSING, `the plugin ${stored.pluginId} is installed in ${dataDir} but its api_endpoint/api_token are not set`, {
      hint: `run \`claude plugin configure ${stored.pluginId}\` (or \`ccflux login\`)`,
    });
  }
  return new CcfluxError(ERROR_CODES.CONFIG_MISSING, `no receiver configured for ${dataDir}`, { hint: CONFIGURE_HINT });
}

/** What to do after a stop, for each cause: "run it again" only where running it again can help. */
export const NEXT_STEP: Record<Exclude<StoppedBecause, null>, string> = {
  'no-credentials': CONFIGURE_HINT,
  'config-invalid': 'fix the setting named above, then `ccflux flush`',
  revoked: 'ask IT why; to start over with a new key: `ccflux logout --forget-key`, then set up again',
  'token-revoked': "ask IT for a new token and put it where the old one was (the plugin options, or `ccflux login`); then `ccflux flush`",
  unauthorized: 'run `ccflux doctor`; if the token exchange fails too, ask IT for a new token',
  unreachable: 'they go out after a later turn once the receiver answers, or run `ccflux flush` again then',
  'server-busy': 'they go out after a later turn, or run `ccflux flush` again in a few minutes',
  'unexpected-answer': 'check the endpoint with IT (`ccflux doctor` shows what answers there)',
  'clock-skew': 'set the system clock right (turn on automatic time / NTP), then `ccflux flush`',
  deadline: 'run `ccflux flush` again to go on',
  'registration-failed': 'run `ccflux doctor --fix` to register the device key, then `ccflux flush`',
  forbidden: 'run `ccflux doctor`; if it passes, send the last error to IT',
  locked: 'run `ccflux flush` again in a moment',
  backoff: 'run `ccflux flush` to try now',
  error: 'run `ccflux doctor`; if it persists, report it with the output of `ccflux status`',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Says plainly what is wrong before touching the queue (the deliverer would only log it). */
async function checkCanDeliver(ctx: CliContext, dataDir: string): Promise<StatePaths> {
  const paths = statePaths(dataDir);
  const credentials = await loadCredentials({ env: ctx.env, paths });
  if (!credentials) throw await noCredentialsError(dataDir);
  validateEndpoint(credentials.endpoint, ctx.env);
  if (await isRevoked(paths)) {
    throw new CcfluxError(ERROR_CODES.KEY_REVOKED, 'the receiver revoked this device key; nothing is delivered from this device', {
      hint: 'ask IT; to start over with a new key: `ccflux logout --forget-key`, then `ccflux login`',
    });
  }
  return paths;
}

/** Keeps the last counts the deliverer reported and draws them with a note. */
function trackProgress(progress: Progress, remaining: number) {
  let last: DeliverProgress = { delivered: 0, rejected: 0, remaining };
  const show = (note: string) => progress.update({ done: last.delivered + last.rejected, total: last.delivered + last.rejected + last.remaining, note });
  const onProgress = (p: DeliverProgress) => {
    const note = p.rejected > last.rejected ? 'rejected' : p.delivered > last.delivered ? 'delivered' : '';
    last = { delivered: p.delivered, rejected: p.rejected, remaining: p.remaining };
    show(note);
  };
  return { show, onProgress };
}

/** The receiver asked to wait (429/503 Retry-After): count it down where the user can see it. */
function countdownSleep(stdout: CliContext['stdout'], show: (note: string) => void) {
  return async (millis: number) => {
    for (let left = millis; left > 0; left -= TICK_MILLIS) {
      if (stdout.isTTY === true || left === millis || left % 10_000 < TICK_MILLIS) show(`waiting ${Math.ceil(left / 1000)}s: the receiver asked to slow down (Ctrl-C stops; nothing is lost)`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(TICK_MILLIS, left)));
    }
  };
}

async function deliverWaitingForLock(deps: DeliverDeps, onProgress: (p: DeliverProgress) => void): Promise<RunDeliveryResult> {
  const startedMillis = Date.now();
  let outcome = await runDelivery(deps, { deadlineMillis: FLUSH_BUDGET_MILLIS, onProgress });
  // A hook's background worker is delivering: give it a few seconds, then look again.
  while (outcome.skipped && Date.now() - startedMillis < LOCK_WAIT_MILLIS) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MILLIS));
    outcome = await runDelivery(deps, { deadlineMillis: FLUSH_BUDGET_MILLIS });
  }
  return outcome;
}

function busyResult(queued: number): CommandResult {
  return {
    exitCode: queued === 0 ? EXIT.ok : EXIT.failure,
    human:
      queued === 0
        ? 'A background delivery was running and has emptied the queue: nothing left to deliver.'
        : `A background delivery is still running; ${plural(queued, 'report')} still queued. Run \`ccflux flush\` again in a moment.`,
    json: { ok: queued === 0, busy: true, delivered: 0, stillQueued: queued, rejected: 0, stoppedBecause: 'busy', error: null },
  };
}

/** delivery_status.json also holds older errors: only one recorded by this run explains the stop. */
function errorOfThisRun(recorded: DeliveryStatus | null, startedAt: Date): string | null {
  return recorded?.lastError && recorded.lastErrorAt && recorded.lastErrorAt >= formatTimestamp(startedAt) ? recorded.lastError : null;
}

function summaryResult(outcome: DeliverySummary, thisRunError: string | null, rejectedPath: string): CommandResult {
  const counts = `Delivered ${outcome.delivered}, still queued ${outcome.remaining}, rejected ${outcome.rejected}.`;
  const lines = [counts];
  if (outcome.stoppedBecause) {
    lines.push(`Stopped: ${thisRunError ?? STOP_WORDS[outcome.stoppedBecause]}.`);
    if (outcome.remaining > 0) lines.push(`The reports stay queued. Next: ${NEXT_STEP[outcome.stoppedBecause]}`);
  }
  if (outcome.rejected > 0) lines.push(`Rejected reports were moved to ${rejectedPath}.`);
  const ok = outcome.stoppedBecause === null;
  return {
    exitCode: ok ? EXIT.ok : EXIT_BY_STOP[outcome.stoppedBecause as Exclude<StoppedBecause, null>],
    human: lines.join('\n'),
    json: {
      ok,
      busy: false,
      delivered: outcome.delivered,
      stillQueued: outcome.remaining,
      rejected: outcome.rejected,
      stoppedBecause: outcome.stoppedBecause,
      error: outcome.stoppedBecause ? (thisRunError ?? STOP_WORDS[outcome.stoppedBecause]) : null,
    },
  };
}

async function flushOne(ctx: CliContext, dataDir: string, json: boolean): Promise<CommandResult> {
  const paths = await checkCanDeliver(ctx, dataDir);

  const log = createLogger(paths, ctx.now);
  const queue = createFsQueue(paths, { log, now: ctx.now });
  const transport = createTransport({ env: ctx.env });
  const progress = createProgress(ctx.stdout, progressMode(ctx.stdout, json));
  const { show, onProgress } = trackProgress(progress, await queue.size().catch(() => 0));
  const deps = { paths, env: ctx.env, now: ctx.now, log, queue, transport, sleep: countdownSleep(ctx.stdout, show) };
  try {
    const startedAt = ctx.now();
    const outcome = await deliverWaitingForLock(deps, onProgress);
    progress.end();
    if (outcome.skipped) return busyResult(await queue.size().catch(() => 0));
    const recorded = outcome.stoppedBecause ? await readDeliveryStatus(paths) : null;
    return summaryResult(outcome, errorOfThisRun(recorded, startedAt), paths.rejected);
  } finally {
    progress.end();
    await log.flush();
    await transport.close();
  }
}

/** Each folder in turn (the one named, or every one set up), a section each; the sums on top. */
async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const { dataDirs } = await readTargets(ctx, options.configDir);
  const outcomes = await forEachDataDir(dataDirs, (dataDir) => flushOne(ctx, dataDir, options.json === true));
  const only = onlyOutcome(outcomes);
  if (only) return only;
  const sum = (key: 'delivered' | 'stillQueued' | 'rejected') =>
    outcomes.reduce((n, o) => n + (((o.result?.json as Record<string, unknown> | undefined)?.[key] as number | undefined) ?? 0), 0);
  const exitCode = worstExit(outcomes);
  return {
    exitCode,
    human: sections(outcomes, (dataDir) => `${displayPath(dataDir, ctx.home)}:`),
    json: {
      ok: exitCode === EXIT.ok,
      delivered: sum('delivered'),
      stillQueued: sum('stillQueued'),
      rejected: sum('rejected'),
      dataDirs: outcomes.map((o) => (o.error ? errorJson(o.dataDir, o.error) : { dataDir: o.dataDir, ...(o.result?.json as object) })),
    },
  };
}

export const flushCommand: CommandSpec = {
  name: 'flush',
  summary: 'Deliver the queued reports now (stops at the first answer that says wait)',
  example: 'ccflux flush\nccflux flush --json',
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', READ_DIR_HELP)
      .option('--json', 'print the outcome as JSON (no progress bar)');
  },
  run,
};
