/**
 * A receiver that keeps failing sees one attempt per device per backoff interval, not one per
 * turn. The real worker runs once per simulated turn (5 s apart on the device clock, shifted with
 * CCFLUX_TEST_NOW_OFFSET_MS) against a proxy that answers every request 503, then refuses
 * connections: the proxy counts what reached it. Once the receiver is back, `ccflux flush` (a
 * user asking now) delivers everything at once and forgets the backoff, and the next turn's
 * report goes out with its own hook.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffMillis } from '../../src/client/deliver/backoff';
import { CLI_BUNDLE, cleanupTempDirs, run, sessionSums } from '../helpers/env';
import { type FaultProxy, passThrough, startFaultProxy } from '../helpers/fault-proxy';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { applyAppend, CLI_EVENT, type Device, hookInput, makeDevice, scenario, startWorker } from './device';
import { FAULT_SEED, reliability } from './support';

const TURN_SPACING_MILLIS = 5_000;
const TURNS = 30;
const SLACK_MILLIS = 3_000;

let receiver: RunningReceiver;
let proxy: FaultProxy;
let token: string;

beforeAll(async () => {
  receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  token = await receiver.addUser('alice@example.org');
  proxy = await startFaultProxy({ targetPort: receiver.port, seed: FAULT_SEED + 71 });
});

afterAll(async () => {
  await proxy?.stop();
  await receiver?.stop();
  await cleanupTempDirs();
});

async function turn(device: Device, offsetMillis: number, input: Record<string, unknown>, event: 'Stop' | 'SessionEnd' = 'Stop'): Promise<void> {
  const env = { ...device.env, CCFLUX_TEST_NOW_OFFSET_MS: String(offsetMillis) };
  const worker = startWorker({ ...device, env }, CLI_EVENT[event], input);
  await worker.exited;
}

describe('backoff from an endpoint that keeps failing', () => {
  it('a dead receiver sees at most one request per device per backoff interval; recovery delivers everything', async () => {
    const device = await makeDevice({ endpoint: proxy.url, token });
    const plan = scenario(FAULT_SEED + 700, 1, { turns: 6, resumeProbability: 0, traps: false });
    // All of the session's lines are on disk; every simulated turn runs the Stop hook again.
    let stopInput: Record<string, unknown> | null = null;
    for (const event of plan.events) {
      if ('append' in event) await applyAppend(device, event);
      else if ('hook' in event && event.hook.event === 'Stop') stopInput = hookInput(device, event);
    }
    if (stopInput === null) throw new Error('no Stop hook in the scenario');

    proxy.setPlan(() => ({ kind: 'status', status: 503 }));
    const attempts: number[] = [];
    const started = Date.now();
    for (let i = 0; i < TURNS; i++) {
      if (i === TURNS / 2) proxy.setPlan(() => ({ kind: 'reset' })); // then: connections cut
      const before = proxy.counts().total ?? 0;
      // The device's clock at this turn: the simulated spacing plus the real time the turns took.
      const deviceNow = Date.now() - started + i * TURN_SPACING_MILLIS;
      await turn(device, i * TURN_SPACING_MILLIS, stopInput);
      const made = (proxy.counts().total ?? 0) - before;
      expect(made, `turn ${i}`).toBeLessThanOrEqual(1);
      if (made > 0) attempts.push(deviceNow);
    }
    // Each attempt waited out the interval its failures earned, and came at the first turn after
    // (slack: a worker's own start-up, on a busy machine, between the turn's start and its check).
    for (let k = 1; k < attempts.length; k++) {
      const gap = (attempts[k] as number) - (attempts[k - 1] as number);
      expect(gap).toBeGreaterThanOrEqual(backoffMillis(k) - SLACK_MILLIS);
      expect(gap).toBeLessThan(backoffMillis(k) + TURN_SPACING_MILLIS + SLACK_MILLIS);
    }
    expect(attempts.length).toBeLessThanOrEqual(5);
    const table = JSON.parse(await readFile(join(device.stateDir, 'delivery_backoff.json'), 'utf8'));
    expect(Object.values(table)).toEqual([expect.objectContaining({ failures: attempts.length })]);
    expect(JSON.stringify(table)).not.toContain(token);

    // Back up: a user's flush goes at once, delivers everything and clears the backoff.
    proxy.setPlan(passThrough);
    const flushed = await run(process.execPath, [CLI_BUNDLE, 'flush'], { env: { ...device.env, CCFLUX_TEST_NOW_OFFSET_MS: String(TURNS * TURN_SPACING_MILLIS) } });
    expect(flushed.code, flushed.stderr + flushed.stdout).toBe(0);
    expect(sessionSums(receiver, plan.sessions)).toEqual(plan.expected);
    expect(JSON.parse(await readFile(join(device.stateDir, 'delivery_backoff.json'), 'utf8'))).toEqual({});

    // And a new turn's report goes out with its own hook, no interval in the way.
    const before = proxy.counts().total ?? 0;
    const more = scenario(FAULT_SEED + 701, 1, { turns: 2, resumeProbability: 0, traps: false });
    for (const event of more.events) {
      if ('append' in event) await applyAppend(device, event);
      else if ('hook' in event && event.hook.event === 'Stop') await turn(device, (TURNS + 1) * TURN_SPACING_MILLIS, hookInput(device, event));
    }
    expect((proxy.counts().total ?? 0) - before).toBeGreaterThan(0);
    expect(sessionSums(receiver, more.sessions)).toEqual(more.expected);
    reliability(
      'backoff',
      `dead receiver (503, then reset) for ${TURNS} turns ${TURN_SPACING_MILLIS / 1000} s apart: ${attempts.length} request(s), at ${attempts.map((a) => `${((a - (attempts[0] as number)) / 1000).toFixed(1)}s`).join(', ')} (device clock); after recovery flush delivered all and the next turn went at once`,
    );
  }, 180_000);
});
