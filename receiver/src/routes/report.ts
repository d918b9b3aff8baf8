/**
 * `POST /report`. The checks run cheapest first, and nothing touches the database or does crypto
 * before the body has passed the shape and field-limit checks:
 * bearer (401) → rate limit (429) → Content-Type (415) → body size (413) → JSON shape and limits (400)
 * → timestamp and signature (403 + X-CCFLUX-Error) → store (200, idempotent).
 */
import {
  checkTurnTime,
  formatTimestamp,
  HEADERS,
  parseSignatureHeader,
  parseTimestamp,
  signingMessage,
  timestampFresh,
  validateReport,
  type WireErrorCode,
} from '../../../src/protocol/wire';
import { verifyEd25519Async } from '../ed25519';
import { parseJson, sendError, sendJson } from '../http';
import { isExpiredTurn } from '../retention';
import type { AuthContext, DeviceKey } from '../store';
import { reportTextWellFormed } from '../text';
import { authenticate, boundedBody, type Route, type RouteDeps, rateLimit, requireJsonBody } from './context';

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The Rust device sends `timestamp_utc: ""` when no assistant line of the turn had a timestamp, and
 * the Rust receiver stores that. Refusing it would refuse that report for ever (the device resends
 * it unchanged), so such a turn is placed at the time it arrives. The signature covers the raw
 * body, which is unchanged. Pure: anything else passes through as it is.
 */
export function placeUntimedTurn(value: unknown, now: Date): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const body = value as Record<string, unknown>;
  return body.timestamp_utc === '' ? { ...body, timestamp_utc: formatTimestamp(now) } : value;
}

/**
 * What one report comes to: stored, or refused with the status `/report` answers. `expired`: its
 * turn is older than RETENTION_DAYS, acknowledged (so the device drops it) and not counted.
 */
export type ReportOutcome = { status: 200; stored: number; expired?: true } | { status: 400 | 413; error: string } | { status: 403; code: WireErrorCode };

/** A report's signature header: absent (undefined), present but not a signature (null), or its parts. */
export type ReportSignature = ReturnType<typeof parseSignatureHeader> | undefined;

/** Parses the signature header once per report: `/report` also uses its key for the token lookup. */
export function readSignature(header: string | undefined): ReportSignature {
  return header === undefined ? undefined : parseSignatureHeader(header);
}

/**
 * One report past the route's own checks (bearer, rate limit, body size): shape and limits (400),
 * timestamp and signature (403), then the idempotent store. Shared by `/report` and `/reports`;
 * counts its own metrics.
 */
export async function acceptReport(
  deps: RouteDeps,
  auth: AuthContext,
  body: Buffer,
  timestampHeader: string | undefined,
  signature: ReportSignature,
): Promise<ReportOutcome> {
  const rejected = (error: string): ReportOutcome => {
    deps.metrics.inc('ccflux_reports_rejected_total');
    return { status: 400, error };
  };
  const refused = (code: WireErrorCode): ReportOutcome => {
    deps.metrics.inc('ccflux_reports_sig_rejected_total');
    return { status: 403, code };
  };
  const parsed = parseJson(body);
  const valid = parsed.ok ? validateReport(placeUntimedTurn(parsed.value, deps.now())) : ({ ok: false, error: 'body is not JSON' } as const);
  if (!valid.ok || !reportTextWellFormed(valid.value)) return rejected(valid.ok ? 'strings must be valid Unicode' : valid.error);
  const timeProblem = checkTurnTime(valid.value.timestamp_utc, deps.now());
  if (timeProblem !== null) return rejected(timeProblem);

  let key: DeviceKey | undefined;
  if (signature === undefined) {
    if (deps.config.requireSignatures) return refused('signature-required');
  } else {
    // A timestamp that is not RFC 3339 is as good as none: it cannot be placed in the window.
    const timestamp = timestampHeader === undefined ? null : parseTimestamp(timestampHeader);
    if (timestampHeader === undefined || timestamp === null) return refused('timestamp-missing');
    if (!timestampFresh(timestamp, deps.now())) return refused('timestamp-stale');
    if (signature === null) return refused('signature-invalid');
    // Only this user's registration counts: a key registered by someone else does not verify here.
    // Read with the token when the route asked for it (same request, same query), else now.
    const read = auth.deviceKey;
    key = read !== undefined && read.publicKey === signature.publicKey ? (read.key ?? undefined) : await deps.store.findDeviceKey(auth.userId, signature.publicKey);
    if (key === undefined) return refused('key-not-registered');
    if (key.revoked_at !== null) return refused('key-revoked');
    if (!(await verifyEd25519Async(signature.publicKey, signingMessage(body, timestampHeader), signature.signature))) return refused('signature-invalid');
  }

  if (isExpiredTurn(valid.value.timestamp_utc, deps.now(), deps.config.retentionDays)) {
    deps.metrics.inc('ccflux_reports_expired_total');
    return { status: 200, stored: 0, expired: true };
  }
  const { inserted } = await deps.store.insertReport(auth, valid.value, {
    deviceId: key?.device_id ?? '',
    signed: key !== undefined,
    deviceKeyId: key?.id,
  });
  deps.metrics.inc('ccflux_reports_accepted_total');
  if (inserted === 0 && Object.keys(valid.value.models).length > 0) deps.metrics.inc('ccflux_reports_duplicate_total');
  return { status: 200, stored: inserted };
}

export const handleReport: Route = async (req, res, deps) => {
  const signature = readSignature(headerValue(req.headers[HEADERS.signature]));
  // The signing key's registration comes with the token lookup: one query fewer per signed report.
  const auth = await authenticate(req, res, deps, 'access', signature?.publicKey);
  if (auth === null) {
    deps.metrics.inc('ccflux_reports_auth_rejected_total');
    return;
  }
  if (!(await rateLimit(req, res, deps, auth))) return;
  if (!requireJsonBody(req, res)) {
    deps.metrics.inc('ccflux_reports_rejected_total');
    return;
  }
  const body = await boundedBody(req, res, deps);
  if (body === null) {
    if (res.headersSent) deps.metrics.inc('ccflux_reports_rejected_total');
    return;
  }
  const outcome = await acceptReport(
    deps,
    auth,
    body,
    headerValue(req.headers[HEADERS.timestamp]),
    signature,
  );
  if (outcome.status === 200) return sendJson(res, 200, { status: 'ok', stored: outcome.stored, ...(outcome.expired ? { expired: true } : {}) });
  if (outcome.status === 403) return sendError(res, 403, outcome.code, { [HEADERS.error]: outcome.code });
  sendError(res, outcome.status, outcome.error);
};
