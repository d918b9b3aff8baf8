import { TIMESTAMP_WINDOW_MS } from '../../../../protocol/wire';
import { skewFromDateHeader } from '../../../deliver/answer';
import { formatDuration } from '../../status';
import { type Check, type CheckResult, resultOf, skippedOf } from '../check';

const id = { id: 'clock-skew', title: 'clock in sync with the receiver' } as const;

/** Skew under this is noise (the Date header has 1 s resolution, plus the request time). */
export const CLOCK_SKEW_WARN_MILLIS = 60_000;
/** Beyond this, signed reports come close to the receiver's ±5 min window. */
export const CLOCK_SKEW_FAIL_MILLIS = TIMESTAMP_WINDOW_MS - 60_000;

export function judgeClockSkew(dateHeader: string | undefined, now: Date): CheckResult {
  const skew = skewFromDateHeader(dateHeader, now);
  if (skew === null) {
    return resultOf(id, 'warn', 'cannot tell: the receiver sent no usable Date header', 'make sure this computer syncs its clock (NTP)');
  }
  const size = Math.abs(skew);
  const words = `this device is ${formatDuration(size)} ${skew >= 0 ? 'ahead of' : 'behind'} the receiver`;
  if (size <= CLOCK_SKEW_WARN_MILLIS) return resultOf(id, 'pass', size < 2000 ? 'in sync (within 2 s)' : words);
  const fix = 'turn on automatic time sync (NTP) for this computer';
  if (size <= CLOCK_SKEW_FAIL_MILLIS) return resultOf(id, 'warn', `${words}; reports are refused beyond 5 minutes`, fix);
  return resultOf(id, 'fail', `${words}; signed reports are refused beyond 5 minutes`, fix);
}

export const clockCheck: Check = {
  ...id,
  run(ctx) {
    if (ctx.dateHeader === undefined) return skippedOf(id, 'no answer from the receiver');
    return judgeClockSkew(ctx.dateHeader, ctx.deps.now());
  },
};
