/**
 * Billed usage that no assistant line records, from Claude Code's `cost-state` lines (2.1.3xx;
 * claude-code-formats.md §8.3, §8.5). A `cost-state` line holds the session's cumulative usage
 * per model, including calls that write no assistant line (compaction, the WebSearch tool's inner
 * call, auto mode's classifier). Per session and model, what it holds beyond what the session's
 * assistant lines reported is reported too, exactly once:
 *
 *   background = cost-state − base − lines,   reported as its increase over what was reported from it
 *
 * where `lines` is every assistant-line delta this session reported, and `base` is, for a fork
 * (`--fork-session`, whose first cost-state starts from the parent's totals), the parent's totals:
 * the sessions the fork's copied lines name (`requestSessionId`) or were first counted by, each
 * taken as the larger of its last cost-state and everything reported for it. The parent is
 * collected before its fork (collect.ts), and the parents a fork's earlier runs found are kept in
 * its session state, so the result does not depend on which detached worker runs first, nor on
 * whether the fork's first cost-state line was on disk when its copies were read. All four live in the ledger under
 * `cs:` / `al:` / `bg:` / `base:` + `<session>|<model>` (cumulative, max-merged, committed with the
 * turn's report), so resumes (same file, cumulative), lost session states and re-read files add
 * nothing twice. A cost-state that goes backwards is held at its highest value (never reported
 * twice; usage after a reset counts once it passes the old high). `/clear` starts a new session
 * whose cost-state starts from zero: nothing special. Without any `cost-state` line (older
 * versions, a session killed before writing one) only the assistant lines count, as before.
 *
 * Model keys may carry a context suffix (`claude-sonnet-5[1m]`) that assistant lines do not: the
 * suffix is dropped (`normalizeModelName`), and the usage is reported under the base name.
 *
 * Prompt text is never read: only lines with the `"type":"cost-state"` marker are parsed at all
 * (an `api-request-blob` line holds the request's messages and is skipped unparsed), and only the
 * numeric counters of `modelUsage` are kept.
 */
import type { ModelUsage } from '../../protocol/wire';
import { LineValues, ScanSpec } from './json-scan';
import { type Ledger, type LedgerEntry, shardOf, toLedgerEntry } from './ledger';
import { addUsage, count, deltaOver, isZeroUsage, maxUsage, raiseTo, zeroUsage } from './usage';

/** The raw bytes every cost-state line carries (for raw-byte line filters). */
export const COST_STATE_MARKER = '"type":"cost-state"';
const BLOB_MARKER = '"type":"api-request-blob"';
/** Bound on the models one cost-state line may bring (a hostile line cannot bloat the ledger). */
const MAX_COST_STATE_MODELS = 50;
const MAX_MODEL_CHARS = 200;

export type ModelTotals = Map<string, ModelUsage>;

/** `claude-sonnet-5[1m]` → `claude-sonnet-5`: the name reports use for a context-suffixed model. */
export function normalizeModelName(name: string): string {
  return name.replace(/\[[^\]]*\]$/, '');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One `modelUsage` entry as wire counters. */
function costUsage(u: Record<string, unknown>): ModelUsage {
  const c5 = count(u.cacheCreationEphemeral5mInputTokens);
  const c1 = count(u.cacheCreationEphemeral1hInputTokens);
  const out: ModelUsage = {
    input_tokens: count(u.inputTokens),
    output_tokens: count(u.outputTokens),
    cache_read_tokens: count(u.cacheReadInputTokens),
    // Saturated as addUsage does, so a model's first entry can be taken as it is.
    cache_write_tokens: Math.max(count(u.cacheCreationInputTokens), Math.min(c5 + c1, Number.MAX_SAFE_INTEGER)),
  };
  if (c5 > 0) out.cache_write_5m_tokens = c5;
  if (c1 > 0) out.cache_write_1h_tokens = c1;
  const ws = count(u.webSearchRequests);
  if (ws > 0) out.web_search_requests = ws;
  return out;
}

/**
 * The per-model totals of a `cost-state` line (names normalized, suffixed keys summed into their
 * base name); null for any other line. Never throws.
 */
export function parseCostStateLine(line: string): ModelTotals | null {
  if (!line.includes(COST_STATE_MARKER) || line.includes(BLOB_MARKER)) return null;
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isObject(entry) || entry.type !== 'cost-state' || !isObject(entry.modelUsage)) return null;
  return totalsOf(entry.modelUsage);
}

const TYPE_SLOT = 0;
const MODEL_USAGE_SLOT = 1;
/** Made at the first cost-state line, not at start-up (see usage.ts's scanners). */
let costStateScanner: LineValues | undefined;
const COST_STATE = Buffer.from('cost-state', 'latin1');
const COST_STATE_MARKER_BYTES = Buffer.from(COST_STATE_MARKER, 'latin1');
const BLOB_MARKER_BYTES = Buffer.from(BLOB_MARKER, 'latin1');

/**
 * parseCostStateLine of the line `bytes[start, end)` (UTF-8, without its `\n`): the same answer,
 * with only `modelUsage` parsed (json-scan.ts finds it; a line it leaves to JSON.parse is decoded
 * and parsed whole).
 */
export function parseCostStateBytes(bytes: Buffer, start: number, end: number): ModelTotals | null {
  const raw = bytes.subarray(start, end);
  if (raw.indexOf(COST_STATE_MARKER_BYTES) === -1 || raw.indexOf(BLOB_MARKER_BYTES) !== -1) return null;
  costStateScanner ??= new LineValues(new ScanSpec(['type', 'modelUsage']));
  const line = costStateScanner;
  if (!line.scan(bytes, start, end)) return parseCostStateLine(bytes.toString('utf8', start, end));
  // An escaped spelling of "cost-state" is "cost-state" too: decoded only then.
  if (!line.isString(TYPE_SLOT, COST_STATE) && line.string(TYPE_SLOT) !== 'cost-state') return null;
  const modelUsage = line.object(MODEL_USAGE_SLOT);
  return modelUsage === null || modelUsage === undefined ? null : totalsOf(modelUsage);
}

/** A `modelUsage` object's totals, at most MAX_COST_STATE_MODELS models. */
function totalsOf(modelUsage: Record<string, unknown>): ModelTotals {
  const totals: ModelTotals = new Map();
  for (const [rawName, value] of Object.entries(modelUsage).slice(0, MAX_COST_STATE_MODELS)) {
    if (!isObject(value) || rawName.length === 0 || rawName.length > MAX_MODEL_CHARS) continue;
    const name = normalizeModelName(rawName) || rawName;
    const before = totals.get(name);
    totals.set(name, before === undefined ? costUsage(value) : addUsage(before, costUsage(value)));
  }
  return totals;
}

/**
 * Field-wise maximum per model (cost-state is cumulative: the latest is the highest). Takes over
 * `next`'s usage objects and raises `into`'s in place: a first read of a long session folds one
 * cost-state line per turn, tens of thousands.
 */
export function foldTotals(into: ModelTotals, next: ModelTotals): void {
  for (const [model, usage] of next) {
    const before = into.get(model);
    if (before === undefined) into.set(model, usage);
    else raiseTo(before, usage);
  }
}

const key = (kind: 'cs' | 'al' | 'bg' | 'base', sessionId: string, model: string) => `${kind}:${sessionId}|${model}`;
/** Marks that a session's base was decided (zero or not), so it is never recomputed. */
const baseDecidedKey = (sessionId: string) => `base:${sessionId}`;

export interface ReconcileInput {
  sessionId: string;
  /** This run's assistant-line deltas per (raw) model. */
  lineDeltas: ReadonlyMap<string, ModelUsage>;
  /** Highest cost-state totals read this run from the session's main file; null when none. */
  costState: ModelTotals | null;
  /**
   * The session's parents (a fork's): every session it is known to copy, from this run and the
   * earlier ones (the session state's `parents`), not only the copies this run happened to read.
   */
  copiedFrom: ReadonlySet<string>;
}

export interface ReconcileResult {
  /** What to report from cost-state now, per normalized model. */
  background: ModelTotals;
  /** Ledger entries to commit with the turn's report. */
  entries: LedgerEntry[];
}

/**
 * Updates the session's cost-state accounting in the ledger's view (staged) and returns what to
 * report from it. The caller commits `entries` with the report (the outbox), under the state lock.
 */
export async function reconcileCostState(ledger: Ledger, input: ReconcileInput): Promise<ReconcileResult> {
  const { sessionId } = input;
  const lines: ModelTotals = new Map();
  for (const [model, usage] of input.lineDeltas) {
    const name = normalizeModelName(model) || model;
    lines.set(name, addUsage(lines.get(name) ?? zeroUsage(), usage));
  }
  const models = new Set([...lines.keys(), ...(input.costState?.keys() ?? [])]);
  const parents = [...input.copiedFrom].filter((s) => s !== sessionId);
  const keys: string[] = [baseDecidedKey(sessionId)];
  for (const m of models) {
    for (const s of [sessionId, ...parents]) for (const k of ['cs', 'al', 'bg', 'base'] as const) keys.push(key(k, s, m));
  }
  await ledger.load(keys.map((k) => shardOf(k)));
  const get = (k: string) => ledger.get(k, null)?.usage ?? zeroUsage();
  const result: ReconcileResult = { background: new Map(), entries: [] };
  const put = (k: string, model: string, usage: ModelUsage) => {
    const entry = toLedgerEntry(k, null, false, model, usage, sessionId);
    ledger.stage(entry);
    result.entries.push(entry);
  };

  for (const [m, delta] of lines) if (!isZeroUsage(delta)) put(key('al', sessionId, m), m, addUsage(get(key('al', sessionId, m)), delta));
  if (input.costState === null) return result;

  // Decided once, at the session's first cost-state line: it names every model the parent's totals
  // hold (a parent's background-only model included). The parents are all the session is known to
  // copy, so it does not matter which run read the copies.
  const baseDecided = ledger.get(baseDecidedKey(sessionId), null) !== undefined;
  if (!baseDecided) {
    put(baseDecidedKey(sessionId), '', { ...zeroUsage(), input_tokens: 1 });
    for (const m of models) {
      let base = zeroUsage();
      for (const p of parents) {
        const reported = addUsage(addUsage(get(key('al', p, m)), get(key('bg', p, m))), get(key('base', p, m)));
        base = maxUsage(base, maxUsage(get(key('cs', p, m)), reported));
      }
      if (!isZeroUsage(base)) put(key('base', sessionId, m), m, base);
    }
  }

  for (const [m, seen] of input.costState) {
    const before = get(key('cs', sessionId, m));
    const total = maxUsage(before, seen);
    if (!isZeroUsage(deltaOver(total, before))) put(key('cs', sessionId, m), m, total);
    const accountedByLines = addUsage(get(key('base', sessionId, m)), get(key('al', sessionId, m)));
    const backgroundTotal = deltaOver(total, accountedByLines);
    const reported = get(key('bg', sessionId, m));
    const now = deltaOver(backgroundTotal, reported);
    if (isZeroUsage(now)) continue;
    put(key('bg', sessionId, m), m, addUsage(reported, now));
    result.background.set(m, now);
  }
  return result;
}
