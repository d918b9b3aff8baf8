/**
 * The seam between the CLI shell (src/cli/main.ts) and the commands: a command gets a context
 * (env, home, clock, stdio as options with real defaults) and returns data; only the shell renders
 * and exits.
 */
import type { Command } from 'commander';
import { type CcfluxError, ERROR_CODES, type ErrorCode } from '../client/local/errors';

export interface CliContext {
  env: NodeJS.ProcessEnv;
  home: string;
  cwd: string;
  now: () => Date;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Path of the running CLI (bundle or binary), for spawning a detached copy of itself. */
  selfCommand: { file: string; args: string[] };
}

export interface CommandResult {
  exitCode: number;
  /** Printed for people (stdout) unless `--json`. */
  human?: string;
  /** Printed as JSON with `--json`. Never contains a secret. */
  json?: unknown;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Shown under "Example:" in `--help`. */
  example: string;
  /** Hook commands never print and always exit 0, whatever happens. */
  hook?: boolean;
  hidden?: boolean;
  configure?(cmd: Command): void;
  /**
   * The options of `args` (argv after the name) when they are a plain form this command parses
   * itself, as commander's `opts()` would give them; null sends them through commander. For the
   * hot path (a hook worker) only: commander costs milliseconds to load.
   */
  parseDirect?(args: string[]): Record<string, unknown> | null;
  run(ctx: CliContext, options: Record<string, unknown>, args: string[]): Promise<CommandResult>;
}

/** Documented exit codes of user commands (README "Exit codes"). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  auth: 4,
  network: 5,
  checksFailed: 6,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ERROR_CODES.USAGE]: EXIT.usage,
  [ERROR_CODES.TOKEN_IN_ARGV]: EXIT.usage,
  [ERROR_CODES.NOT_A_TERMINAL]: EXIT.usage,
  [ERROR_CODES.CONFIG_MISSING]: EXIT.config,
  [ERROR_CODES.CONFIG_INVALID]: EXIT.config,
  [ERROR_CODES.INSECURE_ENDPOINT]: EXIT.config,
  [ERROR_CODES.TOKEN_REVOKED]: EXIT.auth,
  [ERROR_CODES.TOKEN_EXCHANGE]: EXIT.auth,
  [ERROR_CODES.KEY_REVOKED]: EXIT.auth,
  [ERROR_CODES.NETWORK]: EXIT.network,
};

/** The exit code of a user command that failed with `err`. */
export function exitForError(err: CcfluxError): number {
  return EXIT_BY_CODE[err.code] ?? EXIT.failure;
}
