/**
 * Random-but-valid Claude Code sessions with their true totals, in the fixtures' format
 * (`../shared/fixtures/README.md`): `{timeline, expected}` where `timeline` is the list of
 * `{meta}`, `{append: {file, data}}` and `{hook: {event, input}}` events and `expected.models` is what
 * the API billed per model.
 *
 * Seeded (mulberry32), so a failing seed replays exactly. Exercises: one line per content block,
 * placeholder output on early lines, final lines landing after the hook that read the others,
 * half-written lines at hook time (split inside multi-byte text), subagent files (also under
 * workflows/), background subagents finishing after Stop, the parent's `toolUseResult.usage` rollup,
 * /btw replays, resumed copies in a new session file, advisor iterations, `<synthetic>` lines,
 * responses without `requestId`, lines without `message.id`, malformed lines, three cache-write
 * styles. Also `replayInProcess` (hooks → collect functions, no processes) and helpers to sum
 * queued reports, used by unit, fault and bench suites.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type CollectDeps,
  catchUpOpenSessions,
  collectSession,
  ensureSessionState,
  type QueueAppender,
} from '../../src/client/count/collect';
import { ensurePrivateDir } from '../../src/client/local/fsx';
import { type Logger, nullLogger } from '../../src/client/local/log';
import { statePaths } from '../../src/client/local/paths';
import type { ModelUsage, ReportBody } from '../../src/protocol/wire';

export type HookEvent = 'SessionStart' | 'Stop' | 'SubagentStop' | 'SessionEnd';
export interface TimelineMeta {
  scenario: string;
  seed: number;
  email: string;
  sessions: string[];
}
export type TimelineEvent =
  | { meta: TimelineMeta }
  | { append: { file: string; data: string } }
  | { hook: { event: HookEvent; input: Record<string, unknown> } };
export interface Expected {
  models: Record<string, ModelUsage>;
}
export interface GeneratedSession {
  timeline: TimelineEvent[];
  expected: Expected;
}

export interface GenOptions {
  seed: number;
  /** Turns of the first session (default 4-10). */
  turns?: number;
  /** Probability that the session is resumed into a new session file (default 0.5). */
  resumeProbability?: number;
  /** Bytes of filler text in each user prompt line (default 60-400). */
  userLineBytes?: number;
  /** Turn all traps on or off (default on): plain sessions for benchmarks. */
  traps?: boolean;
  email?: string;
}

/** mulberry32: tiny, fast, good enough for test data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODELS = ['claude-opus-4-7', 'claude-sonnet-4-6', 'claude-haiku-4-5-20251001'];
const WORDS = ['alpha', 'naïve', 'Δelta', '東京', '"q"', '{}', 'secret-token-XYZ', '/home/alice/private.txt', '🙂'];
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const PROJECT = 'projects/-home-alice-work-repo';
/** The fixtures' stand-in for the data dir's absolute path in hook inputs. */
export const DATA_DIR_PLACEHOLDER = ['$', '{DATA_DIR}'].join('');
const CWD = '/home/alice/work/repo';

function zero(): ModelUsage {
  return { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}

export function addInto(target: Record<string, ModelUsage>, model: string, u: ModelUsage): void {
  const t = target[model] ?? zero();
  target[model] = {
    input_tokens: t.input_tokens + u.input_tokens,
    output_tokens: t.output_tokens + u.output_tokens,
    cache_read_tokens: t.cache_read_tokens + u.cache_read_tokens,
    cache_write_tokens: t.cache_write_tokens + u.cache_write_tokens,
  };
}

/** Per-model sum of report bodies (what the receiver's SUM ... GROUP BY model gives). */
export function sumReports(reports: readonly ReportBody[]): Record<string, ModelUsage> {
  const out: Record<string, ModelUsage> = {};
  for (const r of reports) for (const [model, u] of Object.entries(r.models)) addInto(out, model, u);
  return sortKeys(out);
}

export function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

class Gen {
  readonly rnd: () => number;
  readonly timeline: TimelineEvent[] = [];
  readonly expected: Record<string, ModelUsage> = {};
  /** Complete main-file lines per session (for resume copies). */
  readonly mainLines = new Map<string, string[]>();
  /** Earlier parent responses: candidates for /btw replays. */
  readonly parentResponses: Array<{ line: string; messageId: string }> = [];
  clockMs = Date.UTC(2026, 10, 20, 1, 9, 4, 664);
  lastUuid: string | null = null;
  constructor(
    seed: number,
    readonly traps: boolean,
    readonly userLineBytes: number | undefined,
  ) {
    this.rnd = mulberry32(seed);
  }
  chance(p: number): boolean {
    return this.traps && this.rnd() < p;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.rnd() * (max - min + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rnd() * list.length)] as T;
  }
  id(prefix: string, n: number): string {
    let s = prefix;
    for (let i = 0; i < n; i++) s += B62[Math.floor(this.rnd() * 62)];
    return s;
  }
  uuid(): string {
    const hex = () => Math.floor(this.rnd() * 16).toString(16);
    const part = (n: number) => Array.from({ length: n }, hex).join('');
    return `${part(8)}-${part(4)}-${part(4)}-${part(4)}-${part(12)}`;
  }
  timestamp(): string {
    this.clockMs += this.int(2000, 16000);
    return new Date(this.clockMs).toISOString();
  }
  text(bytes: number): string {
    let s = '';
    while (Buffer.byteLength(s) < bytes) s += `${this.pick(WORDS)} `;
    return s;
  }
  append(file: string, data: string): void {
    this.timeline.push({ append: { file, data } });
  }
  hook(event: HookEvent, sessionId: string, extra: Record<string, unknown> = {}): void {
    this.timeline.push({
      hook: {
        event,
        input: {
          session_id: sessionId,
          transcript_path: `${DATA_DIR_PLACEHOLDER}/${PROJECT}/${sessionId}.jsonl`,
          cwd: CWD,
          hook_event_name: event,
          ...extra,
        },
      },
    });
  }
}

interface Response {
  model: string;
  messageId: string;
  requestId: string | null;
  usage: Record<string, unknown>;
  /** Billed totals per model (top level + advisor iterations). */
  billed: Array<[string, ModelUsage]>;
}

function makeResponse(g: Gen): Response {
  const model = g.pick(MODELS);
  const input = g.int(1, 60);
  const output = g.int(20, 4000);
  const cacheRead = g.chance(0.1) ? 0 : g.int(0, 90000);
  const usage: Record<string, unknown> = { input_tokens: input, output_tokens: output, cache_read_input_tokens: cacheRead };
  usage.service_tier = 'standard';
  let cacheWrite = 0;
  const style = g.traps ? g.int(0, 3) : 0;
  const writes = g.rnd() < 0.5 ? 0 : g.int(1, 5000);
  if (style === 0) {
    usage.cache_creation_input_tokens = writes;
    cacheWrite = writes;
  } else if (style === 1) {
    const h1 = g.int(0, writes);
    usage.cache_creation_input_tokens = writes;
    usage.cache_creation = { ephemeral_5m_input_tokens: writes - h1, ephemeral_1h_input_tokens: h1 };
    cacheWrite = writes;
  } else if (style === 2) {
    // Before 2.1.152: flat 0, the writes only in the breakdown.
    const h1 = g.int(0, writes);
    usage.cache_creation_input_tokens = 0;
    usage.cache_creation = { ephemeral_5m_input_tokens: writes - h1, ephemeral_1h_input_tokens: h1 };
    cacheWrite = writes;
  }
  // style 3: no cache-write fields at all
  const billed: Array<[string, ModelUsage]> = [
    [model, { input_tokens: input, output_tokens: output, cache_read_tokens: cacheRead, cache_write_tokens: cacheWrite }],
  ];
  if (g.chance(0.15)) {
    const advisorModel = g.pick(MODELS);
    const adv = { input_tokens: g.int(1000, 150000), output_tokens: g.int(100, 8000) };
    usage.iterations = [
      { type: 'message', input_tokens: input, output_tokens: output },
      { type: 'advisor_message', model: advisorModel, ...adv, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    ];
    billed.push([advisorModel, { input_tokens: adv.input_tokens, output_tokens: adv.output_tokens, cache_read_tokens: 0, cache_write_tokens: 0 }]);
  }
  return {
    model,
    messageId: g.id('msg_01', 22),
    requestId: g.chance(0.15) ? null : g.id('req_011', 21),
    usage,
    billed,
  };
}

function assistantLine(
  g: Gen,
  r: Response,
  opts: { sessionId: string; sidechain: boolean; usage: Record<string, unknown>; final: boolean; agentId?: string; requestId?: string | null },
): string {
  const uuid = g.uuid();
  const entry: Record<string, unknown> = {
    parentUuid: g.lastUuid,
    isSidechain: opts.sidechain,
    userType: 'external',
    cwd: CWD,
    sessionId: opts.sessionId,
    version: '2.1.240',
    gitBranch: 'main',
  };
  if (opts.agentId) entry.agentId = opts.agentId;
  entry.type = 'assistant';
  entry.uuid = uuid;
  entry.timestamp = g.timestamp();
  const requestId = opts.requestId === undefined ? r.requestId : opts.requestId;
  if (requestId !== null) entry.requestId = requestId;
  entry.message = {
    id: r.messageId,
    type: 'message',
    role: 'assistant',
    model: r.model,
    content: [{ type: 'text', text: g.text(g.int(10, 200)) }],
    stop_reason: opts.final ? 'end_turn' : null,
    usage: opts.usage,
  };
  g.lastUuid = uuid;
  return JSON.stringify(entry);
}

/** The lines of one response: placeholders (small output, no stop_reason) then the final line. */
function responseLines(g: Gen, r: Response, sessionId: string, sidechain: boolean, agentId?: string): string[] {
  const blocks = g.int(1, 4);
  const placeholders = g.chance(0.5);
  const lines: string[] = [];
  for (let b = 0; b < blocks; b++) {
    const final = b === blocks - 1 || !placeholders;
    const usage = final ? r.usage : { ...r.usage, output_tokens: g.int(1, 9) };
    lines.push(assistantLine(g, r, { sessionId, sidechain, usage, final, ...(agentId ? { agentId } : {}) }));
  }
  return lines;
}

function userLine(g: Gen, sessionId: string, extra: Record<string, unknown> = {}, sidechain = false): string {
  const uuid = g.uuid();
  const line = JSON.stringify({
    parentUuid: g.lastUuid,
    isSidechain: sidechain,
    userType: 'external',
    cwd: CWD,
    sessionId,
    version: '2.1.240',
    gitBranch: 'main',
    type: 'user',
    uuid,
    timestamp: g.timestamp(),
    message: { role: 'user', content: g.text(g.userLineBytes ?? g.int(60, 400)) },
    ...extra,
  });
  g.lastUuid = uuid;
  return line;
}

function bill(g: Gen, r: Response): void {
  for (const [model, u] of r.billed) addInto(g.expected, model, u);
}

/** Writes lines to a file; may split the last one across a hook (a half-written line at hook time). */
function writeLines(g: Gen, file: string, lines: string[], sessionId: string, record?: string[]): void {
  for (const line of lines) {
    record?.push(line);
    if (g.chance(0.08)) {
      const cut = g.int(1, line.length - 1);
      g.append(file, line.slice(0, cut));
      g.hook('Stop', sessionId, { stop_hook_active: false });
      g.append(file, `${line.slice(cut)}\n`);
    } else {
      g.append(file, `${line}\n`);
    }
  }
}

function subagent(g: Gen, sessionId: string, mainFile: string, background: boolean, deferred: Array<() => void>): void {
  const agentId = g.id('a', 8).toLowerCase();
  const nested = g.chance(0.3);
  const rel = nested ? `${sessionId}/subagents/workflows/wf_${agentId}/agent-${agentId}.jsonl` : `${sessionId}/subagents/agent-${agentId}.jsonl`;
  const file = `${PROJECT}/${rel}`;
  const run = () => {
    const n = g.int(1, 3);
    const totals = zero();
    for (let i = 0; i < n; i++) {
      const r = makeResponse(g);
      bill(g, r);
      for (const [, u] of r.billed) {
        totals.input_tokens += u.input_tokens;
        totals.output_tokens += u.output_tokens;
      }
      writeLines(g, file, responseLines(g, r, sessionId, true, agentId), sessionId);
    }
    g.hook('SubagentStop', sessionId, {
      agent_id: agentId,
      agent_type: 'general-purpose',
      agent_transcript_path: `${DATA_DIR_PLACEHOLDER}/${file}`,
      stop_hook_active: false,
    });
    if (!background) {
      // The parent's tool result carries a rollup of the subagent's usage: never counted.
      const rollup = userLine(g, sessionId, {
        toolUseResult: {
          agentId,
          totalTokens: totals.input_tokens + totals.output_tokens,
          totalToolUseCount: 3,
          usage: { input_tokens: totals.input_tokens, output_tokens: totals.output_tokens, cache_read_input_tokens: 999 },
        },
      });
      writeLines(g, mainFile, [rollup], sessionId, g.mainLines.get(sessionId));
    }
  };
  if (background) deferred.push(run);
  else run();
}

function btwReplay(g: Gen, sessionId: string): void {
  if (g.parentResponses.length === 0) return;
  const parent = g.pick(g.parentResponses);
  const file = `${PROJECT}/${sessionId}/subagents/agent-btw${g.id('', 6).toLowerCase()}.jsonl`;
  // The replay: the parent's line, as a sidechain, under a new requestId.
  const replay = JSON.parse(parent.line) as Record<string, unknown>;
  replay.isSidechain = true;
  replay.requestId = g.id('req_011btw', 18);
  replay.uuid = g.uuid();
  const own = makeResponse(g);
  bill(g, own);
  writeLines(g, file, [JSON.stringify(replay), ...responseLines(g, own, sessionId, true)], sessionId);
}

function runSession(g: Gen, sessionId: string, turns: number, source: string): void {
  const mainFile = `${PROJECT}/${sessionId}.jsonl`;
  const lines = g.mainLines.get(sessionId) ?? [];
  g.mainLines.set(sessionId, lines);
  let late: string[] = [];
  for (let t = 0; t < turns; t++) {
    const deferred: Array<() => void> = [];
    if (late.length > 0) {
      writeLines(g, mainFile, late, sessionId, lines);
      late = [];
    }
    writeLines(g, mainFile, [userLine(g, sessionId)], sessionId, lines);
    const responses = g.int(1, 3);
    for (let i = 0; i < responses; i++) {
      const r = makeResponse(g);
      bill(g, r);
      const rLines = responseLines(g, r, sessionId, false);
      // The final line of the last response may land after this turn's Stop.
      if (i === responses - 1 && rLines.length > 1 && g.chance(0.2)) late = rLines.splice(-1);
      writeLines(g, mainFile, rLines, sessionId, lines);
      g.parentResponses.push({ line: rLines[0] as string, messageId: r.messageId });
      if (g.chance(0.25)) subagent(g, sessionId, mainFile, g.rnd() < 0.5, deferred);
      if (g.chance(0.2)) g.hook('Stop', sessionId, { stop_hook_active: false }); // random hook timing
    }
    if (g.chance(0.1)) {
      // A local error notice: <synthetic>, no requestId, zero usage.
      const synthetic = JSON.stringify({
        parentUuid: g.lastUuid,
        isSidechain: false,
        sessionId,
        type: 'assistant',
        uuid: g.uuid(),
        timestamp: g.timestamp(),
        isApiErrorMessage: true,
        message: {
          id: g.uuid(),
          model: '<synthetic>',
          role: 'assistant',
          content: [{ type: 'text', text: 'API Error: Request was aborted.' }],
          usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
        },
      });
      writeLines(g, mainFile, [synthetic], sessionId, lines);
    }
    if (g.chance(0.08)) {
      // No message.id: counts alone (keyed by uuid).
      const u = { input_tokens: g.int(1, 50), output_tokens: g.int(1, 500), cache_read_input_tokens: g.int(0, 1000) };
      const model = g.pick(MODELS);
      addInto(g.expected, model, { input_tokens: u.input_tokens, output_tokens: u.output_tokens, cache_read_tokens: u.cache_read_input_tokens, cache_write_tokens: 0 });
      const uuid = g.uuid();
      const line = JSON.stringify({ type: 'assistant', uuid, sessionId, timestamp: g.timestamp(), message: { model, role: 'assistant', usage: u } });
      writeLines(g, mainFile, [line], sessionId, lines);
    }
    if (g.chance(0.06)) {
      writeLines(g, mainFile, ['{"type":"assistant","message":{"id":"msg_broken","model":"claude-sonnet-4-6","usage":{"input_tokens":5', 'not json at all'], sessionId, lines);
    }
    if (g.chance(0.15)) btwReplay(g, sessionId);
    g.hook('Stop', sessionId, { stop_hook_active: false });
    for (const run of deferred) run();
  }
  if (late.length > 0) writeLines(g, mainFile, late, sessionId, lines);
  g.hook('Stop', sessionId, { stop_hook_active: false });
  g.hook('SessionEnd', sessionId, { reason: source === 'resume' ? 'other' : 'prompt_input_exit' });
}

/** One random session (and maybe its resumed continuation) with the exact billed totals. */
export function generateSession(options: GenOptions): GeneratedSession {
  const traps = options.traps ?? true;
  const g = new Gen(options.seed, traps, options.userLineBytes);
  const first = g.uuid();
  const sessions = [first];
  const meta: TimelineMeta = { scenario: 'generated', seed: options.seed, email: options.email ?? 'alice@example.org', sessions };
  g.timeline.push({ meta });
  g.hook('SessionStart', first, { source: 'startup' });
  runSession(g, first, options.turns ?? g.int(4, 10), 'startup');

  if (traps && g.rnd() < (options.resumeProbability ?? 0.5)) {
    const second = g.uuid();
    sessions.push(second);
    g.hook('SessionStart', second, { source: 'resume' });
    // --resume writes a new file that repeats the old session's lines verbatim (old sessionId).
    const copy = g.mainLines.get(first) ?? [];
    g.mainLines.set(second, [...copy]);
    const file = `${PROJECT}/${second}.jsonl`;
    const chunk = Math.max(1, Math.ceil(copy.length / 3));
    for (let i = 0; i < copy.length; i += chunk) g.append(file, `${copy.slice(i, i + chunk).join('\n')}\n`);
    g.parentResponses.length = 0;
    runSession(g, second, g.int(1, 5), 'resume');
  }
  return { timeline: g.timeline, expected: { models: sortKeys(g.expected) } };
}

/**
 * Several independent sessions (each maybe resumed) living at once in one data dir: their timelines
 * interleaved at random, each keeping its own order. Expected = the sum.
 */
export function generateConcurrentSessions(options: GenOptions & { count: number }): GeneratedSession {
  const rnd = mulberry32(options.seed ^ 0x9e3779b9);
  const parts = Array.from({ length: options.count }, (_, i) => generateSession({ ...options, seed: options.seed * 1000 + i }));
  const queues = parts.map((p) => p.timeline.filter((e) => !('meta' in e)));
  const sessions = parts.flatMap((p) => (p.timeline[0] as { meta: TimelineMeta }).meta.sessions);
  const timeline: TimelineEvent[] = [{ meta: { scenario: 'generated-concurrent', seed: options.seed, email: options.email ?? 'alice@example.org', sessions } }];
  const cursors = queues.map(() => 0);
  for (;;) {
    const open = queues.map((_, i) => i).filter((i) => (cursors[i] as number) < (queues[i] as TimelineEvent[]).length);
    if (open.length === 0) break;
    const i = open[Math.floor(rnd() * open.length)] as number;
    // Move a short run of events of one session, as real sessions alternate by turns.
    const run = 1 + Math.floor(rnd() * 6);
    for (let k = 0; k < run && (cursors[i] as number) < (queues[i] as TimelineEvent[]).length; k++) {
      timeline.push((queues[i] as TimelineEvent[])[cursors[i] as number] as TimelineEvent);
      cursors[i] = (cursors[i] as number) + 1;
    }
  }
  const expected: Record<string, ModelUsage> = {};
  for (const p of parts) for (const [model, usage] of Object.entries(p.expected.models)) addInto(expected, model, usage);
  return { timeline, expected: { models: sortKeys(expected) } };
}

/** Reads a fixture folder (`timeline.jsonl`, `expected.json`). */
export function readFixture(dir: string): GeneratedSession {
  const timeline = readFileSync(join(dir, 'timeline.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as TimelineEvent);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
  return { timeline, expected };
}

/** An in-memory QueueAppender that, like the real queue, keeps one report per (session, turn). */
export class MemoryQueue implements QueueAppender {
  readonly reports: ReportBody[] = [];
  appendCalls = 0;
  duplicates = 0;
  /** Throws once after storing the n-th append (a crash between queue and ledger). */
  failAfterAppend: number | null = null;
  async append(report: ReportBody): Promise<void> {
    this.appendCalls++;
    const existing = this.reports.find((r) => r.session_id === report.session_id && r.turn_index === report.turn_index);
    if (existing !== undefined) {
      if (JSON.stringify(existing) !== JSON.stringify(report)) throw new Error('two different reports for one (session, turn)');
      this.duplicates++;
    } else {
      this.reports.push(report);
    }
    if (this.failAfterAppend !== null && this.appendCalls === this.failAfterAppend) throw new Error('simulated crash');
  }
}

export interface ReplayOptions {
  dataDir: string;
  queue?: MemoryQueue;
  log?: Logger;
  now?: () => Date;
  /** Also run the other-sessions catch-up after each hook, as the real worker does (default true). */
  catchUp?: boolean;
  /** Called before each hook; return false to skip the hook (a hook that never ran). */
  beforeHook?: (event: HookEvent, index: number) => boolean | undefined;
  /** Errors thrown by a hook are collected instead of failing the replay (crash simulations). */
  tolerateErrors?: boolean;
}

/** Replays a timeline in-process: appends to files under `dataDir`, hooks → collect functions. */
export async function replayInProcess(timeline: readonly TimelineEvent[], options: ReplayOptions): Promise<{ queue: MemoryQueue; errors: unknown[] }> {
  const queue = options.queue ?? new MemoryQueue();
  const paths = statePaths(options.dataDir);
  await ensurePrivateDir(paths.dir);
  const meta = timeline.find((e): e is { meta: TimelineMeta } => 'meta' in e)?.meta;
  const deps: CollectDeps = {
    paths,
    now: options.now ?? (() => new Date()),
    log: options.log ?? nullLogger,
    queue,
    userEmail: meta?.email ?? '',
  };
  const errors: unknown[] = [];
  let index = 0;
  for (const event of timeline) {
    if ('append' in event) {
      const path = join(options.dataDir, event.append.file);
      mkdirSync(dirname(path), { recursive: true });
      appendFileSync(path, event.append.data);
    } else if ('hook' in event) {
      const i = index++;
      if (options.beforeHook?.(event.hook.event, i) === false) continue;
      const input = JSON.parse(JSON.stringify(event.hook.input).replaceAll(DATA_DIR_PLACEHOLDER, options.dataDir)) as Record<string, string>;
      const req = { sessionId: input.session_id as string, transcriptPath: input.transcript_path as string };
      try {
        switch (event.hook.event) {
          case 'SessionStart':
            await ensureSessionState(deps, req);
            break;
          case 'Stop':
            await collectSession(deps, req);
            break;
          case 'SubagentStop':
            await collectSession(deps, { ...req, ...(input.agent_transcript_path ? { agentTranscriptPath: input.agent_transcript_path } : {}) });
            break;
          case 'SessionEnd':
            await collectSession(deps, { ...req, closing: true });
            break;
        }
        if (options.catchUp !== false) await catchUpOpenSessions(deps, { exceptSessionId: req.sessionId });
      } catch (err) {
        if (!options.tolerateErrors) throw err;
        errors.push(err);
      }
    }
  }
  return { queue, errors };
}
