/**
 * `ccflux flush` as a user runs it: the built CLI against the real receiver on port 0, which goes
 * down and comes back; a pseudo terminal for the progress bar.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/client/local/fsx';
import { statePaths } from '../../src/client/local/paths';
import { cleanupTempDirs } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { cli, cliJson, login, makeHome, makeReport, ptyCli, queueReports, userEnv } from './commands-support';

let rx: RunningReceiver;
let token: string;

beforeAll(async () => {
  // A small body limit makes a big (but valid) report one the receiver can never accept (413).
  rx = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000', BODY_LIMIT_KB: '2' } });
  token = await rx.addUser('flush-user@example.org');
});

afterAll(async () => {
  await rx?.stop();
  await cleanupTempDirs();
});

function storedTurns(sessionId: string): number[] {
  return rx
    .query<{ turn_index: number }>('SELECT DISTINCT turn_index FROM usage_events WHERE session_id = ? ORDER BY turn_index', sessionId)
    .map((r) => r.turn_index);
}

async function queuedTurns(dataDir: string): Promise<number[]> {
  const text = await readFile(statePaths(dataDir).queue, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { turn_index: number }).turn_index);
}

interface FlushJson {
  ok: boolean;
  busy: boolean;
  delivered: number;
  stillQueued: number;
  rejected: number;
  stoppedBecause: string | null;
  error: string | null;
}

describe('ccflux flush', () => {
  it('with the receiver down keeps everything queued (exit 5); once it is back, delivers in order (exit 0)', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const session = 'sess-flush-down-up';
    await queueReports(join(dataDir, 'ccflux'), [0, 1, 2].map((i) => makeReport(i, `2026-05-11T03:0${i}:00Z`, session)));

    await rx.kill();
    try {
      const down = await cliJson<FlushJson>(['flush'], env);
      expect(down.code).toBe(5);
      expect(down.json).toMatchObject({ ok: false, delivered: 0, stillQueued: 3, rejected: 0, stoppedBecause: 'unreachable' });
      expect(down.json.error).toContain('ECONNREFUSED');
      const human = await cli(['flush'], env);
      expect(human.code).toBe(5);
      expect(human.stdout).toContain('Delivered 0, still queued 3, rejected 0.');
      expect(human.stdout).toMatch(/Stopped: receiver unreachable/);
      expect(await queuedTurns(dataDir)).toEqual([0, 1, 2]);
    } finally {
      await rx.restart();
    }

    const up = await cli(['flush'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('Delivered 3, still queued 0, rejected 0.');
    // Not a terminal: plain progress lines, in order.
    // One batch (POST /reports) carries all three.
    expect(up.stdout).toMatch(/^3\/3 delivered\n/);
    expect(await queuedTurns(dataDir)).toEqual([]);
    expect(storedTurns(session)).toEqual([0, 1, 2]);
  });

  it('moves a report the receiver can never accept to rejected_reports.jsonl and goes on', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    const session = 'sess-flush-reject';
    const big = makeReport(1, '2026-05-11T03:01:00Z', session);
    for (let i = 0; i < 20; i++) {
      big.models[`model-${i}-${'x'.repeat(110)}`] = { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 };
    }
    big.models = Object.fromEntries(Object.entries(big.models).slice(-20));
    await queueReports(join(dataDir, 'ccflux'), [makeReport(0, '2026-05-11T03:00:00Z', session), big, makeReport(2, '2026-05-11T03:02:00Z', session)]);
    const result = await cliJson<FlushJson>(['flush'], env);
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ ok: true, delivered: 2, rejected: 1, stillQueued: 0, stoppedBecause: null });
    const rejected = await readFile(statePaths(dataDir).rejected, 'utf8');
    expect(rejected).toContain(session);
    expect(rejected).toContain('413');
    expect(storedTurns(session)).toEqual([0, 2]);
  });

  it('on a terminal draws a progress bar in place', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    await queueReports(join(dataDir, 'ccflux'), [0, 1, 2, 3].map((i) => makeReport(i, `2026-05-11T03:0${i}:00Z`, 'sess-flush-tty')));
    const result = await ptyCli(['flush'], env);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/\r\u001b\[2K\[#+-*\] 4\/4/);
    expect(result.output).toContain('Delivered 4, still queued 0, rejected 0.');
    expect(result.output).not.toMatch(/^1\/4 delivered$/m);
  });

  it('waits for a background delivery that holds the deliver lock, then reports', async () => {
    const { home, dataDir } = await makeHome();
    const env = userEnv({ home });
    expect((await login(env, rx.url, token)).code).toBe(0);
    await queueReports(join(dataDir, 'ccflux'), [makeReport(0, '2026-05-11T03:00:00Z', 'sess-flush-busy')]);
    const release = await acquireLock(statePaths(dataDir).deliverLock, { waitMillis: 0, staleMillis: 60_000 });
    try {
      const started = Date.now();
      const busy = await cliJson<FlushJson>(['flush'], env);
      expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
      expect(busy.code).toBe(1);
      expect(busy.json).toMatchObject({ ok: false, busy: true, stillQueued: 1, stoppedBecause: 'busy' });
    } finally {
      await release();
    }
    const after = await cliJson<FlushJson>(['flush'], env);
    expect(after.json).toMatchObject({ ok: true, delivered: 1, stillQueued: 0 });
  });

  it('without credentials says how to configure (exit 3); with an empty queue says so (exit 0)', async () => {
    const { home } = await makeHome();
    const env = userEnv({ home });
    const none = await cli(['flush'], env);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('no receiver configured');
    expect(none.stderr).toContain('ccflux login');
    expect((await login(env, rx.url, token)).code).toBe(0);
    const empty = await cli(['flush'], env);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('Delivered 0, still queued 0, rejected 0.\n');
  });
});
