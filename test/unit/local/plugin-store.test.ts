import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCredentials } from '../../../src/client/local/credentials';
import { statePaths } from '../../../src/client/local/paths';
import { judgeStoredOptions, pickPluginId, readStoredOptions } from '../../../src/client/local/plugin-store';

const FILE = '/home/u/.claude/.credentials.json';
// What Claude Code 2.1.328 writes (observed): the client's own login sits beside the plugin's entry.
const CLAUDE_CREDENTIALS = {
  claudeAiOauth: { accessToken: 'not-ours', refreshToken: 'not-ours-either' },
  pluginSecrets: {
    'other@mkt': { api_token: 'someone-elses' },
    'ccflux@ccflux': { api_endpoint: 'https://rx.example.org', api_token: 'ccf_rt_PLUGIN' },
  },
};

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('pickPluginId', () => {
  it('prefers ccflux@ccflux, else the only ccflux@… id, never another plugin', () => {
    expect(pickPluginId(['x@y', 'ccflux@acme', 'ccflux@ccflux'])).toBe('ccflux@ccflux');
    expect(pickPluginId(['x@y', 'ccflux@acme'])).toBe('ccflux@acme');
    expect(pickPluginId(['ccflux@a', 'ccflux@b'])).toBeNull();
    expect(pickPluginId(['ccfluxer@a', 'x@ccflux'])).toBeNull();
  });
});

describe('judgeStoredOptions', () => {
  it('reads only this plugin\'s entry', () => {
    expect(judgeStoredOptions(CLAUDE_CREDENTIALS, {}, 'linux', FILE)).toEqual({
      kind: 'found',
      pluginId: 'ccflux@ccflux',
      endpoint: 'https://rx.example.org',
      token: 'ccf_rt_PLUGIN',
      file: FILE,
    });
  });

  it('takes a non-sensitive option from settings.json pluginConfigs', () => {
    const settings = { pluginConfigs: { 'ccflux@acme': { options: { api_endpoint: 'https://a.example' } } } };
    const secrets = { pluginSecrets: { 'ccflux@acme': { api_token: 't' } } };
    expect(judgeStoredOptions(secrets, settings, 'linux', FILE)).toMatchObject({ kind: 'found', pluginId: 'ccflux@acme', endpoint: 'https://a.example' });
  });

  it('macOS: an enabled plugin without a file entry has its options in the keychain', () => {
    const settings = { enabledPlugins: { 'ccflux@ccflux': true } };
    expect(judgeStoredOptions(null, settings, 'darwin', FILE)).toEqual({ kind: 'keychain', pluginId: 'ccflux@ccflux' });
    expect(judgeStoredOptions(null, settings, 'linux', FILE)).toEqual({ kind: 'unset', pluginId: 'ccflux@ccflux' });
  });

  it('half set is unset; nothing or garbage is none', () => {
    expect(judgeStoredOptions({ pluginSecrets: { 'ccflux@ccflux': { api_token: 't' } } }, null, 'linux', FILE).kind).toBe('unset');
    expect(judgeStoredOptions(null, null, 'linux', FILE).kind).toBe('none');
    expect(judgeStoredOptions('[1]', 7, 'linux', FILE).kind).toBe('none');
    expect(judgeStoredOptions({ pluginSecrets: [] }, { enabledPlugins: { 'ccflux@ccflux': false } }, 'linux', FILE).kind).toBe('none');
  });
});

describe('loadCredentials with the plugin store', () => {
  it('uses Claude Code\'s stored options before config.json, after the environment; not when told not to', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-store-'));
    await writeFile(join(dir, '.credentials.json'), JSON.stringify(CLAUDE_CREDENTIALS), { mode: 0o600 });
    const paths = statePaths(dir);
    expect(await readStoredOptions(dir)).toMatchObject({ kind: 'found' });
    expect(await loadCredentials({ env: {}, paths })).toEqual({ endpoint: 'https://rx.example.org', token: 'ccf_rt_PLUGIN', source: 'plugin-store' });
    const env = { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'https://env.example', CLAUDE_PLUGIN_OPTION_API_TOKEN: 'envtok' };
    expect((await loadCredentials({ env, paths }))?.source).toBe('plugin-options');
    expect(await loadCredentials({ env: {}, paths, pluginStore: false })).toBeNull();
  });

  it('an unreadable or broken credentials file is not an error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-store-'));
    await writeFile(join(dir, '.credentials.json'), '{not json');
    expect(await loadCredentials({ env: {}, paths: statePaths(dir) })).toBeNull();
  });
});
