/**
 * Every fixture scenario, replayed through the installed plugin's real hooks (sh wrapper →
 * detached worker) against the real receiver: the receiver's per-model sums must equal what the
 * API really billed (expected.json `models`), exactly.
 */
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
