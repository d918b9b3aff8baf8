import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCostStateBytes, parseCostStateLine } from '../../../src/client/count/cost-state';
import { LineValues, MAX_DEPTH, ScanSpec } from '../../../src/client/count/json-scan';
import { parseUsageBytes, parseUsageLine, UsageLineParser } from '../../../src/client/count/usage';
import { OWN_BUFFER } from '../../../src/client/count/transcript';
import { fixtureDir, SCENARIOS } from '../../helpers/env';

const SPEC = new ScanSpec(['type', 'message', 'n'], { message: ['usage', 'id'] });

/** scanLine over `text`'s UTF-8 bytes, with a byte after the line as a reader's chunk has. */
function scan(text: string | Buffer, spec = SPEC) {
  const line = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const buf = Buffer.concat([line, Buffer.from('\n{"x":1}')]);
  const values = new LineValues(spec);
  const ok = values.scan(buf, 0, line.length);
  const text_ = (slot: number) => (values.startOf(slot) === -1 ? undefined : buf.toString('utf8', values.startOf(slot), values.endOf(slot)));
  return { ok, values, text: text_ };
}

/** Every assistant-or-cost-state line of the fixtures (real Claude Code lines among them). */
function fixtureLines(): string[] {
  const lines: string[] = [];
  for (const scenario of SCENARIOS) {
    for (const raw of readFileSync(join(fixtureDir(scenario), 'timeline.jsonl'), 'utf8').split('\n')) {
      if (raw === '') continue;
      const step = JSON.parse(raw) as { append?: { data: string } };
      for (const line of step.append?.data.split('\n') ?? []) if (line.includes('"usage"') || line.includes('cost-state')) lines.push(line);
    }
  }
  return lines;
}

/** A small deterministic generator (the fuzz cases are the same on every run). */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const NASTY = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x00, 0x1f, 0x09, 0x20, 0x80, 0xc3, 0xe2, 0xff, 0x30, 0x2d, 0x2e, 0x65, 0x75, 0x74, 0x6e];

function mutate(line: Buffer, next: () => number): Buffer {
  const at = Math.floor(next() * (line.length + 1));
  const byte = NASTY[Math.floor(next() * NASTY.length)] as number;
  const kind = next();
  if (kind < 0.34) return Buffer.concat([line.subarray(0, at), line.subarray(at + 1)]);
  if (kind < 0.67) return Buffer.concat([line.subarray(0, at), Buffer.from([byte]), line.subarray(at)]);
  const copy = Buffer.from(line);
  if (at < copy.length) copy[at] = byte;
  return copy;
}

describe('scanLine', () => {
  it('finds top-level and nested values as JSON.parse gives them', () => {
    const r = scan(' { "n" : 12 , "type":"assistant","x":{"usage":1},"message":{"content":[{"usage":{"a":1}}],"id":"m\\u0031","usage":{"o":2}} } ');
    expect(r.ok).toBe(true);
    expect(r.text(2)).toBe('12');
    expect(r.values.string(0)).toBe('assistant');
    expect(r.values.string(4)).toBe('m1');
    expect(r.values.object(3)).toEqual({ o: 2 });
  });

  it('keeps the last of repeated keys, the nested keys of an earlier value forgotten', () => {
    const r = scan('{"message":{"usage":{"o":1},"id":"a"},"type":"x","type":"assistant","message":{"id":"b"}}');
    expect(r.ok).toBe(true);
    expect(r.values.string(0)).toBe('assistant');
    expect(r.values.string(4)).toBe('b');
    expect(r.values.object(3)).toBeUndefined();
    const gone = scan('{"message":{"usage":{"o":1}},"message":7}');
    expect(gone.ok).toBe(true);
    expect(gone.values.isObject(1)).toBe(false);
    expect(gone.values.object(3)).toBeUndefined();
  });

  it('decodes multi-byte and escaped strings exactly', () => {
    const r = scan('{"type":"naïve Δ → 😀","message":{"id":"a\\"b\\\\c\\n\\ud83d\\ude00"}}');
    expect(r.ok).toBe(true);
    expect(r.values.string(0)).toBe('naïve Δ → 😀');
    expect(r.values.string(4)).toBe('a"b\\c\n😀');
  });

  it.each([
    ['trailing comma', '{"a":1,}'],
    ['trailing comma in an array', '{"a":[1,]}'],
    ['missing colon', '{"a" 1}'],
    ['missing value', '{"a":}'],
    ['unterminated string', '{"a":"b}'],
    ['raw control character', '{"a":"b\u0001c"}'],
    ['raw tab in a string', '{"a":"b\tc"}'],
    ['bad escape', '{"a":"\\q"}'],
    ['short \\u escape', '{"a":"\\u12"}'],
    ['non-hex \\u escape', '{"a":"\\u12g4"}'],
    ['leading zero', '{"a":01}'],
    ['lone minus', '{"a":-}'],
    ['bare fraction point', '{"a":1.}'],
    ['fraction without integer', '{"a":.5}'],
    ['empty exponent', '{"a":1e}'],
    ['partial literal', '{"a":tru}'],
    ['literal with a tail', '{"a":truex}'],
    ['garbage after the object', '{"a":1} x'],
    ['second value', '{"a":1}{"b":2}'],
    ['mismatched close', '{"a":[1}'],
    ['unclosed object', '{"a":{"b":1}'],
    ['a key that is not a string', '{a:1}'],
    ['single quotes', "{'a':1}"],
    ['a byte over 0x7f outside a string', '{"a":1\u00e9}'],
    ['empty', ''],
  ])('rejects what JSON.parse rejects: %s', (_name, text) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(scan(text).ok).toBe(false);
  });

  it('leaves to JSON.parse what it does not handle: a non-object top level, an escaped key it looks for, deep nesting', () => {
    expect(scan('[1,2]').ok).toBe(false);
    expect(scan('"x"').ok).toBe(false);
    expect(scan('{"typ\\u0065":"assistant"}').ok).toBe(false);
    expect(scan('{"message":{"\\u0069d":"x"}}').ok).toBe(false);
    // Any escaped key at a level whose keys are looked at is left to JSON.parse; deeper, it is fine.
    expect(scan('{"x\\u0079":1}').ok).toBe(false);
    expect(scan('{"x":{"\\u0079":1},"message":{"content":[{"\\u0069d":2}]}}').ok).toBe(true);
    const deep = `{"a":${'['.repeat(MAX_DEPTH)}${']'.repeat(MAX_DEPTH)}}`;
    expect(() => JSON.parse(deep)).not.toThrow();
    expect(scan(deep).ok).toBe(false);
    const fine = `{"a":${'['.repeat(MAX_DEPTH - 2)}${']'.repeat(MAX_DEPTH - 2)}}`;
    expect(scan(fine).ok).toBe(true);
  });

  it('reads invalid UTF-8 inside strings as the decoder does (U+FFFD), and stays within the line', () => {
    const line = Buffer.concat([Buffer.from('{"type":"a'), Buffer.from([0xe2, 0x82]), Buffer.from('","message":{"id":"'), Buffer.from([0xff]), Buffer.from('"}}')]);
    const r = scan(line);
    expect(r.ok).toBe(true);
    const parsed = JSON.parse(line.toString('utf8'));
    expect(r.values.string(0)).toBe(parsed.type);
    expect(r.values.string(4)).toBe(parsed.message.id);
    // The line ends inside a string: the bytes after `end` are never read.
    expect(scan('{"a":"b').ok).toBe(false);
  });
});

describe('parseUsageBytes / parseCostStateBytes', () => {
  const lines = fixtureLines();
  const extra = [
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1,"iterations":[{"type":"advisor_message","model":"claude-adv","input_tokens":7}]}}}',
    '{"type":"assistant","isSidechain":true,"sessionId":"s1","requestSessionId":"s0","message":{"id":"m","model":"claude-x","usage":{"input_tokens":3}}}',
    '{"type":"assistant","uuid":"u1","message":{"model":"<synthetic>","usage":{"input_tokens":3}}}',
    '{"type":"assistant","message":{"model":"claude-x","usage":{"output_tokens":9}},"timestamp":"2026-01-01T00:00:00Z"}',
    '{"type":"assistant","message":{"id":"m","usage":[1]}}',
    '{"type":"assistant","message":[{"usage":{}}]}',
    '{"type":"assist\\u0061nt","requestId":"r\\u00e9","message":{"id":"m","model":"claude-x","usage":{"input_tokens":3}}}',
    // Usage objects read from their bytes: every counter form, the cache-write breakdown, web searches.
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"input_tokens":1e2,"output_tokens":-3,"cache_read_input_tokens":2.0,"cache_creation_input_tokens":"9","output_tokens_details":{"thinking_tokens":4}}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"input_tokens":123456789012345678,"output_tokens":9007199254740993,"cache_read_input_tokens":0.5,"cache_creation_input_tokens":7}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"cache_creation_input_tokens":7,"cache_creation":{"ephemeral_1h_input_tokens":3,"ephemeral_5m_input_tokens":6,"ephemeral_5m_input_tokens":2},"server_tool_use":{"web_fetch_requests":1,"web_search_requests":2}}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"cache_creation_input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":6,"ephemeral_10m_input_tokens":5}}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"cache_creation":{"ephemeral_5m_input_tokens":6},"cache_creation":7,"server_tool_use":[{"web_search_requests":2}]}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"cache_creation":{"ephemeral_5m_input_tokens":9007199254740991,"ephemeral_1h_input_tokens":9007199254740991}}}}',
    '{"type":"assistant","requestId":"r","message":{"id":"m","model":"claude-x","usage":{"input\\u005ftokens":5,"cache_creation":{"ephemeral_5m_input_tokens":1}}}}',
    '{"type":"cost-state","modelUsage":{"claude-x[1m]":{"inputTokens":5},"claude-x":{"outputTokens":2}}}',
    '{"type":"cost-state","modelUsage":[]}',
    '{"type":"cost-state","x":{"type":"api-request-blob"},"modelUsage":{"claude-x":{"inputTokens":5}}}',
  ];

  it('has real lines to compare, and accepts every one of them (a valid line is never left to JSON.parse for nothing)', () => {
    expect(lines.length).toBeGreaterThan(50);
    const spec = new ScanSpec(['type', 'message'], { message: ['usage', 'id'] });
    const values = new LineValues(spec);
    const nested = '{"a":[1,"x",[true,null,-0.5e+3],{"b":[],"c":{}}],"message":{"content":[{"t":"a"},"s",[]],"id":"m"}, "z" : [ "q" , 2 ] }';
    const valid = lines.filter((text) => {
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false; // the fixtures' torn and broken lines
      }
    });
    expect(valid.length).toBeGreaterThan(50);
    for (const text of [...valid, nested]) {
      const buf = Buffer.from(text, 'utf8');
      expect(values.scan(buf, 0, buf.length)).toBe(true);
    }
  });

  it('answers as the text parsers do, on every fixture line and on thousands of damaged copies', () => {
    const next = random(12);
    const typeScanner = new LineValues(new ScanSpec(['type']));
    let compared = 0;
    let accepted = 0;
    for (const text of [...lines, ...extra]) {
      const original = Buffer.from(text, 'utf8');
      const cases: Buffer[] = [original];
      for (let m = 0; m < 40; m++) {
        let damaged = mutate(original, next);
        if (next() < 0.3) damaged = mutate(damaged, next);
        cases.push(damaged);
      }
      for (const line of cases) {
        // As the reader hands lines out: inside a larger buffer, the next line's bytes after `end`.
        const buf = Buffer.concat([Buffer.from('{"pre":1}\n'), line, Buffer.from('\n{"post":"x"}')]);
        const start = 10;
        const end = start + line.length;
        const decoded = line.toString('utf8');
        expect(parseUsageBytes(buf, start, end, 'hook-session')).toEqual(parseUsageLine(decoded, 'hook-session', true));
        expect(parseCostStateBytes(buf, start, end)).toEqual(parseCostStateLine(decoded));
        if (typeScanner.scan(buf, start, end)) {
          accepted++;
          expect(() => JSON.parse(decoded)).not.toThrow();
        }
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(2000);
    // Most damaged copies are still JSON (a changed digit, a byte inside a string): both sides were exercised.
    expect(accepted).toBeGreaterThan(compared / 4);
    expect(accepted).toBeLessThan(compared);
  });
});

describe('UsageLineParser (a response\'s content blocks: consecutive lines with the same ids, model and usage)', () => {
  const lines = fixtureLines();
  /** Copies of a line as its response's next content blocks are: other text, uuid or timestamp; and damaged ones. */
  function siblings(text: string, next: () => number): Buffer[] {
    const out = [text, text];
    out.push(text.replace(/"uuid":"[^"]*"/, '"uuid":"other-block"'));
    out.push(text.replace(/"timestamp":"[^"]*"/, '"timestamp":"2026-01-02T03:04:05.678Z"'));
    out.push(text.replace(/"text":"/, '"text":"more '));
    out.push(text.replace(/"output_tokens":(\d+)/, (_m, n: string) => `"output_tokens":${Number(n) + 1}`));
    out.push(text.replace(/"requestId":"/, '"requestId":"x'));
    out.push(text.replace(/"isSidechain":false/, '"isSidechain":true'));
    out.push(text.replace(/"sessionId":"/, '"sessionId":"y'));
    out.push(text.replace(/"model":"/, '"model":"z'));
    return [...out.map((t) => Buffer.from(t, 'utf8')), mutate(Buffer.from(text, 'utf8'), next)].filter(() => next() < 0.8);
  }

  it('answers as the text parser does, line after line of one chunk, whatever repeats or differs', () => {
    const next = random(7);
    const buffers: Buffer[] = [];
    for (const text of lines) buffers.push(...siblings(text, next));
    for (const text of lines) if (next() < 0.3) buffers.push(Buffer.from(text, 'utf8'), Buffer.from(text, 'utf8')); // repeats far apart
    const buf = Buffer.concat(buffers.flatMap((b) => [b, Buffer.from('\n')]));
    const parser = new UsageLineParser('hook-session');
    let at = 0;
    let reused = 0;
    let last: unknown = null;
    for (const line of buffers) {
      const got = parser.parse(buf, at, at + line.length, 1);
      if (got === last && got.records.length > 0) reused++;
      last = got;
      expect(got, line.toString('utf8')).toEqual(parseUsageLine(line.toString('utf8'), 'hook-session', true));
      at += line.length + 1;
    }
    expect(buffers.length).toBeGreaterThan(300);
    expect(reused).toBeGreaterThan(20);
  });

  it('does not take a line for the one before when the buffer was reused for another chunk', () => {
    const line = (out: number) =>
      Buffer.from(`{"type":"assistant","requestId":"r1","timestamp":"2026-01-01T00:00:00.000Z","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":5,"output_tokens":${out}}}}`);
    const a = line(111);
    const b = line(222);
    const buf = Buffer.alloc(a.length * 2 + 2);
    const parser = new UsageLineParser('s');
    a.copy(buf, 0);
    expect(parser.parse(buf, 0, a.length, 1).records[0]?.usage.output_tokens).toBe(111);
    // The next chunk is read into the same buffer: `b` where `a` was, and `b` again after it.
    b.copy(buf, 0);
    b.copy(buf, b.length + 1);
    expect(parser.parse(buf, b.length + 1, 2 * b.length + 1, 2).records[0]?.usage.output_tokens).toBe(222);
    // A line in a buffer of its own is never compared with anything.
    a.copy(buf, 0);
    expect(parser.parse(b, 0, b.length, OWN_BUFFER).records[0]?.usage.output_tokens).toBe(222);
    expect(parser.parse(buf, 0, a.length, OWN_BUFFER).records[0]?.usage.output_tokens).toBe(111);
  });
});
