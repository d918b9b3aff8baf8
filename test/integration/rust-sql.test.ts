/**
 * Issue 17, break 3: SQL written for the Rust receiver keeps its meaning on ours. The e2e fixture
 * scenarios are replayed through the real hooks into one real receiver (one user per scenario, in
 * divisions), then the Rust version's dashboard queries and the queries its docs lead IT to write
 * (per user, per division through `refresh_tokens`, last hour by `received_at`, per model) must
 * answer what the stored rows say.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SCENARIOS, cleanupTempDirs, fixtureDir, hookEnv, makeDataDir, sessionSums } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { addSums, expectedModels, installPlugin, replayTimeline, retagFixture, waitForQuiet } from '../helpers/timeline';

const DIVISIONS: Record<string, string> = { basic: 'engineering', subagents: 'engineering', partial: 'research', advisor: 'research', resume: '' };

let rx: RunningReceiver | undefined;
afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

type Totals = { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number };
const tokens = (t: Totals) => t.input_tokens + t.output_tokens;

describe("the Rust version's SQL against a receiver fed by the e2e scenarios", () => {
  it('per user, per division, last hour and per model answer as the rows say', async () => {
    const receiver = await startReceiver();
    rx = receiver;
    const perUser: Record<string, Totals> = {};
    const sessionsOf: Record<string, string[]> = {};
    for (const [i, scenario] of SCENARIOS.entries()) {
      const email = `${scenario}@example.org`;
      const division = DIVISIONS[scenario]!;
      const token = await receiver.addUser(email, division ? { division } : {});
      const dir = await retagFixture(fixtureDir(scenario), i.toString(16).padStart(8, '0'));
      const { dataDir, home } = await makeDataDir();
      const pluginRoot = await installPlugin(dataDir);
      const { meta } = await replayTimeline(dir, { dataDir, env: hookEnv({ dataDir, home, pluginRoot, endpoint: receiver.url, token }), pluginRoot });
      await waitForQuiet(dataDir);
      const expected = expectedModels(dir);
      expect(sessionSums(receiver, meta.sessions)).toEqual(expected);
      sessionsOf[email] = meta.sessions;
      perUser[email] = Object.values(expected).reduce(addTotals, zero());
    }

    // dashboard/usage_by_user.sql: the Rust dashboard's per-user totals over 30 days.
    const byUser = receiver.query<{ user_email: string; total_tokens: number; sessions: number }>(
      `SELECT user_email, SUM(input_tokens + output_tokens) AS total_tokens, SUM(input_tokens) AS input_tokens,
              SUM(output_tokens) AS output_tokens, COUNT(DISTINCT session_id) AS sessions, COUNT(*) AS turns,
              MAX(timestamp_utc) AS last_active
         FROM usage_events WHERE timestamp_utc >= datetime('now', '-30 days')
        GROUP BY user_email ORDER BY total_tokens DESC`,
    );
    expect(Object.fromEntries(byUser.map((r) => [r.user_email, r.total_tokens]))).toEqual(
      Object.fromEntries(Object.entries(perUser).map(([email, t]) => [email, tokens(t)])),
    );
    expect(byUser.every((r, i) => i === 0 || r.total_tokens <= byUser[i - 1]!.total_tokens)).toBe(true);

    // Per division: usage_events.user_token joined to refresh_tokens (now the compatibility view).
    const byDivision = receiver.query<{ division: string | null; output: number; users: number }>(
      `SELECT rt.division, SUM(ue.output_tokens) AS output, COUNT(DISTINCT rt.email) AS users
         FROM usage_events ue JOIN refresh_tokens rt ON rt.token = ue.user_token
        WHERE rt.revoked = 0
        GROUP BY rt.division ORDER BY rt.division`,
    );
    const expectedDivision = new Map<string | null, { output: number; users: number }>();
    for (const [email, t] of Object.entries(perUser)) {
      const division = DIVISIONS[email.split('@')[0]!] || null;
      const acc = expectedDivision.get(division) ?? { output: 0, users: 0 };
      expectedDivision.set(division, { output: acc.output + t.output_tokens, users: acc.users + 1 });
    }
    expect(byDivision).toEqual(
      [...expectedDivision].sort(([a], [b]) => (a ?? '').localeCompare(b ?? '')).map(([division, v]) => ({ division, ...v })),
    );

    // Last hour by received_at: every row was received just now, none more than an hour ago.
    const all = receiver.query<{ n: number }>('SELECT count(*) AS n FROM usage_events')[0]!.n;
    expect(all).toBeGreaterThan(10);
    expect(receiver.query(`SELECT count(*) AS n FROM usage_events WHERE received_at BETWEEN datetime('now', '-1 hour') AND datetime('now', '+1 minute')`)).toEqual([{ n: all }]);
    expect(receiver.query(`SELECT count(*) AS n FROM usage_events WHERE received_at < datetime('now', '-1 hour')`)).toEqual([{ n: 0 }]);
    expect(receiver.query(`SELECT count(*) AS n FROM usage_events WHERE date(received_at) = date('now') AND time(received_at) IS NOT NULL`)).toEqual([{ n: all }]);

    // dashboard/model_breakdown.sql: per model across the org.
    const byModel = receiver.query<{ model: string; total_output: number; total_input: number; unique_users: number }>(
      `SELECT model, COUNT(DISTINCT user_email) AS unique_users, COUNT(*) AS turns, SUM(input_tokens) AS total_input,
              SUM(output_tokens) AS total_output, SUM(cache_read_tokens) AS total_cache_read, SUM(cache_write_tokens) AS total_cache_write,
              ROUND(100.0 * SUM(cache_read_tokens) / NULLIF(SUM(input_tokens + cache_read_tokens + cache_write_tokens), 0), 1) AS cache_hit_pct
         FROM usage_events GROUP BY model ORDER BY total_output DESC`,
    );
    const orgByModel = addSums(...Object.values(sessionsOf).map((ids) => sessionSums(receiver, ids)));
    expect(Object.fromEntries(byModel.map((r) => [r.model, [r.total_input, r.total_output]]))).toEqual(
      Object.fromEntries(Object.entries(orgByModel).map(([m, t]) => [m, [t.input_tokens, t.output_tokens]])),
    );

    // dashboard/five_hour_windows.sql runs and covers every row that has a session start.
    const windows = receiver.query<{ turns: number }>(
      `SELECT user_email, session_id, session_start_utc,
              CAST((JULIANDAY(timestamp_utc) - JULIANDAY(session_start_utc)) * 24 / 5 AS INTEGER) AS five_hour_window,
              SUM(input_tokens + output_tokens) AS tokens_in_window, SUM(output_tokens) AS output_tokens, COUNT(*) AS turns
         FROM usage_events WHERE session_start_utc IS NOT NULL
        GROUP BY user_email, session_id, five_hour_window ORDER BY tokens_in_window DESC`,
    );
    expect(windows.reduce((n, w) => n + w.turns, 0)).toBe(all);
  });
});

function zero(): Totals {
  return { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}
function addTotals(a: Totals, b: Totals): Totals {
  return {
    input_tokens: a.input_tokens + b.input_tokens,
    output_tokens: a.output_tokens + b.output_tokens,
    cache_read_tokens: a.cache_read_tokens + b.cache_read_tokens,
    cache_write_tokens: a.cache_write_tokens + b.cache_write_tokens,
  };
}
