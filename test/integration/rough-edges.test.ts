/**
 * The rough edges of issue 14, each as a user meets it in a shell: a closed pipe, no arguments,
 * `--help` on a hook command, a mistyped `--config-dir`, and https spoken to an http port.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/client/deliver/answer';
import { CLI_BUNDLE, cleanupTempDirs } from '../helpers/env';
import { cli, login, makeHome, userEnv } from './commands-support';

afterAll(async () => {
  await cleanupTempDirs();
});

function sh(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', script], { env }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

describe('rough edges', () => {
  it('`ccflux login --help | head -1`: one line, no EPIPE stack trace', async () => {
    const { home } = await makeHome();
    const r = await sh(`"${process.execPath}" "${CLI_BUNDLE}" login --help | head -1; "${process.execPath}" "${CLI_BUNDLE}" --help | head -1`, userEnv({ home }));
    expect(r.stdout).toBe('Usage: ccflux login [options]\nUsage: ccflux [options] [command]\n');
    expect(r.stderr).toBe('');
  });

  it('`ccflux` alone: usage on stderr, exit 2, nothing on stdout', async () => {
    const { home } = await makeHome();
    const r = await cli([], userEnv({ home }));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: ccflux');
    expect(r.stderr).toContain('no command given');
  });

  it('hook commands answer --help (and still print nothing when run as hooks)', async () => {
    const { home } = await makeHome();
    for (const hook of ['init', 'report-turn', 'session-end']) {
      const r = await cli([hook, '--help'], userEnv({ home }));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: ccflux ${hook}`);
    }
    const silent = await cli(['report-turn', '--bogus'], userEnv({ home }));
    expect(silent).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('status/doctor/flush --config-dir <typo>: says so, exit 2, lists the real folders', async () => {
    const { home } = await makeHome();
    const env = userEnv({ home });
    for (const command of ['status', 'doctor', 'flush']) {
      const r = await cli([command, '--config-dir', join(home, '.claud')], env);
      expect(r.code, command).toBe(2);
      expect(r.stderr).toContain('(from --config-dir) is not a folder');
      expect(r.stderr).toContain('~/.claude');
    }
    const fromEnv = await cli(['status'], userEnv({ home, dataDir: join(home, 'nope') }));
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('(from CLAUDE_CONFIG_DIR) is not a folder');
  });

  it('https to an http port: says the endpoint speaks plain http, not OpenSSL text', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const { home } = await makeHome();
      const r = await login(userEnv({ home, allowHttp: false }), `https://127.0.0.1:${port}`, 'ccf_rt_whatever');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('answers plain http, not https');
      expect(r.stderr).not.toMatch(/ssl3_get_record|wrong version number|ERR_SSL/i);
    } finally {
      server.close();
    }
    const action = classify({ kind: 'network-error', code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'C0:3A:...:ssl3_get_record:wrong version number' }, 'report');
    expect(action).toMatchObject({ kind: 'stop', reason: 'unreachable' });
    expect(JSON.stringify(action)).not.toContain('ssl3');
  });
});

describe('login: endpoint errors name the fix for login itself', () => {
  it('a malformed endpoint does not say "run `ccflux login`"', async () => {
    const { home } = await makeHome();
    const r = await login(userEnv({ home }), 'not a url', 'ccf_rt_whatever');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('nothing was changed');
    expect(r.stderr).toContain('--endpoint https://');
    expect(r.stderr).not.toContain('ccflux login`');
  });
});
