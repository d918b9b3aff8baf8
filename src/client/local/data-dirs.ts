/**
 * Which Claude Code data dir a user command acts on: `--config-dir`, else `CLAUDE_CONFIG_DIR`,
 * else `~/.claude` — and, when none was named and several `~/.claude*` folders exist, the user picks
 * (on a terminal only). Shared by `login`, `status`, `doctor`, `flush`, `logout` and `install`.
 *
 * `decideDataDir` is pure; `listDataDirCandidates` is the only part that reads the disk.
 */
import { readdir, stat } from './fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CcfluxError, ERROR_CODES } from './errors';
import { STATE_DIR_NAME } from './paths';

/**
 * `remembered`: set up earlier by `ccflux login` / `ccflux install` (see remembered.ts); `found`:
 * a `~/.claude*` folder whose `ccflux/` state the hooks made (a marketplace install, no login).
 */
export type DataDirSource = 'flag' | 'env' | 'default' | 'chosen' | 'remembered' | 'found';

export interface DataDirCandidate {
  /** Absolute path of a `~/.claude*` folder. */
  path: string;
  /** It already has a `ccflux/` state folder. */
  hasState: boolean;
}

export interface DataDirRequest {
  /** `--config-dir` as typed (may start with `~`). */
  configDir?: string | undefined;
  env: NodeJS.ProcessEnv;
  home: string;
  cwd: string;
}

export type DataDirDecision =
  | { kind: 'resolved'; dataDir: string; source: DataDirSource }
  | { kind: 'ask'; candidates: DataDirCandidate[]; defaultDir: string };

/** `~` and `~/x` are expanded (a `--config-dir=~/x` never reaches a shell); relative paths are from `cwd`. */
export function expandPath(path: string, home: string, cwd: string): string {
  const expanded = path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
  return isAbsolute(expanded) ? resolve(expanded) : resolve(cwd, expanded);
}

/**
 * The data dir to use, or `ask` when the user should pick among several `~/.claude*` folders:
 * only when nothing named one and `interactive` (a terminal on both ends) is true.
 */
export function decideDataDir(
  request: DataDirRequest,
  candidates: DataDirCandidate[],
  interactive: boolean,
): DataDirDecision {
  if (request.configDir !== undefined && request.configDir !== '') {
    return { kind: 'resolved', dataDir: expandPath(request.configDir, request.home, request.cwd), source: 'flag' };
  }
  const fromEnv = request.env.CLAUDE_CONFIG_DIR;
  if (fromEnv) return { kind: 'resolved', dataDir: expandPath(fromEnv, request.home, request.cwd), source: 'env' };
  const defaultDir = join(request.home, '.claude');
  if (interactive && candidates.length > 1) return { kind: 'ask', candidates, defaultDir };
  return { kind: 'resolved', dataDir: defaultDir, source: 'default' };
}

/**
 * The data dirs `status`, `doctor` and `flush` act on: the one named by `--config-dir` or
 * `CLAUDE_CONFIG_DIR`; else every remembered one (each gets its own section); else every
 * `~/.claude*` folder with ccflux state; else `~/.claude`.
 */
export function decideTargetDataDirs(
  request: DataDirRequest,
  remembered: string[],
  candidates: DataDirCandidate[] = [],
): { dataDirs: string[]; source: DataDirSource } {
  const named = decideDataDir(request, [], false);
  if (named.kind === 'resolved' && named.source !== 'default') return { dataDirs: [named.dataDir], source: named.source };
  if (remembered.length > 0) return { dataDirs: [...remembered], source: 'remembered' };
  const defaultDir = join(request.home, '.claude');
  const withState = candidates.filter((c) => c.hasState).map((c) => c.path);
  if (withState.length > 1 || (withState.length === 1 && withState[0] !== defaultDir)) return { dataDirs: withState, source: 'found' };
  return { dataDirs: [defaultDir], source: 'default' };
}

/** Caps the scan of the home folder; nobody has this many Claude Code profiles. */
const MAX_CANDIDATES = 20;

/**
 * Folders in `home` whose name starts with `.claude` (`~/.claude`, `~/.claude-work`, …), `~/.claude`
 * first, then by name. Files such as `~/.claude.json` are not candidates.
 */
export async function listDataDirCandidates(home: string): Promise<DataDirCandidate[]> {
  let names: string[];
  try {
    names = await readdir(home);
  } catch {
    return [];
  }
  const picked = names
    .filter((name) => name === '.claude' || /^\.claude[-_.]?[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    .filter((name) => !name.endsWith('.json') && !name.includes('.json.'))
    .sort((a, b) => (a === '.claude' ? -1 : b === '.claude' ? 1 : a.localeCompare(b)));
  const out: DataDirCandidate[] = [];
  for (const name of picked) {
    if (out.length >= MAX_CANDIDATES) break;
    const path = join(home, name);
    try {
      if (!(await stat(path)).isDirectory()) continue;
    } catch {
      continue;
    }
    let hasState = false;
    try {
      hasState = (await stat(join(path, STATE_DIR_NAME))).isDirectory();
    } catch {
      hasState = false;
    }
    out.push({ path, hasState });
  }
  return out;
}

/** Shortens a path under `home` to `~/…` for people; JSON keeps absolute paths. */
export function displayPath(path: string, home: string): string {
  if (home && (path === home || path.startsWith(`${home}/`))) return `~${path.slice(home.length)}`;
  return path;
}

/**
 * `decideDataDir` plus the disk scan and, when it says `ask`, the caller's `pick` (a terminal menu
 * in the CLI). Without `pick` the default `~/.claude` is used.
 */
export async function resolveDataDir(
  request: DataDirRequest,
  options: { pick?: (candidates: DataDirCandidate[], defaultDir: string) => Promise<string> } = {},
): Promise<{ dataDir: string; source: DataDirSource; candidates: DataDirCandidate[] }> {
  const candidates = await listDataDirCandidates(request.home);
  const decision = decideDataDir(request, candidates, options.pick !== undefined);
  if (decision.kind === 'resolved') return { dataDir: decision.dataDir, source: decision.source, candidates };
  const chosen = await (options.pick as NonNullable<typeof options.pick>)(decision.candidates, decision.defaultDir);
  return { dataDir: chosen, source: 'chosen', candidates };
}

/**
 * For commands that read a data dir (`status`, `doctor`, `flush`): a folder named by
 * `--config-dir` or `CLAUDE_CONFIG_DIR` that does not exist is a typo, not an empty setup.
 */
export async function requireExistingDataDir(dataDir: string, source: DataDirSource, home: string): Promise<void> {
  if (source !== 'flag' && source !== 'env') return;
  try {
    if ((await stat(dataDir)).isDirectory()) return;
  } catch {
    // reported below
  }
  const found = (await listDataDirCandidates(home)).map((c) => displayPath(c.path, home));
  const named = source === 'flag' ? '--config-dir' : 'CLAUDE_CONFIG_DIR';
  throw new CcfluxError(ERROR_CODES.USAGE, `${dataDir} (from ${named}) is not a folder`, {
    hint: found.length > 0 ? `check the path; Claude Code data folders here: ${found.join(', ')}` : 'check the path (Claude Code creates the folder on its first run)',
  });
}
