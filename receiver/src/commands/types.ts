/**
 * The seam between the CLI shell (`receiver/src/cli.ts`) and its commands: a command gets a context
 * (env, clock, output, signals as options with real defaults) and resolves to an exit code; only
 * the shell catches errors and maps them to messages.
 */
import type { Command } from 'commander';
import type { Output } from '../output';

export interface CliContext {
  env: Record<string, string | undefined>;
  /** True when stderr is a terminal a person reads (onboarding hints go there only then). */
  stderrIsTTY?: boolean;
  /** Working directory relative database paths resolve against (default process.cwd()). */
  cwd?: string;
  now: () => Date;
  output: Output;
  /** Calls `handler` once on SIGTERM or SIGINT; returns a function that removes it. */
  onShutdownSignal(handler: (signal: string) => void): () => void;
}

/** Runs a command's body; the shell records its exit code and catches what it throws. */
export type Act = (body: () => Promise<number>) => Promise<void>;

export interface CommandSpec {
  name: string;
  register(program: Command, ctx: CliContext, act: Act): void;
}

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
} as const;
