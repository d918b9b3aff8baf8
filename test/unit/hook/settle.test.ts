import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
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
    await appendFile(path, ASSISTANT);
    expect(await probeFile(path)).toMatchObject({ closed: false, closingSeen: true });
  });
});
