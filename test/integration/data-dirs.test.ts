/**
 * Several sessions sharing one data dir at once, and a plugin that must only report its own data
 * dir's sessions.
 */
import { cp, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PLUGIN_DIR, cleanupTempDirs, fixtureDir, hookEnv, makeDataDir, makeTempDir, sessionSums } from '../helpers/env';
import { type RunningReceiver as Receiver, startReceiver } from '../helpers/receiver';
import {
  addSums,
  expectedModels,
  installPlugin,
  readTimeline,
  replayTimeline,
  retagFixture,
  waitForQuiet,
} from '../helpers/timeline';

let receiver: Receiver | undefined;

afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

afterAll(async () => {
  await cleanupTempDirs();
});

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

describe('data dirs', () => {
  it('three sessions reporting concurrently into one data dir: each arrives exactly', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    const { dataDir, home } = await makeDataDir({ email: 'alice@example.org' });
    const pluginRoot = await installPlugin(dataDir);
    const env = hookEnv({ dataDir, home, pluginRoot, endpoint: rx.url, token });
    // Same seed, same ids: give each copy its own session, message and request ids.
    const fixtures = await Promise.all([
      retagFixture(fixtureDir('basic'), 'aaaaaaaa'),
      retagFixture(fixtureDir('subagents'), 'bbbbbbbb'),
      retagFixture(fixtureDir('partial'), 'cccccccc'),
    ]);

    await Promise.all(fixtures.map((dir) => replayTimeline(dir, { dataDir, env, pluginRoot })));
    await waitForQuiet(dataDir, { timeoutMillis: 60_000 });

    for (const dir of fixtures) {
      expect(sessionSums(rx, readTimeline(dir).meta.sessions), dir).toEqual(expectedModels(dir));
    }
    expect(rx.sums()).toEqual(addSums(...fixtures.map(expectedModels)));
  });

  it('a plugin installed in another data dir reports nothing from this one', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    const work = await makeDataDir({ email: 'alice@example.org', name: '.claude-work' });
    const personal = await makeDataDir({ email: 'alice@example.org' });
    const workPluginRoot = await installPlugin(work.dataDir);
    // Claude Code running on `personal`, with the hooks (and CLAUDE_PLUGIN_ROOT) of `work`'s plugin.
    const env = hookEnv({ dataDir: personal.dataDir, home: personal.home, pluginRoot: workPluginRoot, endpoint: rx.url, token });

    await replayTimeline(fixtureDir('advisor'), { dataDir: personal.dataDir, env, pluginRoot: workPluginRoot });
    await waitForQuiet(personal.dataDir);

    expect(rx.sums()).toEqual({});
    expect(await exists(join(personal.dataDir, 'ccflux'))).toBe(false);
    expect(await exists(join(work.dataDir, 'ccflux'))).toBe(false);
  });

  it('a plugin loaded from a folder outside any data dir (--plugin-dir) reports normally', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    const { dataDir, home } = await makeDataDir({ email: 'alice@example.org' });
    const pluginRoot = join(await makeTempDir('ccflux-dev-'), 'ccflux');
    await cp(PLUGIN_DIR, pluginRoot, { recursive: true });
    const env = hookEnv({ dataDir, home, pluginRoot, endpoint: rx.url, token });
    const dir = fixtureDir('advisor');

    await replayTimeline(dir, { dataDir, env, pluginRoot });
    await waitForQuiet(dataDir);

    expect(rx.sums()).toEqual(expectedModels(dir));
  });
});
