/**
 * Load: one turn that brings 150,000 messages at once — the plugin installed (or a session
 * resumed) on a long-running session, whose first hook sees the whole history. It must be
 * committed, delivered, and later turns must keep flowing; the worker must stay within a sane
 * memory bound. (Found by `npm run bench`: on a 300k-line transcript every turn failed with
 * "Maximum call stack size exceeded" and the session stopped reporting.)
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelUsage } from '../../src/protocol/wire';
import { cleanupTempDirs, sessionSums } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { addTotals, type Device, lossFigure, makeDevice, readLog, settle, startWorker, type Totals } from './device';
import { reliability } from './support';

const MESSAGES = 150_000;
const SESSION = 'large000-0000-4000-8000-000000000000';
const TIMEOUT_MILLIS = 120_000;

let receiver: RunningReceiver;
let token: string;

beforeAll(async () => {
  receiver = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
  token = await receiver.addUser('alice@example.org');
});

afterAll(async () => {
  await receiver?.stop();
  await cleanupTempDirs();
});

/** One assistant line per message (unique ids), and what it bills. */
function line(i: number): { text: string; model: string; usage: ModelUsage } {
  const model = i % 3 ? 'claude-sonnet-4-6' : 'claude-opus-4-7';
  const usage: ModelUsage = { input_tokens: 1 + (i % 5), output_tokens: 2 + (i % 11), cache_read_tokens: i % 7, cache_write_tokens: 0 };
  const text = `${JSON.stringify({
    type: 'assistant',
    sessionId: SESSION,
    uuid: `u${i}`,
    requestId: `req_large_${i}`,
    timestamp: '2026-05-11T04:00:00.000Z',
    message: { id: `msg_large_${i}`, model, usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, cache_read_input_tokens: usage.cache_read_tokens } },
  })}\n`;
  return { text, model, usage };
}

async function runStop(device: Device, transcript: string): Promise<{ millis: number; output: string }> {
  const started = performance.now();
  const result = await startWorker(device, 'report-turn', { session_id: SESSION, transcript_path: transcript }).exited;
  return { millis: performance.now() - started, output: `${result.code ?? result.signal} ${result.stdout}${result.stderr}`.trim() };
}

describe('one very large turn', () => {
  it(
    `a first turn of ${MESSAGES} messages is committed and delivered, and the next turns still report`,
    async () => {
      const device = await makeDevice({ endpoint: receiver.url, token });
      const transcript = join(device.dataDir, 'projects', '-home-alice-work-repo', `${SESSION}.jsonl`);
      let expected: Totals = {};
      const chunks: string[] = [];
      const sums: Record<string, ModelUsage> = {};
      for (let i = 0; i < MESSAGES; i++) {
        const l = line(i);
        chunks.push(l.text);
        const acc = sums[l.model] ?? { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
        sums[l.model] = acc;
        acc.input_tokens += l.usage.input_tokens;
        acc.output_tokens += l.usage.output_tokens;
        acc.cache_read_tokens += l.usage.cache_read_tokens;
      }
      expected = addTotals(sums);
      await mkdir(dirname(transcript), { recursive: true });
      await writeFile(transcript, chunks.join(''));
      const first = await runStop(device, transcript);
      const later: number[] = [];
      for (let t = 0; t < 2; t++) {
        const l = line(MESSAGES + t);
        expected = addTotals(expected, { [l.model]: l.usage });
        await appendFile(transcript, l.text);
        later.push((await runStop(device, transcript)).millis);
      }
      // A stuck device never settles: say so in the figure instead of waiting out a long timeout.
      const settleError = await settle(device, [SESSION], { timeoutMillis: 15_000 }).then(
        () => null,
        (err: Error) => err.message,
      );
      const errors = await readLog(device, 'errors.log');
      const offsetBytes = (await readFile(join(device.stateDir, `${SESSION}.offset`))).length;
      const got = sessionSums(receiver, [SESSION]);
      const failures = errors.split('\n').filter((l) => /collection failed|call stack/i.test(l));
      reliability(
        'one very large turn',
        `${MESSAGES} messages in one turn: first worker ${Math.round(first.millis)} ms, next turns ${later.map((m) => Math.round(m)).join(', ')} ms; collection failures = ${failures.length}${settleError ? ` (${settleError})` : ''}; offset file ${offsetBytes} bytes afterwards; ${lossFigure(expected, got)}`,
      );
      expect(first.output).toBe('0');
      expect(settleError).toBeNull();
      expect(failures.slice(0, 3)).toEqual([]);
      expect(got).toEqual(expected);
    },
    TIMEOUT_MILLIS,
  );
});
