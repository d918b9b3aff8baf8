/**
 * Many writers: 8 generated sessions of 40 turns share one data dir, as 8 Claude Code windows do.
 * Each session's timeline runs in its own loop through the plugin's real wrapper (hooks return at
 * once; their detached workers overlap), and the hooks of one turn that arrive together (Stop and
 * the SubagentStops of background agents) are fired at the same moment. While it runs, a sampler
 * reads every state file over and over: the queue, each session's offset file, the signing key,
 * the registration marker and the token cache must always parse (writes are atomic renames).
 * Once everything is quiet, the receiver must hold the exact totals.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateReport } from '../../src/protocol/wire';
import { cleanupTempDirs, median, sessionSums } from '../helpers/env';
import { mulberry32, type TimelineEvent } from '../helpers/gen-transcript';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { waitForQuiet, workerPids } from '../helpers/timeline';
import { alive, applyAppend, type Device, fireHook, lossFigure, makeDevice, readLog, scenario, settle } from './device';
import { bump, FAULT_SEED, formatCounts, reliability, sleep } from './support';

const SESSIONS = 8;
const TURNS = 40;
/** Sessions generated with every trap on (the others are plain: one Stop per turn). */
const TRAP_SESSIONS = 2;
/** Live workers of the data dir beyond which a session loop waits (2 cores: a fork bomb helps nobody). */
const MAX_LIVE_WORKERS = 10;
/** A window pauses 0..this between turns. */
const TURN_PAUSE_MILLIS = 40;
const SAMPLE_INTERVAL_MILLIS = 25;
const SUITE_TIMEOUT_MILLIS = 300_000;

let receiver: RunningReceiver;
let token: string;

beforeAll(async () => {
  // 8 windows report far more than 30 requests a minute: the default limit would only slow the test.
  receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  token = await receiver.addUser('alice@example.org');
});

afterAll(async () => {
  await receiver?.stop();
  await cleanupTempDirs();
});

type Hook = Extract<TimelineEvent, { hook: unknown }>;

/** Every state file that exists must parse as what it is. Returns the problems found. */
async function checkStateFiles(device: Device, counts: Record<string, number>): Promise<string[]> {
  const problems: string[] = [];
  let names: string[];
  try {
    names = await readdir(device.stateDir);
  } catch {
    return problems;
  }
  const read = async (name: string): Promise<Buffer | null> => {
    try {
      return await readFile(join(device.stateDir, name));
    } catch {
      return null; // renamed away meanwhile
    }
  };
  for (const name of names) {
    const bytes = await read(name);
    if (bytes === null) continue;
    const text = bytes.toString('utf8');
    if (name === 'pending_reports.jsonl') {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        bump(counts, 'queue lines');
        try {
          if (!validateReport(JSON.parse(line)).ok) problems.push(`queue line not a report: ${line.slice(0, 80)}`);
        } catch {
          problems.push(`queue line not JSON: ${line.slice(0, 80)}`);
        }
      }
      if (text.length > 0 && !text.endsWith('\n')) problems.push('queue does not end with a newline');
    } else if (name.endsWith('.offset')) {
      bump(counts, 'offset files');
      try {
        const state = JSON.parse(text) as { version?: unknown; nextTurnIndex?: unknown; files?: unknown };
        if (state.version !== 1 || typeof state.nextTurnIndex !== 'number' || typeof state.files !== 'object') problems.push(`${name}: wrong shape`);
      } catch {
        problems.push(`${name}: not JSON`);
      }
    } else if (name === 'signing_key') {
      bump(counts, 'key reads');
      if (bytes.length !== 32) problems.push(`signing_key has ${bytes.length} bytes`);
    } else if (name === 'key_registered') {
      bump(counts, 'registration reads');
      if (!/^[A-Za-z0-9+/]{43}=\s*$/.test(text)) problems.push('key_registered is not a base64 key');
    } else if (name === 'token_cache.json') {
      bump(counts, 'token cache reads');
      try {
        const cache = JSON.parse(text) as { access_token?: unknown; expires_at?: unknown };
        if (typeof cache.access_token !== 'string' || typeof cache.expires_at !== 'string') problems.push('token cache: wrong shape');
      } catch {
        problems.push('token cache: not JSON');
      }
    }
  }
  return problems;
}

describe('many writers', () => {
  it(
    `${SESSIONS} sessions x ${TURNS} turns in one data dir, hooks overlapping: state stays valid, totals exact`,
    async () => {
      const random = mulberry32(FAULT_SEED + 3);
      const device = await makeDevice({ endpoint: receiver.url, token });
      // Two windows with every trap (subagents, background agents finishing after Stop, late lines),
      // six plain ones: the same overlap for a third of the processes.
      const s = scenario(FAULT_SEED * 100, SESSIONS, (i) => ({ turns: TURNS, resumeProbability: 0, traps: i < TRAP_SESSIONS }), random);
      const started = performance.now();

      // The sampler: reads every state file as fast as it can while the windows work.
      let sampling = true;
      const sampleCounts: Record<string, number> = {};
      const problems: string[] = [];
      let samples = 0;
      const sampler = (async () => {
        while (sampling) {
          problems.push(...(await checkStateFiles(device, sampleCounts)));
          samples++;
          await sleep(SAMPLE_INTERVAL_MILLIS);
        }
      })();

      const wallMillis: number[] = [];
      const hookCounts: Record<string, number> = {};
      let maxLive = 0;
      const windowLoop = async (timeline: TimelineEvent[]) => {
        let burst: Hook[] = [];
        const flush = async () => {
          // Claude Code fires these together: Stop and the SubagentStops that finish with it.
          const fired = burst;
          burst = [];
          for (;;) {
            const live = workerPids(device.dataDir).filter(alive).length;
            maxLive = Math.max(maxLive, live);
            if (live < MAX_LIVE_WORKERS) break;
            await sleep(20);
          }
          const walls = await Promise.all(fired.map((h) => fireHook(device, h)));
          wallMillis.push(...walls);
          for (const h of fired) bump(hookCounts, h.hook.event);
          await sleep(Math.floor(random() * TURN_PAUSE_MILLIS));
        };
        for (const event of timeline) {
          if ('append' in event) {
            if (burst.length > 0) await flush();
            await applyAppend(device, event);
          } else if ('hook' in event) {
            burst.push(event);
          }
        }
        if (burst.length > 0) await flush();
      };
      await Promise.all(s.perSession.map((timeline) => windowLoop(timeline)));
      const firedMillis = performance.now() - started;

      await waitForQuiet(device.dataDir, { timeoutMillis: 120_000 }).catch(() => undefined);
      await settle(device, s.sessions, { timeoutMillis: 120_000 });
      sampling = false;
      await sampler;
      problems.push(...(await checkStateFiles(device, sampleCounts)));

      const got = sessionSums(receiver, s.sessions);
      const errors = await readLog(device, 'errors.log');
      const lockTimeouts = (errors.match(/collection failed/g) ?? []).length;
      const sortedWalls = [...wallMillis].sort((a, b) => a - b);
      const p95 = sortedWalls[Math.floor(sortedWalls.length * 0.95)] ?? 0;
      const hooks = wallMillis.length;

      reliability(
        'many writers',
        `${SESSIONS} sessions x ${TURNS} turns (${TRAP_SESSIONS} with subagents), ${hooks} hooks (${formatCounts(hookCounts)}) in ${Math.round(firedMillis / 1000)} s, up to ${maxLive} workers at once; ${lossFigure(s.expected, got)}`,
      );
      reliability(
        'many writers',
        `state files read ${samples} times while written (${formatCounts(sampleCounts)}): invalid = ${problems.length}; hook wall median ${Math.round(median(wallMillis))} ms, p95 ${Math.round(p95)} ms, max ${Math.round(sortedWalls[sortedWalls.length - 1] ?? 0)} ms; collections deferred by a busy lock = ${lockTimeouts}`,
      );

      expect(problems.slice(0, 10)).toEqual([]);
      expect(got).toEqual(s.expected);
      // Generous sanity bound only: the wrapper hands off and returns.
      expect(sortedWalls[sortedWalls.length - 1] ?? 0).toBeLessThan(10_000);
      expect(hookCounts.SubagentStop ?? 0).toBeGreaterThan(0);
    },
    SUITE_TIMEOUT_MILLIS,
  );
});

