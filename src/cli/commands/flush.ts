/**
 * `ccflux flush`: delivers the queue now, oldest first, under the same deliver lock as the hooks,
 * stopping at the first answer that says wait (network down, 429/5xx, clock skew, …). Shows a
 * progress bar on a terminal, plain lines otherwise, and ends with delivered / still queued /
 * rejected.
 */
import { formatTimestamp } from '../../protocol/wire';
import { CONFIGURE_HINT, loadCredentials, validateEndpoint } from '../../client/local/credentials';
import { resolveDataDir } from '../../client/local/data-dirs';
import { readDeliveryStatus, runDelivery, type StoppedBecause } from '../../client/deliver/drain';
import { CcfluxError, ERROR_CODES } from '../../client/local/errors';
import { isRevoked } from '../../client/deliver/keys';
import { createLogger } from '../../client/local/log';
import { statePaths } from '../../client/local/paths';
import { createFsQueue } from '../../client/deliver/queue';
import { readStoredOptions } from '../../client/local/plugin-store';
import { createTransport } from '../../client/deliver/transport';
import { createProgress, progressMode } from '../progress';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

/** A whole queue at the receiver's default rate limit fits; a dead network stops much sooner. */
const FLUSH_BUDGET_MILLIS = 120_000;
/** How long to wait for a background worker that holds the deliver lock. */
const LOCK_WAIT_MILLIS = 5_000;
const LOCK_RETRY_MILLIS = 200;

const EXIT_BY_STOP: Record<Exclude<StoppedBecause, null>, number> = {
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

const STOP_WORDS: Record<Exclude<StoppedBecause, null>, string> = {
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

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const json = options.json === true;
  const { dataDir } = await resolveDataDir({ configDir: options.configDir as string | undefined, env: ctx.env, home: ctx.home, cwd: ctx.cwd });
  const paths = statePaths(dataDir);

  // Say plainly what is wrong before touching the queue (the deliverer would only log it).
  const credentials = await loadCredentials({ env: ctx.env, paths });
  if (!credentials) throw await noCredentialsError(dataDir);
  validateEndpoint(credentials.endpoint, ctx.env);
  if (await isRevoked(paths)) {
    throw new CcfluxError(ERROR_CODES.KEY_REVOKED, 'the receiver revoked this device key; nothing is delivered from this device', {
      hint: 'ask IT; to start over with a new key: `ccflux logout --forget-key`, then `ccflux login`',
    });
  }

  const log = createLogger(paths, ctx.now);
  const queue = createFsQueue(paths, { log, now: ctx.now });
  const transport = createTransport({ env: ctx.env });
  const progress = createProgress(ctx.stdout, progressMode(ctx.stdout, json));
  let last = { delivered: 0, rejected: 0 };
  const deps = { paths, env: ctx.env, now: ctx.now, log, queue, transport };
  try {
    const startedAt = ctx.now();
    const startedMillis = Date.now();
    let outcome = await runDelivery(deps, {
      deadlineMillis: FLUSH_BUDGET_MILLIS,
      onProgress: (p) => {
        const note = p.rejected > last.rejected ? 'rejected' : p.delivered > last.delivered ? 'delivered' : '';
        last = { delivered: p.delivered, rejected: p.rejected };
        progress.update({ done: p.delivered + p.rejected, total: p.delivered + p.rejected + p.remaining, note });
      },
    });
    // A hook's background worker is delivering: give it a few seconds, then look again.
    while (outcome.skipped && Date.now() - startedMillis < LOCK_WAIT_MILLIS) {
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MILLIS));
      outcome = await runDelivery(deps, { deadlineMillis: FLUSH_BUDGET_MILLIS });
    }
    progress.end();

    if (outcome.skipped) {
      const queued = await queue.size().catch(() => 0);
      return {
        exitCode: queued === 0 ? EXIT.ok : EXIT.failure,
        human:
          queued === 0
            ? 'A background delivery was running and has emptied the queue: nothing left to deliver.'
            : `A background delivery is still running; ${plural(queued, 'report')} still queued. Run \`ccflux flush\` again in a moment.`,
        json: { ok: queued === 0, busy: true, delivered: 0, stillQueued: queued, rejected: 0, stoppedBecause: 'busy', error: null },
      };
    }

    // delivery_status.json also holds older errors: only one recorded by this run explains the stop.
    const recorded = outcome.stoppedBecause ? await readDeliveryStatus(paths) : null;
    const thisRunError =
      recorded?.lastError && recorded.lastErrorAt && recorded.lastErrorAt >= formatTimestamp(startedAt) ? recorded.lastError : null;
    const counts = `Delivered ${outcome.delivered}, still queued ${outcome.remaining}, rejected ${outcome.rejected}.`;
    const lines = [counts];
    if (outcome.stoppedBecause) {
      lines.push(`Stopped: ${thisRunError ?? STOP_WORDS[outcome.stoppedBecause]}.`);
      if (outcome.remaining > 0) lines.push('The reports stay queued: they go out after a later turn, or run `ccflux flush` again.');
    }
    if (outcome.rejected > 0) lines.push(`Rejected reports were moved to ${paths.rejected}.`);
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
  } finally {
    progress.end();
    await log.flush();
    await transport.close();
  }
}

export const flushCommand: CommandSpec = {
  name: 'flush',
  summary: 'Deliver the queued reports now (stops at the first answer that says wait)',
  example: 'ccflux flush\nccflux flush --json',
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', 'Claude Code data folder (default: $CLAUDE_CONFIG_DIR, else ~/.claude)')
      .option('--json', 'print the outcome as JSON (no progress bar)');
  },
  run,
};
