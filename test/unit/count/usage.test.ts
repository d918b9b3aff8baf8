import { describe, expect, it } from 'vitest';
import {
  addTo,
  addUsage,
  cacheWriteTokens,
  count,
  decideGroup,
  deltaOver,
  type GroupTotal,
  lineTimestamp,
  maxUsage,
  mergeRecord,
  parseUsageLine,
  raiseTo,
  zeroUsage,
} from '../../../src/client/count/usage';
import type { ModelUsage } from '../../../src/protocol/wire';
import { mulberry32 } from '../../helpers/gen-transcript';

const SID = 'hook-session';
const u = (i: number, o: number, cr = 0, cw = 0): ModelUsage => ({ input_tokens: i, output_tokens: o, cache_read_tokens: cr, cache_write_tokens: cw });

function line(over: Record<string, unknown> = {}, message: Record<string, unknown> = {}, usage: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: 'assistant',
    uuid: 'uuid-1',
    sessionId: 'line-session',
    isSidechain: false,
    timestamp: '2026-11-20T01:09:20.960Z',
    requestId: 'req_1',
    ...over,
    message: {
      id: 'msg_1',
      model: 'claude-sonnet-4-6',
      ...message,
      usage: { input_tokens: 3, output_tokens: 100, cache_read_input_tokens: 50, ...usage },
    },
  });
}

describe('parseUsageLine: what counts', () => {
  it('reads one record from an assistant line with message.usage', () => {
    const p = parseUsageLine(line(), SID);
    expect(p.malformed).toBe(false);
    expect(p.records).toEqual([
      {
        key: 'm:msg_1|r:req_1',
        messageId: 'msg_1',
        sidechain: false,
        model: 'claude-sonnet-4-6',
        timestamp: '2026-11-20T01:09:20.960Z',
        usage: u(3, 100, 50, 0),
      },
    ]);
  });

  it('ignores user lines, including the toolUseResult.usage rollup and totalTokens', () => {
    const rollup = JSON.stringify({
      type: 'user',
      toolUseResult: { totalTokens: 123456, usage: { input_tokens: 999, output_tokens: 9999 } },
      message: { role: 'user', content: 'x', usage: { input_tokens: 5 } },
    });
    expect(parseUsageLine(rollup, SID).records).toEqual([]);
  });

  it('ignores summary, system and snapshot lines, and assistant lines without usage', () => {
    for (const l of [
      '{"type":"summary","summary":"usage of x","leafUuid":"u"}',
      '{"type":"system","subtype":"turn_duration","usage":{"input_tokens":4}}',
      '{"type":"file-history-snapshot","snapshot":{}}',
      '{"type":"assistant","message":{"id":"m","model":"x"},"usage":{"input_tokens":4}}',
      '{"type":"assistant","message":{"id":"m","usage":null}}',
      '{"type":"assistant","message":{"id":"m","usage":[1,2]}}',
    ]) {
      expect(parseUsageLine(l, SID).records).toEqual([]);
    }
  });

  it('prefilters on the "usage" substring: such lines are never parsed (not even counted malformed)', () => {
    expect(parseUsageLine('not json at all', SID)).toEqual({ records: [], malformed: false, syntheticUsage: null, copiedFrom: null });
    expect(parseUsageLine('{"type":"assistant","message":{"id":"msg_broken","usage":{"input_tokens":5', SID).malformed).toBe(true);
  });

  it('never throws, whatever the input', () => {
    const rnd = mulberry32(7);
    const pieces = ['{', '}', '[', ']', '"usage"', ':', ',', 'null', '"assistant"', '"type"', '"message"', '1e400', '-1', '"x"', '\\', '\u0000', '東'];
    for (let i = 0; i < 3000; i++) {
      let s = '';
      const n = Math.floor(rnd() * 30);
      for (let j = 0; j < n; j++) s += pieces[Math.floor(rnd() * pieces.length)];
      expect(() => parseUsageLine(s, SID)).not.toThrow();
    }
    const shapes: unknown[] = [
      null,
      1,
      'x',
      [],
      { type: 'assistant', message: null, usage: 1 },
      { type: 'assistant', message: { usage: { iterations: 'no' } } },
      { type: 'assistant', message: { usage: { iterations: [null, 1, { type: 'advisor_message' }] } } },
      { type: 'assistant', message: { id: 5, model: 7, usage: { cache_creation: [1, 2] } }, requestId: {}, sessionId: [] },
    ];
    for (const shape of shapes) expect(() => parseUsageLine(JSON.stringify(shape), SID)).not.toThrow();
  });
});

describe('parseUsageLine: a fork copy names its origin', () => {
  it('requestSessionId other than the line sessionId is the session copied from; the same one or none is no copy', () => {
    expect(parseUsageLine(line({ requestSessionId: 'parent-session' }), SID).copiedFrom).toBe('parent-session');
    expect(parseUsageLine(line({ requestSessionId: 'line-session' }), SID).copiedFrom).toBeNull();
    expect(parseUsageLine(line(), SID).copiedFrom).toBeNull();
    expect(parseUsageLine(line({ requestSessionId: 7 }), SID).copiedFrom).toBeNull();
    expect(parseUsageLine(line({ requestSessionId: 'x'.repeat(500) }), SID).copiedFrom).toBeNull();
  });
});

describe('parseUsageLine: group keys', () => {
  it('message.id + requestId', () => {
    expect(parseUsageLine(line(), SID).records[0]?.key).toBe('m:msg_1|r:req_1');
  });
  it('message.id + the line sessionId without requestId', () => {
    expect(parseUsageLine(line({ requestId: undefined }), SID).records[0]?.key).toBe('m:msg_1|s:line-session');
  });
  it("message.id + the hook's sessionId when the line has none", () => {
    expect(parseUsageLine(line({ requestId: undefined, sessionId: undefined }), SID).records[0]?.key).toBe('m:msg_1|s:hook-session');
  });
  it('the uuid without message.id (the line counts alone)', () => {
    const r = parseUsageLine(line({}, { id: undefined }), SID).records[0];
    expect(r?.key).toBe('u:uuid-1');
    expect(r?.messageId).toBeNull();
  });
  it('a hash of the line without message.id and uuid: stable, distinct per line', () => {
    const a = parseUsageLine(line({ uuid: undefined }, { id: undefined }), SID).records[0]?.key;
    const b = parseUsageLine(line({ uuid: undefined }, { id: undefined }, { output_tokens: 101 }), SID).records[0]?.key;
    expect(a).toMatch(/^h:[0-9a-f]{64}$/);
    expect(parseUsageLine(line({ uuid: undefined }, { id: undefined }), SID).records[0]?.key).toBe(a);
    expect(b).not.toBe(a);
  });
  it('empty-string ids count as missing; huge ids are hashed', () => {
    expect(parseUsageLine(line({ requestId: '' }), SID).records[0]?.key).toBe('m:msg_1|s:line-session');
    const huge = 'm'.repeat(10_000);
    const key = parseUsageLine(line({}, { id: huge }), SID).records[0]?.key ?? '';
    expect(key.length).toBeLessThan(120);
    expect(key.startsWith('m:sha256:')).toBe(true);
  });
  it('carries isSidechain (only `true` counts as sidechain)', () => {
    expect(parseUsageLine(line({ isSidechain: true }), SID).records[0]?.sidechain).toBe(true);
    expect(parseUsageLine(line({ isSidechain: 'true' }), SID).records[0]?.sidechain).toBe(false);
  });
});

describe('counters', () => {
  it('missing, null, negative, non-integer, unsafe and string numbers are 0', () => {
    for (const v of [undefined, null, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, '7', true, {}]) expect(count(v)).toBe(0);
    expect(count(0)).toBe(0);
    expect(count(42)).toBe(42);
    const p = parseUsageLine(line({}, {}, { input_tokens: null, output_tokens: -5, cache_read_input_tokens: 2.5 }), SID);
    expect(p.records[0]?.usage).toEqual(u(0, 0, 0, 0));
  });

  it('cache writes: flat only', () => {
    expect(cacheWriteTokens({ cache_creation_input_tokens: 900 })).toBe(900);
  });
  it('cache writes: flat + breakdown are one number, never added', () => {
    expect(cacheWriteTokens({ cache_creation_input_tokens: 900, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 900 } })).toBe(900);
  });
  it('cache writes: flat 0 with the writes only in the breakdown (before 2.1.152)', () => {
    expect(cacheWriteTokens({ cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 4508, ephemeral_1h_input_tokens: 12 } })).toBe(4520);
  });
  it('cache writes: the larger view wins; unknown breakdown keys are ignored', () => {
    expect(cacheWriteTokens({ cache_creation_input_tokens: 10, cache_creation: { ephemeral_5m_input_tokens: 30, other: 1000 } })).toBe(30);
    expect(cacheWriteTokens({})).toBe(0);
  });

  it('maxUsage, deltaOver, addUsage', () => {
    expect(maxUsage(u(1, 9, 5, 0), u(1, 400, 5, 3))).toEqual(u(1, 400, 5, 3));
    expect(deltaOver(u(1, 400, 5, 3), u(1, 9, 5, 0))).toEqual(u(0, 391, 0, 3));
    expect(deltaOver(u(0, 1, 0, 0), u(5, 5, 5, 5))).toEqual(zeroUsage());
    expect(addUsage(u(1, 2, 3, 4), u(10, 20, 30, 40))).toEqual(u(11, 22, 33, 44));
    expect(addUsage(u(Number.MAX_SAFE_INTEGER, 0, 0, 0), u(5, 0, 0, 0)).input_tokens).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('advisor iterations', () => {
  const advisorLine = line(
    { advisorModel: 'claude-opus-4-7' },
    { model: 'claude-haiku-4-5-20251001' },
    {
      input_tokens: 58,
      output_tokens: 1185,
      iterations: [
        { type: 'message', input_tokens: 58, output_tokens: 1185 },
        { type: 'advisor_message', model: 'claude-opus-4-7', input_tokens: 25034, output_tokens: 3487, cache_read_input_tokens: 7 },
        { type: 'message', input_tokens: 1, output_tokens: 1 },
      ],
    },
  );

  it('each advisor_message entry is its own pseudo-group under its own model; message iterations are not added', () => {
    const p = parseUsageLine(advisorLine, SID);
    expect(p.records.map((r) => [r.key, r.messageId, r.model, r.usage])).toEqual([
      ['m:msg_1|r:req_1', 'msg_1', 'claude-haiku-4-5-20251001', u(58, 1185, 50, 0)],
      ['m:msg_1|r:req_1#adv1', 'msg_1#adv1', 'claude-opus-4-7', u(25034, 3487, 7, 0)],
    ]);
  });

  it('an advisor entry without a model counts as unknown', () => {
    const p = parseUsageLine(line({}, {}, { iterations: [{ type: 'advisor_message', input_tokens: 5 }] }), SID);
    expect(p.records[1]?.model).toBe('unknown');
  });
});

describe('<synthetic>', () => {
  it('is excluded; zero usage is silent', () => {
    const p = parseUsageLine(line({ requestId: undefined }, { model: '<synthetic>' }, { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0 }), SID);
    expect(p).toEqual({ records: [], malformed: false, syntheticUsage: null, copiedFrom: null });
  });
  it('non-zero usage is excluded but handed back so the caller logs it', () => {
    const p = parseUsageLine(line({}, { model: '<synthetic>' }, { input_tokens: 7 }), SID);
    expect(p.records).toEqual([]);
    expect(p.syntheticUsage?.input_tokens).toBe(7);
  });
  it('a sentinel written with a real model and requestId is a real billed call and counts', () => {
    const p = parseUsageLine(line({}, { content: [{ type: 'text', text: 'No response requested.' }] }), SID);
    expect(p.records).toHaveLength(1);
  });
  it('a line without model still counts (under "unknown")', () => {
    expect(parseUsageLine(line({}, { model: undefined }), SID).records[0]?.model).toBe('unknown');
  });
});

describe('grouping within a run', () => {
  it('one message, many lines: field-wise max (placeholder output on early lines)', () => {
    const groups = new Map<string, GroupTotal>();
    for (const out of [1, 3, 5, 2273, 4]) {
      for (const r of parseUsageLine(line({}, {}, { input_tokens: 52, output_tokens: out, cache_read_input_tokens: 38538 }), SID).records) {
        mergeRecord(groups, r, 1000 + out);
      }
    }
    expect(groups.size).toBe(1);
    const g = groups.get('m:msg_1|r:req_1');
    expect(g?.usage).toEqual(u(52, 2273, 38538, 0));
    expect(g?.lastTimestampMs).toBe(1000 + 2273);
  });

  it('gives the groups the map lookup alone gives, whatever the order of keys (the last-group shortcut)', () => {
    // The reference: mergeRecord as it was, one map lookup per record.
    const reference = (groups: Map<string, GroupTotal>, r: { key: string; messageId: string | null; sidechain: boolean; model: string; usage: ModelUsage }, ts: number | null) => {
      const e = groups.get(r.key);
      if (e === undefined) {
        groups.set(r.key, { key: r.key, messageId: r.messageId, sidechain: r.sidechain, model: r.model, usage: r.usage, lastTimestampMs: ts });
        return;
      }
      e.usage = maxUsage(e.usage, r.usage);
      e.sidechain = e.sidechain && r.sidechain;
      if (e.messageId === null) e.messageId = r.messageId;
      if (ts !== null && (e.lastTimestampMs === null || ts > e.lastTimestampMs)) e.lastTimestampMs = ts;
    };
    const rnd = mulberry32(12);
    for (let run = 0; run < 50; run++) {
      const ours = new Map<string, GroupTotal>();
      const theirs = new Map<string, GroupTotal>();
      // Runs of one key (a response's blocks), keys coming back later, two maps in turn.
      const other = new Map<string, GroupTotal>();
      let key = 'k0';
      for (let n = 0; n < 200; n++) {
        if (rnd() < 0.4) key = `k${Math.floor(rnd() * 12)}`;
        const r = { key, messageId: rnd() < 0.2 ? null : `m-${key}`, sidechain: rnd() < 0.3, model: 'x', timestamp: null, usage: u(Math.floor(rnd() * 9), Math.floor(rnd() * 99)) };
        const ts = rnd() < 0.2 ? null : Math.floor(rnd() * 1e6);
        mergeRecord(ours, r, ts);
        reference(theirs, r, ts);
        if (rnd() < 0.3) mergeRecord(other, { ...r, key: `o${r.key}` }, ts);
      }
      expect([...ours.entries()]).toEqual([...theirs.entries()]);
      expect([...other.keys()].every((k) => k.startsWith('o'))).toBe(true);
    }
  });

  it('a group is sidechain only when every line is', () => {
    const groups = new Map<string, GroupTotal>();
    mergeRecord(groups, { key: 'k', messageId: 'm', sidechain: true, model: 'x', timestamp: null, usage: u(1, 1) }, null);
    mergeRecord(groups, { key: 'k', messageId: 'm', sidechain: false, model: 'x', timestamp: null, usage: u(1, 1) }, null);
    expect(groups.get('k')?.sidechain).toBe(false);
  });
});

describe('decideGroup: deltas against what was counted', () => {
  const group = (key: string, messageId: string | null, sidechain: boolean, usage: ModelUsage): GroupTotal => ({
    key,
    messageId,
    sidechain,
    model: 'm',
    usage,
    lastTimestampMs: null,
  });
  const counted = (key: string, messageId: string | null, sidechain: boolean, usage: ModelUsage) => ({ key, messageId, sidechain, usage });

  it('a new group reports everything', () => {
    expect(decideGroup(group('k', 'm1', false, u(1, 2, 3, 4)), undefined, [])).toEqual({ kind: 'count', delta: u(1, 2, 3, 4), record: u(1, 2, 3, 4) });
  });

  it('a late increase is reported as the difference', () => {
    const d = decideGroup(group('k', 'm1', false, u(6, 1728, 52036, 2633)), counted('k', 'm1', false, u(6, 7, 52036, 2633)), []);
    expect(d).toEqual({ kind: 'count', delta: u(0, 1721, 0, 0), record: u(6, 1728, 52036, 2633) });
  });

  it('a copy (same key, resume/fork) adds nothing', () => {
    const d = decideGroup(group('k', 'm1', false, u(6, 7, 1, 1)), counted('k', 'm1', false, u(6, 1728, 1, 1)), []);
    expect(d).toEqual({ kind: 'count', delta: zeroUsage(), record: u(6, 1728, 1, 1) });
  });

  it('/btw: a sidechain line repeating a counted message id under another requestId is a replay', () => {
    const d = decideGroup(group('m:m1|r:req_btw', 'm1', true, u(7, 3238, 21456, 4268)), undefined, [counted('m:m1|r:req_1', 'm1', false, u(7, 3238, 21456, 4268))]);
    expect(d).toEqual({ kind: 'replay' });
  });

  it('a replay read before its parent: the parent is credited, the message counts once', () => {
    const replay = counted('m:m1|r:req_btw', 'm1', true, u(7, 3000, 21456, 4268));
    const d = decideGroup(group('m:m1|r:req_1', 'm1', false, u(7, 3238, 21456, 4268)), undefined, [replay]);
    expect(d).toEqual({ kind: 'count', delta: u(0, 238, 0, 0), record: u(7, 3238, 21456, 4268) });
  });

  it('only the first parent of a message id gets that credit', () => {
    const d = decideGroup(group('m:m1|r:req_2', 'm1', false, u(1, 1, 0, 0)), undefined, [
      counted('m:m1|r:req_btw', 'm1', true, u(1, 1, 0, 0)),
      counted('m:m1|r:req_1', 'm1', false, u(1, 1, 0, 0)),
    ]);
    expect(d).toEqual({ kind: 'count', delta: u(1, 1, 0, 0), record: u(1, 1, 0, 0) });
  });

  it('a group nothing was counted for is its own record and delta (no new objects), as the general path computes', () => {
    const usage: ModelUsage = { ...u(1, 2, 3, 10), cache_write_5m_tokens: 4, cache_write_1h_tokens: 6, web_search_requests: 2 };
    const d = decideGroup(group('k', 'm1', false, usage), undefined, []);
    expect(d).toEqual({ kind: 'count', delta: usage, record: usage });
    expect(d.kind === 'count' && d.delta === usage && d.record === usage).toBe(true);
    // A split over the cache writes (an odd line) still takes the general path, which clips it.
    const odd: ModelUsage = { ...u(1, 2, 3, 10), cache_write_5m_tokens: 8, cache_write_1h_tokens: 6 };
    expect(decideGroup(group('k', 'm1', false, odd), undefined, [])).toEqual({
      kind: 'count',
      delta: { ...u(1, 2, 3, 10), cache_write_5m_tokens: 8, cache_write_1h_tokens: 2 },
      record: odd,
    });
  });

  it('groups without message id never take part in replay checks', () => {
    expect(decideGroup(group('u:x', null, true, u(1, 1)), undefined, [])).toMatchObject({ kind: 'count' });
  });
});

describe('addTo: addUsage in place', () => {
  it('gives what addUsage gives, saturating, detail fields only when non-zero', () => {
    const rnd = mulberry32(7);
    for (let n = 0; n < 300; n++) {
      const pick = () => (rnd() < 0.3 ? 0 : rnd() < 0.05 ? Number.MAX_SAFE_INTEGER - 3 : Math.floor(rnd() * 1000));
      const usage = (): ModelUsage => {
        const x: ModelUsage = u(pick(), pick(), pick(), pick());
        if (rnd() < 0.5) x.cache_write_5m_tokens = pick();
        if (rnd() < 0.5) x.web_search_requests = pick();
        return x;
      };
      const a = usage();
      const b = usage();
      const expected = addUsage(a, b);
      const target = { ...a };
      addTo(target, b);
      // Absent and zero detail read the same (isZeroUsage, the wire): compare with zeros dropped.
      const clean = (x: ModelUsage) => Object.fromEntries(Object.entries(x).filter(([k, v]) => v !== 0 || ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens'].includes(k)));
      expect(clean(target)).toEqual(clean(expected));
    }
  });
});

describe('raiseTo: maxUsage in place', () => {
  it('leaves its target equal to maxUsage of the two, detail fields included', () => {
    const rnd = mulberry32(11);
    const pick = (): ModelUsage => {
      const x = u(Math.floor(rnd() * 5), Math.floor(rnd() * 5), Math.floor(rnd() * 5), Math.floor(rnd() * 5));
      for (const f of ['cache_write_5m_tokens', 'cache_write_1h_tokens', 'web_search_requests'] as const) if (rnd() < 0.5) x[f] = Math.floor(rnd() * 3);
      return x;
    };
    for (let i = 0; i < 500; i++) {
      const a = pick();
      const b = pick();
      const want = maxUsage(a, b);
      raiseTo(a, b);
      expect({ ...zeroDetail, ...a }).toEqual({ ...zeroDetail, ...want });
    }
  });
});

const zeroDetail = { cache_write_5m_tokens: 0, cache_write_1h_tokens: 0, web_search_requests: 0 };

describe('lineTimestamp', () => {
  it('reads the timestamp of any entry, null otherwise', () => {
    expect(lineTimestamp('{"type":"user","timestamp":"2026-11-20T01:09:04.664Z"}')).toBe('2026-11-20T01:09:04.664Z');
    expect(lineTimestamp('{"type":"summary"}')).toBeNull();
    expect(lineTimestamp('{"timestamp": 5}')).toBeNull();
    expect(lineTimestamp('{"timestamp":"x"')).toBeNull();
  });
});

describe('schema-v2 detail: cache-write split and web searches', () => {
  it('reads usage.cache_creation.ephemeral_5m/1h_input_tokens and server_tool_use.web_search_requests (2.1.328 shape)', () => {
    const parsed = parseUsageLine(
      line({}, {}, {
        input_tokens: 4,
        output_tokens: 212,
        cache_read_input_tokens: 51_000,
        cache_creation_input_tokens: 1_200,
        cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 900 },
        server_tool_use: { web_search_requests: 2, web_fetch_requests: 1 },
        iterations: [],
        speed: 'standard',
      }),
      SID,
    );
    expect(parsed.records[0]?.usage).toEqual({
      ...u(4, 212, 51_000, 1_200),
      cache_write_5m_tokens: 300,
      cache_write_1h_tokens: 900,
      web_search_requests: 2,
    });
  });

  it('zero detail is left out inside the device (absent reads as 0); max and sums carry it', () => {
    expect(parseUsageLine(line(), SID).records[0]?.usage).not.toHaveProperty('web_search_requests');
    const a = { ...u(1, 1, 0, 10), cache_write_1h_tokens: 10 };
    const b = { ...u(1, 2, 0, 10), web_search_requests: 1 };
    expect(maxUsage(a, b)).toEqual({ ...u(1, 2, 0, 10), cache_write_1h_tokens: 10, web_search_requests: 1 });
    expect(addUsage(a, b)).toEqual({ ...u(2, 3, 0, 20), cache_write_1h_tokens: 10, web_search_requests: 1 });
  });

  it('a delta never splits more cache writes than it reports (a base recorded before the split existed)', () => {
    const value = { ...u(5, 5, 0, 900), cache_write_1h_tokens: 900, web_search_requests: 1 };
    const oldBase = u(5, 5, 0, 900); // an older ledger: the writes were reported, their split was not
    expect(deltaOver(value, oldBase)).toEqual({ ...u(0, 0, 0, 0), web_search_requests: 1 });
    const partial = { ...u(0, 0, 0, 600), cache_write_5m_tokens: 100, cache_write_1h_tokens: 600 };
    expect(deltaOver(partial, zeroUsage())).toEqual({ ...u(0, 0, 0, 600), cache_write_5m_tokens: 100, cache_write_1h_tokens: 500 });
  });
});
