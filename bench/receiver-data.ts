// Bundled by bench/receiver.mjs (esbuild) and imported there: a realistic organisation's usage,
// written THROUGH THE RECEIVER'S STORE (receiver/src/store), not through HTTP, so the figures
// measure the views and not a loader. Deterministic for a seed and an end time.
//
// What it makes (defaults: 1,000 users × 90 days):
// - users across 10 divisions of uneven size, each division in its own time zone; ~3 % of the
//   seats provisioned but never used (inactive seats), ~1 % revoked near the end;
// - 1–2 devices per user (registered keys), 365-day refresh tokens;
// - working-hours turns (09:00–18:00 local, weekdays; a few on weekends), in sessions of a few
//   hours that sometimes run on into the next day (session_start_utc stays the first day);
// - per turn a main model (Sonnet 4.6 / 4.5 dated, Opus 4.6, Opus 5.5), often with Haiku 4.5
//   beside it (multi-model turns) and now and then `claude-haiku-5-5`, a model the shipped price
//   table does not know (shown unpriced);
// - ~40 % of users on a schema-v2 plugin: the cache-write split (5 m / 1 h) and web searches;
// - an audit log (provisioning, daily logins, revokes, a reissue, budget changes), budgets for
//   the organisation, every division and some users, and a few recorded alerts.
//
// Reports per user per day vary by user (light, regular and heavy users; `turnsPerDay` is the
// mean over active days), so the row count is a choice: see bench/receiver.mjs's --turns.
import { randomBytes } from 'node:crypto';
import type { ReportBody } from '../src/protocol/wire';
import { type AuthContext, openStore, SqliteStore, type Store } from '../receiver/src/store';

export { freshDatabase, PG_MISSING, postgresAvailable, startPostgres } from '../test/helpers/postgres';

/** Bump when what `generate` writes changes: cached files are keyed by it. */
export const GENERATOR_VERSION = 2;

export interface GenerateOptions {
  users: number;
  days: number;
  /** Mean reports per user per active day. */
  turnsPerDay: number;
  /** Epoch ms the data ends at (the bench's "now"). */
  endMs: number;
  seed: number;
  /** Inserts in flight at once (PostgreSQL gains from a few; SQLite runs them one by one anyway). */
  concurrency: number;
  log: (line: string) => void;
}

export interface GenerateSummary {
  users: number;
  devices: number;
  reports: number;
  rows: number;
  v2Reports: number;
  auditEntries: number;
  budgets: number;
  seconds: number;
  /** A few names the views can filter by. */
  sample: { divisions: string[]; models: string[]; heavyUser: string; user: string };
}

const DIVISIONS: readonly { name: string; weight: number; utcOffsetHours: number }[] = [
  { name: 'Engineering', weight: 26, utcOffsetHours: -8 },
  { name: 'Platform', weight: 14, utcOffsetHours: -5 },
  { name: 'Data', weight: 10, utcOffsetHours: 0 },
  { name: 'Mobile', weight: 9, utcOffsetHours: 1 },
  { name: 'Web', weight: 9, utcOffsetHours: 1 },
  { name: 'Infrastructure', weight: 8, utcOffsetHours: 2 },
  { name: 'Security', weight: 6, utcOffsetHours: 5.5 },
  { name: 'Research', weight: 7, utcOffsetHours: 9 },
  { name: 'Sales Engineering', weight: 6, utcOffsetHours: -6 },
  { name: 'Support', weight: 5, utcOffsetHours: 10 },
];

/** Main models with their share of turns. */
const MAIN_MODELS: readonly [string, number][] = [
  ['claude-sonnet-4-6', 52],
  ['claude-sonnet-4-5-20250929', 13],
  ['claude-opus-4-6', 27],
  ['claude-opus-5-5', 8],
];
const SIDE_MODEL = 'claude-haiku-4-5-20251001';
/** Not in the shipped price table (its price is tiered): the views must show it unpriced. */
export const UNKNOWN_MODEL = 'claude-haiku-5-5';

const FIRST = ['ana', 'ben', 'chen', 'dara', 'eli', 'fatima', 'gus', 'hana', 'ivan', 'jo', 'kofi', 'lena', 'mo', 'nora', 'omar', 'pia', 'quinn', 'ravi', 'sara', 'tom', 'uma', 'vik', 'wen', 'xia', 'yusuf', 'zoe'];
const LAST = ['adams', 'baker', 'costa', 'diaz', 'evans', 'fischer', 'garcia', 'haddad', 'ito', 'jensen', 'kim', 'lopez', 'moreau', 'nakamura', 'okafor', 'patel', 'rossi', 'silva', 'tanaka', 'weber'];
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, weighted: readonly (readonly [T, number])[]): T {
  const total = weighted.reduce((a, [, w]) => a + w, 0);
  let x = rnd() * total;
  for (const [v, w] of weighted) {
    x -= w;
    if (x < 0) return v;
  }
  return weighted[weighted.length - 1]![0];
}

function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function iso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

function hex(rnd: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
  return s;
}

function uuid(rnd: () => number): string {
  const h = hex(rnd, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

interface BenchUser {
  email: string;
  division: (typeof DIVISIONS)[number];
  /** Mean turns on an active day, relative to the org's mean. */
  intensity: number;
  /** Chance of working on a given weekday. */
  presence: number;
  v2: boolean;
  opusLover: boolean;
  inactive: boolean;
  deviceNames: string[];
  auth?: AuthContext;
  devices: { id: string; keyId: number }[];
}

function makeUsers(rnd: () => number, n: number): BenchUser[] {
  const divisions = DIVISIONS.map((d) => [d, d.weight] as const);
  const users: BenchUser[] = [];
  for (let i = 0; i < n; i++) {
    const email = `${FIRST[i % FIRST.length]}.${LAST[Math.floor(i / FIRST.length) % LAST.length]}${i >= FIRST.length * LAST.length ? Math.floor(i / (FIRST.length * LAST.length)) : ''}@corp.example`;
    const kind = rnd();
    // A quarter light users, most regular, ~12 % heavy (agents, long sessions).
    const intensity = kind < 0.25 ? 0.3 + rnd() * 0.3 : kind < 0.88 ? 0.7 + rnd() * 0.7 : 2 + rnd() * 2;
    users.push({ email, division: pick(rnd, divisions), intensity, presence: 0.6 + rnd() * 0.35, v2: rnd() < 0.4, opusLover: rnd() < 0.2, inactive: rnd() < 0.03, deviceNames: rnd() < 0.3 ? ['laptop', 'desktop'] : ['laptop'], devices: [] });
  }
  return users;
}

function usageFor(rnd: () => number, model: string, v2: boolean, heavy: boolean): ReportBody['models'][string] {
  const side = model === SIDE_MODEL || model === UNKNOWN_MODEL;
  const scale = heavy ? 2 : 1;
  const input = side ? int(rnd, 200, 3000) : int(rnd, 3, 900) * scale;
  const output = side ? int(rnd, 50, 600) : int(rnd, 150, 4500) * scale;
  const cacheRead = side ? int(rnd, 0, 8000) : int(rnd, 15_000, 160_000) * scale;
  const cacheWrite = rnd() < 0.7 ? int(rnd, 300, 24_000) : 0;
  const usage: ReportBody['models'][string] = { input_tokens: input, output_tokens: output, cache_read_tokens: cacheRead, cache_write_tokens: cacheWrite };
  if (v2) {
    const oneHour = rnd() < 0.3 ? Math.floor(cacheWrite * rnd()) : 0;
    usage.cache_write_5m_tokens = cacheWrite - oneHour;
    usage.cache_write_1h_tokens = oneHour;
    usage.web_search_requests = !side && rnd() < 0.06 ? int(rnd, 1, 5) : 0;
  }
  return usage;
}

interface Turn {
  atMs: number;
  device: { id: string; keyId: number };
  report: ReportBody;
}

/** One user's turns on one day, each with its report; sorted by time. */
function dayTurns(rnd: () => number, u: BenchUser, dayStartMs: number, mean: number, endMs: number, sessions: Map<string, { id: string; startMs: number; turn: number; lastMs: number }>): Turn[] {
  const weekday = new Date(dayStartMs).getUTCDay();
  const weekend = weekday === 0 || weekday === 6;
  if (u.inactive || rnd() > (weekend ? 0.06 : u.presence)) return [];
  const count = Math.max(1, Math.round(mean * u.intensity * (0.5 + rnd())));
  // Local working hours: 09:00–18:00 in the division's zone.
  const localStart = dayStartMs + (9 - u.division.utcOffsetHours) * HOUR_MS;
  const out: Turn[] = [];
  const times = Array.from({ length: count }, () => localStart + rnd() * 9 * HOUR_MS).sort((a, b) => a - b);
  const device = u.devices.length > 1 && rnd() < 0.3 ? u.devices[1]! : u.devices[0]!;
  for (const atMs of times) {
    if (atMs > endMs - 60_000) break;
    // A session continues if the last one is recent (it may have started yesterday); else a new one.
    const key = `${u.email}|${device.id}`;
    let s = sessions.get(key);
    if (s === undefined || atMs - s.lastMs > (rnd() < 0.25 ? 20 * HOUR_MS : 2 * HOUR_MS)) {
      s = { id: uuid(rnd), startMs: atMs - int(rnd, 5, 120) * 1000, turn: 0, lastMs: atMs };
      sessions.set(key, s);
    }
    s.turn += 1 + (rnd() < 0.3 ? int(rnd, 1, 3) : 0); // turns without usage leave gaps
    s.lastMs = atMs;
    const main = u.opusLover && rnd() < 0.6 ? 'claude-opus-4-6' : pick(rnd, MAIN_MODELS);
    const models: ReportBody['models'] = { [main]: usageFor(rnd, main, u.v2, u.intensity > 2) };
    if (rnd() < 0.45) models[SIDE_MODEL] = usageFor(rnd, SIDE_MODEL, u.v2, false);
    if (rnd() < 0.03) models[UNKNOWN_MODEL] = usageFor(rnd, UNKNOWN_MODEL, u.v2, false);
    out.push({
      atMs,
      device,
      report: {
        schema_version: u.v2 ? 2 : 1,
        session_id: s.id,
        user_email: u.email,
        turn_index: s.turn,
        timestamp_utc: iso(atMs),
        session_start_utc: iso(s.startMs),
        models,
        plugin_version: u.v2 ? '0.2.0' : '0.1.0',
      },
    });
  }
  return out;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Provisions users and devices, writes the usage day by day, revokes a few users; then the
 * audit log and budgets (`generateAdmin`). */
export async function generate(store: Store, clock: { ms: number }, o: GenerateOptions): Promise<GenerateSummary> {
  const t0 = performance.now();
  const rnd = prng(o.seed);
  const users = makeUsers(rnd, o.users);
  const firstDay = Math.floor(o.endMs / DAY_MS) * DAY_MS - (o.days - 1) * DAY_MS;
  clock.ms = firstDay - 2 * DAY_MS;
  let devices = 0;
  await pool(users, o.concurrency, async (u) => {
    const { refreshToken } = await store.createUser(u.email, { division: u.division.name, days: 365 });
    const auth = await store.authenticateRefreshToken(refreshToken);
    if (auth === null) throw new Error(`cannot authenticate the refresh token just issued to ${u.email}`);
    u.auth = auth;
    for (const id of u.deviceNames) {
      const publicKey = randomBytes(32).toString('base64');
      if ((await store.registerKey(auth, publicKey, `${u.email.split('@')[0]}-${id}`)) !== 'registered') throw new Error('registerKey failed');
      const key = await store.findDeviceKey(auth.userId, publicKey);
      u.devices.push({ id: `${u.email.split('@')[0]}-${id}`, keyId: key!.id });
      devices++;
    }
  });

  // SQLite: a day's reports go through insertReport inside one outer transaction (each report's
  // own transaction becomes a savepoint), so the generator does not pay a commit per report.
  const sqlite = store instanceof SqliteStore ? store.db : undefined;
  const sessions = new Map<string, { id: string; startMs: number; turn: number; lastMs: number }>();
  let reports = 0;
  let rows = 0;
  let v2Reports = 0;
  for (let d = 0; d < o.days; d++) {
    const dayStart = firstDay + d * DAY_MS;
    const turns: (Turn & { user: BenchUser })[] = [];
    for (const u of users) for (const t of dayTurns(rnd, u, dayStart, o.turnsPerDay, o.endMs, sessions)) turns.push({ ...t, user: u });
    turns.sort((a, b) => a.atMs - b.atMs);
    const insert = (t: Turn & { user: BenchUser }) => {
      // Received a few seconds after the turn (the store stamps received_at and key last_seen_at).
      clock.ms = Math.max(clock.ms, t.atMs + 3000);
      return store.insertReport(t.user.auth!, t.report, { deviceId: t.device.id, signed: true, deviceKeyId: t.device.keyId }).then(({ inserted }) => {
        reports++;
        rows += inserted;
        if (t.report.schema_version === 2) v2Reports++;
      });
    };
    if (sqlite !== undefined) {
      const pending: Promise<void>[] = [];
      sqlite.transaction(() => {
        for (const t of turns) pending.push(insert(t));
      })();
      await Promise.all(pending);
    } else {
      await pool(turns, o.concurrency, insert);
    }
    if ((d + 1) % 15 === 0 || d === o.days - 1) o.log(`  day ${d + 1}/${o.days}: ${reports} reports, ${rows} rows, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }

  // The end of the period: a few revokes and a reissue.
  clock.ms = o.endMs - 2 * HOUR_MS;
  for (const u of revokedUsers(users)) await store.revokeUser(u.email);
  await store.reissueToken(users[5]!.email, { days: 365 });
  const admin = await generateAdmin(store, clock, o);
  const revoked = revokedUsers(users);
  const heavy = users.find((u) => u.intensity > 2 && !u.inactive && !revoked.includes(u)) ?? users[0]!;
  const regular = users.find((u) => u.intensity > 0.8 && u.intensity < 1.2 && !u.inactive && !revoked.includes(u)) ?? users[1]!;
  return {
    users: users.length,
    devices,
    reports,
    rows,
    v2Reports,
    ...admin,
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
    sample: { divisions: DIVISIONS.map((d) => d.name), models: [...MAIN_MODELS.map(([m]) => m), SIDE_MODEL, UNKNOWN_MODEL], heavyUser: heavy.email, user: regular.email },
  };
}

function revokedUsers(users: BenchUser[]): BenchUser[] {
  return users.filter((_, i) => i % 97 === 13);
}

/**
 * The audit log (provisioning, a login every morning and now and then a failed one, the revokes
 * and the reissue `generate` made) and the budgets with some alerts. On its own for a database
 * the usage was copied into (`migrate --from sqlite:` copies users, keys and usage, not these).
 */
export async function generateAdmin(store: Store, clock: { ms: number }, o: Pick<GenerateOptions, 'users' | 'days' | 'endMs' | 'seed'>): Promise<{ auditEntries: number; budgets: number }> {
  const users = makeUsers(prng(o.seed), o.users);
  const firstDay = Math.floor(o.endMs / DAY_MS) * DAY_MS - (o.days - 1) * DAY_MS;
  let auditEntries = 0;
  const audit = async (action: Parameters<Store['recordAudit']>[0]['action'], actor: 'session' | 'cli' | 'anonymous', target: string, detail?: Record<string, unknown>) => {
    await store.recordAudit({ actor, source: actor === 'cli' ? 'cli' : '10.20.0.7', action, target, ...(detail === undefined ? {} : { detail }) });
    auditEntries++;
  };
  clock.ms = firstDay - 2 * DAY_MS;
  await audit('user.import', 'cli', '', { created: users.length });
  for (const u of users.slice(0, 200)) await audit('user.provision', 'cli', u.email, { division: u.division.name });
  for (let d = 0; d < o.days; d++) {
    clock.ms = firstDay + d * DAY_MS + 6 * HOUR_MS;
    await audit('login.success', 'session', '', { via: 'form' });
    if (d % 9 === 4) await audit('login.failure', 'anonymous', '', { via: 'form' });
  }
  clock.ms = o.endMs - 2 * HOUR_MS;
  for (const u of revokedUsers(users)) await audit('user.revoke', 'session', u.email);
  await audit('user.reissue', 'session', users[5]!.email);
  const month = new Date(o.endMs).toISOString().slice(0, 7);
  let budgets = 0;
  const { budget: org } = await store.setBudget({ scope: 'org', subject: '', unit: 'usd', monthlyLimit: 250_000 });
  budgets++;
  await audit('budget.set', 'session', 'org:', { unit: 'usd', monthly_limit: 250_000 });
  for (const d of DIVISIONS) {
    const { budget } = await store.setBudget({ scope: 'division', subject: d.name, unit: 'usd', monthlyLimit: d.weight * 1_000 });
    budgets++;
    await audit('budget.set', 'session', `division:${d.name}`, { unit: 'usd', monthly_limit: d.weight * 1_000 });
    if (d.weight > 20) await store.recordBudgetAlert({ budgetId: budget.id, month, threshold: 80, spent: d.weight * 820, monthlyLimit: d.weight * 1_000, crossedAt: iso(clock.ms) });
  }
  for (const u of users.filter((x) => x.intensity > 2).slice(0, 25)) {
    const { budget } = await store.setBudget({ scope: 'user', subject: u.email, unit: 'tokens', monthlyLimit: 50_000_000 });
    budgets++;
    await audit('budget.set', 'session', `user:${u.email}`, { unit: 'tokens', monthly_limit: 50_000_000 });
    if (budgets % 4 === 0) await store.recordBudgetAlert({ budgetId: budget.id, month, threshold: 100, spent: 51_000_000, monthlyLimit: 50_000_000, crossedAt: iso(clock.ms) });
  }
  await store.recordBudgetAlert({ budgetId: org.id, month, threshold: 80, spent: 201_000, monthlyLimit: 250_000, crossedAt: iso(clock.ms) });
  return { auditEntries, budgets };
}

/** Opens (creating and migrating) a store the way the receiver does, with a clock we move. */
export async function openBenchStore(target: { databasePath?: string; databaseUrl?: string }, clock: { ms: number }): Promise<Store> {
  return openStore(
    { databasePath: target.databasePath ?? '', databaseUrl: target.databaseUrl, databasePoolMax: 8, accessTokenExpirySecs: 3600, refreshTokenRollingDays: 90 },
    () => new Date(clock.ms),
  );
}

/** Rows stored for sessions whose id starts with `prefix` (the ingest bench checks nothing was lost). */
export async function countRows(target: { databasePath?: string; databaseUrl?: string }, prefix: string): Promise<number> {
  const sql = 'SELECT count(*) AS n FROM usage_events WHERE session_id LIKE';
  if (target.databaseUrl !== undefined) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: target.databaseUrl });
    await client.connect();
    try {
      return Number((await client.query(`${sql} $1`, [`${prefix}%`])).rows[0].n);
    } finally {
      await client.end();
    }
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(target.databasePath!, { readonly: true });
  try {
    return Number((db.prepare(`${sql} ?`).get(`${prefix}%`) as { n: number }).n);
  } finally {
    db.close();
  }
}
