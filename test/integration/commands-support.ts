/**
 * Shared pieces of the user-command integration tests (commands-*.test.ts): a user's shell
 * environment, the built CLI run as a user would (pipes, or a pseudo terminal made by `script`),
 * queued reports as hooks leave them, and a plugin registered the way Claude Code records it.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportBody } from '../../src/protocol/wire';
import { CLI_BUNDLE, makeTempDir, type ProcessResult, runCli } from '../helpers/env';

/** The developer's variables that would change what the CLI does. */
const STRIPPED_ENV = /^(CLAUDE_|CCFLUX_|XDG_CONFIG_HOME$|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$|HTTPS?_PROXY$|https?_proxy$|VITEST)/;

export interface UserEnvOptions {
  home: string;
  /** Sets CLAUDE_CONFIG_DIR. */
  dataDir?: string;
  /** CCFLUX_ALLOW_HTTP=1 (the receiver under test speaks plain http on loopback). Default true. */
  allowHttp?: boolean;
  extra?: Record<string, string>;
}

/** A user's shell: their HOME, no Claude Code hook variables. */
export function userEnv(options: UserEnvOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!STRIPPED_ENV.test(key) && value !== undefined) env[key] = value;
  }
  env.HOME = options.home;
  if (options.dataDir) env.CLAUDE_CONFIG_DIR = options.dataDir;
  if (options.allowHttp !== false) env.CCFLUX_ALLOW_HTTP = '1';
  Object.assign(env, options.extra ?? {});
  return env;
}

/** A fresh fake home with an empty `~/.claude`. */
export async function makeHome(): Promise<{ home: string; dataDir: string }> {
  const home = await makeTempDir('ccflux-cmd-home-');
  const dataDir = join(home, '.claude');
  await mkdir(dataDir, { recursive: true });
  return { home, dataDir };
}

export function cli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<ProcessResult> {
  return runCli(args, { env, input, timeoutMillis: 60_000 });
}

/** Runs the CLI with `--json` and parses stdout. */
export async function cliJson<T = Record<string, unknown>>(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<{ code: number | null; json: T; stderr: string; stdout: string }> {
  const result = await cli([...args, '--json'], env, input);
  let json: T;
  try {
    json = JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}): stdout ${JSON.stringify(result.stdout)} stderr ${JSON.stringify(result.stderr)}`);
  }
  return { code: result.code, json, stderr: result.stderr, stdout: result.stdout };
}

/** `ccflux login --token-stdin` into `home`'s default data dir (or `--config-dir`). */
export async function login(env: NodeJS.ProcessEnv, endpoint: string, token: string, extraArgs: string[] = []): Promise<ProcessResult> {
  return cli(['login', '--endpoint', endpoint, '--token-stdin', ...extraArgs], env, `${token}\n`);
}

export interface PtyResult {
  /** Everything the terminal showed (stdout and stderr together, as a user sees it). */
  output: string;
  code: number;
}

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * Runs `ccflux <args>` on a pseudo terminal made by `script` (util-linux; Debian's essential
 * bsdutils): for each [expected, typed] step, waits until the screen shows `expected` (after the
 * previous match), then types `typed` (`\r` is Enter). Typing only after the prompt is shown
 * matters: the CLI switches the terminal to raw mode before it prints the prompt, so this tests
 * that nothing typed is echoed.
 */
export function ptyCli(args: string[], env: NodeJS.ProcessEnv, steps: Array<[string, string]> = [], timeoutSeconds = 30): Promise<PtyResult> {
  const command = [process.execPath, CLI_BUNDLE, ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { ...env, SHELL: '/bin/sh' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let seen = 0;
    let step = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutSeconds * 1000);
    const advance = () => {
      while (step < steps.length) {
        const [expected, typed] = steps[step] as [string, string];
        const found = output.indexOf(expected, seen);
        if (found === -1) return;
        seen = found + expected.length;
        step++;
        // A moment for the CLI to start reading after it printed the prompt.
        setTimeout(() => child.stdin?.write(typed), 50);
      }
    };
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      output += chunk;
      advance();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stdin?.on('error', () => {});
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ output, code: code ?? -1 });
    });
  });
}

export function makeReport(turnIndex: number, timestampUtc: string, sessionId = 'sess-cmd-1'): ReportBody {
  return {
    schema_version: 1,
    session_id: sessionId,
    user_email: 'user@example.org',
    turn_index: turnIndex,
    timestamp_utc: timestampUtc,
    session_start_utc: timestampUtc,
    models: { 'claude-sonnet-4-6': { input_tokens: 100 + turnIndex, output_tokens: 10, cache_read_tokens: 5, cache_write_tokens: 0 } },
    plugin_version: '0.1.0',
  };
}

/** Writes reports into the queue file as hooks would have left them. */
export async function queueReports(stateDir: string, reports: ReportBody[]): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(join(stateDir, 'pending_reports.jsonl'), reports.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
}

/**
 * Registers a copy of the repository's plugin folder in `<dataDir>/plugins/installed_plugins.json`
 * and enables it, as Claude Code's `/plugin install` leaves it. Returns the install path.
 */
export async function registerPluginInstall(dataDir: string, pluginSource: string, pluginId = 'ccflux@test-mkt'): Promise<string> {
  const { cp } = await import('node:fs/promises');
  const installPath = join(dataDir, 'plugins', 'cache', 'test-mkt', 'ccflux', '0.1.0');
  await mkdir(installPath, { recursive: true });
  await cp(pluginSource, installPath, { recursive: true, filter: (src) => !/[\\/](dist|bin)[\\/]/.test(src) });
  await writeFile(
    join(dataDir, 'plugins', 'installed_plugins.json'),
    JSON.stringify({ version: 2, plugins: { [pluginId]: [{ scope: 'user', installPath, version: '0.1.0' }] } }, null, 2),
  );
  await writeFile(join(dataDir, 'settings.json'), JSON.stringify({ enabledPlugins: { [pluginId]: true } }, null, 2));
  return installPath;
}
