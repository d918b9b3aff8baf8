/**
 * Every state file corrupt or missing in turn, half way through a session: the hooks keep exiting
 * 0 silently, the device recovers by itself, and the receiver ends up with the session's true
 * totals (nothing lost, nothing twice), except where the lost file was the only memory of what
 * was already reported (the ledger): then nothing may be lost.
 */
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type ModelTotals,
  type Relay,
  cleanupTempDirs,
  fixtureDir,
  hookEnv,
  makeDataDir,
  readJsonLines,
  readTextOr,
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
const SESSION = readTimeline(SCENARIO).meta.sessions[0] as string;
const lastStop = () => {
  const stops = readTimeline(SCENARIO).steps.filter((s) => s.kind === 'hook' && s.event === 'Stop');
  return (stops[stops.length - 1] as { input: Record<string, unknown> }).input;
};

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

interface Case {
  file: string;
  how: 'corrupt' | 'missing';
  /** Keep the receiver unreachable for the first half, so the queue holds reports when it is damaged. */
  queueFull?: boolean;
  /** The file is the only record of what was reported: a loss may over-count, never under-count. */
  atLeast?: boolean;
  /** Credentials live in config.json only (no plugin options), as after `ccflux login`. */
  credentialsInConfig?: boolean;
  damage(stateDir: string): Promise<void>;
  /** What the log must say after the damage, before anything is repaired. */
  logs?: RegExp;
}

const remove = (name: string) => async (dir: string) => rm(join(dir, name), { recursive: true, force: true });
const overwrite = (name: string, data: string | Buffer) => async (dir: string) => writeFile(join(dir, name), data);

async function ledgerShards(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'ledger'))).map((f) => join(dir, 'ledger', f));
  } catch {
    return [];
  }
}

const CASES: Case[] = [
  // Without usable credentials nothing can be sent: reports wait until the user runs `ccflux login`.
  {
    file: 'config.json',
    how: 'corrupt',
    credentialsInConfig: true,
    damage: overwrite('config.json', '{"endpoint": "https://x", "tok'),
    logs: /config\.json/,
  },
  { file: 'config.json', how: 'missing', credentialsInConfig: true, damage: remove('config.json'), logs: /ccflux login/ },
  { file: 'signing_key', how: 'corrupt', damage: overwrite('signing_key', Buffer.from('not a 32-byte seed')), logs: /signing key/ },
  { file: 'signing_key', how: 'missing', damage: remove('signing_key') },
  { file: 'key_registered', how: 'corrupt', damage: overwrite('key_registered', 'garbage\u0000') },
  { file: 'key_registered', how: 'missing', damage: remove('key_registered') },
  { file: 'token_cache.json', how: 'corrupt', damage: overwrite('token_cache.json', '{"access_token": 12, "expires_at": "soon"') },
  { file: 'token_cache.json', how: 'missing', damage: remove('token_cache.json') },
  {
    file: 'pending_reports.jsonl',
    how: 'corrupt',
    queueFull: true,
    // A torn last line (a writer killed mid-append) and a line that is not a report.
    damage: async (dir) => appendFile(join(dir, 'pending_reports.jsonl'), 'not json\n{"schema_version":1,"session_id":"x'),
    logs: /unreadable/,
  },
  { file: 'pending_reports.jsonl', how: 'missing', damage: remove('pending_reports.jsonl') },
  {
    file: '<session>.offset',
    how: 'corrupt',
    damage: overwrite(`${SESSION}.offset`, '{"version":1,"sessionId":'),
    logs: new RegExp(`session ${SESSION}: .*state`),
  },
  { file: '<session>.offset', how: 'missing', damage: remove(`${SESSION}.offset`), logs: new RegExp(`session ${SESSION}: .*state`) },
  {
    file: 'ledger shard',
    how: 'corrupt',
    damage: async (dir) => {
      const shards = await ledgerShards(dir);
      expect(shards.length).toBeGreaterThan(0);
      for (const shard of shards) await appendFile(shard, '{"k":"m:broken\nnot json at all\n');
    },
    logs: /ledger.*corrupt/,
  },
  {
    file: 'ledger shard',
    how: 'missing',
    atLeast: true,
    damage: async (dir) => {
      const shards = await ledgerShards(dir);
      expect(shards.length).toBeGreaterThan(0);
      await Promise.all(shards.map((s) => rm(s, { force: true })));
    },
  },
];

function atLeast(actual: ModelTotals, expected: ModelTotals): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [model, usage] of Object.entries(expected)) {
    for (const [field, value] of Object.entries(usage)) {
      expect(actual[model]?.[field as keyof typeof usage], `${model} ${field}`).toBeGreaterThanOrEqual(value);
    }
  }
}

async function backoffPassed(stateDir: string): Promise<void> {
  const path = join(stateDir, 'delivery_backoff.json');
  const text = await readFile(path, 'utf8').catch(() => '{}');
  const table = JSON.parse(text) as Record<string, { notBefore: string }>;
  for (const entry of Object.values(table)) entry.notBefore = '2000-01-01T00:00:00Z';
  await writeFile(path, JSON.stringify(table), { mode: 0o600 });
}

describe.each(CASES.map((c) => [`${c.file} ${c.how}`, c] as const))('state file %s', (_name, testCase) => {
  it('half way through a session: hooks stay silent, the device recovers, the totals are right', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    relay = await startRelay(rx.port, testCase.queueFull ? 'refuse' : 'up');
    const { dataDir, home } = await makeDataDir({ email: 'alice@example.org' });
    const stateDir = join(dataDir, 'ccflux');
    const pluginRoot = await installPlugin(dataDir);
    const env = testCase.credentialsInConfig
      ? hookEnv({ dataDir, home, pluginRoot })
      : hookEnv({ dataDir, home, pluginRoot, endpoint: relay.url, token });
    const writeConfig = () =>
      writeFile(join(stateDir, 'config.json'), JSON.stringify({ endpoint: relay?.url, token }), { mode: 0o600 });
    if (testCase.credentialsInConfig) {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await writeConfig();
    }

    await replayTimeline(SCENARIO, { dataDir, env, pluginRoot, to: HALF });
    await waitForQuiet(dataDir, { queueEmpty: !testCase.queueFull });
    if (testCase.queueFull) expect((await readJsonLines(join(stateDir, 'pending_reports.jsonl'))).length).toBeGreaterThan(0);

    await testCase.damage(stateDir);
    relay.setMode('up');
    // The refused first half earned a persisted backoff (src/client/deliver/backoff.ts): the second
    // half comes after it ran out, as a user's later turns would.
    if (testCase.queueFull) await backoffPassed(stateDir);

    await replayTimeline(SCENARIO, { dataDir, env, pluginRoot, from: HALF });
    await waitForQuiet(dataDir, { queueEmpty: !testCase.credentialsInConfig });
    if (testCase.logs) {
      const logs = (await readTextOr(join(stateDir, 'activity.log'))) + (await readTextOr(join(stateDir, 'errors.log')));
      expect(logs).toMatch(testCase.logs);
    }
    if (testCase.credentialsInConfig) {
      // The user logs in again; the next turn delivers everything that waited.
      expect((await readJsonLines(join(stateDir, 'pending_reports.jsonl'))).length).toBeGreaterThan(0);
      await writeConfig();
      await runHook(pluginRoot, 'Stop', substituteDataDir(lastStop(), dataDir) as Record<string, unknown>, env);
      await waitForQuiet(dataDir);
    }

    const sums = sessionSums(rx, [SESSION]);
    if (testCase.atLeast) atLeast(sums, expectedModels(SCENARIO));
    else expect(sums).toEqual(expectedModels(SCENARIO));
  });
});
