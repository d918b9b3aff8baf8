/**
 * Every fixture scenario, replayed through the installed plugin's real hooks (sh wrapper →
 * detached worker) against the real receiver: the receiver's per-model sums must equal what the
 * API really billed (expected.json `models`), exactly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  SCENARIOS,
  cleanupTempDirs,
  fixtureDir,
  hookEnv,
  makeDataDir,
  readJsonLines,
  sessionRows,
  sessionSums,
} from '../helpers/env';
import { type RunningReceiver as Receiver, startReceiver } from '../helpers/receiver';
import { expectedModels, installPlugin, naiveSums, replayTimeline, waitForQuiet } from '../helpers/timeline';

// One receiver per scenario: every fixture was generated with the same session id.
let receiver: Receiver | undefined;

afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

afterAll(async () => {
  await cleanupTempDirs();
});

/** All seven counters per model, as the receiver stores them (schema-v2 detail included). */
function detailSums(rx: Receiver, sessions: string[]): Record<string, Record<string, number>> {
  const rows = rx.query<Record<string, number> & { model: string }>(
    `SELECT model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
            SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens,
            SUM(cache_write_5m_tokens) AS cache_write_5m_tokens, SUM(cache_write_1h_tokens) AS cache_write_1h_tokens,
            SUM(web_search_requests) AS web_search_requests
       FROM usage_events WHERE session_id IN (${sessions.map(() => '?').join(',')}) GROUP BY model ORDER BY model`,
    ...sessions,
  );
  return Object.fromEntries(rows.map(({ model, ...totals }) => [model, totals]));
}

describe.each(SCENARIOS)('scenario %s', (scenario) => {
  it('reaches the receiver with exactly the billed tokens per model', async () => {
    const dir = fixtureDir(scenario);
    const rx = await startReceiver();
    receiver = rx;
    const { dataDir, home } = await makeDataDir();
    const pluginRoot = await installPlugin(dataDir);
    const token = await rx.addUser(`${scenario}@example.org`);
    const env = hookEnv({ dataDir, home, pluginRoot, endpoint: rx.url, token });

    const { meta, hooks } = await replayTimeline(dir, { dataDir, env, pluginRoot });
    await waitForQuiet(dataDir);

    const expected = expectedModels(dir);
    expect(sessionSums(rx, meta.sessions)).toEqual(expected);
    // The point of the exercise: the Rust method would have stored something else.
    expect(naiveSums(dir)).not.toEqual(expected);
    // Fixtures recorded from the real client also say what was billed in schema-v2 detail.
    const billed = (JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { billed?: Record<string, Record<string, number>> }).billed;
    if (billed !== undefined) expect(detailSums(rx, meta.sessions)).toEqual(billed);

    // Every report went out signed, and nothing is left behind or set aside.
    const rows = sessionRows(rx, meta.sessions);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.signed === 1)).toBe(true);
    expect(await readJsonLines(join(dataDir, 'ccflux', 'pending_reports.jsonl'))).toEqual([]);
    expect(await readJsonLines(join(dataDir, 'ccflux', 'rejected_reports.jsonl'))).toEqual([]);
    // Hooks hand off and return: none waited for its worker (which signs, posts, fsyncs), and
    // SessionEnd stays inside the 1.5 s Claude Code gives all SessionEnd hooks together.
    expect(Math.max(...hooks.map((h) => h.wallMillis))).toBeLessThan(2_000);
    for (const end of hooks.filter((h) => h.event === 'SessionEnd')) expect(end.wallMillis).toBeLessThan(1_500);
  });
});
