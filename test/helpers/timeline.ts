/**
 * Replays a fixture timeline the way Claude Code lives it: bytes appended to transcripts under the
 * data dir, and each hook run from the installed plugin's `hooks/hooks.json` command through
 * `sh -c`, hook JSON on stdin, Claude Code's environment. Every hook must exit 0 and print nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { appendFile, copyFile, cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PLUGIN_DIR, makeTempDir, run, sleep } from './env';

/** Placeholders in hooks.json commands and fixture hook inputs (spelled so no linter takes them for templates). */
export const PLUGIN_ROOT_PLACEHOLDER = '$' + '{CLAUDE_PLUGIN_ROOT}';
export const DATA_DIR_PLACEHOLDER = '$' + '{DATA_DIR}';

export type HookEventName = 'SessionStart' | 'Stop' | 'SubagentStop' | 'SessionEnd';

export interface TimelineMeta {
  scenario: string;
  seed: number;
  email: string;
  sessions: string[];
}

export type TimelineStep =
  | { kind: 'append'; file: string; data: string }
  | { kind: 'hook'; event: HookEventName; input: Record<string, unknown> };

export interface Timeline {
  meta: TimelineMeta;
  steps: TimelineStep[];
}

export type ModelSums = Record<string, { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }>;

export function readTimeline(fixtureDir: string): Timeline {
  const lines = readFileSync(join(fixtureDir, 'timeline.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
  let meta: TimelineMeta | undefined;
  const steps: TimelineStep[] = [];
  for (const line of lines) {
    const entry = JSON.parse(line) as {
      meta?: TimelineMeta;
      append?: { file: string; data: string };
      hook?: { event: HookEventName; input: Record<string, unknown> };
    };
    if (entry.meta) meta = entry.meta;
    else if (entry.append) steps.push({ kind: 'append', ...entry.append });
    else if (entry.hook) steps.push({ kind: 'hook', ...entry.hook });
  }
  if (!meta) throw new Error(`${fixtureDir}: timeline has no meta line`);
  return { meta, steps };
}

/** What the receiver must hold once everything is delivered. */
export function expectedModels(fixtureDir: string): ModelSums {
  return (JSON.parse(readFileSync(join(fixtureDir, 'expected.json'), 'utf8')) as { models: ModelSums }).models;
}

/** The Rust version's method (every assistant line of the main file summed), for contrast. */
export function naiveSums(fixtureDir: string): ModelSums {
  return (JSON.parse(readFileSync(join(fixtureDir, 'expected.json'), 'utf8')) as { naive_main_file_sum: ModelSums })
    .naive_main_file_sum;
}

/** Adds per-model sums (two sessions reported into one receiver). */
export function addSums(...all: ModelSums[]): ModelSums {
  const out: ModelSums = {};
  for (const sums of all) {
    for (const [model, usage] of Object.entries(sums)) {
      const acc = out[model] ?? { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
      out[model] = acc;
      acc.input_tokens += usage.input_tokens;
      acc.output_tokens += usage.output_tokens;
      acc.cache_read_tokens += usage.cache_read_tokens;
      acc.cache_write_tokens += usage.cache_write_tokens;
    }
  }
  return out;
}

/**
 * A copy of a fixture whose session ids, line uuids, message ids and request ids are all made
 * distinct (every fixture was generated from the same seed, so they share them), for running
 * several scenarios into one data dir or one receiver. Counts are unchanged.
 */
export async function retagFixture(fixtureDir: string, tag: string): Promise<string> {
  if (!/^[0-9a-f]{8}$/.test(tag)) throw new Error('tag must be 8 lowercase hex digits');
  const text = await readFile(join(fixtureDir, 'timeline.jsonl'), 'utf8');
  const retagged = text
    .replace(/\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/g, `${tag}$1`)
    .replace(/\b(msg|req)_/g, `$1_${tag}`);
  const dir = await makeTempDir('ccflux-fixture-');
  await writeFile(join(dir, 'timeline.jsonl'), retagged);
  await copyFile(join(fixtureDir, 'expected.json'), join(dir, 'expected.json'));
  return dir;
}

function pluginVersion(): string {
  return (JSON.parse(readFileSync(join(PLUGIN_DIR, '.claude-plugin', 'plugin.json'), 'utf8')) as { version: string }).version;
}

/**
 * Copies the built `plugin/` folder (without platform binaries) where Claude Code caches a marketplace plugin,
 * `<data dir>/plugins/cache/local/ccflux/<version>/`, and returns that path (CLAUDE_PLUGIN_ROOT).
 */
export async function installPlugin(dataDir: string): Promise<string> {
  const root = join(dataDir, 'plugins', 'cache', 'local', 'ccflux', pluginVersion());
  await mkdir(dirname(root), { recursive: true });
  // Platform binaries in plugin/bin/ may be left from an older `build-binary`: test the bundle
  // this run built, as a plugin without a binary for this platform runs it.
  await cp(PLUGIN_DIR, root, { recursive: true, filter: (src) => !/[\\/]bin[\\/]ccflux-[^\\/]*$/.test(src) });
  return root;
}

type HooksJson = { hooks: Record<string, Array<{ hooks: Array<{ type: string; command: string }> }>> };

/** The shell commands hooks.json declares for an event, with `${CLAUDE_PLUGIN_ROOT}` substituted. */
export function hookCommands(pluginRoot: string, event: HookEventName): string[] {
  const config = JSON.parse(readFileSync(join(pluginRoot, 'hooks', 'hooks.json'), 'utf8')) as HooksJson;
  return (config.hooks[event] ?? []).flatMap((group) =>
    group.hooks.filter((h) => h.type === 'command').map((h) => h.command.replaceAll(PLUGIN_ROOT_PLACEHOLDER, pluginRoot)),
  );
}

export interface HookRun {
  event: HookEventName;
  index: number;
  wallMillis: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one hook as Claude Code does and throws unless it exited 0 and printed nothing. */
export async function runHook(
  pluginRoot: string,
  event: HookEventName,
  input: Record<string, unknown> | string,
  env: NodeJS.ProcessEnv,
  index = 0,
): Promise<HookRun> {
  const commands = hookCommands(pluginRoot, event);
  if (commands.length === 0) throw new Error(`hooks.json declares no command for ${event}`);
  const stdin = typeof input === 'string' ? input : JSON.stringify(input);
  let last: HookRun | undefined;
  // Claude Code runs matching hooks in parallel; there is one per event here.
  for (const command of commands) {
    const result = await run('sh', ['-c', command], { env, input: stdin, timeoutMillis: 10_000 });
    last = { event, index, wallMillis: result.wallMillis, code: result.code, stdout: result.stdout, stderr: result.stderr };
    if (result.code !== 0 || result.stdout !== '' || result.stderr !== '') {
      throw new Error(
        `${event} hook #${index} misbehaved: exit ${result.code} signal ${result.signal}, stdout ${JSON.stringify(result.stdout)}, stderr ${JSON.stringify(result.stderr)}`,
      );
    }
  }
  return last as HookRun;
}

/** A fixture hook input with `${DATA_DIR}` replaced by the data dir's absolute path. */
export function substituteDataDir(value: unknown, dataDir: string): unknown {
  if (typeof value === 'string') return value.replaceAll(DATA_DIR_PLACEHOLDER, dataDir);
  if (Array.isArray(value)) return value.map((v) => substituteDataDir(v, dataDir));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteDataDir(v, dataDir)]));
  }
  return value;
}

export interface ReplayOptions {
  dataDir: string;
  /** The hooks' environment (see `hookEnv`); CLAUDE_CONFIG_DIR and CLAUDE_PLUGIN_ROOT are forced. */
  env: NodeJS.ProcessEnv;
  pluginRoot: string;
  /** Replay only steps [from, to) (to split a session around an outage or a corruption). */
  from?: number;
  to?: number;
  /** Called after each hook ran (and passed its checks). */
  onHook?: (run: HookRun, stepIndex: number) => void | Promise<void>;
  /** Run hooks against this data dir but let the env's CLAUDE_PLUGIN_ROOT stand (another data dir's plugin). */
  keepPluginRootEnv?: boolean;
}

export interface ReplayResult {
  meta: TimelineMeta;
  hooks: HookRun[];
  steps: number;
}

export async function replayTimeline(fixtureDir: string, options: ReplayOptions): Promise<ReplayResult> {
  const { meta, steps } = readTimeline(fixtureDir);
  const { dataDir } = options;
  const env: NodeJS.ProcessEnv = { ...options.env, CLAUDE_CONFIG_DIR: dataDir };
  if (!options.keepPluginRootEnv) env.CLAUDE_PLUGIN_ROOT = options.pluginRoot;
  const accountFile = join(dataDir, '.claude.json');
  try {
    await stat(accountFile);
  } catch {
    await writeFile(accountFile, JSON.stringify({ oauthAccount: { emailAddress: meta.email } }));
  }
  const hooks: HookRun[] = [];
  const to = Math.min(options.to ?? steps.length, steps.length);
  for (let i = options.from ?? 0; i < to; i++) {
    const step = steps[i] as TimelineStep;
    if (step.kind === 'append') {
      const path = join(dataDir, step.file);
      await mkdir(dirname(path), { recursive: true });
      await appendFile(path, step.data);
      continue;
    }
    const input = substituteDataDir(step.input, dataDir) as Record<string, unknown>;
    const hookRun = await runHook(options.pluginRoot, step.event, input, env, hooks.length);
    hooks.push(hookRun);
    await options.onHook?.(hookRun, i);
  }
  return { meta, hooks, steps: steps.length };
}

/** Index of the step after the n-th hook (to split a timeline "half way" on a hook boundary). */
export function stepAfterHook(fixtureDir: string, hookNumber: number): number {
  const { steps } = readTimeline(fixtureDir);
  let seen = 0;
  for (let i = 0; i < steps.length; i++) {
    if (steps[i]?.kind === 'hook' && ++seen === hookNumber) return i + 1;
  }
  return steps.length;
}

export function hookCount(fixtureDir: string): number {
  return readTimeline(fixtureDir).steps.filter((s) => s.kind === 'hook').length;
}

/** Pids of live ccflux processes (wrapper or worker) whose environment names this data dir. Linux only. */
export function workerPids(dataDir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const needle = `CLAUDE_CONFIG_DIR=${dataDir}\0`;
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes('ccflux')) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (`${environ}\0`.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function queueLength(dataDir: string): Promise<number> {
  try {
    const text = await readFile(join(dataDir, 'ccflux', 'pending_reports.jsonl'), 'utf8');
    return text.split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

export interface QuietState {
  queueLength: number;
  workers: number[];
  stateLock: boolean;
  deliverLock: boolean;
}

async function quietState(dataDir: string): Promise<QuietState> {
  return {
    queueLength: await queueLength(dataDir),
    workers: workerPids(dataDir),
    stateLock: await exists(join(dataDir, 'ccflux', 'state.lock')),
    deliverLock: await exists(join(dataDir, 'ccflux', 'deliver.lock')),
  };
}

/**
 * Waits until no ccflux process of this data dir runs, no lock is held and (unless
 * `queueEmpty: false`, for a receiver that is down) the queue is empty. Throws on timeout.
 */
export async function waitForQuiet(
  dataDir: string,
  options: { timeoutMillis?: number; queueEmpty?: boolean } = {},
): Promise<QuietState> {
  const deadline = Date.now() + (options.timeoutMillis ?? 30_000);
  const wantEmpty = options.queueEmpty !== false;
  let calmPolls = 0;
  for (;;) {
    const state = await quietState(dataDir);
    const busy = state.workers.length > 0 || state.stateLock || state.deliverLock || (wantEmpty && state.queueLength > 0);
    // Two calm polls in a row: a wrapper that just exited may not have shown its worker yet.
    calmPolls = busy ? 0 : calmPolls + 1;
    if (calmPolls >= 2) return state;
    if (Date.now() > deadline) throw new Error(`${dataDir} did not quieten: ${JSON.stringify(state)}`);
    await sleep(50);
  }
}

/** Every file under the ccflux state dir (for corruption tests). */
export async function stateFiles(dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'ccflux');
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(path);
    }
  };
  await walk(dir);
  return out;
}
