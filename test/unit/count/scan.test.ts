import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanEntry } from '../../../src/client/count/scan';
import { type LineParse, parseUsageLine, usageOfEntry } from '../../../src/client/count/usage';
import { mulberry32 } from '../../helpers/gen-transcript';

const SID = 'hook-session';

/** What parseUsageLine returned before the scanner: JSON.parse of every candidate line. */
function byJsonParse(line: string): LineParse {
  if (!line.includes('"usage"')) return { records: [], malformed: false, syntheticUsage: null, copiedFrom: null };
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return { records: [], malformed: true, syntheticUsage: null, copiedFrom: null };
  }
  return usageOfEntry(entry, line, SID);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The scanner's contract, written from JSON.parse's value: the paths parseUsageLine reads. */
function pruned(value: unknown): unknown {
  if (!isObj(value)) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of ['type', 'requestId', 'sessionId', 'uuid', 'timestamp', 'requestSessionId']) if (typeof value[k] === 'string') out[k] = value[k];
  if (value.isSidechain === true) out.isSidechain = true;
  const m = value.message;
  if (isObj(m)) {
    const msg: Record<string, unknown> = {};
    for (const k of ['id', 'model']) if (typeof m[k] === 'string') msg[k] = m[k];
    if (isObj(m.usage)) msg.usage = m.usage;
    out.message = msg;
  }
  return out;
}

/** The scanner's entry without its undefined fields. */
function defined(v: unknown): unknown {
  if (!isObj(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = k === 'usage' ? x : defined(x);
  return out;
}

/** Checks one line both ways; returns whether the scanner was sure. */
function check(line: string): boolean {
  const scanned = scanEntry(line);
  if (scanned !== undefined) {
    let parsed: unknown;
    expect(() => {
      parsed = JSON.parse(line);
    }, `scanner accepted invalid JSON: ${line}`).not.toThrow();
    expect(defined(scanned), line).toStrictEqual(pruned(parsed));
  }
  expect(parseUsageLine(line, SID), line).toStrictEqual(byJsonParse(line));
  return scanned !== undefined;
}

type Rnd = () => number;
const pick = <T>(r: Rnd, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

const SPACES = ['', '', '', ' ', '  '];
const ANY_WS = [...SPACES, '\t', '\r\n', '\n '];
/** The whitespace a line is written with: spaces only for most lines, any JSON whitespace for some. */
let WS = SPACES;
const STRINGS = ['msg_01', 'claude-sonnet-5-5', '<synthetic>', 'é中文🙂', 'a"b', 'back\\slash', 'line\nbreak', 'tab\t', '\u2028', '\u0001', 'x'.repeat(250), '', 'usage', '"usage"', 'assistant'];
const NUMBERS = ['0', '-0', '1', '12', '1e3', '1E+2', '2e-1', '1.0', '100.000', '-5', '0.5', '9007199254740991', '9007199254740993', '123456789012345678901234567890', '1e400', '3'];

/** A JSON text for `v` with random whitespace, random escapes in strings and raw number texts. */
function serialise(r: Rnd, v: unknown): string {
  const w = () => pick(r, WS);
  if (typeof v === 'string') return str(r, v);
  if (v instanceof RawNumber) return v.text;
  if (Array.isArray(v)) return `[${w()}${v.map((x) => w() + serialise(r, x) + w()).join(',')}${w()}]`;
  if (isObj(v)) {
    const parts = Object.entries(v).map(([k, x]) => `${w()}${str(r, k.replace(/#dup\d$/, ''), 0.01)}${w()}:${w()}${serialise(r, x)}${w()}`);
    return `{${parts.join(',')}${parts.length === 0 ? w() : ''}}`;
  }
  return JSON.stringify(v);
}

/** A string literal, sometimes with needless escapes (`\u0074`, `\/`) that decode to the same text. */
function str(r: Rnd, s: string, escapeRate = 0.2): string {
  const plain = JSON.stringify(s);
  if (r() > escapeRate) return plain;
  return plain.replace(/[a-z/]/g, (c) => (r() < 0.3 ? (c === '/' ? '\\/' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : c));
}

class RawNumber {
  constructor(readonly text: string) {}
}

function counter(r: Rnd): unknown {
  const x = r();
  if (x < 0.7) return new RawNumber(pick(r, NUMBERS));
  if (x < 0.8) return String(Math.floor(r() * 100));
  if (x < 0.9) return null;
  return { nested: [1, { deep: true }] };
}

function usageObject(r: Rnd): Record<string, unknown> {
  const u: Record<string, unknown> = {
    input_tokens: counter(r),
    cache_creation_input_tokens: counter(r),
    cache_read_input_tokens: counter(r),
    output_tokens: counter(r),
    service_tier: 'standard',
  };
  if (r() < 0.4) u.cache_creation = { ephemeral_5m_input_tokens: counter(r), ephemeral_1h_input_tokens: counter(r), ephemeral_x_input_tokens: counter(r) };
  if (r() < 0.2) u.server_tool_use = { web_search_requests: counter(r) };
  if (r() < 0.2) u.iterations = [{ type: 'advisor_message', model: pick(r, STRINGS), input_tokens: counter(r), output_tokens: counter(r) }, { type: 'message' }];
  if (r() < 0.1) u['output_tokens#dup1'] = counter(r);
  return u;
}

function contentBlock(r: Rnd): unknown {
  return pick(r, [
    { type: 'text', text: pick(r, STRINGS).repeat(1 + Math.floor(r() * 20)) },
    { type: 'thinking', thinking: 'thinking… "quoted" \\ ', signature: 'sig' },
    { type: 'tool_use', id: 'toolu_1', name: 'Read', input: { file_path: '/x/é.ts', n: new RawNumber(pick(r, NUMBERS)), deep: [[[{ a: [true, false, null] }]]] } },
  ]);
}

/** A transcript-like line: mostly assistant lines with usage, with random shapes, odd values and repeated keys. */
function genLine(r: Rnd): string {
  WS = r() < 0.2 ? ANY_WS : SPACES;
  const value = (s: string) => (r() < 0.85 ? s : pick(r, [null, 7, true, [s], { s }, pick(r, STRINGS)]));
  const message: Record<string, unknown> = { id: value(`msg_${Math.floor(r() * 5)}`), type: 'message', role: 'assistant', model: value(pick(r, ['claude-sonnet-5-5', 'claude-opus-4-7', '<synthetic>'])) };
  message.content = Array.from({ length: Math.floor(r() * 3) }, () => contentBlock(r));
  message.usage = r() < 0.9 ? usageObject(r) : pick(r, [null, [], 'usage', new RawNumber('1')]);
  if (r() < 0.1) message['usage#dup1'] = r() < 0.5 ? usageObject(r) : null;
  if (r() < 0.05) message['id#dup1'] = pick(r, STRINGS);
  const entry: Record<string, unknown> = {
    parentUuid: r() < 0.5 ? null : 'p-1',
    isSidechain: value(r() < 0.3 ? (true as unknown as string) : (false as unknown as string)),
    sessionId: value(pick(r, ['s-1', 's-2', SID])),
    type: r() < 0.85 ? 'assistant' : pick(r, ['user', 'system', 'Assistant', 'cost-state']),
    requestId: value(`req_${Math.floor(r() * 3)}`),
    uuid: value(`u-${Math.floor(r() * 1000)}`),
    timestamp: value('2026-12-01T10:00:00.000Z'),
  };
  if (r() < 0.2) entry.requestSessionId = value(pick(r, ['s-1', 's-9']));
  if (r() < 0.05) entry.__proto__dummy = 1;
  const keys = Object.keys(entry);
  // message at a random position among the top-level keys, sometimes twice
  const at = Math.floor(r() * (keys.length + 1));
  const ordered: Record<string, unknown> = {};
  keys.forEach((k, i) => {
    if (i === at) ordered.message = message;
    ordered[k] = entry[k];
  });
  if (at === keys.length) ordered.message = message;
  if (r() < 0.05) ordered['message#dup1'] = r() < 0.5 ? 5 : { id: 'other', usage: usageObject(r) };
  if (r() < 0.05) ordered['type#dup1'] = pick(r, ['user', 'assistant']);
  let text = serialise(r, ordered);
  if (r() < 0.03) text = text.replace('"sessionId"', '"__proto__":{"type":"x"},"sessionId"');
  return pick(r, WS) + text + pick(r, WS);
}

const MUTATION_CHARS = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\u0000', '\u001f', '\t', 'e', '-', '0', '.', 'é', '🙂', 'u', 'x'];

function mutate(r: Rnd, line: string): string {
  const at = Math.floor(r() * (line.length + 1));
  switch (Math.floor(r() * 4)) {
    case 0:
      return line.slice(0, at);
    case 1:
      return line.slice(0, at) + line.slice(at + 1);
    case 2:
      return line.slice(0, at) + pick(r, MUTATION_CHARS) + line.slice(at);
    default:
      return line.slice(0, at) + pick(r, MUTATION_CHARS) + line.slice(at + 1);
  }
}

describe('scanEntry: the same result as JSON.parse', () => {
  it('agrees on generated lines (shapes, escapes, numbers, whitespace, repeated keys)', () => {
    const r = mulberry32(12);
    let sure = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) if (check(genLine(r))) sure++;
    // The comparison must exercise the scanner, not only its fallback.
    expect(sure).toBeGreaterThan(n * 0.3);
  });

  it('agrees on mutated lines (truncated, a character dropped, inserted or replaced)', () => {
    const r = mulberry32(34);
    let sure = 0;
    let invalid = 0;
    const n = 6000;
    for (let i = 0; i < n; i++) {
      let line = genLine(r);
      const times = 1 + Math.floor(r() * 3);
      for (let k = 0; k < times; k++) line = mutate(r, line);
      if (check(line)) sure++;
      try {
        JSON.parse(line);
      } catch {
        invalid++;
      }
    }
    expect(sure).toBeGreaterThan(n * 0.05);
    expect(invalid).toBeGreaterThan(n * 0.3);
  });

  it('hands anything it is not sure of to JSON.parse', () => {
    const base = '{"type":"assistant","requestId":"r","message":{"id":"m","model":"x","usage":{"input_tokens":1,"output_tokens":2}}}';
    expect(defined(scanEntry(base))).toStrictEqual({ type: 'assistant', requestId: 'r', message: { id: 'm', model: 'x', usage: { input_tokens: 1, output_tokens: 2 } } });
    for (const odd of [
      base.replace('"type"', '"\\u0074ype"'), // an escaped key could spell a field we read
      base.replace('{"type"', '[{"type"') + ']', // not an object at the top
      base.slice(0, -1), // truncated
      `${base}x`, // trailing bytes
      base.replace('"r"', '"r\u0001"'), // a raw control character
      base.replace('"x"', `${'['.repeat(100)}${']'.repeat(100)}`), // deeper than the scanner goes
    ]) {
      expect(scanEntry(odd), odd).toBeUndefined();
      check(odd);
    }
  });

  it('takes the last of repeated keys, as JSON.parse does', () => {
    const line = '{"type":"assistant","message":{"id":"a","usage":{"output_tokens":5}},"message":{"id":"b"},"type":"assistant"}';
    expect(defined(scanEntry(line))).toStrictEqual({ type: 'assistant', message: { id: 'b' } });
    check(line);
    check('{"type":"assistant","isSidechain":true,"isSidechain":1,"message":{"usage":{"output_tokens":5},"model":"m","model":7}}');
  });
});

/** The transcript lines a timeline writes (its `append` events joined per file), damaged ones included. */
function transcriptLines(timeline: string): string[] {
  const files = new Map<string, string>();
  for (const row of timeline.split('\n')) {
    if (row.trim() === '') continue;
    const event = JSON.parse(row) as { append?: { file: string; data: string } };
    if (event.append) files.set(event.append.file, (files.get(event.append.file) ?? '') + event.append.data);
  }
  return [...files.values()].flatMap((text) => text.split('\n'));
}

/** Every line of every usage fixture, the repo's and the shared ones, damaged ones included. */
function fixtureLines(): string[] {
  const lines: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === 'timeline.jsonl') lines.push(...transcriptLines(readFileSync(path, 'utf8')));
    }
  };
  walk(join(__dirname, '..', '..', 'fixtures'));
  walk('/work/shared/fixtures');
  return lines;
}

describe('scanEntry on the fixtures', () => {
  it('agrees with JSON.parse on every fixture line, and on each of them truncated', () => {
    const lines = fixtureLines();
    expect(lines.length).toBeGreaterThan(50);
    const r = mulberry32(56);
    let sure = 0;
    for (const line of lines) {
      if (check(line) && line.includes('"usage"')) sure++;
      check(line.slice(0, Math.floor(r() * line.length)));
      check(mutate(r, line));
    }
    expect(sure).toBeGreaterThan(10);
  });
});
