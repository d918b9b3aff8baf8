/**
 * Builds report bodies, pure. Every field is set from an explicit allowlist of values computed by
 * ccflux: nothing read from a transcript passes through except model names and token counts, and
 * both are bounded to the wire LIMITS here.
 *
 * More than LIMITS.maxModels models in one turn (rare: one per distinct model and advisor model) are
 * split across consecutive turn indexes rather than merged, so per-model totals stay exact.
 */
import {
  cleanModelName,
  DETAIL_FIELDS,
  DEVICE_SCHEMA_VERSION,
  LIMITS,
  MAX_TOKEN_COUNT,
  type ModelUsage,
  type ReportBody,
  TOKEN_FIELDS,
  truncateCodePoints,
  wellFormedText,
} from '../../protocol/wire';
import type { Logger } from '../local/log';
import { addUsage, count, isZeroUsage, UNKNOWN_MODEL, zeroUsage } from './usage';

export interface ReportInput {
  sessionId: string;
  /** turn_index of the first (usually only) report. */
  turnIndex: number;
  userEmail: string;
  timestampUtc: string;
  sessionStartUtc: string;
  models: ReadonlyMap<string, ModelUsage> | Readonly<Record<string, ModelUsage>>;
  pluginVersion: string;
  log?: Pick<Logger, 'activity' | 'error'>;
}

/** A counter within the wire's cap: a hostile transcript line cannot get the turn refused. */
function capped(v: unknown): number {
  return Math.min(count(v), MAX_TOKEN_COUNT);
}

/**
 * The wire counters, each capped. The schema-v2 detail fields are sent only when non-zero: in a
 * schema_version 2 report an absent detail field means 0 (SPEC; the receiver stores 0, and NULL
 * only for schema_version 1 reports, whose devices did not know).
 */
function sanitizeUsage(u: ModelUsage): ModelUsage {
  const out = zeroUsage();
  for (const f of TOKEN_FIELDS) out[f] = capped(u[f]);
  for (const f of DETAIL_FIELDS) {
    const v = capped(u[f]);
    if (v > 0) out[f] = v;
  }
  return out;
}

/** Free text for the wire: valid Unicode, cut between code points to at most `maxUnits`. */
function wireText(text: string, maxUnits: number): string {
  return truncateCodePoints(wellFormedText(text), maxUnits);
}

/**
 * Model name → usage, with names made valid for the wire (empty → `unknown`; characters outside the
 * model-name set replaced by `_` and the name cut to the limit, `cleanModelName`; names that collide
 * after that are summed, each counter capped), all-zero models dropped, sorted by name.
 */
export function normalizeModels(
  models: ReportInput['models'],
  log?: Pick<Logger, 'activity' | 'error'>,
): Array<[string, ModelUsage]> {
  const entries = models instanceof Map ? [...models.entries()] : Object.entries(models as Record<string, ModelUsage>);
  const merged = new Map<string, ModelUsage>();
  for (const [rawName, rawUsage] of entries) {
    const usage = sanitizeUsage(rawUsage);
    if (isZeroUsage(usage)) continue;
    const name = rawName.length < LIMITS.modelNameMinChars ? UNKNOWN_MODEL : cleanModelName(rawName);
    if (name !== rawName && rawName.length >= LIMITS.modelNameMinChars) {
      log?.error(`model name of ${rawName.length} characters cleaned for the wire`);
    }
    const sum = addUsage(merged.get(name) ?? zeroUsage(), usage);
    merged.set(name, sanitizeUsage(sum));
  }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function body(input: ReportInput, turnIndex: number, models: Array<[string, ModelUsage]>): ReportBody {
  return {
    schema_version: DEVICE_SCHEMA_VERSION,
    session_id: input.sessionId,
    user_email: wireText(input.userEmail, LIMITS.userEmailChars),
    turn_index: turnIndex,
    timestamp_utc: input.timestampUtc.slice(0, LIMITS.timestampChars),
    session_start_utc: input.sessionStartUtc.slice(0, LIMITS.timestampChars),
    // fromEntries defines own properties, so a model called `__proto__` stays a plain key.
    models: Object.fromEntries(models),
    plugin_version: input.pluginVersion.slice(0, LIMITS.pluginVersionChars),
  };
}

/**
 * The turn's reports: none when every model is zero; one per LIMITS.maxModels models otherwise,
 * with turn indexes `turnIndex`, `turnIndex + 1`, ...
 */
export function buildReports(input: ReportInput): ReportBody[] {
  const models = normalizeModels(input.models, input.log);
  const reports: ReportBody[] = [];
  for (let i = 0; i < models.length; i += LIMITS.maxModels) {
    reports.push(body(input, input.turnIndex + reports.length, models.slice(i, i + LIMITS.maxModels)));
  }
  if (reports.length > 1) input.log?.activity(`turn split into ${reports.length} reports (${models.length} models)`);
  return reports;
}

/**
 * One report body (possibly with empty `models`). Throws a RangeError when the models do not fit in
 * one report: use `buildReports` for a turn that may carry more than LIMITS.maxModels models.
 */
export function buildReport(input: ReportInput): ReportBody {
  const models = normalizeModels(input.models, input.log);
  if (models.length > LIMITS.maxModels) throw new RangeError(`more than ${LIMITS.maxModels} models: use buildReports`);
  return body(input, input.turnIndex, models);
}
