import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CollectDeps,
  type CollectRequest,
  catchUpOpenSessions,
  collectSession,
  ensureSessionState,
  IDLE_CLOSE_MILLIS,
  PENDING_OUTBOX_FILE,
} from '../../../src/client/count/collect';
import { ensurePrivateDir } from '../../../src/client/local/fsx';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import { readSessionState, recoveredTurnIndex } from '../../../src/client/count/session-state';
import { type ModelUsage, type ReportBody, validateReport } from '../../../src/protocol/wire';
import { generateConcurrentSessions, generateSession, MemoryQueue, mulberry32, readFixture, replayInProcess, sumReports } from '../../helpers/gen-transcript';

const u = (i: number, o: number, cr = 0, cw = 0): ModelUsage => ({ input_tokens: i, output_tokens: o, cache_read_tokens: cr, cache_write_tokens: cw });
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let dataDir: string;
let paths: StatePaths;
let queue: MemoryQueue;
let log: ReturnType<typeof capture>;
let clock: Date;
let deps: CollectDeps;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccflux-collect-'));
  paths = statePaths(dataDir);
  await ensurePrivateDir(paths.dir);
  queue = new MemoryQueue();
  log = capture();
  clock = new Date('2026-11-20T03:00:00Z');
  deps = { paths, now: () => clock, log, queue, userEmail: 'alice@example.org', pluginVersion: '0.1.0' };
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const main = (sid: string) => join(dataDir, 'projects', '-home-alice-repo', `${sid}.jsonl`);
const sub = (sid: string, name: string) => join(dataDir, 'projects', '-home-alice-repo', sid, 'subagents', name);

function write(path: string, ...lines: string[]): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, lines.map((l) => `${l}\n`).join(''));
}

let tick = 0;
function asst(o: {
  id?: string | null;
  req?: string | null;
  model?: string;
  usage?: Record<string, unknown>;
  sc?: boolean;
  sid?: string;
  ts?: string;
  uuid?: string;
}): string {
  tick++;
  const entry: Record<string, unknown> = {
    type: 'assistant',
    uuid: o.uuid ?? `uuid-${tick}`,
    isSidechain: o.sc ?? false,
    sessionId: o.sid ?? A,
    timestamp: o.ts ?? new Date(Date.UTC(2026, 10, 20, 1, 0, tick)).toISOString(),
    message: { model: o.model ?? 'claude-sonnet-4-6', role: 'assistant', usage: o.usage ?? { input_tokens: 1, output_tokens: 10 } },
  };
  if (o.req !== null) entry.requestId = o.req ?? `req_${tick}`;
  if (o.id !== null) (entry.message as Record<string, unknown>).id = o.id ?? `msg_${tick}`;
  return JSON.stringify(entry);
}
const user = (sid = A, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'user', sessionId: sid, timestamp: '2026-11-20T00:59:59.500Z', message: { role: 'user', content: '東京 naïve' }, ...extra });

const stop = (sid: string, extra: Partial<CollectRequest> = {}) => collectSession(deps, { sessionId: sid, transcriptPath: main(sid), ...extra });
const total = () => sumReports(queue.reports);

describe('fixture replay (in-process): the sum of all reports equals what the API billed', () => {
  for (const scenario of ['basic', 'subagents', 'partial', 'advisor', 'resume']) {
    it(scenario, async () => {
      const { timeline, expected } = readFixture(join(FIXTURES, scenario));
      const { queue: q } = await replayInProcess(timeline, { dataDir, log });
      expect(sumReports(q.reports)).toEqual(expected.models);
      for (const r of q.reports) {
        expect(validateReport(JSON.parse(JSON.stringify(r))).ok).toBe(true);
        expect(r.user_email).toBe('alice@example.org');
        expect(Object.keys(r.models).length).toBeGreaterThan(0);
      }
      // turn_index counts each session's reports from 0, without gaps
      const bySession = new Map<string, number[]>();
      for (const r of q.reports) bySession.set(r.session_id, [...(bySession.get(r.session_id) ?? []), r.turn_index]);
      for (const turns of bySession.values()) expect(turns).toEqual(turns.map((_, i) => i));
      expect(q.duplicates).toBe(0);
    });
  }
});

describe('property: random sessions, random hook timing, exact totals', () => {
  const runSeed = Number(process.env.CCFLUX_SEED ?? Date.now() % 1_000_000);
  const seeds = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, runSeed, runSeed + 1, runSeed + 2];
  for (const seed of seeds) {
    it(`seed ${seed}`, async () => {
      const { timeline, expected } = generateSession({ seed });
      const rnd = mulberry32(seed ^ 0x5eed);
      // Drop some hooks (a Stop that never fired, a worker that died): SessionEnd always runs.
      const { queue: q } = await replayInProcess(timeline, {
        dataDir,
        catchUp: rnd() < 0.5,
        beforeHook: (event) => event === 'SessionEnd' || rnd() > 0.3,
      });
      expect(sumReports(q.reports), `CCFLUX_SEED=${seed}`).toEqual(expected.models);
    });
  }
});

describe('property: concurrent sessions in one data dir', () => {
  for (const seed of [3, 7, Number(process.env.CCFLUX_SEED ?? Date.now() % 1_000_000) + 7]) {
    it(`seed ${seed}`, async () => {
      const { timeline, expected } = generateConcurrentSessions({ seed, count: 3 });
      const rnd = mulberry32(seed);
      const { queue: q } = await replayInProcess(timeline, { dataDir, beforeHook: (event) => event === 'SessionEnd' || rnd() > 0.2 });
      expect(sumReports(q.reports), `CCFLUX_SEED=${seed}`).toEqual(expected.models);
    });
  }
});

describe('counting rules end to end', () => {
  it('one message, many lines, placeholders, then a late final line: reported once, the increase as a difference', async () => {
    const usage = (out: number) => ({ input_tokens: 52, output_tokens: out, cache_read_input_tokens: 38538 });
    write(main(A), user(), asst({ id: 'msg_1', req: 'req_1', usage: usage(1) }), asst({ id: 'msg_1', req: 'req_1', usage: usage(5) }));
    const first = await stop(A);
    expect(first.report?.models).toEqual({ 'claude-sonnet-4-6': u(52, 5, 38538, 0) });
    expect(first.report?.turn_index).toBe(0);
    write(main(A), asst({ id: 'msg_1', req: 'req_1', usage: usage(2273) }), asst({ id: 'msg_1', req: 'req_1', usage: usage(3) }));
    const second = await stop(A);
    expect(second.report?.models).toEqual({ 'claude-sonnet-4-6': u(0, 2268, 0, 0) });
    expect(second.report?.turn_index).toBe(1);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(52, 2273, 38538, 0) });
  });

  it('nothing new: no report, and the state file is not rewritten', async () => {
    write(main(A), asst({}));
    await stop(A);
    const before = readFileSync(paths.sessionOffset(A), 'utf8');
    clock = new Date(clock.getTime() + 60_000);
    expect((await stop(A)).report).toBeNull();
    expect(readFileSync(paths.sessionOffset(A), 'utf8')).toBe(before);
  });

  it('a half-written last line is counted once it is complete', async () => {
    const line = asst({ id: 'msg_h', usage: { input_tokens: 3, output_tokens: 30, cache_read_input_tokens: 5 } });
    write(main(A), user());
    appendFileSync(main(A), line.slice(0, 40));
    expect((await stop(A)).report).toBeNull();
    appendFileSync(main(A), `${line.slice(40)}\n`);
    expect((await stop(A)).report?.models).toEqual({ 'claude-sonnet-4-6': u(3, 30, 5, 0) });
  });

  it('no double count across files: the same group in the main and a subagent file', async () => {
    const line = asst({ id: 'msg_x', req: 'req_x', usage: { input_tokens: 7, output_tokens: 70 } });
    write(main(A), line);
    write(sub(A, 'agent-1.jsonl'), line);
    await stop(A);
    write(sub(A, 'agent-2.jsonl'), line);
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(7, 70) });
  });

  it('subagent files (nested workflows too) count; journal.jsonl and *.meta.json do not', async () => {
    write(main(A), asst({ usage: { input_tokens: 1, output_tokens: 1 } }));
    write(sub(A, 'agent-a.jsonl'), asst({ sc: true, usage: { input_tokens: 10, output_tokens: 10 } }));
    write(sub(A, join('workflows', 'wf_1', 'agent-b.jsonl')), asst({ sc: true, usage: { input_tokens: 100, output_tokens: 100 } }));
    write(sub(A, join('workflows', 'wf_1', 'journal.jsonl')), asst({ sc: true, usage: { input_tokens: 1000, output_tokens: 0 } }));
    write(sub(A, 'agent-a.meta.json'), asst({ sc: true, usage: { input_tokens: 1000, output_tokens: 0 } }));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(111, 111) });
  });

  it("the parent's toolUseResult.usage rollup is never added", async () => {
    write(sub(A, 'agent-a.jsonl'), asst({ sc: true, usage: { input_tokens: 10, output_tokens: 10 } }));
    write(main(A), user(A, { toolUseResult: { totalTokens: 20, usage: { input_tokens: 10, output_tokens: 10 } } }));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(10, 10) });
  });

  it('SubagentStop: agent_transcript_path is read (even outside subagents/, inside projects/) and tracked afterwards', async () => {
    const agent = join(dataDir, 'projects', 'elsewhere', 'agent-z.jsonl');
    write(agent, asst({ sc: true, id: 'msg_z1', usage: { input_tokens: 5, output_tokens: 5 } }));
    await stop(A, { agentTranscriptPath: agent });
    write(agent, asst({ sc: true, id: 'msg_z2', usage: { input_tokens: 6, output_tokens: 6 } }));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(11, 11) });
  });

  it('legacy sibling agent-*.jsonl files count when their lines carry our sessionId', async () => {
    write(main(A), user());
    write(join(dirname(main(A)), 'agent-old1.jsonl'), asst({ sc: true, sid: A, usage: { input_tokens: 3, output_tokens: 3 } }));
    write(join(dirname(main(A)), 'agent-old2.jsonl'), asst({ sc: true, sid: B, usage: { input_tokens: 900, output_tokens: 900 } }));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(3, 3) });
  });

  it('resume: a new session file repeating the old messages reports only what is new', async () => {
    const old = [user(A), asst({ id: 'msg_o1', req: 'req_o1', usage: { input_tokens: 1, output_tokens: 100 } }), asst({ id: 'msg_o2', req: null, sid: A, usage: { input_tokens: 2, output_tokens: 200 } }), asst({ id: null, uuid: 'no-id-1', usage: { input_tokens: 3, output_tokens: 300 } })];
    write(main(A), ...old);
    await stop(A, { closing: true });
    write(main(B), ...old, asst({ sid: B, id: 'msg_n1', usage: { input_tokens: 4, output_tokens: 400 } }));
    const r = await stop(B);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(4, 400) });
    expect(r.report?.session_id).toBe(B);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(10, 1000) });
  });

  it('/btw replay read in the same run as its parent line: counted once', async () => {
    const usage = { input_tokens: 7, output_tokens: 3238, cache_read_input_tokens: 21456, cache_creation_input_tokens: 4268 };
    const parent = asst({ id: 'msg_p', req: 'req_p', model: 'claude-opus-4-7', usage });
    write(main(A), parent);
    write(sub(A, 'agent-btw.jsonl'), asst({ id: 'msg_p', req: 'req_btw', sc: true, model: 'claude-opus-4-7', usage }), asst({ id: 'msg_own', sc: true, usage: { input_tokens: 1, output_tokens: 1 } }));
    await stop(A);
    expect(total()).toEqual({ 'claude-opus-4-7': u(7, 3238, 21456, 4268), 'claude-sonnet-4-6': u(1, 1) });
  });

  it('/btw replay read before its parent line reached the main file: still counted once', async () => {
    const usage = { input_tokens: 7, output_tokens: 3238, cache_read_input_tokens: 21456 };
    write(sub(A, 'agent-btw.jsonl'), asst({ id: 'msg_p', req: 'req_btw', sc: true, usage }));
    await stop(A, { agentTranscriptPath: sub(A, 'agent-btw.jsonl') });
    write(main(A), asst({ id: 'msg_p', req: 'req_p', usage }));
    await stop(A);
    write(sub(A, 'agent-btw.jsonl'), asst({ id: 'msg_p', req: 'req_btw2', sc: true, usage }));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(7, 3238, 21456, 0) });
  });

  it('cache writes once: flat only, flat + breakdown, flat 0 with the breakdown only', async () => {
    write(
      main(A),
      asst({ usage: { input_tokens: 0, output_tokens: 1, cache_creation_input_tokens: 100 } }),
      asst({ usage: { input_tokens: 0, output_tokens: 1, cache_creation_input_tokens: 200, cache_creation: { ephemeral_5m_input_tokens: 150, ephemeral_1h_input_tokens: 50 } } }),
      asst({ usage: { input_tokens: 0, output_tokens: 1, cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 4000, ephemeral_1h_input_tokens: 508 } } }),
    );
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(0, 3, 0, 4808) });
  });

  it('advisor iterations count under their own model; lines without requestId group by message id + sessionId', async () => {
    const usage = {
      input_tokens: 6,
      output_tokens: 1847,
      iterations: [
        { type: 'message', input_tokens: 6, output_tokens: 1847 },
        { type: 'advisor_message', model: 'claude-opus-4-7', input_tokens: 98130, output_tokens: 4111 },
      ],
    };
    write(main(A), asst({ id: 'msg_adv', req: null, model: 'claude-haiku-4-5', usage }), asst({ id: 'msg_adv', req: null, model: 'claude-haiku-4-5', usage }));
    await stop(A);
    expect(total()).toEqual({ 'claude-haiku-4-5': u(6, 1847), 'claude-opus-4-7': u(98130, 4111) });
  });

  it('<synthetic> lines are not a model; non-zero synthetic usage is logged', async () => {
    write(main(A), asst({ model: '<synthetic>', req: null, usage: { input_tokens: 0, output_tokens: 0 } }), asst({ model: '<synthetic>', req: null, usage: { input_tokens: 5, output_tokens: 0 } }), asst({}));
    await stop(A);
    expect(Object.keys(total())).toEqual(['claude-sonnet-4-6']);
    expect(log.lines.some((l) => l.startsWith('error') && l.includes('<synthetic>'))).toBe(true);
  });

  it('malformed lines are skipped and counted in a log line; the rest still counts', async () => {
    write(main(A), '{"type":"assistant","message":{"usage":{"input_tokens":5', 'not json at all', '', asst({}));
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(1, 10) });
    expect(log.lines.some((l) => l.includes('1 malformed'))).toBe(true);
  });

  it('timestamps: session_start_utc = first timestamp of the main transcript, timestamp_utc = last counted line, whole seconds', async () => {
    write(main(A), user(), asst({ ts: '2026-11-20T01:09:20.960Z' }), asst({ ts: '2026-11-20T01:09:34.219Z' }), user(A, { timestamp: '2026-11-20T05:00:00.000Z' }));
    const r = await stop(A);
    expect(r.report?.session_start_utc).toBe('2026-11-20T00:59:59Z');
    expect(r.report?.timestamp_utc).toBe('2026-11-20T01:09:34Z');
    write(main(A), asst({ ts: 'garbage' }));
    const r2 = await stop(A);
    expect(r2.report?.timestamp_utc).toBe('2026-11-20T03:00:00Z'); // no valid timestamp: now
    expect(r2.report?.session_start_utc).toBe('2026-11-20T00:59:59Z');
  });

  it("a response's content blocks (same ids, model, usage; each its own uuid and timestamp): counted once, at its last block's time", async () => {
    const usage = { input_tokens: 3, output_tokens: 40, cache_read_input_tokens: 900 };
    const block = (ts: string, uuid: string) => asst({ id: 'msg_b', req: 'req_b', usage, ts, uuid });
    write(main(A), user(), block('2026-11-20T01:00:01.000Z', 'b0'), block('2026-11-20T01:00:07.000Z', 'b1'), block('2026-11-20T01:00:05.000Z', 'b2'), block('2026-11-20T01:00:05.000Z', 'b3'));
    const r = await stop(A);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(3, 40, 900, 0) });
    expect(r.report?.timestamp_utc).toBe('2026-11-20T01:00:07Z');
    // Then its block with the final usage, and a repeat of it.
    write(main(A), asst({ id: 'msg_b', req: 'req_b', usage: { ...usage, output_tokens: 55 }, ts: '2026-11-20T01:00:09.000Z' }), asst({ id: 'msg_b', req: 'req_b', usage: { ...usage, output_tokens: 55 }, ts: '2026-11-20T01:00:09.000Z' }));
    const r2 = await stop(A);
    expect(r2.report?.models).toEqual({ 'claude-sonnet-4-6': u(0, 15, 0, 0) });
    expect(r2.report?.timestamp_utc).toBe('2026-11-20T01:00:09Z');
  });

  it("a first read of a long main transcript makes the ledger's shard files while it reads; a short one's does not", async () => {
    // ~9 MB of prompts and tool results around 300 responses of two blocks each.
    const padding = user(A, { message: { role: 'user', content: 'x'.repeat(30_000) } });
    const lines: string[] = [user()];
    for (let n = 0; n < 300; n++) lines.push(padding, asst({ id: `msg_long${n}`, req: `req_long${n}`, uuid: `a${n}` }), asst({ id: `msg_long${n}`, req: `req_long${n}`, uuid: `b${n}` }));
    write(main(A), ...lines);
    await stop(A);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(300, 3000) });
    const shards = readdirSync(paths.ledgerDir).filter((f) => /^[0-9a-f]{2}\.jsonl$/.test(f));
    expect(shards).toHaveLength(256);
    write(main(B), user(B), asst({ sid: B }));
    rmSync(paths.ledgerDir, { recursive: true });
    await stop(B);
    expect(readdirSync(paths.ledgerDir).filter((f) => /^[0-9a-f]{2}\.jsonl$/.test(f)).length).toBeLessThan(8); // its message, its turn mark, its cost-state keys
  });

  it('more than 20 models in one turn: split into consecutive turns, nothing lost', async () => {
    write(main(A), ...Array.from({ length: 25 }, (_, i) => asst({ model: `model-${String(i).padStart(2, '0')}`, usage: { input_tokens: 1, output_tokens: 1 } })));
    const r = await stop(A);
    expect(r.reports.map((x) => x.turn_index)).toEqual([0, 1]);
    expect(Object.keys(total())).toHaveLength(25);
    write(main(A), asst({}));
    expect((await stop(A)).report?.turn_index).toBe(2);
  });

  it('a rewritten (shorter, compacted) transcript is re-read from 0 without reporting anything twice', async () => {
    const kept = asst({ id: 'msg_k', usage: { input_tokens: 1, output_tokens: 100 } });
    write(main(A), user(), asst({ id: 'msg_gone', usage: { input_tokens: 2, output_tokens: 200 } }), kept);
    await stop(A);
    writeFileSync(main(A), `${kept}\n${asst({ id: 'msg_new', usage: { input_tokens: 4, output_tokens: 400 } })}\n`);
    const r = await stop(A);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(4, 400) });
  });
});

describe('state problems never double count', () => {
  it('a corrupt state file: logged, files re-read from 0, only deltas reported, turn numbering jumps clear of used turns', async () => {
    write(main(A), asst({ id: 'msg_1', usage: { input_tokens: 1, output_tokens: 10 } }));
    await stop(A);
    writeFileSync(paths.sessionOffset(A), '{"version":1,"sessionId":');
    write(main(A), asst({ id: 'msg_2', usage: { input_tokens: 2, output_tokens: 20 } }));
    const r = await stop(A);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(2, 20) });
    expect(r.report?.turn_index).toBe(recoveredTurnIndex(clock));
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(3, 30) });
    expect(log.lines.some((l) => l.startsWith('error') && l.includes('state file unreadable'))).toBe(true);
  });

  it('a deleted state file (even recreated by SessionStart): only deltas, and no turn index reused', async () => {
    write(main(A), asst({ id: 'msg_1' }));
    await stop(A);
    rmSync(paths.sessionOffset(A));
    await ensureSessionState(deps, { sessionId: A, transcriptPath: main(A) });
    write(main(A), asst({ id: 'msg_2' }));
    const r = await stop(A);
    expect(r.report?.turn_index).toBe(recoveredTurnIndex(clock));
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(2, 20) });
    write(main(A), asst({ id: 'msg_3' }));
    expect((await stop(A)).report?.turn_index).toBe(recoveredTurnIndex(clock) + 1);
  });

  it('the state corrupted twice while the session is ahead of the clock: no turn index is ever reused', async () => {
    write(main(A), asst({ id: 'msg_1' }));
    await stop(A);
    writeFileSync(paths.sessionOffset(A), 'garbage');
    const used: number[] = [];
    // Five reports within one second after the first recovery: the session runs ahead of the
    // seconds-based recovery numbering.
    for (let i = 2; i <= 6; i++) {
      write(main(A), asst({ id: `msg_${i}` }));
      used.push((await stop(A)).report?.turn_index as number);
    }
    clock = new Date(clock.getTime() + 1000);
    writeFileSync(paths.sessionOffset(A), 'garbage again');
    write(main(A), asst({ id: 'msg_7' }));
    const after = (await stop(A)).report?.turn_index as number;
    expect(after).toBeGreaterThan(Math.max(...used));
    expect(queue.duplicates).toBe(0);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(7, 70) });
  });

  it('a new session whose files only repeat other sessions keeps turn numbering from 0', async () => {
    const line = asst({ id: 'msg_1' });
    write(main(A), line);
    await stop(A);
    write(main(B), line, asst({ sid: B, id: 'msg_2' }));
    expect((await stop(B)).report?.turn_index).toBe(0);
  });

  it('a legacy Rust offset file: what it had read is not reported again; turns continue past its line count', async () => {
    const first = asst({ id: 'msg_1', usage: { input_tokens: 1, output_tokens: 10 } });
    write(main(A), user(), first, asst({ id: 'msg_2', usage: { input_tokens: 2, output_tokens: 20 } }));
    writeFileSync(paths.sessionOffset(A), String(Buffer.byteLength(`${user()}\n${first}\n`)));
    const r = await stop(A);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(2, 20) });
    expect(r.report?.turn_index).toBe(2);
  });
});

describe('crash consistency (commit protocol)', () => {
  it('a crash after the commit, before the outbox reached queue + ledger: the next run finishes it, each (session, turn) queued once', async () => {
    const lines = [user(A), asst({ id: 'msg_1', req: 'req_1', usage: { input_tokens: 5, output_tokens: 50 } })];
    write(main(A), ...lines);
    queue.failAfterAppend = 1; // stored in the queue, then the process "dies" before the ledger append
    await expect(stop(A)).rejects.toThrow('simulated crash');
    expect(existsSync(join(paths.dir, PENDING_OUTBOX_FILE))).toBe(true);
    expect((await readSessionState(paths, A, { log, now: () => clock })).state.outbox).toHaveLength(1);
    queue.failAfterAppend = null;

    // The next run is for another session that resumed A (copies its lines): it must see A's ledger entries.
    write(main(B), ...lines, asst({ sid: B, id: 'msg_2', usage: { input_tokens: 1, output_tokens: 1 } }));
    const r = await stop(B);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(1, 1) });
    expect(existsSync(join(paths.dir, PENDING_OUTBOX_FILE))).toBe(false);
    expect((await readSessionState(paths, A, { log, now: () => clock })).state.outbox).toEqual([]);
    expect(queue.duplicates).toBe(1);
    expect(queue.reports.map((x) => [x.session_id, x.turn_index])).toEqual([
      [A, 0],
      [B, 0],
    ]);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(6, 51) });

    // A's own next run reports only what is new.
    write(main(A), asst({ id: 'msg_3', usage: { input_tokens: 1, output_tokens: 1 } }));
    expect((await stop(A)).report?.turn_index).toBe(1);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(7, 52) });
  });

  it('a crash after committing a long outbox (its ledger as lines after the state): the next run applies it from the file', async () => {
    const lines = [user(A)];
    for (let n = 0; n < 300; n++) lines.push(asst({ id: `msg_${n}`, req: `req_${n}`, usage: { input_tokens: 1, output_tokens: 10 } }));
    write(main(A), ...lines);
    queue.failAfterAppend = 1;
    await expect(stop(A)).rejects.toThrow('simulated crash');
    queue.failAfterAppend = null;
    const text = readFileSync(paths.sessionOffset(A), 'utf8');
    const committed = (await readSessionState(paths, A, { log, now: () => clock })).state.outbox;
    const entries = committed.flatMap((item) => item.ledger);
    expect(entries.length).toBeGreaterThanOrEqual(300);
    // The state's line, then one line per entry.
    expect(text.split('\n').filter(Boolean)).toHaveLength(1 + entries.length);

    // B resumed A: its copies of A's 300 lines are replays once A's commit is finished.
    write(main(B), ...lines, asst({ sid: B, id: 'msg_new', usage: { input_tokens: 2, output_tokens: 2 } }));
    const r = await stop(B);
    expect(r.report?.models).toEqual({ 'claude-sonnet-4-6': u(2, 2) });
    expect((await readSessionState(paths, A, { log, now: () => clock })).state.outbox).toEqual([]);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(302, 3002) });
  });

  it('a crash before the commit: nothing was committed, the same bytes are read again', async () => {
    write(main(A), asst({ id: 'msg_1', usage: { input_tokens: 5, output_tokens: 50 } }));
    mkdirSync(join(paths.dir, PENDING_OUTBOX_FILE)); // the marker cannot be written: the run fails before its commit
    await expect(stop(A)).rejects.toThrow();
    expect(queue.reports).toEqual([]);
    rmSync(join(paths.dir, PENDING_OUTBOX_FILE), { recursive: true });
    const r = await stop(A);
    expect(r.report?.turn_index).toBe(0);
    expect(total()).toEqual({ 'claude-sonnet-4-6': u(5, 50) });
  });

  it('random crashes after commit across a generated session: totals still exact, no (session, turn) twice', async () => {
    for (const seed of [4, 9]) {
      rmSync(join(dataDir, 'projects'), { recursive: true, force: true });
      rmSync(paths.dir, { recursive: true, force: true });
      await ensurePrivateDir(paths.dir);
      const { timeline, expected } = generateSession({ seed });
      const q = new MemoryQueue();
      const rnd = mulberry32(seed);
      const crashing: QueueLike = {
        append: async (report) => {
          await q.append(report);
          if (rnd() < 0.3) throw new Error('simulated crash');
        },
      };
      const { errors } = await replayInProcess(timeline, { dataDir, queue: crashing as MemoryQueue, tolerateErrors: true, catchUp: false });
      expect(errors.length).toBeGreaterThan(0);
      // One more hook of any session after the last crash finishes what is pending.
      await catchUpOpenSessions({ ...deps, queue: { append: (r: ReportBody) => q.append(r) } });
      expect(sumReports(q.reports), `seed ${seed}`).toEqual(expected.models);
    }
  });
});

type QueueLike = { append(report: ReportBody): Promise<void> };

describe('ensureSessionState and catch-up', () => {
  it('ensureSessionState creates a missing state, reopens a closed one, leaves an open one alone', async () => {
    await ensureSessionState(deps, { sessionId: A, transcriptPath: main(A) });
    const created = await readSessionState(paths, A, { log, now: () => clock });
    expect(created.status).toBe('ok');
    expect(created.state.transcriptPath).toBe(main(A));
    write(main(A), asst({}));
    await stop(A, { closing: true });
    expect((await readSessionState(paths, A, { log, now: () => clock })).state.closed).toBe(true);
    await ensureSessionState(deps, { sessionId: A, transcriptPath: main(A) });
    const reopened = (await readSessionState(paths, A, { log, now: () => clock })).state;
    expect(reopened.closed).toBe(false);
    expect(reopened.nextTurnIndex).toBe(1);
    const text = readFileSync(paths.sessionOffset(A), 'utf8');
    await ensureSessionState(deps, { sessionId: A, transcriptPath: main(A) });
    expect(readFileSync(paths.sessionOffset(A), 'utf8')).toBe(text);
  });

  it('collects open sessions whose files grew, skips the current one and closed ones', async () => {
    for (const sid of [A, B, C]) {
      write(main(sid), asst({ sid }));
      await stop(sid, sid === C ? { closing: true } : {});
    }
    queue.reports.length = 0;
    write(main(A), asst({ sid: A, usage: { input_tokens: 1, output_tokens: 1 } }));
    write(sub(B, 'agent-late.jsonl'), asst({ sid: B, sc: true, usage: { input_tokens: 2, output_tokens: 2 } }));
    write(main(C), asst({ sid: C, usage: { input_tokens: 3, output_tokens: 3 } }));
    expect(await catchUpOpenSessions(deps, { exceptSessionId: B })).toBe(1);
    expect(queue.reports.map((r) => r.session_id)).toEqual([A]);
    expect(await catchUpOpenSessions(deps, {})).toBe(1);
    expect(queue.reports.map((r) => r.session_id)).toEqual([A, B]);
    expect(await catchUpOpenSessions(deps, {})).toBe(0);
  });

  it('bounds the sessions collected per call', async () => {
    for (const sid of [A, B, C]) write(main(sid), asst({ sid }));
    for (const sid of [A, B, C]) await ensureSessionState(deps, { sessionId: sid, transcriptPath: main(sid) });
    expect(await catchUpOpenSessions(deps, { maxSessions: 2 })).toBe(2);
    expect(await catchUpOpenSessions(deps, { maxSessions: 2 })).toBe(1);
  });

  it('closes sessions whose transcript vanished, and sessions idle for a week', async () => {
    for (const sid of [A, B]) {
      write(main(sid), asst({ sid }));
      await stop(sid);
    }
    rmSync(main(A));
    const old = (clock.getTime() - IDLE_CLOSE_MILLIS - 60_000) / 1000;
    utimesSync(main(B), old, old);
    await catchUpOpenSessions(deps, {});
    expect((await readSessionState(paths, A, { log, now: () => clock })).state.closed).toBe(true);
    expect((await readSessionState(paths, B, { log, now: () => clock })).state.closed).toBe(true);
    // Closed is only a catch-up hint: a hook of that session still collects it.
    write(main(B), asst({ sid: B, usage: { input_tokens: 9, output_tokens: 9 } }));
    expect((await stop(B)).report?.models).toEqual({ 'claude-sonnet-4-6': u(9, 9) });
  });

  it('skips unreadable state files without failing', async () => {
    writeFileSync(paths.sessionOffset(A), 'garbage');
    writeFileSync(paths.sessionOffset(B), '123');
    expect(await catchUpOpenSessions(deps, {})).toBe(0);
    expect(readdirSync(paths.dir).filter((n) => n.endsWith('.offset')).sort()).toEqual([`${A}.offset`, `${B}.offset`]);
  });
});
