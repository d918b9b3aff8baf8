/**
 * Several Claude Code profiles (`~/.claude`, `~/.claude-work`) as a user has them: the built CLI
 * against the real receiver. `login` / `install` remember the folder they set up; `status`,
 * `doctor` and `flush` without `--config-dir` act on it, or on each remembered one with a section
 * each; off a terminal, `login` with several folders and none named refuses with the command to run.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLUGIN_DIR, cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, ptyCli, queueReports, registerPluginInstall, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('profiles@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

/** A home with `~/.claude` and `~/.claude-work`, both empty. */
async function twoProfiles(): Promise<{ home: string; personal: string; work: string; env: NodeJS.ProcessEnv }> {
  const { home, dataDir } = await makeHome();
  const work = join(home, '.claude-work');
  await mkdir(work);
  return { home, personal: dataDir, work, env: userEnv({ home }) };
}

function storedTurns(sessionId: string): number {
  return rx.query<{ n: number }>('SELECT COUNT(DISTINCT turn_index) AS n FROM usage_events WHERE session_id = ?', sessionId)[0]?.n ?? 0;
}

describe('profiles', () => {
  it('off a terminal, login with two folders and none named refuses and names the exact command; nothing is written', async () => {
    const { home, env } = await twoProfiles();
    const result = await login(env, rx.url, token);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('several Claude Code data folders exist (~/.claude, ~/.claude-work)');
    expect(result.stderr).toContain(`\`ccflux login --config-dir ~/.claude-work --endpoint ${rx.url} --token-stdin < token.txt\``);
    await expect(stat(join(home, '.claude', 'ccflux'))).rejects.toThrow();
    await expect(stat(join(home, '.config', 'ccflux'))).rejects.toThrow();
  });

  it('after login into ~/.claude-work, status, doctor and flush act on it without --config-dir', async () => {
    const { home, work, env } = await twoProfiles();
    expect((await login(env, rx.url, token, ['--config-dir', '~/.claude-work'])).code).toBe(0);
    const remembered = join(home, '.config', 'ccflux', 'data-dirs.json');
    expect(JSON.parse(await readFile(remembered, 'utf8'))).toEqual({ version: 1, dataDirs: [work] });
    expect((await stat(remembered)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, '.config', 'ccflux'))).mode & 0o777).toBe(0o700);

    const status = await cliJson<{ dataDir: string; dataDirSource: string; credentials: { source: string } }>(['status'], env);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ dataDir: work, dataDirSource: 'remembered', credentials: { source: 'config-file' } });
    expect((await cli(['status'], env)).stdout).toContain('data folder ~/.claude-work (set up with ccflux login/install)');

    await registerPluginInstall(work, PLUGIN_DIR);
    const doctor = await cli(['doctor'], env);
    expect(doctor.stdout).toContain('ccflux doctor — data folder ~/.claude-work');
    expect(doctor.code, doctor.stdout).toBe(0);

    const session = 'sess-profile-one';
    await queueReports(join(work, 'ccflux'), [0, 1].map((i) => makeReport(i, `2026-05-11T03:0${i}:00Z`, session)));
    const flush = await cliJson<{ delivered: number; stillQueued: number }>(['flush'], env);
    expect(flush.code).toBe(0);
    expect(flush.json).toMatchObject({ delivered: 2, stillQueued: 0 });
    expect(storedTurns(session)).toBe(2);

    // CLAUDE_CONFIG_DIR still wins: it names the folder Claude Code itself uses.
    const named = await cliJson<{ dataDir: string; dataDirSource: string }>(['status'], { ...env, CLAUDE_CONFIG_DIR: join(home, '.claude') });
    expect(named.json).toMatchObject({ dataDir: join(home, '.claude'), dataDirSource: 'env' });
  });

  it('with both folders set up, status, doctor and flush cover each with a section, and flush drains both', async () => {
    const { home, personal, work, env } = await twoProfiles();
    expect((await login(env, rx.url, token, ['--config-dir', personal])).code).toBe(0);
    expect((await login(env, rx.url, token, ['--config-dir', work])).code).toBe(0);
    expect(JSON.parse(await readFile(join(home, '.config', 'ccflux', 'data-dirs.json'), 'utf8')).dataDirs).toEqual([personal, work]);

    const status = await cli(['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('data folder ~/.claude (set up with ccflux login/install)');
    expect(status.stdout).toContain('data folder ~/.claude-work (set up with ccflux login/install)');
    const statusJson = await cliJson<{ dataDirs: Array<{ dataDir: string }> }>(['status'], env);
    expect(statusJson.json.dataDirs.map((d) => d.dataDir)).toEqual([personal, work]);

    // Only ~/.claude-work has the plugin: doctor fails that check for ~/.claude alone.
    await registerPluginInstall(work, PLUGIN_DIR);
    const doctor = await cli(['doctor'], env);
    expect(doctor.code, doctor.stdout).toBe(6);
    expect(doctor.stdout).toContain('ccflux doctor — data folder ~/.claude\n');
    expect(doctor.stdout).toContain('✗ plugin installed in this data folder  the ccflux plugin is not installed in ' + personal);
    expect(doctor.stdout).not.toContain('not installed in ' + work);
    expect(doctor.stdout).toContain('ccflux doctor — data folder ~/.claude-work\n');

    await queueReports(join(personal, 'ccflux'), [0, 1, 2].map((i) => makeReport(i, `2026-05-11T04:0${i}:00Z`, 'sess-profile-personal')));
    await queueReports(join(work, 'ccflux'), [0, 1].map((i) => makeReport(i, `2026-05-11T04:0${i}:00Z`, 'sess-profile-work')));
    const flush = await cli(['flush'], env);
    expect(flush.code, flush.stdout + flush.stderr).toBe(0);
    expect(flush.stdout).toContain('~/.claude:\nDelivered 3, still queued 0, rejected 0.');
    expect(flush.stdout).toContain('~/.claude-work:\nDelivered 2, still queued 0, rejected 0.');
    expect(storedTurns('sess-profile-personal')).toBe(3);
    expect(storedTurns('sess-profile-work')).toBe(2);

    const again = await cliJson<{ ok: boolean; delivered: number; dataDirs: Array<{ dataDir: string; delivered: number }> }>(['flush'], env);
    expect(again.json).toMatchObject({ ok: true, delivered: 0, dataDirs: [{ dataDir: personal, delivered: 0 }, { dataDir: work, delivered: 0 }] });

    // logout will not guess which one.
    const logout = await cli(['logout', '--yes'], env);
    expect(logout.code).toBe(2);
    expect(logout.stderr).toContain('`ccflux logout --config-dir ~/.claude-work`');
  });

  it('on a terminal, a second login offers the folder set up before as the default (Enter keeps it)', async () => {
    const { home, env } = await twoProfiles();
    expect((await login(env, rx.url, token, ['--config-dir', '~/.claude-work'])).code).toBe(0);
    const again = await ptyCli(['login', '--endpoint', rx.url], env, [
      ['Choose a number', '\r'],
      ['(input hidden): ', `${token}\r`],
    ]);
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain('2) ~/.claude-work  (has ccflux settings)');
    expect(again.output).toContain('Choose a number [2]');
    expect(again.output).toContain('replaced the credentials in ~/.claude-work/ccflux/config.json');
    expect(await readdir(join(home, '.claude'))).toEqual([]);
  });

  it('with nothing remembered (marketplace install, options in Claude Code), status looks where the hooks left ccflux state', async () => {
    const { personal, work, env } = await twoProfiles();
    await queueReports(join(work, 'ccflux'), [makeReport(0, '2026-05-11T06:00:00Z', 'sess-profile-found')]);
    const one = await cliJson<{ dataDir: string; dataDirSource: string; queue: { length: number } }>(['status'], env);
    expect(one.json).toMatchObject({ dataDir: work, dataDirSource: 'found', queue: { length: 1 } });
    expect((await cli(['status'], env)).stdout).toContain('data folder ~/.claude-work (has ccflux state)');

    await queueReports(join(personal, 'ccflux'), [makeReport(0, '2026-05-11T06:00:00Z', 'sess-profile-found-2')]);
    const both = await cliJson<{ dataDirs: Array<{ dataDir: string; dataDirSource: string }> }>(['status'], env);
    expect(both.json.dataDirs.map((d) => [d.dataDir, d.dataDirSource])).toEqual([
      [personal, 'found'],
      [work, 'found'],
    ]);
  });

  it('one folder set up and one not: flush answers for each and exits with the failing one', async () => {
    const { home, work, env } = await twoProfiles();
    expect((await login(env, rx.url, token, ['--config-dir', work])).code).toBe(0);
    // A second remembered folder that was never configured (e.g. install, options not set yet).
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(home, '.config', 'ccflux', 'data-dirs.json'), JSON.stringify({ version: 1, dataDirs: [work, join(home, '.claude')] }));
    await queueReports(join(work, 'ccflux'), [makeReport(0, '2026-05-11T05:00:00Z', 'sess-profile-mixed')]);
    const flush = await cli(['flush'], env);
    expect(flush.code).toBe(3);
    expect(flush.stdout).toContain('~/.claude-work:\nDelivered 1, still queued 0, rejected 0.');
    expect(flush.stdout).toMatch(/~\/\.claude:\nccflux: no receiver configured for .*\.claude\n {2}fix: /);
    expect(storedTurns('sess-profile-mixed')).toBe(1);
  });
});
