/**
 * Issue 17, break 2 (in process): a session the Rust version was reporting is taken over from its
 * JSON `.offset` without counting anything twice. The byte-exact data dir, the Rust queue and the
 * real receiver are in test/integration/rust-data-dir.test.ts.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CollectDeps, catchUpOpenSessions, collectSession, ensureSessionState } from '../../../src/client/count/collect';
import { parseRustOffset, readSessionState } from '../../../src/client/count/session-state';
import { ensurePrivateDir } from '../../../src/client/local/fsx';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import { MemoryQueue, sumReports } from '../../helpers/gen-transcript';

const SID = '5d0c7a1e-2b3f-4c6d-8e9f-0a1b2c3d4e5f';

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let dataDir: string;
let paths: StatePaths;
let queue: MemoryQueue;
let log: ReturnType<typeof capture>;
let deps: CollectDeps;
let transcript: string;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccflux-rust-takeover-'));
  paths = statePaths(dataDir);
  await ensurePrivateDir(paths.dir);
  queue = new MemoryQueue();
  log = capture();
  deps = { paths, now: () => new Date('2026-11-20T03:00:00Z'), log, queue, userEmail: 'ana@example.org', pluginVersion: '0.1.0' };
  transcript = join(dataDir, 'projects', '-home-ana-repo', `${SID}.jsonl`);
  mkdirSync(dirname(transcript), { recursive: true });
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

let second = 0;
function assistant(id: string, req: string, output: number, extra: Record<string, unknown> = {}): string {
  second++;
  return JSON.stringify({
    type: 'assistant',
    sessionId: SID,
    requestId: req,
    uuid: `u-${second}`,
    timestamp: `2026-11-20T01:00:${String(second).padStart(2, '0')}.250Z`,
    message: { id, model: 'claude-sonnet-4-6', role: 'assistant', usage: { input_tokens: 3, output_tokens: output, cache_read_input_tokens: 100 } },
    ...extra,
  });
}
const prompt = () => JSON.stringify({ type: 'user', sessionId: SID, timestamp: '2026-11-20T01:00:00.000Z', message: { role: 'user', content: 'hi' } });

function append(...lines: string[]): void {
  appendFileSync(transcript, lines.map((l) => `${l}\n`).join(''));
}
function rustOffset(line: number, turn: number, sessionStart = '2026-11-20T01:00:00.000Z', closed = false): void {
  // serde_json::to_string of the Rust OffsetState: field order line, turn, session_start, closed; no newline
  writeFileSync(paths.sessionOffset(SID), JSON.stringify({ line, turn, session_start: sessionStart, closed }));
}
const stop = () => collectSession(deps, { sessionId: SID, transcriptPath: transcript });

describe('taking over a Rust .offset', () => {
  it('parses the Rust shape, and only it', () => {
    expect(parseRustOffset({ line: 4, turn: 2, session_start: 'x', closed: true })).toEqual({ line: 4, turn: 2, sessionStart: 'x', closed: true });
    expect(parseRustOffset({ line: 4, turn: 2, session_start: '' })).toEqual({ line: 4, turn: 2, sessionStart: '', closed: false });
    for (const bad of [null, [], { line: -1, turn: 0 }, { line: 1 }, { line: 1, turn: 1.5 }, { line: 1, turn: 1, closed: 'no' }, { version: 1, line: 1, turn: 1 }]) {
      expect(parseRustOffset(bad)).toBeNull();
    }
  });

  it('converts lines to a byte offset, keeps turn, session start and closed, and records the reported groups', async () => {
    append(prompt(), assistant('msg_1', 'req_1', 40), assistant('msg_2', 'req_2', 50));
    const reportedBytes = (await readFile(transcript)).length;
    append(assistant('msg_3', 'req_3', 60));
    rustOffset(3, 2);
    const { state, status } = await readSessionState(paths, SID, { log, now: deps.now, transcriptPath: transcript });
    expect(status).toBe('legacy');
    expect(state.files[transcript]?.offset).toBe(reportedBytes);
    expect(state.nextTurnIndex).toBe(2);
    expect(state.sessionStartUtc).toBe('2026-11-20T01:00:00.000Z');
    expect(state.outbox).toHaveLength(1);
    expect(state.outbox[0]!.report).toBeNull();
    expect(state.outbox[0]!.ledger.map((e) => [e.k, e.o, e.s])).toEqual([
      ['m:msg_1|r:req_1', 40, SID],
      ['m:msg_2|r:req_2', 50, SID],
    ]);
    expect(log.lines.some((l) => l.includes("took over the Rust version's progress (3 line(s), next turn 2)"))).toBe(true);
  });

  it('the next turn reports only what came after, numbered from the Rust turn; a late line counts as the difference', async () => {
    // Rust read msg_1 while only its first content block was written (placeholder output 1).
    append(prompt(), assistant('msg_1', 'req_1', 1), assistant('msg_0', 'req_0', 30));
    rustOffset(3, 5);
    // Claude Code then writes msg_1's final block and a new message.
    append(assistant('msg_1', 'req_1', 700), assistant('msg_4', 'req_4', 20));
    const r = await stop();
    expect(r.reports.map((x) => x.turn_index)).toEqual([5]);
    expect(sumReports(queue.reports)).toEqual({
      'claude-sonnet-4-6': { input_tokens: 3, output_tokens: 699 + 20, cache_read_tokens: 100, cache_write_tokens: 0 },
    });
    expect(r.report?.session_start_utc).toBe('2026-11-20T01:00:00.000Z');
    // Nothing new: nothing reported, and the state is ours now.
    expect((await stop()).reports).toEqual([]);
    expect(JSON.parse(await readFile(paths.sessionOffset(SID), 'utf8'))).toMatchObject({ version: 1, nextTurnIndex: 6, outbox: [] });
  });

  it('SessionStart on a Rust file converts it; the ledger is applied by the next turn', async () => {
    append(prompt(), assistant('msg_1', 'req_1', 10));
    rustOffset(2, 1);
    await ensureSessionState(deps, { sessionId: SID, transcriptPath: transcript });
    append(assistant('msg_1', 'req_1', 15), assistant('msg_2', 'req_2', 5));
    await stop();
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.output_tokens).toBe(5 + 5);
    expect(queue.reports.map((x) => x.turn_index)).toEqual([1]);
  });

  it('a fresh Rust file (init ran, nothing reported yet) reports everything from line 0', async () => {
    append(prompt(), assistant('msg_1', 'req_1', 10));
    rustOffset(0, 0);
    await stop();
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.output_tokens).toBe(10);
    expect(queue.reports[0]?.turn_index).toBe(0);
  });

  it('a Rust file with an empty session_start takes the transcript first timestamp', async () => {
    const first = assistant('msg_1', 'req_1', 10);
    append(JSON.stringify({ type: 'summary', summary: 'earlier' }), first, assistant('msg_2', 'req_2', 10));
    rustOffset(2, 1, '');
    append(assistant('msg_3', 'req_3', 10));
    await stop();
    const firstSecond = (JSON.parse(first) as { timestamp: string }).timestamp.slice(0, 19);
    expect(queue.reports[0]?.session_start_utc).toBe(`${firstSecond}Z`);
  });

  it('a line count beyond the complete lines stops at the last one; the partial line is read once it is whole', async () => {
    const whole = assistant('msg_1', 'req_1', 10);
    const late = assistant('msg_2', 'req_2', 25);
    writeFileSync(transcript, `${whole}\n${late.slice(0, 20)}`);
    rustOffset(2, 1); // the Rust reader counted the half-written line (and could not parse it)
    await ensureSessionState(deps, { sessionId: SID, transcriptPath: transcript });
    writeFileSync(transcript, `${whole}\n${late}\n`);
    await stop();
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.output_tokens).toBe(25);
  });

  it('subagent transcripts, which the Rust version never read, are reported in full', async () => {
    append(prompt(), assistant('msg_1', 'req_1', 10));
    rustOffset(2, 1);
    const agent = join(dirname(transcript), SID, 'subagents', 'agent-a1.jsonl');
    mkdirSync(dirname(agent), { recursive: true });
    writeFileSync(agent, `${assistant('msg_s', 'req_s', 33, { isSidechain: true })}\n`);
    await stop();
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.output_tokens).toBe(33);
  });

  it('catch-up takes over sessions the Rust version left open, reporting only their unreported lines', async () => {
    // This session: the Rust device reported 2 lines, then Claude Code crashed after writing more.
    append(prompt(), assistant('msg_1', 'req_1', 10), assistant('msg_2', 'req_2', 7));
    rustOffset(2, 4);
    // A closed Rust session and one whose transcript is gone are left alone.
    const closedId = '11111111-2222-4333-8444-555555555555';
    writeFileSync(join(dirname(transcript), `${closedId}.jsonl`), `${assistant('msg_x', 'req_x', 99)}\n`);
    writeFileSync(paths.sessionOffset(closedId), JSON.stringify({ line: 0, turn: 0, session_start: '', closed: true }));
    writeFileSync(paths.sessionOffset('22222222-2222-4333-8444-555555555555'), JSON.stringify({ line: 3, turn: 1, session_start: '', closed: false }));

    expect(await catchUpOpenSessions(deps)).toBe(1);
    expect(queue.reports.map((r) => [r.session_id, r.turn_index])).toEqual([[SID, 4]]);
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.output_tokens).toBe(7);
    // Ours now: a second catch-up finds nothing new.
    expect(await catchUpOpenSessions(deps)).toBe(0);
    expect(queue.reports).toHaveLength(1);
    expect(JSON.parse(await readFile(paths.sessionOffset(closedId), 'utf8'))).toEqual({ line: 0, turn: 0, session_start: '', closed: true });
  });
});
