/**
 * Local damage: every state file truncated, replaced by garbage, by JSON of the wrong type, made
 * unreadable (skipped as root, where chmod 000 stops nothing) or turned into a folder, one after
 * the other in a running session; the state dir replaced by a file; the disk full (a small tmpfs
 * mounted on the state dir, else a file-size limit that makes every write fail); and the
 * transcript deleted, truncated, rewritten, replaced by one huge line, or given invalid UTF-8.
 *
 * Workers run as the wrapper runs them, so each exit is checked (0, nothing printed). After each
 * damage the next hook must cope; the log line it wrote is shown; damage the device cannot undo by
 * itself (a folder it must not delete) is removed by the test after one hook, and that is said.
 * At the end the receiver must hold the exact totals — minus what only the damaged file held (a
 * destroyed queue line), and never below the truth when the ledger (the memory of what was
 * already reported) is the damaged file.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQueueText } from '../../src/client/deliver/queue';
import type { ModelUsage, ReportBody } from '../../src/protocol/wire';
import { cleanupTempDirs, sessionSums } from '../helpers/env';
import { type FaultProxy, onPath, passThrough, startFaultProxy } from '../helpers/fault-proxy';
import { mulberry32, type TimelineEvent } from '../helpers/gen-transcript';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import {
  addTotals,
  applyAppend,
  CLI_EVENT,
  compareTotals,
  type Device,
  findTranscript,
  hookInput,
  lossFigure,
  makeDevice,
  readLog,
  scenario,
  settle,
  startWorker,
  type Totals,
} from './device';
import { FAULT_SEED, reliability } from './support';

const CASE_TIMEOUT_MILLIS = 180_000;
/** Hooks run between two damages (the first one must cope with the damage). */
const HOOKS_BETWEEN = 2;
const IS_ROOT = process.getuid?.() === 0;
/** Bound on the reports made to get a session ahead of the clock ("corrupted twice"). */
const MAX_TWICE_REPORTS = 30;

/**
 * One receiver serves every test of this file: each test's sessions come from its own seed range
 * (FAULT_SEED * 7 + 0, + 10, + 20, ...), so their session ids never meet.
 */
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

type Kind = 'truncated' | 'garbage' | 'wrong-type' | 'unreadable' | 'folder';

interface Damage {
  label: string;
  /** Applied while no worker runs. May resolve to a note (a string) for the table. */
  apply(device: Device, sessionId: string): Promise<unknown>;
  /** False postpones the damage to after the next hook (`sessionId`: the session of the hook just run). */
  ready?: (sessionId: string) => Promise<boolean>;
  /** A path the device cannot be expected to repair (a folder in its way): removed after one hook. */
  obstacle?: (device: Device, sessionId: string) => string;
}

type Hook = Extract<TimelineEvent, { hook: unknown }>;

function randomBytesFrom(random: () => number, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** A damage of `kind` to the state file at `pathOf(...)`. */
function fileDamage(file: string, kind: Kind, pathOf: (device: Device, sessionId: string) => string, random: () => number): Damage {
  const wrongType: Record<string, string> = {
    json: '[1, 2, 3]',
    jsonl: '42\n"text"\n{"a":1}\n',
    raw: 'null',
  };
  const format = file.endsWith('.jsonl') ? 'jsonl' : file.endsWith('.json') || file.endsWith('.offset') ? 'json' : 'raw';
  const damage: Damage = {
    label: `${file} ${kind}`,
    async apply(device, sessionId) {
      const path = pathOf(device, sessionId);
      switch (kind) {
        case 'truncated': {
          let size = 0;
          try {
            size = (await stat(path)).size;
          } catch {
            await writeFile(path, '');
            return 'absent: created empty';
          }
          await truncate(path, Math.floor(size / 2));
          return `${size} -> ${Math.floor(size / 2)} bytes`;
        }
        case 'garbage':
          await writeFile(path, Buffer.concat([randomBytesFrom(random, 150), Buffer.from('\n\u0000\n'), randomBytesFrom(random, 50)]));
          return;
        case 'wrong-type':
          await writeFile(path, wrongType[format] as string);
          return;
        case 'unreadable':
          await writeFile(path, await readFile(path).catch(() => Buffer.from('')));
          await chmod(path, 0o000);
          return;
        case 'folder':
          await rm(path, { recursive: true, force: true });
          await mkdir(path, { recursive: true });
          await writeFile(join(path, 'keep'), 'a folder where a file should be');
          return;
      }
    },
  };
  if (kind === 'folder') damage.obstacle = pathOf;
  if (kind === 'unreadable') damage.obstacle = pathOf;
  return damage;
}

interface DriveResult {
  lines: string[];
  crashes: string[];
  obstaclesRemoved: string[];
}

/** Runs one worker for a hook; a crash is anything but exit 0 with nothing printed. */
async function runWorker(device: Device, hook: Hook, crashes: string[]): Promise<void> {
  const result = await startWorker(device, CLI_EVENT[hook.hook.event], hookInput(device, hook)).exited;
  if (result.code !== 0 || result.stdout !== '' || result.stderr !== '') {
    crashes.push(`${hook.hook.event}: exit ${result.code ?? result.signal} ${(result.stdout + result.stderr).slice(0, 200)}`);
  }
}

async function logText(device: Device): Promise<string> {
  return `${await readLog(device, 'errors.log')}\n${await readLog(device, 'activity.log')}`;
}

/** The first new log line after a damage that says something went wrong (or was recovered). */
function newLogLine(before: string, after: string): string {
  // Only log lines (a damaged log file's own garbage is not one).
  const fresh = after.split('\n').filter((line) => /^\d{4}-\d\d-\d\dT[\x20-\x7e\u2014]+$/.test(line) && !before.includes(line));
  const telling = fresh.find((l) => /corrupt|unreadable|starting over|cannot|failed|EISDIR|ENOTDIR|EACCES|ENOSPC|EFBIG|skipped|not a|lost|moved|invalid|discard|rewritten/i.test(l));
  const line = telling ?? fresh[0];
  return line === undefined ? '(nothing logged)' : line.replace(/^\S+\s+/, '').slice(0, 120);
}

/**
 * Drives the session's timeline with a worker per hook, applying `damages` one by one: the first
 * after hook 2, then one every HOOKS_BETWEEN hooks. Hooks missing at the end are made up by
 * re-running the session's last Stop.
 */
async function drive(
  device: Device,
  events: TimelineEvent[],
  sessionId: string,
  damages: Damage[],
  hooks: {
    beforeDamage?: (d: Damage) => Promise<void>;
    afterApply?: (d: Damage) => Promise<void>;
    afterDamage?: (d: Damage) => Promise<void>;
    /** After every hook, with the number of hooks run so far. */
    afterHook?: (hookCount: number) => Promise<void>;
  } = {},
): Promise<DriveResult> {
  const out: DriveResult = { lines: [], crashes: [], obstaclesRemoved: [] };
  let lastStop: Hook | undefined;
  let hookCount = 0;
  let next = 0;
  let pending: { damage: Damage; logBefore: string; hooksLeft: number; sessionId: string } | null = null;
  let current = sessionId;

  const afterHook = async () => {
    hookCount++;
    await hooks.afterHook?.(hookCount);
    if (pending !== null) {
      pending.hooksLeft--;
      if (pending.hooksLeft === HOOKS_BETWEEN - 1) {
        // One hook has run with the damage in place: what did it say, and did it clear the way?
        const note = newLogLine(pending.logBefore, await logText(device));
        out.lines.push(`${pending.damage.label}: ${note}`);
        const obstacle = pending.damage.obstacle?.(device, pending.sessionId);
        if (obstacle !== undefined) {
          const stillThere = (await isDirectory(obstacle)) || pending.damage.label.endsWith('unreadable');
          if (stillThere) {
            await chmod(obstacle, 0o600).catch(() => undefined);
            await rm(obstacle, { recursive: true, force: true });
            out.obstaclesRemoved.push(pending.damage.label);
          }
        }
        await hooks.afterDamage?.(pending.damage);
      }
      if (pending.hooksLeft <= 0) pending = null;
    }
    if (pending === null && next < damages.length && hookCount >= 2 && ((await damages[next]?.ready?.(current)) ?? true)) {
      const damage = damages[next++] as Damage;
      await hooks.beforeDamage?.(damage);
      const logBefore = await logText(device);
      const note = await damage.apply(device, current);
      await hooks.afterApply?.(damage);
      if (typeof note === 'string') out.lines.push(`${damage.label} (${note})`);
      pending = { damage, logBefore, hooksLeft: HOOKS_BETWEEN, sessionId: current };
    }
  };

  for (const event of events) {
    if ('append' in event) {
      await applyAppend(device, event);
      continue;
    }
    if (!('hook' in event)) continue;
    if (event.hook.event === 'Stop') lastStop = event;
    current = String(event.hook.input.session_id);
    await runWorker(device, event, out.crashes);
    await afterHook();
  }
  while ((next < damages.length || pending !== null) && lastStop) {
    await runWorker(device, lastStop, out.crashes);
    await afterHook();
  }
  return out;
}

/** `<data dir>/projects/<project>/<session>.jsonl` of a generated session. */
function transcriptOf(device: Device, sessionId: string): string {
  const path = findTranscript(device, sessionId);
  if (path === null) throw new Error(`no transcript for ${sessionId}`);
  return path;
}

/** One complete assistant line billing `usage` once (a unique message id and request id). */
function usageLine(sessionId: string, id: string, usage: ModelUsage, text = 'ok'): Buffer {
  return Buffer.from(
    `${JSON.stringify({
      type: 'assistant',
      sessionId,
      uuid: `fault-${id}`,
      requestId: `req_fault_${id}`,
      timestamp: new Date().toISOString(),
      message: {
        id: `msg_fault_${id}`,
        model: 'claude-sonnet-4-6',
        role: 'assistant',
        content: [{ type: 'text', text }],
        usage: {
          input_tokens: usage.input_tokens,
          output_tokens: usage.output_tokens,
          cache_read_input_tokens: usage.cache_read_tokens,
          cache_creation_input_tokens: usage.cache_write_tokens,
        },
      },
    })}\n`,
  );
}

function sumReports(reports: ReportBody[]): Totals {
  return addTotals(...reports.map((r) => r.models as Record<string, ModelUsage>));
}

function minus(a: Totals, b: Totals): Totals {
  const out: Totals = {};
  for (const [model, u] of Object.entries(a)) {
    const v = b[model];
    const r = {
      input_tokens: u.input_tokens - (v?.input_tokens ?? 0),
      output_tokens: u.output_tokens - (v?.output_tokens ?? 0),
      cache_read_tokens: u.cache_read_tokens - (v?.cache_read_tokens ?? 0),
      cache_write_tokens: u.cache_write_tokens - (v?.cache_write_tokens ?? 0),
    };
    if (Object.values(r).some((x) => x !== 0)) out[model] = r;
  }
  return out;
}

function report(test: string, result: DriveResult, figure: string): void {
  reliability(test, `${figure}; worker crashes = ${result.crashes.length}; obstacles the test had to remove: ${result.obstaclesRemoved.length ? result.obstaclesRemoved.join(', ') : 'none'}`);
  for (const line of result.lines) reliability(test, `  ${line}`);
}

const KINDS: Kind[] = ['truncated', 'garbage', 'wrong-type', ...(IS_ROOT ? [] : (['unreadable'] as Kind[])), 'folder'];

describe('local damage', () => {
  it(
    'every state file truncated, garbage, wrong type, unreadable or a folder: the device recovers, exact totals',
    async () => {
      const random = mulberry32(FAULT_SEED + 5);
      if (IS_ROOT) reliability('local damage', 'unreadable (chmod 000) sub-cases skipped: running as root, where chmod 000 does not stop reads; the folder-in-place cases cover unreadable paths');
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 0, 1, { turns: 24, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      const at = (name: string) => (d: Device) => join(d.stateDir, name);
      const targets: Array<[string, (d: Device, sid: string) => string, Kind[]]> = [
        ['signing_key', at('signing_key'), KINDS],
        ['key_registered', at('key_registered'), ['garbage', 'wrong-type', 'folder']],
        ['token_cache.json', at('token_cache.json'), KINDS],
        ['outbox.pending', at('outbox.pending'), ['garbage', 'folder']],
        ['delivery_status.json', at('delivery_status.json'), ['garbage', 'wrong-type', 'folder']],
        ['config.json', at('config.json'), ['garbage', 'folder']],
        ['errors.log', at('errors.log'), ['folder']],
        ['activity.log', at('activity.log'), ['garbage', 'folder']],
      ];
      const damages = targets.flatMap(([file, pathOf, kinds]) => kinds.map((kind) => fileDamage(file, kind, pathOf, random)));
      const overcounts: string[] = [];
      const result = await drive(device, s.events, sessionId, damages, {
        // Nothing may be counted twice at any point, not only at the end.
        afterDamage: async (damage) => {
          const { extraTokens } = compareTotals(s.expected, sessionSums(receiver, s.sessions));
          if (extraTokens > 0) overcounts.push(`${damage.label}: ${extraTokens} tokens counted twice so far`);
        },
      });
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      report('local damage: state files', result, `${damages.length} damages to ${targets.length} files in one session; ${lossFigure(s.expected, got)}`);
      expect(result.crashes).toEqual([]);
      expect(overcounts).toEqual([]);
      expect(got).toEqual(s.expected);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'the session offset file truncated, garbage, wrong type, unreadable or a folder (one session each): exact totals',
    async () => {
      // One session per damage: two corruptions of one session's offset file within seconds hit
      // the turn-index reuse shown by the "corrupted twice" test below, which is not what this
      // test is about.
      const random = mulberry32(FAULT_SEED + 12);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 10, KINDS.length, { turns: 3, resumeProbability: 0 }, random);
      const events = s.perSession.flat();
      const offsetOf = (d: Device, sid: string) => join(d.stateDir, `${sid}.offset`);
      const damages = KINDS.map((kind, k) => {
        const damage = fileDamage('<session>.offset', kind, offsetOf, random);
        damage.ready = async (current) => current === s.perSession[k]?.flatMap((e) => ('hook' in e ? [String(e.hook.input.session_id)] : []))[0];
        return damage;
      });
      const result = await drive(device, events, s.sessions[0] as string, damages);
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      report('local damage: offset file', result, `${damages.length} damages, one per session; ${lossFigure(s.expected, got)}`);
      expect(result.crashes).toEqual([]);
      expect(got).toEqual(s.expected);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'the queue damaged while reports wait in it: unreadable lines go to rejected_reports.jsonl, only destroyed reports are missing',
    async () => {
      const random = mulberry32(FAULT_SEED + 6);
      const proxy: FaultProxy = await startFaultProxy({ targetPort: receiver.port, seed: FAULT_SEED + 6, plan: onPath('/report', () => ({ kind: 'status', status: 503 })) });
      try {
        const device = await makeDevice({ endpoint: proxy.url, token });
        const s = scenario(FAULT_SEED * 7 + 20, 1, { turns: 8, resumeProbability: 0 }, random);
        const sessionId = s.sessions[0] as string;
        const queuePath = (d: Device) => join(d.stateDir, 'pending_reports.jsonl');
        const damages = KINDS.map((kind) => fileDamage('pending_reports.jsonl', kind, queuePath, random));
        let before: ReportBody[] = [];
        const destroyed: ReportBody[] = [];
        const readQueue = async () => parseQueueText(await readFile(queuePath(device), 'utf8').catch(() => '')).reports;
        const result = await drive(device, s.events, sessionId, damages, {
          beforeDamage: async () => {
            before = await readQueue();
          },
          // Destroyed: queued before the damage, not a valid line of the file as damaged. Those
          // reports are gone for good (their ledger entries say they were counted).
          afterApply: async () => {
            const after = await readQueue();
            destroyed.push(...before.filter((r) => !after.some((a) => a.session_id === r.session_id && a.turn_index === r.turn_index)));
          },
        });
        proxy.setPlan(passThrough);
        await settle(device, s.sessions);
        const rejectedText = await readFile(join(device.stateDir, 'rejected_reports.jsonl'), 'utf8').catch(() => '');
        const rejected = rejectedText.split('\n').filter(Boolean);
        const got = sessionSums(receiver, s.sessions);
        const expected = minus(s.expected, sumReports(destroyed));
        const { missingTokens, extraTokens } = compareTotals(expected, got);
        report(
          'local damage: queue',
          result,
          `${damages.length} damages with delivery blocked destroyed ${destroyed.length} queued report(s); ${rejected.length} unreadable line(s) kept in rejected_reports.jsonl; beyond the destroyed reports: tokens lost = ${missingTokens}, tokens counted twice = ${extraTokens}`,
        );
        expect(got).toEqual(expected);
        expect(result.crashes).toEqual([]);
        expect(extraTokens).toBe(0);
        expect(rejected.length).toBeGreaterThan(0);
      } finally {
        await proxy.stop();
      }
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'a ledger shard damaged: nothing is lost (what it alone remembered may be counted again)',
    async () => {
      const random = mulberry32(FAULT_SEED + 8);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 30, 1, { turns: 8, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      // The biggest shard when the damage lands: the one most likely to matter.
      const biggestShard = (d: Device) => {
        const dir = join(d.stateDir, 'ledger');
        let best = join(dir, '00.jsonl');
        let bestSize = -1;
        for (const name of readdirSync(dir)) {
          const size = statSync(join(dir, name)).size;
          if (size > bestSize) {
            best = join(dir, name);
            bestSize = size;
          }
        }
        return best;
      };
      const damages = KINDS.map((kind) => fileDamage('ledger shard', kind, biggestShard, random));
      const result = await drive(device, s.events, sessionId, damages);
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      const { missingTokens, extraTokens } = compareTotals(s.expected, got);
      report('local damage: ledger', result, `${damages.length} damages; tokens lost = ${missingTokens}, tokens counted again = ${extraTokens} (allowed: the ledger was the only record)`);
      expect(result.crashes).toEqual([]);
      expect(missingTokens).toBe(0);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'the state dir replaced by a file for a while: hooks stay silent; once it is back, exact totals',
    async () => {
      const random = mulberry32(FAULT_SEED + 9);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 40, 1, { turns: 3, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      const damage: Damage = {
        label: 'ccflux/ (state dir) is a file',
        async apply(d) {
          // Set aside, not deleted: losing the whole state dir (ledger included) is losing the
          // memory of what was reported, which no design can survive exactly.
          await rename(d.stateDir, `${d.stateDir}.aside`);
          await writeFile(d.stateDir, 'not a folder');
        },
      };
      let removed = false;
      const result = await drive(device, s.events, sessionId, [damage], {
        afterDamage: async () => {
          if ((await stat(device.stateDir)).isFile()) {
            await rm(device.stateDir);
            removed = true;
          }
          await rename(`${device.stateDir}.aside`, device.stateDir);
        },
      });
      if (removed) result.obstaclesRemoved.push(damage.label);
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      report('local damage: state dir', result, lossFigure(s.expected, got));
      expect(result.crashes).toEqual([]);
      expect(got).toEqual(s.expected);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'the transcript deleted, truncated, rewritten, replaced by one huge line, given invalid UTF-8: exact totals of what still exists',
    async () => {
      const random = mulberry32(FAULT_SEED + 10);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 50, 1, { turns: 10, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      let extra: Totals = {};
      const transcript = () => findTranscript(device, sessionId) as string;
      /**
       * Only at a line boundary: a damage that cuts a half-written line would glue its tail, when
       * Claude Code writes it, to whatever comes next (data that no longer exists anywhere).
       */
      const atLineEnd = async () => {
        const text = await readFile(transcript());
        return text.length === 0 || text[text.length - 1] === 0x0a;
      };
      const invalidLine = (n: number) => {
        const usage = { input_tokens: 7 + n, output_tokens: 11, cache_read_tokens: 0, cache_write_tokens: 0 };
        extra = addTotals(extra, { 'claude-sonnet-4-6': usage });
        const line = JSON.stringify({
          type: 'assistant',
          sessionId,
          uuid: `00000000-0000-4000-8000-00000000000${n}`,
          requestId: `req_invalid_utf8_${n}`,
          timestamp: '2026-05-11T04:40:00.000Z',
          message: { id: `msg_invalid_utf8_${n}`, model: 'claude-sonnet-4-6', role: 'assistant', content: [{ type: 'text', text: 'INVALID' }], usage: { input_tokens: usage.input_tokens, output_tokens: 11 } },
        });
        const [head, tail] = line.split('INVALID') as [string, string];
        return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from(tail), Buffer.from('\n')]);
      };
      const damages: Damage[] = [
        {
          label: 'transcript deleted',
          async apply() {
            await rm(transcript());
          },
        },
        {
          label: 'transcript truncated at a line boundary',
          async apply() {
            const text = await readFile(transcript());
            const cut = text.lastIndexOf(0x0a, Math.floor(text.length / 2));
            await truncate(transcript(), cut + 1);
            return `${text.length} -> ${cut + 1} bytes`;
          },
        },
        {
          label: 'transcript rewritten (new inode, first line changed)',
          async apply() {
            const text = (await readFile(transcript(), 'utf8')).split('\n');
            text[0] = JSON.stringify({ type: 'summary', summary: 'rewritten by a tool', leafUuid: 'x' });
            await writeFile(`${transcript()}.new`, text.join('\n'));
            await rename(`${transcript()}.new`, transcript());
          },
        },
        {
          label: 'transcript replaced by one 65 MiB line',
          async apply() {
            await writeFile(transcript(), Buffer.concat([Buffer.alloc(65 * 1024 * 1024, 0x61), Buffer.from('\n')]));
          },
        },
        {
          label: 'invalid UTF-8 appended (a real usage line with bad bytes in its text, and a line of raw bytes)',
          async apply() {
            await writeFile(transcript(), Buffer.concat([invalidLine(1), Buffer.from([0xff, 0xfe, 0xfd, 0x0a]), invalidLine(2)]), { flag: 'a' });
          },
        },
      ];
      for (const d of damages) d.ready = atLineEnd;
      const result = await drive(device, s.events, sessionId, damages);
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      const expected = addTotals(s.expected, extra);
      report('local damage: transcript', result, lossFigure(expected, got));
      expect(result.crashes).toEqual([]);
      expect(got).toEqual(expected);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'the offset file corrupted twice within seconds: the second recovery does not reuse turn indexes of the first',
    async () => {
      // A corrupt state restarts turn numbering at recoveredTurnIndex() = the current Unix time in
      // seconds (src/client/count/session-state.ts). After a recovery at second T the session delivers
      // T, T+1, ..., T+k; a second corruption s < k seconds later restarts at T+s: indexes the
      // receiver already holds, so it ignores those reports (idempotent on session, turn, model)
      // and their tokens are lost.
      const random = mulberry32(FAULT_SEED + 11);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 60, 1, { turns: 2, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      const result = await drive(device, s.events, sessionId, []);
      const stop = [...s.events].reverse().find((e): e is Hook => 'hook' in e && e.hook.event === 'Stop') as Hook;
      const offsetPath = join(device.stateDir, `${sessionId}.offset`);
      const nextTurn = async () => (JSON.parse(await readFile(offsetPath, 'utf8')) as { nextTurnIndex: number }).nextTurnIndex;
      let extra: Totals = {};
      let n = 0;
      const turnWithNewUsage = async () => {
        n++;
        const usage = { input_tokens: 100 + n, output_tokens: 10 * n, cache_read_tokens: 0, cache_write_tokens: 0 };
        extra = addTotals(extra, { 'claude-sonnet-4-6': usage });
        await writeFile(transcriptOf(device, sessionId), usageLine(sessionId, `twice${n}`, usage), { flag: 'a' });
        await runWorker(device, stop, result.crashes);
      };
      await writeFile(offsetPath, 'garbage');
      const startedAt = Date.now();
      await turnWithNewUsage();
      const first = (await nextTurn()) - 1;
      // Reports until the session is ahead of the clock (more reports than seconds elapsed): then
      // a recovery numbered from "now" falls among them. Real sessions are rarely that fast; a
      // replay is. Under heavy load a worker may take longer than a second: then inconclusive.
      let reports = 1;
      while (reports <= (Date.now() - startedAt) / 1000 + 2 && reports < MAX_TWICE_REPORTS) {
        await turnWithNewUsage();
        reports++;
      }
      const ahead = reports > (Date.now() - startedAt) / 1000 + 2;
      await writeFile(offsetPath, 'garbage');
      await turnWithNewUsage();
      const second = (await nextTurn()) - 1;
      const elapsedSeconds = Math.floor((Date.now() - startedAt) / 1000);
      await settle(device, s.sessions);
      const got = sessionSums(receiver, s.sessions);
      const expected = addTotals(s.expected, extra);
      report(
        'local damage: offset corrupted twice',
        result,
        `first recovery numbered from ${first}, ${reports} reports, second recovery ${elapsedSeconds} s later numbered from ${second} (${second <= first + reports - 1 ? 'REUSED' : 'fresh'}); ${lossFigure(expected, got)}`,
      );
      if (!ahead) {
        reliability('local damage: offset corrupted twice', `inconclusive: workers slower than 1 s each here, the session never got ahead of the clock`);
        return;
      }
      expect(result.crashes).toEqual([]);
      expect(second).toBeGreaterThan(first + reports - 1);
      expect(got).toEqual(expected);
    },
    CASE_TIMEOUT_MILLIS,
  );

  it(
    'disk full under the state dir (a 1 MiB tmpfs, else a zero file-size limit): hooks stay silent, nothing lost once there is room',
    async () => {
      const random = mulberry32(FAULT_SEED + 13);
      const device = await makeDevice({ endpoint: receiver.url, token });
      const s = scenario(FAULT_SEED * 7 + 70, 1, { turns: 6, resumeProbability: 0 }, random);
      const sessionId = s.sessions[0] as string;
      await mkdir(device.stateDir, { recursive: true, mode: 0o700 });
      let mounted = false;
      try {
        // CCFLUX_FAULT_NO_MOUNT=1 exercises the fallback where mounting is allowed.
        if (process.env.CCFLUX_FAULT_NO_MOUNT === '1') throw new Error('mount disabled');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', device.stateDir], { stdio: 'ignore' });
        mounted = true;
      } catch {
        // Not allowed here (no CAP_SYS_ADMIN): fall back to a file-size limit on the workers.
      }
      const filler = join(device.stateDir, 'zz-filler');
      let method = mounted
        ? 'tmpfs 1 MiB, filled'
        : 'ulimit -f 0 (no mount allowed; node resets SIGXFSZ to its default, so a worker dies at its first write: a crash at the worst moment rather than ENOSPC)';
      try {
        const hooksTotal = s.events.filter((e) => 'hook' in e).length;
        const third = Math.max(2, Math.floor(hooksTotal / 3));
        const damage: Damage = {
          label: `disk full (${mounted ? 'ENOSPC' : 'EFBIG'})`,
          async apply() {
            if (mounted) {
              const fd = openSync(filler, 'w');
              try {
                const chunk = Buffer.alloc(64 * 1024, 0x7a);
                for (;;) writeSync(fd, chunk);
              } catch {
                // full
              } finally {
                closeSync(fd);
              }
            } else {
              device.wrap = ['sh', '-c', 'trap "" XFSZ; ulimit -f 0; exec "$0" "$@"'];
            }
          },
        };
        let freed = false;
        const result = await drive(device, s.events, sessionId, [damage], {
          afterDamage: async () => undefined,
          afterHook: async (hookCount) => {
            // The disk stays full for a third of the session, then room is made.
            if (!freed && hookCount >= 2 + third) {
              freed = true;
              if (mounted) await rm(filler, { force: true });
              else delete device.wrap;
            }
          },
        });
        if (!freed) method += ' (never freed: session too short)';
        const logs = `${await readLog(device, 'errors.log')}\n${await readLog(device, 'activity.log')}`;
        await settle(device, s.sessions);
        const got = sessionSums(receiver, s.sessions);
        report('local damage: disk full', result, `${method} for ${third} hooks; ${lossFigure(s.expected, got)}; logged once there was room: "${(logs.split('\n').find((l) => /ENOSPC|EFBIG|no space|too large/i.test(l)) ?? '(nothing)').replace(/^\S+\s+/, '').slice(0, 110)}"`);
        expect(result.crashes.filter((c) => mounted || !c.includes('SIGXFSZ'))).toEqual([]);
        expect(got).toEqual(s.expected);
      } finally {
        if (mounted) execFileSync('umount', ['-l', device.stateDir], { stdio: 'ignore' });
      }
    },
    CASE_TIMEOUT_MILLIS,
  );
});
