/**
 * Dead, slow and flapping receiver: a generated session runs through the plugin's real hooks while
 * the receiver is gone (nothing listening), hangs (accepts, never answers), answers only after
 * 30 s (it has stored the report; the device gave up at its 5 s deadline and must not double count
 * on the retry), resets connections, answers 30% of requests with 500/502/503/429, or stops mid
 * session and comes back. Once it is healthy again the device settles and the receiver must hold
 * the exact totals. Hooks return at once throughout: their wall time is reported (and only checked
 * against a generous sanity bound).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, sessionSums } from '../helpers/env';
import { type FaultPlan, type FaultProxy, flaky, passThrough, startFaultProxy } from '../helpers/fault-proxy';
import { mulberry32 } from '../helpers/gen-transcript';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { workerPids } from '../helpers/timeline';
import { alive, applyAppend, type Device, fireHook, lossFigure, makeDevice, readLog, scenario, settle, stateView } from './device';
import { FAULT_SEED, reliability, sleep } from './support';

/** Detached workers allowed at once (a hanging receiver keeps each one for its 5 s deadline). */
const MAX_LIVE_WORKERS = 4;
const CASE_TIMEOUT_MILLIS = 120_000;
/** Generous sanity bounds on the hook's wall time (the machine may be loaded): not a benchmark. */
const HOOK_MEDIAN_BOUND_MILLIS = 2_000;
const HOOK_MAX_BOUND_MILLIS = 10_000;

const started: Array<{ stop(): Promise<void> }> = [];

afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  await cleanupTempDirs();
});

interface World {
  receiver: RunningReceiver;
  proxy: FaultProxy;
  device: Device;
}

interface Case {
  name: string;
  /** The device talks to the receiver's own port (a stopped receiver is then truly not listening). */
  direct?: boolean;
  /** Called before the hook at `index` of `count` runs; switches the fault on or off. */
  beforeHook(world: World, index: number, count: number): Promise<void> | void;
  /** Makes the receiver healthy again before the device settles. */
  heal(world: World): Promise<void> | void;
}

const hang: FaultPlan = () => ({ kind: 'hang' });
const reset: FaultPlan = () => ({ kind: 'reset' });
const answerAfter30s: FaultPlan = () => ({ kind: 'forward', delayResponseMillis: 30_000 });

/** A fault for the first half of the session, healthy for the second half. */
function firstHalf(plan: FaultPlan): Case['beforeHook'] {
  return ({ proxy }, index, count) => {
    proxy.setPlan(index < count / 2 ? plan : passThrough);
    if (index === Math.ceil(count / 2)) proxy.dropConnections();
  };
}

const CASES: Case[] = [
  {
    name: 'nothing listening, then up',
    direct: true,
    async beforeHook({ receiver }, index, count) {
      if (index === 0) await receiver.kill();
      if (index === Math.ceil(count / 2)) await receiver.restart();
    },
    heal: () => undefined,
  },
  { name: 'accepts, never answers, then healthy', beforeHook: firstHalf(hang), heal: ({ proxy }) => proxy.dropConnections() },
  {
    name: 'answers after 30 s (stored, answer lost), then healthy',
    beforeHook: firstHalf(answerAfter30s),
    heal: ({ proxy }) => proxy.dropConnections(),
  },
  { name: 'resets connections, then healthy', beforeHook: firstHalf(reset), heal: () => undefined },
  {
    name: '30% of requests 500/502/503/429 (and 5% reset after storing), throughout',
    beforeHook: ({ proxy }, index) => {
      if (index === 0) {
        const errors = flaky({ errorRate: 0.3 });
        proxy.setPlan((req, random) => (random() < 0.05 ? { kind: 'forward-then-reset' } : errors(req, random)));
      }
    },
    heal: ({ proxy }) => proxy.setPlan(passThrough),
  },
  {
    name: 'up, stops mid-session, returns later',
    direct: true,
    async beforeHook({ receiver }, index, count) {
      if (index === Math.floor(count / 3)) await receiver.kill();
      if (index === Math.floor((2 * count) / 3)) await receiver.restart();
    },
    heal: async ({ receiver }) => {
      await receiver.restart();
    },
  },
];

describe('dead, slow and flapping receiver', () => {
  for (const [n, c] of CASES.entries()) {
    it(
      c.name,
      async () => {
        const receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
        started.push(receiver);
        const token = await receiver.addUser('alice@example.org');
        const proxy = await startFaultProxy({ targetPort: receiver.port, seed: FAULT_SEED + 40 + n });
        started.push(proxy);
        const device = await makeDevice({ endpoint: c.direct ? receiver.url : proxy.url, token });
        const world: World = { receiver, proxy, device };
        const s = scenario(FAULT_SEED * 1000 + n * 10, 1, { resumeProbability: 0 }, mulberry32(FAULT_SEED + n));
        const hookCount = s.events.filter((e) => 'hook' in e).length;

        const walls: number[] = [];
        let hookIndex = 0;
        let peakQueue = 0;
        const startedAt = performance.now();
        for (const event of s.events) {
          if ('append' in event) {
            await applyAppend(device, event);
            continue;
          }
          if (!('hook' in event)) continue;
          await c.beforeHook(world, hookIndex++, hookCount);
          while (workerPids(device.dataDir).filter(alive).length >= MAX_LIVE_WORKERS) await sleep(20);
          walls.push(await fireHook(device, event));
          peakQueue = Math.max(peakQueue, (await stateView(device)).queued);
        }
        const faultMillis = performance.now() - startedAt;
        await c.heal(world);
        await settle(device, s.sessions, { timeoutMillis: 90_000 });

        const got = sessionSums(receiver, s.sessions);
        const sorted = [...walls].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
        const p95 = sorted[Math.floor(sorted.length * 0.95)] ?? 0;
        const max = sorted[sorted.length - 1] ?? 0;
        const errors = await readLog(device, 'errors.log');
        const activity = await readLog(device, 'activity.log');
        reliability(
          `receiver ${c.name}`,
          `${walls.length} hooks in ${Math.round(faultMillis / 1000)} s, hook wall median ${Math.round(median)} ms / p95 ${Math.round(p95)} ms / max ${Math.round(max)} ms; queue peaked at ${peakQueue}; proxy saw ${proxy.counts().total ?? 0} requests; ${lossFigure(s.expected, got)}`,
        );

        expect(got).toEqual(s.expected);
        expect(median).toBeLessThan(HOOK_MEDIAN_BOUND_MILLIS);
        expect(max).toBeLessThan(HOOK_MAX_BOUND_MILLIS);
        expect(`${errors}\n${activity}`).not.toContain(token);
        expect((await stateView(device)).queued).toBe(0);
      },
      CASE_TIMEOUT_MILLIS,
    );
  }
});
