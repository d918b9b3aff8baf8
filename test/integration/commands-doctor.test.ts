/**
 * `ccflux doctor` as a user runs it: the built CLI against the real receiver on port 0, with the
 * plugin registered in the data dir the way Claude Code records an install.
 */
import { appendFile, chmod, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, PLUGIN_DIR } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, queueReports, registerPluginInstall, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('doctor-user@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

interface Check {
  id: string;
  title: string;
  state: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix: string | null;
  fixed: boolean;
}
interface DoctorJson {
  ok: boolean;
  dataDir: string;
  checks: Check[];
  summary: { passed: number; warnings: number; failed: number; skipped: number };
}

const byId = (json: DoctorJson) => Object.fromEntries(json.checks.map((c) => [c.id, c]));

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Logged in and plugin installed: everything a working setup has. */
async function workingSetup(): Promise<{ home: string; dataDir: string; env: NodeJS.ProcessEnv; installPath: string }> {
  const { home, dataDir } = await makeHome();
  const env = userEnv({ home });
  const result = await login(env, rx.url, token);
  expect(result.code, result.stderr).toBe(0);
  const installPath = await registerPluginInstall(dataDir, PLUGIN_DIR);
  return { home, dataDir, env, installPath };
}

describe('ccflux doctor', () => {
  it('a working setup passes every check (http on loopback only warns) and exits 0', async () => {
    const { env, dataDir } = await workingSetup();
    const { code, json } = await cliJson<DoctorJson>(['doctor'], env);
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.dataDir).toBe(dataDir);
    expect(json.checks.map((c) => c.id)).toEqual([
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
    const checks = byId(json);
    expect(checks['endpoint-https']).toMatchObject({ state: 'warn', fix: expect.stringContaining('CCFLUX_ALLOW_HTTP') });
    for (const id of ['config', 'permissions', 'receiver-reachable', 'token-exchange', 'key-registered', 'clock-skew', 'queue', 'plugin']) {
      expect(checks[id]?.state, `${id}: ${checks[id]?.detail}`).toBe('pass');
    }
    expect(json.summary).toEqual({ passed: 8, warnings: 1, failed: 0, skipped: 0 });

    const human = await cli(['doctor'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^✓ credentials configured/m);
    expect(human.stdout).toMatch(/^! endpoint uses https/m);
    expect(human.stdout).toContain('All checks passed (8 passed, 1 warning).');
    expect(human.stdout + human.stderr + JSON.stringify(json)).not.toContain(token);
  });

  it('loose permissions fail (exit 6); --fix repairs them to 0600/0700', async () => {
    const { env, dataDir } = await workingSetup();
    const stateDir = join(dataDir, 'ccflux');
    await chmod(stateDir, 0o755);
    await chmod(join(stateDir, 'config.json'), 0o644);
    await chmod(join(stateDir, 'signing_key'), 0o640);

    const broken = await cli(['doctor'], env);
    expect(broken.code).toBe(6);
    expect(broken.stdout).toMatch(/^✗ file and folder permissions +readable by others: ccflux\/ is 0755, config\.json is 0644, signing_key is 0640/m);
    expect(broken.stdout).toContain('fix: run `ccflux doctor --fix` to repair them');

    const fixed = await cliJson<DoctorJson>(['doctor', '--fix'], env);
    expect(fixed.code).toBe(0);
    expect(byId(fixed.json).permissions).toMatchObject({ state: 'pass', fixed: true });
    expect(await mode(stateDir)).toBe(0o700);
    expect(await mode(join(stateDir, 'config.json'))).toBe(0o600);
    expect(await mode(join(stateDir, 'signing_key'))).toBe(0o600);
    expect((await cli(['doctor'], env)).code).toBe(0);
  });

  it('no config: fails with `ccflux login` as the fix, network checks skipped', async () => {
    const { home, dataDir } = await makeHome();
    await registerPluginInstall(dataDir, PLUGIN_DIR);
    const { code, json } = await cliJson<DoctorJson>(['doctor'], userEnv({ home }));
    expect(code).toBe(6);
    const checks = byId(json);
    expect(checks.config).toMatchObject({ state: 'fail', fix: 'run `claude plugin configure ccflux@test-mkt` (or `ccflux login`)' });
    expect(checks['receiver-reachable']?.state).toBe('skip');
    expect(checks['token-exchange']?.state).toBe('skip');
    expect(checks.plugin?.state).toBe('pass');
  });

  it('receiver down: reachability fails with a fix; a stuck queue fails too', async () => {
    const { env, dataDir } = await workingSetup();
    await queueReports(join(dataDir, 'ccflux'), [makeReport(0, '2026-01-01T00:00:00Z', 'sess-doctor-stuck')]);
    await rx.kill();
    let result: { code: number | null; json: DoctorJson };
    try {
      result = await cliJson<DoctorJson>(['doctor'], env);
    } finally {
      await rx.restart();
    }
    expect(result.code).toBe(6);
    const checks = byId(result.json);
    expect(checks['receiver-reachable']).toMatchObject({ state: 'fail', detail: expect.stringContaining('ECONNREFUSED') });
    expect(checks['receiver-reachable']?.fix).toBeTruthy();
    expect(checks['token-exchange']?.state).toBe('skip');
    expect(checks.queue).toMatchObject({ state: 'fail', fix: expect.stringContaining('ccflux flush') });
  });

  it('an unregistered key fails; --fix registers it', async () => {
    const { env, dataDir } = await workingSetup();
    await rm(join(dataDir, 'ccflux', 'key_registered'));
    const before = await cliJson<DoctorJson>(['doctor'], env);
    expect(before.code).toBe(6);
    expect(byId(before.json)['key-registered']).toMatchObject({ state: 'fail', fix: expect.stringContaining('--fix') });
    const after = await cliJson<DoctorJson>(['doctor', '--fix'], env);
    expect(after.code).toBe(0);
    expect(byId(after.json)['key-registered']).toMatchObject({ state: 'pass', fixed: true });
    expect(await stat(join(dataDir, 'ccflux', 'key_registered')).then(() => true)).toBe(true);
  });

  it('a revoked refresh token fails the exchange check', async () => {
    const email = 'doctor-revoked@example.org';
    const revokedToken = await rx.addUser(email);
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, revokedToken)).code).toBe(0);
    await registerPluginInstall(dataDir, PLUGIN_DIR);
    await rx.cli(['users', 'revoke', email]);
    const { code, json } = await cliJson<DoctorJson>(['doctor'], env);
    expect(code).toBe(6);
    expect(byId(json)['token-exchange']).toMatchObject({ state: 'fail', fix: expect.stringContaining('IT admin') });
  });

  it('the plugin missing, or CCFLUX_ALLOW_HTTP in its scripts, fails the plugin check', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const missing = await cliJson<DoctorJson>(['doctor'], env);
    expect(missing.code).toBe(6);
    expect(byId(missing.json).plugin).toMatchObject({ state: 'fail', fix: expect.stringContaining('ccflux install') });

    const installPath = await registerPluginInstall(dataDir, PLUGIN_DIR);
    await appendFile(join(installPath, 'scripts', 'ccflux-hook.sh'), 'CCFLUX_ALLOW_HTTP=1; export CCFLUX_ALLOW_HTTP\n');
    const leaky = await cliJson<DoctorJson>(['doctor'], env);
    expect(leaky.code).toBe(6);
    expect(byId(leaky.json).plugin).toMatchObject({ state: 'fail', detail: expect.stringMatching(/scripts\/ccflux-hook\.sh:\d+/) });
  });

  it('an http endpoint without CCFLUX_ALLOW_HTTP fails the https check', async () => {
    const { home, dataDir } = await workingSetup();
    const strict = await cliJson<DoctorJson>(['doctor'], userEnv({ home, allowHttp: false }));
    expect(strict.code).toBe(6);
    expect(byId(strict.json)['endpoint-https']?.state).toBe('fail');
    expect(strict.json.dataDir).toBe(dataDir);
  });
});
