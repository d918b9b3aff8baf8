/**
 * Batch delivery, the pure part: which reports go in the next `POST /reports`, its body, and what
 * the answer says about each report, as the `TransportResult` that `POST /report` would have given
 * for it, so that the answer table (answer.ts) decides for a batch exactly as for one report.
 * The shapes are in src/protocol/wire.ts ("batch delivery").
 */
import { BATCH, type BatchItem, type BatchResult, HEADERS, parseBatchAnswer, type ReportBody } from '../../protocol/wire';
import type { TransportResult } from './transport';

/** Kept well under the receiver's 1 MiB batch limit, JSON escaping included. */
export const BATCH_SEND_MAX_BYTES = 512 * 1024;

/** The oldest reports that fit one batch: at most BATCH.maxReports and BATCH_SEND_MAX_BYTES (always at least one). */
export function takeBatch(queued: readonly ReportBody[], maxBytes = BATCH_SEND_MAX_BYTES): ReportBody[] {
  const out: ReportBody[] = [];
  let bytes = 0;
  for (const report of queued) {
    if (out.length >= BATCH.maxReports) break;
    // An item carries its body as an escaped JSON string plus ~200 bytes of timestamp and signature.
    const size = JSON.stringify(JSON.stringify(report)).length + 200;
    if (out.length > 0 && bytes + size > maxBytes) break;
    out.push(report);
    bytes += size;
  }
  return out;
}

/** The request body; `sign` gives each report's timestamp and signature headers over its exact bytes. */
export function batchBody(reports: readonly ReportBody[], sign: (body: Buffer) => { timestamp: string; signature: string }): Buffer {
  const items: BatchItem[] = reports.map((report) => {
    const text = JSON.stringify(report);
    return { body: text, ...sign(Buffer.from(text, 'utf8')) };
  });
  return Buffer.from(JSON.stringify({ reports: items }), 'utf8');
}

export type BatchAnswer =
  /** The receiver has no `/reports` (404/405: a Rust or older receiver) or refused the batch as a whole: send one by one. */
  | { kind: 'unsupported' }
  /** An answer about the whole request (401, 429, 5xx, network, a refused batch): act on it as for one report. */
  | { kind: 'whole'; result: TransportResult }
  /** 200: one result per report, in order. */
  | { kind: 'each'; results: TransportResult[] };

function asResult(r: BatchResult, headers: Record<string, string>): TransportResult {
  const date = headers.date;
  const base: Record<string, string> = date ? { date } : {};
  if (r.status === 200) return { kind: 'response', status: 200, headers: base, body: '', truncated: false };
  const extra: Record<string, string> = r.status === 403 ? { [HEADERS.error]: r.error } : {};
  return { kind: 'response', status: r.status, headers: { ...base, ...extra }, body: r.error, truncated: false };
}

export function readBatchAnswer(result: TransportResult, count: number): BatchAnswer {
  if (result.kind !== 'response') return { kind: 'whole', result };
  // 404/405: no such route. 400/413 to the whole batch: this receiver cannot take it as a batch
  // (classify would blame the first report for it); one by one, each report gets its own answer.
  if ([400, 404, 405, 413].includes(result.status)) return { kind: 'unsupported' };
  if (result.status !== 200) return { kind: 'whole', result };
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.body);
  } catch {
    parsed = null;
  }
  const results = result.truncated ? null : parseBatchAnswer(parsed, count);
  // A 200 that is not a batch answer (a proxy's page, a receiver that mapped /reports elsewhere): not safe to count as delivered.
  if (results === null) return { kind: 'unsupported' };
  return { kind: 'each', results: results.map((r) => asResult(r, result.headers)) };
}
