/**
 * SIGKILL storm, then silence: hooks fire in quick succession and their workers are SIGKILLed at
 * random instants, the worker holding the deliver lock last of all, right before the storm's last
 * hook. No later hook comes (the user closed the laptop lid). Every report must still reach the
 * receiver within seconds of that last hook: its worker takes over locks whose holder is dead at
 * once, and if the lock's holder was alive when it looked, waits for it to go and looks again.
 * Before locks named their holder, a killed worker's deliver lock blocked delivery for its 30 s
 * stale time, the last worker left, and the reports waited for the next turn (2 of 6 runs).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, sessionSums } from '../helpers/env';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy';
import { mulberry32, type TimelineEvent } from '../helpers/gen-transcript';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { alive, applyAppend, CLI_EVENT, fireHook, hookInput, makeDevice, readLog, scenario, startWorker, stateView, type Totals, waitForNoWorkers, type Worker } from './device';
import { FAULT_SEED, reliability, sleep } from './support';

const RUNS = 20;
/** The promise under test: every report at the receiver this soon after the storm's last hook. */
const DELIVERED_WITHIN_MILLIS = 10_000;
const KILL_PROBABILITY = 0.7;
const MAX_KILL_DELAY_MILLIS = 600;

let receiver: RunningReceiver;
let proxy: FaultProxy;
let token: string;

beforeAll(async () => {
  receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  token = await receiver.addUser('alice@example.org');
  // Requests stay in flight a little, so workers are killed while they hold the deliver lock.
  proxy = await startFaultProxy({
    targetPort: receiver.port,
    seed: FAULT_SEED + 61,
    plan: (_req, random) => ({ kind: 'forward', delayRequestMillis: 20 + Math.floor(random() * 120), delayResponseMillis: 10 + Math.floor(random() * 60) }),
  });
});

afterAll(async () => {
  await proxy?.stop();
  await receiver?.stop();
  await cleanupTempDirs();
});

function same(a: Totals, b: Totals): boolean {
  return JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
}

/** Pid named by `<stateDir>/deliver.lock/owner`, if that lock is held. */
function deliverLockHolder(stateDir: string): number | null {
  try {
    return (JSON.parse(readFileSync(join(stateDir, 'deliver.lock', 'owner'), 'utf8')) as { pid: number }).pid;
  } catch {
    return null;
  }
}

describe('SIGKILL storm, then no more hooks', () => {
  it(
    `in ${RUNS} of ${RUNS} runs every report reaches the receiver within ${DELIVERED_WITHIN_MILLIS / 1000} s of the last hook`,
    async () => {
      const random = mulberry32(FAULT_SEED + 60);
      const delays: number[] = [];
      let kills = 0;
      let lockHolderKills = 0;
      const failures: string[] = [];
      for (let run = 0; run < RUNS; run++) {
        const device = await makeDevice({ endpoint: proxy.url, token });
        const plan = scenario(FAULT_SEED + 600 + run * 7, 1, { turns: 5, resumeProbability: 0, traps: false }, random);
        const workers: Worker[] = [];
        let lastHook: Extract<TimelineEvent, { hook: unknown }> | null = null;
        for (const event of plan.events) {
          if ('append' in event) {
            await applyAppend(device, event);
            continue;
          }
          if (!('hook' in event)) continue;
          lastHook = event;
          const worker = startWorker(device, CLI_EVENT[event.hook.event], hookInput(device, event));
          workers.push(worker);
          if (random() < KILL_PROBABILITY) {
            const delay = Math.floor(random() * MAX_KILL_DELAY_MILLIS);
            setTimeout(() => {
              if (worker.child.exitCode === null && worker.child.pid !== undefined && alive(worker.child.pid)) {
                worker.child.kill('SIGKILL');
                kills++;
              }
            }, delay);
          }
          await sleep(20 + Math.floor(random() * 100));
        }
        if (lastHook === null) throw new Error('scenario without hooks');
        // The worst moment: kill whichever storm worker holds the deliver lock, if one does
        // within a short while, then the last hook at once.
        const waitUntil = Date.now() + 1500;
        let holder = deliverLockHolder(device.stateDir);
        while ((holder === null || !workers.some((w) => w.child.pid === holder)) && Date.now() < waitUntil && workers.some((w) => w.child.exitCode === null)) {
          await sleep(5);
          holder = deliverLockHolder(device.stateDir);
        }
        const held = workers.find((w) => w.child.pid === holder && w.child.exitCode === null);
        if (held) {
          held.child.kill('SIGKILL');
          lockHolderKills++;
          kills++;
        }
        const lastHookAt = Date.now();
        await fireHook(device, lastHook);
        // Storm workers still alive are killed too, at random instants after the last hook.
        for (const w of workers) {
          if (w.child.exitCode === null && random() < 0.5) {
            setTimeout(() => w.child.exitCode === null && w.child.kill('SIGKILL'), Math.floor(random() * 300));
          }
        }
        let delivered = false;
        while (Date.now() - lastHookAt < DELIVERED_WITHIN_MILLIS + 5_000) {
          if (same(sessionSums(receiver, plan.sessions), plan.expected)) {
            delivered = true;
            break;
          }
          await sleep(50);
        }
        const delay = Date.now() - lastHookAt;
        delays.push(delay);
        if (!delivered || delay > DELIVERED_WITHIN_MILLIS) {
          const tail = async (name: 'activity.log' | 'errors.log') => (await readLog(device, name)).trim().split('\n').slice(-8).join('\n    ');
          failures.push(
            `run ${run}: ${delivered ? `delivered after ${delay} ms` : 'not delivered'}\n  queue: ${(await stateView(device)).queued}, locks: ${(await stateView(device)).locks.join(',')}` +
              `\n  errors.log:\n    ${await tail('errors.log')}\n  activity.log:\n    ${await tail('activity.log')}`,
          );
        }
        for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
        await waitForNoWorkers(device, 30_000);
      }
      const sorted = [...delays].sort((a, b) => a - b);
      reliability(
        'SIGKILL storm, then silence',
        `${RUNS - failures.length} of ${RUNS} runs delivered everything within ${DELIVERED_WITHIN_MILLIS / 1000} s of the last hook; ` +
          `${kills} kills (${lockHolderKills} of the deliver lock's holder just before the last hook); ` +
          `delivery after the last hook: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`,
      );
      expect(failures).toEqual([]);
    },
    RUNS * 20_000,
  );
});
