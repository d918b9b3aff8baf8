import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import { createFsQueue, createMemoryQueue, moveToRejected, parseQueueText, type QueueStore, REJECTED_CAP_BYTES } from '../../../src/client/deliver/queue';
import type { ReportBody } from '../../../src/protocol/wire';

function report(session: string, turn: number, input = 100): ReportBody {
  return {
    schema_version: 1,
    session_id: session,
    user_email: 'a@b.org',
    turn_index: turn,
    timestamp_utc: '2026-05-11T04:32:10Z',
    session_start_utc: '2026-05-11T04:30:00Z',
    models: { 'claude-sonnet-4-6': { input_tokens: input, output_tokens: 1, cache_read_tokens: 2, cache_write_tokens: 0 } },
    plugin_version: '0.1.0',
  };
}
const keys = (reports: ReportBody[]) => reports.map((r) => `${r.session_id}#${r.turn_index}`);

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let root: string;
let paths: StatePaths;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-queue-'));
  paths = statePaths(root);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

type Make = (opts: { maxEntries?: number; maxBytes?: number; log: Logger }) => QueueStore;
const implementations: [string, Make][] = [
  ['fs', ({ maxEntries, maxBytes, log }) => createFsQueue(paths, { log, maxEntries, maxBytes })],
  ['memory', ({ maxEntries, maxBytes, log }) => createMemoryQueue({ log, maxEntries, maxBytes })],
];

describe.each(implementations)('QueueStore contract: %s', (_name, make) => {
  it('starts empty', async () => {
    const q = make({ log: memoryLog() });
    expect(await q.list()).toEqual([]);
    expect(await q.size()).toBe(0);
  });

  it('keeps order, oldest first, and round-trips bodies exactly', async () => {
    const q = make({ log: memoryLog() });
    await q.append(report('s1', 0));
    await q.append(report('s2', 0));
    await q.append(report('s1', 1));
    expect(keys(await q.list())).toEqual(['s1#0', 's2#0', 's1#1']);
    expect((await q.list())[0]).toEqual(report('s1', 0));
    expect(await q.size()).toBe(3);
  });

  it('append is a no-op for a (session_id, turn_index) already queued', async () => {
    const q = make({ log: memoryLog() });
    await q.append(report('s1', 0, 100));
    await q.append(report('s1', 0, 999));
    await q.append(report('s1', 1));
    expect(await q.size()).toBe(2);
    expect((await q.list())[0]!.models['claude-sonnet-4-6']!.input_tokens).toBe(100);
  });

  it('removeFirst removes the oldest n; 0 and more than size are fine', async () => {
    const q = make({ log: memoryLog() });
    for (let i = 0; i < 4; i++) await q.append(report('s', i));
    await q.removeFirst(0);
    expect(await q.size()).toBe(4);
    await q.removeFirst(1);
    expect(keys(await q.list())).toEqual(['s#1', 's#2', 's#3']);
    await q.removeFirst(2);
    expect(keys(await q.list())).toEqual(['s#3']);
    await q.removeFirst(10);
    expect(await q.list()).toEqual([]);
    await q.removeFirst(1);
    expect(await q.size()).toBe(0);
  });

  it('remove takes entries out by key, wherever they are, ignoring unknown keys', async () => {
    const q = make({ log: memoryLog() });
    for (let i = 0; i < 4; i++) await q.append(report('s', i));
    await q.remove([{ session_id: 's', turn_index: 2 }, { session_id: 'other', turn_index: 0 }]);
    expect(keys(await q.list())).toEqual(['s#0', 's#1', 's#3']);
    await q.remove([]);
    expect(await q.size()).toBe(3);
  });

  it('is bounded: the oldest are dropped, with a logged count', async () => {
    const log = memoryLog();
    const q = make({ maxEntries: 3, log });
    for (let i = 0; i < 5; i++) await q.append(report('s', i));
    expect(keys(await q.list())).toEqual(['s#2', 's#3', 's#4']);
    const drops = log.lines.filter((l) => l.includes('dropped'));
    expect(drops).toHaveLength(2);
    expect(drops[0]).toContain('dropped the 1 oldest');
  });

  it('the default bound keeps 2,000 reports (a week offline at ~300 turns a day)', async () => {
    const log = memoryLog();
    const q = createMemoryQueue({ log });
    for (let i = 0; i < 2000; i++) await q.append(report('s', i));
    expect(await q.size()).toBe(2000);
    expect(log.lines).toEqual([]);
  });

  it('is bounded by size, not count: past the bound the oldest go, logged; nearing it is logged once', async () => {
    const log = memoryLog();
    const line = Buffer.byteLength(JSON.stringify(report('s', 1000))) + 1;
    const q = make({ maxBytes: line * 10, log });
    for (let i = 1000; i < 1008; i++) await q.append(report('s', i));
    expect(log.lines.filter((l) => l.includes('% of its'))).toHaveLength(1);
    for (let i = 1008; i < 1013; i++) await q.append(report('s', i));
    expect(keys(await q.list())).toEqual([1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012].map((i) => `s#${i}`));
    expect(log.lines.filter((l) => l.includes('dropped the 1 oldest'))).toHaveLength(3);
    expect(log.lines.filter((l) => l.includes('% of its'))).toHaveLength(1);
  });

  it('list returns copies: mutating them does not change the queue', async () => {
    const q = make({ log: memoryLog() });
    await q.append(report('s', 0));
    const [first] = await q.list();
    first!.turn_index = 42;
    expect((await q.list())[0]!.turn_index).toBe(0);
  });

  it('after a drop, remove by key cannot take an undelivered neighbour', async () => {
    const q = make({ maxEntries: 2, log: memoryLog() });
    await q.append(report('s', 0));
    await q.append(report('s', 1));
    const sending = (await q.list())[0]!; // the deliverer is sending s#0 …
    await q.append(report('s', 2)); // … while a full queue drops it
    await q.remove([sending]);
    expect(keys(await q.list())).toEqual(['s#1', 's#2']);
  });
});

describe('fs queue specifics', () => {
  it('pending_reports.jsonl: one body per line, 0600', async () => {
    const q = createFsQueue(paths, { log: memoryLog() });
    await q.append(report('s', 0));
    await q.append(report('s', 1));
    const text = await readFile(paths.queue, 'utf8');
    expect(text.split('\n')).toEqual([JSON.stringify(report('s', 0)), JSON.stringify(report('s', 1)), '']);
    expect((await stat(paths.queue)).mode & 0o777).toBe(0o600);
  });

  it('a drain that leaves nothing leaves an empty 0600 file; the next append writes one line', async () => {
    const q = createFsQueue(paths, { log: memoryLog() });
    await q.append(report('s', 0));
    await q.append(report('s', 1));
    await q.remove([report('s', 0), report('s', 1)]);
    const after = await stat(paths.queue);
    expect([after.size, after.mode & 0o777]).toEqual([0, 0o600]);
    expect(await q.list()).toEqual([]);
    await q.append(report('s', 2));
    expect(await readFile(paths.queue, 'utf8')).toBe(`${JSON.stringify(report('s', 2))}\n`);
    await q.removeFirst(1);
    expect((await stat(paths.queue)).size).toBe(0);
  });

  it('reads a Rust-written queue (CRLF, blank lines, no final newline)', async () => {
    await writeFile(paths.queue, `${JSON.stringify(report('r', 0))}\r\n\r\n${JSON.stringify(report('r', 1))}`);
    const q = createFsQueue(paths, { log: memoryLog() });
    expect(keys(await q.list())).toEqual(['r#0', 'r#1']);
  });

  it('corrupt lines are skipped by list and moved to rejected_reports.jsonl by the next mutation, logged', async () => {
    const bad = '{"schema_version":1,"session_id":"x"'; // truncated
    const extraKey = JSON.stringify({ ...report('e', 0), secret: 'nope' });
    const huge = JSON.stringify({ ...report('h', 0), plugin_version: 'x'.repeat(70_000) });
    await writeFile(paths.queue, [JSON.stringify(report('s', 0)), bad, extraKey, huge, JSON.stringify(report('s', 1)), ''].join('\n'));
    const log = memoryLog();
    const q = createFsQueue(paths, { log, now: () => new Date('2026-05-11T03:00:00Z') });
    // An unknown key is not corrupt (a newer version wrote it): the line is kept, the key dropped.
    expect(keys(await q.list())).toEqual(['s#0', 'e#0', 's#1']);
    expect(await q.size()).toBe(3);
    expect((await q.list())[1]).not.toHaveProperty('secret');

    await q.removeFirst(1);
    expect(keys(await q.list())).toEqual(['e#0', 's#1']);
    expect((await readFile(paths.queue, 'utf8')).trim().split('\n')).toHaveLength(2);
    const rejected = (await readFile(paths.rejected, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rejected).toHaveLength(2);
    expect(rejected[0]).toEqual({ rejected_at: '2026-05-11T03:00:00Z', reason: 'unreadable queue line', line: bad, line_bytes: bad.length });
    expect(rejected[1].line.length).toBe(4096);
    expect(rejected[1].line_bytes).toBe(Buffer.byteLength(huge));
    expect((await stat(paths.rejected)).mode & 0o777).toBe(0o600);
    expect(log.lines.some((l) => l.includes('moved 2 unreadable line(s) to rejected_reports.jsonl'))).toBe(true);
  });

  it('a no-op append still clears corrupt lines out', async () => {
    await writeFile(paths.queue, `garbage\n${JSON.stringify(report('s', 0))}\n`);
    const q = createFsQueue(paths, { log: memoryLog() });
    await q.append(report('s', 0));
    expect(await readFile(paths.queue, 'utf8')).toBe(`${JSON.stringify(report('s', 0))}\n`);
    expect(await readFile(paths.rejected, 'utf8')).toContain('"line":"garbage"');
  });

  it('parseQueueText is pure and total', () => {
    expect(parseQueueText('')).toEqual({ reports: [], unreadable: [] });
    expect(parseQueueText('\n\n  \n')).toEqual({ reports: [], unreadable: [] });
    expect(parseQueueText('1\n"x"\nnull\n[]').unreadable).toEqual(['1', '"x"', 'null', '[]']);
  });
});

describe('moveToRejected', () => {
  it('appends {rejected_at, reason, report}, 0600', async () => {
    await moveToRejected(paths, report('s', 3), 'HTTP 400: bad field', { now: new Date('2026-05-11T03:00:00Z') });
    await moveToRejected(paths, report('s', 4), 'HTTP 413');
    const lines = (await readFile(paths.rejected, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ rejected_at: '2026-05-11T03:00:00Z', reason: 'HTTP 400: bad field', report: report('s', 3) });
    expect(lines[1].report.turn_index).toBe(4);
    expect((await stat(paths.rejected)).mode & 0o777).toBe(0o600);
  });

  it('is bounded: keeps the newer half past the cap, with a logged count', async () => {
    const filler = `${JSON.stringify({ rejected_at: 'x', reason: 'old', report: { pad: 'p'.repeat(1000) } })}\n`;
    await writeFile(paths.rejected, filler.repeat(Math.ceil(REJECTED_CAP_BYTES / filler.length) + 5), { mode: 0o600 });
    const log = memoryLog();
    await moveToRejected(paths, report('s', 9), 'HTTP 400', { log });
    const text = await readFile(paths.rejected, 'utf8');
    expect(text.length).toBeLessThanOrEqual(REJECTED_CAP_BYTES / 2 + 10);
    expect(text.trim().split('\n').at(-1)).toContain('"turn_index":9');
    for (const line of text.trim().split('\n')) JSON.parse(line);
    expect(log.lines.some((l) => /dropped its \d+ oldest/.test(l))).toBe(true);
  });
});
