/**
 * `ccflux doctor` judgements with plain values, and the fact gathering that reads the disk
 * (permissions scan and repair, plugin registry, CCFLUX_ALLOW_HTTP in scripts).
 */
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CHECK_IDS,
  type CheckResult,
  findAllowHttp,
  findPluginInstalls,
  judgeClockSkew,
  judgeConfig,
  judgeEndpointScheme,
  judgeExchange,
  judgeHealth,
  judgeKey,
  judgePermissions,
  judgePlugin,
  judgeQueue,
  loosePermissions,
  octal,
  renderDoctor,
  repairPermissions,
  scanPermissions,
  summarize,
} from '../../../src/client/commands/doctor';
import { keyFromSeed } from '../../../src/client/deliver/keys';

const NOW = new Date('2026-05-11T03:00:00Z');
const response = (status: number, body = '', headers: Record<string, string> = {}) =>
  ({ kind: 'response', status, body, headers, truncated: false }) as const;

describe('judgements', () => {
  it('config: none and invalid fail with `ccflux login`; a file passes', () => {
    expect(judgeConfig({ kind: 'none' }, '/c.json')).toMatchObject({
      state: 'fail',
      fix: 'set the plugin options (`claude plugin configure ccflux@ccflux`) or run `ccflux login`',
    });
    // A user who set the plugin options is never told to log in.
    const keychain = judgeConfig(
      { kind: 'none', stored: 'keychain', pluginId: 'ccflux@ccflux', lastRun: { source: 'plugin-options', endpoint: 'https://rx/' } },
      '/c.json',
    );
    expect(keychain).toMatchObject({ state: 'warn', fix: null });
    expect(keychain.detail).toContain('macOS keychain');
    expect(keychain.detail).toContain('https://rx/');
    expect(keychain.detail).not.toContain('login');
    expect(judgeConfig({ kind: 'none', stored: 'unset', pluginId: 'ccflux@acme' }, '/c.json')).toMatchObject({
      state: 'fail',
      fix: 'run `claude plugin configure ccflux@acme` (or `ccflux login`)',
    });
    expect(judgeConfig({ kind: 'ok', source: 'plugin-store', endpoint: 'https://x/' }, '/c.json')).toMatchObject({ state: 'pass' });
    expect(judgeConfig({ kind: 'invalid', message: 'config.json is not valid JSON' }, '/c.json')).toMatchObject({
      state: 'fail',
      detail: 'config.json is not valid JSON',
    });
    expect(judgeConfig({ kind: 'ok', source: 'config-file', endpoint: 'https://x/' }, '/c.json')).toMatchObject({ state: 'pass', fix: null });
  });

  it('permissions: group/other bits fail with --fix as the fix; repaired ones pass as fixed', () => {
    const entries = [
      { path: '/d/ccflux', kind: 'dir' as const, mode: 0o755 },
      { path: '/d/ccflux/config.json', kind: 'file' as const, mode: 0o644 },
      { path: '/d/ccflux/signing_key', kind: 'file' as const, mode: 0o600 },
      { path: '/d/ccflux/x', kind: 'file' as const, mode: 0o400 },
    ];
    expect(loosePermissions(entries).map((e) => e.path)).toEqual(['/d/ccflux', '/d/ccflux/config.json']);
    const failed = judgePermissions(entries, [], '/d/ccflux');
    expect(failed.state).toBe('fail');
    expect(failed.detail).toContain('ccflux/ is 0755');
    expect(failed.detail).toContain('config.json is 0644');
    expect(failed.fix).toContain('ccflux doctor --fix');
    const fixed = judgePermissions([], [], '/d/ccflux');
    expect(fixed.state).toBe('pass');
    const repaired = judgePermissions(
      entries.map((e) => ({ ...e, mode: e.kind === 'dir' ? 0o700 : 0o600 })),
      loosePermissions(entries),
      '/d/ccflux',
    );
    expect(repaired).toMatchObject({ state: 'pass', fixed: true });
    expect(octal(0o600)).toBe('0600');
  });

  it('endpoint: https passes, http fails, http with CCFLUX_ALLOW_HTTP=1 warns', () => {
    expect(judgeEndpointScheme('https://x/', {}).state).toBe('pass');
    expect(judgeEndpointScheme('http://x/', {}).state).toBe('fail');
    expect(judgeEndpointScheme('http://x/', { CCFLUX_ALLOW_HTTP: '1' })).toMatchObject({ state: 'warn' });
  });

  it('health: ok body passes; 503, 404, network errors fail with a fix', () => {
    expect(judgeHealth(response(200, '{"status":"ok","db":"ok"}'), 'u').state).toBe('pass');
    expect(judgeHealth(response(200, '<html>'), 'u').state).toBe('fail');
    expect(judgeHealth(response(503, '{"status":"error"}'), 'u').detail).toContain('database');
    expect(judgeHealth(response(404), 'u').fix).toContain('base URL');
    const down = judgeHealth({ kind: 'network-error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'u');
    expect(down).toMatchObject({ state: 'fail' });
    expect(down.detail).toContain('ECONNREFUSED');
  });

  it('exchange: ok passes with the validity left, 401 says ask IT', () => {
    expect(judgeExchange({ kind: 'ok', cache: { access_token: 'secret-at', expires_at: '2026-05-11T11:00:00Z' } }, NOW)).toMatchObject({
      state: 'pass',
      detail: 'the receiver accepted the refresh token (access token valid for 8h00m)',
    });
    expect(judgeExchange({ kind: 'revoked' }, NOW).fix).toContain('IT admin');
    expect(judgeExchange({ kind: 'unavailable', reason: 'server-busy', detail: 'HTTP 429 (rate limited)', status: 429 }, NOW).state).toBe('fail');
  });

  it('key: registered passes; revoked, missing and unregistered fail with the right fix', () => {
    const pub = keyFromSeed(Buffer.alloc(32, 3)).publicKeyB64;
    const base = { present: true, corrupt: false, publicKeyB64: pub, registered: true, revoked: false };
    expect(judgeKey(base, null).state).toBe('pass');
    expect(judgeKey({ ...base, revoked: true }, null).fix).toContain('logout --forget-key');
    expect(judgeKey({ ...base, present: false, publicKeyB64: null, registered: false }, null).state).toBe('fail');
    expect(judgeKey({ ...base, registered: false }, null).fix).toContain('doctor --fix');
    expect(judgeKey({ ...base, registered: false }, { kind: 'registered' })).toMatchObject({ state: 'pass', fixed: true });
    expect(judgeKey({ ...base, registered: false }, { kind: 'failed', reason: 'unreachable', detail: 'ECONNREFUSED' }).detail).toContain(
      'ECONNREFUSED',
    );
  });

  it('clock: within a minute passes, up to 4 minutes warns, beyond fails, no Date warns', () => {
    const at = (offsetMillis: number) => new Date(NOW.getTime() + offsetMillis).toUTCString();
    expect(judgeClockSkew(at(0), NOW)).toMatchObject({ state: 'pass', detail: 'in sync (within 2 s)' });
    expect(judgeClockSkew(at(-30_000), NOW)).toMatchObject({ state: 'pass', detail: 'this device is 30s ahead of the receiver' });
    expect(judgeClockSkew(at(120_000), NOW)).toMatchObject({ state: 'warn', detail: expect.stringContaining('2m00s behind') });
    expect(judgeClockSkew(at(-600_000), NOW)).toMatchObject({ state: 'fail', fix: expect.stringContaining('NTP') });
    expect(judgeClockSkew(undefined, NOW).state).toBe('warn');
  });

  it('clock: a kept correction that matches the skew passes and says so; one out of date says that', () => {
    const at = (offsetMillis: number) => new Date(NOW.getTime() + offsetMillis).toUTCString();
    const kept = { offsetMillis: -600_000, measuredAt: '2026-05-11T02:00:00Z' };
    expect(judgeClockSkew(at(-600_000), NOW, kept)).toMatchObject({
      state: 'pass',
      detail: expect.stringMatching(/10m00s ahead of the receiver; corrected: reports are signed with the receiver's time/),
    });
    expect(judgeClockSkew(at(0), NOW, kept)).toMatchObject({ state: 'pass', detail: expect.stringContaining('out of date') });
  });

  it('queue: empty passes; old or nearly full fails with the last error; rejected reports warn', () => {
    const delivery = { lastError: null, lastErrorAt: null, lastDeliveryAt: null, consecutiveFailures: 0 };
    const q = { length: 0, oldestReportAt: null, bytes: 0, maxBytes: 10 * 1024 * 1024, rejectedCount: 0, delivery };
    expect(judgeQueue(q, NOW).state).toBe('pass');
    expect(judgeQueue({ ...q, rejectedCount: 2 }, NOW).state).toBe('warn');
    expect(judgeQueue({ ...q, length: 3, oldestReportAt: '2026-05-11T02:50:00Z' }, NOW).state).toBe('pass');
    const stuck = judgeQueue(
      { ...q, length: 3, oldestReportAt: '2026-05-11T00:00:00Z', delivery: { ...delivery, lastError: 'receiver unreachable' } },
      NOW,
    );
    expect(stuck).toMatchObject({ state: 'fail', fix: expect.stringContaining('ccflux flush') });
    expect(stuck.detail).toContain('3h00m old');
    expect(stuck.detail).toContain('last error: receiver unreachable');
    expect(judgeQueue({ ...q, length: 460, oldestReportAt: '2026-05-11T02:59:00Z' }, NOW).state).toBe('pass');
    expect(judgeQueue({ ...q, length: 30_000, bytes: 9.5 * 1024 * 1024, oldestReportAt: '2026-05-11T02:59:00Z' }, NOW).detail).toContain(
      'nearly full (10 MB)',
    );
    // With the receiver down, a queue is not "delivered after the next turn".
    const down = judgeQueue({ ...q, length: 3, oldestReportAt: '2026-05-11T02:50:00Z', receiverDown: true }, NOW);
    expect(down.state).toBe('warn');
    expect(down.detail).toContain('the receiver is unreachable now');
    expect(down.detail).not.toContain('after the next turn');
  });

  it('plugin: missing fails, CCFLUX_ALLOW_HTTP in scripts fails, disabled warns', () => {
    expect(judgePlugin([], '/d').fix).toContain('ccflux install');
    const install = { id: 'ccflux@m', installPath: '/p', exists: true, enabled: true, allowHttpHits: [] };
    expect(judgePlugin([install], '/d').state).toBe('pass');
    expect(judgePlugin([{ ...install, exists: false }], '/d').detail).toContain('folder is missing');
    expect(judgePlugin([{ ...install, allowHttpHits: ['scripts/ccflux-hook.sh:3'] }], '/d')).toMatchObject({
      state: 'fail',
      detail: expect.stringContaining('scripts/ccflux-hook.sh:3'),
    });
    expect(judgePlugin([{ ...install, enabled: false }], '/d').state).toBe('warn');
  });
});

describe('summary and rendering', () => {
  const checks: CheckResult[] = [
    { id: 'config', title: 'credentials configured', state: 'pass', detail: 'from /c', fix: null, fixed: false },
    { id: 'endpoint-https', title: 'endpoint uses https', state: 'warn', detail: 'http', fix: 'use https', fixed: false },
    { id: 'plugin', title: 'plugin installed in this data folder', state: 'fail', detail: 'not installed', fix: 'run `ccflux install`', fixed: false },
  ];

  it('ok only when nothing failed or was skipped; warnings do not fail', () => {
    expect(summarize('/d', checks)).toMatchObject({ ok: false, summary: { passed: 1, warnings: 1, failed: 1, skipped: 0 } });
    expect(summarize('/d', checks.slice(0, 2)).ok).toBe(true);
    expect(summarize('/d', [...checks.slice(0, 1), { ...checks[0]!, state: 'skip' }]).ok).toBe(false);
  });

  it('✓ / ! / ✗ with a fix line under each problem', () => {
    const text = renderDoctor(summarize('/d', checks), '~/.claude');
    expect(text.split('\n')).toEqual([
      'ccflux doctor — data folder ~/.claude',
      '✓ credentials configured                from /c',
      '! endpoint uses https                   http',
      '                                        fix: use https',
      '✗ plugin installed in this data folder  not installed',
      '                                        fix: run `ccflux install`',
      'Some checks did not pass (1 passed, 1 warning, 1 failed).',
    ]);
  });

  it('the check list is fixed and documented', () => {
    expect(CHECK_IDS).toEqual([
      'config',
      'permissions',
      'endpoint-https',
      'receiver-reachable',
      'token-exchange',
      'key-registered',
      'clock-skew',
      'queue',
      'plugin',
    ]);
  });
});

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ccflux-unit-doctor-'));
  tempDirs.push(dir);
  return dir;
}

describe('gathering', () => {
  it('scans the state dir (skipping lock folders and symlinks) and repairs loose modes', async () => {
    const root = await tempDir();
    const dir = join(root, 'ccflux');
    await mkdir(join(dir, 'ledger'), { recursive: true });
    await chmod(join(dir, 'ledger'), 0o755);
    await mkdir(join(dir, 'deliver.lock'));
    await chmod(dir, 0o755);
    await chmod(join(dir, 'deliver.lock'), 0o755);
    await writeFile(join(dir, 'config.json'), '{}', { mode: 0o644 });
    await writeFile(join(dir, 'ledger', 'ab.jsonl'), '', { mode: 0o666 });
    await chmod(join(dir, 'ledger', 'ab.jsonl'), 0o666);
    await writeFile(join(dir, 'signing_key'), Buffer.alloc(32), { mode: 0o600 });
    await symlink('/etc/passwd', join(dir, 'link'));

    const entries = await scanPermissions(dir);
    expect(entries.map((e) => e.path.slice(dir.length))).toEqual(['', '/config.json', '/ledger', '/ledger/ab.jsonl', '/signing_key']);
    // ccflux/ 0755, config.json 0644, ledger/ (umask) and ab.jsonl 0666
    expect(loosePermissions(entries).map((e) => e.path.slice(dir.length))).toEqual(['', '/config.json', '/ledger', '/ledger/ab.jsonl']);

    const repaired = await repairPermissions(entries);
    expect(repaired).toHaveLength(4);
    expect((await stat(join(dir, 'ledger'))).mode & 0o777).toBe(0o700);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'ledger', 'ab.jsonl'))).mode & 0o777).toBe(0o600);
    expect(loosePermissions(await scanPermissions(dir))).toEqual([]);
    expect(await scanPermissions(join(root, 'missing'))).toEqual([]);
  });

  it('finds ccflux in installed_plugins.json (formats 1 and 2) with enabledPlugins and CCFLUX_ALLOW_HTTP hits', async () => {
    const dataDir = await tempDir();
    const good = join(dataDir, 'plugins', 'cache', 'm', 'ccflux', '0.1.0');
    const bad = join(dataDir, 'plugins', 'cache', 'dev', 'ccflux', '0.0.1');
    for (const root of [good, bad]) {
      await mkdir(join(root, 'scripts'), { recursive: true });
      await mkdir(join(root, 'hooks'), { recursive: true });
      await writeFile(join(root, 'hooks', 'hooks.json'), '{}');
    }
    await writeFile(join(good, 'scripts', 'ccflux-hook.sh'), '#!/bin/sh\nexit 0\n');
    await writeFile(join(bad, 'scripts', 'ccflux-hook.sh'), '#!/bin/sh\nexport CCFLUX_ALLOW_HTTP=1\nexit 0\n');
    await writeFile(
      join(dataDir, 'plugins', 'installed_plugins.json'),
      JSON.stringify({
        version: 2,
        plugins: {
          'ccflux@m': [{ scope: 'user', installPath: good, version: '0.1.0' }],
          'ccflux@dev': { installPath: bad, version: '0.0.1' },
          'other@m': [{ scope: 'user', installPath: '/elsewhere' }],
        },
      }),
    );
    await writeFile(join(dataDir, 'settings.json'), JSON.stringify({ enabledPlugins: { 'ccflux@m': true, 'ccflux@dev': false } }));

    expect(await findAllowHttp(bad)).toEqual(['scripts/ccflux-hook.sh:2']);
    expect(await findAllowHttp(good)).toEqual([]);
    const installs = await findPluginInstalls(dataDir);
    expect(installs).toEqual([
      { id: 'ccflux@m', installPath: good, exists: true, enabled: true, allowHttpHits: [] },
      { id: 'ccflux@dev', installPath: bad, exists: true, enabled: false, allowHttpHits: ['scripts/ccflux-hook.sh:2'] },
    ]);
    expect(judgePlugin(installs, dataDir).state).toBe('fail');
    expect(await findPluginInstalls(await tempDir())).toEqual([]);
  });
});
