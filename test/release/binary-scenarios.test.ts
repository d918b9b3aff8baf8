/**
 * The compiled binary (Node SEA, `scripts/build-binary.mjs`) runs the same fixture scenarios as
 * the bundled script, through the same hook wrapper, against the real receiver: exact totals.
 *
 * The installed plugin copy gets the binary in `bin/` and loses `dist/ccflux.cjs`, so the only
 * way a report can reach the receiver is through the binary (as on a machine without Node).
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, SCENARIOS, cleanupTempDirs, fixtureDir, hookEnv, makeDataDir, makeTempDir, readJsonLines, sessionSums } from '../helpers/env';
import { startReceiver } from '../helpers/receiver';
import { expectedModels, installPlugin, replayTimeline, waitForQuiet } from '../helpers/timeline';

const BINARY_NAME = `ccflux-${process.platform}-${process.arch}${process.platform === 'win32' ? '.exe' : ''}`;
const canBuild = process.platform === 'linux' || process.platform === 'darwin';

let binaryPath = '';

beforeAll(async () => {
  if (!canBuild) return;
  const outDir = await makeTempDir('ccflux-sea-test-');
  // --no-strip: the same binary minus the strip step, a few seconds less on this 2-core machine.
  const built = spawnSync(process.execPath, ['scripts/build-binary.mjs', '--out-dir', outDir, '--no-sums', '--no-strip', '--quiet'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  expect(built.status, built.stderr).toBe(0);
  binaryPath = join(outDir, BINARY_NAME);
}, 180_000);

afterAll(async () => {
  await cleanupTempDirs();
});

describe.skipIf(!canBuild)('the compiled binary', () => {
  it('prints the version and needs no node_modules', () => {
    const run = spawnSync(binaryPath, ['--version'], { encoding: 'utf8', cwd: '/' });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('answers --version and -V before loading the bundle, exactly as the bundle does', () => {
    const bundle = spawnSync(process.execPath, [join(REPO_ROOT, 'plugin', 'dist', 'ccflux.cjs'), '--version'], { encoding: 'utf8' });
    expect(bundle.status).toBe(0);
    for (const flag of ['--version', '-V']) {
      const run = spawnSync(binaryPath, [flag], { encoding: 'utf8', cwd: '/' });
      expect([run.status, run.stdout, run.stderr]).toEqual([0, bundle.stdout, '']);
    }
    // Anything else goes through the CLI, as in the bundle.
    for (const args of [['--help'], ['--version', '--help'], ['status', '--version']]) {
      const viaBundle = spawnSync(process.execPath, [join(REPO_ROOT, 'plugin', 'dist', 'ccflux.cjs'), ...args], { encoding: 'utf8', cwd: '/' });
      const run = spawnSync(binaryPath, args, { encoding: 'utf8', cwd: '/' });
      expect([run.status, run.stdout, run.stderr]).toEqual([viaBundle.status, viaBundle.stdout, viaBundle.stderr]);
    }
  });

  it.each(SCENARIOS)('scenario %s through the wrapper reaches the receiver exactly', async (scenario) => {
    const dir = fixtureDir(scenario);
    const receiver = await startReceiver();
    try {
      const { dataDir, home } = await makeDataDir();
      const pluginRoot = await installPlugin(dataDir);
      // A checkout has no plugin/bin/ (everything in it is a build output).
      await mkdir(join(pluginRoot, 'bin'), { recursive: true });
      await copyFile(binaryPath, join(pluginRoot, 'bin', BINARY_NAME));
      await rm(join(pluginRoot, 'dist', 'ccflux.cjs'));
      const token = await receiver.addUser(`${scenario}@example.org`);
      const env = hookEnv({ dataDir, home, pluginRoot, endpoint: receiver.url, token });

      const { meta, hooks } = await replayTimeline(dir, { dataDir, env, pluginRoot });
      await waitForQuiet(dataDir);

      expect(hooks.every((h) => h.code === 0 && h.stdout === '' && h.stderr === '')).toBe(true);
      expect(sessionSums(receiver, meta.sessions)).toEqual(expectedModels(dir));
      expect(await readJsonLines(join(dataDir, 'ccflux', 'pending_reports.jsonl'))).toEqual([]);
    } finally {
      await receiver.stop();
    }
  });
});
