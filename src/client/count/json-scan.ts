/**
 * One validating pass over the raw bytes of a JSON line that notes where a few named values are,
 * so that counting reads a usage line without `JSON.parse` building its content (a first read of
 * a long session: 85k assistant lines whose text, thinking and tool input are never looked at).
 * Pure: bytes in, spans out.
 *
 * The contract that makes it safe: when `scanLine` says yes, `JSON.parse` of the decoded line
 * would succeed, and each span is exactly the text of the value `JSON.parse` would give the named
 * key (the last one when a key repeats, as `JSON.parse` keeps). When it says no, the line is
 * either not JSON or something it does not handle (a top level that is not an object, an escape
 * inside a key it looks at, nesting over `MAX_DEPTH`): the caller then parses the decoded line as
 * before, so every answer, "malformed" included, stays `JSON.parse`'s.
 *
 * Why bytes and decoded text agree: Claude Code writes UTF-8, and `Buffer#toString('utf8')`
 * decodes an ASCII byte as itself and never makes an ASCII character out of other bytes (an
 * invalid sequence becomes U+FFFD). JSON's structure is all ASCII, so the structure seen in the
 * bytes is the structure `JSON.parse` sees; a byte of 0x80 or above is only valid inside a string,
 * where every character from U+0020 up is.
 */

/** Where one value is: `line[start, end)`. `start === -1` when the key was not there. */
const SPAN_START = 0;
const SPAN_END = 1;
/**
 * Bit 0: the value is a string holding an escape (its text needs `JSON.parse`). Bit 1: the value is
 * an object searched for nested names, and it holds a key that is none of them.
 */
const SPAN_FLAGS = 2;
const SPAN_WIDTH = 3;
const ESCAPED = 1;
const OTHER_KEYS = 2;

/** Deeper nesting is left to `JSON.parse` (whose own limit is far above any transcript's). */
export const MAX_DEPTH = 512;

/**
 * The keys to find: names at the top level of the line's object, and names inside the object
 * values of some of them (`nested`: parent name → names). Slot numbers: top-level names first, in
 * order, then each parent's nested names, in order.
 */
export class ScanSpec {
  readonly top: KeySet;
  readonly topCount: number;
  readonly slots: number;
  /** Per top-level slot: the names looked for inside its object value (null: none), and the slot of the first. */
  readonly nestedKeys: (KeySet | null)[];
  readonly nestedFirst: number[];

  constructor(top: readonly string[], nested: Readonly<Record<string, readonly string[]>> = {}) {
    const bytes = (name: string) => {
      if (!/^[\x20-\x7e]*$/.test(name) || name.includes('"') || name.includes('\\')) throw new Error(`scan key must be plain ASCII: ${name}`);
      return Buffer.from(name, 'latin1');
    };
    this.top = new KeySet(top.map(bytes));
    this.topCount = top.length;
    this.nestedKeys = top.map(() => null);
    this.nestedFirst = top.map(() => -1);
    let next = top.length;
    for (const [parent, names] of Object.entries(nested)) {
      const slot = top.indexOf(parent);
      if (slot === -1) throw new Error(`nested keys' parent is not a top-level key: ${parent}`);
      this.nestedKeys[slot] = new KeySet(names.map(bytes));
      this.nestedFirst[slot] = next;
      next += names.length;
    }
    this.slots = next;
  }

  /** A span table for this spec: SPAN_WIDTH numbers per slot. */
  newSpans(): Int32Array {
    return new Int32Array(this.slots * SPAN_WIDTH);
  }
}

/** The slot's value start, end and flags in a span table. */
function spanStart(spans: Int32Array, slot: number): number {
  return spans[slot * SPAN_WIDTH + SPAN_START] as number;
}
function spanEnd(spans: Int32Array, slot: number): number {
  return spans[slot * SPAN_WIDTH + SPAN_END] as number;
}
function spanEscaped(spans: Int32Array, slot: number): boolean {
  return ((spans[slot * SPAN_WIDTH + SPAN_FLAGS] as number) & ESCAPED) !== 0;
}
/** Whether the slot's object value holds a key other than the nested names looked for in it. */
function spanHasOtherKeys(spans: Int32Array, slot: number): boolean {
  return ((spans[slot * SPAN_WIDTH + SPAN_FLAGS] as number) & OTHER_KEYS) !== 0;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** JSON's whitespace: space, tab, carriage return, line feed. */
const WHITESPACE = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0d, 0x0a]) WHITESPACE[c] = 1;

function isWhitespace(c: number): boolean {
  return WHITESPACE[c] === 1;
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Bytes a string holds as they are: all but `"`, the backslash and the control characters. */
const PLAIN_IN_STRING = new Uint8Array(256);
for (let c = 0x20; c < 256; c++) PLAIN_IN_STRING[c] = c === QUOTE || c === BACKSLASH ? 0 : 1;
/** The bytes after the backslash of a one-character escape: `" \\ / b f n r t`. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** Set by skipString: the string just skipped held an escape. */
let sawEscape = false;

/**
 * From just after a string's opening quote: the index after its closing quote, or -1 when the
 * string is invalid (a control character, a bad escape) or not closed before `end`.
 */
function skipString(buf: Uint8Array, i: number, end: number): number {
  sawEscape = false;
  for (;;) {
    // The common bytes of a string in one tight loop: a table lookup each.
    while (i < end && PLAIN_IN_STRING[buf[i] as number] === 1) i++;
    if (i >= end) return -1;
    const c = buf[i] as number;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) return -1; // a control character
    sawEscape = true;
    if (i + 1 >= end) return -1;
    const e = buf[i + 1] as number;
    if (e === 0x75) {
      // \uXXXX: four hex digits (a lone surrogate is valid for JSON.parse).
      if (i + 6 > end) return -1;
      if (!isHexDigit(buf[i + 2] as number) || !isHexDigit(buf[i + 3] as number) || !isHexDigit(buf[i + 4] as number) || !isHexDigit(buf[i + 5] as number)) return -1;
      i += 6;
    } else if (SIMPLE_ESCAPE[e] === 1) {
      i += 2;
    } else {
      return -1;
    }
  }
}

/** From a number's first byte: the index after it, or -1 when it is not a JSON number. */
function skipNumber(buf: Uint8Array, i: number, end: number): number {
  if (buf[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (buf[i] === 0x30) {
    i++;
  } else if (isDigit(buf[i] as number)) {
    while (i < end && isDigit(buf[i] as number)) i++;
  } else {
    return -1;
  }
  if (i < end && buf[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(buf[i] as number)) return -1;
    while (i < end && isDigit(buf[i] as number)) i++;
  }
  if (i < end && (buf[i] === 0x65 || buf[i] === 0x45)) {
    i++;
    if (i < end && (buf[i] === 0x2b || buf[i] === 0x2d)) i++;
    if (i >= end || !isDigit(buf[i] as number)) return -1;
    while (i < end && isDigit(buf[i] as number)) i++;
  }
  return i;
}

const TRUE = Buffer.from('true', 'latin1');
const FALSE = Buffer.from('false', 'latin1');
const NULL = Buffer.from('null', 'latin1');

/**
 * Names to find among an object's keys. A line has ~20 keys at the top level and few are asked
 * for: a key's length and first byte pick at most one candidate (`byShape`), so most keys are
 * dismissed without comparing bytes.
 */
class KeySet {
  /** Per (length, first byte): the index of the only name of that shape + 1, 0 for none, -1 for several. */
  private readonly byShape = new Int16Array(SHAPES);

  constructor(readonly names: readonly Uint8Array[]) {
    names.forEach((name, n) => {
      const shape = shapeOf(name.length, name[0] ?? 0);
      this.byShape[shape] = this.byShape[shape] === 0 ? n + 1 : -1;
    });
  }

  /** The index of the name whose bytes are the key `buf[from, to)` (no escapes in it); -1 for none. */
  indexOf(buf: Uint8Array, from: number, to: number): number {
    const length = to - from;
    const hint = this.byShape[shapeOf(length, buf[from] ?? 0)] as number;
    if (hint === 0) return -1;
    if (hint > 0) return matches(buf, from, length, this.names[hint - 1] as Uint8Array) ? hint - 1 : -1;
    for (let n = 0; n < this.names.length; n++) if (matches(buf, from, length, this.names[n] as Uint8Array)) return n;
    return -1;
  }
}

const SHAPES = 64 * 128;
function shapeOf(length: number, first: number): number {
  return (length & 63) * 128 + (first & 127);
}

function matches(buf: Uint8Array, from: number, length: number, name: Uint8Array): boolean {
  if (name.length !== length) return false;
  for (let k = 0; k < length; k++) if (buf[from + k] !== name[k]) return false;
  return true;
}

function clearSlots(spans: Int32Array, from: number, to: number): void {
  for (let s = from; s < to; s++) {
    spans[s * SPAN_WIDTH + SPAN_START] = -1;
    spans[s * SPAN_WIDTH + SPAN_END] = -1;
    spans[s * SPAN_WIDTH + SPAN_FLAGS] = 0;
  }
}

/** Per depth, whether the container open there is an object (1) or an array (0). */
const containerIsObject = new Uint8Array(MAX_DEPTH + 2);

/** What the scanner expects next. */
const KEY_OR_CLOSE = 0;
const KEY = 1;
const VALUE_OR_CLOSE = 2;
const VALUE = 3;
const AFTER_VALUE = 4;

/**
 * Validates `buf[start, end)` as one JSON object and fills `spans` (from `spec.newSpans()`) with
 * where the spec's keys' values are. Returns false when the line is not valid JSON or is one this
 * scanner leaves to `JSON.parse` (see the file's comment); `spans` is then meaningless.
 *
 * One piece: one flat loop over a state and an explicit stack, not recursion nor helpers per
 * token, so a hostile line's nesting cannot overflow the call stack and V8 keeps every variable of
 * the hot path in a register (this loop reads every byte of 85k lines on a first read).
 */
export function scanLine(buf: Uint8Array, start: number, end: number, spec: ScanSpec, spans: Int32Array): boolean {
  clearSlots(spans, 0, spec.slots);
  let i = start;
  while (i < end && isWhitespace(buf[i] as number)) i++;
  if (i >= end || buf[i] !== OPEN_OBJECT) return false;
  i++;
  let depth = 1;
  containerIsObject[1] = 1;
  let state = KEY_OR_CLOSE;
  /** The slot of the value about to be read (set by its key); -1 for a value no one asked for. */
  let slot = -1;
  /** A named container value still open: at depth 2 (a top-level key's) and at depth 3 (a nested key's). */
  let openTop = -1;
  let openNested = -1;
  /** The names looked for in the object open at depth 2 (a top-level key's value), if any. */
  let nested: KeySet | null = null;
  for (;;) {
    while (i < end && isWhitespace(buf[i] as number)) i++;
    if (i >= end) return false;
    let c = buf[i] as number;
    if (state === AFTER_VALUE) {
      if (c === COMMA) {
        i++;
        state = containerIsObject[depth] === 1 ? KEY : VALUE;
        slot = -1;
        continue;
      }
      if (c !== CLOSE_OBJECT && c !== CLOSE_ARRAY) return false;
    }
    if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      // A close: after a value, or right after its open.
      const isObject = c === CLOSE_OBJECT;
      if (state !== AFTER_VALUE && state !== (isObject ? KEY_OR_CLOSE : VALUE_OR_CLOSE)) return false;
      if (isObject !== (containerIsObject[depth] === 1)) return false;
      i++;
      if (depth === 2 && openTop !== -1) {
        spans[openTop * SPAN_WIDTH + SPAN_END] = i;
        openTop = -1;
        nested = null;
      } else if (depth === 3 && openNested !== -1) {
        spans[openNested * SPAN_WIDTH + SPAN_END] = i;
        openNested = -1;
      }
      depth--;
      if (depth === 0) break;
      state = AFTER_VALUE;
      continue;
    }
    if (state === KEY_OR_CLOSE || state === KEY) {
      if (c !== QUOTE) return false;
      const keyStart = i + 1;
      const after = skipString(buf, keyStart, end);
      if (after === -1) return false;
      slot = -1;
      if (depth === 1 || (depth === 2 && nested !== null)) {
        // A key spelled with an escape could be one looked for: JSON.parse decides.
        if (sawEscape) return false;
        if (depth === 1) {
          slot = spec.top.indexOf(buf, keyStart, after - 1);
        } else {
          const n = (nested as KeySet).indexOf(buf, keyStart, after - 1);
          if (n !== -1) slot = (spec.nestedFirst[openTop] as number) + n;
          else spans[openTop * SPAN_WIDTH + SPAN_FLAGS] = (spans[openTop * SPAN_WIDTH + SPAN_FLAGS] as number) | OTHER_KEYS;
        }
      }
      i = after;
      while (i < end && isWhitespace(buf[i] as number)) i++;
      if (i >= end || buf[i] !== COLON) return false;
      i++;
      // The value at once, without a turn of the loop.
      while (i < end && isWhitespace(buf[i] as number)) i++;
      if (i >= end) return false;
      c = buf[i] as number;
      state = VALUE;
    }
    // A value (state VALUE or VALUE_OR_CLOSE). A top-level key's value, once more when the key
    // repeats: only the last one counts, the nested names found in an earlier one included.
    const nestedHere = depth === 1 && slot !== -1 ? (spec.nestedKeys[slot] as KeySet | null) : null;
    if (nestedHere !== null) {
      const first = spec.nestedFirst[slot] as number;
      clearSlots(spans, first, first + nestedHere.names.length);
      spans[slot * SPAN_WIDTH + SPAN_FLAGS] = 0;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth >= MAX_DEPTH) return false;
      depth++;
      const isObject = c === OPEN_OBJECT;
      containerIsObject[depth] = isObject ? 1 : 0;
      if (slot !== -1) {
        spans[slot * SPAN_WIDTH + SPAN_START] = i;
        if (depth === 2) {
          openTop = slot;
          nested = isObject ? nestedHere : null;
        } else {
          openNested = slot;
        }
      }
      i++;
      state = isObject ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
      slot = -1;
      continue;
    }
    let after: number;
    let flags = 0;
    if (c === QUOTE) {
      after = skipString(buf, i + 1, end);
      if (sawEscape) flags = ESCAPED;
    } else if (c === 0x74) {
      after = i + 4 <= end && matches(buf, i, 4, TRUE) ? i + 4 : -1;
    } else if (c === 0x66) {
      after = i + 5 <= end && matches(buf, i, 5, FALSE) ? i + 5 : -1;
    } else if (c === 0x6e) {
      after = i + 4 <= end && matches(buf, i, 4, NULL) ? i + 4 : -1;
    } else {
      after = skipNumber(buf, i, end);
    }
    if (after === -1) return false;
    if (slot !== -1) {
      spans[slot * SPAN_WIDTH + SPAN_START] = i;
      spans[slot * SPAN_WIDTH + SPAN_END] = after;
      spans[slot * SPAN_WIDTH + SPAN_FLAGS] = flags;
    }
    i = after;
    // The usual next bytes, `,"` in an object: the next key, without a turn of the loop.
    if (buf[i] === COMMA && i + 1 < end && buf[i + 1] === QUOTE && containerIsObject[depth] === 1) {
      i++;
      state = KEY;
      slot = -1;
      continue;
    }
    state = AFTER_VALUE;
  }
  // The top-level object closed: only whitespace may follow.
  while (i < end && isWhitespace(buf[i] as number)) i++;
  return i === end;
}

/**
 * A spec's scanner and the values of the line it scanned last, as far as callers look at them,
 * each decoded from its own bytes (the same characters as in the decoded line: see the file's
 * comment).
 */
export class LineValues {
  readonly spans: Int32Array;
  private buf: Buffer = Buffer.alloc(0);

  constructor(readonly spec: ScanSpec) {
    this.spans = spec.newSpans();
  }

  /** scanLine of `buf[start, end)` with this spec; the values below are then that line's. */
  scan(buf: Buffer, start: number, end: number): boolean {
    this.buf = buf;
    return scanLine(buf, start, end, this.spec, this.spans);
  }

  /** Where the slot's value is in the buffer scanned (start -1: absent). */
  startOf(slot: number): number {
    return spanStart(this.spans, slot);
  }
  endOf(slot: number): number {
    return spanEnd(this.spans, slot);
  }

  /**
   * The text of `buf[from, to)`, decoded on its own: a slice of the decoded line would keep the
   * whole line alive as long as the value (V8's sliced strings), and a group key holds its ids
   * for the whole run.
   */
  private slice(from: number, to: number): string {
    return this.buf.toString('utf8', from, to);
  }

  /** A string as JSON.parse gives it; null for any other value (callers only ask "is it a string"); undefined when absent. */
  string(slot: number): string | null | undefined {
    const from = spanStart(this.spans, slot);
    if (from === -1) return undefined;
    if (this.buf[from] !== QUOTE) return null;
    const to = spanEnd(this.spans, slot);
    return spanEscaped(this.spans, slot) ? (JSON.parse(this.slice(from, to)) as string) : this.slice(from + 1, to - 1);
  }

  /** An object value, parsed (its text alone: small); null for another value, undefined when absent. */
  object(slot: number): Record<string, unknown> | null | undefined {
    const from = spanStart(this.spans, slot);
    if (from === -1) return undefined;
    if (this.buf[from] !== OPEN_OBJECT) return null;
    return JSON.parse(this.slice(from, spanEnd(this.spans, slot))) as Record<string, unknown>;
  }

  /** A number value as JSON.parse gives it; undefined for another value or when absent. */
  number(slot: number): number | undefined {
    const from = spanStart(this.spans, slot);
    if (from === -1) return undefined;
    const first = this.buf[from] as number;
    if (first !== 0x2d && (first < 0x30 || first > 0x39)) return undefined;
    const to = spanEnd(this.spans, slot);
    if (to - from <= 15) {
      // Digits only (the usual counter): exact in a double, no string made.
      let n = 0;
      let k = from;
      for (; k < to; k++) {
        const d = (this.buf[k] as number) - 0x30;
        if (d < 0 || d > 9) break;
        n = n * 10 + d;
      }
      if (k === to) return n;
    }
    // A sign, a fraction, an exponent or many digits: JSON's grammar is a subset of Number's.
    return Number(this.slice(from, to));
  }

  /** A copy of the span table, for `sameText` against a later line of the same buffer. */
  saveSpans(into: Int32Array): void {
    into.set(this.spans);
  }

  /**
   * Whether the slot's value is byte for byte the text `saved` (a table saveSpans filled from an
   * earlier line of the buffer scanned now, still holding it) has for that slot; absent in both
   * counts as the same. Equal text, equal value as JSON.parse gives it.
   */
  sameText(slot: number, saved: Int32Array): boolean {
    const from = spanStart(this.spans, slot);
    const other = spanStart(saved, slot);
    if (from === -1 || other === -1) return from === other;
    const length = spanEnd(this.spans, slot) - from;
    if (spanEnd(saved, slot) - other !== length) return false;
    const buf = this.buf;
    for (let k = 0; k < length; k++) if (buf[from + k] !== buf[other + k]) return false;
    return true;
  }

  /** Whether the key was there. */
  has(slot: number): boolean {
    return spanStart(this.spans, slot) !== -1;
  }

  /** Whether the object value holds a key other than the nested names looked for in it. */
  hasOtherKeys(slot: number): boolean {
    return spanHasOtherKeys(this.spans, slot);
  }

  /** Whether the value is an object (without parsing it). */
  isObject(slot: number): boolean {
    const from = spanStart(this.spans, slot);
    return from !== -1 && this.buf[from] === OPEN_OBJECT;
  }

  /** Whether the value is the literal `true`. */
  isTrue(slot: number): boolean {
    const from = spanStart(this.spans, slot);
    return from !== -1 && this.buf[from] === 0x74;
  }

  /** Whether the value is exactly the string `word` (plain ASCII, no escapes), without decoding it. */
  isString(slot: number, word: Uint8Array): boolean {
    const from = spanStart(this.spans, slot);
    if (from === -1 || spanEscaped(this.spans, slot) || spanEnd(this.spans, slot) - from !== word.length + 2) return false;
    return this.buf[from] === QUOTE && matches(this.buf, from + 1, word.length, word);
  }
}
