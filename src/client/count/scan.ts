/**
 * A bounded scanner for transcript lines, pure: it walks one line's JSON without building the
 * values counting never reads (content blocks, thinking text, tool inputs), and returns a *pruned*
 * copy of what `JSON.parse` would return, holding only the paths `parseUsageLine` reads:
 *
 *   entry.{type, requestId, sessionId, uuid, timestamp, requestSessionId}  strings (else undefined)
 *   entry.isSidechain                                                      `true` (else undefined)
 *   entry.message.{id, model}                                              strings (else undefined)
 *   entry.message.usage                                                    the object itself, by JSON.parse of its text
 *
 * Identical to JSON.parse by construction: every character of the line is checked against JSON's
 * grammar (strings, escapes, numbers, literals, whitespace, nesting), a repeated key replaces the
 * earlier value as JSON.parse does, string values and the whole `usage` object are decoded by
 * JSON.parse itself, and whenever the scanner is not sure (a control character anywhere, a key
 * with an escape, deep nesting, a top level that is not an object, anything that is not valid
 * JSON) it returns `undefined` and the caller parses the line with JSON.parse.
 * `test/unit/count/scan.test.ts` compares both over generated and mutated lines.
 */

/** What the scanner keeps of an entry (every field present, undefined where JSON.parse's value would fail the check made on it). */
export interface ScannedEntry {
  type: string | undefined;
  requestId: string | undefined;
  sessionId: string | undefined;
  uuid: string | undefined;
  timestamp: string | undefined;
  requestSessionId: string | undefined;
  isSidechain: true | undefined;
  message: ScannedMessage | undefined;
}

export interface ScannedMessage {
  id: string | undefined;
  model: string | undefined;
  usage: Record<string, unknown> | undefined;
}

/** Nesting deeper than this is left to JSON.parse (the scanner recurses). */
const MAX_DEPTH = 64;

/** Thrown inside the scanner when it is not sure; never escapes `scanEntry`. */
const UNSURE = new Error('scanner unsure');

/**
 * JSON allows none inside strings and only tab, CR and LF between tokens; Claude Code writes
 * none at all. A line holding any is left to JSON.parse, so strings need no per-character check.
 */
const CONTROL = /[\u0000-\u001f]/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

/** A string value as decoded before, by field: the lines of one response repeat their ids and model. */
class Decoded {
  private raw = '';
  private value = '';
  /** `token` (with its quotes) decoded: by JSON.parse, which also makes a string that does not keep the whole line alive. */
  get(token: string): string {
    if (token !== this.raw) {
      this.raw = token;
      this.value = JSON.parse(token) as string;
    }
    return this.value;
  }
}

const decoded = {
  type: new Decoded(),
  requestId: new Decoded(),
  sessionId: new Decoded(),
  uuid: new Decoded(),
  timestamp: new Decoded(),
  requestSessionId: new Decoded(),
  id: new Decoded(),
  model: new Decoded(),
  usage: { text: '', value: {} as Record<string, unknown> },
};

/**
 * The pruned entry of `line`, or undefined when the line is not certainly an object the scanner
 * understood (then JSON.parse must decide, malformed lines included).
 */
export function scanEntry(line: string): ScannedEntry | undefined {
  if (CONTROL.test(line)) return undefined;
  try {
    const s = new Scanner(line);
    s.ws();
    if (s.peek() !== 0x7b) return undefined;
    const entry = s.entry();
    s.ws();
    return s.i === line.length ? entry : undefined;
  } catch (err) {
    if (err === UNSURE) return undefined;
    throw err;
  }
}

class Scanner {
  i = 0;
  /** The next `\` at or after `i` (`line.length` when none): found once, moved past as strings are walked. */
  private backslash = -1;

  constructor(private readonly s: string) {}

  peek(): number {
    return this.s.charCodeAt(this.i);
  }

  /** Spaces only: the line has no other whitespace (no control characters at all). */
  ws(): void {
    while (this.s.charCodeAt(this.i) === 0x20) this.i++;
  }

  private expect(c: number): void {
    if (this.s.charCodeAt(this.i) !== c) throw UNSURE;
    this.i++;
  }

  private nextBackslash(from: number): number {
    if (this.backslash < from) {
      const at = this.s.indexOf('\\', from);
      this.backslash = at === -1 ? this.s.length : at;
    }
    return this.backslash;
  }

  /** Walks a string starting at its `"`; returns whether it held an escape. */
  private skipString(): boolean {
    const s = this.s;
    let i = this.i + 1;
    let escaped = false;
    for (;;) {
      const quote = s.indexOf('"', i);
      if (quote === -1) throw UNSURE;
      const bs = this.nextBackslash(i);
      if (bs > quote) {
        this.i = quote + 1;
        return escaped;
      }
      escaped = true;
      const e = s.charCodeAt(bs + 1);
      if (e === 0x75) {
        HEX4.lastIndex = bs + 2;
        if (!HEX4.test(s)) throw UNSURE;
        i = bs + 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i = bs + 2;
      } else {
        throw UNSURE;
      }
    }
  }

  /**
   * The key at the cursor, which must be free of escapes (an escaped key could spell a field we
   * read): its start and length; the cursor moves onto its value.
   */
  private key(): number {
    if (this.peek() !== 0x22) throw UNSURE;
    const start = this.i + 1;
    if (this.skipString()) throw UNSURE;
    const length = this.i - 1 - start;
    this.ws();
    this.expect(0x3a);
    this.ws();
    return length;
  }

  private isKey(start: number, length: number, name: string): boolean {
    return length === name.length && this.s.startsWith(name, start);
  }

  /** A string value at the cursor, decoded, or undefined after skipping any other value. */
  private stringValue(depth: number, cache: Decoded): string | undefined {
    if (this.peek() !== 0x22) {
      this.skipValue(depth);
      return undefined;
    }
    const start = this.i;
    this.skipString();
    return cache.get(this.s.slice(start, this.i));
  }

  /** Skips one value of any kind, checking its grammar. */
  private skipValue(depth: number): void {
    const c = this.peek();
    if (c === 0x22) {
      this.skipString();
    } else if (c === 0x7b || c === 0x5b) {
      this.skipContainer(c === 0x7b, depth + 1);
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
      if (!this.s.startsWith(word, this.i)) throw UNSURE;
      this.i += word.length;
    } else {
      NUMBER.lastIndex = this.i;
      if (!NUMBER.test(this.s)) throw UNSURE;
      this.i = NUMBER.lastIndex;
    }
  }

  /** Skips an object or array starting at its bracket. */
  private skipContainer(object: boolean, depth: number): void {
    if (depth > MAX_DEPTH) throw UNSURE;
    const close = object ? 0x7d : 0x5d;
    this.i++;
    this.ws();
    if (this.peek() === close) {
      this.i++;
      return;
    }
    for (;;) {
      if (object) this.key();
      this.skipValue(depth);
      if (this.endOfMember(close)) return;
    }
  }

  /** After a member: true at the container's end, else past the `,`. */
  private endOfMember(close: number): boolean {
    this.ws();
    const c = this.peek();
    this.i++;
    if (c === close) return true;
    if (c !== 0x2c) throw UNSURE;
    this.ws();
    return false;
  }

  /** Past `{` and any space; true when the object is empty (and then past its `}`). */
  private openObject(): boolean {
    this.i++;
    this.ws();
    if (this.peek() !== 0x7d) return false;
    this.i++;
    return true;
  }

  /** The top-level object. A repeated key overwrites what an earlier one set, as in JSON.parse. */
  entry(): ScannedEntry {
    const out: ScannedEntry = {
      type: undefined,
      requestId: undefined,
      sessionId: undefined,
      uuid: undefined,
      timestamp: undefined,
      requestSessionId: undefined,
      isSidechain: undefined,
      message: undefined,
    };
    if (this.openObject()) return out;
    do {
      const start = this.i + 1;
      const length = this.key();
      if (this.isKey(start, length, 'type')) out.type = this.stringValue(1, decoded.type);
      else if (this.isKey(start, length, 'message')) out.message = this.message();
      else if (this.isKey(start, length, 'requestId')) out.requestId = this.stringValue(1, decoded.requestId);
      else if (this.isKey(start, length, 'sessionId')) out.sessionId = this.stringValue(1, decoded.sessionId);
      else if (this.isKey(start, length, 'uuid')) out.uuid = this.stringValue(1, decoded.uuid);
      else if (this.isKey(start, length, 'timestamp')) out.timestamp = this.stringValue(1, decoded.timestamp);
      else if (this.isKey(start, length, 'requestSessionId')) out.requestSessionId = this.stringValue(1, decoded.requestSessionId);
      else if (this.isKey(start, length, 'isSidechain')) out.isSidechain = this.isTrue();
      else this.skipValue(1);
    } while (!this.endOfMember(0x7d));
    return out;
  }

  private isTrue(): true | undefined {
    if (this.s.startsWith('true', this.i)) {
      this.i += 4;
      return true;
    }
    this.skipValue(1);
    return undefined;
  }

  /** `message`: its id, model and usage when it is an object, else undefined (skipped). */
  private message(): ScannedMessage | undefined {
    if (this.peek() !== 0x7b) {
      this.skipValue(1);
      return undefined;
    }
    const out: ScannedMessage = { id: undefined, model: undefined, usage: undefined };
    if (this.openObject()) return out;
    do {
      const start = this.i + 1;
      const length = this.key();
      if (this.isKey(start, length, 'id')) out.id = this.stringValue(2, decoded.id);
      else if (this.isKey(start, length, 'model')) out.model = this.stringValue(2, decoded.model);
      else if (this.isKey(start, length, 'usage')) out.usage = this.usage();
      else this.skipValue(2);
    } while (!this.endOfMember(0x7d));
    return out;
  }

  /** The usage object, parsed by JSON.parse from its own text (small; every field of it may be read). */
  private usage(): Record<string, unknown> | undefined {
    const object = this.peek() === 0x7b;
    const start = this.i;
    this.skipValue(2);
    if (!object) return undefined;
    const text = this.s.slice(start, this.i);
    const last = decoded.usage;
    if (text !== last.text) decoded.usage = { text, value: JSON.parse(text) as Record<string, unknown> };
    return decoded.usage.value;
  }
}
