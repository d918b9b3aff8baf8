import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import {
  freshSessionState,
  listOpenSessions,
  listSessionIds,
  parseSessionState,
  peekSessionState,
  readAllSessionStates,
  readCommittedCursor,
  readSessionState,
  recoveredTurnIndex,
  type SessionState,
  stateText,
  writeSessionState,
} from '../../../src/client/count/session-state';
import { entryShard, type LedgerEntry, ledgerLine, OutboxLines, shardLines } from '../../../src/client/count/ledger';

const byKey = (a: LedgerEntry, b: LedgerEntry) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0);

const NOW = new Date('2026-11-20T02:00:00Z');
const SID = 'cd613e30-d8f1-6adf-91b7-584a2265b1f5';

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let root: string;
let paths: StatePaths;
let transcript: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ccflux-state-'));
  paths = statePaths(root);
  mkdirSync(paths.dir, { recursive: true });
  transcript = join(root, 'projects', 'p', `${SID}.jsonl`);
  mkdirSync(join(root, 'projects', 'p'), { recursive: true });
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const opts = (log = capture()) => ({ log, now: () => NOW, transcriptPath: transcript });

function sample(): SessionState {
  const s = freshSessionState(SID, transcript, NOW, 3);
  s.sessionStartUtc = '2026-11-20T01:09:04Z';
  s.files[transcript] = { offset: 10, size: 12, ino: 42, headHash: 'abc' };
  s.outbox = [
    {
      report: {
        schema_version: 1,
        session_id: SID,
        user_email: '',
        turn_index: 2,
        timestamp_utc: '2026-11-20T01:10:00Z',
        session_start_utc: '2026-11-20T01:09:04Z',
        models: { 'claude-x': { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 4 } },
        plugin_version: '0.1.0',
      },
      ledger: [{ k: 'm:a|r:b', m: 'a', sc: false, model: 'claude-x', i: 1, o: 2, cr: 3, cw: 4 }],
    },
    { report: null, ledger: [] },
  ];
  return s;
}

describe('stateText', () => {
  const entries = (n: number, tag: string): LedgerEntry[] =>
    Array.from({ length: n }, (_, i) => ({ k: `m:${tag}${i}|r:req_${i}`, m: `${tag}${i}`, sc: i % 2 === 0, model: 'claude-x', i, o: 2 * i, cr: 3, cw: 4, t: 20000 + i }));

  it('is JSON.stringify(state) and a newline while no outbox list is long', () => {
    const s = sample();
    const report = (s.outbox[0] as { report: SessionState['outbox'][number]['report'] }).report;
    for (const lengths of [[0], [64], [64, 0, 64], [3, 1]]) {
      s.outbox = lengths.map((n, i) => ({ report: i === 0 ? report : null, ledger: entries(n, `g${i}-`) }));
      expect([...stateText(s)].join('')).toBe(`${JSON.stringify(s)}\n`);
    }
  });

  it('writes a long outbox as a JSON first line and the shard lines of its entries, in small pieces, and says where each shard\'s lines are', () => {
    const s = sample();
    const report = (s.outbox[0] as { report: SessionState['outbox'][number]['report'] }).report;
    for (const lengths of [[65], [256], [1000, 7], [45000, 0, 3], [3, 1000, 999]]) {
      s.outbox = lengths.map((n, i) => ({ report: i === 0 ? report : null, ledger: entries(n, `g${i}-`) }));
      const written = new OutboxLines('state');
      const pieces = [...stateText(s, written)];
      const text = pieces.join('');
      const [head, ...rest] = text.split('\n');
      expect(JSON.parse(head as string)).toEqual({ ...s, outbox: s.outbox.map((item) => ({ report: item.report, ledgerLines: item.ledger.length })) });
      expect(rest.pop()).toBe('');
      expect(rest).toEqual(s.outbox.flatMap((item) => item.ledger.map((e) => ledgerLine(e))));
      // A first read of a long session: 45,000 entries were one 6 MB string and buffer; no piece is that now.
      expect(Math.max(...pieces.slice(1).map((p) => p.length))).toBeLessThan(20_000);
      // Each shard's ranges hold exactly its entries' lines, in order.
      const bytes = Buffer.from(text);
      const all = s.outbox.flatMap((item) => item.ledger);
      const byShard = new Map<string, LedgerEntry[]>();
      for (const e of all) byShard.set(entryShard(e), [...(byShard.get(entryShard(e)) ?? []), e]);
      for (const [shard, ranges] of written.ranges) {
        const got = ranges.map(([at, n]) => bytes.toString('utf8', at, at + n)).join('');
        expect(got).toBe(shardLines(byShard.get(shard) ?? []));
      }
      expect([...written.ranges.keys()].sort()).toEqual([...byShard.keys()].sort());
    }
  });

  it('puts a long outbox list in shard order when writing it, keeping the order within each shard', async () => {
    const s = sample();
    const list = entries(500, 'o');
    s.outbox = [{ report: null, ledger: [...list] }];
    await writeSessionState(paths, s);
    const ordered = (s.outbox[0] as SessionState['outbox'][number]).ledger;
    expect([...ordered].sort(byKey)).toEqual([...list].sort(byKey));
    const shards = ordered.map(entryShard);
    expect(shards.filter((id, i) => i > 0 && id !== shards[i - 1]).length).toBe(new Set(shards).size - 1);
    for (const id of new Set(shards)) expect(ordered.filter((e) => entryShard(e) === id)).toEqual(list.filter((e) => entryShard(e) === id));
  });

  it('reads a long outbox back only when its lines are all there and all ledger entries', async () => {
    const s = sample();
    s.outbox = [{ report: (s.outbox[0] as SessionState['outbox'][number]).report, ledger: entries(300, 'x') }];
    await writeSessionState(paths, s);
    const good = readFileSync(paths.sessionOffset(SID), 'utf8');
    expect((await readSessionState(paths, SID, opts())).status).toBe('ok');
    const lines = good.split('\n');
    const variants = {
      'a line missing': `${lines.slice(0, -2).join('\n')}\n`,
      'a line too many': `${good}${lines[1]}\n`,
      'a line that is not an entry': good.replace(lines[5] as string, '{"nope":1}'),
      'a torn last line': good.slice(0, -20),
    };
    for (const [name, text] of Object.entries(variants)) {
      writeFileSync(paths.sessionOffset(SID), text);
      const log = capture();
      const back = await readSessionState(paths, SID, opts(log));
      expect(back.status, name).toBe('corrupt');
      // The corrupt state keeps its turn numbering (read from the first line).
      expect(back.state.nextTurnIndex, name).toBeGreaterThanOrEqual(s.nextTurnIndex);
      expect(await peekSessionState(paths, SID), name).toBeNull();
    }
  });

  it('writes a state with a long outbox that reads back whole', async () => {
    const s = sample();
    s.outbox = [{ report: (s.outbox[0] as SessionState['outbox'][number]).report, ledger: entries(5000, 'x') }, { report: null, ledger: entries(1500, 'y') }];
    await writeSessionState(paths, s);
    const back = await readSessionState(paths, SID, opts());
    expect(back.status).toBe('ok');
    expect(back.state).toEqual(s);
  });
});

describe('session state files', () => {
  it('round-trips, written 0600', async () => {
    const s = sample();
    await writeSessionState(paths, s);
    expect((statSync(paths.sessionOffset(SID)).mode & 0o777).toString(8)).toBe('600');
    const back = await readSessionState(paths, SID, opts());
    expect(back.status).toBe('ok');
    expect(back.state).toEqual(s);
  });

  it('missing: a fresh state at turn 0', async () => {
    const { state, status } = await readSessionState(paths, SID, opts());
    expect(status).toBe('missing');
    expect(state).toMatchObject({ sessionId: SID, transcriptPath: transcript, nextTurnIndex: 0, closed: false, files: {}, outbox: [] });
  });

  it('garbage: logged, fresh state (files re-read from 0) numbering turns above anything used before', async () => {
    writeFileSync(paths.sessionOffset(SID), '\u0000\u0001{{{ not json');
    const log = capture();
    const { state, status } = await readSessionState(paths, SID, opts(log));
    expect(status).toBe('corrupt');
    expect(state.files).toEqual({});
    expect(state.nextTurnIndex).toBe(recoveredTurnIndex(NOW));
    expect(state.nextTurnIndex).toBeGreaterThan(1_000_000_000);
    expect(log.lines.some((l) => l.startsWith('error'))).toBe(true);
  });

  it('wrong types are corrupt too; a readable larger nextTurnIndex is kept', async () => {
    const bad: unknown[] = [
      { ...sample(), nextTurnIndex: '3' },
      { ...sample(), files: [] },
      { ...sample(), files: { [transcript]: { offset: -1, size: 0, ino: 1, headHash: '' } } },
      { ...sample(), outbox: [{ report: { nope: 1 }, ledger: [] }] },
      { ...sample(), outbox: [{ report: null, ledger: [{ k: 5 }] }] },
      { ...sample(), version: 2 },
      { ...sample(), sessionId: 'other' },
      { ...sample(), closed: 'no' },
      [],
      42.5,
    ];
    for (const value of bad) {
      writeFileSync(paths.sessionOffset(SID), JSON.stringify(value));
      const { status } = await readSessionState(paths, SID, opts());
      expect(status, JSON.stringify(value).slice(0, 80)).toBe('corrupt');
    }
    writeFileSync(paths.sessionOffset(SID), JSON.stringify({ ...sample(), files: 'x', nextTurnIndex: 9_000_000_000 }));
    expect((await readSessionState(paths, SID, opts())).state.nextTurnIndex).toBe(9_000_000_000);
  });

  it('parseSessionState keeps a file path named like an Object prototype key as plain data', () => {
    const s = { ...sample(), files: JSON.parse('{"__proto__":{"offset":1,"size":1,"ino":1,"headHash":""}}') };
    const parsed = parseSessionState(s, SID);
    expect(Object.keys(parsed?.files ?? {})).toEqual(['__proto__']);
  });

  it('legacy Rust file, byte offset just after a newline: cursor there, turns continue from the line count', async () => {
    writeFileSync(transcript, 'line one\nline two\nline three\n');
    writeFileSync(paths.sessionOffset(SID), '18\n');
    const { state, status } = await readSessionState(paths, SID, opts());
    expect(status).toBe('legacy');
    expect(state.files[transcript]).toMatchObject({ offset: 18, size: 18, ino: statSync(transcript).ino });
    expect(state.nextTurnIndex).toBe(2);
    expect(state.outbox).toEqual([]);
  });

  it('legacy Rust file, a line count (not just after a newline)', async () => {
    writeFileSync(transcript, 'line one\nline two\nline three\n');
    writeFileSync(paths.sessionOffset(SID), '2');
    const { state } = await readSessionState(paths, SID, opts());
    expect(state.files[transcript]?.offset).toBe(18);
    expect(state.nextTurnIndex).toBe(2);
  });

  it('legacy Rust file, a number beyond the file: a line count, capped at the complete lines', async () => {
    writeFileSync(transcript, 'a\nb\npartial');
    writeFileSync(paths.sessionOffset(SID), '500');
    const { state } = await readSessionState(paths, SID, opts());
    expect(state.files[transcript]?.offset).toBe(4);
    expect(state.nextTurnIndex).toBe(500);
  });

  it('legacy Rust file without a transcript on disk: nothing to skip', async () => {
    writeFileSync(paths.sessionOffset(SID), '0');
    const { state, status } = await readSessionState(paths, SID, opts());
    expect(status).toBe('legacy');
    expect(state.files).toEqual({});
  });

  it('lists open sessions (readable, not closed, with a transcript) for catch-up', async () => {
    const open = freshSessionState('open-1', transcript, NOW);
    const closed = { ...freshSessionState('closed-1', transcript, NOW), closed: true };
    const noPath = freshSessionState('nopath-1', '', NOW);
    for (const s of [open, closed, noPath]) await writeSessionState(paths, s);
    writeFileSync(paths.sessionOffset('garbage-1'), 'garbage');
    writeFileSync(paths.sessionOffset('legacy-1'), '42');
    expect((await listOpenSessions(paths)).map((s) => s.sessionId)).toEqual(['open-1']);
    expect((await readAllSessionStates(paths)).map((s) => s.sessionId)).toEqual(['closed-1', 'nopath-1', 'open-1']);
    expect(await peekSessionState(paths, 'legacy-1')).toBeNull();
    expect(await peekSessionState(paths, 'missing-1')).toBeNull();
  });

  it('lists session ids with state files, skipping other files and unsafe names', async () => {
    await writeSessionState(paths, freshSessionState('b-session', transcript, NOW));
    await writeSessionState(paths, freshSessionState('a-session', transcript, NOW));
    writeFileSync(join(paths.dir, 'pending_reports.jsonl'), '');
    writeFileSync(join(paths.dir, '.hidden.offset'), '');
    expect(await listSessionIds(paths)).toEqual(['a-session', 'b-session']);
    expect(await listSessionIds(statePaths(join(root, 'nowhere')))).toEqual([]);
  });
});

describe('readCommittedCursor', () => {
  it("gives a file's committed offset and inode; none yet, or no readable state, is offset 0 in any file", async () => {
    expect(await readCommittedCursor(paths, SID, transcript)).toEqual({ offset: 0, ino: null });
    const s = freshSessionState(SID, transcript, NOW, 3);
    s.files[transcript] = { offset: 10, size: 12, ino: 42, headHash: 'abc' };
    await writeSessionState(paths, s);
    expect(await readCommittedCursor(paths, SID, transcript)).toEqual({ offset: 10, ino: 42 });
    expect(await readCommittedCursor(paths, SID, `${transcript}.other`)).toEqual({ offset: 0, ino: null });
    writeFileSync(paths.sessionOffset(SID), '{"version":1,"files":');
    expect(await readCommittedCursor(paths, SID, transcript)).toEqual({ offset: 0, ino: null });
  });
});
