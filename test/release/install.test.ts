/**
 * `ccflux install` / `ccflux uninstall` into temporary Claude Code data dirs: the plugin lands
 * where Claude Code looks (cache + local directory marketplace), is registered and enabled, other
 * settings survive, and uninstall reverses it while keeping the device state unless asked.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import type { CliContext } from '../../src/cli/types';
import { ERROR_CODES } from '../../src/client/local/errors';
import {
  findRunningPluginRoot,
  installLayout,
  installPlugin,
  LOCAL_MARKETPLACE,
  LOCAL_PLUGIN_ID,
  pluginRootCandidates,
  readPluginFolder,
  uninstallPlugin,
} from '../../src/client/commands/install';
import { copyPlugin, repoRoot } from './helpers';

const NOW = new Date('2026-05-11T03:00:00.000Z');
const LATER = new Date('2026-06-01T12:00:00.000Z');

let work: string;
let source: string;
let dataDir: string;

// biome-ignore lint/suspicious/noExplicitAny: test assertions walk into arbitrary registry JSON
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
const writeJson = (path: string, value: unknown) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
};

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ccflux-install-'));
  source = copyPlugin(join(work, 'src-plugin'));
  writeFileSync(join(source, 'dist', 'ccflux.cjs'), '#!/usr/bin/env node\n// stand-in bundle\n');
  writeFileSync(join(source, 'dist', 'ccflux.body.cjs'), '// stand-in code\n');
  writeFileSync(join(source, 'bin', 'SHA256SUMS'), `${'a'.repeat(64)}  ccflux-linux-x64\n`);
  dataDir = join(work, 'home', '.claude');
  mkdirSync(dataDir, { recursive: true });
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

async function install(platform = 'linux', now = NOW) {
  return installPlugin({ dataDir, source: await readPluginFolder(source), platform, arch: 'x64', now: () => now });
}

describe('installPlugin', () => {
  it('copies the plugin where Claude Code looks, registers and enables it, keeps everything else', async () => {
    writeJson(join(dataDir, 'settings.json'), { model: 'opus', enabledPlugins: { 'other@mkt': true } });
    writeJson(join(dataDir, 'plugins', 'installed_plugins.json'), {
      version: 2,
      plugins: { 'other@mkt': [{ scope: 'user', installPath: '/x', version: '1.0.0' }] },
    });
    writeJson(join(dataDir, 'plugins', 'known_marketplaces.json'), { mkt: { source: { source: 'github', repo: 'a/b' }, installLocation: '/y' } });

    const result = await install();
    const layout = installLayout(dataDir);
    expect(result).toMatchObject({ pluginId: LOCAL_PLUGIN_ID, version: '0.1.0', runner: 'node', hooks: 'sh', reinstalled: false });
    expect(result.installPath).toBe(join(dataDir, 'plugins', 'cache', LOCAL_MARKETPLACE, 'ccflux', '0.1.0'));

    for (const dir of [result.installPath, layout.marketplacePluginDir]) {
      expect(readdirSync(dir).sort()).toEqual(['.claude-plugin', 'bin', 'dist', 'hooks', 'scripts']);
      expect(readFileSync(join(dir, 'dist', 'ccflux.cjs'), 'utf8')).toContain('stand-in');
      expect(statSync(join(dir, 'scripts', 'ccflux-hook.sh')).mode & 0o111).not.toBe(0);
      expect(readFileSync(join(dir, 'hooks', 'hooks.json'), 'utf8')).toBe(readFileSync(join(source, 'hooks', 'hooks.json'), 'utf8'));
    }
    expect(readJson(layout.marketplaceManifest)).toMatchObject({
      name: LOCAL_MARKETPLACE,
      owner: { name: expect.any(String) },
      plugins: [{ name: 'ccflux', source: './plugins/ccflux', version: '0.1.0' }],
    });
    expect(readJson(layout.knownMarketplaces)).toEqual({
      mkt: { source: { source: 'github', repo: 'a/b' }, installLocation: '/y' },
      [LOCAL_MARKETPLACE]: { source: { source: 'directory', path: layout.marketplaceDir }, installLocation: layout.marketplaceDir, lastUpdated: NOW.toISOString() },
    });
    expect(readJson(layout.installedPlugins)).toEqual({
      version: 2,
      plugins: {
        'other@mkt': [{ scope: 'user', installPath: '/x', version: '1.0.0' }],
        [LOCAL_PLUGIN_ID]: [
          { scope: 'user', installPath: result.installPath, version: '0.1.0', installedAt: NOW.toISOString(), lastUpdated: NOW.toISOString(), isLocal: true },
        ],
      },
    });
    expect(readJson(layout.settings)).toEqual({ model: 'opus', enabledPlugins: { 'other@mkt': true, [LOCAL_PLUGIN_ID]: true } });
  });

  it('creates the registries in an empty data dir, and reinstalls in place keeping installedAt', async () => {
    await install();
    const again = await install('linux', LATER);
    expect(again.reinstalled).toBe(true);
    const entry = readJson(installLayout(dataDir).installedPlugins).plugins[LOCAL_PLUGIN_ID];
    expect(entry).toEqual([expect.objectContaining({ installedAt: NOW.toISOString(), lastUpdated: LATER.toISOString() })]);
    expect(readdirSync(join(dataDir, 'plugins', 'cache', LOCAL_MARKETPLACE, 'ccflux'))).toEqual(['0.1.0']);
    expect(readdirSync(join(dataDir, 'plugins', 'marketplaces', LOCAL_MARKETPLACE, 'plugins'))).toEqual(['ccflux']);
  });

  it('reports the platform binary as the runner and leaves temp files, locks and markers behind', async () => {
    writeFileSync(join(source, 'bin', 'ccflux-linux-x64'), '#!/bin/sh\n', { mode: 0o755 });
    mkdirSync(join(source, 'bin', '.fetch.lock'));
    writeFileSync(join(source, 'bin', '.fetch-failed'), '');
    writeFileSync(join(source, 'bin', '.ccflux-linux-arm64.download.42'), 'partial');
    writeFileSync(join(source, 'dist', '.gitkeep'), '');
    const result = await install();
    expect(result.runner).toBe('binary');
    expect(readdirSync(join(result.installPath, 'bin')).sort()).toEqual(['SHA256SUMS', 'ccflux-linux-x64']);
    expect(readdirSync(join(result.installPath, 'dist')).sort()).toEqual(['ccflux.body.cjs', 'ccflux.cjs']);
    expect(statSync(join(result.installPath, 'bin', 'ccflux-linux-x64')).mode & 0o777).toBe(0o755);
  });

  it('makes the PowerShell hooks the active hooks.json on Windows', async () => {
    const result = await install('win32');
    expect(result.hooks).toBe('powershell');
    const active = readFileSync(join(result.installPath, 'hooks', 'hooks.json'), 'utf8');
    expect(active).toBe(readFileSync(join(repoRoot, 'plugin', 'hooks', 'hooks-windows.json'), 'utf8'));
    expect(active).toContain('ccflux-hook.ps1');
  });

  it('refuses, changing nothing, when ccflux is installed from another marketplace', async () => {
    const installed = { version: 2, plugins: { 'ccflux@acme': [{ scope: 'user', installPath: '/z', version: '0.1.0' }] } };
    writeJson(join(dataDir, 'plugins', 'installed_plugins.json'), installed);
    await expect(install()).rejects.toMatchObject({ code: ERROR_CODES.USAGE });
    expect(readJson(join(dataDir, 'plugins', 'installed_plugins.json'))).toEqual(installed);
    expect(existsSync(join(dataDir, 'settings.json'))).toBe(false);
    expect(existsSync(join(dataDir, 'plugins', 'cache'))).toBe(false);
  });

  it('refuses, changing nothing, when a registry is not JSON or has an unknown format', async () => {
    writeFileSync(join(dataDir, 'settings.json'), '{ "model": ');
    await expect(install()).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID });
    expect(readFileSync(join(dataDir, 'settings.json'), 'utf8')).toBe('{ "model": ');
    rmSync(join(dataDir, 'settings.json'));
    writeJson(join(dataDir, 'plugins', 'installed_plugins.json'), { version: 1, plugins: {} });
    await expect(install()).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID });
    expect(existsSync(join(dataDir, 'plugins', 'marketplaces'))).toBe(false);
  });
});

describe('readPluginFolder and where the running CLI lives', () => {
  it('refuses a folder that is not built, or not ccflux', async () => {
    rmSync(join(source, 'dist', 'ccflux.body.cjs'));
    await expect(readPluginFolder(source)).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID, message: expect.stringContaining('dist/ccflux.body.cjs') });
    rmSync(join(source, 'dist', 'ccflux.cjs'));
    await expect(readPluginFolder(source)).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID });
    await expect(readPluginFolder(work)).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID });
  });

  it('finds the plugin folder from the bundle, the binary, or a checkout', async () => {
    expect(pluginRootCandidates({ file: '/usr/bin/node', args: ['/p/plugin/dist/ccflux.cjs'] })[0]).toBe('/p/plugin');
    expect(pluginRootCandidates({ file: '/p/plugin/bin/ccflux-linux-x64', args: [] })[0]).toBe('/p/plugin');
    expect(await findRunningPluginRoot({ file: process.execPath, args: [join(source, 'dist', 'ccflux.cjs')] })).toBe(source);
    expect(await findRunningPluginRoot({ file: process.execPath, args: [join(repoRoot, 'bin', 'ccflux.cjs')] })).toBe(join(repoRoot, 'plugin'));
    await expect(findRunningPluginRoot({ file: '/nowhere/bin/x', args: [] })).rejects.toMatchObject({ code: ERROR_CODES.CONFIG_INVALID });
  });
});

describe('uninstallPlugin', () => {
  it('reverses the install, keeps other settings, and keeps the device state unless asked', async () => {
    writeJson(join(dataDir, 'settings.json'), { model: 'opus', enabledPlugins: { 'other@mkt': true } });
    await install();
    mkdirSync(join(dataDir, 'ccflux'));
    writeFileSync(join(dataDir, 'ccflux', 'signing_key'), 'k');
    writeFileSync(join(dataDir, 'ccflux', 'pending_reports.jsonl'), '{"a":1}\n{"a":2}\n');

    const kept = await uninstallPlugin({ dataDir, removeState: false });
    expect(kept).toMatchObject({ installed: true, stateExists: true, stateRemoved: false, pendingReports: 2, otherInstalls: [] });
    const layout = installLayout(dataDir);
    expect(readJson(layout.settings)).toEqual({ model: 'opus', enabledPlugins: { 'other@mkt': true } });
    expect(readJson(layout.installedPlugins)).toEqual({ version: 2, plugins: {} });
    expect(readJson(layout.knownMarketplaces)).toEqual({});
    expect(existsSync(layout.cacheRoot)).toBe(false);
    expect(existsSync(layout.marketplaceDir)).toBe(false);
    expect(readFileSync(join(dataDir, 'ccflux', 'signing_key'), 'utf8')).toBe('k');

    const again = await uninstallPlugin({ dataDir, removeState: true });
    expect(again).toMatchObject({ installed: false, stateRemoved: true });
    expect(existsSync(join(dataDir, 'ccflux'))).toBe(false);
  });
});

describe('ccflux install / uninstall commands', () => {
  async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d) => {
      out += d;
    });
    stderr.on('data', (d) => {
      err += d;
    });
    const ctx: CliContext = {
      env,
      home: join(work, 'home'),
      cwd: work,
      now: () => NOW,
      stdin: new PassThrough(),
      stdout,
      stderr,
      selfCommand: { file: process.execPath, args: [join(source, 'dist', 'ccflux.cjs')] },
    };
    const code = await main(args, ctx);
    return { code, out, err };
  }

  it('installs from the folder the CLI runs from into --config-dir, and uninstalls', async () => {
    const target = join(work, 'custom-data');
    const installed = await cli(['install', '--config-dir', target, '--json']);
    expect(installed.code).toBe(0);
    expect(JSON.parse(installed.out)).toMatchObject({ ok: true, pluginId: LOCAL_PLUGIN_ID, dataDir: target, source });
    expect(readJson(join(target, 'settings.json')).enabledPlugins).toEqual({ [LOCAL_PLUGIN_ID]: true });

    const removed = await cli(['uninstall', '--config-dir', target]);
    expect(removed.code).toBe(0);
    expect(removed.out).toContain(`Removed ${LOCAL_PLUGIN_ID}`);
    expect(readJson(join(target, 'settings.json')).enabledPlugins).toEqual({});
  });

  it('uses CLAUDE_CONFIG_DIR, and refuses to guess among several ~/.claude* dirs off a terminal', async () => {
    mkdirSync(join(work, 'home', '.claude-work'));
    const refused = await cli(['install', '--json']);
    expect(refused.code).toBe(2);
    const error = JSON.parse(refused.out).error;
    expect(error.code).toBe(ERROR_CODES.USAGE);
    expect(error.message).toContain('~/.claude, ~/.claude-work');
    expect(existsSync(join(dataDir, 'settings.json'))).toBe(false);

    const viaEnv = await cli(['install', '--json'], { CLAUDE_CONFIG_DIR: join(work, 'home', '.claude-work') });
    expect(viaEnv.code).toBe(0);
    // uninstall finds the one data dir where it is installed.
    const removed = await cli(['uninstall', '--json']);
    expect(JSON.parse(removed.out)).toMatchObject({ ok: true, installed: true, dataDir: join(work, 'home', '.claude-work') });
  });

  it('remembers the folder it installed into: status acts on it; uninstall --remove-state forgets it', async () => {
    const workDir = join(work, 'home', '.claude-work');
    mkdirSync(workDir);
    expect((await cli(['install', '--config-dir', '~/.claude-work', '--no-shim'])).code).toBe(0);
    const remembered = join(work, 'home', '.config', 'ccflux', 'data-dirs.json');
    expect(readJson(remembered)).toEqual({ version: 1, dataDirs: [workDir] });
    expect(statSync(remembered).mode & 0o777).toBe(0o600);

    const status = await cli(['status', '--json']);
    expect(JSON.parse(status.out)).toMatchObject({ dataDir: workDir, dataDirSource: 'remembered' });

    // Off a terminal, with two folders and none named, the refusal names the command for each.
    const refused = await cli(['install', '--no-shim']);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('`ccflux install --config-dir ~/.claude` or `ccflux install --config-dir ~/.claude-work`');

    expect((await cli(['uninstall', '--remove-state'])).code).toBe(0);
    expect(readJson(remembered)).toEqual({ version: 1, dataDirs: [] });
    expect(JSON.parse((await cli(['status', '--json'])).out)).toMatchObject({ dataDir: dataDir, dataDirSource: 'default' });
  });

  it('installs into the only ~/.claude* dir when none is named', async () => {
    const result = await cli(['install']);
    expect(result.code).toBe(0);
    expect(result.out).toContain('Installed ccflux 0.1.0 into ~/.claude as ccflux@ccflux-local');
    expect(readJson(join(dataDir, 'settings.json')).enabledPlugins).toEqual({ [LOCAL_PLUGIN_ID]: true });
  });

  const bundle = join(repoRoot, 'plugin', 'dist', 'ccflux.cjs');
  it.skipIf(!existsSync(bundle))('works from the built bundle (npm test builds it first)', async () => {
    const run = promisify(execFile);
    const target = join(work, 'bundle-data');
    const { stdout } = await run(process.execPath, [bundle, 'install', '--config-dir', target, '--from', source, '--json'], {
      env: { PATH: process.env.PATH, HOME: join(work, 'home') },
    });
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, pluginId: LOCAL_PLUGIN_ID, dataDir: target });
    const help = await run(process.execPath, [bundle, 'uninstall', '--help']);
    expect(help.stdout).toContain('--remove-state');
  });
});
