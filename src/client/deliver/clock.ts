/**
 * Clock-skew correction: the device signs reports with its own clock, and the receiver refuses a
 * timestamp more than 5 minutes from its clock (403 `timestamp-stale`). Rather than hold reports
 * until a person fixes the clock, the device keeps the receiver's offset in `clock_offset.json`
 * (0600) and signs with `device time + offset`. Replay protection is untouched: the receiver
 * still checks ±5 minutes of its own clock; only the device's idea of "now" for the signature moves.
 *
 * The offset is taken from the receiver's `Date` header (1 s resolution): on a `timestamp-stale`
 * answer, and re-measured from every later answer whose `Date` moved more than
 * REMEASURE_TOLERANCE_MILLIS away from it (a clock fixed by NTP, a receiver moved).
 */
import { unlink } from '../local/fs';
import { join } from 'node:path';
import { parseTimestamp } from '../../protocol/wire';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import type { StatePaths } from '../local/paths';

export const CLOCK_OFFSET_FILE = 'clock_offset.json';
/** An answer whose `Date` is this far from `device time + offset` re-measures the offset. */
export const REMEASURE_TOLERANCE_MILLIS = 30_000;
/** Under this the device clock counts as right: no offset is kept. */
export const NEGLIGIBLE_SKEW_MILLIS = 30_000;
/** A larger "offset" is not a clock error but a broken header: ignored (ten years). */
export const MAX_OFFSET_MILLIS = 10 * 366 * 24 * 3600 * 1000;

export interface ClockOffset {
  /** Receiver time minus device time, in ms: add it to the device clock to get the receiver's. */
  offsetMillis: number;
  /** Device time of the measurement (RFC 3339). */
  measuredAt: string;
}

export function clockOffsetPath(paths: Pick<StatePaths, 'dir'>): string {
  return join(paths.dir, CLOCK_OFFSET_FILE);
}

/** Parses the file's text; null when absent, malformed or out of bounds (then no correction). */
export function parseClockOffset(text: string | null): ClockOffset | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const offset = v?.offset_ms;
    const at = v?.measured_at;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || Math.abs(offset) > MAX_OFFSET_MILLIS) return null;
    if (typeof at !== 'string' || parseTimestamp(at) === null) return null;
    return { offsetMillis: offset, measuredAt: at };
  } catch {
    return null;
  }
}

export async function readClockOffset(paths: Pick<StatePaths, 'dir'>): Promise<ClockOffset | null> {
  return parseClockOffset(await readTextIfExists(clockOffsetPath(paths)).catch(() => null));
}

export async function writeClockOffset(paths: Pick<StatePaths, 'dir'>, offset: ClockOffset): Promise<void> {
  const text = `${JSON.stringify({ offset_ms: offset.offsetMillis, measured_at: offset.measuredAt })}\n`;
  await writeFileAtomic(clockOffsetPath(paths), text);
}

/** Drops the offset (the device clock is right again). */
export async function removeClockOffset(paths: Pick<StatePaths, 'dir'>): Promise<void> {
  try {
    await unlink(clockOffsetPath(paths));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Receiver time minus device time from a `Date` header; null when the header is unusable. */
export function offsetFromDateHeader(dateHeader: string | undefined, deviceNow: Date): number | null {
  if (!dateHeader || dateHeader.length > 64) return null;
  const serverMillis = Date.parse(dateHeader);
  if (!Number.isFinite(serverMillis)) return null;
  const offset = Math.round(serverMillis - deviceNow.getTime());
  return Math.abs(offset) > MAX_OFFSET_MILLIS ? null : offset;
}

/**
 * The offset to keep after an answer, pure: `undefined` when the current one (or none) still
 * holds, `null` to drop it (the device clock is right again), a number for a new measurement.
 * `stale` (a `timestamp-stale` answer) takes the measurement whatever its size.
 */
export function nextOffset(current: number, measured: number | null, stale: boolean): number | null | undefined {
  if (measured === null) return undefined;
  if (!stale && Math.abs(measured - current) <= REMEASURE_TOLERANCE_MILLIS) return undefined;
  if (Math.abs(measured) <= NEGLIGIBLE_SKEW_MILLIS) return current === 0 ? undefined : null;
  return measured;
}
