/**
 * Seeded random sessions (test/helpers/gen-transcript.ts: every trap the fixtures have, in new
 * combinations) through the real hooks and the real receiver, exactly like the fixtures: the
 * receiver's per-model sums must equal what the API billed. `CCFLUX_TEST_SEED=<n>` replays
 * another seed (a failure message names the seed).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanupTempDirs, hookEnv, makeDataDir, makeTempDir, sessionSums } from '../helpers/env';
import { type GeneratedSession, generateConcurrentSessions, generateSession } from '../helpers/gen-transcript';
import { type RunningReceiver as Receiver, startReceiver } from '../helpers/receiver';
import { installPlugin, replayTimeline, waitForQuiet } from '../helpers/timeline';

const BASE_SEED = Number(process.env.CCFLUX_TEST_SEED ?? 4242);

let receiver: Receiver | undefined;

afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

afterAll(async () => {
  await cleanupTempDirs();
});

async function writeFixture(session: GeneratedSession): Promise<string> {
  const dir = await makeTempDir('ccflux-generated-');
  await writeFile(join(dir, 'timeline.jsonl'), session.timeline.map((e) => `${JSON.stringify(e)}\n`).join(''));
  await writeFile(join(dir, 'expected.json'), JSON.stringify(session.expected));
  return dir;
}

const CASES: Array<[string, () => GeneratedSession]> = [
  [`one session, seed ${BASE_SEED}`, () => generateSession({ seed: BASE_SEED })],
  [`one session, seed ${BASE_SEED + 1}`, () => generateSession({ seed: BASE_SEED + 1, resumeProbability: 1 })],
  [`three interleaved sessions, seed ${BASE_SEED + 2}`, () => generateConcurrentSessions({ seed: BASE_SEED + 2, count: 3, turns: 4 })],
];

describe.each(CASES)('generated: %s', (_name, generate) => {
  it('reaches the receiver with exactly the billed tokens per model', async () => {
    const session = generate();
    const dir = await writeFixture(session);
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    const { dataDir, home } = await makeDataDir();
    const pluginRoot = await installPlugin(dataDir);
    const env = hookEnv({ dataDir, home, pluginRoot, endpoint: rx.url, token });

    const { meta } = await replayTimeline(dir, { dataDir, env, pluginRoot });
    await waitForQuiet(dataDir, { timeoutMillis: 90_000 });

    expect(sessionSums(rx, meta.sessions)).toEqual(session.expected.models);
  }, 180_000);
});
