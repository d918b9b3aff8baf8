/**
 * `POST /reports`: up to BATCH.maxReports reports in one request, each with its own signature and
 * idempotency key, answered per report (the shape is in src/protocol/wire.ts, "batch delivery").
 * bearer (401) → rate limit, `batchRateUnits(n)` units (429) → Content-Type (415) → body size (413)
 * → batch shape (400) → each report as `/report` checks it (its own 400/413/403/200, in `results`).
 *
 * The rate limit is taken after the body is read (the count is in it), but before any report is
 * looked at: a leaked token inserts at most RATE_LIMIT_PER_MINUTE × BATCH.reportsPerRateUnit
 * reports a minute (× at most 20 models each), and replays of the same reports insert nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BATCH, type BatchItem, type BatchResult, batchRateUnits, validateBatchRequest } from '../../../src/protocol/wire';
import { answerEarly, parseJson, readBody, sendError, sendJson } from '../http';
import type { AuthContext } from '../store';
import { authenticate, type Route, type RouteDeps, rateLimit, requireJsonBody } from './context';
import { acceptReport, readSignature } from './report';

/** The whole body may hold a full batch of reports at the receiver's own per-report limit, within BATCH.maxBodyBytes. */
export function batchBodyLimit(bodyLimitBytes: number): number {
  return Math.max(bodyLimitBytes, Math.min(BATCH.maxBodyBytes, bodyLimitBytes * BATCH.maxReports));
}

async function readBatch(req: IncomingMessage, res: ServerResponse, deps: RouteDeps): Promise<BatchItem[] | null> {
  const limit = batchBodyLimit(deps.config.bodyLimitBytes);
  const read = await readBody(req, limit);
  if (!read.ok) {
    if (read.reason === 'too-large') answerEarly(req, res, () => sendError(res, 413, `batch body larger than ${Math.round(limit / 1024)} KB`));
    else res.destroy();
    return null;
  }
  const parsed = parseJson(read.body);
  const valid = parsed.ok ? validateBatchRequest(parsed.value) : ({ ok: false, error: 'body is not JSON' } as const);
  if (!valid.ok) {
    sendError(res, 400, valid.error);
    return null;
  }
  return valid.value;
}

/** Spends the batch's units one by one; stops at the first refused (answered 429 by `rateLimit`). */
async function spendUnits(req: IncomingMessage, res: ServerResponse, deps: RouteDeps, auth: AuthContext, units: number): Promise<boolean> {
  for (let i = 0; i < units; i++) if (!(await rateLimit(req, res, deps, auth))) return false;
  return true;
}

async function acceptItem(deps: RouteDeps, auth: AuthContext, item: BatchItem): Promise<BatchResult> {
  const body = Buffer.from(item.body, 'utf8');
  if (body.length > deps.config.bodyLimitBytes) {
    deps.metrics.inc('ccflux_reports_rejected_total');
    return { status: 413, error: `report larger than ${deps.config.bodyLimitKb} KB` };
  }
  const outcome = await acceptReport(deps, auth, body, item.timestamp, readSignature(item.signature));
  if (outcome.status === 403) return { status: 403, error: outcome.code };
  return outcome;
}

export const handleReports: Route = async (req, res, deps) => {
  const auth = await authenticate(req, res, deps, 'access');
  if (auth === null) {
    deps.metrics.inc('ccflux_reports_auth_rejected_total');
    return;
  }
  // One unit up front, as on /report: a flood of bad requests pays before its bodies are read.
  if (!(await rateLimit(req, res, deps, auth))) return;
  if (!requireJsonBody(req, res)) return;
  const items = await readBatch(req, res, deps);
  if (items === null) return;
  if (!(await spendUnits(req, res, deps, auth, batchRateUnits(items.length) - 1))) return;
  const results: BatchResult[] = [];
  for (const item of items) results.push(await acceptItem(deps, auth, item));
  sendJson(res, 200, { status: 'ok', results });
};
