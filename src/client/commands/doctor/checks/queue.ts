import { parseTimestamp } from '../../../../protocol/wire';
import { type DeliveryStatus, readDeliveryStatus } from '../../../deliver/delivery-status';
import { createFsQueue, DEFAULT_QUEUE_MAX_BYTES } from '../../../deliver/queue';
import { readTextIfExists } from '../../../local/fsx';
import { nullLogger } from '../../../local/log';
import { formatDuration } from '../../status';
import { type Check, type CheckResult, resultOf } from '../check';

const id = { id: 'queue', title: 'report queue moving' } as const;

/** A queued report older than this means deliveries are not happening. */
export const QUEUE_STUCK_AFTER_MILLIS = 60 * 60 * 1000;

export interface QueueFacts {
  length: number;
  oldestReportAt: string | null;
  /** Bytes of pending_reports.jsonl, and its bound. */
  bytes: number;
  maxBytes: number;
  rejectedCount: number;
  /** This doctor run found the receiver unreachable. */
  receiverDown?: boolean;
  delivery: Pick<DeliveryStatus, 'lastError' | 'lastErrorAt' | 'lastDeliveryAt' | 'consecutiveFailures'>;
}

export function judgeQueue(facts: QueueFacts, now: Date): CheckResult {
  const rejected = facts.rejectedCount > 0 ? `; ${facts.rejectedCount} report(s) were refused for good (rejected_reports.jsonl)` : '';
  if (facts.length === 0) {
    return facts.rejectedCount > 0
      ? resultOf(id, 'warn', `empty${rejected}`, 'send rejected_reports.jsonl to IT if the count grows')
      : resultOf(id, 'pass', 'empty: everything was delivered');
  }
  const oldest = facts.oldestReportAt ? parseTimestamp(facts.oldestReportAt) : null;
  const ageMillis = oldest ? now.getTime() - oldest.getTime() : 0;
  const lastError = facts.delivery.lastError ? `; last error: ${facts.delivery.lastError}` : '';
  const waiting = `${facts.length} report(s) waiting, oldest ${oldest ? `${formatDuration(ageMillis)} old` : 'of unknown age'}`;
  if (facts.bytes >= facts.maxBytes * 0.9) {
    const mb = Math.round(facts.maxBytes / (1024 * 1024));
    return resultOf(id, 'fail', `${waiting}: the queue is nearly full (${mb} MB); older reports will be dropped${lastError}`, 'fix what the last error says, then run `ccflux flush`');
  }
  if (ageMillis > QUEUE_STUCK_AFTER_MILLIS) {
    return resultOf(id, 'fail', `${waiting}: deliveries are not getting through${lastError}${rejected}`, 'run `ccflux flush` to deliver now and see why');
  }
  if (facts.receiverDown) {
    return resultOf(
      id,
      'warn',
      `${waiting}; the receiver is unreachable now, so they wait (nothing is lost) until it answers${rejected}`,
      'see "receiver reachable" above; once it answers, `ccflux flush` delivers them',
    );
  }
  return resultOf(id, 'pass', `${waiting}; delivered after the next turn${rejected}`);
}

export const queueCheck: Check = {
  ...id,
  async run(ctx) {
    const { paths, now } = ctx.deps;
    const reports = await createFsQueue(paths, { log: nullLogger })
      .list()
      .catch(() => []);
    const rejectedText = await readTextIfExists(paths.rejected).catch(() => null);
    const facts: QueueFacts = {
      length: reports.length,
      oldestReportAt: reports[0]?.timestamp_utc ?? null,
      bytes: reports.reduce((sum, r) => sum + Buffer.byteLength(JSON.stringify(r)) + 1, 0),
      maxBytes: DEFAULT_QUEUE_MAX_BYTES,
      receiverDown: ctx.unreachable,
      rejectedCount: rejectedText ? rejectedText.split('\n').filter((l) => l.trim() !== '').length : 0,
      delivery: await readDeliveryStatus(paths),
    };
    return judgeQueue(facts, now());
  },
};
