/**
 * The real Claude Code, pinned, run as a user would: a profile (home, config dir, project) with
 * the ccflux plugin installed through `claude plugin`, headless `-p` runs, and interactive sessions
 * under tmux. Every process is started inside the sandbox's network namespace.
 *
 * The client is installed by `test/claude-code/install.mjs` into a cache outside the checkout
 * (`CCFLUX_CLAUDE_CODE_CACHE`, default `~/.cache/ccflux-test/claude-code-<version>`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, makeTempDir, sleep } from '../../helpers/env';
import type { Sandbox } from './sandbox';

export const CLAUDE_CODE_VERSION = '2.1.328';
export const CACHE_DIR =
  process.env.CCFLUX_CLAUDE_CODE_CACHE ?? join(homedir(), '.cache', 'ccflux-test', `claude-code-${CLAUDE_CODE_VERSION}`);
const API_KEY = 'sk-ant-api03-ccflux-fake-key-for-tests-only-000000000000';
const RUN_TIMEOUT_MILLIS = 90_000;

/** The native binary: the platform package's, else the wrapper's copy of it. */
export function claudeBinary(): string | null {
  const modules = join(CACHE_DIR, 'node_modules', '@anthropic-ai');
  for (const candidate of [join(modules, `claude-code-linux-${process.arch}`, 'claude'), join(modules, 'claude-code', 'bin', 'claude.exe')]) {
    try {
      if (statSync(candidate).size > 1_000_000) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

/** Why the real client cannot run here, or null. */
export function claudeUnavailable(): string | null {
  let version: string | undefined;
  try {
    version = (JSON.parse(readFileSync(join(CACHE_DIR, 'node_modules', '@anthropic-ai', 'claude-code', 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} is not installed in ${CACHE_DIR} (run \`node test/claude-code/install.mjs\`)`;
  }
  if (version !== CLAUDE_CODE_VERSION) return `${CACHE_DIR} holds Claude Code ${version}, not ${CLAUDE_CODE_VERSION}`;
  if (claudeBinary() === null) return `no native Claude Code binary for linux-${process.arch} in ${CACHE_DIR}`;
  return null;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` inside the sandbox to completion. */
export function runIn(
  sandbox: Sandbox,
  file: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; input?: string; timeoutMillis?: number },
): Promise<RunResult> {
  const [wrapped, wrappedArgs] = sandbox.wrap(file, args);
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(wrapped, wrappedArgs, { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMillis ?? RUN_TIMEOUT_MILLIS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit', not 'close': the hooks' detached workers may hold no pipe of ours, but be safe.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

export interface Profile {
  root: string;
  home: string;
  /** `CLAUDE_CONFIG_DIR`: transcripts, plugins, `.claude.json`, and ccflux's own `ccflux/`. */
  configDir: string;
  project: string;
  env: NodeJS.ProcessEnv;
  /** Runs `claude args` in the project folder. */
  claude(args: string[], options?: { input?: string; timeoutMillis?: number }): Promise<RunResult>;
  /** `claude -p <prompt> --output-format json …`; throws unless it succeeded. */
  prompt(prompt: string, args?: string[]): Promise<Record<string, unknown>>;
  /** Every transcript file under `projects/` (main, fork copies, subagents). */
  transcripts(): Promise<string[]>;
}

/** The variables of claude-code-formats.md §8.1, nothing from the developer's shell but PATH. */
function claudeEnv(p: { home: string; configDir: string; tmp: string; apiPort: number }): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    HOME: p.home,
    CLAUDE_CONFIG_DIR: p.configDir,
    TMPDIR: p.tmp,
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${p.apiPort}`,
    ANTHROPIC_API_KEY: API_KEY,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    // The receiver is plain http on loopback: only ever set here, in the test environment.
    CCFLUX_ALLOW_HTTP: '1',
  };
}

/** A user's Claude Code setup, onboarding done, the API key approved and the project trusted. */
export async function makeProfile(sandbox: Sandbox, options: { apiPort: number; email?: string }): Promise<Profile> {
  const root = await makeTempDir('ccflux-cc-');
  const home = join(root, 'home');
  const configDir = join(home, '.claude');
  const tmp = join(root, 'tmp');
  const project = join(root, 'project');
  for (const dir of [home, configDir, tmp, project]) await mkdir(dir, { recursive: true });
  const state = {
    hasCompletedOnboarding: true,
    lastOnboardingVersion: CLAUDE_CODE_VERSION,
    theme: 'dark',
    numStartups: 1,
    customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
    projects: { [project]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true, allowedTools: [] } },
    ...(options.email ? { oauthAccount: { emailAddress: options.email } } : {}),
  };
  await writeFile(join(configDir, '.claude.json'), JSON.stringify(state, null, 2));
  const env = claudeEnv({ home, configDir, tmp, apiPort: options.apiPort });
  const binary = claudeBinary()!;
  const claude = (args: string[], opts: { input?: string; timeoutMillis?: number } = {}) =>
    runIn(sandbox, binary, args, { env, cwd: project, ...opts });
  return {
    root,
    home,
    configDir,
    project,
    env,
    claude,
    async prompt(prompt, args = []) {
      const result = await claude(['-p', prompt, '--output-format', 'json', ...args]);
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(result.stdout) as Record<string, unknown>;
      } catch {
        // reported below
      }
      if (result.code !== 0 || parsed.is_error === true) {
        throw new Error(`claude -p failed (${result.code ?? result.signal}): ${result.stdout.slice(0, 2000)}\n${result.stderr.slice(0, 2000)}`);
      }
      return parsed;
    },
    transcripts: () => listJsonl(join(configDir, 'projects')),
  };
}

async function listJsonl(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.name.endsWith('.jsonl')) out.push(path);
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * Installs the plugin as a user does: this checkout as a directory marketplace, the endpoint as
 * install-time config, the token through `--values-stdin` (never in argv).
 */
export async function installPlugin(profile: Profile, endpoint: string, token: string): Promise<void> {
  const stale = join(REPO_ROOT, 'plugin', 'bin', `ccflux-linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`);
  const bundle = join(REPO_ROOT, 'plugin', 'dist', 'ccflux.cjs');
  // A directory marketplace runs the plugin in place, and a binary in plugin/bin wins over dist/.
  if (existsSync(stale) && statSync(stale).mtimeMs < statSync(bundle).mtimeMs) {
    throw new Error(`${stale} is older than ${bundle}; the plugin would run it: remove it or rebuild it`);
  }
  const steps: string[][] = [
    ['plugin', 'marketplace', 'add', REPO_ROOT],
    ['plugin', 'install', 'ccflux@ccflux', '--config', `api_endpoint=${endpoint}`],
  ];
  for (const args of steps) {
    const r = await profile.claude(args);
    if (r.code !== 0) throw new Error(`claude ${args.join(' ')} failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  const r = await profile.claude(['plugin', 'configure', 'ccflux@ccflux', '--values-stdin'], {
    input: JSON.stringify({ api_token: token }),
  });
  if (r.code !== 0) throw new Error(`claude plugin configure failed (${r.code}): ${r.stdout}\n${r.stderr}`);
}

/** Lines of a JSONL file, parsed (unparseable lines skipped). */
export async function readLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8');
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a torn last line
    }
  }
  return out;
}

export interface Tmux {
  /** Types text, then Enter. */
  type(text: string): Promise<void>;
  keys(...keys: string[]): Promise<void>;
  screen(): Promise<string>;
  /** Waits until the screen matches. */
  waitFor(pattern: RegExp, timeoutMillis?: number): Promise<string>;
  /** Closes the terminal: Claude Code gets SIGHUP (and still runs its SessionEnd hooks). */
  kill(): Promise<void>;
  /** Claude Code dies at once (SIGKILL: no SessionEnd hook), then the terminal goes. */
  kill9(): Promise<void>;
}

/** An interactive `claude args` session in a detached tmux server of its own. */
export async function startInteractive(sandbox: Sandbox, profile: Profile, args: string[]): Promise<Tmux> {
  const socket = join(profile.root, 'tmux.sock');
  const [file, wrappedArgs] = sandbox.wrap(claudeBinary()!, args);
  const tmux = (tmuxArgs: string[]) => runTmux(socket, tmuxArgs, profile);
  const envArgs = Object.entries(profile.env).flatMap(([k, v]) => (v === undefined ? [] : ['-e', `${k}=${v}`]));
  const started = await tmux(['new-session', '-d', '-x', '200', '-y', '50', '-c', profile.project, ...envArgs, file, ...wrappedArgs]);
  if (started.code !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
  const screen = async () => (await tmux(['capture-pane', '-p', '-t', '0'])).stdout;
  return {
    async type(text) {
      await tmux(['send-keys', '-t', '0', '-l', text]);
      await sleep(150);
      await tmux(['send-keys', '-t', '0', 'Enter']);
    },
    async keys(...keys) {
      await tmux(['send-keys', '-t', '0', ...keys]);
    },
    screen,
    async waitFor(pattern, timeoutMillis = 30_000) {
      const deadline = Date.now() + timeoutMillis;
      for (;;) {
        const text = await screen();
        if (pattern.test(text)) return text;
        if (Date.now() > deadline) throw new Error(`screen never matched ${pattern}:\n${text}`);
        await sleep(200);
      }
    },
    async kill() {
      await tmux(['kill-server']);
    },
    async kill9() {
      const pids = (await tmux(['list-panes', '-a', '-F', '#{pane_pid}'])).stdout.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await tmux(['kill-server']);
    },
  };
}

function runTmux(socket: string, args: string[], profile: Profile): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('tmux', ['-S', socket, '-f', '/dev/null', ...args], {
      env: { PATH: process.env.PATH, HOME: profile.home, TERM: 'xterm-256color', LANG: 'C.UTF-8', TMUX_TMPDIR: profile.root },
      cwd: profile.project,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
