import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMPTY_HEAD_HASH, type FileCursor, HEAD_HASH_BYTES, readNewLines } from '../../../src/client/count/transcript';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccflux-transcript-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function read(path: string, cursor?: FileCursor, options: { chunkBytes?: number; maxLineBytes?: number } = {}) {
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
