/**
 * Issue 14's "done": the plugin installed with the real Claude Code 2.1.328 (`claude plugin
 * install`, the token through `claude plugin configure --values-stdin`), then, in a plain shell of
 * that user (no CLAUDE_PLUGIN_OPTION_*), `ccflux status`, `doctor` and `flush` run through the
 * plugin's own `bin/ccflux` launcher see those options and deliver what a turn left queued.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/env';
import { type Profile, runIn } from './support/claude';
import { type World, openWorld, unavailable } from './support/world';

describe.skipIf(unavailable !== null)('real Claude Code: user commands in a plain shell', { timeout: 180_000 }, () => {
  let world: World;
  let user: Profile;

  beforeAll(async () => {
    world = await openWorld();
    user = await world.user('shell@example.org');
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  /** The user's shell: their HOME (so ~/.claude is the profile), no Claude Code variables. */
  const shell = (args: string[]) =>
    runIn(world.sandbox, join(REPO_ROOT, 'plugin', 'bin', 'ccflux'), args, {
      env: { PATH: process.env.PATH, HOME: user.home, LANG: 'C.UTF-8', CCFLUX_ALLOW_HTTP: '1' },
      cwd: user.home,
    });

  it('status, doctor and flush find the plugin options Claude Code stored, and flush delivers the queue', async () => {
    const session = '0c0ffee0-0000-4000-8000-00000000e014';
    world.api.script('uc-1', [{ content: [{ type: 'text', text: 'Queued while the receiver is down.' }] }]);
    await world.receiver.kill();
    try {
      await user.prompt('[[uc-1]] hello', ['--session-id', session]);
      await world.quiet([user], { queueEmpty: false });
    } finally {
      await world.receiver.restart();
    }
    const queued = (await readFile(join(user.configDir, 'ccflux', 'pending_reports.jsonl'), 'utf8')).split('\n').filter(Boolean);
    expect(queued.length).toBeGreaterThan(0);

    const status = await shell(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const json = JSON.parse(status.stdout) as { credentials: { source: string; pluginStore: string; pluginId: string; endpoint: string } };
    expect(json.credentials).toMatchObject({ source: 'plugin-store', pluginStore: 'found', pluginId: 'ccflux@ccflux' });
    expect(json.credentials.endpoint).toContain(new URL(world.receiver.url).host);

    const flush = await shell(['flush']);
    expect(flush.code, flush.stdout + flush.stderr).toBe(0);
    expect(flush.stdout).toContain(`Delivered ${queued.length}, still queued 0`);
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);

    const doctor = await shell(['doctor']);
    expect(doctor.stdout).toMatch(/✓ credentials configured +from the plugin options stored by Claude Code/);
    expect(doctor.stdout).toMatch(/✓ report queue moving +empty/);
    expect(doctor.code, doctor.stdout).toBe(0);

    for (const out of [status.stdout, flush.stdout, flush.stderr, doctor.stdout, doctor.stderr]) expect(out).not.toContain('ccflux login');
  });
});
