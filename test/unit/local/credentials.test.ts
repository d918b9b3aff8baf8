import { mkdtemp, rm, stat, writeFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCredentials, validateEndpoint, writeConfig } from '../../../src/client/local/credentials';
import { ERROR_CODES, isCcfluxError } from '../../../src/client/local/errors';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';

const TOKEN = 'ccf_rt_SECRETrefreshTOKEN0123456789';

let root: string;
let paths: StatePaths;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-cred-'));
  paths = statePaths(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeRawConfig(text: string): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.config, text, { mode: 0o600 });
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    if (typeof promise === 'function') promise();
    else await promise;
  } catch (err) {
    expect(isCcfluxError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return err as Error;
  }
  throw new Error(`expected ${code}`);
}

describe('loadCredentials', () => {
  it('prefers the plugin options', async () => {
    await writeRawConfig(JSON.stringify({ endpoint: 'https://file.example', token: 'file-token' }));
    const env = { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: ' https://plugin.example/report ', CLAUDE_PLUGIN_OPTION_API_TOKEN: `${TOKEN}\n` };
    expect(await loadCredentials({ env, paths })).toEqual({
      endpoint: 'https://plugin.example/report',
      token: TOKEN,
      source: 'plugin-options',
    });
  });

  it('falls back to config.json when the plugin options are unset, empty or half set', async () => {
    await writeRawConfig(JSON.stringify({ endpoint: 'https://file.example', token: 'file-token' }));
    const expected = { endpoint: 'https://file.example', token: 'file-token', source: 'config-file' };
    expect(await loadCredentials({ env: {}, paths })).toEqual(expected);
    expect(await loadCredentials({ env: { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: '', CLAUDE_PLUGIN_OPTION_API_TOKEN: '' }, paths })).toEqual(
      expected,
    );
    expect(await loadCredentials({ env: { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'https://plugin.example' }, paths })).toEqual(expected);
  });

  it('null when nothing is configured', async () => {
    expect(await loadCredentials({ env: {}, paths })).toBeNull();
  });

  it.each([
    ['not JSON', `{"endpoint": "https://x", "token": "${TOKEN}"`],
    ['an array', `["${TOKEN}"]`],
    ['missing token', JSON.stringify({ endpoint: 'https://x.example' })],
    ['token not a string', JSON.stringify({ endpoint: 'https://x.example', token: 42 })],
    ['empty token', JSON.stringify({ endpoint: 'https://x.example', token: '   ' })],
    ['token with a space', JSON.stringify({ endpoint: 'https://x.example', token: `${TOKEN} x` })],
    ['empty endpoint', JSON.stringify({ endpoint: '', token: TOKEN })],
    ['empty file', ''],
  ])('corrupt config (%s) → CONFIG_INVALID without its content', async (_name, text) => {
    await writeRawConfig(text);
    const err = await expectCode(loadCredentials({ env: {}, paths }), ERROR_CODES.CONFIG_INVALID);
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain('x.example');
  });

  it('unusable plugin option token → CONFIG_INVALID naming the plugin options', async () => {
    const err = await expectCode(
      loadCredentials({ env: { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'https://x.example', CLAUDE_PLUGIN_OPTION_API_TOKEN: 'a\u0001b' }, paths }),
      ERROR_CODES.CONFIG_INVALID,
    );
    expect(err.message).toContain('plugin options');
  });
});

describe('validateEndpoint', () => {
  it('accepts https base and report URLs', () => {
    expect(validateEndpoint('https://usage.example.org', {})).toBe('https://usage.example.org/');
    expect(validateEndpoint(' https://usage.example.org/ccflux/report ', {})).toBe('https://usage.example.org/ccflux/report');
  });

  it('refuses an endpoint under /admin (the dashboard URL pasted by mistake), naming the fix (issue 16)', async () => {
    for (const endpoint of ['https://usage.example.org/admin', 'https://usage.example.org/admin/', 'https://usage.example.org/ADMIN/login', 'https://usage.example.org/ccflux/admin/']) {
      await expectCode(() => validateEndpoint(endpoint, {}), ERROR_CODES.CONFIG_INVALID);
    }
    try {
      validateEndpoint('https://usage.example.org/admin/', {});
    } catch (err) {
      expect((err as Error).message).toContain('admin dashboard');
      expect((err as Error).message).toContain('https://usage.example.org/report');
    }
    expect(validateEndpoint('https://usage.example.org/administration-tools/report', {})).toBe('https://usage.example.org/administration-tools/report');
  });

  it('refuses http unless CCFLUX_ALLOW_HTTP=1', async () => {
    await expectCode(() => validateEndpoint('http://127.0.0.1:8080', {}), ERROR_CODES.INSECURE_ENDPOINT);
    await expectCode(() => validateEndpoint('http://127.0.0.1:8080', { CCFLUX_ALLOW_HTTP: 'true' }), ERROR_CODES.INSECURE_ENDPOINT);
    expect(validateEndpoint('http://127.0.0.1:8080', { CCFLUX_ALLOW_HTTP: '1' })).toBe('http://127.0.0.1:8080/');
  });

  it.each([
    ['user and password', 'https://alice:s3cretpass@usage.example.org'],
    ['user only', 'https://alice@usage.example.org'],
    ['query', 'https://usage.example.org/report?token=abc'],
    ['empty query', 'https://usage.example.org/report?'],
    ['fragment', 'https://usage.example.org/#frag'],
    ['other scheme', 'ftp://usage.example.org'],
    ['no scheme', 'usage.example.org'],
    ['garbage', 'https://'],
    ['empty', '  '],
  ])('refuses %s without echoing the URL', async (_name, url) => {
    const err = await expectCode(() => validateEndpoint(url, { CCFLUX_ALLOW_HTTP: '1' }), ERROR_CODES.CONFIG_INVALID);
    expect(err.message).not.toContain('s3cret');
    expect(err.message).not.toContain('usage.example.org');
  });
});

describe('writeConfig', () => {
  it('writes config.json 0600 in a 0700 dir, readable by loadCredentials', async () => {
    await writeConfig(paths, { endpoint: 'https://usage.example.org', token: TOKEN });
    expect((await stat(paths.config)).mode & 0o777).toBe(0o600);
    expect((await stat(paths.dir)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(paths.config, 'utf8'))).toEqual({ endpoint: 'https://usage.example.org', token: TOKEN });
    expect(await loadCredentials({ env: {}, paths })).toEqual({ endpoint: 'https://usage.example.org', token: TOKEN, source: 'config-file' });
  });

  it('replaces an existing config atomically and keeps 0600', async () => {
    await writeRawConfig('{"old": true}');
    await writeConfig(paths, { endpoint: 'https://b.example', token: 'tok-b' });
    expect((await stat(paths.config)).mode & 0o777).toBe(0o600);
    expect((await loadCredentials({ env: {}, paths }))?.token).toBe('tok-b');
  });

  it('refuses an unusable token', async () => {
    await expectCode(writeConfig(paths, { endpoint: 'https://b.example', token: 'has space' }), ERROR_CODES.CONFIG_INVALID);
  });
});
