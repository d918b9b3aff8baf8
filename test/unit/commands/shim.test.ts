import { lstat, mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installShim, onPath, shimPath } from '../../../src/client/commands/shim';

let home: string | undefined;
afterEach(async () => {
  if (home) await rm(home, { recursive: true, force: true });
  home = undefined;
});

describe('installShim', () => {
  it('links ~/.local/bin/ccflux to the launcher, says whether it is on PATH, and updates its own link', async () => {
    home = await mkdtemp(join(tmpdir(), 'ccflux-shim-'));
    const launcher = join(home, '.claude/plugins/cache/ccflux-local/ccflux/0.1.0/bin/ccflux');
    const first = await installShim({ home, launcher, env: { PATH: '/usr/bin' }, platform: 'linux' });
    expect(first).toMatchObject({ kind: 'created', path: shimPath(home), onPath: false });
    expect(await readlink(shimPath(home))).toBe(launcher);
    const again = await installShim({ home, launcher, env: { PATH: `/usr/bin:${home}/.local/bin` }, platform: 'linux' });
    expect(again).toMatchObject({ kind: 'unchanged', onPath: true });
    const moved = await installShim({ home, launcher: join(home, 'other/bin/ccflux'), env: {}, platform: 'linux' });
    expect(moved.kind).toBe('updated');
  });

  it('never replaces a ccflux that is not its own; no shim on Windows', async () => {
    home = await mkdtemp(join(tmpdir(), 'ccflux-shim-'));
    await mkdir(join(home, '.local/bin'), { recursive: true });
    await writeFile(shimPath(home), '#!/bin/sh\n# npm\n');
    expect((await installShim({ home, launcher: '/x/bin/ccflux', env: {}, platform: 'linux' })).kind).toBe('kept-other');
    expect((await lstat(shimPath(home))).isSymbolicLink()).toBe(false);
    expect((await installShim({ home, launcher: '/x/bin/ccflux', env: {}, platform: 'win32' })).kind).toBe('unsupported');
  });

  it('onPath compares resolved entries', () => {
    expect(onPath('/h/.local/bin', '/usr/bin:/h/.local/bin/')).toBe(true);
    expect(onPath('/h/.local/bin', '')).toBe(false);
  });
});
