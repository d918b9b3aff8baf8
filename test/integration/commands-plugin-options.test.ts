/**
 * A user who configured ccflux the recommended way (plugin options, kept by Claude Code in
 * `<config dir>/.credentials.json`) runs `status`, `doctor` and `flush` in a plain shell: they find
 * the options, deliver the queue, and never print the token nor tell the user to log in.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, PLUGIN_DIR } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, makeHome, makeReport, queueReports, registerPluginInstall, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  token = await rx.addUser('plugin-user@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

/** What `claude plugin install … --config api_endpoint=…` + `configure --values-stdin` leave (observed on 2.1.328). */
async function configureLikeClaudeCode(dataDir: string, endpoint: string, refreshToken: string): Promise<void> {
  const credentials = {
    claudeAiOauth: { accessToken: 'claude-own-secret' },
    pluginSecrets: { 'ccflux@ccflux': { api_endpoint: endpoint, api_token: refreshToken } },
  };
  await writeFile(join(dataDir, '.credentials.json'), JSON.stringify(credentials), { mode: 0o600 });
  await registerPluginInstall(dataDir, PLUGIN_DIR, 'ccflux@ccflux');
}

describe('plugin-options users in a plain shell', () => {
  it('status, doctor and flush find the stored options; flush delivers; nothing prints a secret or says login', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    await configureLikeClaudeCode(dataDir, rx.url, token);
    const session = 'sess-plugin-store';
    await queueReports(join(dataDir, 'ccflux'), [0, 1, 2].map((i) => makeReport(i, `2026-05-11T03:0${i}:00Z`, session)));

    const status = await cliJson<{ credentials: { source: string; endpoint: string; pluginStore: string } }>(['status'], env);
    expect(status.code).toBe(0);
    expect(status.json.credentials).toMatchObject({ source: 'plugin-store', pluginStore: 'found' });
    expect(status.json.credentials.endpoint).toContain('127.0.0.1');

    const human = await cli(['status'], env);
    expect(human.stdout).toContain('Claude Code plugin options of ccflux@ccflux');

    const flush = await cli(['flush'], env);
    expect(flush.code).toBe(0);
    expect(flush.stdout).toContain('Delivered 3, still queued 0');
    expect(rx.query('SELECT DISTINCT turn_index FROM usage_events WHERE session_id = ?', session)).toHaveLength(3);

    const doctor = await cli(['doctor'], env);
    expect(doctor.stdout).toMatch(/✓ credentials configured +from the plugin options stored by Claude Code/);
    // Plain http to the test receiver is only a warning.
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.stdout).toContain('claude plugin configure ccflux@ccflux');

    for (const out of [status.stdout, human.stdout, flush.stdout, flush.stderr, doctor.stdout, doctor.stderr]) {
      expect(out).not.toContain(token);
      expect(out).not.toContain('claude-own-secret');
      expect(out).not.toContain('ccflux login');
    }
  });

  it('plugin installed, options not set: names `claude plugin configure`, exit 3', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    await writeFile(join(dataDir, 'settings.json'), JSON.stringify({ enabledPlugins: { 'ccflux@ccflux': true } }));
    const flush = await cli(['flush'], env);
    expect(flush.code).toBe(3);
    expect(flush.stderr).toContain('claude plugin configure ccflux@ccflux');
    const status = await cli(['status'], env);
    expect(status.stdout).toContain('claude plugin configure ccflux@ccflux');
  });
});
