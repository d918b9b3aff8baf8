/**
 * Which Claude Code data dirs a user command acts on, the same rule for every command and stated in
 * each `--help`:
 * - `status`, `doctor`, `flush`: `--config-dir`, else `CLAUDE_CONFIG_DIR`, else every data dir that
 *   `ccflux login` / `ccflux install` set up (a section each), else every `~/.claude*` folder with
 *   ccflux state (made by the hooks of a marketplace install), else `~/.claude`;
 * - `login`, `install`: `--config-dir`, else `CLAUDE_CONFIG_DIR`, else the one `~/.claude*` folder;
 *   with several, the user picks on a terminal, and off a terminal the command refuses and prints
 *   the exact command to run. What they set up is remembered (src/client/local/remembered.ts).
 */
import {
  type DataDirCandidate,
  type DataDirSource,
  decideTargetDataDirs,
  displayPath,
  listDataDirCandidates,
  requireExistingDataDir,
  resolveDataDir,
} from '../client/local/data-dirs';
import { CcfluxError, ERROR_CODES } from '../client/local/errors';
import { forgetDataDir, readRemembered, rememberDataDir, rememberedFilePath } from '../client/local/remembered';
import { dataDirMenu, isInteractive } from './prompt';
import { type CliContext, type CommandResult, exitForError } from './types';

/** `--config-dir` help of the commands that read state. */
export const READ_DIR_HELP =
  'Claude Code data folder (default: $CLAUDE_CONFIG_DIR, else every folder `ccflux login` or `ccflux install` set up, a section each; else every ~/.claude* folder with ccflux state; else ~/.claude)';

/** `--config-dir` help of the commands that set a folder up. */
export const SETUP_DIR_HELP =
  'Claude Code data folder to set up (default: $CLAUDE_CONFIG_DIR, else the only ~/.claude* folder; with several it asks on a terminal and refuses elsewhere, naming the command to run); remembered for status, doctor and flush';

export interface Targets {
  dataDirs: string[];
  source: DataDirSource;
  candidates: DataDirCandidate[];
}

export async function readTargets(ctx: CliContext, configDir: unknown): Promise<Targets> {
  const remembered = await readRemembered(rememberedFilePath(ctx.env, ctx.home));
  const request = { configDir: typeof configDir === 'string' ? configDir : undefined, env: ctx.env, home: ctx.home, cwd: ctx.cwd };
  const candidates = await listDataDirCandidates(ctx.home);
  const { dataDirs, source } = decideTargetDataDirs(request, remembered, candidates);
  if (source === 'flag' || source === 'env') await requireExistingDataDir(dataDirs[0] as string, source, ctx.home);
  return { dataDirs, source, candidates };
}

export interface SetupDirOptions {
  /** The command to run with `--config-dir <dir>` filled in (shown when several folders exist off a terminal). */
  retry: (dir: string) => string;
  /** Narrows several candidates to the relevant ones (uninstall: where ccflux is installed). */
  prefer?: (candidates: DataDirCandidate[]) => Promise<DataDirCandidate[]>;
  /** Defaults to "stdin and stderr are terminals"; login with --token-stdin never asks. */
  interactive?: boolean;
}

/**
 * The data dir `login` / `install` / `uninstall` set up: `--config-dir`, else `CLAUDE_CONFIG_DIR`,
 * else the one `~/.claude*` folder; with several, the user picks on a terminal (the one set up
 * before is the default), and elsewhere it is an error naming the exact command for each folder.
 */
export async function chooseSetupDir(ctx: CliContext, configDir: unknown, options: SetupDirOptions): Promise<string> {
  const interactive = options.interactive ?? isInteractive(ctx);
  const remembered = await readRemembered(rememberedFilePath(ctx.env, ctx.home));
  const menu = dataDirMenu(ctx, ctx.home);
  const { dataDir, source, candidates } = await resolveDataDir(
    { configDir: typeof configDir === 'string' ? configDir : undefined, env: ctx.env, home: ctx.home, cwd: ctx.cwd },
    interactive ? { pick: (found, defaultDir) => menu(found, remembered.length === 1 ? (remembered[0] as string) : defaultDir) } : {},
  );
  if (source !== 'default' || candidates.length <= 1) return dataDir;
  const preferred = options.prefer ? await options.prefer(candidates) : candidates;
  if (preferred.length === 1) return (preferred[0] as DataDirCandidate).path;
  const shown = candidates.map((c) => displayPath(c.path, ctx.home));
  throw new CcfluxError(ERROR_CODES.USAGE, `several Claude Code data folders exist (${shown.join(', ')}) and none was named; nothing was changed`, {
    hint: `name the one to use: ${shown.map((dir) => `\`${options.retry(dir)}\``).join(' or ')} (or set CLAUDE_CONFIG_DIR)`,
  });
}

/** After a successful `login` / `install`: remember the folder. Never fails the command over it. */
export async function rememberSetup(ctx: CliContext, dataDir: string): Promise<void> {
  await rememberDataDir(rememberedFilePath(ctx.env, ctx.home), dataDir).catch(() => {});
}

/** After `uninstall` left nothing of ccflux in the folder. */
export async function forgetSetup(ctx: CliContext, dataDir: string): Promise<void> {
  await forgetDataDir(rememberedFilePath(ctx.env, ctx.home), dataDir).catch(() => {});
}

export interface DirOutcome {
  dataDir: string;
  result?: CommandResult;
  error?: CcfluxError;
}

/** Runs `fn` for each data dir in turn; a CcfluxError in one is that folder's answer, not the end. */
export async function forEachDataDir(dataDirs: string[], fn: (dataDir: string) => Promise<CommandResult>): Promise<DirOutcome[]> {
  const out: DirOutcome[] = [];
  for (const dataDir of dataDirs) {
    try {
      out.push({ dataDir, result: await fn(dataDir) });
    } catch (err) {
      if (!(err instanceof CcfluxError)) throw err;
      out.push({ dataDir, error: err });
    }
  }
  return out;
}

/** The first non-zero exit code among the folders (an error counts as the shell would exit on it). */
export function worstExit(outcomes: DirOutcome[]): number {
  for (const o of outcomes) {
    const code = o.error ? exitForError(o.error) : (o.result?.exitCode ?? 0);
    if (code !== 0) return code;
  }
  return 0;
}

/** One section per folder, separated by a blank line; an error reads as the shell prints it. */
export function sections(outcomes: DirOutcome[], head: (dataDir: string) => string | null): string {
  return outcomes
    .map((o) => {
      const title = head(o.dataDir);
      const body = o.error ? `ccflux: ${o.error.message}${o.error.hint ? `\n  fix: ${o.error.hint}` : ''}` : (o.result?.human ?? '');
      return title === null ? body : `${title}\n${body}`;
    })
    .join('\n\n');
}

/** With one folder the command answers as it always did: its result, or its error thrown. */
export function onlyOutcome(outcomes: DirOutcome[]): CommandResult | null {
  const [first] = outcomes;
  if (outcomes.length !== 1 || !first) return null;
  if (first.error) throw first.error;
  return first.result ?? null;
}

/** The JSON of a folder's error, in the shell's error shape. */
export function errorJson(dataDir: string, err: CcfluxError): { dataDir: string; ok: false; error: { code: string; message: string; hint: string | null } } {
  return { dataDir, ok: false, error: { code: err.code, message: err.message, hint: err.hint ?? null } };
}
