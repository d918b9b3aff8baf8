/**
 * The device side of the fault suites: a Claude Code data dir with the plugin installed, generated
 * sessions (with their true totals) driven step by step, workers run the way the wrapper runs them
 * (`ccflux <cmd> --input <json> --foreground`) so the test holds their pid and can kill them, and
 * post-mortem views of the state dir (queue, outboxes, temp files, locks).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ModelUsage } from '../../src/protocol/wire';
import { CLI_BUNDLE, hookEnv, makeDataDir, makeTempDir, readJsonLines, run, sleep } from '../helpers/env';
import { generateSession, type GenOptions, type HookEvent, type TimelineEvent } from '../helpers/gen-transcript';
import { addSums, installPlugin, runHook, workerPids } from '../helpers/timeline';

export type Totals = Record<string, ModelUsage>;

export const CLI_EVENT: Record<HookEvent, 'init' | 'report-turn' | 'session-end'> = {
  SessionStart: 'init',
  Stop: 'report-turn',
  SubagentStop: 'report-turn',
  SessionEnd: 'session-end',
};

export interface Device {
  dataDir: string;
  home: string;
  pluginRoot: string;
  /** TMPDIR of every hook and worker (spool files land here, so leftovers can be counted). */
  tmp: string;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  /** Runs workers through this command prefix (`['sh', '-c', '...; exec "$0" "$@"']`), e.g. to set limits. */
  wrap?: string[];
}

export async function makeDevice(options: { endpoint: string; token: string; email?: string; extra?: Record<string, string | undefined> }): Promise<Device> {
  const email = options.email ?? 'alice@example.org';
  const { dataDir, home } = await makeDataDir({ email });
  const pluginRoot = await installPlugin(dataDir);
  const tmp = await makeTempDir('ccflux-fault-tmp-');
  const env = hookEnv({
    dataDir,
    home,
    pluginRoot,
    endpoint: options.endpoint,
    token: options.token,
    extra: { TMPDIR: tmp, ...options.extra },
  });
  return { dataDir, home, pluginRoot, tmp, env, stateDir: join(dataDir, 'ccflux') };
}

export interface Scenario {
  sessions: string[];
  expected: Totals;
  /** The sessions' timelines merged (each session's order kept). */
  events: TimelineEvent[];
  /** Each session's own timeline. */
  perSession: TimelineEvent[][];
}

/** `addSums`, with models in a stable order for the printed figures. */
export function addTotals(...all: Totals[]): Totals {
  return Object.fromEntries(Object.entries(addSums(...all)).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * `count` generated sessions (seeds seed, seed+1, …) interleaved at random, as several Claude Code
 * windows sharing one data dir write them.
 */
export function scenario(
  seed: number,
  count: number,
  options: Omit<GenOptions, 'seed'> | ((index: number) => Omit<GenOptions, 'seed'>) = {},
  random: () => number = Math.random,
): Scenario {
  const optionsOf = typeof options === 'function' ? options : () => options;
  const generated = Array.from({ length: count }, (_, i) => generateSession({ ...optionsOf(i), seed: seed + i }));
  const perSession = generated.map((g) => g.timeline.filter((e) => !('meta' in e)));
  const sessions = generated.flatMap((g) => {
    const meta = g.timeline.find((e): e is Extract<TimelineEvent, { meta: unknown }> => 'meta' in e);
    return meta ? meta.meta.sessions : [];
  });
  const cursors = perSession.map(() => 0);
  const events: TimelineEvent[] = [];
  for (;;) {
    const live = cursors.flatMap((c, i) => (c < (perSession[i] as TimelineEvent[]).length ? [i] : []));
    if (live.length === 0) break;
    const i = live[Math.floor(random() * live.length)] as number;
    // A session's appends and the hook after them go together (one turn of one window).
    const timeline = perSession[i] as TimelineEvent[];
    for (;;) {
      const event = timeline[cursors[i] as number] as TimelineEvent;
      cursors[i] = (cursors[i] as number) + 1;
      events.push(event);
      if ('hook' in event || (cursors[i] as number) >= timeline.length) break;
    }
  }
  return { sessions, expected: addTotals(...generated.map((g) => g.expected.models)), events, perSession };
}

export async function applyAppend(device: Device, event: Extract<TimelineEvent, { append: unknown }>): Promise<void> {
  const path = join(device.dataDir, event.append.file);
  await mkdir(dirname(path), { recursive: true });
  await appendFile(path, event.append.data);
}

export function hookInput(device: Device, event: Extract<TimelineEvent, { hook: unknown }>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event.hook.input).replaceAll('$' + '{DATA_DIR}', device.dataDir)) as Record<string, unknown>;
}

export interface Worker {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `node ccflux.cjs <cmd> --input <json> --foreground`: what the wrapper starts, but our child. */
export function startWorker(device: Device, cmd: string, input: Record<string, unknown>): Worker {
  return startCli(device, [cmd, '--input', JSON.stringify(input), '--foreground']);
}

export function startCli(device: Device, args: string[], env: NodeJS.ProcessEnv = device.env): Worker {
  const argv = [process.execPath, CLI_BUNDLE, ...args];
  const [file, ...rest] = device.wrap ? [...device.wrap, ...argv] : argv;
  const child = spawn(file as string, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.on('error', () => resolve({ code: null, signal: null, stdout, stderr }));
  });
  return { child, exited };
}

/** Runs one hook the way Claude Code does (hooks.json command, `sh -c`); throws unless silent and 0. */
export async function fireHook(device: Device, event: Extract<TimelineEvent, { hook: unknown }>): Promise<number> {
  const result = await runHook(device.pluginRoot, event.hook.event, hookInput(device, event), device.env);
  return result.wallMillis;
}

/** True while a process with this pid exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Waits until no ccflux process of the data dir is left (detached workers included). */
export async function waitForNoWorkers(device: Device, timeoutMillis = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  let calm = 0;
  while (calm < 2) {
    calm = workerPids(device.dataDir).filter(alive).length === 0 ? calm + 1 : 0;
    if (Date.now() > deadline) throw new Error(`workers still running: ${workerPids(device.dataDir).join(',')}`);
    await sleep(20);
  }
}

/**
 * Ages the state dir's locks by backdating their mtime, as if their stale timeout had passed.
 * Only for locks whose holder is dead: call it when no process of the data dir is alive. Equivalent
 * to waiting 5 s (state lock) or 30 s (deliver lock), which the product would do by itself.
 */
export async function ageLocks(device: Device): Promise<number> {
  let aged = 0;
  const old = new Date(Date.now() - 120_000);
  for (const name of ['state.lock', 'deliver.lock']) {
    const path = join(device.stateDir, name);
    try {
      await utimes(path, old, old);
      aged++;
    } catch {
      // not held
    }
  }
  return aged;
}

export interface StateView {
  queued: number;
  /** Sessions whose state holds a committed, unapplied outbox. */
  outboxes: number;
  /** Of those, outboxes whose report is already in the queue (crash between queue and state write). */
  outboxesQueued: number;
  /** write-file-atomic temp files (a crash between open and rename). */
  tempFiles: string[];
  locks: string[];
}

const STATE_FILE = /^(config\.json|signing_key|key_registered|key_revoked|token_cache\.json|pending_reports\.jsonl|rejected_reports\.jsonl|activity\.log|errors\.log|delivery_status\.json|delivery_backoff\.json|outbox\.pending|.+\.offset)$/;

export async function stateView(device: Device): Promise<StateView> {
  const queue = await readJsonLines<{ session_id: string; turn_index: number }>(join(device.stateDir, 'pending_reports.jsonl'));
  let entries: string[] = [];
  try {
    entries = await readdir(device.stateDir);
  } catch {
    // not created yet
  }
  let outboxes = 0;
  let outboxesQueued = 0;
  for (const name of entries.filter((n) => n.endsWith('.offset'))) {
    try {
      const state = JSON.parse(await readFile(join(device.stateDir, name), 'utf8')) as {
        outbox?: Array<{ report: { session_id: string; turn_index: number } | null }>;
      };
      if (state.outbox && state.outbox.length > 0) {
        outboxes++;
        const report = state.outbox.find((o) => o.report !== null)?.report;
        if (report && queue.some((q) => q.session_id === report.session_id && q.turn_index === report.turn_index)) outboxesQueued++;
      }
    } catch {
      // being written
    }
  }
  const tempFiles: string[] = [];
  const walk = async (dir: string, rel: string) => {
    let list: Array<import('node:fs').Dirent>;
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of list) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        // A lock, or a lock being built or removed (`<name>.lock.<nonce>[.released|.dead]`).
        if (!/\.lock(?:\.|$)/.test(entry.name)) await walk(path, `${rel}${entry.name}/`);
      } else if (!STATE_FILE.test(entry.name) && !(rel === 'ledger/' && /^[0-9a-f]{2}\.jsonl$/.test(entry.name))) {
        tempFiles.push(`${rel}${entry.name}`);
      }
    }
  };
  await walk(device.stateDir, '');
  const locks = entries.filter((n) => n.endsWith('.lock'));
  return { queued: queue.length, outboxes, outboxesQueued, tempFiles, locks };
}

/** Spool files the wrapper or CLI left in the hooks' TMPDIR. */
export function leftoverSpools(device: Device): string[] {
  try {
    return readdirSync(device.tmp).filter((n) => n.startsWith('ccflux-hook'));
  } catch {
    return [];
  }
}

export async function readLog(device: Device, name: 'activity.log' | 'errors.log'): Promise<string> {
  try {
    return await readFile(join(device.stateDir, name), 'utf8');
  } catch {
    return '';
  }
}

/** Every state file's text concatenated (to look for secrets). Binary files are skipped. */
export async function allStateText(device: Device): Promise<string> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    let list: Array<import('node:fs').Dirent>;
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of list) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name !== 'signing_key' && entry.name !== 'token_cache.json' && entry.name !== 'config.json') {
        try {
          out.push(await readFile(path, 'utf8'));
        } catch {
          // gone
        }
      }
    }
  };
  await walk(device.stateDir);
  return out.join('\n');
}

/**
 * Brings everything home once the faults are over: one clean `report-turn` per session (new bytes,
 * leftover outboxes, open sessions), then `ccflux flush` until the queue is empty.
 */
export async function settle(device: Device, sessions: string[], options: { timeoutMillis?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMillis ?? 60_000);
  await waitForNoWorkers(device);
  await ageLocks(device);
  for (const sessionId of sessions) {
    const transcript = findTranscript(device, sessionId);
    if (!transcript) continue;
    const worker = startWorker(device, 'report-turn', { session_id: sessionId, transcript_path: transcript });
    await worker.exited;
  }
  for (;;) {
    const view = await stateView(device);
    if (view.queued === 0 && view.outboxes === 0) return;
    if (Date.now() > deadline) throw new Error(`device did not settle: ${JSON.stringify(view)}`);
    await run(process.execPath, [CLI_BUNDLE, 'flush'], { env: device.env, timeoutMillis: 60_000 });
    await sleep(100);
  }
}

export function findTranscript(device: Device, sessionId: string): string | null {
  const projects = join(device.dataDir, 'projects');
  if (!existsSync(projects)) return null;
  for (const project of readdirSync(projects)) {
    const path = join(projects, project, `${sessionId}.jsonl`);
    if (existsSync(path)) return path;
  }
  return null;
}

export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return -1;
  }
}

export async function writeText(path: string, text: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** Tokens the receiver lacks and tokens it holds beyond the truth, over every model and field. */
export function compareTotals(truth: Totals, got: Totals): { missingTokens: number; extraTokens: number } {
  let missingTokens = 0;
  let extraTokens = 0;
  const zero: ModelUsage = { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
  for (const model of new Set([...Object.keys(truth), ...Object.keys(got)])) {
    const want = truth[model] ?? zero;
    const have = got[model] ?? zero;
    for (const field of Object.keys(zero) as Array<keyof ModelUsage>) {
      const diff = (have[field] ?? 0) - (want[field] ?? 0);
      if (diff < 0) missingTokens -= diff;
      else extraTokens += diff;
    }
  }
  return { missingTokens, extraTokens };
}

/** `tokens lost = N, tokens counted twice = M` for the reliability table. */
export function lossFigure(truth: Totals, got: Totals): string {
  const { missingTokens, extraTokens } = compareTotals(truth, got);
  return `tokens lost = ${missingTokens}, tokens counted twice = ${extraTokens}`;
}
