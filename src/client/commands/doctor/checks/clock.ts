import { TIMESTAMP_WINDOW_MS } from '../../../../protocol/wire';
import { skewFromDateHeader } from '../../../deliver/answer';
import { type ClockOffset, readClockOffset } from '../../../deliver/clock';
import { formatDuration } from '../../status';
import { type Check, type CheckResult, resultOf, skippedOf } from '../check';

const id = { id: 'clock-skew', title: 'clock in sync with the receiver' } as const;

/** Skew under this is noise (the Date header has 1 s resolution, plus the request time). */
export const CLOCK_SKEW_WARN_MILLIS = 60_000;
/** Beyond this, signed reports come close to the receiver's ±5 min window. */
export const CLOCK_SKEW_FAIL_MILLIS = TIMESTAMP_WINDOW_MS - 60_000;

/**
 * Judges the device clock against the receiver's `Date`. A kept correction (clock_offset.json,
 * see deliver/clock.ts) that matches the skew makes it a pass: reports are signed with the
 * receiver's time, so nothing waits; the detail still says the clock itself is off.
 */
export function judgeClockSkew(dateHeader: string | undefined, now: Date, kept: ClockOffset | null = null): CheckResult {
  const skew = skewFromDateHeader(dateHeader, now);
  if (skew === null) {
    return resultOf(id, 'warn', 'cannot tell: the receiver sent no usable Date header', 'make sure this computer syncs its clock (NTP)');
  }
  const size = Math.abs(skew);
  const words = `this device is ${formatDuration(size)} ${skew >= 0 ? 'ahead of' : 'behind'} the receiver`;
  const fix = 'turn on automatic time sync (NTP) for this computer';
  if (kept !== null && size > CLOCK_SKEW_WARN_MILLIS && Math.abs(skew + kept.offsetMillis) <= CLOCK_SKEW_WARN_MILLIS) {
    return resultOf(id, 'pass', `${words}; corrected: reports are signed with the receiver's time (measured ${kept.measuredAt})`);
  }
  const keptWords = kept === null ? '' : '; the kept clock correction is out of date (the next delivery measures it again)';
  if (size <= CLOCK_SKEW_WARN_MILLIS) {
    return resultOf(id, 'pass', size < 2000 ? `in sync (within 2 s)${keptWords}` : `${words}${keptWords}`);
  }
  if (size <= CLOCK_SKEW_FAIL_MILLIS) return resultOf(id, 'warn', `${words}; reports are refused beyond 5 minutes${keptWords}`, fix);
  return resultOf(id, 'fail', `${words}; signed reports are refused beyond 5 minutes${keptWords}`, fix);
}

export const clockCheck: Check = {
  ...id,
  async run(ctx) {
    if (ctx.dateHeader === undefined) return skippedOf(id, 'no answer from the receiver');
    return judgeClockSkew(ctx.dateHeader, ctx.deps.now(), await readClockOffset(ctx.deps.paths));
  },
};
