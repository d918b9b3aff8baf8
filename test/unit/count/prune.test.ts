/**
 * Ledger pruning (src/client/count/prune.ts): retired sessions lose their entries, resumable ones
 * keep what a resume, a re-read or a fork needs, orphans expire after the horizon. Real collector,
 * real ledger on disk; every resume checks the sum of all reports against what the API billed.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CollectDeps, catchUpOpenSessions, collectSession, ensureSessionState } from '../../../src/client/count/collect';
import { dayNumber, Ledger, shardOf, toLedgerEntry } from '../../../src/client/count/ledger';
import { judgeSessions, ORPHAN_HORIZON_DAYS, pruneLedger, SHARDS_PER_RUN } from '../../../src/client/count/prune';
import { peekSessionState } from '../../../src/client/count/session-state';
import { ensurePrivateDir } from '../../../src/client/local/fsx';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import type { ReportBody } from '../../../src/protocol/wire';
import { MemoryQueue } from '../../helpers/gen-transcript';

const P = 'aaaaaaaa-0000-4000-8000-00000000000a';
const Q = 'bbbbbbbb-0000-4000-8000-00000000000b';
const F = 'ffffffff-0000-4000-8000-00000000000f';
const OPUS = 'claude-opus-5-5';
const DAY = 86_400_000;

let dataDir: string;
let paths: StatePaths;
let queue: MemoryQueue;
let deps: CollectDeps;
let clock: number;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccflux-prune-'));
  paths = statePaths(dataDir);
  await ensurePrivateDir(paths.dir);
  queue = new MemoryQueue();
  clock = Date.parse('2026-12-01T11:00:00Z');
  const log: Logger = { activity: () => {}, error: () => {}, flush: async () => {} };
  deps = { paths, now: () => new Date(clock), log, queue, userEmail: '', pluginVersion: '0.1.0' };
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

type Counters = { in: number; out: number };
const main = (sid: string) => join(dataDir, 'projects', '-home-dev-project', `${sid}.jsonl`);
function write(path: string, ...lines: object[]): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}
const stop = (sid: string, closing = false) => collectSession(deps, { sessionId: sid, transcriptPath: main(sid), closing });
const response = (sid: string, id: string, c: Counters, extra: Record<string, unknown> = {}) =>
  [0, 1].map((apiBlockIndex) => ({
    type: 'assistant',
    sessionId: sid,
    requestId: `req_${id}`,
    apiBlockIndex,
    timestamp: '2026-12-01T10:00:00.000Z',
    message: { id: `msg_${id}`, model: OPUS, role: 'assistant', usage: { input_tokens: c.in, output_tokens: c.out } },
    ...extra,
  }));
const costState = (sid: string, c: Counters) => ({
  type: 'cost-state',
  sessionId: sid,
  modelUsage: { [OPUS]: { inputTokens: c.in, outputTokens: c.out, cacheReadInputTokens: 0, cacheCreationInputTokens: 0 } },
});
const plus = (...parts: Counters[]): Counters => ({ in: parts.reduce((a, c) => a + c.in, 0), out: parts.reduce((a, c) => a + c.out, 0) });
function sum(reports: readonly ReportBody[]): Counters {
  let t = { in: 0, out: 0 };
  for (const r of reports) for (const u of Object.values(r.models)) t = plus(t, { in: u.input_tokens, out: u.output_tokens });
  return t;
}
/** Every ledger line on disk, parsed. */
function ledgerLines(): Array<{ k: string; s?: string; t?: number }> {
  if (!existsSync(paths.ledgerDir)) return [];
  const out = [];
  for (const name of readdirSync(paths.ledgerDir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(paths.ledgerDir, name), 'utf8').split('\n')) if (line !== '') out.push(JSON.parse(line));
  }
  return out;
}
const sessionsInLedger = () => new Set(ledgerLines().map((l) => l.s ?? l.k.replace(/^turns:/, '')));

const T1 = { in: 1221, out: 131 };
const T2 = { in: 1238, out: 138 };
const COMPACT = { in: 1051, out: 80 }; // billed, no assistant line: only cost-state holds it
const T3 = { in: 1300, out: 150 };
const FORK_OWN = { in: 900, out: 90 };

describe('ledger pruning', () => {
  it('drops a retired session (closed, transcript gone) and keeps a closed one whose transcript remains; a resume after pruning counts nothing twice', async () => {
    write(main(P), ...response(P, 'p1', T1), costState(P, T1));
    await stop(P);
    write(main(P), costState(P, plus(T1, COMPACT)), ...response(P, 'p2', T2), costState(P, plus(T1, COMPACT, T2)));
    await stop(P, true);
    write(main(Q), ...response(Q, 'q1', T3), costState(Q, T3));
    await stop(Q, true);
    unlinkSync(main(Q)); // Claude Code's cleanupPeriodDays removed Q's transcript
    expect(sessionsInLedger()).toEqual(new Set([P, Q]));

    const result = await pruneLedger(deps, { force: true });
    expect(result.dropped).toBeGreaterThan(0);
    expect(sessionsInLedger()).toEqual(new Set([P])); // P's groups, cs/al/bg and turns: entries all stay
    expect(existsSync(paths.sessionOffset(Q))).toBe(false);
    expect(existsSync(paths.sessionOffset(P))).toBe(true);

    // `claude --resume P`: SessionStart reopens it, the file grows, cost-state goes on cumulatively.
    await ensureSessionState(deps, { sessionId: P, transcriptPath: main(P) });
    write(main(P), ...response(P, 'p3', T3), costState(P, plus(T1, COMPACT, T2, T3)));
    await stop(P);
    await stop(P);
    expect(sum(queue.reports)).toEqual(plus(T1, COMPACT, T2, T3, T3)); // P: T1+COMPACT+T2+T3; Q: T3
    // Its state was lost and the file is read again from the start: still nothing twice.
    unlinkSync(paths.sessionOffset(P));
    await stop(P);
    expect(sum(queue.reports)).toEqual(plus(T1, COMPACT, T2, T3, T3));
  });

  it('keeps a parent whose transcript is gone while a fork that copied it lives; drops both once the fork is retired too', async () => {
    write(main(P), ...response(P, 'p1', T1), ...response(P, 'p2', T2), costState(P, plus(T1, T2)));
    await stop(P, true);
    write(main(F), ...response(F, 'p1', T1, { requestSessionId: P }), ...response(F, 'p2', T2, { requestSessionId: P }), ...response(F, 'f1', FORK_OWN));
    await stop(F);
    expect((await peekSessionState(paths, F))?.parents).toEqual([P]);
    unlinkSync(main(P));
    await pruneLedger(deps, { force: true });
    expect(sessionsInLedger()).toEqual(new Set([P, F]));
    expect(existsSync(paths.sessionOffset(P))).toBe(true);

    // The fork's file is rewritten (new inode): re-read from the start, the parent's copies still count once.
    const text = readFileSync(main(F));
    writeFileSync(`${main(F)}.new`, text);
    renameSync(`${main(F)}.new`, main(F));
    await stop(F, true);
    expect(sum(queue.reports)).toEqual(plus(T1, T2, FORK_OWN));

    unlinkSync(main(F));
    await pruneLedger(deps, { force: true });
    expect(ledgerLines()).toEqual([]);
    expect(existsSync(paths.sessionOffset(P))).toBe(false);
    expect(existsSync(paths.sessionOffset(F))).toBe(false);
  });

  it('keeps a closed session whose transcript moved to another project folder: resumed from there, it counts nothing twice', async () => {
    write(main(Q), ...response(Q, 'q1', T1), costState(Q, plus(T1, COMPACT)));
    await stop(Q, true);
    const moved = join(dataDir, 'projects', '-home-dev-renamed', `${Q}.jsonl`);
    mkdirSync(dirname(moved), { recursive: true });
    renameSync(main(Q), moved);
    await pruneLedger(deps, { force: true });
    expect(sessionsInLedger()).toEqual(new Set([Q]));
    await ensureSessionState(deps, { sessionId: Q, transcriptPath: moved });
    write(moved, ...response(Q, 'q2', T2), costState(Q, plus(T1, COMPACT, T2)));
    await collectSession(deps, { sessionId: Q, transcriptPath: moved });
    expect(sum(queue.reports)).toEqual(plus(T1, COMPACT, T2));
  });

  it('never retires an open session, one with an outbox left to apply, or a legacy state, even with its transcript gone', async () => {
    write(main(P), ...response(P, 'p1', T1));
    await stop(P); // open
    write(main(Q), ...response(Q, 'q1', T2));
    await stop(Q, true);
    unlinkSync(main(P));
    unlinkSync(main(Q));
    writeFileSync(join(paths.dir, 'outbox.pending'), `${Q}\n`);
    writeFileSync(paths.sessionOffset(F), '{"line": 3, "turn": 1, "session_start": "", "closed": true}\n'); // the Rust version's
    const { kept, retired } = await judgeSessions(paths);
    expect([...kept].sort()).toEqual([P, Q, F].sort());
    expect(retired.size).toBe(0);
  });

  it('entries of sessions with no state file: stamped when first seen, kept for the horizon, then dropped', async () => {
    const ledger = new Ledger(paths.ledgerDir, deps.log, deps.now);
    await ledger.append([toLedgerEntry('m:msg_x|r:r', 'msg_x', false, OPUS, { input_tokens: 1, output_tokens: 2, cache_read_tokens: 0, cache_write_tokens: 0 }, 'cccccccc-0000-4000-8000-00000000000c')]);
    // An older line without `t` (written before pruning existed).
    const shard = join(paths.ledgerDir, `${shardOf('msg_y')}.jsonl`);
    appendFileSync(shard, `${JSON.stringify({ k: 'm:msg_y|r:r', m: 'msg_y', sc: false, model: OPUS, i: 5, o: 5, cr: 0, cw: 0 })}\n`);
    expect(ledgerLines().find((l) => l.k === 'm:msg_x|r:r')?.t).toBe(dayNumber(new Date(clock)));

    await pruneLedger(deps, { force: true });
    const stamped = ledgerLines();
    expect(stamped.map((l) => l.k).sort()).toEqual(['m:msg_x|r:r', 'm:msg_y|r:r']);
    expect(stamped.every((l) => l.t === dayNumber(new Date(clock)))).toBe(true);

    clock += ORPHAN_HORIZON_DAYS * DAY;
    await pruneLedger(deps, { force: true });
    expect(ledgerLines()).toHaveLength(2);
    clock += 2 * DAY;
    await pruneLedger(deps, { force: true });
    expect(ledgerLines()).toEqual([]);
  });

  it('works in slices: none on the first run of a data dir, then a cycle over all shards spread over runs, again only a day later; survives a damaged progress file', async () => {
    write(main(Q), ...response(Q, 'q1', T2));
    await stop(Q, true);
    unlinkSync(main(Q));
    expect((await pruneLedger(deps)).shards).toBe(0); // the first run (a first read's) does no pruning
    expect((await pruneLedger(deps)).shards).toBe(0);
    clock += DAY;
    const runs = 256 / SHARDS_PER_RUN;
    for (let i = 0; i < runs; i++) {
      expect(existsSync(paths.sessionOffset(Q))).toBe(true); // state files go only when the cycle ends
      expect((await pruneLedger(deps)).shards).toBe(SHARDS_PER_RUN);
    }
    expect(ledgerLines()).toEqual([]);
    expect(existsSync(paths.sessionOffset(Q))).toBe(false);
    expect((await pruneLedger(deps)).shards).toBe(0); // the same day: nothing
    clock += DAY;
    expect((await pruneLedger(deps)).shards).toBe(SHARDS_PER_RUN);
    writeFileSync(join(paths.ledgerDir, 'prune.json'), '{"day": "x"');
    expect((await pruneLedger(deps)).shards).toBe(SHARDS_PER_RUN); // starts over
  });
});

describe('catch-up with a month of closed sessions', () => {
  it('reads a closed state once, not every turn, and again as soon as it changes (a resumed session left open is caught up)', async () => {
    write(main(Q), ...response(Q, 'q1', T1));
    await stop(Q, true);
    write(main(P), ...response(P, 'p1', T2));
    await stop(P);
    const file = paths.sessionOffset(Q);
    const whole = Math.floor(Date.now() / 1000) - 60; // a time a test can set back exactly
    utimesSync(file, whole, whole);
    await catchUpOpenSessions(deps, { exceptSessionId: P });
    // Rewritten in place, same size and time, as an open session whose transcript is gone: read,
    // it would be closed and rewritten; unchanged to catch-up, it is not read at all.
    const text = readFileSync(file, 'utf8');
    const open = text.replace('"closed":true', '"closed":false').replace('.jsonl"', '.json"');
    expect(open.length).toBe(text.length);
    writeFileSync(file, open);
    utimesSync(file, whole, whole);
    await catchUpOpenSessions(deps, { exceptSessionId: P });
    expect(readFileSync(file, 'utf8')).toBe(open);
    writeFileSync(file, text);

    // `--resume Q`: SessionStart reopens it (a new state file), it grows, and the terminal dies.
    await ensureSessionState(deps, { sessionId: Q, transcriptPath: main(Q) });
    write(main(Q), ...response(Q, 'q2', T3));
    expect(await catchUpOpenSessions(deps, { exceptSessionId: P })).toBe(1);
    expect(sum(queue.reports)).toEqual(plus(T1, T2, T3));
  });
});
