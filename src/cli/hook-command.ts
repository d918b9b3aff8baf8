/**
 * The three hook commands (`init`, `report-turn`, `session-end`) share one shape:
 *
 * - without `--foreground` (Claude Code, or a wrapper written for the Rust version, runs us
 *   directly): read the hook JSON, spool it to a private temp file, start a detached copy of
 *   ourselves with `--input-file <spool> --foreground`, and return at once. Claude Code waits for
 *   this process (and for anything holding its pipes), so nothing slow happens here.
 * - with `--foreground` (what plugin/scripts/ccflux-hook.sh starts, detached): read the input,
 *   delete the spool, and do the work (`runHook`).
 *
 * Either way the command prints nothing and exits 0 (main.ts enforces that for `hook: true`).
 */
import { constants } from 'node:fs';
import { lstat, mkdtemp, open, rmdir, unlink, writeFile } from '../client/local/fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type HookEvent, parseHookText, runHook } from '../client/hook/worker';
import type { CliContext, CommandSpec } from './types';
import { EXIT } from './types';

/** Hook JSON beyond this is not from Claude Code; the fields we need come first anyway. */
const MAX_INPUT_BYTES = 8 * 1024 * 1024;
/** Claude Code writes the JSON and closes stdin at once; an open, silent stdin is not a hook. */
const STDIN_WAIT_MILLIS = 2_000;
/** A worker still alive after this is stuck (a lock, a socket): it exits; the next hook catches up. */
const WORKER_WATCHDOG_MILLIS = 90_000;
/**
 * Test seam, never set outside tests: shifts the worker's clock (signing times, log times) by this
 * many milliseconds, to exercise the receiver's replay window.
 */
export const TEST_NOW_OFFSET_ENV = 'CCFLUX_TEST_NOW_OFFSET_MS';

const SPOOL_PREFIX = 'ccflux-hook-';
const SPOOL_FILE = 'input.json';

interface HookOptions {
  input?: string;
  inputFile?: string;
  foreground?: boolean;
}

/** A hook's options, for commander (`configure`) and for the worker's own parse (`parseHookArgs`). */
const HOOK_OPTIONS: { flags: string; key: keyof HookOptions; help: string }[] = [
  { flags: '--input <json>', key: 'input', help: 'hook JSON as an argument (for wrappers written for the Rust version); default: stdin' },
  { flags: '--input-file <path>', key: 'inputFile', help: 'read the hook JSON from this spool file, then delete it' },
  { flags: '--foreground', key: 'foreground', help: 'do the work in this process instead of a detached one' },
];

/**
 * The options of a hook's argv in its plain form (each option spelled out once, values as separate
 * words: what ccflux-hook.sh and startWorker pass), as commander's opts() gives them; null for
 * anything else (help, `--input=…`, unknown words), which commander then handles.
 */
export function parseHookArgs(args: string[]): HookOptions | null {
  const options: HookOptions = {};
  for (let i = 0; i < args.length; i++) {
    const option = HOOK_OPTIONS.find((o) => o.flags.split(' ')[0] === args[i]);
    if (!option || options[option.key] !== undefined) return null;
    if (!option.flags.includes('<')) {
      (options as Record<string, unknown>)[option.key] = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined || value.startsWith('-')) return null;
    (options as Record<string, unknown>)[option.key] = value;
  }
  return options;
}

/** Reads stdin to EOF (bounded in size and time). A terminal is not hook input. */
export function readStdin(
  stdin: CliContext['stdin'],
  waitMillis = STDIN_WAIT_MILLIS,
  maxBytes = MAX_INPUT_BYTES,
): Promise<string> {
  if (stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stdin.removeListener('data', onData);
      stdin.removeListener('end', finish);
      stdin.removeListener('error', finish);
      stdin.pause();
      // Cut off (time or size): let go of the stream, or it keeps this process alive.
      const stream = stdin as NodeJS.ReadableStream & { readableEnded?: boolean; destroy?: () => void };
      if (stream.readableEnded !== true) stream.destroy?.();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const room = maxBytes - bytes;
      chunks.push(buf.length > room ? buf.subarray(0, room) : buf);
      bytes += Math.min(buf.length, room);
      if (bytes >= maxBytes) finish();
    };
    const timer = setTimeout(finish, waitMillis);
    stdin.on('data', onData);
    stdin.once('end', finish);
    stdin.once('error', finish);
    stdin.resume();
  });
}

/** Only our own spool files are ever deleted, whatever `--input-file` names. */
function isSpool(path: string): boolean {
  return basename(path).startsWith('ccflux-hook') || basename(dirname(path)).startsWith(SPOOL_PREFIX);
}

async function readSpool(path: string): Promise<string> {
  try {
    // Without blocking, and only a regular file: file calls are synchronous (client/local/fs.ts),
    // so a FIFO named by `--input-file` would hold this process past its watchdog.
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) return '';
      const buf = Buffer.alloc(MAX_INPUT_BYTES);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
        if (bytesRead === 0 || length + bytesRead >= buf.length) {
          length += bytesRead;
          break;
        }
        length += bytesRead;
      }
      return buf.subarray(0, length).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  } finally {
    await removeSpool(path);
  }
}

async function removeSpool(path: string): Promise<void> {
  if (!isSpool(path)) return;
  try {
    if ((await lstat(path)).isFile()) await unlink(path);
  } catch {
    // already gone
  }
  if (basename(dirname(path)).startsWith(SPOOL_PREFIX)) {
    try {
      await rmdir(dirname(path));
    } catch {
      // not empty or gone: leave it
    }
  }
}

async function readHookInput(ctx: CliContext, options: HookOptions): Promise<string> {
  if (typeof options.inputFile === 'string') return readSpool(options.inputFile);
  if (typeof options.input === 'string') return options.input;
  return readStdin(ctx.stdin);
}

/** A fresh 0700 directory holding a 0600 file: nobody else can read or swap the hook JSON. */
async function writeSpool(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), SPOOL_PREFIX));
  const file = join(dir, SPOOL_FILE);
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  return file;
}

/** The environment of the detached worker: as ours, minus what only slows Node's start. */
function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const next = { ...env };
  // NODE_EXTRA_CA_CERTS costs ~90 ms at every Node start; ccflux loads the file itself, only when
  // it sends (the plugin's wrapper does the same).
  if (next.NODE_EXTRA_CA_CERTS) {
    next.CCFLUX_EXTRA_CA_CERTS = next.NODE_EXTRA_CA_CERTS;
    delete next.NODE_EXTRA_CA_CERTS;
  }
  return next;
}

function startWorker(ctx: CliContext, event: HookEvent, spool: string): void {
  // Loaded here, not imported: only a hand-off spawns, and node:child_process costs every worker ~3 ms.
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(ctx.selfCommand.file, [...ctx.selfCommand.args, event, '--input-file', spool, '--foreground'], {
    detached: true,
    stdio: 'ignore',
    windowsHide: true,
    // Not the project folder: a long-lived worker must not keep it busy (Windows, unmounts).
    cwd: tmpdir(),
    env: workerEnv(ctx.env),
  });
  child.once('error', () => {
    void removeSpool(spool);
  });
  child.unref();
}

function clockOf(ctx: CliContext): () => Date {
  const offsetMillis = Number(ctx.env[TEST_NOW_OFFSET_ENV] ?? '');
  if (!Number.isFinite(offsetMillis) || offsetMillis === 0) return ctx.now;
  return () => new Date(ctx.now().getTime() + offsetMillis);
}

async function runForeground(ctx: CliContext, event: HookEvent, options: HookOptions): Promise<void> {
  // Only the detached worker gets a watchdog: nothing may keep it alive for ever.
  setTimeout(() => process.exit(EXIT.ok), WORKER_WATCHDOG_MILLIS).unref();
  const input = parseHookText(await readHookInput(ctx, options));
  await runHook(event, input, { env: ctx.env, home: ctx.home, now: clockOf(ctx) });
}

async function handOff(ctx: CliContext, event: HookEvent, options: HookOptions): Promise<void> {
  const text = await readHookInput(ctx, options);
  if (text.trim().length === 0) return;
  const spool = await writeSpool(text);
  try {
    startWorker(ctx, event, spool);
  } catch {
    await removeSpool(spool);
  }
}

export function hookCommand(
  event: HookEvent,
  meta: { summary: string; claudeCodeHook: string; example: string },
): CommandSpec {
  return {
    name: event,
    summary: `${meta.summary} (${meta.claudeCodeHook} hook; prints nothing, always exits 0)`,
    example: meta.example,
    hook: true,
    configure(cmd) {
      for (const option of HOOK_OPTIONS) cmd.option(option.flags, option.help);
    },
    parseDirect: (args) => parseHookArgs(args) as Record<string, unknown> | null,
    async run(ctx, options) {
      const opts = options as HookOptions;
      if (opts.foreground === true) await runForeground(ctx, event, opts);
      else await handOff(ctx, event, opts);
      return { exitCode: EXIT.ok };
    },
  };
}
