/**
 * `ccflux login` as a user runs it: the built CLI, spawned, against the real receiver on port 0;
 * a pseudo terminal where the hidden prompt matters.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version';
import { cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, ptyCli, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('login-user@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

interface KeyRow {
  public_key: string;
  user_email: string;
  revoked_at: string | null;
}

async function registeredKeys(): Promise<KeyRow[]> {
  return JSON.parse(await rx.cli(['keys', 'list', '--json'])) as KeyRow[];
}

describe('ccflux login', () => {
  it('saves a proven token 0600 in a 0700 folder, registers the key, and says so in one line', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    const result = await login(env, rx.url, token);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toMatch(
      /^Logged in to http:\/\/127\.0\.0\.1:\d+\/: token verified, device key [0-9a-f]{16} registered, saved the credentials to ~\/\.claude\/ccflux\/config\.json\.\n$/,
    );
    expect(result.stdout + result.stderr).not.toContain(token);

    const stateDir = join(dataDir, 'ccflux');
    expect(await mode(stateDir)).toBe(0o700);
    for (const file of ['config.json', 'signing_key', 'key_registered', 'token_cache.json']) {
      expect(await mode(join(stateDir, file)), file).toBe(0o600);
    }
    expect(JSON.parse(await readFile(join(stateDir, 'config.json'), 'utf8'))).toEqual({ endpoint: `${rx.url}/`, token });
    const publicKey = (await readFile(join(stateDir, 'key_registered'), 'utf8')).trim();
    expect((await registeredKeys()).map((k) => k.public_key)).toContain(publicKey);
  });

  it('--json says what it did and never contains the token or the access token', async () => {
    const { home, dataDir } = await makeHome();
    const result = await cliJson<Record<string, unknown>>(['login', '--endpoint', rx.url, '--token-stdin'], userEnv({ home }), `${token}\n`);
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({
      ok: true,
      endpoint: `${rx.url}/`,
      dataDir,
      dataDirSource: 'default',
      configPath: join(dataDir, 'ccflux', 'config.json'),
      replacedExistingConfig: false,
      key: { registered: true, revoked: false, problem: null },
    });
    const cache = JSON.parse(await readFile(join(dataDir, 'ccflux', 'token_cache.json'), 'utf8')) as { access_token: string; expires_at: string };
    expect((result.json as { accessTokenExpiresAt: string }).accessTokenExpiresAt).toBe(cache.expires_at);
    expect(result.stdout).not.toContain(token);
    expect(result.stdout).not.toContain(cache.access_token);
  });

  it('refuses a token given as an argument or option, without echoing it, and changes nothing', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    for (const args of [
      ['login', token],
      ['login', '--endpoint', rx.url, token],
      ['login', '--token', token],
      ['login', `--token=${token}`],
      ['login', '--refresh-token', token],
    ]) {
      const result = await cli(args, env);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain('never accepted on the command line');
      expect(result.stderr).toContain('fix: ');
      expect(result.stdout + result.stderr).not.toContain(token);
    }
    // A misspelt option is refused by name; its value (maybe the token) is not repeated.
    const typo = await cli(['login', `--tokn=${token}`], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('unknown option --tokn');
    expect(typo.stdout + typo.stderr).not.toContain(token);
    const json = await cliJson<{ ok: boolean; error: { code: string } }>(['login', token], env);
    expect(json.json.error.code).toBe('CCFLUX_ERR_TOKEN_IN_ARGV');
    expect(json.stdout).not.toContain(token);
    expect(await exists(join(dataDir, 'ccflux'))).toBe(false);
  });

  it('refuses an http endpoint unless CCFLUX_ALLOW_HTTP=1, and URLs with credentials or a query', async () => {
    const { home, dataDir } = await makeHome();
    const strict = await cliJson<{ error: { code: string; message: string; hint: string } }>(
      ['login', '--endpoint', rx.url, '--token-stdin'],
      userEnv({ home, allowHttp: false }),
      `${token}\n`,
    );
    expect(strict.code).toBe(3);
    expect(strict.json.error.code).toBe('CCFLUX_ERR_INSECURE_ENDPOINT');
    expect(strict.json.error.message).toContain('https://');
    expect(strict.json.error.hint).toContain('CCFLUX_ALLOW_HTTP=1 is for local development only');

    const withPassword = await cli(['login', '--endpoint', 'https://user:hunter2@ccflux.example.org', '--token-stdin'], userEnv({ home }), `${token}\n`);
    expect(withPassword.code).toBe(3);
    expect(withPassword.stderr).toContain('user name or password');
    expect(withPassword.stderr).not.toContain('hunter2');
    const withQuery = await cli(['login', '--endpoint', 'https://ccflux.example.org/?key=1', '--token-stdin'], userEnv({ home }), `${token}\n`);
    expect(withQuery.code).toBe(3);
    expect(await exists(join(dataDir, 'ccflux'))).toBe(false);
  });

  it('a wrong token fails with exit 4 and writes nothing', async () => {
    const { home, dataDir } = await makeHome();
    const result = await login(userEnv({ home }), rx.url, 'ccf_rt_this_is_not_a_real_token_0000000000000');
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('refused this refresh token');
    expect(result.stderr).toContain('ask your IT admin');
    expect(await exists(join(dataDir, 'ccflux'))).toBe(false);
  });

  it('an unreachable endpoint fails with exit 5 and writes nothing', async () => {
    const { home, dataDir } = await makeHome();
    const json = await cliJson<{ error: { code: string; message: string } }>(
      ['login', '--endpoint', 'http://127.0.0.1:1', '--token-stdin'],
      userEnv({ home }),
      `${token}\n`,
    );
    expect(json.code).toBe(5);
    expect(json.json.error.code).toBe('CCFLUX_ERR_NETWORK');
    expect(json.json.error.message).toContain('could not reach the receiver');
    expect(await exists(join(dataDir, 'ccflux'))).toBe(false);
  });

  it('keeps the existing config when the new token is bad or the new endpoint unreachable', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const configPath = join(dataDir, 'ccflux', 'config.json');
    const before = await readFile(configPath, 'utf8');
    const cacheBefore = await readFile(join(dataDir, 'ccflux', 'token_cache.json'), 'utf8');

    const bad = await login(env, rx.url, 'ccf_rt_wrong_wrong_wrong_wrong_wrong_wrong_00');
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('existing settings were kept');
    const down = await login(env, 'http://127.0.0.1:1', token);
    expect(down.code).toBe(5);
    expect(await readFile(configPath, 'utf8')).toBe(before);
    expect(await readFile(join(dataDir, 'ccflux', 'token_cache.json'), 'utf8')).toBe(cacheBefore);

    // A good one replaces it, and says so.
    const again = await login(env, rx.url, token);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('replaced the credentials in ~/.claude/ccflux/config.json');
  });

  it('--config-dir and CLAUDE_CONFIG_DIR choose the data folder', async () => {
    const { home } = await makeHome();
    const other = join(home, 'profiles', 'work');
    const viaFlag = await login(userEnv({ home }), rx.url, token, ['--config-dir', other]);
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(await exists(join(other, 'ccflux', 'config.json'))).toBe(true);
    const envDir = join(home, 'env-dir');
    const viaEnv = await login(userEnv({ home, dataDir: envDir }), rx.url, token);
    expect(viaEnv.code).toBe(0);
    expect(await exists(join(envDir, 'ccflux', 'config.json'))).toBe(true);
    expect(await exists(join(home, '.claude', 'ccflux'))).toBe(false);
  });

  it('without a terminal and without --token-stdin it says how to pipe the token', async () => {
    const { home } = await makeHome();
    const result = await cli(['login', '--endpoint', rx.url], userEnv({ home }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('not a terminal');
    expect(result.stderr).toContain('--token-stdin');
  });

  it('on a terminal: asks for the endpoint and the token, and never shows the token', async () => {
    const { home, dataDir } = await makeHome();
    const result = await ptyCli(['login'], userEnv({ home }), [
      ['Receiver endpoint', `${rx.url}\r`],
      ['Refresh token (input hidden): ', `${token}\r`],
    ]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('Logged in to');
    expect(result.output).not.toContain(token);
    expect(result.output).not.toContain(token.slice(0, 12));
    expect(JSON.parse(await readFile(join(dataDir, 'ccflux', 'config.json'), 'utf8')).token).toBe(token);
  });

  it('on a terminal, --token-stdin still hides what is typed', async () => {
    const { home } = await makeHome();
    const result = await ptyCli(['login', '--endpoint', rx.url, '--token-stdin'], userEnv({ home }), [['(input hidden): ', `${token}\r`]]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).not.toContain(token);
  });

  it('on a terminal with several ~/.claude* folders and none named, lets the user pick', async () => {
    const { home } = await makeHome();
    await mkdir(join(home, '.claude-work'), { recursive: true });
    const result = await ptyCli(['login', '--endpoint', rx.url], userEnv({ home }), [
      ['Choose a number', '2\r'],
      ['(input hidden): ', `${token}\r`],
    ]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('1) ~/.claude');
    expect(result.output).toContain('2) ~/.claude-work');
    expect(result.output).toContain('saved the credentials to ~/.claude-work/ccflux/config.json');
    expect(await readdir(join(home, '.claude'))).toEqual([]);
  });

  it('--version prints the version; login --help shows an example', async () => {
    const version = await cli(['--version'], userEnv({ home: '/nonexistent' }));
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(VERSION);
    const help = await cli(['login', '--help'], userEnv({ home: '/nonexistent' }));
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--token-stdin');
    expect(help.stdout).toContain('Example:');
    expect(help.stdout).not.toContain('--refresh-token');
  });
});
