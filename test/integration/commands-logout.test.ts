/**
 * `ccflux logout` as a user runs it: the built CLI after a real login against the receiver on
 * port 0; a pseudo terminal for the confirmation.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, ptyCli, queueReports, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('logout-user@example.org');
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

describe('ccflux logout', () => {
  it('removes config.json and the token cache, keeps the key and the queue, and says what it did', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const stateDir = join(dataDir, 'ccflux');
    await queueReports(stateDir, [makeReport(0, '2026-05-11T03:00:00Z')]);

    const result = await cli(['logout'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      `Logged out of ${rx.url}/. Removed ~/.claude/ccflux/config.json (endpoint and refresh token), ~/.claude/ccflux/token_cache.json (cached access token).\n` +
        'Kept the device key (add --forget-key to remove it) and 1 queued report (delivered after the next login).\n',
    );
    expect(await exists(join(stateDir, 'config.json'))).toBe(false);
    expect(await exists(join(stateDir, 'token_cache.json'))).toBe(false);
    expect(await exists(join(stateDir, 'signing_key'))).toBe(true);
    expect(await exists(join(stateDir, 'key_registered'))).toBe(true);
    expect(await exists(join(stateDir, 'pending_reports.jsonl'))).toBe(true);

    const status = await cliJson<{ credentials: { source: string } }>(['status'], env);
    expect(status.json.credentials.source).toBe('none');
    const again = await cli(['logout'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Nothing to remove in ~/.claude/ccflux: not logged in there.');
  });

  it('--forget-key --json also removes the signing key and its markers', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const stateDir = join(dataDir, 'ccflux');
    const { code, json, stdout } = await cliJson<{ ok: boolean; removed: Array<{ path: string; what: string }>; kept: Record<string, unknown> }>(
      ['logout', '--forget-key'],
      env,
    );
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.removed.map((r) => r.path)).toEqual(
      ['config.json', 'token_cache.json', 'signing_key', 'key_registered'].map((f) => join(stateDir, f)),
    );
    expect(json.kept).toEqual({ signingKey: false, queuedReports: 0 });
    expect(stdout).not.toContain(token);
    const left = (await readdir(stateDir)).filter((f) => !f.endsWith('.log'));
    expect(left).toEqual([]);

    // Logging in again makes and registers a new key.
    const relogin = await login(env, rx.url, token);
    expect(relogin.code).toBe(0);
    expect(relogin.stdout).toMatch(/device key [0-9a-f]{16} registered/);
  });

  it('on a terminal, lists what it will remove and asks first', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const kept = await ptyCli(['logout'], env, [['Remove them? [y/N]', 'n\r']]);
    expect(kept.code, kept.output).toBe(0);
    expect(kept.output).toContain('This removes from ~/.claude/ccflux:');
    expect(kept.output).toContain('~/.claude/ccflux/config.json  (endpoint and refresh token)');
    expect(kept.output).toContain('Nothing was removed.');
    expect(await exists(join(dataDir, 'ccflux', 'config.json'))).toBe(true);

    const removed = await ptyCli(['logout'], env, [['Remove them? [y/N]', 'y\r']]);
    expect(removed.code, removed.output).toBe(0);
    expect(removed.output).toContain('Logged out of');
    expect(await exists(join(dataDir, 'ccflux', 'config.json'))).toBe(false);
  });
});
