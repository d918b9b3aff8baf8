/**
 * What the dashboard shows, read from the URL (so every view is bookmarkable and works without
 * JavaScript): the date range, the user/division/model filters, the display time zone, and per
 * table its search text, sort column, direction and page. Pure: params and `now` in, values out.
 *
 * Ranges: `24h`, `7d`, `30d` (default), `90d` end now; `custom` takes `from` and `to`, UTC dates,
 * both inclusive. Days on charts and in exports are UTC days.
 */

export const RANGE_PRESETS = ['24h', '7d', '30d', '90d'] as const;
export type RangePreset = (typeof RANGE_PRESETS)[number] | 'custom';
const PRESET_MILLIS: Record<(typeof RANGE_PRESETS)[number], number> = {
  '24h': 24 * 3600 * 1000,
  '7d': 7 * 24 * 3600 * 1000,
  '30d': 30 * 24 * 3600 * 1000,
  '90d': 90 * 24 * 3600 * 1000,
};
const DAY_MILLIS = 24 * 3600 * 1000;
/** Presets end "now", but a turn stamped a little ahead by a device's clock still belongs in them. */
const FUTURE_SLACK_MILLIS = 15 * 60 * 1000;
/** A custom range is capped so one request cannot ask for decades of rows. */
export const MAX_RANGE_DAYS = 400;
export const PAGE_SIZE = 50;
const MAX_FILTER_CHARS = 255;

export interface ViewFilter {
  range: RangePreset;
  /** ISO timestamps, from inclusive, to exclusive. */
  fromIso: string;
  toIso: string;
  /** UTC days covered, inclusive. */
  fromDay: string;
  toDay: string;
  user: string | null;
  division: string | null;
  model: string | null;
  /** IANA time zone for displayed timestamps. */
  tz: string;
  /** Problems with the URL, shown above the page (the view falls back to defaults). */
  problems: string[];
}

export interface TableState {
  q: string;
  sort: string | null;
  dir: 'asc' | 'desc';
  page: number;
}

function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function parseDay(value: string | null): number | null {
  if (value === null || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return null;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isNaN(ms) || day(ms) !== value ? null : ms;
}

export function validTimeZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function text(params: URLSearchParams, name: string): string | null {
  const v = (params.get(name) ?? '').trim();
  if (v === '' || v.length > MAX_FILTER_CHARS || /[\x00-\x1f\x7f]/.test(v)) return null;
  return v;
}

export function parseFilter(params: URLSearchParams, nowMillis: number, defaultTz = 'UTC'): ViewFilter {
  const problems: string[] = [];
  let range: RangePreset = '30d';
  const raw = params.get('range');
  if (raw === 'custom' || (RANGE_PRESETS as readonly string[]).includes(raw ?? '')) range = raw as RangePreset;
  else if (raw !== null && raw !== '') problems.push('Unknown range; showing the last 30 days.');

  let fromMs = nowMillis - PRESET_MILLIS['30d'];
  let toMs = nowMillis;
  if (range === 'custom') {
    const from = parseDay(params.get('from'));
    const to = parseDay(params.get('to'));
    if (from === null || to === null || to < from) {
      problems.push('A custom range needs from and to dates (YYYY-MM-DD, from before to); showing the last 30 days.');
      range = '30d';
    } else if ((to - from) / DAY_MILLIS + 1 > MAX_RANGE_DAYS) {
      problems.push(`A custom range spans at most ${MAX_RANGE_DAYS} days; showing the last 30 days.`);
      range = '30d';
    } else {
      fromMs = from;
      toMs = to + DAY_MILLIS;
    }
  } else {
    fromMs = nowMillis - PRESET_MILLIS[range];
  }
  const lastDayMs = range === 'custom' ? toMs - 1 : nowMillis;
  if (range !== 'custom') toMs = nowMillis + FUTURE_SLACK_MILLIS;

  let tz = defaultTz;
  const rawTz = params.get('tz');
  if (rawTz !== null && rawTz !== '') {
    if (validTimeZone(rawTz)) tz = rawTz;
    else problems.push('Unknown time zone; showing times in UTC.');
  }
  return {
    range,
    fromIso: isoSeconds(fromMs),
    toIso: isoSeconds(toMs),
    fromDay: day(fromMs),
    toDay: day(lastDayMs),
    user: text(params, 'user')?.toLowerCase() ?? null,
    division: text(params, 'division'),
    model: text(params, 'model'),
    tz,
    problems,
  };
}

/** Every UTC day of the filter's range, oldest first. */
export function daysOf(f: Pick<ViewFilter, 'fromDay' | 'toDay'>): string[] {
  const out: string[] = [];
  const end = Date.parse(`${f.toDay}T00:00:00Z`);
  for (let ms = Date.parse(`${f.fromDay}T00:00:00Z`); ms <= end; ms += DAY_MILLIS) out.push(day(ms));
  return out;
}

export function parseTable(params: URLSearchParams, id: string, columns: readonly string[]): TableState {
  const sort = params.get(`${id}.sort`);
  const page = Number(params.get(`${id}.page`) ?? '1');
  return {
    q: (text(params, `${id}.q`) ?? '').toLowerCase(),
    sort: sort !== null && columns.includes(sort) ? sort : null,
    dir: params.get(`${id}.dir`) === 'asc' ? 'asc' : 'desc',
    page: Number.isSafeInteger(page) && page >= 1 && page <= 1_000_000 ? page : 1,
  };
}

/** The current URL's query with some parameters replaced (null removes one). */
export function hrefWith(path: string, params: URLSearchParams, changes: Record<string, string | null>): string {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') next.delete(k);
    else next.set(k, v);
  }
  const qs = next.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

/** Epoch ms of an ISO timestamp or of SQLite's `YYYY-MM-DD HH:MM:SS` (UTC, the form `received_at` keeps). */
export function parseStamp(value: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?$/.test(value) ? `${value.replace(' ', 'T')}Z` : value);
}

/** A timestamp in the display zone, `YYYY-MM-DD HH:MM` plus the zone's short name. */
export function formatInZone(iso: string | null | undefined, tz: string): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const ms = parseStamp(iso);
  if (Number.isNaN(ms)) return iso;
  if (tz === 'UTC') return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(new Date(ms));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${get('timeZoneName')}`;
}
