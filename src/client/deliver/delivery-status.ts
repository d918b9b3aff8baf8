/**
 * `delivery_status.json`: what the last drain did, for `ccflux status` and `doctor`. Times are
 * RFC 3339; `lastError` is sanitised and redacted, so no secret reaches the file.
 */
import { formatTimestamp } from '../../protocol/wire';
import { describeError } from '../local/errors';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import { type Logger, redact } from '../local/log';
import type { StatePaths } from '../local/paths';
import type { Halt, StoppedBecause } from './halt';

const MAX_STATUS_ERROR_CHARS = 300;

export interface DeliveryStatus {
  lastAttemptAt: string | null;
  lastDeliveryAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  lastStoppedBecause: StoppedBecause;
  /** Where the last run found its credentials (`plugin-options` in a hook), and for which endpoint. No secret. */
  lastCredentialSource: string | null;
  lastEndpoint: string | null;
}

const EMPTY_STATUS: DeliveryStatus = {
  lastAttemptAt: null,
  lastDeliveryAt: null,
  lastErrorAt: null,
  lastError: null,
  consecutiveFailures: 0,
  lastStoppedBecause: null,
  lastCredentialSource: null,
  lastEndpoint: null,
};

/** What one drain contributes to the status file. */
export interface DrainOutcome {
  /** A request was (about to be) made. */
  reachedNetwork: boolean;
  delivered: number;
  halt: Halt | null;
  /** The credentials the run used, when it found any. */
  credentials?: { source: string; endpoint: string } | null;
}

/** Reads `delivery_status.json`; defaults when absent or unreadable. */
export async function readDeliveryStatus(paths: Pick<StatePaths, 'deliveryStatus'>): Promise<DeliveryStatus> {
  try {
    const text = await readTextIfExists(paths.deliveryStatus);
    if (text === null) return { ...EMPTY_STATUS };
    const parsed = JSON.parse(text) as Partial<DeliveryStatus>;
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    return {
      lastAttemptAt: str(parsed.lastAttemptAt),
      lastDeliveryAt: str(parsed.lastDeliveryAt),
      lastErrorAt: str(parsed.lastErrorAt),
      lastError: str(parsed.lastError),
      consecutiveFailures:
        typeof parsed.consecutiveFailures === 'number' && Number.isSafeInteger(parsed.consecutiveFailures) && parsed.consecutiveFailures >= 0
          ? parsed.consecutiveFailures
          : 0,
      lastStoppedBecause: str(parsed.lastStoppedBecause) as StoppedBecause,
      lastCredentialSource: str(parsed.lastCredentialSource),
      lastEndpoint: str(parsed.lastEndpoint),
    };
  } catch {
    return { ...EMPTY_STATUS };
  }
}

/** Pure: the next status from the previous one and a drain's outcome. */
export function nextDeliveryStatus(previous: DeliveryStatus, outcome: DrainOutcome, at: string): DeliveryStatus {
  const { halt } = outcome;
  const next: DeliveryStatus = { ...previous, lastStoppedBecause: halt?.because ?? null };
  if (outcome.reachedNetwork) next.lastAttemptAt = at;
  if (outcome.credentials) {
    next.lastCredentialSource = outcome.credentials.source;
    next.lastEndpoint = outcome.credentials.endpoint;
  }
  if (outcome.delivered > 0) next.lastDeliveryAt = at;
  if (halt?.failure) {
    next.lastErrorAt = at;
    next.lastError = redact(halt.message.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?')).slice(0, MAX_STATUS_ERROR_CHARS);
    next.consecutiveFailures = previous.consecutiveFailures + 1;
  } else if (halt === null || outcome.delivered > 0) {
    // A pause at the deadline proves nothing either way: only a clean run or a delivery resets.
    next.consecutiveFailures = 0;
  }
  return next;
}

export async function recordDeliveryStatus(
  deps: { paths: StatePaths; now: () => Date; log: Logger },
  outcome: DrainOutcome,
): Promise<void> {
  try {
    const previous = await readDeliveryStatus(deps.paths);
    const next = nextDeliveryStatus(previous, outcome, formatTimestamp(deps.now()));
    await writeFileAtomic(deps.paths.deliveryStatus, `${JSON.stringify(next, null, 2)}\n`);
  } catch (err) {
    deps.log.error(`cannot write delivery_status.json: ${describeError(err)}`);
  }
}
