/**
 * `npm i -g ccflux` gives a working `ccflux`: the `npm pack` tarball installed into a temp prefix
 * (no registry needed: the CLI is one bundle with no runtime dependencies) runs `--version` and
 * `status`, and carries the plugin folder for `ccflux install`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version';
import { cleanupTempDirs, makeTempDir, REPO_ROOT, run } from '../helpers/env';

afterAll(async () => {
  await cleanupTempDirs();
});

describe('npm package', () => {
  it('npm pack → npm install -g --prefix → ccflux --version and ccflux status work', async () => {
    const work = await makeTempDir('ccflux-npm-');
    const npmEnv = { ...process.env, npm_config_cache: join(work, 'cache'), npm_config_update_notifier: 'false' };
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO_ROOT, env: npmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const packed = (JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[])[0]!;
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['bin/ccflux.cjs', 'plugin/dist/ccflux.cjs', 'plugin/dist/ccflux.body.cjs', 'plugin/bin/ccflux', 'plugin/.claude-plugin/plugin.json', 'plugin/hooks/hooks.json']));
    // Nothing private or built for one machine ships.
    expect(files.filter((f) => /(^|\/)(test|src|receiver)\//.test(f) || /ccflux-(linux|darwin|win32)/.test(f))).toEqual([]);

    const prefix = join(work, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(work, packed.filename)], {
      env: npmEnv,
      stdio: 'pipe',
    });
    const bin = join(prefix, 'bin', 'ccflux');
    expect(existsSync(bin)).toBe(true);
    const home = await makeTempDir('ccflux-npm-home-');
    const env = { PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, HOME: home };
    const version = await run(bin, ['--version'], { env });
    expect(version.stdout.trim()).toBe(VERSION);
    const status = await run(bin, ['status'], { env });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('credentials');
    expect(readdirSync(join(prefix, 'lib', 'node_modules', 'ccflux', 'plugin')).sort()).toEqual(['.claude-plugin', 'bin', 'dist', 'hooks', 'scripts']);
  });
});
