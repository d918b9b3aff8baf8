/**
 * Per-endpoint backoff, persisted across hook runs in `delivery_backoff.json`: a receiver that
 * keeps failing (network errors, 5xx/429, answers that say the endpoint or token is wrong) sees
 * one attempt per device per interval, not one per turn. The interval doubles with each failure
 * in a row, from 15 s up to 15 min, and a success forgets it. Hook workers respect it; `ccflux
 * flush` (a user asking now) does not, and its success resets it. Reports are never dropped:
 * they wait in the queue and the first hook after the interval sends them all.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { formatTimestamp, parseTimestamp } from '../../protocol/wire';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import type { StatePaths } from '../local/paths';
import type { StoppedBecause } from './halt';

export const BACKOFF_BASE_MILLIS = 15_000;
export const BACKOFF_CAP_MILLIS = 15 * 60_000;
/** Endpoints remembered at most (a device switched between receivers keeps the latest). */
const MAX_ENDPOINTS = 8;

export interface BackoffEntry {
  /** Failed runs in a row. */
  failures: number;
  /** RFC 3339: no hook run tries this endpoint before then. */
  notBefore: string;
}

export type BackoffTable = Record<string, BackoffEntry>;

/** Why a drain stopped, as the backoff sees it. */
export function backoffVerdict(because: StoppedBecause, delivered: number): 'failure' | 'success' | 'neutral' {
  if (delivered > 0 || because === null) return 'success';
  switch (because) {
    case 'unreachable':
    case 'server-busy':
    case 'unexpected-answer':
    case 'token-revoked':
    case 'unauthorized':
      return 'failure';
    default:
      // deadline, clock skew, a refused report or registration (the token exchange before it
      // worked; a 403 timestamp-stale is the device's clock), local trouble: the endpoint is fine.
      return 'neutral';
  }
}

/**
 * `<endpoint> <12 hex digits of sha256(token)>`: per endpoint and credentials, so a new token
 * (`ccflux login`) is tried at once. 48 bits of a hash of a random token reveal nothing of it.
 */
export function backoffKey(endpoint: string, token: string): string {
  return `${endpoint} ${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

export function backoffMillis(failures: number): number {
  return Math.min(BACKOFF_BASE_MILLIS * 2 ** Math.max(0, Math.min(failures - 1, 20)), BACKOFF_CAP_MILLIS);
}

/** Pure: the table after one drain that reached the network. */
export function nextBackoff(table: BackoffTable, endpoint: string, verdict: 'failure' | 'success' | 'neutral', now: Date): BackoffTable {
  if (verdict === 'neutral') return table;
  const next: BackoffTable = { ...table };
  delete next[endpoint];
  if (verdict === 'success') return next;
  const failures = (table[endpoint]?.failures ?? 0) + 1;
  next[endpoint] = { failures, notBefore: formatTimestamp(new Date(now.getTime() + backoffMillis(failures))) };
  const kept = Object.entries(next).slice(-MAX_ENDPOINTS);
  return Object.fromEntries(kept);
}

/** When this endpoint may be tried again (null: now). */
export function backoffUntil(table: BackoffTable, endpoint: string, now: Date): { until: Date; failures: number } | null {
  const entry = table[endpoint];
  if (!entry) return null;
  const until = parseTimestamp(entry.notBefore);
  if (until === null || until.getTime() <= now.getTime()) return null;
  // A clock set back by hours must not park delivery for that long: never beyond the cap.
  if (until.getTime() - now.getTime() > BACKOFF_CAP_MILLIS) return { until: new Date(now.getTime() + BACKOFF_CAP_MILLIS), failures: entry.failures };
  return { until, failures: entry.failures };
}

export function backoffPath(paths: Pick<StatePaths, 'dir'>): string {
  return join(paths.dir, 'delivery_backoff.json');
}

/** The table; empty when absent or unreadable (a damaged file only costs one early attempt). */
export async function readBackoff(paths: Pick<StatePaths, 'dir'>): Promise<BackoffTable> {
  try {
    const parsed: unknown = JSON.parse((await readTextIfExists(backoffPath(paths))) ?? '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const table: BackoffTable = {};
    for (const [endpoint, v] of Object.entries(parsed as Record<string, unknown>)) {
      const e = v as Partial<BackoffEntry> | null;
      if (e && typeof e.failures === 'number' && Number.isSafeInteger(e.failures) && e.failures > 0 && typeof e.notBefore === 'string') {
        table[endpoint] = { failures: e.failures, notBefore: e.notBefore };
      }
    }
    return table;
  } catch {
    return {};
  }
}

export async function writeBackoff(paths: Pick<StatePaths, 'dir'>, table: BackoffTable): Promise<void> {
  await writeFileAtomic(backoffPath(paths), `${JSON.stringify(table)}\n`);
}
