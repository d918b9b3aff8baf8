/**
 * Shared pieces of the device-side test harness: where the built artefacts are, temp data dirs
 * laid out like Claude Code's, the environment Claude Code gives a hook, running the built CLI,
 * and a TCP relay in front of the receiver that tests can take down and bring back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningReceiver } from './receiver';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PLUGIN_DIR = join(REPO_ROOT, 'plugin');
export const CLI_BUNDLE = join(PLUGIN_DIR, 'dist', 'ccflux.cjs');

/** Where a fixture scenario lives: the project's copy, else the shared originals. */
export function fixtureDir(scenario: string): string {
  const own = join(REPO_ROOT, 'test', 'fixtures', scenario);
  if (existsSync(join(own, 'timeline.jsonl'))) return own;
  return join('/work/shared/fixtures', scenario);
}

export const SCENARIOS = ['basic', 'subagents', 'partial', 'advisor', 'resume', 'cc-2-1-328', 'cc-2-1-328-cost-state'] as const;

const cleanups: Array<() => Promise<void>> = [];

/** A temp directory removed by `cleanupTempDirs()` (call it in afterAll). */
export async function makeTempDir(prefix = 'ccflux-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Retried: a detached worker may still be writing into it (ENOTEMPTY on the first pass).
  cleanups.push(() => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  return dir;
}

export async function cleanupTempDirs(): Promise<void> {
  const pending = cleanups.splice(0);
  await Promise.all(pending.map((f) => f().catch(() => {})));
}

/**
 * A Claude Code data dir (what `CLAUDE_CONFIG_DIR` names) with its account file
 * `<data dir>/.claude.json`, inside a fresh temp folder that also holds a fake home.
 */
export async function makeDataDir(options: { email?: string; name?: string } = {}): Promise<{ dataDir: string; home: string }> {
  const root = await makeTempDir();
  const dataDir = join(root, options.name ?? '.claude');
  const home = join(root, 'home');
  await mkdir(dataDir, { recursive: true });
  await mkdir(home, { recursive: true });
  if (options.email !== undefined) {
    await writeFile(join(dataDir, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: options.email } }));
  }
  return { dataDir, home };
}

/**
 * `<data dir>/projects/-home-u-repo/<session>.jsonl` holding one assistant line (10 input, 5 output
 * tokens of claude-sonnet-4-6): the smallest transcript a hook reports. Returns its path.
 */
export async function writeOneTurnTranscript(dataDir: string, sessionId: string): Promise<string> {
  const project = join(dataDir, 'projects', '-home-u-repo');
  await mkdir(project, { recursive: true });
  const transcript = join(project, `${sessionId}.jsonl`);
  const line = {
    type: 'assistant',
    sessionId,
    requestId: 'req_1',
    timestamp: '2026-05-11T04:32:10.000Z',
    message: { id: 'msg_1', model: 'claude-sonnet-4-6', usage: { input_tokens: 10, output_tokens: 5 } },
  };
  await writeFile(transcript, `${JSON.stringify(line)}\n`);
  return transcript;
}

/** Variables of the developer's shell that would change what the CLI does under test. */
const STRIPPED_ENV = /^(CLAUDE_|CCFLUX_|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$|HTTPS?_PROXY$|https?_proxy$|VITEST)/;

export interface HookEnvOptions {
  dataDir: string;
  home?: string;
  pluginRoot?: string;
  endpoint?: string;
  token?: string;
  extra?: Record<string, string | undefined>;
}

/** The environment Claude Code gives a plugin hook (plus `CCFLUX_ALLOW_HTTP=1` for loopback). */
export function hookEnv(options: HookEnvOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!STRIPPED_ENV.test(key) && value !== undefined) env[key] = value;
  }
  env.CLAUDE_CONFIG_DIR = options.dataDir;
  env.CCFLUX_ALLOW_HTTP = '1';
  if (options.home) env.HOME = options.home;
  if (options.pluginRoot) env.CLAUDE_PLUGIN_ROOT = options.pluginRoot;
  if (options.endpoint) env.CLAUDE_PLUGIN_OPTION_API_ENDPOINT = options.endpoint;
  if (options.token) env.CLAUDE_PLUGIN_OPTION_API_TOKEN = options.token;
  for (const [key, value] of Object.entries(options.extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** From spawn until the process exited and every holder of its stdio let go (what Claude Code waits for). */
  wallMillis: number;
}

/** Runs a command to completion, feeding `input` on stdin (closed afterwards; `null` keeps it open). */
export function run(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | null; cwd?: string; timeoutMillis?: number } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child: ChildProcess = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd ?? REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMillis ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, wallMillis: performance.now() - started });
    });
    child.stdin?.on('error', () => {});
    if (options.input !== null) child.stdin?.end(options.input ?? '');
  });
}

/** Runs the built CLI (`node plugin/dist/ccflux.cjs ...`). */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | null; timeoutMillis?: number } = {},
): Promise<ProcessResult> {
  return run(process.execPath, [CLI_BUNDLE, ...args], options);
}

export type RelayMode = 'up' | 'refuse' | 'blackhole';

export interface Relay {
  url: string;
  port: number;
  /** `up` relays to the target; `refuse` resets every connection; `blackhole` accepts and never answers. */
  setMode(mode: RelayMode): void;
  setTarget(port: number): void;
  stop(): Promise<void>;
}

/**
 * A loopback TCP relay on port 0, so hooks can be pointed at one URL while the receiver behind it
 * goes down, comes back, or hangs.
 */
export async function startRelay(targetPort: number | null, mode: RelayMode = 'up'): Promise<Relay> {
  let current: RelayMode = mode;
  let target = targetPort;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (current === 'refuse' || target === null) {
      client.resetAndDestroy();
      return;
    }
    if (current === 'blackhole') {
      client.on('data', () => {});
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    setMode(next) {
      current = next;
      if (next !== 'up') for (const s of sockets) s.destroy();
    },
    setTarget(port) {
      target = port;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function readTextOr(path: string, fallback = ''): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** Parsed lines of a JSONL file (unparseable lines skipped); [] when absent. */
export async function readJsonLines<T = unknown>(path: string): Promise<T[]> {
  const text = await readTextOr(path);
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // skipped
    }
  }
  return out;
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis));

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export type ModelTotals = Record<
  string,
  { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }
>;

type Queryable = Pick<RunningReceiver, 'query'>;

/**
 * `SUM(...) GROUP BY model` over the receiver's `usage_events` for some sessions (every fixture
 * uses the same session id, so tests that share a receiver filter) — fixtures/README.md's check.
 */
export function sessionSums(receiver: Queryable, sessionIds: string[]): ModelTotals {
  const rows = receiver.query<{ model: string } & ModelTotals[string]>(
    `SELECT model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
            SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens
       FROM usage_events WHERE session_id IN (${sessionIds.map(() => '?').join(',')}) GROUP BY model ORDER BY model`,
    ...sessionIds,
  );
  return Object.fromEntries(rows.map(({ model, ...totals }) => [model, totals]));
}

/** Rows of `usage_events` for some sessions (turn-level checks). */
export function sessionRows(
  receiver: Queryable,
  sessionIds: string[],
): Array<{ session_id: string; turn_index: number; model: string; signed: number; device_id: string }> {
  return receiver.query(
    `SELECT session_id, turn_index, model, signed, device_id FROM usage_events
      WHERE session_id IN (${sessionIds.map(() => '?').join(',')}) ORDER BY session_id, turn_index, model`,
    ...sessionIds,
  );
}
