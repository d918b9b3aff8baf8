import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideTargetDataDirs } from '../../../src/client/local/data-dirs';
import { forgetDataDir, parseRemembered, readRemembered, rememberDataDir, rememberedFilePath } from '../../../src/client/local/remembered';

describe('rememberedFilePath', () => {
  it('is in the user config folder: XDG_CONFIG_HOME when absolute, else ~/.config; %APPDATA% on Windows', () => {
    expect(rememberedFilePath({}, '/home/u', 'linux')).toBe('/home/u/.config/ccflux/data-dirs.json');
    expect(rememberedFilePath({ XDG_CONFIG_HOME: '/xdg' }, '/home/u', 'linux')).toBe('/xdg/ccflux/data-dirs.json');
    expect(rememberedFilePath({ XDG_CONFIG_HOME: 'relative' }, '/home/u', 'darwin')).toBe('/home/u/.config/ccflux/data-dirs.json');
    expect(rememberedFilePath({ APPDATA: '/appdata' }, '/home/u', 'win32')).toBe(join('/appdata', 'ccflux', 'data-dirs.json'));
  });
});

describe('parseRemembered', () => {
  it('keeps absolute paths once each, in order; anything else reads as nothing remembered', () => {
    expect(parseRemembered(JSON.stringify({ version: 1, dataDirs: ['/a', 'rel', 3, '/b/', '/a'] }))).toEqual(['/a', '/b']);
    expect(parseRemembered(null)).toEqual([]);
    expect(parseRemembered('{not json')).toEqual([]);
    expect(parseRemembered('null')).toEqual([]);
    expect(parseRemembered('{"dataDirs":"/a"}')).toEqual([]);
  });
});

describe('decideTargetDataDirs', () => {
  const base = { env: {}, home: '/home/u', cwd: '/work' };
  it('--config-dir, then CLAUDE_CONFIG_DIR, then every remembered folder, then ~/.claude', () => {
    const remembered = ['/home/u/.claude-work', '/home/u/.claude'];
    expect(decideTargetDataDirs({ ...base, configDir: '~/.x', env: { CLAUDE_CONFIG_DIR: '/e' } }, remembered)).toEqual({ dataDirs: ['/home/u/.x'], source: 'flag' });
    expect(decideTargetDataDirs({ ...base, env: { CLAUDE_CONFIG_DIR: '/e' } }, remembered)).toEqual({ dataDirs: ['/e'], source: 'env' });
    expect(decideTargetDataDirs(base, remembered)).toEqual({ dataDirs: remembered, source: 'remembered' });
    expect(decideTargetDataDirs(base, remembered.slice(0, 1))).toEqual({ dataDirs: ['/home/u/.claude-work'], source: 'remembered' });
    expect(decideTargetDataDirs(base, [])).toEqual({ dataDirs: ['/home/u/.claude'], source: 'default' });
  });

  it('with nothing remembered: the ~/.claude* folders the hooks made ccflux state in (a marketplace install)', () => {
    const personal = { path: '/home/u/.claude', hasState: false };
    const work = { path: '/home/u/.claude-work', hasState: true };
    expect(decideTargetDataDirs(base, [], [personal, work])).toEqual({ dataDirs: ['/home/u/.claude-work'], source: 'found' });
    expect(decideTargetDataDirs(base, [], [{ ...personal, hasState: true }, work])).toEqual({
      dataDirs: ['/home/u/.claude', '/home/u/.claude-work'],
      source: 'found',
    });
    // The usual single profile reads as before.
    expect(decideTargetDataDirs(base, [], [{ ...personal, hasState: true }])).toEqual({ dataDirs: ['/home/u/.claude'], source: 'default' });
    expect(decideTargetDataDirs(base, [], [personal, { ...work, hasState: false }])).toEqual({ dataDirs: ['/home/u/.claude'], source: 'default' });
    // Remembered folders win over found ones.
    expect(decideTargetDataDirs(base, ['/home/u/.claude'], [personal, work])).toEqual({ dataDirs: ['/home/u/.claude'], source: 'remembered' });
  });
});

describe('remember / forget', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-remembered-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes 0600 in a 0700 folder, adds each folder once, forgets one, skips folders that are gone', async () => {
    const file = join(dir, 'config', 'ccflux', 'data-dirs.json');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await mkdir(a);
    await mkdir(b);
    await rememberDataDir(file, a);
    await rememberDataDir(file, b);
    await rememberDataDir(file, a);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, dataDirs: [a, b] });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'config', 'ccflux'))).mode & 0o777).toBe(0o700);
    expect(await readRemembered(file)).toEqual([a, b]);

    await rm(b, { recursive: true });
    expect(await readRemembered(file)).toEqual([a]);

    await forgetDataDir(file, a);
    expect(JSON.parse(await readFile(file, 'utf8')).dataDirs).toEqual([b]);
  });

  it('a damaged file is replaced on the next login instead of failing it', async () => {
    const file = join(dir, 'data-dirs.json');
    await writeFile(file, '{"dataDirs": [');
    expect(await readRemembered(file)).toEqual([]);
    await rememberDataDir(file, dir);
    expect(await readRemembered(file)).toEqual([dir]);
  });
});
