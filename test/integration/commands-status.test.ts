/**
 * `ccflux status` as a user runs it: the built CLI against the real receiver on port 0. The
 * `--json` schema is checked key by key, since scripts depend on it (docs/commands.md).
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version';
import { cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, queueReports, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('status-user@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

/** The documented `status --json` schema: every key, with its type. */
function expectSchema(json: Record<string, unknown>): void {
  const str = expect.any(String);
  const strOrNull = (v: unknown) => v === null || typeof v === 'string';
  const numOrNull = (v: unknown) => v === null || typeof v === 'number';
  expect(Object.keys(json).sort()).toEqual(
    ['accessToken', 'clock', 'credentials', 'dataDir', 'dataDirSource', 'delivery', 'key', 'ok', 'otherDataDirs', 'queue', 'rejected', 'stateDir', 'version'].sort(),
  );
  expect(json).toMatchObject({ ok: true, version: VERSION, dataDir: str, stateDir: str });
  expect(['flag', 'env', 'default', 'chosen', 'remembered', 'found']).toContain(json.dataDirSource);
  const c = json.credentials as Record<string, unknown>;
  expect(Object.keys(c).sort()).toEqual(['configPath', 'endpoint', 'pluginId', 'pluginStore', 'problem', 'source']);
  expect(['plugin-options', 'plugin-store', 'config-file', 'none']).toContain(c.source);
  expect(strOrNull(c.endpoint) && strOrNull(c.problem) && typeof c.configPath === 'string').toBe(true);
  const t = json.accessToken as Record<string, unknown>;
  expect(Object.keys(t).sort()).toEqual(['cached', 'expiresAt', 'usable']);
  expect(typeof t.cached === 'boolean' && typeof t.usable === 'boolean' && strOrNull(t.expiresAt)).toBe(true);
  const k = json.key as Record<string, unknown>;
  expect(Object.keys(k).sort()).toEqual(['fingerprint', 'present', 'problem', 'registered', 'revoked']);
  expect(typeof k.present === 'boolean' && typeof k.registered === 'boolean' && typeof k.revoked === 'boolean').toBe(true);
  const q = json.queue as Record<string, unknown>;
  expect(Object.keys(q).sort()).toEqual(['length', 'oldestAgeSeconds', 'oldestReportAt']);
  expect(typeof q.length === 'number' && numOrNull(q.oldestAgeSeconds) && strOrNull(q.oldestReportAt)).toBe(true);
  expect(json.rejected).toEqual({ count: expect.any(Number) });
  const d = json.delivery as Record<string, unknown>;
  expect(Object.keys(d).sort()).toEqual(['consecutiveFailures', 'lastAttemptAt', 'lastCredentialSource', 'lastDeliveryAt', 'lastEndpoint', 'lastError', 'lastErrorAt']);
  expect(Array.isArray(json.otherDataDirs)).toBe(true);
}

describe('ccflux status', () => {
  it('before login: no credentials, nothing created, exit 0', async () => {
    const { home, dataDir } = await makeHome();
    const result = await cliJson<Record<string, unknown>>(['status'], userEnv({ home }));
    expect(result.code).toBe(0);
    expectSchema(result.json);
    expect(result.json).toMatchObject({
      dataDir,
      dataDirSource: 'default',
      credentials: { source: 'none', endpoint: null, problem: null },
      accessToken: { cached: false, expiresAt: null, usable: false },
      key: { present: false, fingerprint: null, registered: false, revoked: false },
      queue: { length: 0, oldestReportAt: null, oldestAgeSeconds: null },
    });
    expect(await readdir(dataDir)).toEqual([]);
    const human = await cli(['status'], userEnv({ home }));
    expect(human.stdout).toContain('credentials    none — set the plugin options (`claude plugin configure ccflux@ccflux`) or run `ccflux login`');
  });

  it('after login with queued and rejected reports: every fact, and no secret', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const stateDir = join(dataDir, 'ccflux');
    const oldest = new Date(Date.now() - 2 * 3600_000);
    const stamp = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;
    await queueReports(stateDir, [makeReport(0, stamp(oldest)), makeReport(1, stamp(new Date()))]);
    const rejectedLine = JSON.stringify({ rejected_at: stamp(oldest), reason: 'HTTP 400: bad', report: makeReport(9, stamp(oldest)) });
    await writeFile(join(stateDir, 'rejected_reports.jsonl'), `${rejectedLine}\n`, { mode: 0o600 });

    const result = await cliJson<Record<string, unknown>>(['status'], env);
    expect(result.code).toBe(0);
    expectSchema(result.json);
    const json = result.json as {
      credentials: Record<string, unknown>;
      accessToken: Record<string, unknown>;
      key: Record<string, unknown>;
      queue: { length: number; oldestReportAt: string; oldestAgeSeconds: number };
      rejected: { count: number };
    };
    expect(json.rejected).toEqual({ count: 1 });
    expect(json.credentials).toEqual({ source: 'config-file', endpoint: `${rx.url}/`, configPath: join(stateDir, 'config.json'), problem: null, pluginStore: 'none', pluginId: null });
    expect(json.accessToken).toMatchObject({ cached: true, usable: true });
    expect(json.key).toMatchObject({ present: true, registered: true, revoked: false, fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(json.queue.length).toBe(2);
    expect(json.queue.oldestReportAt).toBe(stamp(oldest));
    expect(json.queue.oldestAgeSeconds).toBeGreaterThanOrEqual(7199);
    expect(json.queue.oldestAgeSeconds).toBeLessThan(7300);

    const cache = JSON.parse(await readFile(join(stateDir, 'token_cache.json'), 'utf8')) as { access_token: string };
    const seed = await readFile(join(stateDir, 'signing_key'));
    const human = await cli(['status'], env);
    for (const output of [result.stdout, human.stdout + human.stderr]) {
      expect(output).not.toContain(token);
      expect(output).not.toContain(cache.access_token);
      expect(output).not.toContain(seed.toString('base64'));
      expect(output).not.toContain(seed.toString('hex'));
    }
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/queue +2 reports waiting, oldest from .* \(2h00m ago\)/);
    expect(human.stdout).toMatch(/device key +[0-9a-f]{16} {2}registered/);
    expect(human.stdout).toMatch(/access token +valid until /);
    expect(human.stdout).toContain('rejected       1 (see ~/.claude/ccflux/rejected_reports.jsonl)');
  });

  it('shows the last delivery and the last error with their times (after flushes)', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const stateDir = join(dataDir, 'ccflux');
    await queueReports(stateDir, [makeReport(0, '2026-01-01T00:00:00Z', 'sess-status-2')]);
    expect((await cli(['flush'], env)).code).toBe(0);
    // Now point the config at a closed port: the next flush fails and records why.
    const config = JSON.parse(await readFile(join(stateDir, 'config.json'), 'utf8')) as { endpoint: string; token: string };
    await writeFile(join(stateDir, 'config.json'), JSON.stringify({ ...config, endpoint: 'http://127.0.0.1:1/' }), { mode: 0o600 });
    await queueReports(stateDir, [makeReport(1, '2026-01-01T00:01:00Z', 'sess-status-2')]);
    expect((await cli(['flush'], env)).code).toBe(5);

    const { json } = await cliJson<{ delivery: Record<string, unknown>; queue: { length: number } }>(['status'], env);
    expect(json.queue.length).toBe(1);
    expect(json.delivery).toMatchObject({
      lastDeliveryAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      lastErrorAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      lastError: expect.stringContaining('ECONNREFUSED'),
      consecutiveFailures: 1,
    });
    const human = await cli(['status'], env);
    expect(human.stdout).toMatch(/last delivery +\d{4}-.*Z \(\d+s ago\)/);
    expect(human.stdout).toMatch(/last error +\d{4}-.*Z \(\d+s ago\): .*ECONNREFUSED/);
  });

  it('names the plugin options as the source when Claude Code sets them', async () => {
    const { home } = await makeHome();
    const env = userEnv({
      home,
      extra: { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'https://ccflux.example.org', CLAUDE_PLUGIN_OPTION_API_TOKEN: token },
    });
    const result = await cliJson<{ credentials: Record<string, unknown> }>(['status'], env);
    expect(result.json.credentials).toMatchObject({ source: 'plugin-options', endpoint: 'https://ccflux.example.org/' });
    expect(result.stdout).not.toContain(token);
  });

  it('an unreadable config.json is shown as a problem, exit 0', async () => {
    const { home, dataDir } = await makeHome();
    await mkdir(join(dataDir, 'ccflux'), { recursive: true, mode: 0o700 });
    await writeFile(join(dataDir, 'ccflux', 'config.json'), `{"endpoint":"https://x","token":"${token}"`, { mode: 0o600 });
    const result = await cliJson<{ credentials: Record<string, unknown> }>(['status'], userEnv({ home }));
    expect(result.code).toBe(0);
    expect(result.json.credentials).toMatchObject({ source: 'config-file', endpoint: null, problem: 'config.json is not valid JSON' });
    expect(result.stdout).not.toContain(token);
  });
});
