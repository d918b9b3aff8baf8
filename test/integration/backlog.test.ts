/**
 * Offline for a week loses nothing, and a backlog drains in one go: 2,000 reports queued while the
 * receiver is down (through the queue the hooks use) are all delivered by one `ccflux flush` once
 * it is back; 1,000 go out in one run at the receiver's default rate limit (30 a minute), because
 * they travel 100 to a request (POST /reports).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withLock } from '../../src/client/local/fsx';
import { nullLogger } from '../../src/client/local/log';
import { statePaths } from '../../src/client/local/paths';
import { STATE_LOCK_OPTIONS } from '../../src/client/deliver/drain';
import { createFsQueue } from '../../src/client/deliver/queue';
import { cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, queueReports, userEnv } from './commands-support';

const receivers: RunningReceiver[] = [];
afterAll(async () => {
  for (const rx of receivers) await rx.stop();
  await cleanupTempDirs();
});

const at = (i: number) => new Date(Date.UTC(2026, 4, 11, 3, 0, 0) + i * 5 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('backlog', () => {
  it('2,000 reports queued offline are all kept, then all delivered', async () => {
    const rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
    receivers.push(rx);
    const token = await rx.addUser('offline@example.org');
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    await rx.kill();
    const paths = statePaths(dataDir);
    const queue = createFsQueue(paths, { log: nullLogger });
    const session = 'sess-week-offline';
    for (let i = 0; i < 2000; i++) await withLock(paths.stateLock, STATE_LOCK_OPTIONS, () => queue.append(makeReport(i, at(i), session)));
    expect(await queue.size()).toBe(2000);
    const down = await cliJson<{ stillQueued: number }>(['flush'], env);
    expect(down.code).toBe(5);
    expect(down.json.stillQueued).toBe(2000);

    await rx.restart();
    const up = await cli(['flush'], env);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain('Delivered 2000, still queued 0, rejected 0.');
    const stored = rx.query<{ n: number }>('SELECT count(DISTINCT turn_index) AS n FROM usage_events WHERE session_id = ?', session);
    expect(stored[0]?.n).toBe(2000);
    // 2,000 locked appends, each with its fsync: about 15 s on a quiet machine, past a minute under load.
  }, 240_000);

  it('1,000 queued reports drain in one flush at the default rate limit', async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const token = await rx.addUser('backlog@example.org');
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const session = 'sess-backlog';
    await queueReports(join(dataDir, 'ccflux'), Array.from({ length: 1000 }, (_, i) => makeReport(i, at(i), session)));
    const flush = await cli(['flush'], env);
    expect(flush.code, flush.stdout + flush.stderr).toBe(0);
    expect(flush.stdout).toContain('Delivered 1000, still queued 0, rejected 0.');
    const stored = rx.query<{ n: number }>('SELECT count(DISTINCT turn_index) AS n FROM usage_events WHERE session_id = ?', session);
    expect(stored[0]?.n).toBe(1000);
  }, 180_000);
});
