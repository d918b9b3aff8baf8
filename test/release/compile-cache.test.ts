/**
 * The bundle's compile-cache loader (scripts/build.mjs, LOADER): the cache beside the bundle ends
 * up made by a turn's worker (`report-turn --foreground`, run every turn), whatever ran first. A
 * session's first worker is `init`, which compiles fewer functions: a cache it made, kept for good,
 * left every later turn compiling the rest lazily.
 */
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_BUNDLE, cleanupTempDirs, hookEnv, makeDataDir, makeTempDir, run } from '../helpers/env';

afterAll(async () => {
  await cleanupTempDirs();
});

describe('the compile cache beside the bundle', () => {
  it("is remade by the first turn's worker after another command made it, then kept", async () => {
    const dir = await makeTempDir('ccflux-cache-');
    const bundle = join(dir, 'ccflux.cjs');
    copyFileSync(CLI_BUNDLE, bundle);
    copyFileSync(join(dirname(CLI_BUNDLE), 'ccflux.body.cjs'), join(dir, 'ccflux.body.cjs'));
    const cache = `${bundle}.${process.version}-${process.arch}.cache`;
    const { dataDir, home } = await makeDataDir({ email: 'a@example.org' });
    const env = hookEnv({ dataDir, home });
    // The mark after the key on the cache's first line: ' w' made by a turn's worker, ' -' by anything else.
    const madeBy = () => readFileSync(cache).subarray(0, readFileSync(cache).indexOf(10)).toString('latin1').slice(-2);
    const worker = async (event: string) => {
      const result = await run(process.execPath, [bundle, event, '--foreground', '--input', '{}'], { env });
      expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    };

    await worker('init');
    expect(madeBy()).toBe(' -');
    await worker('report-turn');
    expect(madeBy()).toBe(' w');
    const made = statSync(cache).mtimeMs;
    await worker('init');
    await worker('session-end');
    await worker('report-turn');
    expect(madeBy()).toBe(' w');
    expect(statSync(cache).mtimeMs).toBe(made);
  });
});

describe('the bundle\'s layout', () => {
  it('is a loader of a few KB that Node reads, and the code beside it, pure ASCII, which the loader compiles', async () => {
    // Node reads and compiles the whole file it runs: with the code inside the loader's file
    // (in a comment) every turn read 770 KB twice and scanned it once more (~5 ms a turn).
    expect(statSync(CLI_BUNDLE).size).toBeLessThan(8 * 1024);
    const body = readFileSync(join(dirname(CLI_BUNDLE), 'ccflux.body.cjs'));
    expect(body.length).toBeGreaterThan(100_000);
    expect(body.some((byte) => byte > 0x7f)).toBe(false);

    const dir = await makeTempDir('ccflux-layout-');
    const bundle = join(dir, 'ccflux.cjs');
    copyFileSync(CLI_BUNDLE, bundle);
    const missing = await run(process.execPath, [bundle, '--version'], { env: { CCFLUX_NO_COMPILE_CACHE: '1' } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`ccflux: cannot read ${join(dir, 'ccflux.body.cjs')} (ENOENT): the plugin is incomplete; reinstall it\n`);
    copyFileSync(join(dirname(CLI_BUNDLE), 'ccflux.body.cjs'), join(dir, 'ccflux.body.cjs'));
    const version = await run(process.execPath, [bundle, '--version'], {});
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
