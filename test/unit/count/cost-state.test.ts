/**
 * Background usage from `cost-state` (claude-code-formats.md §8.3, §8.5; real-client findings in
 * /work/notes/claude-code-findings.md): fixtures written from those facts, run through the real
 * collector against a real ledger on disk. Every case checks the sum of all reports against what
 * the API billed, per model and counter.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CollectDeps, collectSession, ensureSessionState } from '../../../src/client/count/collect';
import { COST_STATE_MARKER, normalizeModelName, parseCostStateLine } from '../../../src/client/count/cost-state';
import { ensurePrivateDir } from '../../../src/client/local/fsx';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import type { ReportBody } from '../../../src/protocol/wire';
import { MemoryQueue } from '../../helpers/gen-transcript';

const P = 'aaaaaaaa-0000-4000-8000-00000000000a';
const F = 'ffffffff-0000-4000-8000-00000000000f';
const OPUS = 'claude-opus-5-5';
const PROMPT = 'my secret prompt text 7f3a';

type Counters = { in: number; out: number; cr?: number; cw5?: number; cw1?: number; ws?: number };
type Totals = Record<string, Record<string, number>>;

let dataDir: string;
let paths: StatePaths;
let queue: MemoryQueue;
let deps: CollectDeps;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccflux-cost-state-'));
  paths = statePaths(dataDir);
  await ensurePrivateDir(paths.dir);
  queue = new MemoryQueue();
  const log: Logger = { activity: () => {}, error: () => {}, flush: async () => {} };
  deps = { paths, now: () => new Date('2026-12-01T11:00:00Z'), log, queue, userEmail: '', pluginVersion: '0.1.0' };
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const main = (sid: string) => join(dataDir, 'projects', '-home-dev-project', `${sid}.jsonl`);
function write(path: string, ...lines: object[]): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}
const stop = (sid: string) => collectSession(deps, { sessionId: sid, transcriptPath: main(sid) });

function apiUsage(c: Counters) {
  return {
    input_tokens: c.in,
    output_tokens: c.out,
    cache_read_input_tokens: c.cr ?? 0,
    cache_creation_input_tokens: (c.cw5 ?? 0) + (c.cw1 ?? 0),
    cache_creation: { ephemeral_5m_input_tokens: c.cw5 ?? 0, ephemeral_1h_input_tokens: c.cw1 ?? 0 },
    server_tool_use: { web_search_requests: c.ws ?? 0, web_fetch_requests: 0 },
    iterations: [],
    speed: 'standard',
  };
}
/** One response as 2.1.328 writes it: two content-block lines, same ids, final usage on both. */
function response(sid: string, id: string, c: Counters, extra: Record<string, unknown> = {}, model = OPUS): object[] {
  return [0, 1].map((apiBlockIndex) => ({
    type: 'assistant',
    sessionId: sid,
    requestId: `req_${id}`,
    apiBlockIndex,
    timestamp: '2026-12-01T10:00:00.000Z',
    message: { id: `msg_${id}`, model, role: 'assistant', usage: apiUsage(c) },
    ...extra,
  }));
}
function costState(sid: string, models: Record<string, Counters>): object {
  const modelUsage: Record<string, object> = {};
  for (const [name, c] of Object.entries(models)) {
    modelUsage[name] = {
      inputTokens: c.in,
      outputTokens: c.out,
      thinkingTokens: 0,
      cacheReadInputTokens: c.cr ?? 0,
      cacheCreationInputTokens: (c.cw5 ?? 0) + (c.cw1 ?? 0),
      cacheCreationEphemeral5mInputTokens: c.cw5 ?? 0,
      cacheCreationEphemeral1hInputTokens: c.cw1 ?? 0,
      webSearchRequests: c.ws ?? 0,
      costUSD: 0.01,
    };
  }
  return { type: 'cost-state', sessionId: sid, totalCostUSD: 0.01, modelUsage, hasUnknownModelCost: false };
}
/** The 2.1.328 lines around a turn that carry no usage (one of them holds the prompt text). */
const noise = (sid: string) => [
  { type: 'api-request', sessionId: sid, params: { model: OPUS }, querySource: 'sdk' },
  // Prompt text, with a cost-state look-alike inside it: never parsed, never counted, never stored.
  { type: 'api-request-blob', sessionId: sid, messages: [{ role: 'user', content: `${PROMPT} {"type":"cost-state","modelUsage":{"x":{"inputTokens":999999}}}` }] },
  { type: 'system', subtype: 'stop_hook_summary', sessionId: sid },
];

function sum(reports: readonly ReportBody[]): Totals {
  const out: Totals = {};
  for (const r of reports) {
    for (const [model, usage] of Object.entries(r.models)) {
      const t = out[model] ?? {};
      out[model] = t;
      for (const [k, v] of Object.entries(usage)) t[k] = (t[k] ?? 0) + (v as number);
    }
  }
  return out;
}
function billed(...parts: Counters[]): Record<string, number> {
  const t = { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, cache_write_5m_tokens: 0, cache_write_1h_tokens: 0, web_search_requests: 0 };
  for (const c of parts) {
    t.input_tokens += c.in;
    t.output_tokens += c.out;
    t.cache_read_tokens += c.cr ?? 0;
    t.cache_write_tokens += (c.cw5 ?? 0) + (c.cw1 ?? 0);
    t.cache_write_5m_tokens += c.cw5 ?? 0;
    t.cache_write_1h_tokens += c.cw1 ?? 0;
    t.web_search_requests += c.ws ?? 0;
  }
  // Reports leave zero detail out: compare like with like.
  return Object.fromEntries(Object.entries(t).filter(([k, v]) => v !== 0 || (!k.startsWith('cache_write_') && k !== 'web_search_requests')));
}
const plus = (...parts: Counters[]): Counters => ({
  in: parts.reduce((a, c) => a + c.in, 0),
  out: parts.reduce((a, c) => a + c.out, 0),
  cr: parts.reduce((a, c) => a + (c.cr ?? 0), 0),
  cw5: parts.reduce((a, c) => a + (c.cw5 ?? 0), 0),
  cw1: parts.reduce((a, c) => a + (c.cw1 ?? 0), 0),
  ws: parts.reduce((a, c) => a + (c.ws ?? 0), 0),
});

// What the API billed, call by call.
const T1: Counters = { in: 1221, out: 131, cr: 24043, cw5: 669 };
const T2: Counters = { in: 1238, out: 138, cr: 24354, cw5: 682 };
const COMPACT: Counters = { in: 1051, out: 80, cr: 0, cw5: 300 }; // no assistant line
const SEARCH: Counters = { in: 1119, out: 61, cr: 21000, cw1: 4000, ws: 1 }; // WebSearch's inner call: no assistant line
const FORK_OWN: Counters = { in: 1300, out: 150, cr: 25000, cw5: 700 };
const FORK_BG: Counters = { in: 500, out: 20, cr: 0, cw1: 1000, ws: 2 };

describe('cost-state: background usage reported exactly once', () => {
  it('a compaction and a web search that only cost-state holds are reported, once, across resumes', async () => {
    write(main(P), ...noise(P), ...response(P, 'p1', T1));
    await stop(P);
    write(main(P), costState(P, { [OPUS]: T1 }));
    await stop(P); // cost-state equals the lines: nothing extra
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1) });

    // `--resume`: same file; a compaction, then a turn with a web search.
    write(main(P), { type: 'system', subtype: 'compact_boundary', sessionId: P }, costState(P, { [OPUS]: plus(T1, COMPACT) }));
    await stop(P);
    write(main(P), ...noise(P), ...response(P, 'p2', T2), costState(P, { [OPUS]: plus(T1, COMPACT, T2, SEARCH) }));
    await stop(P);
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, COMPACT, T2, SEARCH) });
  });

  it('--fork-session: the copy starts from the parent totals; each session reports its own usage once', async () => {
    write(main(P), ...response(P, 'p1', T1), ...response(P, 'p2', T2), costState(P, { [OPUS]: plus(T1, T2, COMPACT) }));
    await stop(P);
    // The fork copies the parent's assistant lines (sessionId rewritten, requestSessionId = parent),
    // no cost-state line; its first cost-state starts from the parent's totals.
    const copies = [...response(F, 'p1', T1, { requestSessionId: P }), ...response(F, 'p2', T2, { requestSessionId: P })];
    write(main(F), ...copies, ...response(F, 'f1', FORK_OWN), costState(F, { [OPUS]: plus(T1, T2, COMPACT, FORK_OWN, FORK_BG) }));
    await stop(F);
    await stop(F);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, T2, COMPACT, FORK_OWN, FORK_BG) });
    const forkReports = queue.reports.filter((r) => r.session_id === F);
    expect(sum(forkReports)).toEqual({ [OPUS]: billed(FORK_OWN, FORK_BG) });
  });

  it('a lost session state re-reads the file and adds nothing; so does a re-read of a fork', async () => {
    write(main(P), ...response(P, 'p1', T1), costState(P, { [OPUS]: plus(T1, SEARCH) }));
    await stop(P);
    write(main(F), ...response(F, 'p1', T1, { requestSessionId: P }), ...response(F, 'f1', FORK_OWN));
    write(main(F), costState(F, { [OPUS]: plus(T1, SEARCH, FORK_OWN, FORK_BG) }));
    await stop(F);
    unlinkSync(paths.sessionOffset(P));
    unlinkSync(paths.sessionOffset(F));
    await stop(P);
    await stop(F);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, SEARCH, FORK_OWN, FORK_BG) });
  });

  it('/clear: the new session cost-state starts from zero and counts on its own', async () => {
    write(main(P), ...response(P, 'p1', T1), costState(P, { [OPUS]: plus(T1, COMPACT) }));
    await stop(P);
    write(main(F), ...response(F, 'c1', T2), costState(F, { [OPUS]: plus(T2, SEARCH) }));
    await stop(F);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, COMPACT, T2, SEARCH) });
  });

  it('a cost-state that goes backwards reports nothing (never negative), and only what passes its old high', async () => {
    write(main(P), ...response(P, 'p1', T1), costState(P, { [OPUS]: plus(T1, COMPACT) }));
    await stop(P);
    write(main(P), costState(P, { [OPUS]: { in: 10, out: 1 } }));
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, COMPACT) });
    write(main(P), costState(P, { [OPUS]: plus(T1, COMPACT, SEARCH) }));
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, COMPACT, SEARCH) });
    for (const r of queue.reports) for (const u of Object.values(r.models)) for (const v of Object.values(u)) expect(v).toBeGreaterThanOrEqual(0);
  });

  it('a [1m] context suffix: reported under the base name, the main model not counted twice', async () => {
    write(main(P), ...response(P, 'p1', T1));
    write(main(P), costState(P, { [`${OPUS}[1m]`]: T1, 'claude-sonnet-5[1m]': COMPACT }));
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1), 'claude-sonnet-5': billed(COMPACT) });
    expect(normalizeModelName('claude-sonnet-5[1m]')).toBe('claude-sonnet-5');
    expect(normalizeModelName('claude-sonnet-5')).toBe('claude-sonnet-5');
  });

  it('no cost-state (older versions, a killed session): the assistant lines are all there is', async () => {
    write(main(P), ...response(P, 'p1', T1), ...response(P, 'p2', T2));
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1, T2) });
  });

  it('api-request-blob (prompt text) is never parsed into any state, even with a cost-state look-alike inside', async () => {
    write(main(P), ...noise(P), ...response(P, 'p1', T1), costState(P, { [OPUS]: T1 }));
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(T1) });
    const blob = JSON.stringify(noise(P)[1]);
    expect(parseCostStateLine(blob)).toBeNull();
    expect(blob.includes(COST_STATE_MARKER)).toBe(false); // quoted inside a string, the marker is escaped
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    for (const file of walk(paths.dir)) expect(readFileSync(file, 'utf8')).not.toContain(PROMPT);
  });
});

/**
 * `--fork-session` under load: the parent's and the fork's detached workers, and the fork's Stop
 * worker against Claude Code writing the fork's first cost-state line (it lands after the closing
 * line the Stop worker waits for), may run in any order. Whatever the order, every call is reported
 * once. The parent's background (SEARCH: 1h cache writes, a web search) exceeds the fork's own
 * calls on some counters, so a base taken from the wrong session shows.
 */
describe('cost-state: a fork counts exactly whatever order the workers run in', () => {
  const PARENT = plus(T1, T2, SEARCH);
  const writeParent = () => write(main(P), ...noise(P), ...response(P, 'p1', T1), ...response(P, 'p2', T2), costState(P, { [OPUS]: PARENT }));
  const copies = () => [...response(F, 'p1', T1, { requestSessionId: P }), ...response(F, 'p2', T2, { requestSessionId: P })];
  const writeForkLines = () => write(main(F), ...copies(), ...noise(F), ...response(F, 'f1', FORK_OWN, { requestSessionId: F }));
  const writeForkCostState = () => write(main(F), costState(F, { [OPUS]: plus(PARENT, FORK_OWN, FORK_BG) }));

  it('the fork Stop worker reads the copies before its first cost-state lands; SessionEnd reads it', async () => {
    writeParent();
    await stop(P);
    writeForkLines();
    await stop(F); // Stop: the closing line is there, the cost-state line not yet
    writeForkCostState();
    await stop(F); // SessionEnd
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(PARENT, FORK_OWN, FORK_BG) });
    expect(sum(queue.reports.filter((r) => r.session_id === F))).toEqual({ [OPUS]: billed(FORK_OWN, FORK_BG) });
  });

  it('the fork worker runs before the parent worker has read anything', async () => {
    await ensureSessionState(deps, { sessionId: P, transcriptPath: main(P) }); // the parent's SessionStart worker
    writeParent();
    writeForkLines();
    await stop(F);
    await stop(P);
    writeForkCostState();
    await stop(F);
    await stop(P);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(PARENT, FORK_OWN, FORK_BG) });
    expect(sum(queue.reports.filter((r) => r.session_id === F))).toEqual({ [OPUS]: billed(FORK_OWN, FORK_BG) });
  });

  // The parent's worker, two of the fork's (Stop, SessionEnd) and Claude Code writing the fork's
  // cost-state line, in every distinct order.
  const orders = (items: readonly string[]): string[][] =>
    items.length <= 1 ? [[...items]] : items.flatMap((x, i) => orders([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
  const distinct = [...new Map(orders(['parent', 'fork', 'fork', 'fork-cost-state']).map((o) => [o.join(' → '), o])).entries()];
  it.each(distinct)('every order: %s', async (_name, order) => {
    writeParent();
    writeForkLines();
    for (const step of order as string[]) {
      if (step === 'parent') await stop(P);
      else if (step === 'fork-cost-state') writeForkCostState();
      else await stop(F);
    }
    await stop(P);
    await stop(F);
    expect(sum(queue.reports)).toEqual({ [OPUS]: billed(PARENT, FORK_OWN, FORK_BG) });
  });
});
