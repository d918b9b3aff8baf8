import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  closesTurn,
  endsWithClosingLine,
  hasClosingLine,
  type Probe,
  probeFile,
  SETTLE_MAX_MILLIS,
  SETTLE_QUIET_MILLIS,
  waitForSettle,
} from '../../../src/client/hook/settle';

const ASSISTANT = '{"type":"assistant","message":{"id":"msg_1","usage":{"input_tokens":1}}}\n';
const SUMMARY = '{"parentUuid":"u1","type":"system","subtype":"stop_hook_summary","hookCount":1}\n';
const DURATION = '{"type":"system","subtype":"turn_duration","durationMs":1200}\n';

/**
 * A fake clock and a scripted transcript: `events` append text at given times (ms after the
 * worker starts looking); the probe sees the file as it is at the fake time.
 */
function fakeWorld(initial: string, events: Array<[number, string]>) {
  let now = 0;
  let text = initial;
  const pending = [...events].sort((a, b) => a[0] - b[0]);
  const apply = () => {
    while (pending.length > 0 && (pending[0] as [number, string])[0] <= now) text += (pending.shift() as [number, string])[1];
  };
  return {
    deps: {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
      },
      probe: async (): Promise<Probe | null> => {
        apply();
        return { size: Buffer.byteLength(text), closed: endsWithClosingLine(text), closingSeen: hasClosingLine(text) };
      },
    },
    text: () => text,
  };
}

describe('settle before reading (fake clock)', () => {
  it('interactive Stop: the final response lands 150 ms later with stop_hook_summary; the worker reads after it, not before', async () => {
    const w = fakeWorld(ASSISTANT, [[150, `${ASSISTANT.replace('msg_1', 'msg_2')}${SUMMARY}`]]);
    const settled = await waitForSettle('t.jsonl', w.deps);
    expect(settled.reason).toBe('closing-line');
    expect(settled.waitedMillis).toBeGreaterThanOrEqual(150);
    expect(settled.waitedMillis).toBeLessThan(200);
    expect(w.text()).toContain('msg_2');
  });

  it('a transcript that writes closing lines is waited for past a quiet spell (worker faster than the lag)', async () => {
    const w = fakeWorld(`${SUMMARY}${ASSISTANT}`, [[900, `${ASSISTANT.replace('msg_1', 'msg_2')}${SUMMARY}`]]);
    const settled = await waitForSettle('t.jsonl', w.deps);
    expect(settled.reason).toBe('closing-line');
    expect(settled.waitedMillis).toBeGreaterThanOrEqual(900);
  });

  it('already settled (closing line is the last line): no wait at all', async () => {
    const w = fakeWorld(`${ASSISTANT}${SUMMARY}${DURATION}`, []);
    expect(await waitForSettle('t.jsonl', w.deps)).toEqual({ reason: 'closing-line', waitedMillis: 0 });
  });

  it('a version without the closing line: read once the file has been quiet', async () => {
    const w = fakeWorld(ASSISTANT, [[100, ASSISTANT.replace('msg_1', 'msg_2')]]);
    const settled = await waitForSettle('t.jsonl', w.deps);
    expect(settled.reason).toBe('quiet');
    expect(settled.waitedMillis).toBeGreaterThanOrEqual(100 + SETTLE_QUIET_MILLIS);
    expect(settled.waitedMillis).toBeLessThan(100 + SETTLE_QUIET_MILLIS + 50);
  });

  it('a transcript that keeps growing: bounded, read after at most SETTLE_MAX_MILLIS', async () => {
    const growth: Array<[number, string]> = Array.from({ length: 200 }, (_, i) => [i * 20, ASSISTANT]);
    const settled = await waitForSettle('t.jsonl', fakeWorld('', growth).deps);
    expect(settled.reason).toBe('bound');
    expect(settled.waitedMillis).toBeGreaterThanOrEqual(SETTLE_MAX_MILLIS);
    expect(settled.waitedMillis).toBeLessThan(SETTLE_MAX_MILLIS + 50);
  });

  it('a closing line that is half written does not count; a missing file does not wait', async () => {
    expect(endsWithClosingLine(`${ASSISTANT}${SUMMARY.slice(0, -1)}`)).toBe(false);
    expect(endsWithClosingLine(`${SUMMARY}${ASSISTANT}`)).toBe(false);
    expect(endsWithClosingLine('{"type":"user","message":{"content":"\\"subtype\\":\\"stop_hook_summary\\""}}\n')).toBe(false);
    const missing = { now: () => 0, sleep: async () => {}, probe: async () => null };
    expect(await waitForSettle('nope', missing)).toEqual({ reason: 'no-file', waitedMillis: 0 });
  });
});

describe('closesTurn', () => {
  const LAST_PROMPT = '{"type":"last-prompt","lastPrompt":"hi","sessionId":"s"}\n';
  const COST_STATE = '{"type":"cost-state","sessionId":"s","modelUsage":{}}\n';
  it('a closing line followed only by bookkeeping (last-prompt, cost-state, as -p runs write) closes the turn', () => {
    expect(closesTurn(`${ASSISTANT}${SUMMARY}${DURATION}${LAST_PROMPT}${COST_STATE}`)).toBe(true);
    expect(endsWithClosingLine(`${ASSISTANT}${SUMMARY}${LAST_PROMPT}`)).toBe(false);
  });
  it('an assistant or user line after the last closing line reopens the turn; a half-written closing line does not close it', () => {
    expect(closesTurn(`${SUMMARY}${ASSISTANT}`)).toBe(false);
    expect(closesTurn(`${SUMMARY}{"type":"user","message":{"content":"next"}}\n`)).toBe(false);
    expect(closesTurn(`${ASSISTANT}${SUMMARY.slice(0, -1)}`)).toBe(false);
    expect(closesTurn(ASSISTANT)).toBe(false);
  });
});

describe('probeFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-settle-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the size and whether the last line closes the turn', async () => {
    const path = join(dir, 's.jsonl');
    expect(await probeFile(path)).toBeNull();
    await writeFile(path, ASSISTANT);
    expect(await probeFile(path)).toEqual({ size: ASSISTANT.length, closed: false, closingSeen: false });
    await appendFile(path, SUMMARY);
    expect(await probeFile(path)).toEqual({ size: ASSISTANT.length + SUMMARY.length, closed: true, closingSeen: true });
    await appendFile(path, '{"type":"cost-state","sessionId":"s"}\n');
    expect(await probeFile(path)).toMatchObject({ closed: true });
    await appendFile(path, ASSISTANT);
    expect(await probeFile(path)).toMatchObject({ closed: false, closingSeen: true });
  });

  it("past the committed cursor, the previous turn's late closing line closes nothing until the turn's lines land", async () => {
    const path = join(dir, 's.jsonl');
    // Turn 1 read up to its summary; its turn_duration came after; turn 2's lines are not on disk yet.
    await writeFile(path, `{"type":"user","message":{"content":"one"}}\n${ASSISTANT}${SUMMARY}`);
    const { ino, size: offset } = await stat(path);
    await appendFile(path, DURATION);
    expect(await probeFile(path)).toMatchObject({ closed: true }); // without the cursor: the old closing line
    expect(await probeFile(path, async () => ({ offset, ino }))).toMatchObject({ closed: false, closingSeen: true });
    // Another file at that path (a new inode) is read whole again: the cursor does not apply.
    expect(await probeFile(path, async () => ({ offset, ino: ino + 1 }))).toMatchObject({ closed: true });
    await appendFile(path, `{"type":"user","message":{"content":"two"}}\n${ASSISTANT}`);
    let asked = 0;
    const counted = async () => {
      asked++;
      return { offset, ino };
    };
    expect(await probeFile(path, counted)).toMatchObject({ closed: false });
    // The tail alone does not close the turn: the state file is not read for it.
    expect(asked).toBe(0);
    await appendFile(path, `${SUMMARY}${DURATION}`);
    expect(await probeFile(path, async () => ({ offset, ino }))).toMatchObject({ closed: true, closingSeen: true });
    // No cursor yet (a session's first turn): all of the file is new.
    expect(await probeFile(path, async () => ({ offset: 0, ino: null }))).toMatchObject({ closed: true });
    await writeFile(join(dir, 'first.jsonl'), `${SUMMARY}${DURATION}`);
    expect(await probeFile(join(dir, 'first.jsonl'), async () => ({ offset: 0, ino: null }))).toMatchObject({ closed: false, closingSeen: true });
    // Nothing past the cursor: nothing closes yet.
    expect(await probeFile(path, async () => ({ offset: (await stat(path)).size, ino }))).toMatchObject({ closed: false, closingSeen: true });
  });
});
