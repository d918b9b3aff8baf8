/**
 * The receiver's CLI shell: builds the commander program from COMMANDS, runs one command, and is
 * the one place that turns an error into a message and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../../src/version';
import { COMMANDS } from './commands/index';
import { type CliContext, EXIT } from './commands/types';
import { isReceiverError, type ReceiverErrorCode } from './errors';
import { createOutput } from './output';

const EXIT_BY_CODE: Record<ReceiverErrorCode, number> = {
  exists: EXIT.failure,
  'not-found': EXIT.failure,
  ambiguous: EXIT.usage,
  revoked: EXIT.failure,
  database: EXIT.failure,
  invalid: EXIT.usage,
  config: EXIT.usage,
};

export function defaultContext(): CliContext {
  return {
    env: process.env,
    stderrIsTTY: process.stderr.isTTY === true,
    cwd: process.cwd(),
    now: () => new Date(),
    output: createOutput(process.stdout, process.stderr),
    onShutdownSignal(handler) {
      const signals = ['SIGTERM', 'SIGINT'] as const;
      let fired = false;
      const listener = (signal: NodeJS.Signals) => {
        if (fired) return;
        fired = true;
        handler(signal);
      };
      for (const s of signals) process.on(s, listener);
      return () => {
        for (const s of signals) process.off(s, listener);
      };
    },
  };
}

export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  let exitCode: number = EXIT.ok;
  const act = async (body: () => Promise<number>) => {
    try {
      exitCode = await body();
    } catch (err) {
      if (isReceiverError(err)) {
        ctx.output.err(`ccflux-receiver: ${err.message}`);
        exitCode = EXIT_BY_CODE[err.code];
      } else {
        ctx.output.err(`ccflux-receiver: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
        exitCode = EXIT.failure;
      }
    }
  };

  const program = new Command('ccflux-receiver')
    .description('Self-hosted receiver for signed ccflux usage reports (SQLite)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.output.out(text.replace(/\n$/, '')),
      writeErr: (text) => ctx.output.err(text.replace(/\n$/, '')),
    });
  // Subcommands made with .command() inherit exitOverride and the output settings.
  for (const command of COMMANDS) command.register(program, ctx, act);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors with 1 from commander.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  return exitCode;
}
