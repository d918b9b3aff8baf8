/**
 * Text checks the wire validator leaves to the receiver. A JSON string may carry a lone UTF-16
 * surrogate (`"\ud800"`); SQLite would store it as invalid UTF-8, which makes other readers of the
 * database (Python's sqlite3, exports) fail on that row. Such values are refused with 400.
 */
import type { ReportBody } from '../../src/protocol/wire';

/** In `u` mode a well-formed surrogate pair is one code point, so this matches lone halves only. */
const LONE_SURROGATE_RE = /\p{Cs}/u;

export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE_RE.test(value);
}

export function reportTextWellFormed(report: ReportBody): boolean {
  return (
    isWellFormedText(report.session_id) &&
    isWellFormedText(report.user_email) &&
    isWellFormedText(report.timestamp_utc) &&
    isWellFormedText(report.session_start_utc ?? '') &&
    isWellFormedText(report.plugin_version ?? '') &&
    Object.keys(report.models).every(isWellFormedText)
  );
}
