import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  dayNumber,
  entryShard,
  entryUsage,
  Ledger,
  type LedgerEntry,
  ledgerLine,
  mergeEntries,
  OutboxLines,
  parseLedgerLine,
  SHARD_COMPACT_BYTES,
  shardLines,
  shardOf,
  THREADED_APPEND_MIN_SHARDS,
  toLedgerEntry,
} from '../../../src/client/count/ledger';
import { freshSessionState, writeSessionState } from '../../../src/client/count/session-state';
import type { CountedEntry } from '../../../src/client/count/usage';
import { statePaths } from '../../../src/client/local/paths';
import type { Logger } from '../../../src/client/local/log';
import type { ModelUsage } from '../../../src/protocol/wire';

const u = (i: number, o: number, cr = 0, cw = 0): ModelUsage => ({ input_tokens: i, output_tokens: o, cache_read_tokens: cr, cache_write_tokens: cw });

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ccflux-ledger-'));
  dir = join(root, 'ledger');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const SESSION = 'cd613e30-d8f1-6adf-91b7-584a2265b1f5';

const entry = (k: string, m: string | null, usage: ModelUsage, sc = false): LedgerEntry => toLedgerEntry(k, m, sc, 'claude-x', usage);

describe('ledgerLine', () => {
  it('is JSON.stringify of an entry as toLedgerEntry makes it, and parses back to any entry', () => {
    const usage = { input_tokens: 5, output_tokens: 7, cache_read_tokens: 9, cache_write_tokens: 11 };
    const plain = toLedgerEntry('m:a|r:b', 'a', false, 'claude-x', usage, 's1');
    plain.t = 20_000;
    const detail = toLedgerEntry('u:z', null, true, 'claude-x', { ...usage, cache_write_5m_tokens: 3, cache_write_1h_tokens: 2, web_search_requests: 1 });
    for (const e of [plain, detail]) expect(ledgerLine(e)).toBe(JSON.stringify(e));
    // Strings JSON must escape, a counter past 2^30 (the entry's other key order), no session.
    const odd = toLedgerEntry('m:"q"\\\n\u0001\ud800 naïve 😀', 'x"y', false, 'c\\d', { ...usage, cache_read_tokens: 2 ** 40 });
    for (const e of [plain, detail, odd]) {
      expect(JSON.parse(ledgerLine(e))).toEqual(JSON.parse(JSON.stringify(e)));
      expect(parseLedgerLine(ledgerLine(e))).toEqual(parseLedgerLine(JSON.stringify(e)));
    }
  });
});

describe('shardLines', () => {
  const usage = { input_tokens: 5, output_tokens: 7, cache_read_tokens: 9, cache_write_tokens: 11 };
  const byLine = (list: LedgerEntry[]) => list.map((e) => `${ledgerLine(e)}\n`).join('');

  it("is each entry's ledgerLine and a newline, whatever the entries hold", () => {
    const list = Array.from({ length: 50 }, (_, n) => {
      const e = toLedgerEntry(`m:msg_${n}|r:r${n}`, `msg_${n}`, n % 3 === 0, 'claude-x', { ...usage, output_tokens: n, ...(n % 4 === 0 ? { cache_write_5m_tokens: 1 } : {}) }, n % 2 ? 's1' : undefined);
      if (n % 5) e.t = 20_000 + n;
      return e;
    });
    expect(shardLines(list)).toBe(byLine(list));
    expect(shardLines(list.slice(0, 1))).toBe(byLine(list.slice(0, 1)));
    expect(shardLines([])).toBe('');
  });

  it('an id holding the separator `},{` (or quotes, escapes, lone surrogates) still gives one line per entry', () => {
    const list = [
      toLedgerEntry('m:a},{b|r:1', 'a},{b', false, 'claude-x', usage, 's'),
      toLedgerEntry('m:"q"\\\n\u0001\ud800 naïve 😀', 'x"y', false, 'c\\d', usage),
      toLedgerEntry('m:c|r:}', '{', false, '},{},{', usage),
    ];
    for (const cut of [list, list.slice(1), [list[1] as LedgerEntry, list[2] as LedgerEntry, list[0] as LedgerEntry]]) {
      const text = shardLines(cut);
      expect(text.split('\n').slice(0, -1).map((l) => parseLedgerLine(l))).toEqual(cut.map((e) => parseLedgerLine(ledgerLine(e))));
    }
  });
});

describe('shards', () => {
  it('are two hex chars from a hash of the message id (all keys of one message share a shard)', () => {
    expect(shardOf('msg_1')).toMatch(/^[0-9a-f]{2}$/);
    expect(shardOf('msg_1')).toBe(shardOf('msg_1'));
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(shardOf(`msg_${i}`));
    expect(seen.size).toBe(256);
  });

  it('the same answer asked again, alternately, or for the empty id (its last answer is remembered)', () => {
    const fnv = (id: string) => {
      let hash = 0x811c9dc5;
      for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
      return ((hash ^ (hash >>> 8) ^ (hash >>> 16) ^ (hash >>> 24)) & 0xff).toString(16).padStart(2, '0');
    };
    for (const id of ['', '', 'msg_a', 'msg_a', 'msg_b', 'msg_a', '', 'm:msg_b|r:1', 'msg_b']) expect(shardOf(id), JSON.stringify(id)).toBe(fnv(id));
  });
});

describe('Ledger', () => {
  it('append then load in a new instance: max per key; lookups by key and by message id', async () => {
    const a = new Ledger(dir, capture());
    await a.append([entry('m:msg_1|r:r1', 'msg_1', u(1, 9, 5)), entry('m:msg_1|r:r1', 'msg_1', u(1, 400, 5)), entry('m:msg_1|r:btw', 'msg_1', u(1, 400, 5), true)]);
    await a.append([entry('m:msg_1|r:r1', 'msg_1', u(1, 100, 5))]); // a stale lower value changes nothing
    const b = new Ledger(dir, capture());
    await b.load([shardOf('msg_1')]);
    expect(b.get('m:msg_1|r:r1', 'msg_1')).toEqual({ key: 'm:msg_1|r:r1', messageId: 'msg_1', sidechain: false, usage: u(1, 400, 5) });
    expect(b.sameMessage('msg_1', 'm:msg_1|r:r1').map((e) => e.key)).toEqual(['m:msg_1|r:btw']);
    expect(b.sameMessage('msg_1', 'm:msg_1|r:btw').map((e) => [e.key, e.sidechain])).toEqual([['m:msg_1|r:r1', false]]);
    expect(b.get('m:msg_2|r:r', 'msg_1')).toBeUndefined();
  });

  it('a batch over THREADED_APPEND_MIN_SHARDS shards (its fsyncs in the thread pool) reads back whole', async () => {
    const ids = Array.from({ length: 64 }, (_, n) => `msg_batch_${n}`);
    const shards = new Set(ids.map((m) => shardOf(m)));
    expect(shards.size).toBeGreaterThanOrEqual(THREADED_APPEND_MIN_SHARDS);
    await new Ledger(dir, capture()).append(ids.map((m, n) => entry(`m:${m}|r:r`, m, u(1, n + 1))));
    const b = new Ledger(dir, capture());
    await b.load([...shards]);
    for (const [n, m] of ids.entries()) expect(b.get(`m:${m}|r:r`, m)?.usage, m).toEqual(u(1, n + 1));
  });

  it('finds the other keys of a message id whether it has one, two or three keys (staged or loaded)', async () => {
    const a = new Ledger(dir, capture());
    const ids = ['msg_one', 'msg_two', 'msg_three'];
    await a.load([...ids, 'msg_none'].map((m) => shardOf(m)));
    ids.forEach((m, n) => {
      for (let k = 0; k <= n; k++) a.stage(entry(`m:${m}|r:${k}`, m, u(1, 1)));
      a.stage(entry(`m:${m}|r:0`, m, u(1, 2))); // the same key again
    });
    expect(a.sameMessage('msg_one', 'm:msg_one|r:0')).toEqual([]);
    expect(a.sameMessage('msg_one', 'x').map((e) => e.key)).toEqual(['m:msg_one|r:0']);
    expect(a.sameMessage('msg_two', 'm:msg_two|r:1').map((e) => e.key)).toEqual(['m:msg_two|r:0']);
    expect(a.sameMessage('msg_three', 'm:msg_three|r:1').map((e) => e.key)).toEqual(['m:msg_three|r:0', 'm:msg_three|r:2']);
    expect(a.sameMessage('msg_none', 'x')).toEqual([]);
    // An unknown message id (every group of a first read) gets one shared empty list, not a new one each.
    expect(a.sameMessage('msg_none', 'x')).toBe(a.sameMessage('msg_none', 'y'));
    expect(Object.isFrozen(a.sameMessage('msg_none', 'x'))).toBe(true);
  });

  it('keys without message id are sharded by key', async () => {
    const a = new Ledger(dir, capture());
    await a.append([entry('u:uuid-1', null, u(3, 3))]);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('u:uuid-1')]);
    expect(b.get('u:uuid-1', null)?.usage).toEqual(u(3, 3));
  });

  it('loads only the shards asked for', async () => {
    const a = new Ledger(dir, capture());
    await a.append(Array.from({ length: 300 }, (_, i) => entry(`m:msg_${i}|r:r`, `msg_${i}`, u(1, 1))));
    expect(readdirSync(dir).length).toBeGreaterThan(100);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('msg_7'), shardOf('msg_7')]);
    expect(b.loadedShardCount).toBe(1);
    let other = 0;
    while (shardOf(`msg_other_${other}`) === shardOf('msg_7')) other++;
    // A lookup in a shard that was not loaded is a programming error, not a silent miss.
    expect(() => b.get('m:x|r:r', `msg_other_${other}`)).toThrow();
  });

  it('appending the same entries twice is harmless (idempotent outbox re-application)', async () => {
    const es = [entry('m:a|r:1', 'a', u(1, 2, 3, 4)), entry('m:b|r:1', 'b', u(5, 6, 7, 8))];
    const a = new Ledger(dir, capture());
    await a.append(es);
    await a.append(es);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('a'), shardOf('b')]);
    expect(b.get('m:a|r:1', 'a')?.usage).toEqual(u(1, 2, 3, 4));
    expect(b.get('m:b|r:1', 'b')?.usage).toEqual(u(5, 6, 7, 8));
  });

  it('stage makes an entry visible to this run only, without writing', async () => {
    const a = new Ledger(dir, capture());
    await a.load([shardOf('msg_s')]);
    a.stage(entry('m:msg_s|r:1', 'msg_s', u(1, 1)));
    expect(a.get('m:msg_s|r:1', 'msg_s')?.usage).toEqual(u(1, 1));
    const b = new Ledger(dir, capture());
    await b.load([shardOf('msg_s')]);
    expect(b.get('m:msg_s|r:1', 'msg_s')).toBeUndefined();
  });

  it('corrupt shard lines are skipped and logged, never fatal; a torn last line does not swallow the next append', async () => {
    mkdirSync(dir, { recursive: true });
    const id = shardOf('msg_c');
    const good = JSON.stringify(entry('m:msg_c|r:1', 'msg_c', u(2, 2)));
    writeFileSync(join(dir, `${id}.jsonl`), `garbage\n{"k":5}\n[]\n${good}\n{"k":"m:msg_c|r:2","m":"msg_c","i":1`);
    const log = capture();
    const a = new Ledger(dir, log);
    await a.append([entry('m:msg_c|r:3', 'msg_c', u(9, 9))]);
    const b = new Ledger(dir, log);
    await b.load([id]);
    expect(b.get('m:msg_c|r:1', 'msg_c')?.usage).toEqual(u(2, 2));
    expect(b.get('m:msg_c|r:3', 'msg_c')?.usage).toEqual(u(9, 9));
    expect(log.lines.some((l) => l.startsWith('error') && l.includes('corrupt'))).toBe(true);
  });

  it('compacts a shard over 1 MiB to one line per key, keeping the maxima', async () => {
    const a = new Ledger(dir, capture());
    const id = shardOf('msg_big');
    // Many increasing values of few keys of one message id: one shard grows past the limit.
    let written = 0;
    for (let round = 0; written <= SHARD_COMPACT_BYTES; round++) {
      const batch = Array.from({ length: 200 }, (_, i) => entry(`m:msg_big|r:${i % 10}`, 'msg_big', u(round, round * 2 + i)));
      await a.append(batch);
      written += batch.reduce((n, e) => n + JSON.stringify({ ...e, t: dayNumber(new Date()) }).length + 1, 0); // as append stamps it
    }
    const text = readFileSync(join(dir, `${id}.jsonl`), 'utf8');
    expect(statSync(join(dir, `${id}.jsonl`)).size).toBeLessThan(10_000);
    expect(text.trim().split('\n')).toHaveLength(10);
    const b = new Ledger(dir, capture());
    await b.load([id]);
    const top = b.get('m:msg_big|r:9', 'msg_big')?.usage;
    expect(top?.output_tokens).toBeGreaterThan(100);
    expect((statSync(join(dir, `${id}.jsonl`)).mode & 0o777).toString(8)).toBe('600');
  });

  it('does not rewrite a shard that is big only because it holds many distinct keys', async () => {
    const log = capture();
    const a = new Ledger(dir, log);
    const id = shardOf('msg_many');
    let n = 0;
    while ((statSync(join(dir, `${id}.jsonl`), { throwIfNoEntry: false })?.size ?? 0) <= SHARD_COMPACT_BYTES + 10_000) {
      await a.append(Array.from({ length: 500 }, () => entry(`m:msg_many|r:${n++}`, 'msg_many', u(1, 1))));
    }
    expect(readFileSync(join(dir, `${id}.jsonl`), 'utf8').trim().split('\n')).toHaveLength(n);
    expect(log.lines.some((l) => l.includes('compacted'))).toBe(false);
  });

  it('compaction writes what is on disk, never an entry only staged by an uncommitted run', async () => {
    const a = new Ledger(dir, capture());
    const id = shardOf('msg_big');
    await a.load([id]);
    a.stage(entry('m:msg_big|r:staged', 'msg_big', u(9, 9)));
    let written = 0;
    for (let round = 0; written <= SHARD_COMPACT_BYTES; round++) {
      const batch = Array.from({ length: 200 }, (_, i) => entry(`m:msg_big|r:${i % 10}`, 'msg_big', u(round, i)));
      await a.append(batch);
      written += batch.reduce((total, e) => total + JSON.stringify(e).length + 1, 0);
    }
    const b = new Ledger(dir, capture());
    await b.load([id]);
    expect(b.get('m:msg_big|r:staged', 'msg_big')).toBeUndefined();
    expect(b.get('m:msg_big|r:3', 'msg_big')).toBeDefined();
  });

  it('shard files are created 0600', async () => {
    const a = new Ledger(dir, capture());
    await a.append([entry('m:p|r:1', 'p', u(1, 1))]);
    expect((statSync(join(dir, `${shardOf('p')}.jsonl`)).mode & 0o777).toString(8)).toBe('600');
    appendFileSync(join(dir, `${shardOf('p')}.jsonl`), '');
  });
});

describe('Ledger: a large shard read for lookups (its lines parsed as their ids are looked up)', () => {
  /** Message ids that all fall in one shard, and a seeded random source. */
  function sameShardIds(count: number): { id: string; messages: string[] } {
    const byShard = new Map<string, string[]>();
    for (let n = 0; ; n++) {
      const m = `msg_01lazy${n.toString(36)}`;
      const list = byShard.get(shardOf(m)) ?? [];
      list.push(m);
      byShard.set(shardOf(m), list);
      if (list.length === count) return { id: shardOf(m), messages: list };
    }
  }
  function seeded(seed: number): () => number {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
  }

  /**
   * A shard of ~400 lines (well over the lazy threshold): several lines per key in an order that
   * matters (model and session of a merged entry come from its lines' order), keys sharing message
   * ids, lines without a message id, corrupt and empty lines.
   */
  function writeShard(random: () => number, messages: string[]): { text: string; keys: string[] } {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const keys = messages.flatMap((m, n) => (n % 3 === 0 ? [`m:${m}|r:a`, `m:${m}|r:b`, `m:${m}|r:a-long`] : [`m:${m}|r:a`]));
    const lines: string[] = [];
    for (let n = 0; n < 400; n++) {
      const k = pick(keys);
      const m = k.slice(2, k.indexOf('|'));
      if (n % 37 === 5) lines.push('{"k":"torn');
      if (n % 41 === 7) lines.push('');
      const e = toLedgerEntry(k, random() < 0.15 ? null : m, random() < 0.3, pick(['claude-a', 'claude-b', '']), u(Math.floor(random() * 9), Math.floor(random() * 9), Math.floor(random() * 9)), pick([undefined, 'sess-1', 'sess-2']));
      lines.push(ledgerLine(e));
    }
    const text = `${lines.join('\n')}\n`;
    mkdirSync(dir, { recursive: true });
    return { text, keys };
  }

  it('answers every lookup, stage and append exactly as the whole parse does, and parses only the lines it needs', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = seeded(seed);
      const { id, messages } = sameShardIds(40);
      const { text, keys } = writeShard(random, messages);
      expect(text.length, 'the shard is read lazily').toBeGreaterThan(16 * 1024);
      const lazyDir = join(root, `lazy-${seed}`);
      const wholeDir = join(root, `whole-${seed}`);
      for (const d of [lazyDir, wholeDir]) {
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, `${id}.jsonl`), text);
      }
      const lazy = new Ledger(lazyDir, capture());
      const whole = new Ledger(wholeDir, capture());
      await whole.load([id]);
      // A key that cannot be found verbatim in a line makes its shard parse the rest at once.
      expect(whole.get('k"quoted', messages[0] as string)).toBeUndefined();

      const parsed = await parsesDuring(async () => {
        await lazy.load([id]);
        lazy.get(keys[0] as string, messages[0] as string);
      });
      expect(parsed, 'a load and one lookup parse the lines holding its key, not the shard').toBeLessThan(100);

      for (let step = 0; step < 300; step++) {
        const m = messages[Math.floor(random() * messages.length)] as string;
        const k = random() < 0.9 ? (keys.find((x) => x.startsWith(`m:${m}|`) && random() < 0.5) ?? `m:${m}|r:a`) : `m:${m}|r:new${step % 5}`;
        const op = random();
        if (op < 0.4) expect(lazy.get(k, m), `seed ${seed} step ${step} get ${k}`).toEqual(whole.get(k, m));
        else if (op < 0.7) expect(byKey(lazy.sameMessage(m, k)), `seed ${seed} step ${step} sameMessage ${m}`).toEqual(byKey(whole.sameMessage(m, k)));
        else if (op < 0.9) {
          const e = toLedgerEntry(k, m, random() < 0.5, pick3(random), u(Math.floor(random() * 12), Math.floor(random() * 12)), random() < 0.5 ? 'sess-3' : undefined);
          lazy.stage({ ...e });
          whole.stage({ ...e });
        } else {
          const e = toLedgerEntry(k, m, false, 'claude-c', u(Math.floor(random() * 12), Math.floor(random() * 12)));
          await lazy.append([{ ...e }]);
          await whole.append([{ ...e }]);
        }
      }
      for (const k of keys) {
        const m = k.slice(2, k.indexOf('|'));
        expect(lazy.get(k, m), `seed ${seed} final ${k}`).toEqual(whole.get(k, m));
        expect(byKey(lazy.sameMessage(m, k)), `seed ${seed} final sameMessage ${k}`).toEqual(byKey(whole.sameMessage(m, k)));
      }
      expect(readFileSync(join(lazyDir, `${id}.jsonl`), 'utf8')).toBe(readFileSync(join(wholeDir, `${id}.jsonl`), 'utf8'));
    }
  });

  it('a load of 8 shards or more (a long read, looking each up often) parses them whole', async () => {
    mkdirSync(dir, { recursive: true });
    const byShard = new Map<string, string[]>();
    for (let n = 0; byShard.size < 8 || [...byShard.values()].some((l) => l.length < 200); n++) {
      const m = `msg_01many${n}`;
      const list = byShard.get(shardOf(m)) ?? [];
      if (byShard.size >= 8 && list.length === 0) continue;
      list.push(m);
      byShard.set(shardOf(m), list);
    }
    let lines = 0;
    for (const [id, ms] of byShard) {
      writeFileSync(join(dir, `${id}.jsonl`), ms.map((m) => `${ledgerLine(toLedgerEntry(`m:${m}|r:a`, m, false, 'claude-a', u(1, 1)))}\n`).join(''));
      expect(statSync(join(dir, `${id}.jsonl`)).size).toBeGreaterThan(16 * 1024);
      lines += ms.length;
    }
    const parsed = await parsesDuring(async () => {
      const a = new Ledger(dir, capture());
      await a.load(byShard.keys());
      const [first] = [...byShard.values()];
      const m = (first as string[])[0] as string;
      expect(a.get(`m:${m}|r:a`, m)?.usage).toEqual(u(1, 1));
    });
    expect(parsed).toBe(lines);
  });

  it('a shard holding a backslash anywhere is parsed whole (an id there may be written with escapes)', async () => {
    const { id, messages } = sameShardIds(40);
    const m = messages[3] as string;
    const escaped = ledgerLine(toLedgerEntry(`m:${m}|r:a`, m, false, 'claude-a', u(7, 7))).replace('r:a', 'r\\u003aa');
    const filler = messages.map((x) => ledgerLine(toLedgerEntry(`m:${x}|r:z`, x, false, 'claude-a', u(1, 1)))).join('\n');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${id}.jsonl`), `${filler}\n${filler}\n${filler}\n${filler}\n${escaped}\n`);
    expect(statSync(join(dir, `${id}.jsonl`)).size).toBeGreaterThan(16 * 1024);
    const a = new Ledger(dir, capture());
    await a.load([id]);
    expect(a.get(`m:${m}|r:a`, m)?.usage).toEqual(u(7, 7));
    expect(a.sameMessage(m, `m:${m}|r:z`).map((e) => e.key)).toEqual([`m:${m}|r:a`]);
  });

  it('corrupt lines met by a lookup are logged; compaction of a lazily read shard still keeps every key', async () => {
    const { id, messages } = sameShardIds(40);
    mkdirSync(dir, { recursive: true });
    const m = messages[0] as string;
    const lines = messages.map((x) => ledgerLine(toLedgerEntry(`m:${x}|r:a`, x, false, 'claude-a', u(1, 1))));
    writeFileSync(join(dir, `${id}.jsonl`), `${[...lines, ...lines, ...lines, ...lines, ...lines].join('\n')}\n{"k":"m:${m}|r:a","m":"${m}","i":\n`);
    const log = capture();
    const a = new Ledger(dir, log);
    await a.load([id]);
    expect(a.get(`m:${m}|r:a`, m)?.usage).toEqual(u(1, 1));
    expect(log.lines.some((l) => l.startsWith('error') && l.includes('corrupt'))).toBe(true);
    await a.compact(id);
    const b = new Ledger(dir, capture());
    await b.load([id]);
    for (const x of messages) expect(b.get(`m:${x}|r:a`, x)?.usage, x).toEqual(u(1, 1));
    expect(readFileSync(join(dir, `${id}.jsonl`), 'utf8').trim().split('\n')).toHaveLength(messages.length);
  });
});

/** How many times `JSON.parse` ran during `run` (each ledger line parsed is one). */
async function parsesDuring(run: () => Promise<void>): Promise<number> {
  const spy = vi.spyOn(JSON, 'parse');
  try {
    await run();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

/** sameMessage's entries in key order: its callers take their maximum and whether any is a parent's, so order is not part of it. */
function byKey(entries: readonly CountedEntry[]): CountedEntry[] {
  return [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function pick3(random: () => number): string {
  return ['claude-a', 'claude-b', ''][Math.floor(random() * 3)] as string;
}

describe('Ledger.append of a committed state file\'s lines (OutboxLines)', () => {
  const NOW = new Date('2026-11-20T02:00:00Z');
  const many = (n: number) => Array.from({ length: n }, (_, i) => toLedgerEntry(`m:msg_${i}|r:req_${i}`, `msg_${i}`, i % 7 === 0, 'claude-x', u(i, 2 * i, 3, 4), 's1'));
  const shardFiles = (d: string) => Object.fromEntries(readdirSync(d).map((f) => [f, readFileSync(join(d, f), 'utf8')]));

  /** A state file of `entries` written as stateText does; the OutboxLines it filled. */
  async function committed(entries: LedgerEntry[]): Promise<OutboxLines> {
    const paths = statePaths(join(root, 'data'));
    mkdirSync(paths.dir, { recursive: true });
    const state = freshSessionState(SESSION, join(root, 't.jsonl'), NOW);
    state.outbox = [{ report: null, ledger: entries }];
    const written = new OutboxLines(paths.sessionOffset(SESSION));
    await writeSessionState(paths, state, written);
    return written;
  }

  it('copies each shard\'s lines from the state file: the shards are byte for byte what serialising the entries gives', async () => {
    const plainDir = join(root, 'plain');
    const entries = many(3000);
    const ledger = new Ledger(dir, capture(), () => NOW);
    ledger.stamp(entries);
    const written = await committed(entries);
    expect(written.ranges.size).toBeGreaterThan(200);
    await ledger.append(entries, written);
    await new Ledger(plainDir, capture(), () => NOW).append(many(3000));
    expect(shardFiles(dir)).toEqual(shardFiles(plainDir));
    // And a ledger read afresh sees every entry.
    const back = new Ledger(dir, capture());
    await back.load(entries.map(entryShard));
    for (const e of entries) expect(back.get(e.k, e.m)?.usage).toEqual(entryUsage(e));
  });

  it('writes what the state file holds (it does not serialise the entries again)', async () => {
    const entries = many(200);
    const ledger = new Ledger(dir, capture(), () => NOW);
    ledger.stamp(entries);
    const written = await committed(entries);
    // The file's copy of one entry's line says 99 output tokens (10 in the entry, so no byte
    // moves): that is what its shard gets.
    const path = written.path;
    const first = entries[5] as LedgerEntry;
    expect(first.o).toBe(10);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace(`${ledgerLine(first)}\n`, `${ledgerLine({ ...first, o: 99 })}\n`));
    await ledger.append(entries, written);
    const fresh = new Ledger(dir, capture());
    await fresh.load([entryShard(first)]);
    expect(fresh.get(first.k, first.m)?.usage.output_tokens).toBe(99);
  });

  it('serialises a shard\'s entries when the file does not hold whole lines there, or is gone', async () => {
    const entries = many(300);
    const ledger = new Ledger(dir, capture(), () => NOW);
    ledger.stamp(entries);
    const written = await committed(entries);
    const [shard, ranges] = [...written.ranges][0] as [string, [number, number][]];
    (ranges[0] as [number, number])[0] += 1; // now starts inside a line
    await ledger.append(entries, written);
    const plainDir = join(root, 'plain');
    await new Ledger(plainDir, capture(), () => NOW).append(many(300));
    expect(readFileSync(join(dir, `${shard}.jsonl`), 'utf8')).toBe(readFileSync(join(plainDir, `${shard}.jsonl`), 'utf8'));
    expect(shardFiles(dir)).toEqual(shardFiles(plainDir));

    rmSync(dir, { recursive: true, force: true });
    rmSync(written.path);
    await new Ledger(dir, capture(), () => NOW).append(entries, written);
    expect(shardFiles(dir)).toEqual(shardFiles(plainDir));
  });
});

describe('Ledger.prepareShards (a first read of a long session)', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  it('creates every missing shard file 0600 while the run reads; the append writes through them and they read back', async () => {
    const a = new Ledger(dir, capture());
    const before = openFds();
    a.prepareShards();
    const ids = Array.from({ length: 2000 }, (_, n) => `msg_first_${n}`);
    const entries = ids.map((m, n) => entry(`m:${m}|r:r`, m, u(1, n + 1)));
    // As countGroups does: the shards known empty count as loaded, no file read first.
    for (const e of entries) {
      expect(a.get(e.k, e.m)).toBeUndefined();
      a.stage(e);
    }
    await a.append(entries);
    await a.releasePrepared();
    expect(openFds()).toBe(before);
    const files = readdirSync(dir).filter((f) => /^[0-9a-f]{2}\.jsonl$/.test(f));
    expect(files).toHaveLength(256);
    for (const f of files) expect((statSync(join(dir, f)).mode & 0o777).toString(8)).toBe('600');
    const b = new Ledger(dir, capture());
    await b.load(ids.map((m) => shardOf(m)));
    for (const [n, m] of ids.entries()) expect(b.get(`m:${m}|r:r`, m)?.usage, m).toEqual(u(1, n + 1));
    const lines = files.reduce((total, f) => total + readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
    expect(lines).toBe(ids.length);
  });

  it('leaves shards that exist alone: their entries are still loaded from disk, and appended to', async () => {
    await new Ledger(dir, capture()).append([entry('m:old|r:1', 'old', u(3, 30))]);
    const shard = join(dir, `${shardOf('old')}.jsonl`);
    const text = readFileSync(shard, 'utf8');
    const a = new Ledger(dir, capture());
    a.prepareShards();
    await a.load([shardOf('old')]);
    expect(a.get('m:old|r:1', 'old')?.usage).toEqual(u(3, 30));
    await a.append([entry('m:old|r:2', 'old', u(1, 1))]);
    await a.releasePrepared();
    expect(readFileSync(shard, 'utf8').startsWith(text)).toBe(true);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('old')]);
    expect(b.sameMessage('old', 'x').map((e) => e.key).sort()).toEqual(['m:old|r:1', 'm:old|r:2']);
  });

  it('a run that commits nothing closes what it opened; the empty files it leaves are empty shards', async () => {
    const before = openFds();
    const a = new Ledger(dir, capture());
    a.prepareShards();
    await a.append([]);
    await a.releasePrepared();
    expect(openFds()).toBe(before);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('msg_x')]);
    expect(b.get('m:msg_x|r:r', 'msg_x')).toBeUndefined();
    await b.append([entry('m:msg_x|r:r', 'msg_x', u(1, 2))]);
    const c = new Ledger(dir, capture());
    await c.load([shardOf('msg_x')]);
    expect(c.get('m:msg_x|r:r', 'msg_x')?.usage).toEqual(u(1, 2));
  });

  it('a ledger directory it cannot make (a file in its place) leaves everything to the append, which reports it', async () => {
    writeFileSync(dir, 'not a directory');
    const a = new Ledger(dir, capture());
    a.prepareShards();
    await a.releasePrepared();
    await expect(a.append([entry('m:y|r:r', 'y', u(1, 1))])).rejects.toThrow();
  });
});

describe('entries', () => {
  it('parseLedgerLine validates and zeroes bad counters', () => {
    expect(parseLedgerLine('{"k":"a","m":null,"sc":false,"model":"x","i":-1,"o":2.5,"cr":"3","cw":4}')).toEqual({
      k: 'a',
      m: null,
      sc: false,
      model: 'x',
      i: 0,
      o: 0,
      cr: 0,
      cw: 4,
    });
    for (const bad of ['', 'x', '[]', 'null', '{"k":""}', '{"k":1}', '{"k":"a","m":5}']) expect(parseLedgerLine(bad)).toBeNull();
  });

  it('keeps the session that first counted a key', async () => {
    const a = new Ledger(dir, capture());
    await a.append([toLedgerEntry('m:s|r:1', 's', false, 'x', u(1, 1), 'session-1')]);
    await a.append([toLedgerEntry('m:s|r:1', 's', false, 'x', u(2, 2), 'session-2')]);
    const b = new Ledger(dir, capture());
    await b.load([shardOf('s')]);
    expect(b.get('m:s|r:1', 's')).toMatchObject({ sessionId: 'session-1', usage: u(2, 2) });
    expect(parseLedgerLine('{"k":"a","s":""}')?.s).toBeUndefined();
  });

  it('mergeEntries: field-wise max; a non-sidechain sighting wins', () => {
    const m = mergeEntries(entry('k', 'm', u(1, 9), true), entry('k', 'm', u(0, 400), false));
    expect(m).toMatchObject({ sc: false, i: 1, o: 400 });
  });
});

describe('entry shapes', () => {
  // V8's own view of two objects' hidden classes (natives syntax, enabled for this one function).
  setFlagsFromString('--allow-natives-syntax');
  const sameShape = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

  it("a session's totals past 2^30 tokens leave the messages' entries as they were (no shape to rebuild)", () => {
    const before = toLedgerEntry('m1:r1', 'm1', false, 'claude-x', { ...u(10, 20, 30, 40), cache_write_5m_tokens: 40 });
    // A count that arrives as a double although it is small (a usage object that once held a big total).
    const doubled = toLedgerEntry('m2:r2', 'm2', false, 'claude-x', { ...u(11, 21, 0.5 + 30.5, 41), cache_write_5m_tokens: 41 });
    const totals = toLedgerEntry('cs:s|claude-x', null, false, 'claude-x', { ...u(5_000, 900, 3_500_000_000, 2_200_000_000), cache_write_5m_tokens: 1 });
    const after = toLedgerEntry('m3:r3', 'm3', false, 'claude-x', { ...u(12, 22, 32, 42), cache_write_5m_tokens: 42 });
    expect(sameShape(before, after)).toBe(true);
    expect(sameShape(before, doubled)).toBe(true);
    expect(sameShape(before, totals)).toBe(false);
    // The same entries to every reader.
    expect(parseLedgerLine(JSON.stringify(totals))).toEqual(totals);
    expect(totals).toEqual({ k: 'cs:s|claude-x', m: null, sc: false, model: 'claude-x', i: 5_000, o: 900, cr: 3_500_000_000, cw: 2_200_000_000, c5: 1 });
    expect(doubled.cr).toBe(31);
    expect(parseLedgerLine(JSON.stringify(before))).toEqual(before);
  });
});

