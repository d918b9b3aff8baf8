/**
 * The CLI shell: builds the commander program from COMMANDS, renders results (human or --json),
 * maps errors to messages and exit codes. The only place that writes to stdout/stderr or exits.
 *
 * A command's plain argv (`CommandSpec.parseDirect`: a hook worker's `report-turn --input-file <spool>
 * --foreground`) runs without commander: loading it (with node:child_process) and building the
 * command tree cost ~8–10 ms of every turn's worker. Anything else (help, errors, odd spellings)
 * goes through commander, and both paths call runCommand().
 */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { CcfluxError } from '../client/local/errors';
import { VERSION } from '../version';
import { COMMANDS } from './commands/index';
import { type CliContext, type CommandResult, type CommandSpec, EXIT, exitForError } from './types';

const MIN_NODE_MAJOR = 20;
/** libuv threads for hook runs (the ledger's APPEND_CONCURRENCY fsyncs at once). */
const HOOK_THREADPOOL_SIZE = 16;
const HOOK_COMMAND_NAMES = new Set(COMMANDS.filter((c) => c.hook).map((c) => c.name));

type Commander = typeof import('commander');

/**
 * commander, on first use only. A dynamic import, not a top-level one: the bundle (CommonJS) turns
 * it into a deferred require of commander's module, where a static import would run it at start-up.
 */
function loadCommander(): Promise<Commander> {
  return import('commander');
}

export function defaultContext(): CliContext {
  let self: CliContext['selfCommand'] | undefined;
  return {
    env: process.env,
    home: homedir(),
    cwd: process.cwd(),
    now: () => new Date(),
    // Getters: Node makes each stream on first access (2–6 ms for stdout, a pipe's socket or
    // /dev/null's writer; stdin as much again), and a hook worker never touches them.
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return process.stdout;
    },
    get stderr() {
      return process.stderr;
    },
    // Only a hand-off and the setup commands start or find themselves: node:sea loads only then.
    get selfCommand() {
      self ??= selfCommand();
      return self;
    },
  };
}

/** How to start another copy of this CLI: the SEA binary itself, or node + the bundle. */
function selfCommand(): { file: string; args: string[] } {
  const script = process.argv[1];
  const isSea = (() => {
    try {
      // biome-ignore lint/suspicious/noExplicitAny: node:sea exists only in newer type packages
      return (require('node:sea') as any).isSea() === true;
    } catch {
      return false;
    }
  })();
  if (isSea || !script) return { file: process.execPath, args: [] };
  return { file: process.execPath, args: [script] };
}

function render(ctx: CliContext, result: CommandResult, json: boolean): void {
  if (json) {
    if (result.json !== undefined) ctx.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
  } else if (result.human) {
    ctx.stdout.write(result.human.endsWith('\n') ? result.human : `${result.human}\n`);
  }
}

function renderError(ctx: CliContext, err: unknown, json: boolean): number {
  if (err instanceof CcfluxError) {
    if (json) {
      ctx.stdout.write(`${JSON.stringify({ ok: false, error: { code: err.code, message: err.message, hint: err.hint ?? null } }, null, 2)}\n`);
    } else {
      ctx.stderr.write(`ccflux: ${err.message}\n`);
      if (err.hint) ctx.stderr.write(`  fix: ${err.hint}\n`);
    }
    return exitForError(err);
  }
  const message = err instanceof Error ? err.message : String(err);
  if (json) ctx.stdout.write(`${JSON.stringify({ ok: false, error: { code: 'CCFLUX_ERR_INTERNAL', message, hint: null } }, null, 2)}\n`);
  else ctx.stderr.write(`ccflux: unexpected error: ${message}\n  fix: run \`ccflux doctor\`; if it persists, report it with the output of \`ccflux status\`\n`);
  return EXIT.failure;
}

/**
 * Runs one command and says its exit code; the only caller of `spec.run`. A hook never prints and
 * always exits 0: its problems go to the logs (the command's job).
 */
export async function runCommand(ctx: CliContext, spec: CommandSpec, options: Record<string, unknown>, args: string[]): Promise<number> {
  if (spec.hook) {
    try {
      await spec.run(ctx, options, args);
    } catch {
      // swallowed on purpose
    }
    return EXIT.ok;
  }
  const json = options.json === true;
  try {
    const result = await spec.run(ctx, options, args);
    render(ctx, result, json);
    return result.exitCode;
  } catch (err) {
    return renderError(ctx, err, json);
  }
}

export async function buildProgram(ctx: CliContext, commands: CommandSpec[], onExit: (code: number) => void): Promise<Command> {
  const { Command } = await loadCommander();
  const program = new Command('ccflux')
    .description('Counts Claude Code token usage per model and delivers signed reports to your organisation\'s ccflux receiver.')
    .version(VERSION, '-V, --version', 'print the version')
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) })
    .exitOverride();

  for (const spec of commands) {
    const cmd = program.command(spec.name, { hidden: spec.hidden === true }).description(spec.summary);
    spec.configure?.(cmd);
    cmd.addHelpText('after', `\nExample:\n  ${spec.example.split('\n').join('\n  ')}\n`);
    cmd.exitOverride();
    cmd.action(async (...actionArgs: unknown[]) => {
      const command = actionArgs[actionArgs.length - 1] as Command;
      onExit(await runCommand(ctx, spec, command.opts(), command.args));
    });
  }
  return program;
}

/** `--help` / `-h` asked for (hooks then print their help like any command: no hook input is read). */
function asksForHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** The command and its options when argv is one the command parses itself (no commander). */
function directCall(argv: string[]): { spec: CommandSpec; options: Record<string, unknown> } | null {
  const spec = COMMANDS.find((c) => c.name === argv[0]);
  const options = spec?.parseDirect?.(argv.slice(1)) ?? null;
  return spec && options ? { spec, options } : null;
}

export async function main(argv: string[], ctx: CliContext = defaultContext()): Promise<number> {
  const direct = directCall(argv);
  if (direct) return runCommand(ctx, direct.spec, direct.options, []);
  const { CommanderError } = await loadCommander();
  let exitCode: number = EXIT.ok;
  const isHook = HOOK_COMMAND_NAMES.has(argv[0] ?? '') && !asksForHelp(argv);
  const program = await buildProgram(ctx, COMMANDS, (code) => {
    exitCode = code;
  });
  if (isHook) {
    // Hooks must stay silent even on a usage error.
    program.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    for (const cmd of program.commands) cmd.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  }
  if (argv.length === 0) {
    // Nothing asked for is a usage error, said on stderr (stdout stays clean for scripts).
    ctx.stderr.write(`${program.helpInformation()}\nccflux: no command given; try \`ccflux status\` (or \`ccflux --help\`)\n`);
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (isHook) return EXIT.ok;
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
        ? EXIT.ok
        : EXIT.usage;
    }
    return renderError(ctx, err, false);
  }
  return exitCode;
}

function nodeTooOld(): boolean {
  const major = Number(process.versions.node.split('.')[0]);
  return !(major >= MIN_NODE_MAJOR);
}

/** Runs the CLI for this process: checks the Node version, runs, sets the exit code. */
export function runCli(argv: string[] = process.argv.slice(2)): void {
  const hook = HOOK_COMMAND_NAMES.has(argv[0] ?? '');
  if (nodeTooOld()) {
    // Quietly: hooks must never disturb Claude Code. User commands say why.
    if (!hook) {
      process.stderr.write(`ccflux needs Node.js ${MIN_NODE_MAJOR} or newer (this is ${process.versions.node})\n`);
      process.exitCode = EXIT.failure;
    }
    return;
  }
  // A hook's worker fsyncs up to 256 ledger shards and its state on a session's first read: with
  // libuv's default 4 threads they queued 4 at a time (most of that read's idle time). Threads
  // waiting on the disk cost no CPU; the pool starts on first use, after this line.
  if (hook) process.env.UV_THREADPOOL_SIZE ??= String(HOOK_THREADPOOL_SIZE);
  // `ccflux … | head -1`: a reader that goes away is not an error worth a stack trace. Not for a
  // hook's worker: it never writes, its stdio is /dev/null, and listening would make the streams.
  const worker = hook && argv.includes('--foreground');
  for (const stream of worker ? [] : [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
      throw err;
    });
  }
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // A hook has printed nothing and flushed its logs; without this, V8's background threads
      // keep the process around ~100 ms after the work is done, on every turn.
      if (hook) process.exit(code);
    },
    () => {
      process.exitCode = EXIT.failure;
    },
  );
}

// The CommonJS bundle run directly (`node dist/ccflux.cjs`, the SEA binary) runs the CLI;
// `bin/ccflux.cjs` calls runCli() itself; importing this file (tests, ESM) runs nothing.
if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  runCli();
}
