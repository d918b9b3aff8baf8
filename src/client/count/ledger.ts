/**
 * The data-dir-wide record of what has been reported per message group, so that resumed or forked
 * copies and /btw replays are not reported twice and late increases are reported as differences.
 *
 * Layout: `<ledgerDir>/<xx>.jsonl`, 256 shards chosen by an FNV-1a byte of (message id, or the
 * key when there is none), so every key of one message id lives in one shard and a replay check
 * needs only that shard. Lines are append-only `{"k","m","sc","model","i","o","cr","cw","c5","c1","ws","s"}`
 * (`c5`/`c1`/`ws`, the schema-v2 detail, only when non-zero; `t`, the UTC day number of the
 * append that last raised the entry, stamped by `append`, absent on older lines); loading
 * keeps the field-wise maximum per key, so appending the same entry twice is harmless (the commit
 * protocol re-applies an outbox after a crash). A shard over 1 MiB is compacted to one line per key.
 * `rewriteShard` drops what is no longer needed (prune.ts decides what that is).
 *
 * Only the shards a run touches are read: per-turn cost depends on the new lines, not on history.
 * Callers hold the state lock for every read-modify-write.
 */
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import type { ModelUsage } from '../../protocol/wire';
import { FileHandle, mkdir, open, readFile, stat, unlink } from '../local/fs';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic } from '../local/fsx';
import type { Logger } from '../local/log';
import { type CountedEntry, count, maxUsage } from './usage';

export const SHARD_COMPACT_BYTES = 1024 * 1024;
/** Shard fsyncs in flight at once, in a batch of at least THREADED_APPEND_MIN_SHARDS. */
const APPEND_CONCURRENCY = 16;
/** Shards of a batch held open at once (written, then synced together): well below any fd limit. */
const OPEN_SHARDS_AT_ONCE = 64;
/**
 * From this many shards a batch's fsyncs go through the thread pool, so that they overlap (a
 * session's first read: up to 256, one after another the largest part of its commit). Only the
 * fsyncs: every other call of an append is a page-cache operation of microseconds, and as a pool
 * job each cost the worker a round trip through the pool's queue and locks (a first read's ~1,300
 * of them). A turn's batch (1–3 shards) is synced directly: starting the pool costs more than its
 * overlap saves there.
 */
export const THREADED_APPEND_MIN_SHARDS = 8;

/** One ledger line: the maximum reported so far for a key. */
export interface LedgerEntry {
  k: string;
  m: string | null;
  sc: boolean;
  model: string;
  i: number;
  o: number;
  cr: number;
  cw: number;
  /** Schema-v2 detail (cache writes 5m / 1h, web searches); written only when non-zero. */
  c5?: number;
  c1?: number;
  ws?: number;
  /** The session that first counted the key (a lost session state finds its own groups by it). */
  s?: string;
  /** UTC day number (days since 1970-01-01) of the append that last raised the entry. */
  t?: number;
}

/** Days since 1970-01-01 (UTC) of a time. */
export function dayNumber(at: Date): number {
  return Math.floor(at.getTime() / 86_400_000);
}

/** Every shard id: the two hex digits of a byte (shardOf). */
const ALL_SHARD_IDS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/**
 * FNV-1a (32-bit) over the UTF-16 code units, folded to one byte. Not a security boundary, only a
 * spread: a SHA-1 per lookup cost ~20 % of a cold read of a long transcript (several lookups per
 * group). Changing this function moves every key: it is part of the on-disk format.
 */
export function shardOf(messageIdOrKey: string): string {
  // A group's lookups, its staging and its append all ask for the same id, one after another.
  if (messageIdOrKey === lastShardOf.id) return lastShardOf.shard;
  let hash = 0x811c9dc5;
  for (let i = 0; i < messageIdOrKey.length; i++) {
    hash ^= messageIdOrKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  const byte = (hash ^ (hash >>> 8) ^ (hash >>> 16) ^ (hash >>> 24)) & 0xff;
  const shard = ALL_SHARD_IDS[byte] as string;
  lastShardOf.id = messageIdOrKey;
  lastShardOf.shard = shard;
  return shard;
}

/** shardOf's last answer. */
const lastShardOf: { id: string | null; shard: string } = { id: null, shard: '' };

export function shardOfEntry(entry: { messageId: string | null; key: string }): string {
  return shardOf(entry.messageId ?? entry.key);
}

/** The shard a ledger entry is appended to. */
export function entryShard(e: LedgerEntry): string {
  return shardOf(e.m ?? e.k);
}

/** The entries of each shard, shards in order of first appearance, each shard's entries in their order. */
export function entriesByShard(entries: readonly LedgerEntry[]): Map<string, LedgerEntry[]> {
  const shards = new Map<string, LedgerEntry[]>();
  for (const e of entries) {
    const shard = entryShard(e);
    const list = shards.get(shard);
    if (list === undefined) shards.set(shard, [e]);
    else list.push(e);
  }
  return shards;
}

/**
 * Where a written state file holds each shard's ledger lines (session-state.ts, stateText): byte
 * ranges, per shard in the order of its entries. `append` copies them into the shards.
 */
export class OutboxLines {
  readonly ranges = new Map<string, [number, number][]>();

  constructor(readonly path: string) {}

  add(shard: string, offset: number, bytes: number): void {
    const list = this.ranges.get(shard);
    if (list === undefined) this.ranges.set(shard, [[offset, bytes]]);
    else list.push([offset, bytes]);
  }
}

export function entryUsage(e: LedgerEntry): ModelUsage {
  const u: ModelUsage = { input_tokens: e.i, output_tokens: e.o, cache_read_tokens: e.cr, cache_write_tokens: e.cw };
  if (e.c5 !== undefined) u.cache_write_5m_tokens = e.c5;
  if (e.c1 !== undefined) u.cache_write_1h_tokens = e.c1;
  if (e.ws !== undefined) u.web_search_requests = e.ws;
  return u;
}

/** Sets the detail fields that are non-zero (a line without them reads as zero). */
function setDetail(entry: LedgerEntry, c5: number, c1: number, ws: number): void {
  if (c5 > 0) entry.c5 = c5;
  if (c1 > 0) entry.c1 = c1;
  if (ws > 0) entry.ws = ws;
}

/** The largest counter V8 keeps as a small integer in an object's field (31-bit Smis). */
const SMALL_COUNTER = 2 ** 30 - 1;

/**
 * A new entry. Its counters are numbers that V8 keeps either as small integers or as doubles, and
 * an object's shape (hidden class) records which: the first double stored into a shape's field
 * turns that field into a double for the whole shape, and V8 then rebuilds every object made with
 * the old shape, one by one, on its next access. A session's totals (cost-state entries, turn
 * marks) pass 2^30 cache-read tokens within days, and a usage object that ever held one hands
 * out even small counts as doubles; on the bench's first read of a 300k-line transcript that
 * rebuilt 41,467 entries in the commit's first loop over them (~100 ms). So small counters are
 * stored as small integers (`| 0`), and an entry with a larger one gets the same keys in another
 * order, which is another shape to V8 (and the same entry to every reader: lines are read by key).
 */
function newEntry(
  k: string,
  m: string | null,
  sc: boolean,
  model: string,
  [i, o, cr, cw]: readonly [number, number, number, number],
  [c5, c1, ws]: readonly [number, number, number],
): LedgerEntry {
  if (Math.max(i, o, cr, cw, c5, c1, ws) > SMALL_COUNTER) {
    const big: LedgerEntry = { k, m, sc, model, cw, cr, o, i };
    setDetail(big, c5, c1, ws);
    return big;
  }
  const entry: LedgerEntry = { k, m, sc, model, i: i | 0, o: o | 0, cr: cr | 0, cw: cw | 0 };
  setDetail(entry, c5 | 0, c1 | 0, ws | 0);
  return entry;
}

export function toLedgerEntry(
  key: string,
  messageId: string | null,
  sidechain: boolean,
  model: string,
  u: ModelUsage,
  sessionId?: string,
): LedgerEntry {
  const entry = newEntry(
    key,
    messageId,
    sidechain,
    model,
    [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens],
    [count(u.cache_write_5m_tokens), count(u.cache_write_1h_tokens), count(u.web_search_requests)],
  );
  if (sessionId !== undefined) entry.s = sessionId;
  return entry;
}

function toCounted(e: LedgerEntry): CountedEntry {
  const counted: CountedEntry = { key: e.k, messageId: e.m, sidechain: e.sc, usage: entryUsage(e) };
  if (e.s !== undefined) counted.sessionId = e.s;
  return counted;
}

/**
 * An entry's shard line: JSON.stringify(e) built field by field (a first read commits 40k+
 * entries, and a JSON.stringify call each was ~2.5 µs of its commit). Keys in the order
 * toLedgerEntry makes them, so for such an entry the text is JSON.stringify's; for any entry it
 * parses to the same value (keys are read by name).
 */
export function ledgerLine(e: LedgerEntry): string {
  let line = `{"k":${quote(e.k)},"m":${e.m === null ? 'null' : quote(e.m)},"sc":${e.sc === true},"model":${quote(e.model)},"i":${num(e.i)},"o":${num(e.o)},"cr":${num(e.cr)},"cw":${num(e.cw)}`;
  if (e.c5 !== undefined) line += `,"c5":${num(e.c5)}`;
  if (e.c1 !== undefined) line += `,"c1":${num(e.c1)}`;
  if (e.ws !== undefined) line += `,"ws":${num(e.ws)}`;
  if (e.s !== undefined) line += `,"s":${quote(e.s)}`;
  if (e.t !== undefined) line += `,"t":${num(e.t)}`;
  return `${line}}`;
}

/**
 * The shard lines of `entries`, each followed by `\n`: what `ledgerLine` of each gives (for
 * entries toLedgerEntry or parseLedgerLine made: the same text; for any other, the same values),
 * made by one JSON.stringify of the list rather than a string per entry (a first read's 40k+
 * entries: ~60 against ~180 ms, the append's largest part). The list's text is `[e1,e2,…]`:
 * each separator is a `},{`, and the sequence cannot overlap itself, so when the text holds
 * exactly one per separator no string inside an entry holds it, and replacing them all cuts the
 * entries apart. Otherwise (an id holding `},{`) entry by entry.
 */
export function shardLines(entries: readonly LedgerEntry[]): string {
  if (entries.length === 0) return '';
  const text = JSON.stringify(entries);
  let separators = 0;
  for (let at = text.indexOf(SEPARATOR); at !== -1; at = text.indexOf(SEPARATOR, at + SEPARATOR.length)) separators++;
  if (separators !== entries.length - 1) return entries.map((e) => `${ledgerLine(e)}\n`).join('');
  return `${text.slice(1, -1).replaceAll(SEPARATOR, '}\n{')}\n`;
}

const SEPARATOR = '},{';

/** What JSON.stringify must escape in a string: `"`, `\`, control characters, lone surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** A number as JSON.stringify writes it (a non-finite one as null). */
function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

/** Parses one shard line; null when it is not a ledger entry. */
export function parseLedgerLine(line: string): LedgerEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.k !== 'string' || o.k.length === 0) return null;
  if (o.m !== null && o.m !== undefined && typeof o.m !== 'string') return null;
  const entry = newEntry(
    o.k,
    typeof o.m === 'string' && o.m.length > 0 ? o.m : null,
    o.sc === true,
    typeof o.model === 'string' ? o.model : '',
    [count(o.i), count(o.o), count(o.cr), count(o.cw)],
    [count(o.c5), count(o.c1), count(o.ws)],
  );
  if (typeof o.s === 'string' && o.s.length > 0) entry.s = o.s;
  const t = count(o.t);
  if (t > 0) entry.t = t;
  return entry;
}

/** Max-merge of two entries of one key (`a` first): counters field-wise max; non-sidechain wins; first session kept. */
export function mergeEntries(a: LedgerEntry, b: LedgerEntry): LedgerEntry {
  const u = maxUsage(entryUsage(a), entryUsage(b));
  const merged = toLedgerEntry(a.k, a.m ?? b.m, a.sc && b.sc, b.model || a.model, u, a.s ?? b.s);
  const t = Math.max(a.t ?? 0, b.t ?? 0);
  if (t > 0) merged.t = t;
  return merged;
}

function covers(a: LedgerEntry, b: LedgerEntry): boolean {
  return (
    a.i >= b.i &&
    a.o >= b.o &&
    a.cr >= b.cr &&
    a.cw >= b.cw &&
    (a.c5 ?? 0) >= (b.c5 ?? 0) &&
    (a.c1 ?? 0) >= (b.c1 ?? 0) &&
    (a.ws ?? 0) >= (b.ws ?? 0) &&
    (!a.sc || b.sc) &&
    (a.m !== null || b.m === null) &&
    (a.s !== undefined || b.s === undefined) &&
    (a.t ?? 0) >= (b.t ?? 0)
  );
}

interface Shard {
  byKey: Map<string, LedgerEntry>;
  /** The keys of each message id: the one key itself (most messages have one), else a set. */
  byMessage: Map<string, string | Set<string>>;
  /** Lines on disk (valid or not): compaction only pays when they clearly outnumber the keys. */
  diskLines: number;
  /** A shard read for lookups whose lines are parsed as their ids are looked up; null once all are in the maps. */
  unread: UnreadLines | null;
}

/**
 * The text of a shard read by `load`, and the ids whose lines are in the shard's maps already. A
 * key's lines are all put at once, in file order, before any entry of this run for that key (put
 * merges in order: a merged entry's model and session are order's), so the maps answer for a
 * resolved key exactly as a whole parse would; a message id resolves every key holding it.
 */
interface UnreadLines {
  id: string;
  text: string;
  keys: Set<string>;
  messages: Set<string>;
  /** Searches of the text so far: past LAZY_SEARCHES_MAX the rest is parsed (each search reads all of it). */
  searches: number;
}

/**
 * A shard looked up this many times is parsed whole: a first read of another long session looks
 * up ~170 ids in each shard, and a search each would read its text that many times.
 */
const LAZY_SEARCHES_MAX = 16;

/** A load of this many shards or more parses them whole (a turn looks up 1–3). */
const LAZY_MAX_SHARDS_AT_ONCE = 8;

/**
 * From this size a shard read for lookups is parsed line by line as ids are looked up: a turn of a
 * long session looks up 2–3 shards of ~600 entries each, and parsing them whole was the gap
 * between its turns and a short session's (docs/bench.md, "At the end of session 10").
 */
const LAZY_SHARD_MIN_CHARS = 16 * 1024;

/**
 * An id found as it is in a line's text: JSON.stringify writes such a string verbatim. A shard
 * holding a backslash anywhere is parsed whole (an id could be written with escapes there).
 */
const VERBATIM_ID = /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/;

function emptyShard(): Shard {
  return { byKey: new Map(), byMessage: new Map(), diskLines: 0, unread: null };
}

/** Non-empty lines of a shard's text. */
function countLines(text: string): number {
  let lines = 0;
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
    if (nl > start) lines++;
    start = nl + 1;
  }
  return start < text.length ? lines + 1 : lines;
}

/** The entries of the lines of `text` that hold `id` (in file order), and how many of those lines are corrupt. */
function linesHolding(text: string, id: string): { entries: LedgerEntry[]; corrupt: number } {
  const entries: LedgerEntry[] = [];
  let corrupt = 0;
  for (let at = text.indexOf(id); at !== -1; ) {
    const start = text.lastIndexOf('\n', at) + 1;
    let end = text.indexOf('\n', at);
    if (end === -1) end = text.length;
    const entry = parseLedgerLine(text.slice(start, end));
    if (entry === null) corrupt++;
    else entries.push(entry);
    at = text.indexOf(id, end);
  }
  return { entries, corrupt };
}

/** What a search of a shard finds when there is nothing to search (every lookup of a shard parsed whole). */
const NO_LINES: readonly LedgerEntry[] = Object.freeze([]);

/** What sameMessage returns for a message id the ledger has no key of (most, on a first read): one shared empty list. */
const NO_ENTRIES: readonly CountedEntry[] = Object.freeze([]);

/** Compaction rewrites a shard only when it has at least this many lines per key. */
const COMPACT_MIN_LINES_PER_KEY = 1.5;


export class Ledger {
  private readonly shards = new Map<string, Shard>();
  /** The shard files being created ahead of a large append (prepareShards); awaited by append. */
  private prepared: Promise<void> | null = null;
  /** The files prepareShards created, still open (shard id → fd): append writes them without opening them again. */
  private readonly created = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    /** The clock that stamps `t` on appended entries. */
    private readonly now: () => Date = () => new Date(),
  ) {}

  private shardPath(shard: string): string {
    return join(this.dir, `${shard}.jsonl`);
  }

  /**
   * Reads the given shards (those not loaded yet) for lookups. A missing shard is empty; corrupt
   * lines are skipped. A large shard's lines are parsed as their ids are looked up (UnreadLines).
   */
  async load(shardIds: Iterable<string>): Promise<void> {
    const ids = new Set(shardIds);
    // Many shards at once is a long read (a first read of another long session): each of them
    // will be looked up often, and parsing it whole is then cheaper than searching it each time.
    const whole = ids.size >= LAZY_MAX_SHARDS_AT_ONCE;
    for (const id of ids) if (!this.shards.has(id)) await this.loadShard(id, whole);
  }

  /** Reads one shard from disk into a new view; `whole`: every line parsed now. */
  private async loadShard(id: string, whole: boolean): Promise<Shard> {
    const shard = emptyShard();
    let text: string | null = null;
    try {
      text = await readFile(this.shardPath(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      if (!whole && text.length >= LAZY_SHARD_MIN_CHARS && !text.includes('\\')) {
        shard.diskLines = countLines(text);
        shard.unread = { id, text, keys: new Set(), messages: new Set(), searches: 0 };
      } else {
        shard.diskLines = this.putLines(shard, id, text, null);
      }
    }
    this.shards.set(id, shard);
    return shard;
  }

  /** Puts every line of `text` into the shard's maps in file order (but those of `skipKeys`); returns the non-empty lines. */
  private putLines(shard: Shard, id: string, text: string, skipKeys: ReadonlySet<string> | null): number {
    let lines = 0;
    let corrupt = 0;
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      lines++;
      const entry = parseLedgerLine(line);
      if (entry === null) corrupt++;
      else if (skipKeys === null || !skipKeys.has(entry.k)) this.put(shard, entry);
    }
    this.logCorrupt(id, corrupt);
    return lines;
  }

  private logCorrupt(id: string, corrupt: number): void {
    if (corrupt > 0) this.log.error(`ledger shard ${id}: skipped ${corrupt} corrupt line(s)`);
  }

  /**
   * The entries of a lazily read shard's lines holding `id`, searched for once per id and kind
   * (`keys` or `messages`); none when there is nothing to search: the shard is parsed whole, or
   * is now (an id JSON could escape, or past LAZY_SEARCHES_MAX searches).
   */
  private search(shard: Shard, id: string, kind: 'keys' | 'messages'): readonly LedgerEntry[] {
    const unread = shard.unread;
    if (unread === null || unread[kind].has(id)) return NO_LINES;
    if (!VERBATIM_ID.test(id) || ++unread.searches > LAZY_SEARCHES_MAX) {
      this.readRest(shard);
      return NO_LINES;
    }
    unread[kind].add(id);
    const { entries, corrupt } = linesHolding(unread.text, id);
    this.logCorrupt(unread.id, corrupt);
    return entries;
  }

  /** Puts a lazily read shard's lines of `key` into its maps (all of them, in file order), once. */
  private resolveKey(shard: Shard, key: string): void {
    for (const e of this.search(shard, key, 'keys')) if (e.k === key) this.put(shard, e);
  }

  /** Resolves every key a lazily read shard's lines give `messageId`, so byMessage lists them all. */
  private resolveMessage(shard: Shard, messageId: string): void {
    for (const e of this.search(shard, messageId, 'messages')) if (e.m === messageId) this.resolveKey(shard, e.k);
  }

  /**
   * Parses the lines of every key not resolved yet, in file order. Those keys have nothing in the
   * maps (an entry of this run resolves its key first), so the view becomes the whole parse's.
   */
  private readRest(shard: Shard): void {
    const unread = shard.unread;
    if (unread === null) return;
    shard.unread = null;
    this.putLines(shard, unread.id, unread.text, unread.keys);
  }

  private put(shard: Shard, entry: LedgerEntry): boolean {
    const existing = shard.byKey.get(entry.k);
    if (existing !== undefined && covers(existing, entry)) return false;
    const merged = existing === undefined ? entry : mergeEntries(existing, entry);
    shard.byKey.set(entry.k, merged);
    if (merged.m !== null) {
      // A set only for a message with several keys: a first read of a long session holds 100k+
      // messages, and a Set each was a few MB of its peak memory.
      const keys = shard.byMessage.get(merged.m);
      if (keys === undefined) shard.byMessage.set(merged.m, merged.k);
      else if (typeof keys !== 'string') keys.add(merged.k);
      else if (keys !== merged.k) shard.byMessage.set(merged.m, new Set([keys, merged.k]));
    }
    return true;
  }

  private loadedShard(messageIdOrKey: string): Shard {
    const shard = this.shards.get(shardOf(messageIdOrKey));
    if (shard === undefined) throw new Error('ledger shard not loaded');
    return shard;
  }

  /** The entry of a key (its shard must be loaded). */
  get(key: string, messageId: string | null): CountedEntry | undefined {
    const shard = this.loadedShard(messageId ?? key);
    this.resolveKey(shard, key);
    const e = shard.byKey.get(key);
    return e === undefined ? undefined : toCounted(e);
  }

  /** Entries of other keys carrying the same message id (its shard must be loaded). */
  sameMessage(messageId: string, exceptKey: string): readonly CountedEntry[] {
    const shard = this.loadedShard(messageId);
    this.resolveMessage(shard, messageId);
    const keys = shard.byMessage.get(messageId);
    if (keys === undefined) return NO_ENTRIES;
    const out: CountedEntry[] = [];
    for (const k of typeof keys === 'string' ? [keys] : keys) {
      if (k === exceptKey) continue;
      const e = shard.byKey.get(k);
      if (e !== undefined) out.push(toCounted(e));
    }
    return out;
  }

  /**
   * Makes an entry visible to later lookups of this run without writing it (the run's own view, so
   * a replay read later in the same run sees its parent). Durability comes from `append`.
   */
  stage(entry: LedgerEntry): void {
    const shard = this.loadedShard(entry.m ?? entry.k);
    this.resolveKey(shard, entry.k);
    this.put(shard, entry);
  }

  /**
   * For a run about to append to most shards (a first read of a long session commits entries to
   * all 256): the shards with no file yet are known empty now (the caller holds the state lock,
   * so no one else writes the ledger) and count as loaded, and their files are created in the
   * background, through libuv's thread pool, while the run still reads its transcript; append
   * then writes them through the descriptors this opened. Made by the append instead, each
   * creation waited for the journal commits of the fsyncs before it (~0.4 ms each on these
   * machines), and each lookup's load found no file first. An empty shard file holds no entries:
   * a run killed before its commit leaves nothing wrong behind. A creation that fails is left to
   * the append. The caller ends with releasePrepared.
   */
  prepareShards(): void {
    if (this.prepared !== null) return;
    const fs = process.getBuiltinModule('node:fs');
    let present: Set<string>;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
      present = new Set(fs.readdirSync(this.dir));
    } catch {
      return;
    }
    const missing = ALL_SHARD_IDS.filter((id) => !present.has(`${id}.jsonl`));
    for (const id of missing) if (!this.shards.has(id)) this.shards.set(id, emptyShard());
    // Every creation queued at once: the pool works through them while this thread reads (a
    // synchronous read loop turns no event loop, so a job queued from an earlier one's callback
    // would only start once the read is over).
    const flags = fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_EXCL;
    const opened = missing.map(
      (id) =>
        new Promise<void>((resolve) =>
          fs.open(this.shardPath(id), flags, PRIVATE_FILE_MODE, (err, fd) => {
            if (!err) this.created.set(id, fd);
            resolve();
          }),
        ),
    );
    this.prepared = Promise.all(opened).then(() => undefined);
  }

  /** Closes the files prepareShards opened that no append wrote (shards the run committed nothing to). */
  async releasePrepared(): Promise<void> {
    if (this.prepared === null) return;
    await this.prepared;
    const { closeSync } = process.getBuiltinModule('node:fs');
    for (const fd of this.created.values()) closeSync(fd);
    this.created.clear();
  }

  /**
   * Appends entries durably (fsync per shard). Idempotent: re-appending what is there changes
   * nothing on load. Entries already covered by a loaded shard's view are still written, since the
   * view may hold staged entries that are not on disk yet. Compacts shards that grew over 1 MiB.
   */
  async append(entries: readonly LedgerEntry[], written?: OutboxLines): Promise<void> {
    if (entries.length === 0) return;
    this.stamp(entries);
    const byShard = entriesByShard(entries);
    if (this.prepared !== null) await this.prepared;
    await mkdir(this.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const batch = [...byShard];
    // One buffer, reused shard after shard: a string and a buffer per shard stayed allocated
    // until a garbage collection, and on a first read they were the commit's peak.
    const lines = new LineBuffer();
    // A turn's short outbox is written as JSON (no ranges): its state file is not opened again.
    const source = written === undefined || written.ranges.size === 0 ? null : await WrittenLines.open(written);
    try {
      await this.appendBatch(batch, lines, source);
    } finally {
      await source?.close();
    }
  }

  /**
   * Stamps today's day on the entries (`t`, what pruning reads), in place: they belong to the
   * outbox being committed or applied (a copy each cost a first read of a long session 100k+
   * objects). The commit stamps them before writing its state, so the lines written there are
   * the shards' lines.
   */
  stamp(entries: readonly LedgerEntry[]): void {
    const today = dayNumber(this.now());
    for (const e of entries) if ((e.t ?? 0) < today) e.t = today;
  }

  private async appendBatch(batch: [string, LedgerEntry[]][], lines: LineBuffer, source: WrittenLines | null): Promise<void> {
    const threaded = batch.length >= THREADED_APPEND_MIN_SHARDS;
    for (let from = 0; from < batch.length; from += OPEN_SHARDS_AT_ONCE) {
      const group = batch.slice(from, from + OPEN_SHARDS_AT_ONCE);
      // Every shard of the group written, then all synced: creating a file waits for the journal
      // commit an fsync in flight holds, so written one by one between syncs each open took ~0.3 ms.
      const written: { id: string; list: LedgerEntry[]; handle: FileHandle; size: number }[] = [];
      try {
        for (const [id, list] of group) {
          lines.reset();
          if (source === null || !(await source.readInto(id, lines))) lines.add(shardLines(list));
          const fd = this.created.get(id);
          this.created.delete(id);
          const { handle, size } = fd === undefined ? await appendLines(this.shardPath(id), lines) : await writeNewFile(new FileHandle(fd), lines);
          written.push({ id, list, handle, size });
        }
        await syncAll(
          written.map((w) => w.handle),
          threaded,
        );
      } finally {
        for (const w of written) await w.handle.close();
      }
      for (const { id, list, size } of written) {
        const shard = this.shards.get(id);
        if (shard !== undefined) {
          for (const e of list) {
            this.resolveKey(shard, e.k);
            this.put(shard, e);
          }
          shard.diskLines += list.length;
        }
        if (size > SHARD_COMPACT_BYTES) await this.compact(id);
      }
    }
  }

  /**
   * Rewrites a shard atomically with one line per key (max-merged), unless it is already mostly
   * one line per key (a shard of many distinct keys would otherwise be rewritten on every append).
   */
  async compact(id: string): Promise<void> {
    const cached = this.shards.get(id);
    if (cached !== undefined) {
      // Its counts need every key: a lazily read shard has its other lines parsed now.
      this.readRest(cached);
      if (cached.diskLines < cached.byKey.size * COMPACT_MIN_LINES_PER_KEY) return;
    }
    // From disk only: an entry staged by a run that has not committed must never be written.
    this.shards.delete(id);
    const shard = await this.loadShard(id, true);
    if (shard.diskLines < shard.byKey.size * COMPACT_MIN_LINES_PER_KEY) return;
    const lines = [...shard.byKey.values()].map((e) => `${ledgerLine(e)}\n`);
    await writeFileAtomic(this.shardPath(id), lines.join(''));
    shard.diskLines = lines.length;
    this.log.activity(`ledger shard ${id} compacted to ${lines.length} key(s)`);
  }

  /**
   * Rewrites a shard from disk with one line per key, each entry passed through `decide`: null
   * drops it, another entry replaces it. Writes nothing when nothing changed and the shard is
   * already one line per key. Returns the number of keys dropped. The caller holds the state lock;
   * the shard's cached view is forgotten (the next lookup reads the new file).
   */
  async rewriteShard(id: string, decide: (e: LedgerEntry) => LedgerEntry | null): Promise<{ kept: number; dropped: number }> {
    this.shards.delete(id);
    const shard = await this.loadShard(id, true);
    this.shards.delete(id);
    let changed = shard.diskLines !== shard.byKey.size;
    let dropped = 0;
    const lines: string[] = [];
    for (const e of shard.byKey.values()) {
      const next = decide(e);
      if (next === null) dropped++;
      else lines.push(`${ledgerLine(next)}\n`);
      if (next !== e) changed = true;
    }
    if (changed) {
      if (lines.length === 0) await unlinkIfExists(this.shardPath(id));
      else await writeFileAtomic(this.shardPath(id), lines.join(''));
    }
    return { kept: lines.length, dropped };
  }

  /** Number of shards read so far (for tests and benchmarks of the per-turn cost). */
  get loadedShardCount(): number {
    return this.shards.size;
  }
}

/**
 * fsyncs the files: one after another, or (`threaded`) through the thread pool, up to
 * APPEND_CONCURRENCY at once (node:fs's callback form: no promise machinery per call).
 */
async function syncAll(handles: readonly FileHandle[], threaded: boolean): Promise<void> {
  if (!threaded) {
    for (const handle of handles) await handle.sync();
    return;
  }
  const { fsync } = process.getBuiltinModule('node:fs');
  let next = 0;
  const lane = async () => {
    for (let h = next++; h < handles.length; h = next++) {
      const fd = (handles[h] as FileHandle).fd;
      await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
    }
  };
  // Every lane finished before the caller closes the files, even when one fsync failed: a file
  // closed under an fsync in flight could be another file by the time it runs.
  const lanes = await Promise.allSettled(Array.from({ length: Math.min(APPEND_CONCURRENCY, handles.length) }, lane));
  for (const result of lanes) if (result.status === 'rejected') throw result.reason;
}

/**
 * Appends the lines to the file (not synced yet) and returns it open, with its new size. A crash
 * can leave a torn last line without its `\n`: the new text then starts on a fresh line so it is
 * not glued to the torn one (which load skips as corrupt).
 */
async function appendLines(path: string, lines: LineBuffer): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT, PRIVATE_FILE_MODE);
  try {
    const { size } = await handle.stat();
    let newlineFirst = false;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      newlineFirst = last[0] !== 0x0a;
    }
    const [buf, from, to] = lines.bytes(newlineFirst);
    for (let at = from; at < to; ) at += (await handle.write(buf, at, to - at)).bytesWritten;
    return { handle, size: size + (to - from) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** appendLines for a file prepareShards created (new and empty, open for appending): the lines alone. */
async function writeNewFile(handle: FileHandle, lines: LineBuffer): Promise<{ handle: FileHandle; size: number }> {
  try {
    const [buf, from, to] = lines.bytes(false);
    for (let at = from; at < to; ) at += (await handle.write(buf, at, to - at)).bytesWritten;
    return { handle, size: to - from };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The state file an OutboxLines describes, open for reading its shards' lines back. */
class WrittenLines {
  private constructor(
    private readonly written: OutboxLines,
    private readonly handle: FileHandle,
  ) {}

  static async open(written: OutboxLines): Promise<WrittenLines | null> {
    try {
      return new WrittenLines(written, await open(written.path, 'r'));
    } catch {
      return null; // then every shard's lines are made again from the entries
    }
  }

  /**
   * Adds the shard's lines as the file holds them; false (and nothing added) when it holds none
   * for the shard or what it holds is not whole lines.
   */
  async readInto(shard: string, lines: LineBuffer): Promise<boolean> {
    const ranges = this.written.ranges.get(shard);
    if (ranges === undefined) return false;
    for (const [offset, bytes] of ranges) {
      if (!(await lines.read(this.handle, offset, bytes))) {
        lines.reset();
        return false;
      }
    }
    return true;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** JSON lines encoded into one growing buffer; byte 0 is kept for a leading `\n`. */
class LineBuffer {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private length = 1;

  reset(): void {
    this.length = 1;
  }

  /** Adds `text`: whole lines, each ending in `\n`. */
  add(text: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    this.reserve(text.length * 3);
    this.length += this.buf.write(text, this.length);
  }

  /** Adds `bytes` bytes of the file from `offset`: whole lines (false, and nothing added, when they are not). */
  async read(handle: FileHandle, offset: number, bytes: number): Promise<boolean> {
    this.reserve(bytes);
    let got = 0;
    while (got < bytes) {
      const { bytesRead } = await handle.read(this.buf, this.length + got, bytes - got, offset + got);
      if (bytesRead === 0) return false;
      got += bytesRead;
    }
    if (bytes === 0 || this.buf[this.length] !== 0x7b || this.buf[this.length + bytes - 1] !== 0x0a) return false;
    this.length += bytes;
    return true;
  }

  private reserve(bytes: number): void {
    const room = this.length + bytes;
    if (room > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(room, 2 * this.buf.length));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
  }

  /** The buffer and the range to write: from byte 0 (a `\n` there) when the file does not end with one. */
  bytes(newlineFirst: boolean): [Buffer, number, number] {
    this.buf[0] = 0x0a;
    return [this.buf, newlineFirst ? 0 : 1, this.length];
  }
}

/** Size of a shard on disk, 0 when absent (tests). */
export async function shardSize(dir: string, id: string): Promise<number> {
  try {
    return (await stat(join(dir, `${id}.jsonl`))).size;
  } catch {
    return 0;
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
