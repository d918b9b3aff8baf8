import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALL_RULES, anchorOf, EMPTY_HEAD_HASH, type FileCursor, HEAD_HASH_BYTES, LineMatcher, OWN_BUFFER, readNewLineBytes, readNewLines } from '../../../src/client/count/transcript';
import { COST_STATE_MARKER } from '../../../src/client/count/cost-state';
import { CANDIDATE_LINE_RULES, COST_STATE_RULE_BIT, parseUsageLine, USAGE_RULE_BIT } from '../../../src/client/count/usage';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccflux-transcript-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function read(path: string, cursor?: FileCursor, options: { chunkBytes?: number; maxLineBytes?: number; matcher?: LineMatcher } = {}) {
  const lines: string[] = [];
  const result = await readNewLines(path, cursor, (l) => lines.push(l), options);
  return { ...result, lines };
}

describe('readNewLines', () => {
  it('hands out complete lines and moves the cursor just past the last newline', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'one\ntwo\nthr');
    const a = await read(f);
    expect(a.lines).toEqual(['one', 'two']);
    expect(a.cursor).toMatchObject({ offset: 8, size: 11, ino: statSync(f).ino });
    expect(a.bytes).toBe(8);
  });

  it('a half-written last line is read again, whole, next time', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, '{"a":1}\n{"b":"東');
    const a = await read(f);
    expect(a.lines).toEqual(['{"a":1}']);
    appendFileSync(f, '京"}\n{"c":3}\n');
    const b = await read(f, a.cursor ?? undefined);
    expect(b.lines).toEqual(['{"b":"東京"}', '{"c":3}']);
    expect(b.restarted).toBe(false);
    const c = await read(f, b.cursor ?? undefined);
    expect(c.lines).toEqual([]);
    expect(c.cursor).toEqual(b.cursor);
  });

  it('a multi-byte UTF-8 character split across a chunk boundary decodes intact, for every chunk size', async () => {
    const f = join(dir, 't.jsonl');
    const expected = ['{"t":"東京 naïve Δelta 🙂"}', '🙂🙂🙂', '', 'ascii', '東'.repeat(50)];
    writeFileSync(f, `${expected.join('\n')}\n`);
    for (let chunk = 1; chunk <= 40; chunk++) {
      const r = await read(f, undefined, { chunkBytes: chunk });
      expect(r.lines, `chunk ${chunk}`).toEqual(expected);
    }
  });

  it('strips a trailing \\r (CRLF files)', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'a\r\nb\r\n');
    expect((await read(f)).lines).toEqual(['a', 'b']);
  });

  it('tolerates invalid UTF-8 (replacement characters) and keeps going', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from('ok\n'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('\nafter\n')]));
    expect((await read(f)).lines).toEqual(['ok', '\ufffd\ufffdA', 'after']);
  });

  it('a missing file yields nothing and no error; so does a directory', async () => {
    const missing = await read(join(dir, 'nope.jsonl'));
    expect(missing.cursor).toBeNull();
    expect(missing.lines).toEqual([]);
    mkdirSync(join(dir, 'd.jsonl'));
    expect((await read(join(dir, 'd.jsonl'))).cursor).toBeNull();
    expect((await read(join(dir, 'nodir', 'x.jsonl'))).cursor).toBeNull();
  });

  it('a file that shrank below the cursor is re-read from the start', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'a\nb\nc\n');
    const a = await read(f);
    writeFileSync(f, 'x\n');
    const b = await read(f, a.cursor ?? undefined);
    expect(b.restarted).toBe(true);
    expect(b.lines).toEqual(['x']);
  });

  it('a file replaced by another inode is re-read from the start', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'a\nb\n');
    const a = await read(f);
    writeFileSync(join(dir, 'new'), 'a\nb\nc\n');
    renameSync(join(dir, 'new'), f);
    const b = await read(f, a.cursor ?? undefined);
    expect(b.restarted).toBe(true);
    expect(b.lines).toEqual(['a', 'b', 'c']);
  });

  it('a file rewritten in place (same inode, longer, different head) is re-read from the start', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'first\nsecond\n');
    const a = await read(f);
    writeFileSync(f, 'FIRST\nsecond\nthird\n'); // truncate + write keeps the inode
    expect(statSync(f).ino).toBe(a.cursor?.ino);
    const b = await read(f, a.cursor ?? undefined);
    expect(b.restarted).toBe(true);
    expect(b.lines).toEqual(['FIRST', 'second', 'third']);
  });

  it('the head hash covers the first 4096 bytes and stays put once past them', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, `${'x'.repeat(5000)}\n`);
    const a = await read(f);
    expect(a.cursor?.offset).toBe(5001);
    appendFileSync(f, 'y\n');
    const b = await read(f, a.cursor ?? undefined);
    expect(b.lines).toEqual(['y']);
    expect(b.cursor?.headHash).toBe(a.cursor?.headHash);
    expect(HEAD_HASH_BYTES).toBe(4096);
    writeFileSync(join(dir, 'empty.jsonl'), 'partial');
    expect((await read(join(dir, 'empty.jsonl'))).cursor?.headHash).toBe(EMPTY_HEAD_HASH);
  });

  it('skips lines longer than the limit (within one chunk or across many) and reads on', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, `short\n${'L'.repeat(500)}\nafter\n${'M'.repeat(90)}\nend\n`);
    for (const chunkBytes of [7, 64, 1024 * 1024]) {
      const r = await read(f, undefined, { chunkBytes, maxLineBytes: 100 });
      expect(r.lines, `chunk ${chunkBytes}`).toEqual(['short', 'after', 'M'.repeat(90), 'end']);
      expect(r.skippedLongLines).toBe(1);
      expect(r.cursor?.offset).toBe(statSync(f).size);
    }
  });

  it('an over-long line still being written is not consumed', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, `ok\n${'L'.repeat(500)}`);
    const r = await read(f, undefined, { chunkBytes: 64, maxLineBytes: 100 });
    expect(r.lines).toEqual(['ok']);
    expect(r.cursor?.offset).toBe(3);
  });

  it('memory stays bounded on a large file: lines are handed out one at a time', async () => {
    const f = join(dir, 'big.jsonl');
    const line = `${JSON.stringify({ type: 'user', message: { content: 'z'.repeat(2000) } })}\n`;
    writeFileSync(f, line.repeat(3000)); // ~6 MB, several 1 MiB chunks
    let n = 0;
    const r = await readNewLines(f, undefined, () => {
      n++;
    });
    expect(n).toBe(3000);
    expect(r.cursor?.offset).toBe(line.length * 3000);
  });
});

describe('readNewLineBytes', () => {
  it('hands out each line as a byte range of the reader\'s buffer: no newline, no trailing CR, lines across chunks joined', async () => {
    const path = join(dir, 't.jsonl');
    const long = `{"a":"${'é'.repeat(40)}"}`;
    writeFileSync(path, `{"a":1}\r\n${long}\n\n{"b":2}\nhalf`);
    const lines: string[] = [];
    const result = await readNewLineBytes(path, undefined, (bytes, start, end) => lines.push(bytes.toString('utf8', start, end)), { chunkBytes: 16 });
    expect(lines).toEqual(['{"a":1}', long, '', '{"b":2}']);
    expect(result.cursor?.offset).toBe(Buffer.byteLength(`{"a":1}\r\n${long}\n\n{"b":2}\n`));
  });

  it("numbers the chunks: a chunk's lines share its number and buffer, unchanged until the next chunk; a joined line has OWN_BUFFER", async () => {
    const path = join(dir, 't.jsonl');
    // 16-byte chunks: [l1 l2 l3|] [l4 (across) ...
    writeFileSync(path, '{"a":1}\n{"b":2}\n\n{"c":33333333333}\n{"d":4}\n{"e":5}\n');
    const seen: { text: string; chunk: number; bytes: Buffer; start: number; end: number }[] = [];
    await readNewLineBytes(
      path,
      undefined,
      (bytes, start, end, _rules, chunk) => {
        // Every earlier line of the same chunk still reads as it did.
        for (const s of seen) if (s.chunk === chunk && chunk !== OWN_BUFFER) expect(s.bytes.toString('utf8', s.start, s.end)).toBe(s.text);
        seen.push({ text: bytes.toString('utf8', start, end), chunk, bytes, start, end });
      },
      { chunkBytes: 16 },
    );
    expect(seen.map((s) => s.text)).toEqual(['{"a":1}', '{"b":2}', '', '{"c":33333333333}', '{"d":4}', '{"e":5}']);
    const chunks = seen.map((s) => s.chunk);
    expect(chunks[0]).toBe(chunks[1]);
    expect(chunks[3]).toBe(OWN_BUFFER);
    expect(new Set(chunks.filter((c) => c !== OWN_BUFFER)).size).toBeGreaterThan(1);
    expect(chunks.every((c) => c === OWN_BUFFER || c > 0)).toBe(true);
  });
});

describe('readNewLines with a LineMatcher (raw-byte candidate filter)', () => {
  const usageLine = (id: string, text = 'hi') =>
    JSON.stringify({ type: 'assistant', requestId: `req_${id}`, message: { id: `msg_${id}`, model: 'claude-x', content: [{ type: 'text', text }], usage: { input_tokens: 3, output_tokens: 7 } } });
  const lines = [
    JSON.stringify({ type: 'user', message: { role: 'user', content: 'the word "usage" quoted, 東京 🙂' } }),
    usageLine('a', '東京 naïve 🙂 "assistant" "usage"'),
    JSON.stringify({ type: 'api-request-blob', blob: 'x'.repeat(300) + '"usage"' }),
    JSON.stringify({ type: 'cost-state', sessionId: 's', modelUsage: { 'claude-x': { inputTokens: 3 } } }),
    JSON.stringify({ type: 'user', toolUseResult: { usage: { input_tokens: 9 } } }),
    '',
    usageLine('b'),
    '{"type":"assistant","message":{"usage":{"input_tokens":5',
    'not json "usage"',
    usageLine('c', '🙂'.repeat(40)),
    // the scan's anchors (`usage"`, `-state"`) without the whole markers
    JSON.stringify({ type: 'assistant', total_usage: 1, message: { 'x-usage': 2 } }),
    JSON.stringify({ type: 'sub-state', note: 'cost-states' }),
  ];

  it('hands out exactly the lines holding all markers of a rule, for every chunk size, lines and characters intact', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, `${lines.join('\n')}\n`);
    const wanted = lines.filter((l) => (l.includes('"usage"') && l.includes('"assistant"')) || l.includes('"cost-state"'));
    expect(wanted).toHaveLength(5);
    for (const chunkBytes of [1, 2, 3, 5, 7, 16, 64, 100, 333, 4096]) {
      const r = await read(f, undefined, { chunkBytes, matcher: new LineMatcher(CANDIDATE_LINE_RULES) });
      expect(r.lines, `chunk ${chunkBytes}`).toEqual(wanted);
      expect(r.cursor?.offset).toBe(statSync(f).size);
    }
  });

  it('counts every line, decoded or not; usage is what a full parse of every line finds', async () => {
    const f = join(dir, 't.jsonl');
    const many: string[] = [];
    for (let i = 0; i < 500; i++) many.push(...lines);
    writeFileSync(f, `${many.join('\n')}\n`);
    const all = await read(f, undefined, { chunkBytes: 1000 });
    const filtered = await read(f, undefined, { chunkBytes: 1000, matcher: new LineMatcher(CANDIDATE_LINE_RULES) });
    expect(filtered.lines.length).toBeLessThan(all.lines.length / 2 + 1);
    const sum = (ls: string[]) => ls.flatMap((l) => parseUsageLine(l, 's').records).reduce((n, r) => n + r.usage.output_tokens, 0);
    const malformed = (ls: string[]) => ls.filter((l) => parseUsageLine(l, 's').malformed).length;
    expect(sum(filtered.lines)).toBe(sum(all.lines));
    expect(sum(filtered.lines)).toBe(7 * 3 * 500);
    expect(malformed(filtered.lines)).toBe(500); // the cut-short assistant line is still seen (and logged)
    expect(filtered.bytes).toBe(all.bytes);
    expect(filtered.cursor).toEqual(all.cursor);
  });

  it('scans for a rare-byte tail of the first marker, and still requires every whole marker', () => {
    expect(anchorOf('"usage"')).toBe('usage"');
    expect(anchorOf('"cost-state"')).toBe('-state"');
    expect(anchorOf('"x"')).toBe('"x"');
    const m = new LineMatcher([['"usage"', '"assistant"']]);
    const chunk = Buffer.from('{"total_usage":1,"type":"assistant"}\n{"usage":1,"type":"assistant"}\n');
    m.startChunk(chunk, chunk.length);
    const nl = chunk.indexOf(0x0a);
    expect(m.rulesInChunk(0, nl)).toBe(0);
    expect(m.rulesInChunk(nl + 1, chunk.length - 1)).toBe(1);
  });

  it('tells onLine which rules a line matched, for lines in one chunk and lines spanning chunks', async () => {
    const f = join(dir, 't.jsonl');
    const both = JSON.stringify({ type: 'cost-state', usage: {}, role: 'assistant' });
    writeFileSync(f, `${[lines[1], lines[3], both, lines[0]].join('\n')}\n`);
    for (const chunkBytes of [7, 4096]) {
      const seen: [string, number][] = [];
      await readNewLines(f, undefined, (l, rules) => seen.push([l, rules]), { chunkBytes, matcher: new LineMatcher(CANDIDATE_LINE_RULES) });
      expect(seen).toEqual([
        [lines[1], 1],
        [lines[3], COST_STATE_RULE_BIT],
        [both, 1 | COST_STATE_RULE_BIT],
      ]);
    }
    const all: number[] = [];
    await readNewLines(f, undefined, (_l, rules) => all.push(rules));
    expect(all).toEqual([ALL_RULES, ALL_RULES, ALL_RULES, ALL_RULES]);
    // collect.ts skips the cost-state parse of lines without the bit: only sound while every
    // cost-state line holds the rule's marker.
    expect(COST_STATE_MARKER).toContain(CANDIDATE_LINE_RULES[1]?.[0]);
    // ... and it skips parseUsageLine's own `"usage"` check for lines with the usage rule's bit.
    expect(CANDIDATE_LINE_RULES[0]).toContain('"usage"');
    expect(USAGE_RULE_BIT).toBe(1);
  });

  it('never matches on bytes left in the chunk buffer by an earlier, longer read', async () => {
    const f = join(dir, 't.jsonl');
    // First chunk full of a marker-holding tail; the second read is shorter and marker-free.
    writeFileSync(f, `${'a'.repeat(40)}\n"usage" "assistant"\nplain\n`);
    const r = await read(f, undefined, { chunkBytes: 48, matcher: new LineMatcher([['"usage"', '"assistant"']]) });
    expect(r.lines).toEqual(['"usage" "assistant"']);
    writeFileSync(f, `${'"usage" "assistant" '.repeat(3)}\nx\n`);
    const m = new LineMatcher([['"usage"']]);
    const r2 = await read(f, undefined, { chunkBytes: 64, matcher: m });
    expect(r2.lines).toEqual(['"usage" "assistant" '.repeat(3)]);
  });

  it('everything = true hands out every line (until the caller turns it off)', async () => {
    const f = join(dir, 't.jsonl');
    writeFileSync(f, 'a\nb\n"cost-state"\nc\n');
    const m = new LineMatcher(CANDIDATE_LINE_RULES);
    m.everything = true;
    const seen: string[] = [];
    await readNewLines(f, undefined, (l) => {
      seen.push(l);
      if (l === 'b') m.everything = false;
    }, { matcher: m, chunkBytes: 3 });
    expect(seen).toEqual(['a', 'b', '"cost-state"']);
  });
});
