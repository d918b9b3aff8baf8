/**
 * What the receiver's answers (and silences) do to a session in flight, end to end: the real
 * hooks and worker against the real receiver, with a relay in front of it to take it down.
 * Every hook must still exit 0, print nothing and return at once (replayTimeline checks).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Relay,
  cleanupTempDirs,
  fixtureDir,
  hookEnv,
  makeDataDir,
  readJsonLines,
  readTextOr,
  sessionRows,
  sessionSums,
  startRelay,
} from '../helpers/env';
import { type RunningReceiver as Receiver, startReceiver } from '../helpers/receiver';
import {
  expectedModels,
  hookCount,
  installPlugin,
  readTimeline,
  replayTimeline,
  runHook,
  stepAfterHook,
  substituteDataDir,
  waitForQuiet,
} from '../helpers/timeline';

const SCENARIO = fixtureDir('basic');
const HALF = stepAfterHook(SCENARIO, Math.floor(hookCount(SCENARIO) / 2));
const { meta } = readTimeline(SCENARIO);
const EMAIL = 'alice@example.org';

let receiver: Receiver | undefined;
let relay: Relay | undefined;

afterEach(async () => {
  await relay?.stop();
  await receiver?.stop();
  relay = undefined;
  receiver = undefined;
});

afterAll(async () => {
  await cleanupTempDirs();
});

async function setUp(options: { relayMode?: 'up' | 'refuse' | 'blackhole' } = {}) {
  const rx = await startReceiver();
  receiver = rx;
  const token = await rx.addUser(EMAIL);
  let endpoint = rx.url;
  if (options.relayMode) {
    relay = await startRelay(rx.port, options.relayMode);
    endpoint = relay.url;
  }
  const { dataDir, home } = await makeDataDir({ email: EMAIL });
  const pluginRoot = await installPlugin(dataDir);
  const env = hookEnv({ dataDir, home, pluginRoot, endpoint, token });
  const state = (name: string) => join(dataDir, 'ccflux', name);
  const queued = async () => (await readJsonLines(state('pending_reports.jsonl'))).length;
  const sums = () => sessionSums(rx, meta.sessions);
  // The failures of an outage earn a backoff (hooks leave the endpoint alone for up to 15 min,
  // src/client/deliver/backoff.ts); the session's second half comes after it ran out.
  const backoffPassed = async () => {
    const text = await readFile(state('delivery_backoff.json'), 'utf8').catch(() => '{}');
    const table = JSON.parse(text) as Record<string, { failures: number; notBefore: string }>;
    expect(Object.keys(table).length).toBeGreaterThan(0);
    for (const entry of Object.values(table)) entry.notBefore = '2000-01-01T00:00:00Z';
    await writeFile(state('delivery_backoff.json'), JSON.stringify(table), { mode: 0o600 });
  };
  return { rx, token, dataDir, home, pluginRoot, env, state, queued, sums, backoffPassed };
}

/** The last Stop hook of the timeline, run again: no new bytes, but it drains the queue. */
function lastStopInput(dataDir: string): Record<string, unknown> {
  const stops = readTimeline(SCENARIO).steps.filter((s) => s.kind === 'hook' && s.event === 'Stop');
  const input = (stops[stops.length - 1] as { input: Record<string, unknown> }).input;
  return substituteDataDir(input, dataDir) as Record<string, unknown>;
}

/** Distinct turn indexes the receiver holds for the session: 0..n-1, none missing, none repeated. */
function turnIndexes(rx: Receiver): number[] {
  const rows = sessionRows(rx, meta.sessions);
  return [...new Set(rows.map((r) => r.turn_index))].sort((a, b) => a - b);
}

describe('delivery faults, end to end', () => {
  it('receiver down for the first half of a session, then up: everything arrives, nothing twice', async () => {
    const t = await setUp({ relayMode: 'refuse' });
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toBeGreaterThan(0);
    expect(t.sums()).toEqual({});

    relay?.setMode('up');
    await t.backoffPassed();
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
    const turns = turnIndexes(t.rx);
    expect(turns).toEqual(turns.map((_, i) => i));
  });

  it('receiver that accepts and never answers: hooks still return at once, the queue waits', async () => {
    const t = await setUp({ relayMode: 'blackhole' });
    const { hooks } = await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, to: HALF });
    for (const hook of hooks) expect(hook.wallMillis, `${hook.event} #${hook.index}`).toBeLessThan(1_500);
    await waitForQuiet(t.dataDir, { queueEmpty: false, timeoutMillis: 90_000 });
    expect(await t.queued()).toBeGreaterThan(0);

    relay?.setMode('up');
    await t.backoffPassed();
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
  });

  it('a revoked device key: the device writes key_revoked, clears its queue and goes silent', async () => {
    const t = await setUp();
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir);
    const before = t.sums();
    expect(Object.keys(before).length).toBeGreaterThan(0);

    const publicKey = (await readTextOr(t.state('key_registered'))).trim();
    expect(publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await t.rx.cli(['keys', 'revoke', publicKey]);

    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(await readTextOr(t.state('key_revoked'), '<absent>')).not.toBe('<absent>');
    expect(await t.queued()).toBe(0);
    expect(t.sums()).toEqual(before);

    // Silent from now on: another turn queues nothing and sends nothing.
    await runHook(t.pluginRoot, 'Stop', lastStopInput(t.dataDir), t.env);
    await waitForQuiet(t.dataDir);
    expect(await t.queued()).toBe(0);
    expect(t.sums()).toEqual(before);
  });

  it('a revoked user (refresh token): logged for the user, queue kept; a new token delivers it all', async () => {
    const t = await setUp();
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir);
    const before = t.sums();

    await t.rx.cli(['users', 'revoke', EMAIL]);
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toBeGreaterThan(0);
    expect(t.sums()).toEqual(before);
    expect(await readTextOr(t.state('errors.log'))).toMatch(/contact your IT admin/);

    // IT enables the user again with a new refresh token; the user puts it in the plugin options.
    const reissued = (await t.rx.cli(['users', 'add', EMAIL])).trim().split('\n').pop() as string;
    expect(reissued.length).toBeGreaterThan(10);
    const env = { ...t.env, CLAUDE_PLUGIN_OPTION_API_TOKEN: reissued };
    await runHook(t.pluginRoot, 'Stop', lastStopInput(t.dataDir), env);
    await waitForQuiet(t.dataDir);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
    // No token ever reaches a log.
    const logs = (await readTextOr(t.state('activity.log'))) + (await readTextOr(t.state('errors.log')));
    expect(logs).not.toContain(t.token);
    expect(logs).not.toContain(reissued);
  });

  it('a receiver that forgot the device key: the device registers again, nothing lost', async () => {
    const t = await setUp();
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir);

    const { default: Database } = await import('better-sqlite3');
    const db = new Database(t.rx.dbPath);
    db.pragma('busy_timeout = 5000');
    expect(db.prepare('DELETE FROM device_keys').run().changes).toBeGreaterThan(0);
    db.close();

    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
  });

  it.each([
    ['fast', 10 * 60 * 1000],
    ['slow', -10 * 60 * 1000],
  ])('a device clock 10 minutes %s: every report is delivered in the run that made it (offset kept for later runs)', async (_, offset) => {
    const t = await setUp();
    const skewed = { ...t.env, CCFLUX_TEST_NOW_OFFSET_MS: String(offset) };
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: skewed, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir);
    expect(await t.queued()).toBe(0);
    const direction = offset > 0 ? 'ahead of' : 'behind';
    expect(await readTextOr(t.state('errors.log'))).toMatch(new RegExp(`device clock is (9m5\\ds|10m\\d\\ds) ${direction} the receiver`));
    const kept = JSON.parse(await readTextOr(t.state('clock_offset.json')));
    expect(Math.abs(kept.offset_ms + offset)).toBeLessThan(5000);

    // Later runs sign with the kept offset at once: no refusal, nothing waits.
    const refusalsBefore = (await readTextOr(t.state('errors.log'))).split('re-signed').length;
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: skewed, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(await t.queued()).toBe(0);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
    expect((await readTextOr(t.state('errors.log'))).split('re-signed').length).toBe(refusalsBefore);
  });

  it('no credentials anywhere: nothing sent, one line on how to configure, reports kept for later', async () => {
    const t = await setUp();
    const unconfigured = { ...t.env };
    delete unconfigured.CLAUDE_PLUGIN_OPTION_API_ENDPOINT;
    delete unconfigured.CLAUDE_PLUGIN_OPTION_API_TOKEN;
    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: unconfigured, pluginRoot: t.pluginRoot, to: HALF });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toBeGreaterThan(0);
    expect(await readTextOr(t.state('activity.log'))).toMatch(/ccflux login/);

    await replayTimeline(SCENARIO, { dataDir: t.dataDir, env: t.env, pluginRoot: t.pluginRoot, from: HALF });
    await waitForQuiet(t.dataDir);
    expect(t.sums()).toEqual(expectedModels(SCENARIO));
  });
});
